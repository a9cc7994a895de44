"""The staff console's "Financial picture" of one user: what the user's dashboard says, drawn.

Everything comes from the user's latest AnalyticsSnapshot breakdown (the figures the API serves)
and from analytics selectors (balance history, spending by category, latest transactions); the
page never recomputes. Every figure links into the admin changelists filtered to the rows behind
it, and every transaction row there opens its change page with the bank's raw JSON.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.safestring import mark_safe

from analytics import charts, selectors
from analytics.charts import Bar, LowPoint, Marker, Point, Series, Step, money, signed_money
from fintrack.core.localtime import local_day_start, user_zone

HISTORY_DAYS = 90
REQUIRED_SECTIONS = frozenset({"today", "sts", "forecast", "health", "debt", "obligations"})
WATERFALL_ITEMS = 4  # more balances or obligations than this are drawn as one bar per group
COUNTED_STATUSES = "booked,pending,refunded"  # the aggregates leave out declined rows only
INDICATOR_NAMES = {
    "spend_vs_income": "Spending vs income",
    "bills_on_time": "Bills paid on time",
    "liquid_buffer": "Liquid savings buffer",
    "savings_trend": "Savings trend",
    "debt_service_ratio": "Debt service (ПДН)",
    "credit_utilisation": "Credit utilisation",
    "income_regularity": "Income regularity",
    "regular_saving": "Regular saving",
    "debt_load": "Debt load",
}
OUTSTANDING_LABELS = {
    "loan_account": "from the loan account",
    "estimate": "estimate",
    "unknown": "balance unknown",
}
OBLIGATION_SOURCES = {
    "agreement": "the agreement's payment schedule",
    "history": "instalments seen in the history",
    "recurring": "a recurring bill detected in the history",
}


def _decimal(value) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def _day(value) -> date | None:
    if isinstance(value, date):
        return value
    return parse_date(str(value)[:10]) if value else None


def local_time(value, zone) -> str:
    """An instant in the user's zone with seconds and the zone: '2026-12-01 13:28:59 MSK
    (UTC+03:00)'; a dash when there is none."""
    moment = value if isinstance(value, datetime) else parse_datetime(str(value or ""))
    if moment is None:
        return "—"
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def _month_start(day: date, back: int = 0) -> date:
    year, month = day.year, day.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return date(year, month, 1)


class AdminLinks:
    """Admin URLs of the rows behind a figure, always filtered to the one user."""

    def __init__(self, *, user_id: int, zone):
        self.user_id = user_id
        self.zone = zone

    def _changelist(self, name: str, query: dict, *, user_filter: bool = True) -> str:
        params = {"user__id__exact": self.user_id, **query} if user_filter else query
        return f"{reverse(f'admin:{name}_changelist')}?{urlencode(params)}"

    def change(self, name: str, pk) -> str:
        return reverse(f"admin:{name}_change", args=[pk])

    def _range(self, field: str, first: date, last: date) -> dict:
        return {
            f"{field}__gte": local_day_start(self.zone, first).isoformat(),
            f"{field}__lt": local_day_start(self.zone, last + timedelta(days=1)).isoformat(),
        }

    def transactions(self, **query) -> str:
        return self._changelist("banking_transaction", query)

    def transactions_between(self, first: date, last: date, **query) -> str:
        return self.transactions(**self._range("booking_date", first, last), **query)

    def spending_of_category(self, category_id: int, first: date, last: date) -> str:
        """The debits an aggregate row sums: the category's, no own transfers, none declined."""
        return self.transactions_between(
            first,
            last,
            category__id__exact=category_id,
            amount__lt=0,
            is_own_transfer__exact=0,
            status__in=COUNTED_STATUSES,
        )

    def matching(self, text: str, **query) -> str:
        """Transactions whose description or merchant holds `text` (the admin's search)."""
        return self.transactions(q=f'"{text}"', **query)

    def aggregates(self, first: date, last: date) -> str:
        return self._changelist(
            "banking_transactionaggregate", {"date__gte": first, "date__lte": last}
        )

    def agreements(self, **query) -> str:
        return self._changelist("banking_productagreement", query)

    def agreement(self, *, agreement_id: str, debt_id=None) -> str:
        if debt_id:
            return self.change("banking_productagreement", debt_id)
        return self.agreements(agreement_id=agreement_id)

    def accounts(self, **query) -> str:
        return self._changelist("banking_account", query)

    def readings(self, account_ids: list[int], first: date, last: date) -> str:
        query = {"account__id__in": ",".join(str(i) for i in account_ids)}
        return self._changelist(
            "banking_balancesnapshot",
            {**query, **self._range("as_of", first, last)},
            user_filter=False,
        )


