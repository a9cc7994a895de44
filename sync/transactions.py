"""The transactions step: incremental paging, batched bulk writes, pending → posted cleanup.

The bank ignores date filters and pages newest first (SPEC §4.4), so an incremental sync reads
pages until it reaches rows older than the watermark minus an overlap window. Rows are written as
they arrive, in batches of a few pages (SYNC_WRITE_BATCH_ROWS; one SELECT of the batch's ids, at
most one INSERT … ON CONFLICT, one commit), so memory stays flat however long the history; an
account with no stored rows (a first sync) skips the SELECT, and on PostgreSQL its batches are
COPYed. With lookahead, page N+1 is fetched on a helper thread while rows are written here: bank
calls overlap DB work, DB work stays on this thread.

The banks sort by booking time only (SPEC §17), so rows tied on one instant can be lost or
repeated across a page boundary. A tie group straddling a boundary is repaired with one page of
another size that holds it whole; a read still short of `meta.totalRecords` is re-read with other
page sizes, and an account that stays short keeps its watermark (see "Tied booking times").
"""

import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import orjson
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db import connection as db_connection
from django.utils import timezone

from banking.categorization import category_id_for
from banking.clients.types import BankTransaction, TransactionPage
from banking.models import Account, CategorySource, Transaction, TransactionStatus
from banking.selectors.category_rules import category_rule_matcher
from fintrack.core.db import commit_without_wal_wait, copy_rows

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
# Bank data we compare to decide "unchanged" vs "updated"; raw_json follows whatever changed.
COMPARED_FIELDS = (
    "amount",
    "currency",
    "booking_date",
    "value_date",
    "status",
    "description",
    "merchant_name",
    "merchant_category",
    "mcc",
    "counterparty",
    "bank_transaction_code",
)
# Not `note`: the user's, never the bank's. A row the user categorised keeps its category (below).
UPDATE_FIELDS = [*COMPARED_FIELDS, "category", "category_source", "raw_json", "updated_at"]
MAX_PAGES_PER_ACCOUNT = 100_000  # a bank that always says "has next" must not loop forever
SKIPPED_SAMPLES_KEPT = 20


@dataclass
class TransactionCounts:
    """What the transactions step did, summed over the run's accounts."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    skipped_samples: list[dict] = field(default_factory=list)
    changed_since: datetime | None = None  # oldest booking time written or removed
    # Accounts whose rows fell short of the bank's totalRecords (their watermark stays); each
    # also has a warning among the samples, kept whatever the samples' limit.
    incomplete_accounts: list[dict] = field(default_factory=list)

    def merge(self, other: "TransactionCounts") -> None:
        """Add another account's counts (read on another thread) to these."""
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.removed += other.removed
        self.skipped += other.skipped
        room = SKIPPED_SAMPLES_KEPT - len(self.skipped_samples)
        samples = [s for s in other.skipped_samples if not s.get("incomplete")]
        self.skipped_samples.extend(samples[: max(room, 0)])
        self.skipped_samples.extend(s for s in other.skipped_samples if s.get("incomplete"))
        self.incomplete_accounts.extend(other.incomplete_accounts)
        self.note_changed(other.changed_since)

    def note_changed(self, when: datetime | None) -> None:
        if when is not None and (self.changed_since is None or when < self.changed_since):
            self.changed_since = when

    def note_incomplete(self, account: Account, *, found: int, total: int) -> None:
        """An account read short of the bank's count: reported in the run's warnings."""
        self.incomplete_accounts.append(
            {"account": account.bank_account_id, "found": found, "total": total}
        )
        self.skipped_samples.append(
            {
                "account": account.bank_account_id,
                "reason": (
                    f"incomplete read: {found} of {total} transactions the bank counts (rows"
                    " tied on booking time across pages?); the account's watermark did not move"
                ),
                "raw": "",
                "incomplete": True,
            }
        )

    def note_skipped(self, account: Account, items: list[dict]) -> None:
        self.skipped += len(items)
        room = SKIPPED_SAMPLES_KEPT - len(self.skipped_samples)
        for item in items[: max(room, 0)]:
            self.skipped_samples.append({"account": account.bank_account_id, **_short(item)})


