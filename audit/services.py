"""Writes to the audit trail."""

import logging
from typing import Any

from django.db import models

from audit.models import AuditEvent
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
    SYNC_FAILED = "sync.failed", "Sync failed"
    CONNECTION_STATUS_CHANGED = "connection.status_changed", "Connection status changed"
    ADMIN_ACTION = "admin.action", "Staff action in admin"


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