def _obligation_href(links: AdminLinks, obligation: dict) -> str:
    if obligation.get("kind") == "loan_instalment" and obligation.get("agreement_id"):
        return links.matching(obligation["agreement_id"])
    return links.matching(obligation.get("label", ""), amount__lt=0)


def _obligation_source(obligation: dict) -> str:
    text = OBLIGATION_SOURCES.get(obligation.get("source", ""), obligation.get("source", ""))
    if obligation.get("schedule_source") == "history":
        text += " (dates from the instalments seen)"
    elif obligation.get("schedule_source") == "estimate":
        text += " (an annuity estimate)"
    return text


# --- Sections -----------------------------------------------------------------------------------


def _headline(breakdown: dict, links: AdminLinks, snapshot_href: str) -> dict:
    sts, debt = breakdown["sts"], breakdown["debt"]
    payment = breakdown.get("next_payment")
    savings = breakdown.get("savings") or {"total": "0", "items": []}
    return {
        "sts_period": money(sts["sts_period"]),
        "sts_daily": money(sts["sts_daily"]),
        "sts_status": sts["status"],
        "sts_until": sts.get("horizon_end"),
        "sts_horizon": sts["horizon_days"],
        "sts_confidence": (sts.get("confidence") or {}).get("level", ""),
        "sts_href": "#sts",
        "next_payment": (
            {
                "amount": money(payment["amount"]),
                "date": payment["date"],
                "name": payment.get("name", ""),
                "bank": payment.get("bank_code", ""),
                "due_7": money(payment.get("due_in_7_days")),
                "href": links.agreement(
                    agreement_id=payment.get("agreement_id", ""), debt_id=payment.get("debt_id")
                )
                if payment.get("agreement_id")
                else links.matching(payment.get("name", ""), amount__lt=0),
            }
            if payment
            else None
        ),
        "total_debt": money(debt["total_debt"]),
        "total_debt_basis": debt.get("total_debt_basis", ""),
        "debt_href": links.agreements(status="active"),
        "savings_total": money(savings["total"]),
        "savings_count": len(savings.get("items", [])),
        "savings_href": links.agreements(product_type="deposit"),
        "snapshot_href": snapshot_href,
    }


