"""Paging is bounded (issue 20): a listing that does not advance stops the read with a
BankPagingError instead of ~20 reads a second until the task's limit; a page over the contract's
size is refused: more items than the limit asked, or a body over BANK_MAX_RESPONSE_BYTES, which is
never read into memory (streamed, cut at the limit)."""

import io
import json
import re
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from banking.clients import VBankClient
from banking.clients.errors import BankPagingError, BankResponseError
from banking.clients.types import BankTransaction, TransactionPage
from banking.models import Account, BankConnection, Transaction
from banking.tests.factories import make_account
from sync.models import SyncRun, SyncStatus
from sync.reader import PageFetcher, TransactionCounts, account_transactions_sync
from sync.services import sync_run_execute
from sync.tests import fakebank as fb

BASE = "https://vbank.test"
ACCOUNT = "acc-1"
PAGES_URL = f"{BASE}/accounts/{ACCOUNT}/transactions"
T0 = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


def _client(**options) -> VBankClient:
    client = VBankClient(
        base_url=BASE, team_id="team260", team_secret="s", token_provider=lambda: "tok", **options
    )
    client.sleep = lambda seconds: None
    return client


def _item(n: int) -> dict:
    return fb.tx(f"tx-{n}", T0 - timedelta(minutes=n))


def _page_body(items, *, page: int, next_page: int | None, limit: int = 100) -> dict:
    links = {"self": f"/accounts/{ACCOUNT}/transactions?page={page}&limit={limit}"}
    if next_page is not None:
        links["next"] = f"/accounts/{ACCOUNT}/transactions?page={next_page}&limit={limit}"
    meta = {"totalPages": 9, "totalRecords": 900, "currentPage": page, "pageSize": limit}
    return {"data": {"transaction": items}, "links": links, "meta": meta}


def _get_page(client: VBankClient, page: int = 2, limit: int = 100) -> TransactionPage:
    return client.get_transactions_page(
        client_id="team260-1", account_id=ACCOUNT, consent_id="consent-1", page=page, limit=limit
    )


# --- The client: links.next must advance, no more items than asked ------------------------------


@pytest.mark.parametrize("next_page", [2, 1], ids=["links to itself", "links back"])
@responses.activate(assert_all_requests_are_fired=True)
def test_a_page_whose_next_link_does_not_advance_is_a_paging_error(next_page):
    responses.get(PAGES_URL, json=_page_body([_item(1)], page=2, next_page=next_page))

    with pytest.raises(BankPagingError) as raised:
        _get_page(_client(), page=2)

    assert raised.value.code == "bank_paging_error"
    assert raised.value.retryable is False
    assert "does not advance" in raised.value.message
    assert len(responses.calls) == 1  # not retried


@responses.activate(assert_all_requests_are_fired=True)
def test_a_next_link_to_a_later_page_is_read_as_usual():
    responses.get(PAGES_URL, json=_page_body([_item(1)], page=2, next_page=3))

    page = _get_page(_client(), page=2)

    assert (page.has_next, [t.transaction_id for t in page.transactions]) == (True, ["tx-1"])


@responses.activate(assert_all_requests_are_fired=True)
def test_a_page_with_more_items_than_the_limit_asked_is_refused():
    items = [_item(n) for n in range(11)]
    responses.get(PAGES_URL, json=_page_body(items, page=1, next_page=None, limit=10))

    with pytest.raises(BankResponseError) as raised:
        _get_page(_client(), page=1, limit=10)

    assert raised.value.code == "bank_bad_response"
    assert raised.value.message == (
        "vbank: transactions page 1 has 11 items, more than the 10 asked for"
    )


# --- The transport: bodies over the byte limit are refused unread -------------------------------


def _oversized_body(items: int) -> bytes:
    item = json.dumps(_item(1)).encode()
    return b'{"data":{"transaction":[' + b",".join([item] * items) + b'],"meta":{}}'


