"""Renewing, requesting again and the demo approval, asynchronously (issue 21): the web request
checks what needs no bank (4xx, nothing stored), stores a ConnectRequest of its kind and answers
202 without a bank call; a worker (eager in tests, run once the request commits) makes the bank
calls with the task's retries; the same action asked for again while it is under way answers
that one, another action of the bank is a 409."""

import pytest
import responses

from audit.models import AuditEvent
from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from users.models import ConnectRequest

SBANK = "https://sbank.test"
CLIENT = "team260-3"
TOKEN = {"access_token": "tok", "token_type": "bearer", "expires_in": 86400}
ACCOUNTS_ROUTE = f"{SBANK}/account-consents/request"
PRODUCTS_ROUTE = f"{SBANK}/product-agreement-consents/request"
PENDING = {
    "request_id": "req-renewal",
    "status": "pending",
    "message": "Запрос отправлен на одобрение",
    "created_at": "2026-12-01T09:21:07",
    "auto_approved": False,
}
PRODUCTS_APPROVED = {
    "request_id": "pagcr-1",
    "consent_id": "pagc-1",
    "status": "approved",
    "auto_approved": True,
    "valid_until": "2027-12-01T09:31:12Z",
}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {"sbank": {"name": "Smart Bank", "base_url": SBANK}}
    settings.BANK_TEAM_ID = "team260"
    settings.BANK_TEAM_SECRET = "team-secret"
    settings.BANK_MAX_RETRIES = 0
    settings.BANK_TASK_MAX_RETRIES = 0
    settings.DEMO_BANK_CLIENTS = True
    settings.DEMO_BANK_CLIENT_SELF_SIGN = True


@pytest.fixture
def bank():
    """A strict fake bank: every registered answer must be used, anything else is refused."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def polls(monkeypatch):
    """The pending consents' background polls, recorded instead of sent: the consent ids."""
    from users.onboarding import tasks as onboarding_tasks

    sent: list[int] = []
    monkeypatch.setattr(
        onboarding_tasks,
        "pending_consent_poll_later",
        lambda *, consent_id, trigger, attempt: sent.append(consent_id),
    )
    return sent


@pytest.fixture
def connected(auth_client):
    """The user's SBank connection, ready, as demo client CLIENT, with an authorised accounts
    consent (no products consent: a renewal asks for one)."""
    from banking.tests.factories import client_id_give

    client_id_give(user=auth_client.user, client_id=CLIENT, bank_codes=["sbank"])
    connection = BankConnection.objects.get(user=auth_client.user, bank_code="sbank")
    BankConnection.objects.filter(pk=connection.pk).update(status=ConnectionStatus.READY)
    old = Consent.objects.create(
        user=auth_client.user,
        bank_code="sbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-old",
    )
    return old


def _consent_posts(bank) -> list[str]:
    """The consent requests and signs sent to the bank (POSTs other than the logins)."""
    urls = [c.request.url.split("?")[0] for c in bank.calls if c.request.method == "POST"]
    return [url for url in urls if "/auth/" not in url]


def _status_moves() -> list[str]:
    events = AuditEvent.objects.filter(action="connection.status_changed").order_by("pk")
    return [event.details["to"] for event in events]


