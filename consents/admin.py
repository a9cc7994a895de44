"""Consent console: status, expiry, bank ids and the bank's raw answer; refresh and revoke."""

from django.contrib import admin

from audit.admin_actions import ServiceActionMixin
from consents.models import Consent
from consents.services import consent_refresh, consent_revoke
from fintrack.core.admin import ChangelistDeferMixin, ReadOnlyAdminMixin, json_field

raw_response_pretty = json_field("raw_response", "Raw bank response")
permissions_pretty = json_field("permissions", "Permissions")


@admin.register(Consent)
class ConsentAdmin(ServiceActionMixin, ReadOnlyAdminMixin, ChangelistDeferMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "user",
        "bank_code",
        "kind",
        "status",
        "bank_consent_id",
        "request_id",
        "expires_at",
        "status_reason",
        "created_at",
    ]
    list_filter = ["status", "bank_code", "kind", ("expires_at", admin.DateFieldListFilter)]
    search_fields = [
        "=bank_consent_id",
        "=request_id",
        "=user__email",
        "=user__external_client_id",
    ]
    search_help_text = "Exact bank consent id, request id, user email or client id."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user"]
    changelist_defer = ("raw_response", "permissions")
    actions = ["refresh_from_bank", "revoke"]
    fieldsets = (
        (
            "Consent",
            {
                "fields": (
                    "user",
                    "bank_code",
                    "kind",
                    "status",
                    "status_reason",
                    "bank_consent_id",
                    "request_id",
                    "expires_at",
                    permissions_pretty,
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("What the bank answered", {"fields": (raw_response_pretty,)}),
    )
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    @admin.action(description="Refresh status from bank", permissions=["operate"])
    def refresh_from_bank(self, request, queryset):
        def call(consent: Consent) -> tuple[str, dict]:
            before = consent.status
            consent = consent_refresh(consent=consent)
            return (
                f"status {before} → {consent.status}",
                {"from": before, "to": consent.status},
            )

        self.run_service_action(
            request, queryset.select_related("user"), action="consent_refresh", call=call
        )

    @admin.action(description="Revoke (at the bank and here)", permissions=["operate"])
    def revoke(self, request, queryset):
        def call(consent: Consent) -> tuple[str, dict]:
            before = consent.status
            consent = consent_revoke(consent=consent)
            return f"revoked (was {before})", {"from": before, "to": consent.status}

        self.run_service_action(
            request, queryset.select_related("user"), action="consent_revoke", call=call
        )
