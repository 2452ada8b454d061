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
spectrograms). TensorFlow reads three more things off the CPU itself, each of
which changed the trained model (``tests/test_other_cpus.py`` emulates them):
whether it has VNNI (oneDNN's convolutions, else Eigen's), its caches' sizes
(Eigen and oneDNN block their sums by them) and its approximate reciprocal
(square root), whose last bits differ between Intel and AMD.

On any x86-64 CPU with AVX2 and FMA (x86-64-v3: Intel since Haswell, AMD since
Excavator and Zen), :func:`pinned_environment` pins all of them to that
baseline: OpenBLAS's Haswell kernels, numpy's AVX-512 loops off, oneDNN capped
at AVX2 and used on every CPU, and training on :data:`TRAINING_THREADS` threads
whatever the number of cores; :func:`pin_tensorflow` tells TensorFlow's kernels
the same caches on every CPU and keeps ``rsqrt`` out of its graphs
(``rainforest.model`` keeps it and ``reciprocal`` out of the model). Every such
machine, with or without AVX-512, Intel or AMD, computes the same bytes.
``rainforest/__init__.py`` calls :func:`pin_kernels` before anything imports
numpy or TensorFlow; the variables are inherited by every process the pipeline
starts (DVC stages, augment's pool, Dask workers). ``rainforest.model`` calls
:func:`pin_tensorflow` once TensorFlow has loaded.

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
    - ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's kernels capped at AVX2;
    - ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow's convolutions and matrix
      products in oneDNN on every CPU (TensorFlow's own choice takes them
      there only on CPUs with VNNI, Eigen's elsewhere, and the two sum in
      different orders).

    Examples
    --------
    >>> sorted(pinned_environment({"sse2", "avx2", "fma"}).items())
    [('ONEDNN_MAX_CPU_ISA', 'AVX2'), ('OPENBLAS_CORETYPE', 'Haswell'), ('TF_ENABLE_ONEDNN_OPTS', '1')]
    >>> pinned_environment({"sse2", "avx2", "fma", *AVX512})["NPY_DISABLE_CPU_FEATURES"]
    'X86_V4 AVX512_ICL AVX512_SPR'
    >>> pinned_environment({"sse2", "sse4_2"})
    {}
    """
    if not AVX2 <= cpu_flags:
        return {}
    environment = {"OPENBLAS_CORETYPE": "Haswell", "ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "1"}
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


#: The caches TensorFlow's kernels are told this CPU has, whatever it has (bytes
#: per core): Eigen and oneDNN size the blocks of their sums by them.
PINNED_CACHES = (32 * 1024, 1024 * 1024, 16 * 1024 * 1024)
#: Where TensorFlow's kernels keep the cache sizes they read from the CPU: the
#: library, and the symbols (from its symbol table) of Eigen's cache sizes,
#: their initialisation guard, and oneDNN's function that returns its
#: description of the CPU.
_TENSORFLOW_CACHE_SYMBOLS = {
    "libtensorflow_cc.so.2": (
        "_ZZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes",
        "_ZGVZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes",
        "_ZN4dnnl4impl3cpu3x643cpuEv",
    ),
    "libtensorflow_framework.so.2": (
        "_ZZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes",
        "_ZGVZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes",
        None,
    ),
}


def pin_tensorflow() -> None:
    """Pin what TensorFlow decides at run time, once it has loaded and before its first op.

    - The caches: Eigen's and oneDNN's matrix products split their sums into
      blocks sized by the CPU's L1, L2 and L3 caches, which they read from the
      CPU itself (no variable sets them), so machines whose caches differ
      trained models that differed in their last bits. Both are told
      :data:`PINNED_CACHES` instead, in the memory where they keep them.
    - Grappler's arithmetic optimiser off: it rewrites ``x / sqrt(y)`` into
      ``x * rsqrt(y)``, and TensorFlow's ``rsqrt`` starts from the CPU's
      approximate ``vrsqrtps``, whose last bits differ between Intel and AMD
      (so does ``reciprocal``'s ``vrcpps``: ``rainforest.model`` keeps both
      out of the model).

    Nothing is pinned with :func:`fast_kernels` or where :func:`pins` sets
    nothing (not x86-64 Linux with AVX2).

    Raises
    ------
    RuntimeError
        If the TensorFlow libraries lack the symbols, or oneDNN's description
        of the CPU is not laid out as this function expects: another
        TensorFlow than ``requirements.txt`` pins.
    """
    if not pins():
        return
    import ctypes

    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
    for library, (eigen_sizes, eigen_guard, onednn_cpu) in _TENSORFLOW_CACHE_SYMBOLS.items():
        base, path = _loaded_library(library)
        wanted = [name for name in (eigen_sizes, eigen_guard, onednn_cpu) if name]
        found = _symbol_values(path, wanted)
        missing = [name for name in wanted if name not in found]
        if missing:
            raise RuntimeError(f"{path} has no symbol {missing[0]}: is TensorFlow the version requirements.txt pins?")
        sizes = (ctypes.c_long * 3).from_address(base + found[eigen_sizes])
        sizes[:] = list(PINNED_CACHES)
        # Initialised: Eigen never reads the CPU's own sizes over these.
        ctypes.c_uint8.from_address(base + found[eigen_guard]).value = 1
        if onednn_cpu:
            _pin_onednn_caches(ctypes.CFUNCTYPE(ctypes.c_void_p)(base + found[onednn_cpu])(), path)


def _pin_onednn_caches(address: int, library: str) -> None:
    # oneDNN's Xbyak::util::Cpu (xbyak_util.h): its type (16 bytes), x2APIC
    # (4), cores per topology level (2 x 4), then the data caches' sizes and
    # the cores sharing each (10 x 4 bytes each) and the number of levels.
    import ctypes

    words = (ctypes.c_uint32 * 28).from_address(address)
    sizes, sharing, levels = words[7:17], words[17:27], words[27]
    if not (1 <= levels <= 10 and 8 * 1024 <= sizes[0] <= 1024 * 1024 and all(sharing[:levels])):
        raise RuntimeError(
            f"oneDNN's description of the CPU in {library} is not laid out as rainforest.numerics expects "
            f"(levels {levels}, sizes {list(sizes[:3])}): is TensorFlow the version requirements.txt pins?"
        )
    words[7:17] = [*PINNED_CACHES, *[0] * 7]
    words[17:27] = [1, 1, 1, *[0] * 7]
    words[27] = len(PINNED_CACHES)


def _loaded_library(name: str) -> tuple[int, str]:
    """Where this process loaded the shared library ``name``: its base address and path."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5].endswith("/" + name) and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16), fields[5]
    raise RuntimeError(f"{name} is not loaded: is TensorFlow the version requirements.txt pins?")


def _symbol_values(path: str, names: list[str]) -> dict[str, int]:
    """The values (offsets from the load address) of ``names`` in the symbol
    table of the ELF shared library at ``path``, local symbols included."""
    import mmap
    import struct

    import numpy as np

    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as image:
        (section_headers,) = struct.unpack_from("<Q", image, 0x28)
        header_size, count = struct.unpack_from("<HH", image, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", image, section_headers + i * header_size) for i in range(count)]
        tables = [section for section in sections if section[1] == 2]  # SHT_SYMTAB
        if not tables:
            return {}
        _, _, _, _, offset, size, link, _, _, _ = tables[0]
        strings_offset, strings_size = sections[link][4], sections[link][5]
        symbol = np.dtype(
            [("name", "<u4"), ("info", "u1"), ("other", "u1"), ("section", "<u2"), ("value", "<u8"), ("size", "<u8")]
        )
        symbols = np.frombuffer(image, dtype=symbol, count=size // symbol.itemsize, offset=offset).copy()
        found = {}
        for name in names:
            at = image.find(b"\0" + name.encode() + b"\0", strings_offset, strings_offset + strings_size)
            if at < 0:
                continue
            matches = np.flatnonzero(symbols["name"] == at + 1 - strings_offset)
            if len(matches):
                found[name] = int(symbols["value"][matches[0]])
        return found


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
