"""Live-style figures: main income (semimonthly, irregular business), obligations in parts, the
one next payment, everyday spending, stale data, savings, the two forecast paths, debt load; and
sandbox clients 1, 2 and 6 end to end against the sandbox's own money truth."""

from datetime import date, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from analytics.compute import (
    _main_income,
    everyday_spending_estimate,
    next_payment_build,
    obligations_build,
    savings_build,
)
from analytics.forecast import forecast_compute
from analytics.health import indicator_debt_load
from analytics.recurring import TxRecord, recurring_detect
from analytics.sts import Obligation, reserve_compute, sts_compute

TODAY = date(2026, 12, 1)
RESERVE = reserve_compute(essential_monthly=D("0"), floor=D("5000.00"), share=D("0.10"))
BALANCE = [{"account_id": 1, "bank_code": "vbank", "label": "Checking", "amount": D("100000.00")}]


def _credit(day, amount, description="Доход", merchant=""):
    return TxRecord(day=day, amount=D(amount), description=description, merchant_name=merchant)


# --- Income -----------------------------------------------------------------------------------


def test_salary_on_the_3rd_and_18th_is_semimonthly_and_next_is_the_3rd():
    txs = []
    for month in range(6, 12):
        txs += [_credit(date(2026, month, 3), "76000"), _credit(date(2026, month, 18), "77000")]
    [flow] = recurring_detect(transactions=txs, today=TODAY)
    # intervals 15/16 days would be "every 14 days" -> Dec 2; the days of the month say Dec 3
    assert (flow.cadence, flow.month_days, flow.kind) == ("semimonthly", (3, 18), "salary")
    assert flow.next_expected_date == date(2026, 12, 3)
    assert flow.is_main_income


def test_business_receipts_every_few_days_are_an_irregular_main_income():
    # receipts on Nov 1, 3, 4, 8, 10, 15, 16, 19, 23, 25, 28 with amounts 4000..38000
    days = [1, 3, 4, 8, 10, 15, 16, 19, 23, 25, 28]
    amounts = ["4000", "38000", "12000", "9000", "21000", "30000", "5000", "17000", "8000", "26000",
               "15000"]  # fmt: skip
    pairs = zip(days, amounts, strict=True)
    txs = [_credit(date(2026, 11, d), a, "Доход от бизнеса") for d, a in pairs]
    [flow] = recurring_detect(transactions=txs, today=TODAY)
    # gaps 2,1,4,2,5,1,3,4,2,3 -> median 2.5 -> round 2; next = Nov 28 + 2 = Nov 30 < today,
    # so the next cycle: Dec 2. typical = median of the 11 amounts = 15000
    assert (flow.cadence, flow.kind, flow.cadence_days) == ("irregular", "business", 2)
    assert flow.typical_amount == D("15000.00")
    assert flow.next_expected_date == date(2026, 12, 2)
    # STS counts on it from last + the upper quartile of the gaps at least as long as the 3 days
    # waited (Nov 28 -> Dec 1): 4, 5, 3, 4, 3 -> Q3 = 4.5 -> 5 days -> Dec 3
    assert flow.reliable_date == date(2026, 12, 3)
    assert flow.is_main_income
    # The day after the last receipt no gap is ruled out: Q3 of all ten gaps = 4 -> Dec 2
    [next_day] = recurring_detect(transactions=txs, today=date(2026, 11, 29))
    assert next_day.reliable_date == date(2026, 12, 2)


