"""The transport every bank call goes through (SPEC.md): one session, a timeout on every call, no
redirects, retries with backoff and full jitter, the bank's Retry-After honoured, one token refresh
on a 401 that says the token is no longer valid, each exchange handed to the raw-log hook, the
status checked before the body is read.

Before each HTTP attempt the bank's circuit breaker (circuit.py) is asked (open: fail at once with
BankCircuitOpenError, no call made) and the bank's shared rate limit (ratelimit.py) gives the call
its slot (waited for within the deadline, else BankRateLimitedError); each attempt's outcome is
reported back to the breaker.

Bounded: a body is streamed and refused past `max_response_bytes` (a page of 200,000 items is never
held, let alone parsed), and a deadline (the client's `deadline_seconds`, or `bank_call_deadline()`
around a web request) ends retries and waits in time: no attempt starts, and no sleep ends, past it,
and each attempt's timeout is cut to what is left.

One retry layer of waiting, not two nested ones. Outside a task (a web request, a command) this
transport is the only layer: up to `max_retries` retries of a 5xx, 429, timeout or dropped
connection, with backoff and Retry-After waits, all within the deadline. Inside a sync task
(`bank_calls_retried_by_task()`, sync/tasks.py) the task's retry is the layer that waits (a Celery
countdown frees the worker): here a call is retried at most BANK_TASK_MAX_RETRIES quick times
(never more than `max_retries`), sleeping at most BANK_TASK_MAX_SLEEP_SECONDS before each (a
backoff, or a Retry-After no longer than that); anything longer raises BankUnavailableError with
`retry_after` for the task's countdown. During a full outage a sync run therefore makes at most
(1 + BANK_TASK_MAX_RETRIES) × (1 + SYNC_TASK_MAX_RETRIES) bank calls (3 × 6 = 18 with the
defaults, over ~8 minutes, then it fails until the next scheduled run), against 4 × 6 = 24 with
the transport's own retries nested in the task's; and once BANK_CIRCUIT_FAILURE_THRESHOLD calls in
a row failed, the whole bank, all connections together, gets only one probe per open period
(banking/tests/test_transport_retry_layers.py counts them).

401 (SPEC §2.3): only "Could not validate credentials" (or a Bearer challenge saying the token is
invalid) means the bank token expired: it is fetched again once and the call repeated. Any other
401 on a route called with the bank token (`Insufficient permissions`, `Invalid client_id`,
`Client token required …`) is BankPermissionError at once, with no new token and no retry; a 401
to a credentials call (/auth/bank-token, /auth/login) is BankAuthError.

It never imports models or the ORM: the bank token, the raw-log writer and the circuit's state
recorder are injected as callables (`token_provider`, `token_invalidator`, `exchange_hook`,
`circuit_listener`) by `banking.services.clients`.
"""

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
import requests
from requests.adapters import HTTPAdapter

from banking.clients import parsing
from banking.clients.circuit import BankCircuit, CircuitPermit, CircuitTransition, Outcome
from banking.clients.circuit import circuit_for as _circuit_for
from banking.clients.errors import (
    BankAuthError,
    BankError,
    BankNotFoundError,
    BankPermissionError,
    BankRejectedError,
    BankResponseError,
    BankUnavailableError,
    ConsentRequiredError,
)
from banking.clients.ratelimit import BankRateLimiter
from banking.clients.ratelimit import limiter_for as _limiter_for
from banking.clients.types import BankTokenInfo

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
CONSENT_REQUIRED_CODES = frozenset({"CONSENT_REQUIRED"})
_TRANSPORT_ERRORS = (
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,  # includes a keep-alive connection dropped by the server
    requests.exceptions.ChunkedEncodingError,
)

Parsed = TypeVar("Parsed")

# The largest body read from a bank: a transactions page of 100 items is ~100 KB.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_READ_CHUNK_BYTES = 64 * 1024
# An attempt is not started with less time than this left before the deadline.
_MIN_ATTEMPT_SECONDS = 0.25

# The clock deadlines are measured on (a test replaces it with a fake one). Read where it is
# used, so a replacement applies at once, to `bank_call_deadline` and every client alike.
clock: Callable[[], float] = time.monotonic

_call_deadline: ContextVar[float | None] = ContextVar("bank_call_deadline", default=None)


@dataclass(frozen=True, slots=True)
class _TaskRetries:
    """The transport's share of retrying inside a task whose own retry does the waiting."""

    max_retries: int
    max_sleep_seconds: float


