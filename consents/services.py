"""Consent lifecycle at the banks (SPEC §3, §6): request once and reuse, poll a pending one,
revoke, invalidate on 403 CONSENT_REQUIRED, and a separate demo-only approve step (SPEC §3.4);
for connecting a bank, the two consents a connect asks for and what the user must do to approve.
Issue 19: a request waiting past CONSENT_APPROVAL_TIMEOUT_MINUTES expires; a renewal is asked for
while the old consent stays in use and switched in one transaction once authorised
(`consent_request_new`, `_renewal_switch`; the orchestration is consents/lifecycle.py); and the
moment FinTrack learns an account consent is gone, the connection says so (`consent_required`
with a reason and a message, or `consent_pending` while a new request waits).

Bank calls happen outside database transactions; every change is audited. Imports banking and
audit, never sync or users (they orchestrate the connect flow above this app).
"""

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import AuditAction, audit_event_record
from banking.clients.errors import BankError, BankNotFoundError
from banking.clients.types import AccountConsentResult
from banking.exceptions import InvalidConnectionTransition
from banking.models import BankConnection, ConnectionStatus
from banking.selectors.connections import connection_get
from banking.services.clients import bank_client_for, bank_display_name
from banking.services.connections import connection_consent_expiry_set, connection_transition
from consents.exceptions import (
    ConsentNotPending,
    DemoSigningDisabled,
    NoBankClientId,
    NotADemoClient,
    UnknownConsentKind,
)
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.selectors import consent_active, consent_pending

logger = logging.getLogger(__name__)
# At most one consent per user, bank and kind is in these states (a database constraint).
LIVE_CONSENT_STATUSES = (ConsentStatus.PENDING, ConsentStatus.AUTHORIZED)
# A consent in one of these is gone for good: the user must approve a new one.
LOST_CONSENT_STATUSES = (ConsentStatus.REVOKED, ConsentStatus.EXPIRED, ConsentStatus.REJECTED)

# Consent.status_reason codes this module writes (a bank's own message is kept as it came).
APPROVAL_TIMED_OUT = "approval_timed_out"  # expired: pending past CONSENT_APPROVAL_TIMEOUT_MINUTES
EXPIRED_PAST_DATE = "expired"  # expired: its expires_at passed
REVOKED_BY_USER = "revoked_by_user"  # revoked through FinTrack (API, admin, account deletion)
WITHDRAWN = "withdrawn_for_new_request"  # a pending request replaced by a fresh one
SUPERSEDED_BY_RENEWAL = "superseded_by_renewal"  # replaced; still to be revoked at the bank
SUPERSEDED_REVOKED_AT_BANK = "superseded_revoked_at_bank"  # replaced, and revoked at the bank

__all__ = [
    "ConnectConsents",
    "connect_consents_ensure",
    "consent_active",
    "consent_approval_action",
    "consent_approve_demo",
    "consent_awaits_approval",
    "consent_ensure",
    "consent_invalidate",
    "consent_refresh",
    "consent_request_new",
    "consent_revoke",
    "consent_withdraw",
]


def _bank_client_id(user, bank_code: str) -> str:
    """Who the user is at the bank: their connection's client id there (set when connecting)."""
    connection = connection_get(user=user, bank_code=bank_code)
    if connection is None or not connection.client_id:
        raise NoBankClientId(extra={"bank_code": bank_code})
    return connection.client_id


def _is_demo_client(*, consent: Consent, connection=None) -> bool:
    """Whether the consent's client is a demo client FinTrack proposed (self-signable): the flag
    of the user's connection to that bank (`connection`, when the caller holds it)."""
    if connection is None:
        connection = connection_get(user=consent.user, bank_code=consent.bank_code)
    return connection is not None and connection.client_id_is_demo


def _check_kind(kind: str) -> None:
    if kind not in ConsentKind.values:
        raise UnknownConsentKind(f"Unknown consent kind {kind!r}.", extra={"kind": str(kind)})


