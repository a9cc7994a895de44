"""Consent admin: "refresh status from bank" and "revoke" call the services, report, audit."""

import pytest
import responses
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEvent
from banking.clients.errors import BankUnavailableError
from banking.services.tokens import bank_token_cache_clear
from consents import admin as consents_admin
from consents.models import Consent, ConsentKind, ConsentStatus

VBANK = "https://vbank.test"
TOKEN = {"access_token": "tok", "token_type": "bearer", "expires_in": 86400}
CHANGELIST = reverse("admin:consents_consent_changelist")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(
        email="ops@example.com", password="Ops-pass-2026"
    )


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def banks(settings):
    settings.BANKS = {"vbank": {"name": "Virtual Bank", "base_url": VBANK}}
    settings.BANK_TEAM_ID = "team260"
    settings.BANK_TEAM_SECRET = "team-secret"
    settings.BANK_MAX_RETRIES = 0
    bank_token_cache_clear()
    yield
    bank_token_cache_clear()


def make_consent(
    user,
    *,
    consent_id="consent-1",
    status=ConsentStatus.AUTHORIZED,
    kind=ConsentKind.ACCOUNTS,
    **fields,
):
    return Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=kind,
        status=status,
        bank_consent_id=consent_id,
        **fields,
    )


def run_action(client, action: str, consents) -> list[tuple[str, str]]:
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [c.pk for c in consents]}
    )
    assert response.status_code == 302, response.content
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_refresh_action_calls_consent_refresh_for_each_selected_row(
    staff_client, staff, user, monkeypatch
):
    # One live consent per bank and kind (a constraint): the rows differ in kind or status.
    first = make_consent(user, consent_id="consent-1", status=ConsentStatus.PENDING)
    second = make_consent(user, consent_id="consent-2", kind=ConsentKind.PRODUCTS)
    make_consent(user, consent_id="consent-not-selected", status=ConsentStatus.EXPIRED)
    called = []

    def fake_refresh(*, consent):
        called.append(consent.pk)
        consent.status = ConsentStatus.AUTHORIZED
        return consent

    monkeypatch.setattr(consents_admin, "consent_refresh", fake_refresh)

    messages = run_action(staff_client, "refresh_from_bank", [first, second])

    assert sorted(called) == sorted([first.pk, second.pk])
    assert messages == [
        ("success", "vbank/products consent-2 (authorized): status authorized → authorized"),
        ("success", "vbank/accounts consent-1 (authorized): status pending → authorized"),
        ("info", "consent_refresh: 2 succeeded, 0 failed."),
    ]
    events = AuditEvent.objects.filter(action="admin.action").order_by("object_id")
    assert [(e.actor_id, e.user_id, e.object_type, e.object_id) for e in events] == sorted(
        [
            (staff.pk, user.pk, "Consent", str(first.pk)),
            (staff.pk, user.pk, "Consent", str(second.pk)),
        ],
        key=lambda row: row[3],
    )
    assert events.get(object_id=str(first.pk)).details == {
        "action": "consent_refresh",
        "outcome": "succeeded",
        "from": "pending",
        "to": "authorized",
    }


def test_revoke_action_calls_consent_revoke_with_the_selected_consent(
    staff_client, user, monkeypatch
):
    consent = make_consent(user)
    called = []

    def fake_revoke(*, consent):
        called.append(consent)
        consent.status = ConsentStatus.REVOKED
        return consent

    monkeypatch.setattr(consents_admin, "consent_revoke", fake_revoke)

    messages = run_action(staff_client, "revoke", [consent])

    assert [c.pk for c in called] == [consent.pk]
    assert messages == [("success", f"{called[0]}: revoked (was authorized)")]


def test_a_bank_error_is_reported_per_row_and_the_others_still_run(staff_client, user, monkeypatch):
    failing = make_consent(user, consent_id="consent-down")
    working = make_consent(user, consent_id="consent-up", kind=ConsentKind.PRODUCTS)

    def fake_revoke(*, consent):
        if consent.pk == failing.pk:
            raise BankUnavailableError("VBank answered 503", bank_code="vbank", status_code=503)
        consent.status = ConsentStatus.REVOKED
        return consent

    monkeypatch.setattr(consents_admin, "consent_revoke", fake_revoke)

    messages = run_action(staff_client, "revoke", [failing, working])

    assert (
        "error",
        f"{failing}: consent_revoke failed (bank_unavailable): VBank answered 503",
    ) in (messages)
    assert messages[-1] == ("warning", "consent_revoke: 1 succeeded, 1 failed.")
    failed_event = AuditEvent.objects.get(action="admin.action", object_id=str(failing.pk))
    assert failed_event.details == {
        "action": "consent_revoke",
        "outcome": "failed",
        "error_code": "bank_unavailable",
        "error": "VBank answered 503",
    }


def test_revoke_end_to_end_deletes_the_consent_at_the_bank(staff_client, user, banks):
    consent = make_consent(user)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
        delete = bank.delete(f"{VBANK}/account-consents/consent-1", status=204)
        messages = run_action(staff_client, "revoke", [consent])

    assert delete.call_count == 1
    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.REVOKED
    assert [level for level, _text in messages] == ["success"]


def test_revoke_end_to_end_with_the_bank_down_changes_nothing_and_reports(
    staff_client, user, banks
):
    consent = make_consent(user)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        bank.post(f"{VBANK}/auth/bank-token", json=TOKEN)
        bank.delete(f"{VBANK}/account-consents/consent-1", status=503, body="")
        messages = run_action(staff_client, "revoke", [consent])

    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.AUTHORIZED
    assert [level for level, _text in messages] == ["error"]


def test_change_page_shows_bank_ids_and_the_raw_response_escaped(staff_client, user):
    consent = make_consent(
        user,
        request_id="req-73fdb8b9d63e",
        raw_response={"status": "approved", "message": "<img src=x onerror=alert(1)>"},
    )

    page = staff_client.get(reverse("admin:consents_consent_change", args=[consent.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "consent-1" in html
    assert "req-73fdb8b9d63e" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html


def test_a_staff_member_with_view_permission_only_is_not_offered_the_actions(
    client, django_user_model, user
):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user(
        email="viewer@example.com", password="Viewer-pass-2026", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_consent"))
    client.force_login(viewer)
    make_consent(user)

    page = client.get(CHANGELIST)

    assert page.status_code == 200
    assert set(page.context["cl"].model_admin.get_actions(page.wsgi_request)) == set()
