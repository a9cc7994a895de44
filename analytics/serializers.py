"""Response shapes of the analytics API (documented for OpenAPI; the payloads are plain JSON),
and of the debts API (/api/debts: banking's agreements with what is still owed on each)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from banking.models import OutstandingSource, ProductAgreement
from banking.selectors.debts import debt_remaining, debt_remaining_source
from banking.serializers.common import bank_code_field

MONEY = {"max_digits": 18, "decimal_places": 2, "coerce_to_string": True}
INTEREST_RATE = {"max_digits": 7, "decimal_places": 3, "coerce_to_string": True}
INTEREST_RATE_HELP = 'Percent a year, three decimals ("9.300"); null when unknown.'


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="income_overdue | no_recent_rows | …")
    message = serializers.CharField()


class HistoryBasisMixin(serializers.Serializer):
    """Present while a bank's history still loads, on figures that rest on long history."""

    is_estimate = serializers.BooleanField(required=False)
    basis = serializers.CharField(required=False, help_text="history_loading")
    history_from = serializers.DateField(
        required=False, allow_null=True, help_text="The first day of the history they rest on."
    )
    basis_note = serializers.CharField(required=False)


class HistoryBankSerializer(serializers.Serializer):
    bank_code = bank_code_field()
    state = serializers.ChoiceField(choices=["loading", "complete"])
    complete_from = serializers.DateField(allow_null=True)


class HistorySerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["loading", "complete"],
        help_text="loading: a first sync stored the newest days and backfills the rest (or a "
        "failed backfill waits for the next sync).",
    )
    complete_from = serializers.DateField(
        allow_null=True, help_text="While loading: the first day whose rows are all stored."
    )
    loading_banks = serializers.ListField(child=serializers.CharField())
    banks = HistoryBankSerializer(many=True)


class StsSummarySerializer(HistoryBasisMixin):
    status = serializers.ChoiceField(choices=["ok", "shortfall", "no_income"])
    period = serializers.DecimalField(
        **MONEY, help_text="max(0, low point − reserve) over the horizon."
    )
    daily = serializers.DecimalField(**MONEY, help_text="STS period / horizon days.")
    shortfall = serializers.DecimalField(**MONEY, help_text="reserve − low point when above 0.")
    currency = serializers.CharField()
    horizon_days = serializers.IntegerField(help_text="Days to the next main income (1–31).")
    next_income_date = serializers.DateField(allow_null=True)
    confidence = serializers.ChoiceField(choices=["high", "medium", "low"])
    reasons = ReasonSerializer(many=True, required=False, help_text="Why it is less sure.")


class IndicatorSummarySerializer(HistoryBasisMixin):
    code = serializers.CharField()
    has_data = serializers.BooleanField()
    value = serializers.CharField(allow_null=True, help_text="Decimal as a string.")
    score = serializers.IntegerField(allow_null=True, min_value=0, max_value=100)
    band = serializers.ChoiceField(choices=["healthy", "coping", "vulnerable", "no_data"])
    explanation = serializers.CharField()


class HealthSummarySerializer(HistoryBasisMixin):
    score = serializers.IntegerField(allow_null=True, min_value=0, max_value=100)
    band = serializers.ChoiceField(choices=["healthy", "coping", "vulnerable", "no_data"])
    indicators = IndicatorSummarySerializer(many=True)


class NextPaymentItemSerializer(serializers.Serializer):
    label = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)
    currency = serializers.CharField()
    date = serializers.DateField(help_text="Your local day.")
    kind = serializers.ChoiceField(choices=["loan_instalment", "bill"])
    source = serializers.ChoiceField(
        choices=["agreement", "history", "recurring"],
        help_text="agreement: the loan's schedule; history: instalments seen in the history "
        "(a part in progress, a loan whose agreement the bank does not serve); recurring: a bill.",
    )
    schedule_source = serializers.CharField(help_text="The agreement's schedule basis.")
    bank_code = bank_code_field(allow_blank=True, help_text="Empty for a bill.")
    bank_agreement_id = serializers.CharField(
        help_text="The bank's agreement id; empty for a bill."
    )
    debt_id = serializers.IntegerField(allow_null=True, help_text="The debt in /api/debts.")


class NextPaymentSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The nearest due date on or after today (local).")
    amount = serializers.DecimalField(**MONEY, help_text="Everything due that day.")
    currency = serializers.CharField()
    due_in_7_days = serializers.DecimalField(**MONEY, help_text="Due today … today + 6.")
    due_in_7_days_until = serializers.DateField()
    items = NextPaymentItemSerializer(many=True)
    # The main item, for screens that show one line.
    bank_agreement_id = serializers.CharField()
    debt_id = serializers.IntegerField(allow_null=True)
    label = serializers.CharField(
        help_text="The main item's label (a loan's product name, a bill)."
    )
    bank_code = bank_code_field(allow_blank=True)
    overdue = serializers.BooleanField()
    source = serializers.CharField()


class NextPaymentEnvelopeSerializer(serializers.Serializer):
    """GET /api/debts/next-payment: the snapshot's next payment, as the dashboard shows it."""

    next_payment = NextPaymentSerializer(
        allow_null=True, help_text="The dashboard's debt.next_payment; null when nothing is due."
    )


class SavingsItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["deposit", "savings_account"])
    bank_code = bank_code_field()
    bank_agreement_id = serializers.CharField(help_text="A deposit's agreement id at the bank.")
    account_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="A savings account's id."
    )
    name = serializers.CharField(help_text="The deposit's product name, or the account's name.")
    amount = serializers.DecimalField(**MONEY)
    currency = serializers.CharField()
    interest_rate = serializers.DecimalField(
        **INTEREST_RATE, allow_null=True, help_text=INTEREST_RATE_HELP
    )
    start_date = serializers.DateField(
        allow_null=True, help_text="The deposit's start or the account's opening (local day)."
    )
    source = serializers.CharField(help_text="What amount is: agreement.principal, a balance.")


class SavingsSerializer(serializers.Serializer):
    total = serializers.DecimalField(**MONEY, help_text="Deposits and savings, each once.")
    currency = serializers.CharField()
    note = serializers.CharField()
    items = SavingsItemSerializer(many=True)


class DebtSummarySerializer(HistoryBasisMixin):
    total = serializers.DecimalField(**MONEY)
    monthly_service = serializers.DecimalField(**MONEY)
    currency = serializers.CharField()
    next_payment = NextPaymentSerializer(allow_null=True)


class TotalsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    spendable_total = serializers.DecimalField(**MONEY)
    savings_total = serializers.DecimalField(**MONEY)
    debt_total = serializers.DecimalField(**MONEY)
    updated_at = serializers.DateTimeField(allow_null=True)


class DashboardAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bank_code = bank_code_field()
    account_type = serializers.CharField()
    masked_number = serializers.CharField()
    nickname = serializers.CharField()
    currency = serializers.CharField()
    balance = serializers.DecimalField(**MONEY, allow_null=True)
    balance_as_of = serializers.DateTimeField(allow_null=True)


class DashboardBankSerializer(serializers.Serializer):
    bank_code = bank_code_field()
    status = serializers.CharField()
    status_reason = serializers.CharField(help_text="Machine-readable why of the status.")
    status_message = serializers.CharField(help_text="What the status means, for a person.")
    next_retry_at = serializers.DateTimeField(
        allow_null=True, help_text="While retrying: when the next attempt is due."
    )
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_sync_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    consent_state = serializers.CharField(help_text="valid | expiring_soon | expired | none")
    consent_expires_at = serializers.DateTimeField(allow_null=True)
    consent_days_left = serializers.IntegerField(allow_null=True)
    product_consent_state = serializers.CharField()
    product_consent_expires_at = serializers.DateTimeField(allow_null=True)
    product_consent_days_left = serializers.IntegerField(allow_null=True)
    consent_expiring = serializers.BooleanField(
        help_text="The account or the product consent expires within CONSENT_EXPIRY_WARNING_DAYS."
    )


class DashboardTransactionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account_id = serializers.IntegerField()
    bank_code = bank_code_field()
    amount = serializers.DecimalField(**MONEY, help_text="Signed: negative = money out.")
    currency = serializers.CharField()
    booking_date = serializers.DateTimeField()
    local_date = serializers.DateField(help_text="The booking day in your time zone.")
    status = serializers.CharField()
    description = serializers.CharField()
    merchant_name = serializers.CharField(
        help_text="The merchant without the city, as the transactions feed names it."
    )
    is_own_transfer = serializers.BooleanField()
    category_code = serializers.CharField(allow_null=True)
    category_name_en = serializers.CharField(allow_null=True)
    category_name_ru = serializers.CharField(allow_null=True)


class TopCategorySerializer(serializers.Serializer):
    category_code = serializers.CharField(allow_null=True)
    category_name_en = serializers.CharField(allow_null=True)
    category_name_ru = serializers.CharField(allow_null=True)
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
    history = HistorySerializer(
        allow_null=True, help_text="Whether every bank's history is stored (null: no snapshot)."
    )


class AnalyticsBreakdownSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["ready", "no_data"])
    snapshot_id = serializers.IntegerField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    data_fresh_as_of = serializers.DateTimeField(allow_null=True)
    currency = serializers.CharField()
    history = HistorySerializer(
        allow_null=True, help_text="Whether every bank's history is stored (null: no snapshot)."
    )
    breakdown = serializers.JSONField(
        allow_null=True,
        help_text="sts (every term and the daily path), health (every indicator), debt, "
        "forecast (30 days with events and assumptions), recurring flows, monthly figures, "
        "freshness, in the computation's own terms (agreement_id: the bank's agreement id). "
        "Decimals are strings at the computation's precision; timestamps are UTC with Z.",
    )


class RecomputeAcceptedSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["scheduled"])
    message = serializers.CharField()


# --- Debts (/api/debts) --------------------------------------------------------------------------


class ScheduleRowOutputSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The day it will be debited (your local day)")
    amount = serializers.DecimalField(**MONEY)
    currency = serializers.CharField(help_text="The debt's currency.")
    principal = serializers.DecimalField(**MONEY, allow_null=True, required=False)
    interest = serializers.DecimalField(**MONEY, allow_null=True, required=False)
    remaining = serializers.DecimalField(**MONEY, allow_null=True, required=False)
    part = serializers.IntegerField(
        required=False, help_text="Which part of the month's instalment (split debits)"
    )
    parts = serializers.IntegerField(required=False, help_text="Parts the month is split in")


class DebtOutputSerializer(serializers.ModelSerializer):
    bank_code = bank_code_field()
    bank_agreement_id = serializers.CharField(source="agreement_id")
    remaining = serializers.SerializerMethodField()
    interest_rate = serializers.DecimalField(
        **INTEREST_RATE, allow_null=True, help_text=INTEREST_RATE_HELP
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
    schedule = serializers.SerializerMethodField()
    linked_account_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = ProductAgreement
        fields = [
            "id",
            "bank_code",
            "bank_agreement_id",
            "product_type",
            "product_name",
            "currency",
            "principal",
            "remaining",
            "source",
            "remaining_basis",
            "is_estimate",
            "limit",
            "interest_rate",
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

    @extend_schema_field(ScheduleRowOutputSerializer(many=True))
    def get_schedule(self, agreement) -> list:
        # Each row with money names its currency: the debt's.
        rows = [{**row, "currency": agreement.currency} for row in agreement.payment_schedule or []]
        return ScheduleRowOutputSerializer(rows, many=True).data

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
