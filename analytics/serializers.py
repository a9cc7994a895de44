"""Response shapes of the analytics API (documented for OpenAPI; the payloads are plain JSON),
and of the debts API (/api/debts: banking's agreements with what is still owed on each)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from banking.models import OutstandingSource, ProductAgreement
from banking.selectors.debts import debt_remaining, debt_remaining_source

MONEY = {"max_digits": 18, "decimal_places": 2, "coerce_to_string": True}


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="income_overdue | no_recent_rows | …")
    message = serializers.CharField()


class StsSummarySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "shortfall", "no_income"])
    period = serializers.DecimalField(
        **MONEY, help_text="max(0, low point − reserve) over the horizon."
    )
    daily = serializers.DecimalField(**MONEY, help_text="STS period / horizon days.")
    shortfall = serializers.DecimalField(**MONEY, help_text="reserve − low point when above 0.")
    horizon_days = serializers.IntegerField(help_text="Days to the next main income (1–31).")
    next_income_date = serializers.DateField(allow_null=True)
    confidence = serializers.ChoiceField(choices=["high", "medium", "low"])
    reasons = ReasonSerializer(many=True, required=False, help_text="Why it is less sure.")


class IndicatorSummarySerializer(serializers.Serializer):
    code = serializers.CharField()
    has_data = serializers.BooleanField()
    value = serializers.CharField(allow_null=True, help_text="Decimal as a string.")
    score = serializers.IntegerField(allow_null=True, min_value=0, max_value=100)
    band = serializers.ChoiceField(choices=["healthy", "coping", "vulnerable", "no_data"])
    explanation = serializers.CharField()


class HealthSummarySerializer(serializers.Serializer):
    score = serializers.IntegerField(allow_null=True, min_value=0, max_value=100)
    band = serializers.ChoiceField(choices=["healthy", "coping", "vulnerable", "no_data"])
    indicators = IndicatorSummarySerializer(many=True)


class NextPaymentItemSerializer(serializers.Serializer):
    label = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)
    date = serializers.DateField()
    kind = serializers.ChoiceField(choices=["loan_instalment", "bill"])
    source = serializers.ChoiceField(
        choices=["agreement", "history", "recurring"],
        help_text="agreement: the loan's schedule; history: instalments seen in the history "
        "(a part in progress, a loan whose agreement the bank does not serve); recurring: a bill.",
    )
    schedule_source = serializers.CharField(help_text="The agreement's schedule basis.")
    bank_code = serializers.CharField()
    agreement_id = serializers.CharField()
    debt_id = serializers.IntegerField(allow_null=True)


class NextPaymentSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The nearest due date on or after today.")
    amount = serializers.DecimalField(**MONEY, help_text="Everything due that day.")
    due_in_7_days = serializers.DecimalField(**MONEY, help_text="Due today … today + 6.")
    due_in_7_days_until = serializers.DateField()
    items = NextPaymentItemSerializer(many=True)
    agreement_id = serializers.CharField()
    debt_id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    bank_code = serializers.CharField()
    overdue = serializers.BooleanField()
    source = serializers.CharField()


class NextPaymentEnvelopeSerializer(serializers.Serializer):
    """GET /api/debts/next-payment: the snapshot's next payment, as the dashboard shows it."""

    next_payment = serializers.JSONField(
        allow_null=True,
        help_text="date, amount (all due that day), due_in_7_days, items, and for one-line "
        "screens debt_id, bank, agreement_id, product_name, currency, source.",
    )


class SavingsItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["deposit", "savings_account"])
    bank_code = serializers.CharField()
    agreement_id = serializers.CharField()
    name = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)


class SavingsSerializer(serializers.Serializer):
    total = serializers.DecimalField(**MONEY, help_text="Deposits and savings, each once.")
    items = SavingsItemSerializer(many=True)


class DebtSummarySerializer(serializers.Serializer):
    total = serializers.DecimalField(**MONEY)
    monthly_service = serializers.DecimalField(**MONEY)
    next_payment = NextPaymentSerializer(allow_null=True)


class TotalsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    spendable_total = serializers.DecimalField(**MONEY)
    savings_total = serializers.DecimalField(**MONEY)
    debt_total = serializers.DecimalField(**MONEY)
    updated_at = serializers.DateTimeField(allow_null=True)


class DashboardAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bank_code = serializers.CharField()
    account_type = serializers.CharField()
    masked_number = serializers.CharField()
    nickname = serializers.CharField()
    currency = serializers.CharField()
    current_balance = serializers.DecimalField(**MONEY, allow_null=True)
    balance_as_of = serializers.DateTimeField(allow_null=True)


class DashboardBankSerializer(serializers.Serializer):
    bank_code = serializers.CharField()
    status = serializers.CharField()
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_sync_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()


class DashboardTransactionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account_id = serializers.IntegerField()
    bank_code = serializers.CharField()
    amount = serializers.DecimalField(**MONEY, help_text="Signed: negative = money out.")
    currency = serializers.CharField()
    booking_date = serializers.DateTimeField()
    status = serializers.CharField()
    description = serializers.CharField()
    merchant_name = serializers.CharField()
    is_own_transfer = serializers.BooleanField()
    category__code = serializers.CharField(allow_null=True)


class TopCategorySerializer(serializers.Serializer):
    category__code = serializers.CharField(allow_null=True)
    category__name_en = serializers.CharField(allow_null=True)
    category__name_ru = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    total = serializers.DecimalField(**MONEY)


class DashboardSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["ready", "no_data"])
    message = serializers.CharField()
    recomputing = serializers.BooleanField(help_text="A recomputation is scheduled.")
    outdated = serializers.BooleanField(
        help_text="A sync finished after this snapshot was computed; a new one is coming."
    )
    snapshot_id = serializers.IntegerField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    data_fresh_as_of = serializers.DateTimeField(allow_null=True)
    currency = serializers.CharField()
    sts = StsSummarySerializer(allow_null=True)
    health = HealthSummarySerializer(allow_null=True)
    debt = DebtSummarySerializer(allow_null=True)
    savings = SavingsSerializer(
        allow_null=True, help_text="Deposits and savings, apart from spendable money."
    )
    totals = TotalsSerializer(many=True, help_text="As of the snapshot.")
    accounts = DashboardAccountSerializer(many=True, help_text="As of the snapshot.")
    banks = DashboardBankSerializer(many=True, help_text="Live statuses.")
    recent_transactions = DashboardTransactionSerializer(many=True)
    top_categories = TopCategorySerializer(many=True)


class AnalyticsBreakdownSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["ready", "no_data"])
    snapshot_id = serializers.IntegerField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    data_fresh_as_of = serializers.DateTimeField(allow_null=True)
    currency = serializers.CharField()
    breakdown = serializers.JSONField(
        allow_null=True,
        help_text="sts (every term and the daily path), health (every indicator), debt, "
        "forecast (30 days with events and assumptions), recurring flows, monthly figures, "
        "freshness. Decimals are strings.",
    )


class RecomputeAcceptedSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["scheduled"])
    message = serializers.CharField()


# --- Debts (/api/debts) --------------------------------------------------------------------------


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
