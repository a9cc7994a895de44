"""The consent lifecycle against faked bank answers (`responses`): approvals that time out, the
connection's honest state once a consent is lost, early renewal and its switch, a fresh request
in place of a stale one, expiry warnings, and the periodic sweep."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from responses import matchers

from audit.models import AuditEvent
from banking.models import BankConnection, ConnectionStatus
from banking.services.tokens import bank_token_cache_clear
from consents import lifecycle
from consents import services as consent_services
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.selectors import ConsentState, consent_expiry
from consents.tasks import superseded_consent_revoke
from sync.models import SyncRun, SyncStatus

VBANK = "https://vbank.test"
SBANK = "https://sbank.test"
CLIENT = "team260-3"
TOKEN = {"access_token": "tok", "token_type": "bearer", "expires_in": 86400}
PERMISSIONS = ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"]

pytestmark = pytest.mark.django_db


def approved(consent_id: str, request_id: str = "req-new") -> dict:
    return {
        "request_id": request_id,
        "consent_id": consent_id,
        "status": "approved",
        "message": "Согласие одобрено автоматически",
        "created_at": "2026-12-01T09:21:06",
        "auto_approved": True,
    }


def pending(request_id: str) -> dict:
    return {
        "request_id": request_id,
        "status": "pending",
        "message": "Запрос отправлен на одобрение",
        "created_at": "2026-12-01T09:21:07",
        "auto_approved": False,
    }


def status_body(consent_id: str, status: str, expires: str = "2027-12-01T09:21:06Z") -> dict:
    return {
        "data": {
            "consentId": consent_id,
            "status": status,
            "creationDateTime": "2026-12-01T09:21:06Z",
            "statusUpdateDateTime": "2026-12-01T09:21:06Z",
            "permissions": PERMISSIONS,
            "expirationDateTime": expires,
        },
        "links": {"self": f"/account-consents/{consent_id}"},
        "meta": {},
    }


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {
        "vbank": {"name": "Virtual Bank", "base_url": VBANK},
        "sbank": {"name": "Smart Bank", "base_url": SBANK},
    }
    settings.BANK_TEAM_ID = "team260"
    settings.BANK_TEAM_SECRET = "team-secret"
    settings.BANK_MAX_RETRIES = 0
    settings.DEMO_BANK_CLIENT_SELF_SIGN = True
    settings.CONSENT_APPROVAL_TIMEOUT_MINUTES = 60
    settings.CONSENT_EXPIRY_WARNING_DAYS = 7
    bank_token_cache_clear()
    yield
    bank_token_cache_clear()


@pytest.fixture
def bank():
    """A strict fake bank: every registered answer must be used, anything else is refused."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client_user(make_user):
    return make_user(email="vera@example.com", client_id=CLIENT)


def _connection(user, bank_code="vbank", **fields) -> BankConnection:
    connection = BankConnection.objects.get(user=user, bank_code=bank_code)
    if fields:
        BankConnection.objects.filter(pk=connection.pk).update(**fields)
        connection.refresh_from_db()
    return connection


def _consent(user, bank_code="vbank", kind=ConsentKind.ACCOUNTS, **fields) -> Consent:
    defaults = {
        "status": ConsentStatus.AUTHORIZED,
        "bank_consent_id": "consent-old",
        "expires_at": timezone.now() + timedelta(days=200),
    }
    return Consent.objects.create(
        user=user, bank_code=bank_code, kind=kind, **{**defaults, **fields}
    )


def _age(consent: Consent, *, minutes: float) -> None:
    Consent.objects.filter(pk=consent.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )
    consent.refresh_from_db()


def _actions() -> list[str]:
    """The audit trail, without the setup's (a bank client given to the user)."""
    events = AuditEvent.objects.exclude(action="connection.client_set").order_by("id")
    return list(events.values_list("action", flat=True))


def _state(connection) -> tuple[str, str]:
    connection.refresh_from_db()
    return connection.status, connection.status_reason


# --- Expiry states -----------------------------------------------------------------------------


