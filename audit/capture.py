"""Raw API log capture: the hook bank clients call after every HTTP exchange, and its writer.

One exchange becomes two RawApiLog rows (request and response, same `exchange_id`) written with a
single statement (a COPY on PostgreSQL). Bodies are redacted once; big ones are redacted as text
and truncated with a marker instead of being walked and re-serialised. Writing never breaks the
bank call it records.

`raw_log_hook` writes each exchange as it happens (an API request's few bank calls);
`RawLogBuffer` gathers a sync run's thousands and writes them in bulk, off the path between one
bank call and the next.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Cast
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit import redaction
from audit.models import Direction, RawApiLog
from fintrack.core.concurrency import WorkerPool
from fintrack.core.correlation import get_correlation_id
from fintrack.core.db import copy_rows
from fintrack.core.fields import VerbatimJSONField

logger = logging.getLogger(__name__)

TRUNCATED_MARKER = "_truncated"


def _body_payload(
    *, parsed: Any, is_json: bool, text: str, secrets: tuple[str, ...], limit: int
) -> Any:
    """What the payload column stores: redacted JSON, or {"_text": …} for text or big bodies."""
    if not text:
        return None
    # A char is at most 4 bytes in UTF-8; only measure bytes when it could matter.
    size = len(text) if len(text) * 4 <= limit else len(text.encode("utf-8"))
    if is_json and size <= limit:
        if not redaction.might_contain_secrets(text, secrets=secrets):
            return parsed  # nothing to cut: skip the walk (pages of transactions, mostly)
        return redaction.redact_json(parsed, secrets=secrets)
    redacted = redaction.redact_text(text, secrets=secrets)
    if size <= limit:
        return {"_text": redacted}
    cut = redacted.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
    return {TRUNCATED_MARKER: True, "_original_bytes": size, "_text": cut}


def _request_payload(body: Any, *, secrets: tuple[str, ...]) -> Any:
    return None if body is None else redaction.redact_json(body, secrets=secrets)


def _endpoint(path: str, query: dict[str, Any], secrets: tuple[str, ...]) -> str:
    if not query:
        return path[:512]
    redacted = redaction.redact_query(query, secrets=secrets)
    pairs = "&".join(f"{name}={value}" for name, value in redacted.items())
    return f"{path}?{pairs}"[:512]


def raw_log_write(*, exchange, user=None, secrets: Iterable[str] = ()) -> None:
    """Store one exchange (a `banking.clients.BankExchange`) as a request and a response row."""
    _insert(
        _exchange_rows(
            exchange=exchange,
            user_id=getattr(user, "pk", None),
            secrets=tuple(secret for secret in secrets if secret),
            correlation_id=str(get_correlation_id() or ""),
            received_at=timezone.now(),
        )
    )


@dataclass(frozen=True, slots=True)
class _AsSent:
    """A response body stored as the bank's very text (orjson parsed it: it is valid JSON)."""

    text: str


def _exchange_rows(
    *,
    exchange,
    user_id: int | None,
    secrets: tuple[str, ...],
    correlation_id: str,
    received_at: datetime,
) -> list[dict[str, Any]]:
    """The request row and the response row of one exchange, redacted: RawApiLog's columns."""
    limit = settings.RAW_LOG_MAX_PAYLOAD_BYTES
    exchange_id = uuid.uuid4()
    endpoint = _endpoint(exchange.path, exchange.query, secrets)
    payload = _body_payload(
        parsed=exchange.response_json,
        is_json=exchange.response_is_json,
        text=exchange.response_text,
        secrets=secrets,
        limit=limit,
    )
    if payload is not None and payload is exchange.response_json:
        # Stored as received: the bank's very text, which the database only validates (`json`),
        # rather than Python dumping the parsed copy again (~1 ms of CPU for a page of 100 rows).
        payload = _AsSent(exchange.response_text)
    shared = {
        "user_id": user_id,
        "bank_code": exchange.bank_code,
        "endpoint": endpoint,
        "method": exchange.method,
        "correlation_id": correlation_id,
        "exchange_id": exchange_id,
    }
    request_row = {
        **shared,
        "direction": Direction.REQUEST,
        "status_code": None,
        "duration_ms": None,
        "headers": redaction.redact_headers(exchange.request_headers, secrets=secrets),
        "payload": _request_payload(exchange.request_json, secrets=secrets),
        "error": "",
        "created_at": exchange.started_at or received_at,
    }
    response_row = {
        **shared,
        "direction": Direction.RESPONSE,
        "status_code": exchange.status_code,
        "duration_ms": max(0, int(exchange.duration_ms)),
        "headers": redaction.redact_headers(exchange.response_headers, secrets=secrets),
        "payload": payload,
        "error": redaction.redact_text(exchange.error, secrets=secrets)[:255],
        "created_at": received_at,
    }
    return [request_row, response_row]


