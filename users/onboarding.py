"""Onboarding: from chosen banks to "may proceed to the main screen" (table onboarding_flows).

Services and selectors of the flow. Each bank is connected through the same connect service as
`POST /api/banks/{bank_code}/connect`. Polling the status re-checks consents still waiting for
the user's approval and starts the first sync of a bank as soon as its consent is authorised.
"""

import logging

from django.conf import settings
from django.utils import timezone

from banking.clients.errors import BankError
from banking.models import BankConnection, ConnectionStatus
from banking.services.clients import bank_display_name
from consents import services as consent_services
from consents.models import ConsentKind, ConsentStatus
from consents.selectors import consent_latest_by_bank
from fintrack.core.exceptions import ApplicationError, ValidationFailed
from sync.models import ACTIVE_SYNC_STATUSES, SyncTrigger
from sync.selectors import sync_run_latest_by_connection
from sync.services import (
    bank_connect,
    connection_status_set,
    connection_sync_start,
    consent_approval_action,
)
from users.models import OnboardingFlow

logger = logging.getLogger(__name__)
Step = OnboardingFlow.Step


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
            bank_connect(
                user=user, bank_code=code, trigger=SyncTrigger.ONBOARDING, already_connected_ok=True
            )
        except ApplicationError as exc:
            logger.warning("onboarding: connecting %s for user %s failed: %s", code, user.pk, exc)
            _connection_error(user=user, bank_code=code, message=exc.message)
    onboarding_status(user=user)  # settles the step
    flow.refresh_from_db()
    return flow


def _connection_error(*, user, bank_code: str, message: str) -> None:
    connection = BankConnection.objects.filter(user=user, bank_code=bank_code).first()
    if connection is not None:
        connection_status_set(
            connection=connection, to_status=ConnectionStatus.ERROR, error=message
        )


def _advance_waiting_bank(*, user, connection) -> None:
    """A bank waiting for consent: re-check it; once authorised, start the first sync."""
    bank_code = connection.bank_code
    consent = consent_services.consent_active(
        user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS
    )
    if consent is None:
        pending = consent_services.consent_pending(
            user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS
        )
        if pending is None:
            return
        try:
            consent = consent_services.consent_refresh(consent=pending)
        except BankError as exc:
            logger.info("onboarding: polling %s consent failed: %s", bank_code, exc)
            return
    if consent.status == ConsentStatus.AUTHORIZED:
        connection_sync_start(connection=connection, trigger=SyncTrigger.ONBOARDING)


def onboarding_status(*, user) -> dict:
    """Current step, completed flag, and per bank: connection, consent, sync progress, errors."""
    flow = OnboardingFlow.objects.filter(user=user).first()
    if flow is None:
        return {
            "step": Step.CHOOSE_BANKS,
            "completed": False,
            "completed_at": None,
            "can_proceed": False,
            "banks": [],
        }
    codes = [code for code in flow.selected_banks if code in settings.BANKS]
    connections = {c.bank_code: c for c in BankConnection.objects.filter(user=user)}
    waiting = (ConnectionStatus.CONSENT_PENDING, ConnectionStatus.NOT_CONNECTED)
    for code in codes:
        connection = connections.get(code)
        if connection is not None and connection.status in waiting:
            _advance_waiting_bank(user=user, connection=connection)
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
    completed = step == Step.DONE
    if flow.step != step or (completed and flow.completed_at is None):
        flow.step = step
        if completed and flow.completed_at is None:
            flow.completed_at = timezone.now()
        flow.save(update_fields=["step", "completed_at", "updated_at"])
    return {
        "step": step,
        "completed": completed,
        "completed_at": flow.completed_at,
        "can_proceed": can_proceed,
        "banks": banks,
    }


def _bank_status(*, code: str, connection, consent, run) -> dict:
    consent_status = consent.status if consent else None
    action = None
    if consent is not None and consent.status == ConsentStatus.PENDING:
        action = consent_approval_action(consent=consent)
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
