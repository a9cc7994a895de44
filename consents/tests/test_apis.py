"""Consents API: own consents only, revoke, demo approve; errors in the standard shape."""

import pytest
import responses

from banking.services.tokens import bank_token_cache_clear
from banking.tests.factories import client_id_give
from consents.models import Consent, ConsentKind, ConsentStatus

SBANK = "https://sbank.test"


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {"sbank": {"name": "Smart Bank", "base_url": SBANK}}
    settings.BANK_TEAM_SECRET = "team-secret"
    settings.DEMO_BANK_CLIENT_SELF_SIGN = True
    bank_token_cache_clear()
    yield
    bank_token_cache_clear()


def _consent(user, **fields):
    defaults = {
        "bank_code": "sbank",
        "kind": ConsentKind.ACCOUNTS,
        "status": ConsentStatus.PENDING,
        "request_id": "req-1",
    }
    return Consent.objects.create(user=user, **{**defaults, **fields})


@pytest.mark.django_db
def test_list_shows_only_my_consents_with_status_and_expiry(auth_client, make_user):
    mine = _consent(
        auth_client.user,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-1",
        expires_at="2027-01-01T00:00:00Z",
    )
    _consent(make_user())

    response = auth_client.get("/api/consents")

    assert response.status_code == 200
    assert [c["id"] for c in response.json()] == [mine.pk]
    item = response.json()[0]
    assert (item["bank_code"], item["kind"], item["status"]) == ("sbank", "accounts", "authorized")
    assert item["expires_at"] == "2027-01-01T00:00:00Z"
    assert item["is_active"] is True


@pytest.mark.django_db
def test_list_filters_by_kind_and_rejects_an_unknown_kind(auth_client):
    _consent(auth_client.user)
    products = _consent(auth_client.user, kind=ConsentKind.PRODUCTS)

    assert [c["id"] for c in auth_client.get("/api/consents?kind=products").json()] == [products.pk]
    bad = auth_client.get("/api/consents?kind=cards")
    assert bad.status_code == 400
    assert bad.json()["code"] == "validation_error"


@pytest.mark.django_db
def test_revoke_a_pending_consent_needs_no_bank_call(auth_client):
    consent = _consent(auth_client.user)

    with responses.RequestsMock(assert_all_requests_are_fired=True):
        response = auth_client.post(f"/api/consents/{consent.pk}/revoke")

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.REVOKED


@pytest.mark.django_db
def test_another_users_consent_is_not_found(auth_client, make_user):
    theirs = _consent(make_user())

    for action in ("revoke", "approve-demo"):
        response = auth_client.post(f"/api/consents/{theirs.pk}/{action}")
        assert response.status_code == 404
        assert response.json()["code"] == "consent_not_found"
    assert Consent.objects.get(pk=theirs.pk).status == ConsentStatus.PENDING


@pytest.fixture
def sync_sends(monkeypatch):
    """The first syncs' task messages, recorded instead of sent: the run ids."""
    from sync import services as sync_services

    sent: list[int] = []
    monkeypatch.setattr(
        sync_services, "sync_run_send", lambda *, sync_run_id: sent.append(sync_run_id) or True
    )
    return sent


@pytest.mark.django_db
def test_approve_demo_answers_202_and_a_worker_authorizes_the_consent(
    auth_client, sync_sends, django_capture_on_commit_callbacks
):
    from users.models import ConnectRequest

    client_id_give(user=auth_client.user, client_id="team260-1", bank_codes=["sbank"])  # demo
    consent = _consent(auth_client.user)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{SBANK}/auth/login", json={"access_token": "client-tok"})
        mock.post(
            f"{SBANK}/account-consents/sign",
            json={"consent_id": "consent-9", "status": "active", "expires_at": None},
        )
        # The worker's task is sent once the request commits (run here when the block ends).
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = auth_client.post(f"/api/consents/{consent.pk}/approve-demo")
            calls_in_the_request = len(mock.calls)

    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["status_url"]
    assert body["status_url"] == f"/api/connect-requests/{body['connect_request']['id']}"
    assert calls_in_the_request == 0
    assert (body["consent"]["id"], body["consent"]["status"]) == (consent.pk, "pending")
    assert (body["connect_request"]["kind"], body["connect_request"]["status"]) == (
        "approve_demo",
        "queued",
    )
    consent.refresh_from_db()
    assert (consent.status, consent.bank_consent_id) == ("authorized", "consent-9")
    request = ConnectRequest.objects.get(pk=body["connect_request"]["id"])
    assert (request.status, request.outcome, request.consent_id) == (
        "succeeded",
        "sync_started",
        consent.pk,
    )
    assert sync_sends == [request.sync_run_id]  # the first sync the approval started
    # The request sent one task message once it committed (the sync's came from the worker).
    assert callbacks[0].keywords == {"connect_request_id": request.pk}
    assert len(callbacks) == 2


