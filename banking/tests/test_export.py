"""GET /api/transactions/export.csv: a streamed UTF-8 CSV with a BOM, local dates, the feed's
filters and ordering, only the caller's rows (run on SQLite and on PostgreSQL alike)."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from banking.serializers.transactions import CSV_HEADER, transaction_csv_chunks
from banking.tests.factories import at, make_account, make_transaction
from fintrack.core.localtime import zone_of

pytestmark = pytest.mark.django_db

URL = "/api/transactions/export.csv"
HEADER = [
    "id",
    "local_date",
    "local_time",
    "amount",
    "currency",
    "description",
    "merchant_name",
    "category_code",
    "category_name_ru",
    "counterparty",
    "bank_code",
    "account",
    "status",
]


def body_of(response) -> bytes:
    assert response.status_code == 200, response.json()
    return b"".join(response.streaming_content)


def parse(raw: bytes) -> list[list[str]]:
    """The CSV's rows after the BOM and the header (both checked)."""
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == HEADER
    return rows[1:]


def table(response) -> list[list[str]]:
    return parse(body_of(response))


def exported_ids(response) -> list[int]:
    return [int(row[0]) for row in table(response)]


def set_zone(user, name: str) -> None:
    user.time_zone = name
    user.save(update_fields=["time_zone"])


def test_the_export_is_a_streamed_attachment_with_a_bom_and_one_header_row(auth_client):
    account = make_account(user=auth_client.user, identification="40817810000000004636")
    shop = make_transaction(
        account=account,
        amount="-2731.40",
        booking_date=at("2025-11-23", hour=11),
        description="Пятёрочка - Москва",
        merchant_name="Пятёрочка",
        merchant_category="grocery",
        mcc="5411",
        category_code="groceries",
    )
    salary = make_transaction(
        account=account,
        amount="185000",
        booking_date=at("2025-11-05", hour=7),
        description="Доход",
        counterparty='ООО "Ромашка", Москва',
        category_code="salary",
    )

    response = auth_client.get(URL)

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="transactions.csv"'
    raw = body_of(response)
    assert raw.startswith("\ufeffid,local_date,local_time,amount,".encode())
    assert raw.count("\ufeff".encode()) == 1
    assert raw.decode("utf-8-sig").splitlines()[1:] == [
        f"{shop.id},2025-11-23,14:00:00,-2731.40,RUB,Пятёрочка - Москва,Пятёрочка,groceries,"
        "Продукты,,vbank,**** 4636,booked",
        f'{salary.id},2025-11-05,10:00:00,185000.00,RUB,Доход,,salary,Зарплата,"ООО ""Ромашка"", '
        'Москва",vbank,**** 4636,booked',
    ]
    assert raw.endswith(b"booked\r\n")


def test_an_empty_export_is_the_bom_and_the_header(auth_client):
    assert body_of(auth_client.get(URL)) == ("\ufeff" + ",".join(HEADER) + "\r\n").encode()


def test_dates_and_times_are_local_to_the_users_zone_across_midnight(auth_client):
    account = make_account(user=auth_client.user)
    late = make_transaction(
        account=account,
        amount="-10.00",
        booking_date=datetime(2025, 11, 30, 21, 30, tzinfo=UTC),  # Moscow: 1 Dec 00:30
        description="Аптека",
        category_code="health",
    )
    early = make_transaction(
        account=account,
        amount="-20.00",
        booking_date=datetime(2025, 11, 30, 20, 59, tzinfo=UTC),  # Moscow: 30 Nov 23:59
        description="Аптека",
        category_code="health",
    )

    moscow = [(row[0], row[1], row[2]) for row in table(auth_client.get(URL))]
    december = exported_ids(auth_client.get(f"{URL}?from=2025-12-01&to=2025-12-01"))
    set_zone(auth_client.user, "Asia/Novosibirsk")
    novosibirsk = [(row[0], row[1], row[2]) for row in table(auth_client.get(URL))]
    set_zone(auth_client.user, "UTC")
    utc = [(row[0], row[1], row[2]) for row in table(auth_client.get(URL))]

    assert moscow == [
        (str(late.id), "2025-12-01", "00:30:00"),
        (str(early.id), "2025-11-30", "23:59:00"),
    ]
    assert december == [late.id]
    assert novosibirsk == [
        (str(late.id), "2025-12-01", "04:30:00"),
        (str(early.id), "2025-12-01", "03:59:00"),
    ]
    assert utc == [
        (str(late.id), "2025-11-30", "21:30:00"),
        (str(early.id), "2025-11-30", "20:59:00"),
    ]


def test_the_feeds_filters_and_ordering_apply(auth_client):
    account = make_account(user=auth_client.user)
    other_account = make_account(user=auth_client.user, bank_code="abank")

    def row(description, amount, day, **fields):
        return make_transaction(
            account=fields.pop("account", account),
            amount=amount,
            booking_date=at(day),
            description=description,
            category_code=fields.pop("category_code", "groceries"),
            **fields,
        )

    small = row("Пятёрочка - Москва", "-90.00", "2025-11-10")
    big = row("ПЯТЕРОЧКА - Москва", "-1900.00", "2025-11-11", merchant_name="Пятёрочка")
    refund = row("Пятёрочка - Москва", "500.00", "2025-11-12")
    elsewhere = row("Пятёрочка - Москва", "-700.00", "2025-11-13", account=other_account)
    cafe = row("Тануки - Москва", "-1500.00", "2025-11-14", category_code="restaurants")
    old = row("Пятёрочка - Москва", "-800.00", "2025-09-01")

    def export(query: str) -> list[int]:
        return exported_ids(auth_client.get(f"{URL}?{query}"))

    assert export("search=пятёрочка&direction=out&amount_min=100") == [elsewhere.id, big.id, old.id]
    assert export("merchant_name=пятерочка&ordering=-amount") == [
        big.id,
        old.id,
        elsewhere.id,
        refund.id,
        small.id,
    ]
    assert export("ordering=amount&amount_max=800") == [small.id, refund.id, elsewhere.id, old.id]
    assert export("category_code=restaurants") == [cafe.id]
    assert export("direction=in") == [refund.id]
    assert export(f"account_id={other_account.id}") == [elsewhere.id]
    assert export("bank_code=abank") == [elsewhere.id]
    assert export("from=2025-11-11&to=2025-11-13&ordering=date") == [
        big.id,
        refund.id,
        elsewhere.id,
    ]


