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
    # bank sent malformed (quarantined, retried by the next sync), or an optional step (products,
    # agreements) that failed: its error in step_errors, the step retried alone. Never active.
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"


ACTIVE_SYNC_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)


class SyncKind(models.TextChoices):
    FULL = "full", "Accounts, balances, transactions, agreements"
    BALANCES = "balances", "Balances only"
    # The optional steps alone (products catalogue, agreements), retried after a run that
    # stored everything else but could not do them (SyncRun.step_errors).
    AGREEMENTS = "agreements", "Products and agreements only"


class SyncStep(models.TextChoices):
    QUEUED = "queued", "Queued"
    CONSENTS = "consents", "Checking consents"
    ACCOUNTS = "accounts", "Accounts"
    BALANCES = "balances", "Balances"
    TRANSACTIONS = "transactions", "Transactions"
    AGREEMENTS = "agreements", "Products and agreements"
    FINALIZING = "finalizing", "Finalizing"
    DONE = "done", "Done"


class OptionalStep(models.TextChoices):
    """Steps whose failure leaves the run partial instead of failed (SyncRun.step_errors)."""

    PRODUCTS = "products", "Products catalogue"
    AGREEMENTS = "agreements", "Product agreements"


class SyncPhase(models.TextChoices):
    """Where a full run is in reading the history (sync/progressive.py)."""

    ONE_PASS = "", "One pass"
    # A first sync reads the newest FIRST_SYNC_RECENT_DAYS of every account first, stores them
    # and computes a snapshot (the dashboard is ready, "history still loading")…
    RECENT = "recent", "Newest days first"
    # … then the whole history (or, in a later run, what a failed backfill left unread).
    BACKFILL = "backfill", "Older history"


class SyncTrigger(models.TextChoices):
    USER = "user", "User"
    ONBOARDING = "onboarding", "Onboarding"
    SCHEDULE = "schedule", "Schedule"
    ADMIN = "admin", "Admin"
    STEP_RETRY = "step_retry", "Retry of a failed step"


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
    phase = models.CharField(
        max_length=16,
        choices=SyncPhase.choices,
        blank=True,
        default=SyncPhase.ONE_PASS,
        help_text="A first sync: newest days first (recent), then the older history (backfill).",
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent, 0–100.")
    # The transactions read under way (each phase of a progressive first sync is one), by work:
    # sync/progress.py. Written at most once a second with the counts, for the ETA and the
    # onboarding's overall percent.
    pages_done = models.PositiveIntegerField(
        default=0, help_text="Pages of transactions the read under way has done."
    )
    pages_total = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Pages that read takes, once the accounts' first pages said (null before).",
    )
    pages_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When that read began (its pages per second: the ETA)."
    )
    progress_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="When progress and counts were last written."
    )
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
    transactions_changed_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The oldest booking time this run's writes touched, kept across its attempts: "
        "the daily aggregates are rebuilt from its day.",
    )
    agreements_count = models.PositiveIntegerField(default=0)
    bank_calls = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    warnings = models.JSONField(
        default=list, blank=True, help_text="Samples of skipped bank items, with the reason."
    )
    step_errors = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Optional steps (products, agreements) this run could not do, each with its error; "
            "the rest was stored and only these are retried."
        ),
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
    def eta_seconds(self) -> int | None:
        """Seconds the transactions read still needs at its pace so far (pages done per second),
        as of `progress_updated_at`; None before the page count is known, or once finished."""
        if self.status not in ACTIVE_SYNC_STATUSES or not self.pages_total or not self.pages_done:
            return None
        if self.pages_started_at is None or self.progress_updated_at is None:
            return None
        elapsed = (self.progress_updated_at - self.pages_started_at).total_seconds()
        if elapsed <= 0:
            return None
        left = max(0, self.pages_total - self.pages_done)
        return round(left * elapsed / self.pages_done)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
