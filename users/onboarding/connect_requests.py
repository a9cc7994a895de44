"""Connecting a bank asynchronously (issue 21): the web request stores the intent, a worker talks
to the bank, the status endpoints read what it stored.

`bank_connect_request` (POST /api/banks/{code}/connect, and each bank of POST onboarding/start)
does only what needs no bank: the checks (404, 400, 409), who the user is at the bank (the client
id set on the connection, a demo client proposed), a `ConnectRequest` row, the connection shown
as connecting (consent_pending, reason `connect_requested`), and the task sent after commit; the
answer is 202 with the request and its status URL. The task (`onboarding.connect_request_run`,
queue `sync`) runs `connect_request_execute`: both consents asked for, then the first sync
started or the pending request polled, as a synchronous connect did. What the bank answers
becomes the connection's state: a client it does not know (404) is `error`, reason
`bank_client_unknown`, with the client the connection had before put back; a refused request is
`consent_required`, reason `consent_rejected`; a bank that is down is `retrying` (next_retry_at)
while the task backs off like a sync (SYNC_TASK_MAX_RETRIES, SYNC_RETRY_*), then `error`.

The other bank actions a user asks for over the API go the same way, each a ConnectRequest of
its `kind` (issue 21): `renew` (POST /api/banks/{code}/consents/renew), `request_again`
(…/consents/request-again) and `approve_demo` (POST /api/consents/{id}/approve-demo, the
request's `consent`). The web request makes the refusals that need no bank (404, 403, 409:
consents.lifecycle's and consents.services' `…_check`), stores the request and answers 202
like a connect; the same task calls the service (services.bank_consents_renew,
bank_consents_request_again, consent_approve_demo_and_sync) with the same retries, and what the
bank answered is the request's outcome; the connection is left as those services leave it (a
renewal's failure does not make a ready connection an error). The same action asked for again
while one is under way answers that one; another action of the bank under way is a 409
`request_in_progress` (one at a time per bank: the lock below), except that onboarding joins it.

A request whose message the broker lost or whose worker died is healed by the reaper
(users/onboarding/reaper.py, beat): re-sent, or failed honestly once it cannot succeed.

Why a row of its own rather than a status of the connection: it is the lock that makes a second
connect answer the first (the partial unique constraint `one_active_connect_per_user_bank`, as
`one_active_sync_per_connection` is the sync's), it keeps what a refusal must put back (the
previous client) and the attempts, and a worker claims it in one conditional update, so a
duplicated or redelivered message never asks the bank twice. The connection keeps the state
everyone reads (GET /api/banks reads connections and consents, not users' tables).
"""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from banking.clients.errors import BankError, BankNotFoundError, BankUnavailableError
from banking.models import BankConnection, ConnectionStatus
from banking.services.clients import bank_display_name
from consents import lifecycle as consent_lifecycle
from consents import services as consent_services
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.selectors import consent_active, consent_pending
from fintrack.core.exception_handler import upstream_error_body
from fintrack.core.exceptions import ApplicationError
from fintrack.core.tasks import enqueue
from sync.models import SyncTrigger
from sync.services import bank_unavailable_reason
from users.models import ConnectRequest
from users.onboarding import services
from users.onboarding.exceptions import (
    ConnectInProgress,
    ConnectRequestNotFound,
    ConsentRejected,
    RequestInProgress,
)
from users.onboarding.services import (
    AWAITING_APPROVAL,
    BankConnectResult,
    bank_client_unknown,
    connect_at_bank,
    connect_guard,
    connection_client_restore,
    connection_client_settle,
    connection_show,
    onboarding_step_settle,
)

logger = logging.getLogger(__name__)
Status = ConnectRequest.Status
Kind = ConnectRequest.Kind
ACTIVE_CONNECT_STATUSES = (Status.QUEUED, Status.RUNNING)