_task_retries: ContextVar[_TaskRetries | None] = ContextVar("bank_task_retries", default=None)


@contextmanager
def bank_calls_retried_by_task(*, max_retries: int, max_sleep_seconds: float) -> Iterator[None]:
    """Bank calls made inside belong to a task that retries itself (one layer of waiting): each
    is retried at most `max_retries` times (and never more than its client's own `max_retries`),
    sleeping at most `max_sleep_seconds` before each retry (a backoff, or a Retry-After no longer
    than that); a longer wait is left to the task (BankUnavailableError.retry_after)."""
    token = _task_retries.set(
        _TaskRetries(max_retries=max(0, max_retries), max_sleep_seconds=max(0.0, max_sleep_seconds))
    )
    try:
        yield
    finally:
        _task_retries.reset(token)


@contextmanager
def bank_call_deadline(seconds: float | None) -> Iterator[None]:
    """Bank calls made inside end within `seconds` from now (None or 0: no deadline); a nested
    deadline never extends an outer one."""
    if not seconds or seconds <= 0:
        yield
        return
    deadline = clock() + seconds
    outer = _call_deadline.get()
    token = _call_deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _call_deadline.reset(token)


def _sleep(seconds: float) -> None:
    """time.sleep, looked up when called (a test may replace it)."""
    time.sleep(seconds)


_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8", "u8"})


def _parsed_body(content: bytes, encoding: str | None) -> tuple[Any, bool, bytes]:
    """(parsed JSON or None, whether it parsed, the body as UTF-8 bytes) of a response body.

    A UTF-8 body (what the banks send) is parsed from its bytes as read: no text is decoded, and
    the bytes are what the raw log stores (orjson validates them as UTF-8 while parsing). Any
    other charset, or bytes that are not valid UTF-8, are decoded as before (undecodable bytes
    replaced) and parsed from that text, which is then kept as UTF-8.
    """
    if not content:
        return None, False, content
    if encoding is None or encoding.lower() in _UTF8_NAMES:
        try:
            return orjson.loads(content), True, content  # ~2× json.loads; stricter (no NaN)
        except ValueError:
            pass  # not JSON, or not valid UTF-8: decoded below like any other text
    text = content.decode(encoding or "utf-8", errors="replace")
    utf8 = text.encode()
    try:
        return orjson.loads(utf8), True, utf8
    except ValueError:
        return None, False, utf8


class _BodyTooLarge(Exception):
    """A response body over the client's byte limit (declared, or counted while reading)."""

    def __init__(self, size: int | None):
        super().__init__(size)
        self.size = size


def _utf8_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


@dataclass(slots=True, init=False)
class BankExchange:
    """One HTTP request and its outcome, handed to the raw-log hook before any parsing.

    The response body is kept once, as bytes: `response_body` is its UTF-8 text (the bank's own
    bytes when it sent valid UTF-8, as read from the socket); `response_text` decodes it when
    asked (an error message, a test). Either may be given to build one.
    """

    bank_code: str
    method: str
    path: str  # relative to the bank's base URL, without the query string
    query: dict[str, Any]
    request_headers: dict[str, str]
    request_json: Any
    status_code: int | None
    response_headers: dict[str, str]
    response_body: bytes  # UTF-8
    response_json: Any  # the parsed body, so the hook never parses it again
    response_is_json: bool
    duration_ms: int
    error: str
    started_at: datetime | None

    def __init__(
        self,
        *,
        bank_code: str,
        method: str,
        path: str,
        query: dict[str, Any],
        request_headers: dict[str, str],
        request_json: Any,
        status_code: int | None = None,
        response_headers: dict[str, str] | None = None,
        response_body: bytes = b"",
        response_text: str | None = None,
        response_json: Any = None,
        response_is_json: bool = False,
        duration_ms: int = 0,
        error: str = "",
        started_at: datetime | None = None,
    ) -> None:
        self.bank_code = bank_code
        self.method = method
        self.path = path
        self.query = query
        self.request_headers = request_headers
        self.request_json = request_json
        self.status_code = status_code
        self.response_headers = {} if response_headers is None else response_headers
        self.response_body = response_text.encode() if response_text is not None else response_body
        self.response_json = response_json
        self.response_is_json = response_is_json
        self.duration_ms = duration_ms
        self.error = error
        self.started_at = started_at

    @property
    def response_text(self) -> str:
        """The response body as text (decoded on each access: not for a hot path)."""
        return _utf8_text(self.response_body)

    @response_text.setter
    def response_text(self, text: str) -> None:
        self.response_body = text.encode()


