"""Exporting all of a user's data (GET /api/auth/me/export): one zip of JSON files and a CSV.

Files: `profile.json`, `connections.json`, `consents.json`, `accounts.json`, `balances.json`,
`transactions.json`, `agreements.json`, `category_rules.json`, `sync_runs.json`,
`analytics_snapshot.json` (the latest, or null), `transactions.csv` (the columns and cell rules
of GET /api/transactions/export.csv: banking's own selector and writer) and `manifest.json`
(format, time of export, rows per file). Money is a string ("-1234.50") beside its `currency`;
datetimes are ISO 8601 in UTC with the offset; days are ISO dates.

Left out on purpose: anything that works as a credential (password hash, tokens, the banks'
consent and request ids) and the banks' raw JSON (every figure FinTrack read from it is in the
files; a heavy history's raw bodies would multiply the size). Derived tables (daily aggregates,
per-currency summaries) are left out too: they are recomputed from the transactions.

Memory stays bounded whatever the history: rows are read ROWS_PER_READ at a time (keyset pages,
fintrack.core.db.keyset_chunks) and written straight into the zip's entries, the zip into a
SpooledTemporaryFile that moves to disk past SPOOL_MEMORY_BYTES. Every file comes from one
snapshot of the database (one REPEATABLE READ transaction on PostgreSQL), so a sync running
meanwhile cannot make the transactions disagree with the accounts.
"""

import itertools
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import orjson
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from analytics.models import AnalyticsSnapshot
from banking.filters import TransactionFilters
from banking.models import BalanceSnapshot, BankConnection, Transaction
from banking.selectors.accounts import account_list
from banking.selectors.category_rules import category_rule_list
from banking.selectors.products import agreement_list
from banking.selectors.transactions import transaction_export_rows
from banking.serializers.transactions import transaction_csv_chunks
from consents.selectors import consent_list
from fintrack.core.db import keyset_chunks
from fintrack.core.localtime import user_zone
from sync.models import SyncRun
from users.models import OnboardingFlow, User

EXPORT_FORMAT = "fintrack-user-data/1"
ROWS_PER_READ = 2000
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024

PROFILE_FIELDS = (
    "id",
    "email",
    "phone",
    "time_zone",
    "created_at",
    "last_login",
)
ONBOARDING_FIELDS = ("selected_banks", "step", "completed_at", "created_at", "updated_at")
CONNECTION_FIELDS = (
    "id",
    "bank_code",
    "client_id",
    "client_id_is_demo",
    "status",
    "last_sync_at",
    "last_success_at",
    "last_error",
    "consent_expires_at",
    "created_at",
    "updated_at",
)
# Not bank_consent_id, request_id nor raw_response: the banks' handles on the consent.
CONSENT_FIELDS = (
    "id",
    "bank_code",
    "kind",
    "status",
    "permissions",
    "expires_at",
    "status_reason",
    "created_at",
    "updated_at",
)
ACCOUNT_FIELDS = (
    "id",
    "bank_code",
    "bank_account_id",
    "identification",
    "masked_number",
    "account_type",
    "bank_subtype",
    "bank_status",
    "nickname",
    "holder_name",
    "opening_date",
    "is_active",
    "current_balance",
    "currency",
    "balance_as_of",
    "transactions_synced_through",
    "created_at",
    "updated_at",
)
BALANCE_FIELDS = ("id", "account_id", "available", "booked", "currency", "as_of", "created_at")
TRANSACTION_FIELDS = (
    "id",
    "account_id",
    "bank_code",
    "bank_transaction_id",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "status",
    "description",
    "merchant_name",
    "merchant_category",
    "mcc",
    "counterparty",
    "bank_transaction_code",
    "category_source",
    "note",
    "is_own_transfer",
    "transfer_pair_id",
    "created_at",
    "updated_at",
)
AGREEMENT_FIELDS = (
    "id",
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
    "linked_account_id",
    "remaining_balance",
    "monthly_payment",
    "payment_schedule",
    "next_payment_date",
    "next_payment_amount",
    "next_payment_source",
    "outstanding",
    "outstanding_source",
    "outstanding_basis",
    "payment_status",
    "payment_status_note",
    "last_payment_date",
    "created_at",
    "updated_at",
)
CATEGORY_RULE_FIELDS = ("id", "match_kind", "pattern", "created_at", "updated_at")
SYNC_RUN_FIELDS = (
    "id",
    "kind",
    "trigger",
    "status",
    "step",
    "progress",
    "accounts_count",
    "balances_count",
    "transactions_added",
    "transactions_updated",
    "transactions_unchanged",
    "transactions_removed",
    "transactions_skipped",
    "agreements_count",
    "bank_calls",
    "attempts",
    "error",
    "error_code",
    "warnings",
    "correlation_id",
    "created_at",
    "started_at",
    "finished_at",
)
SNAPSHOT_FIELDS = (
    "id",
    "currency",
    "sts_amount",
    "sts_daily",
    "sts_status",
    "health_score",
    "health_band",
    "total_debt",
    "monthly_debt_service",
    "next_payment_date",
    "next_payment_amount",
    "breakdown",
    "summary",
    "data_fresh_as_of",
    "created_at",
)


