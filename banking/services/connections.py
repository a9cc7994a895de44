"""A user's connection to each bank: created on demand, its status moved only through one table
of allowed transitions, its freshness and consent expiry kept for the user to see; and who the
user is at that bank (the connection's bank client id), given by the user or, in demo mode, a
free demo client FinTrack proposes."""

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import AuditAction, audit_event_record
from banking.exceptions import ClientIdLocked, ClientIdTaken, InvalidConnectionTransition
from banking.models import BankConnection
from banking.models import ConnectionStatus as S
from banking.services.clients import bank_display_name, team_credentials
from fintrack.core.exceptions import ValidationFailed

logger = logging.getLogger(__name__)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.NOT_CONNECTED: frozenset(
        {S.CONSENT_PENDING, S.CONSENT_REQUIRED, S.SYNC_IN_PROGRESS, S.READY, S.ERROR}
    ),
    # Also a connect under way (status_reason connect_requested): the bank failing it retries.
    S.CONSENT_PENDING: frozenset(
        {
            S.SYNC_IN_PROGRESS,
            S.READY,
            S.ERROR,
            S.NOT_CONNECTED,
            S.CONSENT_PENDING,
            S.CONSENT_REQUIRED,
            S.RETRYING,
        }
    ),
    # The user must approve a new consent; a fresh request (pending) or a new consent ends it.
    S.CONSENT_REQUIRED: frozenset(
        {
            S.CONSENT_PENDING,
            S.CONSENT_REQUIRED,
            S.SYNC_IN_PROGRESS,
            S.READY,
            S.ERROR,
            S.NOT_CONNECTED,
        }
    ),
    S.SYNC_IN_PROGRESS: frozenset(
        {S.READY, S.ERROR, S.CONSENT_PENDING, S.CONSENT_REQUIRED, S.RETRYING}
    ),
    # A run waiting out a bank outage: it resumes (sync_in_progress), or ends like any run.
    S.RETRYING: frozenset(
        {S.SYNC_IN_PROGRESS, S.RETRYING, S.READY, S.ERROR, S.CONSENT_PENDING, S.CONSENT_REQUIRED}
    ),
    S.READY: frozenset(
        {S.SYNC_IN_PROGRESS, S.CONSENT_PENDING, S.CONSENT_REQUIRED, S.ERROR, S.NOT_CONNECTED}
    ),
    S.ERROR: frozenset(
        {
            S.SYNC_IN_PROGRESS,
            S.CONSENT_PENDING,
            S.CONSENT_REQUIRED,
            S.READY,
            S.NOT_CONNECTED,
            S.ERROR,
        }
    ),
}
# Reaching these means the bank answered well, so an earlier failure no longer applies.
_CLEARS_ERROR = frozenset({S.READY, S.SYNC_IN_PROGRESS})
_MAX_REASON_LENGTH = 40
# The reason a ready connection gives when its last sync could not read everything.
PARTIAL_SYNC_REASON = "partial_sync"
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
    *,
    connection: BankConnection,
    to_status: str,
    error: str = "",
    reason: str = "",
    next_retry_at: datetime | None = None,
) -> BankConnection:
    """Move the connection to `to_status` if the table allows it; audit the change.

    `reason` is the machine-readable why (consent_revoked, bank_unavailable, …) and `error` the
    message a person reads (stored as last_error): both describe the new status, so a move
    without them clears the old ones (a stale error must not outlive the state it explained).
    `next_retry_at` is kept only while retrying.
    """
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
        if error:
            locked.last_error = error[:_MAX_ERROR_LENGTH]
        elif to_status in _CLEARS_ERROR or to_status != from_status:
            locked.last_error = ""
        if reason or to_status != from_status:
            locked.status_reason = reason[:_MAX_REASON_LENGTH]
        locked.next_retry_at = next_retry_at if to_status == S.RETRYING else None
        locked.save(
            update_fields=["status", "last_error", "status_reason", "next_retry_at", "updated_at"]
        )
        details = {"from": from_status, "to": to_status, "error": error[:500]}
        if reason:
            details["reason"] = reason[:_MAX_REASON_LENGTH]
        if locked.next_retry_at is not None:
            details["next_retry_at"] = locked.next_retry_at.isoformat()
        audit_event_record(
            action=AuditAction.CONNECTION_STATUS_CHANGED,
            user=connection.user,
            obj=locked,
            bank_code=locked.bank_code,
            details=details,
        )
    for name in ("status", "last_error", "status_reason", "next_retry_at", "updated_at"):
        setattr(connection, name, getattr(locked, name))
    return locked


