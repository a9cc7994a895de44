"""FinTrack's own per-bank rate limit (banking/clients/ratelimit.py): slots never closer than
1/rate, a wait past the caller's bound refused with retry_after, every HTTP attempt of the
transport taking a slot, the per-process fallback when Redis is down (logged once), and the
schedule shared through Redis. The multi-process proof is test_ratelimit_processes.py."""

import itertools
import logging

import pytest
import redis
import responses

from banking.clients import VBankClient, ratelimit, transport
from banking.clients.errors import BankRateLimitedError, BankUnavailableError
from banking.clients.ratelimit import (
    calls_per_second,
    limiter_for,
    limiter_mode,
    peak_calls_per_second,
    rate_limit_for,
    rate_limits_reset,
)
from banking.clients.transport import bank_call_deadline

BASE = "https://vbank.test"
PRODUCTS = {"data": {"product": [{"productId": "prod-1", "productType": "loan"}]}}
REDIS_URL = "redis://127.0.0.1:6379/9"
DOWN_REDIS_URL = "redis://127.0.0.1:1/9"  # nothing listens on port 1


class FakeTime:
    """The limiter's monotonic clock, moved only by its sleeps."""

    def __init__(self):
        self.now = 500.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def local_limits(settings, monkeypatch):
    """The limiter without Redis (the embedded default), on a fake clock."""
    settings.BANK_RATE_LIMIT_REDIS_URL = ""
    settings.BANK_RATE_LIMIT_MAX_WAIT_SECONDS = 30.0
    settings.BANK_RATE_LIMIT_HEADROOM = 0.0  # the schedule's arithmetic; the headroom apart
    settings.BANK_RATE_LIMIT_BURST = 0  # and the burst (its own tests below set both)
    fake = FakeTime()
    monkeypatch.setattr(ratelimit, "monotonic", fake.monotonic)
    monkeypatch.setattr(ratelimit, "sleep", fake.sleep)
    rate_limits_reset()
    yield fake
    rate_limits_reset()


