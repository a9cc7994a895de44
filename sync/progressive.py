"""The progressive first sync: the newest days of every account first, then the whole history.

A new user should see figures in seconds, not after years of pages. A first sync of a connection
(no account has a watermark, nothing stored yet) reads its transactions in two phases of one run:

1. **recent**: each account's pages down to FIRST_SYNC_RECENT_DAYS back (the reader's
   `stop_before`), stored as any sync stores them; then the agreements step, the user's derived
   money data (aggregates, totals, next payments) and an analytics snapshot computed here and now,
   not debounced: the dashboard is `ready` while the run goes on, and says the history is still
   loading and how far back it reaches (analytics/history.py, from what is stored). An account
   whose listing ended within those days was read whole: it is done.
2. **backfill**: each other account's read goes on from the page after the last one phase 1
   read (sync.reader.PausedRead: the read paused there, knowing the rows it saw, its page plan,
   a tie group open at the boundary and the malformed items), to the end of the listing, and is
   checked against the bank's totalRecords as any full read: the newest days' pages are not
   asked for again. Its first page shares a position or more with the last one read (one page
   more at most): if the bank's count or the booking times at those positions changed, the
   listing moved while the read was paused (rows booked or gone: later rows may have shifted
   past the boundary unseen), so the read goes through the listing once more, rows already read
   skipped, before the count check.
   The watermarks move only in the run's final step, after this complete read: a backfill that
   fails leaves them unset, and the next attempt or sync reads the whole history again, finding
   what is stored: nothing is lost or stored twice. Its final figures are those of a one-pass
   sync: the same rows, and the snapshot of the same data.
   On PostgreSQL the backfill's reads start while phase 1's figures are computed: their helpers
   fetch the first pages (up to two write batches per account), so the bank's rate limit is not
   left idle for those seconds; no page is handed to a read, so no row is written, until the
   figures and the phase `backfill` are committed (`PageFetcher.hold_until`). The figures are
   those of the newest days alone, as when computed first (SQLite: one after the other).

One run with two phases rather than a follow-up run of kind `backfill`: the connection's lock (one
active run) covers the whole read, so no other full read starts between the phases and reads the
history twice; the watermark rules stay those of a one-pass sync; a retried attempt resumes with
the phase it had not finished (the run's `phase`); the run's progress shows both phases. The cost:
the backfill holds a sync worker, so a bank's first figures wait for a free one (onboarding starts
the banks at once; production runs four sync processes).
"""

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from analytics.services import analytics_recompute
from banking.models import Transaction
from banking.services.money import money_refresh_after_sync
from sync.models import SyncPhase, SyncRun, SyncStep
from sync.reader import TransactionCounts

logger = logging.getLogger(__name__)

# A progressive run's progress bar: the newest days, then agreements and the first figures, then
# the backfill (the one-pass transactions step runs from 20 to 90).
RECENT_SPAN = (20, 30)
FIGURES_AT = 31
BACKFILL_SPAN = (32, 90)


def applies(execution) -> bool:
    """Whether this full run (`sync.services._SyncExecution`, its accounts stored) reads its
    transactions progressively: a first sync of the connection, or a retry of one whose first
    phase had not finished.

    A run that completes a history a failed backfill left (rows stored, no account watermarked)
    is a plain full read, shown as phase `backfill`.
    """
    accounts = execution.accounts
    if not accounts or any(a.transactions_synced_through is not None for a in accounts):
        return False
    run = execution.run
    stored = Transaction.objects.filter(account__in=accounts).exists()
    if settings.FIRST_SYNC_RECENT_DAYS <= 0 or (stored and run.phase != SyncPhase.RECENT):
        if stored:
            _phase_set(run, SyncPhase.BACKFILL)
        return False
    return True


def transactions_and_agreements(execution, *, client_id: str, consent_id: str) -> None:
    """The transactions and agreements steps of a progressive run (see the module's docstring)."""
    try:
        _two_phases(execution, client_id=client_id, consent_id=consent_id)
    finally:
        # Reads not resumed (the run failed, or an account was left to the next sync) end here.
        for paused in execution.paused_reads.values():
            paused.close()
        execution.paused_reads.clear()


