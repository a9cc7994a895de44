"""The transactions step: reading an account's pages from the bank, for banking.ingestion to store.

The bank ignores date filters and pages newest first (SPEC §4.4), so an incremental sync reads
pages until it reaches rows older than the watermark minus an overlap window. Each page's rows go
to the account's `TransactionWriter` (banking.ingestion.transactions), which writes them in
batches of a few pages, so memory stays flat however long the history. With lookahead, page N+1
is fetched on a helper thread (fintrack.core.concurrency.ReadAhead) while rows are written here:
bank calls overlap DB work, DB work stays on this thread.

The banks sort by booking time only (SPEC §17), so rows tied on one instant can be lost or
repeated across a page boundary. A page ending in tied rows is followed by one that begins at or
before them and holds their group whole (`PagePlan`); a group that still straddles a boundary
and lost a row is repaired with one page of another size that holds it whole; a read still short
of `meta.totalRecords` is re-read with other page sizes, and an account that stays short keeps
its watermark (see "Tied booking times").

The watermark never passes a row that was not stored: besides a short read, an item the bank sent
malformed is quarantined (banking.ingestion.quarantine) and holds its account's watermark at or
below its booking time until a later read stores it. Paging is bounded: a listing that does not
advance (a page repeating the one before, a page past the bank's own totalPages still saying
"next") stops the read with a BankPagingError.
"""

import logging
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection as db_connection

