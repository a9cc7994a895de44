"""Admin helpers every app shares: escaped pretty JSON, read-only consoles, big-table changelists.

The admin is an inspection console ("here is the real JSON from the bank and how we interpret it"):
rows synced from banks are read-only, raw JSON is shown indented and HTML-escaped, heavy JSON
columns are not loaded on list pages, and big tables never count all their rows.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.services import AuditAction, audit_event_record
from banking.clients.errors import BankError
from fintrack.core.exceptions import ApplicationError

EMPTY = "—"


def pretty_json(value: Any) -> SafeString:
    """JSON indented in a <pre>, every character HTML-escaped (bank data is never trusted)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    return format_html(
        '<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto; margin: 0;">{}</pre>',
        text,
    )


def json_field(field_name: str, label: str) -> Callable[[Model], SafeString]:
    """A readonly-field callable rendering `obj.<field_name>` as pretty, escaped JSON."""

    def render(obj: Model) -> SafeString:
        return pretty_json(getattr(obj, field_name))

    render.__name__ = f"{field_name}_pretty"
    render.short_description = label  # type: ignore[attr-defined]
    return render


def raw_beside_normalised(
    normalised: Sequence[Any],
    *,
    raw: Callable[[Model], SafeString],
    extra: Iterable[tuple[str | None, dict]] = (),
) -> tuple:
    """Fieldsets of the "how we interpret it" view: our normalised fields, then the bank's JSON."""
    return (
        ("How we interpret it (normalised)", {"fields": tuple(normalised)}),
        ("Raw bank JSON that produced this row", {"fields": (raw,)}),
        *extra,
    )


def admin_change_url(obj: Model) -> str:
    """The admin change page URL of `obj`."""
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def admin_changelist_url(model: type[Model], **query: Any) -> str:
    """The admin changelist URL of `model`, filtered by `query` (field lookups)."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    if not query:
        return url
    return f"{url}?{urlencode(query)}"


def admin_link(obj: Model | None, label: Any = None) -> SafeString | str:
    """A link to the change page of `obj` (escaped label), or a dash when there is none."""
    if obj is None:
        return EMPTY
    return format_html('<a href="{}">{}</a>', admin_change_url(obj), label or str(obj))


class CappedCountPaginator(Paginator):
    """Counts at most `COUNT_CAP` rows, so a changelist of millions of rows never runs COUNT(*).

    Past the cap, pages stop at the cap; operators narrow with filters, search or dates instead.
    """

    COUNT_CAP = 50_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet):
            # SELECT COUNT(*) FROM (SELECT … LIMIT cap): bounded work however big the table is.
            return queryset.order_by()[: self.COUNT_CAP].count()
        return super().count


class ReadOnlyAdminMixin:
    """An inspection console: no add, change or delete through admin — even for superusers."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ChangelistDeferMixin:
    """Leaves heavy columns (`changelist_defer`) out of the changelist query only."""

    changelist_defer: tuple[str, ...] = ()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if self.changelist_defer and match and (match.url_name or "").endswith("_changelist"):
            queryset = queryset.defer(*self.changelist_defer)
        return queryset


class BigTableAdminMixin(ChangelistDeferMixin):
    """For tables of millions of rows: no full COUNT(*), a bounded count, moderate pages."""

    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50


class ServiceActionMixin:
    """Admin actions that call a service per row, audit it and report each row's outcome.

    Actions need the model's real "change" permission (a read-only console still acts through
    services); bank errors and application errors are reported per row, never raised.
    """

    def has_operate_permission(self, request) -> bool:
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    def run_service_action(
        self,
        request,
        queryset: QuerySet,
        *,
        action: str,
        call: Callable[[Any], tuple[str, dict[str, Any]]],
        owner: Callable[[Any], Any] = lambda obj: obj.user,
    ) -> None:
        """Call `call(obj)` per selected row; it returns (message, details for the audit event).

        A "correlation_id" in the details becomes the audit event's correlation id.
        """
        succeeded = failed = 0
        for obj in queryset:
            details: dict[str, Any] = {"action": action}
            correlation_id = None
            try:
                message, result = call(obj)
            except (BankError, ApplicationError) as exc:
                failed += 1
                code = getattr(exc, "code", "error")
                text = getattr(exc, "message", "") or str(exc)
                details.update(outcome="failed", error_code=code, error=text[:255])
                self.message_user(
                    request, f"{obj}: {action} failed ({code}): {text}", messages.ERROR
                )
            else:
                succeeded += 1
                correlation_id = result.pop("correlation_id", None)
                details.update(outcome="succeeded", **result)
                self.message_user(request, f"{obj}: {message}", messages.SUCCESS)
            audit_event_record(
                action=AuditAction.ADMIN_ACTION,
                actor=request.user,
                user=owner(obj),
                obj=obj,
                bank_code=getattr(obj, "bank_code", ""),
                correlation_id=correlation_id,
                details=details,
            )
        if succeeded + failed > 1:
            level = messages.WARNING if failed else messages.INFO
            self.message_user(
                request, f"{action}: {succeeded} succeeded, {failed} failed.", level=level
            )


def choices_list_filter(field_name: str, title: str, choices) -> type[admin.SimpleListFilter]:
    """A list filter over fixed choices: unlike a plain field filter it never runs SELECT DISTINCT
    over the whole (possibly huge) table to find its options."""
    fixed = [(str(value), str(label)) for value, label in choices]

    class ChoicesListFilter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request, model_admin):
            return fixed

        def queryset(self, request, queryset):
            value = self.value()
            return queryset.filter(**{field_name: value}) if value else queryset

    ChoicesListFilter.title = title
    return ChoicesListFilter
