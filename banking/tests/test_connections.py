"""Bank connections: the transition table, freshness, and the banks API."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from banking.exceptions import InvalidConnectionTransition, UnknownBank
from banking.models import BankConnection, ConnectionStatus
from banking.selectors.connections import connection_get, connection_list
from banking.services.connections import (
    ALLOWED_TRANSITIONS,
    connection_consent_expiry_set,
    connection_get_or_create,
    connection_mark_synced,
    connection_transition,
)
from consents.models import Consent, ConsentKind, ConsentStatus

S = ConnectionStatus
ALL = [
    S.NOT_CONNECTED,
    S.CONSENT_PENDING,
    S.CONSENT_REQUIRED,
    S.SYNC_IN_PROGRESS,
    S.RETRYING,
    S.READY,
    S.ERROR,
]
EXPECTED_ALLOWED = {
    (S.NOT_CONNECTED, S.CONSENT_PENDING),
    (S.NOT_CONNECTED, S.CONSENT_REQUIRED),
    (S.NOT_CONNECTED, S.SYNC_IN_PROGRESS),
    (S.NOT_CONNECTED, S.READY),
    (S.NOT_CONNECTED, S.ERROR),
    (S.CONSENT_PENDING, S.SYNC_IN_PROGRESS),
    (S.CONSENT_PENDING, S.READY),
    (S.CONSENT_PENDING, S.ERROR),
    (S.CONSENT_PENDING, S.NOT_CONNECTED),
    (S.CONSENT_PENDING, S.CONSENT_PENDING),
    (S.CONSENT_PENDING, S.CONSENT_REQUIRED),
    (S.CONSENT_PENDING, S.RETRYING),  # a connect under way whose bank is down (issue 21)
    (S.CONSENT_REQUIRED, S.CONSENT_PENDING),
    (S.CONSENT_REQUIRED, S.CONSENT_REQUIRED),
    (S.CONSENT_REQUIRED, S.SYNC_IN_PROGRESS),
    (S.CONSENT_REQUIRED, S.READY),
    (S.CONSENT_REQUIRED, S.ERROR),
    (S.CONSENT_REQUIRED, S.NOT_CONNECTED),
    (S.SYNC_IN_PROGRESS, S.READY),
    (S.SYNC_IN_PROGRESS, S.ERROR),
    (S.SYNC_IN_PROGRESS, S.CONSENT_PENDING),
    (S.SYNC_IN_PROGRESS, S.CONSENT_REQUIRED),
    (S.SYNC_IN_PROGRESS, S.RETRYING),
    (S.RETRYING, S.SYNC_IN_PROGRESS),
    (S.RETRYING, S.RETRYING),
    (S.RETRYING, S.READY),
    (S.RETRYING, S.ERROR),
    (S.RETRYING, S.CONSENT_PENDING),
    (S.RETRYING, S.CONSENT_REQUIRED),
    (S.READY, S.SYNC_IN_PROGRESS),
    (S.READY, S.CONSENT_PENDING),
    (S.READY, S.CONSENT_REQUIRED),
    (S.READY, S.ERROR),
    (S.READY, S.NOT_CONNECTED),
    (S.ERROR, S.SYNC_IN_PROGRESS),
    (S.ERROR, S.CONSENT_PENDING),
    (S.ERROR, S.CONSENT_REQUIRED),
    (S.ERROR, S.READY),
    (S.ERROR, S.NOT_CONNECTED),
    (S.ERROR, S.ERROR),
}


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {
        "vbank": {"name": "Virtual Bank", "base_url": "https://vbank.test"},
        "abank": {"name": "Awesome Bank", "base_url": "https://abank.test"},
        "sbank": {"name": "Smart Bank", "base_url": "https://sbank.test"},
    }


def test_the_table_is_exactly_the_agreed_one():
    table = {(src, dst) for src, targets in ALLOWED_TRANSITIONS.items() for dst in targets}
    assert table == EXPECTED_ALLOWED


@pytest.mark.django_db
def test_get_or_create_makes_one_not_connected_row_per_bank(user):
    first = connection_get_or_create(user=user, bank_code="vbank")
    again = connection_get_or_create(user=user, bank_code="vbank")

    assert first.pk == again.pk
    assert first.status == S.NOT_CONNECTED
    assert BankConnection.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_get_or_create_refuses_an_unknown_bank(user):
    with pytest.raises(UnknownBank):
        connection_get_or_create(user=user, bank_code="zbank")
    assert not BankConnection.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("src", "dst"), sorted(EXPECTED_ALLOWED))
def test_allowed_transitions_change_status_and_are_audited(user, src, dst):
    connection = BankConnection.objects.create(user=user, bank_code="vbank", status=src)

    result = connection_transition(connection=connection, to_status=dst)

    assert result.status == dst
    assert connection.status == dst
    assert BankConnection.objects.get(pk=connection.pk).status == dst
    event = AuditEvent.objects.get(action="connection.status_changed")
    assert event.details == {"from": src, "to": dst, "error": ""}
    assert (event.user_id, event.bank_code, event.object_id) == (
        user.pk,
        "vbank",
        str(connection.pk),
    )


REFUSED = sorted({(src, dst) for src in ALL for dst in ALL} - EXPECTED_ALLOWED)


@pytest.mark.django_db
@pytest.mark.parametrize(("src", "dst"), REFUSED)
def test_refused_transitions_raise_and_change_nothing(user, src, dst):
    connection = BankConnection.objects.create(
        user=user, bank_code="vbank", status=src, last_error="old"
    )

    with pytest.raises(InvalidConnectionTransition) as caught:
        connection_transition(connection=connection, to_status=dst, error="boom")

    assert caught.value.http_status == 409
    assert caught.value.extra == {"from_status": src, "to_status": dst}
    stored = BankConnection.objects.get(pk=connection.pk)
    assert (stored.status, stored.last_error) == (src, "old")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_an_unknown_status_is_refused(user):
    connection = connection_get_or_create(user=user, bank_code="vbank")
    with pytest.raises(InvalidConnectionTransition):
        connection_transition(connection=connection, to_status="broken")


@pytest.mark.django_db
def test_an_error_is_kept_then_cleared_by_the_next_good_run(user):
    connection = connection_get_or_create(user=user, bank_code="vbank")
    connection_transition(connection=connection, to_status=S.SYNC_IN_PROGRESS)
    connection_transition(connection=connection, to_status=S.ERROR, error="vbank: HTTP 503")
    assert BankConnection.objects.get(pk=connection.pk).last_error == "vbank: HTTP 503"

    connection_transition(connection=connection, to_status=S.SYNC_IN_PROGRESS)
    stored = BankConnection.objects.get(pk=connection.pk)
    assert (stored.status, stored.last_error) == (S.SYNC_IN_PROGRESS, "")
    connection_transition(connection=connection, to_status=S.READY)
    assert BankConnection.objects.get(pk=connection.pk).status == S.READY


@pytest.mark.django_db
def test_mark_synced_sets_freshness(user):
    connection = connection_get_or_create(user=user, bank_code="vbank")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    connection_mark_synced(connection=connection, succeeded_at=when)

    stored = BankConnection.objects.get(pk=connection.pk)
    assert (stored.last_sync_at, stored.last_success_at) == (when, when)


@pytest.mark.django_db
def test_consent_expiry_is_kept_on_the_connection(user):
    when = timezone.now() + timedelta(days=365)

    connection_consent_expiry_set(user=user, bank_code="sbank", expires_at=when)

    assert BankConnection.objects.get(user=user, bank_code="sbank").consent_expires_at == when


@pytest.mark.django_db
def test_selectors_are_scoped_to_the_user(make_user):
    anna, boris = make_user(), make_user()
    mine = connection_get_or_create(user=anna, bank_code="abank")
    connection_get_or_create(user=boris, bank_code="vbank")

    assert connection_list(user=anna) == [("vbank", None), ("abank", mine), ("sbank", None)]
    assert connection_get(user=anna, bank_code="vbank") is None
    assert connection_get(user=anna, bank_code="abank") == mine
    with pytest.raises(UnknownBank):
        connection_get(user=anna, bank_code="nope")


# --- API ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_banks_api_lists_every_configured_bank_with_this_users_state(auth_client, make_user):
    user = auth_client.user
    other = make_user()
    synced = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    expires = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    BankConnection.objects.create(
        user=user,
        bank_code="vbank",
        status=S.READY,
        last_sync_at=synced,
        last_success_at=synced,
        consent_expires_at=expires,
    )
    BankConnection.objects.create(
        user=user, bank_code="sbank", status=S.ERROR, last_error="sbank: HTTP 503"
    )
    BankConnection.objects.create(user=other, bank_code="abank", status=S.READY)
    consent = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-1",
        expires_at=expires,
    )
    Consent.objects.create(
        user=other, bank_code="abank", kind=ConsentKind.ACCOUNTS, status=ConsentStatus.PENDING
    )

    response = auth_client.get("/api/banks")

    assert response.status_code == 200
    body = response.json()
    assert [(b["bank_code"], b["name"], b["status"]) for b in body] == [
        ("vbank", "Virtual Bank", "ready"),
        ("abank", "Awesome Bank", "not_connected"),
        ("sbank", "Smart Bank", "error"),
    ]
    vbank, abank, sbank = body
    assert vbank["last_sync_at"] == "2026-03-01T12:00:00Z"
    assert vbank["last_success_at"] == "2026-03-01T12:00:00Z"
    assert vbank["consent_expires_at"] == "2027-03-01T12:00:00Z"
    assert vbank["consent"]["id"] == consent.pk
    assert vbank["consent"]["status"] == "authorized"
    assert vbank["consent"]["expires_at"] == "2027-03-01T12:00:00Z"
    assert vbank["product_consent"] is None
    assert abank == {
        "bank_code": "abank",
        "name": "Awesome Bank",
        "status": "not_connected",
        "status_reason": "",
        "status_message": "",
        "next_retry_at": None,
        "last_sync_at": None,
        "last_success_at": None,
        "last_error": "",
        "consent_expires_at": None,
        "consent_state": "none",
        "consent_days_left": None,
        "consent_expiring": False,
        "quarantined_items": 0,
        "consent": None,
        "product_consent": None,
        "client_id": "",
        "proposed_client_id": "team260-1",
        "action_required": None,  # a pending account consent's approval (issue 21)
    }
    assert sbank["last_error"] == "sbank: HTTP 503"


@pytest.mark.django_db
def test_banks_api_query_count_does_not_grow_with_banks(auth_client, django_assert_max_num_queries):
    for code in ("vbank", "abank", "sbank"):
        connection_get_or_create(user=auth_client.user, bank_code=code)
    with django_assert_max_num_queries(4):  # auth user + connections + consents (+ savepoints)
        assert auth_client.get("/api/banks").status_code == 200


@pytest.mark.django_db
def test_bank_status_api_returns_one_bank(auth_client):
    connection_get_or_create(user=auth_client.user, bank_code="sbank")

    response = auth_client.get("/api/banks/sbank/status")

    assert response.status_code == 200
    assert response.json()["bank_code"] == "sbank"
    assert response.json()["status"] == "not_connected"


@pytest.mark.django_db
def test_unknown_bank_code_is_a_404_in_the_standard_shape(auth_client):
    response = auth_client.get("/api/banks/zbank/status")

    assert response.status_code == 404
    assert response.json() == {
        "code": "unknown_bank",
        "message": "Unknown bank 'zbank'.",
        "extra": {"bank_code": "zbank"},
    }


@pytest.mark.django_db
def test_banks_api_requires_authentication(api_client):
    response = api_client.get("/api/banks")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
