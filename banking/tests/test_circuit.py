"""The circuit breaker per bank (banking/clients/circuit.py) through the transport: it opens after
BANK_CIRCUIT_FAILURE_THRESHOLD failed calls in a row (5xx, timeouts, dropped connections; not a
4xx), fails calls fast without reaching the bank while open, lets exactly one probe through
after the open time, closes on its success and opens again for longer on its failure; each
change (never each call) is recorded in BankCircuitState, shown in the admin, closable there.
The cross-process probe race is in test_ratelimit_processes.py."""

import threading

import pytest
import requests
import responses
from django.urls import reverse

from audit.models import AuditEvent
from banking.clients import VBankClient, circuit
from banking.clients.circuit import (
    CircuitStatus,
    Outcome,
    circuit_close,
    circuit_for,
    circuit_state,
    circuits_reset,
)
from banking.clients.errors import (
    BankCircuitOpenError,
    BankNotFoundError,
    BankRejectedError,
    BankUnavailableError,
)
from banking.models import BankCircuitState
from banking.services.clients import bank_client_for
from fintrack.core.exception_handler import upstream_error_body
from sync.tests import fakebank as fb

BASE = "https://vbank.test"
PRODUCTS = {"data": {"product": [{"productId": "prod-1", "productType": "loan"}]}}


class FakeWallClock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall(settings, monkeypatch) -> FakeWallClock:
    settings.BANK_CIRCUIT_FAILURE_THRESHOLD = 3
    settings.BANK_CIRCUIT_FAILURE_WINDOW_SECONDS = 60
    settings.BANK_CIRCUIT_OPEN_SECONDS = 30
    settings.BANK_CIRCUIT_OPEN_MAX_SECONDS = 100
    settings.BANK_RATE_LIMIT_PER_SECOND = 0  # this file is about the breaker alone
    fake = FakeWallClock()
    monkeypatch.setattr(circuit, "clock", fake)
    circuits_reset()
    yield fake
    circuits_reset()


def _client(transitions: list | None = None) -> VBankClient:
    client = VBankClient(
        base_url=BASE,
        team_id="team260",
        team_secret="s",
        token_provider=lambda: "tok",
        max_retries=0,
    )
    client.sleep = lambda seconds: None
    if transitions is not None:
        client.circuit_listener = transitions.append
    return client


def _fail(client: VBankClient, times: int) -> None:
    for _ in range(times):
        with pytest.raises(BankUnavailableError):
            client.list_products()


def test_failed_calls_in_a_row_open_the_circuit_and_then_calls_fail_fast(wall):
    transitions: list = []
    client = _client(transitions)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        products = mock.get(f"{BASE}/products", status=503, body="")
        _fail(client, 3)
        assert products.call_count == 3

        wall.now += 10
        for _ in range(5):
            with pytest.raises(BankCircuitOpenError) as caught:
                client.list_products()
        assert products.call_count == 3  # nothing more reached the bank

    error = caught.value
    assert error.code == "bank_circuit_open"
    assert error.retryable and isinstance(error, BankUnavailableError)
    assert error.retry_after == pytest.approx(20.0)  # 30 s open, 10 s gone
    assert client.calls_made == 3
    assert [t.status for t in transitions] == [CircuitStatus.OPEN]
    assert transitions[0].failures == 3
    assert "HTTP 503 on /products" in transitions[0].reason
    status, body = upstream_error_body(error)  # what an API call answers meanwhile
    assert status == 503
    assert body["extra"]["bank_error"] == "bank_circuit_open"
    assert body["extra"]["retry_after_seconds"] == 20


def test_timeouts_and_dropped_connections_count_as_failures(wall):
    client = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", body=requests.exceptions.ReadTimeout("slow"))
        mock.get(f"{BASE}/products", body=requests.exceptions.ConnectionError("reset"))
        mock.get(f"{BASE}/products", status=502, body="<html>502</html>")
        _fail(client, 3)

    assert circuit_state("vbank").status == CircuitStatus.OPEN


def test_a_4xx_or_a_success_between_failures_keeps_it_closed(wall):
    client = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        mock.get(f"{BASE}/products", status=503, body="")
        mock.get(f"{BASE}/products", json=PRODUCTS)  # the bank is up: the count starts again
        mock.get(f"{BASE}/products", status=503, body="")
        mock.get(f"{BASE}/products", status=503, body="")
        mock.get(f"{BASE}/products", status=404, json={"detail": "Product not found"})
        mock.get(f"{BASE}/products", status=400, json={"detail": "bad"})
        _fail(client, 2)
        client.list_products()
        _fail(client, 2)
        with pytest.raises(BankNotFoundError):
            client.list_products()
        with pytest.raises(BankRejectedError):
            client.list_products()

    assert circuit_state("vbank").status == CircuitStatus.CLOSED