from banking.clients.errors import BankPagingError
from banking.clients.types import BankTransaction, TransactionPage
from banking.ingestion.quarantine import QuarantineKeeper, QuarantineState
from banking.ingestion.transactions import Categoriser, TransactionWriter, WriteCounts
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

    With lookahead, the helper reads the 1st, 2nd, … page of the read one after another (the
    bank's order; `fetch(n)` knows which page the n-th is) and queues up to `depth` of them
    while this thread writes: enough to cover a write batch, so bank calls
    go on during a batch's COPY and commit. It never fetches past the page `should_continue`
    refuses, and stops at the next page boundary when the reader goes away.
    """

    def __init__(
        self,
        *,
        lookahead: bool,
        depth: int | None = None,
        hold_until: threading.Event | None = None,
    ):
        if depth is None:
            batch_pages = -(-settings.SYNC_WRITE_BATCH_ROWS // max(1, settings.SYNC_PAGE_LIMIT))
            # Held, the helper may fetch a batch more meanwhile: two batches and one page.
            depth = batch_pages * (2 if hold_until is not None else 1) + 1
        self.depth = max(1, depth)
        self.lookahead = lookahead
        # Set by the caller once the reader may go on: until then no page is handed over (so
        # nothing is written), while the helper fetches ahead (sync.progressive's backfill
        # reads during the newest days' figures; see there).
        self.hold_until = hold_until
        self._readers: set[ReadAhead] = set()  # of readers not closed yet

    def pages(
        self,
        fetch: Callable[[int], TransactionPage],
        should_continue: Callable[[TransactionPage, int], bool],
    ) -> Iterator[TransactionPage]:
        """Yield the read's pages `fetch(1)`, `fetch(2)`, … until `should_continue(page, n)`
        says stop."""

        def in_order() -> Iterator[TransactionPage]:
            number = 1
            while True:
                page = fetch(number)
                yield page
                if not should_continue(page, number):
                    return
                number += 1

        if not self.lookahead:
            yield from self._held(in_order())
            return
        reader = ReadAhead(in_order, depth=self.depth, name="sync-page")
        self._readers.add(reader)
        try:
            yield from self._held(reader)
        finally:
            self._readers.discard(reader)
            reader.close()

    def _held(self, pages: Iterator[TransactionPage]) -> Iterator[TransactionPage]:
        for page in pages:
            if self.hold_until is not None:
                self.hold_until.wait()
            yield page

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
    # A `pausable` read stopped after its newest days, the older history still to read: resume
    # it (sync.progressive's backfill). None once it is resumed, and for any other read.
    paused: "PausedRead | None" = None

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
        self._last_number = 0
        self._tied_repeats = 0

    def check(self, number: int, page: TransactionPage) -> None:
        rows, last = page.transactions, self._last
        last_skipped, self._last, self._last_skipped = self._last_skipped, rows, page.skipped
        before, self._last_number = self._last_number, number
        if page.has_next and page.total_pages is not None and number > page.total_pages:
            raise self._error(
                f"page {number} still links a next page past the bank's totalPages"
                f" ({page.total_pages})"
            )
        if not rows and not last and page.skipped and page.skipped == last_skipped:
            # Pages of malformed items only, the same again: stuck all the same.
            raise self._error(f"page {number} repeats the items of page {before}")
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
        raise self._error(f"page {number} repeats the rows of page {before}")

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
# one page that covers all of them holds exactly the group.
#
# So the read does not cut tie groups where it can help it: when a page ends in a run of rows of
# one instant (a group that may go on), the next page is chosen to begin at or before that run's
# first row (`PagePlan`): page N of size L holds positions [(N-1)·L, N·L), so some size ≤ the
# configured one starts there or a little before and reaches well past the boundary. That page
# holds the whole group, at no extra call. On live-style data (most of a day's card rows share one
# instant) a plain grid of 100 cut a group at more than half its boundaries, nearly each of which
# lost a row and cost a repair page; the plan reads the same rows in ~1.17 calls per 100 rows
# instead of ~1.5, and a listing without ties pages exactly as before (no run, no overlap).
#
# What the plan could not hold (a group larger than a page, a boundary met before any tie was
# seen) is tracked (`_TieTracker`) and, if it really lost a row, repaired by one page of another
# size that covers it; what that cannot fix (positions unknown because a page was irregular, rows
# moving while we read) is caught by comparing the distinct rows read with `meta.totalRecords`,
# and re-reading with other page sizes.

BANK_MAX_PAGE_LIMIT = 100  # SPEC §4.4: limit 1..100
REREAD_ATTEMPTS = 3


def furthest_page(first: int, past: int, max_limit: int) -> tuple[int, int] | None:
    """(page, limit) of the page that begins at or before position `first` and reaches furthest
    past position `past` (the smallest such limit: the fewest rows read again), or None if no
    page of at most `max_limit` rows that begins there reaches past it."""
    best, best_end = None, past
    for size in range(1, max_limit + 1):
        start = first // size * size
        if start + size > best_end:
            best, best_end = (start // size + 1, size), start + size
    return best


@dataclass
class _TieOdds:
    """How often, in this account's reads so far, a page's last row had a tied row right after
    it (the next page's first position) although no row before it on the page shared its instant.
    Zero until seen: a listing without ties never pays for one."""

    watched: int = 0
    went_on: int = 0

    @property
    def single_goes_on(self) -> float:
        return self.went_on / self.watched if self.watched else 0.0


class PagePlan:
    """Which transaction page to ask for next, from the booking times of the page just read.

    A page ending in a run of rows of one instant may cut a tie group; the next page then begins
    at or before the run's first row, so it holds the group whole (see above), whenever that costs
    fewer calls than cutting it: a plain next page reads up to `max_limit` new rows but needs a
    repair page when the group goes on and loses a row (taken as certain for a run of two or more
    rows, and at the rate this account has shown for a single row, `_TieOdds`), a page that begins
    earlier reads fewer new rows. A page whose positions are uncertain (items that failed to
    parse, a short page before the last) is followed by the plain next page of its size.

    `keys` are the page's booking times, or anything equal exactly when they are (the bench's
    bare fetch passes the raw strings): the plan compares them, nothing else.
    """

    def __init__(self, max_limit: int, odds: _TieOdds | None = None):
        self.max_limit = max(1, max_limit)
        self.odds = odds if odds is not None else _TieOdds()
        self.next: tuple[int, int] = (1, self.max_limit)
        self._watch: tuple[int, object] | None = None  # (position, instant of the row before it)

    def advance(self, number: int, size: int, keys: list, *, has_next: bool, regular: bool) -> None:
        """The page (number, size) was read, showing rows booked at `keys`; sets `next`."""
        start = (number - 1) * size
        count = len(keys)
        end = start + count
        watch, self._watch = self._watch, None
        if watch is not None and start <= watch[0] < end and regular:
            self.odds.watched += 1
            self.odds.went_on += keys[watch[0] - start] == watch[1]
        self.next = (number + 1, size)
        if not regular or not has_next or count != size:
            return
        plain = furthest_page(end, end, self.max_limit) or self.next
        last = keys[-1]
        run = 1
        while run < count and keys[count - 1 - run] == last:
            run += 1
        if run == count:  # one instant fills the page: no page holds it and goes further
            self.next = plain
            return
        if run == 1:
            self._watch = (end, last)
        back = furthest_page(end - run, end, self.max_limit)
        goes_on = 1.0 if run > 1 else self.odds.single_goes_on
        if back is not None and _reach(back) - end > (_reach(plain) - end) / (1.0 + goes_on):
            self.next = back
        else:
            self.next = plain


def _reach(page: tuple[int, int]) -> int:
    number, size = page
    return number * size


@dataclass(slots=True)
class _TieGroup:
    booked: datetime
    start: int  # position of its first row in the bank's order (0-based)
    end: int  # position after its last row (as far as seen until it is closed)
    ids: set[str] = field(default_factory=set)  # the distinct rows seen at those positions
    crossed: bool = False  # seen on more than one page, none of which held it whole

    @property
    def may_miss_rows(self) -> bool:
        """Ties only permute within a group, so its positions hold exactly its rows and no other
        row is booked at its instant: as many distinct rows seen as positions are the whole
        group; fewer (a row seen twice, on two pages) means another was not listed."""
        return len(self.ids) < self.end - self.start


class _TieTracker:
    """The tie groups of one read that no page held whole and whose rows seen fall short.

    Fed each page in order with its position (pages may overlap, as `PagePlan` chooses them);
    costs a comparison or two per page when nothing ties. Only the group at the end of the rows
    read so far is open. A page whose positions are uncertain (items that failed to parse, a
    short page before the last) ends the tracking there: the completeness check stands behind it.
    """

    def __init__(self):
        self.straddling: list[_TieGroup] = []
        self._open: _TieGroup | None = None  # the group the last page ended in, if one follows

    def add(self, start: int, size: int, page: TransactionPage, booked: list[datetime]) -> None:
        group, self._open = self._open, None
        count = len(booked)
        if page.skipped or not count or (page.has_next and count != size):
            return
        rows = page.transactions
        if group is not None:
            instant = group.booked
            head = max(group.start - start, 0)  # the group's first position on this page
            stop = head
            while stop < count and booked[stop] == instant:
                stop += 1
            known = min(group.end - start, count)  # positions seen before, on this page too
            if (
                start > group.end
                or head > count
                or stop < known
                or (head and booked[head - 1] == instant)
            ):
                # The rows at the group's positions moved: the completeness check decides.
                logger.info("tie group at %s: the listing moved while read", instant.isoformat())
            else:
                group.ids.update(t.transaction_id for t in rows[head:stop])
                seen_to, group.end = group.end, max(group.end, start + stop)
                if stop == count and page.has_next:  # the page ends in it: it may go on
                    group.crossed = start > group.start
                    self._open = group
                    return
                if start > group.start and (group.end > seen_to or group.crossed):
                    # On two pages or more, none holding it whole (a page that began at or
                    # before its start did; so did the page before, if it ended with it).
                    group.crossed = True
                    if group.may_miss_rows:
                        self.straddling.append(group)
        if page.has_next:
            last = booked[-1]
            first = count - 1
            while first > 0 and booked[first - 1] == last:
                first -= 1
            if first or not start:  # its first position is known
                ids = {t.transaction_id for t in rows[first:]}
                self._open = _TieGroup(last, start + first, start + count, ids)


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


@dataclass
class _Resumed:
    """What a paused read goes on with: the backfill's counts, fetcher and callbacks."""

    counts: TransactionCounts
    fetcher: PageFetcher
    on_page: Callable[[int, int | None], None] | None
    after_write: Callable[[], None] | None


class PausedRead:
    """An account's read paused after its newest days (sync.progressive's first phase).

    Its rows so far are stored; `resume` goes on from the page after the last one read, with
    what the read knew (the rows it saw, its page plan and open tie group, the malformed items),
    so the backfill never asks for those pages again, and the read ends as a one-pass read of the
    account does: repaired, checked against totalRecords, its quarantine settled once. `close`
    ends it unresumed (the run failed, or the account is left to the next sync).
    """

    def __init__(self, steps: Generator[AccountScan, _Resumed, AccountScan]):
        self._steps = steps

    def resume(
        self,
        *,
        counts: TransactionCounts,
        fetcher: PageFetcher,
        on_page: Callable[[int, int | None], None] | None = None,
        after_write: Callable[[], None] | None = None,
    ) -> AccountScan:
        try:
            self._steps.send(_Resumed(counts, fetcher, on_page, after_write))
        except StopIteration as done:
            done.value.paused = None
            return done.value
        raise RuntimeError("a resumed read paused again")  # pragma: no cover

    def close(self) -> None:
        self._steps.close()


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
    stop_before: datetime | None = None,
    pausable: bool = False,
    categoriser: Categoriser | None = None,
) -> AccountScan:
    """Sync one account's transactions; returns the newest booking time seen (not yet stored).

    `stop_before` (an account with no watermark) reads only the rows booked from then on, like an
    incremental window; such a read is not checked against totalRecords and never completes the
    account (no watermark), unless the listing ended first: then it was a whole read after all,
    checked and complete as any. With `pausable` (sync.progressive's first phase) such a read
    that stops before the listing ends is kept as the scan's `paused`, to go on later from there
    (`PausedRead.resume`) as the whole read of the account.

    `after_write` is called after each batch is written (the run flushes its raw logs there).
    `categoriser`: the user's rules as the run read them once for all its accounts (else they
    are read here, for this account).
    Pages follow the `PagePlan` (a page ending in tied rows is followed by one holding their
    group whole); tie groups that still straddle a page boundary and lost a row are repaired
    after the page loop (one extra page each);
    a read that still falls short of `meta.totalRecords` is re-read with other page sizes, and
    if even that does not reach it, the scan says incomplete (the watermark stays). Items that
    fail to parse are quarantined; the scan says how far they let the watermark move.
    """
    steps = _account_read(
        client=client,
        account=account,
        client_id=client_id,
        consent_id=consent_id,
        counts=counts,
        fetcher=fetcher,
        on_page=on_page,
        after_write=after_write,
        stop_before=stop_before,
        pausable=pausable,
        categoriser=categoriser,
    )
    try:
        scan = next(steps)
    except StopIteration as done:
        return done.value
    scan.paused = PausedRead(steps)
    return scan


