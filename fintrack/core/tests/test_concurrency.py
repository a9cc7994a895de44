"""The thread helper: every job once, first failure raised after all threads end, stop, the
caller's context in each thread, a bound on pending work, connections closed, and read-ahead."""

import threading
import time
from unittest import mock

import pytest

from fintrack.core.concurrency import ReadAhead, Stopped, WorkerPool
from fintrack.core.correlation import correlation_scope, get_correlation_id


def _wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_every_job_runs_once_across_the_threads_with_the_callers_correlation_id():
    done, threads, ids = [], set(), set()
    lock = threading.Lock()

    def job(number: int) -> None:
        with lock:
            done.append(number)
            threads.add(threading.current_thread().name)
            ids.add(get_correlation_id())

    with correlation_scope("run-7"), WorkerPool(workers=2, name="sync") as pool:
        for number in range(10):
            pool.submit(job, number)

    assert sorted(done) == list(range(10))
    assert threading.current_thread().name not in threads
    assert threads <= {"sync-1", "sync-2"}
    assert ids == {"run-7"}


def test_the_first_failure_is_raised_once_every_thread_ended_and_stops_the_other_jobs():
    stop = threading.Event()
    started, stopped = [], []
    long_thread: list[threading.Thread] = []

    def failing() -> None:
        started.append("failing")
        raise ValueError("bank said no")

    def long_account() -> None:  # checks the flag at each "page", as the sync's on_page does
        long_thread.append(threading.current_thread())
        started.append("long")
        for _page in range(500):
            if stop.is_set():
                time.sleep(0.05)  # a page boundary some time after the failure
                stopped.append("long")
                raise Stopped()
            time.sleep(0.01)

    def never_started() -> None:
        started.append("late")

    pool = WorkerPool(workers=2, stop=stop)
    pool.submit(long_account)
    assert _wait_until(lambda: started == ["long"])
    pool.submit(failing)
    pool.submit(never_started)
    with pytest.raises(ValueError, match="bank said no"):
        pool.close()

    assert stop.is_set()
    assert stopped == ["long"]  # it stopped early instead of reading its 500 pages
    assert not long_thread[0].is_alive()  # raised only after it ended
    assert "late" not in started  # queued jobs do not start after a failure
    assert pool.submit(never_started) is False


def test_a_job_that_stopped_because_it_was_asked_to_is_not_a_failure():
    def stops() -> None:
        raise Stopped()

    with WorkerPool(workers=2) as pool:
        pool.submit(stops)
        pool.submit(stops)
    # no error


def test_an_exception_in_the_caller_stops_the_jobs_and_waits_for_them():
    class SoftTimeLimit(BaseException):
        pass

    pages, threads = [], []

    def reading() -> None:
        threads.append(threading.current_thread())
        while not pool.stop.is_set():
            pages.append(1)
            time.sleep(0.01)
        raise Stopped()

    with pytest.raises(SoftTimeLimit), WorkerPool(workers=1) as pool:
        pool.submit(reading)
        assert _wait_until(lambda: pages)
        raise SoftTimeLimit()

    assert pool.stop.is_set()
    assert not threads[0].is_alive()


def test_pending_work_is_bounded():
    release = threading.Event()
    ran = []

    def blocked(number: int) -> None:
        release.wait(5)
        ran.append(number)

    pool = WorkerPool(workers=1, max_pending=2)
    assert pool.submit(blocked, 1) and pool.submit(blocked, 2)  # one running, one queued
    assert pool.try_submit(blocked, 3) is False  # no room: declined at once

    waiting = threading.Thread(target=pool.submit, args=(blocked, 4))
    waiting.start()
    time.sleep(0.2)
    assert waiting.is_alive()  # submit() waits for room
    release.set()
    waiting.join(5)
    pool.close()

    assert not waiting.is_alive()
    assert ran == [1, 2, 4]


def test_each_thread_closes_its_database_connections_when_it_ends():
    closed_on = []
    with (
        mock.patch(
            "fintrack.core.concurrency.connections.close_all",
            side_effect=lambda: closed_on.append(threading.current_thread().name),
        ),
        WorkerPool(workers=2, name="db") as pool,
    ):
        for _ in range(4):
            pool.submit(time.sleep, 0.01)

    assert sorted(closed_on) == ["db-1", "db-2"]


# --- ReadAhead: items made on a helper thread, a bounded distance ahead --------------------------


def test_read_ahead_yields_every_item_in_order_made_on_another_thread_in_the_callers_context():
    made_on, ids = set(), set()

    def produce():
        for number in range(1, 6):
            made_on.add(threading.current_thread().name)
            ids.add(get_correlation_id())
            yield number

    with correlation_scope("run-9"):
        reader = ReadAhead(produce, depth=2, name="pages")
        try:
            items = list(reader)
        finally:
            reader.close()

    assert items == [1, 2, 3, 4, 5]
    assert made_on == {"pages-1"}
    assert ids == {"run-9"}


def test_read_ahead_makes_at_most_depth_items_beyond_what_was_read_and_stops_on_close():
    made = []

    def produce():
        number = 0
        while True:
            number += 1
            made.append(number)
            yield number

    reader = ReadAhead(produce, depth=3)
    items = iter(reader)
    assert next(items) == 1
    assert _wait_until(lambda: len(made) >= 1 + 3)
    time.sleep(0.2)
    assert len(made) <= 1 + 3 + 1  # the queue's depth, and one waiting for room
    reader.close()
    after_close = len(made)
    time.sleep(0.2)
    assert len(made) == after_close


def test_read_ahead_raises_a_producer_failure_after_the_items_before_it():
    failure = RuntimeError("page 3 is broken")

    def produce():
        yield 1
        yield 2
        raise failure

    reader = ReadAhead(produce, depth=5)
    seen = []
    with pytest.raises(RuntimeError) as raised:
        for item in reader:
            seen.append(item)
    reader.close()

    assert raised.value is failure
    assert seen == [1, 2]
