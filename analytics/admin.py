"""Analytics console: each snapshot's figures, the breakdown that explains every term, and the
recomputations scheduled (the debounce markers)."""

from django.contrib import admin

from analytics.models import AnalyticsSnapshot, RecomputeRequest
from fintrack.core.admin import BigTableAdminMixin, ReadOnlyAdminMixin, json_field

breakdown_pretty = json_field("breakdown", "Breakdown (how every figure was computed)")
summary_pretty = json_field("summary", "Summary (what the dashboard serves)")


@admin.register(AnalyticsSnapshot)
class AnalyticsSnapshotAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "user",
        "currency",
        "sts_amount",
        "sts_daily",
        "sts_status",
        "health_score",
        "health_band",
        "total_debt",
        "next_payment_date",
        "next_payment_amount",
        "data_fresh_as_of",
    ]
    list_filter = ["sts_status", "health_band"]
    search_fields = ["=user__email", "=user__bank_connections__client_id"]
    search_help_text = "Exact user email or client id."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user"]
    changelist_defer = ("breakdown", "summary")
    fieldsets = (
        (
            "Figures",
            {
                "fields": (
                    "user",
                    "currency",
                    "sts_amount",
                    "sts_daily",
                    "sts_status",
                    "health_score",
                    "health_band",
                    "total_debt",
                    "monthly_debt_service",
                    "next_payment_date",
                    "next_payment_amount",
                    "data_fresh_as_of",
                    "created_at",
                )
            },
        ),
        ("How they were computed", {"fields": (breakdown_pretty, summary_pretty)}),
    )
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]


@admin.register(RecomputeRequest)
class RecomputeRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Users whose snapshot a recomputation is scheduled for; one older than
    RECOMPUTE_MARKER_TTL_SECONDS was lost and counts as gone (the next request replaces it)."""

    list_display = ["user", "requested_at"]
    search_fields = ["=user__email"]
    search_help_text = "Exact user email."
    ordering = ["-requested_at"]
    list_select_related = ["user"]
    fields = ["user", "requested_at"]
    readonly_fields = fields