CONNECT_REQUESTED = "connect_requested"  # the connection's status_reason while a connect waits
SYNC_STARTED = "sync_started"  # a request's outcome: the first sync runs (or ran)
AUTHORIZED = "authorized"  # a request's outcome: the consents are authorised, no sync needed
# Connections whose data already flows: a connect (onboarding again) leaves their status alone.
IN_USE_STATUSES = (
    ConnectionStatus.READY,
    ConnectionStatus.SYNC_IN_PROGRESS,
    ConnectionStatus.RETRYING,
)
# A retry message may be delivered a little before the next_retry_at another machine computed.
_RETRY_CLOCK_SLACK = timedelta(seconds=30)


# --- The web request: the intent --------------------------------------------------------------


def bank_connect_request(
    *,
    user,
    bank_code: str,
    client_id: str | None = None,
    trigger: str = SyncTrigger.USER,
    already_connected_ok: bool = False,
) -> ConnectRequest:
    """Store the intent to connect `bank_code` as `client_id` (None: the connection's client, else
    a proposed demo client) and hand it to a worker; no bank call. A connect of this bank already
    under way is answered instead (no second consent is requested); one as another client is a
    409 `connect_in_progress`."""
    connection = connect_guard(
        user=user,
        bank_code=bank_code,
        client_id=client_id,
        already_connected_ok=already_connected_ok,
    )
    join = partial(_joined, client_id=client_id, any_kind=already_connected_ok)
    active = connect_request_active(user=user, bank_code=bank_code)
    if active is not None:
        return join(active)
    try:
        request = _request_store(connection=connection, client_id=client_id, trigger=trigger)
    except IntegrityError:
        # A concurrent connect of this bank stored its request first: that one is the answer.
        active = connect_request_active(user=user, bank_code=bank_code)
        if active is None:
            raise
        return join(active)
    onboarding_step_settle(user_id=user.pk)
    request.refresh_from_db()  # an eager worker (tests) has run it already
    return request


def _request_store(*, connection: BankConnection, client_id: str | None, trigger: str):
    """The request, the connection's client and the connection shown connecting, in one
    transaction (a refused client id keeps none of it); the task is sent once it commits."""
    with transaction.atomic():
        request = ConnectRequest.objects.create(
            user=connection.user,
            bank_code=connection.bank_code,
            trigger=trigger,
            previous_client_id=connection.client_id,
            previous_client_id_is_demo=connection.client_id_is_demo,
        )
        connection_client_settle(connection=connection, client_id=client_id)
        request.client_id = connection.client_id
        request.save(update_fields=["client_id"])
        if connection.status not in IN_USE_STATUSES:
            name = bank_display_name(connection.bank_code)
            connection_show(
                connection=connection,
                to_status=ConnectionStatus.CONSENT_PENDING,
                reason=CONNECT_REQUESTED,
                error=f"Connecting to {name}: FinTrack is asking {name} for access.",
            )
        # robust: a broker that is down must not undo the intent (connecting again re-sends it).
        send = partial(connect_request_send, connect_request_id=request.pk)
        transaction.on_commit(send, robust=True)
    return request


def _joined(active: ConnectRequest, *, client_id: str | None, any_kind: bool) -> ConnectRequest:
    """A connect asked for while one is under way: that one, unless another client is asked for.
    Another action of the bank under way (a renewal…) is a 409, unless `any_kind` (onboarding:
    that action gets the bank its consents as well)."""
    if active.kind != Kind.CONNECT and not any_kind:
        raise _in_progress(active)
    if active.kind == Kind.CONNECT and client_id is not None and client_id != active.client_id:
        raise ConnectInProgress(
            extra={"bank_code": active.bank_code, "connect_request_id": active.pk}
        )
    return _resent_if_lost(active)


def _resent_if_lost(active: ConnectRequest) -> ConnectRequest:
    """A request still queued and not waiting out a retry is sent again: its message may have
    been lost (a broker that was down). A duplicate is harmless: the first worker to claim the
    request runs it, the other finds it claimed."""
    if active.status == Status.QUEUED and active.next_retry_at is None:
        connect_request_send(connect_request_id=active.pk)
        active.refresh_from_db()
    return active


