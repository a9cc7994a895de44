"""Sync console: every run with its progress, counts, errors and one click to its raw bank logs;
a connection's timeline (its runs newest first, each run's bank calls by step, as SVG); and the
connections' console (status, recent runs, "sync now").

BankConnection is banking's model, but its console is registered here: what an operator does
with a connection is look at its runs and start one, and both are the sync's. Registering it in
banking would make banking import the sync above it (the import contract forbids that); a
banking admin extended here would need an unregister/register dance that depends on app order.
"""

from dataclasses import dataclass

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from audit.admin_actions import ServiceActionMixin
from audit.models import Direction, RawApiLog
from banking.models import Account, BankConnection, ProductAgreement, QuarantinedBankItem
from banking.selectors.connections import connection_status_message
from consents.models import ConsentStatus
from consents.selectors import consent_expiry
from fintrack.core.admin import (
    EMPTY,
    BigTableAdminMixin,
    ReadOnlyAdminMixin,
    admin_change_url,
    admin_changelist_url,
    admin_datetime,
    admin_link,
    json_field,
)
from sync.models import SyncRun, SyncTrigger
from sync.services import connection_sync_start
from sync.timeline import (
    BankCall,
    RunBar,
    StepSummary,
    calls_from_logs,
    durations_svg,
    run_timeline_svg,
    step_summaries,
)

warnings_pretty = json_field("warnings", "Warnings (skipped bank items)")
step_errors_pretty = json_field("step_errors", "Optional steps not done (retried alone)")

TIMELINE_RUNS = 20  # runs on a timeline page by default (?limit= up to TIMELINE_MAX_RUNS)
TIMELINE_MAX_RUNS = 100
RECENT_RUNS = 5  # runs on a connection's page
MAX_CALLS_DRAWN = 300  # bank calls drawn per run; a bigger run is summed up in full, drawn in part
RAW_LOG_TIMELINE_FIELDS = (
    "id",
    "exchange_id",
    "direction",
    "method",
    "endpoint",
    "status_code",
    "duration_ms",
    "error",
    "created_at",
)


def sync_timeline_url(connection_id: int) -> str:
    """The admin timeline page of a bank connection's sync runs."""
    return reverse("admin:sync_syncrun_timeline", args=[connection_id])


@dataclass(frozen=True)
class RunTimeline:
    """One run on the timeline page: the run, its calls (as drawn), its steps and its totals."""

    run: SyncRun
    svg: SafeString
    steps: list[StepSummary]
    logged_calls: int
    errors: int
    retries: int
    drawn_calls: int
    queued_seconds: float | None

    @property
    def truncated(self) -> bool:
        return self.drawn_calls < self.logged_calls


