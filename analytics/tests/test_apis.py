"""Dashboard, breakdown and recompute endpoints: states, constant query count, isolation."""

from datetime import date, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from analytics import services
from analytics.models import AnalyticsSnapshot
from analytics.serializers import DashboardSerializer
from analytics.tests.factories import (
    build_household,
    make_account,
    make_aggregate,
    make_connection,
    make_tx,
)
from fintrack.celery import app as celery_app
from fintrack.core.localtime import user_today

pytestmark = pytest.mark.django_db
# user (JWT); the latest snapshot's ready-made JSON with the bank connections, in one
DASHBOARD_QUERIES = 2


def test_dashboard_before_the_first_sync_is_200_no_data(auth_client):
    make_connection(auth_client.user, "sbank", status="consent_pending", fresh_at=None)
    auth_client.user.bank_connections.update(last_success_at=None)
    response = auth_client.get("/api/dashboard")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "no_data"
    assert (body["sts"], body["health"], body["debt"]) == (None, None, None)
    assert [(b["bank_code"], b["status"]) for b in body["banks"]] == [("sbank", "consent_pending")]
    assert AnalyticsSnapshot.objects.count() == 0


def test_dashboard_with_data_but_no_snapshot_computes_one(auth_client):
    make_account(auth_client.user, "checking", "12000.00")
    body = auth_client.get("/api/dashboard").json()
    assert body["state"] == "ready"
    assert AnalyticsSnapshot.objects.filter(user=auth_client.user).count() == 1
    # no income: 12000 - 5000 floor reserve = 7000 for the period
    assert (body["sts"]["status"], body["sts"]["period"]) == ("no_income", "7000.00")


@pytest.mark.parametrize("path", ["/api/dashboard", "/api/debts/next-payment", "/api/analytics"])
def test_a_snapshot_of_an_older_version_is_computed_again_when_read(auth_client, path):
    """A snapshot stored before the API vocabulary (issue 24) speaks the old names and times:
    the first read computes a current one instead of serving it."""
    build_household(auth_client.user)
    old = services.analytics_recompute(user=auth_client.user, today=date(2026, 6, 10))
    summary, breakdown = dict(old.summary), dict(old.breakdown)
    del summary["version"]
    breakdown["version"] = 2
    summary["accounts"] = [{"current_balance": "1", "bank_code": "vbank"}]
    AnalyticsSnapshot.objects.filter(pk=old.pk).update(
        summary=summary, breakdown=breakdown, summary_json='"sts":null', summary_json_version=2
    )

    body = auth_client.get(path).json()

    assert AnalyticsSnapshot.objects.filter(user=auth_client.user).count() == 2
    if path == "/api/dashboard":
        assert body["snapshot_id"] != old.pk
        assert {"balance", "account_type"} <= set(body["accounts"][0])
        assert body["computed_at"].endswith("Z")
    elif path == "/api/analytics":
        assert body["breakdown"]["version"] == summary_version()
    # A second read serves the new snapshot: nothing more is computed.
    auth_client.get(path)
    assert AnalyticsSnapshot.objects.filter(user=auth_client.user).count() == 2


def summary_version() -> int:
    from analytics.summary import SNAPSHOT_VERSION

    return SNAPSHOT_VERSION


def test_dashboard_serves_the_snapshot_without_recomputing(auth_client):
    build_household(auth_client.user)
    services.analytics_recompute(user=auth_client.user, today=date(2026, 6, 10))
    body = auth_client.get("/api/dashboard").json()
    assert AnalyticsSnapshot.objects.count() == 1
    assert body["state"] == "ready"
    assert body["sts"]["period"] == "24500.00"
    assert body["sts"]["daily"] == "1633.33"
    # eight indicators with data incl. debt load (see test_services): 93.75 -> 94
    assert (body["health"]["score"], body["health"]["band"]) == (94, "healthy")
    assert len(body["health"]["indicators"]) == 9
    assert body["debt"]["total"] == "200000.00"
    # the one next payment: rent 20000 on Jun 15, before the loan's Jul 1 (see test_services)
    assert body["debt"]["next_payment"]["date"] == "2026-06-15"
    assert body["debt"]["next_payment"]["amount"] == "20000.00"
    assert [(a["account_type"], a["balance"]) for a in body["accounts"]] == [
        ("checking", "50000.00"),
        ("savings", "100000.00"),
        ("loan", "200000.00"),
    ]
    assert [b["bank_code"] for b in body["banks"]] == ["vbank"]
    assert len(body["recent_transactions"]) == 10
    assert set(body) == set(DashboardSerializer().fields)


