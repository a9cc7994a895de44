"""A circuit breaker per bank, its state shared by every worker and process through the cache.

A bank that fails call after call is not helped by more calls. BANK_CIRCUIT_FAILURE_THRESHOLD
failed HTTP attempts in a row at one bank (5xx, timeouts, connection errors; never a 4xx, and a
429 is neither a failure nor a success), each within BANK_CIRCUIT_FAILURE_WINDOW_SECONDS of the
one before, open its circuit: for BANK_CIRCUIT_OPEN_SECONDS every call to it fails at once,
without reaching the bank, with BankCircuitOpenError (code `bank_circuit_open`, retry_after =
the time left), which a sync task answers by retrying after that countdown. Then the circuit is
half-open: exactly one call (whoever takes the probe lock first, an atomic cache `add`) goes
through. Its success closes the circuit; its failure opens it again for twice as long as the
time before, up to BANK_CIRCUIT_OPEN_MAX_SECONDS. Any answer below 500 is a success: the bank is
up, whatever it thought of the request.

The state lives in Django's cache (Redis in production: one state for every worker and
machine; in the embedded default the SQLite file cache shared by web and worker; in tests the
local-memory cache). A cache that fails is replaced by a local-memory one for this process
(logged once): the breaker then works per process and never breaks a call.

Public API (for the transport, the admin's service and the benches):

    circuit_for(bank_code) -> BankCircuit        one per bank and process, cheap
    BankCircuit.admit(*, probe_seconds, listener=None) -> CircuitPermit
        before a call: raises BankCircuitOpenError while open (or while another call probes)
    BankCircuit.record(permit, outcome, *, listener=None, error="") -> None
        after it: SUCCESS, FAILURE or NEUTRAL (429, or the call never sent)
    circuit_state(bank_code) -> CircuitState     what the cache holds now (admin, benches)
    circuit_close(bank_code, *, listener=None) -> CircuitTransition | None   "close now"
    circuits_reset() -> None                     forget every bank's state (tests)
    CircuitTransition                            what a listener is handed on each state
                                                 change (open, half_open, closed), never on
                                                 every call: banking.services.circuits stores
                                                 it in BankCircuitState for the admin

Settings (read at each call): BANK_CIRCUIT_FAILURE_THRESHOLD (0 = no breaker),
BANK_CIRCUIT_FAILURE_WINDOW_SECONDS, BANK_CIRCUIT_OPEN_SECONDS, BANK_CIRCUIT_OPEN_MAX_SECONDS,
BANK_CIRCUIT_STATE_READ_SECONDS.

Each process reads a bank's state from the cache at most once per
BANK_CIRCUIT_STATE_READ_SECONDS (1 s; 0 = at every call) and keeps what it read in between: a
sync makes hundreds of calls a second to one bank, and a cache round trip before each was ~4 ms
of its wall time per call (issue 25). What this process itself records (a failure, a probe's
outcome, a close) drops what it kept, so its own calls see their own changes at once; a circuit
opened by another process is seen here at most that long later (at most a second of calls a
process would have made anyway, each still counted if it fails). An open circuit is kept only
until its open time ends: then the cache is read again for the probe.
Times are wall-clock unix seconds (`clock`), comparable across processes and machines.
"""

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache

from banking.clients.errors import BankCircuitOpenError

logger = logging.getLogger(__name__)

# Looked up when called, so a test may replace it with a fake clock.
clock: Callable[[], float] = time.time

# An open state is kept this long past its end at most (a probe normally ends it sooner).
_STATE_TTL_SECONDS = 7 * 24 * 3600


