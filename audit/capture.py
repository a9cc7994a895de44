"""Raw API log capture: the hook bank clients call after every HTTP exchange, and its writer.

One exchange becomes two RawApiLog rows (request and response, same `exchange_id`) written with a
single statement (a COPY on PostgreSQL). Bodies are redacted once; big ones are redacted as text
and truncated with a marker instead of being walked and re-serialised. Writing never breaks the
bank call it records.

`raw_log_hook` writes each exchange as it happens (an API request's few bank calls);
`RawLogBuffer` gathers a sync run's thousands and writes them in bulk, off the path between one
bank call and the next. The buffer stores each response body once per (user, bank, method,
endpoint, content): a body identical to one already stored is referenced (RawApiBody, by the
SHA-256 of the redacted text), so the hourly re-read of unchanged pages costs metadata rows only.
"""

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.db.models.functions import Cast
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit import redaction
from audit.models import Direction, RawApiBody, RawApiLog
from fintrack.core.concurrency import WorkerPool
from fintrack.core.correlation import get_correlation_id
from fintrack.core.db import copy_rows
from fintrack.core.fields import VerbatimJSONField

logger = logging.getLogger(__name__)

TRUNCATED_MARKER = "_truncated"
# A shared body's last_seen_at moves forward at most this often (one UPDATE a day per body, not
# one per call); a body is purged once it has not been seen for the retention plus this.
BODY_SEEN_REFRESH = timedelta(days=1)


def _body_payload(
    *, parsed: Any, is_json: bool, body: bytes, secrets: tuple[str, ...], limit: int
) -> Any:
    """What the payload column stores: the body as sent (`_AsSent`) when nothing in it needs
    redacting, else redacted JSON, or {"_text": …} for text or big bodies.

    `body` is the response's UTF-8 bytes: measured, searched for secrets and stored as they are,
    never decoded or dumped again on the common path (a page of transactions)."""
    if not body:
        return None
    size = len(body)
    clean = not redaction.might_contain_secrets(body, secrets=secrets)
    if is_json and size <= limit:
        # Nothing to cut: no walk of the document, its very bytes are stored.
        return _AsSent(body) if clean else redaction.redact_json(parsed, secrets=secrets)
    if clean:  # the text is what was read: only the part kept is decoded
        kept = body if size <= limit else body[:limit]
        cut = kept.decode("utf-8", errors="ignore" if size > limit else "replace")
    else:
        redacted = redaction.redact_text(body.decode("utf-8", errors="replace"), secrets=secrets)
        cut = redacted if size <= limit else _cut(redacted, limit)
    if size <= limit:
        return {"_text": cut}
    return {TRUNCATED_MARKER: True, "_original_bytes": size, "_text": cut}