def _forecast(breakdown: dict, history: dict, links: AdminLinks, today: date) -> dict:
    forecast, sts = breakdown["forecast"], breakdown["sts"]
    history_points = [
        Point(
            day=row["date"],
            value=row["balance"],
            href=links.transactions_between(row["date"], row["date"]),
            title=f"{row['date'].isoformat()}: {money(row['balance'])} at the end of the day; "
            f"{row['count']} transactions, net {signed_money(row['net'])}",
        )
        for row in history["days"]
    ]
    rows = [{**r, "date": _day(r["date"])} for r in forecast["rows"]]
    continues = [Point(day=today, value=_decimal(forecast["start_balance"]))] + [
        Point(day=r["date"], value=_decimal(r["balance"])) for r in rows
    ]
    no_income_rows = (forecast.get("paths") or {}).get("no_income", {}).get("rows", [])
    no_income = [Point(day=today, value=_decimal(forecast["start_balance"]))] + [
        Point(day=_day(r["date"]), value=_decimal(r["balance"])) for r in no_income_rows
    ]
    obligations = {(o["date"], o["label"]): o for o in breakdown.get("obligations", [])}
    markers, events = [], []
    for row in rows:
        for event in row["events"]:
            amount = _decimal(event["amount"])
            if event["kind"] == "income":
                href = links.matching(event["label"], amount__gt=0)
                source = "main income stream (typical amount, expected date)"
            else:
                obligation = obligations.get((event["date"], event["label"]), {})
                href = _obligation_href(links, obligation or {"label": event["label"]})
                source = _obligation_source(obligation) if obligation else ""
            kind = "income" if event["kind"] == "income" else "obligation"
            markers.append(
                Marker(
                    day=row["date"],
                    value=_decimal(row["balance"]),
                    kind=kind,
                    label=event["label"],
                    amount=abs(amount),
                    href=href,
                )
            )
            events.append(
                {
                    "date": row["date"],
                    "kind": kind,
                    "label": event["label"],
                    "amount": signed_money(amount),
                    "balance": money(row["balance"]),
                    "source": source,
                    "href": href,
                }
            )
    if history["readings"]:
        reading_href = links.readings(
            history["account_ids"], history["days"][0]["date"], history["days"][-1]["date"]
        )
        for reading in history["readings"]:
            markers.append(
                Marker(
                    day=reading["date"],
                    value=reading["balance"],
                    kind="reading",
                    label="balances the banks reported",
                    href=reading_href,
                )
            )
    lowest = forecast["lowest"]
    no_income_low = (forecast.get("paths") or {}).get("no_income", {}).get("lowest")
    low_points = [
        LowPoint(
            day=_day(lowest["date"]),
            value=_decimal(lowest["amount"]),
            label="Low point",
            href="#forecast-events",
        )
    ]
    if no_income_low and (no_income_low["date"], no_income_low["amount"]) != (
        lowest["date"],
        lowest["amount"],
    ):
        low_points.append(
            LowPoint(
                day=_day(no_income_low["date"]),
                value=_decimal(no_income_low["amount"]),
                label="Low point if no income comes",
                color="#6b7280",
                href="#forecast-events",
            )
        )
    svg = charts.line_chart(
        chart_id="chart-forecast",
        title="Spendable balance: the last 90 days and the 30-day forecast",
        series=[
            Series("balance history", history_points, color=charts.COLOR_HISTORY),
            Series(
                "forecast, income continues", continues, color=charts.COLOR_FORECAST, style="dashed"
            ),
            Series("forecast, no income", no_income, color=charts.COLOR_NO_INCOME, style="dotted"),
        ],
        markers=markers,
        low_points=low_points,
        today=today,
    )
    return {
        "svg": mark_safe(svg),  # noqa: S308 - built by analytics.charts, every text escaped
        "events": events,
        "low_point": money(lowest["amount"]),
        "low_point_date": lowest["date"],
        "no_income_low_point": money(no_income_low["amount"]) if no_income_low else "—",
        "no_income_low_point_date": no_income_low["date"] if no_income_low else "",
        "sts_low_point": money(sts["low_point"]["amount"]),
        "sts_low_point_date": sts["low_point"]["date"],
        "daily_spending": money(forecast.get("daily_variable_spending")),
        "assumptions": forecast.get("assumptions", []),
        "history_first": history["days"][0]["date"] if history["days"] else None,
    }


