"""Receivers: a sync run that reached its end settles its user's onboarding step.

`receivers_connect()` (called by `users.apps.UsersConfig.ready()`) connects them to `post_save`
of `sync.SyncRun`: sync, a lower layer, cannot call onboarding, and the first sync usually ends
in a worker, long after the connect that started it.
"""

from django.db import transaction
from django.db.models.signals import post_save

from sync.models import SyncRun, SyncStatus
from users.onboarding.services import onboarding_step_settle

FINISHED_SYNC_STATUSES = (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL, SyncStatus.FAILED)


def sync_run_saved(sender, instance: SyncRun, created: bool, update_fields=None, **kwargs) -> None:
    """A run saved as finished: settle the owner's onboarding step once that write commits."""
    if created or instance.status not in FINISHED_SYNC_STATUSES:
        return
    if update_fields is not None and "status" not in update_fields:
        return
    user_id = instance.user_id
    transaction.on_commit(lambda: onboarding_step_settle(user_id=user_id))


def receivers_connect() -> None:
    """Connect onboarding's receivers (once: a dispatch uid)."""
    post_save.connect(sync_run_saved, sender=SyncRun, dispatch_uid="onboarding.sync_run_saved")
