"""The dashboard served from its snapshot's ready-made JSON: the stored text sent as it is beside
the live part, older rows given their text on first read, a cheap ETag that still follows every
change of the answer."""

import json
from datetime import UTC, date, timedelta

import pytest
from django.utils import timezone

from analytics import services
from analytics.models import AnalyticsSnapshot
from analytics.summary import DASHBOARD_MEMBERS, SNAPSHOT_VERSION
from analytics.tests.factories import build_household, make_account, make_tx
from analytics.tests.test_apis import DASHBOARD_QUERIES
from consents.models import Consent, ConsentKind, ConsentStatus

pytestmark = pytest.mark.django_db
TODAY = date(2026, 6, 10)


def _household_snapshot(user) -> AnalyticsSnapshot:
    build_household(user)
    services.analytics_recompute(user=user, today=TODAY)
    return AnalyticsSnapshot.objects.get(user=user)


def test_a_snapshot_is_stored_with_its_summary_as_ready_made_json(auth_client):
    snapshot = _household_snapshot(auth_client.user)

    assert snapshot.summary_json_version == SNAPSHOT_VERSION
    members = [name for name, _default in DASHBOARD_MEMBERS]
    assert snapshot.summary_json.startswith('"sts":{')
    # The text is exactly the summary's dashboard members (no version, nothing else).
    assert json.loads("{" + snapshot.summary_json + "}") == {
        name: snapshot.summary[name] for name in members
    }


def test_the_dashboard_sends_the_stored_text_as_it_is_beside_the_live_part(auth_client):
    snapshot = _household_snapshot(auth_client.user)

    response = auth_client.get("/api/dashboard")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert snapshot.summary_json.encode() in response.content
    body = response.json()
    assert (body["state"], body["snapshot_id"], body["recomputing"]) == (
        "ready",
        snapshot.pk,
        False,
    )
    assert body["computed_at"].endswith("Z")
    for name, _default in DASHBOARD_MEMBERS:
        assert body[name] == snapshot.summary[name]
    assert [b["bank_code"] for b in body["banks"]] == ["vbank"]


def test_line_separators_are_escaped_as_drf_renders_them(auth_client):
    account = make_account(auth_client.user, "checking", "1000.00")
    make_tx(account, timezone.localdate(), "-10.00", "Кофе\u2028Москва")
    services.analytics_recompute(user=auth_client.user)

    response = auth_client.get("/api/dashboard")

    assert b"\\u2028" in response.content and "\u2028".encode() not in response.content
    assert response.json()["recent_transactions"][0]["description"] == "Кофе\u2028Москва"


def test_a_row_stored_before_the_ready_made_json_gets_it_on_first_read(
    auth_client, django_assert_num_queries
):
    snapshot = _household_snapshot(auth_client.user)
    text = snapshot.summary_json
    AnalyticsSnapshot.objects.filter(pk=snapshot.pk).update(
        summary_json=None, summary_json_version=None
    )

    first = auth_client.get("/api/dashboard").json()

    # Served from its (current) summary, not computed again; its text stored for next time.
    assert AnalyticsSnapshot.objects.filter(user=auth_client.user).count() == 1
    assert first["snapshot_id"] == snapshot.pk
    assert first["sts"] == snapshot.summary["sts"]
    snapshot.refresh_from_db()
    assert snapshot.summary_json_version == SNAPSHOT_VERSION
    # The same members (PostgreSQL's jsonb may give the re-read summary's keys in its own order).
    assert json.loads("{" + snapshot.summary_json + "}") == json.loads("{" + text + "}")
    with django_assert_num_queries(DASHBOARD_QUERIES):
        again = auth_client.get("/api/dashboard")
    assert again.json() == first


def test_a_snapshot_without_connections_is_served_alone(auth_client):
    snapshot = _household_snapshot(auth_client.user)
    auth_client.user.bank_connections.all().delete()

    body = auth_client.get("/api/dashboard").json()

    assert (body["state"], body["snapshot_id"], body["banks"]) == ("ready", snapshot.pk, [])
    assert body["outdated"] is False


def test_banks_show_their_authorised_consents_from_the_one_query(auth_client):
    user = auth_client.user
    _household_snapshot(user)
    expires = timezone.now() + timedelta(days=3, hours=1)
    for kind, status, bank_consent_id in (
        (ConsentKind.ACCOUNTS, ConsentStatus.AUTHORIZED, "ac-1"),
        (ConsentKind.PRODUCTS, ConsentStatus.REVOKED, "pc-1"),
    ):
        Consent.objects.create(
            user=user,
            bank_code="vbank",
            kind=kind,
            status=status,
            bank_consent_id=bank_consent_id,
            expires_at=expires,
        )

    (bank,) = auth_client.get("/api/dashboard").json()["banks"]

    assert (bank["consent_state"], bank["consent_days_left"], bank["consent_expiring"]) == (
        "expiring_soon",
        3,
        True,
    )
    assert bank["consent_expires_at"] == expires.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert (bank["product_consent_state"], bank["product_consent_expires_at"]) == ("none", None)


def test_the_etag_follows_the_live_part_and_a_repeat_is_304(auth_client):
    user = auth_client.user
    _household_snapshot(user)
    first = auth_client.get("/api/dashboard")
    etag = first["ETag"]

    repeat = auth_client.get("/api/dashboard", HTTP_IF_NONE_MATCH=etag)
    assert (repeat.status_code, repeat.content, repeat["ETag"]) == (304, b"", etag)
    assert "Authorization" in repeat["Vary"] and "no-cache" in repeat["Cache-Control"]

    # Same snapshot, a bank status changed: a new answer, a new ETag.
    user.bank_connections.update(status="error", last_error="VBank is down")
    changed = auth_client.get("/api/dashboard", HTTP_IF_NONE_MATCH=etag)

    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["snapshot_id"] == first.json()["snapshot_id"]
    assert changed.json()["banks"][0]["status_message"] == "VBank is down"


def test_no_data_has_an_etag_and_a_repeat_is_304(auth_client):
    first = auth_client.get("/api/dashboard")
    assert first.json()["state"] == "no_data"

    repeat = auth_client.get("/api/dashboard", HTTP_IF_NONE_MATCH=first["ETag"])

    assert (repeat.status_code, repeat.content) == (304, b"")