def connection_mark_synced(
    *, connection: BankConnection, succeeded_at: datetime, warning: str = ""
) -> BankConnection:
    """Record a successful (or partial) sync: data from this bank is fresh as of `succeeded_at`;
    a partial sync's `warning` (what it could not read) is shown as the connection's last error."""
    changes: dict = {"last_sync_at": succeeded_at, "last_success_at": succeeded_at}
    if warning:
        changes["last_error"] = warning[:_MAX_ERROR_LENGTH]
        changes["status_reason"] = PARTIAL_SYNC_REASON
    BankConnection.objects.filter(pk=connection.pk).update(**changes)
    for name, value in changes.items():
        setattr(connection, name, value)
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


# --- Who the user is at the bank: the connection's client id --------------------------------

# What a bank client id may look like: `team260-57`, or whatever id a bank gives its clients.
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CLIENT_ID_RULE = "1–64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_DEMO_ASSIGN_ATTEMPTS = 10


def client_id_check(*, user, bank_code: str, client_id) -> str:
    """`client_id` if the user may be that client at `bank_code`; a read, nothing is written.

    A malformed id is a 400 (field `client_id`); one another FinTrack user holds at this bank is a
    409 `client_id_taken` that does not say whose.
    """
    if not isinstance(client_id, str) or not CLIENT_ID_PATTERN.fullmatch(client_id):
        message = f"A bank client id is {CLIENT_ID_RULE}, e.g. team260-57."
        raise ValidationFailed(f"client_id: {message}", extra={"fields": {"client_id": [message]}})
    held_by_another = (
        BankConnection.objects.filter(bank_code=bank_code, client_id=client_id)
        .exclude(user_id=user.pk)
        .exists()
    )
    if held_by_another:
        raise ClientIdTaken(extra={"bank_code": bank_code})
    return client_id


def connection_client_id_set(
    *, connection: BankConnection, client_id: str, is_demo: bool, consent_held: bool = False
) -> BankConnection:
    """Make the user `client_id` at the connection's bank ("" = no client yet); audited.

    Refused with nothing changed: a malformed id (400), a client another user holds there (409
    `client_id_taken`: two users connecting the same client at once are settled by the unique
    constraint), and a change of client while `consent_held` (409 `client_id_locked`): the
    connection has an authorised or pending accounts consent, which its current client gave, so
    the user revokes it first. The caller asks consents for `consent_held` (banking is below it).
    `is_demo`: a demo client FinTrack proposed; only those may be self-signed (SPEC §3.4).
    """
    if client_id != "":  # "" clears it; anything else must be a well-formed, free client id
        client_id_check(user=connection.user, bank_code=connection.bank_code, client_id=client_id)
    is_demo = bool(is_demo and client_id)
    if client_id == connection.client_id and is_demo == connection.client_id_is_demo:
        return connection
    if consent_held and connection.client_id and client_id != connection.client_id:
        raise ClientIdLocked(extra={"bank_code": connection.bank_code})
    previous = connection.client_id
    now = timezone.now()
    try:
        with transaction.atomic():
            BankConnection.objects.filter(pk=connection.pk).update(
                client_id=client_id, client_id_is_demo=is_demo, updated_at=now
            )
            audit_event_record(
                action=AuditAction.CONNECTION_CLIENT_SET,
                user=connection.user,
                obj=connection,
                bank_code=connection.bank_code,
                details={"from": previous, "to": client_id, "is_demo": is_demo},
            )
    except IntegrityError as exc:
        raise ClientIdTaken(extra={"bank_code": connection.bank_code}) from exc
    connection.client_id = client_id
    connection.client_id_is_demo = is_demo
    connection.updated_at = now
    return connection


