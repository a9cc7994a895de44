"""Recurring detection on the sandbox's patterns: instalments on days 1-5, salary, bills."""

from datetime import date
from decimal import Decimal as D

from analytics.recurring import TxRecord, recurring_detect

LOAN = "Платеж по кредиту №agr-77"


def _instalments(months: list[tuple[int, int]], last_day: int = 5, amount="3000.00"):
    return [
        TxRecord(day=date(y, m, d), amount=-D(amount), description=LOAN, counterparty="VBank")
        for (y, m) in months
        for d in range(1, last_day + 1)
    ]


def _salary(amounts: list[str], day: int = 25):
    return [
        TxRecord(
            day=date(2026, month, day),
            amount=D(a),
            description="💼 Зарплата",
            counterparty="ООО Работодатель",
        )
        for month, a in enumerate(amounts, start=1)
    ]


def test_five_debits_on_days_1_to_5_are_one_monthly_instalment():
    txs = _instalments([(2026, m) for m in range(1, 7)])  # Jan..Jun, 5 x 3000 each
    [flow] = recurring_detect(transactions=txs, today=date(2026, 6, 10))
    assert flow.kind == "loan_instalment"
    assert flow.agreement_id == "agr-77"
    assert flow.cadence == "monthly"
    assert flow.occurrences == 6  # one per month, not 30
    assert flow.typical_amount == D("15000.00")  # 5 x 3000
    assert flow.typical_day == 1
    assert flow.next_expected_date == date(2026, 7, 1)
    assert flow.pending_amount == D("0")
    # due Jan 1 .. Jun 1 (Jun 1 + 5 days tolerance < Jun 10): all six paid on their day
    assert (flow.expected_count, flow.on_time_count) == (6, 6)


def test_instalment_in_progress_leaves_its_remaining_parts_on_their_days():
    # Jan..May complete, June only days 1-3 paid so far: 3 x 3000 = 9000 of 15000
    txs = _instalments([(2026, m) for m in range(1, 6)]) + _instalments([(2026, 6)], last_day=3)
    [flow] = recurring_detect(transactions=txs, today=date(2026, 6, 3))
    assert flow.typical_amount == D("15000.00")  # median over the complete months only
    assert flow.pending_amount == D("6000.00")  # 15000 - 9000
    assert flow.next_expected_date == date(2026, 7, 1)
    # 5 parts of 3000 a month, 3 paid (days 1-3): parts 4 and 5 on Jun 4 and Jun 5, then July's
    # five parts on days 1..5
    assert flow.parts == 5
    assert flow.events(start=date(2026, 6, 3), end=date(2026, 7, 5)) == [
        (date(2026, 6, 4), D("3000.00")),
        (date(2026, 6, 5), D("3000.00")),
    ] + [(date(2026, 7, d), D("3000.00")) for d in range(1, 6)]


def test_single_month_of_instalments_is_still_a_monthly_loan():
    txs = _instalments([(2026, 5)])
    [flow] = recurring_detect(transactions=txs, today=date(2026, 5, 20))
    assert (flow.cadence, flow.typical_amount, flow.next_expected_date) == (
        "monthly",
        D("15000.00"),
        date(2026, 6, 1),
    )


def test_salary_is_detected_with_median_amount_and_next_date():
    txs = _salary(["100000", "103000", "97000", "100000", "101000"])  # Jan..May on the 25th
    [flow] = recurring_detect(transactions=txs, today=date(2026, 6, 10))
    assert (flow.direction, flow.kind, flow.cadence) == ("income", "salary", "monthly")
    assert flow.typical_amount == D("100000.00")  # median of 97k, 100k, 100k, 101k, 103k
    assert flow.next_expected_date == date(2026, 6, 25)
    # intervals 31, 28, 31, 30 days all within 30 +- 5 -> regularity 1;
    # amounts: mean 100200, population std 1939.07 -> variation 0.0194, stability 1 - 0.0194/0.5
    # confidence = 0.4 x 1 + 0.3 x 0.9613 + 0.3 x min(1, 4/3) = 0.988 -> 0.99
    assert flow.confidence == 0.99


def test_missed_salary_rolls_to_the_next_cycle():
    txs = _salary(["100000", "100000", "100000"])  # Jan, Feb, Mar 25
    [flow] = recurring_detect(transactions=txs, today=date(2026, 5, 2))
    # Apr 25 passed without a salary: the next expectation is May 25
    assert flow.next_expected_date == date(2026, 5, 25)


def test_rent_varying_ten_percent_is_a_bill_and_shopping_is_not_recurring():
    rent = [
        TxRecord(day=date(2026, m, 10), amount=-D(a), description="🏠 ЖКХ/Аренда")
        for m, a in zip(range(1, 6), ["30000", "33000", "27000", "31000", "29500"], strict=True)
    ]
    visits = [(1, 3, "500"), (1, 19, "2500"), (2, 2, "900"), (3, 14, "4200"), (4, 8, "300")]
    shopping = [
        TxRecord(
            day=date(2026, m, d), amount=-D(a), description="🏪 Продукты", merchant_name="Пятёрочка"
        )
        for m, d, a in visits
    ]
    [flow] = recurring_detect(transactions=rent + shopping, today=date(2026, 6, 1))
    assert (flow.kind, flow.typical_amount, flow.next_expected_date) == (
        "bill",
        D("30000.00"),  # median of 27000, 29500, 30000, 31000, 33000
        date(2026, 6, 10),
    )


def test_two_irregular_outflows_are_not_recurring():
    txs = [
        TxRecord(day=date(2026, 1, 5), amount=-D("999"), description="Netflix"),
        TxRecord(day=date(2026, 2, 5), amount=-D("999"), description="Netflix"),
    ]
    # outflows need three occurrences
    assert recurring_detect(transactions=txs, today=date(2026, 3, 1)) == []
