"""Admin helpers every app shares: escaped pretty JSON, read-only consoles, big-table changelists.

The admin is an inspection console ("here is the real JSON from the bank and how we interpret it"):
rows synced from banks are read-only, raw JSON is shown indented and HTML-escaped, heavy JSON
columns are not loaded on list pages, and big tables never count all their rows.

Also here: every admin time in one zone with seconds ("2026-12-01 12:40:05 MSK",
settings.ADMIN_TIME_ZONE, default Europe/Moscow) and changelists that fit 1400 px
(`admin_console_install`); the bank's JSON with the keys FinTrack read highlighted beside the
fields it made of them (`highlighted_json`, `derived_fields_table`, `side_by_side`); line diffs of
two bodies (`text_line_diff`). Admin actions that call services are audited, so their mixin is
audit's (audit.admin_actions.ServiceActionMixin): this module imports no feature app.
"""

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Model, QuerySet
from django.template import TemplateDoesNotExist
from django.template.loader import select_template
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from fintrack.core.localtime import DEFAULT_TIME_ZONE, zone_of

EMPTY = "—"
# Every admin page (ours and the changelists of every app) loads this stylesheet.
ADMIN_STYLESHEET = "fintrack/admin.css"
CHANGE_LIST_TEMPLATE = "admin/fintrack/change_list.html"


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


if TYPE_CHECKING:  # the mixins below are mixed into ModelAdmin subclasses only
    _ModelAdminBase = admin.ModelAdmin
else:
    _ModelAdminBase = object


class ChangelistDeferMixin(_ModelAdminBase):
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


# --- Local times: every datetime the admin shows, with seconds and zone ------------------------
#
# Staff read times in one zone, settings.ADMIN_TIME_ZONE (an IANA name; default Europe/Moscow,
# the users' default zone), e.g. "2026-12-01 12:40:05 MSK"; dates as ISO "2026-12-01". One zone
# for every staff member, so two operators comparing a page see the same figures.


def admin_zone() -> ZoneInfo:
    """The zone the admin shows times in: settings.ADMIN_TIME_ZONE, else Europe/Moscow."""
    return zone_of(settings.ADMIN_TIME_ZONE or DEFAULT_TIME_ZONE)


def admin_datetime(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    """ "2026-12-01 12:40:05 MSK": an instant in the admin's zone (or `zone`), to the second."""
    if value is None:
        return EMPTY
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone or admin_zone())
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


def admin_date(value: date | None) -> str:
    """A calendar day as ISO 2026-12-01 (short, and the same in every locale)."""
    return EMPTY if value is None else value.isoformat()


def _local_display_for_field(original: Callable) -> Callable:
    def display_for_field(value, field, empty_value_display, *args, **kwargs):
        if not getattr(field, "flatchoices", None):
            if isinstance(field, models.DateTimeField) and isinstance(value, datetime):
                return admin_datetime(value)
            if isinstance(field, models.DateField) and isinstance(value, date):
                return admin_date(value)
        return original(value, field, empty_value_display, *args, **kwargs)

    display_for_field.fintrack_local = True  # type: ignore[attr-defined]
    return display_for_field


def _local_display_for_value(original: Callable) -> Callable:
    def display_for_value(value, empty_value_display, *args, **kwargs):
        if isinstance(value, datetime):
            return admin_datetime(value)
        if isinstance(value, date):
            return admin_date(value)
        return original(value, empty_value_display, *args, **kwargs)

    display_for_value.fintrack_local = True  # type: ignore[attr-defined]
    return display_for_value


def _install_local_times() -> None:
    # Django formats admin datetimes with the locale's DATETIME_FORMAT in the active zone
    # (UTC here, no seconds, no zone) and has no hook for it but settings-wide formats; the two
    # display functions are wrapped where the changelist and the readonly fields import them.
    from django.contrib.admin import helpers, utils
    from django.contrib.admin.templatetags import admin_list

    for module in (utils, helpers, admin_list):
        for name, wrap in (
            ("display_for_field", _local_display_for_field),
            ("display_for_value", _local_display_for_value),
        ):
            function = getattr(module, name, None)
            if function is not None and not getattr(function, "fintrack_local", False):
                setattr(module, name, wrap(function))


def _has_own_template(model_admin: admin.ModelAdmin, name: str) -> bool:
    opts = model_admin.model._meta
    try:
        select_template(
            [f"admin/{opts.app_label}/{opts.model_name}/{name}", f"admin/{opts.app_label}/{name}"]
        )
    except TemplateDoesNotExist:
        return False
    return True


