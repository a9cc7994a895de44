"""The snapshot pipeline end to end on ORM data, the debounced request and the task."""

from datetime import date, timedelta
from decimal import Decimal as D
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import services
from analytics.models import AnalyticsSnapshot
from analytics.tasks import recompute_user
from analytics.tests.factories import build_household, make_aggregate, make_tx

TODAY = date(2026, 6, 10)
pytestmark = pytest.mark.django_db


def test_recompute_stores_every_figure_hand_computed(user):
    build_household(user)
    snapshot = services.analytics_recompute(user=user, today=TODAY)
    sts = snapshot.breakdown["sts"]
    # Spendable: the checking account, 50000. Next income: salary on Jun 25 -> H = 15 days.
    # Before it: rent 20000 on Jun 15 (detected). The loan's next payment is Jul 1 (after income).
    # Essential monthly (Mar..May median) = utilities 20000 + loan 15000 + groceries 20000 = 55000
    # reserve = max(5000, 0.10 x 55000 = 5500) = 5500
    # low point = 50000 - 20000 = 30000 on Jun 15; STS = 30000 - 5500 = 24500
    # per day = 24500 / 15 = 1633.33 (rounded down)
    assert sts["horizon_days"] == 15
    assert sts["reserve"]["amount"] == "5500.00"
    assert sts["reserve"]["basis"] == "share"
    assert sts["low_point"] == {"amount": "30000.00", "date": "2026-06-15"}
    assert [(o["date"], o["amount"], o["source"]) for o in sts["obligations"]] == [
        ("2026-06-15", "20000.00", "recurring")
    ]
    assert (snapshot.sts_amount, snapshot.sts_daily, snapshot.sts_status) == (
        D("24500.00"),
        D("1633.33"),
        "ok",
    )
    # Health: spend 65000 / income 100000 = 0.65 -> 100; bills 11/11 on time -> 100;
    # buffer (50000 + 100000) / 55000 = 2.72 months -> 50; savings 70000 -> 100000 in 90 days
    # (+42.9 %) -> 100; ПДН 15000 / 100000 = 15 % -> 100; no credit card -> no data;
    # income steady over 5 months -> 100; saved in 5 of 6 months -> 100;
    # debt load: (200000 debt - 150000 liquid) / (12 x 100000) = 0.04 years of income -> 100.
    # score = (100 + 100 + 50 + 100 + 100 + 100 + 100 + 100) / 8 = 93.75 -> 94
    scores = {i["code"]: i["score"] for i in snapshot.breakdown["health"]["indicators"]}
    assert scores == {
        "spend_vs_income": 100,
        "bills_on_time": 100,
        "liquid_buffer": 50,
        "savings_trend": 100,
        "debt_service_ratio": 100,
        "credit_utilisation": None,
        "income_regularity": 100,
        "regular_saving": 100,
        "debt_load": 100,
    }
    assert (snapshot.health_score, snapshot.health_band) == (94, "healthy")
    # Debt: the loan account's balance (200000) is the outstanding amount.
    assert snapshot.total_debt == D("200000.00")
    assert snapshot.monthly_debt_service == D("15000.00")
    # The one next payment: the nearest obligation, rent 20000 on Jun 15 (the loan is Jul 1).
    assert (snapshot.next_payment_date, snapshot.next_payment_amount) == (
        date(2026, 6, 15),
        D("20000.00"),
    )
    assert snapshot.summary["sts"]["daily"] == "1633.33"


def test_instalment_being_debited_leaves_its_remaining_parts_on_their_days(user):
    build_household(user)
    # Jun 3: the loan's days 1-3 are debited (3 x 3000 = 9000); the agreement's next payment
    # is Jul 1 (whole months), so parts 4 and 5 (3000 each) fall on Jun 4 and 5, then rent Jun 15.
    snapshot = services.analytics_recompute(user=user, today=date(2026, 6, 3))
    sts = snapshot.breakdown["sts"]
    assert [(o["date"], o["amount"]) for o in sts["obligations"]] == [
        ("2026-06-04", "3000.00"),
        ("2026-06-05", "3000.00"),
        ("2026-06-15", "20000.00"),
    ]
    # low = 50000 - 6000 - 20000 = 24000; reserve 5500; STS = 18500; H = Jun 25 - Jun 3 = 22
    # per day = 18500 / 22 = 840.90 (rounded down)
    assert sts["horizon_days"] == 22
    assert (snapshot.sts_amount, snapshot.sts_daily) == (D("18500.00"), D("840.90"))