def _short(item: dict) -> dict:
    """A skipped item as reported in the run: its reason and a bounded excerpt of the raw JSON."""
    if not isinstance(item, dict):
        return {"reason": "unparseable item", "raw": str(item)[:300]}
    reason = str(item.get("reason") or item.get("error") or "unparseable item")[:300]
    raw = item.get("item", item.get("raw", item))
    return {"reason": reason, "raw": str(raw)[:300]}


def _bank_values(bank_tx: BankTransaction) -> tuple:
    """The compared fields of a bank transaction, normalised exactly as the database stores them."""
    # Inlined clipping: this runs for every row of every page.
    return (
        bank_tx.amount.quantize(CENT),
        (bank_tx.currency or "")[:3] or "RUB",
        bank_tx.booking_date,
        bank_tx.value_date,
        (bank_tx.status or "")[:16],
        bank_tx.description or "",
        (bank_tx.merchant_name or "")[:255],
        (bank_tx.merchant_category or "")[:64],
        (bank_tx.mcc or "")[:4],
        (bank_tx.counterparty or "")[:255],
        (bank_tx.bank_transaction_code or "")[:64],
    )


# A row's (category id, category source) from its `_bank_values`; one per account and run.
Categoriser = Callable[[tuple], tuple[int | None, str]]
# Plain strings: COPY writes them as they are.
BY_BANK_RULE = CategorySource.BANK_RULE.value
BY_USER_RULE = CategorySource.USER_RULE.value


def builtin_categoriser(values: tuple) -> tuple[int | None, str]:
    """The built-in rules only (a user with no rules of their own)."""
    return _category_id(values), BY_BANK_RULE


def categoriser_for(*, user_id: int) -> Categoriser:
    """The user's own rules (read here, once) before the built-in ones."""
    matcher = category_rule_matcher(user_id=user_id)
    if not matcher:
        return builtin_categoriser

    def categorise(values: tuple) -> tuple[int | None, str]:
        # COMPARED_FIELDS order: description is values[5], merchant_name values[6].
        rule = matcher.match(merchant_name=values[6], description=values[5])
        if rule is not None:
            return rule.category_id, BY_USER_RULE
        return builtin_categoriser(values)

    return categorise


def prefetch_allowed() -> bool:
    """Lookahead needs a second DB connection (the client logs raw calls) that sees committed data.

    Not inside an outer transaction (a test's wrapper: the helper could not see its rows) and not
    on in-memory SQLite (threads share one connection there).
    """
    if not getattr(settings, "SYNC_PREFETCH_PAGES", True):
        return False
    if db_connection.in_atomic_block:
        return False
    return not (db_connection.vendor == "sqlite" and db_connection.is_in_memory_db())


class PageFetcher:
    """Fetches transaction pages, on a read-ahead helper thread when allowed.

    With lookahead, the helper reads pages 1, 2, … one after another (the bank's order) and queues
    up to `depth` of them while this thread writes: enough to cover a write batch, so bank calls
    go on during a batch's COPY and commit. It never fetches past the page `should_continue`
    refuses, and stops at the next page boundary when the reader goes away.
    """

    def __init__(self, *, lookahead: bool, depth: int | None = None):
        if depth is None:
            batch_pages = -(-settings.SYNC_WRITE_BATCH_ROWS // max(1, settings.SYNC_PAGE_LIMIT))
            depth = batch_pages + 1
        self.depth = max(1, depth)
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-page") if lookahead else None
        )
        self._stops: set[threading.Event] = set()  # of readers not closed yet

    def pages(
        self,
        fetch: Callable[[int], TransactionPage],
        should_continue: Callable[[TransactionPage, int], bool],
    ) -> Iterator[TransactionPage]:
        """Yield pages 1, 2, … until `should_continue(page, number)` says stop."""
        if self._executor is None:
            number = 1
            while True:
                page = fetch(number)
                yield page
                if not should_continue(page, number):
                    return
                number += 1
        pages: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        self._stops.add(stop)
        # The correlation id lives in a context variable: carry it to the helper thread.
        producer = self._executor.submit(
            contextvars.copy_context().run, _read_ahead, fetch, should_continue, pages, stop
        )
        try:
            while True:
                item = pages.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()
            self._stops.discard(stop)
            _drain(pages)  # unblock a helper waiting for room, then wait for it to stop
            producer.result()

    def close(self) -> None:
        for stop in list(self._stops):  # a reader left open must not keep its helper waiting
            stop.set()
        if self._executor is not None:
            # The helper thread may have opened its own DB connection; close it there.
            self._executor.submit(connections.close_all)
            self._executor.shutdown(wait=True)
            self._executor = None