def test_a_pension_due_today_and_not_in_yet_is_expected_today():
    # paid on the 5th; today is Dec 5 and the December pension has not been booked yet
    today = date(2026, 12, 5)
    txs = [_credit(date(2026, month, 5), "24000", "Пенсия") for month in range(6, 12)]
    flows = recurring_detect(transactions=txs, today=today)
    income, reasons, _ = _main_income(flows=flows, today=today, newest_row_day=date(2026, 12, 4))
    assert (income.day, reasons) == (today, [])
    result = sts_compute(
        today=today, balances=BALANCE, obligations=[], income=income, reserve=RESERVE,
        stale_hours=1, reasons=reasons,
    )  # fmt: skip
    # the horizon is today alone: at least one day, up to (not including) tomorrow
    assert (result["horizon_days"], result["next_income"]["date"]) == (1, today)
    assert result["horizon_end"] == today + timedelta(days=1)
    # once it is in, the next one is January's
    txs.append(_credit(today, "24000", "Пенсия"))
    flows = recurring_detect(transactions=txs, today=today)
    income, _, _ = _main_income(flows=flows, today=today, newest_row_day=today)
    assert income.day == date(2027, 1, 5)


def test_deposit_interest_and_refunds_are_never_main_income():
    txs = []
    for month in range(6, 12):
        txs.append(_credit(date(2026, month, 9), "1125.00", "Проценты по депозиту №dep-1"))
        txs.append(_credit(date(2026, month, 12), "990.00", "OZON - Москва", merchant="OZON"))
    flows = recurring_detect(transactions=txs, today=TODAY)
    assert sorted(f.kind for f in flows) == ["interest", "refund"]
    income, _reasons, main = _main_income(flows=flows, today=TODAY, newest_row_day=TODAY)
    assert (income, main) == (None, [])


def test_overdue_salary_means_no_income_until_it_arrives():
    # paid on the 9th and 24th until Nov 9; Nov 24 + 3 days' grace = Nov 27 < Dec 1: overdue
    txs = []
    for month in range(6, 11):
        txs += [_credit(date(2026, month, 9), "78000"), _credit(date(2026, month, 24), "78000")]
    txs.append(_credit(date(2026, 11, 9), "78000"))
    flows = recurring_detect(transactions=txs, today=TODAY)
    income, reasons, _ = _main_income(flows=flows, today=TODAY, newest_row_day=date(2026, 11, 15))
    assert income is None
    # the newest row is 16 days old, within the salary's usual gap 15 + 3 days' grace: only
    # the overdue salary is the reason
    assert [r["code"] for r in reasons] == ["income_overdue"]
    _, later, _ = _main_income(flows=flows, today=TODAY, newest_row_day=date(2026, 11, 10))
    assert [r["code"] for r in later] == ["income_overdue", "no_recent_rows"]  # 21 days > 18
    result = sts_compute(
        today=TODAY, balances=BALANCE, obligations=[], income=income, reserve=RESERVE,
        stale_hours=1, reasons=reasons,
    )  # fmt: skip
    assert result["horizon_days"] == 31
    assert result["status"] == "no_income"
    assert result["confidence"]["level"] != "high"
    assert "has not arrived" in result["explanation"]


# --- STS with everyday spending ---------------------------------------------------------------


def test_sts_subtracts_obligations_and_everyday_spending_each_day():
    loan = [
        Obligation(day=date(2026, 12, 2), amount=D("10000.00"), label="Loan", source="agreement",
                   reference="L1"),
        Obligation(day=date(2026, 12, 3), amount=D("10000.00"), label="Loan", source="agreement",
                   reference="L1"),
    ]  # fmt: skip
    result = sts_compute(
        today=TODAY,
        balances=BALANCE,
        obligations=loan,
        income=SimpleNamespace(
            day=date(2026, 12, 5), amount=D("50000"), label="Доход", confidence=0.99, cadence=""
        ),
        reserve=RESERVE,
        stale_hours=1,
        everyday={"daily": D("1000.00"), "today_share": 0.5, "basis": "test"},
    )
    # H = Dec 5 - Dec 1 = 4 days (Dec 1..4). End of day:
    # Dec 1: 100000 - 500 (half of today's 1000) = 99500
    # Dec 2: 99500 - 10000 - 1000 = 88500; Dec 3: 88500 - 10000 - 1000 = 77500
    # Dec 4: 77500 - 1000 = 76500 -> low point 76500 on Dec 4
    # STS = 76500 - 5000 = 71500; per day 71500 / 4 = 17875
    assert result["horizon_days"] == 4
    assert result["low_point"] == {"amount": D("76500.00"), "date": date(2026, 12, 4)}
    assert (result["sts_period"], result["sts_daily"]) == (D("71500.00"), D("17875.00"))
    # never above balance - obligations - reserve = 100000 - 20000 - 5000
    assert result["sts_period"] <= D("75000.00")


