"""User admin: connections (with their bank client ids) and the latest snapshot are shown; a user
is found by a bank client id."""

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


def test_staff_edit_a_user_and_the_bank_clients_stay_the_connections(staff_client, user):
    factories.client_id_give(user=user, client_id="team260-7", bank_codes=["vbank"])
    url = reverse("admin:users_user_change", args=[user.pk])

    page = staff_client.get(url).content.decode()
    response = staff_client.post(url, change_form_data(user, 1, phone="+79001234567"))

    assert "external_client_id" not in page
    assert "team260-7" in page  # the connection inline shows who the user is at VBank
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.phone == "+79001234567"
    assert factories.client_id_of(user=user, bank_code="vbank") == "team260-7"


def test_a_user_is_found_by_the_exact_bank_client_id_of_a_connection(staff_client, make_user):
    anna = make_user(email="anna@example.com", client_id="team260-17")
    make_user(email="boris@example.com", client_id="team260-171")

    page = staff_client.get(reverse("admin:users_user_changelist"), {"q": "team260-17"})

    assert list(page.context["cl"].queryset) == [anna]
    assert "vbank team260-17 (not_connected)" in page.content.decode()


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
    factories.make_connection(user=user, bank_code="vbank", client_id="team260-3")
    factories.make_connection(user=user, bank_code="abank", status=ConnectionStatus.ERROR)
    factories.make_connection(user=user, bank_code="sbank", client_id="")

    html = staff_client.get(reverse("admin:users_user_changelist")).content.decode()

    # abank's client is the one a connect would propose: the user's own number elsewhere.
    assert "abank team260-3 (error), sbank (ready), vbank team260-3 (ready)" in html
