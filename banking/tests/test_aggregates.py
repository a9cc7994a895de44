import random
from collections import defaultdict
from datetime import UTC, date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from banking.models import AccountSummary, Transaction, TransactionAggregate
from banking.services.accounts import account_summaries_refresh
from banking.services.money import money_refresh_after_sync
from banking.services.transactions import transaction_aggregates_recompute
from banking.tests.factories import at, make_account, make_transaction
from fintrack.core.localtime import local_date, user_today

pytestmark = pytest.mark.django_db
TEXTS = [
    ("💼 Зарплата", 1),
    ("💰 Подработка/Бонус", 1),
    ("🏪 Продукты", -1),
    ("🚌 Транспорт", -1),
    ("🏠 ЖКХ/Аренда", -1),
    ("🎬 Развлечения/Покупки", -1),
    ("Снятие наличных", -1),
    ("Возврат покупки", 1),
]


def seed_history(user, *, days=40, per_day=6, seed=7):
    """A deterministic mix of incomes, spendings, statuses, currencies and an own transfer."""
    rng = random.Random(seed)
    today = user_today(user)  # summaries end on the local today
    rub = make_account(user=user, bank_code="vbank")
    other = make_account(user=user, bank_code="abank")
    usd = make_account(user=user, bank_code="sbank", currency="USD")
    for offset in range(days):
        day = today - timedelta(days=offset)
        for _ in range(per_day):
            text, sign = rng.choice(TEXTS)
            account = rng.choice([rub, other, usd])
            amount = Decimal(rng.randint(100, 900000)) / 100 * sign
            status = rng.choice(["booked", "booked", "booked", "pending", "declined"])
            make_transaction(
                account=account,
                amount=amount,
                booking_date=at(day, hour=rng.randint(0, 23)),
                description=text,
                status=status,
            )
    make_transaction(
        account=rub,
        amount="-7000.00",
        booking_date=at(today - timedelta(days=3)),
        description="Перевод между своими счетами",
    )
    make_transaction(
        account=other,
        amount="7000.00",
        booking_date=at(today - timedelta(days=2)),
        description="Перевод между своими счетами",
    )
    return today


def independent_sums(user, date_from, date_to):
    """Income and spending computed straight from the transactions, in Python."""
    totals = defaultdict(lambda: {"income": Decimal("0"), "spending": Decimal("0")})
    by_category = defaultdict(lambda: [Decimal("0"), Decimal("0"), 0])
    by_day = defaultdict(lambda: [Decimal("0"), Decimal("0")])
    for tx in Transaction.objects.filter(user=user).select_related("category"):
        day = local_date(user, tx.booking_date)  # the user's local day (Europe/Moscow)
        if tx.status == "declined" or tx.is_own_transfer or not (date_from <= day <= date_to):
            continue
        income = tx.amount if tx.amount > 0 else Decimal("0")
        spending = -tx.amount if tx.amount < 0 else Decimal("0")
        totals[tx.currency]["income"] += income
        totals[tx.currency]["spending"] += spending
        row = by_category[(tx.currency, tx.category.code)]
        row[0] += income
        row[1] += spending
        row[2] += 1
        by_day[(tx.currency, day.isoformat())][0] += income
        by_day[(tx.currency, day.isoformat())][1] += spending
    return totals, by_category, by_day


def test_summary_equals_sums_computed_from_the_transactions(auth_client):
    today = seed_history(auth_client.user)
    money_refresh_after_sync(user=auth_client.user, since_date=None)
    date_from = today - timedelta(days=29)

    response = auth_client.get("/api/transactions/summary?period=30d")

    assert response.status_code == 200
    body = response.json()
    assert (body["period"], body["from"], body["to"]) == (
        "30d",
        date_from.isoformat(),
        today.isoformat(),
    )
    totals, by_category, by_day = independent_sums(auth_client.user, date_from, today)
    assert [c["currency"] for c in body["currencies"]] == sorted(totals)
    for currency in body["currencies"]:
        expected = totals[currency["currency"]]
        assert Decimal(currency["income"]) == expected["income"]
        assert Decimal(currency["spending"]) == expected["spending"]
        assert Decimal(currency["net"]) == expected["income"] - expected["spending"]
        assert {
            c["category_code"]: [Decimal(c["income"]), Decimal(c["spending"]), c["count"]]
            for c in currency["by_category"]
        } == {code: v for (cur, code), v in by_category.items() if cur == currency["currency"]}
        assert {
            d["date"]: [Decimal(d["income"]), Decimal(d["spending"])] for d in currency["by_day"]
        } == {day: v for (cur, day), v in by_day.items() if cur == currency["currency"]}


def test_custom_range_and_month_periods_match_the_transactions(auth_client):
    today = seed_history(auth_client.user, days=20, per_day=3, seed=11)
    money_refresh_after_sync(user=auth_client.user, since_date=None)
    date_from, date_to = today - timedelta(days=10), today - timedelta(days=4)

    custom = auth_client.get(f"/api/transactions/summary?from={date_from}&to={date_to}").json()
    month = auth_client.get("/api/transactions/summary?period=month").json()

    assert (custom["period"], custom["from"], custom["to"]) == (
        "custom",
        date_from.isoformat(),
        date_to.isoformat(),
    )
    totals, _, _ = independent_sums(auth_client.user, date_from, date_to)
    assert {c["currency"]: Decimal(c["spending"]) for c in custom["currencies"]} == {
        cur: t["spending"] for cur, t in totals.items()
    }
    assert month["from"] == today.replace(day=1).isoformat()
    month_totals, _, _ = independent_sums(auth_client.user, today.replace(day=1), today)
    assert {c["currency"]: Decimal(c["income"]) for c in month["currencies"]} == {
        cur: t["income"] for cur, t in month_totals.items()
    }


