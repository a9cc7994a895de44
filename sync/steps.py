"""Sync steps other than transactions: accounts, balances, products and agreements.

Each step makes its bank calls first, then writes in one `transaction.atomic()` upserting on the
bank's ids, so a re-run of a step on the same bank data changes nothing.
"""

import logging
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from banking.clients.types import BankAccount, BankAgreement, BankBalance
from banking.models import (
    DEBT_ACCOUNT_TYPES,
    Account,
    AccountType,
    BalanceSnapshot,
    BankProduct,
    ProductAgreement,
)
from banking.services.agreements import agreement_type_of

logger = logging.getLogger(__name__)

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
AGREEMENT_UPDATE_FIELDS = [
    "product_id",
    "product_type",
    "product_name",
    "principal",
    "currency",
    "interest_rate",
    "term_months",
    "start_date",
    "end_date",
    "account_number",
    "linked_account",
    "remaining_balance",
    "status",
    "raw_json",
    "updated_at",
]
PRODUCT_UPDATE_FIELDS = [
    "product_type",
    "name",
    "description",
    "interest_rate",
    "min_amount",
    "max_amount",
    "term_months",
    "raw_json",
    "fetched_at",
]
CATALOGUE_MAX_AGE = timedelta(hours=24)
# Account numbers by the Russian chart of accounts: 455… loans to individuals, 423… deposits of
# individuals; a 408… current account's balance is money the client has, never a debt (§7.3).
_BALANCE_ACCOUNT_PREFIXES = {"loan": ("455",), "credit_card": ("455",), "deposit": ("423",)}
_BALANCE_ACCOUNT_TYPES = {
    "loan": DEBT_ACCOUNT_TYPES,
    "credit_card": DEBT_ACCOUNT_TYPES,
    "deposit": frozenset({AccountType.DEPOSIT, AccountType.SAVINGS}),
}
_RATE_IN_NAME = re.compile(r"(\d{1,3}(?:[.,]\d{1,3})?)\s*%")


def _masked(identification: str) -> str:
    return f"****{identification[-4:]}" if identification else ""


