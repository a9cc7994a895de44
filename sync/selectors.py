"""Reads of sync runs and connections, always scoped to a user (another user's id is not found)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from fintrack.core.exceptions import NotFound
from sync.models import ACTIVE_SYNC_STATUSES, SyncRun

RECENT_RUNS_LIMIT = 50


def sync_run_list(*, user, bank_code: str | None = None, limit: int = RECENT_RUNS_LIMIT) -> list:
    """The user's most recent sync runs, newest first."""
    runs = SyncRun.objects.filter(user=user).select_related("connection")
    if bank_code:
        runs = runs.filter(connection__bank_code=bank_code)
    return list(runs.order_by("-created_at", "-id")[:limit])


def sync_run_get(*, user, sync_run_id: int) -> SyncRun:
    """One of the user's sync runs, or NotFound."""
    run = SyncRun.objects.filter(user=user, pk=sync_run_id).select_related("connection").first()
    if run is None:
        raise NotFound("Sync run not found.")
    return run


def sync_run_active(*, connection) -> SyncRun | None:
    """The queued or running run of a connection, if any."""
    return (
        SyncRun.objects.filter(connection=connection, status__in=ACTIVE_SYNC_STATUSES)
        .order_by("-created_at")
        .first()
    )


def sync_run_latest_by_connection(*, user) -> dict[int, SyncRun]:
    """The newest run of each of the user's connections, keyed by connection id (two queries)."""
    latest_ids = (
        SyncRun.objects.filter(user=user)
        .values("connection_id")
        .annotate(latest_id=Max("id"))
        .values_list("latest_id", flat=True)
    )
    return {run.connection_id: run for run in SyncRun.objects.filter(pk__in=list(latest_ids))}


# Connections the schedule syncs (given an authorised consent): a consent_pending or
# consent_required one whose new consent was authorised away from a connect (a renewal polled by
# the lifecycle sweep, a request approved later) starts syncing again without the user.
SCHEDULED_SYNC_STATUSES = (
    ConnectionStatus.READY,
    ConnectionStatus.ERROR,
    ConnectionStatus.CONSENT_PENDING,
    ConnectionStatus.CONSENT_REQUIRED,
)


def connection_due_for_sync_list(*, now=None) -> QuerySet[BankConnection]:
    """Connections the schedule should sync (SCHEDULED_SYNC_STATUSES), consent authorised, not
    synced lately."""
    now = now or timezone.now()
    threshold = now - timedelta(minutes=settings.SYNC_MIN_INTERVAL_MINUTES)
    authorised_consent = Consent.objects.filter(
        user_id=OuterRef("user_id"),
        bank_code=OuterRef("bank_code"),
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    recent_run = SyncRun.objects.filter(connection_id=OuterRef("pk"), created_at__gte=threshold)
    return (
        BankConnection.objects.filter(status__in=SCHEDULED_SYNC_STATUSES)
        .filter(Q(last_sync_at__isnull=True) | Q(last_sync_at__lt=threshold))
        .filter(Exists(authorised_consent))
        .exclude(Exists(recent_run))
        .order_by("last_sync_at", "pk")
    )
