"""Celery tasks of consents: the lifecycle sweep (beat) and revoking a superseded consent.

`consents.lifecycle_sweep` runs every CONSENT_LIFECYCLE_PERIOD_MINUTES (the periodic task
"consent lifecycle", seeded by migration 0005): see consents/lifecycle.py.

`consents.superseded_revoke` is sent after a renewal's switch commits: it revokes the replaced
consent at the bank once no sync of that bank runs; while one runs (or the bank fails) it tries
again CONSENT_SUPERSEDED_REVOKE_DELAY_SECONDS later, SUPERSEDED_REVOKE_ATTEMPTS times in all,
after which the sweep takes over.
"""

import logging

from celery import shared_task
from django.conf import settings

from consents.lifecycle import RevokeOutcome, consent_lifecycle_sweep, consent_superseded_revoke
from consents.models import Consent
from fintrack.core.tasks import enqueue

logger = logging.getLogger(__name__)

SUPERSEDED_REVOKE_ATTEMPTS = 30


@shared_task(name="consents.lifecycle_sweep", acks_late=True, ignore_result=True)
def consent_lifecycle_sweep_task() -> dict[str, list]:
    """Timeouts, expiries, renewals and superseded consents of every user (beat)."""
    return consent_lifecycle_sweep().as_dict()


def superseded_consent_revoke_later(
    *, consent_id: int, attempt: int, countdown: float | None
) -> None:
    """Send try number `attempt` of revoking a superseded consent at the bank."""
    # A broker that is down must not fail the switch that committed: the sweep revokes it.
    enqueue(superseded_consent_revoke, countdown=countdown, consent_id=consent_id, attempt=attempt)


@shared_task(name="consents.superseded_revoke", bind=True, acks_late=True, ignore_result=True)
def superseded_consent_revoke(self, consent_id: int, attempt: int = 0) -> str:
    """Revoke a consent its renewal replaced; try again later while a sync uses it."""
    consent = Consent.objects.select_related("user").filter(pk=consent_id).first()
    if consent is None:
        return RevokeOutcome.SKIPPED
    outcome = consent_superseded_revoke(consent=consent)
    retry = outcome in (RevokeOutcome.IN_USE, RevokeOutcome.FAILED)
    # Eager mode (tests) ignores countdowns: one try per call, no loop.
    if retry and attempt + 1 < SUPERSEDED_REVOKE_ATTEMPTS and not self.request.is_eager:
        logger.info("superseded consent %s: %s, trying again later", consent_id, outcome)
        superseded_consent_revoke_later(
            consent_id=consent_id,
            attempt=attempt + 1,
            countdown=settings.CONSENT_SUPERSEDED_REVOKE_DELAY_SECONDS,
        )
    return outcome