def test_expiry_state_warns_within_the_configured_days(settings):
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    authorised = ConsentStatus.AUTHORIZED

    def state(**delta):
        return consent_expiry(status=authorised, expires_at=now + timedelta(**delta), now=now)

    assert (state(days=30).state, state(days=30).days_left) == (ConsentState.VALID, 30)
    assert (state(days=7).state, state(days=7).days_left) == (ConsentState.EXPIRING_SOON, 7)
    assert (state(days=6, hours=23).state, state(days=6, hours=23).days_left) == (
        ConsentState.EXPIRING_SOON,
        6,
    )
    assert (state(seconds=-1).state, state(seconds=-1).days_left) == (ConsentState.EXPIRED, 0)
    assert consent_expiry(status=authorised, expires_at=None, now=now).state == ConsentState.VALID
    assert consent_expiry(status="pending", expires_at=now, now=now).state == ConsentState.NONE
    assert consent_expiry(status="expired", expires_at=None, now=now).state == ConsentState.EXPIRED
    settings.CONSENT_EXPIRY_WARNING_DAYS = 31
    assert state(days=30).state == ConsentState.EXPIRING_SOON


# --- Manual approval that times out --------------------------------------------------------------


def test_a_request_pending_past_the_timeout_expires_without_a_bank_call(client_user, bank):
    connection = _connection(client_user, "sbank", status=ConnectionStatus.CONSENT_PENDING)
    waiting = _consent(
        client_user,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-stale",
        expires_at=None,
    )
    _age(waiting, minutes=61)

    assert consent_services.consent_awaits_approval(consent=waiting) is False

    waiting.refresh_from_db()
    assert (waiting.status, waiting.status_reason) == (ConsentStatus.EXPIRED, "approval_timed_out")
    assert _state(connection) == (ConnectionStatus.CONSENT_REQUIRED, "approval_expired")
    assert connection.last_error.startswith(
        "The approval request at Smart Bank expired; start a new one."
    )
    assert _actions() == ["consent.approval_expired", "connection.status_changed"]
    # Asked again, nothing more happens: polling has stopped.
    assert consent_services.consent_awaits_approval(consent=waiting) is False
    assert len(_actions()) == 2
    assert len(bank.calls) == 0


def test_a_request_within_its_timeout_still_waits(client_user):
    waiting = _consent(
        client_user,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-fresh",
        expires_at=None,
    )
    _age(waiting, minutes=59)

    assert consent_services.consent_awaits_approval(consent=waiting) is True
    assert Consent.objects.get(pk=waiting.pk).status == ConsentStatus.PENDING
    assert consent_services.consent_approval_deadline(consent=waiting) == (
        waiting.created_at + timedelta(minutes=60)
    )


def test_a_timed_out_renewal_leaves_the_consent_in_use_and_the_connection_alone(client_user):
    connection = _connection(client_user, "sbank", status=ConnectionStatus.READY)
    current = _consent(client_user, "sbank")
    renewal = _consent(
        client_user,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-renewal",
        expires_at=None,
        renews=current,
    )
    _age(renewal, minutes=120)

    assert consent_services.consent_awaits_approval(consent=renewal) is False

    assert Consent.objects.get(pk=renewal.pk).status == ConsentStatus.EXPIRED
    assert Consent.objects.get(pk=current.pk).status == ConsentStatus.AUTHORIZED
    assert _state(connection) == (ConnectionStatus.READY, "")


def test_the_approval_action_is_honest_about_approvals_in_the_banks_app(client_user):
    waiting = _consent(
        client_user,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-1",
        expires_at=None,
    )

    action = consent_services.consent_approval_action(consent=waiting)

    assert action["approval_expires_at"] == waiting.created_at + timedelta(minutes=60)
    assert action["request_again_url"] == "/api/banks/sbank/consents/request-again"
    assert "may not tell FinTrack about an approval given in its own app" in action["message"]


# --- Lost consents: the connection says so at once ------------------------------------------------