def _insert(rows: list[dict[str, Any]]) -> None:
    """Write rows of `_exchange_rows` in one statement: a COPY on PostgreSQL, else an INSERT."""
    # atomic: a failed write must not poison a caller's transaction (a savepoint), nor leave a
    # COPY half done.
    with transaction.atomic():
        if connection.vendor == "postgresql":
            copy_rows(RawApiLog, _COPY_COLUMNS, [_copy_row(row) for row in rows])
        else:
            RawApiLog.objects.bulk_create([_model_row(row) for row in rows])


# Every column of RawApiLog but the id, read from the model: `_exchange_rows` keys its rows by
# them, and a row lacking one fails loudly here rather than a column being left out of the COPY.
_COPY_COLUMNS = tuple(
    field.column
    for field in RawApiLog._meta.concrete_fields
    if field.column and not field.primary_key
)


def _copy_row(row: dict[str, Any]) -> tuple:
    payload = row["payload"]
    if isinstance(payload, _AsSent):
        payload = payload.text.encode()
    elif payload is not None:
        payload = orjson.dumps(payload)
    values = {**row, "headers": Jsonb(row["headers"]), "payload": payload}
    return tuple(values[column] for column in _COPY_COLUMNS)


def _model_row(row: dict[str, Any]) -> RawApiLog:
    payload = row["payload"]
    if isinstance(payload, _AsSent):
        payload = Cast(Value(payload.text), output_field=VerbatimJSONField())
    return RawApiLog(**{**row, "payload": payload})


@dataclass(frozen=True, slots=True)
class _Captured:
    exchange: Any
    correlation_id: str
    received_at: datetime


class RawLogBuffer:
    """A sync run's raw logs: captured as each bank call returns, written in bulk.

    Writing an exchange costs a round trip and an INSERT of a ~60 KB page; done by the hook it
    sat between one bank call and the next (a third of a heavy sync's time). The hook only notes
    the exchange (its correlation id and time too). `flush_soon()` writes what was noted on a
    writer thread of its own when `background` (the sync calls it after each batch of
    transactions), `close()` writes the rest and must end the run, failed or not. If the worker
    process dies, logs not yet written are lost with the transactions not yet written.
    `max_pending` bounds memory: the hook writes by itself when that many exchanges wait.
    """

    def __init__(
        self,
        *,
        user=None,
        secrets: Iterable[str] = (),
        max_pending: int = 64,
        background: bool = False,
    ):
        self.user_id = getattr(user, "pk", None)
        self.secrets = tuple(secret for secret in secrets if secret)
        self.max_pending = max_pending
        self._pending: list[_Captured] = []
        self._lock = threading.Lock()
        # One write at a time, none queued behind it: the next flush_soon() takes the rest.
        self._writer = WorkerPool(max_pending=1, name="raw-log") if background else None

    def hook(self, exchange) -> None:
        """The bank client's exchange hook: note the exchange, write nothing yet."""
        captured = _Captured(exchange, str(get_correlation_id() or ""), timezone.now())
        with self._lock:
            self._pending.append(captured)
            full = len(self._pending) >= self.max_pending
        if full:
            self.flush()

    def flush_soon(self) -> None:
        """Write what was noted: on the writer thread if there is one, else now."""
        if self._writer is None:
            self.flush()
        else:
            # Declined while a write is in progress: the next call's takes the rest.
            self._writer.try_submit(self.flush)

    def flush(self) -> None:
        """Write every exchange noted so far in one statement, here and now; never raises."""
        with self._lock:
            captured, self._pending = self._pending, []
        if not captured:
            return
        try:
            rows = []
            for item in captured:
                rows.extend(
                    _exchange_rows(
                        exchange=item.exchange,
                        user_id=self.user_id,
                        secrets=self.secrets,
                        correlation_id=item.correlation_id,
                        received_at=item.received_at,
                    )
                )
            _insert(rows)
        except Exception:
            logger.warning(
                "raw api log: could not record %d exchange(s)", len(captured), exc_info=True
            )

    def close(self) -> None:
        """Wait for the writer thread, then write the rest here; the buffer stays usable."""
        if self._writer is not None:
            # Its thread closes the DB connection it opened as it ends.
            writer, self._writer = self._writer, None
            writer.close()
        self.flush()


def raw_log_hook(*, user=None, secrets: Iterable[str] = ()) -> Callable[[Any], None]:
    """The exchange hook a bank client calls; it stamps `user` and the current correlation id."""
    known = tuple(secret for secret in secrets if secret)

    def hook(exchange) -> None:
        try:
            raw_log_write(exchange=exchange, user=user, secrets=known)
        except Exception:
            logger.warning(
                "raw api log: could not record %s %s", exchange.method, exchange.path, exc_info=True
            )

    return hook
