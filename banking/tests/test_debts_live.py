"""Debts of live-style sandbox clients, synced over real HTTP, against figures worked out by hand
from the client's persona (the sandbox's model of its money), never from FinTrack's code.

Persona arithmetic (sandbox.personas.Loan): instalment A = round(P·r / (1 − (1 + r)^−n)) kopecks
with r = rate / 1200; payment k falls in month start + k, split in `parts` equal debits on days
1..parts; after each payment the balance is b + round(b·r) − A. A loan owes, at the start of a
day, the balance after the payments whose every part was debited before that day.
"""

from datetime import UTC, date
from decimal import Decimal

import pytest

from banking.models import ProductAgreement
from sync.tests.ground_truth import sandbox_client_sync

pytestmark = pytest.mark.django_db(transaction=True)


def _persona(client_id: str):
    from sandbox import clock
    from sandbox.live import persona_of
    from sandbox.volume import data_key

    return persona_of(data_key(client_id, clock.state().anchor))


def _synced_user(make_user, number: int):
    """A user who is sandbox client team260-<number>, every bank of the persona synced."""
    client_id = f"team260-{number}"
    who = _persona(client_id)
    user = make_user(client_id=client_id)
    user.time_zone = who.timezone
    user.save()
    sandbox_client_sync(user=user, banks=who.banks)
    return user, who


def _today() -> date:
    from sandbox import clock

    return clock.now().astimezone(UTC).date()


def _owed_by_hand(loan, today: date) -> Decimal:
    """The persona's loan balance at the start of `today`, in roubles (arithmetic above)."""
    r = loan.rate / 1200
    instalment = round(loan.principal * r / (1 - (1 + r) ** -loan.term_months))
    months_since_start = (today.year * 12 + today.month) - (loan.start.year * 12 + loan.start.month)
    made = months_since_start - 1 + (1 if today.day > loan.parts else 0)
    made = max(0, min(made, loan.term_months))
    balance = loan.principal
    for _ in range(made):
        balance = balance + round(balance * r) - instalment
    return Decimal(max(balance, 0)) / 100


def _stored(user, loan) -> ProductAgreement:
    return ProductAgreement.objects.get(
        user=user, bank_code=loan.bank, agreement_id=loan.agreement_id
    )


def test_client_1_mortgage_is_its_loan_accounts_balance_exactly(sandbox_banks, make_user):
    user, who = _synced_user(make_user, 1)
    (mortgage,) = who.loans
    assert mortgage.link == "loan_account"

    stored = _stored(user, mortgage)

    assert stored.outstanding_source == "loan_account"
    assert stored.outstanding == _owed_by_hand(mortgage, _today()).quantize(Decimal("0.01"))
    # The mortgage is paid in `parts` equal debits on days 1..parts: one schedule row each.
    instalment = round(
        mortgage.principal
        * (mortgage.rate / 1200)
        / (1 - (1 + mortgage.rate / 1200) ** -mortgage.term_months)
    )
    share = Decimal(instalment // mortgage.parts) / 100
    assert stored.monthly_payment == Decimal(instalment) / 100
    rows = stored.payment_schedule
    assert rows and all(date.fromisoformat(r["date"]) >= _today() for r in rows)
    assert {date.fromisoformat(r["date"]).day for r in rows} <= set(range(1, mortgage.parts + 1))
    assert Decimal(rows[-1]["amount"]) == share
    # The credit card typed `card` is recognised, its balance unknown.
    (card,) = [c for c in who.cards if c.credit]
    card_row = ProductAgreement.objects.get(user=user, agreement_id=card.agreement_id)
    assert (card_row.product_type, card_row.outstanding, card_row.outstanding_source) == (
        "credit_card",
        None,
        "unknown",
    )
    assert card_row.principal == Decimal(card.limit) / 100


def test_client_5_student_loan_is_estimated_within_15_percent(sandbox_banks, make_user):
    user, who = _synced_user(make_user, 5)
    (loan,) = who.loans
    assert loan.link == "checking"  # the bank would answer the checking balance

    stored = _stored(user, loan)
    truth = _owed_by_hand(loan, _today())

    assert stored.outstanding_source == "estimate"
    assert stored.outstanding_basis.startswith(
        f"principal {Decimal(loan.principal) / 100:,.2f} from {loan.start.date().isoformat()}"
    )
    assert abs(stored.outstanding - truth) <= truth * Decimal("0.15"), (stored.outstanding, truth)
    assert stored.payment_status == "regular"


def test_client_8_repaid_loan_is_zero_and_flagged(sandbox_banks, make_user):
    user, who = _synced_user(make_user, 8)
    repaid = next(loan for loan in who.loans if loan.repaid_on is not None)
    assert repaid.status == "active"  # the bank still says active

    stored = _stored(user, repaid)

    assert (stored.outstanding, stored.payment_status) == (Decimal("0.00"), "repaid")
    assert stored.payment_status_note.startswith(f"repaid early on {repaid.repaid_on.isoformat()}")
    assert (stored.payment_schedule, stored.next_payment_date) == ([], None)
    # The closed loan with the same id at the other bank keeps its own identity.
    closed = next(loan for loan in who.loans if loan.status == "closed")
    assert closed.agreement_id == repaid.agreement_id and closed.bank != repaid.bank
    assert _stored(user, closed).status == "closed"