def _account_read(
    *,
    client,
    account: Account,
    client_id: str,
    consent_id: str,
    counts: TransactionCounts,
    fetcher: PageFetcher,
    on_page: Callable[[int, int | None], None] | None,
    after_write: Callable[[], None] | None,
    stop_before: datetime | None,
    pausable: bool,
    categoriser: Categoriser | None,
) -> Generator[AccountScan, _Resumed, AccountScan]:
    """account_transactions_sync's read, as a generator: `pausable`, a read of the newest rows
    (`stop_before`) whose listing goes on yields its scan once they are stored, and goes on with
    what it is sent (`_Resumed`) as the whole read of the account; it returns the final scan."""
    limit = settings.SYNC_PAGE_LIMIT
    max_limit = max(BANK_MAX_PAGE_LIMIT, limit)
    # The writer reads what it needs of the stored rows first (the pending ones among them).
    writer = TransactionWriter(
        account=account, counts=counts, after_write=after_write, categoriser=categoriser
    )
    quarantine = QuarantineKeeper(account=account)
    cutoff = None
    if account.transactions_synced_through is not None:
        cutoff = account.transactions_synced_through - timedelta(days=settings.SYNC_OVERLAP_DAYS)
        if writer.oldest_pending is not None:
            # Stored pending rows must all be re-seen: their posted twin replaces them under a
            # new id.
            cutoff = min(cutoff, writer.oldest_pending)
    elif stop_before is not None:
        cutoff = stop_before
    newest_only = cutoff is not None and account.transactions_synced_through is None
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
    odds = _TieOdds()  # shared by the read and its re-reads
    plan = PagePlan(limit, odds)
    # The read's n-th page → (page number, size, booking times): set where it is fetched (the
    # read-ahead thread, which follows the plan) before the page is handed on.
    placed: dict[int, tuple[int, int, list[datetime]]] = {}
    before = 0  # pages read before the current loop of pages (a paused read's first phase)

    def fetch(sequence: int) -> TransactionPage:
        number, size = plan.next
        page = fetch_page(number, size)
        repeats.check(number, page)  # on the read-ahead thread: it stops there too
        booked = [bank_tx.booking_date for bank_tx in page.transactions]
        placed[before + sequence] = (number, size, booked)
        plan.advance(number, size, booked, has_next=page.has_next, regular=not page.skipped)
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

    def add_unseen(rows: list[BankTransaction], booked: list[datetime], *, overlaps: bool) -> None:
        """A page's rows to the writer; of a page that `overlaps` positions read before (one the
        plan began earlier to hold a tie group whole, a repair, a re-read) only those this run
        has not read yet: it shows the others again by design. On a page that follows the one
        before, a row repeated (a tie group cut by the boundary) is written as last read."""
        if overlaps and any(bank_tx.transaction_id in seen for bank_tx in rows):
            kept = [i for i, bank_tx in enumerate(rows) if bank_tx.transaction_id not in seen]
            rows, booked = [rows[i] for i in kept], [booked[i] for i in kept]
        add_rows(rows, booked)

    def note_total(page: TransactionPage) -> None:
        nonlocal total_records
        if page.total_records is not None:
            total_records = page.total_records

    def pages_expected(read: int, end: int, size: int, bank_pages: int | None) -> int | None:
        """The read's pages once done, for its progress: those read, and what the bank still
        counts past position `end` in pages of `size` (the bank's totalPages of one size does not
        count a read whose pages change size)."""
        if total_records is None:
            return bank_pages
        return read + max(0, -(-(total_records - end) // max(size, 1)))

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
        rows = page.transactions
        add_unseen(rows, [bank_tx.booking_date for bank_tx in rows], overlaps=True)
        return page

    # The repair pages read: (page, size) → their rows' booking times (not the rows: an account
    # needing many repairs must not hold them all in memory).
    repair_pages: dict[tuple[int, int], list[datetime]] = {}

    def repair(groups: list[_TieGroup]) -> None:
        """One page covering each straddling group: its rows at those positions are the group."""
        for group in groups:
            covered = next(
                (
                    booked
                    for (number, size), booked in repair_pages.items()
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
                page = fetch_extra(*target)
                covered = repair_pages[target] = [tx.booking_date for tx in page.transactions]
            tied = sum(1 for booked in covered if booked == group.booked)
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
        """Page through again with pages of at most another size, as planned (and repair its own
        straddling groups); stops early once `until` rows are read."""
        ties = _TieTracker()
        guard = _RepeatGuard(account)
        replan = PagePlan(size, odds)
        sequence = 1
        while True:
            number, page_size = replan.next
            page = fetch_extra(number, page_size)
            guard.check(number, page)
            booked = [bank_tx.booking_date for bank_tx in page.transactions]
            replan.advance(
                number, page_size, booked, has_next=page.has_next, regular=not page.skipped
            )
            ties.add((number - 1) * page_size, page_size, page, booked)
            if until is not None and seen_found() >= until:
                return
            if not should_continue(page, sequence):
                break
            sequence += 1
        repair(ties.straddling)

    def stored_found() -> int:
        """An incremental read: the account's stored rows once this run's writes are done, and
        the malformed items read that are not among them. The stored rows as the database keeps
        their count (banking.models.AccountTransactionCount) when that is the bank's figure;
        counted otherwise."""
        unstored = quarantine.unstored_count()
        expected = None if total_records is None else total_records - unstored
        return writer.stored_count(window_start=oldest_seen, expected=expected) + unstored

    ties = _TieTracker()
    found: int | None = None
    read_to = 0  # the position after the last one the read's pages reached

    # A paused read's last positions: their booking times (which never depend on the page
    # asked for, ties or not) and the bank's count then, to see whether the listing moved before
    # the read resumed (see `moved_at_resume`).
    paused_at: tuple[int, int | None, dict[int, datetime]] | None = None

    def moved_at_resume(start: int, booked: list[datetime], page_total: int | None) -> bool:
        """Whether the listing moved while the read was paused: the bank counts other rows, or
        the positions this first resumed page shares with the pages before show other times."""
        assert paused_at is not None
        paused_to, paused_total, times = paused_at
        if page_total is not None and paused_total is not None and page_total != paused_total:
            return True
        shared = range(start, min(paused_to, start + len(booked)))
        return any(
            times.get(position, booked[position - start]) != booked[position - start]
            for position in shared
        )

    moved = False
    placed_last: dict[str, tuple[int, list[datetime]] | None] = {}  # the last page read

    def read_pages() -> None:
        """The read's pages from the plan's next one on, until `should_continue` stops it."""
        nonlocal before, read_to, total_pages, reached_end, moved
        before = scan.pages
        for page in fetcher.pages(fetch, should_continue):
            scan.pages += 1
            number, size, booked = placed.pop(scan.pages)
            start = (number - 1) * size
            if paused_at is not None and scan.pages == before + 1 and not moved:
                moved = moved_at_resume(start, booked, page.total_records)
            note_total(page)
            total_pages = pages_expected(scan.pages, start + size, size, page.total_pages)
            if page.skipped:
                quarantine.add(page.skipped)
                counts.note_skipped(account, page.skipped)
            add_unseen(page.transactions, booked, overlaps=start < read_to)
            read_to = max(read_to, start + size)
            ties.add(start, size, page, booked)
            if pausable:
                # Its positions are certain only on a full page of well-formed rows.
                regular = not page.skipped and len(booked) == size
                placed_last["page"] = (start, booked) if regular else None
            if not should_continue(page, scan.pages):
                reached_end = not page.has_next
            if on_page is not None:
                on_page(scan.pages, total_pages)

    try:
        read_pages()
        if pausable and newest_only and not reached_end:
            # The newest rows stored, the run makes its first figures of them; the older history
            # is read on from the next page when it resumes (what was read stays known: the
            # rows seen, the page plan, a tie group open at the boundary, malformed items).
            # Tie groups the pages so far cut are repaired now, not only at the end: the first
            # figures and "complete from" count every row of the newest days. The final repair
            # finds their pages read (no second call).
            repair(ties.straddling)
            writer.flush()
            scan.complete = False
            last_page = placed_last.get("page")
            resumed = yield scan
            counts, fetcher = resumed.counts, resumed.fetcher
            on_page, after_write = resumed.on_page, resumed.after_write
            writer.counts, writer.after_write = counts, after_write
            cutoff, newest_only = None, False
            scan.complete = True
            # The first page resumed shares a position at least with the last one read, so a
            # listing that moved meanwhile (rows booked or gone at the bank) shows.
            times: dict[int, datetime] = {}
            if last_page is not None:
                last_start, last_booked = last_page
                times = {last_start + i: when for i, when in enumerate(last_booked)}
                number, size = plan.next
                if (number - 1) * size >= read_to:
                    plan.next = furthest_page(read_to - 1, read_to, plan.max_limit) or plan.next
            paused_at = (read_to, total_records, times)
            read_pages()
            if moved:
                # Rows may have shifted past the boundary unseen: read the listing through once
                # more as it is now (rows already read are skipped), then check as always.
                logger.info(
                    "account %s: the listing moved while the read was paused; reading it again",
                    account.pk,
                )
                reread(limit, until=None)
        repair(ties.straddling)  # no call at all when no tie group straddles a boundary
        if newest_only and reached_end:
            cutoff = None  # the listing ended above stop_before: a whole read, checked as one
        newest_only = newest_only and not reached_end
        if total_records is not None and not newest_only:
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

    complete = not newest_only and not (
        found is not None and total_records is not None and found < total_records
    )
    # Every row of the account went by in this read (not only a window of it).
    whole = seen_found() >= total_records if total_records is not None else reached_end
    window_start = None if whole else oldest_seen
    scan.quarantine = quarantine.settle(
        stored_ids=seen, complete=complete, window_start=window_start
    )
    counts.quarantined += scan.quarantine.open_items
    if newest_only:
        scan.complete = False  # the older rows are the full read's (it comes next)
        return scan
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