def _sts(breakdown: dict, links: AdminLinks, zone) -> dict:
    sts = breakdown["sts"]
    steps: list[Step] = []
    terms: list[dict] = []
    balances = sts.get("balances", [])
    for balance in balances:
        source = f"account balance, read {local_time(balance.get('as_of'), zone)}"
        href = links.change("banking_account", balance["account_id"])
        label = f"{balance['bank_code']} {balance['label']}"
        terms.append(
            {
                "term": label,
                "amount": money(balance["amount"]),
                "source": source,
                "href": href,
                "rows_href": links.transactions(account__id__exact=balance["account_id"]),
            }
        )
        if len(balances) <= WATERFALL_ITEMS:
            steps.append(
                Step(label, _decimal(balance["amount"]), source="account balance", href=href)
            )
    steps.append(
        Step(
            "Spendable balance",
            _decimal(sts["spendable_balance"]),
            kind="subtotal",
            source="checking and card accounts",
            href=links.accounts(is_active__exact=1),
        )
    )
    level = _decimal(sts["spendable_balance"])
    obligations = sts.get("obligations", [])
    groups: dict[str, list[dict]] = {}
    for obligation in obligations:
        href = _obligation_href(links, obligation)
        terms.append(
            {
                "term": f"{obligation['label']} due {obligation['date']}",
                "amount": signed_money(-_decimal(obligation["amount"])),
                "source": _obligation_source(obligation),
                "href": href,
                "rows_href": href,
            }
        )
        groups.setdefault(obligation["kind"], []).append(obligation)
    if len(obligations) <= WATERFALL_ITEMS:
        for obligation in obligations:
            steps.append(
                Step(
                    obligation["label"],
                    -_decimal(obligation["amount"]),
                    source=f"due {obligation['date']}; {_obligation_source(obligation)}",
                    href=_obligation_href(links, obligation),
                )
            )
    else:
        for kind, items in groups.items():
            name = "Loan instalments" if kind == "loan_instalment" else "Recurring bills"
            total = sum((_decimal(o["amount"]) for o in items), Decimal("0"))
            steps.append(
                Step(
                    f"{name} ({len(items)})",
                    -total,
                    href="#sts-terms",
                    source="; ".join(sorted({_obligation_source(o) for o in items})),
                )
            )
    level -= sum((_decimal(o["amount"]) for o in obligations), Decimal("0"))
    everyday = sts.get("everyday_spending")
    if everyday:
        total = _decimal(everyday.get("total"))
        months = everyday.get("months") or []
        href = ""
        if months:
            first = _day(months[0]["month"])
            last_month = _day(months[-1]["month"])
            last = _month_start(last_month + timedelta(days=32)) - timedelta(days=1)
            href = links.transactions_between(first, last, amount__lt=0, is_own_transfer__exact=0)
        later_days = max(0, sts["horizon_days"] - 1)
        basis = str(everyday.get("basis", "")).replace("_", " ")
        plural = "s" if later_days != 1 else ""
        source = (
            f"{money(everyday.get('daily'))} a day × {later_days} day{plural}"
            f" + {money(everyday.get('today'))} for the rest of today ({basis})"
        )
        steps.append(Step("Everyday spending", -total, source=source, href=href))
        terms.append(
            {
                "term": "Everyday spending until the income",
                "amount": signed_money(-total),
                "source": everyday.get("explanation", source),
                "href": href,
                "rows_href": href,
            }
        )
        level -= total
    low = sts["low_point"]
    low_amount = _decimal(low["amount"])
    if level != low_amount:
        # The path's lowest day is not its last one (never for positive outflows): say so.
        steps.append(Step("Difference on the path", low_amount - level, source="see the path"))
    steps.append(
        Step(
            "Low point",
            low_amount,
            kind="subtotal",
            href="#sts-path",
            source=f"lowest end-of-day balance, {low['date']}",
        )
    )
    reserve = sts["reserve"]
    if reserve.get("basis") == "share":
        reserve_source = (
            f"{_decimal(reserve['share']) * 100:.0f}% of essential spending "
            f"{money(reserve['essential_monthly'])} a month"
        )
    else:
        reserve_source = f"the floor of {money(reserve.get('floor'))}"
    window = breakdown.get("window") or {}
    today = _day(breakdown["today"])
    reserve_href = links.aggregates(_month_start(today, 3), _month_start(today) - timedelta(days=1))
    steps.append(
        Step("Reserve", -_decimal(reserve["amount"]), source=reserve_source, href=reserve_href)
    )
    terms.append(
        {
            "term": "Reserve",
            "amount": signed_money(-_decimal(reserve["amount"])),
            "source": reserve_source,
            "href": reserve_href,
            "rows_href": reserve_href,
        }
    )
    steps.append(
        Step(
            "Save-to-Spend",
            _decimal(sts["sts_period"]),
            kind="total",
            href="#sts-terms",
            source=f"until {sts.get('horizon_end')}: {money(sts['sts_daily'])} a day",
        )
    )
    svg = charts.waterfall(
        chart_id="chart-sts", title="Save-to-Spend: from balances to what can be spent", steps=steps
    )
    path = [
        {
            "date": row["date"],
            "obligations": money(row.get("obligations")),
            "everyday": money(row.get("everyday")),
            "inflow": money(row.get("inflow")),
            "balance": money(row["balance"]),
            "is_low": row["date"] == low["date"],
        }
        for row in sts.get("path", [])
    ]
    return {
        "svg": mark_safe(svg),  # noqa: S308 - built by analytics.charts, every text escaped
        "terms": terms,
        "path": path,
        "formula": sts.get("formula", ""),
        "explanation": sts.get("explanation", ""),
        "reasons": sts.get("reasons", []),
        "excluded": sts.get("obligations_excluded", []),
        "next_income": sts.get("next_income"),
        "next_income_amount": money((sts.get("next_income") or {}).get("amount")),
        "window": window,
    }


