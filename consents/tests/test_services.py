"""Consent lifecycle against faked bank answers: reuse, polling, demo approval, revoke, 403."""

from datetime import timedelta

import pytest
import responses
from django.utils import timezone
from responses import matchers

from audit.models import AuditEvent
from banking.clients.errors import BankUnavailableError, ConsentRequiredError
from banking.models import BankConnection
from banking.services.clients import bank_client_for
from banking.services.tokens import bank_token_cache_clear
from banking.tests.factories import client_id_give
from consents.exceptions import (
    ConsentNotPending,
    DemoSigningDisabled,
    NoBankClientId,
    NotADemoClient,
)
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.services import (
    consent_active,
    consent_approval_action,
    consent_approve_demo,
    consent_ensure,
    consent_invalidate,
    consent_refresh,
    consent_revoke,
)

VBANK = "https://vbank.test"
CLIENT = "team260-3"  # who the user is at both banks: the connections' demo client
SBANK = "https://sbank.test"
TOKEN = {"access_token": "tok", "token_type": "bearer", "expires_in": 86400}
APPROVED = {
    "request_id": "req-73fdb8b9d63e",
    "consent_id": "consent-46965b4ef205",
    "status": "approved",
    "message": "Согласие одобрено автоматически",
    "created_at": "2025-11-26T09:21:06.556824",
    "auto_approved": True,
}
PENDING = {
    "request_id": "req-9c1e0b7f44a2",
    "status": "pending",
    "message": "Запрос отправлен на одобрение",
    "created_at": "2025-11-26T09:21:07.102311",
    "auto_approved": False,
}


