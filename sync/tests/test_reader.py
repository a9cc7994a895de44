"""The page reader (lookahead, order, stop) and what it hands the writer (repeats, failures)."""

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from banking.clients.errors import BankUnavailableError
from banking.clients.types import BankTransaction, TransactionPage
from banking.ingestion.transactions import TransactionWriter
from banking.models import Transaction
from banking.tests.factories import make_account
from fintrack.core.correlation import correlation_scope, get_correlation_id
from sync.reader import PageFetcher, TransactionCounts, account_transactions_sync


def _page(number: int, *, has_next: bool) -> TransactionPage:
    return TransactionPage(
        transactions=[], page=number, total_pages=None, total_records=None, has_next=has_next
    )


def _reader(lookahead: bool, *, last_page: int, stop_after: int):
    fetched, threads, correlation_ids = [], set(), set()

    def fetch(number: int) -> TransactionPage:
        fetched.append(number)
        threads.add(threading.current_thread().name)
        correlation_ids.add(get_correlation_id())
        return _page(number, has_next=number < last_page)

    def should_continue(page: TransactionPage, number: int) -> bool:
        return page.has_next and number < stop_after

    fetcher = PageFetcher(lookahead=lookahead)
    try:
        with correlation_scope("run-42"):
            seen = [page.page for page in fetcher.pages(fetch, should_continue)]
    finally:
        fetcher.close()
    return seen, fetched, threads, correlation_ids


def test_lookahead_reads_pages_in_order_on_a_helper_thread_with_the_run_correlation_id():
    seen, fetched, threads, correlation_ids = _reader(True, last_page=5, stop_after=99)

    assert seen == [1, 2, 3, 4, 5]
    assert fetched == [1, 2, 3, 4, 5]
    assert threading.current_thread().name not in threads
    assert correlation_ids == {"run-42"}


def test_lookahead_never_fetches_past_the_page_that_says_stop():
    seen, fetched, _threads, _ids = _reader(True, last_page=10, stop_after=3)

    assert seen == [1, 2, 3]
    assert fetched == [1, 2, 3]


def test_without_lookahead_pages_are_fetched_on_the_calling_thread():
    seen, fetched, threads, _ids = _reader(False, last_page=3, stop_after=99)

    assert seen == fetched == [1, 2, 3]
    assert threads == {threading.current_thread().name}


def test_next_page_is_fetched_while_the_current_one_is_processed():
    started: dict[int, float] = {}

    def fetch(number: int) -> TransactionPage:
        started[number] = time.monotonic()
        time.sleep(0.05)
        return _page(number, has_next=number < 3)

    fetcher = PageFetcher(lookahead=True)
    processed_at = {}
    try:
        for page in fetcher.pages(fetch, lambda page, number: page.has_next):
            processed_at[page.page] = time.monotonic()
            time.sleep(0.05)  # "writing" the page
    finally:
        fetcher.close()

    # Page 2's fetch began before page 1's processing ended (overlap, not one after another).
    assert started[2] < processed_at[1] + 0.05
    assert sorted(started) == [1, 2, 3]


# --- Pages to the writer: the first-sync path, repeats, stored rows ----------------------------


def _bank_tx(tx_id: str, amount: str = "-100.00", **changes) -> BankTransaction:
    when = datetime(2025, 11, 20, 12, 30, tzinfo=UTC)
    values = {
        "account_id": "acc-1",
        "transaction_id": tx_id,
        "amount": Decimal(amount),
        "currency": "RUB",
        "status": "booked",
        "booking_date": when,
        "value_date": when,
        "description": "Пятёрочка",
        "bank_transaction_code": "IssuedDebitTransfer",
        "merchant_name": "Пятёрочка",
        "merchant_category": "Supermarkets",
        "mcc": "5411",
        "counterparty": "",
        "raw": {"transactionId": tx_id, "amount": {"amount": amount.lstrip("-")}},
    }
    values.update(changes)
    return BankTransaction(**values)


