"""Debt: total outstanding, monthly debt service and the next payment across all debts.

Outstanding per debt comes with its `outstanding_source` (loan_account | estimate | unknown) and
`outstanding_basis` as refreshed after the sync (banking.services.agreements): a checking
balance is never a debt (SPEC §7.3). Credit cards' balances are not reported by the banks.
"""

from datetime import date
from decimal import Decimal

from analytics.recurring import RecurringFlow
from banking.models import (
    DEBT_ACCOUNT_TYPES,
    Account,
    AccountType,
    OutstandingSource,
    PaymentStatus,
    ProductAgreement,
)
from banking.services.agreements import CARD_BALANCE_UNKNOWN

# Assumption stated in the breakdown: a credit card's monthly payment is 5 % of its debt
# (banks send no minimum payment; 5 % is a common minimum and the ПДН convention for cards).
CARD_PAYMENT_SHARE = Decimal("0.05")
CENT = Decimal("0.01")
ZERO = Decimal("0")


def _loan_payment(agreement: ProductAgreement, flows: dict[str, RecurringFlow]) -> tuple:
    if agreement.payment_status == PaymentStatus.REPAID:
        return None, "repaid"
    if agreement.monthly_payment:
        return agreement.monthly_payment, "agreement.monthly_payment"
    if agreement.next_payment_amount:
        return agreement.next_payment_amount, "agreement.next_payment_amount"
    flow = flows.get(agreement.agreement_id)
    if flow is not None:
        return flow.monthly_amount(), "detected_instalments"
    return None, "unknown"


def _outstanding_of(agreement: ProductAgreement) -> tuple[Decimal | None, str, str]:
    """(amount, source, basis) of one agreement; never a checking account's balance."""
    account = agreement.linked_account if agreement.linked_account_id else None
    if account is not None and account.account_type not in DEBT_ACCOUNT_TYPES:
        account = None
    if account is not None and account.current_balance is not None:
        label = account.masked_number or account.bank_account_id
        return (
            abs(account.current_balance),
            OutstandingSource.LOAN_ACCOUNT,
            f"balance of the loan account {label}",
        )
    if agreement.outstanding_source:
        amount = None if agreement.outstanding is None else abs(agreement.outstanding)
        return amount, agreement.outstanding_source, agreement.outstanding_basis
    if agreement.remaining_balance is not None:  # stored from a loan account only
        return (
            abs(agreement.remaining_balance),
            OutstandingSource.LOAN_ACCOUNT,
            "balance of the loan account the bank reports",
        )
    if agreement.product_type == "credit_card":
        return None, OutstandingSource.UNKNOWN, CARD_BALANCE_UNKNOWN
    return None, OutstandingSource.UNKNOWN, "not computed yet"


def _item(**values) -> dict:
    base = {
        "kind": "loan",
        "bank_code": "",
        "agreement_id": "",
        "name": "",
        "outstanding": None,
        "outstanding_source": OutstandingSource.UNKNOWN,
        "outstanding_basis": "",
        "is_estimate": False,
        "balance_known": False,
        "limit": None,
        "principal": None,
        "interest_rate": None,
        "monthly_payment": None,
        "monthly_payment_source": "unknown",
        "payment_status": "",
        "payment_status_note": "",
        "last_payment_date": None,
        "next_payment_date": None,
        "next_payment_amount": None,
        "next_payment_source": "",
    }
    base.update(values)
    base["is_estimate"] = base["outstanding_source"] == OutstandingSource.ESTIMATE
    base["balance_known"] = base["outstanding"] is not None
    return base