def _indicator_href(code: str, links: AdminLinks, today: date, snapshot_href: str) -> str:
    last = _month_start(today) - timedelta(days=1)
    if code in ("spend_vs_income",):
        return links.aggregates(_month_start(today, 3), last)
    if code == "income_regularity":
        return links.aggregates(_month_start(today, 6), last)
    if code == "liquid_buffer":
        return links.accounts(is_active__exact=1)
    if code in ("savings_trend", "regular_saving"):
        return links.agreements(product_type="deposit")
    if code == "credit_utilisation":
        return links.agreements(product_type="credit_card")
    if code in ("debt_service_ratio", "debt_load"):
        return links.agreements(status="active")
    return snapshot_href


def _health(breakdown: dict, links: AdminLinks, snapshot_href: str) -> dict:
    health = breakdown["health"]
    today = _day(breakdown["today"])
    bars = []
    for indicator in health["indicators"]:
        weight = indicator.get("normalised_weight")
        badge = f"weight {weight * 100:.1f}%" if weight else "not scored: no data"
        score = indicator.get("score")
        bars.append(
            Bar(
                label=INDICATOR_NAMES.get(indicator["code"], indicator["code"]),
                value=score,
                display=f"{score} / 100 · {indicator['band']}" if score is not None else "no data",
                color=charts.BAND_COLORS.get(indicator["band"], charts.COLOR_SUBTOTAL),
                href=_indicator_href(indicator["code"], links, today, snapshot_href),
                notes=(indicator.get("explanation", ""), f"Action: {indicator.get('action', '')}"),
                badge=badge,
            )
        )
    svg = charts.horizontal_bars(
        chart_id="chart-health", title="Health indicators, 0-100", bars=bars, max_value=100
    )
    return {
        "svg": mark_safe(svg),  # noqa: S308 - built by analytics.charts, every text escaped
        "score": health.get("score"),
        "band": health.get("band"),
        "used": health.get("used"),
    }


def _debts(breakdown: dict, links: AdminLinks) -> dict:
    debt = breakdown["debt"]
    bars, rows = [], []
    for item in debt.get("items", []):
        label = OUTSTANDING_LABELS.get(item["outstanding_source"], item["outstanding_source"])
        outstanding = item.get("outstanding")
        href = (
            links.agreement(agreement_id=item["agreement_id"])
            if item.get("agreement_id")
            else links.accounts(account_type=item["kind"])
        )
        payment = item.get("monthly_payment")
        notes = [f"{label}: {item.get('outstanding_basis') or '—'}"]
        notes.append(
            f"monthly payment {money(payment)} ({item.get('monthly_payment_source', '')})"
            + (
                f"; next {money(item['next_payment_amount'])} on {item['next_payment_date']}"
                if item.get("next_payment_date") and item.get("next_payment_amount")
                else ""
            )
        )
        if item.get("payment_status_note"):
            notes.append(item["payment_status_note"])
        display = money(outstanding) if outstanding is not None else "balance unknown"
        if item.get("is_estimate"):
            display += " (estimate)"
        bars.append(
            Bar(
                label=item.get("name") or item.get("agreement_id") or item["kind"],
                value=_decimal(outstanding) if outstanding is not None else None,
                display=display,
                color="#7c3aed",
                hatched=bool(item.get("is_estimate")),
                badge=f"{item['bank_code']} · {item['kind'].replace('_', ' ')}",
                href=href,
                notes=tuple(notes),
            )
        )
        rows.append(
            {
                "name": item.get("name", ""),
                "bank": item["bank_code"],
                "kind": item["kind"].replace("_", " "),
                "agreement_id": item.get("agreement_id", ""),
                "outstanding": display,
                "label": label,
                "is_estimate": bool(item.get("is_estimate")),
                "balance_known": item.get("balance_known", outstanding is not None),
                "basis": item.get("outstanding_basis", ""),
                "rate": item.get("interest_rate"),
                "limit": money(item["limit"]) if item.get("limit") else "",
                "href": href,
                "rows_href": links.matching(item["agreement_id"])
                if item.get("agreement_id")
                else "",
            }
        )
    svg = charts.horizontal_bars(chart_id="chart-debts", title="Debts: what is owed", bars=bars)
    return {
        "svg": mark_safe(svg),  # noqa: S308 - built by analytics.charts, every text escaped
        "rows": rows,
        "total": money(debt["total_debt"]),
        "basis": debt.get("total_debt_basis", ""),
        "monthly_service": money(debt.get("monthly_debt_service")),
        "warnings": debt.get("warnings", []),
        "assumptions": debt.get("assumptions", []),
    }


