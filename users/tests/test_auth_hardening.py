"""Auth hardening: refresh tokens stored only as digests, logout ending the access token, tokens of
deleted users refused with a 401, and e-mails normalised (NFKC, invisible characters refused)."""

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken

from users.models import RevokedAccessToken, User
from users.tokens import token_digest

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-2026"


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    return body


def _login(api_client, login="anna@example.com", password=PASSWORD):
    return api_client.post("/api/auth/login", {"login": login, "password": password}, format="json")


def _refresh(api_client, refresh: str):
    return api_client.post("/api/auth/refresh", {"refresh": refresh}, format="json")


def _every_stored_text() -> str:
    """Every column of every outstanding/blacklisted token row, as one text."""
    with connection.cursor() as cursor:
        texts = []
        for table in (OutstandingToken._meta.db_table, BlacklistedToken._meta.db_table):
            cursor.execute(f"SELECT * FROM {table}")
            texts.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(texts)


@pytest.fixture
def anna(make_user):
    return make_user(email="anna@example.com", password=PASSWORD)


# --- Refresh tokens stored as digests -------------------------------------------------------


def test_the_database_holds_only_digests_of_refresh_tokens(api_client, anna):
    tokens = _login(api_client).json()
    rotated = _refresh(api_client, tokens["refresh"]).json()

    stored = _every_stored_text()
    for refresh in (tokens["refresh"], rotated["refresh"]):
        assert refresh not in stored
        assert refresh.split(".")[2] not in stored  # not even the signature
    digests = set(OutstandingToken.objects.values_list("token", flat=True))
    assert digests == {token_digest(tokens["refresh"]), token_digest(rotated["refresh"])}


def test_a_value_taken_from_the_database_mints_no_access_token(api_client, anna):
    _login(api_client)
    for stored in OutstandingToken.objects.values_list("token", flat=True):
        _error(_refresh(api_client, stored), 401, "not_authenticated")
        _error(_refresh(api_client, stored.removeprefix("sha256:")), 401, "not_authenticated")


def test_rotation_and_blacklisting_still_work_by_jti(api_client, anna):
    first = _login(api_client).json()
    second = _refresh(api_client, first["refresh"])
    assert second.status_code == 200
    assert second.json()["refresh"] != first["refresh"]
    # The rotated-out token is blacklisted by its jti; the new one works, once.
    _error(_refresh(api_client, first["refresh"]), 401, "not_authenticated")
    third = _refresh(api_client, second.json()["refresh"])
    assert third.status_code == 200
    _error(_refresh(api_client, second.json()["refresh"]), 401, "not_authenticated")
    assert BlacklistedToken.objects.count() == 2
    assert OutstandingToken.objects.filter(user=anna).count() == 3


def test_logout_blacklists_a_hashed_refresh_token(api_client, anna):
    tokens = _login(api_client).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert (
        api_client.post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    ).status_code == 204
    api_client.credentials()
    _error(_refresh(api_client, tokens["refresh"]), 401, "not_authenticated")
    assert BlacklistedToken.objects.get().token.token == token_digest(tokens["refresh"])


def test_the_migration_hashes_tokens_stored_in_clear_and_keeps_their_blacklist(anna):
    from rest_framework_simplejwt.tokens import RefreshToken

    clear = RefreshToken.for_user(anna)  # simplejwt's own class: stores the token in clear
    blacklisted = RefreshToken.for_user(anna)
    blacklisted.blacklist()
    assert OutstandingToken.objects.filter(token=str(clear)).exists()

    migration = importlib.import_module("users.migrations.0004_outstanding_tokens_hashed")
    migration.hash_tokens(apps, None)
    migration.hash_tokens(apps, None)  # a second run changes nothing

    assert set(OutstandingToken.objects.values_list("token", flat=True)) == {
        token_digest(str(clear)),
        token_digest(str(blacklisted)),
    }
    assert str(clear) not in _every_stored_text()
    assert BlacklistedToken.objects.get().token.jti == blacklisted["jti"]


# --- Deleted users ----------------------------------------------------------------------------


def test_a_deleted_users_refresh_token_is_a_401(api_client, anna):
    tokens = _login(api_client).json()
    anna.delete()

    _error(_refresh(api_client, tokens["refresh"]), 401, "no_active_account")


def test_a_deleted_users_access_token_is_a_401_everywhere(api_client, anna):
    tokens = _login(api_client).json()
    anna.delete()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    for path in ("/api/auth/me", "/api/accounts", "/api/transactions", "/api/dashboard"):
        _error(api_client.get(path), 401, "user_not_found")
    _error(
        api_client.post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json"),
        401,
        "user_not_found",
    )