def test_429_neither_opens_nor_resets_it(wall):
    client = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        mock.get(f"{BASE}/products", status=503, body="")
        mock.get(f"{BASE}/products", status=429, headers={"Retry-After": "1"}, body="")
        mock.get(f"{BASE}/products", status=503, body="")
        _fail(client, 4)

    assert circuit_state("vbank").status == CircuitStatus.OPEN


def test_failures_further_apart_than_the_window_do_not_add_up(wall, settings):
    settings.BANK_CIRCUIT_FAILURE_WINDOW_SECONDS = 60
    client = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        _fail(client, 2)
        circuit.default_cache.delete("bank-circuit:vbank:failures")  # what a 60 s TTL does
        _fail(client, 2)

    assert circuit_state("vbank").status == CircuitStatus.CLOSED
    assert circuit_state("vbank").failures == 2


def test_after_the_open_time_one_probe_goes_and_its_success_closes_the_circuit(wall):
    transitions: list = []
    client = _client(transitions)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        _fail(client, 3)
        wall.now += 30
        mock.replace(responses.GET, f"{BASE}/products", json=PRODUCTS)

        client.list_products()  # the probe
        client.list_products()  # closed: calls go through again
        assert len(mock.calls) == 5

    assert [t.status for t in transitions] == [
        CircuitStatus.OPEN,
        CircuitStatus.HALF_OPEN,
        CircuitStatus.CLOSED,
    ]
    state = circuit_state("vbank")
    assert (state.status, state.failures, state.open_until) == (CircuitStatus.CLOSED, 0, None)


def test_a_failed_probe_opens_it_again_for_twice_as_long_up_to_the_cap(wall):
    transitions: list = []
    client = _client(transitions)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        _fail(client, 3)
        open_times = []
        for _ in range(3):
            wall.now = circuit_state("vbank").open_until
            _fail(client, 1)  # the probe, failing
            state = circuit_state("vbank")
            open_times.append(state.open_until - wall.now)
            with pytest.raises(BankCircuitOpenError):
                client.list_products()
        assert len(mock.calls) == 3 + 3

    assert open_times == [60.0, 100.0, 100.0]  # 30 doubled, then the 100 s cap
    assert [t.status for t in transitions] == [CircuitStatus.OPEN] + [
        CircuitStatus.HALF_OPEN,
        CircuitStatus.OPEN,
    ] * 3
    assert transitions[-1].trips == 4


def test_while_one_call_probes_every_other_call_fails_fast(wall):
    breaker = circuit_for("vbank")
    for _ in range(3):
        breaker.record(breaker.admit(probe_seconds=5), Outcome.FAILURE)
    wall.now += 30
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def race():
        barrier.wait()
        try:
            permit = breaker.admit(probe_seconds=5)
        except BankCircuitOpenError as exc:
            outcomes.append(exc.code)
        else:
            outcomes.append("probe" if permit.probe else "closed")

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["bank_circuit_open"] * 7 + ["probe"]


def test_a_probe_that_never_reports_frees_the_probe_after_its_time(wall):
    breaker = circuit_for("vbank")
    for _ in range(3):
        breaker.record(breaker.admit(probe_seconds=5), Outcome.FAILURE)
    wall.now += 30
    assert breaker.admit(probe_seconds=5).probe  # a worker that dies before reporting
    with pytest.raises(BankCircuitOpenError):
        breaker.admit(probe_seconds=5)

    circuit.default_cache.delete("bank-circuit:vbank:probe")  # what the lock's 6 s TTL does

    assert breaker.admit(probe_seconds=5).probe


def test_a_zero_threshold_is_no_breaker(wall, settings):
    settings.BANK_CIRCUIT_FAILURE_THRESHOLD = 0
    client = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        _fail(client, 20)
        assert len(mock.calls) == 20


def test_a_failing_cache_leaves_each_process_its_own_breaker(wall, monkeypatch, caplog):
    class BrokenCache:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("cache down")

            return fail

    monkeypatch.setattr(circuit, "default_cache", BrokenCache())
    client = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        _fail(client, 3)
        with pytest.raises(BankCircuitOpenError):
            client.list_products()  # still a breaker, kept in this process
        assert len(mock.calls) == 3
    assert sum("cache unreachable" in r.getMessage() for r in caplog.records) == 1


# --- Recorded for the admin -----------------------------------------------------------------


@pytest.fixture
def vbank(db, settings, wall):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    return settings


def test_each_change_of_state_is_recorded_once_not_each_call(vbank, wall):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{fb.BASE}/products", status=503, body="")
        for _ in range(6):
            with pytest.raises(BankUnavailableError):
                bank_client_for("vbank").list_products()
        row = BankCircuitState.objects.get(bank_code="vbank")
        assert (row.status, row.failures, row.trips) == ("open", 3, 1)
        assert row.opened_at.timestamp() == pytest.approx(wall.now)
        assert row.next_probe_at.timestamp() == pytest.approx(wall.now + 30)
        first_change = row.changed_at

        mock.replace(responses.GET, f"{fb.BASE}/products", json=PRODUCTS)
        wall.now += 30
        bank_client_for("vbank").list_products()
        bank_client_for("vbank").list_products()

    row.refresh_from_db()
    assert (row.status, row.failures, row.opened_at, row.next_probe_at) == ("closed", 0, None, None)
    assert row.reason == "probe call succeeded"
    assert row.changed_at > first_change
    assert BankCircuitState.objects.count() == 1


