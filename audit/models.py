"""The audit trail: every bank request and response (redacted), and important events."""

from django.conf import settings
from django.db import models

from fintrack.core.fields import VerbatimJSONField


class Direction(models.TextChoices):
    REQUEST = "request", "Request"
    RESPONSE = "response", "Response"


class RawApiLog(models.Model):
    """One half of one bank HTTP exchange; request and response share `exchange_id`."""

    # No single-column index: rawlog_user_recent leads with user (its logs; SET NULL on delete).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    bank_code = models.CharField(max_length=16)
    endpoint = models.CharField(max_length=512, help_text="Path and redacted query string.")
    method = models.CharField(max_length=8)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    # The body as the bank sent it (redacted); `json` keeps its very text, `jsonb` would not.
    payload = VerbatimJSONField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True, default="")
    # Kept: the admin and the raw-log API filter by correlation id and pair rows by exchange id;
    # created_at alone serves the newest-first list of all logs and the retention purge.
    correlation_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    exchange_id = models.UUIDField(db_index=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "raw_api_logs"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["bank_code", "-created_at"], name="rawlog_bank_recent"),
            models.Index(fields=["user", "-created_at"], name="rawlog_user_recent"),
        ]

    def __str__(self) -> str:
        status = self.status_code or ""
        return f"{self.direction} {self.method} {self.bank_code}{self.endpoint} {status}"


class AuditEvent(models.Model):
    """Something important happened: who did what to which object, when, in which correlation."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who did it (a staff member in admin); empty for the system.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Whose data it concerns.",
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    bank_code = models.CharField(max_length=16, blank=True, default="")
    correlation_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "audit_events"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id}"