def status_body(consent_id: str, status: str, expires="2027-11-26T09:21:06.557675Z"):
    return {
        "data": {
            "consentId": consent_id,
            "status": status,
            "creationDateTime": "2026-11-26T09:21:06.557680Z",
            "statusUpdateDateTime": "2026-11-26T09:21:06.557680Z",
            "permissions": ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"],
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
    settings.DEMO_BANK_CLIENT_SELF_SIGN = True
    bank_token_cache_clear()
    yield
    bank_token_cache_clear()


@pytest.fixture
def user(make_user):
    """Anna, the demo client CLIENT at both banks (as a connect without a client id makes her)."""
    return make_user(email="anna@example.com", client_id=CLIENT)


@pytest.fixture
def bank_mock():
    """A strict mock: every registered answer must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def _actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


@pytest.mark.django_db
def test_auto_approved_consent_is_stored_authorized_and_audited(user, bank_mock):
    bank_mock.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank_mock.post(
        f"{VBANK}/account-consents/request",
        json=APPROVED,
        match=[matchers.json_params_matcher({"client_id": CLIENT}, strict_match=False)],
    )

    consent = consent_ensure(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS)

    assert consent.status == ConsentStatus.AUTHORIZED
    assert consent.bank_consent_id == "consent-46965b4ef205"
    assert consent.request_id == "req-73fdb8b9d63e"
    assert consent.permissions == ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"]
    assert consent.raw_response == APPROVED
    assert _actions() == ["consent.requested", "consent.authorized"]
    assert consent_active(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS) == consent


@pytest.mark.django_db
def test_a_second_ensure_reuses_the_consent_without_any_bank_call(user, bank_mock):
    bank_mock.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    request = bank_mock.post(f"{VBANK}/account-consents/request", json=APPROVED)
    first = consent_ensure(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS)
    calls_before = len(bank_mock.calls)

    second = consent_ensure(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS)

    assert second.pk == first.pk
    assert len(bank_mock.calls) == calls_before
    assert request.call_count == 1
    assert Consent.objects.count() == 1


@pytest.mark.django_db
def test_an_expired_consent_is_not_reused_and_a_new_one_is_requested(user, bank_mock):
    old = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-old",
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    bank_mock.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank_mock.post(f"{VBANK}/account-consents/request", json=APPROVED)

    consent = consent_ensure(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS)

    assert consent.pk != old.pk
    assert consent.bank_consent_id == "consent-46965b4ef205"
    old.refresh_from_db()
    assert old.status == ConsentStatus.EXPIRED


@pytest.mark.django_db
def test_manual_bank_gives_a_pending_consent_and_the_connection_shows_no_expiry(user, bank_mock):
    bank_mock.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank_mock.post(f"{SBANK}/account-consents/request", json=PENDING)

    consent = consent_ensure(user=user, bank_code="sbank", kind=ConsentKind.ACCOUNTS)

    assert consent.status == ConsentStatus.PENDING
    assert consent.bank_consent_id == ""
    assert consent.request_id == "req-9c1e0b7f44a2"
    assert _actions() == ["consent.requested"]
    assert consent_active(user=user, bank_code="sbank", kind=ConsentKind.ACCOUNTS) is None
    assert BankConnection.objects.get(user=user, bank_code="sbank").consent_expires_at is None


@pytest.mark.django_db
def test_ensure_with_a_pending_consent_polls_it_instead_of_requesting_again(user, bank_mock):
    pending = Consent.objects.create(
        user=user,
        bank_code="sbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-9c1e0b7f44a2",
    )
    bank_mock.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    poll = bank_mock.get(
        f"{SBANK}/account-consents/req-9c1e0b7f44a2",
        json=status_body("req-9c1e0b7f44a2", "AwaitingAuthorization"),
    )

    consent = consent_ensure(user=user, bank_code="sbank", kind=ConsentKind.ACCOUNTS)

    assert consent.pk == pending.pk
    assert consent.status == ConsentStatus.PENDING
    assert poll.call_count == 1
    assert Consent.objects.count() == 1


@pytest.mark.django_db
def test_polling_a_pending_consent_becomes_authorized_when_a_real_id_appears(user, bank_mock):
    pending = Consent.objects.create(
        user=user,
        bank_code="sbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-9c1e0b7f44a2",
    )
    bank_mock.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank_mock.get(
        f"{SBANK}/account-consents/req-9c1e0b7f44a2",
        json=status_body("req-9c1e0b7f44a2", "AwaitingAuthorization"),
    )
    bank_mock.get(
        f"{SBANK}/account-consents/req-9c1e0b7f44a2",
        json=status_body("consent-5b2d81c0e7aa", "Authorized"),
    )

    still_pending = consent_refresh(consent=pending)
    assert still_pending.status == ConsentStatus.PENDING
    assert Consent.objects.get(pk=pending.pk).status == ConsentStatus.PENDING

    authorized = consent_refresh(consent=pending)

    stored = Consent.objects.get(pk=pending.pk)
    assert authorized.status == stored.status == ConsentStatus.AUTHORIZED
    assert stored.bank_consent_id == "consent-5b2d81c0e7aa"
    assert stored.expires_at.isoformat() == "2027-11-26T09:21:06.557675+00:00"
    assert _actions() == ["consent.authorized"]
    assert (
        BankConnection.objects.get(user=user, bank_code="sbank").consent_expires_at
        == stored.expires_at
    )


@pytest.mark.django_db
def test_authorized_with_only_the_request_id_echoed_is_not_accepted(user, bank_mock):
    pending = Consent.objects.create(
        user=user,
        bank_code="sbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-9c1e0b7f44a2",
    )
    bank_mock.post(f"{SBANK}/auth/bank-token", json=TOKEN)
    bank_mock.get(
        f"{SBANK}/account-consents/req-9c1e0b7f44a2",
        json=status_body("req-9c1e0b7f44a2", "Authorized"),
    )

    consent = consent_refresh(consent=pending)

    assert consent.status == ConsentStatus.PENDING
    assert Consent.objects.get(pk=pending.pk).bank_consent_id == ""


@pytest.mark.django_db
def test_demo_approval_signs_as_the_client_and_authorizes(user, bank_mock):
    pending = Consent.objects.create(
        user=user,
        bank_code="sbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-9c1e0b7f44a2",
    )
    bank_mock.post(
        f"{SBANK}/auth/login",
        json={"access_token": "client-tok", "token_type": "bearer"},
        match=[matchers.json_params_matcher({"username": CLIENT, "password": "team-secret"})],
    )
    bank_mock.post(
        f"{SBANK}/account-consents/sign",
        json={
            "consent_id": "consent-5b2d81c0e7aa",
            "status": "active",
            "granted_to": "team260",
            "permissions": ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"],
            "expires_at": "2027-11-26T09:25:41.318204",
            "signed_at": "2026-11-26T09:25:41.318199",
        },
    )

    consent = consent_approve_demo(consent=pending)

    assert consent.status == ConsentStatus.AUTHORIZED
    assert consent.bank_consent_id == "consent-5b2d81c0e7aa"
    assert consent.expires_at.isoformat() == "2027-11-26T09:25:41.318204+00:00"
    event = AuditEvent.objects.get()
    assert (event.action, event.details["how"]) == ("consent.authorized", "demo_self_sign")


@pytest.mark.django_db
def test_demo_approval_is_refused_when_disabled(user, settings):
    settings.DEMO_BANK_CLIENT_SELF_SIGN = False
    pending = Consent.objects.create(
        user=user,
        bank_code="sbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-1",
    )
    with (
        responses.RequestsMock(assert_all_requests_are_fired=True),
        pytest.raises(DemoSigningDisabled),
    ):
        consent_approve_demo(consent=pending)
    assert Consent.objects.get(pk=pending.pk).status == ConsentStatus.PENDING


@pytest.mark.django_db
def test_demo_approval_of_a_consent_that_is_not_pending_is_a_conflict(user):
    consent = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-1",
    )
    with (
        responses.RequestsMock(assert_all_requests_are_fired=True),
        pytest.raises(ConsentNotPending),
    ):
        consent_approve_demo(consent=consent)


@pytest.mark.django_db
def test_revoke_deletes_at_the_bank_and_marks_revoked(user, bank_mock):
    consent = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-1",
    )
    bank_mock.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    delete = bank_mock.delete(f"{VBANK}/account-consents/consent-1", status=204)

    consent_revoke(consent=consent)

    assert delete.call_count == 1
    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.REVOKED
    # The user is connected there (a client at the bank): the connection says so too.
    assert _actions() == ["consent.revoked", "connection.status_changed"]


@pytest.mark.django_db
def test_revoke_with_a_404_at_the_bank_still_revokes_locally(user, bank_mock):
    consent = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-gone",
    )
    bank_mock.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank_mock.delete(
        f"{VBANK}/account-consents/consent-gone", status=404, json={"detail": "Consent not found"}
    )

    consent_revoke(consent=consent)

    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.REVOKED


@pytest.mark.django_db
def test_revoke_when_the_bank_is_down_changes_nothing(user, bank_mock, settings):
    settings.BANK_MAX_RETRIES = 0
    consent = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-1",
    )
    bank_mock.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank_mock.delete(f"{VBANK}/account-consents/consent-1", status=503, body="")

    with pytest.raises(BankUnavailableError):
        consent_revoke(consent=consent)

    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.AUTHORIZED
    assert _actions() == []


@pytest.mark.django_db
def test_a_403_consent_required_invalidates_the_consent_and_ensure_requests_anew(user, bank_mock):
    consent = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-revoked-in-bank",
        expires_at=timezone.now() + timedelta(days=100),
    )
    bank_mock.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank_mock.get(
        f"{VBANK}/accounts",
        status=403,
        json={"detail": {"error": "CONSENT_REQUIRED", "message": "Требуется согласие клиента"}},
    )
    bank_mock.post(f"{VBANK}/account-consents/request", json=APPROVED)

    with pytest.raises(ConsentRequiredError) as caught:
        bank_client_for("vbank", user=user).list_accounts(
            client_id=CLIENT, consent_id=consent.bank_consent_id
        )
    consent_invalidate(consent=consent, reason=caught.value.message)

    stored = Consent.objects.get(pk=consent.pk)
    assert stored.status == ConsentStatus.REVOKED
    assert stored.status_reason == "vbank /accounts: Требуется согласие клиента"
    assert consent_active(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS) is None
    assert _actions() == ["consent.invalidated", "connection.status_changed"]

    fresh = consent_ensure(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS)
    assert fresh.bank_consent_id == "consent-46965b4ef205"


@pytest.mark.django_db
def test_invalidating_a_consent_past_its_expiry_marks_it_expired(user):
    consent = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-1",
        expires_at=timezone.now() - timedelta(days=1),
    )

    consent_invalidate(consent=consent, reason="403")
    consent_invalidate(consent=consent, reason="403 again")

    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.EXPIRED
    assert _actions() == ["consent.invalidated", "connection.status_changed"]


@pytest.mark.django_db
def test_product_consents_follow_the_same_flow(user, bank_mock):
    bank_mock.post(f"{VBANK}/auth/bank-token", json=TOKEN)
    bank_mock.post(
        f"{VBANK}/product-agreement-consents/request",
        json={
            "request_id": "pagcr-1",
            "consent_id": None,
            "status": "pending",
            "auto_approved": False,
            "valid_until": "2027-11-26T09:31:12.482113Z",
        },
        match=[matchers.query_param_matcher({"client_id": CLIENT})],
    )
    bank_mock.post(
        f"{VBANK}/auth/login", json={"access_token": "client-tok", "token_type": "bearer"}
    )
    bank_mock.post(
        f"{VBANK}/product-agreement-consents/sign",
        json={"consent_id": "pagc-1", "status": "active"},
    )

    consent = consent_ensure(user=user, bank_code="vbank", kind=ConsentKind.PRODUCTS)
    assert (consent.status, consent.request_id, consent.bank_consent_id) == (
        "pending",
        "pagcr-1",
        "",
    )

    consent = consent_approve_demo(consent=consent)

    assert (consent.status, consent.bank_consent_id) == ("authorized", "pagc-1")
    assert consent_active(user=user, bank_code="vbank", kind=ConsentKind.PRODUCTS) == consent
    assert consent_active(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS) is None
    # A products consent never sets the connection's (account) consent expiry.
    connection = BankConnection.objects.filter(user=user, bank_code="vbank").first()
    assert connection is None or connection.consent_expires_at is None


@pytest.mark.django_db
def test_a_user_without_a_bank_client_id_cannot_request(make_user):
    user = make_user()  # registered, never connected: no client at any bank
    client_id_give(user=user, client_id="team260-4", bank_codes=["sbank"])
    with responses.RequestsMock(assert_all_requests_are_fired=True), pytest.raises(NoBankClientId):
        consent_ensure(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS)
    assert not Consent.objects.exists()


@pytest.mark.django_db
def test_a_client_the_user_gave_is_never_self_signed(make_user):
    user = make_user()
    client_id_give(user=user, client_id="team260-57", bank_codes=["sbank"], is_demo=False)
    pending = Consent.objects.create(
        user=user,
        bank_code="sbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-1",
    )

    action = consent_approval_action(consent=pending)
    with (
        responses.RequestsMock(assert_all_requests_are_fired=True) as nothing_asked,
        pytest.raises(NotADemoClient) as refused,
    ):
        consent_approve_demo(consent=pending)

    assert action["approve_demo_url"] is None
    assert action["message"].startswith("Open Smart Bank and approve")
    assert refused.value.http_status == 403 and "Smart Bank's app" in refused.value.message
    assert len(nothing_asked.calls) == 0
    assert Consent.objects.get(pk=pending.pk).status == ConsentStatus.PENDING
