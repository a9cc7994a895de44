"""Onboarding services: connecting a bank (consents, then the first sync) and the onboarding flow.

- `bank_connect` asks `consents` for both consents and `sync` for the first run once the accounts
  consent is authorised; a consent left pending is polled by `tasks.pending_consent_poll`, which
  calls `onboarding_consent_poll` and starts the first sync when the bank approves.
- `consent_approve_demo_and_sync`: the demo approval (SPEC §3.4), then the first sync.
- `onboarding_start` records the chosen banks and connects each one.
- `onboarding_status` is a read: no bank call, no write; the step is computed from what is stored.
- `onboarding_step_settle` stores that step, and `completed_at` the first time it is done, from
  the actions that change it: start, connect, demo approval, the poll, a finished sync run.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from banking.clients.errors import BankError
from banking.models import BankConnection, ConnectionStatus
from banking.services.clients import bank_display_name
from banking.services.connections import connection_get_or_create
from consents import services as consent_services
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.selectors import consent_latest_by_bank
from fintrack.core.exception_handler import upstream_error_body
from fintrack.core.exceptions import ApplicationError, ValidationFailed
from sync.models import ACTIVE_SYNC_STATUSES, SyncRun, SyncTrigger
from sync.selectors import sync_run_active, sync_run_latest_by_connection
from sync.services import connection_status_set, connection_sync_start
from users.models import OnboardingFlow
from users.onboarding.exceptions import AlreadyConnected, ConsentRejected

logger = logging.getLogger(__name__)
Step = OnboardingFlow.Step


# --- Connecting a bank ----------------------------------------------------------------------------


@dataclass
class BankConnectResult:
    """What connecting did: the consents, the first run if started, what the user must do."""

    connection: BankConnection
    accounts_consent: Consent
    products_consent: Consent | None
    sync_run: SyncRun | None
    sync_started: bool
    action_required: dict | None


def bank_connect(
    *, user, bank_code: str, trigger: str = SyncTrigger.USER, already_connected_ok: bool = False
) -> BankConnectResult:
    """Request both consents; start the first sync when authorised, else say how to approve."""
    result = _bank_connect(
        user=user, bank_code=bank_code, trigger=trigger, already_connected_ok=already_connected_ok
    )
    onboarding_step_settle(user_id=user.pk)
    return result


def _bank_connect(
    *, user, bank_code: str, trigger: str, already_connected_ok: bool
) -> BankConnectResult:
    bank_display_name(bank_code)  # UnknownBank for an unconfigured code
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
    # A bank error asking for the accounts consent propagates (the API's exception handler
    # renders it as 502/503); the products consent is optional (None when the bank failed it).
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
        result.sync_run, result.sync_started = connection_sync_start(
            connection=connection, trigger=trigger
        )
    elif accounts_consent.status == ConsentStatus.PENDING:
        connection_status_set(connection=connection, to_status=ConnectionStatus.CONSENT_PENDING)
        result.action_required = consent_services.consent_approval_action(consent=accounts_consent)
        _pending_consent_poll_schedule(consent=accounts_consent, trigger=trigger)
    else:
        raise ConsentRejected(
            f"{bank_display_name(bank_code)} answered {accounts_consent.status} to the request.",
            extra={"bank_code": bank_code, "consent_status": accounts_consent.status},
        )
    connection.refresh_from_db(fields=["status", "last_error", "last_success_at"])
    return result


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


def onboarding_start(*, user, bank_codes: list[str]) -> OnboardingFlow:
    """Record the chosen banks and connect each; a bank's failure is shown in the status."""
    codes = _validated_bank_codes(bank_codes)
    flow, _ = OnboardingFlow.objects.update_or_create(
        user=user, defaults={"selected_banks": codes, "step": Step.CONSENTS, "completed_at": None}
    )
    for code in codes:
        try:
            _bank_connect(
                user=user, bank_code=code, trigger=SyncTrigger.ONBOARDING, already_connected_ok=True
            )
        except (ApplicationError, BankError) as exc:
            message = _error_message(exc)
            logger.warning("onboarding: connecting %s for user %s failed: %s", code, user.pk, exc)
            _connection_error(user=user, bank_code=code, message=message)
    onboarding_step_settle(user_id=user.pk)
    flow.refresh_from_db()
    return flow


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

    banks = []
    for code in codes:
        connection = connections.get(code)
        consent = consents.get(code)
        run = runs.get(connection.pk) if connection else None
        banks.append(_bank_status(code=code, connection=connection, consent=consent, run=run))

    can_proceed = any(bank["connection_status"] == ConnectionStatus.READY for bank in banks)
    step = _step_of(banks, can_proceed=can_proceed)
    return {
        "step": step,
        "completed": step == Step.DONE,
        # Stored when the flow first got done (by the action that finished it), kept after.
        "completed_at": flow.completed_at,
        "can_proceed": can_proceed,
        "banks": banks,
    }


def _bank_status(*, code: str, connection, consent, run) -> dict:
    consent_status = consent.status if consent else None
    action = None
    if consent is not None and consent.status == ConsentStatus.PENDING:
        action = consent_services.consent_approval_action(consent=consent)
    syncing = run is not None and run.status in ACTIVE_SYNC_STATUSES
    return {
        "bank_code": code,
        "bank_name": bank_display_name(code),
        "connection_status": connection.status if connection else ConnectionStatus.NOT_CONNECTED,
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
            "accounts": run.accounts_count,
            "transactions_added": run.transactions_added,
            "transactions_updated": run.transactions_updated,
            "agreements": run.agreements_count,
            "error": run.error,
            "error_code": run.error_code,
            "finished_at": run.finished_at,
        },
        "syncing": syncing,
        "last_error": connection.last_error if connection else "",
        "last_success_at": connection.last_success_at if connection else None,
    }


def _step_of(banks: list[dict], *, can_proceed: bool) -> str:
    """Consents while one awaits approval, syncing while one runs, done once settled and ready."""
    if not banks:
        return Step.CHOOSE_BANKS
    if any(bank["consent_status"] == ConsentStatus.PENDING for bank in banks):
        return Step.CONSENTS
    statuses = {bank["connection_status"] for bank in banks}
    if any(bank["syncing"] for bank in banks) or ConnectionStatus.SYNC_IN_PROGRESS in statuses:
        return Step.SYNCING
    return Step.DONE if can_proceed else Step.CONSENTS
