"""The page reader: one-page lookahead on a helper thread, in order, stopping when told."""

import threading
import time

from banking.clients.types import TransactionPage
from fintrack.core.correlation import correlation_scope, get_correlation_id
from sync.transactions import PageFetcher


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
