"""Who the user is at a bank (the connection's client id): given when connecting, else a demo
client FinTrack proposes; someone else's client, a malformed id or an unknown bank is a clear 4xx
that changes nothing; a client the bank does not know (the worker's consent request, issue 21)
ends the connect in `error` (bank_client_unknown) with the old client back; only demo clients
are self-signed."""

import pytest
import responses
from responses import matchers

from audit.models import AuditEvent
from banking.models import BankConnection, ConnectionStatus
from banking.tests.factories import client_id_give, client_id_of
from consents.models import Consent, ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus
from sync.tests import fakebank as fb
from sync.tests.ground_truth import assert_equals_ground_truth
from users.models import ConnectRequest, OnboardingFlow

APPROVED = {
    "request_id": "req-1",
    "consent_id": "consent-1",
    "status": "approved",
    "message": "Согласие одобрено автоматически",
    "created_at": "2025-11-26T09:30:59.151865",
    "auto_approved": True,
}
PENDING = {
    "request_id": "req-2",
    "status": "pending",
    "message": "Запрос отправлен на одобрение",
    "created_at": "2025-11-26T09:30:59.151865",
    "auto_approved": False,
}
PRODUCTS_APPROVED = {
    "request_id": "pagcr-1",
    "consent_id": "pagc-1",
    "status": "approved",
    "auto_approved": True,
    "message": "ok",
    "valid_until": "2026-11-26T09:30:59Z",
}


