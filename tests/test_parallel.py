"""Threads that decode ahead end with the block that uses them, however it is left."""

from __future__ import annotations

import threading
import time

import pytest

from rainforest.parallel import streams_ahead


def _endless():
    # A stream that never ends by itself: only the stop at the block's end ends its thread.
    while True:
        yield 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_stream_stops_every_thread_when_the_block_ends(workers):
    def failing():
        yield 1
        raise ValueError("corrupt")

    before = threading.active_count()
    started = time.monotonic()
    with (
        pytest.raises(ValueError, match="corrupt"),
        streams_ahead([failing, *[_endless] * 5], workers=workers) as streams,
    ):
        for items in streams:
            list(items)
    assert threading.active_count() == before  # no thread left to wait on at exit
    assert time.monotonic() - started < 5


def test_leaving_the_block_early_stops_the_streams_not_consumed():
    before = threading.active_count()
    with streams_ahead([_endless] * 4, workers=2) as streams:
        first = next(streams)
        assert [next(first), next(first)] == [0, 0]
    assert threading.active_count() == before
