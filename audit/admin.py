"""Audit console: raw bank exchanges and audit events, read-only for everyone (even superusers)."""

from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html

from audit.models import AuditEvent, Direction, RawApiLog
from audit.services import AuditAction
from fintrack.core.admin import (
    EMPTY,
    BigTableAdminMixin,
    ReadOnlyAdminMixin,
    admin_changelist_url,
    admin_link,
    choices_list_filter,
    json_field,
)


class StatusClassListFilter(admin.SimpleListFilter):
    """HTTP status class of a response: 2xx, 3xx, 4xx, 5xx, or no status at all."""

    title = "status class"
    parameter_name = "status_class"

    def lookups(self, request, model_admin):
        return [
            ("2xx", "2xx success"),
            ("3xx", "3xx redirect"),
            ("4xx", "4xx refused"),
            ("5xx", "5xx bank error"),
            ("none", "No status (request, or no response)"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(status_code__isnull=True)
        if value in {"2xx", "3xx", "4xx", "5xx"}:
            low = int(value[0]) * 100
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset


class CorrelationIdListFilter(admin.SimpleListFilter):
    """Shows the active `?correlation_id=` filter (the sync run's "all its raw logs" link)."""

    title = "correlation id"
    parameter_name = "correlation_id"

    def lookups(self, request, model_admin):
        # No list of choices (there are millions); only the value in the URL, so it can be cleared.
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(correlation_id=value) if value else queryset


BANK_FILTER = choices_list_filter(
    "bank_code", "bank", [(code, code) for code in settings.BANK_CODES]
)
payload_pretty = json_field("payload", "Payload (redacted, as stored)")
headers_pretty = json_field("headers", "Headers (redacted)")
details_pretty = json_field("details", "Details")


@admin.register(RawApiLog)
class RawApiLogAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "bank_code",
        "direction",
        "method",
        "endpoint",
        "status_code",
        "duration_ms",
        "user",
        "correlation_link",
        "exchange_link",
    ]
    list_filter = [
        BANK_FILTER,
        "direction",
        StatusClassListFilter,
        ("created_at", admin.DateFieldListFilter),
        CorrelationIdListFilter,
    ]
    search_fields = ["=correlation_id", "endpoint"]
    search_help_text = "Exact correlation id, or part of an endpoint path."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user"]
    changelist_defer = ("payload", "headers")
    fields = [
        "created_at",
        "bank_code",
        "direction",
        "method",
        "endpoint",
        "status_code",
        "duration_ms",
        "error",
        "user",
        "correlation_link",
        "exchange_id",
        "counterpart_link",
        headers_pretty,
        payload_pretty,
    ]
    readonly_fields = fields

    @admin.display(description="correlation id")
    def correlation_link(self, obj: RawApiLog):
        if not obj.correlation_id:
            return EMPTY
        url = admin_changelist_url(RawApiLog, correlation_id=obj.correlation_id)
        return format_html('<a href="{}">{}</a>', url, obj.correlation_id)

    @admin.display(description="exchange")
    def exchange_link(self, obj: RawApiLog):
        url = admin_changelist_url(RawApiLog, exchange_id=str(obj.exchange_id))
        return format_html('<a href="{}">{}…</a>', url, str(obj.exchange_id)[:8])

    @admin.display(description="the other half of this exchange")
    def counterpart_link(self, obj: RawApiLog):
        other_direction = (
            Direction.RESPONSE if obj.direction == Direction.REQUEST else Direction.REQUEST
        )
        other = (
            RawApiLog.objects.filter(exchange_id=obj.exchange_id, direction=other_direction)
            .exclude(pk=obj.pk)
            .only("id", "direction", "method", "bank_code", "endpoint", "status_code")
            .first()
        )
        if other is None:
            return EMPTY
        return admin_link(other, f"{other.get_direction_display()}: {other}")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "action",
        "actor",
        "user",
        "object_type",
        "object_id",
        "bank_code",
        "correlation_link",
    ]
    list_filter = [
        choices_list_filter("action", "action", AuditAction.choices),
        BANK_FILTER,
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=correlation_id", "=object_id", "user__email", "actor__email"]
    search_help_text = "Exact correlation or object id, or a user's / staff member's email."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["actor", "user"]
    changelist_defer = ("details",)
    fields = [
        "created_at",
        "action",
        "actor",
        "user",
        "object_type",
        "object_id",
        "bank_code",
        "correlation_link",
        details_pretty,
    ]
    readonly_fields = fields

    @admin.display(description="correlation id")
    def correlation_link(self, obj: AuditEvent):
        if not obj.correlation_id:
            return EMPTY
        url = admin_changelist_url(RawApiLog, correlation_id=obj.correlation_id)
        return format_html(
            '<a href="{}" title="raw bank logs of this correlation">{}</a>',
            url,
            obj.correlation_id,
        )