@pytest.fixture
def shared_limits(settings):
    """The limiter on a real Redis (db 9); skipped where none answers."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    settings.BANK_RATE_LIMIT_REDIS_URL = REDIS_URL
    settings.BANK_RATE_LIMIT_MAX_WAIT_SECONDS = 30.0
    settings.BANK_RATE_LIMIT_HEADROOM = 0.0
    settings.BANK_RATE_LIMIT_BURST = 0
    rate_limits_reset()
    yield settings
    rate_limits_reset()


def _client() -> VBankClient:
    client = VBankClient(
        base_url=BASE, team_id="team260", team_secret="s", token_provider=lambda: "tok"
    )
    client.sleep = lambda seconds: None
    client.circuit = None  # this file is about the rate limit alone
    return client


def test_slots_are_one_interval_apart_and_the_first_is_free(local_limits, settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 5.0
    limiter = limiter_for("vbank")

    slots = [limiter.acquire() for _ in range(6)]

    assert [round(slot.waited, 6) for slot in slots] == [0.0, 0.2, 0.2, 0.2, 0.2, 0.2]
    gaps = [round(later.at - earlier.at, 6) for earlier, later in itertools.pairwise(slots)]
    assert gaps == [0.2] * 5
    assert local_limits.slept == pytest.approx([0.2] * 5)


@pytest.mark.parametrize("headroom", [0.1, 0.25])
def test_the_headroom_spaces_slots_wider_than_one_over_the_rate(local_limits, settings, headroom):
    settings.BANK_RATE_LIMIT_PER_SECOND = 10.0
    settings.BANK_RATE_LIMIT_HEADROOM = headroom
    limiter = limiter_for("vbank")

    slots = [limiter.acquire() for _ in range(12)]

    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(1 / (10.0 * (1 - headroom)), abs=1e-6)
    # The eleventh slot falls past one second: a call would have to leave a whole interval late
    # for the bank to count eleven in a second.
    assert slots[10].at - slots[0].at > 1.0


def test_a_headroom_out_of_range_is_clamped(local_limits, settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 10.0
    settings.BANK_RATE_LIMIT_HEADROOM = 3.0  # never a schedule that stops or runs backwards
    limiter = limiter_for("vbank")
    first, second = limiter.acquire(), limiter.acquire()
    assert second.at - first.at == pytest.approx(0.2, abs=1e-6)


def test_an_idle_bank_gives_its_next_slot_at_once(local_limits, settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 5.0
    limiter = limiter_for("vbank")
    limiter.acquire()
    local_limits.now += 10  # nothing asked for ten seconds: no credit is saved up either

    assert [limiter.acquire().waited for _ in range(2)] == [0.0, pytest.approx(0.2)]


def _busiest_second(slots) -> int:
    """The most slots any window of one second (from any slot on) holds."""
    ats = sorted(slot.at for slot in slots)
    return max(sum(1 for other in ats[index:] if other < at + 1.0) for index, at in enumerate(ats))


@pytest.mark.parametrize(
    ("rate", "headroom", "cap", "burst"),
    [
        (100.0, 0.1, 4, 4),  # slots 11.112 ms apart, 90 a second: 10 spare, (10 - 1) // 2 = 4
        (100.0, 0.1, 2, 2),  # the setting caps it
        (100.0, 0.1, 0, 0),  # and 0 turns it off
        (1000.0, 0.1, 4, 4),
        (20.0, 0.1, 4, 0),  # 18 slots a second, 2 spare: none to take
        (10.0, 0.1, 4, 0),
        (5.0, 0.0, 4, 0),  # no headroom, nothing spare
    ],
)
def test_the_burst_is_half_of_what_the_headroom_spares_less_one(
    settings, rate, headroom, cap, burst
):
    settings.BANK_RATE_LIMIT_HEADROOM = headroom
    settings.BANK_RATE_LIMIT_BURST = cap
    assert ratelimit.burst_calls(rate, ratelimit.slot_interval_us(rate)) == burst


def test_with_a_burst_slots_a_late_caller_left_unused_are_made_up(local_limits, settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 100.0
    settings.BANK_RATE_LIMIT_HEADROOM = 0.1
    settings.BANK_RATE_LIMIT_BURST = 4
    interval = ratelimit.slot_interval_us(100.0) / 1_000_000
    limiter = limiter_for("vbank")
    limiter.acquire()
    local_limits.now += 1.0  # idle: at most the burst is saved up, not a second's worth

    after_idle = [limiter.acquire() for _ in range(8)]
    # One slot at once plus the burst of 4, then one interval apart again.
    assert [round(slot.waited, 6) for slot in after_idle[:5]] == [0.0] * 5
    assert after_idle[5].waited == pytest.approx(interval, abs=1e-6)
    assert [later.at - earlier.at for earlier, later in itertools.pairwise(after_idle[4:])] == (
        pytest.approx([interval] * 3, abs=1e-6)
    )

    # A caller 3 intervals late, then callers one after another: the 3 slots it left unused
    # are given back (a schedule without a burst would stay 3 intervals behind for good).
    start = limiter.acquire().at  # the next slot (unix time), slept until
    local_limits.now += 4 * interval  # the next caller comes 3 intervals late
    late = limiter.acquire()
    assert late.waited == 0.0
    made_up = [limiter.acquire() for _ in range(6)]
    assert [round((slot.at - start) / interval, 3) for slot in made_up] == [4, 4, 4, 5, 6, 7]
    # The last of them is where it would have been had nobody been late: slot 7 after start.


def test_with_a_burst_no_second_holds_more_than_the_limit(local_limits, settings):
    """Callers coming at random (idle now and then, late now and then): the busiest window of
    one second holds at most ⌈1 s / interval⌉ + burst slots (94 at 100/s), under the limit."""
    import random

    settings.BANK_RATE_LIMIT_PER_SECOND = 100.0
    settings.BANK_RATE_LIMIT_HEADROOM = 0.1
    settings.BANK_RATE_LIMIT_BURST = 4
    limiter = limiter_for("vbank")
    chance = random.Random(25)
    slots = []
    for _ in range(3000):
        # Mostly callers already waiting; one in fifty comes a little or a few intervals late.
        if chance.random() < 0.02:
            local_limits.now += chance.choice([0.005, 0.03, 0.08])
        slots.append(limiter.acquire())

    busiest = _busiest_second(slots)
    assert busiest <= 90 + 4 < 100
    # The burst was really used: with no burst the busiest second holds at most 90.
    assert busiest > 90


def test_a_slot_further_away_than_the_caller_may_wait_is_refused_and_not_taken(
    local_limits, settings, monkeypatch
):
    settings.BANK_RATE_LIMIT_PER_SECOND = 2.0
    monkeypatch.setattr(ratelimit, "sleep", lambda seconds: None)  # callers elsewhere, waiting
    limiter = limiter_for("vbank")
    limiter.acquire()
    limiter.acquire()  # slots now and in 0.5 s taken: the next is 1 s away

    with pytest.raises(BankRateLimitedError) as caught:
        limiter.acquire(max_wait=0.3)

    assert caught.value.code == "bank_rate_limited"
    assert caught.value.retryable
    assert caught.value.retry_after == pytest.approx(1.0)
    # The refused call took nothing: the next one gets the same slot.
    assert limiter.acquire().waited == pytest.approx(1.0)


def test_the_setting_caps_every_wait(local_limits, settings, monkeypatch):
    settings.BANK_RATE_LIMIT_PER_SECOND = 1.0
    settings.BANK_RATE_LIMIT_MAX_WAIT_SECONDS = 1.5
    monkeypatch.setattr(ratelimit, "sleep", lambda seconds: None)
    limiter = limiter_for("vbank")
    limiter.acquire()
    limiter.acquire()

    with pytest.raises(BankRateLimitedError):
        limiter.acquire()  # 2 s away, over the 1.5 s cap, with no max_wait of its own


def test_each_bank_has_its_own_schedule_and_may_have_its_own_rate(local_limits, settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 4.0
    settings.SBANK_RATE_LIMIT_PER_SECOND = 1.0

    assert (rate_limit_for("vbank"), rate_limit_for("sbank")) == (4.0, 1.0)
    limiter_for("vbank").acquire()
    assert limiter_for("abank").acquire().waited == 0.0  # another bank, another schedule
    assert limiter_for("vbank").acquire().waited == pytest.approx(0.25)
    limiter_for("sbank").acquire()
    assert limiter_for("sbank").acquire().waited == pytest.approx(1.0)


def test_a_zero_rate_is_no_limit(local_limits, settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 0

    assert [limiter_for("vbank").acquire().waited for _ in range(50)] == [0.0] * 50
    assert limiter_mode("vbank") == "off"


def test_every_http_attempt_of_the_transport_takes_a_slot(local_limits, settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 10.0
    client = _client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="")
        mock.get(f"{BASE}/products", status=502, body="")
        mock.get(f"{BASE}/products", json=PRODUCTS)

        client.list_products()
        client.list_products()

        # 4 HTTP attempts (a call retried twice, then one more call): 3 waits of 0.1 s.
        assert len(mock.calls) == 4
    assert local_limits.slept == pytest.approx([0.1, 0.1, 0.1])


def test_a_slot_past_the_call_deadline_fails_the_call_without_sending_it(
    local_limits, settings, monkeypatch
):
    monkeypatch.setattr(transport, "clock", local_limits.monotonic)
    settings.BANK_RATE_LIMIT_PER_SECOND = 0.2  # one call every 5 s
    client = _client()
    limiter_for("vbank").acquire()  # another caller took the slot now: the next is 5 s away
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        products = mock.get(f"{BASE}/products", json=PRODUCTS)
        with bank_call_deadline(2.0), pytest.raises(BankUnavailableError) as caught:
            client.list_products()

    assert isinstance(caught.value, BankRateLimitedError)
    assert caught.value.retry_after == pytest.approx(5.0)
    assert products.call_count == 0
    assert local_limits.slept == []


def test_unreachable_redis_falls_back_to_a_share_per_process_logged_once(
    settings, monkeypatch, caplog
):
    settings.BANK_RATE_LIMIT_REDIS_URL = DOWN_REDIS_URL
    settings.BANK_RATE_LIMIT_PER_SECOND = 8.0
    settings.BANK_RATE_LIMIT_FALLBACK_PROCESSES = 4
    settings.BANK_RATE_LIMIT_HEADROOM = 0.0
    fake = FakeTime()
    monkeypatch.setattr(ratelimit, "monotonic", fake.monotonic)
    monkeypatch.setattr(ratelimit, "sleep", fake.sleep)
    rate_limits_reset()
    caplog.set_level(logging.WARNING, logger="banking.clients.ratelimit")
    try:
        waits = [limiter_for("vbank").acquire().waited for _ in range(5)]
        assert limiter_mode("vbank") == "fallback"
    finally:
        rate_limits_reset()

    # 8 calls/s shared by 4 assumed processes: 2 per second in this one, never unlimited.
    assert waits == [0.0] + [pytest.approx(0.5)] * 4
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1


def test_redis_is_tried_again_after_the_rest_and_shares_the_schedule_once_back(
    shared_limits, monkeypatch
):
    shared_limits.BANK_RATE_LIMIT_PER_SECOND = 1000.0
    calls = {"n": 0}
    real_reserve = ratelimit._RedisSchedules.reserve

    def flaky_reserve(self, *args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise redis.ConnectionError("gone for a moment")
        return real_reserve(self, *args)

    monkeypatch.setattr(ratelimit._RedisSchedules, "reserve", flaky_reserve)
    now = {"t": 100.0}
    monkeypatch.setattr(ratelimit, "monotonic", lambda: now["t"])
    monkeypatch.setattr(ratelimit, "sleep", lambda seconds: None)
    limiter = limiter_for("vbank")

    limiter.acquire()  # Redis fails: the process's own share
    assert limiter_mode("vbank") == "fallback"
    limiter.acquire()  # resting: Redis is not asked
    assert calls["n"] == 1
    now["t"] += ratelimit.REDIS_RETRY_SECONDS
    limiter.acquire()  # asked again, and it answers
    assert calls["n"] == 2
    assert limiter_mode("vbank") == "shared"


def test_two_limiters_on_one_redis_share_one_schedule(shared_limits, monkeypatch):
    shared_limits.BANK_RATE_LIMIT_PER_SECOND = 20.0
    slept: list[float] = []
    monkeypatch.setattr(ratelimit, "sleep", slept.append)  # book without sleeping
    first, second = ratelimit.BankRateLimiter("vbank"), ratelimit.BankRateLimiter("vbank")

    slots = [limiter.acquire() for _ in range(5) for limiter in (first, second)]

    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= 0.05 - 1e-6
    # The tenth slot, nine intervals on (on Redis's clock: a busy machine's slow calls only
    # shorten the last sleep, never move the slots).
    assert slots[-1].at - slots[0].at == pytest.approx(0.45, abs=1e-3)
    assert 0 < slept[-1] <= 0.45 + 1e-6


def test_the_shared_schedule_takes_the_same_burst(shared_limits, monkeypatch):
    """The Lua script's GCRA: after an idle spell one slot and the burst at once, then one
    interval apart; bookings without sleeping, so the schedule runs ahead of Redis's clock."""
    shared_limits.BANK_RATE_LIMIT_PER_SECOND = 100.0
    shared_limits.BANK_RATE_LIMIT_HEADROOM = 0.1
    shared_limits.BANK_RATE_LIMIT_BURST = 4
    interval = ratelimit.slot_interval_us(100.0) / 1_000_000
    monkeypatch.setattr(ratelimit, "sleep", lambda seconds: None)
    first, second = ratelimit.BankRateLimiter("vbank"), ratelimit.BankRateLimiter("vbank")

    slots = [limiter.acquire() for _ in range(6) for limiter in (first, second)]

    # Five slots at Redis's "now" (the calls came within a millisecond or two)…
    assert slots[4].at - slots[0].at < 0.005
    assert all(slot.waited < 0.005 for slot in slots[:5])
    # …then one interval apart, on the schedule the first slot started: the sixth one interval
    # after it, the twelfth seven. (Measured from the first slot, not the fifth: the burst's
    # slots sit at Redis's "now", which moves on by the milliseconds the calls take.)
    after_first = [slot.at - slots[0].at for slot in slots[5:]]
    assert after_first == pytest.approx([k * interval for k in range(1, 8)], abs=0.003)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(slots[5:])]
    assert gaps == pytest.approx([interval] * 6, abs=0.003)
    assert slots[5].waited > interval / 2


def test_the_bench_reads_calls_per_second_from_redis(shared_limits, monkeypatch):
    shared_limits.BANK_RATE_LIMIT_PER_SECOND = 4.0
    monkeypatch.setattr(ratelimit, "sleep", lambda seconds: None)
    limiter = limiter_for("abank")

    slots = [limiter.acquire() for _ in range(10)]  # booked over 2.25 s

    counts = calls_per_second("abank", since=slots[0].at, until=slots[-1].at)
    assert sum(counts.values()) == 10
    assert max(counts.values()) <= 4
    assert peak_calls_per_second("abank", since=slots[0].at, until=slots[-1].at) == max(
        counts.values()
    )
    assert calls_per_second("vbank", since=slots[0].at, until=slots[-1].at) == {}
    client = redis.Redis.from_url(REDIS_URL)
    key = f"fintrack:bank-rate:{{abank}}:calls:{int(slots[0].at)}"
    assert 0 < client.ttl(key) <= ratelimit.STATS_TTL_SECONDS