def _in_progress(active: ConnectRequest) -> RequestInProgress:
    """The 409 for another action while `active` is under way; its status_url follows `active`
    (a connect at the bank's status, the other kinds at their own request)."""
    name = bank_display_name(active.bank_code)
    if active.kind == ConnectRequest.Kind.CONNECT:
        status_url = f"/api/banks/{active.bank_code}/status"
    else:
        status_url = f"/api/connect-requests/{active.pk}"
    return RequestInProgress(
        f"{name}: a {active.get_kind_display().lower()} request is under way; try again once "
        f"it has finished (GET {status_url}).",
        extra={
            "bank_code": active.bank_code,
            "connect_request_id": active.pk,
            "kind": active.kind,
            "status_url": status_url,
        },
    )


# --- The web request: renewing, requesting again, approving (no bank call) ----------------------


def bank_consents_renew_request(*, user, bank_code: str) -> ConnectRequest:
    """Ask a worker to renew the bank's consents early (services.bank_consents_renew); 404 for
    an unknown bank and 409 `no_consent_to_renew` here, without a bank call."""
    return _consents_request(
        user=user,
        bank_code=bank_code,
        kind=Kind.RENEW,
        check=partial(
            consent_lifecycle.connect_consents_renew_check, user=user, bank_code=bank_code
        ),
    )


def bank_consents_request_again_request(*, user, bank_code: str) -> ConnectRequest:
    """Ask a worker for fresh approval requests (services.bank_consents_request_again); 404 and
    409 `nothing_to_request_again` here, without a bank call."""
    return _consents_request(
        user=user,
        bank_code=bank_code,
        kind=Kind.REQUEST_AGAIN,
        check=partial(
            consent_lifecycle.connect_consents_request_again_check, user=user, bank_code=bank_code
        ),
    )


def consent_approve_demo_request(*, consent: Consent) -> ConnectRequest:
    """Ask a worker to approve the pending `consent` as the demo client and start the first
    sync (services.consent_approve_demo_and_sync); 403 and 409 here, without a bank call."""
    return _consents_request(
        user=consent.user,
        bank_code=consent.bank_code,
        kind=Kind.APPROVE_DEMO,
        consent=consent,
        check=partial(consent_services.consent_approve_demo_check, consent=consent),
    )


def _consents_request(
    *, user, bank_code: str, kind: str, check, consent: Consent | None = None
) -> ConnectRequest:
    """The same action under way is the answer (checked first: its own work may change what the
    checks see); else the checks (4xx, no bank call), then a request stored and its task sent
    after commit. Another action of the bank under way is a 409 `request_in_progress`."""
    bank_display_name(bank_code)  # UnknownBank for an unconfigured code

    def join(active: ConnectRequest) -> ConnectRequest:
        same = active.kind == kind and (consent is None or active.consent_id == consent.pk)
        if not same:
            raise _in_progress(active)
        return _resent_if_lost(active)

    active = connect_request_active(user=user, bank_code=bank_code)
    if active is not None and active.kind == kind:
        return join(active)
    check()
    if active is not None:
        raise _in_progress(active)
    connection = BankConnection.objects.filter(user=user, bank_code=bank_code).first()
    try:
        with transaction.atomic():
            request = ConnectRequest.objects.create(
                user=user,
                bank_code=bank_code,
                kind=kind,
                consent=consent,
                client_id=connection.client_id if connection else "",
                previous_client_id=connection.client_id if connection else "",
                previous_client_id_is_demo=connection.client_id_is_demo if connection else False,
            )
            send = partial(connect_request_send, connect_request_id=request.pk)
            transaction.on_commit(send, robust=True)  # as a connect's (_request_store)
    except IntegrityError:
        # A concurrent request of this bank was stored first.
        active = connect_request_active(user=user, bank_code=bank_code)
        if active is None:
            raise
        return join(active)
    request.refresh_from_db()  # an eager worker (tests) has run it already
    return request


