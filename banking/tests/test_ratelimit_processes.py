"""The per-bank limits hold across real processes sharing one Redis (db 9):

- four processes of two threads each hammer one bank's `acquire` for ~3 s at a limit of 20/s:
  no window of one second holds more than 20 of the slots they were given, no two slots are
  closer than 1/20 s, the Redis counters the bench reads agree, every caller waited for its slot
  before going on, and together they used the limit (the schedule is not stricter than it says);
- the same at 100/s with a burst of 4, the callers pausing now and then (slots left unused,
  then made up): no window of one second holds more than 94;
- four processes reach a circuit whose open time is over at the same moment: exactly one of
  them is let through as the probe, the others fail fast with bank_circuit_open.

Run on PostgreSQL with Redis as .ci/run does (the limiter itself never touches the database):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ft_limits .venv/bin/pytest -q \\
        banking/tests/test_ratelimit_processes.py
"""

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

REDIS_URL = os.environ.get("FINTRACK_TEST_LIMITS_REDIS_URL", "redis://127.0.0.1:6379/9")
ROOT = Path(__file__).resolve().parents[2]
LIMIT = 20
HEADROOM = 0.1  # slots 1/(20 × 0.9) s apart: 18 a second let through (ratelimit.py)
PROCESSES = 4
THREADS = 2
SECONDS = 3.0

HAMMER = """
import json, sys, threading, time
import django
django.setup()
from banking.clients.ratelimit import limiter_for

import random
start, seconds, threads = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0  # chance of a pause after a call
limiter = limiter_for("vbank")
got = []

def hammer():
    chance = random.Random()
    while time.time() < start:
        time.sleep(0.001)
    while time.time() < start + seconds:
        slot = limiter.acquire()
        got.append((slot.at, time.time()))  # the slot it was given, and when it went on
        if chance.random() < pause:  # a caller busy elsewhere: slots go unused, then made up
            time.sleep(chance.choice([0.02, 0.05, 0.15]))

workers = [threading.Thread(target=hammer) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(json.dumps(got))
"""

TRIP = """
import django
django.setup()
from django.conf import settings
from banking.clients.circuit import Outcome, circuit_for

circuit = circuit_for("vbank")
for _ in range(settings.BANK_CIRCUIT_FAILURE_THRESHOLD):
    circuit.record(circuit.admit(probe_seconds=5), Outcome.FAILURE)
print("tripped")
"""

RACE = """
import sys, time
import django
django.setup()
from banking.clients.circuit import circuit_for
from banking.clients.errors import BankCircuitOpenError

start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.0005)
try:
    permit = circuit_for("vbank").admit(probe_seconds=5)
except BankCircuitOpenError as exc:
    print(exc.code)
else:
    print("probe" if permit.probe else "closed")
"""


@pytest.fixture
def shared_redis():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    client.flushdb()  # db 9 is this test's own
    yield client
    client.flushdb()


def _environment(**extra: str) -> dict[str, str]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fintrack.settings",
        "FINTRACK_TESTING": "1",
        "BANK_RATE_LIMIT_REDIS_URL": REDIS_URL,
        "PYTHONPATH": str(ROOT),
    }
    environment.pop("REDIS_CACHE_URL", None)  # the test cache is local unless a test says so
    environment.update(extra)
    return environment