@dataclass
class DataExport:
    """A built export: the zip (rewound, to be streamed and closed), its name, size and counts."""

    file: IO[bytes]
    filename: str
    size: int
    counts: dict[str, int] = field(default_factory=dict)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # money and rates as exact strings, never floats
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _dumps(value: Any) -> bytes:
    # orjson writes aware datetimes as ISO 8601 with their offset (UTC here), dates as ISO.
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_INDENT_2)


def _write_list(archive: zipfile.ZipFile, name: str, rows: Iterable[dict]) -> int:
    """`rows` as one JSON array in entry `name`, one row at a time; the number of rows."""
    count = 0
    with archive.open(name, "w", force_zip64=True) as entry:
        entry.write(b"[")
        for count, row in enumerate(rows, start=1):
            entry.write(b"\n" if count == 1 else b",\n")
            entry.write(orjson.dumps(row, default=_json_default))
        entry.write(b"\n]\n" if count else b"]\n")
    return count


def _write_chunks(archive: zipfile.ZipFile, name: str, chunks: Iterable[bytes]) -> None:
    with archive.open(name, "w", force_zip64=True) as entry:
        for chunk in chunks:
            entry.write(chunk)


def _streamed(queryset) -> Iterator[dict]:
    """The rows in the queryset's order (ties broken by id), ROWS_PER_READ per query: keyset
    pages, not a server-side cursor, which PgBouncer's transaction pooling cannot keep and
    without which `iterator()` would read the whole result set at once. Run inside
    `_one_snapshot`, every page sees the same snapshot."""
    key_fields = list(queryset.query.order_by)
    if not key_fields or key_fields[-1].lstrip("-") not in ("id", "pk"):
        key_fields.append("id")
    chunks = keyset_chunks(queryset, key_fields=key_fields, chunk_size=ROWS_PER_READ)
    return itertools.chain.from_iterable(chunks)


@contextmanager
def _one_snapshot():
    """A transaction whose reads all see one state of the database (REPEATABLE READ on
    PostgreSQL; a SQLite read transaction is one snapshot already)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def user_data_export(*, user: User) -> DataExport:
    """Every row of the user's data as a zip of JSON files and the transactions' CSV, built
    within a bounded memory (see the module docstring); the caller streams and closes it."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    exported_at = timezone.now()
    try:
        with _one_snapshot(), zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
            counts = _write_entries(archive, user=user)
            manifest = {
                "format": EXPORT_FORMAT,
                "exported_at": exported_at,
                "user_id": user.pk,
                "money": "decimal strings, each beside its currency (ISO 4217)",
                "datetimes": "ISO 8601, UTC; dates ISO",
                "files": {name: {"rows": rows} for name, rows in counts.items()},
            }
            archive.writestr("manifest.json", _dumps(manifest))
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    filename = f"fintrack-data-{exported_at:%Y-%m-%d}.zip"
    return DataExport(file=spool, filename=filename, size=size, counts=counts)


def _write_entries(archive: zipfile.ZipFile, *, user: User) -> dict[str, int]:
    counts: dict[str, int] = {}
    profile = User.objects.filter(pk=user.pk).values(*PROFILE_FIELDS).first() or {}
    profile["onboarding"] = (
        OnboardingFlow.objects.filter(user=user).values(*ONBOARDING_FIELDS).first()
    )
    archive.writestr("profile.json", _dumps(profile))
    counts["profile.json"] = 1

    lists = {
        "connections.json": BankConnection.objects.filter(user=user)
        .order_by("bank_code")
        .values(*CONNECTION_FIELDS),
        "consents.json": consent_list(user=user).values(*CONSENT_FIELDS),
        "accounts.json": account_list(user=user).values(*ACCOUNT_FIELDS),
        "balances.json": BalanceSnapshot.objects.filter(account__user=user)
        .order_by("account_id", "as_of", "id")
        .values(*BALANCE_FIELDS),
        "transactions.json": Transaction.objects.filter(user=user)
        .order_by("booking_date", "id")
        .values(*TRANSACTION_FIELDS, category_code=F("category__code")),
        "agreements.json": agreement_list(user=user).values(*AGREEMENT_FIELDS),
        "category_rules.json": category_rule_list(user=user).values(
            *CATEGORY_RULE_FIELDS, category_code=F("category__code")
        ),
        "sync_runs.json": SyncRun.objects.filter(user=user)
        .order_by("created_at", "id")
        .values(*SYNC_RUN_FIELDS, bank_code=F("connection__bank_code")),
    }
    for name, queryset in lists.items():
        counts[name] = _write_list(archive, name, _streamed(queryset))

    snapshot = (
        AnalyticsSnapshot.objects.filter(user=user)
        .order_by("-created_at", "-id")
        .values(*SNAPSHOT_FIELDS)
        .first()
    )
    archive.writestr("analytics_snapshot.json", _dumps(snapshot))
    counts["analytics_snapshot.json"] = int(snapshot is not None)

    # The CSV of GET /api/transactions/export.csv, unfiltered: banking's columns and cell rules.
    rows = transaction_export_rows(user=user, filters=TransactionFilters())
    _write_chunks(archive, "transactions.csv", transaction_csv_chunks(rows, zone=user_zone(user)))
    counts["transactions.csv"] = counts["transactions.json"]
    return counts
