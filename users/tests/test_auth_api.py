"""The auth API: register, login, refresh, logout, me — and every way they refuse."""

from datetime import timedelta

import pytest
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from users.models import User

PASSWORD = "Correct-Horse-2026"


def register(api_client, **body):
    return api_client.post("/api/auth/register", body, format="json")


def assert_error_shape(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    assert body["message"]
    return body


@pytest.mark.django_db
def test_register_returns_profile_and_tokens_and_touches_no_bank_identity(api_client):
    response = register(api_client, email="  Anna@Example.COM ", password=PASSWORD)

    assert response.status_code == 201
    body = response.json()
    user = User.objects.get(pk=body["user_id"])
    assert body["user"]["email"] == "anna@example.com"
    # Who the user is at a bank is given when connecting it: registration makes no connection.
    assert "external_client_id" not in body["user"]
    assert not user.bank_connections.exists()
    assert user.check_password(PASSWORD)
    assert AccessToken(body["tokens"]["access"])["user_id"] == str(user.pk)


@pytest.mark.django_db
def test_register_with_phone_only_normalises_to_e164(api_client):
    response = register(api_client, phone="8 (916) 123-45-67", password=PASSWORD)

    assert response.status_code == 201
    assert response.json()["user"]["phone"] == "+79161234567"
    assert response.json()["user"]["email"] is None


@pytest.mark.django_db
def test_duplicate_email_in_other_case_is_refused(api_client):
    register(api_client, email="anna@example.com", password=PASSWORD)

    response = register(api_client, email="ANNA@example.com", password=PASSWORD)

    assert_error_shape(response, 409, "identifier_taken")
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_duplicate_phone_in_other_format_is_refused(api_client):
    register(api_client, phone="+7 916 123 45 67", password=PASSWORD)

    response = register(api_client, phone="89161234567", password=PASSWORD)

    assert_error_shape(response, 409, "identifier_taken")


@pytest.mark.django_db
def test_weak_password_is_refused_with_field_errors(api_client):
    response = register(api_client, email="anna@example.com", password="12345")

    body = assert_error_shape(response, 400, "validation_error")
    assert body["extra"]["fields"]["password"]
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "email"),
        ({"email": "anna@example.com"}, "password"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"phone": "call me", "password": PASSWORD}, "phone"),
    ],
)
def test_missing_or_malformed_fields_are_400_with_the_field_named(api_client, body, field):
    response = register(api_client, **body)

    body = assert_error_shape(response, 400, "validation_error")
    assert field in body["extra"]["fields"]


@pytest.mark.django_db
def test_non_json_body_is_a_clear_400(api_client):
    response = api_client.post(
        "/api/auth/register", data="{not json", content_type="application/json"
    )

    assert_error_shape(response, 400, "malformed_request")


@pytest.mark.django_db
def test_login_by_email_or_phone_returns_tokens_and_updates_last_login(api_client, make_user):
    user = make_user(email="anna@example.com", phone="+79161234567", password=PASSWORD)
    assert user.last_login is None

    by_email = api_client.post(
        "/api/auth/login", {"login": "ANNA@example.com", "password": PASSWORD}, format="json"
    )
    by_phone = api_client.post(
        "/api/auth/login", {"login": "89161234567", "password": PASSWORD}, format="json"
    )

    assert by_email.status_code == 200 and by_phone.status_code == 200
    assert AccessToken(by_phone.json()["access"])["user_id"] == str(user.pk)
    user.refresh_from_db()
    assert user.last_login is not None


@pytest.mark.django_db
def test_wrong_password_is_401_in_standard_shape(api_client, make_user):
    make_user(email="anna@example.com", password=PASSWORD)

    response = api_client.post(
        "/api/auth/login", {"login": "anna@example.com", "password": "nope"}, format="json"
    )

    assert_error_shape(response, 401, "invalid_credentials")


@pytest.mark.django_db
def test_unknown_login_gives_the_same_answer_as_a_wrong_password(api_client):
    response = api_client.post(
        "/api/auth/login", {"login": "ghost@example.com", "password": "nope"}, format="json"
    )

    assert_error_shape(response, 401, "invalid_credentials")


@pytest.mark.django_db
def test_login_is_throttled_after_the_configured_rate(api_client, make_user, settings):
    make_user(email="anna@example.com", password=PASSWORD)
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "3/min"}
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    try:
        with override_settings(
            REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        ):
            api_settings.reload()
            SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
            statuses = [
                api_client.post(
                    "/api/auth/login",
                    {"login": "anna@example.com", "password": "bad"},
                    format="json",
                ).status_code
                for _ in range(4)
            ]
            blocked = api_client.post(
                "/api/auth/login",
                {"login": "anna@example.com", "password": PASSWORD},
                format="json",
            )
    finally:
        # Outside the override: the rates of the real settings again, for the tests after this.
        api_settings.reload()
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES

    assert statuses == [401, 401, 401, 429]
    body = assert_error_shape(blocked, 429, "throttled")
    assert body["extra"]["retry_after_seconds"] > 0


@pytest.mark.django_db
def test_refresh_rotates_and_old_refresh_token_is_then_refused(api_client, make_user):
    make_user(email="anna@example.com", password=PASSWORD)
    tokens = api_client.post(
        "/api/auth/login", {"login": "anna@example.com", "password": PASSWORD}, format="json"
    ).json()

    first = api_client.post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    again = api_client.post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json")

    assert first.status_code == 200
    assert first.json()["access"] and first.json()["refresh"] != tokens["refresh"]
    assert_error_shape(again, 401, "not_authenticated")


@pytest.mark.django_db
def test_logout_blacklists_the_refresh_token(auth_client):
    refresh = str(RefreshToken.for_user(auth_client.user))

    response = auth_client.post("/api/auth/logout", {"refresh": refresh}, format="json")
    reuse = auth_client.post("/api/auth/refresh", {"refresh": refresh}, format="json")

    assert response.status_code == 204
    assert_error_shape(reuse, 401, "not_authenticated")


@pytest.mark.django_db
def test_logout_with_garbage_refresh_is_400(auth_client):
    response = auth_client.post("/api/auth/logout", {"refresh": "garbage"}, format="json")

    assert_error_shape(response, 400, "validation_error")


@pytest.mark.django_db
def test_me_returns_the_profile(auth_client):
    response = auth_client.get("/api/auth/me")

    assert response.status_code == 200
    user = auth_client.user
    assert response.json() == {
        "user_id": user.pk,
        "email": user.email,
        "phone": None,
        "time_zone": "Europe/Moscow",
        "created_at": response.json()["created_at"],
        "last_login": None,
    }


@pytest.mark.django_db
def test_me_without_token_is_401(api_client):
    assert_error_shape(api_client.get("/api/auth/me"), 401, "not_authenticated")


@pytest.mark.django_db
def test_me_with_garbage_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    assert_error_shape(api_client.get("/api/auth/me"), 401, "not_authenticated")


@pytest.mark.django_db
def test_me_with_expired_token_is_401(api_client, user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(minutes=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert_error_shape(api_client.get("/api/auth/me"), 401, "not_authenticated")


@pytest.mark.django_db
def test_refresh_token_used_as_access_token_is_401(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user)}")

    assert_error_shape(api_client.get("/api/auth/me"), 401, "not_authenticated")


@pytest.mark.django_db
def test_unknown_api_path_is_404_json(api_client):
    response = api_client.get("/api/no-such-thing")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