def test_own_transfers_are_never_recurring_income_or_bills(user):
    build_household(user)
    snapshot = services.analytics_recompute(user=user, today=TODAY)
    kinds = sorted((f["kind"], f["typical_amount"]) for f in snapshot.breakdown["recurring"])
    # the monthly 10000 own transfer (both legs) is absent
    assert kinds == [("bill", "20000.00"), ("loan_instalment", "15000.00"), ("salary", "100000.00")]


def test_forecast_has_30_days_with_events_and_assumptions(user):
    build_household(user)
    forecast = services.analytics_recompute(user=user, today=TODAY).breakdown["forecast"]
    assert len(forecast["rows"]) == 30
    events = [(r["date"], e["kind"], e["amount"]) for r in forecast["rows"] for e in r["events"]]
    # rent Jun 15, salary Jun 25, loan Jul 1 (agreement), Jul 1..9 is inside the 30 days
    assert events == [
        ("2026-06-15", "obligation", "-20000.00"),
        ("2026-06-25", "income", "100000.00"),
        ("2026-07-01", "obligation", "-15000.00"),
    ]
    # everyday spending = STS's estimate: every debit of the household is rent, the loan or
    # an own transfer, so none is everyday spending -> 0.00 per day
    assert forecast["daily_variable_spending"] == "0.00"
    assert set(forecast["paths"]) == {"income_continues", "no_income"}
    assert forecast["assumptions"]


def test_no_income_detected_is_explicit(user):
    from analytics.tests.factories import make_account

    make_account(user, "checking", "12000.00")
    snapshot = services.analytics_recompute(user=user, today=TODAY)
    # no history: H = 31, reserve = 5000 floor, STS = 12000 - 5000 = 7000; per day 7000/31 = 225.80
    assert snapshot.sts_status == "no_income"
    assert (snapshot.sts_amount, snapshot.sts_daily) == (D("7000.00"), D("225.80"))
    assert snapshot.breakdown["sts"]["income_detected"] is False
    # only "no debt payments" (ПДН 0 %) has data: too little for a score
    assert (snapshot.health_score, snapshot.health_band) == (None, "no_data")


def test_recompute_reads_a_bounded_window_whatever_the_history(user):
    accounts = build_household(user)
    with CaptureQueriesContext(connection) as small:
        first = services.analytics_recompute(user=user, today=TODAY)
    # Ten more years of history before the window: a different salary every month.
    start = TODAY - timedelta(days=3650)
    for n in range(0, 3400, 10):
        day = start + timedelta(days=n)
        make_tx(accounts["checking"], day, "777", "💼 Зарплата", counterparty="ООО Старое")
        make_aggregate(user, day, "groceries", spending="999")
    with CaptureQueriesContext(connection) as large:
        second = services.analytics_recompute(user=user, today=TODAY)
    assert len(large) == len(small)
    assert (second.sts_amount, second.health_score) == (first.sts_amount, first.health_score)


def test_three_syncs_finishing_together_schedule_one_recomputation(user):
    with mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async:
        for _ in range(3):
            services.analytics_recompute_request(user_id=user.id)
    apply_async.assert_called_once_with(args=[user.id], countdown=services.RECOMPUTE_DELAY_SECONDS)
    # The one task runs: one snapshot, and the marker is cleared for the next sync.
    recompute_user(user.id)
    assert AnalyticsSnapshot.objects.filter(user=user).count() == 1
    assert services.recompute_scheduled(user_id=user.id) is False
    with mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async:
        services.analytics_recompute_request(user_id=user.id)
    assert apply_async.call_count == 1


def test_broker_outage_does_not_fail_the_caller_and_clears_the_marker(user):
    with mock.patch(
        "analytics.tasks.recompute_user.apply_async", side_effect=ConnectionError("broker down")
    ):
        services.analytics_recompute_request(user_id=user.id)
    assert services.recompute_scheduled(user_id=user.id) is False


def test_requests_for_different_users_are_not_merged(make_user):
    first, second = make_user(), make_user()
    with mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async:
        services.analytics_recompute_request(user_id=first.id)
        services.analytics_recompute_request(user_id=second.id)
    assert [c.kwargs["args"] for c in apply_async.call_args_list] == [[first.id], [second.id]]


def test_task_for_a_deleted_user_returns_quietly(user):
    user_id = user.id
    user.delete()
    assert recompute_user(user_id) is None
    assert AnalyticsSnapshot.objects.count() == 0