def test_an_overdue_obligation_counts_once_today():
    missed = [
        Obligation(day=date(2026, 10, 1), amount=D("7000.00"), label="L", source="history",
                   reference="L"),
        Obligation(day=date(2026, 11, 1), amount=D("7000.00"), label="L", source="history",
                   reference="L"),
    ]  # fmt: skip
    result = sts_compute(
        today=TODAY, balances=BALANCE, obligations=missed, income=None, reserve=RESERVE,
        stale_hours=1,
    )  # fmt: skip
    assert result["obligations_total"] == D("7000.00")
    assert result["low_point"]["amount"] == D("93000.00")


# --- Obligations and the next payment ---------------------------------------------------------


def _loan(**extra):
    fields = {
        "id": 7, "product_type": "loan", "agreement_id": "loan-1", "product_name": "Ипотека",
        "bank_code": "vbank", "payment_schedule": [], "next_payment_date": None,
        "next_payment_amount": None, "monthly_payment": None, "next_payment_source": "history",
    }  # fmt: skip
    return SimpleNamespace(**{**fields, **extra})


def _instalment_history(last_month_parts: int) -> list[TxRecord]:
    txs = []
    part, text = D("-20909.75"), "Платеж по кредиту №loan-1"
    for month in range(6, 12):
        for day in (1, 2):
            txs.append(TxRecord(date(2026, month, day), part, text))
    for day in range(1, last_month_parts + 1):
        txs.append(TxRecord(date(2026, 12, day), part, text))
    return txs


def test_parts_in_progress_come_before_a_schedule_that_starts_next_month():
    flows = recurring_detect(transactions=_instalment_history(1), today=TODAY)
    loan = _loan(payment_schedule=[{"date": "2027-01-01", "amount": "20909.75"},
                                   {"date": "2027-01-02", "amount": "20909.75"}])  # fmt: skip
    result, _excluded = obligations_build(
        today=TODAY, end=TODAY + timedelta(days=60), agreements=[loan], outflow_flows=flows
    )
    # Dec 1 part paid; Dec 2's part from the history, then the schedule's two January parts
    assert [(o.day, o.amount, o.source) for o in result] == [
        (date(2026, 12, 2), D("20909.75"), "history"),
        (date(2027, 1, 1), D("20909.75"), "agreement"),
        (date(2027, 1, 2), D("20909.75"), "agreement"),
    ]
    payment = next_payment_build(today=TODAY, obligations=result)
    assert (payment["date"], payment["amount"], payment["due_in_7_days"]) == (
        date(2026, 12, 2),
        D("20909.75"),
        D("20909.75"),
    )
    assert payment["items"][0]["debt_id"] == 7
    # a schedule that already holds Dec 2 is not doubled
    loan.payment_schedule = [{"date": "2026-12-02", "amount": "20909.75"}]
    result, _ = obligations_build(
        today=TODAY, end=TODAY + timedelta(days=60), agreements=[loan], outflow_flows=flows
    )
    assert [(o.day, o.amount) for o in result] == [(date(2026, 12, 2), D("20909.75"))]


def test_a_stopped_or_repaid_loan_is_no_obligation_but_is_listed():
    loan = _loan(payment_status="repaid", payment_status_note="repaid early",
                 payment_schedule=[{"date": "2026-11-01", "amount": "90776.19"}])  # fmt: skip
    result, excluded = obligations_build(
        today=TODAY, end=TODAY + timedelta(days=60), agreements=[loan], outflow_flows=[]
    )
    assert result == []
    assert excluded[0]["payment_status"] == "repaid"