def connect_request_active(*, user, bank_code: str) -> ConnectRequest | None:
    """The user's request of `bank_code` under way (any kind), if any. One whose worker died
    without the message coming back (running for longer than a task may run) is failed here:
    it would otherwise keep every later request waiting (the reaper would retry it later)."""
    active = ConnectRequest.objects.filter(
        user=user, bank_code=bank_code, status__in=ACTIVE_CONNECT_STATUSES
    ).first()
    if active is None or active.status != Status.RUNNING:
        return active
    if active.updated_at > running_lost_before(now=timezone.now()):
        return active
    connect_request_give_up(
        connect_request=active,
        error_code="abandoned",
        message="The worker carrying out this request stopped; ask again.",
    )
    return None


def running_lost_before(*, now):
    """A request claimed (running) before this has no live worker: a task that ran this long
    was killed by its hard time limit (CELERY_TASK_TIME_LIMIT), so no worker still calls the
    bank for it and another may take it over."""
    return now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def connect_request_give_up(
    *, connect_request: ConnectRequest, error_code: str, message: str
) -> bool:
    """Fail an active request no worker will finish (its message lost for good, or its worker
    gone too often), if it is still as the caller saw it (a worker may have moved it since);
    a connect puts the client back and the connection says why, as a failed connect does.
    Whether it was failed."""
    request = connect_request
    now = timezone.now()
    failed = ConnectRequest.objects.filter(
        pk=request.pk, status=request.status, updated_at=request.updated_at
    ).update(
        status=Status.FAILED,
        error_code=error_code[:64],
        error=message[:2000],
        next_retry_at=None,
        updated_at=now,
        finished_at=now,
    )
    if not failed:
        return False
    if request.kind == Kind.CONNECT:
        connection = BankConnection.objects.filter(
            user_id=request.user_id, bank_code=request.bank_code
        ).first()
        if connection is not None:
            _connection_failed(
                request,
                connection,
                reason=error_code,
                message=message,
                connection_status=ConnectionStatus.ERROR,
                restore_client=True,
            )
    onboarding_step_settle(user_id=request.user_id)
    return True


def connect_request_send(*, connect_request_id: int) -> bool:
    """Send the request's task; False (logged) when the broker cannot take it now."""
    from users.onboarding.tasks import connect_request_run

    return enqueue(connect_request_run, connect_request_id)


# --- The worker: asking the bank ----------------------------------------------------------------


def connect_request_execute(
    *, connect_request_id: int, task_id: str | None = None, retry_allowed: bool = False
) -> ConnectRequest | None:
    """Carry out a queued connect: the consents, then the first sync or the approval poll; what
    the bank answered becomes the connection's state. Returns the request (None if gone).

    The worker claims it first (queued → running in one conditional update): a duplicate message
    finds it claimed or finished; the same message redelivered (`task_id`) takes it over. With
    `retry_allowed`, a BankUnavailableError puts it back in the queue and is re-raised for the
    task to retry; otherwise it fails the connect.
    """
    now = timezone.now()
    claimable = Q(status=Status.QUEUED) & (
        Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now + _RETRY_CLOCK_SLACK)
    )
    if task_id:
        claimable |= Q(status=Status.RUNNING, task_id=task_id)
    claimed = ConnectRequest.objects.filter(claimable, pk=connect_request_id).update(
        status=Status.RUNNING,
        task_id=task_id or "",
        attempts=F("attempts") + 1,
        next_retry_at=None,
        updated_at=now,
    )
    request = (
        ConnectRequest.objects.select_related("user", "consent")
        .filter(pk=connect_request_id)
        .first()
    )
    if request is None or not claimed:
        return request
    # Attempts count every claim, whichever message made it (a retry, the reaper's re-send): a
    # bank outage is waited out SYNC_TASK_MAX_RETRIES times in all, not that many per message.
    retry_allowed = retry_allowed and request.attempts <= settings.SYNC_TASK_MAX_RETRIES
    if request.kind != Kind.CONNECT:
        _consents_execute(request, retry_allowed=retry_allowed)
        return request
    connection = (
        BankConnection.objects.select_related("user")
        .filter(user_id=request.user_id, bank_code=request.bank_code)
        .first()
    )
    if connection is None:  # deleted meanwhile (the account with it)
        _finish(request, status=Status.FAILED, error_code="connection_gone", error="")
        return request
    try:
        result = connect_at_bank(connection=connection, trigger=request.trigger)
    except BankUnavailableError as exc:
        if retry_allowed:
            _requeue(request, exc)
            raise
        _failed(
            request,
            connection,
            error_code=exc.code,
            reason=bank_unavailable_reason(exc),
            message=_bank_message(exc),
        )
    except BankNotFoundError as exc:
        unknown = bank_client_unknown(
            exc, bank_code=request.bank_code, client_id=connection.client_id
        )
        _failed(request, connection, error_code=unknown.code, reason=unknown.code,
                message=unknown.message)  # fmt: skip
    except BankError as exc:
        _failed(request, connection, error_code=exc.code, reason=exc.code,
                message=_bank_message(exc))  # fmt: skip
    except ConsentRejected as exc:
        # The bank knows the client and said no: the client stays, the user asks again.
        problem = consent_services.accounts_consent_problem(
            user=request.user, bank_code=request.bank_code
        )
        _failed(
            request,
            connection,
            error_code=exc.code,
            reason=problem.reason if problem else exc.code,
            message=problem.message if problem else exc.message,
            connection_status=problem.connection_status
            if problem
            else ConnectionStatus.CONSENT_REQUIRED,
            restore_client=False,
        )
    except ApplicationError as exc:
        _failed(request, connection, error_code=exc.code, reason=exc.code, message=exc.message)
    except Exception:
        logger.exception("connect request %s failed unexpectedly", request.pk)
        name = bank_display_name(request.bank_code)
        _failed(request, connection, error_code="internal_error", reason="internal_error",
                message=f"Connecting {name} failed unexpectedly; connect again.")  # fmt: skip
    else:
        _finish(
            request,
            status=Status.SUCCEEDED,
            outcome=SYNC_STARTED if result.sync_run is not None else AWAITING_APPROVAL,
            sync_run=result.sync_run,
        )
    onboarding_step_settle(user_id=request.user_id)
    return request


