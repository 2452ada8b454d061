"""Spreading work over processes and threads, with results in order."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Both limits below take effect when called, for the rest of the process, or
# within a ``with`` block. They are the only places that limit native threads.


def one_thread_per_worker() -> threadpool_limits:
    """Every native thread pool (BLAS, OpenMP) at one thread, for a worker that
    is itself one of the cores: threads on top of the workers oversubscribe the
    cores and halve the throughput, and one thread gives the same numbers
    whatever the number of workers."""
    return threadpool_limits(limits=1)


def one_blas_thread() -> threadpool_limits:
    """numpy's BLAS (the spectrograms' mel projection) at one thread, beside
    TensorFlow, which already keeps every core busy: a BLAS thread pool on top
    would oversubscribe them (25 % slower)."""
    return threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def ordered_map(workers: int) -> Iterator[Callable[[Callable, Iterable], Iterator]]:
    """Yield a lazy ``map(function, items)`` that runs on ``workers`` processes.

    Results come back in the order of ``items``, so output written from them
    does not depend on the number of workers. With one worker everything runs
    in this process (no pickling, easier to debug). Either way the work runs
    with :func:`one_thread_per_worker`, so the numbers are the same too.
    """
    if workers <= 1:
        with one_thread_per_worker():
            yield map
        return
    with multiprocessing.Pool(workers, initializer=one_thread_per_worker) as pool:
        yield pool.imap


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()


@contextlib.contextmanager
def streams_ahead(
    streams: Iterable[Callable[[], Iterable[T]]], *, workers: int, depth: int = 2
) -> Iterator[Iterator[Iterator[T]]]:
    """Run each stream on one of ``workers`` threads, ahead of its consumer.

    Yields an iterator that gives, for each of ``streams`` in order, an
    iterator over the items that stream makes. Up to ``workers`` streams run
    at once, each at most ``depth`` items ahead of where its consumer is, so
    memory is bounded by the items in flight, not by the length of a stream
    or their number. Work that releases the GIL (decoding, FFTs) overlaps
    what the consumer does. An exception in a stream is raised where its
    consumer reaches it; the other streams go on. Consume each stream whole
    before asking for the next.

    Leaving the ``with`` block, however it is left (an exception in a stream
    or in the consumer, Ctrl-C), stops every thread: a stream stops at its
    next item, and streams not started yet never start. The threads do not
    outlive the block, so a failure never leaves the program waiting on them.

    Examples
    --------
    >>> with streams_ahead([lambda: range(3), lambda: "ab"], workers=2) as streams:
    ...     [list(items) for items in streams]
    [[0, 1, 2], ['a', 'b']]
    """
    stop = threading.Event()

    def put(into: queue.Queue, item) -> None:
        while not stop.is_set():
            try:
                into.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce(stream: Callable[[], Iterable[T]], into: queue.Queue) -> None:
        try:
            for item in stream():
                put(into, item)
                if stop.is_set():
                    return
            put(into, _END)
        except BaseException as error:  # handed to the consumer, raised there
            put(into, _Failed(error))

    def consume(source: queue.Queue) -> Iterator[T]:
        while (item := source.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def in_order(pool: ThreadPoolExecutor) -> Iterator[Iterator[T]]:
        pending: deque[queue.Queue] = deque()
        for stream in streams:
            pending.append(queue.Queue(depth))
            pool.submit(produce, stream, pending[-1])
            if len(pending) > workers:
                yield consume(pending.popleft())
        while pending:
            yield consume(pending.popleft())

    pool = ThreadPoolExecutor(workers)
    try:
        yield in_order(pool)
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
