"""Transaction categorisation from the banks' own words (SPEC §17).

Order: a merchant's credit is a refund → MCC code → merchant category → a well-known merchant
named by the description → description keywords → the default (other / other income). Pure and
deterministic: the same inputs always give the same category and the same deciding rule
(`category_decision_for`, which the categories bench counts).
Called for every transaction the sync stores, so the keyword table is compiled once at import,
decisions are memoised on their inputs, and the code→id map is cached per process (one query,
reloaded only when a code is missing).

Also here, as pure functions the sync and analytics share: the income kind of a credit
(`income_kind_of`: salary, business, interest, refund, own transfer …) and a card purchase's
merchant and city (`merchant_and_city`: "Пятёрочка - Москва" → "Пятёрочка", "Москва").
"""

import re
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from banking.models import TransactionCategory
from banking.textfold import fold

SALARY = "salary"
BUSINESS_INCOME = "business_income"
INTEREST = "interest"
REFUNDS = "refunds"
OTHER_INCOME = "other_income"
GROCERIES = "groceries"
RESTAURANTS = "restaurants"
TRANSPORT = "transport"
TRAVEL = "travel"
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
INCOME_ONLY = frozenset({SALARY, BUSINESS_INCOME, INTEREST, REFUNDS, OTHER_INCOME})
# A merchant's credit in one of these is money back for a purchase (a refund); in the others
# (a money-transfer MCC, an ATM, a fee) it is not.
PURCHASE_CATEGORIES = frozenset(
    {GROCERIES, RESTAURANTS, TRANSPORT, TRAVEL, UTILITIES, SHOPPING, ENTERTAINMENT, HEALTH}
)

# Rule names a decision carries (the bench prints the share of rows each one decided).
RULE_MERCHANT_CREDIT = "merchant_credit"
RULE_MCC = "mcc"
RULE_MERCHANT_CATEGORY = "merchant_category"
RULE_KNOWN_MERCHANT = "known_merchant"  # a well-known merchant named by the description
RULE_DESCRIPTION = "description"  # printed as "description:<keyword rule>"
RULE_DEFAULT = "default"  # no rule matched: other (debit) / other income (credit)


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
            "4457",
            "4468",
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
        # Airlines, airports, cruises, travel agencies, hotels, car rental (and the ranges below).
        TRAVEL: ["4411", "4511", "4582", "4722", "7011", "7012", "7512"],
        CASH: ["6010", "6011"],
        TRANSFERS: ["4829", "6536", "6537", "6538", "6540"],
        FEES: ["9222", "9311"],
    }
    for code, mccs in groups.items():
        for mcc in mccs:
            table[mcc] = code
    # Airlines (3000–3299), car rental (3351–3441) and hotels (3501–3999) by range.
    for low, high in ((3000, 3300), (3351, 3442), (3501, 4000)):
        for number in range(low, high):
            table[f"{number}"] = TRAVEL
    return table


MCC_CATEGORIES: dict[str, str] = _mcc_table()

# The merchant.category values the banks send (SPEC §4.4, §17), normalised by
# `_merchant_category_key` (lower case, "_" for spaces and hyphens), plus common synonyms.
MERCHANT_CATEGORIES: dict[str, str] = {
    "grocery": GROCERIES,
    "groceries": GROCERIES,
    "supermarket": GROCERIES,
    "supermarkets": GROCERIES,
    "food": GROCERIES,
    "restaurant": RESTAURANTS,
    "restaurants": RESTAURANTS,
    "cafe": RESTAURANTS,
    "fast_food": RESTAURANTS,
    "bar": RESTAURANTS,
    "food_delivery": RESTAURANTS,
    "gas_station": TRANSPORT,
    "fuel": TRANSPORT,
    "transport": TRANSPORT,
    "public_transport": TRANSPORT,
    "taxi": TRANSPORT,
    "parking": TRANSPORT,
    "car_service": TRANSPORT,
    "travel": TRAVEL,
    "tourism": TRAVEL,
    "airline": TRAVEL,
    "airlines": TRAVEL,
    "hotel": TRAVEL,
    "hotels": TRAVEL,
    "car_rental": TRAVEL,
    "utilities": UTILITIES,
    "telecom": UTILITIES,
    "mobile": UTILITIES,
    "internet": UTILITIES,
    "rent": UTILITIES,
    "housing": UTILITIES,
    "retail": SHOPPING,
    "shopping": SHOPPING,
    "online_retail": SHOPPING,
    "ecommerce": SHOPPING,
    "e_commerce": SHOPPING,
    "marketplace": SHOPPING,
    "electronics": SHOPPING,
    "clothing": SHOPPING,
    "apparel": SHOPPING,
    "home": SHOPPING,
    "entertainment": ENTERTAINMENT,
    "cinema": ENTERTAINMENT,
    "digital_services": ENTERTAINMENT,
    "subscriptions": ENTERTAINMENT,
    "streaming": ENTERTAINMENT,
    "pharmacy": HEALTH,
    "health": HEALTH,
    "medical": HEALTH,
    "healthcare": HEALTH,
    "atm": CASH,
    "cash": CASH,
}


