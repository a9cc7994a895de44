"""The money truth (`client_money_truth`) against figures worked out by hand in each test.

The expected values come from the persona's parameters (`live.persona_of`, the generator's model)
and from the rows the banks serve over HTTP, with the arithmetic written out here: annuity
payments and month-by-month amortisation, deposit interest, salary days, local months. Nothing
below re-uses money_truth's own helpers.
"""

import calendar
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from django.conf import settings

from sandbox import clock, live
from sandbox.money_truth import client_money_truth
from sandbox.tests.conftest import FROZEN_AT
from sandbox.tests.test_live_data import BANKS, Client, _when
from sandbox.volume import data_key

TODAY = date(2025, 11, 26)  # the frozen clock's day, in Moscow and in Novosibirsk alike
OWN_TRANSFER = "Перевод между своими счетами"
LOAN_PAYMENT = "Платеж по кредиту №"


def _persona(client_id: str):
    return live.persona_of(data_key(client_id, clock.state().anchor))


def _truth(client_id: str) -> dict:
    return client_money_truth(client_id, now=FROZEN_AT)


def _kopecks(text) -> int:
    return int(Decimal(str(text)) * 100)


def _rub(kopecks: int) -> str:
    return f"{Decimal(kopecks) / 100:.2f}"


def _annuity(principal: int, rate: float, months: int) -> int:
    """A = P·r / (1 − (1 + r)^−n), r = rate / 1200, rounded to the kopeck."""
    r = rate / 1200
    return round(principal * r / (1 - (1 + r) ** -months))


def _owed_after(principal: int, rate: float, months: int, payments: int) -> int:
    """Month by month: the balance grows by its month's interest (to the kopeck), less A."""
    payment = _annuity(principal, rate, months)
    balance = principal
    for _ in range(payments):
        balance = balance + round(balance * rate / 1200) - payment
    return balance


def _month_index(day) -> int:
    return day.year * 12 + day.month - 1


def _on(day: date, wanted: int) -> bool:
    """Day `wanted` of the month, or the month's last day when the month is shorter."""
    return day.day == min(wanted, calendar.monthrange(day.year, day.month)[1])


def _parts(instalment: int, parts: int) -> list[int]:
    """The instalment in `parts` equal debits; the first one carries the kopecks left over."""
    share = instalment // parts
    return [instalment - share * (parts - 1)] + [share] * (parts - 1)


def _local_day(tx, zone: str) -> date:
    return _when(tx).astimezone(ZoneInfo(zone)).date()


# --- loans ------------------------------------------------------------------------------------


def test_mortgage_outstanding_is_the_annuity_amortised_month_by_month():
    who = _persona("team260-1")
    (mortgage,) = who.loans
    assert (mortgage.rate, mortgage.term_months, mortgage.parts) == (9.3, 240, 2)
    # Payment k falls in month start + k; November's two parts (days 1, 2) are in by the 26th.
    made = _month_index(TODAY) - _month_index(mortgage.start)
    assert made == 40  # August 2022 … November 2025
    payment = _annuity(mortgage.principal, 9.3, 240)
    owed = _owed_after(mortgage.principal, 9.3, 240, made)
    assert 0 < mortgage.principal - owed < made * payment  # early on, mostly interest is paid
    (loan,) = _truth("team260-1")["loans"]
    assert loan["monthly_instalment"] == _rub(payment)
    assert loan["payments_made"] == made
    assert loan["outstanding"] == _rub(owed)
    assert loan["knowable_from_api"] is True
    assert loan["status"] == loan["bank_status"] == "active"
    assert _truth("team260-1")["debt_outstanding"] == _rub(owed)


