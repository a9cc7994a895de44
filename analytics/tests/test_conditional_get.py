"""Conditional GET on the dashboard and analytics: an ETag, 304 on a repeat, a new ETag once the
answer changes; never shared between users."""

from datetime import date

import pytest

from analytics import services
from analytics.tests.factories import build_household, make_account

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/dashboard", "/api/analytics", "/api/debts", "/api/debts/next-payment"]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_repeat_with_the_etag_is_304_without_a_body(auth_client, url):
    build_household(auth_client.user)
    services.analytics_recompute(user=auth_client.user, today=date(2026, 6, 10))
    first = auth_client.get(url)
    assert first.status_code == 200
    etag = first["ETag"]
    assert etag
    assert "private" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]

    repeat = auth_client.get(url, HTTP_IF_NONE_MATCH=etag)

    assert repeat.status_code == 304
    assert repeat.content == b""
    assert repeat["ETag"] == etag
    assert "private" in repeat["Cache-Control"]


def test_the_etag_changes_when_the_dashboard_does(auth_client):
    make_account(auth_client.user, "checking", "12000.00")
    first = auth_client.get("/api/dashboard")
    etag = first["ETag"]

    make_account(auth_client.user, "savings", "5000.00")
    services.analytics_recompute(user=auth_client.user)
    changed = auth_client.get("/api/dashboard", HTTP_IF_NONE_MATCH=etag)

    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["snapshot_id"] != first.json()["snapshot_id"]


def test_another_users_etag_does_not_match(auth_client, api_client, make_user):
    make_account(auth_client.user, "checking", "12000.00")
    etag = auth_client.get("/api/dashboard")["ETag"]
    other = make_user(email="other@example.com")
    api_client.force_authenticate(other)

    response = api_client.get("/api/dashboard", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert response.json()["state"] == "no_data"
