"""Banking console: tokens, and every synced row beside the bank JSON behind it.

Rows synced from banks are read-only here: the sync owns them, and an edit by hand would be
overwritten by the next run (or leave aggregates and summaries disagreeing with transactions).
The connections' console (status, recent runs, "sync now") is sync's: sync/admin.py registers
BankConnection, so banking imports nothing of the sync above it.
"""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.admin_actions import ServiceActionMixin
from banking.categorization import (
    RULE_DEFAULT,
    RULE_DESCRIPTION,
    RULE_KNOWN_MERCHANT,
    RULE_MCC,
    RULE_MERCHANT_CATEGORY,
    RULE_MERCHANT_CREDIT,
    category_decision_for,
    income_kind_of,
)
from banking.models import (
    Account,
    AccountSummary,
    AccountTransactionCount,
    BalanceSnapshot,
    BankCircuitState,
    BankProduct,
    BankToken,
    CategoryRule,
    CategorySource,
    ProductAgreement,
    QuarantinedBankItem,
    Transaction,
    TransactionAggregate,
    TransactionCategory,
)
from banking.services.circuits import bank_circuit_close, bank_circuit_live
from banking.textfold import merchant_display_name
from fintrack.core.admin import (
    BigTableAdminMixin,
    ChangelistDeferMixin,
    ConsolePanelMixin,
    DerivedField,
    JsonPath,
    ReadOnlyAdminMixin,
    admin_changelist_url,
    admin_datetime,
    admin_link,
    derived_fields_table,
    highlighted_json,
    json_field,
    raw_beside_normalised,
    side_by_side,
    used_json_paths,
)
from fintrack.core.localtime import local_date, user_zone

raw_json_pretty = json_field("raw_json", "Raw bank JSON")
payment_schedule_pretty = json_field("payment_schedule", "Payment schedule (ours)")


def _readonly_from_fieldsets(fieldsets) -> list:
    return [field for _name, options in fieldsets for field in options["fields"]]


@admin.register(BankToken)
class BankTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The token itself is never shown: only its bank and expiry."""

    list_display = ["bank_code", "expires_at", "last_refreshed_at", "is_expired"]
    list_filter = ["bank_code"]
    search_fields = ["bank_code"]
    date_hierarchy = "last_refreshed_at"
    ordering = ["-last_refreshed_at"]
    fields = ["bank_code", "expires_at", "last_refreshed_at", "is_expired"]
    readonly_fields = fields

    def get_queryset(self, request):
        # Never even decrypt the token for the admin.
        return super().get_queryset(request).defer("access_token")

    @admin.display(boolean=True, description="expired")
    def is_expired(self, obj: BankToken) -> bool:
        return obj.expires_at <= timezone.now()


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, ChangelistDeferMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "bank_code",
        "masked_number",
        "account_type",
        "nickname",
        "user",
        "current_balance",
        "currency",
        "balance_as_of",
        "is_active",
    ]
    list_filter = ["bank_code", "account_type", "is_active", "currency"]
    search_fields = ["=bank_account_id", "=identification", "=user__email", "nickname"]
    search_help_text = "Exact bank account id, account number or user email; or the nickname."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user", "connection"]
    changelist_defer = ("raw_json",)
    fieldsets = raw_beside_normalised(
        [
            "user",
            "connection",
            "bank_code",
            "bank_account_id",
            "identification",
            "masked_number",
            "account_type",
            "bank_subtype",
            "bank_status",
            "currency",
            "nickname",
            "holder_name",
            "opening_date",
            "is_active",
            "current_balance",
            "balance_as_of",
            "transactions_synced_through",
            "related_rows",
        ],
        raw=raw_json_pretty,
        extra=[("Timestamps", {"fields": ("created_at", "updated_at")})],
    )
    readonly_fields = _readonly_from_fieldsets(fieldsets)

    @admin.display(description="data")
    def related_rows(self, obj: Account):
        links = [
            (admin_changelist_url(Transaction, account__id__exact=obj.pk), "transactions"),
            (admin_changelist_url(BalanceSnapshot, account__id__exact=obj.pk), "balance readings"),
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)


@admin.register(BalanceSnapshot)
class BalanceSnapshotAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ["id", "as_of", "account", "available", "booked", "currency", "sync_run"]
    list_filter = ["account__bank_code"]
    search_fields = ["=account__bank_account_id", "=account__user__email"]
    search_help_text = "Exact bank account id or user email."
    date_hierarchy = "as_of"
    ordering = ["-as_of", "-id"]
    list_select_related = ["account", "sync_run"]
    changelist_defer = ("raw_json",)
    fieldsets = raw_beside_normalised(
        ["account", "sync_run", "available", "booked", "currency", "as_of", "created_at"],
        raw=raw_json_pretty,
    )
    readonly_fields = _readonly_from_fieldsets(fieldsets)


@admin.register(TransactionCategory)
class TransactionCategoryAdmin(admin.ModelAdmin):
    """Reference data seeded by a migration: names and the essential flag may be edited."""

    list_display = ["code", "name_en", "name_ru", "kind", "is_essential"]
    list_filter = ["kind", "is_essential"]
    search_fields = ["code", "name_en", "name_ru"]
    ordering = ["code"]

    def get_readonly_fields(self, request, obj=None):
        # Code and kind are what categorisation and aggregates key on.
        return ["code", "kind"] if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # transactions and aggregates reference categories (PROTECT)


@admin.register(CategoryRule)
class CategoryRuleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Users' own rules: they change them through the API (which re-categorises), not here."""

    list_display = ["user", "match_kind", "pattern", "category", "updated_at"]
    list_filter = ["match_kind", "category"]
    search_fields = ["=user__email", "pattern_folded"]
    ordering = ["-updated_at", "-id"]
    list_select_related = ["user", "category"]


