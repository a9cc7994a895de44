"""The pending-consent poll (users/onboarding/tasks.py): backs off while the consent waits, starts
the first sync once the bank approves, stops when the consent no longer waits, never loops."""

import pytest
import responses

from banking.models import ConnectionStatus
from banking.tests.factories import make_connection
from consents.models import Consent, ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.tests import fakebank as fb
from users.models import OnboardingFlow
from users.onboarding import tasks

POLL_URL = f"{fb.BASE}/account-consents/req-1"


def consent_status_body(consent_id: str, status: str) -> dict:
    """GET /account-consents/{id} as the bank answers it."""
    return {
        "data": {
            "consentId": consent_id,
            "status": status,
            "creationDateTime": "2026-11-26T09:21:06.557680Z",
            "statusUpdateDateTime": "2026-11-26T09:21:06.557680Z",
            "permissions": ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"],
            "expirationDateTime": "2027-11-26T09:21:06.557675Z",
        },
        "links": {"self": f"/account-consents/{consent_id}"},
        "meta": {},
    }


@pytest.fixture
def waiting(user, settings):
    """VBank connected by onboarding, its accounts consent waiting for the user's approval."""
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    OnboardingFlow.objects.create(
        user=user, selected_banks=["vbank"], step=OnboardingFlow.Step.CONSENTS
    )
    make_connection(user=user, bank_code="vbank", status=ConnectionStatus.CONSENT_PENDING)
    return Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-1",
    )


@pytest.fixture
def scheduled(monkeypatch):
    """The polls a run schedules next, instead of sending them to the broker."""
    later: list[dict] = []
    monkeypatch.setattr(tasks, "pending_consent_poll_later", lambda **kwargs: later.append(kwargs))
    return later


def _poll(consent, attempt: int = 0) -> None:
    """One run of the task as a worker runs it (not eager)."""
    tasks.pending_consent_poll(
        consent_id=consent.pk, trigger=SyncTrigger.ONBOARDING, attempt=attempt
    )


def test_poll_backs_off_while_the_consent_waits(waiting, scheduled):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.get(POLL_URL, json=consent_status_body("req-1", "AwaitingAuthorization"))
        _poll(waiting, attempt=0)
        _poll(waiting, attempt=1)
        assert len(bank_http.calls) == 2

    assert scheduled == [
        {"consent_id": waiting.pk, "trigger": "onboarding", "attempt": 1},
        {"consent_id": waiting.pk, "trigger": "onboarding", "attempt": 2},
    ]
    assert Consent.objects.get(pk=waiting.pk).status == ConsentStatus.PENDING
    assert not SyncRun.objects.exists()


def test_poll_delay_doubles_from_the_first_up_to_the_cap(settings, monkeypatch):
    settings.CONSENT_POLL_FIRST_SECONDS = 15
    settings.CONSENT_POLL_MAX_SECONDS = 600
    monkeypatch.setattr(tasks.random, "uniform", lambda low, high: high)

    delays = [tasks.consent_poll_countdown(attempt=attempt) for attempt in range(8)]

    assert delays == [15, 30, 60, 120, 240, 480, 600, 600]
    assert tasks.consent_poll_countdown(attempt=10_000) == 600
    monkeypatch.setattr(tasks.random, "uniform", lambda low, high: low)
    assert tasks.consent_poll_countdown(attempt=1) == 15  # jitter: between half and all of it


def test_poll_starts_the_first_sync_once_the_bank_approves_then_stops(
    waiting, scheduled, django_capture_on_commit_callbacks
):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.get(POLL_URL, json=consent_status_body("consent-9", "Authorized"))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            _poll(waiting)

    consent = Consent.objects.get(pk=waiting.pk)
    assert (consent.status, consent.bank_consent_id) == (ConsentStatus.AUTHORIZED, "consent-9")
    run = SyncRun.objects.get()
    assert (run.trigger, run.status) == (SyncTrigger.ONBOARDING, SyncStatus.QUEUED)
    assert len(callbacks) == 1  # the run's task, sent after commit
    assert scheduled == []
    flow = OnboardingFlow.objects.get(user=waiting.user)
    assert (flow.step, flow.completed_at) == (OnboardingFlow.Step.SYNCING, None)


def test_poll_stops_without_a_bank_call_once_the_consent_no_longer_waits(waiting, scheduled):
    Consent.objects.filter(pk=waiting.pk).update(
        status=ConsentStatus.AUTHORIZED, bank_consent_id="consent-9"
    )

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        _poll(waiting)
        assert len(bank_http.calls) == 0

    assert scheduled == []
    assert not SyncRun.objects.exists()


def test_poll_of_a_deleted_consent_stops_quietly(waiting, scheduled):
    consent_id = waiting.pk
    waiting.delete()

    tasks.pending_consent_poll(consent_id=consent_id)

    assert scheduled == []


def test_a_bank_outage_during_a_poll_keeps_polling(waiting, scheduled):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.get(POLL_URL, status=503, body="")
        _poll(waiting, attempt=3)

    assert scheduled == [{"consent_id": waiting.pk, "trigger": "onboarding", "attempt": 4}]
    assert Consent.objects.get(pk=waiting.pk).status == ConsentStatus.PENDING


def test_an_unexpected_error_is_raised_and_the_next_poll_still_scheduled(
    waiting, scheduled, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(tasks, "onboarding_consent_poll", broken)

    with pytest.raises(RuntimeError):
        _poll(waiting)

    assert scheduled == [{"consent_id": waiting.pk, "trigger": "onboarding", "attempt": 1}]


def test_an_eager_poll_polls_once_and_schedules_nothing(waiting, scheduled):
    """Eager mode (tests) ignores countdowns: a re-scheduling poll would loop at once."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.get(POLL_URL, json=consent_status_body("req-1", "AwaitingAuthorization"))
        tasks.pending_consent_poll.apply_async(
            kwargs={"consent_id": waiting.pk, "trigger": "onboarding", "attempt": 0}, countdown=60
        )
        assert len(bank_http.calls) == 1

    assert scheduled == []
