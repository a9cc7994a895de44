"""The sync orchestrator: starting runs (a bank's sync, a balances refresh) and running them.

`connection_sync_start` creates a queued run (the partial unique constraint
`one_active_sync_per_connection` is the cross-worker lock) and enqueues the task after commit;
`sync_run_execute` runs the steps accounts → balances → transactions → agreements → finalize
under the run's correlation id. Bank calls happen outside DB transactions; each step hands what
it read to banking.ingestion, whose writes are atomic upserts keyed on bank ids, and the
watermarks move only in the final step, so a failed run leaves nothing a later run would
duplicate. Products and agreements are optional steps: a bank error there ends the run `partial`
with the step's error (SyncRun.step_errors), everything else stored and the connection ready with
a warning; only those steps are retried, alone (`failed_steps_retry_schedule`/`_start`).
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db import connection as db_connection
from django.db.models import Q
from django.utils import timezone

from analytics.services import analytics_recompute_request
from audit.capture import RawLogBuffer
from audit.services import AuditAction, audit_event_record
from banking.clients import BankClient
from banking.clients.errors import (
    BankError,
    BankUnavailableError,
    ConsentRequiredError,
)
from banking.clients.types import BankAgreement, BankBalance
from banking.ingestion.accounts import accounts_store, balances_store
from banking.ingestion.transactions import categoriser_for
from banking.models import Account, BankConnection, ConnectionStatus
from banking.selectors.transactions import transaction_oldest_written_since
from banking.services.clients import bank_client_for, bank_display_name, team_secrets
from banking.services.connections import connection_mark_synced, connection_transition
from banking.services.money import money_refresh_after_sync
from consents import services as consent_services
from consents.models import Consent, ConsentKind, ConsentStatus
from fintrack.core.concurrency import Stopped, WorkerPool
from fintrack.core.correlation import correlation_scope
from fintrack.core.exceptions import Conflict
from fintrack.core.gc import fewer_collections
from fintrack.core.tasks import enqueue
from sync import progressive, steps
from sync.exceptions import ConsentRequired, SyncAlreadyRunning
from sync.models import (
    ACTIVE_SYNC_STATUSES,
    OptionalStep,
    SyncKind,
    SyncRun,
    SyncStatus,
    SyncStep,
    SyncTrigger,
)
from sync.progress import WRITE_EVERY_SECONDS as PROGRESS_WRITE_EVERY_SECONDS
from sync.progress import ReadProgress
from sync.reader import PageFetcher, PausedRead, TransactionCounts, account_transactions_sync
from sync.reader import prefetch_allowed as transactions_prefetch_allowed
from sync.selectors import sync_run_active

logger = logging.getLogger(__name__)

# Where each step starts on the progress bar; transactions fill most of it.
STEP_PROGRESS: dict[str, int] = {
    SyncStep.CONSENTS: 2,
    SyncStep.ACCOUNTS: 5,
    SyncStep.BALANCES: 10,
    SyncStep.TRANSACTIONS: 20,
    SyncStep.AGREEMENTS: 90,
    SyncStep.FINALIZING: 95,
    SyncStep.DONE: 100,
}
_ERROR_LENGTH = 2000
# How far another worker's clock may be behind this one's (_changed_since_recover).
_CLOCK_SKEW_MARGIN = timedelta(minutes=5)
# A running run writes its heartbeat at least this often (the reaper's sign of life).
HEARTBEAT_EVERY_SECONDS = 10


# --- Starting a run -----------------------------------------------------------------------------


def connection_sync_start(
    *, connection: BankConnection, trigger: str, kind: str = SyncKind.FULL
) -> tuple[SyncRun, bool]:
    """Queue a run for the connection, or return the active one (created=False)."""

    for _attempt in range(3):
        try:
            with transaction.atomic():
                run = SyncRun.objects.create(
                    connection=connection, user_id=connection.user_id, kind=kind, trigger=trigger
                )
        except IntegrityError:
            active = sync_run_active(connection=connection)
            if active is not None:
                return active, False
            continue  # the active run finished between our insert and the lookup: try again
        # robust: a broker that is down must not undo the run (the reaper sends it again).
        transaction.on_commit(partial(sync_run_send, sync_run_id=run.pk), robust=True)
        return run, True
    raise SyncAlreadyRunning("Another sync of this bank keeps starting; try again shortly.")


def sync_run_send(*, sync_run_id: int) -> bool:
    """Send the run's task message; False (logged) when the broker cannot take it now.

    A run whose message did not leave stays queued: the reaper (sync/reaper.py) sends it again.
    """
    from sync.tasks import connection_sync

    try:
        connection_sync.delay(sync_run_id)
    except Exception as exc:  # kombu/redis errors differ by transport; all mean "not sent"
        logger.warning(
            "sync run %s: task not sent (%s); the reaper will resend it", sync_run_id, exc
        )
        return False
    return True


def failed_steps_retry_schedule(*, sync_run_id: int, retry_after: float = 0) -> bool:
    """Send the retry of a partial run's failed optional steps, in SYNC_STEP_RETRY_SECONDS (with
    jitter; at least the bank's Retry-After); False when the broker cannot take it.

    One retry per run, not a chain: an outage of the agreements route costs a bank two tries an
    hour, not a backoff series. A retry not sent is no loss: every full sync does these steps.
    """
    from sync.tasks import failed_steps_retry

    base = float(settings.SYNC_STEP_RETRY_SECONDS)
    countdown = max(random.uniform(base / 2, base), float(retry_after or 0))
    return enqueue(failed_steps_retry, sync_run_id, countdown=countdown)


def failed_steps_retry_start(*, sync_run_id: int) -> SyncRun | None:
    """Start a run of the optional steps alone (kind `agreements`) for a partial run whose steps
    failed retryably, unless something newer happened to its connection; the new run or None."""
    run = SyncRun.objects.select_related("connection").filter(pk=sync_run_id).first()
    if (
        run is None
        or run.status != SyncStatus.PARTIAL
        or run.kind != SyncKind.FULL
        or not any(entry.get("retryable") for entry in run.step_errors or [])
    ):
        return None
    connection = run.connection
    if connection.status != ConnectionStatus.READY:
        return None  # reconnecting, failing or syncing: the next full sync does the steps
    if SyncRun.objects.filter(connection=connection, pk__gt=run.pk).exists():
        return None  # a later run did them (or is about to)
    retry, created = connection_sync_start(
        connection=connection, trigger=SyncTrigger.STEP_RETRY, kind=SyncKind.AGREEMENTS
    )
    return retry if created else None


def bank_sync_request(
    *, user, bank_code: str, trigger: str = SyncTrigger.USER, kind: str = SyncKind.FULL
) -> tuple[SyncRun, bool]:
    """Start a sync of the user's bank (needs an authorised consent); (run, created)."""
    bank_display_name(bank_code)  # UnknownBank for an unconfigured code
    connection = BankConnection.objects.filter(user=user, bank_code=bank_code).first()
    if connection is None or _accounts_consent_usable(user=user, bank_code=bank_code) is None:
        extra = {"bank_code": bank_code, "connect_url": f"/api/banks/{bank_code}/connect"}
        message = f"Connect {bank_display_name(bank_code)} and approve access before syncing."
        problem = _consent_problem_show(connection) if connection is not None else None
        if problem is not None:
            message = problem.message
            extra.update(reason=problem.reason, connection_status=problem.connection_status)
        raise ConsentRequired(message, extra=extra)
    return connection_sync_start(connection=connection, trigger=trigger, kind=kind)