def _start(script: str, *args: str, environment: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _output(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out.strip().splitlines()[-1]


def _hammered(*hammer_args: str, environment: dict[str, str]) -> list[list]:
    """Each process's (slot, went on) pairs: PROCESSES hammering at once from 12 s from now
    (after every process has imported Django, on a busy machine too)."""
    start = time.time() + 12
    processes = [
        _start(
            HAMMER, str(start), str(SECONDS), str(THREADS), *hammer_args, environment=environment
        )
        for _ in range(PROCESSES)
    ]
    return [json.loads(_output(process)) for process in processes]


def _busiest_second(slots: list[float]) -> int:
    """The most slots any window of one second (starting at any slot) holds."""
    return max(
        sum(1 for other in slots[index:] if other < at + 1.0) for index, at in enumerate(slots)
    )


def _counters(shared_redis) -> dict[int, int]:
    """The counters a bench reads: calls per unix second, in Redis."""
    return {
        int(key.rsplit(b":", 1)[1]): int(shared_redis.get(key))
        for key in shared_redis.scan_iter(match="fintrack:bank-rate:{vbank}:calls:*")
    }


def test_processes_hammering_one_bank_never_exceed_its_limit_in_any_second(shared_redis):
    environment = _environment(
        BANK_RATE_LIMIT_PER_SECOND=str(LIMIT), BANK_RATE_LIMIT_HEADROOM=str(HEADROOM)
    )
    per_process = _hammered(environment=environment)

    slots = sorted(at for got in per_process for at, _went_on in got)
    # Every process was given slots: they really shared one schedule.
    assert all(len(got) > 0 for got in per_process)
    # No window of one second (starting at any slot) holds more than the limit…
    assert _busiest_second(slots) <= LIMIT
    # …because no two slots are closer than 1/(limit × (1 − headroom)) (µs, Redis's clock).
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= 1 / (LIMIT * (1 - HEADROOM)) - 1e-6
    # Nobody went on before its slot (the clocks are the same machine's).
    assert all(went_on >= at - 0.005 for got in per_process for at, went_on in got)
    # The limit was used, not just respected: ~18/s over the 3 s, eight callers always waiting.
    assert len(slots) >= 0.9 * LIMIT * (1 - HEADROOM) * SECONDS
    # The counters a bench reads (calls per unix second, in Redis) say the same.
    counters = _counters(shared_redis)
    assert sum(counters.values()) == len(slots)
    assert max(counters.values()) <= LIMIT


def test_with_a_burst_processes_coming_and_going_never_exceed_the_limit(shared_redis):
    """At 100/s (slots 11.1 ms apart, a burst of 4) callers that pause now and then leave slots
    unused and make some up: still no window of one second holds more than 90 + 4 slots."""
    limit, burst = 100, 4
    environment = _environment(
        BANK_RATE_LIMIT_PER_SECOND=str(limit),
        BANK_RATE_LIMIT_HEADROOM=str(HEADROOM),
        BANK_RATE_LIMIT_BURST=str(burst),
    )
    per_process = _hammered("0.1", environment=environment)  # one call in ten: a pause

    slots = sorted(at for got in per_process for at, _went_on in got)
    assert all(len(got) > 0 for got in per_process)
    interval = 1 / (limit * (1 - HEADROOM))
    assert _busiest_second(slots) <= round(1 / interval) + burst < limit
    # Slots closer than an interval: unused ones were made up (none would be without a burst).
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert sum(1 for gap in gaps if gap < interval / 2) >= burst
    assert all(went_on >= at - 0.005 for got in per_process for at, went_on in got)
    counters = _counters(shared_redis)
    assert sum(counters.values()) == len(slots)
    assert max(counters.values()) <= limit


def test_exactly_one_process_probes_a_circuit_whose_open_time_is_over(shared_redis):
    environment = _environment(
        REDIS_CACHE_URL=REDIS_URL,  # the circuits' state in the Redis cache every process shares
        BANK_CIRCUIT_FAILURE_THRESHOLD="3",
        BANK_CIRCUIT_OPEN_SECONDS="1",
    )
    assert _output(_start(TRIP, environment=environment)) == "tripped"
    start = time.time() + 5  # the open second is long over by then; all start importing now
    racers = [_start(RACE, str(start), environment=environment) for _ in range(PROCESSES)]

    outcomes = sorted(_output(racer) for racer in racers)

    assert outcomes == ["bank_circuit_open"] * (PROCESSES - 1) + ["probe"]
