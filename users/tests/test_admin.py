"""User admin: staff edit the bank client id; connections and the latest snapshot are shown."""

from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.models import AnalyticsSnapshot
from banking.models import ConnectionStatus
from banking.tests import factories
from users.models import User


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(
        django_user_model.objects.create_superuser(email="ops@example.com", password="Ops-2026!x")
    )
    return client


def change_form_data(user: User, connections: int, **changes) -> dict:
    data = {
        "email": user.email or "",
        "phone": user.phone or "",
        "external_client_id": user.external_client_id or "",
        "is_active": "on",
        "bank_connections-TOTAL_FORMS": str(connections),
        "bank_connections-INITIAL_FORMS": str(connections),
        "bank_connections-MIN_NUM_FORMS": "0",
        "bank_connections-MAX_NUM_FORMS": "1000",
    }
    for index, connection in enumerate(user.bank_connections.order_by("pk")):
        data[f"bank_connections-{index}-id"] = str(connection.pk)
        data[f"bank_connections-{index}-user"] = str(user.pk)
    data.update(changes)
    return data


def test_staff_can_change_the_bank_client_id(staff_client, user):
    factories.make_connection(user=user, bank_code="vbank")
    url = reverse("admin:users_user_change", args=[user.pk])

    response = staff_client.post(url, change_form_data(user, 1, external_client_id="team260-7"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.external_client_id == "team260-7"


def test_a_client_id_taken_by_another_user_is_refused(staff_client, user, make_user):
    other = make_user(email="boris@example.com")
    url = reverse("admin:users_user_change", args=[user.pk])
    before = user.external_client_id

    response = staff_client.post(
        url, change_form_data(user, 0, external_client_id=other.external_client_id)
    )

    assert response.status_code == 200
    assert "external_client_id" in response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.external_client_id == before


def test_user_page_shows_connections_and_the_latest_snapshot(staff_client, user):
    vbank = factories.make_connection(user=user, bank_code="vbank")
    factories.make_connection(user=user, bank_code="sbank", status=ConnectionStatus.ERROR)
    AnalyticsSnapshot.objects.create(user=user, sts_amount=Decimal("100.00"), health_score=40)
    latest = AnalyticsSnapshot.objects.create(
        user=user, sts_amount=Decimal("8450.00"), health_score=72, health_band="good"
    )

    html = staff_client.get(reverse("admin:users_user_change", args=[user.pk])).content.decode()

    assert reverse("admin:banking_bankconnection_change", args=[vbank.pk]) in html
    assert "Error" in html
    assert reverse("admin:analytics_analyticssnapshot_change", args=[latest.pk]) in html
    assert "save-to-spend 8450.00 RUB" in html
    assert "health 72 (good)" in html
    assert "save-to-spend 100.00" not in html


def test_user_list_shows_each_users_banks(staff_client, user):
    factories.make_connection(user=user, bank_code="vbank")
    factories.make_connection(user=user, bank_code="abank", status=ConnectionStatus.ERROR)

    html = staff_client.get(reverse("admin:users_user_changelist")).content.decode()

    assert "abank (error), vbank (ready)" in html