def _seconds(start, end) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _run_timeline(run: SyncRun) -> RunTimeline:
    logs = (
        RawApiLog.objects.filter(correlation_id=str(run.correlation_id))
        .only(*RAW_LOG_TIMELINE_FIELDS)
        .order_by("created_at", "id")
    )
    calls = calls_from_logs(logs[: 2 * MAX_CALLS_DRAWN + 1])
    complete = not calls or len(calls) <= MAX_CALLS_DRAWN
    calls = calls[:MAX_CALLS_DRAWN]
    if complete:
        logged = len(calls)
        errors = sum(1 for call in calls if call.outcome != "ok")
    else:
        failed = Q(status_code__isnull=True) | Q(status_code__gte=400)
        totals = logs.filter(direction=Direction.RESPONSE).aggregate(
            calls=Count("id"), errors=Count("id", filter=failed)
        )
        logged, errors = totals["calls"], totals["errors"]

    def link(call: BankCall) -> str | None:
        row_id = call.response_id or call.request_id
        return reverse("admin:audit_rawapilog_change", args=[row_id]) if row_id else None

    # A run without logged calls gets no chart (just the run's own bar says nothing).
    svg = calls and run_timeline_svg(
        calls=calls,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        link=link,
    )
    return RunTimeline(
        run=run,
        svg=mark_safe(svg or ""),  # noqa: S308 (every text in it escaped by sync.timeline)
        steps=step_summaries(calls),
        logged_calls=logged,
        errors=errors,
        retries=sum(1 for call in calls if call.is_retry),
        drawn_calls=len(calls),
        queued_seconds=_seconds(run.created_at, run.started_at),
    )


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "bank_code",
        "user",
        "trigger",
        "status",
        "step_progress",
        "transactions_added",
        "bank_calls",
        "error_code",
        "duration",
        "links",
    ]
    list_filter = ["status", "kind", "trigger", "step", "connection__bank_code"]
    search_fields = [
        "=correlation_id",
        "=error_code",
        "=user__email",
        "=connection__client_id",
        "error",
    ]
    search_help_text = "Exact correlation id, error code, user email or client id; or error words."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["connection", "user"]
    changelist_defer = ("warnings", "step_errors", "error")
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
        ("Errors", {"fields": ("error_code", "error", step_errors_pretty, warnings_pretty)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field for _name, options in self.fieldsets for field in options["fields"]]

    def get_urls(self):
        timeline = path(
            "timeline/<int:connection_id>/",
            self.admin_site.admin_view(self.timeline_view),
            name="sync_syncrun_timeline",
        )
        return [timeline, *super().get_urls()]

    def timeline_view(self, request, connection_id: int):
        """A connection's runs newest first, each with its bank calls by step on a time axis."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        connection = get_object_or_404(
            BankConnection.objects.select_related("user"), pk=connection_id
        )
        try:
            limit = int(request.GET.get("limit", TIMELINE_RUNS))
        except ValueError:
            limit = TIMELINE_RUNS
        limit = max(1, min(limit, TIMELINE_MAX_RUNS))
        runs = list(
            SyncRun.objects.filter(connection=connection)
            .select_related("connection")
            .order_by("-created_at", "-id")[:limit]
        )
        timelines = [_run_timeline(run) for run in runs]
        bars = [
            RunBar(
                label=f"#{item.run.pk} {admin_datetime(item.run.created_at)[11:19]}",
                queued_seconds=item.queued_seconds or 0.0,
                run_seconds=_seconds(item.run.started_at, item.run.finished_at) or 0.0,
                status=item.run.status,
                href=f"#run-{item.run.pk}",
            )
            for item in timelines
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Sync timeline: {connection.bank_code} connection of {connection.user}",
            "subtitle": None,
            "opts": self.model._meta,
            "connection": connection,
            "connection_url": admin_change_url(connection),
            "runs_url": admin_changelist_url(SyncRun, connection__id__exact=connection.pk),
            "timelines": timelines,
            "durations_svg": mark_safe(durations_svg(bars)),  # noqa: S308 (escaped inside)
            "limit": limit,
            "has_more": len(runs) == limit,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sync/timeline.html", context)

    @admin.display(description="bank", ordering="connection__bank_code")
    def bank_code(self, obj: SyncRun) -> str:
        return obj.connection.bank_code

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, obj: SyncRun) -> str:
        return f"{obj.progress}%"

    @admin.display(description="step", ordering="step")
    def step_progress(self, obj: SyncRun) -> str:
        return f"{obj.step} · {obj.progress}%"

    @admin.display(description="duration")
    def duration(self, obj: SyncRun) -> str:
        seconds = obj.duration_seconds
        return EMPTY if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="connection")
    def connection_link(self, obj: SyncRun):
        return format_html(
            '{} · <a href="{}">timeline of its runs</a>',
            admin_link(obj.connection),
            sync_timeline_url(obj.connection_id),
        )

    @admin.display(description="raw bank logs")
    def raw_logs_link(self, obj: SyncRun):
        url = admin_changelist_url(RawApiLog, correlation_id=str(obj.correlation_id))
        return format_html('<a href="{}">all raw logs of this run</a>', url)

    @admin.display(description="see")
    def links(self, obj: SyncRun):
        url = admin_changelist_url(RawApiLog, correlation_id=str(obj.correlation_id))
        return format_html(
            '<a href="{}">raw logs</a> · <a href="{}#run-{}">timeline</a>',
            url,
            sync_timeline_url(obj.connection_id),
            obj.pk,
        )


@admin.register(BankConnection)
class BankConnectionAdmin(ServiceActionMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """A connection's status, its data, its recent runs and "sync now" (the sync's service)."""

    list_display = [
        "id",
        "user",
        "bank_code",
        "client_id",
        "status",
        "status_reason",
        "next_retry_at",
        "last_sync_at",
        "last_success_at",
        "consent_expires_at",
        "consent_state",
        "short_error",
        "created_at",
        "timeline_link",
    ]
    list_filter = [
        "status",
        "status_reason",
        "bank_code",
        ("last_success_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["=user__email", "=client_id", "last_error"]
    search_help_text = "Exact user email or client id; or words of the last error."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_select_related = ["user"]
    actions = ["sync_now"]
    fields = [
        "user",
        "bank_code",
        "client_id",
        "client_id_is_demo",
        "status",
        "status_reason",
        "status_message",
        "next_retry_at",
        "last_sync_at",
        "last_success_at",
        "consent_expires_at",
        "consent_state",
        "last_error",
        "quarantined_items_open",
        "related_rows",
        "recent_runs",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description="status message")
    def status_message(self, obj: BankConnection) -> str:
        return connection_status_message(
            bank_code=obj.bank_code, status=obj.status, last_error=obj.last_error
        )

    @admin.display(description="consent")
    def consent_state(self, obj: BankConnection) -> str:
        """The authorised account consent against its expiry (kept on the connection; none or
        unknown: a dash; the consents console has every consent)."""
        if obj.consent_expires_at is None:
            return EMPTY
        expiry = consent_expiry(status=ConsentStatus.AUTHORIZED, expires_at=obj.consent_expires_at)
        return f"{expiry.state.replace('_', ' ')} ({expiry.days_left} days left)"

    @admin.display(description="last error")
    def short_error(self, obj: BankConnection) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.display(description="data")
    def related_rows(self, obj: BankConnection):
        links = [
            (admin_changelist_url(Account, connection__id__exact=obj.pk), "accounts"),
            (admin_changelist_url(ProductAgreement, connection__id__exact=obj.pk), "agreements"),
            (
                admin_changelist_url(QuarantinedBankItem, connection__id__exact=obj.pk),
                "quarantined items",
            ),
            (admin_changelist_url(SyncRun, connection__id__exact=obj.pk), "all sync runs"),
            (sync_timeline_url(obj.pk), "sync timeline"),
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description="runs")
    def timeline_link(self, obj: BankConnection):
        return format_html('<a href="{}">timeline</a>', sync_timeline_url(obj.pk))

    @admin.display(description=f"last {RECENT_RUNS} sync runs")
    def recent_runs(self, obj: BankConnection):
        runs = list(SyncRun.objects.filter(connection=obj).order_by("-created_at")[:RECENT_RUNS])
        if not runs:
            return EMPTY
        return format_html_join(
            mark_safe("<br>"),
            "{} · {} · {} · {}",
            (
                (
                    admin_link(run, f"#{run.pk}"),
                    run.get_status_display(),
                    admin_datetime(run.created_at),
                    run.error_code or "",
                )
                for run in runs
            ),
        )

    @admin.action(description="Sync now", permissions=["operate"])
    def sync_now(self, request, queryset):
        def call(connection: BankConnection) -> tuple[str, dict]:
            run, created = connection_sync_start(connection=connection, trigger=SyncTrigger.ADMIN)
            details = {
                "sync_run_id": run.pk,
                "created": created,
                "correlation_id": str(run.correlation_id),
            }
            if created:
                return f"sync run #{run.pk} queued", details
            return f"a sync is already {run.status} (run #{run.pk})", details

        self.run_service_action(
            request, queryset.select_related("user"), action="sync_now", call=call
        )
