"""A sync run as a timeline: its bank calls (from the raw logs) by step, drawn as server-side SVG.

Pure functions over plain rows, so they are tested without a database: `calls_from_logs` pairs
the request and response halves of each exchange, `call_step` names the step an endpoint belongs
to, `step_summaries` adds up each step's calls, errors, retries and time, and `run_timeline_svg` /
`durations_svg` draw them (every text escaped; no script, no network).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.utils.html import escape

# Lanes of a run's timeline, in the order a sync calls them (sync.services._SyncExecution).
STEP_ORDER = ("auth", "consents", "accounts", "balances", "transactions", "agreements", "other")
OUTCOME_COLOURS = {"ok": "#2e7d32", "refused": "#ef6c00", "failed": "#c62828"}
STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "partial": "#ef6c00",
    "failed": "#c62828",
    "running": "#1565c0",
    "queued": "#9e9e9e",
}
QUEUE_COLOUR = "#cfd8dc"


@dataclass(frozen=True)
class BankCall:
    """One bank HTTP exchange of a run: when it started, how long it took, how it ended."""

    method: str
    endpoint: str
    started_at: datetime
    duration_ms: int | None
    status_code: int | None
    error: str = ""
    request_id: int | None = None
    response_id: int | None = None
    is_retry: bool = False

    @property
    def step(self) -> str:
        return call_step(self.endpoint)

    @property
    def outcome(self) -> str:
        """ok (2xx/3xx), refused (4xx) or failed (5xx, or no answer at all)."""
        if self.status_code is None or self.status_code >= 500:
            return "failed"
        if self.status_code >= 400:
            return "refused"
        return "ok"

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(milliseconds=self.duration_ms or 0)


def call_step(endpoint: str) -> str:
    """The sync step a bank endpoint belongs to: "/accounts/a-1/balances?…" → "balances"."""
    path = endpoint.split("?", 1)[0].lower()
    if path.startswith("/auth/"):
        return "auth"
    if "consents" in path:
        return "consents"
    if path.endswith("/transactions"):
        return "transactions"
    if path.endswith("/balances"):
        return "balances"
    if path.startswith("/accounts"):
        return "accounts"
    if path.startswith(("/product-agreements", "/products")):
        return "agreements"
    return "other"


def calls_from_logs(rows: Iterable[Any]) -> list[BankCall]:
    """Bank calls from raw-log rows (request and response halves sharing `exchange_id`), in the
    order they started. A call repeating the method and endpoint of an earlier call that was not
    ok is a retry."""
    halves: dict[Any, dict[str, Any]] = {}
    for row in rows:
        halves.setdefault(row.exchange_id, {})[row.direction] = row
    calls = []
    for pair in halves.values():
        request, response = pair.get("request"), pair.get("response")
        first = request or response
        calls.append(
            BankCall(
                method=first.method,
                endpoint=first.endpoint,
                started_at=first.created_at,
                duration_ms=response.duration_ms if response else None,
                status_code=response.status_code if response else None,
                error=response.error if response else "",
                request_id=request.pk if request else None,
                response_id=response.pk if response else None,
            )
        )
    calls.sort(key=lambda call: (call.started_at, call.request_id or call.response_id or 0))
    failed_before: set[tuple[str, str]] = set()
    marked = []
    for call in calls:
        key = (call.method, call.endpoint)
        retry = key in failed_before
        if call.outcome == "ok":
            failed_before.discard(key)
        else:
            failed_before.add(key)
        marked.append(replace(call, is_retry=retry))
    return marked


@dataclass(frozen=True)
class StepSummary:
    """One step of a run: its calls, errors, retries and the time from its first call's start to
    its last call's end."""

    step: str
    calls: int
    errors: int
    retries: int
    span_ms: int
    busy_ms: int  # the calls' durations added up (calls in parallel overlap in `span_ms`)


