"""The balances step: a later sync reads the balances while the transactions are read
(PostgreSQL, several accounts at once), one after another on SQLite before them, each stored on
its own account; one that fails fails the run as before, nothing of the step stored. Beside them:
the agreements' list asked for while the balances are read, and the user's category rules read
once for all the accounts."""

import json
import re
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.db import connection as db
from django.utils import timezone

from banking.models import Account, BalanceSnapshot, BankConnection, ProductAgreement
from sync.models import SyncStatus
from sync.tests import fakebank as fb

# Committed data: threads of their own see it (inside a test's transaction they would not, and
# the sync reads one account at a time there, as on SQLite).
pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = Path("/work/shared/bank-api/examples")  # as banking/tests/test_clients.py
NOW = timezone.now()
ACCOUNTS = {f"acc-{n}": f"{n}000.{n:02d}" for n in range(1, 6)}


@pytest.fixture
def connection(db, user, settings):
    from banking.categories import categories_seed
    from banking.categorization import category_cache_clear

    categories_seed()  # a transactional test's flush took the migration-seeded ones
    category_cache_clear()
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.SYNC_PARALLEL_ACCOUNTS = 2
    settings.SYNC_PREFETCH_PAGES = True  # accounts read at once (sync.services)
    fb.authorised_consents(user)
    return BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")


def _accounts_body() -> dict:
    (template,) = fb.accounts_body()["data"]["account"]
    accounts = [
        {**template, "accountId": account_id, "nickname": account_id} for account_id in ACCOUNTS
    ]
    return {"data": {"account": accounts}, "links": {"self": "/accounts"}, "meta": {}}


def _balances(account_id: str, amount: str) -> dict:
    body = fb.balances_body(amount)
    for item in body["data"]["balance"]:
        item["accountId"] = account_id
    return body


class _SlowBank:
    """Balances answered after a delay per account (the first account slowest), counting the
    balance reads in flight at each balance call and at each transactions page asked for."""

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = 0
        self.seen: list[int] = []
        self.seen_by_pages: list[int] = []

    def page(self, request):
        with self.lock:
            self.seen_by_pages.append(self.in_flight)
        body = fb.page_body([], page=1, has_next=False)
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def callback(self, account_id: str, amount: str, seconds: float):
        def answer(request):
            with self.lock:
                self.in_flight += 1
                self.seen.append(self.in_flight)
            time.sleep(seconds)
            with self.lock:
                self.in_flight -= 1
            body = json.dumps(_balances(account_id, amount))
            return 200, {"Content-Type": "application/json"}, body

        return answer


def _add_balances_and_pages(mock, bank: _SlowBank, *, seconds: float, pages_fail=False) -> None:
    """Each account's balances answered by `bank` after `seconds`; its transactions pages
    answered empty by `bank`, or all failing with a 502 (`pages_fail`)."""
    for account_id, amount in ACCOUNTS.items():
        mock.add_callback(
            responses.GET,
            f"{fb.BASE}/accounts/{account_id}/balances",
            callback=bank.callback(account_id, amount, seconds),
        )
        pages = re.compile(rf"{re.escape(fb.BASE)}/accounts/{account_id}/transactions\?.*")
        if pages_fail:
            mock.add(responses.GET, pages, body="<html>Bad Gateway</html>", status=502)
        else:
            mock.add_callback(responses.GET, pages, callback=bank.page)


def test_each_balance_lands_on_its_own_account_whatever_order_the_answers_come(
    connection, settings
):
    settings.FIRST_SYNC_RECENT_DAYS = 0
    bank = _SlowBank()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", json=_accounts_body())
        for position, (account_id, amount) in enumerate(ACCOUNTS.items()):
            mock.add_callback(
                responses.GET,
                f"{fb.BASE}/accounts/{account_id}/balances",
                callback=bank.callback(account_id, amount, 0.05 * (5 - position)),
            )
        for account_id in ACCOUNTS:
            mock.add_callback(
                responses.GET,
                re.compile(rf"{re.escape(fb.BASE)}/accounts/{account_id}/transactions\?.*"),
                callback=bank.page,
            )
        fb.add_products(mock)
        fb.add_agreements(mock)
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.balances_count == len(ACCOUNTS)
    stored = dict(Account.objects.values_list("bank_account_id", "current_balance"))
    assert stored == {account_id: Decimal(amount) for account_id, amount in ACCOUNTS.items()}
    readings = BalanceSnapshot.objects.filter(sync_run=run)
    assert {r.account.bank_account_id: r.available for r in readings} == stored
    # Where threads may have their own connection, two balances are read at once and the
    # transactions pages are asked for meanwhile (the balances take ≥ 0.35 s); on SQLite one
    # balance at a time, and the pages after them.
    assert max(bank.seen) == (2 if db.vendor == "postgresql" else 1)
    assert len(bank.seen_by_pages) == len(ACCOUNTS)
    overlapping = sum(1 for reads in bank.seen_by_pages if reads)
    assert overlapping == (len(ACCOUNTS) if db.vendor == "postgresql" else 0)


