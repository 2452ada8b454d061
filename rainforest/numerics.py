"""Reproducible numerics: the kernels and thread counts every machine runs, pinned, so outputs do not depend on the CPU.

Numerical libraries choose their kernels when they load, by the CPU they find,
and kernels for different CPUs sum in different orders, so the same inputs
give results that differ in their last bits. The pipeline writes those bits
into ``dvc.lock``: a colleague's machine that computes other bits reruns every
stage and shows "changed" metrics. Three choices moved the outputs of a small
pipeline (``tests/test_fingerprint.py`` emulates each):

- numpy's ufunc loops: AVX-512 versions on CPUs that have it (``etl``'s
  spectrograms changed);
- oneDNN, TensorFlow's convolution and matrix kernels: AVX-512 ones likewise
  (the trained model changed);
- the number of cores: TensorFlow's thread pool splits training's sums by
  thread count (the trained model changed).

OpenBLAS, numpy's BLAS, picks kernels by CPU model or ``OPENBLAS_CORETYPE``
(a machine here set ``Haswell`` on an AVX-512 CPU, and ``etl`` wrote other
spectrograms).

On any x86-64 CPU with AVX2 and FMA (x86-64-v3: Intel since Haswell, AMD since
Excavator and Zen), :func:`pinned_environment` pins all of them to that
baseline: OpenBLAS's Haswell kernels, numpy's AVX-512 loops off, oneDNN capped
at AVX2, and training on :data:`TRAINING_THREADS` threads whatever the number
of cores. Every such machine, with or without AVX-512, Intel or AMD, computes
the same bytes. ``rainforest/__init__.py`` calls :func:`pin_kernels` before
anything imports numpy or TensorFlow; the variables are inherited by every
process the pipeline starts (DVC stages, augment's pool, Dask workers).

Setting ``RAINFOREST_FAST_KERNELS=1`` lifts the pins: each library runs this
CPU's fastest kernels and training uses every core, and outputs then match
only machines of the same CPU model and core count (docs/reproducibility.md).

``rainforest.machine`` names the class of machine whose bytes this one
computes, and records the class that wrote ``dvc.lock``.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

#: The class of machine whose kernels every x86-64 CPU with AVX2 and FMA is pinned to.
BASELINE = "x86-64-v3"
#: The instruction-set extensions of that baseline's kernels (as /proc/cpuinfo names them).
AVX2 = frozenset({"avx2", "fma"})
#: Those of the AVX-512 kernels that numpy and oneDNN would choose (x86-64-v4).
AVX512 = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"})
#: Threads of TensorFlow's intra-op pool while training, on any number of cores.
TRAINING_THREADS = 2
#: The environment variable that lifts the pins (any value but "", "0").
FAST_ENVIRON = "RAINFOREST_FAST_KERNELS"


def pinned_environment(cpu_flags: frozenset[str] | set[str]) -> dict[str, str]:
    """The environment that pins a CPU with ``cpu_flags`` (as /proc/cpuinfo lists
    them) to the :data:`BASELINE` kernels; empty for a CPU without AVX2 and FMA.

    - ``OPENBLAS_CORETYPE=Haswell``: OpenBLAS's AVX2 kernels, whatever the
      CPU model or the environment said;
    - ``NPY_DISABLE_CPU_FEATURES``: numpy's dispatch groups above x86-64-v3 off
      (only on a CPU that has them: numpy names the machine's own features);
    - ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's kernels capped at AVX2.

    Examples
    --------
    >>> sorted(pinned_environment({"sse2", "avx2", "fma"}).items())
    [('ONEDNN_MAX_CPU_ISA', 'AVX2'), ('OPENBLAS_CORETYPE', 'Haswell')]
    >>> pinned_environment({"sse2", "avx2", "fma", *AVX512})["NPY_DISABLE_CPU_FEATURES"]
    'X86_V4 AVX512_ICL AVX512_SPR'
    >>> pinned_environment({"sse2", "sse4_2"})
    {}
    """
    if not AVX2 <= cpu_flags:
        return {}
    environment = {"OPENBLAS_CORETYPE": "Haswell", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    if "avx512f" in cpu_flags:
        environment["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"
    return environment


def fast_kernels() -> bool:
    """Whether the environment lifted the pins (``RAINFOREST_FAST_KERNELS``)."""
    return os.environ.get(FAST_ENVIRON, "") not in ("", "0")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """This CPU's instruction-set extensions, as ``/proc/cpuinfo`` lists them
    (empty where there is no such file)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def pins() -> dict[str, str]:
    """The variables :func:`pin_kernels` sets on this machine: :func:`pinned_environment`
    on x86-64 Linux unless ``RAINFOREST_FAST_KERNELS`` is set, else none."""
    if platform.system() == "Linux" and platform.machine() == "x86_64" and not fast_kernels():
        return pinned_environment(cpu_flags())
    return {}


def pin_kernels() -> None:
    """Set :func:`pins` for this process and those it starts.

    It takes effect only for the libraries not loaded yet
    (:func:`unpinned_libraries` names the others). It replaces values already
    set: machines set ``OPENBLAS_CORETYPE`` to get past a CPU that OpenBLAS
    misdetects, and the pinned kernels run there too.
    """
    os.environ.update(pins())


def training_threads() -> int:
    """Threads of TensorFlow's intra-op pool for training: :data:`TRAINING_THREADS`,
    or 0 (TensorFlow's choice: every core) with the pins lifted."""
    return 0 if fast_kernels() else TRAINING_THREADS


def unpinned_libraries() -> list[str]:
    """The libraries of this process that run other kernels than the pins, by name.

    Empty where nothing is pinned. A library loaded before ``rainforest`` was
    imported (a Dask worker started by ``dask worker`` loads numpy first)
    chose its kernels from the CPU; this says so, so the caller can warn.
    """
    pinned = pins()
    if not pinned or "numpy" not in sys.modules:
        return []
    from numpy._core._multiarray_umath import __cpu_features__
    from threadpoolctl import threadpool_info

    unpinned = []
    if "NPY_DISABLE_CPU_FEATURES" in pinned and __cpu_features__.get("X86_V4"):
        unpinned.append("numpy (AVX-512 loops)")
    unpinned += [
        f"OpenBLAS ({blas['architecture']} kernels)"
        for blas in threadpool_info()
        if blas.get("internal_api") == "openblas"
        and "numpy" in blas["filepath"]
        and blas.get("architecture") not in (None, pinned["OPENBLAS_CORETYPE"])
    ]
    return unpinned