def _sync_connection_expiry(consent: Consent) -> None:
    """The connection shows the expiry of the account consent in use: the authorised one (a
    renewal waiting for approval, or one that lost a race, does not change it)."""
    if consent.kind != ConsentKind.ACCOUNTS:
        return
    authorised = Consent.objects.filter(
        user=consent.user,
        bank_code=consent.bank_code,
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
    ).first()
    expires_at = authorised.expires_at if authorised is not None else None
    connection_consent_expiry_set(
        user=consent.user, bank_code=consent.bank_code, expires_at=expires_at
    )


def _save(consent: Consent, fields: list[str]) -> None:
    with transaction.atomic():
        consent.save(update_fields=[*fields, "updated_at"])
        _sync_connection_expiry(consent)


def consent_ensure(*, user, bank_code: str, kind: str = ConsentKind.ACCOUNTS) -> Consent:
    """A usable consent: the valid authorised one, else the pending one (polled), else a new one."""
    _check_kind(kind)
    active = consent_active(user=user, bank_code=bank_code, kind=kind)
    if active is not None:
        return active
    client_id = _bank_client_id(user, bank_code)
    _expire_outdated(user=user, bank_code=bank_code, kind=kind)
    pending = consent_pending(user=user, bank_code=bank_code, kind=kind)
    if pending is not None:
        return consent_refresh(consent=pending)

    client, result, expires_at = _request_at_bank(
        user=user, bank_code=bank_code, kind=kind, client_id=client_id
    )
    try:
        consent = _store_requested(user=user, bank_code=bank_code, kind=kind, result=result,
                                   expires_at=expires_at)  # fmt: skip
    except IntegrityError:
        # A concurrent call stored its consent first (one live consent per bank and kind):
        # keep that one and withdraw ours at the bank, so no second consent stays behind.
        winner = (
            Consent.objects.filter(
                user=user, bank_code=bank_code, kind=kind, status__in=LIVE_CONSENT_STATUSES
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if winner is None:
            raise
        _withdraw_duplicate(client=client, kind=kind, result=result, client_id=client_id)
        return consent_refresh(consent=winner) if winner.status == ConsentStatus.PENDING else winner
    return consent


def _request_at_bank(*, user, bank_code: str, kind: str, client_id: str):
    """Ask the bank for a new consent of `kind`: (client, answer, expiry). Outside transactions."""
    client = bank_client_for(bank_code, user=user)
    if kind == ConsentKind.ACCOUNTS:
        result = client.request_account_consent(
            client_id=client_id, reason="FinTrack: balances and transactions"
        )
    else:
        result = client.request_product_consent(client_id=client_id)
    expires_at = result.expires_at
    if expires_at is None and result.status == ConsentStatus.AUTHORIZED and result.consent_id:
        # The request answer carries no expiry (SPEC §3.1); the status call does, and the user
        # is shown when their consent runs out. Not knowing it is no reason to fail the connect.
        expires_at = _fetch_expiry(
            client=client, kind=kind, consent_id=result.consent_id, client_id=client_id
        )
    return client, result, expires_at


def _store_requested(
    *, user, bank_code: str, kind: str, result, expires_at, renews: Consent | None = None
) -> Consent:
    """The consent the bank just granted or queued, with its audit trail, in one transaction."""
    with transaction.atomic():
        consent = Consent.objects.create(
            user=user,
            bank_code=bank_code,
            kind=kind,
            bank_consent_id=result.consent_id or "",
            request_id=result.request_id or "",
            status=result.status,
            permissions=list(result.permissions),
            expires_at=expires_at,
            raw_response=result.raw,
            renews=renews,
        )
        _sync_connection_expiry(consent)
        details: dict[str, object] = {
            "kind": kind,
            "status": consent.status,
            "request_id": consent.request_id,
        }
        if renews is not None:
            details["renews"] = renews.pk
        audit_event_record(
            action=AuditAction.CONSENT_RENEWAL_REQUESTED
            if renews is not None
            else AuditAction.CONSENT_REQUESTED,
            user=user,
            obj=consent,
            bank_code=bank_code,
            details=details,
        )
        if consent.status == ConsentStatus.AUTHORIZED:
            audit_event_record(
                action=AuditAction.CONSENT_AUTHORIZED,
                user=user,
                obj=consent,
                bank_code=bank_code,
                details={"kind": kind, "how": "auto_approved"},
            )
    return consent


def _withdraw_duplicate(*, client, kind: str, result: AccountConsentResult, client_id: str) -> None:
    """Revoke at the bank a consent that lost the race to be stored (best effort, logged)."""
    if not result.consent_id:
        logger.info("duplicate %s consent request %s left pending", kind, result.request_id)
        return
    try:
        if kind == ConsentKind.ACCOUNTS:
            client.revoke_account_consent(consent_id=result.consent_id)
        else:
            client.revoke_product_consent(consent_id=result.consent_id, client_id=client_id)
    except BankError as exc:
        logger.warning("duplicate consent %s not revoked: %s", result.consent_id, exc)


def _fetch_expiry(*, client, kind: str, consent_id: str, client_id: str):
    try:
        if kind == ConsentKind.ACCOUNTS:
            return client.get_account_consent(consent_id=consent_id).expires_at
        return client.get_product_consent(consent_id=consent_id, client_id=client_id).expires_at
    except BankError as exc:
        logger.warning("consent expiry unknown for %s: %s", consent_id, exc)
        return None


def _expire_outdated(*, user, bank_code: str, kind: str) -> None:
    """Authorised consents past their expiry are expired locally (the bank would answer 403),
    and a request pending past its approval timeout expires (consent_awaits_approval)."""
    consent_expire_outdated(user=user, bank_code=bank_code, kind=kind)
    pending = consent_pending(user=user, bank_code=bank_code, kind=kind)
    if pending is not None:
        consent_awaits_approval(consent=pending)


def consent_expire_outdated(*, user, bank_code: str, kind: str) -> list[Consent]:
    """Expire the user's authorised consents of `kind` at the bank whose expiry has passed; the
    connection learns it at once (consent_required, consent_expired). Returns those expired."""
    now = timezone.now()
    outdated = Consent.objects.filter(
        user=user,
        bank_code=bank_code,
        kind=kind,
        status=ConsentStatus.AUTHORIZED,
        expires_at__lte=now,
    ).select_related("user")
    expired = []
    for consent in outdated:
        with transaction.atomic():
            changed = Consent.objects.filter(pk=consent.pk, status=ConsentStatus.AUTHORIZED).update(
                status=ConsentStatus.EXPIRED, status_reason=EXPIRED_PAST_DATE, updated_at=now
            )
            if not changed:
                continue  # settled meanwhile by someone else
            consent.status, consent.status_reason = ConsentStatus.EXPIRED, EXPIRED_PAST_DATE
            _sync_connection_expiry(consent)
            audit_event_record(
                action=AuditAction.CONSENT_EXPIRED,
                user=consent.user,
                obj=consent,
                bank_code=consent.bank_code,
                details={"kind": consent.kind, "expires_at": _iso(consent.expires_at)},
            )
        _connection_consent_lost(consent)
        expired.append(consent)
    return expired


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _poll(consent: Consent) -> AccountConsentResult | None:
    client = bank_client_for(consent.bank_code, user=consent.user)
    bank_id = consent.bank_consent_id or consent.request_id
    if not bank_id:
        return None
    try:
        if consent.kind == ConsentKind.ACCOUNTS:
            return client.get_account_consent(consent_id=bank_id)
        return client.get_product_consent(
            consent_id=bank_id, client_id=_bank_client_id(consent.user, consent.bank_code)
        )
    except BankNotFoundError:
        if consent.bank_consent_id:
            # The bank no longer knows the consent: it is gone.
            return AccountConsentResult(
                status=ConsentStatus.REVOKED, consent_id=consent.bank_consent_id, request_id=None
            )
        # An unknown request id tells us nothing (SPEC §3.2): keep waiting.
        return None


def consent_refresh(*, consent: Consent) -> Consent:
    """Ask the bank for the consent's status; a pending one becomes authorised only with a real
    consent id (SPEC §3.2 trap: a request id keeps answering AwaitingAuthorization)."""
    if consent.status not in (ConsentStatus.PENDING, ConsentStatus.AUTHORIZED):
        return consent
    result = _poll(consent)
    if result is None:
        return consent
    return _apply_result(consent, result, how="polled")


def _apply_result(consent: Consent, result: AccountConsentResult, *, how: str) -> Consent:
    previous = consent.status
    new_status = result.status
    if new_status == ConsentStatus.AUTHORIZED and not (
        result.consent_id or consent.bank_consent_id
    ):
        return consent  # authorised without an id we could send: still not usable
    if new_status == ConsentStatus.PENDING and previous == ConsentStatus.AUTHORIZED:
        return consent  # a stale answer never downgrades an authorised consent
    expiry_learned = (
        new_status == ConsentStatus.AUTHORIZED
        and result.expires_at is not None
        and result.expires_at != consent.expires_at
    )
    if (
        new_status == previous
        and (result.consent_id or "") in ("", consent.bank_consent_id)
        and not expiry_learned
    ):
        return consent
    consent.status = new_status
    fields = ["status", "raw_response"]
    if result.consent_id and result.consent_id != consent.bank_consent_id:
        consent.bank_consent_id = result.consent_id
        fields.append("bank_consent_id")
    if result.expires_at and new_status == ConsentStatus.AUTHORIZED:
        consent.expires_at = result.expires_at
        fields.append("expires_at")
    if result.permissions:
        consent.permissions = list(result.permissions)
        fields.append("permissions")
    consent.raw_response = result.raw or consent.raw_response
    if new_status != ConsentStatus.AUTHORIZED:
        consent.status_reason = f"bank answered {new_status}"
        fields.append("status_reason")
    renewed = None
    if consent.renews_id and new_status == ConsentStatus.AUTHORIZED and previous != new_status:
        switched, renewed = _renewal_switch(consent, fields)
        if not switched:
            return consent  # switched meanwhile by another caller (a poll and an approval)
    else:
        _save(consent, fields)
    actions: dict[str, AuditAction] = {
        ConsentStatus.AUTHORIZED: AuditAction.CONSENT_AUTHORIZED,
        ConsentStatus.REJECTED: AuditAction.CONSENT_REJECTED,
        ConsentStatus.REVOKED: AuditAction.CONSENT_REVOKED,
        ConsentStatus.EXPIRED: AuditAction.CONSENT_INVALIDATED,
    }
    action = actions.get(new_status)
    if action and new_status != previous:
        details: dict[str, object] = {"kind": consent.kind, "from": previous, "how": how}
        if renewed is not None:
            details["renews"] = renewed.pk
        audit_event_record(
            action=action,
            user=consent.user,
            obj=consent,
            bank_code=consent.bank_code,
            details=details,
        )
    if new_status in LOST_CONSENT_STATUSES and new_status != previous:
        _connection_consent_lost(consent)
    return consent


def _renewal_switch(consent: Consent, fields: list[str]) -> tuple[bool, Consent | None]:
    """The renewal `consent` is authorised: the consent it renews becomes superseded and this one
    authorised, in one transaction, the old one first (one authorised consent per user, bank and
    kind is a constraint). A sync already running keeps the old one to its end; the old one is
    revoked at the bank after commit, once no sync of the bank runs (consents.tasks).

    Returns (switched, the consent replaced): switched False when another caller did it first
    (both rows are locked, old then new, so two switches queue); replaced None when the old one
    was no longer authorised (then this is simply the consent in use)."""
    with transaction.atomic():
        old = (
            Consent.objects.select_for_update().filter(pk=consent.renews_id).first()
            if consent.renews_id is not None
            else None
        )
        renewal = Consent.objects.select_for_update().filter(pk=consent.pk).first()
        if renewal is None or renewal.status != ConsentStatus.PENDING:
            if renewal is not None:
                consent.refresh_from_db()
            return False, None
        if old is None or old.status != ConsentStatus.AUTHORIZED:
            old = None
        else:
            old.status = ConsentStatus.SUPERSEDED
            old.status_reason = SUPERSEDED_BY_RENEWAL
            old.save(update_fields=["status", "status_reason", "updated_at"])
            audit_event_record(
                action=AuditAction.CONSENT_SUPERSEDED,
                user=consent.user,
                obj=old,
                bank_code=consent.bank_code,
                details={
                    "kind": old.kind,
                    "by": consent.pk,
                    "bank_consent_id": old.bank_consent_id,
                },
            )
        _save(consent, fields)
        if old is not None:
            transaction.on_commit(partial(_superseded_revoke_send, consent_id=old.pk), robust=True)
    return True, old


def _superseded_revoke_send(*, consent_id: int) -> None:
    """Send the revocation at the bank of a consent its renewal replaced (consents.tasks)."""
    from consents.tasks import superseded_consent_revoke_later

    superseded_consent_revoke_later(consent_id=consent_id, attempt=0, countdown=None)


def consent_approve_demo_check(*, consent: Consent) -> None:
    """Whether the demo approval of `consent` may be asked of the bank (no bank call): demo
    signing on (403), the consent waiting for approval (409), a demo client FinTrack proposed
    (403). A web request checks this before a worker approves."""
    if not settings.DEMO_BANK_CLIENT_SELF_SIGN:
        raise DemoSigningDisabled()
    if consent.status != ConsentStatus.PENDING or not consent.request_id:
        raise ConsentNotPending(extra={"status": consent.status})
    if not _is_demo_client(consent=consent):
        raise NotADemoClient(
            f"Approve FinTrack's request in {bank_display_name(consent.bank_code)}'s app: only a "
            "demo client FinTrack proposed can be approved here. FinTrack notices the approval.",
            extra={"bank_code": consent.bank_code},
        )


def consent_approve_demo(*, consent: Consent) -> Consent:
    """DEMO ONLY (SPEC §3.4): approve a pending consent by signing as our own test client.

    Real users approve in their bank's app and FinTrack polls; this shortcut exists for the
    team's demo clients (a connection whose client FinTrack proposed, `client_id_is_demo`) and
    is off unless DEMO_BANK_CLIENT_SELF_SIGN is set; a client the user gave approves in the bank.
    """
    consent_approve_demo_check(consent=consent)
    client = bank_client_for(consent.bank_code, user=consent.user)
    client_id = _bank_client_id(consent.user, consent.bank_code)
    try:
        if consent.kind == ConsentKind.ACCOUNTS:
            result = client.approve_account_consent_as_client(
                client_id=client_id, request_id=consent.request_id
            )
        else:
            result = client.approve_product_consent_as_client(
                client_id=client_id, request_id=consent.request_id
            )
    except BankNotFoundError as exc:
        # Already processed at the bank (signed twice, or approved in the bank's app).
        consent = consent_refresh(consent=consent)
        if consent.status == ConsentStatus.PENDING:
            raise ConsentNotPending(
                "The bank no longer has this request waiting for approval.",
                extra={"status": consent.status, "bank_message": exc.message[:200]},
            ) from exc
        return consent
    return _apply_result(consent, result, how="demo_self_sign")


def consent_approval_deadline(*, consent: Consent) -> datetime | None:
    """When a pending request expires unless approved (None once it no longer waits)."""
    if consent.status != ConsentStatus.PENDING or consent.created_at is None:
        return None
    return consent.created_at + timedelta(minutes=settings.CONSENT_APPROVAL_TIMEOUT_MINUTES)


def consent_awaits_approval(*, consent: Consent) -> bool:
    """Whether the consent still waits for the user's approval, so polling it is worth a call.

    A request pending past CONSENT_APPROVAL_TIMEOUT_MINUTES expires here instead of being polled
    for ever (consent_approval_expire): at the live banks a request approved in the bank's own
    app never resolves by its id (SPEC §16, §17), so only a timeout ends it, with a clear state.
    """
    deadline = consent_approval_deadline(consent=consent)
    if deadline is None:
        return False
    if timezone.now() >= deadline:
        consent_approval_expire(consent=consent)
        return False
    return True


def consent_approval_expire(*, consent: Consent) -> Consent:
    """A request nobody approved in time (or approved in the bank's app, which FinTrack cannot
    see) expires: status expired, reason approval_timed_out; the connection goes to
    consent_required (approval_expired) unless another consent is still in use."""
    now = timezone.now()
    with transaction.atomic():
        changed = Consent.objects.filter(pk=consent.pk, status=ConsentStatus.PENDING).update(
            status=ConsentStatus.EXPIRED, status_reason=APPROVAL_TIMED_OUT, updated_at=now
        )
        if not changed:
            consent.refresh_from_db()
            return consent
        consent.status, consent.status_reason = ConsentStatus.EXPIRED, APPROVAL_TIMED_OUT
        audit_event_record(
            action=AuditAction.CONSENT_APPROVAL_EXPIRED,
            user=consent.user,
            obj=consent,
            bank_code=consent.bank_code,
            details={
                "kind": consent.kind,
                "request_id": consent.request_id,
                "pending_since": _iso(consent.created_at),
                "timeout_minutes": settings.CONSENT_APPROVAL_TIMEOUT_MINUTES,
                "renews": consent.renews_id,
            },
        )
    _connection_consent_lost(consent)
    return consent


# --- Connecting a bank: the consents it asks for ----------------------------------------------


@dataclass(frozen=True)
class ConnectConsents:
    """The consents a connect holds: accounts (required) and products (optional, may be None)."""

    accounts: Consent
    products: Consent | None


def connect_consents_ensure(*, user, bank_code: str) -> ConnectConsents:
    """Both consents of a connect: accounts (a bank error propagates), then products (optional:
    a bank error is logged and the sync skips agreements)."""
    accounts = consent_ensure(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS)
    try:
        products = consent_ensure(user=user, bank_code=bank_code, kind=ConsentKind.PRODUCTS)
    except BankError as exc:
        logger.warning("product consent at %s for user %s failed: %s", bank_code, user.pk, exc)
        products = None
    return ConnectConsents(accounts=accounts, products=products)


def consent_approval_action(*, consent: Consent, connection=None) -> dict:
    """What the user must do for a pending consent, with the demo approval URL where enabled
    and the client is a demo one (`connection`: the user's connection there, if at hand)."""
    name = bank_display_name(consent.bank_code)
    deadline = consent_approval_deadline(consent=consent)
    until = f" by {deadline:%Y-%m-%d %H:%M} UTC" if deadline else ""
    action = {
        "type": "approve_consent",
        # Honest about SPEC §16/§17: the bank mints the approved consent's id without telling
        # FinTrack, so an approval in its app may leave this request pending until it expires.
        "message": (
            f"Open {name} and approve FinTrack's access request{until}; FinTrack checks it "
            f"regularly. {name} may not tell FinTrack about an approval given in its own app: "
            "if the request still shows pending after you approved it, start a new request."
        ),
        "bank_code": consent.bank_code,
        "consent_id": consent.pk,
        "bank_request_id": consent.request_id,
        "approval_expires_at": deadline,
        "request_again_url": f"/api/banks/{consent.bank_code}/consents/request-again",
        "approve_demo_url": None,
    }
    if settings.DEMO_BANK_CLIENT_SELF_SIGN and _is_demo_client(
        consent=consent, connection=connection
    ):
        # Served by users.onboarding (approving there starts the first sync); named, not imported.
        action["approve_demo_url"] = reverse(
            "consent-approve-demo", kwargs={"consent_id": consent.pk}
        )
    return action


def consent_revoke(*, consent: Consent) -> Consent:
    """Revoke at the bank (a 404 there still revokes locally) and locally."""
    if consent.status == ConsentStatus.REVOKED:
        return consent
    # A consent its renewal replaced is still live at the bank until revoked there.
    live_at_bank = consent.status == ConsentStatus.AUTHORIZED or (
        consent.status == ConsentStatus.SUPERSEDED
        and consent.status_reason == SUPERSEDED_BY_RENEWAL
    )
    if consent.bank_consent_id and live_at_bank:
        client = bank_client_for(consent.bank_code, user=consent.user)
        try:
            if consent.kind == ConsentKind.ACCOUNTS:
                client.revoke_account_consent(consent_id=consent.bank_consent_id)
            else:
                client.revoke_product_consent(
                    consent_id=consent.bank_consent_id,
                    client_id=_bank_client_id(consent.user, consent.bank_code),
                )
        except BankNotFoundError:
            logger.info("%s: consent %s already gone at the bank", consent.bank_code, consent.pk)
    previous = consent.status
    consent.status = ConsentStatus.REVOKED
    consent.status_reason = REVOKED_BY_USER
    _save(consent, ["status", "status_reason"])
    audit_event_record(
        action=AuditAction.CONSENT_REVOKED,
        user=consent.user,
        obj=consent,
        bank_code=consent.bank_code,
        details={"kind": consent.kind, "from": previous},
    )
    if previous != ConsentStatus.SUPERSEDED:
        _connection_consent_lost(consent)
    return consent


def consent_invalidate(*, consent: Consent, reason: str) -> Consent:
    """The bank answered 403 CONSENT_REQUIRED: stop using this consent (expired or revoked)."""
    if consent.status in (*LOST_CONSENT_STATUSES, ConsentStatus.SUPERSEDED):
        return consent  # already gone, or replaced by its renewal (which the next sync uses)
    previous = consent.status
    past_expiry = consent.expires_at is not None and consent.expires_at <= timezone.now()
    consent.status = ConsentStatus.EXPIRED if past_expiry else ConsentStatus.REVOKED
    consent.status_reason = (reason or "bank answered CONSENT_REQUIRED")[:255]
    _save(consent, ["status", "status_reason"])
    audit_event_record(
        action=AuditAction.CONSENT_INVALIDATED,
        user=consent.user,
        obj=consent,
        bank_code=consent.bank_code,
        details={"kind": consent.kind, "from": previous, "to": consent.status, "reason": reason},
    )
    _connection_consent_lost(consent)
    return consent


# --- A fresh request, a renewal ----------------------------------------------------------------


def consent_request_new(
    *,
    user,
    bank_code: str,
    kind: str,
    renews: Consent | None = None,
    replacing: Consent | None = None,
) -> Consent:
    """Ask the bank for a new consent of `kind`, whatever is stored.

    `replacing`: a pending request withdrawn here (the bank offers no way to withdraw a `req-…`,
    SPEC §3.3), in the transaction that stores the new one, so a bank failure leaves it as it
    was. `renews`: the authorised consent this renews; it stays authorised and in use until the
    new one is, which at an auto-approving bank is at once (`_renewal_switch`).
    """
    _check_kind(kind)
    client_id = _bank_client_id(user, bank_code)
    client, result, expires_at = _request_at_bank(
        user=user, bank_code=bank_code, kind=kind, client_id=client_id
    )
    # A renewal is stored pending and switched in: one authorised consent per bank and kind.
    switch_now = renews is not None and result.status == ConsentStatus.AUTHORIZED
    stored = (
        replace(result, status=ConsentStatus.PENDING, consent_id=None) if switch_now else result
    )
    try:
        with transaction.atomic():
            if replacing is not None:
                consent_withdraw(consent=replacing)
            consent = _store_requested(
                user=user,
                bank_code=bank_code,
                kind=kind,
                result=stored,
                expires_at=None if switch_now else expires_at,
                renews=renews,
            )
    except IntegrityError:
        # A concurrent request stored its consent first: keep that one, withdraw ours.
        winner = consent_pending(user=user, bank_code=bank_code, kind=kind) or consent_active(
            user=user, bank_code=bank_code, kind=kind
        )
        if winner is None:
            raise
        _withdraw_duplicate(client=client, kind=kind, result=result, client_id=client_id)
        return winner
    if switch_now:
        consent = _apply_result(
            consent, replace(result, expires_at=expires_at), how="auto_approved"
        )
    return consent


def consent_withdraw(*, consent: Consent) -> Consent:
    """Withdraw a pending request here, for a fresh one (status revoked, reason withdrawn)."""
    now = timezone.now()
    changed = Consent.objects.filter(pk=consent.pk, status=ConsentStatus.PENDING).update(
        status=ConsentStatus.REVOKED, status_reason=WITHDRAWN, updated_at=now
    )
    if not changed:
        consent.refresh_from_db()
        return consent
    consent.status, consent.status_reason = ConsentStatus.REVOKED, WITHDRAWN
    audit_event_record(
        action=AuditAction.CONSENT_WITHDRAWN,
        user=consent.user,
        obj=consent,
        bank_code=consent.bank_code,
        details={"kind": consent.kind, "request_id": consent.request_id},
    )
    return consent


# --- What the connection shows about its account consent ---------------------------------------


@dataclass(frozen=True)
class ConsentProblem:
    """Why a bank has no usable account consent: the connection's status, reason and message."""

    connection_status: str
    reason: str
    message: str


def _loss(consent: Consent, name: str) -> tuple[str, str]:
    """(reason, message) of an account consent that is gone, in words the user can act on."""
    if consent.status == ConsentStatus.EXPIRED and consent.status_reason == APPROVAL_TIMED_OUT:
        return "approval_expired", (
            f"The approval request at {name} expired; start a new one. An approval given in "
            f"{name}'s own app does not reach FinTrack, so start the new request here first."
        )
    if consent.status == ConsentStatus.EXPIRED or (
        consent.status == ConsentStatus.AUTHORIZED
        and consent.expires_at is not None
        and consent.expires_at <= timezone.now()
    ):
        on = f" on {consent.expires_at:%Y-%m-%d}" if consent.expires_at else ""
        return "consent_expired", (
            f"FinTrack's access to {name} expired{on}; approve a new consent to sync again."
        )
    if consent.status == ConsentStatus.REVOKED and consent.status_reason == REVOKED_BY_USER:
        return "revoked_by_user", (
            f"You revoked FinTrack's access to {name}; connect the bank again to sync it."
        )
    if consent.status == ConsentStatus.REVOKED and consent.status_reason == WITHDRAWN:
        return "request_withdrawn", f"The request at {name} was withdrawn; start a new one."
    if consent.status == ConsentStatus.REVOKED:
        return "consent_revoked", (
            f"FinTrack's access to {name} was revoked at the bank; connect the bank again to "
            "approve a new consent."
        )
    if consent.status == ConsentStatus.REJECTED:
        return "consent_rejected", (
            f"FinTrack's access request was rejected at {name}; start a new one to connect."
        )
    return "consent_missing", f"No consent at {name}: connect the bank to approve one."


def accounts_consent_problem(*, user, bank_code: str) -> ConsentProblem | None:
    """What the connection should show when the bank has no usable account consent (None: it
    has one). A read: a consent past its expiry is reported, not expired (see
    consent_expire_outdated)."""
    if consent_active(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS) is not None:
        return None
    name = bank_display_name(bank_code)
    pending = consent_pending(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS)
    if pending is not None:
        return ConsentProblem(
            connection_status=ConnectionStatus.CONSENT_PENDING,
            reason="awaiting_approval",
            message=f"Waiting for your approval at {name}: approve FinTrack's request there.",
        )
    latest = (
        Consent.objects.filter(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS)
        .order_by("-created_at", "-id")
        .first()
    )
    if latest is None:
        reason, message = (
            "consent_missing",
            f"No consent at {name}: connect the bank to approve one.",
        )
    else:
        reason, message = _loss(latest, name)
    return ConsentProblem(
        connection_status=ConnectionStatus.CONSENT_REQUIRED, reason=reason, message=message
    )


def _connection_consent_lost(consent: Consent) -> None:
    """An account consent stopped being usable: unless another one is in use, the connection
    says so at once (consent_required with the reason, or consent_pending while a new request
    waits). A product consent never does: account data still syncs without it."""
    if consent.kind != ConsentKind.ACCOUNTS:
        return
    connection = BankConnection.objects.filter(
        user_id=consent.user_id, bank_code=consent.bank_code
    ).first()
    if connection is None:
        return
    problem = accounts_consent_problem(user=consent.user, bank_code=consent.bank_code)
    if problem is None:
        return
    if (connection.status, connection.status_reason, connection.last_error) == (
        problem.connection_status,
        problem.reason,
        problem.message,
    ):
        return
    try:
        connection_transition(
            connection=connection,
            to_status=problem.connection_status,
            error=problem.message,
            reason=problem.reason,
        )
    except InvalidConnectionTransition as exc:
        logger.warning("connection %s: consent state not shown: %s", connection.pk, exc)