# Which of the bank's JSON keys each built-in categorisation rule reads (banking.categorization).
_RULE_SOURCES: dict[str, tuple[JsonPath, ...]] = {
    RULE_MCC: (("merchant", "mccCode"),),
    RULE_MERCHANT_CATEGORY: (("merchant", "category"),),
    RULE_MERCHANT_CREDIT: (
        ("creditDebitIndicator",),
        ("merchant", "mccCode"),
        ("merchant", "category"),
        ("transactionInformation",),
    ),
    RULE_KNOWN_MERCHANT: (("transactionInformation",),),
    RULE_DESCRIPTION: (("transactionInformation",),),
    RULE_DEFAULT: (("creditDebitIndicator",),),
}


def _category_reading(transaction: Transaction) -> DerivedField:
    category = transaction.category
    value = f"{category.code} — {category.name_en} / {category.name_ru}" if category else ""
    source = getattr(transaction, "category_source", CategorySource.BANK_RULE)
    if source != CategorySource.BANK_RULE:
        label = CategorySource(source).label if source in CategorySource.values else source
        return DerivedField("category", "Category", value, how=f"{label}: kept by every later sync")
    decision = category_decision_for(
        description=transaction.description,
        mcc=transaction.mcc,
        merchant_category=transaction.merchant_category,
        amount=transaction.amount,
    )
    how = f"built-in rule “{decision.rule}” → {decision.code}"
    if category is not None and decision.code != category.code:
        how += f" (stored: {category.code}, decided by an earlier rule set)"
    sources = _RULE_SOURCES.get(decision.rule.partition(":")[0], ())
    return DerivedField("category", "Category", value, sources, how)


