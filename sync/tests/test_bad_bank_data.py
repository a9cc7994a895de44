"""Garbage from the bank: each bad item is quarantined with its reason (the run ends partial), or
the run fails with a clear error; either way nothing already stored is changed, and no watermark
moves past bad data."""

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses

from banking.models import (
    Account,
    BankConnection,
    ConnectionStatus,
    ProductAgreement,
    QuarantinedBankItem,
    Transaction,
)
from sync.models import SyncStatus
from sync.tests import fakebank as fb

T0 = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
OLD_ITEMS = [
    fb.tx("tx-3", T0 - DAY, "300.00"),
    fb.tx("tx-2", T0 - 2 * DAY, "200.00", indicator="Credit"),
    fb.tx("tx-1", T0 - 3 * DAY, "100.00"),
]
GOOD_NEW = fb.tx("tx-4", T0 + DAY, "44.00")


@pytest.fixture
def synced(db, user, settings):
    """A connection whose first sync stored three transactions, a balance and the watermark."""
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    fb.authorised_consents(user)
    connection = BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(mock, OLD_ITEMS, page=1, has_next=False)
        fb.add_products(mock)
        fb.add_agreements(mock, [_agreement()])
        run = fb.run_sync(connection)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    return connection


def _agreement(**changes) -> dict:
    item = {
        "agreement_id": "agr-5f1c9e2a7b3d",
        "product_id": "prod-8c41d07e5a93",
        "product_name": "Ипотека VBank 9.3%",
        "product_type": "loan",
        "amount": "3000000.00",
        "status": "active",
        "start_date": "2024-01-15T00:00:00Z",
        "end_date": "2044-01-15T00:00:00Z",
        "account_number": "",
        "interest_rate": "9.30",
    }
    return {**item, **changes}


def _stored(user) -> dict:
    """Everything a sync writes, minus bookkeeping timestamps, to compare before and after."""
    skip = {"updated_at", "created_at", "balance_as_of"}

    def rows(model, **filters):
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in skip]
        return sorted(
            json.dumps(row, default=str, sort_keys=True)
            for row in model.objects.filter(**filters).values(*fields)
        )

    return {
        "transactions": rows(Transaction, user=user),
        "accounts": rows(Account, user=user),
        "agreements": rows(ProductAgreement, user=user),
    }