def _requeue(request: ConnectRequest, exc: BankUnavailableError) -> None:
    """Back in the queue, for the task's retry once the bank is back."""
    ConnectRequest.objects.filter(pk=request.pk, status=Status.RUNNING).update(
        status=Status.QUEUED,
        error=f"Bank unavailable, will retry: {exc.message}"[:2000],
        error_code=exc.code,
        updated_at=timezone.now(),
    )


def _consents_execute(request: ConnectRequest, *, retry_allowed: bool) -> None:
    """Carry out a renewal, a fresh request or a demo approval (claimed by the caller): the
    service makes the bank calls and leaves the connection as it should be; the request keeps
    the outcome. A refusal or a bank failure fails the request only: the consents in use stay
    in use, a pending one stays pending (approve again, or ask again)."""
    user, bank_code = request.user, request.bank_code
    try:
        if request.kind == Kind.APPROVE_DEMO:
            if request.consent is None:  # deleted meanwhile (the account with it)
                _finish(request, status=Status.FAILED, error_code="consent_gone", error="")
                return
            consent, run = services.consent_approve_demo_and_sync(consent=request.consent)
            outcome = _approval_outcome(consent, run)
            if outcome is None:
                message = (
                    f"{bank_display_name(bank_code)} answered {consent.status} to the approval."
                )
                _finish(request, status=Status.FAILED, error_code="consent_rejected",
                        error=message)  # fmt: skip
                return
            _finish(request, status=Status.SUCCEEDED, outcome=outcome, sync_run=run)
            return
        if request.kind == Kind.RENEW:
            result = services.bank_consents_renew(user=user, bank_code=bank_code)
        else:
            result = services.bank_consents_request_again(user=user, bank_code=bank_code)
    except BankUnavailableError as exc:
        if retry_allowed:
            _requeue(request, exc)
            raise
        _finish(request, status=Status.FAILED, error_code=exc.code, error=_bank_message(exc))
    except BankError as exc:
        _finish(request, status=Status.FAILED, error_code=exc.code, error=_bank_message(exc))
    except ApplicationError as exc:
        # The state changed since the web request checked it (409 no_consent_to_renew,
        # consent_not_pending…), or the bank refused the new request (consent_rejected).
        _finish(request, status=Status.FAILED, error_code=exc.code, error=exc.message)
    except Exception:
        logger.exception("%s request %s failed unexpectedly", request.kind, request.pk)
        name = bank_display_name(bank_code)
        _finish(request, status=Status.FAILED, error_code="internal_error",
                error=f"The request to {name} failed unexpectedly; ask again.")  # fmt: skip
    else:
        if result.sync_started:
            outcome = SYNC_STARTED
        elif result.action_required is not None:
            outcome = AWAITING_APPROVAL
        else:
            outcome = AUTHORIZED
        _finish(request, status=Status.SUCCEEDED, outcome=outcome, sync_run=result.sync_run)
    onboarding_step_settle(user_id=request.user_id)


