"""Awesome Bank: account consents are approved automatically (SPEC §11)."""

from banking.clients.base import BankClient


class ABankClient(BankClient):
    """ABank: the base contract unchanged."""

    bank_code = "abank"
    display_name = "Awesome Bank"
    auto_approves_account_consents = True