_END = object()


@dataclass
class _Failure:
    error: BaseException


def _read_ahead(fetch, should_continue, pages: queue.Queue, stop: threading.Event) -> None:
    """The helper thread's loop: fetch pages in order and queue them; a failure is queued too."""

    def put(item) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    number = 1
    try:
        while not stop.is_set():
            page = fetch(number)
            if not put(page) or not should_continue(page, number):
                break
            number += 1
    except BaseException as exc:  # handed to the reader, which raises it on its own thread
        put(_Failure(exc))
        return
    put(_END)


def _drain(pages: queue.Queue) -> None:
    while True:
        try:
            pages.get_nowait()
        except queue.Empty:
            return


@dataclass
class AccountScan:
    """Result of scanning one account: the newest booking time seen (the candidate watermark).

    `complete` is False when the rows read fall short of the bank's `meta.totalRecords` even
    after the repairs below: the account's watermark must not move then.
    """

    newest_seen: datetime | None = None
    pages: int = 0
    extra_calls: int = 0  # repair and re-read pages (tied booking times across page boundaries)
    complete: bool = True


# --- Tied booking times (SPEC §17) ---------------------------------------------------------------
#
# The banks order pages by booking time only, under LIMIT/OFFSET. Rows of one instant (a tie
# group) come in an order that depends on the page asked for, so a group straddling a page
# boundary may show a row on both pages and another on neither. The booking time at each position
# never depends on the page, though: a group always holds the same positions [start, end), and
# one page that covers all of them holds exactly the group. So a straddling group is repaired by
# fetching one page of another size that covers it; what that cannot fix (a group larger than a
# page, positions unknown because a page was irregular, rows moving while we read) is caught by
# comparing the distinct rows read with `meta.totalRecords`, and re-reading with other page sizes.

BANK_MAX_PAGE_LIMIT = 100  # SPEC §4.4: limit 1..100
REREAD_ATTEMPTS = 3


@dataclass(slots=True)
class _TieGroup:
    booked: datetime
    start: int  # position of its first row in the bank's order (0-based)
    end: int  # position after its last row
    ids: list[str] = field(default_factory=list)  # the rows seen at those positions

    @property
    def may_miss_rows(self) -> bool:
        """Ties only permute within a group, so its positions hold exactly its rows: seen once
        each, they are the whole group; a row seen twice means another was not listed."""
        return len(set(self.ids)) < len(self.ids)


