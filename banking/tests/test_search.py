"""Search, filters and ordering of GET /api/transactions, the same on SQLite and PostgreSQL.

Run this file both ways (nothing here is skipped on either): as it is, on SQLite, and with
DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> on PostgreSQL.
"""

import base64
import json
from datetime import timedelta

import pytest

from banking.filters import Fold
from banking.models import Transaction
from banking.tests.factories import at, make_account, make_transaction
from banking.textfold import fold

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [item["id"] for item in response.json()["results"]]


def walk(client, query: str, page_size: int = 3) -> list[int]:
    """Every row of the feed for `query`, following next_cursor page by page."""
    found, cursor = [], None
    while True:
        url = f"/api/transactions?page_size={page_size}{query}"
        if cursor:
            url += f"&cursor={cursor}"
        response = client.get(url)
        found += ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found


def spend(account, description="", amount="-100.00", day="2025-11-10", hour=12, **fields):
    return make_transaction(
        account=account,
        amount=amount,
        booking_date=at(day, hour=hour),
        description=description,
        category_code=fields.pop("category_code", "other"),
        **fields,
    )


# --- The fold itself ---------------------------------------------------------------------------

FOLD_CASES = [
    "Пятёрочка - Москва",
    "ПЯТЁРОЧКА",
    "ЁЛКА ёлка Елка",
    "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "OZON Zara Gloria Jeans",
    "Вкусно — и точка",
    "  Перекрёсток\u00a0\u00a0-\tМосква \n",
    "a\u2003\u3000b\u202fc\u0085d",
    "Проценты по депозиту №dep-team260-1-1080",
    "100% кэшбэк_тест \\ 'кавычки'",
    "",
]


@pytest.mark.parametrize("text", FOLD_CASES)
def test_the_database_folds_a_column_exactly_as_python_does(user, text):
    account = make_account(user=user)
    row = spend(account, description=text)

    in_sql = (
        Transaction.objects.filter(pk=row.pk)
        .annotate(folded=Fold("description"))
        .values_list("folded", flat=True)
        .get()
    )

    assert in_sql == fold(text)


# --- Search ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term",
    ["пятёрочка", "ПЯТЕРОЧКА", "Пятерочка", "пЯтЁрОчКа", "ятерочк", "пятерочка - москва"],
)
def test_search_ignores_case_and_treats_yo_as_ye(auth_client, term):
    account = make_account(user=auth_client.user)
    shop = spend(account, "Пятёрочка - Москва", merchant_name="Пятёрочка", day="2025-11-10")
    plain = spend(account, "ПЯТЕРОЧКА - Новосибирск", day="2025-11-09")
    spend(account, "Перекрёсток - Москва", merchant_name="Перекрёсток", day="2025-11-08")

    assert ids(auth_client.get(f"/api/transactions?search={term}")) == (
        [shop.id] if "москва" in term else [shop.id, plain.id]
    )


def test_search_looks_in_description_merchant_and_counterparty(auth_client):
    account = make_account(user=auth_client.user)
    by_description = spend(account, "Оплата ВкусВилл", day="2025-11-10")
    by_merchant = spend(account, "Покупка", merchant_name="ВКУСВИЛЛ", day="2025-11-09")
    by_counterparty = spend(account, "Перевод", counterparty="ИП ВкусВилл", day="2025-11-08")
    spend(account, "Магнит - Москва", merchant_name="Магнит", day="2025-11-07")

    assert ids(auth_client.get("/api/transactions?search=вкусвилл")) == [
        by_description.id,
        by_merchant.id,
        by_counterparty.id,
    ]


def test_search_collapses_spaces_and_matches_percent_and_underscore_literally(auth_client):
    account = make_account(user=auth_client.user)
    spaced = spend(account, "Вкусно  —\u00a0и   точка - Москва", day="2025-11-10")
    percent = spend(account, "Кэшбэк 100% за октябрь", day="2025-11-09")
    underscore = spend(account, "Перевод по_номеру", day="2025-11-08")
    spend(account, "Кэшбэк 1000 бонусов", day="2025-11-07")
    spend(account, "Перевод по номеру", day="2025-11-06")

    assert ids(auth_client.get("/api/transactions?search=вкусно — и точка")) == [spaced.id]
    assert ids(auth_client.get("/api/transactions?search=100%25")) == [percent.id]
    assert ids(auth_client.get("/api/transactions?search=по_номеру")) == [underscore.id]
    assert ids(auth_client.get("/api/transactions?search=%25")) == [percent.id]


def test_search_never_shows_another_users_rows(auth_client, make_user):
    mine = spend(make_account(user=auth_client.user), "Пятёрочка - Москва")
    spend(make_account(user=make_user()), "Пятёрочка - Москва")

    assert ids(auth_client.get("/api/transactions?search=пятерочка")) == [mine.id]


# --- Filters -----------------------------------------------------------------------------------