def test_next_payment_sums_everything_due_that_day_and_the_week():
    items = [
        Obligation(date(2026, 12, 2), D("7426.21"), "A", "agreement", kind="loan_instalment"),
        Obligation(date(2026, 12, 2), D("12206.67"), "S", "history", kind="loan_instalment"),
        Obligation(date(2026, 12, 3), D("7426.21"), "A", "agreement", kind="loan_instalment"),
        Obligation(date(2026, 12, 15), D("32120.00"), "Rent", "recurring", kind="bill"),
    ]
    payment = next_payment_build(today=TODAY, obligations=items)
    # Dec 2: 7426.21 + 12206.67 = 19632.88; Dec 1..7: + 7426.21 = 27059.09
    assert (payment["date"], payment["amount"]) == (date(2026, 12, 2), D("19632.88"))
    assert payment["due_in_7_days"] == D("27059.09")
    assert len(payment["items"]) == 2


def test_a_marketplace_bought_at_monthly_is_no_bill_but_telecom_is():
    txs = []
    for month in range(6, 12):
        txs.append(TxRecord(date(2026, month, 6), D("-810.00"), "Билайн - Москва", "", "Билайн"))
        amount = D(["4200", "5600", "4900", "6100", "5300", "4700"][month - 6])
        txs.append(TxRecord(date(2026, month, 2), -amount, "Wildberries - Москва", "", "WB"))
    flows = recurring_detect(transactions=txs, today=TODAY)
    assert [(f.label, f.typical_amount) for f in flows] == [("Билайн - Москва", D("810.00"))]


# --- Everyday spending, savings, forecast, debt load ------------------------------------------


def test_everyday_spending_leaves_out_partial_months_bills_and_travel():
    txs = []
    # history starts Aug 20 (partial August), full Sep..Nov
    for day in range(20, 32):
        txs.append(TxRecord(date(2026, 8, day), D("-5000"), "Пятёрочка", "", "Пятёрочка"))
    for month, per_day in ((9, "1000"), (10, "1200"), (11, "1100")):
        first = date(2026, month, 1)
        for offset in range(31):
            day = first + timedelta(days=offset)
            if day.month == month:
                txs.append(TxRecord(day, -D(per_day), "Пятёрочка", "", "Пятёрочка"))
        txs.append(TxRecord(date(2026, month, 10), D("-90000"), "Путешествия"))
    result = everyday_spending_estimate(
        records=txs,
        recurring_names={},
        today=TODAY,
        first_complete=date(2026, 9, 1),
        first_day=date(2026, 8, 20),
    )
    # Sep 1000/day, Oct 1200/day, Nov 1100/day (travel left out, August partial):
    # the cautious figure is the highest, 1200; the median 1100 is stated too
    assert (result["daily"], result["median_daily"]) == (D("1200.00"), D("1100.00"))
    assert [m["month"] for m in result["months"]] == [date(2026, m, 1) for m in (9, 10, 11)]


def test_deposits_are_savings_once_and_never_spendable():
    deposit_account = SimpleNamespace(
        id=5, account_type="deposit", current_balance=D("150000.00"), currency="RUB",
        bank_code="abank", nickname="", masked_number="", opening_date=None,
    )  # fmt: skip
    deposits = [
        SimpleNamespace(
            bank_code="abank", agreement_id="dep-1", product_name="Вклад", principal=D("150000"),
            interest_rate=D("9"), start_date=None, linked_account=deposit_account,
            linked_account_id=5,
        ),
        SimpleNamespace(
            bank_code="vbank", agreement_id="dep-2", product_name="Вклад", principal=D("710000"),
            interest_rate=D("8.5"), start_date=None, linked_account=None, linked_account_id=None,
        ),
    ]  # fmt: skip
    savings = savings_build(accounts=[deposit_account], deposits=deposits)
    # 150000 (its account is the same money) + 710000
    assert savings["total"] == D("860000.00")
    assert len(savings["items"]) == 2


