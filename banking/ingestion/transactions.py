"""Storing a sync's transactions: batches of parsed bank rows into the `transactions` table.

The reader (sync.reader) hands each page's `BankTransaction`s to one `TransactionWriter` per
account. Rows are written in batches of a few pages (SYNC_WRITE_BATCH_ROWS; one SELECT of the
batch's ids, at most one INSERT … ON CONFLICT, one commit), so memory stays flat however long the
history; a batch older than every stored row of its account (a first sync) skips the SELECT, and
on PostgreSQL it is COPYed. Stored pending rows the bank no longer lists in the window read (their
posted twin came under a new id) are removed at the end.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from banking.categorization import category_id_for
from banking.clients.types import BankTransaction
from banking.ingestion.rows import (
    COMPARED_FIELDS,
    COPY_COLUMNS,
    UPDATE_FIELDS,
    BankValues,
    Category,
    RowBuilder,
    TransactionRow,
    bank_values,
    compared_values,
    row_builder,
    same_values,
)
from banking.models import (
    Account,
    AccountTransactionCount,
    CategorySource,
    Transaction,
    TransactionStatus,
)
from banking.selectors.category_rules import category_rule_matcher
from fintrack.core.db import commit_without_wal_wait, copy_rows

logger = logging.getLogger(__name__)

# A row's category from its values; one per account and run.
Categoriser = Callable[[BankValues], Category]
# Plain strings: COPY writes them as they are.
BY_BANK_RULE = CategorySource.BANK_RULE.value
BY_USER_RULE = CategorySource.USER_RULE.value


def builtin_categoriser(values: BankValues) -> Category:
    """The built-in rules only (a user with no rules of their own)."""
    category_id = category_id_for(
        description=values.description,
        mcc=values.mcc,
        merchant_category=values.merchant_category,
        amount=values.amount,
    )
    return category_id, BY_BANK_RULE


def categoriser_for(*, user_id: int) -> Categoriser:
    """The user's own rules (read here, once) before the built-in ones."""
    matcher = category_rule_matcher(user_id=user_id)
    if not matcher:
        return builtin_categoriser

    def categorise(values: BankValues) -> Category:
        rule = matcher.match(merchant_name=values.merchant_name, description=values.description)
        if rule is not None:
            return rule.category_id, BY_USER_RULE
        return builtin_categoriser(values)

    return categorise