def test_revoking_through_fintrack_makes_the_connection_require_a_consent(client_user, bank):
    connection = _connection(client_user, status=ConnectionStatus.READY)
    consent = _consent(client_user)
    bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank.delete(f"{VBANK}/account-consents/consent-old", status=204)

    consent_services.consent_revoke(consent=consent)

    assert Consent.objects.get(pk=consent.pk).status_reason == "revoked_by_user"
    assert _state(connection) == (ConnectionStatus.CONSENT_REQUIRED, "revoked_by_user")
    assert "You revoked FinTrack's access to Virtual Bank" in connection.last_error
    assert connection.consent_expires_at is None


@pytest.mark.parametrize(
    ("expires_in", "reason"),
    [(timedelta(days=30), "consent_revoked"), (timedelta(days=-1), "consent_expired")],
)
def test_a_consent_the_bank_refuses_moves_the_connection_with_its_reason(
    client_user, expires_in, reason
):
    connection = _connection(client_user, status=ConnectionStatus.SYNC_IN_PROGRESS)
    consent = _consent(client_user, expires_at=timezone.now() + expires_in)

    consent_services.consent_invalidate(consent=consent, reason="403 CONSENT_REQUIRED")

    assert _state(connection) == (ConnectionStatus.CONSENT_REQUIRED, reason)


def test_a_bank_status_check_answering_revoked_moves_the_connection(client_user, bank):
    connection = _connection(client_user, status=ConnectionStatus.READY)
    consent = _consent(client_user)
    bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank.get(f"{VBANK}/account-consents/consent-old", json=status_body("consent-old", "Revoked"))

    consent_services.consent_refresh(consent=consent)

    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.REVOKED
    assert _state(connection) == (ConnectionStatus.CONSENT_REQUIRED, "consent_revoked")


def test_a_lost_product_consent_leaves_the_connection_ready(client_user):
    connection = _connection(client_user, status=ConnectionStatus.READY)
    _consent(client_user)
    products = _consent(client_user, kind=ConsentKind.PRODUCTS, bank_consent_id="pagc-1")

    consent_services.consent_invalidate(consent=products, reason="403")

    assert _state(connection) == (ConnectionStatus.READY, "")


def test_consents_past_their_expiry_are_expired_and_the_connection_told(client_user):
    connection = _connection(client_user, status=ConnectionStatus.READY)
    consent = _consent(client_user, expires_at=timezone.now() - timedelta(minutes=1))

    expired = consent_services.consent_expire_outdated(
        user=client_user, bank_code="vbank", kind=ConsentKind.ACCOUNTS
    )

    assert [c.pk for c in expired] == [consent.pk]
    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.EXPIRED
    assert _state(connection) == (ConnectionStatus.CONSENT_REQUIRED, "consent_expired")
    assert "expired on" in connection.last_error
    assert "consent.expired" in _actions()


# --- Renewal and its switch -----------------------------------------------------------------------


def test_a_renewal_at_an_auto_bank_switches_at_once_and_revokes_the_old_one_after_commit(
    client_user, bank, django_capture_on_commit_callbacks
):
    connection = _connection(client_user, status=ConnectionStatus.READY)
    old = _consent(client_user)
    bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank.post(f"{VBANK}/account-consents/request", json=approved("consent-new"))
    bank.get(f"{VBANK}/account-consents/consent-new", json=status_body("consent-new", "Authorized"))
    bank.delete(f"{VBANK}/account-consents/consent-old", status=204)

    with django_capture_on_commit_callbacks(execute=True):
        new = lifecycle.consent_renew(
            user=client_user, bank_code="vbank", kind=ConsentKind.ACCOUNTS
        )

    old.refresh_from_db()
    assert (new.status, new.bank_consent_id, new.renews_id) == ("authorized", "consent-new", old.pk)
    assert new.expires_at == datetime(2027, 12, 1, 9, 21, 6, tzinfo=UTC)
    assert (old.status, old.status_reason) == ("superseded", "superseded_revoked_at_bank")
    assert (
        consent_services.consent_active(
            user=client_user, bank_code="vbank", kind=ConsentKind.ACCOUNTS
        )
        == new
    )
    assert _state(connection) == (ConnectionStatus.READY, "")
    assert connection.consent_expires_at == new.expires_at
    assert _actions() == [
        "consent.renewal_requested",
        "consent.superseded",
        "consent.authorized",
        "consent.superseded_revoked",
    ]