def test_renew_answers_202_without_a_bank_call_and_a_worker_renews(
    auth_client, connected, bank, polls, django_capture_on_commit_callbacks
):
    bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank.post(ACCOUNTS_ROUTE, json=PENDING)
    bank.post(PRODUCTS_ROUTE, json=PRODUCTS_APPROVED)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = auth_client.post("/api/banks/sbank/consents/renew")
        calls_in_the_request = len(bank.calls)

    assert response.status_code == 202, response.content
    assert calls_in_the_request == 0
    body = response.json()
    request = ConnectRequest.objects.get()
    assert response["Location"] == body["status_url"] == f"/api/connect-requests/{request.pk}"
    assert callbacks[0].keywords == {"connect_request_id": request.pk}
    assert body["connect_request"]["id"] == request.pk
    assert (body["connect_request"]["kind"], body["connect_request"]["status"]) == (
        "renew",
        "queued",
    )
    assert (body["connection_status"], body["accounts_consent"], body["sync_started"]) == (
        ConnectionStatus.READY,
        None,
        False,
    )
    # The worker asked the bank: the renewal waits for approval, the old consent stays in use.
    request.refresh_from_db()
    assert (request.status, request.outcome, request.attempts) == (
        "succeeded",
        "awaiting_approval",
        1,
    )
    renewal = Consent.objects.get(kind=ConsentKind.ACCOUNTS, status=ConsentStatus.PENDING)
    assert (renewal.request_id, renewal.renews_id) == ("req-renewal", connected.pk)
    assert Consent.objects.get(pk=connected.pk).status == ConsentStatus.AUTHORIZED
    assert polls == [renewal.pk]
    assert BankConnection.objects.get(bank_code="sbank").status == ConnectionStatus.READY
    shown = auth_client.get("/api/banks/sbank/status").json()
    assert (shown["status"], shown["consent"]["id"]) == ("ready", connected.pk)
    assert shown["consent"]["renewal"]["id"] == renewal.pk


def test_renewing_again_while_one_is_queued_answers_it_and_asks_the_bank_once(
    auth_client, connected, bank, polls, django_capture_on_commit_callbacks
):
    bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank.post(ACCOUNTS_ROUTE, json=PENDING)
    bank.post(PRODUCTS_ROUTE, json=PRODUCTS_APPROVED)

    with django_capture_on_commit_callbacks(execute=False) as first_callbacks:
        first = auth_client.post("/api/banks/sbank/consents/renew")
    # Still queued (its message not taken yet): the same request answers, its task re-sent.
    with django_capture_on_commit_callbacks(execute=True):
        second = auth_client.post("/api/banks/sbank/consents/renew")
    for callback in first_callbacks:  # the first message comes late: the request is done
        callback()

    assert first.status_code == second.status_code == 202
    assert first.json()["connect_request"]["id"] == second.json()["connect_request"]["id"]
    assert second.json()["connect_request"]["status"] == "succeeded"
    assert ConnectRequest.objects.count() == 1
    assert _consent_posts(bank) == [ACCOUNTS_ROUTE, PRODUCTS_ROUTE]  # each asked for once
    assert ConnectRequest.objects.get().attempts == 1
    assert Consent.objects.filter(status=ConsentStatus.PENDING).count() == 1


def test_the_demo_approval_asked_twice_while_queued_signs_once(
    auth_client, connected, bank, monkeypatch, django_capture_on_commit_callbacks
):
    from sync import services as sync_services

    runs: list[int] = []
    monkeypatch.setattr(
        sync_services, "sync_run_send", lambda *, sync_run_id: runs.append(sync_run_id) or True
    )
    pending = Consent.objects.create(
        user=auth_client.user,
        bank_code="sbank",
        kind=ConsentKind.PRODUCTS,
        status=ConsentStatus.PENDING,
        request_id="pagcr-9",
    )
    bank.post(f"{SBANK}/auth/login", json={"access_token": "client-tok"})
    bank.post(
        f"{SBANK}/product-agreement-consents/sign",
        json={"consent_id": "pagc-9", "status": "active", "valid_until": "2027-12-01T09:31:12Z"},
    )
    url = f"/api/consents/{pending.pk}/approve-demo"

    with django_capture_on_commit_callbacks(execute=False) as first_callbacks:
        first = auth_client.post(url)
    with django_capture_on_commit_callbacks(execute=True):
        second = auth_client.post(url)
    for callback in first_callbacks:
        callback()

    assert first.status_code == second.status_code == 202, second.content
    assert first.json()["consent"]["status"] == "pending"  # as stored when it answered
    assert second.json()["consent"]["status"] == "authorized"
    assert first.json()["connect_request"]["id"] == second.json()["connect_request"]["id"]
    request = ConnectRequest.objects.get()
    assert (request.kind, request.status, request.outcome, request.consent_id) == (
        "approve_demo",
        "succeeded",
        "authorized",  # a products consent: no first sync of its own
        pending.pk,
    )
    assert _consent_posts(bank) == [f"{SBANK}/product-agreement-consents/sign"]  # signed once
    assert runs == []


