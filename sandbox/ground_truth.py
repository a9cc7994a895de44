"""What the sandbox serves for a client at a bank, for "nothing lost, nothing duplicated" checks."""

from datetime import datetime

from sandbox import clock, data, render
from sandbox.volume import data_key


def client_bank_truth(client_id: str, bank_code: str, *, now: datetime | None = None) -> dict:
    """Accounts, balances, every transaction (newest first, pending included, exactly as served)
    and agreements of `client_id` at `bank_code`, at the sandbox clock (or `now`)."""
    state = clock.state()
    now = now or state.now
    key = data_key(client_id, state.anchor)
    layout = data.bank_layout(key, bank_code)
    histories = {a.account_id: data.history(key, a, now) for a in layout.accounts}
    return {
        "client_id": client_id,
        "bank": bank_code,
        "now": render.zoned(now),
        "accounts": [render.account_item(a) for a in layout.accounts],
        "opening_balances": {
            a.account_id: render.money(a.opening_balance) for a in layout.accounts
        },
        "balances": {
            a.account_id: render.money(data.balance(key, a, now)) for a in layout.accounts
        },
        "transactions": {
            a.account_id: [
                data.transaction_item(a, served)
                for served in histories[a.account_id].slice(0, len(histories[a.account_id]))
            ]
            for a in layout.accounts
        },
        "agreements": [render.agreement_item(agreement) for agreement in layout.agreements],
        "agreement_details": {
            agreement.agreement_id: data.agreement_detail(key, bank_code, agreement, now)
            for agreement in layout.agreements
        },
    }


def client_truth(client_id: str) -> dict[str, dict]:
    """The ground truth of one client at every bank, keyed by bank code."""
    from sandbox.catalog import BANK_CODES

    return {bank: client_bank_truth(client_id, bank) for bank in BANK_CODES}
