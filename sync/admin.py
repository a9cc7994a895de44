"""Sync console: every run with its progress, counts, errors and one click to its raw bank logs."""

from django.contrib import admin
from django.utils.html import format_html

from audit.models import RawApiLog
from fintrack.core.admin import (
    EMPTY,
    BigTableAdminMixin,
    ReadOnlyAdminMixin,
    admin_changelist_url,
    admin_link,
    json_field,
)
from sync.models import SyncRun

warnings_pretty = json_field("warnings", "Warnings (skipped bank items)")


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "bank_code",
        "user",
        "kind",
        "trigger",
        "status",
        "step",
        "progress_percent",
        "accounts_count",
        "transactions_added",
        "transactions_updated",
        "agreements_count",
        "bank_calls",
        "error_code",
        "duration",
        "raw_logs_link",
    ]
    list_filter = ["status", "kind", "trigger", "step", "connection__bank_code"]
    search_fields = [
        "=correlation_id",
        "=error_code",
        "=user__email",
        "=user__external_client_id",
        "error",
    ]
    search_help_text = "Exact correlation id, error code, user email or client id; or error words."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["connection", "user"]
    changelist_defer = ("warnings", "error")
    fieldsets = (
        (
            "Run",
            {
                "fields": (
                    "id",
                    "connection_link",
                    "user",
                    "kind",
                    "trigger",
                    "status",
                    "step",
                    "progress_percent",
                    "attempts",
                    "correlation_id",
                    "raw_logs_link",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration",
                )
            },
        ),
        (
            "Counts",
            {
                "fields": (
                    "accounts_count",
                    "balances_count",
                    "transactions_added",
                    "transactions_updated",
                    "transactions_unchanged",
                    "transactions_removed",
                    "transactions_skipped",
                    "agreements_count",
                    "bank_calls",
                )
            },
        ),
        ("Errors", {"fields": ("error_code", "error", warnings_pretty)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field for _name, options in self.fieldsets for field in options["fields"]]

    @admin.display(description="bank", ordering="connection__bank_code")
    def bank_code(self, obj: SyncRun) -> str:
        return obj.connection.bank_code

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, obj: SyncRun) -> str:
        return f"{obj.progress}%"

    @admin.display(description="duration")
    def duration(self, obj: SyncRun) -> str:
        seconds = obj.duration_seconds
        return EMPTY if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="connection")
    def connection_link(self, obj: SyncRun):
        return admin_link(obj.connection)

    @admin.display(description="raw bank logs")
    def raw_logs_link(self, obj: SyncRun):
        url = admin_changelist_url(RawApiLog, correlation_id=str(obj.correlation_id))
        return format_html('<a href="{}">all raw logs of this run</a>', url)
