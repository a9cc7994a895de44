"""Health score 0-100 on the Financial Health Network's eight indicators plus a debt-load one
(debt stock against annual income and liquid assets), as far as bank data shows them. Each
indicator scores 0-100 in tiers; indicators without data are excluded and the
weights of the rest renormalised. Bands: healthy 80-100, coping 40-79, vulnerable below 40.
"""

from decimal import ROUND_DOWN, Decimal

HEALTHY_MIN = 80
COPING_MIN = 40
# Equal weights, as the FHN score weighs its eight indicators (renormalised over those with data).
WEIGHT = 12.5
# Bank of Russia ПДН bands: below 30 %, 30-50 %, 50-80 %, above 80 %.
# A score from one or two indicators would say more than the data does.
MIN_INDICATORS_FOR_SCORE = 3
PDN_BANDS = (("below_30", 100), ("30_50", 60), ("50_80", 25), ("above_80", 0))


def band_of(score: float | int | None) -> str:
    """healthy / coping / vulnerable for a 0-100 score, no_data for None."""
    if score is None:
        return "no_data"
    if score >= HEALTHY_MIN:
        return "healthy"
    return "coping" if score >= COPING_MIN else "vulnerable"


def _indicator(code: str, value, score: int | None, explanation: str, action: str, **extra) -> dict:
    return {
        "code": code,
        "has_data": score is not None,
        "value": value,
        "score": score,
        "band": band_of(score),
        "weight": WEIGHT,
        "explanation": explanation,
        "action": action,
        **extra,
    }


def _no_data(code: str, explanation: str) -> dict:
    return _indicator(code, None, None, explanation, "Connect the bank where this money lives.")


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    """Exact ratio: tiers are decided on it, never on a rounded figure."""
    return numerator / denominator


def _shown(value: Decimal, places: str = "0.0001") -> Decimal:
    """A figure as reported: truncated, so 29.999 % shows as 29.99 %, not 30 %."""
    return value.quantize(Decimal(places), rounding=ROUND_DOWN)


def indicator_spend_vs_income(*, income: Decimal, spending: Decimal, months: int) -> dict:
    """Spending as a share of income over the last full months (lower is better)."""
    code = "spend_vs_income"
    if months == 0 or income <= 0:
        return _no_data(code, "No income seen in the connected banks over the last months.")
    ratio = _ratio(spending, income)
    tiers = ((Decimal("0.80"), 100), (Decimal("0.95"), 75), (Decimal("1.00"), 50))
    score = next((s for limit, s in tiers if ratio < limit), 25 if ratio < Decimal("1.10") else 0)
    return _indicator(
        code,
        _shown(ratio),
        score,
        f"Spent {_shown(ratio, '0.01'):.0%} of income over the last {months} months.",
        "Keep it up." if score >= 75 else "Cut the largest discretionary category next month.",
        income=income,
        spending=spending,
        months=months,
    )


def indicator_bills_on_time(*, expected: int, on_time: int) -> dict:
    """Share of recurring bills and instalments that came within a few days of their usual day."""
    code = "bills_on_time"
    if expected == 0:
        return _no_data(code, "No recurring bills or instalments with a due month behind them.")
    share = _ratio(Decimal(on_time), Decimal(expected))
    tiers = ((Decimal("1"), 100), (Decimal("0.9"), 75), (Decimal("0.75"), 50), (Decimal("0.5"), 25))
    score = next((s for limit, s in tiers if share >= limit), 0)
    return _indicator(
        code,
        _shown(share),
        score,
        f"{on_time} of {expected} expected bill and instalment payments were on time.",
        "Keep it up." if score == 100 else "Set up autopayment for your instalments.",
        expected=expected,
        on_time=on_time,
    )


