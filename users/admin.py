"""Users console: identity, bank connections (each with its bank client id), latest analytics."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Prefetch
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from analytics.console import financial_picture
from analytics.models import AnalyticsSnapshot
from audit.models import RawApiLog
from banking.models import Account, BankConnection, Transaction
from consents.models import Consent
from fintrack.core.admin import (
    EMPTY,
    ReadOnlyAdminMixin,
    admin_change_url,
    admin_changelist_url,
    admin_link,
)
from sync.models import SyncRun
from users.models import ConnectRequest, OnboardingFlow, RevokedAccessToken, User


class BankConnectionInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The user's bank connections, read-only; each links to its page (with "sync now")."""

    model = BankConnection
    fields = [
        "bank_code",
        "client_id",
        "client_id_is_demo",
        "status",
        "last_sync_at",
        "last_success_at",
        "consent_expires_at",
    ]
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["-created_at"]
    list_display = [
        "id",
        "email",
        "phone",
        "banks",
        "is_staff",
        "created_at",
        "last_login",
        "picture",
    ]
    list_filter = ["is_staff", "is_active", "created_at"]
    search_fields = ["email", "phone", "=bank_connections__client_id"]
    search_help_text = "Email or phone (words), or an exact bank client id."
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at",
        "last_login",
        "financial_picture_link",
        "latest_snapshot",
        "related_rows",
    ]
    inlines = [BankConnectionInline]
    fieldsets = (
        (None, {"fields": ("email", "phone", "password")}),
        (
            "FinTrack data",
            {"fields": ("financial_picture_link", "latest_snapshot", "related_rows")},
        ),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("created_at", "last_login")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "phone", "password1", "password2"),
            },
        ),
    )

    def get_urls(self):
        # The staff "Financial picture" page of one user (analytics/console.py).
        picture = path(
            "<int:user_id>/financial-picture/",
            self.admin_site.admin_view(financial_picture),
            {"admin_site": self.admin_site},
            name="users_user_financial_picture",
        )
        return [picture, *super().get_urls()]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_queryset(self, request):
        connections = BankConnection.objects.only(
            "id", "user_id", "bank_code", "status", "client_id"
        )
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("bank_connections", queryset=connections))
        )

    @admin.display(description="banks")
    def banks(self, obj: User) -> str:
        connections = sorted(obj.bank_connections.all(), key=lambda c: c.bank_code)
        return (
            ", ".join(
                f"{c.bank_code} {c.client_id} ({c.status})"
                if c.client_id
                else f"{c.bank_code} ({c.status})"
                for c in connections
            )
            or EMPTY
        )

    @admin.display(description="financial picture")
    def picture(self, obj: User):
        url = reverse("admin:users_user_financial_picture", args=[obj.pk])
        return format_html('<a href="{}">picture</a>', url)

    @admin.display(description="financial picture")
    def financial_picture_link(self, obj: User):
        if obj.pk is None:
            return EMPTY
        url = reverse("admin:users_user_financial_picture", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">Financial picture</a> &nbsp;what the user\'s dashboard '
            "says, drawn, each figure linked to the rows behind it",
            url,
        )

    @admin.display(description="latest analytics snapshot")
    def latest_snapshot(self, obj: User):
        if obj.pk is None:
            return EMPTY
        snapshot = (
            AnalyticsSnapshot.objects.filter(user=obj)
            .defer("breakdown", "summary")
            .order_by("-created_at", "-id")
            .first()
        )
        if snapshot is None:
            return EMPTY
        return format_html(
            '<a href="{}">{}</a>: save-to-spend {} {} ({}), health {} ({}), debt {}',
            admin_change_url(snapshot),
            f"{snapshot.created_at:%Y-%m-%d %H:%M}",
            snapshot.sts_amount if snapshot.sts_amount is not None else EMPTY,
            snapshot.currency,
            snapshot.sts_status or EMPTY,
            snapshot.health_score if snapshot.health_score is not None else EMPTY,
            snapshot.health_band or EMPTY,
            snapshot.total_debt,
        )

    @admin.display(description="data")
    def related_rows(self, obj: User):
        if obj.pk is None:
            return EMPTY
        filters = {"user__id__exact": obj.pk}
        links = [
            (admin_changelist_url(Account, **filters), "accounts"),
            (admin_changelist_url(Transaction, **filters), "transactions"),
            (admin_changelist_url(Consent, **filters), "consents"),
            (admin_changelist_url(SyncRun, **filters), "sync runs"),
            (admin_changelist_url(AnalyticsSnapshot, **filters), "analytics snapshots"),
            (admin_changelist_url(RawApiLog, **filters), "raw bank logs"),
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)


@admin.register(OnboardingFlow)
class OnboardingFlowAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "step", "selected_banks", "completed_at", "created_at", "updated_at"]
    list_filter = ["step", ("completed_at", admin.EmptyFieldListFilter)]
    search_fields = ["=user__email", "=user__phone", "=user__bank_connections__client_id"]
    search_help_text = "Exact user email, phone or client id."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user"]
    fields = ["user_link", "step", "selected_banks", "completed_at", "created_at", "updated_at"]
    readonly_fields = fields

    @admin.display(description="user")
    def user_link(self, obj: OnboardingFlow):
        return admin_link(obj.user)


@admin.register(RevokedAccessToken)
class RevokedAccessTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Access tokens ended by logout (by jti), until they would have expired."""

    list_display = ["jti", "expires_at"]
    search_fields = ["=jti"]
    ordering = ["-expires_at"]
    fields = ["jti", "expires_at"]
    readonly_fields = fields


@admin.register(ConnectRequest)
class ConnectRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Connects, renewals, fresh requests and demo approvals asked for in a web request and
    carried out by a worker: who, which bank, what, how it went (a stuck `queued` one is re-sent
    by the reaper, users/onboarding/reaper.py, or the user's next request of the same kind)."""

    list_display = [
        "id",
        "user",
        "bank_code",
        "kind",
        "status",
        "outcome",
        "attempts",
        "error_code",
        "next_retry_at",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind", "status", "bank_code", "outcome"]
    search_fields = ["=user__email", "=client_id", "=task_id"]
    search_help_text = "Exact user email, client id or task id."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user"]
    fields = [
        "user_link",
        "bank_code",
        "kind",
        "consent",
        "trigger",
        "status",
        "outcome",
        "client_id",
        "previous_client_id",
        "previous_client_id_is_demo",
        "attempts",
        "task_id",
        "error_code",
        "error",
        "next_retry_at",
        "sync_run",
        "created_at",
        "updated_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description="user")
    def user_link(self, obj: ConnectRequest):
        return admin_link(obj.user)
