"""A 30-day daily cash-flow forecast of the spendable balance on two paths: "income continues"
(the main income streams still seen arrive on their expected dates) and "no income" (none
arrives), each with its events, low point and assumptions."""

from datetime import date, timedelta
from decimal import Decimal

CENT = Decimal("0.01")


def _path(
    *,
    today: date,
    start_balance: Decimal,
    events: list[dict],
    daily_variable_spending: Decimal,
    today_share: Decimal,
    days: int,
) -> dict:
    end = today + timedelta(days=days - 1)
    by_day: dict[date, list[dict]] = {}
    for event in events:
        day = max(event["date"], today)
        if day <= end:
            by_day.setdefault(day, []).append({**event, "date": day})
    balance = start_balance
    rows = []
    lowest = None
    for offset in range(days):
        day = today + timedelta(days=offset)
        day_events = sorted(by_day.get(day, []), key=lambda e: (e["kind"], e["label"]))
        inflow = sum((e["amount"] for e in day_events if e["amount"] > 0), Decimal("0"))
        outflow = -sum((e["amount"] for e in day_events if e["amount"] < 0), Decimal("0"))
        everyday = (
            (daily_variable_spending * today_share).quantize(CENT)
            if offset == 0
            else daily_variable_spending
        )
        outflow += everyday
        balance = balance + inflow - outflow
        rows.append(
            {
                "date": day,
                "inflow": inflow,
                "outflow": outflow,
                "balance": balance,
                "events": day_events,
            }
        )
        if lowest is None or balance < lowest["amount"]:
            lowest = {"amount": balance, "date": day}
    return {
        "end_balance": balance,
        "lowest": lowest or {"amount": start_balance, "date": today},
        "rows": rows,
    }


def forecast_compute(
    *,
    today: date,
    start_balance: Decimal,
    events: list[dict],
    daily_variable_spending: Decimal,
    income_events: list[dict] | None = None,
    today_share: Decimal = Decimal("1"),
    days: int = 30,
) -> dict:
    """Day-by-day balance on both paths: obligations (and, on the first path, incomes) on their
    dates plus the usual everyday spending each day. The top-level rows are "income continues"."""
    income_events = list(income_events or [])
    common = {
        "today": today,
        "start_balance": start_balance,
        "daily_variable_spending": daily_variable_spending,
        "today_share": today_share,
        "days": days,
    }
    continues = _path(events=[*events, *income_events], **common)
    no_income = _path(events=events, **common)
    return {
        "days": days,
        "start_balance": start_balance,
        "end_balance": continues["end_balance"],
        "lowest": continues["lowest"],
        "daily_variable_spending": daily_variable_spending,
        "rows": continues["rows"],
        "paths": {
            "income_continues": {
                "end_balance": continues["end_balance"],
                "lowest": continues["lowest"],
                "incomes": len(income_events),
            },
            "no_income": {
                "end_balance": no_income["end_balance"],
                "lowest": no_income["lowest"],
                "rows": [
                    {"date": r["date"], "outflow": r["outflow"], "balance": r["balance"]}
                    for r in no_income["rows"]
                ],
            },
        },
        "assumptions": [
            "Starts from today's spendable balances (checking and card accounts); deposits and "
            "savings are not spent.",
            "Income continues: the main income streams still seen arrive on their expected "
            "dates at their typical amounts; a stream not seen for two cycles is dropped.",
            "No income: the same days with no income at all.",
            "Loan instalments follow the agreements' schedules (each part on its day); bills "
            "recur at their typical amounts.",
            f"Everyday spending of {daily_variable_spending} per day (today only the rest of "
            "the day): the usual everyday spending Save-to-Spend uses.",
            "Transfers between own accounts are ignored.",
        ],
    }