def _tx_page(number: int, items: list[BankTransaction], *, has_next: bool) -> TransactionPage:
    return TransactionPage(
        transactions=items, page=number, total_pages=None, total_records=None, has_next=has_next
    )


class _PagedClient:
    """A bank client serving fixed pages of parsed transactions (no HTTP: the writer is tested)."""

    def __init__(self, pages: list[list[BankTransaction]]):
        self.pages = pages

    def get_transactions_page(self, *, page: int, **_ignored) -> TransactionPage:
        return _tx_page(page, self.pages[page - 1], has_next=page < len(self.pages))


def _sync_pages(account, pages) -> TransactionCounts:
    counts = TransactionCounts()
    account_transactions_sync(
        client=_PagedClient(pages),
        account=account,
        client_id="team260-1",
        consent_id="consent-1",
        counts=counts,
        fetcher=PageFetcher(lookahead=False),
    )
    return counts


def _stored(account) -> dict[str, tuple]:
    return {
        row[0]: row[1:]
        for row in Transaction.objects.filter(account=account).values_list(
            "bank_transaction_id", "amount", "category__code"
        )
    }


@pytest.mark.parametrize(
    ("batch_rows", "expected_counts"),
    [
        (1000, (3, 0, 0)),  # both pages in one write batch: the repeat is one row, last read wins
        (2, (3, 1, 0)),  # one batch per page: the second page updates the row the first wrote
    ],
)
@pytest.mark.django_db
def test_first_sync_stores_a_row_repeated_on_the_next_page_once_with_its_newest_values(
    user, settings, batch_rows, expected_counts
):
    settings.SYNC_WRITE_BATCH_ROWS = batch_rows
    account = make_account(user=user)

    counts = _sync_pages(
        account,
        [[_bank_tx("a"), _bank_tx("b")], [_bank_tx("b", "-250.00"), _bank_tx("c")]],
    )

    assert (counts.added, counts.updated, counts.unchanged) == expected_counts
    assert _stored(account) == {
        "a": (Decimal("-100.00"), "groceries"),
        "b": (Decimal("-250.00"), "groceries"),
        "c": (Decimal("-100.00"), "groceries"),
    }


@pytest.mark.django_db
def test_sync_of_an_account_with_stored_rows_compares_them_before_writing(user):
    account = make_account(user=user)
    _sync_pages(account, [[_bank_tx("a"), _bank_tx("b")]])
    Transaction.objects.filter(account=account, bank_transaction_id="b").update(
        amount=Decimal("-1.00")
    )

    counts = _sync_pages(account, [[_bank_tx("a"), _bank_tx("b"), _bank_tx("d")]])

    assert (counts.added, counts.updated, counts.unchanged) == (1, 1, 1)
    assert _stored(account)["b"] == (Decimal("-100.00"), "groceries")
    assert len(_stored(account)) == 3


# --- Lookahead bounds, failures and early exit ---------------------------------------------------


def _wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def _finishes_within(function, seconds: float = 5.0) -> bool:
    """Run `function` on a thread; whether it returned in time (a hang fails the test)."""
    done = threading.Event()

    def run():
        function()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_lookahead_reads_at_most_depth_pages_ahead_of_a_blocked_reader(depth):
    fetched: list[int] = []

    def fetch(number: int) -> TransactionPage:
        fetched.append(number)
        return _page(number, has_next=number < 50)

    fetcher = PageFetcher(lookahead=True, depth=depth)
    pages = fetcher.pages(fetch, lambda page, number: page.has_next)
    try:
        first = next(pages)  # the reader takes page 1, then "writes" for a long time
        # The helper fills the queue (depth pages) and may hold one more it cannot queue yet.
        assert _wait_until(lambda: len(fetched) >= 1 + depth)
        time.sleep(0.3)
        held = list(fetched)
        assert first.page == 1
        assert held == list(range(1, len(held) + 1))
        assert 1 + depth <= len(held) <= 1 + depth + 1

        rest = [page.page for page in pages]  # the reader comes back: everything, in order
    finally:
        pages.close()  # stops the helper even if an assertion failed (close() waits for it)
        fetcher.close()

    assert rest == list(range(2, 51))
    assert fetched == list(range(1, 51))


