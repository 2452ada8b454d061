"""The pinned kernels: the same bytes whatever kernels a machine's environment or CPU would choose.

``tests/test_fingerprint.py`` checks the whole pipeline under emulated CPUs;
these tests check the pieces: which variables are pinned, that importing
``rainforest`` sets them whatever the environment said, that lifting the pins
(``RAINFOREST_FAST_KERNELS``) leaves the environment's choice, and that a
spectrogram's bytes follow.
"""

from __future__ import annotations

import doctest
import os
import subprocess
import sys

import pytest

import rainforest.machine
import rainforest.numerics
from rainforest.machine import LOCK_MACHINE_FILE, Machine, main
from rainforest.numerics import BASELINE, FAST_ENVIRON, TRAINING_THREADS, cpu_flags, pinned_environment, pins
from tests.support.paths import ROOT

PINNED = pinned_environment(cpu_flags())
AVX512_HERE = "NPY_DISABLE_CPU_FEATURES" in PINNED
HERE = Machine.here()
OTHER_CLASS = f"this machine is {HERE.machine_class}, not {BASELINE}: its bytes differ (docs/reproducibility.md)"

# A log-mel spectrogram of fixed noise, its SHA-256, the kernels numpy's OpenBLAS ran it with
# (scipy loads an OpenBLAS of its own), whether numpy's AVX-512 loops are on, and training's threads.
SPECTROGRAM = """
import hashlib{numpy_first}
import rainforest.spectrogram as spectrogram
import numpy as np
from numpy._core._multiarray_umath import __cpu_features__
from threadpoolctl import threadpool_info
from rainforest.config import FeatureSettings, SpectrogramSettings
from rainforest.numerics import training_threads
noise = np.random.default_rng(0).standard_normal(48000 * 10).astype(np.float32)
features = FeatureSettings(n_fft=2048, hop_length=1024, n_mels=64, fmin=50.0, fmax=15000.0, window_seconds=2.0)
mel = spectrogram.log_mel_spectrogram(noise, SpectrogramSettings(48000, features))
numpys = [blas["architecture"] for blas in threadpool_info() if "numpy" in blas["filepath"]]
print(hashlib.sha256(mel.tobytes()).hexdigest(), *numpys, __cpu_features__["X86_V4"], training_threads())
"""


def _spectrogram(environment: dict[str, str], *, numpy_first: bool = False) -> tuple[str, str, str, str]:
    code = SPECTROGRAM.format(numpy_first="\nimport numpy" if numpy_first else "")
    env = {name: value for name, value in os.environ.items() if name != FAST_ENVIRON} | environment
    digest, architecture, avx512, threads = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return digest, architecture, avx512, threads


def test_docstring_examples_run():
    for module in (rainforest.numerics, rainforest.machine):
        failures, tried = doctest.testmod(module)
        assert tried > 0 and failures == 0


@pytest.mark.slow
@pytest.mark.skipif(not PINNED, reason="not an x86-64 Linux CPU with AVX2 and FMA: each library's own kernels run")
def test_importing_rainforest_pins_the_kernels_whatever_the_environment_sets():
    # A machine here set OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU; another may set anything.
    runs = [
        _spectrogram({"OPENBLAS_CORETYPE": coretype, "NPY_DISABLE_CPU_FEATURES": "", "ONEDNN_MAX_CPU_ISA": "ALL"})
        for coretype in ("Haswell", "SkylakeX", "Prescott")
    ]
    assert {architecture for _, architecture, _, _ in runs} == {"Haswell"}
    assert {avx512 for _, _, avx512, _ in runs} == {"False"}
    assert {threads for _, _, _, threads in runs} == {str(TRAINING_THREADS)}
    assert len({digest for digest, *_ in runs}) == 1