def transaction_reading(transaction: Transaction) -> list[DerivedField]:
    """Every figure FinTrack derived from the bank's item, with the JSON keys it came from
    (the reading of banking.clients.base.BankClient._parse_transaction)."""
    raw = transaction.raw_json if isinstance(transaction.raw_json, dict) else {}
    debit = transaction.amount < 0
    indicator = raw.get("creditDebitIndicator")
    money = raw.get("amount") if isinstance(raw.get("amount"), dict) else {}
    merchant = merchant_display_name(
        merchant_name=transaction.merchant_name, description=transaction.description
    )
    zone = user_zone(transaction.user)
    bank_status = raw.get("status")
    fields = [
        DerivedField(
            "bank_transaction_id",
            "Bank transaction id",
            transaction.bank_transaction_id,
            (("transactionId",),),
        ),
        DerivedField(
            "account",
            "Account",
            admin_link(transaction.account),
            (("accountId",),),
            "the account whose transactions page listed it",
        ),
        DerivedField(
            "amount",
            "Amount (signed)",
            format_html(
                '<span class="ft-amount {}">{}</span> {}',
                "ft-out" if debit else "ft-in",
                transaction.amount,
                transaction.currency,
            ),
            (("amount", "amount"), ("creditDebitIndicator",)),
            f"{money.get('amount', '?')} with the sign of “{indicator}”: "
            + ("negative, money out" if debit else "positive, money in"),
        ),
        DerivedField(
            "sign",
            "Direction",
            "money out (debit)" if debit else "money in (credit)",
            (("creditDebitIndicator",),),
        ),
        DerivedField("currency", "Currency", transaction.currency, (("amount", "currency"),)),
        DerivedField(
            "booking_date",
            "Booked at",
            admin_datetime(transaction.booking_date),
            (("bookingDateTime",),),
            f"UTC {transaction.booking_date:%Y-%m-%d %H:%M:%S}",
        ),
        DerivedField(
            "local_date",
            f"Local booking date ({zone.key})",
            local_date(zone, transaction.booking_date).isoformat(),
            (("bookingDateTime",),),
            "the user's calendar day: what the feed, summaries and aggregates use",
        ),
        DerivedField(
            "value_date",
            "Value date",
            admin_datetime(transaction.value_date) if transaction.value_date else "",
            (("valueDateTime",),),
        ),
        DerivedField(
            "status",
            "Status",
            transaction.get_status_display(),
            (("status",),),
            f"the bank's “{bank_status}”"
            if bank_status and bank_status != transaction.status
            else "",
        ),
        DerivedField(
            "description", "Description", transaction.description, (("transactionInformation",),)
        ),
        DerivedField(
            "merchant",
            "Merchant",
            merchant,
            (("merchant", "name"),)
            if transaction.merchant_name
            else (("merchant", "name"), ("transactionInformation",)),
            ""
            if transaction.merchant_name or not merchant
            else "no merchant name: taken from the description's “<merchant> - <city>”",
        ),
        DerivedField(
            "merchant_category",
            "Merchant category",
            transaction.merchant_category,
            (("merchant", "category"),),
        ),
        DerivedField("mcc", "MCC", transaction.mcc, (("merchant", "mccCode"),)),
        DerivedField(
            "counterparty",
            "Counterparty",
            transaction.counterparty,
            (("counterparty", "name"),)
            if isinstance(raw.get("counterparty"), dict)
            else (("counterparty",),),
        ),
        DerivedField(
            "bank_transaction_code",
            "Bank transaction code",
            transaction.bank_transaction_code,
            (("bankTransactionCode", "code"),)
            if isinstance(raw.get("bankTransactionCode"), dict)
            else (("bankTransactionCode",),),
        ),
        _category_reading(transaction),
    ]
    if transaction.amount > 0:
        fields.append(
            DerivedField(
                "income_kind",
                "Income kind",
                income_kind_of(
                    description=transaction.description,
                    category_code=transaction.category.code if transaction.category else "",
                    amount=transaction.amount,
                    merchant_name=transaction.merchant_name,
                ),
                (("transactionInformation",), ("merchant", "name")),
                "what analytics counts this credit as (salary, refund, interest …)",
            )
        )
    pair = transaction.transfer_pair
    fields.append(
        DerivedField(
            "is_own_transfer",
            "Own transfer",
            "yes" if transaction.is_own_transfer else "no",
            (),
            format_html("paired with {}", admin_link(pair, f"transaction #{pair.pk}"))
            if pair is not None
            else "",
        )
    )
    if getattr(transaction, "note", ""):
        fields.append(DerivedField("note", "User's note", transaction.note))
    return fields


class QuarantineOpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open (retried by each sync)"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(QuarantinedBankItem)
class QuarantinedBankItemAdmin(ReadOnlyAdminMixin, ChangelistDeferMixin, admin.ModelAdmin):
    """Items a bank sent malformed: kept as sent, retried by every sync until one stores them."""

    list_display = [
        "last_seen_at",
        "account",
        "bank_transaction_id",
        "reason",
        "booking_date",
        "times_seen",
        "is_open",
        "resolution",
        "user",
    ]
    list_filter = [QuarantineOpenFilter, "connection__bank_code", "resolution"]
    search_fields = ["=bank_transaction_id", "=connection__user__email", "reason"]
    search_help_text = "Exact bank transaction id or user email; or words of the reason."
    date_hierarchy = "last_seen_at"
    ordering = ["-last_seen_at", "-id"]
    list_select_related = ["account", "connection__user"]
    changelist_defer = ("raw_json",)
    readonly_fields = (
        "connection",
        "account",
        "bank_transaction_id",
        "item_key",
        "booking_date",
        "reason",
        "first_seen_at",
        "last_seen_at",
        "times_seen",
        "resolved_at",
        "resolution",
        "raw_item",
    )
    fields = readonly_fields

    @admin.display(description="Raw bank JSON (as sent)")
    def raw_item(self, obj: QuarantinedBankItem):
        return raw_json_pretty(obj)

    @admin.display(boolean=True, description="open")
    def is_open(self, obj: QuarantinedBankItem) -> bool:
        return obj.is_open

    @admin.display(description="user", ordering="connection__user__email")
    def user(self, obj: QuarantinedBankItem):
        return obj.connection.user


