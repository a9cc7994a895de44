"""Onboarding services: connecting a bank (consents, then the first sync) and the onboarding flow.

- `bank_connect` sets who the user is at the bank (the client id they give, else in demo mode
  the demo client FinTrack proposes), asks `consents` for both consents and `sync` for the first
  run once the accounts consent is authorised; a consent left pending is polled by
  `tasks.pending_consent_poll`, which calls `onboarding_consent_poll` and starts the first sync
  when the bank approves. In process (scripts, benchmarks): the API's connect is carried out by
  a worker (connect_requests.py), with the same parts (`connect_guard`, `connect_at_bank`).
- `consent_approve_demo_and_sync`: the demo approval (SPEC §3.4), then the first sync.
- `bank_consents_renew` / `bank_consents_request_again`: early renewal of a connected bank's
  consents, and a fresh request in place of a stale or lost one (consents.lifecycle); answered
  like a connect, a pending request polled by the same task.
  Over the API these three are carried out by a worker too (a ConnectRequest of their kind,
  connect_requests.py): the web request checks and stores the intent, the task calls these.
- `onboarding_start` records the chosen banks (each with the user's client id there, if given)
  and asks a worker to connect each one.
- `onboarding_status` is a read: no bank call, no write; the step is computed from what is
  stored, with the overall progress (all banks, weighted by their transaction pages).
- `onboarding_step_settle` stores that step, and `completed_at` the first time it is done, from
  the actions that change it: start, connect, demo approval, the poll, a finished sync run.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.history import history_state
from banking.clients.errors import BankError, BankNotFoundError
from banking.exceptions import (
    BankClientUnknown,
    ClientIdLocked,
    ClientIdTaken,
    InvalidConnectionTransition,
)
from banking.models import Account, BankConnection, ConnectionStatus
from banking.selectors.connections import connection_status_message
from banking.services.clients import bank_display_name
from banking.services.connections import (
    client_id_check,
    connection_client_id_set,
    connection_demo_client_id_assign,
    connection_get_or_create,
    connection_transition,
)
from consents import lifecycle as consent_lifecycle
from consents import services as consent_services
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.selectors import consent_latest_by_bank, consent_pending
from fintrack.core.exception_handler import upstream_error_body
from fintrack.core.exceptions import ApplicationError, ValidationFailed
from fintrack.core.localtime import user_zone
from sync.models import ACTIVE_SYNC_STATUSES, SyncPhase, SyncRun, SyncTrigger
from sync.selectors import sync_run_active, sync_run_latest_by_connection
from sync.services import connection_status_set, connection_sync_start
from users.models import ConnectRequest, OnboardingFlow
from users.onboarding.exceptions import AlreadyConnected, ConnectInProgress, ConsentRejected

logger = logging.getLogger(__name__)
Step = OnboardingFlow.Step


# --- Connecting a bank ----------------------------------------------------------------------------


@dataclass
class BankConnectResult:
    """What connecting did: the consents, the first run if started, what the user must do (and,
    connecting in a worker, its request: the accounts consent is None until the bank answered;
    for a demo approval, the consent it approves)."""

    connection: BankConnection
    accounts_consent: Consent | None
    products_consent: Consent | None
    sync_run: SyncRun | None
    sync_started: bool
    action_required: dict | None
    connect_request: ConnectRequest | None = None
    consent: Consent | None = None  # a demo approval's consent


def bank_connect(
    *,
    user,
    bank_code: str,
    client_id: str | None = None,
    trigger: str = SyncTrigger.USER,
    already_connected_ok: bool = False,
) -> BankConnectResult:
    """Be `client_id` at the bank (None: the connection's client, else a proposed demo client),
    request both consents; start the first sync when authorised, else say how to approve."""
    result = _bank_connect(
        user=user,
        bank_code=bank_code,
        client_id=client_id,
        trigger=trigger,
        already_connected_ok=already_connected_ok,
    )
    onboarding_step_settle(user_id=user.pk)
    return result


def _bank_connect(
    *, user, bank_code: str, client_id: str | None, trigger: str, already_connected_ok: bool
) -> BankConnectResult:
    connection = connect_guard(
        user=user,
        bank_code=bank_code,
        client_id=client_id,
        already_connected_ok=already_connected_ok,
    )
    before = (connection.client_id, connection.client_id_is_demo)
    connection_client_settle(connection=connection, client_id=client_id)
    # A bank error asking for the accounts consent propagates (the API's exception handler
    # renders it as 502/503); the products consent is optional (None when the bank failed it).
    try:
        return connect_at_bank(connection=connection, trigger=trigger)
    except BankError as exc:
        tried = connection.client_id
        connection_client_restore(connection=connection, before=before)
        if isinstance(exc, BankNotFoundError):
            raise bank_client_unknown(exc, bank_code=bank_code, client_id=tried) from exc
        raise


def connect_guard(
    *, user, bank_code: str, client_id: str | None, already_connected_ok: bool
) -> BankConnection:
    """A connect's checks, none of which asks the bank: a configured bank (404), a well-formed
    client id no one else holds (400, 409), a bank not connected already (409 unless
    `already_connected_ok`); returns the user's connection there (created if new)."""
    bank_display_name(bank_code)  # UnknownBank for an unconfigured code
    if client_id is not None:
        # A malformed id or someone else's client: refused before anything is written.
        client_id_check(user=user, bank_code=bank_code, client_id=client_id)
    connection = connection_get_or_create(user=user, bank_code=bank_code)
    if connection.status in (ConnectionStatus.READY, ConnectionStatus.SYNC_IN_PROGRESS):
        active = consent_services.consent_active(
            user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS
        )
        if active is not None and not already_connected_ok:
            run = sync_run_active(connection=connection)
            raise AlreadyConnected(
                f"{bank_display_name(bank_code)} is already connected.",
                extra={
                    "bank_code": bank_code,
                    "connection_status": connection.status,
                    "sync_run_id": run.pk if run else None,
                    "sync_url": f"/api/banks/{bank_code}/sync",
                },
            )
    return connection


def bank_client_unknown(exc: BankError, *, bank_code: str, client_id: str) -> BankClientUnknown:
    """SPEC §3.1: 404 "Client … not found" is the bank's only 404 to a consent request."""
    return BankClientUnknown(
        f"{bank_display_name(bank_code)} knows no client {client_id!r}: "
        "check the client id you have at this bank.",
        extra={
            "bank_code": bank_code,
            "client_id": client_id,
            "bank_status": exc.status_code,
            "bank_error": exc.message[:200],
        },
    )


def connect_at_bank(*, connection: BankConnection, trigger: str) -> BankConnectResult:
    """What a connect asks of the bank, as the connection's client: both consents (a bank error
    asking for the accounts one propagates), then the first sync once the accounts consent is
    authorised, else the poll of the pending request; a refused request is ConsentRejected."""
    user, bank_code = connection.user, connection.bank_code
    consents = consent_services.connect_consents_ensure(user=user, bank_code=bank_code)
    accounts_consent = consents.accounts

    result = BankConnectResult(
        connection=connection,
        accounts_consent=accounts_consent,
        products_consent=consents.products,
        sync_run=None,
        sync_started=False,
        action_required=None,
    )
    if accounts_consent.status == ConsentStatus.AUTHORIZED:
        connection.refresh_from_db(fields=["status", "status_reason"])
        in_use = connection.status in (ConnectionStatus.READY, ConnectionStatus.SYNC_IN_PROGRESS)
        if not in_use and sync_run_active(connection=connection) is None:
            # Access granted: the connection says its first sync is coming, not the connect.
            connection_show(connection=connection, to_status=ConnectionStatus.SYNC_IN_PROGRESS)
        result.sync_run, result.sync_started = connection_sync_start(
            connection=connection, trigger=trigger
        )
    elif accounts_consent.status == ConsentStatus.PENDING:
        connection_show(
            connection=connection,
            to_status=ConnectionStatus.CONSENT_PENDING,
            reason=AWAITING_APPROVAL,
            # In place of a connect's "asking the bank" message (one status, a new reason).
            error=f"Waiting for your approval at {bank_display_name(bank_code)}: approve "
            "FinTrack's request there.",
        )
        result.action_required = consent_services.consent_approval_action(
            consent=accounts_consent, connection=connection
        )
        _pending_consent_poll_schedule(consent=accounts_consent, trigger=trigger)
    else:
        raise ConsentRejected(
            f"{bank_display_name(bank_code)} answered {accounts_consent.status} to the request.",
            extra={"bank_code": bank_code, "consent_status": accounts_consent.status},
        )
    connection.refresh_from_db(fields=["status", "status_reason", "last_error", "last_success_at"])
    return result


def connection_show(
    *,
    connection: BankConnection,
    to_status: str,
    reason: str = "",
    error: str = "",
    next_retry_at: datetime | None = None,
) -> None:
    """Move the connection to `to_status` with `reason` unless it shows just that already (a
    connect changes the reason within one status: connect_requested → awaiting_approval); a move
    the table refuses (the state changed meanwhile) is logged, not raised."""
    connection.refresh_from_db(fields=["status", "status_reason", "last_error", "next_retry_at"])
    unchanged = (connection.status, connection.status_reason) == (to_status, reason)
    if unchanged and not error and next_retry_at is None:
        return
    try:
        connection_transition(
            connection=connection,
            to_status=to_status,
            error=error,
            reason=reason,
            next_retry_at=next_retry_at,
        )
    except InvalidConnectionTransition as exc:
        logger.warning("connection %s: %s not shown: %s", connection.pk, to_status, exc)


def _accounts_consent_held(*, user, bank_code: str) -> bool:
    """An authorised or pending accounts consent, which the connection's current client gave."""
    kind = ConsentKind.ACCOUNTS
    return (
        consent_services.consent_active(user=user, bank_code=bank_code, kind=kind) is not None
        or consent_pending(user=user, bank_code=bank_code, kind=kind) is not None
    )


def connection_client_settle(*, connection: BankConnection, client_id: str | None) -> None:
    """Who the user is at the bank for this connect: `client_id` when given (a client the user
    has: not self-signable), else the client the connection already has, else a proposed demo
    client (a 400 on `client_id` when demo clients are off)."""
    if client_id is not None:
        if client_id != connection.client_id:
            held = _accounts_consent_held(user=connection.user, bank_code=connection.bank_code)
            connection_client_id_set(
                connection=connection, client_id=client_id, is_demo=False, consent_held=held
            )
    elif not connection.client_id:
        connection_demo_client_id_assign(connection=connection)


def connection_client_restore(*, connection: BankConnection, before: tuple[str, bool]) -> None:
    """Undo this connect's change of client after the bank refused the consent request, unless
    a consent of the new client got stored meanwhile (then the new client stays, truthfully)."""
    client_id, is_demo = before
    if (connection.client_id, connection.client_id_is_demo) == before:
        return
    if _accounts_consent_held(user=connection.user, bank_code=connection.bank_code):
        return
    try:
        connection_client_id_set(connection=connection, client_id=client_id, is_demo=is_demo)
    except ClientIdTaken:
        # Another user connected the old client in between: this connection has none now.
        connection_client_id_set(connection=connection, client_id="", is_demo=False)


def _pending_consent_poll_schedule(*, consent: Consent, trigger: str) -> None:
    """Poll the pending consent in the background, once the connect has committed.

    Every connect that leaves the consent pending schedules one, so connecting again also revives
    polling after a lost task message; polls are idempotent, and each stops once the consent no
    longer waits."""
    from users.onboarding.tasks import pending_consent_poll_later

    consent_id = consent.pk
    transaction.on_commit(
        lambda: pending_consent_poll_later(consent_id=consent_id, trigger=trigger, attempt=0)
    )


AWAITING_APPROVAL = "awaiting_approval"  # the connection's status_reason while a request waits


def bank_consents_renew(*, user, bank_code: str) -> BankConnectResult:
    """Renew a connected bank's consents before they expire: new ones requested while the old
    ones stay authorised and in use; switched when the bank authorises them (at once at an
    auto-approving bank, else after the user's approval, polled like a connect's request)."""
    consents = consent_lifecycle.connect_consents_renew(user=user, bank_code=bank_code)
    result = _after_new_consents(user=user, bank_code=bank_code, consents=consents)
    onboarding_step_settle(user_id=user.pk)
    return result


def bank_consents_request_again(*, user, bank_code: str) -> BankConnectResult:
    """Start fresh approval requests in one call (the stale pending ones withdrawn, a lost
    consent asked for anew); answered like a connect: action_required at a manual bank, the
    first sync once the accounts consent is authorised."""
    consents = consent_lifecycle.connect_consents_request_again(user=user, bank_code=bank_code)
    result = _after_new_consents(user=user, bank_code=bank_code, consents=consents)
    onboarding_step_settle(user_id=user.pk)
    return result


def _after_new_consents(
    *, user, bank_code: str, consents, trigger: str = SyncTrigger.USER
) -> BankConnectResult:
    """What new consents make the connection do: sync when the accounts consent is authorised
    and the connection needs data, else wait for the user's approval (polled by a worker)."""
    connection = connection_get_or_create(user=user, bank_code=bank_code)
    accounts = consents.accounts
    result = BankConnectResult(
        connection=connection,
        accounts_consent=accounts,
        products_consent=consents.products,
        sync_run=None,
        sync_started=False,
        action_required=None,
    )
    waiting = [c for c in (accounts, consents.products) if c and c.status == ConsentStatus.PENDING]
    if accounts.status == ConsentStatus.AUTHORIZED:
        if connection.status in SYNCING_OR_READY:
            result.sync_run = sync_run_active(connection=connection)
        else:
            result.sync_run, result.sync_started = connection_sync_start(
                connection=connection, trigger=trigger
            )
    elif accounts.status == ConsentStatus.PENDING:
        if accounts.renews_id is None:
            # A fresh request, no consent in use: the connection waits for the user.
            connection_status_set(
                connection=connection,
                to_status=ConnectionStatus.CONSENT_PENDING,
                reason=AWAITING_APPROVAL,
            )
    else:
        raise ConsentRejected(
            f"{bank_display_name(bank_code)} answered {accounts.status} to the request.",
            extra={"bank_code": bank_code, "consent_status": accounts.status},
        )
    if waiting:
        result.action_required = consent_services.consent_approval_action(
            consent=waiting[0], connection=connection
        )
    for consent in waiting:
        _pending_consent_poll_schedule(consent=consent, trigger=trigger)
    connection.refresh_from_db(fields=["status", "status_reason", "last_error", "last_success_at"])
    return result


# A connection that has (or is getting) its data: new consents need no sync of their own.
SYNCING_OR_READY = (
    ConnectionStatus.READY,
    ConnectionStatus.SYNC_IN_PROGRESS,
    ConnectionStatus.RETRYING,
)


def consent_approve_demo_and_sync(*, consent: Consent) -> tuple[Consent, SyncRun | None]:
    """Demo approval of a pending consent; an approved accounts consent starts the first sync.

    Without this the first sync would wait for the next poll of the consent or a sync request.
    """
    consent = consent_services.consent_approve_demo(consent=consent)
    run = _first_sync_start(consent=consent, trigger=SyncTrigger.USER)
    onboarding_step_settle(user_id=consent.user_id)
    return consent, run


def _first_sync_start(*, consent: Consent, trigger: str) -> SyncRun | None:
    """The sync an authorised accounts consent makes possible (None: nothing to start)."""
    if consent.kind != ConsentKind.ACCOUNTS or consent.status != ConsentStatus.AUTHORIZED:
        return None
    connection = BankConnection.objects.filter(
        user_id=consent.user_id, bank_code=consent.bank_code
    ).first()
    if connection is None:
        return None
    run, _created = connection_sync_start(connection=connection, trigger=trigger)
    return run


def onboarding_consent_poll(*, consent_id: int, trigger: str = SyncTrigger.ONBOARDING) -> bool:
    """Poll a pending consent at the bank once; start the first sync once it is authorised.

    Returns whether the consent still waits for approval (the task then polls again later).
    """
    consent = Consent.objects.select_related("user").filter(pk=consent_id).first()
    if consent is None or not consent_services.consent_awaits_approval(consent=consent):
        return False  # gone, or settled elsewhere (demo approval, a sync request, a new connect)
    try:
        consent = consent_services.consent_refresh(consent=consent)
    except BankError as exc:
        logger.info("onboarding: polling consent %s failed: %s", consent_id, exc)
        return True
    if consent_services.consent_awaits_approval(consent=consent):
        return True
    _first_sync_start(consent=consent, trigger=trigger)
    onboarding_step_settle(user_id=consent.user_id)
    return False


# --- The onboarding flow --------------------------------------------------------------------------


def _validated_bank_codes(bank_codes) -> list[str]:
    if not isinstance(bank_codes, list | tuple) or not bank_codes:
        raise ValidationFailed(
            "banks: choose at least one bank.", extra={"fields": {"banks": ["Choose a bank."]}}
        )
    unknown = [code for code in bank_codes if code not in settings.BANKS]
    if unknown:
        message = f"Unknown bank(s): {', '.join(map(str, unknown))}."
        raise ValidationFailed(f"banks: {message}", extra={"fields": {"banks": [message]}})
    return list(dict.fromkeys(bank_codes))  # dedupe, keep the user's order


def onboarding_start(
    *, user, bank_codes: list[str], client_ids: dict[str, str] | None = None
) -> OnboardingFlow:
    """Record the chosen banks and ask a worker to connect each as the user's client there
    (`client_ids` by bank code; a bank not in it: the connection's client, else a proposed demo
    client): no bank call here (users/onboarding/connect_requests.py).

    Every bank and client id is checked before anything is written (400 for a malformed id or a
    missing one without demo clients, 409 for someone else's client, a consent held by another
    client or a connect as another client under way); after that a bank's failure is shown in
    the status.
    """
    from users.onboarding.connect_requests import bank_connect_request  # it builds on this module

    codes = _validated_bank_codes(bank_codes)
    client_ids = client_ids or {}
    _clients_check(user=user, codes=codes, client_ids=client_ids)
    flow, _ = OnboardingFlow.objects.update_or_create(
        user=user, defaults={"selected_banks": codes, "step": Step.CONSENTS, "completed_at": None}
    )
    for code in codes:
        try:
            bank_connect_request(
                user=user,
                bank_code=code,
                client_id=client_ids.get(code),
                trigger=SyncTrigger.ONBOARDING,
                already_connected_ok=True,
            )
        except (ApplicationError, BankError) as exc:
            message = _error_message(exc)
            logger.warning("onboarding: connecting %s for user %s failed: %s", code, user.pk, exc)
            _connection_error(user=user, bank_code=code, message=message)
    onboarding_step_settle(user_id=user.pk)
    flow.refresh_from_db()
    return flow


def _clients_check(*, user, codes: list[str], client_ids: dict[str, str]) -> None:
    """The onboarding's client ids, checked as connecting would, before any bank is connected."""
    unknown = sorted(set(client_ids) - set(codes))
    if unknown:
        message = f"Client ids given for banks not chosen: {', '.join(unknown)}."
        raise ValidationFailed(f"banks: {message}", extra={"fields": {"banks": [message]}})
    connections = {c.bank_code: c for c in BankConnection.objects.filter(user=user)}
    for code in codes:
        connection = connections.get(code)
        current = connection.client_id if connection else ""
        client_id = client_ids.get(code)
        if client_id is None:
            if not current and not settings.DEMO_BANK_CLIENTS:
                message = f"{code}: give the client id you have at {bank_display_name(code)}."
                raise ValidationFailed(
                    f"banks: {message}", extra={"fields": {"banks": [message]}, "bank_code": code}
                )
            continue
        try:
            client_id_check(user=user, bank_code=code, client_id=client_id)
        except ValidationFailed as exc:
            message = f"{code}: {exc.extra['fields']['client_id'][0]}"
            raise ValidationFailed(
                f"banks: {message}", extra={"fields": {"banks": [message]}, "bank_code": code}
            ) from exc
        if current and client_id != current and _accounts_consent_held(user=user, bank_code=code):
            raise ClientIdLocked(extra={"bank_code": code})
        connecting = ConnectRequest.objects.filter(
            user=user,
            bank_code=code,
            status__in=(ConnectRequest.Status.QUEUED, ConnectRequest.Status.RUNNING),
        ).first()
        if connecting is not None and connecting.client_id != client_id:
            raise ConnectInProgress(extra={"bank_code": code, "connect_request_id": connecting.pk})


def _error_message(exc: ApplicationError | BankError) -> str:
    """The message the API would answer with (a bank error as the exception handler words it)."""
    if isinstance(exc, BankError):
        _status, body = upstream_error_body(exc)
        return body["message"]
    return exc.message


def _connection_error(*, user, bank_code: str, message: str) -> None:
    connection = BankConnection.objects.filter(user=user, bank_code=bank_code).first()
    if connection is not None:
        connection_status_set(
            connection=connection, to_status=ConnectionStatus.ERROR, error=message
        )


def onboarding_status(*, user) -> dict:
    """Current step, completed flag, and per bank: connection, consent, sync progress, errors.

    Reads only (no bank call, no write): a pending consent is polled by a task, not here.
    """
    flow = OnboardingFlow.objects.filter(user=user).first()
    if flow is None:
        return {
            "step": Step.CHOOSE_BANKS,
            "completed": False,
            "completed_at": None,
            "can_proceed": False,
            "progress": {"percent": 0, "eta_seconds": None},
            "banks": [],
        }
    return _status_of(flow=flow, user=user)


def onboarding_step_settle(*, user_id: int) -> None:
    """Store the user's flow's current step, and `completed_at` the first time it is done."""
    flow = OnboardingFlow.objects.select_related("user").filter(user_id=user_id).first()
    if flow is None:
        return
    step = _status_of(flow=flow, user=flow.user)["step"]
    now = timezone.now()
    flows = OnboardingFlow.objects.filter(pk=flow.pk)
    if flow.step != step:
        flows.update(step=step, updated_at=now)
    if step == Step.DONE and flow.completed_at is None:
        # Conditional: of two concurrent settles, the first one's time stays.
        flows.filter(completed_at__isnull=True).update(completed_at=now, updated_at=now)


def _status_of(*, flow: OnboardingFlow, user) -> dict:
    codes = [code for code in flow.selected_banks if code in settings.BANKS]
    connections = {c.bank_code: c for c in BankConnection.objects.filter(user=user)}
    consents = consent_latest_by_bank(user=user, kind=ConsentKind.ACCOUNTS)
    runs = sync_run_latest_by_connection(user=user)
    histories = _histories_of(user=user, connections=list(connections.values()))
    connects = _connects_latest(user=user, codes=codes)

    banks = []
    bank_runs = []
    for code in codes:
        connection = connections.get(code)
        consent = consents.get(code)
        run = runs.get(connection.pk) if connection else None
        bank = _bank_status(code=code, connection=connection, consent=consent, run=run)
        bank["history"] = _history_phase(run=run, connection=connection, state=histories.get(code))
        bank["connect"] = connects.get(code)
        if bank["sync"] is not None and run is not None:
            bank["sync"].update(_run_pages(run))
        banks.append(bank)
        bank_runs.append(run)

    # A bank whose newest days are on the dashboard (its older history still loading) counts.
    can_proceed = any(
        bank["connection_status"] == ConnectionStatus.READY
        or (bank["history"] or {}).get("phase") == SyncPhase.BACKFILL
        for bank in banks
    )
    step = _step_of(banks, can_proceed=can_proceed)
    return {
        "step": step,
        "completed": step == Step.DONE,
        # Stored when the flow first got done (by the action that finished it), kept after.
        "completed_at": flow.completed_at,
        "can_proceed": can_proceed,
        "progress": _overall_progress(banks, bank_runs),
        "banks": banks,
    }


def _connects_latest(*, user, codes: list[str]) -> dict[str, ConnectRequest]:
    """Each chosen bank's newest connect request, of any kind (one query)."""
    latest: dict[str, ConnectRequest] = {}
    for request in ConnectRequest.objects.filter(user=user, bank_code__in=codes):
        latest.setdefault(request.bank_code, request)  # newest first (the model's ordering)
    return latest


def _run_pages(run: SyncRun) -> dict:
    """A run's transactions read by pages (sync/progress.py) and the ETA they give."""
    return {
        "pages_done": run.pages_done,
        "pages_total": run.pages_total,
        "eta_seconds": run.eta_seconds,
        "progress_updated_at": run.progress_updated_at,
    }


# The overall percent weighs each bank by its work in transaction pages: those its run counts
# once the first pages said (a bank not that far yet: the mean of the known ones, else this), plus
# its other steps (consents, accounts, balances, agreements, figures) as a few pages.
_UNKNOWN_BANK_PAGES = 10.0
_OTHER_STEPS_PAGES = 2.0


def _overall_progress(banks: list[dict], runs: list[SyncRun | None]) -> dict:
    """All chosen banks together: percent of the work done (100 once every bank is settled) and
    the ETA of the slowest bank still reading (the banks sync side by side), when known.

    A bank counts done once settled (ready, or failed or waiting for a new consent: nothing to
    wait for), its run's own progress while it syncs, nothing while its connect or the user's
    approval is awaited. A bank whose page count becomes known may change the weights: the
    percent of one bank never goes back (its run's progress does not), that of several may
    step back a little when a bank turns out much larger than the others.
    """
    shares: list[tuple[float | None, float]] = []
    for bank, run in zip(banks, runs, strict=True):
        pages = float(run.pages_total) if run is not None and run.pages_total else None
        shares.append((pages, _bank_fraction(bank, run)))
    if not shares:
        return {"percent": 0, "eta_seconds": None}
    known = [pages for pages, _ in shares if pages]
    guess = sum(known) / len(known) if known else _UNKNOWN_BANK_PAGES
    total = done = 0.0
    for pages, fraction in shares:
        weight = _OTHER_STEPS_PAGES + (pages or guess)
        total += weight
        done += weight * fraction
    if all(fraction >= 1.0 for _, fraction in shares):
        percent = 100
    else:
        percent = min(99, int(round(100 * done / total, 6)))  # 0.36 × 100 is 35.99…
    etas = [
        run.eta_seconds
        for run in runs
        if run is not None and run.status in ACTIVE_SYNC_STATUSES and run.eta_seconds is not None
    ]
    return {"percent": percent, "eta_seconds": max(etas) if etas else None}


def _connecting(bank: dict) -> bool:
    """Whether a worker is still carrying out the bank's connect (its ConnectRequest; a renewal,
    fresh request or demo approval under way does not make a connected bank "connecting")."""
    connect = bank.get("connect")
    return (
        connect is not None
        and connect.kind == ConnectRequest.Kind.CONNECT
        and connect.status in (ConnectRequest.Status.QUEUED, ConnectRequest.Status.RUNNING)
    )


def _bank_fraction(bank: dict, run: SyncRun | None) -> float:
    """How much of one bank's onboarding work is done, 0–1."""
    if run is not None and run.status in ACTIVE_SYNC_STATUSES:
        return min(run.progress, 99) / 100
    if _connecting(bank):
        return 0.0
    if bank["consent_status"] == ConsentStatus.PENDING:
        return 0.0
    return 1.0


def _bank_status(*, code: str, connection, consent, run) -> dict:
    consent_status = consent.status if consent else None
    action = None
    if consent is not None and consent.status == ConsentStatus.PENDING:
        action = consent_services.consent_approval_action(consent=consent, connection=connection)
    syncing = run is not None and run.status in ACTIVE_SYNC_STATUSES
    return {
        "bank_code": code,
        "bank_name": bank_display_name(code),
        "connection_status": connection.status if connection else ConnectionStatus.NOT_CONNECTED,
        "status_reason": connection.status_reason if connection else "",
        "status_message": connection_status_message(
            bank_code=code,
            status=connection.status if connection else ConnectionStatus.NOT_CONNECTED,
            last_error=connection.last_error if connection else "",
        ),
        "next_retry_at": connection.next_retry_at if connection else None,
        "consent_status": consent_status,
        "consent_expires_at": consent.expires_at if consent else None,
        "action_required": action,
        "sync": None
        if run is None
        else {
            "id": run.pk,
            "status": run.status,
            "step": run.step,
            "progress": run.progress,
            "accounts_count": run.accounts_count,
            "transactions_added": run.transactions_added,
            "transactions_updated": run.transactions_updated,
            "agreements_count": run.agreements_count,
            "error": run.error,
            "error_code": run.error_code,
            "finished_at": run.finished_at,
            "phase": run.phase,
        },
        "syncing": syncing,
        "last_error": connection.last_error if connection else "",
        "last_success_at": connection.last_success_at if connection else None,
    }


def _histories_of(*, user, connections: list[BankConnection]) -> dict[str, dict]:
    """Each bank's stored history by bank code (analytics/history.py: complete, or loading and
    complete from which day), as the dashboard's snapshot reads it."""
    accounts = list(Account.objects.filter(user=user, is_active=True))
    state = history_state(accounts=accounts, connections=connections, zone=user_zone(user))
    return {bank["bank_code"]: bank for bank in state["banks"]}


def _history_phase(*, run, connection, state: dict | None) -> dict | None:
    """Where a bank's history stands: `recent` (its newest days being read), `backfill` (those
    on the dashboard, the older history loading, or left to the next sync by a failed backfill)
    or `done`; None before any sync stored something."""
    if run is None or connection is None:
        return None
    loading = state is not None and state["state"] == "loading"
    complete_from = state["complete_from"] if loading and state else None
    if run.status in ACTIVE_SYNC_STATUSES and run.phase:
        phase = str(run.phase)
    elif loading:
        phase = SyncPhase.BACKFILL if complete_from else SyncPhase.RECENT
    elif connection.last_success_at is None:
        return None
    else:
        phase = "done"
    return {"phase": str(phase), "complete_from": complete_from}


def _step_of(banks: list[dict], *, can_proceed: bool) -> str:
    """Consents while one awaits approval, syncing while one runs, done once settled and ready."""
    if not banks:
        return Step.CHOOSE_BANKS
    if any(bank["consent_status"] == ConsentStatus.PENDING for bank in banks):
        return Step.CONSENTS
    if any(_connecting(bank) for bank in banks):
        return Step.CONSENTS  # a worker is still asking a bank for the consents
    statuses = {bank["connection_status"] for bank in banks}
    if any(bank["syncing"] for bank in banks) or ConnectionStatus.SYNC_IN_PROGRESS in statuses:
        return Step.SYNCING
    return Step.DONE if can_proceed else Step.CONSENTS
