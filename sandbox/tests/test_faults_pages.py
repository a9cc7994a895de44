"""The transaction-page faults: rows missing, a listing ending early, a page repeating forever,
malformed amounts on chosen rows, a page far over the limit; each tagged in X-Sandbox-Fault."""

import json
from decimal import Decimal, InvalidOperation

import pytest

from sandbox import faults
from sandbox.ground_truth import client_bank_truth

CLIENT = "team260-2"
LIMIT = 30  # the client has ~130 rows at its busiest account here: five pages


@pytest.fixture
def listing(bank):
    """get(page, limit) of the client's first vbank account over the interbank route, and truth."""
    b = bank("vbank")
    headers = b.interbank(b.consent(CLIENT))
    truth = client_bank_truth(CLIENT, "vbank")
    account_id = max(truth["transactions"], key=lambda key: len(truth["transactions"][key]))
    rows = truth["transactions"][account_id]
    assert len(rows) > 3 * LIMIT

    def get(page=1, limit=LIMIT):
        return b.get(
            f"/accounts/{account_id}/transactions", headers=headers, page=page, limit=limit
        )

    get.account_id = account_id
    get.rows = rows
    get.bank = b
    get.headers = headers
    return get


def _body(response) -> dict:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return json.loads(content)


def _ids(body: dict) -> list[str]:
    return [item["transactionId"] for item in body["data"]["transaction"]]


def _numeric(value) -> bool:
    try:
        return isinstance(value, str) and Decimal(value).is_finite()
    except InvalidOperation:
        return False


def test_no_page_fault_is_on_by_default(listing):
    described = faults.describe("vbank")
    assert all(not described[name] for name in faults.PAGE_FIELDS if name != "oversized_page_items")
    response = listing()
    assert faults.FAULT_HEADER not in response
    assert len(_body(response)["data"]["transaction"]) == LIMIT


def test_short_page_leaves_rows_out_and_keeps_meta(listing):
    whole = _body(listing())
    faults.set_faults("vbank", short_page_rate=1.0, rng_seed=3)
    response = listing()
    body = _body(response)
    assert response[faults.FAULT_HEADER] == "short_page"
    assert LIMIT * 3 // 4 <= len(body["data"]["transaction"]) < LIMIT
    assert set(_ids(body)) < set(_ids(whole))
    assert body["meta"] == whole["meta"] and body["links"] == whole["links"]


def test_early_end_drops_next_before_the_last_page(listing):
    faults.set_faults("vbank", early_end_rate=1.0)
    response = listing()
    body = _body(response)
    assert response[faults.FAULT_HEADER] == "early_end"
    assert "next" not in body["links"]
    assert body["meta"]["totalPages"] > 1 and body["meta"]["totalRecords"] == len(listing.rows)
    assert len(body["data"]["transaction"]) == LIMIT
    last = _body(listing(page=body["meta"]["totalPages"]))
    assert "next" not in last["links"]