class _TieTracker:
    """The tie groups that straddle a page boundary of one read with page size `limit`.

    Fed each page in order; costs a comparison or two per page when nothing ties. A page whose
    positions are uncertain (items that failed to parse, a short page before the last) ends the
    tracking there: the completeness check stands behind it.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.straddling: list[_TieGroup] = []
        self._tail: _TieGroup | None = None  # the last page's trailing group, if a page follows
        self._crossed = False  # whether that group already straddles a boundary before it

    def add(self, number: int, page: TransactionPage, booked: list[datetime]) -> None:
        tail, crossed = self._tail, self._crossed
        self._tail, self._crossed = None, False
        count = len(booked)
        if page.skipped or not count or (page.has_next and count != self.limit):
            return
        base = (number - 1) * self.limit
        first = booked[0]
        if tail is not None and first == tail.booked:
            lead = 1
            while lead < count and booked[lead] == first:
                lead += 1
            tail.end = base + lead
            tail.ids.extend(t.transaction_id for t in page.transactions[:lead])
            if lead == count and page.has_next:
                # A whole page of this instant: the group may go on past the next boundary.
                self._tail, self._crossed = tail, True
                return
            if tail.may_miss_rows:
                self.straddling.append(tail)
            if lead == count:
                return
        elif crossed and tail.may_miss_rows:  # it ended exactly at this page's first row
            self.straddling.append(tail)
        if page.has_next:
            last = booked[-1]
            trail = 1
            while trail < count and booked[count - 1 - trail] == last:
                trail += 1
            ids = [t.transaction_id for t in page.transactions[count - trail :]]
            self._tail = _TieGroup(last, base + count - trail, base + count, ids)


def covering_page(start: int, end: int, max_limit: int) -> tuple[int, int] | None:
    """(page, limit) of one page holding every position in [start, end), or None if none does.

    The largest limit that works; always another limit than the one the group straddled.
    """
    for limit in range(max_limit, end - start - 1, -1):
        if start // limit == (end - 1) // limit:
            return start // limit + 1, limit
    return None


def reread_limits(limit: int, max_limit: int, attempts: int = REREAD_ATTEMPTS) -> list[int]:
    """Page sizes for re-reading an account, other than `limit` (100 → 97, 89, 83)."""
    sizes: list[int] = []
    for delta in (3, 11, 17, 1, 2, 4, 5, 6, 7, 8):
        for size in (limit - delta, limit + delta):
            if 1 <= size <= max_limit and size != limit and size not in sizes:
                sizes.append(size)
                break
        if len(sizes) == attempts:
            break
    return sizes


def _skipped_key(entry) -> str:
    """One unparseable item's identity, so an item listed twice is counted once."""
    item = entry.get("item", entry) if isinstance(entry, dict) else entry
    transaction_id = item.get("transactionId") if isinstance(item, dict) else None
    if isinstance(transaction_id, str) and transaction_id:
        return transaction_id
    return f"raw:{item!r}"