# Well-known merchants by name (folded: lower case, ё → е), for a card purchase whose merchant
# object or MCC the bank left out: its description "<Merchant> - <City>" still names it.
KNOWN_MERCHANTS: dict[str, str] = {
    **dict.fromkeys(
        ["пятерочка", "перекресток", "магнит", "вкусвилл", "ашан", "лента", "дикси", "spar"],
        GROCERIES,
    ),
    **dict.fromkeys(["азбука вкуса", "metro cash&carry", "окей", "самокат", "бристоль"], GROCERIES),
    **dict.fromkeys(
        ["тануки", "шоколадница", "вкусно — и точка", "вкусно и точка", "kfc", "бургер кинг"],
        RESTAURANTS,
    ),
    **dict.fromkeys(["starbucks", "coffee like", "теремок", "додо пицца", "якитория"], RESTAURANTS),
    **dict.fromkeys(
        ["ozon", "wildberries", "яндекс маркет", "aliexpress", "м.видео", "dns", "эльдорадо"],
        SHOPPING,
    ),
    **dict.fromkeys(["zara", "gloria jeans", "uniqlo", "h&m", "спортмастер", "ikea"], SHOPPING),
    **dict.fromkeys(["яндекс такси", "uber", "ситимобил", "метрополитен", "ржд"], TRANSPORT),
    **dict.fromkeys(["лукойл", "лукойл азс", "газпромнефть", "роснефть", "shell"], TRANSPORT),
    **dict.fromkeys(["аэрофлот", "победа", "s7 airlines", "туту", "островок"], TRAVEL),
    **dict.fromkeys(["ригла", "аптека ригла", "36,6", "горздрав", "асна", "инвитро"], HEALTH),
    **dict.fromkeys(["мтс", "билайн", "мегафон", "теле2", "tele2", "ростелеком", "жку"], UTILITIES),
    **dict.fromkeys(
        ["яндекс плюс", "kion", "ivi", "okko", "кинопоиск", "кинопоиск hd", "литрес"],
        ENTERTAINMENT,
    ),
}


class KeywordRule(NamedTuple):
    """A description rule: its name (as the bench prints it), its pattern, its category."""

    name: str
    pattern: re.Pattern[str]
    code: str


# Ordered: the first matching rule wins. Specific phrases come before the generic ones; an income
# rule is skipped for a debit.
_KEYWORD_RULES: list[tuple[str, str, str]] = [
    (
        "платеж по кредиту",
        r"плат[её]ж по кредиту|погашение кредита|проценты? по кредиту|loan payment",
        LOAN_PAYMENTS,
    ),
    ("перевод между своими", r"перевод между своими|между своими счетами|own transfer", TRANSFERS),
    (
        "доход от бизнеса",
        r"доход от бизнеса|предпринимательск|выручк|эквайринг|business income",
        BUSINESS_INCOME,
    ),
    (
        "проценты по депозиту",
        r"процент\w* (по|на) (депозит|вклад|сч[её]т|остат)|капитализац|interest",
        INTEREST,
    ),
    ("зарплата", r"зарплат|заработн|аванс|salary|payroll", SALARY),
    # The live banks' bare "Доход" is the client's main income (salary, pension, odd jobs).
    ("доход", r"^\s*доход\s*$", SALARY),
    ("возврат", r"возврат|refund|chargeback", REFUNDS),
    (
        "прочий доход",
        r"доход|пенси|pension|подработк|бонус|преми|к[эе]шб[эе]к|cashback|процент|дивиденд",
        OTHER_INCOME,
    ),
    ("наличные", r"снятие наличных|наличные|банкомат|cash withdrawal|\batm\b", CASH),
    ("комиссия", r"комисси|\bfees?\b|обслуживани", FEES),
    (
        "путешествия",
        r"путешеств|travel|авиабилет|гостиниц|\bотел[ьяи]|\bhotel|турпут[её]вк|туроператор",
        TRAVEL,
    ),
    ("продукты", r"продукт|супермаркет|grocer", GROCERIES),
    ("рестораны", r"ресторан|кафе|кофейн|столов|restaurant|\bcafe\b|coffee", RESTAURANTS),
    ("транспорт", r"транспорт|такси|метро|автобус|азс|бензин|парковк|taxi|transport", TRANSPORT),
    (
        "жкх",
        r"жкх|жку|аренд|квартплат|коммунал|электроэнерг|интернет|связь|rent|utilit",
        UTILITIES,
    ),
    ("здоровье", r"аптек|здоровь|клиник|врач|стомат|медицин|pharmacy|clinic", HEALTH),
    ("развлечения", r"развлечени|кино|театр|концерт|cinema|entertainment", ENTERTAINMENT),
    ("покупки", r"покупк|магазин|маркетплейс|shopping|purchase", SHOPPING),
    ("перевод", r"перевод|transfer", TRANSFERS),
]
KEYWORD_RULES: list[KeywordRule] = [
    KeywordRule(name, re.compile(pattern, re.IGNORECASE), code)
    for name, pattern, code in _KEYWORD_RULES
]