def _consent_problem_show(connection: BankConnection):
    """A sync asked for without a usable account consent: what FinTrack learnt (a consent past
    its expiry is expired now) is shown on the connection at once; the problem, or None."""
    user, bank_code = connection.user, connection.bank_code
    consent_services.consent_expire_outdated(
        user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS
    )
    problem = consent_services.accounts_consent_problem(user=user, bank_code=bank_code)
    if problem is not None and connection.status != ConnectionStatus.NOT_CONNECTED:
        connection.refresh_from_db(fields=["status", "status_reason", "last_error"])
        if (connection.status, connection.status_reason) != (
            problem.connection_status,
            problem.reason,
        ):
            connection_status_set(
                connection=connection,
                to_status=problem.connection_status,
                error=problem.message,
                reason=problem.reason,
            )
    return problem


# A balances refresh asks the connections that synced before (a failed one may have recovered).
BALANCES_REFRESHABLE_STATUSES = (ConnectionStatus.READY, ConnectionStatus.ERROR)


def balances_refresh_request(*, user) -> list[tuple[SyncRun, bool]]:
    """Start a balances-only sync of each of the user's ready or failed connections."""
    refreshable = list(
        BankConnection.objects.filter(user=user, status__in=BALANCES_REFRESHABLE_STATUSES).order_by(
            "bank_code"
        )
    )
    if not refreshable:
        raise Conflict(
            "No connected bank to refresh: connect a bank first.", extra={"connections": 0}
        )
    return [
        connection_sync_start(
            connection=connection, trigger=SyncTrigger.USER, kind=SyncKind.BALANCES
        )
        for connection in refreshable
    ]


def _accounts_consent_usable(*, user, bank_code: str) -> Consent | None:
    """The authorised accounts consent; a pending one is polled once at the bank first."""
    consent = consent_services.consent_active(
        user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS
    )
    if consent is not None:
        return consent
    pending = consent_services.consent_pending(
        user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS
    )
    if pending is None or not consent_services.consent_awaits_approval(consent=pending):
        return None  # none, or its approval timed out (expired now: the connection says so)
    try:
        refreshed = consent_services.consent_refresh(consent=pending) or pending
    except BankError as exc:
        logger.info("consent poll for %s/%s failed: %s", user.pk, bank_code, exc)
        return None
    return refreshed if refreshed.status == ConsentStatus.AUTHORIZED else None


def connection_status_set(
    *,
    connection: BankConnection,
    to_status: str,
    error: str = "",
    reason: str = "",
    next_retry_at: datetime | None = None,
) -> None:
    """Move the connection unless it is there already; a refused move is logged, not raised."""
    if connection.status == to_status and not error and next_retry_at is None:
        return
    if connection.status == to_status == ConnectionStatus.SYNC_IN_PROGRESS:
        return
    try:
        connection_transition(
            connection=connection,
            to_status=to_status,
            error=error,
            reason=reason,
            next_retry_at=next_retry_at,
        )
    except Exception as exc:  # an illegal transition must not turn a sync outcome into a crash
        logger.warning(
            "connection %s: %s → %s refused: %s", connection.pk, connection.status, to_status, exc
        )


# --- Running a run --------------------------------------------------------------------------------


def sync_run_execute(
    *, sync_run_id: int, retry_allowed: bool = False, task_id: str | None = None
) -> SyncRun | None:
    """Run one queued/running sync to its end; returns the run (None if it is gone).

    A worker claims the run first (queued → running in one conditional UPDATE): a duplicate
    message (re-sent by the reaper, redelivered by the broker) finds it claimed or finished and
    leaves it alone. The same message redelivered (`task_id` unchanged: the broker gives an
    unacknowledged message to another worker only when its holder died) takes the run over.
    With `retry_allowed`, a BankUnavailableError puts the run back in the queue
    and is re-raised for the task to retry; otherwise it fails the run like any terminal error.
    """
    claimable = Q(status=SyncStatus.QUEUED)
    if task_id:
        claimable |= Q(status=SyncStatus.RUNNING, task_id=task_id)
    claimed = SyncRun.objects.filter(claimable, pk=sync_run_id).update(
        status=SyncStatus.RUNNING,
        task_id=task_id or "",
        heartbeat_at=timezone.now(),
        next_retry_at=None,
    )
    run = SyncRun.objects.select_related("connection", "user").filter(pk=sync_run_id).first()
    if run is None or not claimed:
        return run
    with correlation_scope(str(run.correlation_id)), fewer_collections():
        _SyncExecution(run).execute(retry_allowed=retry_allowed)
    return run


