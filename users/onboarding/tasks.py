"""Celery tasks of onboarding: carrying out a connect (or a renewal, fresh request or demo
approval), reaping the requests a lost message left behind, and polling a pending consent at
the bank until the user approves it.

`onboarding.connect_request_run` (queue `sync`, sent after the request commits) asks the bank
for the consents and starts the first sync, or renews, asks again, approves (its `kind`,
users/onboarding/connect_requests.py); a bank that is down is retried like a sync run
(SYNC_TASK_MAX_RETRIES, backoff from SYNC_RETRY_BASE_SECONDS with jitter, the bank's Retry-After
honoured), its bank calls making only the transport's quick retries
(`bank_calls_retried_by_task`: one layer waits, the task's).

`onboarding.reap_stale_connect_requests` (beat, queue `maintenance`) re-sends requests whose
message was lost and takes over those of dead workers (users/onboarding/reaper.py).

A connect that leaves the accounts consent pending schedules `onboarding.pending_consent_poll`
(after commit, `CONSENT_POLL_FIRST_SECONDS` later). Each run polls once; while the consent still
waits it schedules the next poll, the delay doubling up to `CONSENT_POLL_MAX_SECONDS` (with
jitter); once the bank authorises it the first sync starts, and polling stops as soon as the
consent no longer waits (authorised, rejected, revoked, or approved some other way).
"""

import logging
import random

from celery import shared_task
from django.conf import settings

from banking.clients.errors import BankUnavailableError
from banking.clients.transport import bank_calls_retried_by_task
from fintrack.core.tasks import enqueue
from sync.models import SyncTrigger
from sync.tasks import retry_countdown
from users.onboarding.connect_requests import connect_request_execute, connect_request_retry_wait
from users.onboarding.reaper import connect_requests_reap
from users.onboarding.services import onboarding_consent_poll

logger = logging.getLogger(__name__)


def consent_poll_countdown(*, attempt: int) -> float:
    """Seconds until poll number `attempt` (0 = the first): doubling from the first delay up to
    the cap, with jitter (between half and all of it) so many users' polls spread out."""
    first = settings.CONSENT_POLL_FIRST_SECONDS
    backoff = min(settings.CONSENT_POLL_MAX_SECONDS, first * 2 ** min(attempt, 32))
    return random.uniform(backoff / 2, backoff)


def pending_consent_poll_later(*, consent_id: int, trigger: str, attempt: int) -> None:
    """Send poll number `attempt` of the consent, after its backoff delay."""
    # A broker that is down must not turn a committed connect into a 500: the poll is sent again
    # by the next connect or sync request of the bank (both poll a pending consent).
    enqueue(
        pending_consent_poll,
        countdown=consent_poll_countdown(attempt=attempt),
        consent_id=consent_id,
        trigger=trigger,
        attempt=attempt,
    )


@shared_task(name="onboarding.pending_consent_poll", bind=True, acks_late=True, ignore_result=True)
def pending_consent_poll(
    self, consent_id: int, trigger: str = SyncTrigger.ONBOARDING, attempt: int = 0
) -> None:
    """Poll a pending consent once; while it still waits, schedule the next poll (backing off)."""
    still_waiting = True
    try:
        still_waiting = onboarding_consent_poll(consent_id=consent_id, trigger=trigger)
    finally:
        # An unexpected error is raised (and logged by Celery) but does not end the polling.
        # Eager mode (tests) ignores countdowns, so it polls once per call: no loop.
        if still_waiting and not self.request.is_eager:
            logger.info("consent %s still pending after poll %s", consent_id, attempt + 1)
            pending_consent_poll_later(consent_id=consent_id, trigger=trigger, attempt=attempt + 1)


def _bank_retries_left_to_this_task():
    """The task's retry is the layer that waits: its bank calls make only quick retries."""
    return bank_calls_retried_by_task(
        max_retries=settings.BANK_TASK_MAX_RETRIES,
        max_sleep_seconds=settings.BANK_TASK_MAX_SLEEP_SECONDS,
    )


# The retry limit is settings.SYNC_TASK_MAX_RETRIES, read when the task runs (as the sync's).
@shared_task(name="onboarding.connect_request_run", bind=True, acks_late=True, ignore_result=True)
def connect_request_run(self, connect_request_id: int) -> None:
    """Carry out a connect (consents, then the first sync); idempotent on redelivery (a claimed
    or finished request is left alone); a bank outage is retried with backoff."""
    max_retries = settings.SYNC_TASK_MAX_RETRIES
    if self.request.is_eager:
        # Eager mode (tests, no broker): Celery would propagate Retry to the caller, so the
        # attempts run here, one after another, without waiting.
        for attempt in range(max_retries + 1):
            try:
                with _bank_retries_left_to_this_task():
                    connect_request_execute(
                        connect_request_id=connect_request_id,
                        task_id=self.request.id,
                        retry_allowed=attempt < max_retries,
                    )
                return
            except BankUnavailableError as exc:
                logger.info("connect %s: bank unavailable (%s), eager retry", connect_request_id,
                            exc)  # fmt: skip
                connect_request_retry_wait(
                    connect_request_id=connect_request_id,
                    exc=exc,
                    countdown=0,
                    retry=attempt + 1,
                    retries=max_retries,
                )
        return
    try:
        with _bank_retries_left_to_this_task():
            connect_request_execute(
                connect_request_id=connect_request_id,
                task_id=self.request.id,
                retry_allowed=self.request.retries < max_retries,
            )
    except BankUnavailableError as exc:
        countdown = retry_countdown(retries=self.request.retries, retry_after=exc.retry_after)
        logger.info(
            "connect %s: bank unavailable (%s), retry %s/%s in %.0fs",
            connect_request_id,
            exc,
            self.request.retries + 1,
            max_retries,
            countdown,
        )
        # The connection shows the wait (retrying, next_retry_at) until the task comes back.
        connect_request_retry_wait(
            connect_request_id=connect_request_id,
            exc=exc,
            countdown=countdown,
            retry=self.request.retries + 1,
            retries=max_retries,
        )
        raise self.retry(exc=exc, countdown=countdown, max_retries=max_retries) from exc


# On the maintenance queue (as sync.reap_stale_runs), so a backlog of bank work never delays it.
@shared_task(name="onboarding.reap_stale_connect_requests", queue="maintenance", ignore_result=True)
def reap_stale_connect_requests() -> dict[str, list[int]]:
    """Heal connect requests a lost message or a dead worker left active (beat)."""
    return connect_requests_reap().as_dict()
