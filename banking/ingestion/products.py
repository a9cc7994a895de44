"""Storing a sync's product catalogue and agreements: upserts on the bank's ids.

Agreements are stored in two steps around the bank's detail calls, which the sync makes:
`agreements_prepare` works out from the list (and what is stored) each agreement's type, linked
account, balance and rate, and which ones still need a detail call; `agreements_store` writes
them once completed.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from banking.clients.types import BankAgreement, BankProductItem
from banking.ingestion.rows import clipped
from banking.models import (
    DEBT_ACCOUNT_TYPES,
    Account,
    AccountType,
    BankConnection,
    BankProduct,
    ProductAgreement,
)
from banking.services.agreements import agreement_type_of

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
# Account numbers by the Russian chart of accounts: 455… loans to individuals, 423… deposits of
# individuals; a 408… current account's balance is money the client has, never a debt (§7.3).
_BALANCE_ACCOUNT_PREFIXES = {"loan": ("455",), "credit_card": ("455",), "deposit": ("423",)}
_BALANCE_ACCOUNT_TYPES = {
    "loan": DEBT_ACCOUNT_TYPES,
    "credit_card": DEBT_ACCOUNT_TYPES,
    "deposit": frozenset({AccountType.DEPOSIT, AccountType.SAVINGS}),
}
_RATE_IN_NAME = re.compile(r"(\d{1,3}(?:[.,]\d{1,3})?)\s*%")


def catalogue_store(*, bank_code: str, products: list[BankProductItem]) -> int:
    """Upsert the bank's listed products, stamped now; returns how many were listed."""
    now = timezone.now()
    rows = [
        BankProduct(
            bank_code=bank_code,
            product_id=item.product_id,
            product_type=clipped(BankProduct, "product_type", item.product_type),
            name=clipped(BankProduct, "name", item.name),
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
    return len(rows)


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


@dataclass
class AgreementDraft:
    """One listed agreement on its way to storage; `needs_detail` while a detail call is due."""

    agreement: BankAgreement
    product_type: str
    linked: Account | None
    own_balance: bool  # whether the agreement's account balance is its own (a loan account's)
    remaining: Decimal | None
    rate: Decimal | None
    needs_detail: bool

    def complete(self, detail: BankAgreement) -> None:
        """Take what the detail call carries: the balance (kept only if its own) and the rate."""
        if self.remaining is None and self.own_balance:
            self.remaining = detail.account_balance
        if detail.interest_rate is not None:
            self.rate = detail.interest_rate
        self.needs_detail = False


def agreements_prepare(
    *, connection: BankConnection, accounts: list[Account], bank_agreements: list[BankAgreement]
) -> list[AgreementDraft]:
    """Drafts of the listed agreements; remaining balance only from a loan (or deposit) account.

    The list lacks what we may need; the detail call carries balance and rate (SPEC §7.2): an
    active agreement needs one when its own balance or its rate is unknown. An unchanged list
    item whose rate an earlier detail call gave (or said it has none, as for debit cards) does
    not. A live credit card comes typed `card` (SPEC §17): it is stored typed `credit_card`.
    """
    by_number = {a.identification: a for a in accounts if a.identification}
    catalogue_rates = dict(
        BankProduct.objects.filter(bank_code=connection.bank_code).values_list(
            "product_id", "interest_rate"
        )
    )
    stored = {
        agreement_id: (raw, rate)
        for agreement_id, raw, rate in ProductAgreement.objects.filter(
            connection=connection
        ).values_list("agreement_id", "raw_json", "interest_rate")
    }
    drafts = []
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
        # What an earlier run stored of it: an unchanged item keeps the rate read then.
        stored_raw, stored_rate = stored.get(agreement.agreement_id, (None, None))
        unchanged = agreement.agreement_id in stored and stored_raw == agreement.raw
        rate_known = rate is not None or unchanged
        if rate is None and unchanged:
            rate = stored_rate
        is_active = (agreement.status or "active") == "active"
        drafts.append(
            AgreementDraft(
                agreement=agreement,
                product_type=product_type,
                linked=linked,
                own_balance=own_balance,
                remaining=remaining,
                rate=rate,
                needs_detail=is_active and ((remaining is None and own_balance) or not rate_known),
            )
        )
    return drafts


def agreements_store(*, connection: BankConnection, drafts: list[AgreementDraft]) -> int:
    """Upsert the agreements of the drafts (completed by their detail calls); how many."""
    rows = [
        ProductAgreement(
            user_id=connection.user_id,
            connection=connection,
            bank_code=connection.bank_code,
            agreement_id=draft.agreement.agreement_id,
            product_id=clipped(ProductAgreement, "product_id", draft.agreement.product_id),
            product_type=clipped(ProductAgreement, "product_type", draft.product_type),
            product_name=clipped(ProductAgreement, "product_name", draft.agreement.product_name),
            principal=draft.agreement.amount,
            currency=draft.linked.currency if draft.linked is not None else "RUB",
            interest_rate=draft.rate,
            term_months=term_months_of(draft.agreement),
            start_date=draft.agreement.start_date,
            end_date=draft.agreement.end_date,
            account_number=clipped(
                ProductAgreement, "account_number", draft.agreement.account_number
            ),
            linked_account=draft.linked,
            remaining_balance=draft.remaining,
            status=clipped(ProductAgreement, "status", draft.agreement.status or "active"),
            raw_json=draft.agreement.raw,
        )
        for draft in drafts
    ]
    if rows:
        with transaction.atomic():
            ProductAgreement.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["connection", "agreement_id"],
                update_fields=AGREEMENT_UPDATE_FIELDS,
            )
    return len(rows)