def test_a_renewal_at_a_manual_bank_waits_while_the_old_consent_stays_in_use(client_user, bank):
    connection = _connection(client_user, "sbank", status=ConnectionStatus.READY)
    old = _consent(client_user, "sbank")
    consent_services._sync_connection_expiry(old)  # the connection shows the consent in use
    bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank.post(f"{SBANK}/account-consents/request", json=pending("req-renewal"))

    renewal = lifecycle.consent_renew(user=client_user, bank_code="sbank", kind="accounts")
    again = lifecycle.consent_renew(user=client_user, bank_code="sbank", kind="accounts")

    assert again == renewal  # no second request while one waits
    assert (renewal.status, renewal.request_id, renewal.renews_id) == (
        "pending",
        "req-renewal",
        old.pk,
    )
    assert (
        consent_services.consent_active(user=client_user, bank_code="sbank", kind="accounts") == old
    )
    assert _state(connection) == (ConnectionStatus.READY, "")
    assert BankConnection.objects.get(pk=connection.pk).consent_expires_at == old.expires_at


def test_a_polled_renewal_that_turns_authorised_is_switched_in(
    client_user, bank, django_capture_on_commit_callbacks
):
    old = _consent(client_user, "sbank")
    renewal = _consent(
        client_user,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-renewal",
        expires_at=None,
        renews=old,
    )
    bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank.get(
        f"{SBANK}/account-consents/req-renewal", json=status_body("consent-minted", "Authorized")
    )
    bank.delete(f"{SBANK}/account-consents/consent-old", status=204)

    with django_capture_on_commit_callbacks(execute=True):
        consent_services.consent_refresh(consent=renewal)

    renewal.refresh_from_db()
    old.refresh_from_db()
    assert (renewal.status, renewal.bank_consent_id) == ("authorized", "consent-minted")
    assert (old.status, old.status_reason) == ("superseded", "superseded_revoked_at_bank")


def test_the_replaced_consent_is_not_revoked_at_the_bank_while_a_sync_runs(
    client_user, bank, django_capture_on_commit_callbacks
):
    connection = _connection(client_user, status=ConnectionStatus.SYNC_IN_PROGRESS)
    old = _consent(client_user)
    run = SyncRun.objects.create(connection=connection, user=client_user, status=SyncStatus.RUNNING)
    bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank.post(f"{VBANK}/account-consents/request", json=approved("consent-new"))
    bank.get(f"{VBANK}/account-consents/consent-new", json=status_body("consent-new", "Authorized"))

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.consent_renew(user=client_user, bank_code="vbank", kind="accounts")

    old.refresh_from_db()
    assert (old.status, old.status_reason) == ("superseded", "superseded_by_renewal")
    assert "consent.superseded_revoked" not in _actions()

    SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.SUCCEEDED)
    bank.delete(f"{VBANK}/account-consents/consent-old", status=204)
    assert superseded_consent_revoke.apply(args=[old.pk]).get() == "revoked"

    old.refresh_from_db()
    assert old.status_reason == "superseded_revoked_at_bank"


def test_a_product_renewal_switches_like_an_account_one(
    client_user, bank, django_capture_on_commit_callbacks
):
    old = _consent(client_user, kind=ConsentKind.PRODUCTS, bank_consent_id="pagc-old")
    bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank.post(
        f"{VBANK}/product-agreement-consents/request",
        json={
            "request_id": "pagcr-2",
            "consent_id": "pagc-new",
            "status": "approved",
            "auto_approved": True,
            "valid_until": "2027-12-01T09:31:12Z",
        },
        match=[matchers.query_param_matcher({"client_id": CLIENT})],
    )
    bank.delete(f"{VBANK}/product-agreement-consents/pagc-old", status=204)

    with django_capture_on_commit_callbacks(execute=True):
        new = lifecycle.consent_renew(user=client_user, bank_code="vbank", kind="products")

    old.refresh_from_db()
    assert (new.status, new.bank_consent_id, new.renews_id) == ("authorized", "pagc-new", old.pk)
    assert new.expires_at == datetime(2027, 12, 1, 9, 31, 12, tzinfo=UTC)
    assert old.status == "superseded"


