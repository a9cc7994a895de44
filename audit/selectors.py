"""Reads of the audit trail (staff-only: these are not scoped to one user)."""

from django.db.models import QuerySet

from audit.models import RawApiLog


def raw_log_list() -> QuerySet[RawApiLog]:
    """Every stored raw API log row, newest first (payloads were redacted when stored)."""
    return RawApiLog.objects.order_by("-created_at", "-id")