@admin.register(Transaction)
class TransactionAdmin(ConsolePanelMixin, ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "booking_date",
        "account",  # "vbank ****7993": the bank is in it
        "signed_amount",
        "status",
        "short_description",
        "merchant_name",
        "category",
        "is_own_transfer",
        "user",
    ]
    list_filter = ["bank_code", "status", "category", "is_own_transfer"]
    search_fields = ["=bank_transaction_id", "=user__email", "merchant_name", "description"]
    search_help_text = "Exact bank transaction id or user email; or words of merchant/description."
    date_hierarchy = "booking_date"
    ordering = ["-booking_date", "-id"]
    list_select_related = ["account", "user", "category"]
    list_per_page = 100
    changelist_defer = ("raw_json",)
    # The derived fields and the bank's JSON are the console panel (side by side); below it, the
    # row's links and timestamps.
    fieldsets = (
        ("Row", {"fields": ("user", "account", "transfer_pair", "created_at", "updated_at")}),
    )
    readonly_fields = _readonly_from_fieldsets(fieldsets)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match and (match.url_name or "").endswith("_change"):
            queryset = queryset.select_related("user", "account", "category", "transfer_pair")
        return queryset

    def console_panel(self, request, obj: Transaction):
        fields = transaction_reading(obj)
        return side_by_side(
            "How we interpret it (normalised)",
            derived_fields_table(obj.raw_json, fields),
            "Raw bank JSON that produced this row",
            format_html(
                '<p class="ft-legend"><span class="ft-used">highlighted</span>: the keys '
                "FinTrack read (hover for the field each one became)</p>{}",
                highlighted_json(obj.raw_json, used_json_paths(obj.raw_json, fields)),
            ),
        )

    @admin.display(description="amount", ordering="amount")
    def signed_amount(self, obj: Transaction) -> str:
        return f"{obj.amount} {obj.currency}"

    @admin.display(description="description")
    def short_description(self, obj: Transaction) -> str:
        text = obj.description
        return (text[:60] + "…") if len(text) > 60 else text