def test_an_inactive_users_refresh_token_is_a_401(api_client, anna):
    tokens = _login(api_client).json()
    User.objects.filter(pk=anna.pk).update(is_active=False)

    _error(_refresh(api_client, tokens["refresh"]), 401, "no_active_account")


# --- Logout ends the access token -------------------------------------------------------------


def test_the_access_token_is_refused_right_after_logout(api_client, anna):
    tokens = _login(api_client).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api_client.get("/api/auth/me").status_code == 200

    logout = api_client.post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")

    assert logout.status_code == 204
    _error(api_client.get("/api/auth/me"), 401, "not_authenticated")
    _error(api_client.get("/api/accounts"), 401, "not_authenticated")
    denied = RevokedAccessToken.objects.get()
    assert denied.jti == AccessToken(tokens["access"])["jti"]
    assert denied.expires_at > timezone.now()
    # Another session of the same user is not affected.
    other = _login(api_client).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other['access']}")
    assert api_client.get("/api/auth/me").status_code == 200


def test_the_deny_list_costs_no_query_and_forgets_expired_entries(
    api_client, anna, django_assert_num_queries
):
    RevokedAccessToken.objects.create(
        jti="old", expires_at=timezone.now() - timezone.timedelta(seconds=1)
    )
    tokens = _login(api_client).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    with django_assert_num_queries(1):  # the user and the deny list, in one query
        assert api_client.get("/api/auth/me").status_code == 200

    api_client.post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")

    assert list(RevokedAccessToken.objects.values_list("jti", flat=True)) == [
        AccessToken(tokens["access"])["jti"]
    ]


# --- E-mails ----------------------------------------------------------------------------------

INVISIBLE = {
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "zero-width non-joiner": "\u200c",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "right-to-left mark": "\u200f",
    "word joiner": "\u2060",
    "Hangul filler": "\u3164",
}


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_email_with_an_invisible_character_is_refused(api_client, anna, char):
    response = api_client.post(
        "/api/auth/register",
        {"email": f"an{char}na@example.com", "password": PASSWORD},
        format="json",
    )

    body = _error(response, 400, "validation_error")
    assert list(body["extra"]["fields"]) == ["email"]
    assert "invisible" in body["message"]
    assert User.objects.count() == 1


def test_a_look_alike_of_a_registered_email_is_refused(api_client, anna):
    fullwidth = "ａｎｎａ@ｅｘａｍｐｌｅ.ｃｏｍ"
    response = api_client.post(
        "/api/auth/register", {"email": fullwidth, "password": PASSWORD}, format="json"
    )

    _error(response, 409, "identifier_taken")
    assert User.objects.count() == 1


def test_registration_stores_the_nfkc_form_and_login_works_with_either(api_client):
    response = api_client.post(
        "/api/auth/register",
        {"email": "  ＢＯＲＩＳ@Ｅｘａｍｐｌｅ.ＣＯＭ ", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["user"]["email"] == "boris@example.com"
    assert _login(api_client, "boris@example.com").status_code == 200
    assert _login(api_client, "ＢＯＲＩＳ@ｅｘａｍｐｌｅ.ｃｏｍ").status_code == 200
    _error(_login(api_client, "bo\u200bris@example.com"), 401, "invalid_credentials")


def test_a_phone_with_non_ascii_digits_is_refused_and_fullwidth_ones_are_read(api_client):
    arabic = api_client.post(
        "/api/auth/register", {"phone": "+٧٩١٦١٢٣٤٥٦٧", "password": PASSWORD}, format="json"
    )
    _error(arabic, 400, "validation_error")
    fullwidth = api_client.post(
        "/api/auth/register",
        {"phone": "＋７９１６１２３４５６７", "password": PASSWORD},
        format="json",
    )
    assert fullwidth.status_code == 201, fullwidth.content
    assert fullwidth.json()["user"]["phone"] == "+79161234567"


def test_the_migration_normalises_stored_emails_unless_taken(make_user):
    kept = make_user(email="anna@example.com")
    User.objects.filter(pk=kept.pk).update(email="ａｎｎａ@example.com")
    make_user(email="anna@example.com")  # the NFKC form is someone else's now
    odd = make_user(email="boris@example.com")
    User.objects.filter(pk=odd.pk).update(email="ｂｏｒｉｓ@example.com")

    importlib.import_module("users.migrations.0005_emails_nfkc").normalize_emails(apps, None)

    assert User.objects.get(pk=kept.pk).email == "ａｎｎａ@example.com"
    assert User.objects.get(pk=odd.pk).email == "boris@example.com"
