from datetime import timedelta

import pytest

from banking.filters import cursor_encode
from banking.tests.factories import at, make_account, make_transaction

pytestmark = pytest.mark.django_db


def walk(client, query="", page_size=7):
    """Every page of the feed; returns the ids in order and the number of pages."""
    ids, pages, cursor = [], 0, None
    while True:
        url = f"/api/transactions?page_size={page_size}{query}"
        if cursor:
            url += f"&cursor={cursor}"
        response = client.get(url)
        assert response.status_code == 200, response.json()
        body = response.json()
        ids += [item["id"] for item in body["results"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


def test_item_has_the_normalised_fields(auth_client):
    account = make_account(user=auth_client.user, bank_account_id="acc-3846")
    tx = make_transaction(
        account=account,
        amount="-2731.40",
        booking_date=at("2025-11-23", hour=11),
        description="🏪 Продукты",
        merchant_name="Пятёрочка",
        merchant_category="grocery",
        mcc="5411",
        counterparty="Пятёрочка",
    )

    body = auth_client.get("/api/transactions").json()

    assert body["next_cursor"] is None
    assert body["page_size"] == 50
    assert body["results"] == [
        {
            "id": tx.id,
            "account_id": account.id,
            "bank_code": "vbank",
            "amount": "-2731.40",
            "currency": "RUB",
            "booking_date": "2025-11-23T11:00:00Z",
            "local_date": "2025-11-23",
            "value_date": "2025-11-23T11:00:00Z",
            "status": "booked",
            "description": "🏪 Продукты",
            "merchant_name": "Пятёрочка",
            "city": "",
            "merchant_category": "grocery",
            "mcc": "5411",
            "category": {"code": "groceries", "name_en": "Groceries", "name_ru": "Продукты"},
            "category_source": "bank_rule",
            "note": "",
            "counterparty": "Пятёрочка",
            "is_own_transfer": False,
            "transfer_pair_id": None,
        }
    ]
    assert "raw_json" not in auth_client.get(f"/api/transactions/{tx.id}").json()


def test_a_live_style_purchase_shows_its_merchant_without_the_city_and_the_city_apart(auth_client):
    account = make_account(user=auth_client.user)
    with_object = make_transaction(
        account=account,
        amount="-512.00",
        booking_date=at("2025-11-23", hour=11),
        description="Пятёрочка - Москва",
        merchant_name="Пятёрочка",
    )
    without_object = make_transaction(
        account=account,
        amount="-1800.00",
        booking_date=at("2025-11-22", hour=18),
        description="Тануки - Новосибирск",
    )

    shown = {
        row["id"]: (row["merchant_name"], row["city"])
        for row in auth_client.get("/api/transactions").json()["results"]
    }

    assert shown[with_object.id] == ("Пятёрочка", "Москва")
    assert shown[without_object.id] == ("Тануки", "Новосибирск")


def test_cursor_pages_return_each_row_once_with_ties_broken_by_id(auth_client):
    vbank = make_account(user=auth_client.user)
    abank = make_account(user=auth_client.user, bank_code="abank")
    same_moment = at("2025-11-20")
    created = []
    for _ in range(23):  # many rows share one booking time: the id decides
        created.append(make_transaction(account=vbank, amount="-1.00", booking_date=same_moment))
    for i in range(17):
        created.append(
            make_transaction(
                account=abank, amount="2.00", booking_date=at("2025-11-01") + timedelta(hours=i)
            )
        )

    ids, pages = walk(auth_client)

    assert len(ids) == len(set(ids)) == 40
    assert pages == 6
    expected = sorted(created, key=lambda t: (t.booking_date, t.id), reverse=True)
    assert ids == [t.id for t in expected]


def test_cursor_pagination_stays_correct_with_filters(auth_client):
    vbank = make_account(user=auth_client.user)
    abank = make_account(user=auth_client.user, bank_code="abank")
    wanted = []
    for day in range(1, 29):
        booked = at(f"2025-10-{day:02d}")
        wanted.append(
            make_transaction(
                account=vbank, amount="-5.00", booking_date=booked, description="🏪 Продукты"
            )
        )
        make_transaction(
            account=vbank, amount="-5.00", booking_date=booked, description="🚌 Транспорт"
        )
        make_transaction(
            account=abank, amount="-5.00", booking_date=booked, description="🏪 Продукты"
        )
    in_range = [t for t in wanted if 5 <= t.booking_date.day <= 25]

    ids, _ = walk(
        auth_client,
        f"&bank_code=vbank&category_code=groceries&from=2025-10-05&to=2025-10-25&account_id={vbank.id}",
        4,
    )

    assert ids == [t.id for t in reversed(in_range)]


def test_search_and_several_categories(auth_client):
    account = make_account(user=auth_client.user)
    shop = make_transaction(
        account=account,
        amount="-1.00",
        booking_date="2025-11-01",
        merchant_name="Пятёрочка",
        mcc="5411",
    )
    make_transaction(
        account=account, amount="-1.00", booking_date="2025-11-02", description="🚌 Транспорт"
    )
    cafe = make_transaction(
        account=account, amount="-1.00", booking_date="2025-11-03", description="Кафе Пушкин"
    )
    salary = make_transaction(
        account=account,
        amount="9.00",
        booking_date="2025-11-04",
        counterparty="ООО Работодатель",
        description="💼 Зарплата",
    )

    by_search = auth_client.get("/api/transactions?search=ятёроч").json()["results"]
    by_counterparty = auth_client.get("/api/transactions?search=Работодатель").json()["results"]
    by_categories = auth_client.get("/api/transactions?category_code=groceries,restaurants").json()[
        "results"
    ]

    assert [t["id"] for t in by_search] == [shop.id]
    assert [t["id"] for t in by_counterparty] == [salary.id]
    assert [t["id"] for t in by_categories] == [cafe.id, shop.id]


def test_a_deep_page_costs_the_same_queries(auth_client, django_assert_max_num_queries):
    account = make_account(user=auth_client.user)
    rows = [
        make_transaction(
            account=account, amount="-1.00", booking_date=at("2025-01-01") + timedelta(hours=i)
        )
        for i in range(300)
    ]
    deep = cursor_encode(booking_date=rows[20].booking_date, row_id=rows[20].id)

    with django_assert_max_num_queries(3):
        first = auth_client.get("/api/transactions?page_size=10")
    with django_assert_max_num_queries(5):
        deep_page = auth_client.get(
            f"/api/transactions?page_size=10&cursor={deep}&account_id={account.id}&category_code=other"
        )

    assert len(first.json()["results"]) == 10
    assert [t["id"] for t in deep_page.json()["results"]] == [r.id for r in reversed(rows[10:20])]


def test_other_users_transactions_are_invisible(auth_client, make_user):
    stranger = make_user()
    foreign_account = make_account(user=stranger)
    foreign = make_transaction(account=foreign_account, amount="-1.00", booking_date="2025-11-01")

    assert auth_client.get("/api/transactions").json()["results"] == []
    response = auth_client.get(f"/api/transactions/{foreign.id}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    response = auth_client.get(f"/api/transactions?account_id={foreign_account.id}")
    assert response.status_code == 400
    assert response.json()["extra"]["fields"] == {"account_id": ["No such account."]}


def test_detail_of_own_transaction(auth_client):
    account = make_account(user=auth_client.user)
    tx = make_transaction(
        account=account, amount="12.00", booking_date="2025-11-01", description="Перевод"
    )

    body = auth_client.get(f"/api/transactions/{tx.id}").json()

    assert (body["id"], body["amount"], body["category"]["code"]) == (tx.id, "12.00", "transfers")
    assert auth_client.get("/api/transactions/99999999999999999999").status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2025-13-01", "from"),
        ("to=not-a-date", "to"),
        ("from=2025-11-10&to=2025-11-01", "from"),
        ("account_id=abc", "account_id"),
        ("account_id=0", "account_id"),
        ("account_id=99999999999999999999", "account_id"),
        ("account_id=424242", "account_id"),
        ("bank_code=tbank", "bank_code"),
        ("category_code=groceries,nonsense", "category_code"),
        ("category_code=,", "category_code"),
        ("cursor=garbage", "cursor"),
        ("cursor=eyJkIjogIjIwMjUifQ", "cursor"),
        ("page_size=0", "page_size"),
        ("page_size=1000", "page_size"),
        ("search=" + "x" * 101, "search"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(auth_client, query, field):
    response = auth_client.get(f"/api/transactions?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["extra"]["fields"]) == [field]
    assert body["message"].startswith(f"{field}:")
