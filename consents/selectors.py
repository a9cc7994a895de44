"""Reads of consents, always scoped to a user."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from consents.exceptions import ConsentNotFound
from consents.models import Consent, ConsentStatus


def consent_list(*, user, bank_code: str | None = None, kind: str | None = None) -> QuerySet:
    """The user's consents, newest first."""
    consents = Consent.objects.filter(user=user)
    if bank_code:
        consents = consents.filter(bank_code=bank_code)
    if kind:
        consents = consents.filter(kind=kind)
    return consents.order_by("-created_at", "-id")


def consent_get(*, user, consent_id: int) -> Consent:
    """One of the user's consents; anyone else's is simply not found."""
    consent = Consent.objects.filter(user=user, pk=consent_id).first()
    if consent is None:
        raise ConsentNotFound()
    return consent


def consent_active(*, user, bank_code: str, kind: str) -> Consent | None:
    """The newest authorised, unexpired consent with a bank consent id, if any."""
    return (
        Consent.objects.filter(
            user=user, bank_code=bank_code, kind=kind, status=ConsentStatus.AUTHORIZED
        )
        .exclude(bank_consent_id="")
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .order_by("-created_at", "-id")
        .first()
    )


def consent_pending(*, user, bank_code: str, kind: str) -> Consent | None:
    """The newest request still waiting for the client's approval, if any."""
    return (
        Consent.objects.filter(
            user=user, bank_code=bank_code, kind=kind, status=ConsentStatus.PENDING
        )
        .order_by("-created_at", "-id")
        .first()
    )


def consent_latest_by_bank(*, user, kind: str) -> dict[str, Consent]:
    """The newest consent of `kind` per bank (one query)."""
    latest: dict[str, Consent] = {}
    for consent in Consent.objects.filter(user=user, kind=kind).order_by("-created_at", "-id"):
        latest.setdefault(consent.bank_code, consent)
    return latest