def test_a_held_fetcher_fetches_ahead_but_hands_over_no_page_until_released():
    """`hold_until` (the progressive backfill beside the newest days' figures): the helper
    fetches up to its depth while the reader waits for the event; released, every page comes,
    in order."""
    fetched: list[int] = []
    release = threading.Event()
    handed: list[int] = []

    def fetch(number: int) -> TransactionPage:
        fetched.append(number)
        return _page(number, has_next=number < 30)

    fetcher = PageFetcher(lookahead=True, depth=4, hold_until=release)

    def read() -> None:
        for page in fetcher.pages(fetch, lambda page, number: page.has_next):
            handed.append(page.page)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert _wait_until(lambda: len(fetched) >= 5)
        time.sleep(0.3)
        # Fetched ahead (the queue's 4, one more held by the helper, the one the reader waits
        # with), none handed over.
        assert 5 <= len(fetched) <= 7
        assert handed == []
    finally:
        release.set()
        reader.join(10)
        fetcher.close()
    assert handed == list(range(1, 31))
    assert fetched == list(range(1, 31))


def test_a_held_fetcher_looks_two_write_batches_ahead(settings):
    settings.SYNC_WRITE_BATCH_ROWS, settings.SYNC_PAGE_LIMIT = 1000, 100
    assert PageFetcher(lookahead=True).depth == 11
    assert PageFetcher(lookahead=True, hold_until=threading.Event()).depth == 21


def test_lookahead_never_fetches_past_the_stop_page_however_deep_its_queue():
    fetched: list[int] = []

    def fetch(number: int) -> TransactionPage:
        fetched.append(number)
        return _page(number, has_next=True)

    fetcher = PageFetcher(lookahead=True, depth=10)
    pages = fetcher.pages(fetch, lambda page, number: number < 3)
    try:
        next(pages)
        assert _wait_until(lambda: len(fetched) >= 3)
        time.sleep(0.3)  # room for 10 pages, the reader blocked: the helper still stops at 3
        assert fetched == [1, 2, 3]
        assert [page.page for page in pages] == [2, 3]
    finally:
        pages.close()
        fetcher.close()
    assert fetched == [1, 2, 3]


@pytest.mark.parametrize("lookahead", [True, False])
def test_a_fetch_failure_reaches_the_reader_after_the_pages_before_it(lookahead):
    fetched: list[int] = []
    failure = RuntimeError("page 3 is broken")

    def fetch(number: int) -> TransactionPage:
        fetched.append(number)
        if number == 3:
            raise failure
        return _page(number, has_next=True)

    seen: list[int] = []
    fetcher = PageFetcher(lookahead=lookahead, depth=5)
    try:
        with pytest.raises(RuntimeError) as raised:
            for page in fetcher.pages(fetch, lambda page, number: page.has_next):
                seen.append(page.page)
    finally:
        fetcher.close()

    assert raised.value is failure
    assert seen == [1, 2]
    assert fetched == [1, 2, 3]


def test_a_reader_that_stops_early_stops_the_helper():
    fetched: list[int] = []
    helpers: set[threading.Thread] = set()

    def fetch(number: int) -> TransactionPage:
        helpers.add(threading.current_thread())
        fetched.append(number)
        time.sleep(0.01)
        return _page(number, has_next=number < 10_000)

    fetcher = PageFetcher(lookahead=True, depth=50)  # room to run far ahead if it did not stop
    seen: list[int] = []

    def read_two_pages():
        for page in fetcher.pages(fetch, lambda page, number: page.has_next):
            seen.append(page.page)
            if page.page == 2:
                break

    assert _finishes_within(read_two_pages)
    after_close = len(fetched)
    time.sleep(0.3)  # ~30 fetch times

    assert seen == [1, 2]
    assert len(fetched) == after_close
    assert after_close <= 2 + 3  # what the reader took, the page in flight, scheduling slack
    assert _finishes_within(fetcher.close)
    assert len(helpers) == 1
    assert not next(iter(helpers)).is_alive()
    assert len(fetched) == after_close


