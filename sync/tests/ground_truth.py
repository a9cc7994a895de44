"""Sync test helpers: the sandbox banks over real HTTP (live_server) and a ground-truth check."""

from decimal import Decimal

from banking.models import Account, ProductAgreement, Transaction


def signed_amount(item: dict) -> Decimal:
    amount = Decimal(item["amount"]["amount"])
    return -amount if item["creditDebitIndicator"] == "Debit" else amount


def assert_equals_ground_truth(*, user, bank_code: str) -> dict:
    """Stored accounts, balances, transactions and agreements equal what the sandbox serves."""
    from banking.tests.factories import client_id_of
    from sandbox.ground_truth import client_bank_truth

    truth = client_bank_truth(client_id_of(user=user, bank_code=bank_code), bank_code)
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


def sandbox_client_sync(*, user, banks) -> None:
    """Connect `user` (a sandbox client) at each bank — both consents authorised, SBank's through
    its demo approval — and run one sync there, which must succeed. A bank where the user has no
    client yet gives them the proposed demo client, as a connect without a client id does."""
    from banking.services.connections import (
        connection_demo_client_id_assign,
        connection_get_or_create,
    )
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sync.models import SyncRun, SyncStatus, SyncTrigger
    from sync.services import sync_run_execute

    for bank_code in banks:
        connection = connection_get_or_create(user=user, bank_code=bank_code)
        if not connection.client_id:
            connection_demo_client_id_assign(connection=connection)
        for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
            consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
            if consent.status == ConsentStatus.PENDING:
                consent = consent_services.consent_approve_demo(consent=consent)
            assert consent.status == ConsentStatus.AUTHORIZED, (bank_code, kind)
        run = SyncRun.objects.create(
            connection=connection, user_id=user.pk, trigger=SyncTrigger.USER
        )
        sync_run_execute(sync_run_id=run.pk)
        run.refresh_from_db()
        assert run.status == SyncStatus.SUCCEEDED, (bank_code, run.error)