def test_student_loan_outstanding_after_four_payments():
    who = _persona("team260-5")
    (loan,) = who.loans
    assert (loan.rate, loan.term_months, loan.parts) == (14.0, 18, 1)
    assert (loan.start.year, loan.start.month) == (2025, 7)
    made = 4  # August, September, October, November (day 1 each)
    payment = _annuity(loan.principal, 14.0, 18)
    truth = _truth("team260-5")
    (item,) = truth["loans"]
    assert item["monthly_instalment"] == _rub(payment)
    assert item["payments_made"] == made
    assert item["outstanding"] == _rub(_owed_after(loan.principal, 14.0, 18, made))
    assert item["knowable_from_api"] is False  # its account_number is the checking account
    assert "estimate" in item["basis"]
    (card,) = truth["credit_cards"]
    assert card["balance_knowable_from_api"] is False
    assert Decimal(card["used"]) < Decimal(card["limit"])


def test_scheduled_instalments_are_parts_on_days_1_to_parts_of_the_next_months():
    for client_id, parts in (("team260-1", 2), ("team260-10", 3)):
        (loan,) = _persona(client_id).loans
        assert loan.parts == parts
        amounts = _parts(_annuity(loan.principal, loan.rate, loan.term_months), parts)
        expected = [
            (date(year, month, day).isoformat(), _rub(amounts[day - 1]))
            for year, month in ((2025, 12), (2026, 1))
            for day in range(1, parts + 1)
        ]
        scheduled = [
            (event["date"], event["amount"])
            for event in _truth(client_id)["scheduled"]
            if event["kind"] == "loan_instalment" and event["reference"] == loan.agreement_id
        ]
        assert scheduled == expected, client_id
        assert sum(amounts) == _kopecks(_truth(client_id)["loans"][0]["monthly_instalment"])


def test_a_loan_repaid_early_owes_nothing_while_the_bank_still_says_active(bank):
    who = _persona("team260-8")
    repaid, closed = who.loans
    assert repaid.agreement_id == closed.agreement_id  # one id at two banks (SPEC §17)
    assert (repaid.bank, closed.bank) == ("vbank", "abank")
    # Repaid by one lump sum: what the amortisation still owed after the payments made by then.
    made = _month_index(repaid.repaid_on) - _month_index(repaid.start)
    if repaid.repaid_on.day <= repaid.parts:
        made -= 1  # that month's instalment was not yet debited
    lump = _owed_after(repaid.principal, repaid.rate, repaid.term_months, made)
    client = Client(bank, "team260-8")
    debits = [tx for tx in client.rows("vbank")
              if tx["transactionInformation"] == LOAN_PAYMENT + repaid.agreement_id]  # fmt: skip
    on_the_day = [tx for tx in debits if _when(tx).date() == repaid.repaid_on]
    assert [tx["amount"]["amount"] for tx in on_the_day] == [_rub(lump)]
    assert all(_when(tx).date() <= repaid.repaid_on for tx in debits)  # nothing after it
    served = {a["agreement_id"]: a for a in client.agreements("vbank")}
    assert served[repaid.agreement_id]["status"] == "active"  # the bank still says so

    truth = _truth("team260-8")
    vbank, abank = truth["loans"]
    assert (vbank["bank"], vbank["outstanding"], vbank["status"]) == ("vbank", "0.00", "repaid")
    assert vbank["bank_status"] == "active"
    assert vbank["repaid_on"] == vbank["last_payment_date"] == repaid.repaid_on.isoformat()
    assert vbank["payments_made"] == made
    # The old ABank loan ran its 12 months out in 2024, before the served history begins.
    assert (abank["bank"], abank["bank_status"], abank["status"]) == ("abank", "closed", "repaid")
    assert abank["payments_made"] == closed.term_months == 12
    assert abank["outstanding"] == "0.00"
    assert abank["last_payment_date"] is None  # no ABank row pays it
    assert truth["debt_outstanding"] == "0.00"
    assert not [e for e in truth["scheduled"] if e["kind"] == "loan_instalment"]


# --- savings ----------------------------------------------------------------------------------


