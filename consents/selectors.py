"""Reads of consents, always scoped to a user; and the banks' overview (each configured bank
with the user's connection and newest consents: GET /api/banks), which joins banking's
connections with consents, so it lives here, above banking."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from banking.models import BankConnection, ConnectionStatus
from banking.selectors.connections import connection_get, connection_list
from banking.services.clients import bank_display_name
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


def consent_latest_by_bank(*, user, kind: str) -> dict[str, Consent]:
    """The newest consent of `kind` per bank (one query)."""
    latest: dict[str, Consent] = {}
    for consent in Consent.objects.filter(user=user, kind=kind).order_by("-created_at", "-id"):
        latest.setdefault(consent.bank_code, consent)
    return latest


# --- The banks' overview ----------------------------------------------------------------------


@dataclass(frozen=True)
class BankStatus:
    """What the user sees about one configured bank."""

    bank_code: str
    name: str
    connection: BankConnection | None
    consent: Consent | None  # newest account consent
    product_consent: Consent | None  # newest product-agreement consent

    @property
    def status(self) -> str:
        return self.connection.status if self.connection else ConnectionStatus.NOT_CONNECTED

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
    def quarantined_items(self) -> int:
        return self.connection.quarantined_items_open if self.connection else 0


def _latest_consents(*, user, bank_codes: list[str]) -> dict[tuple[str, str], Consent]:
    latest: dict[tuple[str, str], Consent] = {}
    consents = Consent.objects.filter(user=user, bank_code__in=bank_codes).order_by(
        "-created_at", "-id"
    )
    for consent in consents:
        latest.setdefault((consent.bank_code, consent.kind), consent)
    return latest


def bank_status_list(*, user) -> list[BankStatus]:
    """Every configured bank with the user's connection and newest consents (two queries)."""
    pairs = connection_list(user=user)
    latest = _latest_consents(user=user, bank_codes=[code for code, _ in pairs])
    return [
        BankStatus(
            bank_code=code,
            name=bank_display_name(code),
            connection=connection,
            consent=latest.get((code, ConsentKind.ACCOUNTS)),
            product_consent=latest.get((code, ConsentKind.PRODUCTS)),
        )
        for code, connection in pairs
    ]


def bank_status_get(*, user, bank_code: str) -> BankStatus:
    """One configured bank's status for the user; an unknown bank raises UnknownBank."""
    connection = connection_get(user=user, bank_code=bank_code)
    latest = _latest_consents(user=user, bank_codes=[bank_code])
    return BankStatus(
        bank_code=bank_code,
        name=bank_display_name(bank_code),
        connection=connection,
        consent=latest.get((bank_code, ConsentKind.ACCOUNTS)),
        product_consent=latest.get((bank_code, ConsentKind.PRODUCTS)),
    )
