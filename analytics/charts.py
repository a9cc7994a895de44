"""Server-side SVG charts for the staff console: pure functions from figures to SVG text.

No JavaScript and no network: each function returns one inline `<svg>` with a fixed viewBox
(WIDTH user units wide, so it fits a 1400 px admin page at about 1:1 and scales down below),
every piece of text and every link escaped. Geometry uses floats; every figure shown is
formatted from its Decimal, never from the float.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from html import escape

WIDTH = 1320
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
NBSP = "\u00a0"
MINUS = "\u2212"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

COLOR_HISTORY = "#2563eb"
COLOR_FORECAST = "#0f766e"
COLOR_NO_INCOME = "#9ca3af"
COLOR_INCOME = "#16a34a"
COLOR_OBLIGATION = "#dc2626"
COLOR_LOW = "#ea580c"
COLOR_READING = "#1e3a8a"
COLOR_SUBTOTAL = "#64748b"
COLOR_TOTAL = "#059669"
COLOR_AXIS = "#94a3b8"
COLOR_GRID = "#e2e8f0"
COLOR_TEXT = "#1f2937"
COLOR_MUTED = "#64748b"
BAND_COLORS = {
    "healthy": "#16a34a",
    "coping": "#d97706",
    "vulnerable": "#dc2626",
    "no_data": "#cbd5e1",
}


# --- Formatting -------------------------------------------------------------------------------


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def grouped(value, places: int = 2) -> str:
    """A number with its thousands grouped by no-break spaces: 1234567.5 -> '1 234 567.50'."""
    number = _decimal(value)
    text = f"{abs(number):,.{places}f}".replace(",", NBSP)
    return f"{MINUS}{text}" if number < 0 else text


def money(value, currency: str = "RUB", places: int = 2) -> str:
    """An amount as the console shows it: '559 420.65 ₽' (no-break spaces, a real minus)."""
    if value is None or value == "":
        return "—"
    sign = "₽" if currency == "RUB" else currency
    return f"{grouped(value, places)}{NBSP}{sign}"


def signed_money(value, currency: str = "RUB") -> str:
    """A change in money: '+78 410.18 ₽' or '−20 909.75 ₽'."""
    number = _decimal(value)
    return f"+{money(number, currency)}" if number > 0 else money(number, currency)


def short_day(day: date) -> str:
    """'2 Dec' (English month names whatever the server's locale)."""
    return f"{day.day}{NBSP}{MONTHS[day.month - 1]}"


def wrap(text: str, width: int, max_lines: int = 3) -> list[str]:
    """Words of `text` in lines of at most `width` characters; the last line ends in '…' when
    the text does not fit in `max_lines`."""
    # Split on plain spaces only: the no-break spaces inside an amount keep it on one line.
    words = [word for word in str(text).replace("\n", " ").split(" ") if word]
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if len(candidate) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(1, width - 1)].rstrip() + "…"
    return [line if len(line) <= width else line[: width - 1] + "…" for line in lines]


# --- SVG primitives ---------------------------------------------------------------------------


def _attr(value) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _text(x, y, content, *, size=12, anchor="start", color=COLOR_TEXT, weight="normal", **extra):
    attrs = "".join(f' {k.replace("_", "-")}="{_attr(v)}"' for k, v in extra.items())
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{color}" font-weight="{weight}"{attrs}>{escape(str(content))}</text>'
    )


def _link(inner: str, href: str, title: str = "") -> str:
    tooltip = f"<title>{escape(title)}</title>" if title else ""
    if not href:
        return f"<g>{tooltip}{inner}</g>" if tooltip else inner
    return f'<a href="{_attr(href)}">{tooltip}{inner}</a>'


def _svg(*, chart_id: str, kind: str, height: int, title: str, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{_attr(chart_id)}" '
        f'class="chart chart-{kind}" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-labelledby="{_attr(chart_id)}-title" '
        f'font-family="{FONT}" style="display:block;max-width:100%;height:auto">'
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 6))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 6))
    return ticks


# --- Line chart: balance history and forecast -------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One day's balance on a line; `href` leads to the rows behind it."""

    day: date
    value: Decimal
    href: str = ""
    title: str = ""


@dataclass(frozen=True)
class Series:
    """A line: 'solid', 'dashed' or 'dotted'."""

    name: str
    points: Sequence[Point]
    color: str = COLOR_HISTORY
    style: str = "solid"


