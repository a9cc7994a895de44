"""Writes to the audit trail."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit import partitions, redaction
from audit.capture import BODY_SEEN_REFRESH
from audit.models import AuditEvent, RawApiBody, RawApiLog
from audit.retention import delete_in_batches, utc_day
from fintrack.core.correlation import get_correlation_id

logger = logging.getLogger(__name__)


class AuditAction(models.TextChoices):
    CONSENT_REQUESTED = "consent.requested", "Consent requested"
    CONSENT_AUTHORIZED = "consent.authorized", "Consent authorised"
    CONSENT_REJECTED = "consent.rejected", "Consent rejected"
    CONSENT_REVOKED = "consent.revoked", "Consent revoked"
    CONSENT_INVALIDATED = "consent.invalidated", "Consent invalidated by the bank"
    CONSENT_EXPIRED = "consent.expired", "Consent expired (past its expiry date)"
    CONSENT_APPROVAL_EXPIRED = "consent.approval_expired", "Approval request timed out"
    CONSENT_WITHDRAWN = "consent.withdrawn", "Pending request withdrawn for a new one"
    CONSENT_RENEWAL_REQUESTED = "consent.renewal_requested", "Renewal of a consent requested"
    CONSENT_SUPERSEDED = "consent.superseded", "Consent replaced by its renewal"
    CONSENT_SUPERSEDED_REVOKED = (
        "consent.superseded_revoked",
        "Consent replaced by its renewal revoked at the bank",
    )
    SYNC_STARTED = "sync.started", "Sync started"
    SYNC_SUCCEEDED = "sync.succeeded", "Sync succeeded"
    SYNC_PARTIAL = "sync.partial", "Sync partial (not everything read)"
    SYNC_FAILED = "sync.failed", "Sync failed"
    CONNECTION_STATUS_CHANGED = "connection.status_changed", "Connection status changed"
    CONNECTION_CLIENT_SET = "connection.client_set", "Connection's bank client set"
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


@dataclass
class RawLogPurge:
    """What one raw-log purge removed: rows (by partition drop and by DELETE) and bodies."""

    rows_deleted: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    rows_in_partitions: int = 0
    bodies_deleted: int = 0

    @property
    def rows(self) -> int:
        return self.rows_deleted + self.rows_in_partitions


def raw_logs_purge(*, older_than_days: int, batch_size: int = 5000) -> int:
    """Remove raw API logs older than `older_than_days`, and the bodies no kept log uses; the
    number of log rows removed (raw_logs_purge_detailed says how)."""
    return raw_logs_purge_detailed(older_than_days=older_than_days, batch_size=batch_size).rows


def raw_logs_purge_detailed(
    *, older_than_days: int, batch_size: int = 5000, now: datetime | None = None
) -> RawLogPurge:
    """Remove raw API logs older than `older_than_days`, then the bodies no kept log uses.

    PostgreSQL (partitioned by UTC day): every day partition wholly older than the cutoff is
    dropped, and rows older than that day that the default partition holds are deleted in
    batches; the cutoff's own day goes the next day (logs live N to N+1 days). Elsewhere:
    rows older than the cutoff are deleted, `batch_size` per DELETE.
    """
    if older_than_days < 1 or batch_size < 1:
        raise ValueError("older_than_days and batch_size must be positive")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    result = RawLogPurge()
    if partitions.raw_logs_partitioned():
        boundary = partitions.day_start(utc_day(cutoff))
        dropped = partitions.raw_log_partitions_drop_before(day=utc_day(cutoff))
        result.partitions_dropped, result.rows_in_partitions = dropped.dropped, dropped.rows
        cutoff = boundary
    result.rows_deleted = raw_logs_delete_older(before=cutoff, batch_size=batch_size)
    # Every log kept is newer than `cutoff`; a body it points at was seen within
    # BODY_SEEN_REFRESH of it (last_seen_at moves at most once a day).
    result.bodies_deleted = raw_bodies_purge(
        unseen_since=cutoff - BODY_SEEN_REFRESH, batch_size=batch_size
    )
    if result.rows or result.bodies_deleted:
        logger.info(
            "raw api logs: purged %d rows (%d by dropping %d partitions) and %d bodies older "
            "than %s",
            result.rows,
            result.rows_in_partitions,
            len(result.partitions_dropped),
            result.bodies_deleted,
            cutoff.isoformat(),
        )
    return result


def raw_logs_delete_older(*, before: datetime, batch_size: int) -> int:
    """Delete raw-log rows created before `before`, `batch_size` per DELETE (the loop SQLite
    runs, and PostgreSQL for rows outside the day partitions); the count."""
    old_rows = RawApiLog.objects.filter(created_at__lt=before).order_by()
    # Each DELETE names its keys and the cutoff: on PostgreSQL only the partitions (the
    # default one) that can hold such rows are looked in.
    return delete_in_batches(old_rows, batch_size=batch_size, narrow=Q(created_at__lt=before))


def raw_bodies_purge(*, unseen_since: datetime, batch_size: int) -> int:
    """Delete shared bodies last seen before `unseen_since` (no kept log points at them)."""
    return delete_in_batches(
        RawApiBody.objects.filter(last_seen_at__lt=unseen_since).order_by(),
        batch_size=batch_size,
    )


def audit_events_purge(
    *, older_than_days: int, batch_size: int = 5000, now: datetime | None = None
) -> int:
    """Delete audit events older than `older_than_days`, `batch_size` per DELETE; the count."""
    if older_than_days < 1 or batch_size < 1:
        raise ValueError("older_than_days and batch_size must be positive")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    deleted = delete_in_batches(
        AuditEvent.objects.filter(created_at__lt=cutoff).order_by(), batch_size=batch_size
    )
    if deleted:
        logger.info("audit events: purged %d older than %s", deleted, cutoff.isoformat())
    return deleted
