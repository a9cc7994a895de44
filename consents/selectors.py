"""Reads of consents, always scoped to a user; and the banks' overview (each configured bank
with the user's connection and newest consents: GET /api/banks), which joins banking's
connections with consents, so it lives here, above banking."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from banking.models import BankConnection, ConnectionStatus
from banking.selectors.connections import (
    connection_get,
    connection_list,
    connection_status_message,
)
from banking.services.clients import bank_display_name
from banking.services.connections import demo_client_ids_propose
from consents.exceptions import ConsentNotFound
from consents.models import Consent, ConsentKind, ConsentStatus


def consent_list(*, user, bank_code: str | None = None, kind: str | None = None) -> QuerySet:
    """The user's consents, newest first."""
    consents = Consent.objects.filter(user=user)
    if bank_code:
        consents = consents.filter(bank_code=bank_code)
    if kind:
        consents = consents.filter(kind=kind)
    return consents.order_by("-created_at", "-id")


def consent_get(*, user, consent_id: int) -> Consent:
    """One of the user's consents; anyone else's is simply not found."""
    consent = Consent.objects.filter(user=user, pk=consent_id).first()
    if consent is None:
        raise ConsentNotFound()
    return consent


def consent_active(*, user, bank_code: str, kind: str) -> Consent | None:
    """The newest authorised, unexpired consent with a bank consent id, if any."""
    return (
        Consent.objects.filter(
            user=user, bank_code=bank_code, kind=kind, status=ConsentStatus.AUTHORIZED
        )
        .exclude(bank_consent_id="")
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .order_by("-created_at", "-id")
        .first()
    )


def consent_pending(*, user, bank_code: str, kind: str) -> Consent | None:
    """The newest request still waiting for the client's approval, if any."""
    return (
        Consent.objects.filter(
            user=user, bank_code=bank_code, kind=kind, status=ConsentStatus.PENDING
        )
        .order_by("-created_at", "-id")
        .first()
    )


def _current_first(consents) -> dict[tuple[str, str], Consent]:
    """Per (bank, kind), from consents newest first: the authorised one (in use even while a
    renewal waits), else the newest."""
    current: dict[tuple[str, str], Consent] = {}
    for consent in consents:
        key = (consent.bank_code, consent.kind)
        held = current.get(key)
        if held is None or (
            held.status != ConsentStatus.AUTHORIZED and consent.status == ConsentStatus.AUTHORIZED
        ):
            current[key] = consent
    return current


def consent_latest_by_bank(*, user, kind: str) -> dict[str, Consent]:
    """The current consent of `kind` per bank (one query): the authorised one, else the newest
    (a renewal waiting for approval does not hide the consent still in use)."""
    consents = Consent.objects.filter(user=user, kind=kind).order_by("-created_at", "-id")
    return {bank_code: consent for (bank_code, _), consent in _current_first(consents).items()}


# --- Where a consent stands against its expiry ------------------------------------------------


class ConsentState:
    """A consent's lifecycle as the user is warned of it (not its status at the bank)."""

    VALID = "valid"
    EXPIRING_SOON = "expiring_soon"  # within CONSENT_EXPIRY_WARNING_DAYS: renew it
    EXPIRED = "expired"
    NONE = "none"  # no authorised consent (pending, revoked, rejected or never asked)


@dataclass(frozen=True)
class ConsentExpiry:
    state: str
    expires_at: datetime | None
    days_left: int | None  # whole days left (rounded down); 0 once expired

    @property
    def expiring(self) -> bool:
        return self.state == ConsentState.EXPIRING_SOON


def consent_expiry(
    *, status: str | None, expires_at: datetime | None, now: datetime | None = None
) -> ConsentExpiry:
    """Where a consent of this status and expiry stands: valid, expiring_soon (at most
    CONSENT_EXPIRY_WARNING_DAYS left), expired, or none when it is not authorised. A consent
    whose expiry the bank never told is valid until the bank refuses it."""
    now = now or timezone.now()
    if status == ConsentStatus.EXPIRED:
        return ConsentExpiry(state=ConsentState.EXPIRED, expires_at=expires_at, days_left=0)
    if status != ConsentStatus.AUTHORIZED:
        return ConsentExpiry(state=ConsentState.NONE, expires_at=None, days_left=None)
    if expires_at is None:
        return ConsentExpiry(state=ConsentState.VALID, expires_at=None, days_left=None)
    left = expires_at - now
    if left <= timedelta(0):
        return ConsentExpiry(state=ConsentState.EXPIRED, expires_at=expires_at, days_left=0)
    warning = timedelta(days=settings.CONSENT_EXPIRY_WARNING_DAYS)
    state = ConsentState.EXPIRING_SOON if left <= warning else ConsentState.VALID
    return ConsentExpiry(state=state, expires_at=expires_at, days_left=left.days)