# --- The APIs: renew, request again, the banks' overview ------------------------------------------


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


def test_request_again_withdraws_the_stale_request_and_answers_like_connect(
    make_user, api_client, bank, polls, django_capture_on_commit_callbacks
):
    from users.models import ConnectRequest
    from users.services import token_pair_for

    user = make_user(email="ivan@example.com", client_id=CLIENT)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    connection = _connection(
        user, "sbank", status=ConnectionStatus.CONSENT_REQUIRED, status_reason="approval_expired"
    )
    stale = _consent(
        user,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-stale",
        expires_at=None,
    )
    bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank.post(f"{SBANK}/account-consents/request", json=pending("req-fresh"))
    bank.post(
        f"{SBANK}/product-agreement-consents/request",
        json={
            "request_id": "pagcr-1",
            "consent_id": "pagc-1",
            "status": "approved",
            "auto_approved": True,
            "valid_until": "2027-12-01T09:31:12Z",
        },
    )

    # The worker's task is sent once the request commits (run here, eagerly, as the block ends).
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/banks/sbank/consents/request-again")
        calls_in_the_request = len(bank.calls)
        state_in_the_request = _state(connection)

    assert response.status_code == 202, response.json()
    assert calls_in_the_request == 0
    assert state_in_the_request == (ConnectionStatus.CONSENT_REQUIRED, "approval_expired")
    body = response.json()
    assert (body["connect_request"]["kind"], body["connect_request"]["status"]) == (
        "request_again",
        "queued",
    )
    assert (body["accounts_consent"], body["action_required"]) == (None, None)
    # The worker has asked the bank since: its request, read back, says how that went.
    followed = api_client.get(body["status_url"])
    assert followed.status_code == 200, followed.content
    assert followed.json()["connect_request"]["id"] == body["connect_request"]["id"]
    assert (
        followed.json()["connect_request"]["status"],
        followed.json()["connect_request"]["outcome"],
    ) == ("succeeded", "awaiting_approval")
    # The worker asked the bank: the stale request withdrawn, a fresh one waits for approval.
    fresh = Consent.objects.get(user=user, bank_code="sbank", kind="accounts", status="pending")
    assert fresh.request_id == "req-fresh"
    request = ConnectRequest.objects.get(pk=body["connect_request"]["id"])
    assert (request.status, request.outcome) == ("succeeded", "awaiting_approval")
    stale.refresh_from_db()
    assert (stale.status, stale.status_reason) == ("revoked", "withdrawn_for_new_request")
    assert _state(connection) == (ConnectionStatus.CONSENT_PENDING, "awaiting_approval")
    assert "consent.withdrawn" in _actions()
    assert polls == [fresh.pk]
    # What the status endpoints read now, as the connect answer would say it.
    shown = api_client.get("/api/banks/sbank/status").json()
    assert shown["action_required"]["consent_id"] == fresh.pk
    assert shown["action_required"]["bank_request_id"] == "req-fresh"
    from users.onboarding.connect_requests import connect_request_result
    from users.onboarding.serializers import bank_connect_payload

    answer = bank_connect_payload(connect_request_result(connect_request=request))
    assert answer["connection_status"] == "consent_pending"
    assert answer["accounts_consent"]["id"] == fresh.pk
    assert answer["products_consent"]["status"] == "authorized"
    assert answer["action_required"]["consent_id"] == fresh.pk