@dataclass(frozen=True)
class Marker:
    """An event on the line: kind 'income' (▲ above), 'obligation' (▼ below) or 'reading' (●)."""

    day: date
    value: Decimal
    kind: str
    label: str
    amount: Decimal | None = None
    href: str = ""


@dataclass(frozen=True)
class LowPoint:
    """The lowest balance of a path, labelled on the chart."""

    day: date
    value: Decimal
    label: str
    color: str = COLOR_LOW
    href: str = ""


DASHES = {"solid": "", "dashed": "8 5", "dotted": "2 4"}


def line_chart(
    *,
    chart_id: str,
    title: str,
    series: Sequence[Series],
    markers: Sequence[Marker] = (),
    low_points: Sequence[LowPoint] = (),
    today: date | None = None,
    height: int = 420,
) -> str:
    """Balances over days: lines, income and obligation markers, labelled low points, a 'today'
    rule. Every point with an `href` is a link (an invisible target over the line)."""
    left, right, top, bottom = 104, 24, 56, 44
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    days = [p.day for s in series for p in s.points] + [m.day for m in markers]
    values = [float(p.value) for s in series for p in s.points]
    values += [float(m.value) for m in markers] + [float(p.value) for p in low_points]
    body: list[str] = []
    if not days or not values:
        body.append(_text(WIDTH / 2, height / 2, "No balances to draw.", anchor="middle"))
        return _svg(chart_id=chart_id, kind="line", height=height, title=title, body=body)
    first, last = min(days), max(days)
    span = max(1, (last - first).days)
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    ticks = nice_ticks(low - pad, high + pad)
    y_min, y_max = ticks[0], ticks[-1]

    def x(day: date) -> float:
        return left + (day - first).days / span * plot_w

    def y(value) -> float:
        return top + (y_max - float(value)) / (y_max - y_min) * plot_h

    # Grid and axes.
    for tick in ticks:
        ty = y(tick)
        body.append(
            f'<line x1="{left}" y1="{_num(ty)}" x2="{WIDTH - right}" y2="{_num(ty)}" '
            f'stroke="{COLOR_GRID}" stroke-width="1"/>'
        )
        label = grouped(Decimal(str(tick)), 0)
        body.append(_text(left - 8, ty + 4, label, size=12, anchor="end", color=COLOR_MUTED))
    body.append(_text(left - 8, top - 14, "₽", size=12, anchor="end", color=COLOR_MUTED))
    step = 7 if span > 35 else (2 if span > 14 else 1)
    day_ticks = [d for d in _days(first, last) if (d - first).days % step == 0 or d.day == 1]
    shown: list[float] = []
    for day in day_ticks:
        tx = x(day)
        if any(abs(tx - s) < 44 for s in shown):
            continue
        shown.append(tx)
        body.append(
            f'<line x1="{_num(tx)}" y1="{top + plot_h}" x2="{_num(tx)}" y2="{top + plot_h + 5}" '
            f'stroke="{COLOR_AXIS}"/>'
        )
        body.append(
            _text(
                tx, top + plot_h + 20, short_day(day), size=12, anchor="middle", color=COLOR_MUTED
            )
        )
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" '
        f'stroke="{COLOR_AXIS}"/>'
    )
    if today is not None and first <= today <= last:
        tx = x(today)
        body.append(
            f'<line class="today" x1="{_num(tx)}" y1="{top}" x2="{_num(tx)}" y2="{top + plot_h}" '
            f'stroke="{COLOR_MUTED}" stroke-dasharray="3 3"/>'
        )
        body.append(_text(tx + 4, top + 12, "today", size=11, color=COLOR_MUTED))

    # Legend.
    legend_x = left
    entries = [(s.name, s.color, s.style, "line") for s in series]
    kinds = {m.kind for m in markers}
    if "income" in kinds:
        entries.append(("income", COLOR_INCOME, "", "up"))
    if "obligation" in kinds:
        entries.append(("obligation", COLOR_OBLIGATION, "", "down"))
    if "reading" in kinds:
        entries.append(("balance reading", COLOR_READING, "", "dot"))
    if low_points:
        entries.append(("low point", COLOR_LOW, "", "low"))
    for name, color, style, shape in entries:
        ly = 22
        if shape == "line":
            dash = DASHES.get(style, "")
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            body.append(
                f'<line x1="{legend_x}" y1="{ly}" x2="{legend_x + 28}" y2="{ly}" stroke="{color}" '
                f'stroke-width="3"{dash_attr}/>'
            )
        else:
            body.append(_marker_shape(shape, legend_x + 14, ly, color))
        body.append(_text(legend_x + 36, ly + 4, name, size=12))
        legend_x += 36 + 7.4 * len(name) + 28

    # Lines.
    for line in series:
        if not line.points:
            continue
        points = sorted(line.points, key=lambda p: p.day)
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{_num(x(p.day))} {_num(y(p.value))}"
            for i, p in enumerate(points)
        )
        dash = DASHES.get(line.style, "")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(
            f'<path class="series" data-series="{_attr(line.name)}" d="{path}" fill="none" '
            f'stroke="{line.color}" stroke-width="2.5" stroke-linejoin="round"{dash_attr}/>'
        )
        for point in points:
            if point.href or point.title:
                target = (
                    f'<circle cx="{_num(x(point.day))}" cy="{_num(y(point.value))}" r="6" '
                    f'fill="{line.color}" fill-opacity="0" class="hit"/>'
                )
                body.append(_link(target, point.href, point.title))

    # Markers: income above the line, obligations below, stacked when several share a day.
    stack: dict[tuple[date, str], int] = {}
    for marker in sorted(markers, key=lambda m: (m.day, m.kind, m.label)):
        level = stack.get((marker.day, marker.kind), 0)
        stack[(marker.day, marker.kind)] = level + 1
        mx, my = x(marker.day), y(marker.value)
        amount = marker.amount if marker.amount is not None else marker.value
        if marker.kind == "income":
            cy = my - 16 - 16 * level
            shape = _marker_shape("up", mx, cy, COLOR_INCOME)
            label = _text(mx + 8, cy + 4, f"+{grouped(abs(amount), 0)}", size=11,
                          color=COLOR_INCOME)  # fmt: skip
        elif marker.kind == "obligation":
            cy = my + 18 + 16 * level
            shape = _marker_shape("down", mx, cy, COLOR_OBLIGATION)
            label = _text(mx + 8, cy + 4, f"{MINUS}{grouped(abs(amount), 0)}", size=11,
                          color=COLOR_OBLIGATION)  # fmt: skip
        else:
            shape, label = _marker_shape("dot", mx, my, COLOR_READING), ""
        tooltip = f"{marker.day.isoformat()} · {marker.label} · {money(amount)}"
        inner = _link(shape + label, marker.href, tooltip)
        body.append(f'<g class="marker marker-{_attr(marker.kind)}">{inner}</g>')

    # Low points, labelled clear of the line.
    for index, point in enumerate(low_points):
        px, py = x(point.day), y(point.value)
        below = py + 40 + 18 * index < top + plot_h - 4
        ly = py + 34 + 18 * index if below else py - 22 - 18 * index
        anchor = "end" if px > left + plot_w * 0.75 else "start"
        lx = px - 10 if anchor == "end" else px + 10
        text = f"{point.label}: {money(point.value)} on {short_day(point.day)}"
        inner = (
            f'<circle cx="{_num(px)}" cy="{_num(py)}" r="6.5" fill="#fff" stroke="{point.color}" '
            f'stroke-width="3"/>'
            f'<line x1="{_num(px)}" y1="{_num(py)}" x2="{_num(px)}" y2="{_num(ly - 4)}" '
            f'stroke="{point.color}" stroke-width="1"/>'
            + _text(lx, ly, text, size=12, anchor=anchor, color=point.color, weight="bold")
        )
        body.append(f'<g class="low-point">{_link(inner, point.href, text)}</g>')
    return _svg(chart_id=chart_id, kind="line", height=height, title=title, body=body)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _marker_shape(shape: str, cx: float, cy: float, color: str) -> str:
    if shape == "up":
        points = (
            f"{_num(cx)},{_num(cy - 6)} {_num(cx - 6)},{_num(cy + 5)} {_num(cx + 6)},{_num(cy + 5)}"
        )
        return f'<polygon points="{points}" fill="{color}"/>'
    if shape == "down":
        points = (
            f"{_num(cx)},{_num(cy + 6)} {_num(cx - 6)},{_num(cy - 5)} {_num(cx + 6)},{_num(cy - 5)}"
        )
        return f'<polygon points="{points}" fill="{color}"/>'
    if shape == "low":
        return (
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="5.5" fill="#fff" stroke="{color}" '
            f'stroke-width="3"/>'
        )
    return f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="4.5" fill="{color}"/>'


