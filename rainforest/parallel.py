"""Spreading per-item work over processes, in order."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterable, Iterator


@contextlib.contextmanager
def ordered_map(workers: int) -> Iterator[Callable[[Callable, Iterable], Iterator]]:
    """Yield a lazy ``map(function, items)`` that runs on ``workers`` processes.

    Results come back in the order of ``items``, so output written from them
    does not depend on the number of workers. With one worker everything runs
    in this process (no pickling, easier to debug).
    """
    if workers <= 1:
        yield map
        return
    with multiprocessing.Pool(workers) as pool:
        yield pool.imap
