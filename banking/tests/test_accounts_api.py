from datetime import timedelta
from decimal import Decimal

import pytest

from banking.services.accounts import account_summaries_refresh
from banking.tests.factories import at, make_account, make_snapshot

pytestmark = pytest.mark.django_db


def test_list_shows_accounts_with_balances_and_totals(auth_client):
    user = auth_client.user
    checking = make_account(
        user=user,
        balance="1500.25",
        identification="40817810000000003846",
        bank_account_id="acc-3846",
    )
    make_account(user=user, account_type="deposit", balance="100000.00", bank_code="abank")
    make_account(user=user, account_type="loan", balance="250000.00", bank_code="sbank")
    account_summaries_refresh(user=user)

    response = auth_client.get("/api/accounts")

    assert response.status_code == 200
    body = response.json()
    assert [a["account_type"] for a in body["accounts"]] == ["deposit", "loan", "checking"]
    first = next(a for a in body["accounts"] if a["id"] == checking.id)
    assert first == {
        "id": checking.id,
        "bank_code": "vbank",
        "bank_account_id": "acc-3846",
        "account_type": "checking",
        "subtype": "Checking",
        "masked_number": "**** 3846",
        "currency": "RUB",
        "nickname": "",
        "opening_date": None,
        "is_active": True,
        "is_spendable": True,
        "is_debt": False,
        "balance": "1500.25",
        "balance_as_of": "2025-11-25T12:00:00Z",
    }
    assert [
        (
            t["currency"],
            t["spendable_total"],
            t["savings_total"],
            t["debt_total"],
            t["accounts_count"],
        )
        for t in body["totals"]
    ] == [("RUB", "1500.25", "100000.00", "250000.00", 3)]


def test_list_is_ordered_active_first_then_bank(auth_client):
    user = auth_client.user
    closed = make_account(user=user, bank_code="abank", is_active=False)
    sbank = make_account(user=user, bank_code="sbank")
    abank = make_account(user=user, bank_code="abank")

    ids = [a["id"] for a in auth_client.get("/api/accounts").json()["accounts"]]

    assert ids == [abank.id, sbank.id, closed.id]


def test_detail_has_balance_history_newest_first_and_bounded(auth_client):
    account = make_account(user=auth_client.user, balance="300.00")
    for day in range(95):
        make_snapshot(
            account=account, available=Decimal(day), as_of=at("2025-08-01") + timedelta(days=day)
        )

    response = auth_client.get(f"/api/accounts/{account.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == account.id
    assert body["balance"] == "300.00"
    history = body["balance_history"]
    assert len(history) == 90
    assert history[0] == {
        "as_of": "2025-11-03T12:00:00Z",
        "available": "94.00",
        "booked": "94.00",
        "currency": "RUB",
    }
    assert history[-1]["available"] == "5.00"


def test_another_users_account_is_not_found(auth_client, make_user):
    foreign = make_account(user=make_user())

    for path in (
        f"/api/accounts/{foreign.id}",
        "/api/accounts/999999",
        "/api/accounts/99999999999999999999",
    ):
        response = auth_client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert auth_client.get("/api/accounts").json() == {"accounts": [], "totals": []}


def test_list_and_detail_query_counts_do_not_grow(auth_client, django_assert_max_num_queries):
    user = auth_client.user
    accounts = [
        make_account(user=user, bank_code=("vbank", "abank", "sbank")[i % 3]) for i in range(30)
    ]
    for i in range(120):
        make_snapshot(
            account=accounts[0], available="1.00", as_of=at("2025-01-01") + timedelta(hours=i)
        )
    account_summaries_refresh(user=user)

    with django_assert_max_num_queries(4):
        assert auth_client.get("/api/accounts").status_code == 200
    with django_assert_max_num_queries(4):
        assert auth_client.get(f"/api/accounts/{accounts[0].id}").status_code == 200


def test_unauthenticated_requests_are_refused(api_client):
    response = api_client.get("/api/accounts")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
