"""The bank client (SPEC.md): one class per bank, composed of one mixin per concern over the
shared transport (transport.py). Per-bank subclasses (vbank.py, abank.py, sbank.py) hold only
what differs. Bank JSON is read in parsing.py; nothing here imports models or the ORM."""

from banking.clients.accounts import AccountsMixin
from banking.clients.consents import ConsentsMixin
from banking.clients.products import ProductsMixin


class BankClient(ConsentsMixin, AccountsMixin, ProductsMixin):
    """HTTP client of one bank's OpenBanking API; subclasses hold only what differs."""

    bank_code = ""
    display_name = ""
    # Whether a new account consent is usually approved by the bank itself (SPEC §11). Only a hint
    # for the UI: the flow is driven by the status every answer carries (SPEC §3.5).
    auto_approves_account_consents = True