def test_malformed_rows_are_the_same_rows_while_the_switches_stay(listing):
    faults.set_faults("vbank", malformed_row_rate=0.2, rng_seed=11)
    expected = {
        row["transactionId"]
        for row in listing.rows
        if faults.row_malformed("vbank", 11, 0.2, row["transactionId"])
    }
    assert expected
    seen = set()
    for _ in range(2):  # twice: the same rows both times
        bad = set()
        for page in range(1, -(-len(listing.rows) // LIMIT) + 1):
            response = listing(page=page)
            for item in _body(response)["data"]["transaction"]:
                if not _numeric(item["amount"]["amount"]):
                    bad.add(item["transactionId"])
        assert bad == expected
        seen |= bad
    faults.set_faults("vbank", malformed_row_rate=0.0)  # well-formed later
    for page in range(1, -(-len(listing.rows) // LIMIT) + 1):
        for item in _body(listing(page=page))["data"]["transaction"]:
            assert _numeric(item["amount"]["amount"])


def test_repeating_page_never_advances(listing):
    faults.set_faults("vbank", repeat_page_rate=1.0, rng_seed=5)
    pages = -(-len(listing.rows) // LIMIT)
    stuck = faults.stuck_page(faults.config_for("vbank"), listing.account_id, LIMIT, pages)
    assert 2 <= stuck <= pages
    before = _body(listing(page=stuck - 1))
    assert before["links"]["next"].endswith(f"page={stuck}&limit={LIMIT}")
    for page in range(stuck, stuck + 5):
        response = listing(page=page)
        body = _body(response)
        assert response[faults.FAULT_HEADER] == "repeat_page"
        assert _ids(body) == _ids(before)  # the same ids again …
        assert body["links"]["next"] == body["links"]["self"]  # … and next is this page
        assert body["links"]["next"].endswith(f"page={page}&limit={LIMIT}")
    # Another page size is another listing, decided apart (at rate 1: stuck too).
    config = faults.config_for("vbank")
    assert faults.stuck_page(config, listing.account_id, LIMIT - 3, pages) is not None


def test_repeating_pages_end_after_the_bound(listing, monkeypatch):
    monkeypatch.setattr(faults, "REPEATED_PAGES_MAX", 3)
    faults.set_faults("vbank", repeat_page_rate=1.0, rng_seed=5)
    pages = -(-len(listing.rows) // LIMIT)
    stuck = faults.stuck_page(faults.config_for("vbank"), listing.account_id, LIMIT, pages)
    assert "next" in _body(listing(page=stuck + 2))["links"]
    response = listing(page=stuck + 3)
    body = _body(response)
    assert response[faults.FAULT_HEADER] == "repeat_end"
    assert body["data"]["transaction"] == [] and "next" not in body["links"]


def test_repeat_rate_picks_listings_by_switches_alone():
    config = faults.FaultConfig(bank="vbank", repeat_page_rate=0.5, rng_seed=1)
    picks = [faults.stuck_page(config, f"acc-{n:04d}", 100, 5) for n in range(200)]
    assert 60 < sum(pick is not None for pick in picks) < 140
    assert picks == [faults.stuck_page(config, f"acc-{n:04d}", 100, 5) for n in range(200)]
    assert {pick for pick in picks if pick} <= {2, 3, 4, 5}


def test_oversized_page_is_streamed_with_its_length(listing):
    faults.set_faults("vbank", oversized_page_rate=1.0, oversized_page_items=5000)
    response = listing(page=2)
    assert response.streaming
    assert response[faults.FAULT_HEADER] == "oversized_page"
    content = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(content)
    body = json.loads(content)
    ids = _ids(body)
    assert len(ids) == 5000
    assert set(ids) == {row["transactionId"] for row in listing.rows}  # the listing over again
    assert body["meta"]["pageSize"] == LIMIT and body["meta"]["currentPage"] == 2
    assert "next" in body["links"]


def test_oversized_page_is_bounded(listing, monkeypatch):
    monkeypatch.setattr(faults, "OVERSIZED_MAX_ITEMS", 700)
    faults.set_faults("vbank", oversized_page_rate=1.0, oversized_page_items=900_000)
    assert len(_body(listing())["data"]["transaction"]) == 700


def test_oversized_page_carries_malformed_rows(listing):
    faults.set_faults(
        "vbank", oversized_page_rate=1.0, oversized_page_items=600, malformed_row_rate=0.3,
        rng_seed=2,
    )  # fmt: skip
    response = listing()
    assert response[faults.FAULT_HEADER] == "oversized_page,malformed_row"
    amounts = [item["amount"]["amount"] for item in _body(response)["data"]["transaction"]]
    assert any(not _numeric(amount) for amount in amounts)


def test_page_faults_leave_other_routes_and_the_other_dice_alone(listing):
    b = listing.bank

    def statuses():
        return [b.get("/products").status_code for _ in range(30)]

    faults.set_faults("vbank", error_rate=0.5, rng_seed=7)
    plain = statuses()
    faults.set_faults("vbank", error_rate=0.5, rng_seed=7, short_page_rate=1.0, early_end_rate=1.0)
    assert statuses() == plain
    accounts = b.get("/accounts", headers=listing.headers, client_id=CLIENT)
    faults.clear_faults("vbank")
    assert faults.FAULT_HEADER not in accounts


def test_page_switches_over_the_control_api(client, settings):
    settings.SANDBOX_CONTROL_TOKEN = "page-fault-token"
    response = client.post(
        "/sandbox/_control/faults/abank",
        data=json.dumps({"repeat_page_rate": 1, "oversized_page_items": 1000}),
        content_type="application/json",
        headers={"X-Sandbox-Control-Token": "page-fault-token"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["repeat_page_rate"] == 1.0
    assert response.json()["oversized_page_items"] == 1000
