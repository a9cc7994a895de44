"""What the sandbox banks serve, in the configured data style (SANDBOX_DATA_STYLE).

`live` (the default) follows SPEC §17 (`sandbox.live`, from `sandbox.personas`); `examples` is
the older data shaped like ../shared/bank-api/examples (`sandbox.layout`, `sandbox.generator`).
The bank views ask this module only, so both styles speak one contract.
"""

from datetime import datetime

from django.conf import settings

from sandbox import generator, live, render
from sandbox.generator import DataKey, History, Served
from sandbox.layout import Account, Agreement, BankLayout, parse_account_id
from sandbox.layout import bank_layout as examples_bank_layout
from sandbox.volume import data_key


def live_style() -> bool:
    return settings.SANDBOX_DATA_STYLE == "live"


def key_for(client_id: str, anchor) -> DataKey:
    return data_key(client_id, anchor)


def bank_layout(key: DataKey, bank: str) -> BankLayout:
    """The client's accounts and agreements at one bank (empty if not a client there)."""
    if live_style():
        return live.bank_layout(key, bank)
    return examples_bank_layout(
        key.seed, key.client_id, bank, key.anchor, key.months, key.checking_accounts
    )


def history(key: DataKey, account: Account, now: datetime) -> History:
    if live_style():
        return live.history(key, account, now)
    return generator.history(key, account, now)


def balance(key: DataKey, account: Account, now: datetime) -> int:
    if live_style():
        return live.balance(key, account, now)
    return generator.balance(key, account, now)


def transaction_item(account: Account, served: Served) -> dict:
    if live_style():
        return render.live_transaction(account, served)
    return render.transaction(account, served)


def agreement_detail(key: DataKey, bank: str, agreement: Agreement, now: datetime) -> dict:
    if live_style():
        kopecks = live.agreement_account_balance(key, bank, agreement.agreement_id, now)
        return render.agreement_detail(agreement, account_balance=kopecks)
    return render.agreement_detail(agreement)


def find_account(bank: str, account_id: str, anchor) -> tuple[Account, DataKey] | str | None:
    """(account, key) of an account at `bank`; None if unknown; "malformed" for a non-numeric id."""
    if live_style():
        if live.parse_account_id(account_id) is None:
            return "malformed"
        return live.find_account(lambda client_id: data_key(client_id, anchor), bank, account_id)
    parsed = parse_account_id(account_id)
    if parsed is None:
        return "malformed"
    digit, rest = parsed
    from sandbox import catalog
    from sandbox.layout import client_number

    if digit != catalog.BANKS[bank]["digit"] or len(rest) != 5:
        return None
    client_id = f"{settings.BANK_TEAM_ID}-{int(rest[:4])}"
    if client_number(client_id) is None:
        return None
    key = data_key(client_id, anchor)
    for account in bank_layout(key, bank).accounts:
        if account.account_id == account_id:
            return account, key
    return None