def debt_compute(
    *,
    today: date,
    accounts: list[Account],
    agreements: list[ProductAgreement],
    loan_flows: list[RecurringFlow],
) -> dict:
    """Every debt with its outstanding amount, how that is known and its monthly payment;
    totals (known + estimated, saying how much is estimated); warnings; the next payment."""
    flows_by_agreement = {f.agreement_id: f for f in loan_flows if f.agreement_id}
    items: list[dict] = []
    warnings: list[dict] = []
    covered_accounts: set[int] = set()
    for agreement in agreements:
        if agreement.linked_account_id and agreement.linked_account.account_type in (
            DEBT_ACCOUNT_TYPES
        ):
            covered_accounts.add(agreement.linked_account_id)
        outstanding, source, basis = _outstanding_of(agreement)
        is_card = agreement.product_type == "credit_card"
        if is_card:
            payment = None
            if outstanding is not None:
                payment = (outstanding * CARD_PAYMENT_SHARE).quantize(CENT)
            payment_source = (
                "assumed_5_percent_of_card_debt" if outstanding is not None else "unknown"
            )
        else:
            payment, payment_source = _loan_payment(agreement, flows_by_agreement)
        items.append(
            _item(
                kind="credit_card" if is_card else "loan",
                bank_code=agreement.bank_code,
                agreement_id=agreement.agreement_id,
                name=agreement.product_name,
                outstanding=outstanding,
                outstanding_source=source,
                outstanding_basis=basis,
                limit=agreement.principal if is_card else None,
                principal=agreement.principal,
                interest_rate=agreement.interest_rate,
                monthly_payment=payment,
                monthly_payment_source=payment_source,
                payment_status=agreement.payment_status,
                payment_status_note=agreement.payment_status_note,
                last_payment_date=agreement.last_payment_date,
                next_payment_date=agreement.next_payment_date,
                next_payment_amount=agreement.next_payment_amount,
                next_payment_source=agreement.next_payment_source,
            )
        )
        if agreement.payment_status in (PaymentStatus.STOPPED, PaymentStatus.REPAID):
            warnings.append(
                {
                    "code": f"loan_{agreement.payment_status}",
                    "bank_code": agreement.bank_code,
                    "agreement_id": agreement.agreement_id,
                    "name": agreement.product_name,
                    "last_payment_date": agreement.last_payment_date,
                    "message": agreement.payment_status_note,
                }
            )
    for account in accounts:
        if account.account_type not in DEBT_ACCOUNT_TYPES or account.id in covered_accounts:
            continue
        is_card = account.account_type == AccountType.CREDIT_CARD
        known = account.current_balance is not None
        outstanding = abs(account.current_balance) if known else None
        payment = (outstanding * CARD_PAYMENT_SHARE).quantize(CENT) if is_card and known else None
        items.append(
            _item(
                kind="credit_card" if is_card else "loan",
                bank_code=account.bank_code,
                name=account.nickname,
                outstanding=outstanding,
                outstanding_source=(
                    OutstandingSource.LOAN_ACCOUNT if known else OutstandingSource.UNKNOWN
                ),
                outstanding_basis=(
                    f"balance of the account {account.masked_number or account.bank_account_id}"
                    if known
                    else "the bank reports no balance"
                ),
                monthly_payment=payment,
                monthly_payment_source=(
                    "assumed_5_percent_of_card_debt" if payment is not None else "unknown"
                ),
            )
        )
    # Instalments seen in the history whose agreement is not visible (no product consent, or
    # the bank does not serve it): paid, but what is owed is unknown.
    known_ids = {a.agreement_id for a in agreements}
    for flow in loan_flows:
        if flow.agreement_id in known_ids:
            continue
        items.append(
            _item(
                agreement_id=flow.agreement_id,
                name=flow.label,
                outstanding_basis="the bank shows no agreement: only its instalments are seen",
                monthly_payment=flow.monthly_amount(),
                monthly_payment_source="detected_instalments",
                next_payment_date=flow.next_expected_date,
                next_payment_amount=flow.typical_amount,
                next_payment_source="history",
            )
        )
    known_total = sum(
        (i["outstanding"] for i in items if i["outstanding"] is not None and not i["is_estimate"]),
        ZERO,
    )
    estimated_total = sum(
        (i["outstanding"] for i in items if i["outstanding"] is not None and i["is_estimate"]),
        ZERO,
    )
    unknown = [i for i in items if i["outstanding"] is None]
    total = known_total + estimated_total
    basis = f"{known_total:.2f} from loan accounts, {estimated_total:.2f} estimated"
    if unknown:
        basis += f"; {len(unknown)} debt{'s' if len(unknown) > 1 else ''} with unknown balance"
    service = sum((i["monthly_payment"] or ZERO for i in items), ZERO)
    # Utilisation: a card's limit counts only where its balance is known.
    card_items = [i for i in items if i["kind"] == "credit_card"]
    known_cards = [i for i in card_items if i["outstanding"] is not None]
    upcoming = [i for i in items if i["next_payment_date"] is not None and i["next_payment_amount"]]
    upcoming.sort(key=lambda i: (i["next_payment_date"], i["agreement_id"]))
    nearest = upcoming[0] if upcoming else None
    return {
        "total_debt": total,
        "total_debt_known": known_total,
        "total_debt_estimated": estimated_total,
        "total_debt_basis": basis,
        "unknown_count": len(unknown),
        "monthly_debt_service": service,
        "card_debt": sum((i["outstanding"] for i in known_cards), ZERO),
        "card_limit": sum((i["limit"] or ZERO for i in known_cards), ZERO),
        "card_limit_total": sum((i["limit"] or ZERO for i in card_items), ZERO),
        "next_payment": (
            {
                "date": nearest["next_payment_date"],
                "amount": nearest["next_payment_amount"],
                "agreement_id": nearest["agreement_id"],
                "name": nearest["name"],
                "bank_code": nearest["bank_code"],
                "overdue": nearest["next_payment_date"] < today,
                "source": nearest["next_payment_source"],
            }
            if nearest
            else None
        ),
        "items": items,
        "warnings": warnings,
        "assumptions": [
            "Loan outstanding = balance of the linked loan account; otherwise an estimate from "
            "the principal, start date, rate and the instalments seen (assumed paid before the "
            "history begins). A checking account's balance is never counted as debt.",
            "Credit-card balances are not reported by the banks: their limits count towards "
            "utilisation only where a balance is known.",
            "Credit-card monthly payment is assumed at 5% of the card debt.",
        ],
    }
