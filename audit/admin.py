"""Audit console: raw bank exchanges and audit events, read-only for everyone (even superusers)."""

from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.capture import TRUNCATED_MARKER
from audit.models import AuditEvent, Direction, RawApiBody, RawApiLog
from audit.selectors import raw_log_same_as
from audit.services import AuditAction
from fintrack.core.admin import (
    EMPTY,
    BigTableAdminMixin,
    ConsolePanelMixin,
    ReadOnlyAdminMixin,
    admin_changelist_url,
    admin_datetime,
    admin_link,
    choices_list_filter,
    json_field,
    json_reindent,
    json_text,
    pretty_json,
    side_by_side,
    text_line_diff,
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
details_pretty = json_field("details", "Details")


@admin.register(RawApiLog)
class RawApiLogAdmin(ConsolePanelMixin, ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "bank_code",
        "direction",
        "method",
        "short_endpoint",
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
    # Request and response, and the diff with the previous call, are the console panel.
    fields = [
        "created_at",
        "bank_code",
        "direction",
        "user",
        "correlation_link",
        "exchange_id",
        "counterpart_link",
        "same_as_link",
    ]
    readonly_fields = fields

    def console_panel(self, request, obj: RawApiLog):
        request_half, response_half = exchange_halves(obj)
        exchange = side_by_side(
            "Request",
            _request_pane(request_half, current=obj),
            "Response",
            _response_pane(response_half, current=obj),
            css="ft-exchange",
        )
        return format_html("{}{}", exchange, _previous_call_section(obj, response_half))

    @admin.display(description="endpoint", ordering="endpoint")
    def short_endpoint(self, obj: RawApiLog):
        text = obj.endpoint
        shown = (text[:70] + "…") if len(text) > 70 else text
        return format_html('<span class="ft-break" title="{}">{}</span>', text, shown)

    @admin.display(description="correlation id")
    def correlation_link(self, obj: RawApiLog):
        if not obj.correlation_id:
            return EMPTY
        url = admin_changelist_url(RawApiLog, correlation_id=obj.correlation_id)
        return format_html(
            '<a href="{}" title="{}">{}…</a>', url, obj.correlation_id, obj.correlation_id[:8]
        )

    @admin.display(description="exchange")
    def exchange_link(self, obj: RawApiLog):
        url = admin_changelist_url(RawApiLog, exchange_id=str(obj.exchange_id))
        return format_html('<a href="{}">{}…</a>', url, str(obj.exchange_id)[:8])

    @admin.display(description="the other half of this exchange")
    def counterpart_link(self, obj: RawApiLog):
        request_half, response_half = exchange_halves(obj)
        other = response_half if obj.direction == Direction.REQUEST else request_half
        if other is None or other.pk == obj.pk:
            return EMPTY
        return admin_link(other, f"{other.get_direction_display()}: {other}")

    @admin.display(description="response body")
    def same_as_link(self, obj: RawApiLog):
        return body_origin(obj)


def body_origin(log: RawApiLog) -> SafeString | str:
    """Where a response's body is stored: with this row, or "same as" the first call that got
    it (bodies the bank sends again unchanged are stored once, audit.capture)."""
    if log.body_id is None:
        return "stored with this row" if log.payload is not None else EMPTY
    same_as = raw_log_same_as([log])[log.pk]
    if same_as is None:
        return format_html(
            '{} <span class="ft-muted">{}</span>',
            "stored with this row",
            "(shared with every later identical response of this endpoint)",
        )
    when = admin_datetime(same_as.created_at)
    if same_as.id is None:
        return format_html("same as a call no longer kept ({})", when)
    first = RawApiLog(pk=same_as.id)
    return format_html("same as {} ({})", admin_link(first, f"response #{same_as.id}"), when)


def exchange_halves(log: RawApiLog) -> tuple[RawApiLog | None, RawApiLog | None]:
    """(request, response) of the exchange `log` belongs to; `log` itself is one of them."""
    cached = getattr(log, "_exchange_halves", None)
    if cached is not None:
        return cached
    halves = {log.direction: log}
    others = RawApiLog.objects.filter(exchange_id=log.exchange_id).exclude(pk=log.pk)
    for other in others.select_related("body"):
        halves.setdefault(other.direction, other)
    log._exchange_halves = (halves.get(Direction.REQUEST), halves.get(Direction.RESPONSE))
    return log._exchange_halves


def previous_call(log: RawApiLog) -> RawApiLog | None:
    """The response of the previous call of the same endpoint (method, bank, path and query) for
    the same user, made before this exchange and in another correlation (another sync)."""
    request_half, _response_half = exchange_halves(log)
    started = (request_half or log).created_at
    candidates = RawApiLog.objects.filter(
        bank_code=log.bank_code,
        method=log.method,
        endpoint=log.endpoint,
        direction=Direction.RESPONSE,
        created_at__lt=started,
    ).exclude(exchange_id=log.exchange_id)
    if log.user_id is None:
        candidates = candidates.filter(user__isnull=True)
    else:
        candidates = candidates.filter(user_id=log.user_id)
    if log.correlation_id:
        candidates = candidates.exclude(correlation_id=log.correlation_id)
    return candidates.select_related("body").order_by("-created_at", "-id").first()


def _bank_url(log: RawApiLog) -> str:
    base = settings.BANKS.get(log.bank_code, {}).get("base_url", "")
    return f"{base.rstrip('/')}{log.endpoint}"


def _meta_table(rows) -> SafeString:
    return format_html(
        '<table class="ft-meta">{}</table>',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
    )


def _half_link(half: RawApiLog, current: RawApiLog, label: str) -> SafeString | str:
    if half.pk == current.pk:
        return format_html('<span class="ft-muted">this row (#{})</span>', half.pk)
    return admin_link(half, f"{label} row #{half.pk}")


def body_text(payload) -> tuple[str, str]:
    """A stored body as pretty text, and a note on how it was stored: JSON indented in the
    bank's key order; a non-JSON or big body (stored as {"_text": …}, cut at the audit limit
    when "_truncated") as its text, a JSON one re-indented so that it still reads line by line."""
    if not (isinstance(payload, dict) and isinstance(payload.get("_text"), str)):
        return json_text(payload), ""
    text = payload["_text"]
    looks_like_json = text.lstrip()[:1] in ("{", "[")
    if payload.get(TRUNCATED_MARKER):
        note = (
            f"Cut by the audit log at {len(text.encode())} of "
            f"{payload.get('_original_bytes', '?')} bytes; shown re-indented."
        )
        return (json_reindent(text) if looks_like_json else text), note
    return text, "Not JSON: stored as text."


def _body(payload) -> SafeString:
    if payload is None:
        return format_html('<p class="ft-muted">{}</p>', "No body.")
    text, note = body_text(payload)
    if not note:
        return pretty_json(payload)
    return format_html('<p class="ft-legend">{}</p><pre class="ft-body">{}</pre>', note, text)


def _request_pane(half: RawApiLog | None, *, current: RawApiLog) -> SafeString:
    if half is None:
        return format_html('<p class="ft-muted">{}</p>', "No request row was recorded.")
    return format_html(
        "{}<h3>Headers (redacted)</h3>{}<h3>Body</h3>{}",
        _meta_table(
            [
                ("Method", half.method),
                ("URL", format_html("<code>{}</code>", _bank_url(half))),
                ("Sent at", admin_datetime(half.created_at)),
                ("Row", _half_link(half, current, "request")),
            ]
        ),
        pretty_json(half.headers or {}),
        _body(half.body_payload),
    )


def _response_pane(half: RawApiLog | None, *, current: RawApiLog) -> SafeString:
    if half is None:
        return format_html(
            '<p class="ft-muted">{}</p>',
            "No response was recorded: the call failed before the bank answered"
            + (f" ({current.error})." if current.error else "."),
        )
    status = half.status_code
    css = "ft-status-ok" if status and status < 400 else "ft-status-bad"
    return format_html(
        "{}<h3>Headers</h3>{}<h3>Body</h3>{}",
        _meta_table(
            [
                ("Status", format_html('<span class="{}">{}</span>', css, status or EMPTY)),
                ("Duration", f"{half.duration_ms} ms" if half.duration_ms is not None else EMPTY),
                ("Received at", admin_datetime(half.created_at)),
                ("Error", half.error or EMPTY),
                ("Row", _half_link(half, current, "response")),
                ("Body", body_origin(half)),
            ]
        ),
        pretty_json(half.headers or {}),
        _body(half.body_payload),
    )


def _previous_call_section(log: RawApiLog, response_half: RawApiLog | None) -> SafeString:
    heading = "Compare with the previous call of this endpoint for this user"
    previous = previous_call(log)
    if previous is None:
        return format_html(
            '<section class="ft-compare" id="ft-compare"><h2>{}</h2><p class="ft-muted">'
            "No earlier call of <code>{} {}</code> ({}) for this user in another sync.</p>"
            "</section>",
            heading,
            log.method,
            log.endpoint,
            log.bank_code,
        )
    this_label = f"this call #{response_half.pk}" if response_half else "this call (no response)"
    this_label += f" {admin_datetime((response_half or log).created_at)}"
    previous_label = f"previous call #{previous.pk} {admin_datetime(previous.created_at)}"
    diff, added, removed = text_line_diff(
        body_text(previous.body_payload)[0],
        body_text(response_half.body_payload if response_half else None)[0],
        old_label=previous_label,
        new_label=this_label,
    )
    if added or removed:
        summary = format_html(
            '<span class="ft-diff-add">+{} lines</span> <span class="ft-diff-del">−{} lines</span>'
            " in the response body",
            added,
            removed,
        )
    else:
        summary = format_html("{}", "The two response bodies are identical.")
    correlation = (
        format_html(
            ' in correlation <a href="{}">{}</a>',
            admin_changelist_url(RawApiLog, correlation_id=previous.correlation_id),
            previous.correlation_id,
        )
        if previous.correlation_id
        else ""
    )
    return format_html(
        '<section class="ft-compare" id="ft-compare"><h2>{}</h2>'
        "<p>Previous call: {} (status {}){}, {} → this call: {}.</p><p>{}</p>{}</section>",
        heading,
        admin_link(previous, f"response #{previous.pk}"),
        previous.status_code or EMPTY,
        correlation,
        admin_datetime(previous.created_at),
        admin_datetime((response_half or log).created_at),
        summary,
        diff,
    )


@admin.register(RawApiBody)
class RawApiBodyAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    """Response bodies stored once and shared by every identical response of one endpoint."""

    list_display = ["id", "short_digest", "user", "size_bytes", "first_seen_at", "last_seen_at"]
    list_filter = [("last_seen_at", admin.DateFieldListFilter)]
    search_fields = ["=digest"]
    search_help_text = "Exact SHA-256 digest."
    ordering = ["-id"]
    list_select_related = ["user"]
    changelist_defer = ("payload",)
    fields = [
        "digest",
        "user",
        "size_bytes",
        "first_seen_at",
        "last_seen_at",
        "first_response_link",
        "payload_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="digest", ordering="digest")
    def short_digest(self, obj: RawApiBody):
        return format_html('<code title="{}">{}…</code>', obj.digest, obj.digest[:16])

    @admin.display(description="first stored by")
    def first_response_link(self, obj: RawApiBody):
        first = RawApiLog.objects.filter(
            exchange_id=obj.first_exchange_id,
            created_at=obj.first_seen_at,
            direction=Direction.RESPONSE,
        ).first()
        if first is None:
            return format_html("a call no longer kept ({})", admin_datetime(obj.first_seen_at))
        return admin_link(first, f"response #{first.pk}: {first}")

    @admin.display(description="body")
    def payload_pretty(self, obj: RawApiBody):
        return _body(obj.payload)


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
