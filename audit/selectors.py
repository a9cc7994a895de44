"""Reads of the audit trail (staff-only: these are not scoped to one user)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import QuerySet

from audit.models import Direction, RawApiLog


def raw_log_list() -> QuerySet[RawApiLog]:
    """Every stored raw API log row, newest first (payloads were redacted when stored), with
    the shared body each response points at."""
    return RawApiLog.objects.select_related("body").order_by("-created_at", "-id")


@dataclass(frozen=True)
class SameAs:
    """The response that stored a shared body first: its row (None once purged), exchange, time."""

    id: int | None
    exchange_id: UUID
    created_at: datetime


def raw_log_same_as(logs: Iterable[RawApiLog]) -> dict[int, SameAs | None]:
    """For each log (by id) whose body another call stored first, that call; None for a log that
    stored its body itself or has none of its own. One query for all of them (the first rows
    are found by exchange id and time, so PostgreSQL looks in their day's partition only)."""
    logs = list(logs)
    wanted = {}
    for log in logs:
        body = _body(log)
        if body is not None and body.first_exchange_id != log.exchange_id:
            wanted[body.first_exchange_id] = body.first_seen_at
    found = {}
    if wanted:
        found = {
            row["exchange_id"]: row["id"]
            for row in RawApiLog.objects.filter(
                exchange_id__in=list(wanted),
                created_at__in=sorted(set(wanted.values())),
                direction=Direction.RESPONSE,
            ).values("exchange_id", "id")
        }
    result: dict[int, SameAs | None] = {}
    for log in logs:
        body = _body(log)
        if body is None or body.first_exchange_id == log.exchange_id:
            result[log.pk] = None
        else:
            result[log.pk] = SameAs(
                found.get(body.first_exchange_id), body.first_exchange_id, body.first_seen_at
            )
    return result


def _body(log: RawApiLog):
    if log.body_id is None:
        return None
    try:
        return log.body
    except RawApiLog.body.RelatedObjectDoesNotExist:
        return None
