"""The sandbox clock: real time shifted by an offset, or frozen; tests and benchmarks move it."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone

from sandbox.models import SandboxClock


@dataclass(frozen=True)
class ClockState:
    """One reading of the clock: the sandbox's now and the date history is anchored to."""

    now: datetime
    anchor: date


def _row() -> SandboxClock:
    row = SandboxClock.objects.filter(pk=1).first()
    if row is None:
        row, _ = SandboxClock.objects.get_or_create(
            pk=1, defaults={"anchor_date": timezone.now().date()}
        )
    return row


def _state_of(row: SandboxClock) -> ClockState:
    if row.frozen_at is not None:
        now = row.frozen_at
    else:
        now = timezone.now() + timedelta(seconds=row.offset_seconds)
    return ClockState(now=now, anchor=row.anchor_date)


def state() -> ClockState:
    """Read the clock once (one query)."""
    return _state_of(_row())


def now() -> datetime:
    """The sandbox's current time (aware, UTC)."""
    return state().now


def advance(
    *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
) -> datetime:
    """Move the clock forward (or back, with negative values); returns the new now."""
    delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    row = _row()
    if row.frozen_at is not None:
        row.frozen_at = row.frozen_at + delta
    else:
        row.offset_seconds += delta.total_seconds()
    row.save()
    return _state_of(row).now


def freeze(at: datetime | None = None) -> datetime:
    """Stop the clock at `at` (default: the current sandbox time)."""
    row = _row()
    row.frozen_at = at or _state_of(row).now
    row.save()
    return row.frozen_at


def unfreeze() -> datetime:
    """Let the clock run again from where it stands (keeps the current sandbox time)."""
    row = _row()
    if row.frozen_at is not None:
        row.offset_seconds = (row.frozen_at - timezone.now()).total_seconds()
        row.frozen_at = None
        row.save()
    return _state_of(row).now


def reset(*, at: datetime | None = None, anchor: date | None = None) -> ClockState:
    """Back to real time (or frozen at `at`), history anchored at `anchor` (default: that day)."""
    row = _row()
    row.offset_seconds = 0
    row.frozen_at = at
    row.anchor_date = anchor or (at or timezone.now()).date()
    row.save()
    return _state_of(row)