class CircuitStatus(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(StrEnum):
    SUCCESS = "success"  # the bank answered below 500
    FAILURE = "failure"  # 5xx, a timeout, a connection error
    NEUTRAL = "neutral"  # 429 (the rate limit's business), or the call was never sent


@dataclass(frozen=True, slots=True)
class CircuitState:
    """A bank's circuit as the cache holds it."""

    bank_code: str
    status: CircuitStatus
    failures: int = 0  # failed calls in a row (closed), or when it opened (open)
    trips: int = 0  # how many times in a row it opened (a failed probe adds one)
    opened_at: float | None = None
    open_until: float | None = None  # when the next probe may go

    @property
    def retry_after(self) -> float | None:
        """Seconds until the next probe may go (None when closed)."""
        if self.open_until is None:
            return None
        return max(0.0, self.open_until - clock())


@dataclass(frozen=True, slots=True)
class CircuitTransition:
    """A change of a bank's circuit, handed to the listener (stored for the admin, logged)."""

    bank_code: str
    status: CircuitStatus
    failures: int
    trips: int
    opened_at: float | None
    open_until: float | None
    reason: str = ""


@dataclass(slots=True)
class CircuitPermit:
    """Leave to make one call: `probe` when it is the half-open circuit's one trial call."""

    probe: bool = False
    failures_before: int = 0
    token: str = ""
    recorded: bool = field(default=False)


Listener = Callable[[CircuitTransition], object]  # what it returns is ignored


def _notify(listener: Listener | None, transition: CircuitTransition) -> None:
    """Log the change and hand it to the listener; a failing listener never fails the call."""
    log = logger.warning if transition.status == CircuitStatus.OPEN else logger.info
    log(
        "bank circuit %s: %s (%s)",
        transition.bank_code,
        transition.status,
        transition.reason or f"{transition.failures} failure(s)",
    )
    if listener is None:
        return
    try:
        listener(transition)
    except Exception:
        logger.warning("bank circuit %s: listener failed", transition.bank_code, exc_info=True)


class _Store:
    """The cache the states live in, or a local one while that cache fails (logged once)."""

    def __init__(self) -> None:
        self.fallback: BaseCache = LocMemCache("fintrack-bank-circuits", {})
        self.failing_since: float | None = None
        self.lock = threading.Lock()

    def call(self, operation: Callable[[BaseCache], Any]) -> Any:
        if self.failing_since is not None and clock() - self.failing_since < 30:
            return operation(self.fallback)
        try:
            result = operation(default_cache)
        except Exception as exc:
            with self.lock:
                first = self.failing_since is None
                self.failing_since = clock()
            if first:
                logger.warning(
                    "bank circuits: cache unreachable (%s: %s); each process keeps its own "
                    "circuits until it answers again",
                    type(exc).__name__,
                    exc,
                )
            return operation(self.fallback)
        if self.failing_since is not None:
            with self.lock:
                self.failing_since = None
            logger.info("bank circuits: cache reachable again")
        return result


_store = _Store()


def _keys(bank_code: str) -> tuple[str, str, str]:
    prefix = f"bank-circuit:{bank_code}:"
    return prefix + "state", prefix + "failures", prefix + "probe"


def _state_from(bank_code: str, raw: Any, failures: Any) -> CircuitState:
    if not isinstance(raw, dict):
        return CircuitState(bank_code, CircuitStatus.CLOSED, failures=int(failures or 0))
    return CircuitState(
        bank_code,
        CircuitStatus(raw.get("status", CircuitStatus.OPEN)),
        failures=int(raw.get("failures", 0)),
        trips=int(raw.get("trips", 1)),
        opened_at=raw.get("opened_at"),
        open_until=raw.get("open_until"),
    )


def _open_seconds(trips: int) -> float:
    """How long the circuit stays open after its `trips`-th opening in a row (doubling)."""
    base = max(0.0, float(settings.BANK_CIRCUIT_OPEN_SECONDS))
    cap = max(base, float(settings.BANK_CIRCUIT_OPEN_MAX_SECONDS))
    return min(cap, base * 2.0 ** max(0, trips - 1))


class BankCircuit:
    """The circuit breaker of one bank (settings read at each call)."""

    def __init__(self, bank_code: str) -> None:
        self.bank_code = bank_code
        self.state_key, self.failures_key, self.probe_key = _keys(bank_code)
        # (when read, the state, the failures in a row) as last read from the cache; replaced
        # whole (one assignment), so threads of this process share it without a lock.
        self._seen: tuple[float, Any, int] | None = None

    def forget(self) -> None:
        """Drop the state kept from the last cache read: the next call reads it again."""
        self._seen = None

    def _read(self, now: float) -> tuple[Any, int]:
        """The state and the failures in a row: as kept, while fresh, else from the cache."""
        seen = self._seen
        keep = float(settings.BANK_CIRCUIT_STATE_READ_SECONDS)
        if seen is not None and 0 <= now - seen[0] < keep:
            raw = seen[1]
            open_until = raw.get("open_until") if isinstance(raw, dict) else None
            if not isinstance(raw, dict) or (open_until is not None and now < open_until):
                return raw, seen[2]
        values = _store.call(lambda c: c.get_many([self.state_key, self.failures_key]))
        raw = values.get(self.state_key)
        failures = int(values.get(self.failures_key) or 0)
        self._seen = (now, raw, failures) if keep > 0 else None
        return raw, failures

    @staticmethod
    def enabled() -> bool:
        return settings.BANK_CIRCUIT_FAILURE_THRESHOLD > 0

    def admit(self, *, probe_seconds: float, listener: Listener | None = None) -> CircuitPermit:
        """Leave to call the bank now, or BankCircuitOpenError while its circuit is open.

        Once the open time is over, the first caller to take the probe lock (held at most
        `probe_seconds`, the longest the call may take) makes the one trial call; the others
        keep failing fast until its outcome is known.
        """
        if not self.enabled():
            return CircuitPermit()
        now = clock()
        raw, failures = self._read(now)
        if not isinstance(raw, dict):
            return CircuitPermit(failures_before=failures)
        state = _state_from(self.bank_code, raw, None)
        if state.open_until is not None and now < state.open_until:
            raise self._open_error(state, state.open_until - now)
        self.forget()  # half-open from here: whatever happens next, read it again
        token = secrets.token_hex(8)
        lock_seconds = max(1, int(probe_seconds) + 1)
        if not _store.call(lambda c: c.add(self.probe_key, token, timeout=lock_seconds)):
            raise self._open_error(state, float(lock_seconds), probing=True)
        half_open = {**raw, "status": CircuitStatus.HALF_OPEN}
        _store.call(lambda c: c.set(self.state_key, half_open, timeout=_STATE_TTL_SECONDS))
        _notify(
            listener,
            CircuitTransition(
                self.bank_code,
                CircuitStatus.HALF_OPEN,
                failures=state.failures,
                trips=state.trips,
                opened_at=state.opened_at,
                open_until=state.open_until,
                reason="open time over: one probe call let through",
            ),
        )
        return CircuitPermit(probe=True, failures_before=state.failures, token=token)

    def record(
        self,
        permit: CircuitPermit,
        outcome: Outcome,
        *,
        listener: Listener | None = None,
        error: str = "",
    ) -> None:
        """What the admitted call came to; opens or closes the circuit when that changes it."""
        if permit.recorded or not self.enabled():
            return
        permit.recorded = True
        if permit.probe or outcome == Outcome.FAILURE or permit.failures_before:
            self.forget()  # this call changes the state: the next one reads it again
        if permit.probe:
            self._probe_done(permit, outcome, listener=listener, error=error)
        elif outcome == Outcome.SUCCESS:
            if permit.failures_before:
                _store.call(lambda c: c.delete(self.failures_key))
        elif outcome == Outcome.FAILURE:
            self._failed(listener=listener, error=error)

    def _failed(self, *, listener: Listener | None, error: str) -> None:
        """Count one more failure in a row; the one that reaches the threshold opens it."""
        window = max(1, int(settings.BANK_CIRCUIT_FAILURE_WINDOW_SECONDS))

        def count(c: BaseCache) -> int:
            c.add(self.failures_key, 0, timeout=window)
            try:
                failures = c.incr(self.failures_key)
            except ValueError:  # expired between add and incr
                c.set(self.failures_key, 1, timeout=window)
                failures = 1
            c.touch(self.failures_key, timeout=window)  # the window runs from the last failure
            return int(failures)

        failures = _store.call(count)
        if failures != settings.BANK_CIRCUIT_FAILURE_THRESHOLD:
            return  # below it, or already opened by the failure that reached it
        now = clock()
        state = {
            "status": CircuitStatus.OPEN,
            "failures": failures,
            "trips": 1,
            "opened_at": now,
            "open_until": now + _open_seconds(1),
        }
        if _store.call(lambda c: c.add(self.state_key, state, timeout=_STATE_TTL_SECONDS)):
            _notify(
                listener,
                CircuitTransition(
                    self.bank_code,
                    CircuitStatus.OPEN,
                    failures=failures,
                    trips=1,
                    opened_at=now,
                    open_until=state["open_until"],
                    reason=f"{failures} failed calls in a row"
                    + (f"; last: {error}" if error else ""),
                ),
            )

    def _probe_done(
        self, permit: CircuitPermit, outcome: Outcome, *, listener: Listener | None, error: str
    ) -> None:
        if outcome == Outcome.NEUTRAL:
            # No verdict (429, or never sent): the next caller probes.
            _store.call(lambda c: c.delete(self.probe_key))
            return
        raw = _store.call(lambda c: c.get(self.state_key))
        previous = _state_from(self.bank_code, raw, None)
        if outcome == Outcome.SUCCESS:
            keys = [self.state_key, self.failures_key, self.probe_key]
            _store.call(lambda c: c.delete_many(keys))
            _notify(
                listener,
                CircuitTransition(
                    self.bank_code,
                    CircuitStatus.CLOSED,
                    failures=0,
                    trips=0,
                    opened_at=None,
                    open_until=None,
                    reason="probe call succeeded",
                ),
            )
            return
        trips = previous.trips + 1
        now = clock()
        opened_at = previous.opened_at or now
        open_until = now + _open_seconds(trips)
        state = {
            "status": CircuitStatus.OPEN,
            "failures": previous.failures,
            "trips": trips,
            "opened_at": opened_at,
            "open_until": open_until,
        }
        _store.call(lambda c: c.set(self.state_key, state, timeout=_STATE_TTL_SECONDS))
        _store.call(lambda c: c.delete(self.probe_key))
        _notify(
            listener,
            CircuitTransition(
                self.bank_code,
                CircuitStatus.OPEN,
                failures=previous.failures,
                trips=trips,
                opened_at=opened_at,
                open_until=open_until,
                reason="probe call failed" + (f": {error}" if error else ""),
            ),
        )

    def _open_error(
        self, state: CircuitState, retry_after: float, *, probing: bool = False
    ) -> BankCircuitOpenError:
        if probing:
            message = f"{self.bank_code}: circuit half-open, another call is probing the bank"
        else:
            message = (
                f"{self.bank_code}: circuit open after {state.failures} failed calls in a row;"
                f" next probe in {retry_after:.0f} s"
            )
        return BankCircuitOpenError(message, bank_code=self.bank_code, retry_after=retry_after)


_circuits: dict[str, BankCircuit] = {}


def circuit_for(bank_code: str) -> BankCircuit:
    """The circuit breaker of `bank_code` (one per bank in each process)."""
    circuit = _circuits.get(bank_code)
    if circuit is None:
        circuit = _circuits.setdefault(bank_code, BankCircuit(bank_code))
    return circuit


def circuit_state(bank_code: str) -> CircuitState:
    """The bank's circuit now: closed (with its failures in a row), open or half-open."""
    state_key, failures_key, _probe = _keys(bank_code)
    values = _store.call(lambda c: c.get_many([state_key, failures_key]))
    return _state_from(bank_code, values.get(state_key), values.get(failures_key))


def circuit_close(bank_code: str, *, listener: Listener | None = None) -> CircuitTransition | None:
    """Close the bank's circuit at once (the admin's "close now"); None when it was closed."""
    keys = _keys(bank_code)
    was = circuit_state(bank_code)
    _store.call(lambda c: c.delete_many(list(keys)))
    circuit_for(bank_code).forget()
    if was.status == CircuitStatus.CLOSED:
        return None
    transition = CircuitTransition(
        bank_code,
        CircuitStatus.CLOSED,
        failures=0,
        trips=0,
        opened_at=None,
        open_until=None,
        reason="closed by hand",
    )
    _notify(listener, transition)
    return transition


def circuits_reset() -> None:
    """Forget every bank's circuit, in the cache and in the local fallback (tests)."""
    for known in _circuits.values():
        known.forget()
    for bank_code in dict.fromkeys([*settings.BANK_CODES, *settings.BANKS]):
        keys = list(_keys(bank_code))
        _store.fallback.delete_many(keys)
        try:
            default_cache.delete_many(keys)
        except Exception as exc:
            logger.info("bank circuits: cache not reset (%s)", exc)
    _store.failing_since = None