def test_a_bank_failure_on_request_again_keeps_the_old_request(
    auth_client, bank, settings, django_capture_on_commit_callbacks
):
    from users.models import ConnectRequest

    settings.SYNC_TASK_MAX_RETRIES = 0  # the worker's one attempt fails the request
    user = auth_client.user
    from banking.tests.factories import client_id_give

    client_id_give(user=user, client_id=CLIENT)
    stale = _consent(
        user,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-stale",
        expires_at=None,
    )
    bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank.post(f"{SBANK}/account-consents/request", status=503, body="")

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/banks/sbank/consents/request-again")

    assert response.status_code == 202, response.json()
    request = ConnectRequest.objects.get(pk=response.json()["connect_request"]["id"])
    assert (request.status, request.error_code) == ("failed", "bank_unavailable")
    assert Consent.objects.get(pk=stale.pk).status == ConsentStatus.PENDING
    assert Consent.objects.filter(user=user).count() == 1


@pytest.mark.parametrize("path", ["renew", "request-again"])
def test_an_unknown_bank_is_a_404_and_changes_nothing(auth_client, path):
    response = auth_client.post(f"/api/banks/zbank/consents/{path}")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_bank"
    assert not Consent.objects.exists()
    assert not AuditEvent.objects.exists()


def test_renew_without_an_authorised_consent_is_a_409_without_a_bank_call(auth_client, bank):
    from banking.tests.factories import client_id_give

    client_id_give(user=auth_client.user, client_id=CLIENT)
    before = AuditEvent.objects.count()

    response = auth_client.post("/api/banks/vbank/consents/renew")

    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["extra"]["bank_code"]) == ("no_consent_to_renew", "vbank")
    assert not Consent.objects.exists()
    assert AuditEvent.objects.count() == before
    assert len(bank.calls) == 0


def test_request_again_for_a_bank_never_connected_or_in_order_is_a_409(auth_client, make_user):
    other = make_user(email="olga@example.com")
    _consent(other, "vbank", status=ConsentStatus.PENDING, bank_consent_id="", expires_at=None)

    never = auth_client.post("/api/banks/vbank/consents/request-again")
    _consent(auth_client.user, "vbank")
    _consent(auth_client.user, "vbank", kind=ConsentKind.PRODUCTS, bank_consent_id="pagc-1")
    in_order = auth_client.post("/api/banks/vbank/consents/request-again")

    assert (never.status_code, never.json()["code"]) == (409, "nothing_to_request_again")
    assert (in_order.status_code, in_order.json()["code"]) == (409, "nothing_to_request_again")
    assert in_order.json()["extra"]["renew_url"] == "/api/banks/vbank/consents/renew"
    # Someone else's pending request is untouched.
    assert Consent.objects.get(user=other).status == ConsentStatus.PENDING


def test_banks_and_dashboard_warn_of_a_consent_expiring_within_seven_days(auth_client):
    user = auth_client.user
    BankConnection.objects.create(user=user, bank_code="vbank", status=ConnectionStatus.READY)
    soon = timezone.now() + timedelta(days=3, hours=1)
    current = _consent(user, expires_at=soon)
    consent_services._sync_connection_expiry(current)
    renewal = _consent(
        user,
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-renewal",
        expires_at=None,
        renews=current,
    )
    _consent(
        user,
        kind=ConsentKind.PRODUCTS,
        bank_consent_id="pagc-1",
        expires_at=timezone.now() + timedelta(days=90, hours=1),
    )

    vbank = auth_client.get("/api/banks").json()[0]
    banks = auth_client.get("/api/dashboard").json()["banks"]

    assert vbank["consent_state"] == "expiring_soon"
    assert (vbank["consent_days_left"], vbank["consent_expiring"]) == (3, True)
    assert vbank["consent"]["id"] == current.pk  # the consent in use, not the renewal
    assert (vbank["consent"]["state"], vbank["consent"]["days_left"]) == ("expiring_soon", 3)
    assert vbank["consent"]["renewal"]["id"] == renewal.pk
    assert (vbank["product_consent"]["state"], vbank["product_consent"]["days_left"]) == (
        "valid",
        90,
    )
    assert [
        (b["bank_code"], b["consent_state"], b["consent_days_left"], b["consent_expiring"])
        for b in banks
    ] == [("vbank", "expiring_soon", 3, True)]
    assert banks[0]["product_consent_state"] == "valid"