def accounts_upsert(*, connection, bank_accounts: list[BankAccount]) -> list[Account]:
    """Store the listed accounts; accounts the bank no longer lists become inactive."""
    known_types = set(AccountType.values)
    rows = [
        Account(
            user_id=connection.user_id,
            connection=connection,
            bank_code=connection.bank_code,
            bank_account_id=item.account_id,
            identification=(item.identification or "")[:64],
            masked_number=_masked(item.identification or ""),
            account_type=item.account_type if item.account_type in known_types else "other",
            bank_subtype=(item.bank_subtype or "")[:32],
            bank_status=(item.status or "")[:32],
            currency=(item.currency or "RUB")[:3],
            nickname=(item.nickname or "")[:255],
            holder_name=(item.holder_name or "")[:255],
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
                currency=(balance.currency or account.currency)[:3],
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
        # two workers executing the same run take turns here instead of both inserting.
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


def catalogue_refresh_if_stale(*, client, bank_code: str) -> bool:
    """Refresh the bank's product catalogue when it is missing or older than a day."""
    newest = (
        BankProduct.objects.filter(bank_code=bank_code)
        .order_by("-fetched_at")
        .values_list("fetched_at", flat=True)
        .first()
    )
    now = timezone.now()
    if newest is not None and now - newest < CATALOGUE_MAX_AGE:
        return False
    products = client.list_products()
    rows = [
        BankProduct(
            bank_code=bank_code,
            product_id=item.product_id,
            product_type=(item.product_type or "")[:32],
            name=(item.name or "")[:255],
            description=item.description or "",
            interest_rate=item.interest_rate,
            min_amount=item.min_amount,
            max_amount=item.max_amount,
            term_months=item.term_months,
            raw_json=item.raw,
            fetched_at=now,
        )
        for item in {p.product_id: p for p in products}.values()
    ]
    if rows:
        with transaction.atomic():
            BankProduct.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["bank_code", "product_id"],
                update_fields=PRODUCT_UPDATE_FIELDS,
            )
    return True


def rate_from_name(name: str) -> Decimal | None:
    """The rate live banks embed in product names ("Ипотека VBank 9.3%")."""
    match = _RATE_IN_NAME.search(name or "")
    if not match:
        return None
    try:
        return Decimal(match.group(1).replace(",", "."))
    except InvalidOperation:
        return None


def term_months_of(agreement: BankAgreement) -> int | None:
    """The bank sets end = start + term × 30 days (SPEC §7.3)."""
    if agreement.start_date is None or agreement.end_date is None:
        return None
    days = (agreement.end_date - agreement.start_date).days
    return max(round(days / 30), 0)


def _balance_account(
    product_type: str, account_number: str, linked: Account | None
) -> tuple[bool, Account | None]:
    """(whether the agreement's account balance is its own balance, the account that shows it).

    Only a loan account shows a loan's outstanding (a deposit account the invested sum); when
    `account_number` is the client's checking account the bank reports the checking balance,
    which is money the client has, not debt (SPEC §7.3, §17)."""
    if not account_number:
        return False, None
    if linked is not None:
        own = linked.account_type in _BALANCE_ACCOUNT_TYPES.get(product_type, ())
        return own, linked if own else None
    return account_number.startswith(_BALANCE_ACCOUNT_PREFIXES.get(product_type, ("455",))), None


def agreements_sync(
    *, client, connection, accounts: list[Account], client_id: str, product_consent_id: str
) -> int:
    """Upsert the user's agreements; remaining balance only from a loan (or deposit) account.

    A live credit card comes typed `card` (SPEC §17): it is stored typed `credit_card`, the
    bank's own type staying in `raw_json`."""
    bank_agreements = client.list_agreements(
        client_id=client_id, product_consent_id=product_consent_id
    )
    by_number = {a.identification: a for a in accounts if a.identification}
    catalogue_rates = dict(
        BankProduct.objects.filter(bank_code=connection.bank_code).values_list(
            "product_id", "interest_rate"
        )
    )
    # What an earlier run read of each agreement: an unchanged list item whose rate the detail
    # call already gave (or said it has none, as for debit cards) needs no new detail call.
    stored = {
        agreement_id: (raw, rate)
        for agreement_id, raw, rate in ProductAgreement.objects.filter(
            connection=connection
        ).values_list("agreement_id", "raw_json", "interest_rate")
    }
    rows = []
    for agreement in {a.agreement_id: a for a in bank_agreements}.values():
        product_type = agreement_type_of(
            agreement.agreement_id, agreement.product_type, agreement.product_name
        )
        linked = by_number.get(agreement.account_number or "")
        own_balance, balance_account = _balance_account(
            product_type, agreement.account_number or "", linked
        )
        remaining = balance_account.current_balance if balance_account is not None else None
        rate = (
            agreement.interest_rate
            or catalogue_rates.get(agreement.product_id)
            or rate_from_name(agreement.product_name)
        )
        known = stored.get(agreement.agreement_id)
        rate_known = rate is not None or (known is not None and known[0] == agreement.raw)
        if rate is None and known is not None and known[0] == agreement.raw:
            rate = known[1]
        is_active = (agreement.status or "active") == "active"
        if is_active and ((remaining is None and own_balance) or not rate_known):
            # The list lacks what we need; the detail call carries balance and rate (SPEC §7.2).
            # Its `account_balance` is the linked account's: kept only for a loan/deposit one.
            detail = client.get_agreement(
                client_id=client_id,
                agreement_id=agreement.agreement_id,
                product_consent_id=product_consent_id,
            )
            if remaining is None and own_balance:
                remaining = detail.account_balance
            rate = detail.interest_rate if detail.interest_rate is not None else rate
        rows.append(
            ProductAgreement(
                user_id=connection.user_id,
                connection=connection,
                bank_code=connection.bank_code,
                agreement_id=agreement.agreement_id,
                product_id=(agreement.product_id or "")[:64],
                product_type=product_type[:32],
                product_name=(agreement.product_name or "")[:255],
                principal=agreement.amount,
                currency=linked.currency if linked is not None else "RUB",
                interest_rate=rate,
                term_months=term_months_of(agreement),
                start_date=agreement.start_date,
                end_date=agreement.end_date,
                account_number=(agreement.account_number or "")[:64],
                linked_account=linked,
                remaining_balance=remaining,
                status=(agreement.status or "active")[:16],
                raw_json=agreement.raw,
            )
        )
    if rows:
        with transaction.atomic():
            ProductAgreement.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["connection", "agreement_id"],
                update_fields=AGREEMENT_UPDATE_FIELDS,
            )
    return len(rows)