def test_a_failing_balance_fails_the_run_and_stores_no_reading(connection, settings):
    settings.FIRST_SYNC_RECENT_DAYS = 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", json=_accounts_body())
        for account_id, amount in ACCOUNTS.items():
            if account_id == "acc-3":
                mock.add(
                    responses.GET,
                    f"{fb.BASE}/accounts/{account_id}/balances",
                    body="<html>Bad Gateway</html>",
                    status=502,
                )
            else:
                mock.add(
                    responses.GET,
                    f"{fb.BASE}/accounts/{account_id}/balances",
                    json=_balances(account_id, amount),
                )
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.FAILED, run.status
    assert BalanceSnapshot.objects.count() == 0
    assert set(Account.objects.values_list("current_balance", flat=True)) == {None}


def test_a_failing_transactions_read_keeps_the_balances_and_stores_no_agreement(
    connection, settings
):
    """Read beside the balances, a page the bank fails fails the run as before: the balances
    read meanwhile are stored; the agreements, whose list may be asked for beside the balances
    before the failure is known, are not stored (the retried run reads them again)."""
    settings.FIRST_SYNC_RECENT_DAYS = 0
    bank = _SlowBank()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", json=_accounts_body())
        _add_balances_and_pages(mock, bank, seconds=0.1, pages_fail=True)
        fb.add_products(mock)
        fb.add_agreements(mock, [LOAN_AGREEMENT])
        _add_agreement_detail(mock)
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.FAILED, run.status
    assert BalanceSnapshot.objects.filter(sync_run=run).count() == len(ACCOUNTS)
    assert not ProductAgreement.objects.exists()
    assert run.agreements_count == 0


def test_the_agreements_are_asked_for_beside_the_balances_and_stored_after_them(
    connection, settings
):
    """A later sync asks for the agreements' list while the balances' calls are in flight (one
    bank wait fewer) but stores it once the balances are: the loan's remaining balance is its
    loan account's balance read by this very run."""
    settings.FIRST_SYNC_RECENT_DAYS = 0
    bank = _SlowBank()
    in_flight_when_asked: list[int] = []

    def agreements(request):
        with bank.lock:
            in_flight_when_asked.append(bank.in_flight)
        body = {"data": [LOAN_AGREEMENT], "meta": {}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    accounts = _accounts_body()
    loan = accounts["data"]["account"][-1]  # acc-5
    loan["accountSubType"] = "Loan"
    loan["account"] = [{**loan["account"][0], "identification": LOAN_ACCOUNT_NUMBER}]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", json=accounts)
        _add_balances_and_pages(mock, bank, seconds=0.2)
        fb.add_products(mock)
        mock.add_callback(responses.GET, f"{fb.BASE}/product-agreements", callback=agreements)
        _add_agreement_detail(mock)
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    agreement = ProductAgreement.objects.get()
    assert agreement.remaining_balance == Decimal(ACCOUNTS["acc-5"])
    assert agreement.linked_account.bank_account_id == "acc-5"
    # PostgreSQL: asked for while balances were being read; SQLite reads them one after another
    # (no overlapped steps), so the list comes after every balance.
    assert len(in_flight_when_asked) == 1
    if db.vendor == "postgresql":
        assert in_flight_when_asked[0] > 0
    else:
        assert in_flight_when_asked[0] == 0


LOAN_ACCOUNT_NUMBER = "45507810000000000005"
LOAN_AGREEMENT = fb.loan_agreement(LOAN_ACCOUNT_NUMBER)


def _add_agreement_detail(mock) -> None:
    """The detail call, should the sync ask for one (its balance is not the account's)."""
    detail = json.loads((EXAMPLES / "product_agreement_detail.json").read_text())
    mock.add(
        responses.GET,
        f"{fb.BASE}/product-agreements/{LOAN_AGREEMENT['agreement_id']}",
        json=detail,
    )


def test_the_users_rules_are_read_once_for_all_the_accounts_of_a_run(
    connection, settings, monkeypatch
):
    """The user's category rules are read once per run, not once per account read (five
    accounts here, two at a time on PostgreSQL), and decide every account's new rows."""
    from banking.ingestion import transactions as ingestion
    from banking.models import Transaction
    from banking.services.category_rules import category_rule_create

    settings.FIRST_SYNC_RECENT_DAYS = 0
    category_rule_create(
        user=connection.user, match_kind="description", pattern="Продукты", category_code="health"
    )
    reads: list[int] = []
    matcher = ingestion.category_rule_matcher

    def counted(*, user_id):
        reads.append(user_id)
        return matcher(user_id=user_id)

    monkeypatch.setattr(ingestion, "category_rule_matcher", counted)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", json=_accounts_body())
        for account_id, amount in ACCOUNTS.items():
            mock.add(
                responses.GET,
                f"{fb.BASE}/accounts/{account_id}/balances",
                json=_balances(account_id, amount),
            )
            row = fb.tx(f"tx-{account_id}", NOW - timedelta(days=1), accountId=account_id)
            mock.add(
                responses.GET,
                re.compile(rf"{re.escape(fb.BASE)}/accounts/{account_id}/transactions\?.*"),
                json=fb.page_body([row], page=1, has_next=False),
            )
        fb.add_products(mock)
        fb.add_agreements(mock)
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert reads == [connection.user_id]
    stored = Transaction.objects.filter(user=connection.user)
    assert stored.count() == len(ACCOUNTS)
    assert set(stored.values_list("category__code", "category_source")) == {("health", "user_rule")}