def step_summaries(calls: list[BankCall]) -> list[StepSummary]:
    """A summary per step that has calls, in STEP_ORDER."""
    summaries = []
    for step in STEP_ORDER:
        own = [call for call in calls if call.step == step]
        if not own:
            continue
        start = min(call.started_at for call in own)
        end = max(call.ended_at for call in own)
        summaries.append(
            StepSummary(
                step=step,
                calls=len(own),
                errors=sum(1 for call in own if call.outcome != "ok"),
                retries=sum(1 for call in own if call.is_retry),
                span_ms=round((end - start).total_seconds() * 1000),
                busy_ms=sum(call.duration_ms or 0 for call in own),
            )
        )
    return summaries


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def run_timeline_svg(
    *,
    calls: list[BankCall],
    started_at: datetime | None,
    finished_at: datetime | None,
    status: str,
    link: Callable[[BankCall], str | None] = lambda call: None,
    width: int = 960,
) -> str:
    """An SVG Gantt chart of one run: a lane for the run itself, then one per step with each call
    as a bar from its start for its duration, coloured by outcome (retries outlined)."""
    moments = [call.started_at for call in calls] + [call.ended_at for call in calls]
    moments += [moment for moment in (started_at, finished_at) if moment is not None]
    if not moments:
        return ""
    origin, end = min(moments), max(moments)
    span = max((end - origin).total_seconds(), 0.001)
    gutter, right, lane_height, gap, top = 110, 16, 16, 6, 6
    plot = width - gutter - right
    steps = [step for step in STEP_ORDER if any(call.step == step for call in calls)]
    lanes = ["run", *steps]
    height = top + len(lanes) * (lane_height + gap) + 26

    def x(moment: datetime) -> float:
        return gutter + (moment - origin).total_seconds() / span * plot

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ft-timeline" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(f"{len(calls)} bank calls over {_ms(span)}")}">'
    ]
    for index, lane in enumerate(lanes):
        y = top + index * (lane_height + gap)
        parts.append(
            f'<text x="{gutter - 8}" y="{y + lane_height - 4}" text-anchor="end" '
            f'class="ft-lane">{escape(lane)}</text>'
            f'<rect x="{gutter}" y="{y}" width="{plot}" height="{lane_height}" fill="#f5f5f5"/>'
        )
    if started_at is not None:
        run_end = finished_at or end
        colour = STATUS_COLOURS.get(status, "#9e9e9e")
        parts.append(
            f'<rect x="{x(started_at):.1f}" y="{top}" '
            f'width="{max(x(run_end) - x(started_at), 2):.1f}" '
            f'height="{lane_height}" fill="{colour}" opacity="0.35"><title>'
            f"{escape(f'run {status}: {_ms((run_end - started_at).total_seconds())}')}"
            "</title></rect>"
        )
    for call in calls:
        y = top + lanes.index(call.step) * (lane_height + gap)
        left = x(call.started_at)
        bar = max(x(call.ended_at) - left, 2)
        answer = call.status_code if call.status_code is not None else (call.error or "no answer")
        tip = f"{call.method} {call.endpoint} → {answer} in {call.duration_ms or 0} ms"
        if call.is_retry:
            tip += " (retry)"
        outline = (
            ' stroke="#000" stroke-width="1.5" stroke-dasharray="3 2"' if call.is_retry else ""
        )
        rect = (
            f'<rect x="{left:.1f}" y="{y + 2}" width="{bar:.1f}" height="{lane_height - 4}" '
            f'fill="{OUTCOME_COLOURS[call.outcome]}"{outline}><title>{escape(tip)}</title></rect>'
        )
        href = link(call)
        parts.append(f'<a href="{escape(href)}">{rect}</a>' if href else rect)
    axis_y = top + len(lanes) * (lane_height + gap) + 4
    parts.append(
        f'<line x1="{gutter}" y1="{axis_y}" x2="{gutter + plot}" y2="{axis_y}" stroke="#999"/>'
    )
    for tick in range(5):
        fraction = tick / 4
        tick_x = gutter + fraction * plot
        anchor = "start" if tick == 0 else ("end" if tick == 4 else "middle")
        parts.append(
            f'<line x1="{tick_x:.1f}" y1="{axis_y}" x2="{tick_x:.1f}" y2="{axis_y + 4}" '
            f'stroke="#999"/><text x="{tick_x:.1f}" y="{axis_y + 16}" text-anchor="{anchor}" '
            f'class="ft-tick">{escape(_ms(span * fraction))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class RunBar:
    """One run in the durations chart: time queued, time running, outcome."""

    label: str
    queued_seconds: float
    run_seconds: float
    status: str
    href: str = ""


def durations_svg(bars: list[RunBar], *, width: int = 960, bar_height: int = 14) -> str:
    """Horizontal bars, one per run (in the given order): grey while queued, then the run in its
    status colour, scaled to the longest; the total written after each bar."""
    if not bars:
        return ""
    gutter, right, gap = 150, 70, 5
    plot = width - gutter - right
    longest = max(max(bar.queued_seconds + bar.run_seconds for bar in bars), 0.001)
    height = len(bars) * (bar_height + gap) + gap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ft-durations" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(f"durations of {len(bars)} runs")}">'
    ]
    for index, bar in enumerate(bars):
        y = gap + index * (bar_height + gap)
        queued = bar.queued_seconds / longest * plot
        running = max(bar.run_seconds / longest * plot, 1)
        total = bar.queued_seconds + bar.run_seconds
        tip = (
            f"{bar.label}: {bar.status}, queued {_ms(bar.queued_seconds)}, "
            f"ran {_ms(bar.run_seconds)}"
        )
        label = (
            f'<text x="{gutter - 8}" y="{y + bar_height - 3}" text-anchor="end" class="ft-lane">'
        )
        label += f"{escape(bar.label)}</text>"
        if bar.href:
            label = f'<a href="{escape(bar.href)}">{label}</a>'
        parts.append(
            f"{label}<g><title>{escape(tip)}</title>"
            f'<rect x="{gutter}" y="{y}" width="{queued:.1f}" height="{bar_height}" '
            f'fill="{QUEUE_COLOUR}"/>'
            f'<rect x="{gutter + queued:.1f}" y="{y}" width="{running:.1f}" height="{bar_height}" '
            f'fill="{STATUS_COLOURS.get(bar.status, "#9e9e9e")}"/></g>'
            f'<text x="{gutter + queued + running + 6:.1f}" y="{y + bar_height - 3}" '
            f'class="ft-tick">{escape(_ms(total))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
