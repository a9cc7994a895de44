"""A user's connection to each bank: created on demand, its status moved only through one table
of allowed transitions, its freshness and consent expiry kept for the user to see."""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction

from audit.services import AuditAction, audit_event_record
from banking.exceptions import InvalidConnectionTransition
from banking.models import BankConnection
from banking.models import ConnectionStatus as S
from banking.services.clients import bank_display_name

logger = logging.getLogger(__name__)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.NOT_CONNECTED: frozenset({S.CONSENT_PENDING, S.SYNC_IN_PROGRESS, S.READY, S.ERROR}),
    S.CONSENT_PENDING: frozenset(
        {S.SYNC_IN_PROGRESS, S.READY, S.ERROR, S.NOT_CONNECTED, S.CONSENT_PENDING}
    ),
    S.SYNC_IN_PROGRESS: frozenset({S.READY, S.ERROR, S.CONSENT_PENDING}),
    S.READY: frozenset({S.SYNC_IN_PROGRESS, S.CONSENT_PENDING, S.ERROR, S.NOT_CONNECTED}),
    S.ERROR: frozenset({S.SYNC_IN_PROGRESS, S.CONSENT_PENDING, S.READY, S.NOT_CONNECTED, S.ERROR}),
}
# Reaching these means the bank answered well, so an earlier failure no longer applies.
_CLEARS_ERROR = frozenset({S.READY, S.SYNC_IN_PROGRESS})
_MAX_ERROR_LENGTH = 2000


def connection_get_or_create(*, user, bank_code: str) -> BankConnection:
    """The user's connection to `bank_code` (a configured bank), created as not_connected."""
    bank_display_name(bank_code)  # raises UnknownBank for an unconfigured code
    try:
        connection, _ = BankConnection.objects.get_or_create(user=user, bank_code=bank_code)
    except IntegrityError:
        # A concurrent request created it first; the unique constraint makes this safe.
        connection = BankConnection.objects.get(user=user, bank_code=bank_code)
    return connection


def connection_transition(
    *, connection: BankConnection, to_status: str, error: str = ""
) -> BankConnection:
    """Move the connection to `to_status` if the table allows it; audit the change."""
    if to_status not in ALLOWED_TRANSITIONS:
        raise InvalidConnectionTransition(
            f"Unknown connection status {to_status!r}.", extra={"to_status": str(to_status)}
        )
    with transaction.atomic():
        locked = BankConnection.objects.select_for_update().get(pk=connection.pk)
        from_status = locked.status
        if to_status not in ALLOWED_TRANSITIONS.get(from_status, frozenset()):
            raise InvalidConnectionTransition(
                f"A connection cannot go from {from_status} to {to_status}.",
                extra={"from_status": from_status, "to_status": str(to_status)},
            )
        locked.status = to_status
        if to_status in _CLEARS_ERROR:
            locked.last_error = ""
        elif error:
            locked.last_error = error[:_MAX_ERROR_LENGTH]
        locked.save(update_fields=["status", "last_error", "updated_at"])
        audit_event_record(
            action=AuditAction.CONNECTION_STATUS_CHANGED,
            user=connection.user,
            obj=locked,
            bank_code=locked.bank_code,
            details={"from": from_status, "to": to_status, "error": error[:500]},
        )
    connection.status = locked.status
    connection.last_error = locked.last_error
    connection.updated_at = locked.updated_at
    return locked


def connection_mark_synced(
    *, connection: BankConnection, succeeded_at: datetime, warning: str = ""
) -> BankConnection:
    """Record a successful (or partial) sync: data from this bank is fresh as of `succeeded_at`;
    a partial sync's `warning` (what it could not read) is shown as the connection's last error."""
    changes: dict = {"last_sync_at": succeeded_at, "last_success_at": succeeded_at}
    if warning:
        changes["last_error"] = warning[:_MAX_ERROR_LENGTH]
    BankConnection.objects.filter(pk=connection.pk).update(**changes)
    connection.last_sync_at = succeeded_at
    connection.last_success_at = succeeded_at
    if warning:
        connection.last_error = changes["last_error"]
    return connection


def connection_consent_expiry_set(
    *, user, bank_code: str, expires_at: datetime | None
) -> BankConnection:
    """Keep the connection's consent expiry in step with its account consent."""
    connection = connection_get_or_create(user=user, bank_code=bank_code)
    if connection.consent_expires_at != expires_at:
        BankConnection.objects.filter(pk=connection.pk).update(consent_expires_at=expires_at)
        connection.consent_expires_at = expires_at
    return connection
