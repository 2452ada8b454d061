"""Spreading per-item work over processes, in order."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterable, Iterator

from threadpoolctl import threadpool_limits


def _one_blas_thread() -> None:
    # Each worker is one of the cores already: BLAS threads on top of the
    # workers oversubscribe the cores and halve the throughput.
    threadpool_limits(limits=1)


@contextlib.contextmanager
def ordered_map(workers: int) -> Iterator[Callable[[Callable, Iterable], Iterator]]:
    """Yield a lazy ``map(function, items)`` that runs on ``workers`` processes.

    Results come back in the order of ``items``, so output written from them
    does not depend on the number of workers. With one worker everything runs
    in this process (no pickling, easier to debug). Either way the work runs
    with one BLAS thread per process, so the numbers are the same too.
    """
    if workers <= 1:
        with threadpool_limits(limits=1):
            yield map
        return
    with multiprocessing.Pool(workers, initializer=_one_blas_thread) as pool:
        yield pool.imap