def test_top_categories_cover_the_last_30_days(auth_client):
    user = auth_client.user
    make_account(user, "checking", "1000.00")
    today = user_today(user)  # the user's own day, as the dashboard counts it, not the server's
    make_aggregate(user, today, "groceries", spending="300")
    make_aggregate(user, today - timedelta(days=29), "groceries", spending="200")
    make_aggregate(user, today - timedelta(days=5), "transport", spending="400")
    make_aggregate(user, today - timedelta(days=30), "restaurants", spending="9999")  # too old
    body = auth_client.get("/api/dashboard").json()
    # groceries 300 + 200 = 500, transport 400
    assert [(c["category_code"], c["total"]) for c in body["top_categories"]] == [
        ("groceries", "500.00"),
        ("transport", "400.00"),
    ]


def _grow(user, accounts, *, transactions: int, extra_accounts: int):
    today = timezone.localdate()
    for n in range(transactions):
        make_tx(
            accounts["checking"], today - timedelta(days=n % 400), -(n % 900 + 1), "🏪 Продукты"
        )
    for n in range(0, transactions, 3):
        make_aggregate(user, today - timedelta(days=n), "transport", spending="10")
    for _ in range(extra_accounts):
        make_account(user, "card", "10.00", bank_code="abank")


def test_dashboard_query_count_is_the_same_for_small_and_large_data(
    auth_client, django_assert_num_queries
):
    user = auth_client.user
    accounts = build_household(user)
    services.analytics_recompute(user=user)
    with django_assert_num_queries(DASHBOARD_QUERIES):
        small = auth_client.get("/api/dashboard")
    _grow(user, accounts, transactions=1500, extra_accounts=8)
    services.analytics_recompute(user=user)
    with django_assert_num_queries(DASHBOARD_QUERIES):
        large = auth_client.get("/api/dashboard")
    assert (small.status_code, large.status_code) == (200, 200)
    assert (len(small.json()["accounts"]), len(large.json()["accounts"])) == (3, 11)


def test_user_b_never_sees_user_a_figures(auth_client, make_user, api_client):
    other = make_user(email="boris@example.com")
    build_household(other)
    services.analytics_recompute(user=other, today=date(2026, 6, 10))
    make_account(auth_client.user, "checking", "700.00")
    body = auth_client.get("/api/dashboard").json()
    assert [a["balance"] for a in body["accounts"]] == ["700.00"]
    assert body["recent_transactions"] == []
    assert body["debt"]["total"] == "0.00"
    breakdown = auth_client.get("/api/analytics").json()
    assert breakdown["breakdown"]["sts"]["spendable_balance"] == "700.00"
    assert breakdown["breakdown"]["recurring"] == []
    assert AnalyticsSnapshot.objects.filter(user=other).count() == 1


def test_analytics_returns_every_term(auth_client):
    build_household(auth_client.user)
    services.analytics_recompute(user=auth_client.user, today=date(2026, 6, 10))
    body = auth_client.get("/api/analytics").json()
    assert body["state"] == "ready"
    breakdown = body["breakdown"]
    assert set(breakdown["sts"]) >= {
        "balances",
        "obligations",
        "reserve",
        "low_point",
        "horizon_days",
        "confidence",
        "path",
        "sts_period",
        "sts_daily",
    }
    assert breakdown["sts"]["balances"][0]["amount"] == "50000.00"
    for indicator in breakdown["health"]["indicators"]:
        assert {"value", "score", "weight", "explanation", "action"} <= set(indicator)
    assert len(breakdown["forecast"]["rows"]) == 30
    assert breakdown["debt"]["items"][0]["agreement_id"] == "agr-77"


def test_analytics_before_any_data_is_no_data(auth_client):
    body = auth_client.get("/api/analytics").json()
    assert (body["state"], body["breakdown"]) == ("no_data", None)


def test_recompute_endpoint_is_accepted_and_debounced(auth_client):
    with mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async:
        first = auth_client.post("/api/analytics/recompute")
        second = auth_client.post("/api/analytics/recompute")
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["state"] == "scheduled"
    apply_async.assert_called_once()


def test_recompute_endpoint_with_eager_celery_stores_a_snapshot(auth_client):
    make_account(auth_client.user, "checking", "100.00")
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # run the task inline, never touch a broker
    try:
        assert auth_client.post("/api/analytics/recompute").status_code == 202
    finally:
        celery_app.conf.task_always_eager = eager
    assert AnalyticsSnapshot.objects.filter(user=auth_client.user).count() == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/dashboard"), ("get", "/api/analytics"), ("post", "/api/analytics/recompute")],
)
def test_endpoints_need_authentication(api_client, method, path):
    response = getattr(api_client, method)(path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_wrong_method_is_a_clean_405(auth_client):
    response = auth_client.delete("/api/dashboard")
    assert response.status_code == 405
    assert set(response.json()) == {"code", "message", "extra"}
