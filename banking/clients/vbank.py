"""Virtual Bank: account consents are approved automatically (SPEC §11)."""

from banking.clients.base import BankClient


class VBankClient(BankClient):
    """VBank: the base contract unchanged."""

    bank_code = "vbank"
    display_name = "Virtual Bank"
    auto_approves_account_consents = True
