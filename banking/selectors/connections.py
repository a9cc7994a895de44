"""Reads of a user's bank connections."""

from dataclasses import dataclass

from banking.models import BankConnection, ConnectionStatus
from banking.services.clients import bank_codes, bank_display_name
from consents.models import Consent, ConsentKind


def connection_list(*, user) -> list[tuple[str, BankConnection | None]]:
    """Every configured bank with the user's connection to it, or None (one query)."""
    by_bank = {
        connection.bank_code: connection for connection in BankConnection.objects.filter(user=user)
    }
    return [(code, by_bank.get(code)) for code in bank_codes()]


def connection_get(*, user, bank_code: str) -> BankConnection | None:
    """The user's connection to a configured bank, or None; an unknown bank raises UnknownBank."""
    bank_display_name(bank_code)
    return BankConnection.objects.filter(user=user, bank_code=bank_code).first()


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
    def last_sync_at(self):
        return self.connection.last_sync_at if self.connection else None

    @property
    def last_success_at(self):
        return self.connection.last_success_at if self.connection else None

    @property
    def last_error(self) -> str:
        return self.connection.last_error if self.connection else ""

    @property
    def consent_expires_at(self):
        return self.connection.consent_expires_at if self.connection else None


def _latest_consents(*, user, bank_codes_: list[str]) -> dict[tuple[str, str], Consent]:
    latest: dict[tuple[str, str], Consent] = {}
    consents = Consent.objects.filter(user=user, bank_code__in=bank_codes_).order_by(
        "-created_at", "-id"
    )
    for consent in consents:
        latest.setdefault((consent.bank_code, consent.kind), consent)
    return latest


def bank_status_list(*, user) -> list[BankStatus]:
    """Every configured bank with the user's connection and newest consents (two queries)."""
    pairs = connection_list(user=user)
    latest = _latest_consents(user=user, bank_codes_=[code for code, _ in pairs])
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
    latest = _latest_consents(user=user, bank_codes_=[bank_code])
    return BankStatus(
        bank_code=bank_code,
        name=bank_display_name(bank_code),
        connection=connection,
        consent=latest.get((bank_code, ConsentKind.ACCOUNTS)),
        product_consent=latest.get((bank_code, ConsentKind.PRODUCTS)),
    )
