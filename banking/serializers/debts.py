"""Serializers of the debts API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from banking.models import ProductAgreement
from banking.selectors.debts import debt_remaining

MONEY = {"max_digits": 18, "decimal_places": 2}


class ScheduleRowOutputSerializer(serializers.Serializer):
    date = serializers.DateField()
    amount = serializers.DecimalField(**MONEY)
    principal = serializers.DecimalField(**MONEY)
    interest = serializers.DecimalField(**MONEY)
    remaining = serializers.DecimalField(**MONEY)


class DebtOutputSerializer(serializers.ModelSerializer):
    bank = serializers.CharField(source="bank_code")
    remaining = serializers.SerializerMethodField()
    rate = serializers.DecimalField(
        source="interest_rate", max_digits=7, decimal_places=3, allow_null=True
    )
    source = serializers.CharField(
        source="next_payment_source",
        help_text="history (from the instalment debits) | estimate (annuity) | '' (unknown)",
    )
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
            "rate",
            "term_months",
            "start_date",
            "end_date",
            "linked_account_id",
            "monthly_payment",
            "next_payment_date",
            "next_payment_amount",
            "source",
            "schedule",
        ]

    @extend_schema_field(serializers.DecimalField(**MONEY, allow_null=True))
    def get_remaining(self, agreement) -> str | None:
        remaining = debt_remaining(agreement)
        return None if remaining is None else f"{remaining:.2f}"


class DebtTotalOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    remaining = serializers.DecimalField(**MONEY)
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