def bank_unavailable_reason(exc: BankUnavailableError) -> str:
    """The connection's status_reason for a bank that failed: throttled (429), unreachable
    (timeout, connection refused: no status) or unavailable (5xx)."""
    if exc.status_code == 429:
        return "bank_throttled"
    if exc.status_code is None:
        return "bank_unreachable"
    return "bank_unavailable"


def sync_run_retry_wait(
    *, sync_run_id: int, exc: BankUnavailableError, countdown: float, retry: int, retries: int
) -> None:
    """A run waits `countdown` seconds to retry after its bank failed (retry number `retry` of
    `retries`): the run and its connection show when (retrying, next_retry_at) and why."""
    next_retry_at = timezone.now() + timedelta(seconds=countdown)
    with transaction.atomic():
        waiting = SyncRun.objects.filter(pk=sync_run_id, status=SyncStatus.QUEUED).update(
            next_retry_at=next_retry_at
        )
        connection = BankConnection.objects.filter(sync_runs__pk=sync_run_id).first()
        if not waiting or connection is None:
            return
        name = bank_display_name(connection.bank_code)
        connection_status_set(
            connection=connection,
            to_status=ConnectionStatus.RETRYING,
            error=(
                f"{name} is not answering ({exc.message}); FinTrack tries again at "
                f"{next_retry_at:%H:%M:%S} UTC (retry {retry} of {retries})."
            ),
            reason=bank_unavailable_reason(exc),
            next_retry_at=next_retry_at,
        )


def sync_run_fail(*, sync_run: SyncRun, error: str, error_code: str) -> SyncRun:
    """Mark an active run failed (e.g. after its retries ran out) and the connection in error."""
    if sync_run.status not in ACTIVE_SYNC_STATUSES:
        return sync_run
    with correlation_scope(str(sync_run.correlation_id)):
        _SyncExecution(sync_run).fail(
            error=error, error_code=error_code, connection_status=ConnectionStatus.ERROR
        )
    return sync_run


def _reads_on_threads() -> bool:
    """Whether accounts may be read on worker threads, each with its own DB connection:
    PostgreSQL, with lookahead allowed (one writer at a time on SQLite)."""
    return db_connection.vendor == "postgresql" and transactions_prefetch_allowed()


def _transactions_workers(accounts: int) -> int:
    """How many accounts' transactions are read at once: SYNC_PARALLEL_ACCOUNTS where they may
    be read on threads (`_reads_on_threads`), else one."""
    if not _reads_on_threads():
        return 1
    return max(1, min(settings.SYNC_PARALLEL_ACCOUNTS, accounts))


def _each_account(
    accounts: list[Account],
    job: Callable[[int, Account], None],
    *,
    workers: int,
    name: str,
    stop: threading.Event | None = None,
    meanwhile: Callable[[], None] | None = None,
    pooled: bool = False,
) -> None:
    """`job(index, account)` for every account: here one after another when `workers` is 1
    (unless `pooled`), else on a WorkerPool of that many threads (each keeps one DB
    connection), whose first failure is raised once every thread has ended. `meanwhile()` runs
    on this thread: after the jobs when they run here, while they run on the pool otherwise (its
    failure stops them)."""
    if workers == 1 and not pooled:
        for index, account in enumerate(accounts):
            job(index, account)
        if meanwhile is not None:
            meanwhile()
        return
    with WorkerPool(workers=workers, stop=stop, name=name) as pool:
        for index, account in enumerate(accounts):
            pool.submit(job, index, account)
        if meanwhile is not None:
            meanwhile()


@dataclass(frozen=True)
class _AgreementsListed:
    """The agreements' list as the bank gave it, and the product consent it was asked under."""

    consent: Consent
    agreements: list[BankAgreement]


