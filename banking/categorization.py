"""Transaction categorisation: MCC code → merchant category → description keywords → other.

Pure and deterministic: the same inputs always give the same category. Called for every transaction
the sync stores, so the keyword table is compiled once at import and the code→id map is cached per
process (one query, reloaded only when a code is missing).
"""

import re
from decimal import Decimal
from functools import lru_cache

from banking.models import TransactionCategory

SALARY = "salary"
OTHER_INCOME = "other_income"
GROCERIES = "groceries"
RESTAURANTS = "restaurants"
TRANSPORT = "transport"
UTILITIES = "utilities"
SHOPPING = "shopping"
ENTERTAINMENT = "entertainment"
HEALTH = "health"
LOAN_PAYMENTS = "loan_payments"
TRANSFERS = "transfers"
CASH = "cash"
FEES = "fees"
OTHER = "other"

# Income categories are only given to money coming in; a debit mentioning "зарплата" is not salary.
INCOME_ONLY = frozenset({SALARY, OTHER_INCOME})


def _mcc_table() -> dict[str, str]:
    table: dict[str, str] = {}
    groups = {
        GROCERIES: ["5411", "5422", "5441", "5451", "5462", "5499", "5297", "5300"],
        RESTAURANTS: ["5811", "5812", "5813", "5814"],
        TRANSPORT: [
            "4011",
            "4111",
            "4112",
            "4121",
            "4131",
            "4411",
            "4457",
            "4468",
            "4511",
            "4582",
            "4784",
            "4789",
            "5172",
            "5511",
            "5521",
            "5532",
            "5533",
            "5541",
            "5542",
            "5983",
            "7511",
            "7512",
            "7523",
            "7531",
            "7538",
            "7542",
            "7549",
        ],
        UTILITIES: ["4812", "4814", "4816", "4899", "4900", "6513"],
        SHOPPING: [
            "5045",
            "5200",
            "5251",
            "5261",
            "5309",
            "5310",
            "5311",
            "5331",
            "5399",
            "5611",
            "5621",
            "5631",
            "5641",
            "5651",
            "5655",
            "5661",
            "5691",
            "5699",
            "5712",
            "5719",
            "5722",
            "5732",
            "5733",
            "5734",
            "5735",
            "5941",
            "5942",
            "5943",
            "5944",
            "5945",
            "5946",
            "5947",
            "5948",
            "5949",
            "5964",
            "5977",
            "5992",
            "5995",
            "5999",
        ],
        ENTERTAINMENT: [
            "5815",
            "5816",
            "5817",
            "5818",
            "7832",
            "7841",
            "7911",
            "7922",
            "7929",
            "7932",
            "7933",
            "7941",
            "7991",
            "7992",
            "7993",
            "7994",
            "7996",
            "7997",
            "7998",
            "7999",
        ],
        HEALTH: [
            "5122",
            "5912",
            "5975",
            "5976",
            "8011",
            "8021",
            "8031",
            "8041",
            "8042",
            "8043",
            "8049",
            "8050",
            "8062",
            "8071",
            "8099",
        ],
        CASH: ["6010", "6011"],
        TRANSFERS: ["4829", "6536", "6537", "6538", "6540"],
        FEES: ["9222", "9311"],
    }
    for code, mccs in groups.items():
        for mcc in mccs:
            table[mcc] = code
    # Airlines (3000–3299), car rental (3351–3441) and hotels (3501–3999) by range.
    for number in range(3000, 3300):
        table[f"{number}"] = TRANSPORT
    for number in range(3351, 3442):
        table[f"{number}"] = TRANSPORT
    for number in range(3501, 4000):
        table[f"{number}"] = ENTERTAINMENT
    return table


MCC_CATEGORIES: dict[str, str] = _mcc_table()

