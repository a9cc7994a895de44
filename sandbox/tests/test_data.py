"""Generated data: determinism, ground truth = API, realism, clock growth, pending→posted."""

import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings

from sandbox import catalog, clock, generator, layout
from sandbox.ground_truth import client_bank_truth, client_truth
from sandbox.volume import set_client_volume

# The examples-style generator (the live style has sandbox/tests/test_live_data.py).
pytestmark = pytest.mark.usefixtures("examples_style")

BANKS = catalog.BANK_CODES


def _clear_caches():
    for cached in (layout.client_layout, generator.day_records, generator._settled_prefix,
                   generator._transfers_on):  # fmt: skip
        cached.cache_clear()


def _signed(tx) -> Decimal:
    amount = Decimal(tx["amount"]["amount"])
    return amount if tx["creditDebitIndicator"] == "Credit" else -amount


def _when(tx) -> datetime:
    return datetime.fromisoformat(tx["bookingDateTime"])


def test_same_seed_gives_the_same_data():
    first = client_truth("team260-4")
    _clear_caches()
    assert client_truth("team260-4") == first


def test_different_seed_gives_different_data():
    first = client_bank_truth("team260-1", "vbank")
    with override_settings(SANDBOX_SEED=261):
        second = client_bank_truth("team260-1", "vbank")
    assert (
        first["accounts"][0]["account"][0]["identification"]
        != (second["accounts"][0]["account"][0]["identification"])
    )
    assert first["balances"] != second["balances"]


def test_ground_truth_equals_what_the_api_serves(bank):
    for code in BANKS:
        b = bank(code)
        for client_id in ("team260-1", "team260-2", "team260-4"):
            truth = client_bank_truth(client_id, code)
            if not truth["accounts"]:
                continue
            headers = b.interbank(b.consent(client_id))
            body = b.get("/accounts", headers=headers, client_id=client_id).json()
            assert body["data"]["account"] == truth["accounts"]
            for account in truth["accounts"]:
                account_id = account["accountId"]
                served = b.all_transactions(account_id, headers)
                assert served == truth["transactions"][account_id]
                assert len({t["transactionId"] for t in served}) == len(served)
                balance = b.get(f"/accounts/{account_id}/balances", headers=headers).json()
                amount = balance["data"]["balance"][0]["amount"]["amount"]
                assert amount == truth["balances"][account_id]
                opening = Decimal(truth["opening_balances"][account_id])
                assert Decimal(amount) == opening + sum(_signed(t) for t in served)
            consent = b.product_consent(client_id)
            headers = {**b.auth(), "X-Requesting-Bank": b.team,
                       "X-Product-Agreement-Consent-Id": consent}  # fmt: skip
            body = b.get("/product-agreements", headers=headers, client_id=client_id).json()
            assert body["data"] == truth["agreements"]
            for agreement_id, detail in truth["agreement_details"].items():
                response = b.get(f"/product-agreements/{agreement_id}", headers=headers,
                                 client_id=client_id)  # fmt: skip
                assert response.json()["data"] == detail


def test_clients_bank_in_several_banks_and_client_1_in_all():
    banks_per_client = {c: len(layout.client_layout(260, c, date(2025, 11, 26), 12).banks)
                        for c in layout.client_ids()}  # fmt: skip
    assert banks_per_client["team260-1"] == 3
    assert sum(n >= 2 for n in banks_per_client.values()) >= 7