class _SyncExecution:
    """State of one attempt of one run: counts so far and the watermarks to write at the end."""

    def __init__(self, run: SyncRun):
        self.run = run
        self._last_beat = time.monotonic()
        self._last_progress_write = 0.0  # the transactions read's last progress write
        self.connection = run.connection
        self.user = run.user
        self.bank_code = run.connection.bank_code
        self.client: BankClient | None = None  # once the run's checks passed
        # Raw logs of this run's bank calls, written with each batch of transactions (on a writer
        # thread where a second DB connection is possible) and at the end.
        self.raw_logs = RawLogBuffer(
            user=self.user,
            secrets=team_secrets(),
            background=transactions_prefetch_allowed(),
        )
        self.calls_before = run.bank_calls
        # Rows written by an earlier attempt of this run stay counted as written, and the days
        # they touched are rebuilt at the end (this attempt finds those rows stored already).
        self.counts = TransactionCounts(
            added=run.transactions_added,
            updated=run.transactions_updated,
            removed=run.transactions_removed,
            skipped=run.transactions_skipped,
            skipped_samples=list(run.warnings or []),
            changed_since=run.transactions_changed_since,
        )
        self.watermarks: dict[int, datetime] = {}
        # A progressive first sync's reads paused after the newest days, by account: the
        # backfill resumes each where it stopped (sync.progressive).
        self.paused_reads: dict[int, PausedRead] = {}
        self.accounts: list[Account] = []
        # Optional steps this attempt could not do (products, agreements): the run ends partial.
        self.step_errors: list[dict] = []

    @property
    def bank(self) -> BankClient:
        """The run's bank client, for the steps (which run only once it exists)."""
        if self.client is None:
            raise RuntimeError("the run's steps started without a bank client")
        return self.client

    # Progress and counts ---------------------------------------------------------------------

    def _step(self, step: str, progress: int | None = None) -> None:
        self.run.step = step
        self.run.progress = STEP_PROGRESS.get(step, 0) if progress is None else progress
        self._last_beat = time.monotonic()
        SyncRun.objects.filter(pk=self.run.pk).update(
            step=self.run.step, progress=self.run.progress, heartbeat_at=timezone.now()
        )

    def _set_progress(self, progress: int) -> None:
        progress = max(0, min(99, progress))
        now = time.monotonic()
        if progress != self.run.progress or now - self._last_beat >= HEARTBEAT_EVERY_SECONDS:
            self.run.progress = progress
            self._last_beat = now
            SyncRun.objects.filter(pk=self.run.pk).update(
                progress=progress, heartbeat_at=timezone.now()
            )

    def _read_progress(
        self, read: ReadProgress, span: tuple[int, int], *, force: bool = False
    ) -> None:
        """The transactions read's progress, pages and counts so far, written at most once a
        second (`force`: now, at the read's start and end); the progress never goes back."""
        now = time.monotonic()
        with read.lock:
            if not force and now - self._last_progress_write < PROGRESS_WRITE_EVERY_SECONDS:
                return
            start, end = span
            run = self.run
            run.progress = max(run.progress, min(99, start + int((end - start) * read.fraction())))
            run.pages_done, run.pages_total = read.pages()
            run.progress_updated_at = timezone.now()
            counts = read.counts()
            for name, value in counts.items():
                setattr(run, name, value)
            self._last_progress_write = self._last_beat = now
            SyncRun.objects.filter(pk=run.pk).update(
                progress=run.progress,
                pages_done=run.pages_done,
                pages_total=run.pages_total,
                progress_updated_at=run.progress_updated_at,
                heartbeat_at=run.progress_updated_at,
                **counts,
            )

    def _changed_since_recover(self) -> None:
        """The days an earlier attempt's writes touched, from the rows themselves: its counts
        are saved about once a second, so a worker killed right after a batch's commit left
        that batch out of `transactions_changed_since`, and this attempt finds those rows stored
        already (unchanged, not noted). Rows written since the run first started, less a
        margin for another worker's clock: a row written just before counts too, and rebuilding
        a day more is only more work."""
        started = self.run.started_at or timezone.now()  # set before the attempts' steps
        oldest = transaction_oldest_written_since(
            accounts=Account.objects.filter(connection=self.connection),
            since=started - _CLOCK_SKEW_MARGIN,
        )
        self.counts.note_changed(oldest)

    def _apply_counts(self) -> None:
        run = self.run
        run.transactions_added = self.counts.added
        run.transactions_updated = self.counts.updated
        run.transactions_unchanged = self.counts.unchanged
        run.transactions_removed = self.counts.removed
        run.transactions_skipped = self.counts.skipped
        run.transactions_changed_since = self.counts.changed_since
        run.warnings = self.counts.skipped_samples
        run.bank_calls = self.calls_before + (self.client.calls_made if self.client else 0)

    # The run -----------------------------------------------------------------------------------

    def execute(self, *, retry_allowed: bool) -> None:
        run = self.run
        first_attempt = run.attempts == 0
        run.attempts += 1
        run.status = SyncStatus.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.error = ""
        run.error_code = ""
        run.step = SyncStep.CONSENTS
        run.progress = STEP_PROGRESS[SyncStep.CONSENTS]
        run.save(
            update_fields=[
                "attempts",
                "status",
                "started_at",
                "error",
                "error_code",
                "step",
                "progress",
            ]
        )
        if not first_attempt:
            self._changed_since_recover()
        if first_attempt:
            audit_event_record(
                action=AuditAction.SYNC_STARTED,
                user=self.user,
                obj=run,
                bank_code=self.bank_code,
                correlation_id=str(run.correlation_id),
                details={"trigger": run.trigger, "kind": run.kind},
            )
        consent = None
        try:
            consent = self._accounts_consent()
            if consent is None:
                self._fail_without_consent()
                return
            if not self.connection.client_id:
                self.fail(
                    error=(
                        f"No bank client id is set for {bank_display_name(self.bank_code)}: "
                        "connect the bank with your client id."
                    ),
                    error_code="no_client_id",
                    connection_status=ConnectionStatus.ERROR,
                )
                return
            connection_status_set(
                connection=self.connection, to_status=ConnectionStatus.SYNC_IN_PROGRESS
            )
            self.client = bank_client_for(self.bank_code, user=self.user, raw_logs=self.raw_logs)
            self._run_steps(consent=consent, client_id=self.connection.client_id)
        except ConsentRequiredError as exc:
            if consent is not None:
                consent_services.consent_invalidate(consent=consent, reason=exc.message[:255])
            self._fail_without_consent(bank_message=exc.message)
        except BankUnavailableError as exc:
            if retry_allowed:
                # Back in the queue while it waits: the lock stays held, the reaper knows it is
                # not a dead worker's, and the task sets next_retry_at once it knows the delay.
                self._apply_counts()
                run.status = SyncStatus.QUEUED
                run.step = SyncStep.QUEUED
                run.error = f"Bank unavailable, will retry: {exc.message}"[:_ERROR_LENGTH]
                run.save(update_fields=[*_COUNT_FIELDS, "error", "status", "step"])
                raise
            self.fail(
                error=f"{bank_display_name(self.bank_code)} is unavailable: {exc.message}",
                error_code=exc.code,
                connection_status=ConnectionStatus.ERROR,
                reason=bank_unavailable_reason(exc),
            )
        except BankError as exc:
            self.fail(
                error=f"{bank_display_name(self.bank_code)}: {exc.message}",
                error_code=exc.code,
                connection_status=ConnectionStatus.ERROR,
            )
        except SoftTimeLimitExceeded:
            self.fail(
                error="The sync took longer than its time limit.",
                error_code="timeout",
                connection_status=ConnectionStatus.ERROR,
            )
        except (OperationalError, InterfaceError) as exc:
            # The database went away mid-run (failover, restart, a terminated backend): nothing
            # half-written survives a rollback and watermarks have not moved, so the run goes back
            # to the queue and starts again on a fresh connection.
            self._requeue_after_database_error(exc)
        except Exception as exc:
            logger.exception("sync run %s failed unexpectedly", run.pk)
            self.fail(
                error=f"Internal error: {type(exc).__name__}",
                error_code="internal_error",
                connection_status=ConnectionStatus.ERROR,
            )
        finally:
            self.raw_logs.close()
            if self.client is not None:
                self.client.close()

    def _requeue_after_database_error(self, exc: Exception) -> None:
        run = self.run
        logger.warning("sync run %s: database connection lost (%s)", run.pk, exc)
        db_connection.close()
        if run.attempts >= settings.SYNC_RUN_MAX_ATTEMPTS:
            self.fail(
                error=f"The database connection was lost {run.attempts} time(s) during the sync.",
                error_code="database_unavailable",
                connection_status=ConnectionStatus.ERROR,
            )
            return
        try:
            requeued = SyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).update(
                status=SyncStatus.QUEUED,
                step=SyncStep.QUEUED,
                error=f"Database connection lost, starting again: {type(exc).__name__}",
            )
        except (OperationalError, InterfaceError) as again:
            # Still down: the run stays running without a heartbeat, and the reaper requeues it.
            logger.warning("sync run %s: not requeued (%s); left to the reaper", run.pk, again)
            db_connection.close()
            return
        if requeued:
            run.status = SyncStatus.QUEUED
            sync_run_send(sync_run_id=run.pk)

    def _accounts_consent(self) -> Consent | None:
        return _accounts_consent_usable(user=self.user, bank_code=self.bank_code)

    def _fail_without_consent(self, *, bank_message: str = "") -> None:
        """No usable account consent (none, or the bank refused it): the run fails and the
        connection says why (consent_required with its reason, or consent_pending while a new
        request waits), as consents words it."""
        consent_services.consent_expire_outdated(
            user=self.user, bank_code=self.bank_code, kind=ConsentKind.ACCOUNTS
        )
        problem = consent_services.accounts_consent_problem(
            user=self.user, bank_code=self.bank_code
        )
        name = bank_display_name(self.bank_code)
        if problem is None:
            # The bank refused a consent replaced meanwhile by its renewal: the next run uses it.
            problem = consent_services.ConsentProblem(
                connection_status=ConnectionStatus.ERROR,
                reason="consent_replaced",
                message=f"{name} refused the consent this sync started with; it was renewed "
                "meanwhile and the next sync uses the new one.",
            )
        error = problem.message
        if bank_message:
            error = f"{error} ({name} answered: {bank_message})"
        self.fail(
            error=error,
            error_code="consent_required",
            connection_status=problem.connection_status,
            reason=problem.reason,
        )

    def _run_steps(self, *, consent: Consent, client_id: str) -> None:
        consent_id = consent.bank_consent_id
        if self.run.kind == SyncKind.AGREEMENTS:
            # A retry of the optional steps alone: the accounts are those the run that failed
            # them stored (a minute ago); no account, balance or transaction is read again.
            self.accounts = list(
                Account.objects.filter(connection=self.connection, is_active=True).order_by("pk")
            )
            self._step(SyncStep.AGREEMENTS)
            self._agreements(client_id=client_id)
            self._finalize()
            return

        self._step(SyncStep.ACCOUNTS)
        bank_accounts = self.bank.list_accounts(client_id=client_id, consent_id=consent_id)
        self.accounts = accounts_store(connection=self.connection, bank_accounts=bank_accounts)
        self.run.accounts_count = len(self.accounts)
        SyncRun.objects.filter(pk=self.run.pk).update(accounts_count=self.run.accounts_count)

        first_sync = self.run.kind == SyncKind.FULL and progressive.applies(self)
        if (
            self.run.kind == SyncKind.FULL
            and not first_sync
            and _transactions_workers(len(self.accounts)) > 1
        ):
            # A later sync, several accounts at once: the transactions read is mostly database
            # work per account (little is new), so the balances' and agreements' calls take
            # the rate-limit slots it leaves free instead of waiting for it. A progressive first
            # sync reads the balances first: its first figures need them.
            self._overlapped_steps(client_id=client_id, consent_id=consent_id)
            self._finalize()
            return

        self._step(SyncStep.BALANCES)
        balances = self._balances_read(client_id=client_id, consent_id=consent_id)
        self.run.balances_count = balances_store(sync_run=self.run, balances=balances)

        if first_sync:
            # A first sync: the newest days read, stored and analysed first, then the rest.
            progressive.transactions_and_agreements(
                self, client_id=client_id, consent_id=consent_id
            )
        elif self.run.kind == SyncKind.FULL:
            self._step(SyncStep.TRANSACTIONS)
            self._transactions(client_id=client_id, consent_id=consent_id)
            self._step(SyncStep.AGREEMENTS)
            self._agreements(client_id=client_id)
        self._finalize()

    def _overlapped_steps(self, *, client_id: str, consent_id: str) -> None:
        """Transactions on the account threads; meanwhile the balances (as many at once, on
        threads of their own: bank calls alone) while this thread asks for the agreements' list,
        then the balances stored, then the agreements. A bank error in the balances stops the
        transactions read at its next page (the run retries as if the balances had failed
        first); the transactions' first failure is raised once the balances are stored, and the
        agreements are then not stored (nor asked for, if it came before the list)."""
        self._step(SyncStep.TRANSACTIONS)
        stop = threading.Event()
        listed: list[_AgreementsListed | None] = []

        def agreements_listed() -> None:
            # While the balances' calls are in flight; stored once the balances are (a loan's
            # remaining balance is its account's).
            if not stop.is_set():
                listed.append(self._agreements_list(client_id=client_id))

        def meanwhile() -> None:
            balances = self._balances_read(
                client_id=client_id,
                consent_id=consent_id,
                beside_transactions=True,
                meanwhile=agreements_listed,
            )
            self.run.balances_count = balances_store(sync_run=self.run, balances=balances)
            # A transactions read failed: the run fails or retries, the agreements not stored.
            if listed and listed[0] is not None and not stop.is_set():
                self._agreements(client_id=client_id, listed=listed[0])

        self._transactions(
            client_id=client_id, consent_id=consent_id, stop=stop, meanwhile=meanwhile
        )

    def _balances_read(
        self,
        *,
        client_id: str,
        consent_id: str,
        beside_transactions: bool = False,
        meanwhile: Callable[[], None] | None = None,
    ) -> list[tuple[Account, BankBalance]]:
        """Each account's balances, in the accounts' order. As many accounts at once as their
        transactions are read (one on SQLite): the step is bank calls alone (no database), so
        while one waits for the bank's answer the next takes its rate-limit slot. The first bank
        error is raised once every call has ended, as one after another would. Read
        `beside_transactions` (while they are read), without progress of their own: the
        transactions read's progress is the run's. `meanwhile()` runs on this thread while the
        calls are in flight (after them when one account is read at a time)."""
        accounts = self.accounts
        found: dict[int, BankBalance] = {}
        workers = _transactions_workers(len(accounts))

        def one_account(index: int, account: Account) -> None:
            found[index] = self.bank.get_balances(
                client_id=client_id, account_id=account.bank_account_id, consent_id=consent_id
            )
            if workers == 1 and not beside_transactions:  # the bar moves per account
                self._set_progress(self._within(SyncStep.BALANCES, index + 1, len(accounts)))

        _each_account(accounts, one_account, workers=workers, name="balances", meanwhile=meanwhile)
        if not beside_transactions:
            self._set_progress(self._within(SyncStep.BALANCES, 1, 1))
        return [(account, found[index]) for index, account in enumerate(accounts)]

    def _within(self, step: str, done: float, total: int) -> int:
        """Progress inside a step: from its start to the next step's start."""
        order = list(STEP_PROGRESS)
        start = STEP_PROGRESS[step]
        end = STEP_PROGRESS[order[order.index(step) + 1]]
        return start + int((end - start) * (done / total if total else 1))

    def reads_beside_work(self) -> bool:
        """Whether accounts may be read on worker threads while this thread does other work
        (`_transactions`' `meanwhile`, `hold_writes_until`): see `_reads_on_threads`."""
        return _reads_on_threads()

    def _transactions(
        self,
        *,
        client_id: str,
        consent_id: str,
        accounts: list[Account] | None = None,
        stop_before: datetime | None = None,
        span: tuple[int, int] | None = None,
        stop: threading.Event | None = None,
        meanwhile: Callable[[], None] | None = None,
        hold_writes_until: threading.Event | None = None,
    ) -> None:
        """Each account's transactions; several accounts at once where the database allows it.

        A progressive first sync (sync/progressive.py) calls it twice: with `stop_before` (the
        newest rows only; each account's read pauses there, kept in `paused_reads`), then for
        the `accounts` that read did not cover whole, resuming their reads where they stopped;
        each phase on its `span` of the progress bar. `meanwhile` runs on this thread while the
        accounts are read (see `_overlapped_steps`); `stop` stops them at their next page.
        With `hold_writes_until` (only where `reads_beside_work()`), the accounts are read on
        worker threads, their pages fetched ahead, but no page is handed to its read, so no row
        is written, until that event is set (by `meanwhile`).
        """
        accounts = self.accounts if accounts is None else accounts
        start, end = span or (
            STEP_PROGRESS[SyncStep.TRANSACTIONS],
            STEP_PROGRESS[SyncStep.AGREEMENTS],
        )
        workers = _transactions_workers(len(accounts))
        per_account = [TransactionCounts() for _ in accounts]
        # Progress by pages, counts as each batch commits (sync/progress.py), at most once a
        # second; one writer at a time (its lock), so the progress never goes back.
        read = ReadProgress(base=self.counts, per_account=per_account)
        self.run.pages_started_at = timezone.now()
        SyncRun.objects.filter(pk=self.run.pk).update(pages_started_at=self.run.pages_started_at)
        self._read_progress(read, (start, end), force=True)
        stop = threading.Event() if stop is None else stop
        # The user's category rules, read once for every account of the run (not per account).
        categoriser = categoriser_for(user_id=self.user.pk)

        def after_write() -> None:
            self.raw_logs.flush_soon()
            self._read_progress(read, (start, end))

        def one_account(index: int, account: Account) -> None:
            def on_page(page: int, total_pages: int | None) -> None:
                if stop.is_set():  # another account failed: this one stops at a page boundary
                    raise Stopped()
                read.page(index, page, total_pages)
                self._read_progress(read, (start, end))

            fetcher = PageFetcher(
                lookahead=transactions_prefetch_allowed(), hold_until=hold_writes_until
            )
            paused = self.paused_reads.pop(account.pk, None)
            try:
                if paused is not None:  # the backfill: on from the page the first phase reached
                    scan = paused.resume(
                        counts=per_account[index],
                        fetcher=fetcher,
                        on_page=on_page,
                        after_write=after_write,
                    )
                else:
                    scan = account_transactions_sync(
                        client=self.bank,
                        account=account,
                        client_id=client_id,
                        consent_id=consent_id,
                        counts=per_account[index],
                        fetcher=fetcher,
                        on_page=on_page,
                        after_write=after_write,
                        stop_before=stop_before,
                        pausable=stop_before is not None,  # a progressive sync's newest days
                        categoriser=categoriser,
                    )
                    if scan.paused is not None:
                        self.paused_reads[account.pk] = scan.paused
            finally:
                fetcher.close()
            read.finished(index)
            # Never past a row not stored: an incomplete read (rows the bank counts but never
            # listed) keeps the watermark, a quarantined item holds it at its booking time.
            watermark = scan.watermark_after(account.transactions_synced_through)
            if watermark is not None:
                self.watermarks[account.pk] = watermark

        try:
            # The first failure stops the other accounts at their next page (on_page).
            _each_account(
                accounts,
                one_account,
                workers=workers,
                name="sync",
                stop=stop,
                meanwhile=meanwhile,
                pooled=hold_writes_until is not None,
            )
        finally:
            # Rows written before a failure stay counted (a retried run starts from these).
            for account, counts in zip(accounts, per_account, strict=True):
                if (
                    stop_before is not None
                    and account.pk not in self.watermarks
                    and account.pk not in self.paused_reads
                ):
                    counts = progressive.writes_of(counts)  # a full read counts the rest
                self.counts.merge(counts)
        self.run.pages_done, self.run.pages_total = read.pages()
        self.run.progress_updated_at = timezone.now()
        self._apply_counts()
        self.run.save(
            update_fields=[*_COUNT_FIELDS, "pages_done", "pages_total", "progress_updated_at"]
        )

    def _agreements(self, *, client_id: str, listed: _AgreementsListed | None = None) -> None:
        """Products catalogue and agreements: optional steps. A bank error in either is recorded
        in the run's step_errors (the run ends partial, everything else stored) instead of
        failing or retrying the whole run; a 5xx/429/timeout there is retried alone later.
        `listed`: the agreements' list, asked for already (`_agreements_list`, beside the
        balances); what remains is stored here."""
        if listed is None:
            listed = self._agreements_list(client_id=client_id)
        if listed is None:
            return
        try:
            self.run.agreements_count = steps.agreements_sync(
                client=self.bank,
                connection=self.connection,
                accounts=self.accounts,
                client_id=client_id,
                product_consent_id=listed.consent.bank_consent_id,
                listed=listed.agreements,
            )
        except ConsentRequiredError as exc:  # a detail call refused: as the list refused, below
            self._agreements_refused(listed.consent, exc)
        except BankError as exc:
            self._step_failed(OptionalStep.AGREEMENTS, exc)

    def _agreements_list(self, *, client_id: str) -> _AgreementsListed | None:
        """The catalogue refreshed if stale, then the agreements' list under the product consent
        (asked for again if none is valid); None when there is none to store (no consent, or a
        bank error, recorded)."""
        try:
            steps.catalogue_refresh_if_stale(client=self.bank, bank_code=self.bank_code)
        except BankError as exc:
            self._step_failed(OptionalStep.PRODUCTS, exc)
        consent = consent_services.consent_active(
            user=self.user, bank_code=self.bank_code, kind=ConsentKind.PRODUCTS
        )
        if consent is None:
            # Invalidated by an earlier run (or never granted): ask again, so agreements come
            # back without the user reconnecting. Auto-approving banks answer at once.
            try:
                consent = consent_services.consent_ensure(
                    user=self.user, bank_code=self.bank_code, kind=ConsentKind.PRODUCTS
                )
            except BankError as exc:
                # Best effort, as before (a user may never have granted one): agreements are
                # skipped, not a failed step, and the next sync asks again.
                logger.warning("sync %s: product consent not renewed: %s", self.run.pk, exc)
                consent = None
        if consent is None or consent.status != ConsentStatus.AUTHORIZED:
            logger.info(
                "sync %s: no product consent at %s, agreements skipped", self.run.pk, self.bank_code
            )
            return None
        try:
            agreements = steps.agreements_list(
                client=self.bank, client_id=client_id, product_consent_id=consent.bank_consent_id
            )
        except ConsentRequiredError as exc:
            self._agreements_refused(consent, exc)
            return None
        except BankError as exc:
            self._step_failed(OptionalStep.AGREEMENTS, exc)
            return None
        return _AgreementsListed(consent=consent, agreements=agreements)

    def _agreements_refused(self, consent: Consent, exc: ConsentRequiredError) -> None:
        # The product consent is gone; account data is still good, so the run goes on. The
        # next sync asks for a new one (_agreements_list): no step retry, the user may have
        # revoked it.
        consent_services.consent_invalidate(consent=consent, reason=exc.message[:255])
        logger.warning("sync %s: product consent rejected: %s", self.run.pk, exc)

    def _step_failed(self, step: str, exc: BankError) -> None:
        """Record an optional step's bank error; the run goes on without that step's data."""
        logger.warning("sync %s: %s step failed at %s: %s", self.run.pk, step, self.bank_code, exc)
        self.step_errors.append(
            {
                "step": str(step),
                "code": exc.code,
                "error": str(exc.message)[:500],
                "status_code": exc.status_code,
                # Retrying soon may help (5xx, 429, timeout); a refusal waits for the next sync.
                "retryable": isinstance(exc, BankUnavailableError),
                "retry_after": exc.retry_after or None,
            }
        )

    def _finalize(self) -> None:
        self._step(SyncStep.FINALIZING)
        run = self.run
        now = timezone.now()
        since = self.counts.changed_since.date() if self.counts.changed_since else now.date()
        # Not complete (a read short of the bank's count, items quarantined, an optional step
        # that failed): partial, never succeeded. What was stored stays, and the connection
        # stays usable with the warning.
        retry_soon = run.kind == SyncKind.FULL and any(e["retryable"] for e in self.step_errors)
        partial_reason = " ".join(
            reason
            for reason in (self.counts.partial_reason(), _step_errors_reason(self, retry_soon))
            if reason
        )
        # A retry of the optional steps read no transaction or balance: the data is as fresh
        # as the run before it made it.
        fresh_at = (
            (self.connection.last_success_at or now) if run.kind == SyncKind.AGREEMENTS else now
        )
        with transaction.atomic():
            for account_id, newest in self.watermarks.items():
                Account.objects.filter(pk=account_id).update(transactions_synced_through=newest)
            money_refresh_after_sync(user=self.user, since_date=since)
            self._apply_counts()
            run.status = SyncStatus.PARTIAL if partial_reason else SyncStatus.SUCCEEDED
            run.step = SyncStep.DONE
            run.progress = 100
            run.finished_at = now
            run.error = partial_reason[:_ERROR_LENGTH]
            run.error_code = "partial" if partial_reason else ""
            run.step_errors = self.step_errors
            run.save()
            connection_status_set(connection=self.connection, to_status=ConnectionStatus.READY)
            connection_mark_synced(
                connection=self.connection, succeeded_at=fresh_at, warning=partial_reason
            )
            if retry_soon:
                # Only the failed steps, alone, after a short pause (sync.tasks.failed_steps_retry)
                transaction.on_commit(
                    partial(
                        failed_steps_retry_schedule,
                        sync_run_id=run.pk,
                        retry_after=max(e["retry_after"] or 0 for e in self.step_errors),
                    ),
                    robust=True,
                )
            audit_event_record(
                action=AuditAction.SYNC_PARTIAL if partial_reason else AuditAction.SYNC_SUCCEEDED,
                user=self.user,
                obj=run,
                bank_code=self.bank_code,
                correlation_id=str(run.correlation_id),
                details={
                    **_counts_of(run),
                    **({"partial": run.error} if partial_reason else {}),
                    **({"step_errors": run.step_errors} if run.step_errors else {}),
                },
            )
            user_id = self.user.pk
            # robust: a cache or broker outage must not turn a committed run into a failure.
            transaction.on_commit(lambda: analytics_recompute_request(user_id=user_id), robust=True)

    def fail(
        self, *, error: str, error_code: str, connection_status: str, reason: str = ""
    ) -> None:
        """Record the failure; on a fresh DB connection when the one in hand has died. The
        connection's status_reason is `reason`, else the run's error code."""
        self._apply_counts()
        reason = reason or error_code
        try:
            self._record_failure(
                error=error,
                error_code=error_code,
                connection_status=connection_status,
                reason=reason,
            )
        except (OperationalError, InterfaceError) as exc:
            # The backend was terminated (failover, restart, a killed session): the failure is
            # written again on a new connection, or the run would hold its bank's lock for good.
            logger.warning("sync run %s: failure not recorded (%s); reconnecting", self.run.pk, exc)
            db_connection.close()
            self._record_failure(
                error=error,
                error_code=error_code,
                connection_status=connection_status,
                reason=reason,
            )

    def _record_failure(
        self, *, error: str, error_code: str, connection_status: str, reason: str
    ) -> None:
        run = self.run
        now = timezone.now()
        with transaction.atomic():
            run.status = SyncStatus.FAILED
            run.error = error[:_ERROR_LENGTH]
            run.error_code = error_code[:64]
            run.finished_at = now
            run.save()
            connection_status_set(
                connection=self.connection,
                to_status=connection_status,
                error=run.error,
                reason=reason,
            )
            BankConnection.objects.filter(pk=self.connection.pk).update(last_sync_at=now)
            audit_event_record(
                action=AuditAction.SYNC_FAILED,
                user=self.user,
                obj=run,
                bank_code=self.bank_code,
                correlation_id=str(run.correlation_id),
                details={"error_code": run.error_code, "error": run.error[:500], **_counts_of(run)},
            )


_COUNT_FIELDS = [
    "transactions_added",
    "transactions_updated",
    "transactions_unchanged",
    "transactions_removed",
    "transactions_skipped",
    "transactions_changed_since",
    "warnings",
    "bank_calls",
]


def _counts_of(run: SyncRun) -> dict:
    return {
        "accounts": run.accounts_count,
        "balances": run.balances_count,
        "transactions_added": run.transactions_added,
        "transactions_updated": run.transactions_updated,
        "transactions_unchanged": run.transactions_unchanged,
        "transactions_removed": run.transactions_removed,
        "transactions_skipped": run.transactions_skipped,
        "agreements": run.agreements_count,
        "bank_calls": run.bank_calls,
    }


def _step_errors_reason(execution: _SyncExecution, retry_soon: bool) -> str:
    """What the run could not read of the optional steps, for the run and the connection."""
    if not execution.step_errors:
        return ""
    bank = bank_display_name(execution.bank_code)
    parts = [
        f"{OptionalStep(entry['step']).label.lower()} ({entry['error']})"
        for entry in execution.step_errors
    ]
    then = "they are retried in a few minutes" if retry_soon else "the next sync tries again"
    return f"Not read from {bank} this time: {'; '.join(parts)}; {then}."
