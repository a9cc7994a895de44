"""What FinTrack stores about banks: tokens, connections, accounts, balances, transactions,
the product catalogue and the user's product agreements.

Money is `Decimal(18, 2)` beside a currency code; every datetime is timezone-aware (UTC).
Each row synced from a bank keeps the raw JSON that produced it, for the admin's
"how we interpret it" view.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from fintrack.core.fields import EncryptedTextField, VerbatimJSONField
from fintrack.core.models import TimeStampedModel

MONEY = {"max_digits": 18, "decimal_places": 2}


class BankCode(models.TextChoices):
    VBANK = "vbank", "VBank"
    ABANK = "abank", "ABank"
    SBANK = "sbank", "SBank"


class BankToken(models.Model):
    """The team's bank token at one bank (SPEC §2.1), encrypted at rest."""

    bank_code = models.CharField(max_length=16, choices=BankCode.choices, unique=True)
    access_token = EncryptedTextField()
    expires_at = models.DateTimeField()
    last_refreshed_at = models.DateTimeField()

    class Meta:
        db_table = "bank_tokens"

    def __str__(self) -> str:
        return f"{self.bank_code} token (expires {self.expires_at:%Y-%m-%d %H:%M})"


class ConnectionStatus(models.TextChoices):
    NOT_CONNECTED = "not_connected", "Not connected"
    CONSENT_PENDING = "consent_pending", "Consent pending"
    # Revoked, expired or rejected at the bank, or an approval that timed out: the user must
    # approve a new consent (status_reason says which).
    CONSENT_REQUIRED = "consent_required", "Consent required"
    SYNC_IN_PROGRESS = "sync_in_progress", "Sync in progress"
    # The bank failed (5xx, timeout, throttled); the sync waits until next_retry_at.
    RETRYING = "retrying", "Retrying"
    READY = "ready", "Ready"
    ERROR = "error", "Error"


class BankConnection(TimeStampedModel):
    """A user's link to one bank; its status moves only through `connection_transition`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bank_connections"
    )
    bank_code = models.CharField(max_length=16, choices=BankCode.choices)
    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.NOT_CONNECTED
    )
    last_sync_at = models.DateTimeField(null=True, blank=True, help_text="Last run, any outcome.")
    last_success_at = models.DateTimeField(
        null=True, blank=True, help_text="When data from this bank was last fresh."
    )
    last_error = models.TextField(blank=True, default="")
    status_reason = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text="Machine-readable reason of the status (consent_revoked, bank_unavailable, …).",
    )
    next_retry_at = models.DateTimeField(
        null=True, blank=True, help_text="While retrying: when the next attempt is due."
    )
    client_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Who the user is at this bank (e.g. team260-3), given when connecting.",
    )
    client_id_is_demo = models.BooleanField(
        default=False,
        help_text="A demo client proposed by FinTrack: only these may be self-signed (SPEC §3.4).",
    )
    consent_expires_at = models.DateTimeField(null=True, blank=True)
    quarantined_items_open = models.PositiveIntegerField(
        default=0,
        help_text="Bank items held in quarantine (sent malformed), retried by every sync.",
    )

    class Meta:
        db_table = "bank_connections"
        ordering = ["user_id", "bank_code"]
        constraints = [
            models.UniqueConstraint(fields=["user", "bank_code"], name="one_connection_per_bank"),
            # A bank client belongs to one FinTrack user (someone else's client id is refused).
            models.UniqueConstraint(
                fields=["bank_code", "client_id"],
                condition=~Q(client_id=""),
                name="one_user_per_bank_client",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.bank_code} ({self.status})"


class AccountType(models.TextChoices):
    CHECKING = "checking", "Checking"
    SAVINGS = "savings", "Savings"
    DEPOSIT = "deposit", "Deposit"
    LOAN = "loan", "Loan"
    CARD = "card", "Card"
    CREDIT_CARD = "credit_card", "Credit card"
    OTHER = "other", "Other"


# Which accounts count as what is decided here and nowhere else.
SPENDABLE_ACCOUNT_TYPES = frozenset({AccountType.CHECKING, AccountType.CARD})
SAVINGS_ACCOUNT_TYPES = frozenset({AccountType.SAVINGS, AccountType.DEPOSIT})
# For these the bank's balance (always "Credit", SPEC §4.3) is the outstanding debt.
DEBT_ACCOUNT_TYPES = frozenset({AccountType.LOAN, AccountType.CREDIT_CARD})


class Account(TimeStampedModel):
    """A bank account as listed by `GET /accounts` (SPEC §4.1)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="accounts"
    )
    connection = models.ForeignKey(
        BankConnection, on_delete=models.CASCADE, related_name="accounts"
    )
    bank_code = models.CharField(max_length=16, choices=BankCode.choices)
    bank_account_id = models.CharField(max_length=64)
    identification = models.CharField(
        max_length=64, blank=True, default="", help_text="Account number as the bank sends it."
    )
    masked_number = models.CharField(max_length=32, blank=True, default="")
    account_type = models.CharField(max_length=16, choices=AccountType.choices)
    bank_subtype = models.CharField(max_length=32, blank=True, default="")
    bank_status = models.CharField(max_length=32, blank=True, default="")
    currency = models.CharField(max_length=3, default="RUB")
    nickname = models.CharField(max_length=255, blank=True, default="")
    holder_name = models.CharField(max_length=255, blank=True, default="")
    opening_date = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Listed by the bank at the last successful sync."
    )
    current_balance = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="Latest InterimAvailable; for loan/credit-card accounts the outstanding debt.",
    )
    balance_as_of = models.DateTimeField(null=True, blank=True)
    transactions_synced_through = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Watermark: newest booking time stored by a successful sync.",
    )
    raw_json = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "accounts"
        ordering = ["bank_code", "bank_account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "bank_account_id"], name="account_unique_per_connection"
            ),
            # What transactions' composite foreign key (account, user) refers to (banking 0010).
            models.UniqueConstraint(fields=["id", "user"], name="account_id_user_unique"),
        ]
        indexes = [models.Index(fields=["user", "is_active"], name="account_user_active")]

    def __str__(self) -> str:
        return f"{self.bank_code} {self.masked_number or self.bank_account_id}"

    @property
    def is_spendable(self) -> bool:
        return self.account_type in SPENDABLE_ACCOUNT_TYPES

    @property
    def is_debt(self) -> bool:
        return self.account_type in DEBT_ACCOUNT_TYPES