def test_history_looks_like_the_real_sandbox():
    truth = client_truth("team260-1")
    checking = [
        tx for t in truth.values() for tx in t["transactions"][t["accounts"][0]["accountId"]]
    ]
    descriptions = {tx["transactionInformation"] for tx in checking}
    assert {catalog.SALARY, catalog.SIDE_INCOME, catalog.GROCERIES, catalog.TRANSPORT,
            catalog.HOUSING, catalog.LEISURE, catalog.OWN_TRANSFER} <= descriptions  # fmt: skip
    for t in truth.values():
        per_account = len(t["transactions"][t["accounts"][0]["accountId"]])
        assert 70 <= per_account <= 420
    with_card = [tx for tx in checking if tx["merchant"] is not None]
    assert 0.2 < len(with_card) / len(checking) < 0.45
    for tx in with_card:
        assert re.fullmatch(r"\d{4}", tx["merchant"]["mccCode"])
        assert tx["transactionLocation"] == {"city": tx["merchant"]["city"], "country": "RUS"}
        assert tx["card"]["cardNumber"].startswith("****")
    without = [tx for tx in checking if tx["merchant"] is None]
    assert all(tx["card"] is None and tx["transactionLocation"] is None for tx in without)
    statuses = {tx["status"] for tx in checking}
    codes = {tx["bankTransactionCode"]["code"] for tx in checking}
    assert {"Booked", "completed"} <= statuses
    assert {"ReceivedCreditTransfer", "IssuedDebitTransfer", "01", "02"} <= codes
    assert sum(tx["status"] == "Booked" for tx in checking) / len(checking) > 0.85


def test_loan_instalments_are_five_equal_debits_on_days_1_to_5():
    truth = client_bank_truth("team260-1", "vbank")
    loan = next(a for a in truth["agreements"] if a["product_type"] == "loan")
    label = f"Платеж по кредиту №{loan['agreement_id']}"
    payments = [tx for tx in truth["transactions"]["acc-100010"]
                if tx["transactionInformation"] == label]  # fmt: skip
    by_month = defaultdict(list)
    for tx in payments:
        by_month[tx["bookingDateTime"][:7]].append(tx)
    assert len(by_month) >= 6
    for month, items in by_month.items():
        assert sorted(int(tx["bookingDateTime"][8:10]) for tx in items) == [1, 2, 3, 4, 5], month
        assert len({tx["amount"]["amount"] for tx in items}) == 1
        assert all(tx["creditDebitIndicator"] == "Debit" for tx in items)


def test_transfers_between_own_accounts_arrive_in_the_other_bank_within_2_days():
    truth = client_truth("team260-1")
    debits, credits = [], []
    for code, t in truth.items():
        for tx in t["transactions"][t["accounts"][0]["accountId"]]:
            if tx["transactionInformation"] == catalog.OWN_TRANSFER:
                side = credits if tx["creditDebitIndicator"] == "Credit" else debits
                side.append((code, tx))
    assert len(debits) >= 5
    now = clock.now()
    for code, debit in debits:
        if now - _when(debit) < timedelta(days=3):
            continue  # the credit may still be on its way
        matches = [tx for other, tx in credits if other != code
                   and tx["amount"] == debit["amount"]
                   and timedelta(0) <= _when(tx) - _when(debit) <= timedelta(days=3)]  # fmt: skip
        assert len(matches) == 1, debit


def test_linked_accounts_carry_the_agreement_balance():
    truth = client_bank_truth("team260-1", "vbank")
    numbers = {a["account"][0]["identification"]: a["accountId"] for a in truth["accounts"]}
    for agreement in truth["agreements"]:
        detail = truth["agreement_details"][agreement["agreement_id"]]
        account_id = numbers[agreement["account_number"]]
        assert Decimal(truth["balances"][account_id]) == Decimal(str(detail["account_balance"]))
        assert truth["transactions"][account_id] == []


def test_clock_advance_adds_exactly_the_new_days_transactions():
    before = client_bank_truth("team260-1", "vbank")["transactions"]["acc-100010"]
    start = clock.now()
    clock.advance(days=1)
    after = client_bank_truth("team260-1", "vbank")["transactions"]["acc-100010"]
    old, new = {t["transactionId"]: t for t in before}, {t["transactionId"]: t for t in after}
    settled = [t for t in before if _when(t) < start - timedelta(days=3)]
    assert all(new[t["transactionId"]] == t for t in settled)
    posted = {i for i, t in old.items() if t["status"] == "pending" and i not in new}
    appeared = set(new) - set(old)
    twins = {i.removesuffix("-pending") for i in posted}
    fresh = {i for i in appeared if _when(new[i]) > start}
    assert appeared == twins | fresh
    assert fresh, "a day brings new transactions"
    assert all(start < _when(new[i]) <= start + timedelta(days=1) for i in fresh)
    for identifier in set(old) - posted:
        unchanged = {k: v for k, v in old[identifier].items() if k != "status"}
        assert {k: v for k, v in new[identifier].items() if k != "status"} == unchanged


