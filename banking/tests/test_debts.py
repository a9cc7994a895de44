from datetime import UTC, date, timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from banking.clients.types import BankAgreement
from banking.models import ProductAgreement
from banking.services.agreements import add_months, agreement_payments_refresh, annuity_payment
from banking.tests.factories import at, make_account, make_agreement, make_transaction
from sync.steps import agreements_sync

pytestmark = pytest.mark.django_db


def instalments(account, agreement_id, year, month, days=(1, 2, 3, 4, 5), amount="-1000.00"):
    for day in days:
        make_transaction(
            account=account,
            amount=amount,
            booking_date=at(date(year, month, day), hour=9),
            description=f"Платеж по кредиту №{agreement_id}",
        )


def _loan_without_term(user):
    """A checking account and a loan of 50,000 left, started 2025-01-15, with no term: its
    next payment comes from the instalments the account shows."""
    account = make_account(user=user)
    loan = make_agreement(
        user=user,
        agreement_id="agr-2f189c66585e",
        remaining_balance="50000.00",
        start_date=at("2025-01-15"),
        term_months=None,
    )
    return account, loan


def test_annuity_payment_matches_the_hand_computed_value():
    # 100000 at 12% a year for 12 months: r = 0.01, A = P·r / (1 − (1 + r)^−12) = 8884.8788…
    assert annuity_payment(
        principal=Decimal("100000"), annual_rate_percent=Decimal("12"), months=12
    ) == Decimal("8884.88")
    assert annuity_payment(
        principal=Decimal("1200"), annual_rate_percent=Decimal("0"), months=12
    ) == Decimal("100.00")


def test_add_months_clamps_to_the_end_of_short_months():
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2025, 11, 15), 2) == date(2026, 1, 15)


def test_next_payment_from_an_annuity_estimate(user):
    loan = make_agreement(user=user, start_date=at("2025-01-15"))

    agreement_payments_refresh(user=user, today=date(2025, 3, 1))

    loan.refresh_from_db()
    assert loan.next_payment_source == "estimate"
    assert loan.monthly_payment == Decimal("8884.88")
    # First payment 2025-02-15 is past; the next is the second one, on 2025-03-15.
    assert loan.next_payment_date == date(2025, 3, 15)
    assert loan.next_payment_amount == Decimal("8884.88")
    assert len(loan.payment_schedule) == 11
    # After payment 1: 100000 − (8884.88 − 1000.00) = 92115.12; payment 2 interest 921.15.
    assert loan.payment_schedule[0] == {
        "date": "2025-03-15",
        "amount": "8884.88",
        "principal": "7963.73",
        "interest": "921.15",
        "remaining": "84151.39",
    }
    assert loan.payment_schedule[-1]["date"] == "2026-01-15"
    assert loan.payment_schedule[-1]["remaining"] == "0.00"


def test_next_payment_from_instalment_history_lists_each_part_on_its_day(user):
    account, loan = _loan_without_term(user)
    instalments(account, "agr-2f189c66585e", 2025, 9)
    instalments(account, "agr-2f189c66585e", 2025, 10)
    instalments(account, "agr-000000000000", 2025, 10, amount="-77.00")  # another loan

    agreement_payments_refresh(user=user, today=date(2025, 10, 20))

    loan.refresh_from_db()
    assert loan.next_payment_source == "history"
    assert loan.monthly_payment == Decimal("5000.00")
    # The month is paid as five debits of 1000 on days 1-5: the next debit is one part.
    assert (loan.next_payment_date, loan.next_payment_amount) == (
        date(2025, 11, 1),
        Decimal("1000.00"),
    )
    assert [(r["date"], r["amount"]) for r in loan.payment_schedule[:6]] == [
        ("2025-11-01", "1000.00"),
        ("2025-11-02", "1000.00"),
        ("2025-11-03", "1000.00"),
        ("2025-11-04", "1000.00"),
        ("2025-11-05", "1000.00"),
        ("2025-12-01", "1000.00"),
    ]
    # 50000 at 1 % a month: the month's interest 500 rides on its first part.
    assert loan.payment_schedule[0] == {
        "date": "2025-11-01",
        "amount": "1000.00",
        "principal": "500.00",
        "interest": "500.00",
        "remaining": "49500.00",
        "part": 1,
        "parts": 5,
    }
    assert loan.payment_schedule[4]["remaining"] == "45500.00"
    assert loan.payment_schedule[-1]["remaining"] == "0.00"
    assert (loan.outstanding, loan.outstanding_source) == (Decimal("50000.00"), "loan_account")