@dataclass
class WriteCounts:
    """What the writes did: rows added, updated, unchanged, removed; the oldest time touched."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    changed_since: datetime | None = None  # oldest booking time written or removed

    def note_changed(self, when: datetime | None) -> None:
        """A row of this booking time was written or removed (its day's aggregates change)."""
        if when is not None and (self.changed_since is None or when < self.changed_since):
            self.changed_since = when


def transaction_count_kept(account: Account) -> int:
    """The account's stored rows as the database counts them on every write (no row: none)."""
    kept = (
        AccountTransactionCount.objects.filter(account_id=account.pk)
        .values_list("stored", flat=True)
        .first()
    )
    return kept or 0


def transaction_count_verified(account: Account) -> int:
    """The account's stored rows, counted; a kept count that differs is put right (logged).

    The kept row is locked first, so a writer whose triggers already ran commits before the
    count is taken, and one that has not yet run waits for this correction, then adds to it."""
    with transaction.atomic():
        kept = (
            AccountTransactionCount.objects.select_for_update()
            .filter(account_id=account.pk)
            .values_list("stored", flat=True)
            .first()
        )
        stored = Transaction.objects.filter(account_id=account.pk).count()
        if (kept or 0) != stored:
            logger.warning(
                "account %s: kept transaction count %s, %d stored; corrected",
                account.pk,
                kept,
                stored,
            )
            AccountTransactionCount.objects.update_or_create(
                account_id=account.pk, defaults={"stored": stored}
            )
    return stored


class TransactionWriter:
    """One account's transactions as a sync reads them: gathered, then written in batches.

    One commit per few pages instead of one per page: fewer round trips, and on PostgreSQL one
    COPY per batch. A row the bank lists twice (a page boundary moving while we read) is kept
    once, as last read. `after_write` is called after each batch (the run flushes its raw logs).
    """

    def __init__(
        self,
        *,
        account: Account,
        counts: WriteCounts,
        batch_rows: int | None = None,
        after_write: Callable[[], None] | None = None,
        categoriser: Categoriser | None = None,
    ):
        self.account = account
        self.counts = counts
        self.limit = max(
            1, batch_rows if batch_rows is not None else settings.SYNC_WRITE_BATCH_ROWS
        )
        self.after_write = after_write
        # Stored pending rows must all be listed again: their posted twin replaces them under a
        # new id. Those not listed yet, with their booking times.
        self._pending_stored: dict[str, datetime] = dict(
            Transaction.objects.filter(
                account=account, status=TransactionStatus.PENDING
            ).values_list("bank_transaction_id", "booking_date")
        )
        # The oldest of them: an incremental read must reach back to it.
        self.oldest_pending: datetime | None = min(self._pending_stored.values(), default=None)
        # One probe per account: the oldest stored booking time (None: nothing stored). A batch
        # booked entirely before it needs no lookup of its stored ids: every row is new unless
        # this very run wrote it in an earlier batch (the set). That is every batch of a first
        # sync, and the older history a progressive first sync reads after storing the newest
        # rows (sync.progressive) or a retried run reads past its earlier rows; a batch that
        # reaches the stored rows takes the lookup path (a row the bank moved back in time makes
        # the insert conflict: then it takes it too). The probe is an ordered LIMIT 1 (the
        # tx_account_feed index, walked backwards) rather than EXISTS or MIN: right after a bulk
        # load the planner's statistics may not know the account and choose a full scan for
        # those (50 ms at 250,000 rows); an ordered LIMIT 1 walks the index whatever.
        # An account with a watermark was read whole before: a later sync reads its newest
        # rows, all stored but the few new ones, so every batch takes the lookup path and the
        # probe is skipped (a no-op sync's cost, per account).
        self._copy_older = account.transactions_synced_through is None
        self._stored_from: datetime | None = (
            Transaction.objects.filter(account=account)
            .order_by("booking_date", "id")
            .values_list("booking_date", flat=True)
            .first()
            if self._copy_older
            else None
        )
        self._fresh_ids: set[str] = set()
        self.categoriser = categoriser or categoriser_for(user_id=account.user_id)
        self._by_id: dict[str, BankTransaction] = {}

    def add(self, bank_transactions: Iterable[BankTransaction]) -> None:
        """Rows read; written once a batch has gathered."""
        pending, by_id = self._pending_stored, self._by_id
        for bank_tx in bank_transactions:
            by_id[bank_tx.transaction_id] = bank_tx
            if pending:  # none on a first sync
                pending.pop(bank_tx.transaction_id, None)
        if len(by_id) >= self.limit:
            self.flush()

    def flush(self) -> None:
        """Write what has gathered (a failed write is not retried here), then `after_write`."""
        by_id, self._by_id = self._by_id, {}
        if by_id:
            self._write(by_id)
        if self.after_write is not None:
            self.after_write()

    def flush_after_failure(self) -> None:
        """Keep what was read before a failure; a failing write must not hide the first error."""
        try:
            self.flush()
        except Exception:
            logger.warning(
                "account %s: rows read before a failure could not be written",
                self.account.pk,
                exc_info=True,
            )

    def stored_count(self, *, window_start: datetime | None, expected: int | None = None) -> int:
        """The account's stored rows once this run's writes and removals (see below) are done.

        `expected`: the figure the caller compares it with (the bank's count). The database's
        own count of the account's rows (banking.models.AccountTransactionCount) is taken when
        it says exactly that; otherwise the rows are counted (`transaction_count_verified`)."""
        self.flush()
        removing = len(self._replaced_pending(window_start))
        if expected is not None and transaction_count_kept(self.account) - removing == expected:
            return expected
        return transaction_count_verified(self.account) - removing

    def remove_replaced_pending(self, *, window_start: datetime | None) -> None:
        """Delete stored pending rows in the window read (all if None) not listed again."""
        gone = self._replaced_pending(window_start)
        if not gone:
            return
        with transaction.atomic():
            _total, per_model = Transaction.objects.filter(
                account=self.account, status=TransactionStatus.PENDING, bank_transaction_id__in=gone
            ).delete()
        self.counts.removed += per_model.get(Transaction._meta.label, 0)
        for transaction_id in gone:
            self.counts.note_changed(self._pending_stored[transaction_id])

    def _replaced_pending(self, window_start: datetime | None) -> list[str]:
        return [
            transaction_id
            for transaction_id, booked_at in self._pending_stored.items()
            if window_start is None or booked_at >= window_start
        ]

    def _write(self, by_id: dict[str, BankTransaction]) -> None:
        """Upsert a batch: new and changed rows in one INSERT … ON CONFLICT, identical ones
        skipped; a first sync's batch of new ids is inserted (COPYed) without a lookup. Of such a
        batch, the few rows this run wrote in an earlier one (a row a tie group cut across pages
        repeats, SPEC §17) take the lookup path alone, the rest is still COPYed."""
        account, counts = self.account, self.counts
        fresh_ids, stored_from = self._fresh_ids, self._stored_from
        older = self._copy_older and (
            stored_from is None or all(t.booking_date < stored_from for t in by_id.values())
        )
        again = [] if fresh_ids.isdisjoint(by_id) else [i for i in by_id if i in fresh_ids]
        fresh_ids.update(by_id)
        if older and not again and self._insert_new(by_id):
            return
        if older and again and len(again) < len(by_id):
            repeated = set(again)
            new = {i: bank_tx for i, bank_tx in by_id.items() if i not in repeated}
            if self._insert_new(new):
                by_id = {i: by_id[i] for i in again}
        # The stored category and its source ride along: a row the user categorised keeps both.
        existing = {
            stored.bank_transaction_id: stored
            for stored in Transaction.objects.filter(
                account=account, bank_transaction_id__in=list(by_id)
            ).values_list(
                "bank_transaction_id",
                "category_id",
                "category_source",
                *COMPARED_FIELDS,
                named=True,
            )
        }
        build = _row_builder(account)
        rows: list[Transaction] = []
        for transaction_id, bank_tx in by_id.items():
            values = bank_values(bank_tx)
            stored = existing.get(transaction_id)
            if stored is None:
                counts.added += 1
            elif same_values(compared_values(stored), values):
                counts.unchanged += 1
                continue
            else:
                counts.updated += 1
                counts.note_changed(stored.booking_date)  # the old booking time leaves its day
            counts.note_changed(bank_tx.booking_date)
            # A correction landing between this SELECT and the upsert below is overwritten: the
            # window is one batch's write; the user sees the bank's change and can correct again.
            if stored is not None and stored.category_source == CategorySource.USER:
                category = (stored.category_id, CategorySource.USER.value)
            else:
                category = self.categoriser(values)
            rows.append(_model_row(build(bank_tx, values, category, bank_tx.raw)))
        if rows:
            # The upsert is also the guard against a concurrent run inserting the same rows.
            with transaction.atomic():
                # Need not wait for the WAL flush: every write of this step is an idempotent
                # upsert of data the bank still holds, and the account's watermark only moves in
                # the run's final step, a normal synchronous commit. A server crash loses at most
                # the last few hundred ms of pages, whole; the watermark did not move, so the next
                # run re-reads and re-writes them.
                commit_without_wal_wait()
                transactions_upsert(rows)

    def _insert_new(self, by_id: dict[str, BankTransaction]) -> bool:
        """Insert a batch known to be all new; False (nothing written nor counted) on a conflict.

        PostgreSQL gets a COPY of plain tuples: no model instances, no INSERT compiled per batch
        (the ORM's bulk upsert cost ~25 ms of CPU per 100 rows). A conflict (a concurrent writer
        of the same account) rolls the batch back, and the caller re-writes it by lookup + upsert.
        """
        account = self.account
        if db_connection.vendor != "postgresql":
            rows = transaction_models(
                account=account, bank_transactions=by_id.values(), categoriser=self.categoriser
            )
            with transaction.atomic():
                transactions_upsert(rows)
        else:
            try:
                with transaction.atomic():
                    commit_without_wal_wait()  # safe for the reason given in _write
                    transactions_copy(
                        account=account,
                        bank_transactions=by_id.values(),
                        categoriser=self.categoriser,
                    )
            except IntegrityError:
                logger.info("account %s: batch already partly stored, upserting it", account.pk)
                return False
        counts = self.counts
        counts.added += len(by_id)
        for bank_tx in by_id.values():
            counts.note_changed(bank_tx.booking_date)
        return True


def _row_builder(account: Account, now: datetime | None = None) -> RowBuilder:
    return row_builder(
        user_id=account.user_id,
        account_id=account.pk,
        bank_code=account.bank_code,
        now=now or timezone.now(),
    )


def _model_row(row: TransactionRow) -> Transaction:
    """The ORM instance of a stored row (its timestamps are the ORM's to set)."""
    return Transaction(**row._asdict())


def transactions_upsert(rows: list[Transaction]) -> None:
    """INSERT … ON CONFLICT (account, bank_transaction_id) DO UPDATE of the bank's fields."""
    Transaction.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["account", "bank_transaction_id"],
        update_fields=list(UPDATE_FIELDS),
    )