class _FailingPagedClient(_PagedClient):
    """Serves its pages until `fail_on`, which raises as a bank that stays down does."""

    def __init__(self, pages, *, fail_on: int):
        super().__init__(pages)
        self.fail_on = fail_on
        self.error = BankUnavailableError("boom", bank_code="vbank")

    def get_transactions_page(self, *, page: int, **kwargs) -> TransactionPage:
        if page == self.fail_on:
            raise self.error
        return super().get_transactions_page(page=page, **kwargs)


_FIVE_PAGES = [[_bank_tx(f"p{page}-{row}") for row in range(2)] for page in range(1, 6)]


@pytest.mark.parametrize("lookahead", [False, True])
@pytest.mark.django_db
def test_rows_read_before_a_bank_failure_are_stored_even_from_an_unwritten_batch(
    user, settings, lookahead
):
    settings.SYNC_WRITE_BATCH_ROWS = 1000  # pages 1 and 2 are still one unwritten batch
    account = make_account(user=user)
    client = _FailingPagedClient(_FIVE_PAGES, fail_on=3)
    counts = TransactionCounts()
    writes: list[int] = []
    fetcher = PageFetcher(lookahead=lookahead)

    try:
        with pytest.raises(BankUnavailableError) as raised:
            account_transactions_sync(
                client=client,
                account=account,
                client_id="team260-1",
                consent_id="consent-1",
                counts=counts,
                fetcher=fetcher,
                after_write=lambda: writes.append(Transaction.objects.count()),
            )
    finally:
        fetcher.close()

    assert raised.value is client.error
    read_before = {tx.transaction_id for page in _FIVE_PAGES[:2] for tx in page}
    assert set(_stored(account)) == read_before
    assert counts.added == len(read_before)
    assert writes == [len(read_before)]  # the run's raw logs are flushed after that write too


@pytest.mark.django_db
def test_a_failing_write_after_a_bank_failure_does_not_hide_the_bank_error(user, monkeypatch):
    def broken_write(self, by_id):
        raise RuntimeError("disk full")

    monkeypatch.setattr(TransactionWriter, "_write", broken_write)
    client = _FailingPagedClient(_FIVE_PAGES, fail_on=3)

    with pytest.raises(BankUnavailableError) as raised:
        account_transactions_sync(
            client=client,
            account=make_account(user=user),
            client_id="team260-1",
            consent_id="consent-1",
            counts=TransactionCounts(),
            fetcher=PageFetcher(lookahead=False),
        )

    assert raised.value is client.error


@pytest.mark.django_db
def test_after_write_follows_each_written_batch(user, settings):
    def sync_counting_writes(batch_rows: int) -> tuple[list[int], int]:
        settings.SYNC_WRITE_BATCH_ROWS = batch_rows
        account = make_account(user=user)
        stored_at_call: list[int] = []
        account_transactions_sync(
            client=_PagedClient(_FIVE_PAGES[:3]),
            account=account,
            client_id="team260-1",
            consent_id="consent-1",
            counts=TransactionCounts(),
            fetcher=PageFetcher(lookahead=False),
            after_write=lambda: stored_at_call.append(
                Transaction.objects.filter(account=account).count()
            ),
        )
        return stored_at_call, len(_stored(account))

    per_page, total = sync_counting_writes(2)  # a page is a batch
    one_batch, total_again = sync_counting_writes(1000)  # all three pages are one batch

    assert total == total_again == 6
    # Each call comes after its batch is stored: 2, 4, then 6 rows visible.
    assert per_page[:3] == [2, 4, 6]
    assert per_page[-1] == total
    assert one_batch == [total]