def _approval_outcome(consent: Consent, run) -> str | None:
    """A demo approval's outcome (None: the bank refused it)."""
    if consent.status == ConsentStatus.AUTHORIZED:
        return SYNC_STARTED if run is not None else AUTHORIZED
    if consent.status == ConsentStatus.PENDING:
        return AWAITING_APPROVAL
    return None


def _bank_message(exc: BankError) -> str:
    """The bank's failure as the API would word it (exception_handler.upstream_error_body)."""
    _status, body = upstream_error_body(exc)
    return body["message"]


def _failed(
    request: ConnectRequest,
    connection: BankConnection,
    *,
    error_code: str,
    reason: str,
    message: str,
    connection_status: str = ConnectionStatus.ERROR,
    restore_client: bool = True,
) -> None:
    """The connect ends failed: the client it set is put back (unless a consent of it is held
    now), and the connection says why, unless its data already flows (a ready connection
    connected again in onboarding stays ready)."""
    _connection_failed(
        request,
        connection,
        reason=reason,
        message=message,
        connection_status=connection_status,
        restore_client=restore_client,
    )
    _finish(request, status=Status.FAILED, error_code=error_code, error=message)


def _connection_failed(
    request: ConnectRequest,
    connection: BankConnection,
    *,
    reason: str,
    message: str,
    connection_status: str,
    restore_client: bool,
) -> None:
    if restore_client:
        connection_client_restore(
            connection=connection,
            before=(request.previous_client_id, request.previous_client_id_is_demo),
        )
    connection.refresh_from_db(fields=["status"])
    if connection.status not in (ConnectionStatus.READY, ConnectionStatus.SYNC_IN_PROGRESS):
        connection_show(
            connection=connection, to_status=connection_status, reason=reason, error=message
        )


def _finish(
    request: ConnectRequest,
    *,
    status: str,
    error_code: str = "",
    error: str = "",
    outcome: str = "",
    sync_run=None,
) -> None:
    now = timezone.now()
    request.status, request.error_code, request.error = status, error_code[:64], error[:2000]
    request.outcome, request.sync_run = outcome, sync_run
    request.next_retry_at, request.updated_at, request.finished_at = None, now, now
    request.save(
        update_fields=[
            "status",
            "error_code",
            "error",
            "outcome",
            "sync_run",
            "next_retry_at",
            "updated_at",
            "finished_at",
        ]
    )


def connect_request_retry_wait(
    *,
    connect_request_id: int,
    exc: BankUnavailableError,
    countdown: float,
    retry: int,
    retries: int,
) -> None:
    """The request waits `countdown` seconds for its bank (retry `retry` of `retries`): it shows
    when (next_retry_at), and a connect's connection too (retrying, next_retry_at) and why."""
    now = timezone.now()
    next_retry_at = now + timedelta(seconds=countdown)
    waiting = ConnectRequest.objects.filter(pk=connect_request_id, status=Status.QUEUED).update(
        next_retry_at=next_retry_at, updated_at=now
    )
    request = ConnectRequest.objects.filter(pk=connect_request_id).first()
    if not waiting or request is None or request.kind != Kind.CONNECT:
        return  # a renewal's or approval's wait shows on the request, not the connection
    connection = BankConnection.objects.filter(
        user_id=request.user_id, bank_code=request.bank_code
    ).first()
    if connection is None or connection.status in (
        ConnectionStatus.READY,
        ConnectionStatus.SYNC_IN_PROGRESS,
    ):
        return
    name = bank_display_name(request.bank_code)
    connection_show(
        connection=connection,
        to_status=ConnectionStatus.RETRYING,
        reason=bank_unavailable_reason(exc),
        error=(
            f"{name} is not answering ({exc.message}); FinTrack asks again at "
            f"{next_retry_at:%H:%M:%S} UTC (retry {retry} of {retries})."
        ),
        next_retry_at=next_retry_at,
    )