@pytest.mark.slow
@pytest.mark.skipif(not AVX512_HERE, reason="needs a CPU with AVX-512, to run two kernel families")
def test_lifting_the_pins_runs_the_cpus_own_kernels_and_changes_the_spectrogram():
    # What the pins undo: with them lifted (or numpy imported before rainforest), this CPU's
    # AVX-512 kernels run and the bytes differ from the pinned ones on the same machine.
    avx512 = {"OPENBLAS_CORETYPE": "SkylakeX", "NPY_DISABLE_CPU_FEATURES": ""}  # this process is pinned
    pinned = _spectrogram(avx512)
    lifted = _spectrogram({FAST_ENVIRON: "1", **avx512})
    numpy_first = _spectrogram(avx512, numpy_first=True)
    assert lifted[1:] == ("SkylakeX", "True", "0")
    assert numpy_first[1:3] == ("SkylakeX", "True")
    assert pinned[0] != lifted[0] == numpy_first[0]


@pytest.mark.skipif(HERE.machine_class != BASELINE, reason=OTHER_CLASS)
def test_the_committed_lock_was_written_on_this_class_of_machine(capsys):
    # CI runs the same check (python -m rainforest.machine check --strict) before make run.
    assert main(["check", "--strict", "--file", str(ROOT / LOCK_MACHINE_FILE)]) == 0, capsys.readouterr().out
    assert f"machine class {BASELINE}" in capsys.readouterr().out


def test_a_lock_from_another_class_is_named_and_fails_the_strict_check(tmp_path, capsys):
    recorded = tmp_path / LOCK_MACHINE_FILE
    recorded.write_text(Machine("Linux-aarch64").record())
    assert main(["check", "--file", str(recorded)]) == 0
    assert main(["check", "--strict", "--file", str(recorded)]) == 1
    line = capsys.readouterr().out.splitlines()[-1]
    assert "dvc.lock was written on Linux-aarch64" in line and "docs/reproducibility.md" in line
    assert main(["record", "--file", str(recorded)]) == 0
    assert Machine.parse(recorded.read_text()) == HERE
    assert main(["check", "--strict", "--file", str(recorded)]) == 0
    assert "reproduce it byte for byte" in capsys.readouterr().out.splitlines()[-1]


UNPINNED = "import sys{numpy_first}\nimport rainforest\nfrom rainforest.numerics import unpinned_libraries\nimport numpy\nprint(unpinned_libraries())"


@pytest.mark.slow
@pytest.mark.skipif(not AVX512_HERE, reason="needs a CPU with AVX-512: elsewhere numpy's own choice is the pinned one")
def test_a_process_that_loaded_numpy_first_is_named_and_the_printed_environment_pins_it():
    # A `dask worker` imports numpy before rainforest; the engine warns with what unpinned_libraries says.
    env = {name: value for name, value in os.environ.items() if name not in PINNED and name != FAST_ENVIRON}
    first = subprocess.run(
        [sys.executable, "-c", UNPINNED.format(numpy_first="\nimport numpy")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "numpy (AVX-512 loops)" in first and "OpenBLAS (SkylakeX kernels)" in first
    assert (
        subprocess.run(
            [sys.executable, "-c", UNPINNED.format(numpy_first="")], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        == "[]"
    )
    # What docs/detection.md tells cluster users to run before `dask worker`:
    script = (
        f'eval "$({sys.executable} -m rainforest.machine environment)"; '
        f'{sys.executable} -c "{UNPINNED.format(numpy_first=chr(10) + "import numpy")}"'
    )
    assert (
        subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True).stdout.strip()
        == "[]"
    )


def test_tensorflow_is_told_the_pinned_caches_and_keeps_rsqrt_out():
    import ctypes

    import tensorflow as tf

    import rainforest.model  # noqa: F401 (it pins TensorFlow)
    from rainforest.numerics import _TENSORFLOW_CACHE_SYMBOLS, PINNED_CACHES, _loaded_library, _symbol_values

    if not pins():
        pytest.skip("the pins apply to x86-64 Linux with AVX2 only")
    tf.matmul(tf.ones((300, 300)), tf.ones((300, 300)))  # Eigen and oneDNN have read their caches
    for library, (eigen_sizes, _, _) in _TENSORFLOW_CACHE_SYMBOLS.items():
        base, path = _loaded_library(library)
        address = base + _symbol_values(path, [eigen_sizes])[eigen_sizes]
        assert tuple((ctypes.c_long * 3).from_address(address)) == PINNED_CACHES
    assert tf.config.optimizer.get_experimental_options()["arithmetic_optimization"] is False