def _categories(user, links: AdminLinks, today: date) -> dict:
    first = _month_start(today, 1)
    last = _month_start(today) - timedelta(days=1)
    rows = selectors.category_spending_list(user=user, since=first, until=last)
    total = sum((r["total"] for r in rows), Decimal("0"))
    bars = [
        Bar(
            label=row["category__name_en"] or row["category__code"] or "uncategorised",
            value=row["total"],
            display=money(row["total"]),
            color="#0891b2" if row["category__is_essential"] else "#6366f1",
            href=links.spending_of_category(row["category_id"], first, last),
            badge=("essential · " if row["category__is_essential"] else "")
            + (row["category__name_ru"] or ""),
            notes=(f"{row['total'] / total * 100:.1f}% of the month's spending",) if total else (),
        )
        for row in rows
    ]
    svg = charts.horizontal_bars(
        chart_id="chart-categories", title=f"Spending by category, {first:%B %Y}", bars=bars
    )
    return {
        "svg": mark_safe(svg),  # noqa: S308 - built by analytics.charts, every text escaped
        "month": first,
        "total": money(total),
        "href": links.aggregates(first, last),
        "count": len(rows),
    }


def _recent_transactions(user, links: AdminLinks, zone) -> list[dict]:
    return [
        {
            "booked": local_time(row["booking_date"], zone),
            "bank": row["bank_code"],
            "amount": money(row["amount"], row["currency"]),
            "description": row["description"],
            "category": row["category__code"] or "—",
            "status": row["status"],
            "href": links.change("banking_transaction", row["id"]),
        }
        for row in selectors.dashboard_recent_transactions(user=user, limit=10)
    ]


def financial_picture_context(*, user) -> dict:
    """Everything the page draws for `user`, from the latest snapshot and the selectors."""
    zone = user_zone(user)
    links = AdminLinks(user_id=user.pk, zone=zone)
    snapshot = selectors.snapshot_latest(user=user)
    context = {
        "subject": user,
        "zone": str(zone),
        "user_href": links.change("users_user", user.pk),
        "transactions_href": links.transactions(),
        "recent": _recent_transactions(user, links, zone),
        "snapshot": None,
    }
    breakdown = snapshot.breakdown if snapshot is not None else None
    if not breakdown or breakdown.get("state") != "ready":
        return context
    if not breakdown.keys() >= REQUIRED_SECTIONS:
        # A snapshot stored before the breakdown held every section: nothing to draw from.
        context["old_snapshot"] = snapshot
        return context
    today = _day(breakdown["today"])
    snapshot_href = links.change("analytics_analyticssnapshot", snapshot.pk)
    history = selectors.spendable_balance_history(
        user=user, since=today - timedelta(days=HISTORY_DAYS - 1), until=today, zone=zone
    )
    freshness = breakdown.get("freshness") or {}
    context.update(
        {
            "snapshot": snapshot,
            "snapshot_href": snapshot_href,
            "computed_at": local_time(snapshot.created_at, zone),
            "data_fresh_as_of": local_time(freshness.get("data_fresh_as_of"), zone),
            "today": today,
            "banks": [
                {**bank, "last_success_at": local_time(bank.get("last_success_at"), zone)}
                for bank in freshness.get("banks", [])
            ],
            "headline": _headline(breakdown, links, snapshot_href),
            "forecast": _forecast(breakdown, history, links, today),
            "sts": _sts(breakdown, links, zone),
            "health": _health(breakdown, links, snapshot_href),
            "debts": _debts(breakdown, links),
            "categories": _categories(user, links, today),
        }
    )
    return context


@staff_member_required
def financial_picture(request, user_id: int, admin_site):
    """Staff page: one user's financial picture (read-only; needs the view permission on
    users)."""
    if not request.user.has_perm("users.view_user"):
        raise PermissionDenied
    user = selectors.console_user_get(user_id=user_id)
    if user is None:
        raise Http404("No such user.")
    context = {
        **admin_site.each_context(request),
        # The charts get the page's whole width: no navigation sidebar here.
        "is_nav_sidebar_enabled": False,
        "title": f"Financial picture: {user.email or user.phone or user.pk}",
        "opts": user._meta,
        **financial_picture_context(user=user),
    }
    return TemplateResponse(request, "admin/analytics/financial_picture.html", context)
