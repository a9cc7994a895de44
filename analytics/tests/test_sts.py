"""Save-to-Spend, hand-computed: every term written out."""

from datetime import date
from decimal import Decimal as D

from analytics.sts import ExpectedIncome, Obligation, reserve_compute, sts_compute

TODAY = date(2026, 6, 10)
BALANCES = [{"account_id": 1, "bank_code": "vbank", "label": "Checking", "amount": D("50000.00")}]
LOAN_JUNE_15 = Obligation(
    day=date(2026, 6, 15), amount=D("15000.00"), label="Loan", source="agreement"
)
FLOOR_RESERVE = reserve_compute(essential_monthly=D("30000"), floor=D("5000.00"), share=D("0.10"))


def _salary(day: date) -> ExpectedIncome:
    return ExpectedIncome(day=day, amount=D("100000.00"), label="Salary", confidence=0.99)


def test_reserve_is_the_larger_of_floor_and_share():
    # 0.10 x 30000 = 3000 < 5000 floor
    assert (FLOOR_RESERVE["amount"], FLOOR_RESERVE["basis"]) == (D("5000.00"), "floor")
    # 0.10 x 80000 = 8000 > 5000 floor
    share = reserve_compute(essential_monthly=D("80000"), floor=D("5000.00"), share=D("0.10"))
    assert (share["amount"], share["basis"]) == (D("8000.00"), "share")


def test_income_after_loan_payment_subtracts_the_payment():
    result = sts_compute(
        today=TODAY,
        balances=BALANCES,
        obligations=[LOAN_JUNE_15],
        income=_salary(date(2026, 6, 25)),
        reserve=FLOOR_RESERVE,
        stale_hours=1,
    )
    # H = Jun 25 - Jun 10 = 15 days; path: 50000 until Jun 15, then 50000 - 15000 = 35000
    # low point 35000 on Jun 15; STS = 35000 - 5000 reserve = 30000; per day 30000 / 15 = 2000
    assert result["horizon_days"] == 15
    assert result["low_point"] == {"amount": D("35000.00"), "date": date(2026, 6, 15)}
    assert result["sts_period"] == D("30000.00")
    assert result["sts_daily"] == D("2000.00")
    assert result["status"] == "ok"
    assert result["obligations_total"] == D("15000.00")
    assert [o["date"] for o in result["obligations"]] == [date(2026, 6, 15)]
    # the salary is added on its date only: the last day of the path (not in the low point)
    last = result["path"][-1]
    assert (last["date"], last["outflow"], last["inflow"], last["balance"]) == (
        date(2026, 6, 25),
        D("0"),
        D("100000.00"),
        D("135000.00"),  # 35000 + 100000
    )
    assert result["confidence"]["level"] == "high"


def test_income_before_loan_payment_leaves_the_payment_to_the_next_period():
    result = sts_compute(
        today=TODAY,
        balances=BALANCES,
        obligations=[LOAN_JUNE_15],
        income=_salary(date(2026, 6, 12)),
        reserve=FLOOR_RESERVE,
        stale_hours=1,
    )
    # H = 2 days; the Jun 15 payment is after the income: not counted.
    # low point = today's 50000; STS = 50000 - 5000 = 45000; per day 45000 / 2 = 22500
    assert result["horizon_days"] == 2
    assert result["obligations"] == []
    assert result["low_point"] == {"amount": D("50000.00"), "date": TODAY}
    assert (result["sts_period"], result["sts_daily"]) == (D("45000.00"), D("22500.00"))


def test_negative_sts_reports_the_shortfall():
    result = sts_compute(
        today=TODAY,
        balances=[{**BALANCES[0], "amount": D("10000.00")}],
        obligations=[LOAN_JUNE_15],
        income=_salary(date(2026, 6, 25)),
        reserve=FLOOR_RESERVE,
        stale_hours=1,
    )
    # low = 10000 - 15000 = -5000 on Jun 15; low - reserve = -5000 - 5000 = -10000:
    # STS = max(0, -10000) = 0, the shortfall 10000 said apart; per day 0
    assert result["low_point"] == {"amount": D("-5000.00"), "date": date(2026, 6, 15)}
    assert result["sts_period"] == D("0")
    assert result["shortfall"] == D("10000.00")
    assert result["sts_daily"] == D("0.00")
    assert result["status"] == "shortfall"


def test_no_income_detected_uses_the_31_day_cap_and_says_so():
    reserve = reserve_compute(essential_monthly=D("80000"), floor=D("5000.00"), share=D("0.10"))
    bill = Obligation(day=date(2026, 6, 20), amount=D("8000.00"), label="Rent", source="recurring")
    late_bill = Obligation(
        day=date(2026, 7, 20), amount=D("8000.00"), label="Rent", source="recurring"
    )
    result = sts_compute(
        today=TODAY,
        balances=[{**BALANCES[0], "amount": D("40000.00")}],
        obligations=[bill, late_bill],
        income=None,
        reserve=reserve,
        stale_hours=1,
    )
    # H = 31 (cap): Jun 10 .. Jul 11; the Jul 20 bill is beyond it.
    # low = 40000 - 8000 = 32000; reserve = max(5000, 0.10 x 80000 = 8000) = 8000
    # STS = 32000 - 8000 = 24000; per day 24000 / 31 = 774.19 (rounded down)
    assert (result["horizon_days"], result["days_left"]) == (31, 31)
    assert result["income_detected"] is False
    assert result["next_income"] is None
    assert result["obligations_total"] == D("8000.00")
    assert result["sts_period"] == D("24000.00")
    assert result["sts_daily"] == D("774.19")
    assert result["status"] == "no_income"
    assert result["confidence"]["value"] == 0.5  # x 0.5 for no income
    assert "No main income" in result["explanation"]


def test_overdue_obligation_is_due_today_and_stale_data_lowers_confidence():
    overdue = Obligation(
        day=date(2026, 6, 1), amount=D("1000.00"), label="Loan", source="agreement"
    )
    result = sts_compute(
        today=TODAY,
        balances=BALANCES,
        obligations=[overdue],
        income=_salary(date(2026, 6, 25)),
        reserve=FLOOR_RESERVE,
        stale_hours=80,
    )
    # 50000 - 1000 today = 49000 low point; STS = 49000 - 5000 = 44000
    assert result["low_point"] == {"amount": D("49000.00"), "date": TODAY}
    assert result["sts_period"] == D("44000.00")
    assert result["confidence"]["value"] == 0.5  # data older than 3 days: x 0.5
    assert result["confidence"]["factors"] == [
        {"factor": "data_older_than_3_days", "multiplier": 0.5}
    ]
