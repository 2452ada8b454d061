"""The pinned OpenBLAS kernels: the same spectrogram bytes whatever OPENBLAS_CORETYPE a machine sets."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys

import pytest

import rainforest.kernels
from rainforest.kernels import _cpu_flags, openblas_coretype

PINNED = openblas_coretype(_cpu_flags())

# A log-mel spectrogram of fixed noise, its SHA-256, and the kernels numpy's OpenBLAS ran it with
# (scipy loads an OpenBLAS of its own).
SPECTROGRAM = """
import hashlib{numpy_first}
import rainforest.spectrogram as spectrogram
import numpy as np
from threadpoolctl import threadpool_info
from rainforest.config import FeatureSettings
noise = np.random.default_rng(0).standard_normal(48000 * 10).astype(np.float32)
features = FeatureSettings(n_fft=2048, hop_length=1024, n_mels=64, fmin=50.0, fmax=15000.0, window_seconds=2.0)
mel = spectrogram.log_mel_spectrogram(noise, 48000, features)
numpys = [blas["architecture"] for blas in threadpool_info() if "numpy" in blas["filepath"]]
print(hashlib.sha256(mel.tobytes()).hexdigest(), *numpys)
"""


def _spectrogram(coretype: str, *, numpy_first: bool = False) -> tuple[str, str]:
    code = SPECTROGRAM.format(numpy_first="\nimport numpy" if numpy_first else "")
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    digest, architecture = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return digest, architecture


def test_docstring_examples_run():
    failures, tried = doctest.testmod(rainforest.kernels)
    assert tried > 0 and failures == 0


@pytest.mark.slow
@pytest.mark.skipif(PINNED is None, reason="not an x86-64 Linux CPU with AVX2: OpenBLAS's own kernels run")
def test_importing_rainforest_pins_the_kernels_whatever_the_environment_sets():
    # A machine here set OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU; another may set anything.
    runs = {coretype: _spectrogram(coretype) for coretype in ("Haswell", "SkylakeX", "Prescott")}
    assert {architecture for _, architecture in runs.values()} == {PINNED}
    assert len({digest for digest, _ in runs.values()}) == 1


@pytest.mark.slow
@pytest.mark.skipif(PINNED != "SkylakeX", reason="needs a CPU with AVX-512, to run two kernel families")
def test_without_the_pin_the_kernels_change_the_spectrogram():
    # numpy imported before rainforest: OpenBLAS takes the environment's kernels. That the
    # bytes then differ is why the pin exists (and shows the test above could fail).
    haswell, skylake = _spectrogram("Haswell", numpy_first=True), _spectrogram("SkylakeX", numpy_first=True)
    assert (haswell[1], skylake[1]) == ("Haswell", "SkylakeX")
    assert haswell[0] != skylake[0]
    assert skylake[0] == _spectrogram("Haswell")[0]