def test_amount_range_is_on_the_absolute_amount_inclusive(auth_client):
    account = make_account(user=auth_client.user)
    rows = {
        amount: spend(account, amount=amount, day=f"2025-11-{day:02d}")
        for day, amount in enumerate(
            ["-99.99", "-100.00", "250.00", "-500.00", "500.01", "-1000.00"], start=1
        )
    }

    between = ids(auth_client.get("/api/transactions?amount_min=100&amount_max=500"))
    at_least = ids(auth_client.get("/api/transactions?amount_min=500.01"))
    at_most = ids(auth_client.get("/api/transactions?amount_max=100.00"))

    assert between == [rows["-500.00"].id, rows["250.00"].id, rows["-100.00"].id]
    assert at_least == [rows["-1000.00"].id, rows["500.01"].id]
    assert at_most == [rows["-100.00"].id, rows["-99.99"].id]


def test_direction_in_and_out(auth_client):
    account = make_account(user=auth_client.user)
    salary = spend(account, "Доход", amount="185000.00", day="2025-11-05")
    coffee = spend(account, "Шоколадница - Москва", amount="-350.00", day="2025-11-06")

    assert ids(auth_client.get("/api/transactions?direction=in")) == [salary.id]
    assert ids(auth_client.get("/api/transactions?direction=out")) == [coffee.id]


def test_category_filter_takes_codes(auth_client):
    account = make_account(user=auth_client.user)
    food = spend(account, "Пятёрочка - Москва", day="2025-11-05", category_code="groceries")
    cafe = spend(account, "Тануки - Москва", day="2025-11-06", category_code="restaurants")
    spend(account, "Метро", day="2025-11-07", category_code="transport")

    assert ids(auth_client.get("/api/transactions?category_code=groceries")) == [food.id]
    assert ids(auth_client.get("/api/transactions?category_code=restaurants,groceries")) == [
        cafe.id,
        food.id,
    ]


@pytest.mark.parametrize("term", ["Пятёрочка", "пятерочка", "ПЯТЁРОЧКА", " пятёрочка "])
def test_merchant_filter_matches_the_merchant_name_without_the_city(auth_client, term):
    account = make_account(user=auth_client.user)
    by_name = spend(account, "Пятёрочка - Москва", merchant_name="Пятёрочка", day="2025-11-10")
    with_city = spend(account, "Покупка", merchant_name="ПЯТЁРОЧКА - Тула", day="2025-11-09")
    by_description = spend(account, "Пятерочка - Новосибирск", day="2025-11-08")
    spend(
        account, "Пятёрочка Экспресс - Орёл", merchant_name="Пятёрочка Экспресс", day="2025-11-07"
    )
    spend(account, "Оплата Пятёрочка", day="2025-11-06")  # no "<Merchant> - <City>" shape
    spend(account, "Пятёрочка - Москва", merchant_name="Магнит", day="2025-11-05")  # the bank's
    spend(account, "Доставка Пятёрочка - Москва", day="2025-11-04")

    assert ids(auth_client.get(f"/api/transactions?merchant_name={term}")) == [
        by_name.id,
        with_city.id,
        by_description.id,
    ]


def test_filters_combine_with_search_and_dates(auth_client):
    account = make_account(user=auth_client.user)
    wanted = spend(account, "Пятёрочка - Москва", amount="-900.00", day="2025-11-10")
    spend(account, "Пятёрочка - Москва", amount="-90.00", day="2025-11-10")  # too small
    spend(account, "Пятёрочка - Москва", amount="900.00", day="2025-11-10")  # a refund: in
    spend(account, "Пятёрочка - Москва", amount="-900.00", day="2025-10-01")  # before `from`
    spend(account, "Магнит - Москва", amount="-900.00", day="2025-11-10")

    response = auth_client.get(
        "/api/transactions?search=ПЯТЕРОЧКА&direction=out&amount_min=500&from=2025-11-01"
    )

    assert ids(response) == [wanted.id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("amount_min=abc", "amount_min"),
        ("amount_min=-1", "amount_min"),
        ("amount_min=1.005", "amount_min"),
        ("amount_min=NaN", "amount_min"),
        ("amount_min=1e309", "amount_min"),
        ("amount_max=Infinity", "amount_max"),
        ("amount_max=" + "9" * 40, "amount_max"),
        ("amount_min=10&amount_max=5", "amount_min"),
        ("direction=sideways", "direction"),
        ("direction=", "direction"),
        ("merchant_name=", "merchant_name"),
        ("merchant_name=%20%20", "merchant_name"),
        ("merchant_name=" + "м" * 101, "merchant_name"),
        ("merchant_name=a%00b", "merchant_name"),
        ("search=", "search"),
        ("search=a%00b", "search"),
        ("ordering=price", "ordering"),
        ("ordering=", "ordering"),
        ("ordering=-id", "ordering"),
        ("category_code=nonsense", "category_code"),
    ],
)
def test_bad_filter_values_are_a_400_in_the_standard_shape(auth_client, query, field):
    make_account(user=auth_client.user)

    response = auth_client.get(f"/api/transactions?{query}")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == "validation_error"
    assert list(body["extra"]["fields"]) == [field]
    assert body["message"].startswith(f"{field}:")


