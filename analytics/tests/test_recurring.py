"""Recurring detection on the sandbox's patterns: instalments on days 1-5, salary, bills."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from analytics.recurring import TxRecord, recurring_detect

LOAN = "Платеж по кредиту №agr-77"


def _instalments(months: list[tuple[int, int]], last_day: int = 5, amount="3000.00"):
    return [
        TxRecord(day=date(y, m, d), amount=-D(amount), description=LOAN, counterparty="VBank")
        for (y, m) in months
        for d in range(1, last_day + 1)
    ]


def _salary(amounts: list[str], day: int = 25):
    return [
        TxRecord(
            day=date(2026, month, day),
            amount=D(a),
            description="💼 Зарплата",
            counterparty="ООО Работодатель",
        )
        for month, a in enumerate(amounts, start=1)
    ]


def test_five_debits_on_days_1_to_5_are_one_monthly_instalment():
    txs = _instalments([(2026, m) for m in range(1, 7)])  # Jan..Jun, 5 x 3000 each
    [flow] = recurring_detect(transactions=txs, today=date(2026, 6, 10))
    assert flow.kind == "loan_instalment"
    assert flow.agreement_id == "agr-77"
    assert flow.cadence == "monthly"
    assert flow.occurrences == 6  # one per month, not 30
    assert flow.typical_amount == D("15000.00")  # 5 x 3000
    assert flow.typical_day == 1
    assert flow.next_expected_date == date(2026, 7, 1)
    assert flow.pending_amount == D("0")
    # due Jan 1 .. Jun 1 (Jun 1 + 5 days tolerance < Jun 10): all six paid on their day
    assert (flow.expected_count, flow.on_time_count) == (6, 6)


def test_instalment_in_progress_leaves_its_remaining_parts_on_their_days():
    # Jan..May complete, June only days 1-3 paid so far: 3 x 3000 = 9000 of 15000
    txs = _instalments([(2026, m) for m in range(1, 6)]) + _instalments([(2026, 6)], last_day=3)
    [flow] = recurring_detect(transactions=txs, today=date(2026, 6, 3))
    assert flow.typical_amount == D("15000.00")  # median over the complete months only
    assert flow.pending_amount == D("6000.00")  # 15000 - 9000
    assert flow.next_expected_date == date(2026, 7, 1)
    # 5 parts of 3000 a month, 3 paid (days 1-3): parts 4 and 5 on Jun 4 and Jun 5, then July's
    # five parts on days 1..5
    assert flow.parts == 5
    assert flow.events(start=date(2026, 6, 3), end=date(2026, 7, 5)) == [
        (date(2026, 6, 4), D("3000.00")),
        (date(2026, 6, 5), D("3000.00")),
    ] + [(date(2026, 7, d), D("3000.00")) for d in range(1, 6)]


def test_single_month_of_instalments_is_still_a_monthly_loan():
    txs = _instalments([(2026, 5)])
    [flow] = recurring_detect(transactions=txs, today=date(2026, 5, 20))
    assert (flow.cadence, flow.typical_amount, flow.next_expected_date) == (
        "monthly",
        D("15000.00"),
        date(2026, 6, 1),
    )


def test_salary_is_detected_with_median_amount_and_next_date():
    txs = _salary(["100000", "103000", "97000", "100000", "101000"])  # Jan..May on the 25th
    [flow] = recurring_detect(transactions=txs, today=date(2026, 6, 10))
    assert (flow.direction, flow.kind, flow.cadence) == ("income", "salary", "monthly")
    assert flow.typical_amount == D("100000.00")  # median of 97k, 100k, 100k, 101k, 103k
    assert flow.next_expected_date == date(2026, 6, 25)
    # intervals 31, 28, 31, 30 days all within 30 +- 5 -> regularity 1;
    # amounts: mean 100200, population std 1939.07 -> variation 0.0194, stability 1 - 0.0194/0.5
    # confidence = 0.4 x 1 + 0.3 x 0.9613 + 0.3 x min(1, 4/3) = 0.988 -> 0.99
    assert flow.confidence == 0.99


def test_missed_salary_rolls_to_the_next_cycle():
    txs = _salary(["100000", "100000", "100000"])  # Jan, Feb, Mar 25
    [flow] = recurring_detect(transactions=txs, today=date(2026, 5, 2))
    # Apr 25 passed without a salary: the next expectation is May 25
    assert flow.next_expected_date == date(2026, 5, 25)


def test_rent_varying_ten_percent_is_a_bill_and_shopping_is_not_recurring():
    rent = [
        TxRecord(day=date(2026, m, 10), amount=-D(a), description="🏠 ЖКХ/Аренда")
        for m, a in zip(range(1, 6), ["30000", "33000", "27000", "31000", "29500"], strict=True)
    ]
    visits = [(1, 3, "500"), (1, 19, "2500"), (2, 2, "900"), (3, 14, "4200"), (4, 8, "300")]
    shopping = [
        TxRecord(
            day=date(2026, m, d), amount=-D(a), description="🏪 Продукты", merchant_name="Пятёрочка"
        )
        for m, d, a in visits
    ]
    [flow] = recurring_detect(transactions=rent + shopping, today=date(2026, 6, 1))
    assert (flow.kind, flow.typical_amount, flow.next_expected_date) == (
        "bill",
        D("30000.00"),  # median of 27000, 29500, 30000, 31000, 33000
        date(2026, 6, 10),
    )


def test_two_irregular_outflows_are_not_recurring():
    txs = [
        TxRecord(day=date(2026, 1, 5), amount=-D("999"), description="Netflix"),
        TxRecord(day=date(2026, 2, 5), amount=-D("999"), description="Netflix"),
    ]
    # outflows need three occurrences
    assert recurring_detect(transactions=txs, today=date(2026, 3, 1)) == []


def _weekly_restaurant(amounts: list[str], first=date(2026, 1, 3)):
    """A café visited every Saturday, one visit per amount."""
    return [
        TxRecord(
            day=first + timedelta(weeks=week),
            amount=-D(amount),
            description="Тануки - Москва",
            merchant_name="Тануки",
            category_code="restaurants",
        )
        for week, amount in enumerate(amounts)
    ]


def _subscription(days: list[date], amount="299.00"):
    return [
        TxRecord(
            day=day,
            amount=-D(amount),
            description="Яндекс Плюс - Москва",
            merchant_name="Яндекс Плюс",
            category_code="entertainment",
        )
        for day in days
    ]


def test_a_weekly_restaurant_whose_every_fourth_bill_is_alike_is_not_a_subscription():
    # Weeks 0, 4, 8, 12 cost 2000-2010 (variation 0.2 %, 28 days apart: monthly, regular), the
    # other visits 1200-1500 or 2700-4500, so those four are an amount band of their own: the
    # merchant's amount is not stable (4 of the 13 visits in that span), so no subscription.
    others = iter(["1200", "4500", "1500", "2700", "3900", "1350", "3300", "4100", "1450"] * 3)
    alike = iter(["2000", "2010", "2005", "2008"])
    amounts = [next(alike) if week in (0, 4, 8, 12) else next(others) for week in range(26)]
    txs = _weekly_restaurant(amounts)
    assert recurring_detect(transactions=txs, today=date(2026, 7, 10)) == []


def test_a_weekly_restaurant_with_varying_amounts_is_never_a_subscription():
    import random

    for seed in range(200):
        rng = random.Random(seed)
        amounts = [f"{rng.randrange(1200_00, 4500_00) / 100:.2f}" for _ in range(52)]
        flows = recurring_detect(transactions=_weekly_restaurant(amounts), today=date(2027, 1, 5))
        assert [f.kind for f in flows if f.kind == "subscription"] == [], seed


def test_a_stable_merchant_amount_and_cadence_is_a_subscription():
    txs = _subscription([date(2026, month, 15) for month in range(1, 7)])
    [flow] = recurring_detect(transactions=txs, today=date(2026, 7, 1))
    assert (flow.kind, flow.cadence, flow.typical_amount, flow.next_expected_date) == (
        "subscription",
        "monthly",
        D("299.00"),
        date(2026, 7, 15),
    )


def test_a_same_amount_on_an_unsteady_cadence_is_not_a_subscription():
    # Intervals 31, 28, 45, 30, 20 days: median 30 (monthly), three of five within 30 +- 5
    # (regularity 0.6): enough for a bill, not for a subscription.
    days = [date(2026, 1, 1)]
    for gap in (31, 28, 45, 30, 20):
        days.append(days[-1] + timedelta(days=gap))
    assert recurring_detect(transactions=_subscription(days), today=date(2026, 7, 20)) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("number", [1, 3, 10])
def test_on_live_style_data_the_only_subscriptions_are_the_personas_subscriptions(
    sandbox_banks, make_user, number
):
    """What analytics finds after a sync: every subscription is one the persona pays (KION,
    Яндекс Плюс), never its café (client 3's Шоколадница was one on 2026-12-01: four visits
    a month apart within 1.7% of each other, among many others)."""
    from analytics import services
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sandbox import catalog, clock
    from sandbox.live import persona_of
    from sandbox.volume import data_key
    from sync.models import SyncRun, SyncStatus, SyncTrigger
    from sync.services import sync_run_execute

    client_id = f"team260-{number}"
    who = persona_of(data_key(client_id, clock.state().anchor))
    user = make_user(client_id=client_id)
    user.time_zone = who.timezone  # local days, as the client would set them
    user.save()
    for bank_code in who.banks:
        consent = consent_services.consent_ensure(
            user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS
        )
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
        connection = connection_get_or_create(user=user, bank_code=bank_code)
        run = SyncRun.objects.create(
            connection=connection, user_id=user.pk, trigger=SyncTrigger.USER
        )
        sync_run_execute(sync_run_id=run.pk)
        run.refresh_from_db()
        assert run.status == SyncStatus.SUCCEEDED, (bank_code, run.error)
    snapshot = services.analytics_recompute(user=user)
    subscriptions = {
        flow["label"] for flow in snapshot.breakdown["recurring"] if flow["kind"] == "subscription"
    }
    meant = {
        f"{catalog.LIVE_MERCHANTS[bill.merchant][1]} - {who.city}"
        for bill in who.bills
        if bill.kind == "subscription" and bill.merchant >= 0
    }
    assert subscriptions == meant
