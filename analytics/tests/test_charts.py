"""The console's server-side SVG charts: well-formed, escaped, fixed width, and drawn to scale."""

import re
import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal as D

import pytest

from analytics import charts
from analytics.charts import Bar, LowPoint, Marker, Point, Series, Step

NS = {"svg": "http://www.w3.org/2000/svg"}
NBSP = "\u00a0"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything not well-formed


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def _rects(root: ET.Element, cls: str) -> list[ET.Element]:
    rects = root.iter("{http://www.w3.org/2000/svg}rect")
    return [r for r in rects if cls in (r.get("class") or "").split()]


# --- Formatting -------------------------------------------------------------------------------


def test_money_groups_thousands_with_no_break_spaces_and_uses_a_real_minus():
    assert charts.money("559420.65") == f"559{NBSP}420.65{NBSP}₽"
    assert charts.money(D("-20909.75")) == f"−20{NBSP}909.75{NBSP}₽"
    assert charts.money("0") == f"0.00{NBSP}₽"
    assert charts.money(None) == "—"
    assert charts.money("12.5", "USD") == f"12.50{NBSP}USD"
    assert charts.signed_money("78410.18") == f"+78{NBSP}410.18{NBSP}₽"
    assert charts.signed_money("-539") == f"−539.00{NBSP}₽"


def test_wrap_breaks_on_spaces_and_keeps_an_amount_on_one_line():
    text = f"10% of essential spending {charts.money('72533.05')} a month"
    assert charts.wrap(text, 16, 4) == [
        "10% of essential",
        "spending",
        f"72{NBSP}533.05{NBSP}₽ a",
        "month",
    ]
    assert charts.wrap("one two three four", 8, 2) == ["one two", "three…"]


def test_nice_ticks_cover_the_range_in_round_steps():
    assert charts.nice_ticks(473000, 676000) == [450000, 500000, 550000, 600000, 650000, 700000]
    assert charts.nice_ticks(0, 635000, 7) == [
        0,
        100000,
        200000,
        300000,
        400000,
        500000,
        600000,
        700000,
    ]


# --- Line chart -------------------------------------------------------------------------------


def _forecast_chart(**extra) -> str:
    history = [
        Point(day=date(2026, 11, 29), value=D("600000"), href="/admin/x/?a=1&b=2", title="29"),
        Point(day=date(2026, 11, 30), value=D("595000")),
        Point(day=date(2026, 12, 1), value=D("591193.42")),
    ]
    forecast = [
        Point(day=date(2026, 12, 1), value=D("590093.59")),
        Point(day=date(2026, 12, 2), value=D("566673.95")),
        Point(day=date(2026, 12, 3), value=D("642574.24")),
    ]
    return charts.line_chart(
        chart_id="chart-test",
        title="Balance <b>& forecast</b>",
        series=[Series("history", history), Series("forecast", forecast, style="dashed")],
        markers=[
            Marker(
                day=date(2026, 12, 2),
                value=D("566673.95"),
                kind="obligation",
                label="Ипотека <script>",
                amount=D("20909.75"),
                href="/admin/o/?q=%22a%22",
            ),
            Marker(
                day=date(2026, 12, 3),
                value=D("642574.24"),
                kind="income",
                label="Доход",
                amount=D("78410.18"),
            ),
        ],
        low_points=[LowPoint(day=date(2026, 12, 2), value=D("566673.95"), label="Low point")],
        today=date(2026, 12, 1),
        **extra,
    )


def test_line_chart_is_well_formed_escaped_and_fixed_width():
    svg = _forecast_chart()
    root = _parse(svg)
    assert root.get("viewBox") == "0 0 1320 420"
    assert root.get("width") == "100%"
    assert root.find("svg:title", NS).text == "Balance <b>& forecast</b>"
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>" not in svg
    # The link's & is escaped in the markup and reads back as the URL.
    hrefs = [a.get("href") for a in root.iter("{http://www.w3.org/2000/svg}a")]
    assert "/admin/x/?a=1&b=2" in hrefs
    assert "/admin/o/?q=%22a%22" in hrefs
    assert "&b=2" not in svg


