"""What the tests share that is not a fixture.

* :mod:`tests.support.paths`: the repository, its ``params.yaml``, and the real
  data beside the clone in ``../shared``.
* :mod:`tests.support.settings`: the small sample rates and feature settings
  that many tests build their inputs with.
* :mod:`tests.support.project`: the tiny pipeline project, and comparing and
  committing projects made by :mod:`benchmarks.project` (a copy of the
  pipeline in a fresh git + DVC repository, and running the real ``dvc``
  there), which the tests import from the benchmarks: not the other way round.
* :mod:`tests.support.windows`: windows cut and scored from a whole recording
  in memory, the reference for the library's streaming code.
* :mod:`tests.support.events`: event files read by species count.

Fixtures live in ``tests/conftest.py``.
"""