def test_a_part_still_due_this_month_is_the_next_payment(user):
    account = make_account(user=user)
    loan = make_agreement(user=user, agreement_id="agr-1")
    instalments(account, "agr-1", 2025, 10)
    instalments(account, "agr-1", 2025, 11, days=(1, 2, 3))

    agreement_payments_refresh(user=user, today=date(2025, 11, 3))

    loan.refresh_from_db()
    assert (loan.next_payment_source, loan.monthly_payment, loan.next_payment_date) == (
        "history",
        Decimal("5000.00"),
        date(2025, 11, 4),
    )
    assert [r["date"] for r in loan.payment_schedule[:4]] == [
        "2025-11-04",
        "2025-11-05",
        "2025-12-01",
        "2025-12-02",
    ]
    assert loan.payment_status == "regular"


def test_unknown_terms_and_no_history_leave_the_next_payment_unknown(user):
    card = make_agreement(
        user=user, product_type="credit_card", term_months=None, interest_rate="15.9"
    )

    agreement_payments_refresh(user=user, today=date(2025, 3, 1))

    card.refresh_from_db()
    assert (card.next_payment_source, card.monthly_payment, card.next_payment_date) == (
        "",
        None,
        None,
    )
    assert card.payment_schedule == []


def test_term_is_derived_from_the_dates_when_missing(user):
    loan = make_agreement(user=user, term_months=None, start_date=at("2025-01-15"))
    loan.end_date = loan.start_date + timedelta(days=360)  # the bank: 30 days × months
    loan.save()

    agreement_payments_refresh(user=user, today=date(2025, 1, 20))

    loan.refresh_from_db()
    assert (loan.next_payment_source, loan.monthly_payment) == ("estimate", Decimal("8884.88"))


def test_debts_api_lists_loans_and_cards_with_schedule_and_totals(auth_client, make_user):
    user = auth_client.user
    loan_account = make_account(user=user, account_type="loan", balance="91000.00")
    start = timezone.now() - timedelta(days=10)
    loan = make_agreement(user=user, start_date=start, linked_account=loan_account)
    card = make_agreement(
        user=user,
        bank_code="abank",
        product_type="credit_card",
        term_months=None,
        remaining_balance="1500.00",
    )
    make_agreement(user=user, product_type="deposit")
    make_agreement(user=user, status="closed")
    make_agreement(user=make_user())
    agreement_payments_refresh(user=user)

    body = auth_client.get("/api/debts").json()

    assert [d["id"] for d in body["debts"]] == [loan.id, card.id]
    first = body["debts"][0]
    next_date = add_months(start.astimezone(UTC).date(), 1)
    assert {
        k: first[k]
        for k in (
            "remaining",
            "source",
            "is_estimate",
            "interest_rate",
            "monthly_payment",
            "next_payment_date",
            "next_payment_source",
        )
    } == {
        "remaining": "91000.00",
        "source": "loan_account",
        "is_estimate": False,
        "interest_rate": "12.000",
        "monthly_payment": "8884.88",
        "next_payment_date": next_date.isoformat(),
        "next_payment_source": "estimate",
    }
    assert len(first["schedule"]) == 12
    assert first["schedule"][0]["interest"] == "1000.00"
    card_row = body["debts"][1]
    assert (card_row["product_type"], card_row["remaining"], card_row["source"]) == (
        "credit_card",
        "1500.00",
        "loan_account",
    )
    assert card_row["limit"] == "100000.00"
    assert body["totals"] == [
        {
            "currency": "RUB",
            "remaining": "92500.00",
            "estimated": "0.00",
            "unknown_count": 0,
            "monthly_payment": "8884.88",
            "count": 2,
        }
    ]