def test_line_chart_draws_each_series_markers_and_the_labelled_low_point():
    root = _parse(_forecast_chart())
    paths = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if p.get("class") == "series"]
    assert [p.get("data-series") for p in paths] == ["history", "forecast"]
    assert [p.get("d").count("L") for p in paths] == [2, 2]  # three points each
    assert paths[1].get("stroke-dasharray") == "8 5"
    groups = [g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert groups.count("marker marker-income") == 1
    assert groups.count("marker marker-obligation") == 1
    assert groups.count("low-point") == 1
    texts = _texts(root)
    assert f"Low point: 566{NBSP}673.95{NBSP}₽ on 2{NBSP}Dec" in texts
    assert f"+78{NBSP}410" in texts and f"−20{NBSP}910" in texts
    assert "today" in texts


def test_line_chart_puts_the_low_point_lowest_and_days_left_to_right():
    root = _parse(_forecast_chart())
    circles = list(root.iter("{http://www.w3.org/2000/svg}circle"))
    low = next(c for c in circles if c.get("r") == "6.5")
    hits = [c for c in circles if c.get("class") == "hit"]
    assert len(hits) == 1  # only the history point with a link or title is a target
    # y grows downwards: the lowest balance has the largest y of all plotted points.
    forecast = next(
        p
        for p in root.iter("{http://www.w3.org/2000/svg}path")
        if p.get("data-series") == "forecast"
    )
    numbers = [float(n) for n in re.findall(r"-?[0-9.]+", forecast.get("d"))]
    coordinates = list(zip(numbers[::2], numbers[1::2], strict=True))
    xs = [x for x, _ in coordinates]
    assert xs == sorted(xs)
    assert float(low.get("cy")) == max(y for _, y in coordinates)
    assert float(low.get("cx")) == coordinates[1][0]


def test_line_chart_without_points_says_so():
    root = _parse(charts.line_chart(chart_id="empty", title="t", series=[]))
    assert _texts(root) == ["No balances to draw."]


# --- Waterfall --------------------------------------------------------------------------------


def test_waterfall_bars_stand_on_the_running_level_and_are_to_scale():
    steps = [
        Step("Balance", D("100000"), kind="subtotal", source="accounts", href="/a?x=1&y=2"),
        Step("Loan", D("-30000"), source="the agreement's schedule"),
        Step("Reserve", D("-10000"), source="floor"),
        Step("Save-to-Spend", D("60000"), kind="total"),
    ]
    root = _parse(charts.waterfall(chart_id="w", title="STS", steps=steps))
    rects = [r for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    heights = [float(r.get("height")) for r in rects]
    tops = [float(r.get("y")) for r in rects]
    assert [r.get("class") for r in rects] == [
        "step step-subtotal",
        "step step-delta",
        "step step-delta",
        "step step-total",
    ]
    # Heights are proportional to the amounts: 100 : 30 : 10 : 60 (to a tenth of a unit, the
    # precision coordinates are written with).
    unit = heights[0] / 100000
    assert heights == pytest.approx(
        [100000 * unit, 30000 * unit, 10000 * unit, 60000 * unit], abs=0.15
    )
    # The loan hangs from the balance's top; the reserve from the loan's bottom; the total
    # ends where the reserve does.
    assert tops[1] == tops[0]
    assert tops[2] == pytest.approx(tops[1] + heights[1], abs=0.15)
    assert tops[3] == pytest.approx(tops[2] + heights[2], abs=0.15)
    texts = _texts(root)
    assert f"100{NBSP}000.00{NBSP}₽" in texts
    assert f"−30{NBSP}000.00{NBSP}₽" in texts
    assert f"60{NBSP}000.00{NBSP}₽" in texts
    assert "the agreement's schedule" in texts
    assert root.find(".//svg:a", NS).get("href") == "/a?x=1&y=2"


def test_waterfall_below_zero_draws_the_shortfall_under_the_axis():
    steps = [
        Step("Balance", D("1000"), kind="subtotal"),
        Step("Rent", D("-3000")),
        Step("Save-to-Spend", D("0"), kind="total"),
    ]
    root = _parse(charts.waterfall(chart_id="w", title="STS", steps=steps))
    rects = [r for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    balance, rent = rects[0], rects[1]
    # The rent bar runs from 1000 down to -2000: three times the balance's height, and it
    # reaches below the balance's bottom (the zero line) by twice that height.
    assert float(rent.get("height")) == pytest.approx(3 * float(balance.get("height")), abs=0.3)
    zero_y = float(balance.get("y")) + float(balance.get("height"))
    rent_bottom = float(rent.get("y")) + float(rent.get("height"))
    assert rent_bottom - zero_y == pytest.approx(2 * float(balance.get("height")), abs=0.3)


# --- Horizontal bars --------------------------------------------------------------------------


def test_horizontal_bars_are_to_scale_with_no_data_and_estimates_marked():
    bars = [
        Bar(
            "Spending vs income",
            75,
            "75 / 100 · coping",
            href="/admin/agg/?a=1&b=2",
            notes=("Spent 80% of income.", "Action: Keep it up."),
        ),
        Bar("Credit utilisation", None, "no data", notes=("No card.",)),
        Bar("Loan <i>", D("50"), "50 ₽ (estimate)", hatched=True, badge="vbank · loan"),
    ]
    svg = charts.horizontal_bars(chart_id="h", title="Health", bars=bars, max_value=100)
    root = _parse(svg)
    values = _rects(root, "bar-value")
    assert [float(r.get("width")) for r in values] == [420.0, 280.0]  # 75 % and 50 % of 560
    assert values[1].get("fill") == "url(#h-hatch)"
    assert len(_rects(root, "bar-empty")) == 1
    texts = _texts(root)
    for text in (
        "Spending vs income",
        "75 / 100 · coping",
        "Spent 80% of income.",
        "Action: Keep it up.",
        "no data",
        "No card.",
        "Loan <i>",
        "vbank · loan",
    ):
        assert text in texts
    assert "<i>" not in svg
    # Rows with more notes are taller: 16 + (34 + 2·16) + (34 + 16) + 34 + 8 = 174
    assert root.get("viewBox") == "0 0 1320 174"


def test_horizontal_bars_with_nothing_say_so():
    root = _parse(charts.horizontal_bars(chart_id="h", title="t", bars=[]))
    assert _texts(root) == ["Nothing to show."]
