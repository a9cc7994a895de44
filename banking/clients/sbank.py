"""Smart Bank: account consents wait for the client's approval by default (SPEC §3.4, §11)."""

from banking.clients.base import BankClient


class SBankClient(BankClient):
    """SBank: manual approval is the usual outcome; the flow still follows each answer's status."""

    bank_code = "sbank"
    display_name = "Smart Bank"
    auto_approves_account_consents = False
