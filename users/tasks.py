"""Celery tasks of users: retrying, after an account deletion, a consent revocation a bank refused
to answer (users.deletion).

The message carries everything the retry needs (bank, kind, the bank's consent id and, for a
product consent, the bank client id) because no table keeps it once the account is gone. Each
run tries once; while the bank stays unavailable it sends the next try, the delay doubling from
REVOCATION_RETRY_FIRST_SECONDS to REVOCATION_RETRY_MAX_SECONDS (with jitter; at most an hour, so
a Redis broker's visibility timeout never redelivers a waiting message), REVOCATION_RETRY_ATTEMPTS
tries in all. A redelivered message is harmless: revoking twice answers 404, counted as revoked.
"""

import random
from dataclasses import asdict

from celery import shared_task

from fintrack.core.tasks import enqueue
from users.deletion import (
    REVOCATION_RETRY_FIRST_SECONDS,
    REVOCATION_RETRY_MAX_SECONDS,
    RevocationRetry,
    consent_revocation_retry,
)


def revocation_retry_countdown(*, attempt: int) -> float:
    """Seconds before try number `attempt` (0 = the first retry): doubling up to the cap, with
    jitter (between half and all of it)."""
    backoff = min(
        REVOCATION_RETRY_MAX_SECONDS, REVOCATION_RETRY_FIRST_SECONDS * 2 ** min(attempt, 32)
    )
    return random.uniform(backoff / 2, backoff)


def consent_revocation_retry_later(*, retry: RevocationRetry, attempt: int) -> None:
    """Send try number `attempt` of a revocation, after its backoff delay."""
    # A broker that is down must not fail a deletion that committed: the failed revocation is
    # in the audit log (consent.revoke_failed) for an operator.
    enqueue(
        consent_revocation_retry_task,
        countdown=revocation_retry_countdown(attempt=attempt),
        retry=asdict(retry),
        attempt=attempt,
    )


@shared_task(name="users.consent_revocation_retry", bind=True, acks_late=True, ignore_result=True)
def consent_revocation_retry_task(self, retry: dict, attempt: int = 0) -> str:
    """Try once more to revoke a deleted account's consent; schedule the next try if needed."""
    outcome = consent_revocation_retry(retry=RevocationRetry(**retry), attempt=attempt)
    # Eager mode (tests) ignores countdowns: one try per call, no loop.
    if outcome == "retry" and not self.request.is_eager:
        consent_revocation_retry_later(retry=RevocationRetry(**retry), attempt=attempt + 1)
    return outcome