def indicator_liquid_buffer(*, liquid: Decimal, essential_monthly: Decimal) -> dict:
    """Spendable balances plus savings (deposits at their invested sum) in months of essential
    spending."""
    code = "liquid_buffer"
    if essential_monthly <= 0:
        return _no_data(code, "No essential spending seen yet to measure a buffer against.")
    months = max(liquid, Decimal("0")) / essential_monthly
    tiers = ((Decimal("6"), 100), (Decimal("3"), 75), (Decimal("1"), 50), (Decimal("0.5"), 25))
    score = next((s for limit, s in tiers if months >= limit), 0)
    return _indicator(
        code,
        _shown(months, "0.01"),
        score,
        f"Liquid money covers {_shown(months, '0.01')} months of essential spending.",
        "Keep it up." if score == 100 else "Build the buffer towards 3-6 months of essentials.",
        liquid=liquid,
        essential_monthly=essential_monthly,
    )


def indicator_savings_trend(
    *, savings_now: Decimal, savings_before: Decimal, days: int, has_savings: bool = True
) -> dict:
    """Change of savings balances over the window (now vs. `days` ago)."""
    code = "savings_trend"
    if not has_savings:
        return _no_data(code, "No savings account connected.")
    change = savings_now - savings_before
    if savings_before > 0:
        growth = _ratio(change, savings_before)
    else:
        growth = Decimal("1") if change > 0 else Decimal("0")
    if growth >= Decimal("0.05"):
        score = 100
    elif growth > 0:
        score = 75
    elif growth == 0:
        score = 50
    elif growth >= Decimal("-0.10"):
        score = 25
    else:
        score = 0
    return _indicator(
        code,
        _shown(growth),
        score,
        f"Savings changed by {change} ({_shown(growth, '0.001'):+.1%}) over {days} days.",
        "Keep it up." if score >= 75 else "Move a fixed sum to savings on payday.",
        change=change,
        savings_now=savings_now,
        savings_before=savings_before,
    )


def pdn_band(ratio_percent: Decimal) -> str:
    """Bank of Russia ПДН band of a debt-service-to-income ratio in percent."""
    if ratio_percent < 30:
        return "below_30"
    if ratio_percent < 50:
        return "30_50"
    if ratio_percent <= 80:
        return "50_80"
    return "above_80"


def indicator_debt_service(*, monthly_debt_service: Decimal, monthly_income: Decimal) -> dict:
    """ПДН: monthly debt payments as a percentage of monthly income."""
    code = "debt_service_ratio"
    if monthly_debt_service <= 0:
        return _indicator(
            code,
            Decimal("0"),
            100,
            "No debt payments.",
            "Keep it up.",
            pdn_band="below_30",
            monthly_debt_service=Decimal("0"),
            monthly_income=monthly_income,
        )
    if monthly_income <= 0:
        return _no_data(code, "Debt payments are known but no income is seen to compare them to.")
    percent = monthly_debt_service * 100 / monthly_income
    band = pdn_band(percent)
    score = dict(PDN_BANDS)[band]
    return _indicator(
        code,
        _shown(percent, "0.01"),
        score,
        f"Debt payments take {_shown(percent, '0.01')}% of income "
        f"(ПДН band {band.replace('_', '-')}).",
        "Keep it up." if score == 100 else "Avoid new credit; repay the costliest debt first.",
        pdn_band=band,
        monthly_debt_service=monthly_debt_service,
        monthly_income=monthly_income,
    )


def indicator_credit_utilisation(*, card_debt: Decimal, card_limit: Decimal) -> dict:
    """Credit-card debt as a share of the cards' limits."""
    code = "credit_utilisation"
    if card_limit <= 0:
        return _no_data(code, "No credit card with a known limit.")
    share = _ratio(max(card_debt, Decimal("0")), card_limit)
    tiers = ((Decimal("0.10"), 100), (Decimal("0.30"), 75), (Decimal("0.50"), 50))
    score = next((s for limit, s in tiers if share < limit), 25 if share < Decimal("0.75") else 0)
    return _indicator(
        code,
        _shown(share),
        score,
        f"Credit cards are {_shown(share, '0.01'):.0%} used.",
        "Keep it up." if score >= 75 else "Bring card debt below 30% of the limit.",
        card_debt=card_debt,
        card_limit=card_limit,
    )


