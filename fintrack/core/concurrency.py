"""The one thread helper: a bounded pool with stop and first-error semantics, and a read-ahead.

Every threaded part of FinTrack goes through `WorkerPool` (the sync's accounts read at once, the
raw-log writer) or `ReadAhead`, built on it (the page reader's prefetch), so the rules a thread
must follow live here once:

- each thread runs in a copy of the submitting thread's context variables (the correlation id);
- each thread closes the DB connections it opened when it ends (Django opens one per thread);
- a `stop` event the jobs check at their own safe points; queued jobs do not start once it is set;
- the first failure sets `stop` and is raised by `close()`, once every thread has ended;
- an exception in the caller while it waits (a Celery soft time limit) stops the jobs, waits for
  them and propagates: no thread outlives the call that started it.
"""

import contextvars
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from django.db import connections

T = TypeVar("T")

_POLL_SECONDS = 0.1  # how often a thread waiting for room looks at the stop event
_CLOSE = object()  # tells a worker thread to end


class Stopped(Exception):
    """A job ended early because its pool was told to stop: not a failure."""


class WorkerPool:
    """Up to `workers` threads running submitted jobs in order; the first failure stops the rest.

    `max_pending` bounds the jobs submitted and not finished yet: `submit()` waits for room,
    `try_submit()` declines. Threads start with the first jobs and end at `close()`. As a
    context manager it closes on exit, or stops and waits when the block raised.
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        max_pending: int | None = None,
        stop: threading.Event | None = None,
        name: str = "worker",
    ):
        self.workers = max(1, workers)
        self.stop = stop if stop is not None else threading.Event()
        self.name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._room = threading.Semaphore(max_pending) if max_pending is not None else None
        self._threads: list[threading.Thread] = []
        self._failure: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, function: Callable[..., Any], /, *args: Any) -> bool:
        """Queue `function(*args)`, waiting while `max_pending` jobs are unfinished; False (not
        queued) once the pool is stopped."""
        if self._room is not None:
            while not self._room.acquire(timeout=_POLL_SECONDS):
                if self.stop.is_set():
                    return False
        return self._queue(function, args)

    def try_submit(self, function: Callable[..., Any], /, *args: Any) -> bool:
        """Queue `function(*args)` only if there is room right now; whether it was queued."""
        if self._room is not None and not self._room.acquire(blocking=False):
            return False
        return self._queue(function, args)

    def close(self) -> None:
        """Let the queued jobs finish, wait for every thread, then raise the first failure."""
        self._join()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def cancel(self) -> None:
        """Stop: queued jobs are dropped, running ones see `stop`; waits for every thread."""
        self.stop.set()
        self._join()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.cancel()  # the block's own exception propagates

    def _queue(self, function: Callable[..., Any], args: tuple) -> bool:
        with self._lock:
            if self._closed or self.stop.is_set():
                if self._room is not None:
                    self._room.release()
                return False
            self._jobs.put((function, args))
            if len(self._threads) < self.workers:
                thread = threading.Thread(
                    # The submitting thread's context variables (the correlation id) go along.
                    target=contextvars.copy_context().run,
                    args=(self._work,),
                    name=f"{self.name}-{len(self._threads) + 1}",
                )
                self._threads.append(thread)
                thread.start()
        return True

    def _work(self) -> None:
        try:
            while (job := self._jobs.get()) is not _CLOSE:
                function, args = job
                try:
                    if not self.stop.is_set():
                        function(*args)
                except Stopped:
                    pass
                except BaseException as exc:  # raised by close() on the caller's thread
                    with self._lock:
                        if self._failure is None:
                            self._failure = exc
                    self.stop.set()
                finally:
                    if self._room is not None:
                        self._room.release()
        finally:
            connections.close_all()  # this thread's own connections

    def _join(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                for _thread in self._threads:
                    self._jobs.put(_CLOSE)
        try:
            for thread in self._threads:
                thread.join()
        except BaseException:  # e.g. a soft time limit raised in this thread while it waits
            self.stop.set()
            for thread in self._threads:
                thread.join()  # each ends at its jobs' next look at `stop`
            raise


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


class ReadAhead(Generic[T]):
    """The items of `produce()`, made on a helper thread at most `depth` ahead of the reader.

    Iterate it once, on the reader's thread: items come in order, and a failure of the producer
    is raised there after the items before it. The producer never runs further than one item past
    a full queue, and ends at its next item once `close()` is called (by the reader going away,
    or by anyone holding it: a reader left paused must not keep its helper waiting).
    """

    def __init__(self, produce: Callable[[], Iterable[T]], *, depth: int, name: str = "read-ahead"):
        self._items: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._pool = WorkerPool(workers=1, name=name)
        self._pool.submit(self._produce, produce)

    def __iter__(self) -> Iterator[T]:
        while (item := self._items.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the producer and wait for its thread; items not read yet are dropped."""
        self._pool.stop.set()
        while True:  # unblock a producer waiting for room
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        self._pool.close()

    def _produce(self, produce: Callable[[], Iterable[T]]) -> None:
        stop = self._pool.stop
        items: Iterator[T] | None = None
        try:
            items = iter(produce())
            for item in items:
                if not self._put(item) or stop.is_set():
                    return
        except BaseException as exc:  # handed to the reader, which raises it on its own thread
            self._put(_Failed(exc))
            return
        finally:
            close = getattr(items, "close", None)  # None too if produce() itself failed
            if close is not None:
                close()  # a generator left early ends here, on its own thread
        self._put(_END)

    def _put(self, item: object) -> bool:
        while not self._pool.stop.is_set():
            try:
                self._items.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
