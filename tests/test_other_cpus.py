"""The same model on other CPUs: training and scoring under ``qemu-x86_64`` emulating them.

``tests/test_fingerprint.py`` emulates what other CPUs' libraries choose by the variables they
read; what they read from the CPU itself is emulated here, by running the process under QEMU's
user-mode emulator with another CPU model (``tests/support/cpu_digests.py``: two steps of
training the default model, then scoring):

* other caches: an AMD EPYC Rome (L2 512 KiB) and an Intel Haswell (L2 4 MiB) against this
  machine's, which Eigen and oneDNN read to block their matrix products' sums;
* another arithmetic for the approximate instructions: QEMU computes ``vrcpps`` and
  ``vrsqrtps`` exactly, where Intel and AMD each approximate them in their own way;
* no VNNI, where TensorFlow would choose Eigen's kernels over oneDNN's by itself.

With the pins (``rainforest.numerics``) every digest must be this machine's. With them lifted
(``RAINFOREST_FAST_KERNELS``), the emulated EPYC must compute other bytes: the emulation
reaches the outputs, so these tests would catch a choice left unpinned.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from rainforest.numerics import FAST_ENVIRON, pins
from tests.support.paths import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not pins(), reason="the pins apply to x86-64 Linux with AVX2 only, and this machine is not one"),
]

QEMU = shutil.which("qemu-x86_64")
#: QEMU's CPU models, whose caches differ from each other's and (likely) this machine's.
CPUS = ["EPYC-Rome", "Haswell-v4"]
#: Seconds one emulated run may take (about 2 minutes on 2 cores).
TIMEOUT = 900


def digests(cpu: str | None, *, lifted: bool = False) -> dict[str, str]:
    """:mod:`tests.support.cpu_digests` on this CPU (``cpu`` None) or under QEMU emulating ``cpu``."""
    # Lifted: not even the variables this process inherited from rainforest's pins.
    environment = {name: value for name, value in os.environ.items() if not (lifted and name in pins())}
    environment[FAST_ENVIRON] = "1" if lifted else "0"
    command = [sys.executable, "-m", "tests.support.cpu_digests"]
    if cpu:
        command = [QEMU, "-cpu", cpu, *command]
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def runs():
    """Every run, two at a time: by (cpu, lifted)."""
    if QEMU is None:
        pytest.fail("qemu-x86_64 is missing: make test installs it (tests/support/system-packages.sh)")
    wanted = [(None, False), *((cpu, False) for cpu in CPUS), (None, True), (CPUS[0], True)]
    with ThreadPoolExecutor(2) as pool:
        futures = {key: pool.submit(digests, key[0], lifted=key[1]) for key in wanted}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("cpu", CPUS)
def test_an_emulated_cpu_trains_and_scores_the_same_bytes(runs, cpu):
    assert runs[cpu, False] == runs[None, False]


def test_without_the_pins_the_emulated_cpu_computes_other_bytes(runs):
    here, emulated = runs[None, True], runs[CPUS[0], True]
    assert here["weights"] != emulated["weights"]
    assert here["scores"] != emulated["scores"]
