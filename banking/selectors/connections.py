"""Reads of a user's bank connections (the overview with consents: consents.selectors)."""

from django.conf import settings

from banking.models import BankConnection, ConnectionStatus
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


# What each status means to a person when no specific message was stored with it.
_DEFAULT_STATUS_MESSAGES: dict[str, str] = {
    ConnectionStatus.NOT_CONNECTED: "",
    ConnectionStatus.CONSENT_PENDING: (
        "Waiting for your approval: open {bank} and approve FinTrack's access request."
    ),
    ConnectionStatus.CONSENT_REQUIRED: "{bank} needs a new consent: connect the bank again.",
    ConnectionStatus.SYNC_IN_PROGRESS: "Reading your data from {bank}.",
    ConnectionStatus.RETRYING: "{bank} is not answering; FinTrack tries again shortly.",
    ConnectionStatus.READY: "",
    ConnectionStatus.ERROR: "The last sync with {bank} failed.",
}


def connection_status_message(*, bank_code: str, status: str, last_error: str) -> str:
    """The human message of a connection's status: the one stored with it (last_error), else
    what the status itself says."""
    if last_error:
        return last_error
    template = _DEFAULT_STATUS_MESSAGES.get(status, "")
    if not template:
        return ""
    # A connection to a bank no longer configured still gets its message, under its code.
    name = settings.BANKS.get(bank_code, {}).get("name") or bank_code
    return template.format(bank=name)
