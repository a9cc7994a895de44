"""How far a sync's transactions read is, by work: pages, not accounts (issue 24).

An account's share of the read is its pages, known once its first page says how many
(`totalPages`, or what `meta.totalRecords` leaves in pages of the size read); an account whose
first page has not come yet counts as the mean of those known (one page while none is known).
The run shows the pages done and expected (`SyncRun.pages_done`, `pages_total`, the ETA from
them) and its counts as the writer's batches commit them: `transactions_added` counts up
during the read instead of jumping at its end. The runner writes them at most once a second
(`WRITE_EVERY_SECONDS`): a read of thousands of pages costs a few UPDATEs of one row, not one
per page.
"""

import threading
from collections.abc import Sequence
from datetime import datetime

from sync.reader import TransactionCounts

# The run's progress row is written at most this often while pages are read (a step change,
# the end of a read and the heartbeat write too).
WRITE_EVERY_SECONDS = 1.0


class ReadProgress:
    """One transactions read over some accounts (one per `_transactions` call): pages read and
    expected per account, and the counts written so far; shared by the accounts' threads."""

    def __init__(self, *, base: TransactionCounts, per_account: Sequence[TransactionCounts]):
        self.lock = threading.RLock()
        self._base = base
        self._per_account = per_account
        count = len(per_account)
        self._pages = [0] * count
        self._totals: list[int | None] = [None] * count
        self._finished = [False] * count

    def page(self, index: int, pages_read: int, total_pages: int | None) -> None:
        """Account `index` has read `pages_read` pages of `total_pages` (None: not said)."""
        with self.lock:
            self._pages[index] = pages_read
            if total_pages:
                self._totals[index] = max(total_pages, pages_read)

    def finished(self, index: int) -> None:
        """Account `index` is read to its end (however many pages that took)."""
        with self.lock:
            self._finished[index] = True
            self._totals[index] = max(self._totals[index] or 0, self._pages[index], 1)
            self._pages[index] = self._totals[index] or 0

    def _units(self) -> tuple[float, float, bool]:
        """(pages done, pages expected, whether any account's count is known)."""
        known = [total for total in self._totals if total]
        guess = sum(known) / len(known) if known else 1.0
        done = expected = 0.0
        for pages, total, finished in zip(self._pages, self._totals, self._finished, strict=True):
            share = float(total) if total else guess
            expected += share
            if finished:
                done += share
            elif total:
                done += min(pages, total)
        return done, expected, bool(known)

    def fraction(self) -> float:
        """The share of the read done, 0–1 (every account finished: 1)."""
        with self.lock:
            if not self._pages:
                return 1.0
            done, expected, _known = self._units()
            return min(done / expected, 1.0) if expected else 1.0

    def pages(self) -> tuple[int, int | None]:
        """(pages done, pages expected): expected is None until a first page said its count."""
        with self.lock:
            done, expected, known = self._units()
            return int(done), (max(round(expected), int(done)) if known else None)

    def counts(self) -> dict[str, int | datetime | None]:
        """The run's transaction counts as written so far (earlier reads and attempts included),
        and the oldest booking time the writes touched (the days a retried run rebuilds)."""
        with self.lock:
            every = [self._base, *self._per_account]
            touched = [counts.changed_since for counts in every if counts.changed_since]
            return {
                "transactions_added": sum(counts.added for counts in every),
                "transactions_updated": sum(counts.updated for counts in every),
                "transactions_unchanged": sum(counts.unchanged for counts in every),
                "transactions_removed": sum(counts.removed for counts in every),
                "transactions_skipped": sum(counts.skipped for counts in every),
                "transactions_changed_since": min(touched, default=None),
            }