def test_deposit_interest_and_savings_are_each_deposit_once(bank):
    who = _persona("team260-3")
    assert len(who.deposits) == 10
    truth = _truth("team260-3")
    savings = {item["agreement_id"]: item for item in truth["savings"]}
    assert len(savings) == len(truth["savings"]) == 10  # each deposit once
    total = 0
    for deposit in who.deposits:
        interest = round(deposit.amount * deposit.rate / 1200)  # amount × rate / 1200 a month
        item = savings[deposit.agreement_id]
        assert item["amount"] == _rub(deposit.amount)
        assert item["monthly_interest"] == _rub(interest)
        total += deposit.amount
    assert truth["savings_total"] == _rub(total)
    # The deposits the banks serve are those very ones, their sums those very sums.
    client = Client(bank, "team260-3")
    served = [
        a for code in BANKS for a in client.agreements(code) if a["product_type"] == "deposit"
    ]
    assert sorted(a["agreement_id"] for a in served) == sorted(savings)
    assert sum(_kopecks(a["amount"]) for a in served) == total
    # Served interest credits carry the hand-computed monthly interest.
    by_id = {d.agreement_id: d for d in who.deposits}
    credits = [tx for code in BANKS for tx in client.rows(code)
               if tx["transactionInformation"].startswith("Проценты по депозиту №")]  # fmt: skip
    assert len(credits) > 30
    for tx in credits:
        deposit = by_id[tx["transactionInformation"].removeprefix("Проценты по депозиту №")]
        assert _kopecks(tx["amount"]["amount"]) == round(deposit.amount * deposit.rate / 1200)
    # Scheduled: each deposit's interest day in the next 60 days (today's came at night, before
    # the clock's noon).
    expected = sorted(
        (day.isoformat(), d.agreement_id, _rub(round(d.amount * d.rate / 1200)))
        for d in who.deposits
        for day in (TODAY + timedelta(days=n) for n in range(1, 60))
        if _on(day, d.interest_day) and day > d.start.date() + timedelta(days=20)
    )
    scheduled = sorted(
        (e["date"], e["reference"], e["amount"])
        for e in truth["scheduled"]
        if e["kind"] == "interest"
    )
    assert scheduled == expected
    assert {agreement_id for _day, agreement_id, _amount in expected} == set(savings)


# --- income -----------------------------------------------------------------------------------


def _next_salary_day(days: tuple[int, ...], arrived_today: bool) -> date:
    day = TODAY if not arrived_today else TODAY + timedelta(days=1)
    while not any(_on(day, wanted) for wanted in days):
        day += timedelta(days=1)
    return day


def test_next_main_income_and_horizon_from_the_salary_days(bank):
    for client_id, arrived, expected in (
        ("team260-1", False, date(2025, 12, 3)),  # salary days 3, 18
        ("team260-3", True, date(2025, 12, 11)),  # 11, 26: the 26th's came this morning
        ("team260-8", False, date(2025, 12, 9)),  # 9, 24
    ):
        who = _persona(client_id)
        (salary,) = who.incomes
        client = Client(bank, client_id)
        today_rows = [tx for tx in client.rows(salary.bank)
                      if tx["transactionInformation"] == "Доход"
                      and _local_day(tx, who.timezone) == TODAY]  # fmt: skip
        assert bool(today_rows) is arrived, client_id
        next_main = _next_salary_day(salary.days, arrived_today=arrived)
        assert next_main == expected, (client_id, salary.days)
        truth = _truth(client_id)
        assert truth["horizon"] == {"start": TODAY.isoformat(), "days": (next_main - TODAY).days,
                                    "next_main_income": next_main.isoformat()}  # fmt: skip
        following = [next_main]
        while len(following) < 3:
            day = following[-1] + timedelta(days=1)
            while not any(_on(day, wanted) for wanted in salary.days):
                day += timedelta(days=1)
            following.append(day)
        (stream,) = truth["income_streams"]
        assert stream["next_dates"] == [d.isoformat() for d in following]
        assert stream["cadence"] == {"days_of_month": list(salary.days)}