# --- Waterfall: Save-to-Spend -----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A waterfall bar. 'delta' moves the running level by `amount` (positive up, negative
    down); 'subtotal' and 'total' stand from zero at `amount` and reset the level to it."""

    label: str
    amount: Decimal
    kind: str = "delta"
    source: str = ""
    href: str = ""


def waterfall(*, chart_id: str, title: str, steps: Sequence[Step], height: int = 500) -> str:
    """Bars from a starting balance through each deduction to the result; each bar labelled with
    its signed amount above and its name and source below."""
    left, right, top, bottom = 104, 16, 40, 156
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    body: list[str] = []
    if not steps:
        body.append(_text(WIDTH / 2, height / 2, "Nothing to draw.", anchor="middle"))
        return _svg(chart_id=chart_id, kind="waterfall", height=height, title=title, body=body)
    bars = []  # (step, start, end)
    level = 0.0
    for step in steps:
        amount = float(step.amount)
        if step.kind in ("subtotal", "total"):
            bars.append((step, 0.0, amount))
            level = amount
        else:
            bars.append((step, level, level + amount))
            level += amount
    extremes = [v for _, a, b in bars for v in (a, b)] + [0.0]
    ticks = nice_ticks(min(extremes), max(extremes) * 1.06 if max(extremes) > 0 else 1.0, 7)
    y_min, y_max = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return top + (y_max - value) / (y_max - y_min) * plot_h

    for tick in ticks:
        ty = y(tick)
        body.append(
            f'<line x1="{left}" y1="{_num(ty)}" x2="{WIDTH - right}" y2="{_num(ty)}" '
            f'stroke="{COLOR_GRID}"/>'
        )
        body.append(
            _text(left - 8, ty + 4, grouped(Decimal(str(tick)), 0), anchor="end", color=COLOR_MUTED)
        )
    body.append(_text(left - 8, top - 14, "₽", anchor="end", color=COLOR_MUTED))
    zero = y(0.0)
    body.append(
        f'<line x1="{left}" y1="{_num(zero)}" x2="{WIDTH - right}" y2="{_num(zero)}" '
        f'stroke="{COLOR_AXIS}" stroke-width="1.5"/>'
    )
    slot = plot_w / len(bars)
    bar_w = min(120.0, slot * 0.62)
    label_chars = max(8, int(slot / 8.4))  # bold 12 px
    source_chars = max(8, int(slot / 6.8))  # 11 px
    for index, (step, start, end) in enumerate(bars):
        cx = left + slot * index + slot / 2
        x0 = cx - bar_w / 2
        top_y, bottom_y = y(max(start, end)), y(min(start, end))
        if step.kind == "total":
            color = COLOR_TOTAL
        elif step.kind == "subtotal":
            color = COLOR_SUBTOTAL
        elif step.amount < 0:
            color = COLOR_OBLIGATION
        else:
            color = COLOR_HISTORY
        height_px = max(1.5, bottom_y - top_y)
        amount_text = (
            money(step.amount) if step.kind in ("subtotal", "total") else signed_money(step.amount)
        )
        rect = (
            f'<rect class="step step-{_attr(step.kind)}" x="{_num(x0)}" y="{_num(top_y)}" '
            f'width="{_num(bar_w)}" height="{_num(height_px)}" fill="{color}" rx="2"/>'
        )
        value = _text(cx, top_y - 8, amount_text, size=12, anchor="middle", weight="bold")
        tooltip = f"{step.label}: {amount_text}" + (f" — {step.source}" if step.source else "")
        body.append(f'<g class="waterfall-step">{_link(rect + value, step.href, tooltip)}</g>')
        if index + 1 < len(bars):
            next_start = bars[index + 1][1] if bars[index + 1][0].kind == "delta" else end
            if bars[index + 1][0].kind == "delta" or abs(next_start - end) < 1e-9:
                ly = y(end)
                body.append(
                    f'<line x1="{_num(x0 + bar_w)}" y1="{_num(ly)}" '
                    f'x2="{_num(cx + slot - bar_w / 2)}" y2="{_num(ly)}" stroke="{COLOR_AXIS}" '
                    f'stroke-dasharray="3 3"/>'
                )
        label_y = top + plot_h + 22
        label_lines = wrap(step.label, label_chars, 2)
        for n, line in enumerate(label_lines):
            body.append(_text(cx, label_y + 15 * n, line, size=12, anchor="middle", weight="bold"))
        source_y = label_y + 15 * len(label_lines) + 6
        for n, line in enumerate(wrap(step.source, source_chars, 6)):
            body.append(
                _text(cx, source_y + 14 * n, line, size=11, anchor="middle", color=COLOR_MUTED)
            )
    return _svg(chart_id=chart_id, kind="waterfall", height=height, title=title, body=body)


# --- Horizontal bars: health indicators, debts, categories -----------------------------------


@dataclass(frozen=True)
class Bar:
    """One row: a bar of `value` out of the chart's maximum (None: no data), the figure shown
    beside it and lines of notes under it. `hatched` marks an estimate."""

    label: str
    value: Decimal | float | None
    display: str
    color: str = COLOR_HISTORY
    href: str = ""
    notes: tuple[str, ...] = ()
    hatched: bool = False
    badge: str = ""


def horizontal_bars(
    *,
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    max_value: Decimal | float | None = None,
    label_width: int = 300,
    bar_width: int = 560,
) -> str:
    """Labelled bars, one per row, the figure at the bar's end and notes (wrapped) below it."""
    row_gap, bar_h, note_h = 14, 20, 16
    note_chars = int((WIDTH - label_width - 16) / 6.9)
    rows = []
    for bar in bars:
        notes = [line for note in bar.notes for line in wrap(note, note_chars, 3)]
        rows.append((bar, notes))
    height = 16 + sum(bar_h + row_gap + note_h * len(notes) for _, notes in rows) + 8
    if not bars:
        height = 60
    body: list[str] = [
        f'<defs><pattern id="{_attr(chart_id)}-hatch" width="8" height="8" '
        f'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="8" height="8" fill="#fff"/>'
        f'<rect width="4" height="8" fill="{COLOR_SUBTOTAL}" fill-opacity="0.55"/></pattern></defs>'
    ]
    if not bars:
        body.append(_text(16, 36, "Nothing to show.", color=COLOR_MUTED))
        return _svg(chart_id=chart_id, kind="bars", height=height, title=title, body=body)
    known = [float(b.value) for b in bars if b.value is not None]
    top_value = float(max_value) if max_value is not None else max(known, default=1.0)
    top_value = top_value or 1.0
    y = 16.0
    label_chars = int((label_width - 16) / 7.3)
    for bar, notes in rows:
        bx = label_width
        label = wrap(bar.label, label_chars, 1)[0] if bar.label else ""
        parts = [_text(label_width - 14, y + 15, label, size=13, anchor="end", weight="bold")]
        if bar.badge:
            parts.append(
                _text(label_width - 14, y + 31, bar.badge, size=11, anchor="end", color=COLOR_MUTED)
            )
        if bar.value is None:
            parts.append(
                f'<rect class="bar bar-empty" x="{bx}" y="{_num(y)}" width="{bar_width}" '
                f'height="{bar_h}" fill="none" stroke="{COLOR_AXIS}" stroke-dasharray="4 3"/>'
            )
        else:
            length = max(2.0, min(1.0, max(0.0, float(bar.value)) / top_value) * bar_width)
            fill = f"url(#{_attr(chart_id)}-hatch)" if bar.hatched else bar.color
            stroke = f' stroke="{COLOR_SUBTOTAL}"' if bar.hatched else ""
            parts.append(
                f'<rect class="bar" x="{bx}" y="{_num(y)}" width="{bar_width}" height="{bar_h}" '
                f'fill="#f1f5f9"/>'
                f'<rect class="bar-value" x="{bx}" y="{_num(y)}" width="{_num(length)}" '
                f'height="{bar_h}" fill="{fill}"{stroke}/>'
            )
        parts.append(_text(bx + bar_width + 12, y + 15, bar.display, size=13, weight="bold"))
        tooltip = f"{bar.label}: {bar.display}"
        row = _link("".join(parts), bar.href, tooltip)
        note_svg = "".join(
            _text(bx, y + bar_h + 14 + note_h * n, line, size=12, color=COLOR_MUTED)
            for n, line in enumerate(notes)
        )
        body.append(f'<g class="bar-row">{row}{note_svg}</g>')
        y += bar_h + row_gap + note_h * len(notes)
    return _svg(chart_id=chart_id, kind="bars", height=int(height), title=title, body=body)
