"""Consent lifecycle at the banks (SPEC §3, §6): request once and reuse, poll a pending one,
revoke, invalidate on 403 CONSENT_REQUIRED, and a separate demo-only approve step (SPEC §3.4);
for connecting a bank, the two consents a connect asks for and what the user must do to approve.

Bank calls happen outside database transactions; every change is audited. Imports banking and
audit, never sync or users (they orchestrate the connect flow above this app).
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import AuditAction, audit_event_record
from banking.clients.errors import BankError, BankNotFoundError
from banking.clients.types import AccountConsentResult
from banking.services.clients import bank_client_for, bank_display_name
from banking.services.connections import connection_consent_expiry_set
from consents.exceptions import (
    ConsentNotPending,
    DemoSigningDisabled,
    NoBankClientId,
    UnknownConsentKind,
)
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.selectors import consent_active, consent_pending

logger = logging.getLogger(__name__)
# At most one consent per user, bank and kind is in these states (a database constraint).
LIVE_CONSENT_STATUSES = (ConsentStatus.PENDING, ConsentStatus.AUTHORIZED)

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
    "consent_revoke",
]


def _bank_client_id(user) -> str:
    if not user.external_client_id:
        raise NoBankClientId()
    return user.external_client_id


def _check_kind(kind: str) -> None:
    if kind not in ConsentKind.values:
        raise UnknownConsentKind(f"Unknown consent kind {kind!r}.", extra={"kind": str(kind)})


def _sync_connection_expiry(consent: Consent) -> None:
    if consent.kind != ConsentKind.ACCOUNTS:
        return
    expires_at = consent.expires_at if consent.status == ConsentStatus.AUTHORIZED else None
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
    client_id = _bank_client_id(user)
    _expire_outdated(user=user, bank_code=bank_code, kind=kind)
    pending = consent_pending(user=user, bank_code=bank_code, kind=kind)
    if pending is not None:
        return consent_refresh(consent=pending)

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


def _store_requested(*, user, bank_code: str, kind: str, result, expires_at) -> Consent:
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
        )
        _sync_connection_expiry(consent)
        details = {"kind": kind, "status": consent.status, "request_id": consent.request_id}
        audit_event_record(
            action=AuditAction.CONSENT_REQUESTED,
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
    """Authorised consents past their expiry are expired locally (the bank would answer 403)."""
    Consent.objects.filter(
        user=user,
        bank_code=bank_code,
        kind=kind,
        status=ConsentStatus.AUTHORIZED,
        expires_at__lte=timezone.now(),
    ).update(status=ConsentStatus.EXPIRED, status_reason="expired", updated_at=timezone.now())


def _poll(consent: Consent) -> AccountConsentResult | None:
    client = bank_client_for(consent.bank_code, user=consent.user)
    bank_id = consent.bank_consent_id or consent.request_id
    if not bank_id:
        return None
    try:
        if consent.kind == ConsentKind.ACCOUNTS:
            return client.get_account_consent(consent_id=bank_id)
        return client.get_product_consent(
            consent_id=bank_id, client_id=_bank_client_id(consent.user)
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
    if new_status == previous and (result.consent_id or "") in ("", consent.bank_consent_id):
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
    _save(consent, fields)
    actions: dict[str, AuditAction] = {
        ConsentStatus.AUTHORIZED: AuditAction.CONSENT_AUTHORIZED,
        ConsentStatus.REJECTED: AuditAction.CONSENT_REJECTED,
        ConsentStatus.REVOKED: AuditAction.CONSENT_REVOKED,
        ConsentStatus.EXPIRED: AuditAction.CONSENT_INVALIDATED,
    }
    action = actions.get(new_status)
    if action and new_status != previous:
        audit_event_record(
            action=action,
            user=consent.user,
            obj=consent,
            bank_code=consent.bank_code,
            details={"kind": consent.kind, "from": previous, "how": how},
        )
    return consent


def consent_approve_demo(*, consent: Consent) -> Consent:
    """DEMO ONLY (SPEC §3.4): approve a pending consent by signing as our own test client.

    Real users approve in their bank's app and FinTrack polls; this shortcut exists for the
    team's demo clients and is off unless DEMO_BANK_CLIENT_SELF_SIGN is set.
    """
    if not settings.DEMO_BANK_CLIENT_SELF_SIGN:
        raise DemoSigningDisabled()
    if consent.status != ConsentStatus.PENDING or not consent.request_id:
        raise ConsentNotPending(extra={"status": consent.status})
    client = bank_client_for(consent.bank_code, user=consent.user)
    client_id = _bank_client_id(consent.user)
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


def consent_awaits_approval(*, consent: Consent) -> bool:
    """Whether the consent still waits for the user's approval, so polling it is worth a call."""
    # Hook for issue 19: a request pending longer than its lifetime expires here (with a clear
    # state) instead of being polled for ever.
    return consent.status == ConsentStatus.PENDING


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


def consent_approval_action(*, consent: Consent) -> dict:
    """What the user must do for a pending consent, with the demo approval URL where enabled."""
    name = bank_display_name(consent.bank_code)
    action = {
        "type": "approve_consent",
        "message": f"Open {name} and approve FinTrack's access request, then come back.",
        "bank_code": consent.bank_code,
        "consent_id": consent.pk,
        "request_id": consent.request_id,
        "approve_demo_url": None,
    }
    if settings.DEMO_BANK_CLIENT_SELF_SIGN:
        # Served by users.onboarding (approving there starts the first sync); named, not imported.
        action["approve_demo_url"] = reverse(
            "consent-approve-demo", kwargs={"consent_id": consent.pk}
        )
    return action


def consent_revoke(*, consent: Consent) -> Consent:
    """Revoke at the bank (a 404 there still revokes locally) and locally."""
    if consent.status == ConsentStatus.REVOKED:
        return consent
    if consent.bank_consent_id and consent.status == ConsentStatus.AUTHORIZED:
        client = bank_client_for(consent.bank_code, user=consent.user)
        try:
            if consent.kind == ConsentKind.ACCOUNTS:
                client.revoke_account_consent(consent_id=consent.bank_consent_id)
            else:
                client.revoke_product_consent(
                    consent_id=consent.bank_consent_id,
                    client_id=_bank_client_id(consent.user),
                )
        except BankNotFoundError:
            logger.info("%s: consent %s already gone at the bank", consent.bank_code, consent.pk)
    previous = consent.status
    consent.status = ConsentStatus.REVOKED
    consent.status_reason = "revoked by the user"
    _save(consent, ["status", "status_reason"])
    audit_event_record(
        action=AuditAction.CONSENT_REVOKED,
        user=consent.user,
        obj=consent,
        bank_code=consent.bank_code,
        details={"kind": consent.kind, "from": previous},
    )
    return consent


def consent_invalidate(*, consent: Consent, reason: str) -> Consent:
    """The bank answered 403 CONSENT_REQUIRED: stop using this consent (expired or revoked)."""
    if consent.status in (ConsentStatus.REVOKED, ConsentStatus.EXPIRED, ConsentStatus.REJECTED):
        return consent
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
    return consent