def admin_console_install(site: admin.AdminSite | None = None) -> None:
    """Once, after every admin is registered (the root URLconf calls it): local times with
    seconds and zone on every admin page, and FinTrack's stylesheet (columns that fit 1400 px)
    on every changelist whose admin has no template of its own."""
    _install_local_times()
    site = site or admin.site
    for model_admin in site._registry.values():
        if model_admin.change_list_template is None and not _has_own_template(
            model_admin, "change_list.html"
        ):
            # Per registered admin instance, on purpose: each admin without its own template.
            model_admin.change_list_template = CHANGE_LIST_TEMPLATE  # type: ignore[misc]


# --- The bank's JSON with the fields FinTrack used highlighted --------------------------------

JsonPath = tuple[str | int, ...]


def json_path_text(path: JsonPath) -> str:
    """("merchant", "name") → "merchant.name"; list items as [0]."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _json_lines(
    value: Any, path: JsonPath, prefix: str, used: Mapping[JsonPath, str], depth: int
) -> Iterator[str]:
    """Lines of json.dumps(value, indent=2) as escaped HTML; `prefix` (already HTML) opens the
    first line, e.g. the indented key. Used scalar pairs are wrapped in a span."""
    indent = "  " * depth
    if isinstance(value, dict) and value:
        items = list(value.items())
        opening = prefix + "{"
        if path in used:
            opening = _mark(opening, path, used[path], container=True)
        yield opening
        for index, (key, item) in enumerate(items):
            comma = "," if index < len(items) - 1 else ""
            key_html = f"{indent}  {escape(_scalar(str(key)))}: "
            yield from _with_comma(
                _json_lines(item, (*path, key), key_html, used, depth + 1), comma
            )
        yield f"{indent}}}"
        return
    if isinstance(value, list) and value:
        opening = prefix + "["
        if path in used:
            opening = _mark(opening, path, used[path], container=True)
        yield opening
        for index, item in enumerate(value):
            comma = "," if index < len(value) - 1 else ""
            yield from _with_comma(
                _json_lines(item, (*path, index), f"{indent}  ", used, depth + 1), comma
            )
        yield f"{indent}]"
        return
    line = prefix + escape(_scalar(value))
    if path in used:
        line = _mark(line, path, used[path])
    yield line


def _with_comma(lines: Iterator[str], comma: str) -> Iterator[str]:
    previous = None
    for line in lines:
        if previous is not None:
            yield previous
        previous = line
    if previous is not None:
        yield previous + comma


def _mark(line: str, path: JsonPath, label: str, *, container: bool = False) -> str:
    # The span starts after the indentation, so the highlight hugs `"key": value`.
    stripped = line.lstrip(" ")
    indent = line[: len(line) - len(stripped)]
    css = "ft-used ft-used-container" if container else "ft-used"
    return (
        f'{indent}<span class="{css}" data-path="{escape(json_path_text(path))}" '
        f'title="{escape(json_path_text(path))} → {escape(label)}">{stripped}</span>'
    )


def highlighted_json(value: Any, used: Mapping[JsonPath, str] | None = None) -> SafeString:
    """JSON as json.dumps(indent=2) prints it (the bank's key order), every character escaped,
    the pairs at `used` paths (path → what FinTrack made of it) wrapped in <span class=ft-used>.
    """
    lines = _json_lines(value, (), "", used or {}, 0)
    return mark_safe('<pre class="ft-json">' + "\n".join(lines) + "</pre>")  # noqa: S308


# --- "How we read it" beside "what the bank sent" -------------------------------------------


@dataclass(frozen=True)
class DerivedField:
    """One figure FinTrack derived from a bank item, and the JSON paths it was read from."""

    key: str  # the row's data-field, for tests and anchors (e.g. "amount")
    label: str
    value: Any  # text (escaped on output) or SafeString
    sources: tuple[JsonPath, ...] = ()
    how: str = ""  # how FinTrack got from the sources to the value, when it is not a plain copy


def json_lookup(document: Any, path: JsonPath) -> tuple[bool, Any]:
    """(True, value) at `path` in `document`, or (False, None) when any step is missing."""
    value = document
    for part in path:
        in_list = isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value)
        in_dict = isinstance(part, str) and isinstance(value, dict) and part in value
        if not (in_list or in_dict):
            return False, None
        value = value[part]
    return True, value


def used_json_paths(document: Any, fields: Iterable[DerivedField]) -> dict[JsonPath, str]:
    """Path → the labels of the fields read from it, for highlighted_json. A path the document
    lacks marks its nearest present ancestor when that is null or a scalar ("merchant": null
    is where merchant.name was looked for)."""
    used: dict[JsonPath, list[str]] = {}
    for field in fields:
        for path in field.sources:
            target = path
            while target and not json_lookup(document, target)[0]:
                target = target[:-1]
            if not target:
                continue
            if target != path:
                _found, value = json_lookup(document, target)
                if isinstance(value, dict | list):
                    continue  # the key is simply absent: nothing to point at
                label = f"{field.label} ({json_path_text(path)} absent)"
            else:
                label = field.label
            labels = used.setdefault(target, [])
            if label not in labels:
                labels.append(label)
    return {path: ", ".join(labels) for path, labels in used.items()}


def derived_fields_table(document: Any, fields: Iterable[DerivedField]) -> SafeString:
    """The "how we interpret it" table: field, value, and the JSON paths it came from."""
    rows = []
    for field in fields:
        sources = format_html_join(
            " + ",
            '<code class="{}">{}</code>',
            (
                (
                    "ft-src" if json_lookup(document, path)[0] else "ft-src ft-src-absent",
                    json_path_text(path),
                )
                for path in field.sources
            ),
        )
        how = format_html('<div class="ft-how">{}</div>', field.how) if field.how else ""
        rows.append(
            format_html(
                '<tr data-field="{}"><th scope="row">{}</th><td class="ft-value">{}</td>'
                "<td>{}{}</td></tr>",
                field.key,
                field.label,
                EMPTY if field.value in (None, "") else field.value,
                sources or mark_safe('<span class="ft-muted">FinTrack</span>'),
                how,
            )
        )
    return format_html(
        '<table class="ft-derived"><thead><tr><th>Field</th><th>Value</th>'
        "<th>Read from the bank's JSON</th></tr></thead><tbody>{}</tbody></table>",
        mark_safe("".join(rows)),  # noqa: S308 (each row built by format_html)
    )


def side_by_side(
    left_title: str, left: SafeString, right_title: str, right: SafeString, *, css: str = ""
) -> SafeString:
    """Two panes next to each other (they stack on narrow screens)."""
    return format_html(
        '<div class="ft-side-by-side {}"><section class="ft-pane"><h2>{}</h2>{}</section>'
        '<section class="ft-pane"><h2>{}</h2>{}</section></div>',
        css,
        left_title,
        left,
        right_title,
        right,
    )


class ConsolePanelMixin(_ModelAdminBase):
    """A change page with a panel of our own above the fieldsets (`console_panel(request, obj)`),
    FinTrack's stylesheet loaded."""

    change_form_template = "admin/fintrack/console_change_form.html"

    def console_panel(self, request, obj) -> SafeString:
        raise NotImplementedError

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["console_panel"] = self.console_panel(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- A line diff of two JSON documents --------------------------------------------------------


def json_text(value: Any) -> str:
    """The pretty-printed JSON both sides of a diff are compared as (the bank's key order)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def json_reindent(text: str) -> str:
    """JSON text laid out as json.dumps(indent=2) would (keys and numbers kept as written), even
    when it is cut short: a truncated bank body can still be read and diffed line by line."""
    out: list[str] = []
    depth = 0
    in_string = escaped = False
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char in "{[":
            rest = text[index + 1 :].lstrip()
            if rest[:1] in ("}", "]"):  # an empty object or list stays on its line
                closing = rest[0]
                out.append(char + closing)
                index = length - len(rest) + 1
                continue
            depth += 1
            out.append(char + "\n" + "  " * depth)
        elif char in "}]":
            depth = max(depth - 1, 0)
            out.append("\n" + "  " * depth + char)
        elif char == ",":
            out.append(",\n" + "  " * depth)
        elif char == ":":
            out.append(": ")
        elif not char.isspace():
            out.append(char)
        index += 1
    return "".join(out)


def text_line_diff(
    old_text: str, new_text: str, *, old_label: str, new_label: str, context: int = 3
) -> tuple[SafeString, int, int]:
    """A unified line diff (difflib) of two texts as escaped HTML, and the numbers of lines added
    and removed; identical texts give an empty diff."""
    added = removed = 0
    rows = []
    for line in difflib.unified_diff(
        old_text.splitlines(),
        new_text.splitlines(),
        fromfile=old_label,
        tofile=new_label,
        n=context,
        lineterm="",
    ):
        if line.startswith(("---", "+++")):
            css = "ft-diff-file"
        elif line.startswith("@@"):
            css = "ft-diff-hunk"
        elif line.startswith("+"):
            css, added = "ft-diff-add", added + 1
        elif line.startswith("-"):
            css, removed = "ft-diff-del", removed + 1
        else:
            css = "ft-diff-same"
        rows.append(f'<span class="{css}">{escape(line) or " "}</span>')
    if not rows:
        return mark_safe(""), 0, 0
    # One block per line (no newlines between them: the blocks break the lines already).
    return mark_safe('<pre class="ft-diff">' + "".join(rows) + "</pre>"), added, removed  # noqa: S308


def json_line_diff(
    old: Any, new: Any, *, old_label: str, new_label: str, context: int = 3
) -> tuple[SafeString, int, int]:
    """text_line_diff of two JSON documents, pretty-printed (the bank's key order)."""
    return text_line_diff(
        json_text(old), json_text(new), old_label=old_label, new_label=new_label, context=context
    )