def test_summary_is_served_from_aggregates_not_transactions(auth_client):
    today = timezone.now().astimezone(UTC).date()
    account = make_account(user=auth_client.user)
    make_transaction(
        account=account, amount="-100.00", booking_date=at(today), description="🏪 Продукты"
    )
    # Not yet aggregated: the summary does not scan the transactions.
    assert auth_client.get("/api/transactions/summary?period=7d").json()["currencies"] == []

    transaction_aggregates_recompute(user=auth_client.user, since_date=today)

    body = auth_client.get("/api/transactions/summary?period=7d").json()
    assert [(c["currency"], c["spending"], c["count"]) for c in body["currencies"]] == [
        ("RUB", "100.00", 1)
    ]


def test_recompute_rebuilds_only_days_from_since_date(user):
    account = make_account(user=user)
    old = make_transaction(
        account=account, amount="-10.00", booking_date="2025-10-01", description="Аптека"
    )
    make_transaction(
        account=account, amount="-20.00", booking_date="2025-11-01", description="Аптека"
    )
    transaction_aggregates_recompute(user=user, since_date=None)
    Transaction.objects.filter(id=old.id).update(amount=Decimal("-99.00"))
    make_transaction(
        account=account, amount="-5.00", booking_date="2025-11-01", description="Аптека"
    )

    transaction_aggregates_recompute(user=user, since_date=date(2025, 11, 1))

    rows = TransactionAggregate.objects.filter(user=user).order_by("date")
    assert [(r.date, r.spending, r.transaction_count) for r in rows] == [
        (date(2025, 10, 1), Decimal("10.00"), 1),
        (date(2025, 11, 1), Decimal("25.00"), 2),
    ]


def test_uncategorised_transactions_count_under_other_and_other_income(user):
    account = make_account(user=user)
    debit = make_transaction(account=account, amount="-3.00", booking_date="2025-11-01")
    credit = make_transaction(account=account, amount="4.00", booking_date="2025-11-01")
    Transaction.objects.filter(id__in=[debit.id, credit.id]).update(category=None)

    transaction_aggregates_recompute(user=user, since_date=None)

    rows = TransactionAggregate.objects.filter(user=user).order_by("category__code")
    assert [(r.category.code, r.income, r.spending) for r in rows] == [
        ("other", Decimal("0.00"), Decimal("3.00")),
        ("other_income", Decimal("4.00"), Decimal("0.00")),
    ]


def test_summary_query_count_does_not_grow_with_rows(auth_client, django_assert_max_num_queries):
    seed_history(auth_client.user, days=60, per_day=5)
    money_refresh_after_sync(user=auth_client.user, since_date=None)

    with django_assert_max_num_queries(4):
        response = auth_client.get("/api/transactions/summary?period=90d")
    assert response.status_code == 200


def test_summary_shows_only_the_users_own_data(auth_client, make_user):
    stranger = make_user()
    account = make_account(user=stranger)
    make_transaction(
        account=account,
        amount="-100.00",
        booking_date=at(timezone.now().date()),
        description="Аптека",
    )
    money_refresh_after_sync(user=stranger, since_date=None)

    body = auth_client.get("/api/transactions/summary").json()

    assert body["currencies"] == []
    assert body["period"] == "30d"


@pytest.mark.parametrize(
    "query",
    [
        "period=1y",
        "from=2025-13-01",
        "from=yesterday",
        "to=2025-02-30",
        "from=2025-11-10&to=2025-11-01",
        "from=1990-01-01&to=2025-01-01",
    ],
)
def test_summary_bad_input_is_a_400(auth_client, query):
    response = auth_client.get(f"/api/transactions/summary?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body["extra"]["fields"]) <= {"period", "from", "to"}
    assert body["message"]


def test_account_summaries_total_active_accounts_by_group_and_currency(user, make_user):
    make_account(user=user, account_type="checking", balance="1000.50")
    make_account(user=user, account_type="card", balance="200.00", bank_code="abank")
    make_account(user=user, account_type="savings", balance="5000.00")
    make_account(user=user, account_type="deposit", balance="10000.00", bank_code="sbank")
    make_account(user=user, account_type="loan", balance="250000.00")
    make_account(user=user, account_type="checking", balance="999.00", is_active=False)
    make_account(user=user, account_type="checking", balance="30.00", currency="USD")
    make_account(user=make_user(), account_type="checking", balance="777.00")
    AccountSummary.objects.create(user=user, currency="EUR", spendable_total=1)

    account_summaries_refresh(user=user)

    rows = AccountSummary.objects.filter(user=user).order_by("currency")
    assert [
        (r.currency, r.spendable_total, r.savings_total, r.debt_total, r.accounts_count)
        for r in rows
    ] == [
        ("RUB", Decimal("1200.50"), Decimal("15000.00"), Decimal("250000.00"), 5),
        ("USD", Decimal("30.00"), Decimal("0.00"), Decimal("0.00"), 1),
    ]