@pytest.fixture
def bank(db, settings, monkeypatch, auth_client, django_capture_on_commit_callbacks):
    """The faked VBank; each request's after-commit work runs as it ends, as a worker would
    take the connect's task once the request committed (the first syncs' messages are not sent:
    their bank calls are the sync's tests')."""
    from sync import services as sync_services

    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.DEMO_BANK_CLIENTS = True
    settings.DEMO_BANK_CLIENT_SELF_SIGN = True
    monkeypatch.setattr(sync_services, "sync_run_send", lambda *, sync_run_id: True)
    post = auth_client.post

    def post_then_work(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return post(*args, **kwargs)

    monkeypatch.setattr(auth_client, "post", post_then_work)


@pytest.fixture
def bank_http():
    """The faked VBank: every registered answer must be used, and nothing else is asked."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def _consent_requests(bank_http, *, client_id: str, accounts=APPROVED) -> None:
    """Both consent requests, answered only when they name `client_id`."""
    bank_http.add(
        responses.POST,
        f"{fb.BASE}/account-consents/request",
        json=accounts,
        match=[matchers.json_params_matcher({"client_id": client_id}, strict_match=False)],
    )
    bank_http.add(
        responses.POST,
        f"{fb.BASE}/product-agreement-consents/request",
        json=PRODUCTS_APPROVED,
        match=[matchers.query_param_matcher({"client_id": client_id})],
    )


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"} and body["code"] == code
    assert body["message"]
    return body


def _stored() -> dict:
    """Everything a refused connect must leave as it was."""
    return {
        "connections": sorted(
            BankConnection.objects.values_list(
                "user_id", "bank_code", "client_id", "client_id_is_demo", "status"
            )
        ),
        "consents": Consent.objects.count(),
        "runs": SyncRun.objects.count(),
        "audit": AuditEvent.objects.count(),
        "flows": OnboardingFlow.objects.count(),
    }


# --- A demo client, proposed ----------------------------------------------------------------


def test_connect_without_a_client_id_takes_the_proposed_demo_client(auth_client, bank, bank_http):
    before = {b["bank_code"]: b for b in auth_client.get("/api/banks").json()}
    assert (before["vbank"]["client_id"], before["vbank"]["proposed_client_id"]) == (
        "",
        "team260-1",
    )
    assert not BankConnection.objects.exists()  # proposing is a read
    _consent_requests(bank_http, client_id="team260-1")

    response = auth_client.post("/api/banks/vbank/connect")

    assert response.status_code == 202, response.content
    connection = BankConnection.objects.get(user=auth_client.user, bank_code="vbank")
    assert (connection.client_id, connection.client_id_is_demo) == ("team260-1", True)
    after = {b["bank_code"]: b for b in auth_client.get("/api/banks").json()}
    assert (after["vbank"]["client_id"], after["vbank"]["proposed_client_id"]) == (
        "team260-1",
        None,
    )
    event = AuditEvent.objects.get(action="connection.client_set")
    assert event.details == {"from": "", "to": "team260-1", "is_demo": True}


def test_the_proposal_skips_clients_other_users_hold(auth_client, bank, bank_http, make_user):
    make_user(email="boris@example.com", client_id="team260-1")
    client_id_give(user=make_user(email="vera@example.com"), client_id="team260-2",
                   bank_codes=["sbank"])  # fmt: skip
    _consent_requests(bank_http, client_id="team260-3")

    response = auth_client.post("/api/banks/vbank/connect")

    assert response.status_code == 202, response.content
    assert client_id_of(user=auth_client.user, bank_code="vbank") == "team260-3"


def test_without_demo_clients_a_connect_must_say_who_the_user_is(auth_client, bank, settings):
    settings.DEMO_BANK_CLIENTS = False
    banks = {b["bank_code"]: b for b in auth_client.get("/api/banks").json()}
    before = _stored()

    with responses.RequestsMock(assert_all_requests_are_fired=True) as nothing_asked:
        response = auth_client.post("/api/banks/vbank/connect")

    body = _error(response, 400, "validation_error")
    assert list(body["extra"]["fields"]) == ["client_id"]
    assert "Virtual Bank" in body["extra"]["fields"]["client_id"][0]
    assert banks["vbank"]["proposed_client_id"] is None
    assert len(nothing_asked.calls) == 0
    assert _stored()["consents"] == before["consents"] == 0
    assert not BankConnection.objects.filter(client_id__gt="").exists()


# --- A client the user gives ---------------------------------------------------------------


def test_a_client_the_user_gives_is_the_connections_and_is_kept(auth_client, bank, bank_http):
    _consent_requests(bank_http, client_id="team260-57")

    response = auth_client.post(
        "/api/banks/vbank/connect", {"client_id": "team260-57"}, format="json"
    )

    assert response.status_code == 202, response.content
    connection = BankConnection.objects.get(user=auth_client.user, bank_code="vbank")
    assert (connection.client_id, connection.client_id_is_demo) == ("team260-57", False)
    # Connecting again without a client id keeps the client (the bank is connected: 409).
    BankConnection.objects.filter(pk=connection.pk).update(status=ConnectionStatus.READY)
    again = auth_client.post("/api/banks/vbank/connect")
    _error(again, 409, "already_connected")
    assert client_id_of(user=auth_client.user, bank_code="vbank") == "team260-57"


def test_someone_elses_client_id_is_a_409_that_changes_nothing_and_names_no_one(
    auth_client, bank, make_user
):
    boris = make_user(email="boris@example.com", client_id="team260-7")
    client_id_give(user=auth_client.user, client_id="team260-8", bank_codes=["vbank"])
    before = _stored()

    with responses.RequestsMock(assert_all_requests_are_fired=True) as nothing_asked:
        response = auth_client.post(
            "/api/banks/vbank/connect", {"client_id": "team260-7"}, format="json"
        )
        onboarding = auth_client.post(
            "/api/onboarding/start",
            {"banks": ["abank", {"bank_code": "vbank", "client_id": "team260-7"}]},
            format="json",
        )

    body = _error(response, 409, "client_id_taken")
    assert body["extra"] == {"bank_code": "vbank"}
    assert "boris" not in response.content.decode()
    assert str(boris.pk) not in body["message"]
    _error(onboarding, 409, "client_id_taken")
    assert len(nothing_asked.calls) == 0
    assert _stored() == before


@pytest.mark.parametrize(
    "client_id",
    ["", "   ", "-team260-1", ".x", "team 260", "team260/1", "клиент-1", "a" * 65, None, ["x"]],
)
def test_a_malformed_client_id_is_a_400_on_the_field_and_changes_nothing(
    auth_client, bank, client_id
):
    before = _stored()

    with responses.RequestsMock(assert_all_requests_are_fired=True) as nothing_asked:
        response = auth_client.post(
            "/api/banks/vbank/connect", {"client_id": client_id}, format="json"
        )
        onboarding = auth_client.post(
            "/api/onboarding/start",
            {"banks": [{"bank_code": "vbank", "client_id": client_id}]},
            format="json",
        )

    body = _error(response, 400, "validation_error")
    assert list(body["extra"]["fields"]) == ["client_id"]
    assert list(_error(onboarding, 400, "validation_error")["extra"]["fields"]) == ["banks"]
    assert len(nothing_asked.calls) == 0
    assert _stored() == before


def test_an_unknown_bank_is_a_404_with_a_client_id_too(auth_client, bank):
    before = _stored()

    response = auth_client.post(
        "/api/banks/zbank/connect", {"client_id": "team260-57"}, format="json"
    )
    onboarding = auth_client.post(
        "/api/onboarding/start", {"banks": [{"bank_code": "zbank"}]}, format="json"
    )

    assert _error(response, 404, "unknown_bank")["extra"] == {"bank_code": "zbank"}
    _error(onboarding, 400, "validation_error")
    assert _stored() == before


def _banks_seen(auth_client) -> list[dict]:
    """GET /api/banks as the user sees it (a read: proposals are not reserved)."""
    response = auth_client.get("/api/banks")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("had", ["", "team260-5"])
def test_a_client_the_bank_does_not_know_ends_the_connect_in_error_with_the_old_client_back(
    auth_client, bank, bank_http, had
):
    if had:
        client_id_give(user=auth_client.user, client_id=had, bank_codes=["vbank"])
    before = _stored()
    seen_before = {b["bank_code"]: b for b in _banks_seen(auth_client)}
    bank_http.add(
        responses.POST,
        f"{fb.BASE}/account-consents/request",
        status=404,
        json={"detail": "Client team260-99 not found"},
        match=[matchers.json_params_matcher({"client_id": "team260-99"}, strict_match=False)],
    )

    response = auth_client.post(
        "/api/banks/vbank/connect", {"client_id": "team260-99"}, format="json"
    )

    assert response.status_code == 202, response.content
    # Who connects next is as before: the old client (or none, and the same proposal).
    assert client_id_of(user=auth_client.user, bank_code="vbank") == had
    seen = {b["bank_code"]: b for b in _banks_seen(auth_client)}
    assert (seen["vbank"]["client_id"], seen["vbank"]["proposed_client_id"]) == (
        seen_before["vbank"]["client_id"],
        seen_before["vbank"]["proposed_client_id"],
    )
    assert (seen["vbank"]["status"], seen["vbank"]["status_reason"]) == (
        ConnectionStatus.ERROR,
        "bank_client_unknown",
    )
    assert "knows no client 'team260-99'" in seen["vbank"]["status_message"]
    request = ConnectRequest.objects.get()
    assert (request.status, request.error_code) == ("failed", "bank_client_unknown")
    after = _stored()
    assert (
        (after["consents"], after["runs"], after["flows"])
        == (0, 0, 0)
        == (
            before["consents"],
            before["runs"],
            before["flows"],
        )
    )


def test_changing_the_client_while_a_consent_is_held_is_a_409(auth_client, bank):
    client_id_give(user=auth_client.user, client_id="team260-5", bank_codes=["vbank"])
    fb.authorised_consents(auth_client.user)
    before = _stored()

    with responses.RequestsMock(assert_all_requests_are_fired=True) as nothing_asked:
        response = auth_client.post(
            "/api/onboarding/start",
            {"banks": [{"bank_code": "vbank", "client_id": "team260-6"}]},
            format="json",
        )

    body = _error(response, 409, "client_id_locked")
    assert body["extra"] == {"bank_code": "vbank"}
    assert len(nothing_asked.calls) == 0
    assert _stored() == before


def test_two_client_ids_for_one_bank_in_onboarding_are_a_400(auth_client, bank):
    response = auth_client.post(
        "/api/onboarding/start",
        {
            "banks": [
                {"bank_code": "vbank", "client_id": "team260-5"},
                {"bank_code": "vbank", "client_id": "team260-6"},
            ]
        },
        format="json",
    )

    assert _error(response, 400, "validation_error")["extra"]["fields"] == {
        "banks": ["vbank is given with two client ids."]
    }
    assert not OnboardingFlow.objects.exists()


def test_onboarding_connects_each_bank_as_the_client_given_there(auth_client, bank, bank_http):
    _consent_requests(bank_http, client_id="team260-57")

    response = auth_client.post(
        "/api/onboarding/start",
        {"banks": [{"bank_code": "vbank", "client_id": "team260-57"}]},
        format="json",
    )

    assert response.status_code == 202, response.content
    connection = BankConnection.objects.get(user=auth_client.user, bank_code="vbank")
    assert (connection.client_id, connection.client_id_is_demo) == ("team260-57", False)
    assert response.json()["banks"][0]["connection_status"] != ConnectionStatus.ERROR


# --- Self-signing is for demo clients only -----------------------------------------------------


def test_a_client_the_user_gave_is_told_to_approve_in_the_bank_and_cannot_self_sign(
    auth_client, bank, bank_http
):
    _consent_requests(bank_http, client_id="team260-57", accounts=PENDING)

    response = auth_client.post(
        "/api/banks/vbank/connect", {"client_id": "team260-57"}, format="json"
    )

    assert response.status_code == 202, response.content
    action = _banks_seen(auth_client)[0]["action_required"]  # the worker's outcome: the status
    assert action["approve_demo_url"] is None
    assert "Open Virtual Bank and approve" in action["message"]
    consent = Consent.objects.get(kind=ConsentKind.ACCOUNTS)
    before = _stored()

    refused = auth_client.post(f"/api/consents/{consent.pk}/approve-demo")

    body = _error(refused, 403, "not_a_demo_client")
    assert "Virtual Bank's app" in body["message"]
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.PENDING
    assert _stored() == before


def test_a_demo_client_keeps_its_demo_approval(auth_client, bank, bank_http):
    _consent_requests(bank_http, client_id="team260-1", accounts=PENDING)

    response = auth_client.post("/api/banks/vbank/connect")

    assert response.status_code == 202, response.content
    consent = Consent.objects.get(kind=ConsentKind.ACCOUNTS)
    url = f"/api/consents/{consent.pk}/approve-demo"
    assert (
        auth_client.get("/api/banks/vbank/status").json()["action_required"]["approve_demo_url"]
        == url
    )


# --- Against the sandbox banks ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_connecting_as_a_client_number_the_user_gives_works_end_to_end(sandbox_banks, auth_client):
    from sandbox import clock
    from sandbox.live import persona_of
    from sandbox.volume import data_key

    client_id = "team260-57"
    persona = persona_of(data_key(client_id, clock.state().anchor))
    bank_code = next(code for code in ("vbank", "abank") if code in persona.banks)

    response = auth_client.post(
        f"/api/banks/{bank_code}/connect", {"client_id": client_id}, format="json"
    )

    assert response.status_code == 202, response.content
    assert response.json()["sync_started"] is True
    connection = BankConnection.objects.get(user=auth_client.user, bank_code=bank_code)
    assert (connection.client_id, connection.client_id_is_demo) == (client_id, False)
    assert connection.status == ConnectionStatus.READY, connection.last_error
    assert SyncRun.objects.get(connection=connection).status == SyncStatus.SUCCEEDED
    assert_equals_ground_truth(user=auth_client.user, bank_code=bank_code)
    banks = {b["bank_code"]: b for b in auth_client.get("/api/banks").json()}
    assert (banks[bank_code]["client_id"], banks[bank_code]["status"]) == (client_id, "ready")


@pytest.mark.django_db(transaction=True)
def test_a_client_the_sandbox_does_not_know_ends_in_error_and_nothing_is_kept(
    sandbox_banks, auth_client
):
    before = _stored()

    response = auth_client.post(
        "/api/banks/vbank/connect", {"client_id": "someone-else-1"}, format="json"
    )

    # The worker (eager: it ran once the request committed) got the sandbox's 404.
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["connection_status"], body["status_reason"]) == (
        ConnectionStatus.ERROR,
        "bank_client_unknown",
    )
    assert body["connect_request"]["error_code"] == "bank_client_unknown"
    assert client_id_of(user=auth_client.user, bank_code="vbank") == ""
    vbank = next(b for b in _banks_seen(auth_client) if b["bank_code"] == "vbank")
    assert (vbank["client_id"], vbank["status"]) == ("", ConnectionStatus.ERROR)
    after = _stored()
    assert (after["consents"], after["runs"]) == (before["consents"], before["runs"]) == (0, 0)
