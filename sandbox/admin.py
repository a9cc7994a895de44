"""Sandbox consoles: fault switches, approval modes and volumes editable; consents inspectable."""

from django.contrib import admin

from sandbox.models import (
    AccountConsent,
    AccountConsentRequest,
    ApprovalConfig,
    ClientVolume,
    FaultConfig,
    ProductConsent,
    SandboxClock,
)


@admin.register(FaultConfig)
class FaultConfigAdmin(admin.ModelAdmin):
    list_display = ("bank", "latency_ms", "error_rate", "rate_limit_rate", "hang_rate",
                    "malformed_rate", "token_max_age_seconds", "updated_at")  # fmt: skip


@admin.register(ApprovalConfig)
class ApprovalConfigAdmin(admin.ModelAdmin):
    list_display = ("bank", "account_consents_auto", "product_consents_auto")


@admin.register(ClientVolume)
class ClientVolumeAdmin(admin.ModelAdmin):
    list_display = ("client_id", "transactions_per_year", "history_months")
    search_fields = ("client_id",)


@admin.register(SandboxClock)
class SandboxClockAdmin(admin.ModelAdmin):
    list_display = ("id", "offset_seconds", "frozen_at", "anchor_date", "updated_at")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Consents change through the bank API; the console only shows them (and may delete)."""

    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


@admin.register(AccountConsentRequest)
class AccountConsentRequestAdmin(ReadOnlyAdmin):
    list_display = ("request_id", "bank", "client_id", "requesting_bank", "status", "created_at")
    list_filter = ("bank", "status")
    search_fields = ("request_id", "client_id")
    date_hierarchy = "created_at"


@admin.register(AccountConsent)
class AccountConsentAdmin(ReadOnlyAdmin):
    list_display = ("consent_id", "bank", "client_id", "granted_to", "status", "expires_at")
    list_filter = ("bank", "status")
    search_fields = ("consent_id", "client_id")
    date_hierarchy = "created_at"
    list_select_related = ("request",)


@admin.register(ProductConsent)
class ProductConsentAdmin(ReadOnlyAdmin):
    list_display = ("request_id", "consent_id", "bank", "client_id", "status", "valid_until")
    list_filter = ("bank", "status")
    search_fields = ("request_id", "consent_id", "client_id")
    date_hierarchy = "created_at"