# --- Ordering and the cursor -------------------------------------------------------------------


@pytest.fixture
def ordered_rows(auth_client):
    """Rows with tied dates and tied |amount|s, created in an order that is neither."""
    account = make_account(user=auth_client.user)
    moment = at("2025-11-10")
    specs = [
        ("-300.00", moment),
        ("300.00", moment),
        ("-5.50", moment + timedelta(hours=1)),
        ("-300.00", moment - timedelta(days=1)),
        ("1200.00", moment),
        ("-5.50", moment - timedelta(days=2)),
        ("-0.01", moment + timedelta(hours=1)),
        ("300.00", moment - timedelta(days=3)),
    ]
    return [
        make_transaction(account=account, amount=amount, booking_date=when, category_code="other")
        for amount, when in specs
    ]


@pytest.mark.parametrize(
    ("ordering", "key"),
    [
        ("-date", lambda row: (-row.booking_date.timestamp(), -row.id)),
        ("date", lambda row: (row.booking_date.timestamp(), row.id)),
        ("-amount", lambda row: (-abs(row.amount), -row.id)),
        ("amount", lambda row: (abs(row.amount), row.id)),
    ],
)
@pytest.mark.parametrize("page_size", [1, 2, 3, 50])
def test_every_ordering_pages_each_row_once_with_ties_broken_by_id(
    auth_client, ordered_rows, ordering, key, page_size
):
    expected = [row.id for row in sorted(ordered_rows, key=key)]

    assert walk(auth_client, f"&ordering={ordering}", page_size) == expected


def test_amount_ordering_pages_correctly_with_filters(auth_client, ordered_rows):
    wanted = [row for row in ordered_rows if row.amount < 0 and abs(row.amount) >= 1]
    expected = [row.id for row in sorted(wanted, key=lambda row: (-abs(row.amount), -row.id))]

    assert walk(auth_client, "&ordering=-amount&direction=out&amount_min=1", 1) == expected


def test_the_default_ordering_is_newest_first(auth_client, ordered_rows):
    assert ids(auth_client.get("/api/transactions")) == ids(
        auth_client.get("/api/transactions?ordering=-date")
    )


def test_a_cursor_only_works_with_the_ordering_it_was_issued_for(auth_client, ordered_rows):
    by_amount = auth_client.get("/api/transactions?ordering=-amount&page_size=2").json()
    by_date = auth_client.get("/api/transactions?page_size=2").json()

    wrong_ordering = auth_client.get(f"/api/transactions?cursor={by_amount['next_cursor']}")
    date_cursor_for_amount = auth_client.get(
        f"/api/transactions?ordering=amount&cursor={by_date['next_cursor']}"
    )

    for response, issued_for in ((wrong_ordering, "-amount"), (date_cursor_for_amount, "-date")):
        assert response.status_code == 400
        body = response.json()
        assert body["extra"]["fields"] == {"cursor": ["Invalid cursor."]}
        assert body["message"] == (
            f"cursor: issued for ordering={issued_for}; pass the same ordering with it, "
            "or start over."
        )


def _forged(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        {"i": 1, "a": "-1", "o": "-amount"},
        {"i": 1, "a": 1, "o": "-amount"},
        {"i": 1, "a": "NaN", "o": "-amount"},
        {"i": 1, "a": "Infinity", "o": "-amount"},
        {"i": 1, "a": "x", "o": "-amount"},
        {"i": 1, "o": "-amount"},
        {"i": 0, "a": "1.00", "o": "-amount"},
        {"i": 1, "a": "1.00", "o": "size"},
        {"i": 1, "d": "2025-11-10T12:00:00+00:00", "o": "-amount"},
    ],
)
def test_a_forged_amount_cursor_is_a_400(auth_client, payload):
    response = auth_client.get(f"/api/transactions?ordering=-amount&cursor={_forged(payload)}")

    assert response.status_code == 400
    assert response.json()["extra"]["fields"] == {"cursor": ["Invalid cursor."]}


def test_postgresqls_fallback_for_a_c_locale_lowers_every_russian_capital():
    """Where lower() folds ASCII only (LC_CTYPE "C"), translate() of these letters must do."""
    from banking.filters import _PG_LOWER, _PG_UPPER

    alphabet = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя"
    ascii_lowered = "".join(c.lower() if c.isascii() else c for c in alphabet + "ABC xyz")

    assert ascii_lowered.translate(str.maketrans(_PG_UPPER, _PG_LOWER)) == fold(
        alphabet + "ABC xyz"
    )