@admin.register(AccountTransactionCount)
class AccountTransactionCountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each account's stored transactions as the database's triggers keep the figure (the sync's
    completeness check reads it); its page counts the rows too, to compare."""

    list_display = ["account", "bank_code", "user", "stored"]
    list_filter = ["account__bank_code"]
    search_fields = ["=account__user__email", "=account__bank_account_id"]
    search_help_text = "Exact user email or bank account id."
    ordering = ["account__user_id", "account__bank_code", "account__bank_account_id"]
    list_select_related = ["account__user"]
    fields = ["account", "stored", "counted"]
    readonly_fields = fields

    @admin.display(description="Bank", ordering="account__bank_code")
    def bank_code(self, obj: AccountTransactionCount) -> str:
        return obj.account.get_bank_code_display()

    @admin.display(description="User", ordering="account__user__email")
    def user(self, obj: AccountTransactionCount) -> str:
        return obj.account.user.email

    @admin.display(description="Counted now (the rows themselves)")
    def counted(self, obj: AccountTransactionCount) -> int:
        return Transaction.objects.filter(account_id=obj.account_id).count()


@admin.register(TransactionAggregate)
class TransactionAggregateAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "date",
        "user",
        "category",
        "currency",
        "income",
        "spending",
        "transaction_count",
    ]
    list_filter = ["category"]
    search_fields = ["=user__email", "=user__bank_connections__client_id"]
    search_help_text = "Exact user email or client id."
    date_hierarchy = "date"
    ordering = ["-date", "-id"]
    list_select_related = ["user", "category"]
    fields = [
        "user",
        "date",
        "category",
        "currency",
        "income",
        "spending",
        "transaction_count",
    ]
    readonly_fields = fields


@admin.register(AccountSummary)
class AccountSummaryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "user",
        "currency",
        "spendable_total",
        "savings_total",
        "debt_total",
        "accounts_count",
        "updated_at",
    ]
    list_filter = ["currency"]
    search_fields = ["=user__email", "=user__bank_connections__client_id"]
    search_help_text = "Exact user email or client id."
    date_hierarchy = "updated_at"
    ordering = ["-updated_at", "-id"]
    list_select_related = ["user"]
    fields = [
        "user",
        "currency",
        "spendable_total",
        "savings_total",
        "debt_total",
        "accounts_count",
        "updated_at",
    ]
    readonly_fields = fields


@admin.register(BankProduct)
class BankProductAdmin(ReadOnlyAdminMixin, ChangelistDeferMixin, admin.ModelAdmin):
    list_display = [
        "bank_code",
        "product_type",
        "name",
        "interest_rate",
        "min_amount",
        "max_amount",
        "term_months",
        "fetched_at",
    ]
    list_filter = ["bank_code", "product_type"]
    search_fields = ["=product_id", "name"]
    search_help_text = "Exact product id, or words of the name."
    date_hierarchy = "fetched_at"
    ordering = ["-fetched_at", "bank_code", "name"]
    changelist_defer = ("raw_json", "description")
    fieldsets = raw_beside_normalised(
        [
            "bank_code",
            "product_id",
            "product_type",
            "name",
            "description",
            "interest_rate",
            "min_amount",
            "max_amount",
            "term_months",
            "fetched_at",
        ],
        raw=raw_json_pretty,
    )
    readonly_fields = _readonly_from_fieldsets(fieldsets)


@admin.register(ProductAgreement)
class ProductAgreementAdmin(ReadOnlyAdminMixin, ChangelistDeferMixin, admin.ModelAdmin):
    list_display = [
        "agreement_id",
        "bank_code",
        "product_type",
        "product_name",
        "user",
        "principal",
        "remaining_balance",
        "currency",
        "status",
        "next_payment_date",
        "next_payment_amount",
    ]
    list_filter = ["bank_code", "product_type", "status", "next_payment_source"]
    search_fields = ["=agreement_id", "=product_id", "=user__email", "product_name"]
    search_help_text = "Exact agreement id, product id or user email; or the product name."
    date_hierarchy = "start_date"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user", "connection", "linked_account"]
    changelist_defer = ("raw_json", "payment_schedule")
    fieldsets = raw_beside_normalised(
        [
            "user",
            "connection",
            "bank_code",
            "agreement_id",
            "product_id",
            "product_type",
            "product_name",
            "status",
            "principal",
            "currency",
            "interest_rate",
            "term_months",
            "start_date",
            "end_date",
            "account_number",
            "linked_account",
            "remaining_balance",
        ],
        raw=raw_json_pretty,
        extra=[
            (
                "Next payment (computed by FinTrack)",
                {
                    "fields": (
                        "monthly_payment",
                        "next_payment_date",
                        "next_payment_amount",
                        "next_payment_source",
                        payment_schedule_pretty,
                    )
                },
            ),
            ("Timestamps", {"fields": ("created_at", "updated_at")}),
        ],
    )
    readonly_fields = _readonly_from_fieldsets(fieldsets)


@admin.register(BankCircuitState)
class BankCircuitStateAdmin(ServiceActionMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each bank's circuit breaker: its last recorded change beside what the cache says now.

    Rows change on transitions only (open, half-open, closed), so "live" reads the shared state.
    "Close now" lets calls through again at once (after the bank is known to be back).
    """

    list_display = [
        "bank_code",
        "status",
        "live_status",
        "failures",
        "trips",
        "opened",
        "next_probe",
        "reason",
        "changed",
    ]
    list_filter = ["status"]
    ordering = ["bank_code"]
    fields = list_display
    readonly_fields = list_display
    actions = ["close_now"]

    @admin.display(description="live (cache)")
    def live_status(self, obj: BankCircuitState) -> str:
        live = bank_circuit_live(bank_code=obj.bank_code)
        if live.retry_after is None:
            return f"{live.status} ({live.failures} failure(s) in a row)"
        return f"{live.status}, next probe in {live.retry_after:.0f} s"

    @admin.display(description="opened at", ordering="opened_at")
    def opened(self, obj: BankCircuitState) -> str:
        return admin_datetime(obj.opened_at)

    @admin.display(description="next probe at", ordering="next_probe_at")
    def next_probe(self, obj: BankCircuitState) -> str:
        return admin_datetime(obj.next_probe_at)

    @admin.display(description="changed at", ordering="changed_at")
    def changed(self, obj: BankCircuitState) -> str:
        return admin_datetime(obj.changed_at)

    @admin.action(description="Close now (let calls through again)", permissions=["operate"])
    def close_now(self, request, queryset):
        def call(row: BankCircuitState) -> tuple[str, dict]:
            before = row.status
            row = bank_circuit_close(bank_code=row.bank_code)
            return f"circuit closed (was {before})", {"from": before, "to": row.status}

        self.run_service_action(
            request, queryset, action="bank_circuit_close", call=call, owner=lambda row: None
        )