def _second_sync(connection, *, page_body=None, accounts=None, balances=None, agreements=None):
    """A sync against the same account with one part of the bank's answers replaced."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", json=accounts or fb.accounts_body())
        mock.add(
            responses.GET,
            f"{fb.BASE}/accounts/{fb.ACCOUNT_ID}/balances",
            json=balances or fb.balances_body(),
        )
        url = f"{fb.BASE}/accounts/{fb.ACCOUNT_ID}/transactions"
        body = page_body or fb.page_body([GOOD_NEW, *OLD_ITEMS], page=1, has_next=False)
        if isinstance(body, str):
            mock.add(responses.GET, url, body=body, content_type="application/json")
        else:
            mock.add(responses.GET, url, json=body)
        fb.add_products(mock)
        mock.add(
            responses.GET,
            f"{fb.BASE}/product-agreements",
            json=agreements if agreements is not None else {"data": [_agreement()]},
        )
        return fb.run_sync(connection)


def _bad(tx_id: str, **changes) -> dict:
    item = fb.tx(tx_id, T0 + DAY, "10.00")
    for key, value in changes.items():
        if value is _MISSING:
            item.pop(key)
        else:
            item[key] = value
    return item


_MISSING = object()

# Each page carries one good new transaction, one bad item, and the stored history unchanged.
BAD_ITEMS = {
    "non-numeric amount": (_bad("tx-b1", amount={"amount": "12,50 руб", "currency": "RUB"}),
                           "non-numeric amount"),
    "negative amount": (_bad("tx-b2", amount={"amount": "-10.00", "currency": "RUB"}),
                        "negative amount"),
    "NaN amount": (_bad("tx-b3", amount={"amount": "NaN", "currency": "RUB"}), "amount"),
    "amount as a list": (_bad("tx-b4", amount=["10.00"]), "amount"),
    "amount beyond the column": (_bad("tx-b5", amount={"amount": "1e30", "currency": "RUB"}),
                                 "amount"),
    "missing amount": (_bad("tx-b6", amount=_MISSING), "amount"),
    "unknown status": (_bad("tx-b7", status="Teleported"), "unknown status"),
    "missing transactionId": (_bad("x", transactionId=_MISSING), "missing transactionId"),
    "transactionId an object": (_bad("x", transactionId={"id": 1}), "transactionId"),
    "transactionId too long": (_bad("x" * 500), "transactionId"),
    "unparseable bookingDateTime": (_bad("tx-b8", bookingDateTime="yesterday"),
                                    "bookingDateTime"),
    "unknown creditDebitIndicator": (_bad("tx-b9", creditDebitIndicator="Sideways"),
                                     "creditDebitIndicator"),
    "item not an object": ("tx-b10", "not an object"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_ITEMS))
def test_a_bad_transaction_is_quarantined_with_its_reason_and_the_rest_is_stored(
    synced, user, case
):
    bad_item, reason = BAD_ITEMS[case]
    before = _stored(user)
    watermark = Account.objects.get(user=user).transactions_synced_through

    run = _second_sync(
        synced, page_body=fb.page_body([GOOD_NEW, bad_item, *OLD_ITEMS], page=1, has_next=False)
    )

    assert run.status == SyncStatus.PARTIAL, run.error
    assert "1 transaction(s) the bank sent malformed are held in quarantine" in run.error
    quarantined = QuarantinedBankItem.objects.get()
    assert quarantined.raw_json == bad_item
    assert reason in quarantined.reason
    assert quarantined.resolved_at is None
    # Not past the bad item: its booking time when readable, else where it was.
    booked = quarantined.booking_date
    expected = booked if booked is not None and booked > watermark else watermark
    assert Account.objects.get(user=user).transactions_synced_through == expected
    synced.refresh_from_db()
    assert (synced.status, synced.quarantined_items_open) == (ConnectionStatus.READY, 1)
    assert (run.transactions_added, run.transactions_skipped) == (1, 1)
    assert len(run.warnings) == 1
    assert reason in run.warnings[0]["reason"]
    assert run.warnings[0]["account"] == fb.ACCOUNT_ID
    after = _stored(user)
    assert set(before["transactions"]) < set(after["transactions"])
    assert len(after["transactions"]) == len(before["transactions"]) + 1
    assert set(
        Transaction.objects.filter(user=user).values_list("bank_transaction_id", flat=True)
    ) == {"tx-1", "tx-2", "tx-3", "tx-4"}
    assert Transaction.objects.get(bank_transaction_id="tx-4").amount == Decimal("-44.00")


BROKEN_PAGES = {
    "data.transaction an object": {"data": {"transaction": {"0": GOOD_NEW}}, "meta": {}},
    "data.transaction missing": {"data": {}, "meta": {}},
    "data a list": {"data": [GOOD_NEW], "meta": {}},
    "body a list": [GOOD_NEW],
    "body a string": "just text",
    "truncated JSON": '{"data": {"transaction": [{"transactionId": "tx-9", "amou',
}


@pytest.mark.parametrize("case", list(BROKEN_PAGES))
def test_a_broken_transactions_page_fails_the_run_and_changes_nothing(synced, user, case):
    account = Account.objects.get(user=user)
    watermark = account.transactions_synced_through
    before = _stored(user)
    body = BROKEN_PAGES[case]
    body = json.dumps(body) if case == "body a string" else copy.deepcopy(body)

    run = _second_sync(synced, page_body=body)

    assert run.status == SyncStatus.FAILED
    assert run.error_code == "bank_bad_response"
    assert "transactions" in run.error or "JSON" in run.error or "object" in run.error
    assert _stored(user) == before
    account.refresh_from_db()
    assert account.transactions_synced_through == watermark
    synced.refresh_from_db()
    assert synced.status == ConnectionStatus.ERROR
    assert synced.last_error == run.error


def test_a_full_page_is_stored_whole_with_the_long_text_kept_within_the_columns(
    synced, user, settings
):
    settings.SYNC_PAGE_LIMIT = 100  # the most a bank may send (SPEC §4.4); more is refused
    items = [
        fb.tx(
            f"tx-h{n}",
            T0 + DAY + timedelta(seconds=n),
            "1.00",
            information="Ω" * 5000,
            merchant={"name": "M" * 1000, "category": "c" * 500, "mccCode": "5411999"},
        )
        for n in range(97)
    ]
    before = _stored(user)

    run = _second_sync(synced, page_body=fb.page_body([*items, *OLD_ITEMS], page=1, has_next=False))

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.transactions_added == 97
    assert set(before["transactions"]) <= set(_stored(user)["transactions"])
    stored = Transaction.objects.get(bank_transaction_id="tx-h7")
    lengths = (len(stored.merchant_name), len(stored.merchant_category), stored.mcc)
    assert lengths == (255, 64, "5411")


def test_an_account_entry_without_account_id_does_not_deactivate_the_stored_account(synced, user):
    before = _stored(user)
    body = fb.accounts_body()
    body["data"]["account"].append({**body["data"]["account"][0], "accountId": None})
    del body["data"]["account"][0]["accountId"]

    run = _second_sync(synced, accounts=body)

    assert run.status == SyncStatus.FAILED
    assert run.error_code == "bank_bad_response"
    assert "accountId" in run.error
    assert _stored(user) == before
    assert Account.objects.get(user=user).is_active is True


@pytest.mark.parametrize(
    "accounts",
    [{"data": {"account": {"accountId": "acc-1"}}}, {"data": None}, {"account": []}],
    ids=["account an object", "data null", "no data"],
)
def test_a_broken_accounts_answer_fails_the_run_and_changes_nothing(synced, user, accounts):
    before = _stored(user)

    run = _second_sync(synced, accounts=accounts)

    assert (run.status, run.error_code) == (SyncStatus.FAILED, "bank_bad_response")
    assert _stored(user) == before


@pytest.mark.parametrize(
    "amount",
    ["not a number", None, "NaN", ["1"]],
    ids=["text", "null", "NaN", "a list"],
)
def test_an_unreadable_balance_does_not_overwrite_the_stored_one(synced, user, amount):
    before = _stored(user)
    balance_before = Account.objects.get(user=user).current_balance
    body = fb.balances_body()
    for item in body["data"]["balance"]:
        item["amount"]["amount"] = amount

    run = _second_sync(synced, balances=body)

    assert (run.status, run.error_code) == (SyncStatus.FAILED, "bank_bad_response")
    assert "balance" in run.error
    assert Account.objects.get(user=user).current_balance == balance_before == Decimal("121398.37")
    assert _stored(user) == before


def test_garbage_agreements_are_skipped_and_stored_ones_kept(synced, user):
    before = _stored(user)
    agreements = {
        "data": [
            _agreement(),
            _agreement(agreement_id=None),
            "not an object",
            _agreement(agreement_id="agr-x", amount="many", start_date="soon"),
        ]
    }

    run = _second_sync(synced, agreements=agreements)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert before["agreements"][0] in _stored(user)["agreements"]
    odd = ProductAgreement.objects.get(user=user, agreement_id="agr-x")
    assert (odd.principal, odd.start_date) == (None, None)
