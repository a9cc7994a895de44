"""Accounts read at once: the first failure stops the others at their next page and is raised."""

import threading
import time

import pytest

from fintrack.core.correlation import correlation_scope, get_correlation_id
from sync.services import _run_in_threads, _Stopped


def test_every_job_runs_once_across_the_threads_with_the_callers_correlation_id():
    done, threads, ids = [], set(), set()
    lock = threading.Lock()

    def job(number: int) -> None:
        with lock:
            done.append(number)
            threads.add(threading.current_thread().name)
            ids.add(get_correlation_id())

    with correlation_scope("run-7"):
        _run_in_threads([(job, n) for n in range(10)], workers=2, stop=threading.Event())

    assert sorted(done) == list(range(10))
    assert threading.current_thread().name not in threads
    assert ids == {"run-7"}


def test_the_first_failure_is_raised_and_stops_the_other_jobs():
    stop = threading.Event()
    started, stopped = [], []

    def failing() -> None:
        started.append("failing")
        raise ValueError("bank said no")

    def long_account() -> None:  # checks the flag at each "page", as on_page does
        started.append("long")
        for _page in range(500):
            if stop.is_set():
                stopped.append("long")
                raise _Stopped()
            time.sleep(0.01)

    def never_started() -> None:
        started.append("late")

    with pytest.raises(ValueError, match="bank said no"):
        _run_in_threads([(long_account,), (failing,), (never_started,)], workers=2, stop=stop)

    assert stop.is_set()
    assert stopped == ["long"]  # it stopped early instead of reading its 500 pages
    assert "late" not in started  # queued jobs do not start after a failure


def test_a_job_that_stopped_because_of_another_is_not_reported_as_a_failure():
    def stops() -> None:
        raise _Stopped()

    _run_in_threads([(stops,), (stops,)], workers=2, stop=threading.Event())  # no error
