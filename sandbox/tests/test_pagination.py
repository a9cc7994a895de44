"""Transaction paging edges (SPEC §4.4)."""

import pytest

from sandbox.ground_truth import client_bank_truth

ACCOUNT = "acc-100010"


@pytest.fixture
def paging(bank):
    b = bank("vbank")
    headers = b.interbank(b.consent("team260-1"))
    total = len(client_bank_truth("team260-1", "vbank")["transactions"][ACCOUNT])
    assert total > 200  # the fixed seed gives client 1 a few hundred rows here

    def get(**query):
        return b.get(f"/accounts/{ACCOUNT}/transactions", headers=headers, **query)

    return get, total


def test_default_page_is_first_50_with_next_link(paging):
    get, total = paging
    body = get().json()
    assert len(body["data"]["transaction"]) == 50
    base = f"/accounts/{ACCOUNT}/transactions"
    assert body["links"] == {"self": f"{base}?page=1&limit=50", "next": f"{base}?page=2&limit=50"}
    assert body["meta"] == {"totalPages": -(-total // 50), "totalRecords": total,
                            "currentPage": 1, "pageSize": 50}  # fmt: skip


def test_limit_100_is_accepted_and_101_is_422(paging):
    get, _ = paging
    assert len(get(limit=100).json()["data"]["transaction"]) == 100
    response = get(limit=101)
    assert response.status_code == 422
    assert response.json() == {"detail": [{"type": "less_than_equal", "loc": ["query", "limit"],
                                           "msg": "Input should be less than or equal to 100",
                                           "input": "101", "ctx": {"le": 100}}]}  # fmt: skip
    response = get(limit=0)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "greater_than_equal"
    assert get(limit="ten").json()["detail"][0]["type"] == "int_parsing"


def test_last_page_has_prev_but_no_next(paging):
    get, total = paging
    last = -(-total // 100)
    body = get(page=last, limit=100).json()
    assert len(body["data"]["transaction"]) == total - (last - 1) * 100
    assert "next" not in body["links"]
    assert body["links"]["prev"] == f"/accounts/{ACCOUNT}/transactions?page={last - 1}&limit=100"


def test_page_beyond_last_is_empty(paging):
    get, total = paging
    body = get(page=99, limit=100).json()
    assert body["data"]["transaction"] == []
    assert body["meta"] == {"totalPages": -(-total // 100), "totalRecords": total,
                            "currentPage": 99, "pageSize": 100}  # fmt: skip
    assert "next" not in body["links"]
    assert body["links"]["prev"] == f"/accounts/{ACCOUNT}/transactions?page=98&limit=100"


def test_page_zero_and_negative_are_coerced_to_one(paging):
    get, _ = paging
    first = get(page=1, limit=10).json()
    for page in (0, -5):
        body = get(page=page, limit=10).json()
        assert body["meta"]["currentPage"] == 1
        assert "prev" not in body["links"]
        assert body["data"] == first["data"]


def test_small_pages_concatenate_to_the_whole_history_newest_first(paging, bank):
    get, total = paging
    items, page = [], 1
    while True:
        body = get(page=page, limit=7).json()
        items += body["data"]["transaction"]
        if "next" not in body["links"]:
            break
        page += 1
    assert items == client_bank_truth("team260-1", "vbank")["transactions"][ACCOUNT]
    assert len({t["transactionId"] for t in items}) == total
    stamps = [t["bookingDateTime"] for t in items]
    assert stamps == sorted(stamps, reverse=True)


def test_date_filters_are_accepted_and_ignored(paging):
    get, total = paging
    body = get(from_booking_date_time="2025-11-01T00:00:00Z",
               to_booking_date_time="2025-11-02T00:00:00Z").json()  # fmt: skip
    assert body["meta"]["totalRecords"] == total


def test_accounts_without_history_page_empty(bank):
    b = bank("vbank")
    headers = b.interbank(b.consent("team260-1"))
    body = b.get("/accounts/acc-100013/transactions", headers=headers).json()
    assert body["data"]["transaction"] == []
    assert body["meta"] == {"totalPages": 0, "totalRecords": 0, "currentPage": 1, "pageSize": 50}