def test_irregular_income_is_next_expected_within_its_gap_of_the_last_one(bank):
    for client_id in ("team260-2", "team260-5"):
        who = _persona(client_id)
        (income,) = who.incomes
        low, high = income.gap  # every 1–6 days (sole trader), 4–16 (student's odd jobs)
        client = Client(bank, client_id)
        arrived = sorted(_local_day(tx, who.timezone) for tx in client.rows(income.bank)
                         if tx["transactionInformation"] == income.description)  # fmt: skip
        truth = _truth(client_id)
        next_main = date.fromisoformat(truth["horizon"]["next_main_income"])
        assert next_main >= TODAY
        assert low <= (next_main - arrived[-1]).days <= high, client_id
        assert truth["horizon"]["days"] == max(1, (next_main - TODAY).days)
        (stream,) = truth["income_streams"]
        dates = [date.fromisoformat(d) for d in stream["next_dates"]]
        assert dates[0] == next_main
        assert all(low <= (b - a).days <= high for a, b in pairwise(dates))
        assert stream["cadence"] == {"every_days": [low, high]}


def test_monthly_income_and_spending_are_the_served_rows_in_local_months(bank):
    for client_id, income in (("team260-1", "Доход"), ("team260-2", "Доход от бизнеса")):
        who = _persona(client_id)
        client = Client(bank, client_id)
        sums = defaultdict(lambda: defaultdict(int))
        for tx in client.all_rows():
            month = f"{_local_day(tx, who.timezone):%Y-%m}"
            amount = _kopecks(tx["amount"]["amount"])
            info = tx["transactionInformation"]
            if info == OWN_TRANSFER:
                continue
            if tx["creditDebitIndicator"] == "Credit":
                sums[month]["income"] += amount
                if info == income:
                    sums[month]["main_income"] += amount
            else:
                sums[month]["spending"] += amount
                if info.startswith(LOAN_PAYMENT):
                    sums[month]["instalments"] += amount
        monthly = _truth(client_id)["monthly"]
        complete = [month for month, figures in monthly.items() if figures["complete"]]
        assert len(complete) == 11  # December 2024 … October 2025
        for month in complete:
            figures = monthly[month]
            assert figures["main_income"] == _rub(sums[month]["main_income"]), (client_id, month)
            assert figures["income"] == _rub(sums[month]["income"]), (client_id, month)
            assert figures["spending"] == _rub(sums[month]["spending"]), (client_id, month)
            assert figures.get("spending_loan_instalment", "0.00") == _rub(
                sums[month]["instalments"]
            )


# --- the low point and safe-to-spend ----------------------------------------------------------


def _obligations_and_interest(who, client: Client, last: date) -> tuple[int, int]:
    """Loan parts and bills that surely fall in the horizon (today up to `last`, local days), not
    yet served, and the deposit interest that may fall in it, from the persona's schedule.

    The schedule is in UTC days. Instalments are debited in the UTC morning, on the same local
    day; a card-paid bill comes in the UTC afternoon or evening, on local day d or d + 1 (both
    zones are ahead of UTC), so only bills with d + 1 < `last` are sure to be due before the
    next main income. Interest comes at night, on its own local day."""
    served_today = {(tx["transactionInformation"], _kopecks(tx["amount"]["amount"]))
                    for tx in client.all_rows() if _when(tx).date() == TODAY}  # fmt: skip
    owed = interest = 0
    day = TODAY
    while day < last:
        for loan in who.loans:
            number = _month_index(day) - _month_index(loan.start)
            active = loan.status == "active" and loan.repaid_on is None
            if active and 1 <= number <= loan.term_months and day.day <= loan.parts:
                amount = _parts(_annuity(loan.principal, loan.rate, loan.term_months), loan.parts)
                part = amount[day.day - 1]
                due = day != TODAY or (LOAN_PAYMENT + loan.agreement_id, part) not in served_today
                if due:
                    owed += part
        for bill in who.bills:
            due = day != TODAY or not any(a == bill.amount for _info, a in served_today)
            if _on(day, bill.day) and due and day + timedelta(days=1) < last:
                owed += bill.amount
        for deposit in who.deposits:
            if day != TODAY and _on(day, deposit.interest_day):
                interest += round(deposit.amount * deposit.rate / 1200)
        day += timedelta(days=1)
    return owed, interest