def transactions_copy(
    *,
    account: Account,
    bank_transactions: Iterable[BankTransaction],
    categoriser: Categoriser | None = None,
) -> None:
    """COPY new rows of one account into the transactions table (PostgreSQL; caller's atomic)."""
    build = _row_builder(account)
    categorise = categoriser or builtin_categoriser
    dumps = orjson.dumps
    # Built before the COPY starts: categorising may query the database (its cache's first
    # fill), and this connection accepts no other statement until the COPY ends. The item as the
    # bank sent it is serialised by orjson (~20× json.dumps on a page); raw_json is `json`, so
    # COPY takes these bytes as they are.
    rows = [
        build(bank_tx, (values := bank_values(bank_tx)), categorise(values), dumps(bank_tx.raw))
        for bank_tx in bank_transactions
    ]
    copy_rows(Transaction, COPY_COLUMNS, rows)


def transaction_models(
    *,
    account: Account,
    bank_transactions: Iterable[BankTransaction],
    categoriser: Categoriser | None = None,
) -> list[Transaction]:
    """The ORM instances the upsert path writes for these rows (what a COPY of them stores)."""
    build = _row_builder(account)
    categorise = categoriser or builtin_categoriser
    return [
        _model_row(
            build(bank_tx, (values := bank_values(bank_tx)), categorise(values), bank_tx.raw)
        )
        for bank_tx in bank_transactions
    ]
