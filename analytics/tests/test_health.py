"""Health indicators at their band edges, the ПДН bands and the weighted score."""

from decimal import Decimal as D

import pytest

from analytics.health import (
    band_of,
    health_score,
    indicator_bills_on_time,
    indicator_credit_utilisation,
    indicator_debt_service,
    indicator_income_regularity,
    indicator_liquid_buffer,
    indicator_regular_saving,
    indicator_savings_trend,
    indicator_spend_vs_income,
    pdn_band,
)


@pytest.mark.parametrize(
    ("score", "band"),
    [(100, "healthy"), (80, "healthy"), (79, "coping"), (40, "coping"), (39, "vulnerable"),
     (0, "vulnerable"), (None, "no_data")],
)  # fmt: skip
def test_band_edges(score, band):
    assert band_of(score) == band


@pytest.mark.parametrize(
    ("spending", "score"),
    [
        ("7999", 100),  # 7999 / 10000 = 0.7999 < 0.80
        ("8000", 75),  # 0.80: first value of the 75 tier
        ("9499", 75),  # 0.9499 < 0.95
        ("9500", 50),  # 0.95
        ("9999", 50),  # 0.9999 < 1.00
        ("10000", 25),  # 1.00: spending equals income
        ("10999", 25),  # 1.0999 < 1.10
        ("11000", 0),  # 1.10
    ],
)
def test_spend_vs_income_tiers(spending, score):
    indicator = indicator_spend_vs_income(income=D("10000"), spending=D(spending), months=3)
    assert indicator["score"] == score
    assert indicator["value"] == D(spending) / D("10000")


def test_spend_vs_income_without_income_has_no_data():
    indicator = indicator_spend_vs_income(income=D("0"), spending=D("5000"), months=3)
    assert (indicator["has_data"], indicator["score"], indicator["band"]) == (
        False,
        None,
        "no_data",
    )


@pytest.mark.parametrize(
    ("on_time", "expected", "score"),
    [(10, 10, 100), (9, 10, 75), (8, 10, 50), (3, 4, 50), (1, 2, 25), (0, 2, 0)],
)
def test_bills_on_time_tiers(on_time, expected, score):
    # 9/10 = 0.9 -> 75; 8/10 = 0.8 and 3/4 = 0.75 -> 50; 1/2 = 0.5 -> 25; 0 -> 0
    assert indicator_bills_on_time(expected=expected, on_time=on_time)["score"] == score


def test_bills_on_time_without_bills_has_no_data():
    assert indicator_bills_on_time(expected=0, on_time=0)["has_data"] is False


@pytest.mark.parametrize(
    ("liquid", "score", "shown"),
    [
        ("60000", 100, "6.00"),  # 60000 / 10000 = 6 months
        ("59999", 75, "5.99"),  # 5.9999 months: shown truncated, scored on the exact value
        ("30000", 75, "3.00"),
        ("29999", 50, "2.99"),
        ("10000", 50, "1.00"),
        ("5000", 25, "0.50"),
        ("4999", 0, "0.49"),
        ("-100", 0, "0.00"),  # an overdraft is no buffer
    ],
)
def test_liquid_buffer_tiers(liquid, score, shown):
    indicator = indicator_liquid_buffer(liquid=D(liquid), essential_monthly=D("10000"))
    assert (indicator["score"], indicator["value"]) == (score, D(shown))


def test_liquid_buffer_without_essential_spending_has_no_data():
    assert indicator_liquid_buffer(liquid=D("5000"), essential_monthly=D("0"))["has_data"] is False


@pytest.mark.parametrize(
    ("now", "score"),
    [
        ("105000", 100),  # +5000 / 100000 = +5 %
        ("104999", 75),  # +4.999 %
        ("100001", 75),
        ("100000", 50),  # flat
        ("90000", 25),  # -10 %
        ("89999", 0),  # -10.001 %
    ],
)
def test_savings_trend_tiers(now, score):
    indicator = indicator_savings_trend(savings_now=D(now), savings_before=D("100000"), days=90)
    assert indicator["score"] == score
    assert indicator["change"] == D(now) - D("100000")


def test_savings_trend_from_zero_and_without_savings():
    assert (
        indicator_savings_trend(savings_now=D("10"), savings_before=D("0"), days=90)["score"] == 100
    )
    no_savings = indicator_savings_trend(
        savings_now=D("0"), savings_before=D("0"), days=90, has_savings=False
    )
    assert no_savings["has_data"] is False