def test_another_action_of_the_bank_under_way_is_a_409_and_stores_nothing(
    auth_client, connected, django_capture_on_commit_callbacks
):
    pending = Consent.objects.create(
        user=auth_client.user,
        bank_code="sbank",
        kind=ConsentKind.PRODUCTS,
        status=ConsentStatus.PENDING,
        request_id="pagcr-9",
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        with django_capture_on_commit_callbacks(execute=False):
            renew = auth_client.post("/api/banks/sbank/consents/renew")
        approve = auth_client.post(f"/api/consents/{pending.pk}/approve-demo")
        again = auth_client.post("/api/banks/sbank/consents/request-again")
        assert len(bank.calls) == 0

    assert renew.status_code == 202, renew.content
    renewal = ConnectRequest.objects.get()
    for refused in (approve, again):
        assert refused.status_code == 409, refused.content
        assert refused.json()["code"] == "request_in_progress"
        assert refused.json()["extra"] == {
            "bank_code": "sbank",
            "connect_request_id": renewal.pk,
            "kind": "renew",
            "status_url": f"/api/connect-requests/{renewal.pk}",  # the renewal's own, to follow
        }
    assert refused.json()["extra"]["status_url"] == renew.json()["status_url"]
    followed = auth_client.get(refused.json()["extra"]["status_url"])
    assert followed.status_code == 200
    assert followed.json()["connect_request"]["id"] == renewal.pk
    assert ConnectRequest.objects.count() == 1
    assert Consent.objects.get(pk=pending.pk).status == ConsentStatus.PENDING


def test_refusals_are_answered_in_the_request_and_store_no_request(
    auth_client, settings, django_capture_on_commit_callbacks
):
    from banking.tests.factories import client_id_give

    client_id_give(user=auth_client.user, client_id=CLIENT, bank_codes=["sbank"])
    authorised = Consent.objects.create(
        user=auth_client.user,
        bank_code="sbank",
        kind=ConsentKind.PRODUCTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="pagc-1",
    )
    pending = Consent.objects.create(
        user=auth_client.user,
        bank_code="sbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-1",
    )
    with (
        responses.RequestsMock(assert_all_requests_are_fired=True) as bank,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        unknown = auth_client.post("/api/banks/zbank/consents/renew")
        nothing_to_renew = auth_client.post("/api/banks/sbank/consents/renew")
        not_pending = auth_client.post(f"/api/consents/{authorised.pk}/approve-demo")
        settings.DEMO_BANK_CLIENT_SELF_SIGN = False
        disabled = auth_client.post(f"/api/consents/{pending.pk}/approve-demo")
        assert len(bank.calls) == 0

    answers = [unknown, nothing_to_renew, not_pending, disabled]
    assert [(r.status_code, r.json()["code"]) for r in answers] == [
        (404, "unknown_bank"),
        (409, "no_consent_to_renew"),
        (409, "consent_not_pending"),
        (403, "demo_signing_disabled"),
    ]
    assert not ConnectRequest.objects.exists()
    assert callbacks == []


def test_request_again_when_all_is_in_order_is_a_409_in_the_request(auth_client, connected):
    Consent.objects.create(
        user=auth_client.user,
        bank_code="sbank",
        kind=ConsentKind.PRODUCTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="pagc-1",
    )

    response = auth_client.post("/api/banks/sbank/consents/request-again")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "nothing_to_request_again"
    assert response.json()["extra"]["renew_url"] == "/api/banks/sbank/consents/renew"
    assert not ConnectRequest.objects.exists()


def test_a_bank_outage_during_a_renewal_is_retried_and_the_connection_stays_ready(
    auth_client, connected, bank, polls, settings, django_capture_on_commit_callbacks
):
    settings.SYNC_TASK_MAX_RETRIES = 2
    bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank.post(ACCOUNTS_ROUTE, status=503, body="")
    bank.post(ACCOUNTS_ROUTE, json=PENDING)  # the retry finds the bank back
    bank.post(PRODUCTS_ROUTE, json=PRODUCTS_APPROVED)

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/banks/sbank/consents/renew")

    assert response.status_code == 202, response.content
    request = ConnectRequest.objects.get()
    assert (request.status, request.outcome, request.attempts) == (
        "succeeded",
        "awaiting_approval",
        2,
    )
    assert _consent_posts(bank) == [ACCOUNTS_ROUTE, ACCOUNTS_ROUTE, PRODUCTS_ROUTE]
    # The renewal's wait showed on the request, never on the ready connection.
    assert _status_moves() == []
    assert BankConnection.objects.get(bank_code="sbank").status == ConnectionStatus.READY


def test_a_renewal_whose_bank_stays_down_fails_the_request_only(
    auth_client, connected, bank, settings, django_capture_on_commit_callbacks
):
    settings.SYNC_TASK_MAX_RETRIES = 1
    bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank.post(ACCOUNTS_ROUTE, status=503, body="")

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/banks/sbank/consents/renew")

    assert response.status_code == 202, response.content
    request = ConnectRequest.objects.get()
    assert (request.status, request.error_code, request.attempts) == (
        "failed",
        "bank_unavailable",
        2,
    )
    assert "Smart Bank" in request.error
    assert _consent_posts(bank) == [ACCOUNTS_ROUTE, ACCOUNTS_ROUTE]
    assert list(Consent.objects.values_list("pk", "status")) == [(connected.pk, "authorized")]
    assert BankConnection.objects.get(bank_code="sbank").status == ConnectionStatus.READY


def test_onboarding_while_a_renewal_is_under_way_joins_it(
    auth_client, connected, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        renew = auth_client.post("/api/banks/sbank/consents/renew")
        started = auth_client.post("/api/onboarding/start", {"banks": ["sbank"]}, format="json")

    assert (renew.status_code, started.status_code) == (202, 202), started.content
    assert ConnectRequest.objects.get().kind == "renew"
    bank = started.json()["banks"][0]
    assert (bank["connection_status"], bank["connect"]["kind"]) == (ConnectionStatus.READY, "renew")


def test_a_request_is_followed_at_its_own_url_and_only_by_its_user(auth_client, make_user):
    from rest_framework.test import APIClient

    from users.services import token_pair_for

    mine = ConnectRequest.objects.create(
        user=auth_client.user,
        bank_code="sbank",
        kind=ConnectRequest.Kind.RENEW,
        status=ConnectRequest.Status.FAILED,
        error_code="bank_unavailable",
        error="SBank did not answer",
    )
    other = make_user(email="other@example.com")
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(other)['access']}")

    followed = auth_client.get(f"/api/connect-requests/{mine.pk}")
    hidden = stranger.get(f"/api/connect-requests/{mine.pk}")
    unknown = auth_client.get(f"/api/connect-requests/{mine.pk + 1000}")

    assert followed.status_code == 200, followed.content
    body = followed.json()
    assert (body["bank_code"], body["status_url"]) == ("sbank", f"/api/connect-requests/{mine.pk}")
    assert {k: body["connect_request"][k] for k in ("id", "kind", "status", "error_code")} == {
        "id": mine.pk,
        "kind": "renew",
        "status": "failed",
        "error_code": "bank_unavailable",
    }
    for refused in (hidden, unknown):
        assert refused.status_code == 404
        assert refused.json()["code"] == "connect_request_not_found"
