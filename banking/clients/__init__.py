"""HTTP clients of the banks' OpenBanking API (SPEC.md). They never import models or the ORM."""

from banking.clients.abank import ABankClient
from banking.clients.base import BankClient
from banking.clients.consents import DEFAULT_ACCOUNT_PERMISSIONS
from banking.clients.sbank import SBankClient
from banking.clients.transport import BankExchange
from banking.clients.vbank import VBankClient

CLIENT_CLASSES: dict[str, type[BankClient]] = {
    "vbank": VBankClient,
    "abank": ABankClient,
    "sbank": SBankClient,
}

__all__ = [
    "CLIENT_CLASSES",
    "DEFAULT_ACCOUNT_PERMISSIONS",
    "ABankClient",
    "BankClient",
    "BankExchange",
    "SBankClient",
    "VBankClient",
]