def test_banks_show_status_reason_message_and_next_retry(auth_client):
    when = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
    BankConnection.objects.create(
        user=auth_client.user,
        bank_code="sbank",
        status=ConnectionStatus.RETRYING,
        status_reason="bank_unavailable",
        last_error="Smart Bank is not answering (HTTP 503).",
        next_retry_at=when,
    )

    sbank = auth_client.get("/api/banks/sbank/status").json()
    dashboard = auth_client.get("/api/dashboard").json()["banks"][0]

    for body in (sbank, dashboard):
        assert body["status"] == "retrying"
        assert body["status_reason"] == "bank_unavailable"
        assert body["status_message"] == "Smart Bank is not answering (HTTP 503)."
        assert datetime.fromisoformat(body["next_retry_at"].replace("Z", "+00:00")) == when


# --- The periodic sweep ---------------------------------------------------------------------------


def test_the_sweep_expires_renews_and_cleans_up(
    make_user, bank, django_capture_on_commit_callbacks
):
    anna = make_user(email="anna2@example.com", client_id=CLIENT)
    timed_out = _consent(
        anna,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-stale",
        expires_at=None,
    )
    _age(timed_out, minutes=90)
    outdated = _consent(anna, "sbank", expires_at=timezone.now() - timedelta(hours=1))
    expiring = _consent(anna, "vbank", expires_at=timezone.now() + timedelta(days=2))
    left_at_bank = _consent(
        anna,
        "vbank",
        kind=ConsentKind.PRODUCTS,
        bank_consent_id="pagc-old",
        status=ConsentStatus.SUPERSEDED,
        status_reason="superseded_by_renewal",
    )
    bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank.post(f"{VBANK}/account-consents/request", json=approved("consent-new"))
    bank.get(f"{VBANK}/account-consents/consent-new", json=status_body("consent-new", "Authorized"))
    bank.delete(f"{VBANK}/account-consents/consent-old", status=204)
    bank.delete(f"{VBANK}/product-agreement-consents/pagc-old", status=204)

    with django_capture_on_commit_callbacks(execute=True):
        report = lifecycle.consent_lifecycle_sweep()

    assert report.approvals_expired == [timed_out.pk]
    assert report.consents_expired == [outdated.pk]
    renewal = Consent.objects.get(renews=expiring)
    assert report.renewals_requested == [renewal.pk]
    assert renewal.status == ConsentStatus.AUTHORIZED
    assert Consent.objects.get(pk=expiring.pk).status == ConsentStatus.SUPERSEDED
    # The consent the renewal replaced is revoked at the bank too: no sync of it runs.
    assert sorted(report.superseded_revoked) == sorted([left_at_bank.pk, expiring.pk])
    assert report.errors == []
    assert _state(_connection(anna, "sbank")) == (
        ConnectionStatus.CONSENT_REQUIRED,
        "consent_expired",
    )


def test_the_sweep_learns_an_expiry_the_bank_never_gave(client_user, bank):
    consent = _consent(client_user, expires_at=None)
    bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank.get(f"{VBANK}/account-consents/consent-old", json=status_body("consent-old", "Authorized"))

    report = lifecycle.consent_lifecycle_sweep()

    assert report.expiries_learned == [consent.pk]
    assert Consent.objects.get(pk=consent.pk).expires_at == datetime(
        2027, 12, 1, 9, 21, 6, tzinfo=UTC
    )


def test_a_bank_outage_during_the_sweep_is_reported_and_the_rest_goes_on(client_user, bank):
    _consent(client_user, expires_at=timezone.now() + timedelta(days=1))
    timed_out = _consent(
        client_user,
        "sbank",
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-stale",
        expires_at=None,
    )
    _age(timed_out, minutes=600)
    bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank.post(f"{VBANK}/account-consents/request", status=503, body="")

    report = lifecycle.consent_lifecycle_sweep()

    assert report.errors and "bank_unavailable" in report.errors[0]
    assert report.approvals_expired == [timed_out.pk]
    assert Consent.objects.filter(renews__isnull=False).count() == 0