def connection_demo_client_id_assign(*, connection: BankConnection) -> BankConnection:
    """Give the connection the demo client FinTrack proposes (is_demo), for a user who gave none.

    Another user may take the same proposal at the same moment: the unique constraint lets one
    of them have it and the other takes the next free one. Without demo clients
    (DEMO_BANK_CLIENTS off) the user must say who they are at the bank: a 400 on `client_id`.
    """
    for _attempt in range(_DEMO_ASSIGN_ATTEMPTS):
        proposal = demo_client_id_propose(bank_code=connection.bank_code, user=connection.user)
        if proposal is None:
            name = bank_display_name(connection.bank_code)
            message = f"Give the client id you have at {name} (e.g. team260-57)."
            raise ValidationFailed(
                f"client_id: {message}", extra={"fields": {"client_id": [message]}}
            )
        try:
            return connection_client_id_set(connection=connection, client_id=proposal, is_demo=True)
        except ClientIdTaken:
            continue  # taken meanwhile: propose again (it now sees the winner's row)
    raise ClientIdTaken("Every demo client proposed was taken meanwhile; connect again.")


def demo_client_id_propose(*, bank_code: str, user=None) -> str | None:
    """The demo client FinTrack would propose at `bank_code`, None without demo clients; a read.

    `<team id of that bank>-<n>`: the user's own client number at another bank when it is free
    here (so a demo user is one sandbox persona at every bank), else the first n ≥ 1 no one holds
    at this bank and no other user holds at any bank. No upper bound: the sandbox serves every
    client number (sandbox.personas.client_number).
    """
    return demo_client_ids_propose(bank_codes=[bank_code], user=user).get(bank_code)


def demo_client_ids_propose(*, bank_codes: Iterable[str], user=None) -> dict[str, str]:
    """`demo_client_id_propose` for several banks in one query: {bank_code: proposal}."""
    if not settings.DEMO_BANK_CLIENTS:
        return {}
    codes = list(dict.fromkeys(bank_codes))
    if not codes:
        return {}
    for code in codes:
        team_credentials(code)  # UnknownBank for an unconfigured code
    prefixes = {code: f"{team_credentials(code)[0]}-" for code in settings.BANKS}
    demo_like = Q(pk__in=[])
    for code, prefix in prefixes.items():
        demo_like |= Q(bank_code=code, client_id__startswith=prefix)
    user_id = getattr(user, "pk", None)
    at_bank: dict[str, set[int]] = {code: set() for code in codes}
    own: set[int] = set()
    others: set[int] = set()
    rows = BankConnection.objects.filter(demo_like).values_list("user_id", "bank_code", "client_id")
    for row_user_id, code, client_id in rows.iterator():
        number = _demo_number(client_id, prefixes[code])
        if number is None:
            continue
        if code in at_bank:
            at_bank[code].add(number)
        (own if user_id is not None and row_user_id == user_id else others).add(number)
    proposals = {}
    for code in codes:
        taken = at_bank[code]
        number = next((n for n in sorted(own) if n not in taken), None)
        if number is None:
            number = 1
            while number in taken or number in others:
                number += 1
        proposals[code] = f"{prefixes[code]}{number}"
    return proposals


def _demo_number(client_id: str, prefix: str) -> int | None:
    """The n of `<prefix><n>` written as the sandbox writes it (no sign, no leading zero)."""
    digits = client_id[len(prefix) :]
    if not client_id.startswith(prefix) or not (digits.isascii() and digits.isdigit()):
        return None
    if digits.startswith("0"):
        return None
    return int(digits)