def test_pending_transaction_posts_under_a_new_id_within_two_days():
    set_client_volume("team260-1", 3000, history_months=1)  # enough recent rows to have pending
    truth = client_truth("team260-1")
    pending = [(code, t) for code, bank_truth in truth.items()
               for items in bank_truth["transactions"].values() for t in items
               if t["status"] == "pending"]  # fmt: skip
    assert pending, "recent card purchases show up as pending"
    code, item = pending[0]
    assert item["transactionId"].endswith("-pending")
    assert clock.now() - _when(item) < timedelta(days=2)
    clock.advance(days=2)
    after = client_bank_truth("team260-1", code)["transactions"][item["accountId"]]
    ids = {t["transactionId"]: t for t in after}
    assert item["transactionId"] not in ids
    twin = ids[item["transactionId"].removesuffix("-pending")]
    assert twin["status"] in ("Booked", "completed")
    for field in ("amount", "creditDebitIndicator", "transactionInformation", "bookingDateTime"):
        assert twin[field] == item[field]
    assert all(t["status"] != "pending" or clock.now() - _when(t) < timedelta(days=2)
               for t in after)  # fmt: skip


def test_heavy_client_volume_and_months_knobs(bank, django_assert_max_num_queries):
    set_client_volume("team260-2", 6000, history_months=2)
    truth = client_bank_truth("team260-2", "vbank")
    checking = truth["transactions"][truth["accounts"][0]["accountId"]]
    assert 800 < len(checking) < 1400  # ~6000/year over ~2 months
    opening = date.fromisoformat(truth["accounts"][0]["openingDate"])
    assert timedelta(days=60) < date(2025, 11, 26) - opening < timedelta(days=83)
    b = bank("vbank")
    headers = b.interbank(b.consent("team260-2"))
    account_id = truth["accounts"][0]["accountId"]
    b.get(f"/accounts/{account_id}/transactions", headers=headers, page=1, limit=100)
    misses = generator.day_records.cache_info().misses
    with django_assert_max_num_queries(5):
        response = b.get(f"/accounts/{account_id}/transactions", headers=headers, page=5, limit=100)
    assert response.json()["data"]["transaction"] == checking[400:500]
    assert generator.day_records.cache_info().misses == misses  # served from memory
    set_client_volume("team260-2", None)
    assert len(client_bank_truth("team260-2", "vbank")["transactions"][account_id]) < 400


@override_settings(SANDBOX_HEAVY_CLIENTS="team260-3:3650:1")
def test_heavy_clients_from_settings():
    truth = client_bank_truth("team260-3", "vbank")
    assert 200 < len(truth["transactions"][truth["accounts"][0]["accountId"]]) < 600


@override_settings(SANDBOX_HEAVY_CLIENTS="team260-1:3650:2:4")
def test_heavy_client_checking_accounts_knob_adds_accounts_and_keeps_the_others(bank):
    _clear_caches()
    plain = layout.client_layout(260, "team260-1", date(2025, 11, 26), 2)
    truth = client_bank_truth("team260-1", "sbank")
    _clear_caches()

    checking = [a for a in truth["accounts"] if a["accountSubType"] == "Checking"]
    assert len(checking) == 4
    served_ids = [a["accountId"] for a in truth["accounts"]]
    original = plain.banks["sbank"].accounts
    assert served_ids[: len(original)] == [a.account_id for a in original]
    assert len(set(served_ids)) == len(served_ids)
    for account in checking:
        assert 400 < len(truth["transactions"][account["accountId"]]) < 800  # ~3650/year, 2 months
    b = bank("sbank")
    headers = b.interbank(b.consent("team260-1"))
    extra_id = checking[-1]["accountId"]
    response = b.get(f"/accounts/{extra_id}/transactions", headers=headers, page=1, limit=100)
    assert response.status_code == 200
    assert response.json()["data"]["transaction"] == truth["transactions"][extra_id][:100]
