"""Storing a sync's accounts and balances: upserts on the bank's ids, one transaction each."""

from django.db import transaction
from django.utils import timezone

from banking.clients.types import BankAccount, BankBalance
from banking.ingestion.rows import clipped
from banking.models import Account, AccountType, BalanceSnapshot, BankConnection

ACCOUNT_UPDATE_FIELDS = [
    "identification",
    "masked_number",
    "account_type",
    "bank_subtype",
    "bank_status",
    "currency",
    "nickname",
    "holder_name",
    "opening_date",
    "is_active",
    "raw_json",
    "updated_at",
]


def _masked(identification: str) -> str:
    return f"****{identification[-4:]}" if identification else ""


def accounts_store(
    *, connection: BankConnection, bank_accounts: list[BankAccount]
) -> list[Account]:
    """Store the listed accounts; accounts the bank no longer lists become inactive."""
    known_types = set(AccountType.values)
    rows = [
        Account(
            user_id=connection.user_id,
            connection=connection,
            bank_code=connection.bank_code,
            bank_account_id=item.account_id,
            identification=clipped(Account, "identification", item.identification),
            masked_number=_masked(item.identification or ""),
            account_type=item.account_type if item.account_type in known_types else "other",
            bank_subtype=clipped(Account, "bank_subtype", item.bank_subtype),
            bank_status=clipped(Account, "bank_status", item.status),
            currency=clipped(Account, "currency", item.currency or "RUB"),
            nickname=clipped(Account, "nickname", item.nickname),
            holder_name=clipped(Account, "holder_name", item.holder_name),
            opening_date=item.opening_date,
            is_active=True,
            raw_json=item.raw,
        )
        for item in {a.account_id: a for a in bank_accounts}.values()
    ]
    listed = [row.bank_account_id for row in rows]
    with transaction.atomic():
        if rows:
            Account.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["connection", "bank_account_id"],
                update_fields=ACCOUNT_UPDATE_FIELDS,
            )
        Account.objects.filter(connection=connection, is_active=True).exclude(
            bank_account_id__in=listed
        ).update(is_active=False, updated_at=timezone.now())
    return list(
        Account.objects.filter(connection=connection, bank_account_id__in=listed).order_by("pk")
    )


def balances_store(*, sync_run, balances: list[tuple[Account, BankBalance]]) -> int:
    """A snapshot per account for this run, and each account's current balance."""
    now = timezone.now()
    snapshots = []
    for account, balance in balances:
        available = balance.available if balance.available is not None else balance.booked
        snapshots.append(
            BalanceSnapshot(
                account=account,
                sync_run=sync_run,
                available=balance.available,
                booked=balance.booked,
                currency=clipped(BalanceSnapshot, "currency", balance.currency or account.currency),
                as_of=balance.as_of or now,
                raw_json=balance.raw,
            )
        )
        account.current_balance = available
        account.balance_as_of = balance.as_of or now
        account.updated_at = now
    with transaction.atomic():
        # A retried or redelivered run reads the balances again: the new readings replace the
        # earlier attempt's, so a run keeps one snapshot per account. Locking the run's row makes
        # two workers executing the same run take turns here instead of both inserting (the
        # run's model comes with it: banking imports nothing of sync).
        list(type(sync_run).objects.select_for_update().filter(pk=sync_run.pk).values_list("pk"))
        BalanceSnapshot.objects.filter(
            sync_run=sync_run, account__in=[account for account, _ in balances]
        ).delete()
        BalanceSnapshot.objects.bulk_create(snapshots)
        Account.objects.bulk_update(
            [account for account, _ in balances],
            ["current_balance", "balance_as_of", "updated_at"],
        )
    return len(snapshots)
