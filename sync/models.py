"""Sync runs: one row per connection run, with its progress, counts and outcome."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class SyncStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    # Finished, data stored, but not all of it: a read short of the bank's count, or items the
    # bank sent malformed (quarantined, retried by the next sync). Never active.
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"


ACTIVE_SYNC_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)


class SyncKind(models.TextChoices):
    FULL = "full", "Accounts, balances, transactions, agreements"
    BALANCES = "balances", "Balances only"


class SyncStep(models.TextChoices):
    QUEUED = "queued", "Queued"
    CONSENTS = "consents", "Checking consents"
    ACCOUNTS = "accounts", "Accounts"
    BALANCES = "balances", "Balances"
    TRANSACTIONS = "transactions", "Transactions"
    AGREEMENTS = "agreements", "Products and agreements"
    FINALIZING = "finalizing", "Finalizing"
    DONE = "done", "Done"


class SyncTrigger(models.TextChoices):
    USER = "user", "User"
    ONBOARDING = "onboarding", "Onboarding"
    SCHEDULE = "schedule", "Schedule"
    ADMIN = "admin", "Admin"


class SyncRun(models.Model):
    """One run of the sync for one bank connection."""

    connection = models.ForeignKey(
        "banking.BankConnection", on_delete=models.CASCADE, related_name="sync_runs"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=SyncKind.choices, default=SyncKind.FULL)
    trigger = models.CharField(max_length=16, choices=SyncTrigger.choices, default=SyncTrigger.USER)
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    step = models.CharField(max_length=16, choices=SyncStep.choices, default=SyncStep.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent, 0–100.")
    accounts_count = models.PositiveIntegerField(default=0)
    balances_count = models.PositiveIntegerField(default=0)
    transactions_added = models.PositiveIntegerField(default=0)
    transactions_updated = models.PositiveIntegerField(default=0)
    transactions_unchanged = models.PositiveIntegerField(default=0)
    transactions_removed = models.PositiveIntegerField(
        default=0, help_text="Pending rows replaced by their posted twin."
    )
    transactions_skipped = models.PositiveIntegerField(
        default=0, help_text="Bank items that could not be parsed; never stored."
    )
    agreements_count = models.PositiveIntegerField(default=0)
    bank_calls = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    warnings = models.JSONField(
        default=list, blank=True, help_text="Samples of skipped bank items, with the reason."
    )
    correlation_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker running it (the reaper)."
    )
    task_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The task message that claimed it; its redelivery may take the run over.",
    )
    next_retry_at = models.DateTimeField(
        null=True, blank=True, help_text="When a run waiting to retry after a bank outage resumes."
    )

    class Meta:
        db_table = "sync_runs"
        ordering = ["-created_at", "-id"]
        constraints = [
            # The cross-worker lock: at most one queued-or-running run per connection. A second
            # request hits this constraint and is answered with the run that holds it.
            models.UniqueConstraint(
                fields=["connection"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_sync_per_connection",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="syncrun_user_recent")]

    def __str__(self) -> str:
        return f"sync #{self.pk} {self.connection_id} {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
