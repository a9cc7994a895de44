"""Writes to the audit trail."""

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit import redaction
from audit.models import AuditEvent, RawApiLog
from fintrack.core.correlation import get_correlation_id

logger = logging.getLogger(__name__)


class AuditAction(models.TextChoices):
    CONSENT_REQUESTED = "consent.requested", "Consent requested"
    CONSENT_AUTHORIZED = "consent.authorized", "Consent authorised"
    CONSENT_REJECTED = "consent.rejected", "Consent rejected"
    CONSENT_REVOKED = "consent.revoked", "Consent revoked"
    CONSENT_INVALIDATED = "consent.invalidated", "Consent invalidated by the bank"
    SYNC_STARTED = "sync.started", "Sync started"
    SYNC_SUCCEEDED = "sync.succeeded", "Sync succeeded"
    SYNC_PARTIAL = "sync.partial", "Sync partial (not everything read)"
    SYNC_FAILED = "sync.failed", "Sync failed"
    CONNECTION_STATUS_CHANGED = "connection.status_changed", "Connection status changed"
    ADMIN_ACTION = "admin.action", "Staff action in admin"
    CONSENT_REVOKE_FAILED = "consent.revoke_failed", "Consent revocation failed at the bank"
    CONSENT_REVOKE_RETRIED = "consent.revoke_retried", "Consent revoked at the bank on a retry"
    USER_PASSWORD_CHANGED = "user.password_changed", "Password changed"
    USER_DELETED = "user.deleted", "Account and data deleted"


def audit_event_record(
    *,
    action: str,
    user=None,
    actor=None,
    obj: Any = None,
    bank_code: str = "",
    correlation_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record who did what to which object; the correlation id defaults to the current scope."""
    return AuditEvent.objects.create(
        action=action,
        user=user,
        actor=actor,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or "") if obj is not None else "",
        bank_code=bank_code,
        correlation_id=str(correlation_id or get_correlation_id() or ""),
        details=details or {},
    )


def audit_events_anonymise(
    *,
    user_id: int,
    subject: str,
    personal_values: Iterable[str] = (),
    user_object_type: str = "",
    batch_size: int = 1000,
) -> int:
    """Detach a deleted user's audit events from them: `user`/`actor` set to null, the
    pseudonym `subject` in the details, `personal_values` cut out of them; the count."""
    secrets = tuple(value for value in personal_values if value)
    events = AuditEvent.objects.filter(Q(user_id=user_id) | Q(actor_id=user_id)).order_by("pk")
    changed_total = 0
    last_pk = 0
    while True:
        # Keyset batches: each one is a SELECT and one bulk UPDATE, whatever the history's size.
        batch = list(events.filter(pk__gt=last_pk)[:batch_size])
        if not batch:
            break
        for event in batch:
            details = redaction.redact_json(event.details or {}, secrets=secrets)
            if not isinstance(details, dict):
                details = {"details": details}
            if event.user_id == user_id:
                event.user_id = None
                details["subject"] = subject
            if event.actor_id == user_id:
                event.actor_id = None
                details["actor_subject"] = subject
            if user_object_type and (event.object_type, event.object_id) == (
                user_object_type,
                str(user_id),
            ):
                event.object_id = ""
            event.details = details
        AuditEvent.objects.bulk_update(batch, ["user", "actor", "details", "object_id"])
        changed_total += len(batch)
        last_pk = batch[-1].pk
    return changed_total


def raw_logs_purge(*, older_than_days: int, batch_size: int = 5000) -> int:
    """Delete raw API logs older than `older_than_days`, `batch_size` rows per DELETE; the count."""
    if older_than_days < 1 or batch_size < 1:
        raise ValueError("older_than_days and batch_size must be positive")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    old_rows = RawApiLog.objects.filter(created_at__lt=cutoff).order_by()
    deleted_total = 0
    while True:
        # Short DELETEs by primary key: locks stay brief and a huge backlog never runs as one query.
        ids = list(old_rows.values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        deleted, _by_model = RawApiLog.objects.filter(id__in=ids).delete()
        deleted_total += deleted
        if len(ids) < batch_size:
            break
    if deleted_total:
        logger.info("raw api logs: purged %d rows older than %s", deleted_total, cutoff.isoformat())
    return deleted_total