# The merchant.category values the banks send (SPEC §4.4), lower-cased, plus common synonyms.
MERCHANT_CATEGORIES: dict[str, str] = {
    "grocery": GROCERIES,
    "groceries": GROCERIES,
    "supermarket": GROCERIES,
    "food": GROCERIES,
    "restaurant": RESTAURANTS,
    "restaurants": RESTAURANTS,
    "cafe": RESTAURANTS,
    "fast_food": RESTAURANTS,
    "bar": RESTAURANTS,
    "gas_station": TRANSPORT,
    "fuel": TRANSPORT,
    "transport": TRANSPORT,
    "taxi": TRANSPORT,
    "travel": TRANSPORT,
    "utilities": UTILITIES,
    "telecom": UTILITIES,
    "rent": UTILITIES,
    "retail": SHOPPING,
    "shopping": SHOPPING,
    "electronics": SHOPPING,
    "clothing": SHOPPING,
    "marketplace": SHOPPING,
    "entertainment": ENTERTAINMENT,
    "cinema": ENTERTAINMENT,
    "pharmacy": HEALTH,
    "health": HEALTH,
    "medical": HEALTH,
    "healthcare": HEALTH,
    "atm": CASH,
    "cash": CASH,
}

# Ordered: the first matching pattern wins. Specific phrases come before the generic ones.
_KEYWORD_RULES: list[tuple[str, str]] = [
    (r"платеж по кредиту|платёж по кредиту|погашение кредита|loan payment", LOAN_PAYMENTS),
    (r"перевод между своими|между своими счетами|own transfer", TRANSFERS),
    (r"зарплат|заработн|аванс|salary|payroll", SALARY),
    (r"подработк|бонус|преми|кэшбэк|cashback|капитализац|процент|дивиденд|возврат", OTHER_INCOME),
    (r"снятие наличных|наличные|банкомат|cash withdrawal|\batm\b", CASH),
    (r"комисси|\bfees?\b|обслуживани", FEES),
    (r"продукт|супермаркет|grocer", GROCERIES),
    (r"ресторан|кафе|кофейн|столов|restaurant|\bcafe\b|coffee", RESTAURANTS),
    (r"транспорт|такси|метро|автобус|азс|бензин|парковк|taxi|transport", TRANSPORT),
    (r"жкх|аренд|квартплат|коммунал|электроэнерг|интернет|связь|rent|utilit", UTILITIES),
    (r"аптек|здоровь|клиник|врач|стомат|медицин|pharmacy|clinic", HEALTH),
    (r"развлечени|кино|театр|концерт|cinema|entertainment", ENTERTAINMENT),
    (r"покупк|магазин|маркетплейс|shopping|purchase", SHOPPING),
    (r"перевод|transfer", TRANSFERS),
]
KEYWORD_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern, re.IGNORECASE), code) for pattern, code in _KEYWORD_RULES
]

_category_ids: dict[str, int] = {}


def category_cache_clear() -> None:
    """Forget the cached code→id map (tests that recreate categories call this)."""
    _category_ids.clear()


def _category_id(code: str) -> int | None:
    category_id = _category_ids.get(code)
    if category_id is None:
        _category_ids.clear()
        _category_ids.update(TransactionCategory.objects.values_list("code", "id"))
        category_id = _category_ids.get(code)
    return category_id


def category_code_for(
    *, description: str, mcc: str, merchant_category: str, amount: Decimal
) -> str:
    """The category code of one transaction: MCC → merchant category → keywords → other."""
    return _code_for(description or "", mcc or "", merchant_category or "", amount > 0)


# The sandbox repeats a handful of texts; memoising on the inputs makes a 240k-row sync cheap.
@lru_cache(maxsize=8192)
def _code_for(description: str, mcc: str, merchant_category: str, is_credit: bool) -> str:
    code = MCC_CATEGORIES.get(mcc.strip())
    if code:
        return code
    code = MERCHANT_CATEGORIES.get(merchant_category.strip().lower())
    if code:
        return code
    if description:
        for pattern, code in KEYWORD_RULES:
            if (is_credit or code not in INCOME_ONLY) and pattern.search(description):
                return code
    return OTHER_INCOME if is_credit else OTHER


def category_id_for(
    *, description: str, mcc: str, merchant_category: str, amount: Decimal
) -> int | None:
    """The TransactionCategory id for one transaction (None only if categories are not seeded)."""
    code = category_code_for(
        description=description, mcc=mcc, merchant_category=merchant_category, amount=amount
    )
    return _category_id(code)
