"""Debt: total outstanding, monthly debt service and the next payment across all debts."""

from datetime import date
from decimal import Decimal

from analytics.recurring import RecurringFlow
from banking.models import DEBT_ACCOUNT_TYPES, Account, AccountType, ProductAgreement

# Assumption stated in the breakdown: a credit card's monthly payment is 5 % of its debt
# (banks send no minimum payment; 5 % is a common minimum and the ПДН convention for cards).
CARD_PAYMENT_SHARE = Decimal("0.05")
CENT = Decimal("0.01")


def _loan_payment(agreement: ProductAgreement, flows: dict[str, RecurringFlow]) -> tuple:
    if agreement.monthly_payment:
        return agreement.monthly_payment, "agreement.monthly_payment"
    if agreement.next_payment_amount:
        return agreement.next_payment_amount, "agreement.next_payment_amount"
    flow = flows.get(agreement.agreement_id)
    if flow is not None:
        return flow.monthly_amount(), "detected_instalments"
    return None, "unknown"


def debt_compute(
    *,
    today: date,
    accounts: list[Account],
    agreements: list[ProductAgreement],
    loan_flows: list[RecurringFlow],
) -> dict:
    """Every debt with its outstanding amount and monthly payment; totals; the next payment."""
    flows_by_agreement = {f.agreement_id: f for f in loan_flows if f.agreement_id}
    items: list[dict] = []
    covered_accounts: set[int] = set()
    for agreement in agreements:
        account = agreement.linked_account if agreement.linked_account_id else None
        if account is not None and account.account_type not in DEBT_ACCOUNT_TYPES:
            account = None
        if account is not None:
            covered_accounts.add(account.id)
        outstanding = (
            account.current_balance
            if account is not None and account.current_balance is not None
            else agreement.remaining_balance
        )
        is_card = agreement.product_type == "credit_card"
        if is_card:
            payment = ((outstanding or Decimal("0")) * CARD_PAYMENT_SHARE).quantize(CENT)
            payment_source = "assumed_5_percent_of_card_debt"
        else:
            payment, payment_source = _loan_payment(agreement, flows_by_agreement)
        items.append(
            {
                "kind": "credit_card" if is_card else "loan",
                "bank_code": agreement.bank_code,
                "agreement_id": agreement.agreement_id,
                "name": agreement.product_name,
                "outstanding": outstanding or Decimal("0"),
                "limit": agreement.principal if is_card else None,
                "principal": agreement.principal,
                "interest_rate": agreement.interest_rate,
                "monthly_payment": payment,
                "monthly_payment_source": payment_source,
                "next_payment_date": agreement.next_payment_date,
                "next_payment_amount": agreement.next_payment_amount,
                "next_payment_source": agreement.next_payment_source,
            }
        )
    for account in accounts:
        if account.account_type not in DEBT_ACCOUNT_TYPES or account.id in covered_accounts:
            continue
        is_card = account.account_type == AccountType.CREDIT_CARD
        outstanding = account.current_balance or Decimal("0")
        payment = (outstanding * CARD_PAYMENT_SHARE).quantize(CENT) if is_card else None
        items.append(
            {
                "kind": "credit_card" if is_card else "loan",
                "bank_code": account.bank_code,
                "agreement_id": "",
                "name": account.nickname,
                "outstanding": outstanding,
                "limit": None,
                "principal": None,
                "interest_rate": None,
                "monthly_payment": payment,
                "monthly_payment_source": "assumed_5_percent_of_card_debt"
                if is_card
                else "unknown",
                "next_payment_date": None,
                "next_payment_amount": None,
                "next_payment_source": "",
            }
        )
    # Instalments seen in the history whose agreement is not visible (no product consent).
    known = {a.agreement_id for a in agreements}
    for flow in loan_flows:
        if flow.agreement_id in known:
            continue
        items.append(
            {
                "kind": "loan",
                "bank_code": "",
                "agreement_id": flow.agreement_id,
                "name": flow.label,
                "outstanding": None,
                "limit": None,
                "principal": None,
                "interest_rate": None,
                "monthly_payment": flow.monthly_amount(),
                "monthly_payment_source": "detected_instalments",
                "next_payment_date": flow.next_expected_date,
                "next_payment_amount": flow.typical_amount,
                "next_payment_source": "history",
            }
        )
    total = sum((i["outstanding"] or Decimal("0") for i in items), Decimal("0"))
    service = sum((i["monthly_payment"] or Decimal("0") for i in items), Decimal("0"))
    card_items = [i for i in items if i["kind"] == "credit_card"]
    upcoming = [i for i in items if i["next_payment_date"] is not None and i["next_payment_amount"]]
    upcoming.sort(key=lambda i: (i["next_payment_date"], i["agreement_id"]))
    nearest = upcoming[0] if upcoming else None
    return {
        "total_debt": total,
        "monthly_debt_service": service,
        "card_debt": sum((i["outstanding"] or Decimal("0") for i in card_items), Decimal("0")),
        "card_limit": sum((i["limit"] or Decimal("0") for i in card_items), Decimal("0")),
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
        "assumptions": [
            "Loan outstanding = balance of the linked loan account, else the agreement's "
            "remaining balance.",
            "Credit-card monthly payment is assumed at 5% of the card debt.",
        ],
    }
