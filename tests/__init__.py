"""The test suite (a package, so that its modules and ``benchmarks`` import ``tests.support``)."""
