"""Serializers of the debts API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from banking.models import OutstandingSource, ProductAgreement
from banking.selectors.debts import debt_remaining, debt_remaining_source

MONEY = {"max_digits": 18, "decimal_places": 2}


class ScheduleRowOutputSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The day it will be debited (your local day)")
    amount = serializers.DecimalField(**MONEY)
    principal = serializers.DecimalField(**MONEY, allow_null=True, required=False)
    interest = serializers.DecimalField(**MONEY, allow_null=True, required=False)
    remaining = serializers.DecimalField(**MONEY, allow_null=True, required=False)
    part = serializers.IntegerField(
        required=False, help_text="Which part of the month's instalment (split debits)"
    )
    parts = serializers.IntegerField(required=False, help_text="Parts the month is split in")


class DebtOutputSerializer(serializers.ModelSerializer):
    bank = serializers.CharField(source="bank_code")
    remaining = serializers.SerializerMethodField()
    rate = serializers.DecimalField(
        source="interest_rate", max_digits=7, decimal_places=3, allow_null=True
    )
    source = serializers.SerializerMethodField(
        help_text=(
            "How `remaining` is known: loan_account (the loan account's balance, exact) | "
            "estimate (principal, rate, start and the instalments seen) | unknown"
        )
    )
    remaining_basis = serializers.CharField(
        source="outstanding_basis", help_text="What `remaining` rests on, in words"
    )
    is_estimate = serializers.SerializerMethodField()
    limit = serializers.SerializerMethodField(help_text="Credit limit (credit cards)")
    next_payment_source = serializers.CharField(
        help_text="history (from the instalment debits) | estimate (annuity) | '' (unknown)"
    )
    payment_status = serializers.CharField(
        help_text="regular | stopped (no instalment for over a cycle) | repaid | ''"
    )
    payment_status_note = serializers.CharField()
    schedule = ScheduleRowOutputSerializer(source="payment_schedule", many=True)
    linked_account_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = ProductAgreement
        fields = [
            "id",
            "bank",
            "agreement_id",
            "product_type",
            "product_name",
            "currency",
            "principal",
            "remaining",
            "source",
            "remaining_basis",
            "is_estimate",
            "limit",
            "rate",
            "term_months",
            "start_date",
            "end_date",
            "linked_account_id",
            "monthly_payment",
            "next_payment_date",
            "next_payment_amount",
            "next_payment_source",
            "payment_status",
            "payment_status_note",
            "last_payment_date",
            "schedule",
        ]

    @extend_schema_field(serializers.DecimalField(**MONEY, allow_null=True))
    def get_remaining(self, agreement) -> str | None:
        remaining = debt_remaining(agreement)
        return None if remaining is None else f"{remaining:.2f}"

    def get_source(self, agreement) -> str:
        return debt_remaining_source(agreement)

    def get_is_estimate(self, agreement) -> bool:
        return debt_remaining_source(agreement) == OutstandingSource.ESTIMATE

    @extend_schema_field(serializers.DecimalField(**MONEY, allow_null=True))
    def get_limit(self, agreement) -> str | None:
        if agreement.product_type != "credit_card" or agreement.principal is None:
            return None
        return f"{agreement.principal:.2f}"


class DebtTotalOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    remaining = serializers.DecimalField(
        **MONEY, help_text="Known plus estimated outstanding (unknown balances not included)"
    )
    estimated = serializers.DecimalField(**MONEY, help_text="The estimated part of `remaining`")
    unknown_count = serializers.IntegerField(help_text="Debts whose balance is unknown")
    monthly_payment = serializers.DecimalField(**MONEY)
    count = serializers.IntegerField()


class DebtListOutputSerializer(serializers.Serializer):
    debts = DebtOutputSerializer(many=True)
    totals = DebtTotalOutputSerializer(many=True)


class NextPaymentOutputSerializer(serializers.Serializer):
    debt_id = serializers.IntegerField(source="id")
    bank = serializers.CharField(source="bank_code")
    agreement_id = serializers.CharField()
    product_name = serializers.CharField()
    currency = serializers.CharField()
    date = serializers.DateField(source="next_payment_date")
    amount = serializers.DecimalField(source="next_payment_amount", **MONEY, allow_null=True)
    source = serializers.CharField(source="next_payment_source")


class NextPaymentEnvelopeOutputSerializer(serializers.Serializer):
    next_payment = NextPaymentOutputSerializer(allow_null=True)