@pytest.mark.django_db
def test_approve_demo_of_an_authorized_consent_is_409(auth_client):
    consent = _consent(
        auth_client.user, status=ConsentStatus.AUTHORIZED, bank_consent_id="consent-1"
    )

    response = auth_client.post(f"/api/consents/{consent.pk}/approve-demo")

    assert response.status_code == 409
    assert response.json() == {
        "code": "consent_not_pending",
        "message": "Only a consent that waits for approval can be approved.",
        "extra": {"status": "authorized"},
    }


@pytest.mark.django_db
def test_approve_demo_when_disabled_is_403(auth_client, settings):
    settings.DEMO_BANK_CLIENT_SELF_SIGN = False
    consent = _consent(auth_client.user)

    response = auth_client.post(f"/api/consents/{consent.pk}/approve-demo")

    assert response.status_code == 403
    assert response.json()["code"] == "demo_signing_disabled"


@pytest.mark.django_db
def test_a_bank_down_during_approve_fails_the_request_after_its_retries_not_a_500(
    auth_client, settings, django_capture_on_commit_callbacks
):
    from users.models import ConnectRequest

    settings.BANK_MAX_RETRIES = 0
    settings.SYNC_TASK_MAX_RETRIES = 1
    client_id_give(user=auth_client.user, client_id="team260-1", bank_codes=["sbank"])  # demo
    consent = _consent(auth_client.user)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{SBANK}/auth/login", status=502, body="<html>Bad Gateway</html>")
        with django_capture_on_commit_callbacks(execute=True):
            response = auth_client.post(f"/api/consents/{consent.pk}/approve-demo")
        logins = len(mock.calls)

    assert response.status_code == 202, response.content
    request = ConnectRequest.objects.get(pk=response.json()["connect_request"]["id"])
    # Two attempts (the first and its one retry, eager here: no wait), then failed honestly.
    assert (request.status, request.error_code, request.attempts) == (
        "failed",
        "bank_unavailable",
        2,
    )
    assert logins == 2
    assert "Smart Bank" in request.error
    consent.refresh_from_db()
    assert (consent.status, consent.bank_consent_id) == ("pending", "")


def _authorized(user) -> Consent:
    return _consent(user, status=ConsentStatus.AUTHORIZED, bank_consent_id="consent-1")


@pytest.mark.django_db
def test_a_bank_outage_during_revoke_is_a_503_and_the_consent_stays(auth_client, settings):
    settings.BANK_MAX_RETRIES = 0
    consent = _authorized(auth_client.user)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{SBANK}/auth/bank-token", json={"access_token": "team-tok"})
        mock.delete(
            f"{SBANK}/account-consents/consent-1", status=429, headers={"Retry-After": "30"}
        )

        response = auth_client.post(f"/api/consents/{consent.pk}/revoke")

    assert response.status_code == 503
    assert response.json() == {
        "code": "bank_unavailable",
        "message": "Smart Bank is not answering right now; try again later.",
        "extra": {
            "bank_code": "sbank",
            "bank_error": "bank_unavailable",
            "bank_status": 429,
            "retry_after_seconds": 30,
        },
    }
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.AUTHORIZED


@pytest.mark.django_db
def test_a_bank_refusing_the_revoke_is_a_502_with_the_banks_code(auth_client):
    consent = _authorized(auth_client.user)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{SBANK}/auth/bank-token", json={"access_token": "team-tok"})
        mock.delete(f"{SBANK}/account-consents/consent-1", status=400, json={"detail": "Not yours"})

        response = auth_client.post(f"/api/consents/{consent.pk}/revoke")

    body = response.json()
    assert response.status_code == 502
    assert body["code"] == "bank_rejected"
    assert body["message"].startswith("Smart Bank: ")
    assert body["extra"] == {
        "bank_code": "sbank",
        "bank_error": "bank_rejected",
        "bank_status": 400,
    }
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.AUTHORIZED


@pytest.mark.django_db
def test_a_non_numeric_id_is_a_404_in_the_standard_shape(auth_client):
    response = auth_client.post("/api/consents/abc/revoke")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_consents_api_requires_authentication(api_client):
    assert api_client.get("/api/consents").status_code == 401