def account_transactions_sync(
    *,
    client,
    account: Account,
    client_id: str,
    consent_id: str,
    counts: TransactionCounts,
    fetcher: PageFetcher,
    on_page: Callable[[int, int | None], None] | None = None,
    after_write: Callable[[], None] | None = None,
) -> AccountScan:
    """Sync one account's transactions; returns the newest booking time seen (not yet stored).

    `after_write` is called after each batch is written (the run flushes its raw logs there).
    Tie groups straddling a page boundary are repaired after the page loop (one extra page each);
    a read that still falls short of `meta.totalRecords` is re-read with other page sizes, and
    if even that does not reach it, the scan says incomplete (the watermark stays).
    """
    limit = settings.SYNC_PAGE_LIMIT
    max_limit = max(BANK_MAX_PAGE_LIMIT, limit)
    # Stored pending rows must all be re-seen: their posted twin replaces them under a new id.
    pending_stored = dict(
        Transaction.objects.filter(account=account, status=TransactionStatus.PENDING).values_list(
            "bank_transaction_id", "booking_date"
        )
    )
    cutoff = None
    if account.transactions_synced_through is not None:
        cutoff = account.transactions_synced_through - timedelta(days=settings.SYNC_OVERLAP_DAYS)
        if pending_stored:
            cutoff = min(cutoff, *pending_stored.values())

    # One probe per account. With nothing stored (a first sync), a page needs no lookup of its
    # stored ids: every row is new unless this very run wrote it on an earlier page (the set).
    # A retried run of the account finds its earlier rows here and takes the lookup path. The
    # probe asks for the newest row (tx_account_feed's order, LIMIT 1) rather than EXISTS: right
    # after a bulk load the planner's statistics may not know the account and choose a full scan
    # for EXISTS (50 ms at 250,000 rows); an ordered LIMIT 1 walks the index whatever they say.
    stored_any = (
        Transaction.objects.filter(account=account)
        .order_by("-booking_date", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    fresh_ids: set[str] | None = None if stored_any is not None else set()
    scan = AccountScan()
    reached_end = False
    oldest_seen: datetime | None = None
    seen: set[str] = set()  # ids read by this run: what a complete read counts
    skipped_keys: set[str] = set()  # items that failed to parse count as read too
    total_records: int | None = None  # the bank's meta.totalRecords, as last given
    total_pages: int | None = None

    def fetch_page(number: int, size: int) -> TransactionPage:
        return client.get_transactions_page(
            client_id=client_id,
            account_id=account.bank_account_id,
            consent_id=consent_id,
            page=number,
            limit=size,
        )

    def fetch(number: int) -> TransactionPage:
        return fetch_page(number, limit)

    def should_continue(page: TransactionPage, number: int) -> bool:
        if not page.has_next or number >= MAX_PAGES_PER_ACCOUNT:
            return False
        if not page.transactions and not page.skipped:
            return False
        if cutoff is not None and page.transactions:
            return min(t.booking_date for t in page.transactions) >= cutoff
        return True

    pending_rows = _PendingRows(
        account=account,
        counts=counts,
        fresh_ids=fresh_ids,
        limit=settings.SYNC_WRITE_BATCH_ROWS,
        after_write=after_write,
        categoriser=categoriser_for(user_id=account.user_id),
    )

    def add_rows(rows: list[BankTransaction], booked: list[datetime]) -> None:
        """Rows read (and their booking times) to the writer; the scan's range follows them."""
        nonlocal oldest_seen
        if not rows:
            return
        if pending_stored:  # none on a first sync
            for bank_tx in rows:
                pending_stored.pop(bank_tx.transaction_id, None)
        pending_rows.add(rows)
        seen.update(bank_tx.transaction_id for bank_tx in rows)
        page_newest, page_oldest = max(booked), min(booked)
        if scan.newest_seen is None or page_newest > scan.newest_seen:
            scan.newest_seen = page_newest
        if oldest_seen is None or page_oldest < oldest_seen:
            oldest_seen = page_oldest

    def note_total(page: TransactionPage) -> None:
        nonlocal total_records
        if page.total_records is not None:
            total_records = page.total_records

    def fetch_extra(number: int, size: int) -> TransactionPage:
        """A repair or re-read page; its rows this run has not read yet go to the writer."""
        if on_page is not None:  # the progress it already reported: lets the run stop us here
            on_page(scan.pages, total_pages)
        page = fetch_page(number, size)
        scan.extra_calls += 1
        note_total(page)
        if page.skipped:
            new = [entry for entry in page.skipped if _skipped_key(entry) not in skipped_keys]
            if new:
                counts.note_skipped(account, new)
                skipped_keys.update(_skipped_key(entry) for entry in new)
        new_rows = [bank_tx for bank_tx in page.transactions if bank_tx.transaction_id not in seen]
        add_rows(new_rows, [bank_tx.booking_date for bank_tx in new_rows])
        return page

    repair_pages: dict[tuple[int, int], TransactionPage] = {}

    def repair(groups: list[_TieGroup]) -> None:
        """One page covering each straddling group: its rows at those positions are the group."""
        for group in groups:
            covered = next(
                (
                    page
                    for (number, size), page in repair_pages.items()
                    if group.start // size == (group.end - 1) // size == number - 1
                ),
                None,
            )
            if covered is None:
                target = covering_page(group.start, group.end, max_limit)
                if target is None:
                    logger.info(
                        "account %s: %d rows tied at %s straddle pages, more than one page holds",
                        account.pk,
                        group.end - group.start,
                        group.booked.isoformat(),
                    )
                    continue
                covered = repair_pages[target] = fetch_extra(*target)
            tied = sum(1 for tx in covered.transactions if tx.booking_date == group.booked)
            if tied != group.end - group.start:  # the listing moved while we read
                logger.info(
                    "account %s: repair page has %d of %d rows tied at %s",
                    account.pk,
                    tied,
                    group.end - group.start,
                    group.booked.isoformat(),
                )

    def reread(size: int, *, until: int | None) -> None:
        """Page through again with another page size (and repair its own straddling groups);
        stops early once `until` rows are read."""
        ties = _TieTracker(size)
        number = 1
        while True:
            page = fetch_extra(number, size)
            ties.add(number, page, [bank_tx.booking_date for bank_tx in page.transactions])
            if until is not None and len(seen) + len(skipped_keys) >= until:
                return
            if not should_continue(page, number):
                break
            number += 1
        repair(ties.straddling)

    def stored_found() -> int:
        """An incremental read: the account's stored rows once this run's writes are done."""
        pending_rows.flush()
        stored = Transaction.objects.filter(account=account).count()
        leaving = sum(  # stored pending rows that the step is about to remove
            1 for booked in pending_stored.values() if oldest_seen is None or booked >= oldest_seen
        )
        return stored - leaving + len(skipped_keys)

    ties = _TieTracker(limit)
    found: int | None = None
    try:
        for page in fetcher.pages(fetch, should_continue):
            scan.pages += 1
            note_total(page)
            total_pages = page.total_pages
            if page.skipped:
                counts.note_skipped(account, page.skipped)
                skipped_keys.update(_skipped_key(entry) for entry in page.skipped)
            booked = [bank_tx.booking_date for bank_tx in page.transactions]
            add_rows(page.transactions, booked)
            ties.add(scan.pages, page, booked)
            if not should_continue(page, scan.pages):
                reached_end = not page.has_next
            if on_page is not None:
                on_page(scan.pages, total_pages)
        repair(ties.straddling)  # no call at all when no tie group straddles a boundary
        if total_records is not None:
            if reached_end:  # a full read: every row of the account went by
                found = len(seen) + len(skipped_keys)
                for size in reread_limits(limit, max_limit):
                    if found >= total_records:
                        break
                    logger.info(
                        "account %s: read %d of %d transactions, re-reading with limit %d",
                        account.pk,
                        found,
                        total_records,
                        size,
                    )
                    reread(size, until=total_records)
                    found = len(seen) + len(skipped_keys)
            else:  # incremental: the stored rows must add up to the bank's count
                found = stored_found()
                for size in reread_limits(limit, max_limit):
                    if found >= total_records:
                        break
                    logger.info(
                        "account %s: %d of %d transactions stored, re-reading the window with"
                        " limit %d",
                        account.pk,
                        found,
                        total_records,
                        size,
                    )
                    reread(size, until=None)
                    found = stored_found()
    except BaseException:
        # What was read before the failure is kept, as if written page by page; the watermark
        # does not move, so the next run reads these pages again and finds them stored.
        pending_rows.flush_after_failure()
        raise
    pending_rows.flush()

    if found is not None and total_records is not None and found < total_records:
        # Rows the bank counts but never listed (tied booking times across pages): keep the
        # watermark, and keep stored pending rows too (unseen is not the same as replaced).
        scan.complete = False
        counts.note_incomplete(account, found=found, total=total_records)
        logger.warning(
            "account %s (%s): %d of %d transactions after %d repair/re-read call(s); its"
            " watermark stays",
            account.pk,
            account.bank_account_id,
            found,
            total_records,
            scan.extra_calls,
        )
        return scan
    _remove_replaced_pending(
        account=account,
        pending_stored=pending_stored,
        window_start=None if reached_end else oldest_seen,
        counts=counts,
    )
    return scan


class _PendingRows:
    """Rows read but not written yet: written together once `limit` have gathered.

    One commit per few pages instead of one per page: fewer round trips, and on PostgreSQL one
    COPY per batch. A row the bank lists twice (a page boundary moving while we read) is kept
    once, as last read.
    """

    def __init__(
        self,
        *,
        account: Account,
        counts,
        fresh_ids: set[str] | None,
        limit: int,
        after_write: Callable[[], None] | None = None,
        categoriser: Categoriser | None = None,
    ):
        self.account = account
        self.counts = counts
        self.fresh_ids = fresh_ids
        self.limit = max(1, limit)
        self.after_write = after_write
        self.categoriser = categoriser or builtin_categoriser
        self.by_id: dict[str, BankTransaction] = {}

    def add(self, bank_transactions: list[BankTransaction]) -> None:
        for bank_tx in bank_transactions:
            self.by_id[bank_tx.transaction_id] = bank_tx
        if len(self.by_id) >= self.limit:
            self.flush()

    def flush(self) -> None:
        by_id, self.by_id = self.by_id, {}  # taken first: a failed write is not retried here
        if by_id:
            _write_rows(
                account=self.account,
                by_id=by_id,
                counts=self.counts,
                fresh_ids=self.fresh_ids,
                categoriser=self.categoriser,
            )
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


def _write_rows(
    *,
    account: Account,
    by_id: dict[str, BankTransaction],
    counts: TransactionCounts,
    fresh_ids: set[str] | None = None,
    categoriser: Categoriser | None = None,
) -> None:
    """Upsert a batch: new and changed rows in one INSERT … ON CONFLICT, identical ones skipped."""
    categoriser = categoriser or builtin_categoriser
    if fresh_ids is not None and fresh_ids.isdisjoint(by_id):
        fresh_ids.update(by_id)
        if _insert_new(account=account, by_id=by_id, counts=counts, categoriser=categoriser):
            return
    # The stored category and its source ride along: a row the user categorised keeps both.
    existing = {
        row[0]: row[1:]
        for row in Transaction.objects.filter(
            account=account, bank_transaction_id__in=list(by_id)
        ).values_list("bank_transaction_id", *COMPARED_FIELDS, "category_id", "category_source")
    }
    compared = len(COMPARED_FIELDS)
    rows: list[Transaction] = []
    for transaction_id, bank_tx in by_id.items():
        values = _bank_values(bank_tx)
        stored = existing.get(transaction_id)
        if stored is None:
            counts.added += 1
        elif _same(stored[:compared], values):
            counts.unchanged += 1
            continue
        else:
            counts.updated += 1
            counts.note_changed(stored[2])  # the old booking time leaves its day too
        counts.note_changed(bank_tx.booking_date)
        row = _row(account=account, bank_tx=bank_tx, values=values, categoriser=categoriser)
        # A correction landing between this SELECT and the upsert below is overwritten: the
        # window is one batch's write, and the user sees the bank's change and can correct again.
        if stored is not None and stored[compared + 1] == CategorySource.USER:
            row.category_id, row.category_source = stored[compared], CategorySource.USER
        rows.append(row)
    if rows:
        # The upsert is also the guard against a concurrent run inserting the same rows.
        with transaction.atomic():
            # Need not wait for the WAL flush: every write of this step is an idempotent upsert
            # of data the bank still holds, and the account's watermark only moves in the run's
            # final step, a normal synchronous commit. A server crash loses at most the last few
            # hundred ms of pages, whole; the watermark did not move, so the next run re-reads
            # and re-writes them.
            commit_without_wal_wait()
            _upsert(rows)


def _upsert(rows: list[Transaction]) -> None:
    """INSERT … ON CONFLICT (account, bank_transaction_id) DO UPDATE of the bank's fields."""
    Transaction.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["account", "bank_transaction_id"],
        update_fields=UPDATE_FIELDS,
    )


# Columns a COPY of new rows writes: every concrete column but the id, as the ORM writes them.
COPY_COLUMNS = (
    "user_id",
    "account_id",
    "bank_code",
    "bank_transaction_id",
    *COMPARED_FIELDS,
    "category_id",
    "category_source",
    "note",
    "is_own_transfer",
    "transfer_pair_id",
    "raw_json",
    "created_at",
    "updated_at",
)


def _insert_new(
    *,
    account: Account,
    by_id: dict[str, BankTransaction],
    counts,
    categoriser: Categoriser | None = None,
) -> bool:
    """Insert a batch known to be all new; False (nothing written, nothing counted) on a conflict.

    PostgreSQL gets a COPY of plain tuples: no model instances, no INSERT compiled per batch (the
    ORM's bulk upsert cost ~25 ms of CPU per 100 rows). A conflict (a concurrent writer of the
    same account) rolls the batch back, and the caller re-writes it through the lookup + upsert.
    """
    if db_connection.vendor != "postgresql":
        rows = [
            _row(
                account=account,
                bank_tx=bank_tx,
                values=_bank_values(bank_tx),
                categoriser=categoriser,
            )
            for bank_tx in by_id.values()
        ]
        with transaction.atomic():
            _upsert(rows)
    else:
        try:
            with transaction.atomic():
                commit_without_wal_wait()  # safe for the reason given in _write_rows
                _copy_rows(
                    account=account, bank_transactions=by_id.values(), categoriser=categoriser
                )
        except IntegrityError:
            logger.info("account %s: batch already partly stored, upserting it", account.pk)
            return False
    counts.added += len(by_id)
    for bank_tx in by_id.values():
        counts.note_changed(bank_tx.booking_date)
    return True


def copy_values(
    *,
    account: Account,
    bank_tx: BankTransaction,
    now: datetime,
    categoriser: Categoriser | None = None,
) -> tuple:
    """One COPY row (COPY_COLUMNS order): the very values `_row` gives the ORM."""
    values = _bank_values(bank_tx)
    category_id, category_source = (categoriser or builtin_categoriser)(values)
    return (
        account.user_id,
        account.pk,
        account.bank_code,
        bank_tx.transaction_id,
        *values,
        category_id,
        category_source,
        "",  # note
        False,
        None,
        # The item as the bank sent it, serialised by orjson (~20× json.dumps on a page); raw_json
        # is `json`, so COPY takes these bytes as they are.
        orjson.dumps(bank_tx.raw),
        now,
        now,
    )


def _copy_rows(
    *, account: Account, bank_transactions, categoriser: Categoriser | None = None
) -> None:
    """COPY new rows of one account into the transactions table (PostgreSQL)."""
    now = timezone.now()
    # Built before the COPY starts: categorising may query the database (its cache's first
    # fill), and this connection accepts no other statement until the COPY ends.
    rows = [
        copy_values(account=account, bank_tx=bank_tx, now=now, categoriser=categoriser)
        for bank_tx in bank_transactions
    ]
    copy_rows(Transaction, COPY_COLUMNS, rows)


def _same(stored: tuple, values: tuple) -> bool:
    return all(
        (a.quantize(CENT) == b if isinstance(a, Decimal) else a == b)
        for a, b in zip(stored, values, strict=True)
    )


def _category_id(values: tuple) -> int | None:
    """The category of a row from its `_bank_values` (COMPARED_FIELDS order: amount, …,
    description, merchant_name, merchant_category, mcc, …)."""
    return category_id_for(
        description=values[5], mcc=values[8], merchant_category=values[7], amount=values[0]
    )


def _row(
    *,
    account: Account,
    bank_tx: BankTransaction,
    values: tuple,
    categoriser: Categoriser | None = None,
) -> Transaction:
    category_id, category_source = (categoriser or builtin_categoriser)(values)
    return Transaction(
        user_id=account.user_id,
        account=account,
        bank_code=account.bank_code,
        bank_transaction_id=bank_tx.transaction_id,
        category_id=category_id,
        category_source=category_source,
        raw_json=bank_tx.raw,
        **dict(zip(COMPARED_FIELDS, values, strict=True)),
    )


def _remove_replaced_pending(
    *,
    account: Account,
    pending_stored: dict,
    window_start: datetime | None,
    counts: TransactionCounts,
) -> None:
    """Delete stored pending rows inside the scanned window that the bank no longer lists."""
    gone = [
        transaction_id
        for transaction_id, booked_at in pending_stored.items()
        if window_start is None or booked_at >= window_start
    ]
    if not gone:
        return
    with transaction.atomic():
        _total, per_model = Transaction.objects.filter(
            account=account, status=TransactionStatus.PENDING, bank_transaction_id__in=gone
        ).delete()
    counts.removed += per_model.get(Transaction._meta.label, 0)
    for transaction_id in gone:
        counts.note_changed(pending_stored[transaction_id])