def test_the_admin_lists_the_circuits_and_closes_one_now(vbank, client, django_user_model):
    staff = django_user_model.objects.create_superuser(
        email="ops@example.com", password="Ops-pass-2026"
    )
    client.force_login(staff)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{fb.BASE}/products", status=503, body="")
        for _ in range(3):
            with pytest.raises(BankUnavailableError):
                bank_client_for("vbank").list_products()
    row = BankCircuitState.objects.get(bank_code="vbank")
    url = reverse("admin:banking_bankcircuitstate_changelist")

    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "open, next probe in 30 s" in html
    assert "3 failed calls in a row" in html

    response = client.post(url, {"action": "close_now", "_selected_action": [row.pk]})

    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == "closed"
    assert circuit_state("vbank").status == CircuitStatus.CLOSED
    event = AuditEvent.objects.get(action="admin.action")
    assert event.details["action"] == "bank_circuit_close"
    assert event.details["from"] == "open" and event.details["to"] == "closed"
    assert event.actor == staff
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{fb.BASE}/products", json=PRODUCTS)
        bank_client_for("vbank").list_products()  # calls go through again at once


def test_closing_a_closed_circuit_changes_nothing(wall):
    assert circuit_close("vbank") is None
    assert circuit_state("vbank").status == CircuitStatus.CLOSED


def _count_cache_reads(monkeypatch) -> list:
    """The circuit's cache operations from here on (each one a Redis round trip in production)."""
    calls: list = []
    real = circuit._store.call

    def counted(operation):
        calls.append(operation)
        return real(operation)

    monkeypatch.setattr(circuit._store, "call", counted)
    return calls


def test_a_process_reads_the_state_once_per_read_window_not_before_every_call(
    wall, settings, monkeypatch
):
    settings.BANK_CIRCUIT_STATE_READ_SECONDS = 1.0
    client = _client()
    reads = _count_cache_reads(monkeypatch)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        products = mock.get(f"{BASE}/products", json=PRODUCTS)
        for _ in range(20):
            client.list_products()
        assert len(reads) == 1
        wall.now += 1.0  # the window is over: the next call reads it again
        client.list_products()
        assert len(reads) == 2
        assert products.call_count == 21


def test_with_a_read_window_of_zero_every_call_reads_the_state(wall, settings, monkeypatch):
    settings.BANK_CIRCUIT_STATE_READ_SECONDS = 0
    client = _client()
    reads = _count_cache_reads(monkeypatch)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", json=PRODUCTS)
        for _ in range(5):
            client.list_products()
    assert len(reads) == 5


def test_a_circuit_another_process_opened_is_seen_here_within_the_read_window(wall, settings):
    settings.BANK_CIRCUIT_STATE_READ_SECONDS = 1.0
    here = _client()
    other_process = circuit.BankCircuit("vbank")  # its own kept state, the same cache
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        products = mock.get(f"{BASE}/products", json=PRODUCTS)
        here.list_products()  # reads the state: closed
        for _ in range(3):  # the other process's calls fail: it opens the circuit
            permit = other_process.admit(probe_seconds=5)
            other_process.record(permit, Outcome.FAILURE, error="HTTP 503")
        assert circuit_state("vbank").status == CircuitStatus.OPEN

        here.list_products()  # still within this process's read window: the call goes
        assert products.call_count == 2
        wall.now += 1.0
        with pytest.raises(BankCircuitOpenError):
            here.list_products()
        assert products.call_count == 2


def test_own_failures_are_seen_at_once_whatever_the_read_window(wall, settings):
    settings.BANK_CIRCUIT_STATE_READ_SECONDS = 60.0
    client = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", json=PRODUCTS)
        client.list_products()  # closed, kept for a minute
        mock.replace(responses.GET, f"{BASE}/products", status=503, body="")
        _fail(client, 3)
        with pytest.raises(BankCircuitOpenError):
            client.list_products()
        assert client.calls_made == 4


def test_an_open_circuit_kept_in_memory_is_read_again_when_its_open_time_ends(wall, settings):
    settings.BANK_CIRCUIT_STATE_READ_SECONDS = 600.0  # longer than the open time
    transitions: list = []
    client = _client(transitions)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        _fail(client, 3)
        with pytest.raises(BankCircuitOpenError):
            client.list_products()  # kept: open for 30 s
        wall.now += 30
        mock.replace(responses.GET, f"{BASE}/products", json=PRODUCTS)
        client.list_products()  # the probe goes, and closes it
    assert [t.status for t in transitions] == [
        CircuitStatus.OPEN,
        CircuitStatus.HALF_OPEN,
        CircuitStatus.CLOSED,
    ]
