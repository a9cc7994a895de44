"""The audit trail: every bank request and response (redacted), and important events."""

from django.conf import settings
from django.db import models

from fintrack.core.fields import VerbatimJSONField


class Direction(models.TextChoices):
    REQUEST = "request", "Request"
    RESPONSE = "response", "Response"


class RawApiBody(models.Model):
    """A response body stored once for every call of one endpoint that got it back unchanged.

    An incremental sync re-reads the same pages every hour; each call keeps its own RawApiLog
    row (who, when, status, duration, headers) and points here. `digest` is the SHA-256 of the
    scope (user, bank, method, endpoint) and the body as stored, redacted: two users never share
    a body, and a user's bodies go with the user (CASCADE). `last_seen_at` moves forward at most
    once a day; a body not seen for longer than the raw-log retention has no log left pointing at
    it and is purged with them (audit.services.raw_logs_purge).
    """

    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256, hex.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # As RawApiLog.payload: the bank's very text (`json`), compressed with lz4 on PostgreSQL.
    payload = VerbatimJSONField(null=True, blank=True)
    size_bytes = models.PositiveIntegerField(help_text="Bytes of the stored JSON text.")
    # The response that stored it first: "same as …" in the admin and the raw-log API.
    first_exchange_id = models.UUIDField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "raw_api_bodies"

    def __str__(self) -> str:
        return f"body {self.digest[:12]} ({self.size_bytes} B)"


class RawApiLog(models.Model):
    """One half of one bank HTTP exchange; request and response share `exchange_id`.

    A request's body is in `payload`. A response written by a sync's RawLogBuffer has its body in
    `body` (shared with every identical response of the same endpoint), `payload` empty; one
    written directly (raw_log_write) keeps it in `payload`. `body_payload` is the body either way.
    On PostgreSQL the table is partitioned by day of `created_at` (audit.partitions).
    """

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
    # No database constraint (a partitioned table's rows would be checked on every body purge)
    # and no index: bodies are purged by age (RawApiBody.last_seen_at), never by reference.
    body = models.ForeignKey(
        RawApiBody,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
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

    @property
    def body_payload(self):
        """The body this row logged: its own `payload`, or the shared body it points at (None
        when that body is gone: its user was deleted while the log row stayed)."""
        if self.body_id is None:
            return self.payload
        try:
            return self.body.payload
        except RawApiBody.DoesNotExist:
            return None


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