@responses.activate(assert_all_requests_are_fired=True)
def test_a_body_declared_over_the_byte_limit_is_refused_without_reading_it():
    exchanges = []
    client = _client(max_response_bytes=64 * 1024)
    client.exchange_hook = exchanges.append
    body = _oversized_body(2_000)  # ~1 MB
    responses.get(PAGES_URL, body=body, headers={"Content-Length": str(len(body))})

    with pytest.raises(BankResponseError) as raised:
        _get_page(client, page=1)

    assert raised.value.message == (
        f"vbank /accounts/{ACCOUNT}/transactions: response body of {len(body)} bytes, over the"
        " 65536-byte limit; refused unread"
    )
    assert len(responses.calls) == 1  # a bad answer is not asked again
    (exchange,) = exchanges
    assert (exchange.status_code, exchange.response_text) == (200, "")
    assert "over the 65536-byte limit" in exchange.error


class _EndlessPage(io.RawIOBase):
    """A body of 200,000 items (~130 MB) made as it is read; counts the bytes handed out."""

    def __init__(self):
        self.item = json.dumps(_item(1)).encode() + b","
        self.pending = b'{"data":{"transaction":['
        self.items_left = 200_000
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self.pending) < len(buffer) and self.items_left:
            batch = min(self.items_left, 100)
            self.pending += self.item * batch
            self.items_left -= batch
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        self.served += size
        return size


def test_a_streamed_body_is_cut_at_the_byte_limit_within_a_memory_bound():
    """No Content-Length (chunked): the body is read a chunk at a time and dropped past the limit;
    a 200,000-item page costs a few MB, not the 1.7 GB a parsed one took."""
    endless = _EndlessPage()
    client = _client(max_response_bytes=1024 * 1024)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(
            responses.GET,
            PAGES_URL,
            body=io.BufferedReader(endless),
            content_type="application/json",
            auto_calculate_content_length=False,
        )
        tracemalloc.start()
        try:
            with pytest.raises(BankResponseError) as raised:
                _get_page(client, page=1)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert "response body of more, over the 1048576-byte limit" in raised.value.message
    assert peak < 8 * 1024 * 1024
    assert endless.served < 2 * 1024 * 1024  # it stopped reading right after the limit
    assert endless.items_left > 190_000


@responses.activate(assert_all_requests_are_fired=True)
def test_a_body_under_the_limit_is_read_whole():
    items = [_item(n) for n in range(100)]
    body = json.dumps(_page_body(items, page=1, next_page=None))
    responses.get(PAGES_URL, body=body, content_type="application/json")

    page = _get_page(_client(max_response_bytes=len(body.encode())), page=1)

    assert len(page.transactions) == 100


# --- The reader: a page repeating the one before, a page past totalPages -------------------------


def _bank_tx(tx_id: str, when: datetime) -> BankTransaction:
    return BankTransaction(
        account_id=ACCOUNT,
        transaction_id=tx_id,
        amount=Decimal("-1.00"),
        currency="RUB",
        status="booked",
        booking_date=when,
        value_date=when,
        description="",
        bank_transaction_code="",
        merchant_name="",
        merchant_category="",
        mcc="",
        counterparty="",
        raw={"transactionId": tx_id},
    )


class _ScriptedClient:
    """Pages by number from `pages(number)`; counts the calls."""

    def __init__(self, pages):
        self.pages = pages
        self.calls: list[int] = []

    def get_transactions_page(self, *, page: int, limit: int, **_ignored) -> TransactionPage:
        self.calls.append(page)
        return self.pages(page)


def _read(account, client, *, lookahead: bool = False) -> TransactionCounts:
    counts = TransactionCounts()
    fetcher = PageFetcher(lookahead=lookahead)
    try:
        account_transactions_sync(
            client=client,
            account=account,
            client_id="team260-1",
            consent_id="consent-1",
            counts=counts,
            fetcher=fetcher,
        )
    finally:
        fetcher.close()
    return counts


def _distinct_page(number: int) -> list[BankTransaction]:
    return [_bank_tx(f"p{number}-{n}", T0 - timedelta(hours=number, minutes=n)) for n in range(3)]


@pytest.mark.parametrize("lookahead", [False, True])
@pytest.mark.django_db
def test_a_page_repeating_the_one_before_stops_the_read_with_a_paging_error(user, lookahead):
    account = make_account(user=user)

    def pages(number: int) -> TransactionPage:
        rows = _distinct_page(min(number, 2))  # page 3 on repeats page 2, saying "next" forever
        return TransactionPage(rows, page=number, total_pages=None, total_records=None,
                               has_next=True)  # fmt: skip

    client = _ScriptedClient(pages)

    with pytest.raises(BankPagingError) as raised:
        _read(account, client, lookahead=lookahead)

    assert raised.value.message == (
        f"vbank account {account.bank_account_id}: page 3 repeats the rows of page 2; the"
        " listing does not advance, so the read stopped"
    )
    assert client.calls[:3] == [1, 2, 3]
    assert len(client.calls) <= 3 + 5  # what lookahead had in flight, not thousands
    # The rows read before it are kept; nothing moved the watermark.
    assert Transaction.objects.filter(account=account).count() == 6
    assert Account.objects.get(pk=account.pk).transactions_synced_through is None


