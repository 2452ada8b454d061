"""What the project's command-line programs share: logging, option checks and one error exit.

``rainforest-detect`` (:mod:`rainforest.detect.cli`), ``rainforest-review``
(:mod:`rainforest.review.cli`) and every stage script
(:func:`rainforest.runner.run_stage`) run their work with :func:`run_program`:
INFO lines with their time on stderr, and a
:class:`~rainforest.errors.PipelineError` (bad data, settings or files: its
message names what to fix) printed as one line, ``PROGRAM: error: MESSAGE``,
with exit status 1 and no traceback. A command line a program cannot use
exits with status 2, as argparse does. Ctrl-C (SIGINT) stops a program at
once with ``PROGRAM: interrupted`` and status 130, as a shell reports it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from rainforest.errors import PipelineError

T = TypeVar("T", int, float)


def run_program(program: str, work: Callable[[], object]) -> int:
    """Run ``work`` with the project's logging; returns the exit status.

    0 when it returns; 1 when it raises a :class:`~rainforest.errors.PipelineError`,
    printed as ``PROGRAM: error: MESSAGE`` on stderr; 130 (128 + SIGINT) when
    Ctrl-C stops it, printed as ``PROGRAM: interrupted``.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    try:
        work()
    except PipelineError as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        return 130
    return 0


def checked(kind: Callable[[str], T], must_be: str, accept: Callable[[T], bool]) -> Callable[[str], T]:
    """An argparse ``type``: ``kind(text)``, refused unless ``accept`` takes it
    ("must be MUST_BE, got TEXT")."""

    def parse(text: str) -> T:
        value = kind(text)
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {must_be}, got {text}")
        return value

    parse.__name__ = kind.__name__  # what argparse names in "invalid float value: 'x'"
    return parse


positive_number = checked(float, "a number above 0", lambda value: value > 0)
positive_whole_number = checked(int, "a whole number above 0", lambda value: value >= 1)
whole_number = checked(int, "a whole number, 0 or more", lambda value: value >= 0)
seconds = checked(float, "a number of seconds, 0 or more", lambda value: value >= 0)
score = checked(float, "a score from 0 to 1", lambda value: 0 <= value <= 1)
