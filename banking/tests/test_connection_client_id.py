"""The connection's bank client id: the format, one user per client at each bank (the unique
constraint settles a race), the lock while a consent is held, and the demo client proposed."""

import threading

import pytest
from django.db import connection as db_connection
from django.db import connections

from audit.models import AuditEvent
from banking.exceptions import ClientIdLocked, ClientIdTaken, UnknownBank
from banking.models import BankConnection
from banking.services import connections as connection_services
from banking.services.connections import (
    connection_client_id_set,
    connection_demo_client_id_assign,
    connection_get_or_create,
    demo_client_id_propose,
    demo_client_ids_propose,
)
from banking.tests.factories import client_id_give
from fintrack.core.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _demo(settings):
    settings.DEMO_BANK_CLIENTS = True
    settings.BANK_TEAM_ID = "team260"
    settings.VBANK_TEAM_ID = settings.ABANK_TEAM_ID = settings.SBANK_TEAM_ID = ""


def _connection(user, bank_code="vbank"):
    return connection_get_or_create(user=user, bank_code=bank_code)


# --- Setting it -------------------------------------------------------------------------------


@pytest.mark.parametrize("client_id", ["team260-57", "a", "A.b_c-9", "x" * 64, "57"])
def test_a_well_formed_client_id_is_stored_and_audited(user, client_id):
    connection = connection_client_id_set(
        connection=_connection(user), client_id=client_id, is_demo=False
    )

    stored = BankConnection.objects.get(pk=connection.pk)
    assert (stored.client_id, stored.client_id_is_demo) == (client_id, False)
    event = AuditEvent.objects.get(action="connection.client_set")
    assert (event.user_id, event.bank_code, event.details) == (
        user.pk,
        "vbank",
        {"from": "", "to": client_id, "is_demo": False},
    )


@pytest.mark.parametrize(
    "client_id", ["-a", ".a", "_a", "a b", "a/b", "a\n", "ä-1", "x" * 65, None, 57]
)
def test_a_malformed_client_id_is_refused_on_the_field(user, client_id):
    connection = _connection(user)

    with pytest.raises(ValidationFailed) as refused:
        connection_client_id_set(connection=connection, client_id=client_id, is_demo=False)

    assert list(refused.value.extra["fields"]) == ["client_id"]
    assert BankConnection.objects.get(pk=connection.pk).client_id == ""
    assert not AuditEvent.objects.exists()


def test_the_same_client_at_another_bank_is_someone_elses_only_there(user, make_user):
    boris = make_user(email="boris@example.com")
    connection_client_id_set(connection=_connection(boris), client_id="team260-7", is_demo=False)

    with pytest.raises(ClientIdTaken) as taken:
        connection_client_id_set(connection=_connection(user), client_id="team260-7", is_demo=False)
    abank = connection_client_id_set(
        connection=_connection(user, "abank"), client_id="team260-7", is_demo=False
    )

    assert taken.value.http_status == 409 and taken.value.extra == {"bank_code": "vbank"}
    assert "boris" not in taken.value.message
    assert BankConnection.objects.get(user=user, bank_code="vbank").client_id == ""
    assert abank.client_id == "team260-7"


def test_the_unique_constraint_settles_two_users_claiming_one_client(user, make_user, monkeypatch):
    """The check said free (the other user's write came after it): the database refuses."""
    boris = make_user(email="boris@example.com")
    mine = _connection(user)
    BankConnection.objects.filter(pk=_connection(boris).pk).update(client_id="team260-7")
    monkeypatch.setattr(connection_services, "client_id_check", lambda **kwargs: None)

    with pytest.raises(ClientIdTaken):
        connection_client_id_set(connection=mine, client_id="team260-7", is_demo=False)

    assert BankConnection.objects.get(pk=mine.pk).client_id == ""
    assert mine.client_id == ""
    assert not AuditEvent.objects.exists()


def test_a_held_consent_locks_the_client_but_not_its_own_id(user):
    connection = connection_client_id_set(
        connection=_connection(user), client_id="team260-5", is_demo=True
    )

    with pytest.raises(ClientIdLocked):
        connection_client_id_set(
            connection=connection, client_id="team260-6", is_demo=False, consent_held=True
        )
    same = connection_client_id_set(
        connection=connection, client_id="team260-5", is_demo=True, consent_held=True
    )

    assert same.client_id == "team260-5"
    assert BankConnection.objects.get(pk=connection.pk).client_id == "team260-5"
    assert AuditEvent.objects.filter(action="connection.client_set").count() == 1