def test_another_users_rows_are_never_exported(auth_client, make_user):
    mine = make_transaction(
        account=make_account(user=auth_client.user),
        amount="-1.00",
        booking_date="2025-11-01",
        description="Пятёрочка - Москва",
    )
    stranger = make_user()
    theirs = make_account(user=stranger, bank_account_id="acc-stranger")
    make_transaction(
        account=theirs, amount="-2.00", booking_date="2025-11-02", description="Пятёрочка - Москва"
    )

    assert exported_ids(auth_client.get(URL)) == [mine.id]
    assert exported_ids(auth_client.get(f"{URL}?search=пятерочка")) == [mine.id]
    response = auth_client.get(f"{URL}?account_id={theirs.id}")
    assert response.status_code == 400
    assert response.json()["extra"]["fields"] == {"account_id": ["No such account."]}


def test_the_export_needs_a_token(make_user):
    response = APIClient().get(URL)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("amount_min=abc", "amount_min"),
        ("amount_min=10&amount_max=5", "amount_min"),
        ("direction=up", "direction"),
        ("merchant_name=", "merchant_name"),
        ("ordering=price", "ordering"),
        ("category_code=nonsense", "category_code"),
        ("from=2025-13-01", "from"),
        ("account_id=0", "account_id"),
        ("bank_code=tbank", "bank_code"),
        ("search=" + "x" * 101, "search"),
    ],
)
@pytest.mark.parametrize("accept", ["*/*", "text/csv"])
def test_bad_input_is_a_json_400_in_the_standard_shape(auth_client, query, field, accept):
    response = auth_client.get(f"{URL}?{query}", HTTP_ACCEPT=accept)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == "validation_error"
    assert list(body["extra"]["fields"]) == [field]


def test_paging_parameters_are_not_export_parameters(auth_client):
    make_transaction(
        account=make_account(user=auth_client.user), amount="-1.00", booking_date="2025-11-01"
    )

    # The whole matching set, whatever a client copied from a feed URL.
    assert len(exported_ids(auth_client.get(f"{URL}?page_size=0&cursor=garbage"))) == 1


def test_text_cells_a_spreadsheet_would_run_as_a_formula_are_defused(auth_client):
    account = make_account(user=auth_client.user)
    make_transaction(
        account=account,
        amount="-5.00",
        booking_date="2025-11-01",
        description='=HYPERLINK("http://evil.example","click")',
        counterparty="@SUM(A1)",
        merchant_name="+cmd",
    )

    (row,) = table(auth_client.get(URL))

    assert row[3] == "-5.00"  # a negative amount stays a number
    assert (row[5], row[6], row[9]) == (
        '\'=HYPERLINK("http://evil.example","click")',
        "'+cmd",
        "'@SUM(A1)",
    )


def test_the_export_query_count_does_not_grow_with_rows(auth_client, django_assert_num_queries):
    account = make_account(user=auth_client.user)
    for day in range(1, 29):
        make_transaction(account=account, amount="-1.00", booking_date=f"2025-11-{day:02d}")

    # JWT user, the export's one query (chunks come from the same cursor).
    with django_assert_num_queries(2):
        assert len(exported_ids(auth_client.get(URL))) == 28


def test_csv_chunks_hold_a_bounded_number_of_rows():
    moment = datetime(2025, 11, 1, 12, tzinfo=UTC)
    rows = [
        (
            n,
            moment,
            Decimal(f"{n}.00"),
            "RUB",
            f"Row {n}",
            "",
            "other",
            "Прочее",
            "",
            "vbank",
            "x",
            "",
            "booked",
        )
        for n in range(1, 6)
    ]

    chunks = list(transaction_csv_chunks(iter(rows), zone=zone_of("UTC"), rows_per_chunk=2))

    assert [chunk.decode("utf-8-sig").count("\r\n") for chunk in chunks] == [3, 2, 1]
    assert chunks[0].startswith("\ufeff".encode() + ",".join(CSV_HEADER).encode())
    assert b"".join(chunks).decode("utf-8-sig").splitlines()[-1] == (
        "5,2025-11-01,12:00:00,5.00,RUB,Row 5,,other,Прочее,,vbank,x,booked"
    )


@pytest.mark.django_db(transaction=True)
def test_the_export_streams_in_autocommit_as_in_production(make_user):
    """Outside a test transaction: PostgreSQL's server-side cursor is then WITH HOLD."""
    from banking.categories import categories_seed
    from banking.categorization import category_cache_clear
    from users.services import token_pair_for

    categories_seed()  # transactional tests flush the migration-seeded categories
    category_cache_clear()
    user = make_user(email="anna@example.com")
    account = make_account(user=user)
    created = [
        make_transaction(account=account, amount=f"-{n}.00", booking_date=at("2025-11-01", n))
        for n in range(1, 6)
    ]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")

    response = client.get(f"{URL}?ordering=amount")
    chunks = iter(response.streaming_content)
    first = next(chunks)

    assert first.startswith("\ufeff".encode())
    assert [int(row[0]) for row in parse(first + b"".join(chunks))] == [row.id for row in created]