def _cut(text: str, limit: int) -> str:
    """The longest start of `text` whose UTF-8 is at most `limit` bytes (no character split)."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


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

    text: bytes  # UTF-8


@dataclass(frozen=True, slots=True)
class _SharedBody:
    """A response body to store once per scope and reference: `_insert` swaps it for a body id."""

    digest: str
    text: bytes  # the JSON text stored: the bank's own, or the redacted document dumped
    user_id: int | None
    exchange_id: uuid.UUID
    seen_at: datetime


def _shared_body(
    payload: Any, *, user_id: int | None, row: dict[str, Any], seen_at: datetime
) -> _SharedBody:
    """The body of a response row, keyed by the SHA-256 of its scope and its (redacted) text."""
    text = payload.text if isinstance(payload, _AsSent) else orjson.dumps(payload)
    scope = "\x1f".join(
        (str(user_id or ""), row["bank_code"], row["method"], row["endpoint"])
    ).encode()
    digest = hashlib.sha256(scope + b"\x1e")
    digest.update(text)  # the body is not copied to be hashed
    return _SharedBody(digest.hexdigest(), text, user_id, row["exchange_id"], seen_at)


def _exchange_rows(
    *,
    exchange,
    user_id: int | None,
    secrets: tuple[str, ...],
    correlation_id: str,
    received_at: datetime,
    share_body: bool = False,
) -> list[dict[str, Any]]:
    """The request row and the response row of one exchange, redacted: RawApiLog's columns.

    With `share_body`, the response's body is a `_SharedBody`, stored once by `_insert`."""
    limit = settings.RAW_LOG_MAX_PAYLOAD_BYTES
    exchange_id = uuid.uuid4()
    endpoint = _endpoint(exchange.path, exchange.query, secrets)
    # Stored as received when clean: the bank's very text, which the database only validates
    # (`json`), rather than Python dumping the parsed copy again (~1 ms of CPU for a page).
    payload = _body_payload(
        parsed=exchange.response_json,
        is_json=exchange.response_is_json,
        body=exchange.response_body,
        secrets=secrets,
        limit=limit,
    )
    shared = {
        "user_id": user_id,
        "bank_code": exchange.bank_code,
        "endpoint": endpoint,
        "method": exchange.method,
        "correlation_id": correlation_id,
        "exchange_id": exchange_id,
        "body_id": None,
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
    if share_body and payload is not None:
        # Redacted above: the digest is of what is stored, never of a secret.
        response_row["payload"] = _shared_body(
            payload, user_id=user_id, row=response_row, seen_at=received_at
        )
    return [request_row, response_row]


def _insert(rows: list[dict[str, Any]]) -> None:
    """Write rows of `_exchange_rows` in one statement: a COPY on PostgreSQL, else an INSERT.

    Shared bodies among them are stored first (only those not stored yet: one lookup, one COPY
    on PostgreSQL) and the rows point at them. A body a concurrent writer stored between that
    lookup and the COPY fails the COPY: the whole write is then done again, the bodies by
    INSERT … ON CONFLICT DO NOTHING."""
    try:
        _insert_rows(rows, bodies_by_copy=connection.vendor == "postgresql")
    except IntegrityError:
        logger.info("raw api log: write refused by a constraint (a body stored meanwhile?), again")
        _insert_rows(rows, bodies_by_copy=False)


def _insert_rows(rows: list[dict[str, Any]], *, bodies_by_copy: bool) -> None:
    # atomic: a failed write must not poison a caller's transaction (a savepoint), nor leave a
    # COPY half done, nor a body stored for logs that were not.
    with transaction.atomic():
        shared = [row["payload"] for row in rows if isinstance(row["payload"], _SharedBody)]
        ids = _bodies_store(shared, by_copy=bodies_by_copy) if shared else {}
        # The rows themselves are left as they are (a retry writes them again).
        written = [
            {**row, "body_id": ids[row["payload"].digest], "payload": None}
            if isinstance(row["payload"], _SharedBody)
            else row
            for row in rows
        ]
        if connection.vendor == "postgresql":
            copy_rows(RawApiLog, _COPY_COLUMNS, [_copy_row(row) for row in written])
        else:
            RawApiLog.objects.bulk_create([_model_row(row) for row in written])


def _bodies_store(bodies: list[_SharedBody], *, by_copy: bool = False) -> dict[str, int]:
    """The id of each body's row, inserting the bodies not stored yet; {digest: id}.

    One SELECT finds those already stored (a no-op sync's every page): their text is not sent
    again, and their last_seen_at moves only when a day old. The new ones go in one statement,
    in digest order (two writers never wait on each other's rows in opposite orders): with
    `by_copy` (PostgreSQL) a binary COPY, each text sent as its bytes, neither quoted nor
    escaped; else an INSERT whose ON CONFLICT DO NOTHING (PostgreSQL) lets a concurrent writer
    of the same body win.
    """
    first: dict[str, _SharedBody] = {}
    for body in sorted(bodies, key=lambda item: item.seen_at):
        first.setdefault(body.digest, body)
    seen_at = max(body.seen_at for body in bodies)
    ids: dict[str, int] = {}
    stale: list[int] = []
    for digest, body_id, last_seen_at in RawApiBody.objects.filter(
        digest__in=list(first)
    ).values_list("digest", "id", "last_seen_at"):
        ids[digest] = body_id
        if last_seen_at < seen_at - BODY_SEEN_REFRESH:
            stale.append(body_id)
    if stale:
        RawApiBody.objects.filter(id__in=sorted(stale), last_seen_at__lt=seen_at).update(
            last_seen_at=seen_at
        )
    new = [first[digest] for digest in sorted(first) if digest not in ids]
    if new:
        if connection.vendor == "postgresql":
            if by_copy:
                # Raises IntegrityError (the unique digest) if another writer got there first.
                copy_rows(RawApiBody, _BODY_COPY_COLUMNS, [_body_copy_row(body) for body in new])
            else:
                _bodies_insert_postgres(new)
        else:
            RawApiBody.objects.bulk_create(
                [
                    RawApiBody(
                        digest=body.digest,
                        user_id=body.user_id,
                        payload=Cast(Value(body.text.decode()), output_field=VerbatimJSONField()),
                        size_bytes=len(body.text),
                        first_exchange_id=body.exchange_id,
                        first_seen_at=body.seen_at,
                        last_seen_at=body.seen_at,
                    )
                    for body in new
                ],
                ignore_conflicts=True,
            )
        ids.update(
            RawApiBody.objects.filter(digest__in=[body.digest for body in new]).values_list(
                "digest", "id"
            )
        )
    return ids


# Every column of RawApiBody but the id, read from the model (as `_COPY_COLUMNS` below).
_BODY_COPY_COLUMNS = tuple(
    field.column
    for field in RawApiBody._meta.concrete_fields
    if field.column and not field.primary_key
)


def _body_copy_row(body: _SharedBody) -> tuple:
    """A new body's COPY row: its text goes as the bytes it is (`json` is validated by the
    server, as the logs' COPY has it validated)."""
    values = {
        "digest": body.digest,
        "user_id": body.user_id,
        "payload": body.text,
        "size_bytes": len(body.text),
        "first_exchange_id": body.exchange_id,
        "first_seen_at": body.seen_at,
        "last_seen_at": body.seen_at,
    }
    return tuple(values[column] for column in _BODY_COPY_COLUMNS)


_BODIES_INSERT = (
    "INSERT INTO raw_api_bodies (digest, user_id, payload, size_bytes, first_exchange_id, "
    "first_seen_at, last_seen_at) "
    "SELECT d, u, p::json, s, e, f, f FROM unnest("
    "%s::varchar[], %s::bigint[], %s::text[], %s::integer[], %s::uuid[], %s::timestamptz[]"
    ") AS t (d, u, p, s, e, f) ON CONFLICT (digest) DO NOTHING"
)


def _bodies_insert_postgres(bodies: list[_SharedBody]) -> None:
    """One INSERT of every new body (each column as one array); the text is validated as JSON by
    the server, as the logs' COPY has it validated."""
    with connection.cursor() as cursor:
        cursor.execute(
            _BODIES_INSERT,
            [
                [body.digest for body in bodies],
                [body.user_id for body in bodies],
                [body.text.decode() for body in bodies],
                [len(body.text) for body in bodies],
                [body.exchange_id for body in bodies],
                [body.seen_at for body in bodies],
            ],
        )


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
        payload = payload.text
    elif payload is not None:
        payload = orjson.dumps(payload)
    values = {**row, "headers": Jsonb(row["headers"]), "payload": payload}
    return tuple(values[column] for column in _COPY_COLUMNS)


def _model_row(row: dict[str, Any]) -> RawApiLog:
    payload = row["payload"]
    if isinstance(payload, _AsSent):
        payload = Cast(Value(payload.text.decode()), output_field=VerbatimJSONField())
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
    Response bodies are shared: a page the bank sends again unchanged is stored once
    (`_bodies_store`).
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
                        share_body=True,
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
