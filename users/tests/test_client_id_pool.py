"""Bank client ids come from the team's pool: first free one, a clear 409 when none is left."""

import pytest

from users.exceptions import ClientIdPoolExhausted
from users.models import User
from users.services import client_id_pool, user_create


@pytest.mark.django_db
def test_pool_is_the_team_ids_in_order(settings):
    settings.BANK_TEAM_ID = "team999"
    settings.BANK_CLIENT_POOL_SIZE = 3

    assert client_id_pool() == ["team999-1", "team999-2", "team999-3"]


@pytest.mark.django_db
def test_registration_takes_the_first_free_id_including_gaps(settings, make_user):
    settings.BANK_CLIENT_POOL_SIZE = 3
    first, second = make_user(), make_user()
    first.delete()

    third = make_user()

    assert second.external_client_id == f"{settings.BANK_TEAM_ID}-2"
    assert third.external_client_id == f"{settings.BANK_TEAM_ID}-1"


@pytest.mark.django_db
def test_exhausted_pool_is_a_409_and_creates_nothing(settings, make_user, api_client):
    settings.BANK_CLIENT_POOL_SIZE = 2
    make_user(), make_user()

    with pytest.raises(ClientIdPoolExhausted):
        user_create(email="late@example.com", phone=None, password="A-strong-pass-2026")
    response = api_client.post(
        "/api/auth/register",
        {"email": "late2@example.com", "password": "A-strong-pass-2026"},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "client_id_pool_exhausted"
    assert User.objects.count() == 2


@pytest.mark.django_db
def test_staff_created_without_client_id_do_not_consume_the_pool(settings, make_user):
    settings.BANK_CLIENT_POOL_SIZE = 1
    User.objects.create_superuser(email="admin@example.com", password="x-Admin-pass-1")

    assert make_user().external_client_id == f"{settings.BANK_TEAM_ID}-1"