def test_forecast_shows_income_and_no_income_paths():
    forecast = forecast_compute(
        today=TODAY,
        start_balance=D("10000"),
        events=[{"date": date(2026, 12, 2), "amount": D("-3000"), "kind": "obligation",
                 "label": "Loan"}],
        income_events=[{"date": date(2026, 12, 5), "amount": D("20000"), "kind": "income",
                        "label": "Доход"}],
        daily_variable_spending=D("500"),
    )  # fmt: skip
    # no income: 10000 - 3000 - 30 x 500 = -8000 at the end, the lowest
    assert forecast["paths"]["no_income"]["lowest"]["amount"] == D("-8000")
    # income continues: lowest before the income, Dec 4: 10000 - 3000 - 4 x 500 = 5000
    assert forecast["paths"]["income_continues"]["lowest"] == {
        "amount": D("5000"),
        "date": date(2026, 12, 4),
    }


def test_debt_load_weighs_debt_against_income_and_liquid_assets():
    # (4243896.65 - 741193.42) / (12 x 160000) = 1.824 years -> tier < 2 -> 25
    item = indicator_debt_load(
        total_debt=D("4243896.65"), annual_income=D("1920000"), liquid_assets=D("741193.42")
    )
    assert (item["value"], item["score"]) == (D("1.8243"), 25)
    covered = indicator_debt_load(
        total_debt=D("100000"), annual_income=D("0"), liquid_assets=D("710000")
    )
    assert covered["score"] == 100


# --- Sandbox clients end to end ---------------------------------------------------------------


def _sandbox_snapshot(make_user, number: int):
    from analytics import services
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sandbox.money_truth import client_money_truth
    from sync.models import SyncRun, SyncTrigger
    from sync.services import sync_run_execute

    client_id = f"team260-{number}"
    truth = client_money_truth(client_id)
    # That sandbox client at every bank (another test user holding it gives it up).
    user = make_user(email=f"live{number}@example.com", client_id=client_id)
    user.time_zone = truth["timezone"]  # the persona's zone: local days as the truth's
    user.save(update_fields=["time_zone"])
    for bank in truth["banks"]:
        for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
            consent = consent_services.consent_ensure(user=user, bank_code=bank, kind=kind)
            if consent.status == ConsentStatus.PENDING:
                consent_services.consent_approve_demo(consent=consent)
        connection = connection_get_or_create(user=user, bank_code=bank)
        run = SyncRun.objects.create(
            connection=connection, user_id=user.id, trigger=SyncTrigger.USER
        )
        sync_run_execute(sync_run_id=run.pk)
    snapshot = services.analytics_recompute(user=user)
    return user, truth, snapshot


def _truth_obligations(truth) -> list[dict]:
    return [
        e
        for e in truth["scheduled"]
        if e["kind"] in ("loan_instalment", "bill") and e["direction"] == "out"
    ]


@pytest.mark.django_db(transaction=True)
def test_sandbox_pensioner_horizon_runs_to_the_pension_day(sandbox_banks, make_user):
    _user, truth, snapshot = _sandbox_snapshot(make_user, 6)
    sts = snapshot.breakdown["sts"]
    today = date.fromisoformat(truth["today"])
    pension = next(s for s in truth["income_streams"] if s["kind"] == "pension")
    # The pension comes on a fixed day (persona: days_of_month [5]); horizon = days to it.
    pension_day = date.fromisoformat(pension["next_dates"][0])
    assert sts["horizon_days"] == max(1, (pension_day - today).days)
    assert sts["next_income"]["date"] == pension_day.isoformat()
    # No loans: STS ≤ truth's safe_to_spend (+0.01) and within 10 % of it.
    safe = D(truth["safe_to_spend"]["period"])
    assert snapshot.sts_amount <= safe + D("0.01")
    assert snapshot.sts_amount >= safe * D("0.9")
    # The deposit is savings at its invested sum, never spendable.
    assert D(snapshot.breakdown["savings"]["total"]) == D(truth["savings_total"])
    assert D(sts["spendable_balance"]) == D(truth["spendable_balance"])


