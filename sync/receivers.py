"""Receivers: sync answers the lower apps' questions about what it is doing.

`sync_running_for_bank` answers consents.signals.consent_in_use: while a run of the user's bank
is queued or running it may be reading the consent it started with, so a consent its renewal
replaced is not revoked at the bank yet. Connected in sync/apps.py ready().
"""

from sync.models import ACTIVE_SYNC_STATUSES, SyncRun


def sync_running_for_bank(sender, *, user_id: int, bank_code: str, **kwargs) -> bool:
    """Whether a sync run of the user's bank is queued or running."""
    return SyncRun.objects.filter(
        user_id=user_id, connection__bank_code=bank_code, status__in=ACTIVE_SYNC_STATUSES
    ).exists()
