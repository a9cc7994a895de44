"""The consent lifecycle after connect (issue 19): early renewal, a fresh request in place of a
stale one, superseded consents revoked at the bank, and the periodic sweep.

- `connect_consents_renew`: a new consent requested while the old one stays authorised and in use
  (`renews`); an auto-approving bank authorises it at once and the switch happens then, a manual
  one leaves it pending (polled by a worker; switched when authorised, consents.services).
- `connect_consents_request_again`: the stale pending requests withdrawn here and new ones asked
  for, in one call: a renewal where a consent is still authorised, else a new consent.
- `connect_consents_renew_check` / `connect_consents_request_again_check`: the same refusals
  (404, 409) without a bank call, made by the web request before a worker asks the bank
  (users/onboarding/connect_requests.py, issue 21).
- `consent_superseded_revoke`: a consent its renewal replaced is revoked at the bank, best effort,
  once no sync of that bank runs (consents.signals.consent_in_use): a run in progress keeps the
  consent it started with to its end, so syncing never has a gap.
- `consent_lifecycle_sweep` (beat, consents.tasks): approval requests that timed out expire,
  consents past their expiry expire, unknown expiries are asked for, consents expiring within
  CONSENT_EXPIRY_WARNING_DAYS are renewed, pending renewals are polled, superseded consents left
  at the bank are revoked.

Bank calls happen outside database transactions, one consent at a time; a bank error is logged
and the sweep goes on with the next consent.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audit.services import AuditAction, audit_event_record
from banking.clients.errors import BankError, BankNotFoundError
from banking.services.clients import bank_client_for, bank_display_name
from consents import services
from consents.exceptions import NoConsentToRenew, NothingToRequestAgain
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.selectors import consent_pending
from consents.signals import consent_in_use_ask
from fintrack.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)


def _authorised(*, user, bank_code: str, kind: str) -> Consent | None:
    """The authorised consent of `kind` (in use, even past its expiry until that is noticed)."""
    return Consent.objects.filter(
        user=user, bank_code=bank_code, kind=kind, status=ConsentStatus.AUTHORIZED
    ).first()


def _waiting(*, user, bank_code: str, kind: str) -> Consent | None:
    """The pending request of `kind`, if it still waits (one past its timeout expires here)."""
    pending = consent_pending(user=user, bank_code=bank_code, kind=kind)
    if pending is not None and services.consent_awaits_approval(consent=pending):
        return pending
    return None


# --- Renewal -----------------------------------------------------------------------------------


def consent_renew(*, user, bank_code: str, kind: str) -> Consent:
    """Request a consent renewing the authorised one of `kind`; the renewal (authorised at once
    at an auto-approving bank, else pending). A renewal already waiting is returned as it is
    (no second request); NoConsentToRenew (409) without an authorised consent."""
    current = _renewable(user=user, bank_code=bank_code, kind=kind)
    pending = _waiting(user=user, bank_code=bank_code, kind=kind)
    if pending is not None:
        return pending
    return services.consent_request_new(user=user, bank_code=bank_code, kind=kind, renews=current)


def _renewable(*, user, bank_code: str, kind: str) -> Consent:
    """The authorised consent of `kind` a renewal replaces; NoConsentToRenew (409) without."""
    current = _authorised(user=user, bank_code=bank_code, kind=kind)
    if current is None:
        name = bank_display_name(bank_code)
        raise NoConsentToRenew(
            f"No authorised consent at {name} to renew: connect the bank to approve one.",
            extra={"bank_code": bank_code, "kind": kind, "connect_url": _connect_url(bank_code)},
        )
    return current


def connect_consents_renew_check(*, user, bank_code: str) -> None:
    """Whether the bank's consents can be renewed, asking no bank: a configured bank (404) with
    an authorised accounts consent (409 no_consent_to_renew). A web request checks this before
    a worker renews (connect_consents_renew checks it again, the state may change meanwhile)."""
    bank_display_name(bank_code)  # UnknownBank for an unconfigured code
    _renewable(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS)


def connect_consents_renew(*, user, bank_code: str) -> services.ConnectConsents:
    """Renew a connected bank's consents early: accounts (required; a bank error propagates)
    and products (renewed when authorised, else asked for anew; a bank error is logged)."""
    bank_display_name(bank_code)  # UnknownBank for an unconfigured code
    accounts = consent_renew(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS)
    products: Consent | None
    try:
        if _authorised(user=user, bank_code=bank_code, kind=ConsentKind.PRODUCTS) is not None:
            products = consent_renew(user=user, bank_code=bank_code, kind=ConsentKind.PRODUCTS)
        else:
            products = services.consent_ensure(
                user=user, bank_code=bank_code, kind=ConsentKind.PRODUCTS
            )
    except BankError as exc:
        logger.warning("product consent renewal at %s for %s failed: %s", bank_code, user.pk, exc)
        products = None
    return services.ConnectConsents(accounts=accounts, products=products)


# --- A fresh request ---------------------------------------------------------------------------


def _request_again(*, user, bank_code: str, kind: str) -> tuple[Consent, bool]:
    """(consent, asked): a new request of `kind` in place of a pending one (or of one lost),
    renewing the authorised consent if there is one; an authorised consent with nothing
    pending is kept as it is (asked False)."""
    current = _authorised(user=user, bank_code=bank_code, kind=kind)
    pending = consent_pending(user=user, bank_code=bank_code, kind=kind)
    if current is not None and pending is None:
        return current, False
    consent = services.consent_request_new(
        user=user, bank_code=bank_code, kind=kind, renews=current, replacing=pending
    )
    return consent, True


def connect_consents_request_again(*, user, bank_code: str) -> services.ConnectConsents:
    """Start fresh approval requests in one call: each pending request (stale or not: the user
    may have approved it in the bank's app, which FinTrack cannot see, SPEC §16) is withdrawn
    and a new one asked for, and a lost consent (revoked, expired, rejected, timed out) is asked
    for anew. Nothing waiting and access authorised: NothingToRequestAgain (409, use renew); a
    bank never connected: NothingToRequestAgain too (use connect)."""
    name = _request_again_bank_check(user=user, bank_code=bank_code)
    accounts, asked = _request_again(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS)
    products: Consent | None = None
    try:
        products, products_asked = _request_again(
            user=user, bank_code=bank_code, kind=ConsentKind.PRODUCTS
        )
        asked = asked or products_asked
    except BankError as exc:
        logger.warning("product consent request at %s for %s failed: %s", bank_code, user.pk, exc)
    if not asked:
        raise _nothing_to_request_again(name=name, bank_code=bank_code)
    return services.ConnectConsents(accounts=accounts, products=products)


def connect_consents_request_again_check(*, user, bank_code: str) -> None:
    """Whether a fresh request would ask the bank for anything, asking no bank: a configured
    bank (404) once connected (409 nothing_to_request_again), with a consent of some kind
    pending or not authorised (409 nothing_to_request_again, renew instead). A web request
    checks this before a worker asks (connect_consents_request_again checks it again)."""
    name = _request_again_bank_check(user=user, bank_code=bank_code)
    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        in_order = (
            _authorised(user=user, bank_code=bank_code, kind=kind) is not None
            and consent_pending(user=user, bank_code=bank_code, kind=kind) is None
        )
        if not in_order:
            return
    raise _nothing_to_request_again(name=name, bank_code=bank_code)


def _request_again_bank_check(*, user, bank_code: str) -> str:
    """The bank's name; UnknownBank (404) or NothingToRequestAgain for a bank never connected."""
    name = bank_display_name(bank_code)  # UnknownBank for an unconfigured code
    if not Consent.objects.filter(user=user, bank_code=bank_code).exists():
        raise NothingToRequestAgain(
            f"{name} was never connected: connect it first.",
            extra={"bank_code": bank_code, "connect_url": _connect_url(bank_code)},
        )
    return name


def _nothing_to_request_again(*, name: str, bank_code: str) -> NothingToRequestAgain:
    return NothingToRequestAgain(
        f"Nothing waits for approval at {name} and access is authorised; to replace the "
        "consent before it expires, renew it.",
        extra={"bank_code": bank_code, "renew_url": f"/api/banks/{bank_code}/consents/renew"},
    )


def _connect_url(bank_code: str) -> str:
    return f"/api/banks/{bank_code}/connect"


# --- Superseded consents -----------------------------------------------------------------------


class RevokeOutcome:
    REVOKED = "revoked"
    IN_USE = "in_use"  # a sync of the bank runs: try again later
    FAILED = "failed"  # the bank failed: try again later
    SKIPPED = "skipped"  # not a superseded consent still live at the bank


def consent_superseded_revoke(*, consent: Consent) -> str:
    """Revoke at the bank a consent its renewal replaced, unless a sync of the bank may still
    be using it; a RevokeOutcome. A 404 counts as revoked (gone already)."""
    if (
        consent.status != ConsentStatus.SUPERSEDED
        or consent.status_reason != services.SUPERSEDED_BY_RENEWAL
    ):
        return RevokeOutcome.SKIPPED
    if consent_in_use_ask(user_id=consent.user_id, bank_code=consent.bank_code):
        return RevokeOutcome.IN_USE
    if consent.bank_consent_id:
        client = bank_client_for(consent.bank_code, user=consent.user)
        try:
            if consent.kind == ConsentKind.ACCOUNTS:
                client.revoke_account_consent(consent_id=consent.bank_consent_id)
            else:
                client.revoke_product_consent(
                    consent_id=consent.bank_consent_id,
                    client_id=services._bank_client_id(consent.user, consent.bank_code),
                )
        except BankNotFoundError:
            logger.info("superseded consent %s already gone at the bank", consent.pk)
        except BankError as exc:
            logger.warning("superseded consent %s not revoked at the bank: %s", consent.pk, exc)
            return RevokeOutcome.FAILED
        finally:
            client.close()
    changed = Consent.objects.filter(
        pk=consent.pk,
        status=ConsentStatus.SUPERSEDED,
        status_reason=services.SUPERSEDED_BY_RENEWAL,
    ).update(status_reason=services.SUPERSEDED_REVOKED_AT_BANK, updated_at=timezone.now())
    if changed:
        consent.status_reason = services.SUPERSEDED_REVOKED_AT_BANK
        audit_event_record(
            action=AuditAction.CONSENT_SUPERSEDED_REVOKED,
            user=consent.user,
            obj=consent,
            bank_code=consent.bank_code,
            details={"kind": consent.kind, "bank_consent_id": consent.bank_consent_id},
        )
    return RevokeOutcome.REVOKED


# --- The periodic sweep ------------------------------------------------------------------------


@dataclass
class SweepReport:
    """What one sweep did, by step (consent ids)."""

    approvals_expired: list[int] = field(default_factory=list)
    consents_expired: list[int] = field(default_factory=list)
    expiries_learned: list[int] = field(default_factory=list)
    renewals_requested: list[int] = field(default_factory=list)
    renewals_polled: list[int] = field(default_factory=list)
    superseded_revoked: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return {name: list(value) for name, value in self.__dict__.items()}


def consent_lifecycle_sweep() -> SweepReport:
    """One pass of the lifecycle over every user's consents (see the module docstring)."""
    report = SweepReport()
    now = timezone.now()
    consents = Consent.objects.select_related("user")

    timed_out = now - timedelta(minutes=settings.CONSENT_APPROVAL_TIMEOUT_MINUTES)
    for consent in consents.filter(status=ConsentStatus.PENDING, created_at__lte=timed_out):
        if not services.consent_awaits_approval(consent=consent):
            report.approvals_expired.append(consent.pk)

    outdated = consents.filter(status=ConsentStatus.AUTHORIZED, expires_at__lte=now)
    for user, bank_code, kind in {(c.user, c.bank_code, c.kind) for c in outdated}:
        expired = services.consent_expire_outdated(user=user, bank_code=bank_code, kind=kind)
        report.consents_expired.extend(consent.pk for consent in expired)

    unknown = consents.filter(status=ConsentStatus.AUTHORIZED, expires_at__isnull=True)
    for consent in unknown.exclude(bank_consent_id=""):
        refreshed = _step(report, consent, services.consent_refresh)
        if refreshed is not None and refreshed.expires_at is not None:
            report.expiries_learned.append(consent.pk)

    renewal_waiting = Consent.objects.filter(renews=OuterRef("pk"), status=ConsentStatus.PENDING)
    expiring = consents.filter(
        status=ConsentStatus.AUTHORIZED,
        expires_at__gt=now,
        expires_at__lte=now + timedelta(days=settings.CONSENT_EXPIRY_WARNING_DAYS),
    ).exclude(Exists(renewal_waiting))
    for consent in expiring:
        renewal = _step(
            report,
            consent,
            lambda *, consent: consent_renew(
                user=consent.user, bank_code=consent.bank_code, kind=consent.kind
            ),
        )
        if renewal is not None:
            report.renewals_requested.append(renewal.pk)

    for consent in consents.filter(status=ConsentStatus.PENDING, renews__isnull=False):
        if (
            services.consent_awaits_approval(consent=consent)
            and _step(report, consent, services.consent_refresh) is not None
        ):
            report.renewals_polled.append(consent.pk)

    superseded = consents.filter(
        status=ConsentStatus.SUPERSEDED, status_reason=services.SUPERSEDED_BY_RENEWAL
    )
    for consent in superseded:
        if consent_superseded_revoke(consent=consent) == RevokeOutcome.REVOKED:
            report.superseded_revoked.append(consent.pk)
    logger.info("consent lifecycle sweep: %s", report.as_dict())
    return report


def _step(report: SweepReport, consent: Consent, call):
    """One consent's step of the sweep: a bank or application error is logged, not raised."""
    try:
        return call(consent=consent)
    except BankError as exc:
        report.errors.append(f"consent {consent.pk}: {exc.code}")
        logger.warning("consent lifecycle: consent %s: %s", consent.pk, exc)
    except ApplicationError as exc:
        report.errors.append(f"consent {consent.pk}: {exc.code}")
        logger.warning("consent lifecycle: consent %s: %s", consent.pk, exc)
    return None