def _two_phases(execution, *, client_id: str, consent_id: str) -> None:
    run = execution.run
    stop_before = timezone.now() - timedelta(days=settings.FIRST_SYNC_RECENT_DAYS)
    _phase_set(run, SyncPhase.RECENT)
    execution._step(SyncStep.TRANSACTIONS)
    execution._transactions(
        client_id=client_id, consent_id=consent_id, stop_before=stop_before, span=RECENT_SPAN
    )
    rest = _history_left(execution)
    if not rest:
        # Every listing ended within the newest days: read whole, as a one-pass sync reads it.
        execution._step(SyncStep.AGREEMENTS)
        execution._agreements(client_id=client_id)
        return
    execution._step(SyncStep.AGREEMENTS, progress=RECENT_SPAN[1])
    execution._agreements(client_id=client_id)
    execution._set_progress(FIGURES_AT)
    # On PostgreSQL the backfill's first pages are fetched while the figures are computed (the
    # bank's rate limit would otherwise go unused that long), but none is handed to its read, so
    # nothing is written, before the figures and the phase are committed: they are those of the
    # newest days alone. Elsewhere the figures come first, then the backfill.
    figures_done = threading.Event()

    def figures() -> None:
        try:
            _recent_figures(execution)
            # Only now: a run seen in phase backfill has its newest days on the dashboard.
            _phase_set(run, SyncPhase.BACKFILL)
        finally:
            figures_done.set()  # a failure stops the reads (the run fails): let them see it

    beside = execution.reads_beside_work()
    if not beside:
        figures()
    execution._step(SyncStep.TRANSACTIONS, progress=BACKFILL_SPAN[0])
    execution._transactions(
        client_id=client_id,
        consent_id=consent_id,
        accounts=rest,
        span=BACKFILL_SPAN,
        meanwhile=figures if beside else None,
        hold_writes_until=figures_done if beside else None,
    )


def writes_of(counts: TransactionCounts) -> TransactionCounts:
    """What the first phase did to an account a fresh full read reads again (one whose read did
    not pause, so is not resumed): the rows it added, updated or removed. The rest (rows
    unchanged, items skipped, quarantined or short) is the full read's to count, or it would be
    counted twice."""
    kept = TransactionCounts(added=counts.added, updated=counts.updated, removed=counts.removed)
    kept.note_changed(counts.changed_since)
    return kept


def _history_left(execution) -> list:
    """The accounts whose older history is the backfill's: not read whole by the first phase (no
    watermark candidate) and holding rows. One with nothing stored had nothing to read (an empty
    listing, read whole); one whose first page held only malformed items keeps no watermark, so
    the next sync reads it whole."""
    unread = [a for a in execution.accounts if a.pk not in execution.watermarks]
    if not unread:
        return []
    holding = set(
        Transaction.objects.filter(account__in=unread)
        .values_list("account_id", flat=True)
        .distinct()
    )
    return [a for a in unread if a.pk in holding]


def _recent_figures(execution) -> None:
    """The first phase's rows made into figures now: aggregates, totals and next payments (under
    the user's aggregates lock, as the final step does), then a snapshot, computed here rather
    than by the debounced task, so the dashboard is ready as soon as this bank's newest days are.
    A failed snapshot is logged, not fatal: the run's final step asks for one again."""
    changed = execution.counts.changed_since
    money_refresh_after_sync(user=execution.user, since_date=changed.date() if changed else None)
    try:
        analytics_recompute(user=execution.user)
    except Exception:
        logger.exception("sync %s: the snapshot after the newest days failed", execution.run.pk)


def _phase_set(run: SyncRun, phase: str) -> None:
    if run.phase == phase:
        return
    run.phase = phase
    SyncRun.objects.filter(pk=run.pk).update(phase=phase)
