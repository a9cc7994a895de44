"""Reads of a user's bank connections (the overview with consents: consents.selectors)."""

from banking.models import BankConnection
from banking.services.clients import bank_codes, bank_display_name


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
