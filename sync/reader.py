"""The transactions step: reading an account's pages from the bank, for banking.ingestion to store.

The bank ignores date filters and pages newest first (SPEC §4.4), so an incremental sync reads
pages until it reaches rows older than the watermark minus an overlap window. Each page's rows go
to the account's `TransactionWriter` (banking.ingestion.transactions), which writes them in
batches of a few pages, so memory stays flat however long the history. With lookahead, page N+1
is fetched on a helper thread (fintrack.core.concurrency.ReadAhead) while rows are written here:
bank calls overlap DB work, DB work stays on this thread.

The banks sort by booking time only (SPEC §17), so rows tied on one instant can be lost or
repeated across a page boundary. A tie group straddling a boundary is repaired with one page of
another size that holds it whole; a read still short of `meta.totalRecords` is re-read with other
page sizes, and an account that stays short keeps its watermark (see "Tied booking times").

The watermark never passes a row that was not stored: besides a short read, an item the bank sent
malformed is quarantined (banking.ingestion.quarantine) and holds its account's watermark at or
below its booking time until a later read stores it. Paging is bounded: a listing that does not
advance (a page repeating the one before, a page past the bank's own totalPages still saying
"next") stops the read with a BankPagingError.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection as db_connection

from banking.clients.errors import BankPagingError
from banking.clients.types import BankTransaction, TransactionPage
from banking.ingestion.quarantine import QuarantineKeeper, QuarantineState
from banking.ingestion.transactions import TransactionWriter, WriteCounts
from banking.models import Account
from fintrack.core.concurrency import ReadAhead

logger = logging.getLogger(__name__)

MAX_PAGES_PER_ACCOUNT = 100_000  # a bank that always says "has next" must not loop forever
SKIPPED_SAMPLES_KEPT = 20
# A page of rows all tied on one instant may legitimately show the rows of the page before it
# (ties are ordered anew on each page); a listing that does so this many times in a row is stuck.
TIED_REPEATS_ALLOWED = 2


@dataclass
class TransactionCounts(WriteCounts):
    """What the transactions step did, summed over the run's accounts: the writes' counts, and
    the items skipped (unparseable) and accounts read short, for the run's warnings."""

    skipped: int = 0
    skipped_samples: list[dict] = field(default_factory=list)
    # Accounts whose rows fell short of the bank's totalRecords (their watermark stays); each
    # also has a warning among the samples, kept whatever the samples' limit.
    incomplete_accounts: list[dict] = field(default_factory=list)
    # Items still quarantined (malformed at the bank) on the accounts read, after this read.
    quarantined: int = 0

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
        self.quarantined += other.quarantined
        self.note_changed(other.changed_since)

    def note_incomplete(self, account: Account, *, found: int, total: int, why: str = "") -> None:
        """An account read short of the bank's count: reported in the run's warnings."""
        self.incomplete_accounts.append(
            {"account": account.bank_account_id, "found": found, "total": total}
        )
        self.skipped_samples.append(
            {
                "account": account.bank_account_id,
                "reason": (
                    f"incomplete read: {found} of {total} transactions the bank counts"
                    f" ({why or 'rows tied on booking time across pages, or a paging glitch?'});"
                    " the account's watermark did not move"
                ),
                "raw": "",
                "incomplete": True,
            }
        )

    def partial_reason(self) -> str:
        """Why a run that stored these counts is partial, or "" when nothing is missing."""
        parts = []
        if self.incomplete_accounts:
            short = ", ".join(
                f"{entry['account']}: {entry['found']} of {entry['total']}"
                for entry in self.incomplete_accounts[:5]
            )
            parts.append(
                f"{len(self.incomplete_accounts)} account(s) read short of the bank's count"
                f" ({short})"
            )
        if self.quarantined:
            parts.append(
                f"{self.quarantined} transaction(s) the bank sent malformed are held in quarantine"
            )
        if not parts:
            return ""
        return "Not everything was read: " + "; ".join(parts) + ". The next sync reads them again."

    def note_skipped(self, account: Account, items: list[dict]) -> None:
        """Items of a page that failed to parse: counted, a bounded sample kept."""
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


