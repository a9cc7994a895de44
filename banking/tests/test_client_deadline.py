"""Bank retries fit inside the caller's deadline (issue 20): a hanging bank during
POST /api/banks/{code}/connect outlived gunicorn's 30 s timeout (three retries of a 10 s timeout:
41 s) and the user got an HTML 500. With a deadline no attempt starts and no sleep ends past it,
each attempt's timeout is cut to what is left, and the caller gets BankUnavailableError: the
standard JSON 503 within BANK_WEB_REQUEST_DEADLINE_SECONDS. Time is a fake clock here."""

import re
import time

import pytest
import requests
import responses

from banking.clients import VBankClient, transport
from banking.clients.errors import BankUnavailableError
from banking.clients.transport import bank_call_deadline
from banking.services.clients import bank_client_for
from sync.tests import fakebank as fb

BASE = "https://vbank.test"
PRODUCTS = {"data": {"product": [{"productId": "prod-1", "productType": "loan"}]}}


class FakeClock:
    """Monotonic time that moves only when slept or when a hanging bank times out."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(transport, "clock", fake.monotonic)
    monkeypatch.setattr(time, "sleep", fake.sleep)
    return fake


def hanging_bank(clock: FakeClock, timeouts: list[float]):
    """A bank that accepts the request and never answers: each attempt uses its whole timeout."""

    def callback(request):
        timeout = request.req_kwargs["timeout"]
        timeouts.append(timeout)
        clock.now += timeout
        raise requests.exceptions.ReadTimeout("read timed out")

    return callback


def _client(**options) -> VBankClient:
    client = VBankClient(
        base_url=BASE,
        team_id="team260",
        team_secret="s",
        timeout_seconds=10.0,
        max_retries=3,
        backoff_seconds=0.5,
        max_sleep_seconds=10.0,
        token_provider=lambda: "tok",
        **options,
    )
    client.jitter = lambda cap: cap  # the longest backoff, so the figures below are exact
    return client


def test_without_a_deadline_the_retries_of_a_hanging_bank_take_over_40_seconds(clock):
    timeouts: list[float] = []
    client = _client()
    client.sleep = clock.sleep
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, f"{BASE}/products", callback=hanging_bank(clock, timeouts))
        with pytest.raises(BankUnavailableError):
            client.list_products()

    assert timeouts == [10.0, 10.0, 10.0, 10.0]
    assert clock.slept == [0.5, 1.0, 2.0]
    assert clock.now - 1000.0 == 43.5  # what the issue measured (41 s): past gunicorn's 30 s


def test_a_client_deadline_ends_the_retries_in_time_with_each_timeout_cut_to_what_is_left(clock):
    timeouts: list[float] = []
    client = _client(deadline_seconds=20.0)
    client.sleep = clock.sleep
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, f"{BASE}/products", callback=hanging_bank(clock, timeouts))
        with pytest.raises(BankUnavailableError) as raised:
            client.list_products()

    # 10 s, a 0.5 s backoff, then the 9.5 s left; the next backoff would end past the deadline.
    assert timeouts == [10.0, 9.5]
    assert clock.slept == [0.5]
    assert clock.now - 1000.0 == 20.0
    assert raised.value.retryable is True
    assert raised.value.message == "vbank: ReadTimeout after 2 attempt(s)"


def test_a_retry_after_that_would_end_past_the_deadline_is_not_slept(clock):
    client = _client(deadline_seconds=5.0, retry_after_max_seconds=60.0)
    client.sleep = clock.sleep
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{BASE}/products", status=429, headers={"Retry-After": "8"})
        with pytest.raises(BankUnavailableError) as raised:
            client.list_products()

    assert clock.slept == []  # answered at once: the caller retries after 8 s
    assert raised.value.retry_after == 8.0
    assert raised.value.status_code == 429


def test_a_retry_that_fits_before_the_deadline_still_happens(clock):
    client = _client(deadline_seconds=5.0)
    client.sleep = clock.sleep
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{BASE}/products", status=503, body="busy")
        mock.add(responses.GET, f"{BASE}/products", json=PRODUCTS)
        products = client.list_products()
        timeouts = [call.request.req_kwargs["timeout"] for call in mock.calls]

    assert [product.product_id for product in products] == ["prod-1"]
    assert clock.slept == [0.5]
    assert timeouts == [5.0, 4.5]


def test_a_call_whose_deadline_has_passed_makes_no_request(clock):
    client = _client(deadline_seconds=3.0)
    clock.now += 3.0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{BASE}/products", json=PRODUCTS)
        with pytest.raises(BankUnavailableError) as raised:
            client.list_products()
        assert len(mock.calls) == 0

    assert raised.value.message == "vbank: no answer within the call's deadline"
    assert client.calls_made == 0


def test_the_callers_deadline_applies_to_every_client_and_never_grows_when_nested(clock):
    client = _client()
    assert client._deadline() is None
    with bank_call_deadline(20):
        assert client._deadline() == 1020.0
        with bank_call_deadline(60):  # an inner, longer deadline does not extend the outer one
            assert client._deadline() == 1020.0
        with bank_call_deadline(5):
            assert client._deadline() == 1005.0
        with bank_call_deadline(0):  # "no deadline" inside one keeps the outer one
            assert client._deadline() == 1020.0
    assert client._deadline() is None
    own = _client(deadline_seconds=10)
    with bank_call_deadline(20):
        assert own._deadline() == 1010.0  # the earlier of the two


def test_bank_client_for_gives_a_deadline_only_when_asked(clock, settings):
    settings.BANK_MAX_RESPONSE_BYTES = 12345
    plain = bank_client_for("vbank")
    bounded = bank_client_for("vbank", deadline_seconds=15)

    assert (plain.deadline, bounded.deadline) == (None, 1015.0)
    assert plain.max_response_bytes == 12345


@pytest.mark.django_db
def test_a_hanging_bank_in_a_web_request_answers_the_json_503_within_the_web_deadline(
    auth_client, settings, clock
):
    """Connecting and the demo approval call no bank in the request any more (a worker does,
    issue 21); revoking a consent still does, so it is the request held to the web deadline."""
    from banking.tests.factories import client_id_give
    from consents.models import Consent, ConsentKind, ConsentStatus

    fb.bank_settings(settings)  # a stored bank token: the approval's calls are the first
    settings.BANK_TIMEOUT_SECONDS = 10.0
    settings.BANK_MAX_RETRIES = 3
    settings.BANK_RETRY_BACKOFF_SECONDS = 0.5
    settings.BANK_RETRY_MAX_SLEEP_SECONDS = 10.0
    settings.BANK_WEB_REQUEST_DEADLINE_SECONDS = 20.0
    settings.DEMO_BANK_CLIENTS = settings.DEMO_BANK_CLIENT_SELF_SIGN = True
    client_id_give(user=auth_client.user, client_id="team260-1", bank_codes=["vbank"])
    pending = Consent.objects.create(
        user=auth_client.user,
        bank_code="vbank",
        kind=ConsentKind.PRODUCTS,
        status=ConsentStatus.PENDING,
        request_id="req-1",
    )
    authorised = Consent.objects.create(
        user=auth_client.user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-1",
    )
    timeouts: list[float] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses.GET, responses.POST, responses.DELETE):
            mock.add_callback(
                method,
                re.compile(rf"{re.escape(fb.BASE)}/.*"),
                callback=hanging_bank(clock, timeouts),
            )
        connect = auth_client.post("/api/banks/abank/connect")
        assert (connect.status_code, timeouts) == (202, [])  # the intent only: no bank call
        approve = auth_client.post(f"/api/consents/{pending.pk}/approve-demo")
        assert (approve.status_code, timeouts) == (202, [])  # the intent only too
        response = auth_client.post(f"/api/consents/{authorised.pk}/revoke")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "bank_unavailable"
    assert body["extra"]["bank_code"] == "vbank"
    elapsed = clock.now - 1000.0
    assert elapsed <= 20.0  # gunicorn (30 s) never kills the worker
    assert sum(timeouts) <= 20.0
    assert len(timeouts) >= 2  # it did retry, within the deadline


@pytest.mark.django_db
def test_a_worker_task_has_no_web_deadline(clock):
    """Outside a request (Celery) the caller's deadline is unset: syncs keep their retries."""
    client = bank_client_for("vbank")

    assert client._deadline() is None