# --- The banks' overview ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentSummary:
    """A consent as the banks' overview shows it: the consent, its expiry state, and the
    renewal waiting for approval while it stays in use (if any)."""

    consent: Consent
    expiry: ConsentExpiry
    renewal: Consent | None

    @property
    def state(self) -> str:
        return self.expiry.state

    @property
    def days_left(self) -> int | None:
        return self.expiry.days_left


@dataclass(frozen=True)
class BankStatus:
    """What the user sees about one configured bank."""

    bank_code: str
    name: str
    connection: BankConnection | None
    consent: ConsentSummary | None  # the account consent in use, else the newest
    product_consent: ConsentSummary | None  # the same for product agreements
    # The demo client a connect without a client id would take (no client yet, demo mode on).
    proposed_client_id: str | None = None

    @property
    def client_id(self) -> str:
        return self.connection.client_id if self.connection else ""

    @property
    def status(self) -> str:
        return self.connection.status if self.connection else ConnectionStatus.NOT_CONNECTED

    @property
    def status_reason(self) -> str:
        return self.connection.status_reason if self.connection else ""

    @property
    def status_message(self) -> str:
        return connection_status_message(
            bank_code=self.bank_code, status=self.status, last_error=self.last_error
        )

    @property
    def next_retry_at(self) -> datetime | None:
        return self.connection.next_retry_at if self.connection else None

    @property
    def last_sync_at(self) -> datetime | None:
        return self.connection.last_sync_at if self.connection else None

    @property
    def last_success_at(self) -> datetime | None:
        return self.connection.last_success_at if self.connection else None

    @property
    def last_error(self) -> str:
        return self.connection.last_error if self.connection else ""

    @property
    def consent_expires_at(self) -> datetime | None:
        return self.connection.consent_expires_at if self.connection else None

    @property
    def consent_state(self) -> str:
        return self.consent.state if self.consent else ConsentState.NONE

    @property
    def consent_days_left(self) -> int | None:
        return self.consent.days_left if self.consent else None

    @property
    def consent_expiring(self) -> bool:
        """Whether the account or the product consent expires within the warning window."""
        return any(
            summary is not None and summary.expiry.expiring
            for summary in (self.consent, self.product_consent)
        )

    @property
    def quarantined_items(self) -> int:
        return self.connection.quarantined_items_open if self.connection else 0


def _consent_summaries(*, user, bank_codes: list[str]) -> dict[tuple[str, str], ConsentSummary]:
    """Per (bank, kind): the current consent with its expiry state and pending renewal."""
    consents = list(
        Consent.objects.filter(user=user, bank_code__in=bank_codes).order_by("-created_at", "-id")
    )
    now = timezone.now()
    pending: dict[tuple[str, str], Consent] = {}
    for consent in consents:
        if consent.status == ConsentStatus.PENDING:
            pending.setdefault((consent.bank_code, consent.kind), consent)
    summaries = {}
    for key, consent in _current_first(consents).items():
        renewal = pending.get(key)
        summaries[key] = ConsentSummary(
            consent=consent,
            expiry=consent_expiry(status=consent.status, expires_at=consent.expires_at, now=now),
            renewal=renewal if renewal is not None and renewal.pk != consent.pk else None,
        )
    return summaries


def _proposals(*, user, pairs) -> dict[str, str]:
    """Demo clients proposed where the user has no client yet (one query; none if all have)."""
    without_client = [
        code for code, connection in pairs if not (connection and connection.client_id)
    ]
    if not without_client:
        return {}
    return demo_client_ids_propose(bank_codes=without_client, user=user)


def bank_status_list(*, user) -> list[BankStatus]:
    """Every configured bank with the user's connection and current consents (two queries), and
    the demo client proposed where the user has no client yet (one more)."""
    pairs = connection_list(user=user)
    latest = _consent_summaries(user=user, bank_codes=[code for code, _ in pairs])
    proposals = _proposals(user=user, pairs=pairs)
    return [
        BankStatus(
            bank_code=code,
            name=bank_display_name(code),
            connection=connection,
            consent=latest.get((code, ConsentKind.ACCOUNTS)),
            product_consent=latest.get((code, ConsentKind.PRODUCTS)),
            proposed_client_id=proposals.get(code),
        )
        for code, connection in pairs
    ]


def bank_status_get(*, user, bank_code: str) -> BankStatus:
    """One configured bank's status for the user; an unknown bank raises UnknownBank."""
    connection = connection_get(user=user, bank_code=bank_code)
    latest = _consent_summaries(user=user, bank_codes=[bank_code])
    return BankStatus(
        bank_code=bank_code,
        name=bank_display_name(bank_code),
        connection=connection,
        consent=latest.get((bank_code, ConsentKind.ACCOUNTS)),
        product_consent=latest.get((bank_code, ConsentKind.PRODUCTS)),
        proposed_client_id=_proposals(user=user, pairs=[(bank_code, connection)]).get(bank_code),
    )