@dataclass(slots=True)
class BankResponse:
    """A bank's answer, read once: the status, the parsed JSON body and the body's UTF-8 bytes."""

    status_code: int
    body: Any  # parsed JSON, or None for an empty or non-JSON body
    content: bytes  # the body's UTF-8 text (the bank's own bytes when it sent valid UTF-8)
    headers: Mapping[str, str]  # requests' case-insensitive headers
    is_json: bool = False

    @property
    def text(self) -> str:
        """The body as text, decoded when asked (error messages only)."""
        return _utf8_text(self.content)


class BankTransport:
    """Sending, retrying and checking the calls of one bank; the concerns build on it."""

    bank_code: str = ""

    def __init__(
        self,
        *,
        base_url: str,
        team_id: str,
        team_secret: str,
        bank_code: str | None = None,
        timeout_seconds: float = 10.0,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        max_sleep_seconds: float = 10.0,
        retry_after_max_seconds: float = 20.0,
        verify_tls: bool = True,
        pool_size: int = 10,
        deadline_seconds: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        token_provider: Callable[[], str] | None = None,
        token_invalidator: Callable[[], None] | None = None,
        exchange_hook: Callable[[BankExchange], None] | None = None,
        circuit_listener: Callable[[CircuitTransition], object] | None = None,
    ) -> None:
        self.bank_code = bank_code or self.bank_code
        self.base_url: str = base_url.rstrip("/")
        self.team_id: str = team_id
        self.team_secret: str = team_secret
        self.timeout_seconds: float = timeout_seconds
        self.max_retries: int = max(0, max_retries)
        self.backoff_seconds: float = backoff_seconds
        # The longest backoff sleep between two attempts.
        self.max_sleep_seconds: float = max_sleep_seconds
        # The most one call waits out the bank's Retry-After answers in total; a longer wait is
        # left to the caller (BankUnavailableError.retry_after), e.g. a Celery retry's countdown.
        self.retry_after_max_seconds: float = max(0.0, retry_after_max_seconds)
        self.token_provider: Callable[[], str] | None = token_provider
        self.token_invalidator: Callable[[], None] | None = token_invalidator
        self.exchange_hook: Callable[[BankExchange], None] | None = exchange_hook
        # The bank's rate limit and circuit breaker, shared by every process (None: neither).
        self.rate_limiter: BankRateLimiter | None = (
            _limiter_for(self.bank_code) if self.bank_code else None
        )
        self.circuit: BankCircuit | None = _circuit_for(self.bank_code) if self.bank_code else None
        # Told of each change of the circuit's state (stored for the admin); never on each call.
        self.circuit_listener: Callable[[CircuitTransition], object] | None = circuit_listener
        # Every call of this client ends by then (a `clock()` time), whatever its retries.
        self.deadline: float | None = (
            clock() + deadline_seconds if deadline_seconds and deadline_seconds > 0 else None
        )
        self.max_response_bytes: int = max(1, max_response_bytes)
        # Injectable so tests neither sleep nor depend on randomness.
        self.sleep: Callable[[float], None] = _sleep
        self.jitter: Callable[[float], float] = lambda cap: random.uniform(0, cap)
        self.calls_made: int = 0
        self._calls_lock = threading.Lock()  # a sync may read several accounts at once
        self._own_token: BankTokenInfo | None = None  # auth's, when no provider is injected
        self.session: requests.Session = requests.Session()
        # Proxies and the CA bundle are read from the environment once, for this bank's URL:
        # with trust_env, requests re-reads the environment (and ~/.netrc) on every call.
        environment = self.session.merge_environment_settings(
            self.base_url, {}, None, verify_tls, None
        )
        self.session.trust_env = False
        self.session.proxies = environment["proxies"]
        self.session.verify = environment["verify"]
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        """Release the pooled connections."""
        self.session.close()

    # --- The bank token, provided by the auth concern (auth.AuthMixin) ----------------------

    def _bank_token(self) -> str:
        """The bank token to send as Bearer."""
        raise NotImplementedError

    def _drop_bank_token(self) -> None:
        """Forget the bank token after a 401, so the next call gets a fresh one."""
        raise NotImplementedError

    # --- Sending ----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        authenticated: bool = True,
        interbank: bool = False,
        consent_id: str | None = None,
        product_consent_id: str | None = None,
        bearer: str | None = None,
    ) -> BankResponse:
        """Send with retries; refresh the bank token once on an expired-token 401; map failures
        to typed errors."""
        headers = {"Accept": "application/json"}
        if interbank:
            headers["X-Requesting-Bank"] = self.team_id
        if consent_id:
            headers["X-Consent-Id"] = consent_id
        if product_consent_id:
            headers["X-Product-Agreement-Consent-Id"] = product_consent_id
        uses_bank_token = authenticated and bearer is None
        deadline = self._deadline()
        max_retries, max_sleep, retry_after_max = self._retry_budget()
        refreshed = False
        attempt = 0
        waited_for_bank = 0.0  # seconds of Retry-After slept in this call
        last_failure: BankUnavailableError | None = None
        while True:
            if deadline is not None and deadline - clock() < _MIN_ATTEMPT_SECONDS:
                raise self._past_deadline(attempt, last_failure)
            if bearer is not None:
                headers["Authorization"] = f"Bearer {bearer}"
            elif uses_bank_token:
                headers["Authorization"] = f"Bearer {self._bank_token()}"
            try:
                response = self._guarded_attempt(
                    method, path, query or {}, headers, json_body, deadline=deadline
                )
            except _TRANSPORT_ERRORS as exc:
                failure = BankUnavailableError(
                    f"{self.bank_code}: {type(exc).__name__} after {attempt + 1} attempt(s)",
                    bank_code=self.bank_code,
                    retry_after=self._backoff_cap(attempt + 1),
                )
                if attempt >= max_retries:
                    raise failure from exc
                self._pause(self._backoff(attempt, max_sleep), deadline, failure, cause=exc)
                last_failure = failure
                attempt += 1
                continue
            status = response.status_code
            token_expired = status == 401 and uses_bank_token and self._token_refused(response)
            if token_expired and not refreshed:
                refreshed = True
                self._drop_bank_token()
                continue
            if status in RETRYABLE_STATUSES:
                retry_after = self._retry_after(response) if status == 429 else None
                too_long = (
                    retry_after is not None and waited_for_bank + retry_after > retry_after_max
                )
                # Out of attempts, a longer wait than this call may spend or one past its
                # deadline: the caller retries after retry_after (a Celery countdown, a 503).
                failure = BankUnavailableError(
                    f"{self.bank_code}: HTTP {status} after {attempt + 1} attempt(s)"
                    + (f", Retry-After {retry_after:g} s" if too_long else ""),
                    bank_code=self.bank_code,
                    status_code=status,
                    detail=response.body if response.is_json else response.text[:500],
                    retry_after=(
                        retry_after if retry_after is not None else self._backoff_cap(attempt + 1)
                    ),
                )
                if attempt >= max_retries or too_long:
                    raise failure
                if retry_after is not None:
                    self._pause(retry_after, deadline, failure)
                    waited_for_bank += retry_after
                else:
                    self._pause(self._backoff(attempt, max_sleep), deadline, failure)
                last_failure = failure
                attempt += 1
                continue
            return self._checked(response, path, credentials_call=not authenticated)

    def _retry_budget(self) -> tuple[int, float, float]:
        """(retries, longest backoff sleep, most Retry-After waited) for a call made now: the
        client's own, or inside a self-retrying task the task's smaller share."""
        task = _task_retries.get()
        if task is None:
            return self.max_retries, self.max_sleep_seconds, self.retry_after_max_seconds
        return (
            min(self.max_retries, task.max_retries),
            min(self.max_sleep_seconds, task.max_sleep_seconds),
            min(self.retry_after_max_seconds, task.max_sleep_seconds),
        )

    def _guarded_attempt(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        headers: dict[str, str],
        json_body: Any,
        *,
        deadline: float | None,
    ) -> BankResponse:
        """One attempt through the bank's circuit breaker and rate limit: admitted (or
        BankCircuitOpenError), given its slot (or BankRateLimitedError), sent, its outcome
        reported to the breaker."""
        permit: CircuitPermit | None = None
        if self.circuit is not None:
            permit = self.circuit.admit(
                probe_seconds=self.timeout_seconds, listener=self.circuit_listener
            )
        outcome, error = Outcome.NEUTRAL, ""
        try:
            if self.rate_limiter is not None:
                self.rate_limiter.acquire(
                    max_wait=None
                    if deadline is None
                    else max(0.0, deadline - clock() - _MIN_ATTEMPT_SECONDS)
                )
            timeout = self.timeout_seconds
            if deadline is not None:
                timeout = max(0.001, min(timeout, deadline - clock()))
            try:
                response = self._attempt(
                    method, path, query, headers, json_body, timeout=timeout, deadline=deadline
                )
            except _TRANSPORT_ERRORS as exc:
                outcome, error = Outcome.FAILURE, f"{type(exc).__name__} on {path}"
                raise
            if response.status_code >= 500:
                outcome, error = Outcome.FAILURE, f"HTTP {response.status_code} on {path}"
            elif response.status_code != 429:
                outcome = Outcome.SUCCESS
            return response
        finally:
            if permit is not None and self.circuit is not None:
                self.circuit.record(permit, outcome, listener=self.circuit_listener, error=error)

    @staticmethod
    def _token_refused(response: BankResponse) -> bool:
        """Whether a 401 says the bank token itself is bad or expired (SPEC §2.3)."""
        return parsing.token_refused(
            response.body if response.is_json else None,
            response.headers.get("WWW-Authenticate", ""),
        )

    def _deadline(self) -> float | None:
        """When this call must end: the client's deadline or the caller's, the earlier one."""
        own, caller = self.deadline, _call_deadline.get()
        if own is None:
            return caller
        return own if caller is None else min(own, caller)

    def _pause(
        self,
        seconds: float,
        deadline: float | None,
        failure: BankError,
        *,
        cause: BaseException | None = None,
    ) -> None:
        """Sleep before the next attempt, or raise `failure` when that attempt could not start
        before the deadline (giving up now beats answering after the caller has gone)."""
        if deadline is not None and clock() + seconds > deadline - _MIN_ATTEMPT_SECONDS:
            raise failure from cause
        self.sleep(seconds)

    def _past_deadline(self, attempts: int, last: BankUnavailableError | None) -> BankError:
        """The error of a call whose deadline came before (another) attempt could start."""
        return BankUnavailableError(
            f"{self.bank_code}: no answer within the call's deadline"
            + (f" ({last.message})" if last is not None else ""),
            bank_code=self.bank_code,
            status_code=last.status_code if last is not None else None,
            detail=last.detail if last is not None else None,
            retry_after=self._backoff_cap(attempts + 1),
        )

    def _attempt(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        headers: dict[str, str],
        json_body: Any,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> BankResponse:
        """One HTTP request, recorded for the raw log whatever its outcome."""
        exchange = BankExchange(
            bank_code=self.bank_code,
            method=method,
            path=path,
            query=query,
            request_headers=dict(headers),
            request_json=json_body,
            started_at=datetime.now(UTC),
        )
        started = time.perf_counter()
        with self._calls_lock:
            self.calls_made += 1
        try:
            response = self.session.request(
                method,
                self.base_url + path + ("?" + urlencode(query) if query else ""),
                headers=headers,
                json=json_body,
                timeout=self.timeout_seconds if timeout is None else timeout,
                allow_redirects=False,
                stream=True,  # the body is read below, within the byte limit
            )
        except _TRANSPORT_ERRORS as exc:
            self._record_error(exchange, started, f"{type(exc).__name__}: {exc}")
            raise
        try:
            # Reading the body here keeps a dropped connection inside the retry loop. The body is
            # kept as bytes and parsed exactly once (no charset sniffing, no text decoded).
            content = self._read_body(response, deadline)
        except _TRANSPORT_ERRORS as exc:
            response.close()
            self._record_error(exchange, started, f"{type(exc).__name__}: {exc}")
            raise
        except _BodyTooLarge as exc:
            response.close()  # the rest of the body is never read
            size = f"{exc.size} bytes" if exc.size is not None else "more"
            message = (
                f"{self.bank_code} {path}: response body of {size}, over the"
                f" {self.max_response_bytes}-byte limit; refused unread"
            )
            exchange.status_code = response.status_code
            exchange.response_headers = dict(response.headers)
            self._record_error(exchange, started, message)
            raise BankResponseError(
                message, bank_code=self.bank_code, status_code=response.status_code
            ) from None
        exchange.duration_ms = int((time.perf_counter() - started) * 1000)
        body, parsed, content = _parsed_body(content, response.encoding)
        result = BankResponse(
            status_code=response.status_code,
            body=body,
            content=content,
            headers=response.headers,
            is_json=parsed,
        )
        exchange.status_code = result.status_code
        exchange.response_headers = dict(result.headers)
        exchange.response_body = content
        exchange.response_json = body
        exchange.response_is_json = parsed
        self._record(exchange)
        return result

    def _read_body(self, response: requests.Response, deadline: float | None) -> bytes:
        """The body, read in chunks up to the byte limit; past it, or past the deadline, stop."""
        limit = self.max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _BodyTooLarge(int(declared))
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge(None)
            chunks.append(chunk)
            if deadline is not None and clock() > deadline:
                raise requests.exceptions.ReadTimeout("body not read before the call's deadline")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _record_error(self, exchange: BankExchange, started: float, error: str) -> None:
        """Record an exchange that ended without a usable answer."""
        exchange.duration_ms = int((time.perf_counter() - started) * 1000)
        exchange.error = error[:255]
        self._record(exchange)

    def _record(self, exchange: BankExchange) -> None:
        """Hand the exchange to the raw-log hook; a failing hook is logged, never raised."""
        if self.exchange_hook is None:
            return
        try:
            self.exchange_hook(exchange)
        except Exception:
            # Logging never breaks the call it records.
            logger.warning("%s: raw-log hook failed", self.bank_code, exc_info=True)

    # --- Waiting between attempts -----------------------------------------------------------

    def _backoff_cap(self, attempt: int) -> float:
        """The longest backoff before attempt `attempt + 1`."""
        return min(self.max_sleep_seconds, self.backoff_seconds * 2.0**attempt)

    def _backoff(self, attempt: int, max_sleep: float | None = None) -> float:
        """Exponential backoff with full jitter, capped (at `max_sleep` when given)."""
        cap = self.max_sleep_seconds if max_sleep is None else max_sleep
        return max(0.0, min(self.jitter(min(self._backoff_cap(attempt), cap)), cap))

    @staticmethod
    def _retry_after(response: BankResponse) -> float | None:
        """The Retry-After header in seconds (delta-seconds or an HTTP date), None if absent."""
        value = response.headers.get("Retry-After") or response.headers.get("retry-after")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            return max(0.0, seconds) if math.isfinite(seconds) else None
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    # --- Checking and reading answers -------------------------------------------------------

    def _checked(
        self, response: BankResponse, path: str, *, credentials_call: bool = False
    ) -> BankResponse:
        """Status first, then the body: 2xx must be JSON (or empty); anything else a typed error.

        A 401 is BankAuthError when our credentials were refused (a credentials call, or a token
        the bank says is invalid), else BankPermissionError (SPEC §2.3)."""
        status = response.status_code
        if 200 <= status < 300:
            if response.content and not response.is_json:
                raise BankResponseError(
                    f"{self.bank_code} {path}: HTTP {status} with a body that is not JSON",
                    bank_code=self.bank_code,
                    status_code=status,
                    detail=response.text[:500],
                )
            return response
        body = response.body if response.is_json else (response.text[:500] or None)
        message = parsing.error_detail_message(body) or (
            body if isinstance(body, str) and len(body) < 200 else f"HTTP {status}"
        )
        text = f"{self.bank_code} {path}: {message}"
        context: dict[str, Any] = {
            "bank_code": self.bank_code,
            "status_code": status,
            "detail": body,
        }
        if 300 <= status < 400:
            raise BankResponseError(f"{self.bank_code} {path}: unexpected redirect", **context)
        if status == 401:
            if credentials_call or self._token_refused(response):
                raise BankAuthError(text, **context)
            raise BankPermissionError(text, **context)
        if parsing.error_code(body) in CONSENT_REQUIRED_CODES:
            raise ConsentRequiredError(text, **context)
        if status == 404:
            raise BankNotFoundError(text, **context)
        if 400 <= status < 500:
            raise BankRejectedError(text, **context)
        raise BankUnavailableError(text, **context)

    def _expect_dict(self, response: BankResponse, path: str) -> dict[str, Any]:
        """The body as a JSON object, or a bad-response error."""
        if not isinstance(response.body, dict):
            raise self._bad_response(f"{path}: expected a JSON object", response)
        return response.body

    def _read(
        self,
        response: BankResponse,
        path: str,
        parse: Callable[[dict[str, Any]], Parsed],
    ) -> Parsed:
        """The JSON object body through one of `parsing`'s readers; bad data → BankResponseError."""
        body = self._expect_dict(response, path)
        try:
            return parse(body)
        except parsing.BankDataError as exc:
            raise self._bad_response(str(exc), response) from None

    def _bad_response(self, message: str, response: BankResponse) -> BankError:
        """A BankResponseError about `response`."""
        return BankResponseError(
            f"{self.bank_code}: {message}",
            bank_code=self.bank_code,
            status_code=response.status_code,
            detail=response.text[:500],
        )