# --- Reading it: the connect's answer -----------------------------------------------------------


def connect_request_get(*, user, connect_request_id: int) -> ConnectRequest:
    """One of the user's connect requests (any kind); anyone else's is simply not found."""
    request = ConnectRequest.objects.filter(user=user, pk=connect_request_id).first()
    if request is None:
        raise ConnectRequestNotFound(extra={"connect_request_id": connect_request_id})
    return request


def connect_request_result(*, connect_request: ConnectRequest) -> BankConnectResult:
    """What the request has done so far, read from the database (no bank call): its consents
    (a connect's or a renewal's: none until the bank answered), the first run once started, and
    what the user must do once the bank said (a pending request: approve it)."""
    request = ConnectRequest.objects.select_related("user", "sync_run__connection", "consent").get(
        pk=connect_request.pk
    )
    connection = BankConnection.objects.filter(
        user_id=request.user_id, bank_code=request.bank_code
    ).first()
    if connection is None:  # a demo approval of a consent without a connection (refused)
        connection = BankConnection(user=request.user, bank_code=request.bank_code)
    consent_of = _consent_of if request.kind == Kind.CONNECT else _new_consent_of
    accounts = consent_of(request, kind=ConsentKind.ACCOUNTS)
    products = consent_of(request, kind=ConsentKind.PRODUCTS)
    # A connect waits for its accounts consent; new consents for any of theirs still pending.
    waiting = [accounts] if request.kind == Kind.CONNECT else [accounts, products]
    pending = [c for c in waiting if c is not None and c.status == ConsentStatus.PENDING]
    action = None
    if pending:
        action = consent_services.consent_approval_action(consent=pending[0], connection=connection)
    return BankConnectResult(
        connection=connection,
        accounts_consent=accounts,
        products_consent=products,
        sync_run=request.sync_run,
        sync_started=request.sync_run_id is not None
        if request.kind == Kind.CONNECT
        else request.outcome == SYNC_STARTED,
        action_required=action,
        connect_request=request,
        consent=request.consent,
    )


def _consent_of(request: ConnectRequest, *, kind: str) -> Consent | None:
    """The consent of `kind` the connect holds: the authorised one, else the pending one, else
    the one it got refused (asked for since the request); None before the bank answered."""
    user, bank_code = request.user, request.bank_code
    consent = consent_active(user=user, bank_code=bank_code, kind=kind)
    if consent is None:
        consent = consent_pending(user=user, bank_code=bank_code, kind=kind)
    if consent is None:
        consent = (
            Consent.objects.filter(
                user=user, bank_code=bank_code, kind=kind, created_at__gte=request.created_at
            )
            .order_by("-created_at", "-id")
            .first()
        )
    return consent


def _new_consent_of(request: ConnectRequest, *, kind: str) -> Consent | None:
    """The consent of `kind` a renewal, fresh request or approval leaves: none while a renewal
    or fresh request waits for the bank (it has not said yet); then the one asked for since the
    request, else (that kind was left as it was) the authorised one, else the pending one."""
    if request.kind != Kind.APPROVE_DEMO and request.status in ACTIVE_CONNECT_STATUSES:
        return None
    user, bank_code = request.user, request.bank_code
    if request.kind != Kind.APPROVE_DEMO:
        asked = (
            Consent.objects.filter(
                user=user, bank_code=bank_code, kind=kind, created_at__gte=request.created_at
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if asked is not None:
            return asked
    return consent_active(user=user, bank_code=bank_code, kind=kind) or consent_pending(
        user=user, bank_code=bank_code, kind=kind
    )
