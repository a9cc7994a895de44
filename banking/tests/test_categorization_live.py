"""Categories of live-style sandbox clients (SPEC §17), synced over real HTTP.

Each stored row is put next to what the sandbox generated it as (its persona's income stream,
bill, loan, deposit, purchase kind …), never next to FinTrack's own rules: the category, the
deciding rule (at most 3% of rows decided by none), the income kind and the merchant and city.
"""

from collections import Counter

import pytest

from banking.categorization import (
    RULE_DEFAULT,
    category_decision_for,
    income_kind_of,
    merchant_and_city,
)
from banking.models import Transaction
from banking.tests.factories import client_id_of
from sandbox.expected_categories import MEANT_CATEGORY, MEANT_INCOME_KIND
from sync.tests.ground_truth import sandbox_client_sync

pytestmark = pytest.mark.django_db(transaction=True)


def _key():
    from sandbox import clock
    from sandbox.volume import data_key

    def key_for(client_id: str):
        return data_key(client_id, clock.state().anchor)

    return key_for


def _synced_user(make_user, number: int):
    """A user who is sandbox client team260-<number>, every bank of the persona synced."""
    from sandbox.live import persona_of

    client_id = f"team260-{number}"
    who = persona_of(_key()(client_id))
    user = make_user(client_id=client_id)
    sandbox_client_sync(user=user, banks=who.banks)
    return user, who


def _meant(client_id: str, banks) -> dict[tuple[str, str], str]:
    """(bank, transaction id) → what the sandbox generated the row as."""
    from sandbox import clock, data

    key = _key()(client_id)
    now = clock.state().now
    meant = {}
    for bank in banks:
        for account in data.bank_layout(key, bank).accounts:
            history = data.history(key, account, now)
            for served in history.slice(0, len(history)):
                record = served.record
                kind = record.kind
                if kind in ("everyday", "bill"):
                    kind = f"{kind}:{record.reference}"
                meant[(bank, record.transaction_id)] = kind
    return meant


def _stored(user) -> list[Transaction]:
    return list(Transaction.objects.filter(user=user).select_related("category").order_by("id"))


def _decision(tx: Transaction):
    return category_decision_for(
        description=tx.description,
        mcc=tx.mcc,
        merchant_category=tx.merchant_category,
        amount=tx.amount,
    )


@pytest.mark.parametrize("number", [1, 2, 3, 6, 9])
def test_every_synced_row_gets_the_category_the_sandbox_meant_by_a_rule(
    sandbox_banks, make_user, number
):
    user, who = _synced_user(make_user, number)
    rows = _stored(user)
    meant = _meant(client_id_of(user=user), who.banks)
    assert len(rows) == len(meant) > 100
    wrong = Counter(
        (meant[(tx.bank_code, tx.bank_transaction_id)], tx.category.code)
        for tx in rows
        if tx.category.code != MEANT_CATEGORY[meant[(tx.bank_code, tx.bank_transaction_id)]]
    )
    assert wrong == Counter()
    # The sync stored exactly what the rules decide, and at most 3% fell to the default.
    decisions = [_decision(tx) for tx in rows]
    assert [tx.category.code for tx in rows] == [decision.code for decision in decisions]
    rules = Counter(decision.rule for decision in decisions)
    assert rules[RULE_DEFAULT] / len(rows) <= 0.03, rules
    assert rules["mcc"] > 0


def test_income_kinds_of_a_sole_traders_credits(sandbox_banks, make_user):
    user, who = _synced_user(make_user, 2)  # sole_trader: "Доход от бизнеса" every 1-6 days
    meant = _meant(client_id_of(user=user), who.banks)
    got = Counter()
    for tx in _stored(user):
        if tx.amount <= 0:
            continue
        kind = income_kind_of(
            description=tx.description,
            category_code=tx.category.code,
            amount=tx.amount,
            merchant_name=tx.merchant_name,
        )
        got[(MEANT_INCOME_KIND[meant[(tx.bank_code, tx.bank_transaction_id)]], kind)] += 1
    assert {pair for pair in got if pair[0] != pair[1]} == set()
    assert got[("business", "business")] > 20
    assert got[("refund", "refund")] > 0


def test_income_kinds_of_a_savers_credits(sandbox_banks, make_user):
    user, who = _synced_user(make_user, 3)  # saver: monthly deposit interest
    meant = _meant(client_id_of(user=user), who.banks)
    pairs = Counter(
        (
            MEANT_INCOME_KIND[meant[(tx.bank_code, tx.bank_transaction_id)]],
            income_kind_of(
                description=tx.description,
                category_code=tx.category.code,
                amount=tx.amount,
                merchant_name=tx.merchant_name,
            ),
        )
        for tx in _stored(user)
        if tx.amount > 0
    )
    assert {pair for pair in pairs if pair[0] != pair[1]} == set()
    assert pairs[("interest", "interest")] > 10
    assert pairs[("salary", "salary")] > 0


def test_merchant_and_city_of_every_card_purchase_are_the_banks_merchant_and_location(
    sandbox_banks, make_user
):
    user, _who = _synced_user(make_user, 1)
    purchases = [tx for tx in _stored(user) if tx.raw_json.get("merchant")]
    assert len(purchases) > 100
    got = {merchant_and_city(tx.description, tx.merchant_name) for tx in purchases}
    sent = {
        (tx.raw_json["merchant"]["name"], tx.raw_json["transactionLocation"]["city"])
        for tx in purchases
    }
    assert got == sent
    # Without the merchant object, the description alone gives the same answer.
    assert {merchant_and_city(tx.description, "") for tx in purchases} == sent


def test_rows_without_a_merchant_object_get_no_merchant_and_no_city(sandbox_banks, make_user):
    user, _who = _synced_user(make_user, 2)
    plain = [tx for tx in _stored(user) if not tx.raw_json.get("merchant")]
    # Доход от бизнеса, Платеж по кредиту №…, Перевод между своими счетами, Путешествия, ЖКУ …
    assert len({tx.description for tx in plain}) >= 4
    assert {merchant_and_city(tx.description, tx.merchant_name) for tx in plain} == {("", "")}