class CategoryDecision(NamedTuple):
    """A category code and the rule that decided it ("mcc", "description:доход", "default" …)."""

    code: str
    rule: str


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


def _merchant_category_key(value: str) -> str:
    return value.strip().lower().replace(" ", "_").replace("-", "_")


def category_decision_for(
    *, description: str, mcc: str, merchant_category: str, amount: Decimal
) -> CategoryDecision:
    """The category code of one transaction and the rule that decided it."""
    return _decide(description or "", mcc or "", merchant_category or "", amount > 0)


def category_code_for(
    *, description: str, mcc: str, merchant_category: str, amount: Decimal
) -> str:
    """The category code of one transaction (see the module's docstring for the order)."""
    return _decide(description or "", mcc or "", merchant_category or "", amount > 0).code


# The banks repeat a handful of texts; memoising on the inputs makes a 240k-row sync cheap.
@lru_cache(maxsize=8192)
def _decide(
    description: str, mcc: str, merchant_category: str, is_credit: bool
) -> CategoryDecision:
    by_mcc = MCC_CATEGORIES.get(mcc.strip())
    by_merchant_category = MERCHANT_CATEGORIES.get(_merchant_category_key(merchant_category))
    merchant_code = by_mcc or by_merchant_category
    if is_credit and merchant_code in PURCHASE_CATEGORIES:
        # Money from a shop, a café or a taxi is a purchase coming back, not income.
        return CategoryDecision(REFUNDS, RULE_MERCHANT_CREDIT)
    if by_mcc:
        return CategoryDecision(by_mcc, RULE_MCC)
    if by_merchant_category:
        return CategoryDecision(by_merchant_category, RULE_MERCHANT_CATEGORY)
    known = KNOWN_MERCHANTS.get(fold(merchant_and_city(description, "")[0]))
    if known:
        if is_credit:
            return CategoryDecision(REFUNDS, RULE_MERCHANT_CREDIT)
        return CategoryDecision(known, RULE_KNOWN_MERCHANT)
    if description:
        for rule in KEYWORD_RULES:
            if (is_credit or rule.code not in INCOME_ONLY) and rule.pattern.search(description):
                return CategoryDecision(rule.code, f"{RULE_DESCRIPTION}:{rule.name}")
    return CategoryDecision(OTHER_INCOME if is_credit else OTHER, RULE_DEFAULT)


def category_id_for(
    *, description: str, mcc: str, merchant_category: str, amount: Decimal
) -> int | None:
    """The TransactionCategory id for one transaction (None only if categories are not seeded)."""
    code = category_code_for(
        description=description, mcc=mcc, merchant_category=merchant_category, amount=amount
    )
    return _category_id(code)


# --- Income kinds ------------------------------------------------------------------------------

