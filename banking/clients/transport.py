"""The transport every bank call goes through (SPEC.md): one session, a timeout on every call, no
redirects, retries with backoff and full jitter, the bank's Retry-After honoured, one token refresh
on 401, each exchange handed to the raw-log hook, the status checked before the body is read.

It never imports models or the ORM: the bank token and the raw-log writer are injected as callables
(`token_provider`, `token_invalidator`, `exchange_hook`) by `banking.services.clients`.
"""

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
import requests
from requests.adapters import HTTPAdapter

from banking.clients import parsing
from banking.clients.errors import (
    BankAuthError,
    BankError,
    BankNotFoundError,
    BankRejectedError,
    BankResponseError,
    BankUnavailableError,
    ConsentRequiredError,
)
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


@dataclass(slots=True)
class BankExchange:
    """One HTTP request and its outcome, handed to the raw-log hook before any parsing."""

    bank_code: str
    method: str
    path: str  # relative to the bank's base URL, without the query string
    query: dict[str, Any]
    request_headers: dict[str, str]
    request_json: Any
    status_code: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_text: str = ""
    response_json: Any = None  # the parsed body, so the hook never parses it again
    response_is_json: bool = False
    duration_ms: int = 0
    error: str = ""
    started_at: datetime | None = None


@dataclass(slots=True)
class BankResponse:
    """A bank's answer, read once: the status, the parsed JSON body and the raw text."""

    status_code: int
    body: Any  # parsed JSON, or None for an empty or non-JSON body
    text: str
    headers: Mapping[str, str]  # requests' case-insensitive headers
    is_json: bool = False


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
        token_provider: Callable[[], str] | None = None,
        token_invalidator: Callable[[], None] | None = None,
        exchange_hook: Callable[[BankExchange], None] | None = None,
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
        # Injectable so tests neither sleep nor depend on randomness.
        self.sleep: Callable[[float], None] = time.sleep
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
        """Send with retries; refresh the bank token once on 401; map failures to typed errors."""
        headers = {"Accept": "application/json"}
        if interbank:
            headers["X-Requesting-Bank"] = self.team_id
        if consent_id:
            headers["X-Consent-Id"] = consent_id
        if product_consent_id:
            headers["X-Product-Agreement-Consent-Id"] = product_consent_id
        uses_bank_token = authenticated and bearer is None
        refreshed = False
        attempt = 0
        waited_for_bank = 0.0  # seconds of Retry-After slept in this call
        while True:
            if bearer is not None:
                headers["Authorization"] = f"Bearer {bearer}"
            elif uses_bank_token:
                headers["Authorization"] = f"Bearer {self._bank_token()}"
            try:
                response = self._attempt(method, path, query or {}, headers, json_body)
            except _TRANSPORT_ERRORS as exc:
                if attempt >= self.max_retries:
                    raise BankUnavailableError(
                        f"{self.bank_code}: {type(exc).__name__} after {attempt + 1} attempt(s)",
                        bank_code=self.bank_code,
                        retry_after=self._backoff_cap(attempt + 1),
                    ) from exc
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            status = response.status_code
            if status == 401 and uses_bank_token and not refreshed:
                refreshed = True
                self._drop_bank_token()
                continue
            if status in RETRYABLE_STATUSES:
                retry_after = self._retry_after(response) if status == 429 else None
                too_long = (
                    retry_after is not None
                    and waited_for_bank + retry_after > self.retry_after_max_seconds
                )
                if attempt >= self.max_retries or too_long:
                    # Out of attempts, or a longer wait than this call may spend: the caller
                    # retries after retry_after (a Celery countdown, an API's 503).
                    raise BankUnavailableError(
                        f"{self.bank_code}: HTTP {status} after {attempt + 1} attempt(s)"
                        + (f", Retry-After {retry_after:g} s" if too_long else ""),
                        bank_code=self.bank_code,
                        status_code=status,
                        detail=response.body if response.is_json else response.text[:500],
                        retry_after=(
                            retry_after
                            if retry_after is not None
                            else self._backoff_cap(attempt + 1)
                        ),
                    )
                if retry_after is not None:
                    self.sleep(retry_after)
                    waited_for_bank += retry_after
                else:
                    self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            return self._checked(response, path)

    def _attempt(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        headers: dict[str, str],
        json_body: Any,
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
                timeout=self.timeout_seconds,
                allow_redirects=False,
            )
            # Reading the body here keeps a dropped connection inside the retry loop. Decoding
            # ourselves avoids requests' slow charset sniffing; the body is parsed exactly once.
            body_text = response.content.decode(response.encoding or "utf-8", errors="replace")
        except _TRANSPORT_ERRORS as exc:
            exchange.duration_ms = int((time.perf_counter() - started) * 1000)
            exchange.error = f"{type(exc).__name__}: {exc}"[:255]
            self._record(exchange)
            raise
        exchange.duration_ms = int((time.perf_counter() - started) * 1000)
        body: Any = None
        parsed = False
        if body_text:
            try:
                body = orjson.loads(body_text)  # ~2× json.loads; stricter (no NaN)
                parsed = True
            except ValueError:
                body = None
        result = BankResponse(
            status_code=response.status_code,
            body=body,
            text=body_text,
            headers=response.headers,
            is_json=parsed,
        )
        exchange.status_code = result.status_code
        exchange.response_headers = dict(result.headers)
        exchange.response_text = body_text
        exchange.response_json = body
        exchange.response_is_json = parsed
        self._record(exchange)
        return result

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

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        return max(0.0, min(self.jitter(self._backoff_cap(attempt)), self.max_sleep_seconds))

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

    def _checked(self, response: BankResponse, path: str) -> BankResponse:
        """Status first, then the body: 2xx must be JSON (or empty); anything else a typed error."""
        status = response.status_code
        if 200 <= status < 300:
            if response.text and not response.is_json:
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
            raise BankAuthError(text, **context)
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
