"""One retry layer of waiting, not two nested ones (issue 21: "retries nest, up to 24 calls per
connection per hour during an outage").

Outside a task (a web request, a command) the transport is the only layer: BANK_MAX_RETRIES
retries with backoff and Retry-After waits. Inside a sync task the task's retry waits (a Celery
countdown), and a bank call makes at most BANK_TASK_MAX_RETRIES quick retries (sleeps of at most
BANK_TASK_MAX_SLEEP_SECONDS). The bound, counted below through the real task and its Celery
retries on a fake clock, during a full outage of the bank (every call a 503):

- per connection and sync run: at most (1 + BANK_TASK_MAX_RETRIES) × (1 + SYNC_TASK_MAX_RETRIES)
  = 3 × 6 = 18 bank calls, all within ~10 minutes (then the run fails until the next hourly
  one), against (1 + BANK_MAX_RETRIES) × 6 = 24 with the transport's retries nested in the task's;
- with the circuit breaker, for the whole bank: BANK_CIRCUIT_FAILURE_THRESHOLD calls, then one
  probe per open period (30, 60, 120, 240 s …): six connections make at most 16 calls in all
  (15 here), not 6 × 18 = 108.
"""

import random
import time

import pytest
import responses
from celery.canvas import Signature
from celery.exceptions import Retry

from banking.clients import VBankClient, circuit
from banking.clients.circuit import CircuitStatus, circuits_reset
from banking.clients.errors import BankUnavailableError
from banking.clients.transport import bank_calls_retried_by_task
from banking.models import BankCircuitState, BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from sync import tasks
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.services import connection_sync_start
from sync.tests import fakebank as fb

BASE = "https://vbank.test"


def _client(*, max_retries: int = 3) -> tuple[VBankClient, list[float]]:
    sleeps: list[float] = []
    client = VBankClient(
        base_url=BASE,
        team_id="team260",
        team_secret="s",
        token_provider=lambda: "tok",
        max_retries=max_retries,
        backoff_seconds=0.5,
        max_sleep_seconds=10.0,
        retry_after_max_seconds=20.0,
    )
    client.sleep = sleeps.append
    client.jitter = lambda cap: cap  # the longest backoff, so the figures are exact
    client.circuit = None
    return client, sleeps


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 0


def test_outside_a_task_the_transport_retries_with_backoff():
    client, sleeps = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        with pytest.raises(BankUnavailableError):
            client.list_products()
        assert len(mock.calls) == 4

    assert sleeps == [0.5, 1.0, 2.0]


def test_inside_a_task_the_transport_makes_only_quick_retries():
    client, sleeps = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        with (
            bank_calls_retried_by_task(max_retries=2, max_sleep_seconds=1.0),
            pytest.raises(BankUnavailableError) as caught,
        ):
            client.list_products()
        assert len(mock.calls) == 3

    assert sleeps == [0.5, 1.0]  # never over the task's 1 s
    assert caught.value.retry_after == 4.0  # a hint for the task's countdown (it waits ≥ 15 s)


def test_inside_a_task_a_long_retry_after_goes_to_the_task_and_a_short_one_is_slept():
    client, sleeps = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=429, headers={"Retry-After": "0.5"}, body="")
        mock.get(f"{BASE}/products", status=429, headers={"Retry-After": "30"}, body="")
        with (
            bank_calls_retried_by_task(max_retries=2, max_sleep_seconds=1.0),
            pytest.raises(BankUnavailableError) as caught,
        ):
            client.list_products()
        assert len(mock.calls) == 2

    assert sleeps == [0.5]
    assert caught.value.retry_after == 30.0


def test_the_task_share_never_exceeds_the_clients_own_retries():
    client, sleeps = _client(max_retries=0)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        with (
            bank_calls_retried_by_task(max_retries=2, max_sleep_seconds=1.0),
            pytest.raises(BankUnavailableError),
        ):
            client.list_products()
        assert len(mock.calls) == 1
    assert sleeps == []


# --- A full outage, through the sync task and its Celery retries ---------------------------


