"""A 30-day daily cash-flow forecast of the spendable balance, with its events and assumptions."""

from datetime import date, timedelta
from decimal import Decimal

CENT = Decimal("0.01")


def forecast_compute(
    *,
    today: date,
    start_balance: Decimal,
    events: list[dict],
    daily_variable_spending: Decimal,
    days: int = 30,
) -> dict:
    """Day-by-day balance: known events on their dates plus average everyday spending."""
    end = today + timedelta(days=days - 1)
    by_day: dict[date, list[dict]] = {}
    for event in events:
        day = max(event["date"], today)
        if day <= end:
            by_day.setdefault(day, []).append({**event, "date": day})
    balance = start_balance
    rows = []
    lowest = {"amount": start_balance, "date": today}
    for offset in range(days):
        day = today + timedelta(days=offset)
        day_events = sorted(by_day.get(day, []), key=lambda e: (e["kind"], e["label"]))
        inflow = sum((e["amount"] for e in day_events if e["amount"] > 0), Decimal("0"))
        outflow = -sum((e["amount"] for e in day_events if e["amount"] < 0), Decimal("0"))
        outflow += daily_variable_spending
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
        if balance < lowest["amount"]:
            lowest = {"amount": balance, "date": day}
    return {
        "days": days,
        "start_balance": start_balance,
        "end_balance": balance,
        "lowest": lowest,
        "daily_variable_spending": daily_variable_spending,
        "rows": rows,
        "assumptions": [
            "Starts from today's spendable balances (checking and card accounts).",
            "Recurring incomes and bills arrive on their expected dates at their typical amounts.",
            "Loan payments follow the agreements' next payment dates, then monthly.",
            f"Everyday spending of {daily_variable_spending} per day: the last 90 days' spending "
            "less recurring outflows, averaged.",
            "Transfers between own accounts are ignored.",
        ],
    }