class BalanceSnapshot(models.Model):
    """Balances of one account as read in one sync run (both bank balance types)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="balance_snapshots")
    sync_run = models.ForeignKey(
        "sync.SyncRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    available = models.DecimalField(**MONEY, null=True, blank=True)
    booked = models.DecimalField(**MONEY, null=True, blank=True)
    currency = models.CharField(max_length=3, default="RUB")
    as_of = models.DateTimeField(help_text="The bank's dateTime of the balance.")
    raw_json = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "balance_snapshots"
        ordering = ["-as_of", "-id"]
        indexes = [models.Index(fields=["account", "-as_of"], name="balance_account_asof")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.available} {self.currency} @ {self.as_of:%Y-%m-%d %H:%M}"


class CategoryKind(models.TextChoices):
    INCOME = "income", "Income"
    EXPENSE = "expense", "Expense"
    TRANSFER = "transfer", "Transfer"


class TransactionCategory(models.Model):
    """A spending/income category; the rows are seeded by a data migration."""

    code = models.SlugField(max_length=32, unique=True)
    name_en = models.CharField(max_length=64)
    name_ru = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=CategoryKind.choices)
    is_essential = models.BooleanField(
        default=False, help_text="Counts as essential spending for reserves and buffers."
    )

    class Meta:
        db_table = "transaction_categories"
        ordering = ["code"]
        verbose_name_plural = "transaction categories"

    def __str__(self) -> str:
        return self.code


# How the banks describe a loan instalment debit (the agreement's number follows).
LOAN_PAYMENT_PREFIXES = ("Платеж по кредиту №", "Платёж по кредиту №")


def loan_payment_description_q() -> models.Q:
    """Descriptions of loan instalments; the tx_loan_instalments index is built on this very Q."""
    condition = models.Q()
    for prefix in LOAN_PAYMENT_PREFIXES:
        condition |= models.Q(description__startswith=prefix)
    return condition


class CategorySource(models.TextChoices):
    """What decided a transaction's category; a user's correction outlives later syncs."""

    BANK_RULE = "bank_rule", "Built-in rule"
    USER = "user", "Set by the user"
    USER_RULE = "user_rule", "One of the user's rules"


class CategoryMatch(models.TextChoices):
    MERCHANT = "merchant", "Merchant name"
    DESCRIPTION = "description", "Description"


class CategoryRule(TimeStampedModel):
    """A user's own rule: rows whose merchant or description contains `pattern` get `category`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="category_rules"
    )
    match_kind = models.CharField(max_length=16, choices=CategoryMatch.choices)
    pattern = models.CharField(max_length=255, help_text="As the user typed it.")
    pattern_folded = models.CharField(
        max_length=255, help_text="banking.textfold.fold(pattern): what rows are matched against."
    )
    category = models.ForeignKey(TransactionCategory, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "category_rules"
        ordering = ["user_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "match_kind", "pattern_folded"], name="category_rule_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.match_kind}~{self.pattern_folded} → {self.category_id}"


class TransactionStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    PENDING = "pending", "Pending"
    DECLINED = "declined", "Declined"
    REFUNDED = "refunded", "Refunded"


class Transaction(TimeStampedModel):
    """One bank transaction; `amount` is signed (negative = money out)."""

    # The hottest table's writes pay for every index, so each one here serves a query: no
    # single-column FK index on user (tx_user_feed leads with it, for the feed and a user's
    # cascade delete) nor on account (the unique key and tx_account_feed lead with it).
    # Neither has a foreign key of its own: on PostgreSQL one composite key (account, user) →
    # accounts (id, user) checks both, and that the row's user is its account's user, in one
    # lookup per inserted row instead of two (banking 0010). SQLite has no such key (it cannot
    # add one to a table); Django's cascades still delete a user's or an account's rows.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="transactions",
        db_index=False,
        db_constraint=False,
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="transactions",
        db_index=False,
        db_constraint=False,
    )
    bank_code = models.CharField(max_length=16, choices=BankCode.choices)
    bank_transaction_id = models.CharField(max_length=128)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="RUB")
    booking_date = models.DateTimeField()
    value_date = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=TransactionStatus.choices, default=TransactionStatus.BOOKED
    )
    description = models.TextField(blank=True, default="")
    merchant_name = models.CharField(max_length=255, blank=True, default="")
    merchant_category = models.CharField(max_length=64, blank=True, default="")
    mcc = models.CharField(max_length=4, blank=True, default="")
    counterparty = models.CharField(max_length=255, blank=True, default="")
    bank_transaction_code = models.CharField(max_length=64, blank=True, default="")
    # No index: categories are seeded and never deleted (PROTECT is never checked in practice),
    # and the feed filters categories within a user's rows (tx_user_feed).
    category = models.ForeignKey(
        TransactionCategory,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # db_default too: a row COPYed or inserted without these columns still gets them.
    category_source = models.CharField(
        max_length=16,
        choices=CategorySource.choices,
        default=CategorySource.BANK_RULE,
        db_default=CategorySource.BANK_RULE,
    )
    note = models.TextField(blank=True, default="", db_default="")
    is_own_transfer = models.BooleanField(default=False)
    # Indexed by tx_transfer_pair (partial: only paired rows), for the SET NULL of a deleted twin.
    transfer_pair = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    # The item as the bank sent it; `json`, not `jsonb`: written for every row, only read whole.
    raw_json = VerbatimJSONField(default=dict, blank=True)
    # TimeStampedModel's, without its index: nothing filters or orders transactions by it.
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "transactions"
        ordering = ["-booking_date", "-id"]
        constraints = [
            # The idempotency key of the sync's upsert.
            models.UniqueConstraint(
                fields=["account", "bank_transaction_id"], name="transaction_unique_per_account"
            ),
        ]
        indexes = [
            # Keyset pagination of a user's feed: WHERE user=… AND (booking_date, id) < (…)
            # ORDER BY booking_date DESC, id DESC walks this index, however deep the page.
            models.Index(fields=["user", "-booking_date", "-id"], name="tx_user_feed"),
            models.Index(fields=["account", "-booking_date", "-id"], name="tx_account_feed"),
            # Each sync reads a year of the user's loan instalments (next payment, history): a
            # few rows among tens of thousands; the query repeats this condition so PostgreSQL
            # uses the index.
            models.Index(
                fields=["user", "booking_date"],
                name="tx_loan_instalments",
                condition=loan_payment_description_q(),
            ),
            # Each sync looks up an account's pending rows (their posted twins come under new
            # ids): without it that reads all of the account's rows; pending ones are few, so
            # the index is small and almost no insert touches it.
            models.Index(
                fields=["account"],
                name="tx_account_pending",
                condition=models.Q(status=TransactionStatus.PENDING),
            ),
            models.Index(
                fields=["transfer_pair"],
                name="tx_transfer_pair",
                condition=models.Q(transfer_pair__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bank_transaction_id} {self.amount} {self.currency}"


class AccountTransactionCount(models.Model):
    """How many transactions an account has stored, kept by the database itself.

    Statement-level triggers on `transactions` (banking 0017) add the rows every INSERT or COPY
    stores and take off those every DELETE removes, in the statement's own transaction, whatever
    path wrote them (a sync, the API, a user's deletion, the admin); a TRUNCATE empties this
    table. An incremental sync's completeness check (`TransactionWriter.stored_count`) reads it
    instead of counting the account's rows: one key lookup instead of a scan of thousands. The
    check trusts it only when it says exactly what the bank counts; otherwise the rows are
    counted, and a count that differs puts the right figure back (logged).
    No row: nothing stored yet. A transaction never changes account (nothing updates account_id).
    """

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="transaction_count"
    )
    stored = models.BigIntegerField(default=0)

    class Meta:
        db_table = "account_transaction_counts"

    def __str__(self) -> str:
        return f"account {self.account_id}: {self.stored} transactions"


class QuarantinedBankItem(models.Model):
    """A transaction item the bank sent malformed, kept as sent until a sync stores it.

    Written by banking.ingestion only. While it is open (`resolved_at` null) its account's
    watermark stays at or below its booking time, so each sync reads it again; it is resolved
    when the bank sends the row well-formed (stored as any other) or no longer lists it.
    """

    connection = models.ForeignKey(
        BankConnection, on_delete=models.CASCADE, related_name="quarantined_items"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="quarantined_items")
    # The bank's id when the item has a usable one, else "sha256:" and a digest of its JSON.
    item_key = models.CharField(max_length=136)
    bank_transaction_id = models.CharField(
        max_length=128, blank=True, default="", help_text="The bank's id, when readable."
    )
    booking_date = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Its booking time, when readable (what the watermark keeps).",
    )
    reason = models.CharField(max_length=300, help_text="Why it could not be stored as sent.")
    raw_json = models.JSONField(default=dict, blank=True, help_text="The item as the bank sent it.")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    times_seen = models.PositiveIntegerField(default=1, help_text="Syncs that read it malformed.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(
        max_length=32, blank=True, default="", help_text="stored, or no longer listed."
    )

    class Meta:
        db_table = "quarantined_bank_items"
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "item_key"], name="quarantined_item_unique_per_account"
            ),
        ]
        indexes = [
            # Each sync reads its accounts' open items; few, and the index holds only those.
            models.Index(
                fields=["account"],
                name="quarantine_open_by_account",
                condition=Q(resolved_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bank_transaction_id or self.item_key[:24]} ({self.reason[:40]})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class TransactionAggregate(models.Model):
    """Per user, day, category and currency: income and spending, maintained by the sync."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="transaction_aggregates"
    )
    date = models.DateField()
    category = models.ForeignKey(
        TransactionCategory,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Uncategorised transactions count under 'other' / 'other_income'.",
    )
    currency = models.CharField(max_length=3, default="RUB")
    income = models.DecimalField(**MONEY, default=0)
    spending = models.DecimalField(**MONEY, default=0, help_text="Positive number.")
    transaction_count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "transaction_aggregates"
        ordering = ["-date"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "date", "category", "currency"],
                name="aggregate_unique_day_category",
            ),
        ]
        indexes = [models.Index(fields=["user", "date"], name="aggregate_user_date")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.date} {self.category_id}: +{self.income} -{self.spending}"


class AccountSummary(models.Model):
    """Per user and currency: totals refreshed after each sync, for fast answers."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_summaries"
    )
    currency = models.CharField(max_length=3, default="RUB")
    spendable_total = models.DecimalField(**MONEY, default=0)
    savings_total = models.DecimalField(**MONEY, default=0)
    debt_total = models.DecimalField(**MONEY, default=0)
    accounts_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "account_summaries"
        verbose_name_plural = "account summaries"
        constraints = [
            models.UniqueConstraint(fields=["user", "currency"], name="summary_unique_currency"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.currency}: {self.spendable_total}"


class BankProduct(models.Model):
    """A bank's public product catalogue entry (SPEC §5), cached."""

    bank_code = models.CharField(max_length=16, choices=BankCode.choices)
    product_id = models.CharField(max_length=64)
    product_type = models.CharField(max_length=32)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    interest_rate = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    min_amount = models.DecimalField(**MONEY, null=True, blank=True)
    max_amount = models.DecimalField(**MONEY, null=True, blank=True)
    term_months = models.PositiveIntegerField(null=True, blank=True)
    raw_json = models.JSONField(default=dict, blank=True)
    fetched_at = models.DateTimeField()

    class Meta:
        db_table = "bank_products"
        ordering = ["bank_code", "product_type", "name"]
        constraints = [
            models.UniqueConstraint(fields=["bank_code", "product_id"], name="product_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.bank_code} {self.name}"


class NextPaymentSource(models.TextChoices):
    HISTORY = "history", "From instalment history"
    ESTIMATE = "estimate", "Annuity estimate"


class OutstandingSource(models.TextChoices):
    LOAN_ACCOUNT = "loan_account", "Balance of the linked loan account"
    ESTIMATE = "estimate", "Estimated from principal, rate, start and instalments"
    UNKNOWN = "unknown", "Not knowable from what the bank gives"


class PaymentStatus(models.TextChoices):
    REGULAR = "regular", "Instalments arriving"
    STOPPED = "stopped", "No instalment seen for more than a cycle"
    REPAID = "repaid", "Repaid (a lump sum covered the balance)"


class ProductAgreement(TimeStampedModel):
    """A user's deposit, loan or card at a bank (SPEC §7); schedule and next payment are ours."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="product_agreements"
    )
    connection = models.ForeignKey(
        BankConnection, on_delete=models.CASCADE, related_name="agreements"
    )
    bank_code = models.CharField(max_length=16, choices=BankCode.choices)
    agreement_id = models.CharField(max_length=64)
    product_id = models.CharField(max_length=64, blank=True, default="")
    product_type = models.CharField(max_length=32)
    product_name = models.CharField(max_length=255, blank=True, default="")
    principal = models.DecimalField(**MONEY, null=True, blank=True)
    currency = models.CharField(max_length=3, default="RUB")
    interest_rate = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    term_months = models.PositiveIntegerField(null=True, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    account_number = models.CharField(max_length=64, blank=True, default="")
    linked_account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="agreements"
    )
    remaining_balance = models.DecimalField(**MONEY, null=True, blank=True)
    status = models.CharField(max_length=16, default="active")
    payment_schedule = models.JSONField(default=list, blank=True)
    monthly_payment = models.DecimalField(**MONEY, null=True, blank=True)
    next_payment_date = models.DateField(null=True, blank=True)
    next_payment_amount = models.DecimalField(**MONEY, null=True, blank=True)
    next_payment_source = models.CharField(
        max_length=16, choices=NextPaymentSource.choices, blank=True, default=""
    )
    # What is still owed and how FinTrack knows it (SPEC §7.3): a loan account's balance, an
    # estimate from principal, rate, start and the instalments seen, or unknown (cards).
    outstanding = models.DecimalField(**MONEY, null=True, blank=True)
    outstanding_source = models.CharField(
        max_length=16, choices=OutstandingSource.choices, blank=True, default=""
    )
    outstanding_basis = models.CharField(max_length=255, blank=True, default="")
    # Whether the instalments keep arriving ("Платеж по кредиту №…" debits).
    payment_status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, blank=True, default=""
    )
    payment_status_note = models.CharField(max_length=255, blank=True, default="")
    last_payment_date = models.DateField(null=True, blank=True)
    raw_json = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "product_agreements"
        ordering = ["bank_code", "-start_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "agreement_id"], name="agreement_unique_per_connection"
            ),
        ]
        indexes = [
            models.Index(
                fields=["user", "product_type"],
                name="agreement_user_type",
                condition=Q(status="active"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.bank_code} {self.agreement_id} {self.product_type}"


class CircuitStatus(models.TextChoices):
    CLOSED = "closed", "Closed (calls go through)"
    OPEN = "open", "Open (calls fail at once)"
    HALF_OPEN = "half_open", "Half-open (one probe call)"


class BankCircuitState(models.Model):
    """The last change of a bank's circuit breaker (banking/clients/circuit.py), for the admin.

    Written on each change of state, never on each call: the state itself lives in the cache,
    shared by every worker; this row is its record (when it opened, why, when it probes next).
    """

    bank_code = models.CharField(max_length=16, choices=BankCode.choices, unique=True)
    status = models.CharField(
        max_length=16, choices=CircuitStatus.choices, default=CircuitStatus.CLOSED
    )
    # Failed calls in a row that opened it; how many times in a row it opened (failed probes).
    failures = models.PositiveIntegerField(default=0)
    trips = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    next_probe_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True, default="")
    changed_at = models.DateTimeField()

    class Meta:
        db_table = "bank_circuit_states"
        ordering = ["bank_code"]

    def __str__(self) -> str:
        return f"{self.bank_code} circuit {self.status}"