class Outage:
    """Fake time for the whole stack (the breaker's clock, the transport's sleeps, the task's
    countdowns) and a bank whose every call fails, counted per connection (its consent id)."""

    def __init__(self):
        self.now = 1_800_000_000.0
        self.calls: list[tuple[float, str]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def answer(self, request):
        self.calls.append((self.now, request.headers.get("X-Consent-Id", "")))
        return 503, {}, "<html>503 Service Temporarily Unavailable</html>"


@pytest.fixture
def outage(db, settings, monkeypatch):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 3
    settings.BANK_RETRY_BACKOFF_SECONDS = 0.5
    settings.BANK_RETRY_MAX_SLEEP_SECONDS = 10.0
    settings.BANK_TASK_MAX_RETRIES = 2
    settings.BANK_TASK_MAX_SLEEP_SECONDS = 1.0
    settings.SYNC_TASK_MAX_RETRIES = 5
    settings.SYNC_RETRY_BASE_SECONDS = 15
    settings.SYNC_RETRY_MAX_SECONDS = 600
    settings.BANK_CIRCUIT_FAILURE_THRESHOLD = 10
    settings.BANK_CIRCUIT_FAILURE_WINDOW_SECONDS = 120
    settings.BANK_CIRCUIT_OPEN_SECONDS = 30
    settings.BANK_CIRCUIT_OPEN_MAX_SECONDS = 600
    fake = Outage()
    monkeypatch.setattr(circuit, "clock", fake.clock)
    monkeypatch.setattr(time, "sleep", fake.sleep)  # the transport's backoff sleeps
    # A retry would send a message to the broker: here the loop below plays the broker.
    monkeypatch.setattr(Signature, "apply_async", lambda self, *args, **kwargs: None)
    random.seed(2026_12_01)
    circuits_reset()
    yield fake
    circuits_reset()


def _connections(make_user, count: int) -> list[BankConnection]:
    connections = []
    for number in range(1, count + 1):
        user = make_user()
        Consent.objects.create(
            user=user,
            bank_code="vbank",
            kind=ConsentKind.ACCOUNTS,
            bank_consent_id=f"consent-{number}",
            status=ConsentStatus.AUTHORIZED,
        )
        connections.append(
            BankConnection.objects.create(
                user=user, bank_code="vbank", client_id=f"team260-{number}"
            )
        )
    return connections


def _run_until_done(outage: Outage, connections: list[BankConnection]) -> list[SyncRun]:
    """Each connection's run through connection_sync as a worker runs it, its retries sent
    back after their countdown, in time order (one second between the first attempts)."""
    runs = [
        connection_sync_start(connection=c, trigger=SyncTrigger.SCHEDULE)[0] for c in connections
    ]
    start = outage.now
    due = [(start + index, run.pk, 0) for index, run in enumerate(runs)]
    while due:
        due.sort()
        when, run_id, retries = due.pop(0)
        outage.now = max(outage.now, when)
        tasks.connection_sync.push_request(
            id=f"task-{run_id}", retries=retries, is_eager=False, called_directly=False
        )
        try:
            tasks.connection_sync.run(run_id)
        except Retry as retry:
            due.append((outage.now + float(retry.when), run_id, retries + 1))
        finally:
            tasks.connection_sync.pop_request()
    return [SyncRun.objects.get(pk=run.pk) for run in runs]


def _calls_per_connection(outage: Outage, count: int) -> list[int]:
    return [
        sum(1 for _when, consent in outage.calls if consent == f"consent-{number}")
        for number in range(1, count + 1)
    ]


@pytest.mark.parametrize(
    ("task_retries", "per_connection"),
    [(3, 24), (2, 18)],  # (3: as before, the transport's own retries nested in the task's)
)
def test_without_the_breaker_an_outage_costs_a_run_the_product_of_both_layers(
    outage, settings, make_user, task_retries, per_connection
):
    settings.BANK_CIRCUIT_FAILURE_THRESHOLD = 0
    settings.BANK_TASK_MAX_RETRIES = task_retries
    connections = _connections(make_user, 1)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add_callback(responses.GET, f"{fb.BASE}/accounts", callback=outage.answer)
        runs = _run_until_done(outage, connections)

    assert _calls_per_connection(outage, 1) == [per_connection]
    assert per_connection == (1 + task_retries) * (1 + settings.SYNC_TASK_MAX_RETRIES)
    assert [run.status for run in runs] == [SyncStatus.FAILED]
    assert runs[0].error_code == "bank_unavailable"
    assert runs[0].attempts == 1 + settings.SYNC_TASK_MAX_RETRIES
    first, last = outage.calls[0][0], outage.calls[-1][0]
    assert last - first < 3600  # one run's retries end within the hour: ≤ 18 per hour


def test_with_the_breaker_six_connections_in_an_outage_cost_the_bank_at_most_16_calls_not_108(
    outage, settings, make_user
):
    connections = _connections(make_user, 6)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add_callback(responses.GET, f"{fb.BASE}/accounts", callback=outage.answer)
        runs = _run_until_done(outage, connections)

    per_connection = _calls_per_connection(outage, 6)
    nested_bound = (1 + settings.BANK_TASK_MAX_RETRIES) * (1 + settings.SYNC_TASK_MAX_RETRIES)
    print(f"\nbank calls per connection during the outage: {per_connection}")
    assert max(per_connection) <= nested_bound
    # The breaker opened after 10 calls in a row; then only probes reached the bank, one per
    # open period (30, 60, 120, 240, 480 s … while the runs' ~10 minutes of retries lasted).
    probes = len(outage.calls) - settings.BANK_CIRCUIT_FAILURE_THRESHOLD
    assert 1 <= probes <= 6
    assert len(outage.calls) <= settings.BANK_CIRCUIT_FAILURE_THRESHOLD + 6 < 6 * nested_bound
    assert outage.calls[-1][0] - outage.calls[0][0] < 3600
    # Every run failed (told why), none hung, and the admin's record shows the open circuit.
    assert {run.status for run in runs} == {SyncStatus.FAILED}
    assert {run.error_code for run in runs} <= {"bank_unavailable", "bank_circuit_open"}
    assert "bank_circuit_open" in {run.error_code for run in runs}
    statuses = set(BankConnection.objects.values_list("status", flat=True))
    assert statuses == {ConnectionStatus.ERROR}
    row = BankCircuitState.objects.get(bank_code="vbank")
    assert row.status == CircuitStatus.OPEN
    assert row.trips == 1 + probes