def test_close_stops_a_helper_whose_reader_was_left_paused_with_a_full_queue():
    fetched = []

    def fetch(number: int) -> TransactionPage:
        fetched.append(number)
        return _page(number, has_next=True)

    fetcher = PageFetcher(lookahead=True, depth=2)
    pages = fetcher.pages(fetch, lambda page, number: True)
    next(pages)  # the reader takes page 1 and is never resumed nor closed
    assert _wait_until(lambda: len(fetched) >= 3)  # the helper filled the queue and waits

    closer = threading.Thread(target=fetcher.close)
    closer.start()
    closer.join(timeout=5)

    assert not closer.is_alive()  # close() returned instead of waiting forever
    assert len(fetched) <= 4


# --- Completeness and the watermark (issue 20) ---------------------------------------------------


class _CountedClient:
    """Serves one page of parsed rows (and unparseable items) with the bank's totalRecords."""

    def __init__(self, rows, *, skipped=(), total: int):
        self.rows, self.skipped, self.total = rows, list(skipped), total
        self.calls = 0

    def get_transactions_page(self, *, page: int, **_ignored) -> TransactionPage:
        self.calls += 1
        return TransactionPage(
            transactions=list(self.rows) if page == 1 else [],
            page=page,
            total_pages=1,
            total_records=self.total,
            has_next=False,
            skipped=list(self.skipped) if page == 1 else [],
        )


def _scan(account, client):
    counts = TransactionCounts()
    scan = account_transactions_sync(
        client=client,
        account=account,
        client_id="team260-1",
        consent_id="consent-1",
        counts=counts,
        fetcher=PageFetcher(lookahead=False),
    )
    return scan, counts


@pytest.mark.django_db
def test_a_stored_row_sent_malformed_is_not_counted_twice_towards_the_banks_count(user):
    """Stored a, b, c; the bank now counts 4 (d is new) but lists a, b, c-malformed and not d:
    c is one row (stored), so 3 of 4: incomplete, the watermark stays."""
    account = make_account(user=user)
    rows = [_bank_tx("a"), _bank_tx("b"), _bank_tx("c")]
    first, _counts = _scan(account, _CountedClient(rows, total=3))
    assert first.complete
    account.transactions_synced_through = first.watermark_after(None)
    account.save(update_fields=["transactions_synced_through"])
    malformed_c = {"reason": "c: missing or non-numeric amount", "item": {"transactionId": "c"}}

    scan, counts = _scan(account, _CountedClient(rows[:2], skipped=[malformed_c], total=4))

    assert scan.complete is False
    assert counts.incomplete_accounts == [{"account": account.bank_account_id, "found": 3,
                                           "total": 4}]  # fmt: skip
    assert scan.watermark_after(account.transactions_synced_through) is None
    assert "read short of the bank's count" in counts.partial_reason()


def test_the_watermark_never_passes_an_open_quarantined_item():
    from banking.ingestion.quarantine import QuarantineState
    from sync.reader import AccountScan

    newest = datetime(2025, 11, 20, tzinfo=UTC)
    held = datetime(2025, 11, 1, tzinfo=UTC)
    old = datetime(2025, 10, 1, tzinfo=UTC)

    assert AccountScan(newest_seen=newest).watermark_after(old) == newest
    assert AccountScan(newest_seen=newest, complete=False).watermark_after(old) is None
    at_item = AccountScan(newest_seen=newest, quarantine=QuarantineState(1, held))
    assert at_item.watermark_after(old) == held
    assert at_item.watermark_after(datetime(2025, 11, 5, tzinfo=UTC)) is None  # never back
    unknown = AccountScan(newest_seen=newest, quarantine=QuarantineState(1, None, True))
    assert unknown.watermark_after(old) is None
    assert unknown.watermark_after(None) is None
