"""Snapshot computation: placeholder until the full pipeline lands."""

from analytics.models import AnalyticsSnapshot


def snapshot_compute(*, user, today=None) -> AnalyticsSnapshot:
    """Store an empty snapshot (temporary)."""
    return AnalyticsSnapshot.objects.create(user=user, breakdown={"state": "computing"})
