"""Shared fixtures, and the rules the suite's markers follow.

Markers (registered in pyproject.toml; ``--strict-markers`` refuses others):

* ``slow``: the test, or a fixture only it and its neighbours need, takes 5 s or
  more on a 2-core machine: it runs the real ``dvc``, starts a Python that
  imports TensorFlow (a stage script, the installed ``rainforest-detect``), runs
  ``etl`` on real recordings, or trains for more than a moment.
* ``dvc``: it runs the real ``dvc`` in a temporary git repository
  (:mod:`benchmarks.project`). Every such test is ``slow`` too.
* ``real_audio``: it reads real data in ``../shared`` (field recordings, the
  competition's label files); it skips, saying what is missing, where that is
  absent.

``make test`` (``python -m pytest``) runs everything; ``make test-fast``
(``python -m pytest -m "not slow"``) leaves out the slow tests.

Constants and helpers that are not fixtures are in :mod:`tests.support`.
"""

from __future__ import annotations

# First, before any test module loads numpy: the kernels every stage runs are
# pinned (rainforest.numerics), and this process must compute what they compute.
import rainforest  # noqa: F401  isort: skip

from collections.abc import Callable
from pathlib import Path

import pytest

from rainforest.numerics import unpinned_libraries
from tests.support.paths import SHARED


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run where something loaded numpy before the pins: tests that compare
    this process's bytes with a stage's would fail for no fault of the code."""
    unpinned = unpinned_libraries()
    if unpinned:
        raise pytest.UsageError(
            f"{' and '.join(unpinned)} loaded before rainforest pinned the kernels (a pytest plugin?); "
            "run the tests with python -m pytest from the repository root"
        )


@pytest.fixture(scope="session")
def shared_file() -> Callable[[str], Path]:
    """A file of ``../shared`` by its path there (``"audio/spinetail.wav"``);
    the test skips, naming the file, where it is absent. For ``real_audio`` tests."""

    def find(name: str) -> Path:
        path = SHARED / name
        if not path.is_file():
            pytest.skip(f"real data {path} is absent (../shared/{Path(name).parts[0]} is not checked out here)")
        return path

    return find


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the markers honest: a test that reads ``../shared`` through
    ``shared_file`` is ``real_audio``, and a ``dvc`` test is ``slow``."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "shared_file" in fixtures and not item.get_closest_marker("real_audio"):
            raise pytest.UsageError(f"{item.nodeid} reads ../shared (fixture shared_file): mark it real_audio")
        if item.get_closest_marker("dvc") and not item.get_closest_marker("slow"):
            raise pytest.UsageError(f"{item.nodeid} runs dvc: mark it slow too")