def prefetch_allowed() -> bool:
    """Lookahead needs a second DB connection (the client logs raw calls) that sees committed data.

    Not inside an outer transaction (a test's wrapper: the helper could not see its rows) and not
    on in-memory SQLite (threads share one connection there).
    """
    if not settings.SYNC_PREFETCH_PAGES:
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
        self.lookahead = lookahead
        self._readers: set[ReadAhead] = set()  # of readers not closed yet

    def pages(
        self,
        fetch: Callable[[int], TransactionPage],
        should_continue: Callable[[TransactionPage, int], bool],
    ) -> Iterator[TransactionPage]:
        """Yield pages 1, 2, … until `should_continue(page, number)` says stop."""

        def in_order() -> Iterator[TransactionPage]:
            number = 1
            while True:
                page = fetch(number)
                yield page
                if not should_continue(page, number):
                    return
                number += 1

        if not self.lookahead:
            yield from in_order()
            return
        reader = ReadAhead(in_order, depth=self.depth, name="sync-page")
        self._readers.add(reader)
        try:
            yield from reader
        finally:
            self._readers.discard(reader)
            reader.close()

    def close(self) -> None:
        """Stop any helper still running (a reader left open must not keep it waiting)."""
        for reader in list(self._readers):
            self._readers.discard(reader)
            reader.close()


@dataclass
class AccountScan:
    """Result of scanning one account: the newest booking time seen (the candidate watermark).

    `complete` is False when the rows read fall short of the bank's `meta.totalRecords` even
    after the repairs below: the account's watermark must not move then. `quarantine` says what
    the account's open quarantined items hold it to.
    """

    newest_seen: datetime | None = None
    pages: int = 0
    extra_calls: int = 0  # repair and re-read pages (tied booking times across page boundaries)
    complete: bool = True
    quarantine: QuarantineState = field(default_factory=QuarantineState)

    def watermark_after(self, old: datetime | None) -> datetime | None:
        """The account's new watermark after this scan, or None to leave it as it is.

        Never past a row not stored: not after a short read, not past the oldest open
        quarantined item's booking time, not at all while one's booking time is unknown.
        """
        if not self.complete or self.newest_seen is None or self.quarantine.booked_unknown:
            return None
        candidate = self.newest_seen
        held_at = self.quarantine.oldest_booked
        if held_at is not None and held_at < candidate:
            candidate = held_at
        return candidate if old is None or candidate > old else None