def test_the_sweep_is_scheduled_by_beat():
    task = PeriodicTask.objects.get(name="consent lifecycle")

    assert task.task == "consents.lifecycle_sweep"
    assert task.enabled
    assert task.interval.period == "minutes"


# --- The admin consoles -------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser(
        email="ops@example.com", password="Ops-pass-2026"
    )
    client.force_login(staff)
    return client


def test_the_consent_admin_shows_the_expiry_warning_and_the_renewal_chain(
    staff_client, client_user
):
    current = _consent(client_user, expires_at=timezone.now() + timedelta(days=3, hours=1))
    renewal = _consent(
        client_user,
        status=ConsentStatus.PENDING,
        bank_consent_id="",
        request_id="req-renewal",
        expires_at=None,
        renews=current,
    )
    _consent(client_user, "sbank", expires_at=timezone.now() + timedelta(days=100))

    expiring = staff_client.get("/admin/consents/consent/", {"expiry": "expiring_soon"})
    detail = staff_client.get(f"/admin/consents/consent/{current.pk}/change/")
    pending_page = staff_client.get(f"/admin/consents/consent/{renewal.pk}/change/")

    assert expiring.status_code == 200
    assert list(expiring.context["cl"].result_list) == [current]
    assert "expiring soon (3 days left)" in expiring.content.decode()
    assert detail.status_code == 200
    assert f"#{renewal.pk} (pending)" in detail.content.decode()
    assert pending_page.status_code == 200
    assert f"/admin/consents/consent/{current.pk}/change/" in pending_page.content.decode()


def test_the_connection_admin_shows_reason_message_and_retry(staff_client, client_user):
    connection = _connection(
        client_user,
        status=ConnectionStatus.RETRYING,
        status_reason="bank_unavailable",
        last_error="Virtual Bank is not answering (HTTP 503).",
        next_retry_at=timezone.now() + timedelta(seconds=40),
        consent_expires_at=timezone.now() + timedelta(days=5, hours=1),
    )

    listing = staff_client.get(
        "/admin/banking/bankconnection/", {"status_reason": "bank_unavailable"}
    )
    detail = staff_client.get(f"/admin/banking/bankconnection/{connection.pk}/change/")

    assert listing.status_code == 200
    assert [c.pk for c in listing.context["cl"].result_list] == [connection.pk]
    page = detail.content.decode()
    assert "bank_unavailable" in page
    assert "Virtual Bank is not answering (HTTP 503)." in page
    assert "expiring soon (5 days left)" in page


# --- Concurrency (PostgreSQL: real concurrent connections) ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_renewals_at_once_leave_one_pending_and_both_callers_get_it(make_user):
    import threading

    from django.db import connection as db_connection
    from django.db import connections

    if db_connection.vendor != "postgresql":
        pytest.skip("threads need a database with real concurrent connections (PostgreSQL)")
    user = make_user(email="twice@example.com", client_id=CLIENT)
    old = _consent(user, "sbank")
    both_at_the_bank = threading.Barrier(2, timeout=10)
    answers = iter(["req-a", "req-b"])
    lock = threading.Lock()

    def request_callback(request):
        both_at_the_bank.wait()  # each caller checked "no renewal waits" before either stored
        with lock:
            request_id = next(answers)
        return 200, {}, json.dumps(pending(request_id))

    results, errors = [], []

    def renew():
        try:
            results.append(lifecycle.consent_renew(user=user, bank_code="sbank", kind="accounts"))
        except Exception as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    with responses.RequestsMock(assert_all_requests_are_fired=False) as bank:
        bank.post(f"{SBANK}/auth/bank-token", json=TOKEN)
        bank.add_callback(
            responses.POST, f"{SBANK}/account-consents/request", callback=request_callback
        )
        threads = [threading.Thread(target=renew) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    waiting = Consent.objects.filter(user=user, bank_code="sbank", status=ConsentStatus.PENDING)
    assert waiting.count() == 1
    assert {consent.pk for consent in results} == {waiting.get().pk}
    assert waiting.get().renews_id == old.pk
    assert Consent.objects.get(pk=old.pk).status == ConsentStatus.AUTHORIZED
