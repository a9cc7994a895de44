"""Transaction paging edges (SPEC §4.4)."""

import pytest

from sandbox.ground_truth import client_bank_truth

# The paging edges are written against the examples-style data (client 1's ids and volumes).
pytestmark = pytest.mark.usefixtures("examples_style")

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


# --- Tied booking times (SPEC §17): the sort has no tie-break, so pages may lose/repeat rows ----

TIE_US = 1_763_000_000_000_000  # one booking instant shared by a group of rows
TIED = [f"tx-tie-{n:02d}" for n in range(12)]


def _record(transaction_id: str, booked_us: int):
    from sandbox.generator import Record

    return Record(transaction_id=transaction_id, booked_us=booked_us, posted_us=booked_us,
                  amount=10_000, is_credit=False, information="Продукты",
                  code="IssuedDebitTransfer", merchant=-1, counterparty=None,
                  status="Booked")  # fmt: skip


def _tied_history():
    """40 rows newest first: 10 distinct times, 12 rows at one instant (positions 10–21), 18."""
    from sandbox.generator import History, Served

    newer = [_record(f"tx-new-{n:02d}", TIE_US + (10 - n) * 1_000_000) for n in range(10)]
    tied = [_record(transaction_id, TIE_US) for transaction_id in TIED]
    older = [_record(f"tx-old-{n:02d}", TIE_US - (n + 1) * 1_000_000) for n in range(18)]
    recent = [Served(record, False) for record in newer]
    return History(recent, tuple(tied + older), 0)


@pytest.fixture
def tied(bank, monkeypatch):
    from sandbox import generator

    history = _tied_history()
    monkeypatch.setattr(generator, "history", lambda key, account, now: history)
    try:  # the views ask sandbox.data where it exists (it picks the data style)
        from sandbox import data
    except ImportError:
        data = None
    if data is not None:
        monkeypatch.setattr(data, "history", lambda key, account, now: history)
    b = bank("vbank")
    headers = b.interbank(b.consent("team260-1"))

    def get(**query):
        response = b.get(f"/accounts/{ACCOUNT}/transactions", headers=headers, **query)
        assert response.status_code == 200, response.content
        return response.json()

    return get, b, headers


def _ids(body) -> list[str]:
    return [item["transactionId"] for item in body["data"]["transaction"]]


def test_tied_rows_straddling_a_page_boundary_can_be_lost_and_repeated(tied):
    _get, b, headers = tied
    losses = 0
    for limit in range(3, 22):
        items = b.all_transactions(ACCOUNT, headers, limit=limit)
        ids = [item["transactionId"] for item in items]
        assert len(ids) == 40  # every page is full: what one page loses, another repeats
        missing = set(TIED) - set(ids)
        repeated = len(ids) - len(set(ids))
        assert len(missing) == repeated
        assert set(ids) - set(TIED) == {i for i in ids if not i.startswith("tx-tie")}
        assert all(ids.count(i) == 1 for i in ids if not i.startswith("tx-tie"))
        stamps = [item["bookingDateTime"] for item in items]
        assert stamps == sorted(stamps, reverse=True)  # booking time order always holds
        losses += bool(missing)
    assert losses > 0  # with this seed some page sizes do lose a tied row


def test_tied_pages_keep_the_true_total_and_are_stable(tied):
    get, _b, _headers = tied
    for page in (1, 2, 3):
        first = get(page=page, limit=15)
        assert first["meta"] == {"totalPages": 3, "totalRecords": 40, "currentPage": page,
                                 "pageSize": 15}  # fmt: skip
        assert get(page=page, limit=15) == first  # the same request, the same answer


def test_a_page_covering_the_whole_tie_group_holds_the_whole_group(tied):
    get, _b, _headers = tied
    for page, limit in ((1, 22), (1, 25), (1, 40), (1, 100), (2, 11)):
        ids = _ids(get(page=page, limit=limit))
        offset = (page - 1) * limit
        if offset <= 10 and offset + limit >= 22:  # [offset, offset + limit) covers 10–21
            assert sorted(ids[10 - offset : 22 - offset]) == TIED
        else:  # page 2 of 11 (11–21) misses position 10: one tied row is elsewhere
            assert len(ids) == 11 and set(ids) <= set(TIED)


def test_tie_order_depends_on_the_page_end_but_the_times_never_move(tied):
    get, _b, _headers = tied
    orders = {tuple(_ids(get(page=1, limit=limit))[10:22]) for limit in (22, 25, 30, 40)}
    assert len(orders) > 1  # another N, another heapsort order among the ties
    assert all(sorted(order) == TIED for order in orders)


def test_a_page_reads_only_the_rows_around_it_however_long_the_history():
    from sandbox.generator import History, Served
    from sandbox.paging import page_items

    class CountingHistory(History):
        touched = 0

        def slice(self, start, stop):
            rows = super().slice(start, stop)
            CountingHistory.touched += len(rows)
            return rows

    base = TIE_US
    records = [_record(f"tx-{n:05d}", base - n * 1_000_000) for n in range(20_000)]
    group = [_record(f"tx-g-{n:03d}", base - 10_000 * 1_000_000 - 1) for n in range(30)]
    prefix = tuple(records[:10_000] + group + records[10_000:])
    history = CountingHistory([Served(prefix[0], False)], prefix[1:], 0)

    rows = page_items(history, offset=9_990, limit=20, salt="s")

    assert len(rows) == 20
    assert {s.record.transaction_id for s in rows[11:]} <= {r.transaction_id for r in group}
    assert CountingHistory.touched <= 20 + 30 + 2 * 16 + 16
    assert page_items(history, offset=9_990, limit=20, salt="s") == rows
    assert page_items(history, offset=20_030, limit=20, salt="s") == []