# --- The demo client proposed ---------------------------------------------------------------


def test_the_proposal_is_the_first_number_no_one_holds_gaps_included(user, make_user):
    for number, email in ((1, "a@example.com"), (2, "b@example.com"), (4, "c@example.com")):
        client_id_give(user=make_user(email=email), client_id=f"team260-{number}")
    client_id_give(user=make_user(email="d@example.com"), client_id="team260-3",
                   bank_codes=["sbank"])  # fmt: skip
    client_id_give(user=make_user(email="e@example.com"), client_id="team260-05",
                   bank_codes=["vbank"], is_demo=False)  # fmt: skip
    rows_before = BankConnection.objects.count()

    # 3 is held at SBank by another user: a demo user is one persona at every bank, so not 3.
    assert demo_client_id_propose(bank_code="vbank", user=user) == "team260-5"
    assert demo_client_id_propose(bank_code="vbank") == "team260-5"
    assert BankConnection.objects.count() == rows_before  # a read


def test_the_proposal_prefers_the_users_own_number_at_another_bank(user, make_user):
    client_id_give(user=user, client_id="team260-9", bank_codes=["abank"], is_demo=False)
    client_id_give(user=make_user(email="b@example.com"), client_id="team260-9",
                   bank_codes=["sbank"])  # fmt: skip

    proposals = demo_client_ids_propose(bank_codes=["vbank", "sbank"], user=user)

    assert proposals == {"vbank": "team260-9", "sbank": "team260-1"}


def test_there_is_no_upper_bound_on_the_number(user, make_user):
    held = [
        BankConnection(
            user=make_user(email=f"u{n}@example.com"),
            bank_code="vbank",
            client_id=f"team260-{n}",
            client_id_is_demo=True,
        )
        for n in range(1, 31)
    ]
    BankConnection.objects.bulk_create(held)

    assert demo_client_id_propose(bank_code="vbank", user=user) == "team260-31"


def test_each_bank_proposes_under_its_own_team_id(user, settings):
    settings.ABANK_TEAM_ID = "team999"

    assert demo_client_ids_propose(bank_codes=["vbank", "abank"], user=user) == {
        "vbank": "team260-1",
        "abank": "team999-1",
    }


def test_without_demo_clients_nothing_is_proposed_and_assigning_asks_for_the_id(user, settings):
    settings.DEMO_BANK_CLIENTS = False
    connection = _connection(user)

    assert demo_client_id_propose(bank_code="vbank", user=user) is None
    with pytest.raises(ValidationFailed) as refused:
        connection_demo_client_id_assign(connection=connection)
    assert list(refused.value.extra["fields"]) == ["client_id"]
    assert BankConnection.objects.get(pk=connection.pk).client_id == ""


def test_an_unknown_bank_proposes_nothing_but_a_404(user):
    with pytest.raises(UnknownBank):
        demo_client_id_propose(bank_code="zbank", user=user)


def test_assigning_takes_the_next_proposal_when_the_first_was_taken_meanwhile(
    user, make_user, monkeypatch
):
    """Another user took the proposed client between our read and our write."""
    boris = make_user(email="boris@example.com")
    real_propose = connection_services.demo_client_ids_propose
    calls = []

    def propose_then_lose_the_race(**kwargs):
        proposals = real_propose(**kwargs)
        if not calls:
            client_id_give(user=boris, client_id=proposals["vbank"], bank_codes=["vbank"])
        calls.append(proposals)
        return proposals

    monkeypatch.setattr(connection_services, "demo_client_ids_propose", propose_then_lose_the_race)

    connection = connection_demo_client_id_assign(connection=_connection(user))

    assert [proposal["vbank"] for proposal in calls] == ["team260-1", "team260-2"]
    assert (connection.client_id, connection.client_id_is_demo) == ("team260-2", True)


@pytest.mark.django_db(transaction=True)
def test_users_connecting_at_once_each_get_their_own_demo_client(make_user):
    if db_connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises the writers")
    threads_count = 6
    users = [make_user(email=f"racer{n}@example.com") for n in range(threads_count)]
    rows = [_connection(racer) for racer in users]
    start = threading.Barrier(threads_count)
    results, errors = [], []

    def assign(connection):
        try:
            start.wait(timeout=30)
            results.append(connection_demo_client_id_assign(connection=connection).client_id)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=assign, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    stored = sorted(BankConnection.objects.values_list("client_id", flat=True))
    assert len(set(results)) == threads_count
    assert stored == sorted(results)
    assert set(results) == {f"team260-{n}" for n in range(1, threads_count + 1)}