def test_low_point_is_below_spendable_minus_obligations_and_safe_to_spend_keeps_the_reserve(bank):
    for number in (1, 2, 3, 5, 7, 8, 10):
        client_id = f"team260-{number}"
        who = _persona(client_id)
        client = Client(bank, client_id)
        truth = _truth(client_id)
        balances = {f"{code}:{a['accountId']}": client.balance(code, a["accountId"])
                    for code in BANKS for a in client.accounts(code)
                    if a["accountSubType"] == "Checking"}  # fmt: skip
        assert truth["spendable_balances"] == {k: f"{v:.2f}" for k, v in balances.items()}
        spendable = _kopecks(sum(balances.values()))
        assert truth["spendable_balance"] == _rub(spendable)
        horizon_end = date.fromisoformat(truth["horizon"]["next_main_income"])
        owed, interest = _obligations_and_interest(who, client, horizon_end)
        low = _kopecks(truth["low_point"]["amount"])
        assert low <= spendable - owed + interest, client_id
        assert TODAY <= date.fromisoformat(truth["low_point"]["date"]) < horizon_end
        reserve = Decimal(truth["reserve"]["amount"])
        safe = max(Decimal(0), Decimal(low) / 100 - reserve)
        assert truth["safe_to_spend"]["period"] == f"{safe:.2f}"
        per_day = (safe / truth["horizon"]["days"]).quantize(Decimal("0.01"))
        assert truth["safe_to_spend"]["per_day"] == f"{per_day:.2f}"


def _mean(low: int, high: int) -> float:
    return (low + high - 1) / 2  # randrange(low, high): low … high − 1


def test_low_point_of_a_client_without_obligations_is_spendable_less_usual_spending(bank):
    who = _persona("team260-8")  # loan repaid, bills on the 14th, own transfer on the 2nd
    truth = _truth("team260-8")
    days = truth["horizon"]["days"]
    assert days == 13  # 26 November … 8 December
    assert all(bill.day == 14 for bill in who.bills) and not who.deposits
    # Usual daily spending: purchases a day × the mix's mean purchase, plus the weekly dinner.
    daily = 0.0
    for spending in who.spending:
        daily += spending.per_day * sum(
            share * _mean(low, high) for _kind, share, low, high in spending.mix
        )
        if spending.weekly is not None:
            daily += _mean(spending.weekly[2], spending.weekly[3]) / 7
    daily = round(daily)
    assert truth["usual_daily_spending"] == _rub(daily)
    client = Client(bank, "team260-8")
    spendable = sum(_kopecks(client.balance(code, client.checking(code)["accountId"]))
                    for code in who.banks)  # fmt: skip
    # Noon UTC is 15:00 in Moscow: 9 of the day's 24 hours are still to be spent.
    low = spendable - round(daily * 9 / 24) - daily * (days - 1)
    assert truth["low_point"] == {"amount": _rub(low), "date": "2025-12-08"}
    # Reserve: max(floor, share × monthly essentials: groceries, pharmacy, transport, bills).
    essential = sum(
        spending.per_day * share * _mean(low_, high) * 30.4375
        for spending in who.spending
        for kind, share, low_, high in spending.mix
        if kind in ("grocery", "pharmacy", "transport")
    ) + sum(bill.amount for bill in who.bills if bill.kind in ("utilities", "telecom", "rent"))
    share = Decimal(settings.STS_RESERVE_SHARE) * Decimal(round(essential)) / 100
    reserve = max(Decimal(settings.STS_RESERVE_FLOOR), share.quantize(Decimal("0.01")))
    assert truth["reserve"]["amount"] == f"{reserve:.2f}"
    safe = max(Decimal(0), Decimal(low) / 100 - reserve)
    assert truth["safe_to_spend"]["period"] == f"{safe:.2f}"
    assert truth["safe_to_spend"]["per_day"] == f"{(safe / days).quantize(Decimal('0.01')):.2f}"