class _RepeatGuard:
    """Stops a listing that does not advance, page by page of one read.

    A page with the very rows (same ids, same order) of the page before it is a stuck listing,
    unless every row of both shares one booking time (a tie group larger than two pages may be
    shown so); a page past the bank's own `totalPages` that still says "next" is one too. Costs
    two comparisons a page when nothing repeats.
    """

    def __init__(self, account: Account):
        self.account = account
        self._last: list[BankTransaction] = []
        self._last_skipped: list[dict] = []
        self._tied_repeats = 0

    def check(self, number: int, page: TransactionPage) -> None:
        rows, last = page.transactions, self._last
        last_skipped, self._last, self._last_skipped = self._last_skipped, rows, page.skipped
        if page.has_next and page.total_pages is not None and number > page.total_pages:
            raise self._error(
                f"page {number} still links a next page past the bank's totalPages"
                f" ({page.total_pages})"
            )
        if not rows and not last and page.skipped and page.skipped == last_skipped:
            # Pages of malformed items only, the same again: stuck all the same.
            raise self._error(f"page {number} repeats the items of page {number - 1}")
        if (
            not rows
            or len(rows) != len(last)
            or rows[0].transaction_id != last[0].transaction_id
            or rows[-1].transaction_id != last[-1].transaction_id
            or [row.transaction_id for row in rows] != [row.transaction_id for row in last]
        ):
            self._tied_repeats = 0
            return
        instant = rows[0].booking_date
        if all(row.booking_date == instant for row in (*rows, *last)):
            self._tied_repeats += 1
            if self._tied_repeats <= TIED_REPEATS_ALLOWED:
                return
        raise self._error(f"page {number} repeats the rows of page {number - 1}")

    def _error(self, what: str) -> BankPagingError:
        account = self.account
        return BankPagingError(
            f"{account.bank_code} account {account.bank_account_id}: {what}; the listing does"
            " not advance, so the read stopped",
            bank_code=account.bank_code,
        )


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
        elif crossed and tail is not None and tail.may_miss_rows:  # it ended at this page's start
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
    if even that does not reach it, the scan says incomplete (the watermark stays). Items that
    fail to parse are quarantined; the scan says how far they let the watermark move.
    """
    limit = settings.SYNC_PAGE_LIMIT
    max_limit = max(BANK_MAX_PAGE_LIMIT, limit)
    # The writer reads what it needs of the stored rows first (the pending ones among them).
    writer = TransactionWriter(account=account, counts=counts, after_write=after_write)
    quarantine = QuarantineKeeper(account=account)
    cutoff = None
    if account.transactions_synced_through is not None:
        cutoff = account.transactions_synced_through - timedelta(days=settings.SYNC_OVERLAP_DAYS)
        if writer.oldest_pending is not None:
            # Stored pending rows must all be re-seen: their posted twin replaces them under a
            # new id.
            cutoff = min(cutoff, writer.oldest_pending)
    scan = AccountScan()
    reached_end = False
    oldest_seen: datetime | None = None
    seen: set[str] = set()  # ids read by this run: what a complete read counts
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

    repeats = _RepeatGuard(account)

    def fetch(number: int) -> TransactionPage:
        page = fetch_page(number, limit)
        repeats.check(number, page)  # on the read-ahead thread: it stops there too
        return page

    def should_continue(page: TransactionPage, number: int) -> bool:
        if not page.has_next or number >= MAX_PAGES_PER_ACCOUNT:
            return False
        if not page.transactions and not page.skipped:
            return False
        if cutoff is not None and page.transactions:
            return min(t.booking_date for t in page.transactions) >= cutoff
        return True

    def add_rows(rows: list[BankTransaction], booked: list[datetime]) -> None:
        """Rows read (and their booking times) to the writer; the scan's range follows them."""
        nonlocal oldest_seen
        if not rows:
            return
        writer.add(rows)
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
            new = quarantine.add(page.skipped)
            if new:
                counts.note_skipped(account, new)
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

    def seen_found() -> int:
        """Distinct rows this run read: well-formed ones, and malformed ones not also read well."""
        return len(seen) + quarantine.unseen_count(seen)

    def reread(size: int, *, until: int | None) -> None:
        """Page through again with another page size (and repair its own straddling groups);
        stops early once `until` rows are read."""
        ties = _TieTracker(size)
        guard = _RepeatGuard(account)
        number = 1
        while True:
            page = fetch_extra(number, size)
            guard.check(number, page)
            ties.add(number, page, [bank_tx.booking_date for bank_tx in page.transactions])
            if until is not None and seen_found() >= until:
                return
            if not should_continue(page, number):
                break
            number += 1
        repair(ties.straddling)

    def stored_found() -> int:
        """An incremental read: the account's stored rows once this run's writes are done, and
        the malformed items read that are not among them."""
        return writer.stored_count(window_start=oldest_seen) + quarantine.unstored_count()

    ties = _TieTracker(limit)
    found: int | None = None
    try:
        for page in fetcher.pages(fetch, should_continue):
            scan.pages += 1
            note_total(page)
            total_pages = page.total_pages
            if page.skipped:
                quarantine.add(page.skipped)
                counts.note_skipped(account, page.skipped)
            booked = [bank_tx.booking_date for bank_tx in page.transactions]
            add_rows(page.transactions, booked)
            ties.add(scan.pages, page, booked)
            if not should_continue(page, scan.pages):
                reached_end = not page.has_next
            if on_page is not None:
                on_page(scan.pages, total_pages)
        repair(ties.straddling)  # no call at all when no tie group straddles a boundary
        if total_records is not None:
            # A full read counts the distinct rows it read. An incremental one reads a window:
            # the account's stored rows must add up to the bank's count, whether the listing
            # ended where expected or early (a paging glitch); short, the window is read again.
            incremental = cutoff is not None
            found = stored_found() if incremental else seen_found()
            for size in reread_limits(limit, max_limit):
                if found >= total_records:
                    break
                logger.info(
                    "account %s: %d of %d transactions %s, re-reading%s with limit %d",
                    account.pk,
                    found,
                    total_records,
                    "stored" if incremental else "read",
                    " the window" if incremental else "",
                    size,
                )
                reread(size, until=None if incremental else total_records)
                found = stored_found() if incremental else seen_found()
    except BaseException:
        # What was read before the failure is kept, as if written page by page; the watermark
        # does not move, so the next run reads these pages again and finds them stored.
        writer.flush_after_failure()
        raise
    writer.flush()

    complete = not (found is not None and total_records is not None and found < total_records)
    # Every row of the account went by in this read (not only a window of it).
    whole = seen_found() >= total_records if total_records is not None else reached_end
    window_start = None if whole else oldest_seen
    scan.quarantine = quarantine.settle(
        stored_ids=seen, complete=complete, window_start=window_start
    )
    counts.quarantined += scan.quarantine.open_items
    if quarantine.overflow:
        # More malformed items than are kept: those not kept hold the watermark where it is.
        scan.complete = False
        counts.note_incomplete(
            account,
            found=seen_found() - quarantine.overflow,
            total=total_records if total_records is not None else seen_found(),
            why=f"{quarantine.read_count} malformed items, more than are kept at once",
        )
    if found is not None and total_records is not None and found < total_records:
        # Rows the bank counts but never listed (tied booking times across pages, a paging
        # glitch): keep the watermark, and keep stored pending rows too (unseen is not the
        # same as replaced).
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
    writer.remove_replaced_pending(window_start=window_start)
    return scan