@pytest.mark.django_db(transaction=True)
def test_sandbox_sole_trader_next_income_from_the_gaps(sandbox_banks, make_user):
    _user, truth, snapshot = _sandbox_snapshot(make_user, 2)
    sts = snapshot.breakdown["sts"]
    today = date.fromisoformat(truth["today"])
    stream = next(s for s in snapshot.breakdown["recurring"] if s["kind"] == "business")
    assert stream["cadence"] == "irregular"
    # Persona: receipts every 1..6 days -> the median gap is 2..4 days, the next receipt within
    # 1..6 days of the last; the horizon is short (truth's next receipt is days away), not 31.
    assert 1 <= stream["cadence_days"] <= 6
    assert 1 <= sts["horizon_days"] <= 6
    assert sts["horizon_days"] >= truth["horizon"]["days"] - 1
    # Irregular income: STS never above the safe amount and within 40 %.
    safe = D(truth["safe_to_spend"]["period"])
    assert snapshot.sts_amount <= safe + D("0.01")
    assert snapshot.sts_amount >= safe * D("0.6")
    # Truth's first obligation day: both loans' parts (served ABank + SBank from history).
    obligations = _truth_obligations(truth)
    first = min(e["date"] for e in obligations)
    due = sum(D(e["amount"]) for e in obligations if e["date"] == first)
    payment = snapshot.breakdown["next_payment"]
    assert (payment["date"], D(payment["amount"])) == (first, due)
    assert date.fromisoformat(first) >= today


@pytest.mark.django_db(transaction=True)
def test_sandbox_mortgage_parts_before_the_salary(sandbox_banks, make_user, api_client):
    user, truth, snapshot = _sandbox_snapshot(make_user, 1)
    sts = snapshot.breakdown["sts"]
    today = date.fromisoformat(truth["today"])
    salary_day = date.fromisoformat(truth["horizon"]["next_main_income"])
    # Salary on the 3rd and 18th: the horizon runs to the next one.
    assert sts["horizon_days"] == truth["horizon"]["days"] == max(1, (salary_day - today).days)
    # Every mortgage part the truth schedules before the salary, each on its own day, once.
    expected = sorted(
        (e["date"], D(e["amount"]))
        for e in _truth_obligations(truth)
        if e["kind"] == "loan_instalment" and e["date"] < salary_day.isoformat()
    )
    counted = sorted(
        (o["date"], D(o["amount"])) for o in sts["obligations"] if o["kind"] == "loan_instalment"
    )
    assert counted == expected
    # The low point: balance - those parts - everyday spending; STS ≤ safe, within 10 %.
    safe = D(truth["safe_to_spend"]["period"])
    assert snapshot.sts_amount <= safe + D("0.01")
    assert snapshot.sts_amount >= safe * D("0.9")
    # One next payment on every endpoint.
    from users.services import token_pair_for

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    dashboard = api_client.get("/api/dashboard").json()["debt"]["next_payment"]
    endpoint = api_client.get("/api/debts/next-payment").json()["next_payment"]
    stored = snapshot.breakdown["next_payment"]
    assert dashboard["date"] == endpoint["date"] == stored["date"]
    assert dashboard["amount"] == endpoint["amount"] == stored["amount"]
    first = min(e["date"] for e in _truth_obligations(truth))
    assert stored["date"] == first
    assert D(stored["amount"]) == sum(
        D(e["amount"]) for e in _truth_obligations(truth) if e["date"] == first
    )