INCOME_SALARY = "salary"
INCOME_PENSION = "pension"
INCOME_BUSINESS = "business"
INCOME_OTHER = "income"  # money in we cannot name more precisely (counts as main income)
INCOME_INTEREST = "interest"
INCOME_CASHBACK = "cashback"
INCOME_REFUND = "refund"
INCOME_OWN_TRANSFER = "own_transfer"
# The client's main income (what Save-to-Spend's horizon runs to), in analytics.recurring's words.
MAIN_INCOME_KINDS = frozenset({INCOME_SALARY, INCOME_PENSION, INCOME_BUSINESS, INCOME_OTHER})
# The income kind each income category carries; other_income and transfers read the description.
CATEGORY_INCOME_KINDS: dict[str, str] = {
    SALARY: INCOME_SALARY,
    BUSINESS_INCOME: INCOME_BUSINESS,
    INTEREST: INCOME_INTEREST,
    REFUNDS: INCOME_REFUND,
}

_OWN_TRANSFER_RE = re.compile(r"перевод между своими|между своими счетами|own transfer", re.I)
_INTEREST_RE = re.compile(r"процент|interest|капитализац", re.IGNORECASE)
_CASHBACK_RE = re.compile(r"к[эе]шб[эе]к|cashback|cash-back|бонус", re.IGNORECASE)
_REFUND_RE = re.compile(r"возврат|refund|chargeback", re.IGNORECASE)
_BUSINESS_RE = re.compile(r"доход от бизнеса|предпринимательск|выручк|эквайринг|business", re.I)
_PENSION_RE = re.compile(r"пенси|pension", re.IGNORECASE)
_SALARY_RE = re.compile(r"зарплат|заработн|аванс|salary|payroll|^\s*доход\s*$", re.IGNORECASE)


def income_kind_of(
    *, description: str, category_code: str, amount: Decimal, merchant_name: str = ""
) -> str:
    """What kind of income a credit is: salary, pension, business, income (unnamed), interest,
    cashback, refund or own_transfer; "" for a debit or a zero amount.

    The category decides when it names a kind (a user's correction to "salary" makes a salary);
    otherwise the description does, and a credit from a merchant is a refund.
    """
    if amount is None or amount <= 0:
        return ""
    kind = CATEGORY_INCOME_KINDS.get(category_code or "")
    if kind:
        return kind
    text = description or ""
    if _OWN_TRANSFER_RE.search(text):
        return INCOME_OWN_TRANSFER
    if _INTEREST_RE.search(text):
        return INCOME_INTEREST
    if _CASHBACK_RE.search(text):
        return INCOME_CASHBACK
    if _REFUND_RE.search(text) or (merchant_name or "").strip():
        return INCOME_REFUND
    if _BUSINESS_RE.search(text):
        return INCOME_BUSINESS
    if _PENSION_RE.search(text):
        return INCOME_PENSION
    if _SALARY_RE.search(text):
        return INCOME_SALARY
    return INCOME_OTHER


# --- Merchant and city -------------------------------------------------------------------------

# "<Merchant> - <City>" (SPEC §17): a hyphen with spaces; a dash inside a name ("Вкусно — и
# точка") is an em dash, so the last " - " is the separator.
_CITY_SEPARATOR = " - "
# A city: capitalised words of letters, hyphens and dots ("Санкт-Петербург", "Ростов-на-Дону",
# "Нижний Новгород"), no digits.
_CITY_RE = re.compile(r"[A-ZА-ЯЁ][A-Za-zА-Яа-яЁё.\-]*(?: [A-Za-zА-Яа-яЁё.\-]+){0,3}")
_CITY_MAX_LENGTH = 40
_SPACES_RE = re.compile(r"\s+")


def _split_city(text: str) -> tuple[str, str]:
    head, separator, tail = text.rpartition(_CITY_SEPARATOR)
    head, tail = head.strip(), tail.strip()
    if separator and head and len(tail) <= _CITY_MAX_LENGTH and _CITY_RE.fullmatch(tail):
        return head, tail
    return text, ""


@lru_cache(maxsize=8192)
def merchant_and_city(description: str, merchant_name: str) -> tuple[str, str]:
    """(merchant, city) of a row: "Пятёрочка - Москва" → ("Пятёрочка", "Москва").

    The bank's merchant name when it sends one (a " - <City>" on it is split off too), the city
    from the description's "<Merchant> - <City>" when its merchant part is that name; with no
    merchant name, both from the description's shape. ("", "") when nothing looks like one.
    """
    description = _SPACES_RE.sub(" ", description or "").strip()
    name = _SPACES_RE.sub(" ", merchant_name or "").strip()
    described, described_city = _split_city(description)
    if not name:
        return (described, described_city) if described_city else ("", "")
    name, named_city = _split_city(name)
    if named_city:
        return name, named_city
    if described_city and fold(described) == fold(name):
        return name, described_city
    return name, ""
