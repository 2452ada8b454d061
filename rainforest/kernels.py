"""The BLAS kernels numpy runs, pinned, so that outputs do not depend on which CPU computed them.

OpenBLAS, numpy's BLAS, picks its kernels when it loads, by CPU model or by
``OPENBLAS_CORETYPE``, and kernels for different models sum in different
orders, so the same matrix product can differ in its last bits from one
machine to another. The spectrograms' mel projection is such a product: on a
machine whose environment set ``OPENBLAS_CORETYPE=Haswell`` (an AVX-512 CPU
that OpenBLAS would otherwise run with its SkylakeX kernels), ``etl`` wrote
another ``windows.h5`` than the committed ``dvc.lock`` names, and every stage
after it reran. Pinning the kernels to the CPU's instruction set, not its
model or the environment, makes every machine of one class compute the same
bytes. ``rainforest/__init__.py`` calls :func:`pin_openblas_kernels` before
anything imports numpy.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: The instruction-set extensions OpenBLAS's SkylakeX kernels use.
AVX512 = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"})
#: Those its Haswell kernels use.
AVX2 = frozenset({"avx2", "fma"})


def openblas_coretype(cpu_flags: frozenset[str] | set[str]) -> str | None:
    """The OpenBLAS kernels to pin for a CPU with ``cpu_flags`` (as ``/proc/cpuinfo`` lists them).

    SkylakeX on any CPU with AVX-512 (Intel since Skylake-SP, AMD since Zen 4),
    Haswell on one with only AVX2 and FMA; ``None`` (OpenBLAS's own choice)
    on older ones.

    Examples
    --------
    >>> openblas_coretype({"sse2", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"})
    'SkylakeX'
    >>> openblas_coretype({"sse2", "avx2", "fma"})
    'Haswell'
    >>> openblas_coretype({"sse2"}) is None
    True
    """
    if AVX512 <= cpu_flags:
        return "SkylakeX"
    if AVX2 <= cpu_flags:
        return "Haswell"
    return None


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def pin_openblas_kernels() -> None:
    """Set ``OPENBLAS_CORETYPE`` (:func:`openblas_coretype`) for this process and those it starts.

    Only on x86-64 Linux; it takes effect only if numpy has not been imported
    yet. It replaces a value already set: machines set one to get past a CPU
    that OpenBLAS misdetects (one here had Haswell), and the kernels chosen
    from the CPU's flags run there too.
    """
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        coretype = openblas_coretype(_cpu_flags())
        if coretype is not None:
            os.environ["OPENBLAS_CORETYPE"] = coretype
