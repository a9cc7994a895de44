"""Analytics snapshots: the computed figures of one user at one moment, with their inputs."""

from django.conf import settings
from django.db import models

MONEY = {"max_digits": 18, "decimal_places": 2}


class AnalyticsSnapshot(models.Model):
    """Save-to-Spend, health score, debt and next payment; `breakdown` explains every term."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="analytics_snapshots"
    )
    currency = models.CharField(max_length=3, default="RUB")
    sts_amount = models.DecimalField(**MONEY, null=True, blank=True)
    sts_daily = models.DecimalField(**MONEY, null=True, blank=True)
    sts_status = models.CharField(max_length=16, blank=True, default="")
    health_score = models.PositiveSmallIntegerField(null=True, blank=True)
    health_band = models.CharField(max_length=16, blank=True, default="")
    total_debt = models.DecimalField(**MONEY, default=0)
    monthly_debt_service = models.DecimalField(**MONEY, default=0)
    next_payment_date = models.DateField(null=True, blank=True)
    next_payment_amount = models.DecimalField(**MONEY, null=True, blank=True)
    breakdown = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(
        default=dict, blank=True, help_text="The compact part the dashboard serves."
    )
    # The dashboard sends these bytes as they are (analytics.dashboard): made from `summary` when
    # the snapshot is stored, or on the first read of an older row (null until then).
    summary_json = models.TextField(
        null=True,
        blank=True,
        editable=False,
        help_text="The summary's dashboard members as ready-made JSON text.",
    )
    summary_json_version = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="The snapshot version summary_json was made in (analytics.summary).",
    )
    data_fresh_as_of = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "analytics_snapshots"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="snapshot_user_latest")]

    def __str__(self) -> str:
        return f"snapshot {self.user_id} @ {self.created_at:%Y-%m-%d %H:%M}"


class RecomputeRequest(models.Model):
    """ "A recomputation of this user's snapshot is scheduled": the debounce marker.

    Set by the one request that sends the task (analytics.services.analytics_recompute_request),
    deleted by the task as it starts; one older than RECOMPUTE_MARKER_TTL_SECONDS counts as gone
    (its task was lost). It lives in the database, not the cache, so the dashboard reads it in
    the same query as its snapshot (analytics.selectors.dashboard_rows).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="analytics_recompute_request",
    )
    requested_at = models.DateTimeField()

    class Meta:
        db_table = "analytics_recompute_requests"

    def __str__(self) -> str:
        return f"recompute {self.user_id} requested {self.requested_at:%Y-%m-%d %H:%M:%S}"
