"""Celery tasks of onboarding: polling a pending consent at the bank until the user approves it.

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

from fintrack.core.tasks import enqueue
from sync.models import SyncTrigger
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
