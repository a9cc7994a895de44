"""POST /api/auth/password: the current password checked, the new one validated, every other
session ended, a fresh token pair for the caller, throttled; bad input changes nothing."""

import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from audit.models import AuditEvent
from users.models import RevokedAccessToken, User

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-2026"
NEW_PASSWORD = "Battery-Staple-2027"


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    return body


@pytest.fixture
def anna(make_user):
    return make_user(email="anna@example.com", password=PASSWORD)


def _login(api_client, password=PASSWORD):
    return api_client.post(
        "/api/auth/login", {"login": "anna@example.com", "password": password}, format="json"
    )


def _change(api_client, access: str, current: str, new: str):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    response = api_client.post(
        "/api/auth/password",
        {"current_password": current, "new_password": new},
        format="json",
    )
    api_client.credentials()
    return response


def _refresh(api_client, refresh: str):
    return api_client.post("/api/auth/refresh", {"refresh": refresh}, format="json")


def _me(api_client, access: str):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    response = api_client.get("/api/auth/me")
    api_client.credentials()
    return response


def test_changing_the_password_ends_every_other_session_and_keeps_this_one(api_client, anna):
    here = _login(api_client).json()
    elsewhere = _login(api_client).json()
    rotated = _refresh(api_client, elsewhere["refresh"]).json()  # a session that refreshed

    response = _change(api_client, here["access"], PASSWORD, NEW_PASSWORD)

    assert response.status_code == 200, response.content
    fresh = response.json()
    assert set(fresh) == {"access", "refresh"}
    # This client stays logged in with the fresh pair, which refreshes.
    assert _me(api_client, fresh["access"]).status_code == 200
    assert _refresh(api_client, fresh["refresh"]).status_code == 200
    # The request's own access token is denied; every refresh token issued before is dead.
    _error(_me(api_client, here["access"]), 401, "not_authenticated")
    for refresh in (here["refresh"], elsewhere["refresh"], rotated["refresh"]):
        _error(_refresh(api_client, refresh), 401, "not_authenticated")
    # The password itself changed.
    assert _login(api_client, NEW_PASSWORD).status_code == 200
    _error(_login(api_client, PASSWORD), 401, "invalid_credentials")
    event = AuditEvent.objects.get(action="user.password_changed")
    assert event.user_id == anna.pk
    # here and rotated: elsewhere was blacklisted already, by its rotation.
    assert event.details == {"refresh_tokens_ended": 2}
    assert PASSWORD not in str(event.details) and NEW_PASSWORD not in str(event.details)


def test_a_wrong_current_password_is_a_400_and_changes_nothing(api_client, anna):
    tokens = _login(api_client).json()
    blacklisted_before = BlacklistedToken.objects.count()
    password_hash = User.objects.get(pk=anna.pk).password

    body = _error(_change(api_client, tokens["access"], "not-my-pass", NEW_PASSWORD), 400,
                  "wrong_password")  # fmt: skip

    assert list(body["extra"]["fields"]) == ["current_password"]
    assert User.objects.get(pk=anna.pk).password == password_hash
    assert BlacklistedToken.objects.count() == blacklisted_before
    assert not RevokedAccessToken.objects.exists()
    assert not AuditEvent.objects.filter(action="user.password_changed").exists()
    assert _me(api_client, tokens["access"]).status_code == 200
    assert _refresh(api_client, tokens["refresh"]).status_code == 200


@pytest.mark.parametrize(
    ("new_password", "rule"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("83749203847561", "entirely numeric"),
        ("anna@example.com", "too similar"),
        (PASSWORD, "must differ"),
    ],
)
def test_a_new_password_the_rules_refuse_is_a_400_and_changes_nothing(
    api_client, anna, new_password, rule
):
    tokens = _login(api_client).json()
    password_hash = User.objects.get(pk=anna.pk).password

    body = _error(_change(api_client, tokens["access"], PASSWORD, new_password), 400,
                  "validation_error")  # fmt: skip

    assert list(body["extra"]["fields"]) == ["new_password"]
    assert rule in " ".join(body["extra"]["fields"]["new_password"])
    assert User.objects.get(pk=anna.pk).password == password_hash
    assert not BlacklistedToken.objects.exists()
    assert _refresh(api_client, tokens["refresh"]).status_code == 200


def test_missing_fields_are_a_400_and_no_token_a_401(api_client, anna):
    tokens = _login(api_client).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    body = _error(api_client.post("/api/auth/password", {}, format="json"), 400,
                  "validation_error")  # fmt: skip
    assert set(body["extra"]["fields"]) == {"current_password", "new_password"}
    api_client.credentials()
    _error(
        api_client.post(
            "/api/auth/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            format="json",
        ),
        401,
        "not_authenticated",
    )


def test_password_attempts_are_throttled_per_user(api_client, anna, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "password": "3/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        tokens = _login(api_client).json()
        for _attempt in range(3):
            _error(_change(api_client, tokens["access"], "guess", NEW_PASSWORD), 400,
                   "wrong_password")  # fmt: skip
        # The right password too is refused once the window's attempts are spent.
        _error(_change(api_client, tokens["access"], PASSWORD, NEW_PASSWORD), 429, "throttled")
        assert User.objects.get(pk=anna.pk).check_password(PASSWORD)
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
        api_settings.reload()
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
