"""The same bytes on any x86-64 machine with AVX2: the committed fingerprint under emulated CPUs.

Every stage of a tiny pipeline runs with the real ``dvc`` once per emulated
machine (:mod:`tests.support.fingerprint`: an AVX2-only CPU, an AVX-512 CPU,
one core, sixteen), and each run's outputs must have the committed digests of
``tests/fingerprint.json``. With the pins lifted (``RAINFOREST_FAST_KERNELS``,
which is how the code ran before they existed) the same emulations must give
other bytes: that shows that each emulated choice reaches the outputs, so the
fingerprint would catch a machine that made it. What other CPUs read from the
CPU itself (caches, approximate arithmetic) ``tests/test_other_cpus.py``
emulates. On another class of machine the fingerprint does not apply and the
tests skip, naming it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from rainforest.machine import Machine
from tests.support.fingerprint import EMULATIONS, HAS_AVX512, Emulation, committed, fingerprint
from tests.support.project import differing

HERE = Machine.here()
RECORDED = Machine(committed()["machine_class"])

pytestmark = [
    pytest.mark.dvc,
    pytest.mark.slow,
    pytest.mark.skipif(
        HERE.machine_class != RECORDED.machine_class,
        reason=f"this machine is {HERE.machine_class}, the fingerprint's {RECORDED.machine_class}: "
        "their bytes differ by design (docs/reproducibility.md)",
    ),
]

REWRITE = "if the change is meant to change the outputs: python -m tests.support.fingerprint, and commit it"
NEEDS_AVX512 = "this CPU has no AVX-512, so an AVX-512 CPU cannot be emulated here"
#: The runs with the pins lifted that the tests below compare.
LIFTED = ["AVX2-only CPU, 2 cores", "AVX-512 CPU, 2 cores", "AVX-512 CPU, 1 core", "AVX2-only CPU, 16 cores"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every emulated run, pinned, and the lifted ones compared below, two at a time; by (name, lifted)."""
    base = tmp_path_factory.mktemp("fingerprint")
    wanted = {(name, False): emulation for name, emulation in EMULATIONS.items()}
    wanted |= {(name, True): EMULATIONS[name].lifting_the_pins() for name in LIFTED}
    wanted = {key: emulation for key, emulation in wanted.items() if HAS_AVX512 or "AVX-512" not in key[0]}
    with ThreadPoolExecutor(2) as pool:
        futures = {
            key: pool.submit(fingerprint, base / f"run{i}", emulation)
            for i, (key, emulation) in enumerate(wanted.items())
        }
        return {key: future.result() for key, future in futures.items()}


def _run(runs, name: str, lifted: bool = False) -> dict:
    if (name, lifted) not in runs:
        pytest.skip(NEEDS_AVX512)
    return runs[name, lifted]


@pytest.mark.parametrize("name", EMULATIONS)
def test_every_emulated_machine_computes_the_committed_bytes(runs, name):
    outputs, expected = _run(runs, name), committed()["outputs"]
    assert len(outputs) == len(expected) > 40
    assert differing(outputs, expected) == [], REWRITE


def test_without_the_pins_avx512_kernels_change_the_spectrograms_and_the_model(runs):
    changed = differing(_run(runs, "AVX-512 CPU, 2 cores", lifted=True), committed()["outputs"])
    assert {"data/features/windows.h5", "models/model.keras"} <= set(changed)


@pytest.mark.parametrize("cores", ["AVX-512 CPU, 1 core", "AVX2-only CPU, 16 cores"])
def test_without_the_pins_the_number_of_cores_changes_the_model(runs, cores):
    two = "AVX-512 CPU, 2 cores" if "AVX-512" in cores else "AVX2-only CPU, 2 cores"
    changed = differing(_run(runs, cores, lifted=True), _run(runs, two, lifted=True))
    assert "models/model.keras" in changed
    assert "data/features/windows.h5" not in changed  # etl's sums do not depend on threads


def test_an_emulation_binds_the_cores_it_names():
    assert Emulation(cores=1).command(["dvc"])[:2] == ["taskset", "--cpu-list"]
    assert Emulation().command(["dvc"]) == ["dvc"]
