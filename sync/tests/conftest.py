"""Sync test helpers: the sandbox banks over real HTTP (live_server) and a ground-truth check."""

from decimal import Decimal

import pytest
from django.utils import timezone

from banking.models import Account, ProductAgreement, Transaction


@pytest.fixture(autouse=True)
def celery_eager():
    """Tasks run in-process: a sync enqueued on commit runs at once (no broker, no worker)."""
    from fintrack.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def sandbox_banks(live_server, settings):
    """Point every bank at the sandbox served by live_server; the sandbox clock frozen at now.

    Frozen at the real now (not a fixed past date) so consent expiries the sandbox computes from
    its clock stay in the future for FinTrack, which compares them with the real clock.
    """
    from banking.categorization import category_cache_clear
    from sandbox import clock

    # Transactional tests flush tables (migration-seeded rows too): seed the categories again
    # and forget cached ids that would dangle.
    seed_categories()
    category_cache_clear()

    settings.BANKS = {
        code: {**config, "base_url": f"{live_server.url}/sandbox/{code}"}
        for code, config in settings.BANKS.items()
    }
    settings.BANK_RETRY_BACKOFF_SECONDS = 0.001
    settings.BANK_RETRY_MAX_SLEEP_SECONDS = 0.01
    clock.reset(at=timezone.now())
    return settings.BANKS


def seed_categories() -> None:
    from banking.categories import CATEGORIES
    from banking.models import TransactionCategory

    for code, name_en, name_ru, kind, is_essential in CATEGORIES:
        TransactionCategory.objects.get_or_create(
            code=code,
            defaults={
                "name_en": name_en,
                "name_ru": name_ru,
                "kind": kind,
                "is_essential": is_essential,
            },
        )


def signed_amount(item: dict) -> Decimal:
    amount = Decimal(item["amount"]["amount"])
    return -amount if item["creditDebitIndicator"] == "Debit" else amount


def assert_equals_ground_truth(*, user, bank_code: str) -> dict:
    """Stored accounts, balances, transactions and agreements equal what the sandbox serves."""
    from sandbox.ground_truth import client_bank_truth

    truth = client_bank_truth(user.external_client_id, bank_code)
    accounts = {
        a.bank_account_id: a
        for a in Account.objects.filter(user=user, bank_code=bank_code, is_active=True)
    }
    assert set(accounts) == {item["accountId"] for item in truth["accounts"]}
    for account_id, balance in truth["balances"].items():
        assert accounts[account_id].current_balance == Decimal(balance), account_id
    for account_id, items in truth["transactions"].items():
        stored = dict(
            Transaction.objects.filter(account=accounts[account_id]).values_list(
                "bank_transaction_id", "amount"
            )
        )
        expected = {item["transactionId"]: signed_amount(item) for item in items}
        assert len(items) == len(expected), "the sandbox served a duplicate id"
        assert stored == expected, account_id
    assert set(
        ProductAgreement.objects.filter(user=user, bank_code=bank_code).values_list(
            "agreement_id", flat=True
        )
    ) == {item["agreement_id"] for item in truth["agreements"]}
    return truth