@pytest.mark.parametrize(
    ("service", "band", "score"),
    [
        ("2999", "below_30", 100),  # 2999 / 10000 = 29.99 %
        ("3000", "30_50", 60),  # 30 %: the 30-50 band starts here
        ("4999", "30_50", 60),  # 49.99 %
        ("5000", "50_80", 25),  # 50 %
        ("8000", "50_80", 25),  # 80 % is still "50-80"
        ("8001", "above_80", 0),  # 80.01 %
    ],
)
def test_pdn_bands(service, band, score):
    indicator = indicator_debt_service(monthly_debt_service=D(service), monthly_income=D("10000"))
    assert (indicator["pdn_band"], indicator["score"]) == (band, score)
    assert indicator["value"] == D(service) / 100


def test_pdn_band_is_decided_on_the_exact_ratio():
    # 2999.99 / 10000 = 29.9999 %: shown as 29.99, still below 30
    assert pdn_band(D("2999.99") * 100 / D("10000")) == "below_30"
    indicator = indicator_debt_service(monthly_debt_service=D("2999.99"), monthly_income=D("10000"))
    assert (indicator["value"], indicator["pdn_band"]) == (D("29.99"), "below_30")


def test_pdn_without_debt_is_healthy_and_without_income_has_no_data():
    no_debt = indicator_debt_service(monthly_debt_service=D("0"), monthly_income=D("0"))
    assert (no_debt["score"], no_debt["pdn_band"]) == (100, "below_30")
    no_income = indicator_debt_service(monthly_debt_service=D("100"), monthly_income=D("0"))
    assert no_income["has_data"] is False


@pytest.mark.parametrize(
    ("debt", "score"),
    [("9999", 100), ("10000", 75), ("29999", 75), ("30000", 50), ("49999", 50), ("50000", 25),
     ("74999", 25), ("75000", 0)],
)  # fmt: skip
def test_credit_utilisation_tiers(debt, score):
    # share = debt / 100000 limit: < 10 % 100, < 30 % 75, < 50 % 50, < 75 % 25, else 0
    indicator = indicator_credit_utilisation(card_debt=D(debt), card_limit=D("100000"))
    assert indicator["score"] == score


def test_credit_utilisation_without_card_has_no_data():
    assert indicator_credit_utilisation(card_debt=D("0"), card_limit=D("0"))["has_data"] is False


@pytest.mark.parametrize(
    ("incomes", "score"),
    [
        # mean 100, population std 10 -> variation 0.10
        (["90", "110", "90", "110"], 100),
        (["89", "111", "89", "111"], 75),  # 0.11
        (["75", "125", "75", "125"], 75),  # 0.25
        (["50", "150", "50", "150"], 50),  # 0.50
        (["49", "151", "49", "151"], 25),  # 0.51
    ],
)
def test_income_regularity_tiers(incomes, score):
    assert indicator_income_regularity(monthly_incomes=[D(x) for x in incomes])["score"] == score


def test_income_regularity_needs_three_months():
    assert indicator_income_regularity(monthly_incomes=[D("1"), D("1")])["has_data"] is False


@pytest.mark.parametrize(
    ("saved", "months", "score"),
    [(4, 5, 100), (7, 9, 75), (3, 5, 75), (1, 2, 75), (1, 6, 50), (0, 6, 0)],
)
def test_regular_saving_tiers(saved, months, score):
    # 4/5 = 0.8 -> 100; 7/9 = 0.78 and 0.6 and 0.5 -> 75; 1/6 -> 50; none -> 0
    assert indicator_regular_saving(months_saved=saved, months=months)["score"] == score


def test_score_renormalises_weights_over_indicators_with_data():
    indicators = [
        indicator_bills_on_time(expected=4, on_time=4),  # 100
        indicator_liquid_buffer(liquid=D("10000"), essential_monthly=D("10000")),  # 50
        indicator_regular_saving(months_saved=1, months=2),  # 75
        indicator_credit_utilisation(card_debt=D("0"), card_limit=D("0")),  # no data
        indicator_regular_saving(months_saved=0, months=0),  # no data
    ]
    result = health_score(indicators)
    # (100 x 12.5 + 50 x 12.5 + 75 x 12.5) / (3 x 12.5) = 75
    assert (result["score"], result["band"], result["used"]) == (75, "coping", 3)
    assert [i["normalised_weight"] for i in indicators] == [0.3333, 0.3333, 0.3333, 0, 0]


def test_score_needs_three_indicators_with_data():
    result = health_score(
        [
            indicator_bills_on_time(expected=4, on_time=4),
            indicator_liquid_buffer(liquid=D("10000"), essential_monthly=D("10000")),
            indicator_regular_saving(months_saved=0, months=0),
        ]
    )
    assert (result["score"], result["band"], result["used"]) == (None, "no_data", 2)
