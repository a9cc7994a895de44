"""Consent console: status, expiry (and the warning before it), the renewal chain, bank ids and
the bank's raw answer; refresh, renew and revoke."""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.utils import timezone

from audit.admin_actions import ServiceActionMixin
from consents.lifecycle import consent_renew
from consents.models import Consent, ConsentStatus
from consents.selectors import ConsentState, consent_expiry
from consents.services import consent_approval_deadline, consent_refresh, consent_revoke
from fintrack.core.admin import (
    EMPTY,
    ChangelistDeferMixin,
    ReadOnlyAdminMixin,
    admin_datetime,
    admin_link,
    json_field,
)

raw_response_pretty = json_field("raw_response", "Raw bank response")
permissions_pretty = json_field("permissions", "Permissions")


class ExpiryStateFilter(admin.SimpleListFilter):
    """Authorised consents by where they stand against their expiry."""

    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        days = settings.CONSENT_EXPIRY_WARNING_DAYS
        return [
            (ConsentState.EXPIRING_SOON, f"expiring within {days} days"),
            (ConsentState.EXPIRED, "past its expiry"),
            (ConsentState.VALID, "valid"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        warning = now + timedelta(days=settings.CONSENT_EXPIRY_WARNING_DAYS)
        authorised = queryset.filter(status=ConsentStatus.AUTHORIZED)
        if self.value() == ConsentState.EXPIRING_SOON:
            return authorised.filter(expires_at__gt=now, expires_at__lte=warning)
        if self.value() == ConsentState.EXPIRED:
            return authorised.filter(expires_at__lte=now)
        if self.value() == ConsentState.VALID:
            return authorised.exclude(expires_at__lte=warning)
        return queryset


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
        "expiry_state",
        "status_reason",
        "renews_link",
        "created_at",
    ]
    list_filter = [
        "status",
        ExpiryStateFilter,
        "bank_code",
        "kind",
        ("expires_at", admin.DateFieldListFilter),
    ]
    search_fields = [
        "=bank_consent_id",
        "=request_id",
        "=user__email",
        "=user__bank_connections__client_id",
    ]
    search_help_text = "Exact bank consent id, request id, user email or client id."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user", "renews"]
    changelist_defer = ("raw_response", "permissions", "renews__raw_response")
    actions = ["refresh_from_bank", "renew", "revoke"]
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
                    "expiry_state",
                    "approval_expires_at",
                    "renews_link",
                    "renewals_list",
                    permissions_pretty,
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("What the bank answered", {"fields": (raw_response_pretty,)}),
    )
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    @admin.display(description="expiry state")
    def expiry_state(self, obj: Consent) -> str:
        expiry = consent_expiry(status=obj.status, expires_at=obj.expires_at)
        if expiry.state == ConsentState.NONE:
            return EMPTY
        if expiry.state == ConsentState.EXPIRING_SOON:
            return f"expiring soon ({expiry.days_left} days left)"
        if expiry.state == ConsentState.VALID and expiry.days_left is not None:
            return f"valid ({expiry.days_left} days left)"
        return expiry.state

    @admin.display(description="approval expires")
    def approval_expires_at(self, obj: Consent):
        deadline = consent_approval_deadline(consent=obj)
        return admin_datetime(deadline) if deadline else EMPTY

    @admin.display(description="renews")
    def renews_link(self, obj: Consent):
        return admin_link(obj.renews) if obj.renews_id else EMPTY

    @admin.display(description="renewed by")
    def renewals_list(self, obj: Consent):
        renewals = list(obj.renewals.order_by("-created_at", "-id")[:5])
        if not renewals:
            return EMPTY
        return ", ".join(f"#{renewal.pk} ({renewal.status})" for renewal in renewals)

    @admin.action(
        description="Renew early (new consent; the old one stays in use)", permissions=["operate"]
    )
    def renew(self, request, queryset):
        def call(consent: Consent) -> tuple[str, dict]:
            renewal = consent_renew(
                user=consent.user, bank_code=consent.bank_code, kind=consent.kind
            )
            return (
                f"renewal #{renewal.pk} {renewal.status}",
                {"renewal": renewal.pk, "status": renewal.status},
            )

        self.run_service_action(
            request, queryset.select_related("user"), action="consent_renew", call=call
        )

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
