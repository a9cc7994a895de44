"""The profile's time zone: GET/PATCH /api/auth/me, registration, validation, recompute queued."""

from datetime import UTC, date, datetime
from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from banking.models import TransactionAggregate
from banking.services.transactions import transaction_aggregates_recompute
from banking.tests.factories import make_account, make_transaction
from users.models import User

pytestmark = pytest.mark.django_db


def test_the_default_zone_is_moscow_and_me_shows_it(auth_client):
    assert auth_client.user.time_zone == "Europe/Moscow"
    assert auth_client.get("/api/auth/me").json()["time_zone"] == "Europe/Moscow"


def test_patch_me_stores_the_zone_and_queues_recompute(
    auth_client, django_capture_on_commit_callbacks
):
    with (
        mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = auth_client.patch(
            "/api/auth/me", {"time_zone": "Asia/Novosibirsk"}, format="json"
        )

    assert response.status_code == 200, response.content
    assert response.json()["time_zone"] == "Asia/Novosibirsk"
    assert User.objects.get(pk=auth_client.user.pk).time_zone == "Asia/Novosibirsk"
    assert auth_client.get("/api/auth/me").json()["time_zone"] == "Asia/Novosibirsk"
    apply_async.assert_called_once()
    assert apply_async.call_args.kwargs["args"] == [auth_client.user.pk]


def test_patch_me_rebuilds_aggregates_in_the_new_zone(
    auth_client, django_capture_on_commit_callbacks
):
    user = auth_client.user
    account = make_account(user=user)
    make_transaction(
        account=account,
        amount="-10.00",
        booking_date=datetime(2025, 11, 30, 18, 0, tzinfo=UTC),  # 21:00 MSK, 01:00 NOVT Dec 1
        description="Аптека",
    )
    transaction_aggregates_recompute(user=user, since_date=None)
    assert list(TransactionAggregate.objects.values_list("date", flat=True)) == [date(2025, 11, 30)]

    with (
        mock.patch("analytics.tasks.recompute_user.apply_async"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        auth_client.patch("/api/auth/me", {"time_zone": "Asia/Novosibirsk"}, format="json")

    assert list(TransactionAggregate.objects.values_list("date", flat=True)) == [date(2025, 12, 1)]


def test_the_same_zone_again_queues_nothing(auth_client, django_capture_on_commit_callbacks):
    with (
        mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = auth_client.patch("/api/auth/me", {"time_zone": "Europe/Moscow"}, format="json")
    assert response.status_code == 200
    apply_async.assert_not_called()


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "MSK+3", "x" * 80, 5])
def test_an_unknown_zone_is_a_400_in_the_standard_shape(auth_client, zone):
    response = auth_client.patch("/api/auth/me", {"time_zone": zone}, format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["message"]
    assert "time_zone" in body["extra"]["fields"]
    assert User.objects.get(pk=auth_client.user.pk).time_zone == "Europe/Moscow"


def test_me_needs_authentication(api_client):
    assert api_client.patch("/api/auth/me", {"time_zone": "UTC"}, format="json").status_code == 401


def test_registration_accepts_an_optional_zone(api_client):
    response = api_client.post(
        "/api/auth/register",
        {"email": "tz@example.com", "password": "A-strong-pass-2026", "time_zone": "Europe/Berlin"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["user"]["time_zone"] == "Europe/Berlin"

    plain = api_client.post(
        "/api/auth/register",
        {"email": "plain@example.com", "password": "A-strong-pass-2026"},
        format="json",
    )
    assert plain.json()["user"]["time_zone"] == "Europe/Moscow"

    bad = api_client.post(
        "/api/auth/register",
        {"email": "bad@example.com", "password": "A-strong-pass-2026", "time_zone": "Nowhere"},
        format="json",
    )
    assert bad.status_code == 400
    assert "time_zone" in bad.json()["extra"]["fields"]


def test_the_model_validates_the_zone(user):
    user.time_zone = "Not/AZone"
    with pytest.raises(ValidationError):
        user.full_clean()


def test_the_openapi_schema_documents_the_zone(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    if schema.status_code == 404:
        pytest.skip("no schema endpoint")
    text = schema.content.decode()
    assert "time_zone" in text
    assert "MeUpdateInput" in text or "PatchedMeUpdateInput" in text