@pytest.mark.django_db
def test_a_page_past_the_banks_total_pages_still_saying_next_stops_the_read(user):
    account = make_account(user=user)

    def pages(number: int) -> TransactionPage:
        return TransactionPage(_distinct_page(number), page=number, total_pages=2,
                               total_records=None, has_next=True)  # fmt: skip

    client = _ScriptedClient(pages)

    with pytest.raises(BankPagingError) as raised:
        _read(account, client)

    assert "page 3 still links a next page past the bank's totalPages (2)" in raised.value.message
    assert client.calls == [1, 2, 3]


@pytest.mark.django_db
def test_pages_of_one_tied_instant_may_repeat_a_little_but_not_forever(user):
    """A tie group bigger than two pages may show the same rows on two pages (ties are ordered
    anew per page): tolerated twice in a row, the third repeat is a stuck listing."""
    account = make_account(user=user)
    tied = [_bank_tx(f"t{n}", T0) for n in range(3)]

    def pages(number: int) -> TransactionPage:
        return TransactionPage(list(tied), page=number, total_pages=None, total_records=None,
                               has_next=True)  # fmt: skip

    client = _ScriptedClient(pages)

    with pytest.raises(BankPagingError):
        _read(account, client)

    assert client.calls == [1, 2, 3, 4]


def _stuck_listing(request):
    """The sandbox's stuck listing: page 2 on serves page 1's rows, `links.next` at itself."""
    query = parse_qs(urlparse(request.url).query)
    page, limit = int(query["page"][0]), int(query["limit"][0])
    items = [fb.tx(f"s{n}", T0 - timedelta(minutes=n)) for n in range(limit)]
    base = f"/accounts/{fb.ACCOUNT_ID}/transactions"
    links = {"self": f"{base}?page={page}&limit={limit}", "next": f"{base}?page=2&limit={limit}"}
    meta = {"totalPages": 5, "totalRecords": 5 * limit, "currentPage": page, "pageSize": limit}
    body = {"data": {"transaction": items}, "links": links, "meta": meta}
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.mark.django_db
def test_a_sync_against_a_stuck_listing_fails_fast_with_a_clear_error(user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.SYNC_PAGE_LIMIT = 5
    settings.FIRST_SYNC_RECENT_DAYS = 0  # one pass: the stuck listing is met once
    fb.authorised_consents(user)
    connection = BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")
    url = re.compile(rf"{re.escape(fb.BASE)}/accounts/{fb.ACCOUNT_ID}/transactions\?.*")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        mock.add_callback(responses.GET, url, callback=_stuck_listing)
        run = SyncRun.objects.create(connection=connection, user_id=user.pk)
        sync_run_execute(sync_run_id=run.pk)
        run.refresh_from_db()
        page_calls = [c for c in mock.calls if "/transactions" in c.request.url]

    assert (run.status, run.error_code) == (SyncStatus.FAILED, "bank_paging_error")
    assert "transactions page 2 links to page 2 as next" in run.error
    assert len(page_calls) == 2
    account = Account.objects.get(connection=connection)
    assert account.transactions_synced_through is None
    assert Transaction.objects.filter(account=account).count() == 5  # page 1, kept


@pytest.mark.django_db
def test_a_repeating_page_of_malformed_items_only_stops_the_read_too(user):
    account = make_account(user=user)
    bad = [{"reason": "x: missing or non-numeric amount", "item": {"transactionId": "x"}}]

    def pages(number: int) -> TransactionPage:
        return TransactionPage([], page=number, total_pages=None, total_records=None,
                               has_next=True, skipped=list(bad))  # fmt: skip

    client = _ScriptedClient(pages)

    with pytest.raises(BankPagingError) as raised:
        _read(account, client)

    assert "page 2 repeats the items of page 1" in raised.value.message
    assert client.calls == [1, 2]