def indicator_income_regularity(*, monthly_incomes: list[Decimal]) -> dict:
    """Coefficient of variation of monthly income (lower is steadier)."""
    code = "income_regularity"
    if len(monthly_incomes) < 3 or sum(monthly_incomes) <= 0:
        return _no_data(code, "Fewer than three months of income to judge regularity.")
    count = len(monthly_incomes)
    mean = sum(monthly_incomes) / count
    variance = sum((x - mean) ** 2 for x in monthly_incomes) / count
    variation = variance.sqrt() / mean
    tiers = ((Decimal("0.10"), 100), (Decimal("0.25"), 75), (Decimal("0.50"), 50))
    score = next((s for limit, s in tiers if variation <= limit), 25)
    return _indicator(
        code,
        _shown(variation),
        score,
        f"Monthly income varies by {_shown(variation, '0.01'):.0%} around its mean "
        f"over {count} months.",
        "Keep it up." if score >= 75 else "Keep a larger buffer while income is uneven.",
        months=count,
    )


def indicator_regular_saving(*, months_saved: int, months: int) -> dict:
    """Share of recent months in which money went into savings accounts."""
    code = "regular_saving"
    if months == 0:
        return _no_data(code, "No savings account connected.")
    share = _ratio(Decimal(months_saved), Decimal(months))
    if share >= Decimal("0.8"):
        score = 100
    elif share >= Decimal("0.5"):
        score = 75
    elif share > 0:
        score = 50
    else:
        score = 0
    return _indicator(
        code,
        _shown(share),
        score,
        f"Money went into savings in {months_saved} of the last {months} months.",
        "Keep it up." if score == 100 else "Set up a monthly transfer to savings.",
        months_saved=months_saved,
        months=months,
    )


def health_score(indicators: list[dict]) -> dict:
    """Weighted mean of the indicators that have data; weights renormalised over them."""
    used = [i for i in indicators if i["has_data"]]
    total_weight = sum(i["weight"] for i in used)
    for item in indicators:
        item["normalised_weight"] = (
            round(item["weight"] / total_weight, 4) if item["has_data"] and total_weight else 0
        )
    if len(used) < MIN_INDICATORS_FOR_SCORE:
        return {"score": None, "band": "no_data", "indicators": indicators, "used": len(used)}
    score = round(sum(i["score"] * i["weight"] for i in used) / total_weight)
    return {"score": score, "band": band_of(score), "indicators": indicators, "used": len(used)}


def indicator_debt_load(
    *, total_debt: Decimal, annual_income: Decimal, liquid_assets: Decimal
) -> dict:
    """Debt stock against a year's income, after what liquid assets (spendable money, savings
    and deposits) could repay: (debt - liquid) / annual income (lower is better)."""
    code = "debt_load"
    debt = max(total_debt, Decimal("0"))
    liquid = max(liquid_assets, Decimal("0"))
    extra = {"total_debt": debt, "annual_income": annual_income, "liquid_assets": liquid}
    if debt == 0:
        return _indicator(code, Decimal("0"), 100, "No debt.", "Keep it up.", **extra)
    net = max(Decimal("0"), debt - liquid)
    if net == 0:
        return _indicator(
            code,
            Decimal("0"),
            100,
            f"Liquid assets of {liquid} cover the whole debt of {debt}.",
            "Keep it up.",
            net_debt=net,
            **extra,
        )
    if annual_income <= 0:
        return _no_data(code, "Debt is known but no income is seen to compare it to.")
    ratio = _ratio(net, annual_income)
    tiers = ((Decimal("0.25"), 100), (Decimal("0.5"), 75), (Decimal("1"), 50), (Decimal("2"), 25))
    score = next((s for limit, s in tiers if ratio < limit), 0)
    return _indicator(
        code,
        _shown(ratio),
        score,
        f"Debt of {debt} less liquid assets of {liquid} is {_shown(ratio, '0.01')} years of "
        f"income ({annual_income} a year).",
        "Keep it up." if score >= 75 else "Repay the costliest debt first; avoid new credit.",
        net_debt=net,
        **extra,
    )