def test_debts_of_another_user_are_not_listed(auth_client, make_user):
    # /api/debts/next-payment is served by analytics (one shared computation): its tests live
    # with analytics.
    make_agreement(user=make_user())

    assert auth_client.get("/api/debts").json() == {"debts": [], "totals": []}


def test_debts_query_count_does_not_grow(auth_client, django_assert_max_num_queries):
    for _ in range(25):
        account = make_account(user=auth_client.user, account_type="loan", balance="100.00")
        make_agreement(user=auth_client.user, linked_account=account, start_date=timezone.now())
    agreement_payments_refresh(user=auth_client.user)

    with django_assert_max_num_queries(3):
        assert len(auth_client.get("/api/debts").json()["debts"]) == 25


@pytest.mark.skipif(db_connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_instalment_history_query_reads_the_partial_index_not_the_whole_feed(user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from banking.services.agreements import _instalment_rows, user_time_zone

    account = make_account(user=user)
    instalments(account, "LN-1", 2025, 10)
    for day in range(1, 28):  # other spending the query must not read
        make_transaction(account=account, amount="-10.00", booking_date=at(date(2025, 10, day)))
    with CaptureQueriesContext(connection) as queries:
        rows = _instalment_rows(user=user, today=date(2025, 11, 20), tz=user_time_zone(user))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny table: judge the indexes only
        cursor.execute("EXPLAIN " + queries.captured_queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert sum(i.amount for agreement_id, i in rows if agreement_id == "LN-1") == Decimal("5000")
    assert "tx_loan_instalments" in plan, plan


# --- Outstanding, matching, cards, stopped loans (SPEC §7.3, §17) -----------------------------


class FakeAgreementsClient:
    """The two agreement calls of a bank client, answering from BankAgreement items."""

    def __init__(self, items, details=None):
        self.items, self.details, self.detail_calls = items, details or {}, []

    def list_agreements(self, *, client_id, product_consent_id):
        return self.items

    def get_agreement(self, *, client_id, agreement_id, product_consent_id):
        self.detail_calls.append(agreement_id)
        return self.details[agreement_id]


def bank_agreement(agreement_id, *, product_type="loan", name="Кредит", number="", **extra):
    values = {
        "agreement_id": agreement_id,
        "product_id": "prod-unknown",
        "product_name": name,
        "product_type": product_type,
        "amount": Decimal("300000"),
        "status": "active",
        "start_date": at("2025-06-10"),
        "end_date": None,
        "account_number": number,
        "interest_rate": None,
        "account_balance": None,
        "raw": {"agreement_id": agreement_id},
    }
    values.update(extra)
    return BankAgreement(**values)


def test_sync_never_takes_a_checking_balance_as_a_loan_balance(user):
    checking = make_account(user=user, balance="250000.00", identification="40817810000000000001")
    loan_account = make_account(
        user=user, account_type="loan", balance="90000.00", identification="455000000000000001"
    )
    checking_link = "40817810000000000999"  # the client's checking elsewhere: not a loan account
    items = [
        bank_agreement("loan-1", name="Кредит 12%", number=checking.identification),
        bank_agreement("loan-2", number=checking_link),
        bank_agreement("loan-3", name="Кредит 9%", number=loan_account.identification),
        bank_agreement("loan-4", name="Кредит 9%", number="455000000000000777"),
    ]
    details = {
        # The live banks answer the checking balance for an agreement linked to a checking.
        "loan-2": bank_agreement(
            "loan-2", interest_rate=Decimal("11.5"), account_balance=Decimal("250000")
        ),
        "loan-4": bank_agreement("loan-4", account_balance=Decimal("12345.67")),
    }
    client = FakeAgreementsClient(items, details)

    agreements_sync(
        client=client,
        connection=checking.connection,
        accounts=[checking, loan_account],
        client_id="team260-1",
        product_consent_id="pagc-1",
    )

    stored = {a.agreement_id: a for a in ProductAgreement.objects.filter(user=user)}
    assert stored["loan-1"].remaining_balance is None
    assert stored["loan-2"].remaining_balance is None
    assert stored["loan-2"].interest_rate == Decimal("11.500")  # the detail call's rate is kept
    assert stored["loan-3"].remaining_balance == Decimal("90000.00")  # the loan account, exact
    assert stored["loan-4"].remaining_balance == Decimal("12345.67")  # a 455… loan account
    assert client.detail_calls == ["loan-2", "loan-4"]

    agreement_payments_refresh(user=user, today=date(2025, 10, 20))
    stored = {a.agreement_id: a for a in ProductAgreement.objects.filter(user=user)}
    assert (stored["loan-3"].outstanding, stored["loan-3"].outstanding_source) == (
        Decimal("90000.00"),
        "loan_account",
    )
    assert stored["loan-1"].outstanding_source in ("estimate", "unknown")
    assert stored["loan-1"].outstanding != Decimal("250000.00")


def test_estimate_amortises_the_principal_with_the_instalments_seen_and_says_so(user):
    account = make_account(user=user)
    loan = make_agreement(user=user, agreement_id="loan-5", term_months=None)  # 100000 at 12 %
    for month in range(6, 11):
        instalments(account, "loan-5", 2025, month, days=(1,), amount="-10000.00")

    agreement_payments_refresh(user=user, today=date(2025, 10, 20))

    loan.refresh_from_db()
    # Start 2025-01-15: payments Feb..Oct; Feb-May before the history, assumed 10000 each.
    # r = 1 %: 100000 → 91000 → 81910 → 72729.10 → 63456.39 (assumed) → 54090.95 → 44631.86
    # → 35078.18 → 25428.96 → 15683.25 (Jun-Oct seen; interest rounded to cents each month).
    assert (loan.outstanding, loan.outstanding_source) == (Decimal("15683.25"), "estimate")
    assert loan.outstanding_basis == (
        "principal 100,000.00 from 2025-01-15 at 12 %, 9 monthly instalments of 10,000.00 "
        "seen or assumed (4 before the history assumed paid)"
    )
    assert loan.payment_status == "regular"


def test_a_lump_sum_covering_the_balance_repays_the_loan(user):
    account = make_account(user=user)
    loan = make_agreement(user=user, agreement_id="loan-6", term_months=None)
    for month in range(6, 10):
        instalments(account, "loan-6", 2025, month, days=(1,), amount="-10000.00")
    # Sep: after the Sep 1 instalment 25428.96 + 254.29 interest is left; it is paid at once.
    make_transaction(
        account=account,
        amount="-25683.25",
        booking_date=at(date(2025, 9, 20), hour=10),
        description="Платеж по кредиту №loan-6",
    )

    agreement_payments_refresh(user=user, today=date(2025, 10, 20))

    loan.refresh_from_db()
    assert (loan.outstanding, loan.payment_status) == (Decimal("0.00"), "repaid")
    assert loan.payment_status_note.startswith("repaid early on 2025-09-20")
    assert (loan.payment_schedule, loan.next_payment_date, loan.monthly_payment) == ([], None, None)
    assert loan.last_payment_date == date(2025, 9, 20)


def test_a_stopped_loan_is_flagged_and_billed_at_most_once(user):
    account = make_account(user=user)
    loan = make_agreement(user=user, agreement_id="loan-7", term_months=None)
    for month in range(2, 7):  # Feb-Jun, then nothing
        instalments(account, "loan-7", 2025, month, days=(1, 2), amount="-5000.00")

    agreement_payments_refresh(user=user, today=date(2025, 10, 20))

    loan.refresh_from_db()
    assert loan.payment_status == "stopped"
    assert loan.payment_status_note == (
        "no payment seen since 2025-06-02: possibly repaid or paid elsewhere"
    )
    # Only the next expected instalment (its two parts), never Jul-Oct piled on today.
    assert [(r["date"], r["amount"]) for r in loan.payment_schedule] == [
        ("2025-11-01", "5000.00"),
        ("2025-11-02", "5000.00"),
    ]
    assert loan.next_payment_date == date(2025, 11, 1)


def test_instalments_match_on_bank_and_agreement_id_together(user):
    vbank_account = make_account(user=user, bank_code="vbank")
    abank_account = make_account(user=user, bank_code="abank")
    active = make_agreement(user=user, bank_code="vbank", agreement_id="loan-8-7921")
    make_agreement(user=user, bank_code="abank", agreement_id="loan-8-7921", status="closed")
    instalments(vbank_account, "loan-8-7921", 2025, 9, days=(1,), amount="-5000.00")
    instalments(vbank_account, "loan-8-7921", 2025, 10, days=(1,), amount="-5000.00")
    # The same id at ABank is ABank's own (closed) loan: its debits are not VBank's.
    instalments(abank_account, "loan-8-7921", 2025, 10, days=(5, 6), amount="-700.00")

    agreement_payments_refresh(user=user, today=date(2025, 10, 20))

    active.refresh_from_db()
    assert active.monthly_payment == Decimal("5000.00")
    assert [r["date"] for r in active.payment_schedule[:2]] == ["2025-11-01", "2025-12-01"]


def test_a_loan_paid_from_another_banks_account_gets_its_instalments(user):
    abank_account = make_account(user=user, bank_code="abank")
    loan = make_agreement(user=user, bank_code="vbank", agreement_id="loan-9-9786")
    for month in (9, 10):
        instalments(abank_account, "loan-9-9786", 2025, month, days=(1,), amount="-18505.19")

    agreement_payments_refresh(user=user, today=date(2025, 10, 20))

    loan.refresh_from_db()
    assert (loan.monthly_payment, loan.next_payment_date) == (
        Decimal("18505.19"),
        date(2025, 11, 1),
    )


def test_an_id_at_two_other_banks_is_not_guessed():
    from banking.services.agreements import Instalment, instalments_match

    debit = Instalment(date(2025, 10, 1), Decimal("100"), "abank")
    matched, unmatched = instalments_match(
        [("loan-1", debit)], {("vbank", "loan-1"), ("sbank", "loan-1")}
    )
    assert (matched, unmatched) == ({}, {("abank", "loan-1"): [debit]})


def test_live_credit_cards_typed_card_are_recognised_with_an_unknown_balance(auth_client):
    user = auth_client.user
    checking = make_account(user=user, identification="40817810000000000001")
    items = [
        bank_agreement(
            "card-cred-team260-4",
            product_type="card",
            name='Кредитная карта "Мир"',
            amount=Decimal("210000"),
            interest_rate=Decimal("16.5"),
        ),
        bank_agreement(
            "agr-2f189c66585e", product_type="card", name='Кредитная карта "Visa"', amount=None
        ),
        bank_agreement("card-deb-team260-4", product_type="card", name='Дебетовая карта "Мир"'),
    ]
    details = {
        key: bank_agreement(key, product_type="card")
        for key in ("card-deb-team260-4", "agr-2f189c66585e")
    }
    client = FakeAgreementsClient(items, details)
    agreements_sync(
        client=client,
        connection=checking.connection,
        accounts=[checking],
        client_id="team260-4",
        product_consent_id="pagc-1",
    )
    agreement_payments_refresh(user=user, today=date(2025, 10, 20))

    types = dict(ProductAgreement.objects.values_list("agreement_id", "product_type"))
    assert types == {
        "card-cred-team260-4": "credit_card",
        "agr-2f189c66585e": "credit_card",
        "card-deb-team260-4": "card",  # a debit card is no debt
    }
    body = auth_client.get("/api/debts").json()
    card = next(d for d in body["debts"] if d["bank_agreement_id"] == "card-cred-team260-4")
    fields = ("remaining", "source", "remaining_basis", "limit", "interest_rate")
    assert {k: card[k] for k in fields} == {
        "remaining": None,
        "source": "unknown",
        "remaining_basis": "the bank does not report the card balance",
        "limit": "210000.00",
        "interest_rate": "16.500",
    }
    assert body["totals"][0]["unknown_count"] == 2

    from analytics.debt import debt_compute

    debt = debt_compute(
        today=date(2025, 10, 20),
        accounts=[checking],
        agreements=list(ProductAgreement.objects.filter(product_type="credit_card")),
        loan_flows=[],
    )
    # A limit counts for utilisation only where the card's balance is known.
    assert (debt["total_debt"], debt["card_debt"], debt["card_limit"]) == (0, 0, 0)
    assert debt["card_limit_total"] == Decimal("210000.00")
    assert {i["outstanding_basis"] for i in debt["items"]} == {
        "the bank does not report the card balance"
    }


def test_debt_compute_totals_known_and_estimated_and_warns_of_stopped_loans(user):
    from analytics.debt import debt_compute

    checking = make_account(user=user, balance="250000.00")
    loan_account = make_account(user=user, account_type="loan", balance="90000.00")
    exact = make_agreement(user=user, linked_account=loan_account)
    linked_to_checking = make_agreement(user=user, linked_account=checking)
    ProductAgreement.objects.filter(pk=linked_to_checking.pk).update(
        outstanding=Decimal("15683.25"),
        outstanding_source="estimate",
        outstanding_basis="principal …",
        payment_status="stopped",
        payment_status_note="no payment seen since 2025-06-02: possibly repaid or paid elsewhere",
    )
    agreements = list(ProductAgreement.objects.filter(pk__in=[exact.pk, linked_to_checking.pk]))

    debt = debt_compute(
        today=date(2025, 10, 20), accounts=[checking, loan_account], agreements=agreements,
        loan_flows=[],
    )  # fmt: skip

    assert debt["total_debt"] == Decimal("105683.25")  # 90000 exact + 15683.25 estimated
    assert debt["total_debt_basis"] == "90000.00 from loan accounts, 15683.25 estimated"
    by_id = {i["agreement_id"]: i for i in debt["items"]}
    assert by_id[linked_to_checking.agreement_id]["is_estimate"] is True
    assert by_id[exact.agreement_id]["outstanding_source"] == "loan_account"
    assert [w["code"] for w in debt["warnings"]] == ["loan_stopped"]
    assert "next_payment" in debt


def test_a_refresh_that_changes_nothing_writes_nothing_and_a_new_instalment_is_written(user):
    """The debts are refreshed after every sync; a sync that brought nothing new leaves every
    figure as it was, so no UPDATE is sent (a no-op sync's cost); one that brought an instalment
    writes the agreement's new figures."""
    from django.test.utils import CaptureQueriesContext

    account, loan = _loan_without_term(user)
    instalments(account, "agr-2f189c66585e", 2025, 9)
    today = date(2025, 10, 20)
    agreement_payments_refresh(user=user, today=today)
    loan.refresh_from_db()
    first_paid = loan.last_payment_date

    def updates() -> list[str]:
        with CaptureQueriesContext(db_connection) as captured:
            assert agreement_payments_refresh(user=user, today=today) == 1
        return [q["sql"] for q in captured if q["sql"].startswith('UPDATE "product_agreements"')]

    assert updates() == []
    instalments(account, "agr-2f189c66585e", 2025, 10)
    assert len(updates()) == 1
    loan.refresh_from_db()
    assert loan.last_payment_date > first_paid
    assert updates() == []
