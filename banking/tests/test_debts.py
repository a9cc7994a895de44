from datetime import UTC, date, timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from banking.models import ProductAgreement
from banking.services.agreements import add_months, agreement_payments_refresh, annuity_payment
from banking.tests.factories import at, make_account, make_agreement, make_transaction

pytestmark = pytest.mark.django_db


def instalments(account, agreement_id, year, month, days=(1, 2, 3, 4, 5), amount="-1000.00"):
    for day in days:
        make_transaction(
            account=account,
            amount=amount,
            booking_date=at(date(year, month, day), hour=9),
            description=f"Платеж по кредиту №{agreement_id}",
        )


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


def test_next_payment_from_instalment_history(user):
    account = make_account(user=user)
    loan = make_agreement(
        user=user,
        agreement_id="agr-2f189c66585e",
        remaining_balance="50000.00",
        start_date=at("2025-01-15"),
    )
    instalments(account, "agr-2f189c66585e", 2025, 9)
    instalments(account, "agr-2f189c66585e", 2025, 10)
    instalments(account, "agr-000000000000", 2025, 10, amount="-77.00")  # another loan

    agreement_payments_refresh(user=user, today=date(2025, 10, 20))

    loan.refresh_from_db()
    assert loan.next_payment_source == "history"
    assert loan.monthly_payment == Decimal("5000.00")
    assert loan.next_payment_date == date(2025, 11, 1)
    assert loan.next_payment_amount == Decimal("5000.00")
    # 50000 at 1% a month repaid by 5000 a month: ten full payments and a smaller eleventh.
    assert len(loan.payment_schedule) == 11
    assert loan.payment_schedule[-1]["remaining"] == "0.00"
    assert loan.payment_schedule[0] == {
        "date": "2025-11-01",
        "amount": "5000.00",
        "principal": "4500.00",
        "interest": "500.00",
        "remaining": "45500.00",
    }
    assert loan.payment_schedule[1]["date"] == "2025-12-01"


def test_a_month_still_filling_up_does_not_shrink_the_monthly_payment(user):
    account = make_account(user=user)
    loan = make_agreement(user=user, agreement_id="agr-1")
    instalments(account, "agr-1", 2025, 10)
    instalments(account, "agr-1", 2025, 11, days=(1, 2, 3))

    agreement_payments_refresh(user=user, today=date(2025, 11, 3))

    loan.refresh_from_db()
    assert (loan.next_payment_source, loan.monthly_payment, loan.next_payment_date) == (
        "history",
        Decimal("5000.00"),
        date(2025, 12, 1),
    )


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
        k: first[k] for k in ("remaining", "rate", "monthly_payment", "next_payment_date", "source")
    } == {
        "remaining": "91000.00",
        "rate": "12.000",
        "monthly_payment": "8884.88",
        "next_payment_date": next_date.isoformat(),
        "source": "estimate",
    }
    assert len(first["schedule"]) == 12
    assert first["schedule"][0]["interest"] == "1000.00"
    assert (body["debts"][1]["remaining"], body["debts"][1]["source"]) == ("1500.00", "")
    assert body["totals"] == [
        {"currency": "RUB", "remaining": "92500.00", "monthly_payment": "8884.88", "count": 2}
    ]


def test_next_payment_is_the_nearest_across_debts_with_its_source(auth_client, make_user):
    user = auth_client.user
    today = timezone.now().date()
    far = make_agreement(user=user)
    near = make_agreement(user=user, bank_code="abank")
    past = make_agreement(user=user, bank_code="sbank")
    ProductAgreement.objects.filter(id=far.id).update(
        next_payment_date=today + timedelta(days=9),
        next_payment_amount="100.00",
        next_payment_source="estimate",
    )
    ProductAgreement.objects.filter(id=near.id).update(
        next_payment_date=today + timedelta(days=2),
        next_payment_amount="5000.00",
        next_payment_source="history",
    )
    ProductAgreement.objects.filter(id=past.id).update(
        next_payment_date=today - timedelta(days=2),
        next_payment_amount="1.00",
        next_payment_source="history",
    )
    stranger_loan = make_agreement(user=make_user())
    ProductAgreement.objects.filter(id=stranger_loan.id).update(
        next_payment_date=today, next_payment_amount="1.00", next_payment_source="history"
    )

    response = auth_client.get("/api/debts/next-payment")

    assert response.status_code == 200
    assert response.json() == {
        "next_payment": {
            "debt_id": near.id,
            "bank": "abank",
            "agreement_id": near.agreement_id,
            "product_name": near.product_name,
            "currency": "RUB",
            "date": (today + timedelta(days=2)).isoformat(),
            "amount": "5000.00",
            "source": "history",
        }
    }


def test_next_payment_is_null_when_there_is_none(auth_client, make_user):
    other = make_user()
    loan = make_agreement(user=other)
    ProductAgreement.objects.filter(id=loan.id).update(
        next_payment_date=timezone.now().date(),
        next_payment_amount="1.00",
        next_payment_source="history",
    )

    response = auth_client.get("/api/debts/next-payment")

    assert response.status_code == 200
    assert response.json() == {"next_payment": None}
    assert auth_client.get("/api/debts").json() == {"debts": [], "totals": []}


def test_debts_query_count_does_not_grow(auth_client, django_assert_max_num_queries):
    for _ in range(25):
        account = make_account(user=auth_client.user, account_type="loan", balance="100.00")
        make_agreement(user=auth_client.user, linked_account=account, start_date=timezone.now())
    agreement_payments_refresh(user=auth_client.user)

    with django_assert_max_num_queries(3):
        assert len(auth_client.get("/api/debts").json()["debts"]) == 25
    with django_assert_max_num_queries(3):
        assert auth_client.get("/api/debts/next-payment").json()["next_payment"] is not None


@pytest.mark.skipif(db_connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_instalment_history_query_reads_the_partial_index_not_the_whole_feed(user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from banking.services.agreements import _instalments_by_agreement

    account = make_account(user=user)
    instalments(account, "LN-1", 2025, 10)
    for day in range(1, 28):  # other spending the query must not read
        make_transaction(account=account, amount="-10.00", booking_date=at(date(2025, 10, day)))
    with CaptureQueriesContext(connection) as queries:
        sums = _instalments_by_agreement(user=user, today=date(2025, 11, 20))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny table: judge the indexes only
        cursor.execute("EXPLAIN " + queries.captured_queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert sums["LN-1"][(2025, 10)] == Decimal("5000.00")
    assert "tx_loan_instalments" in plan, plan
