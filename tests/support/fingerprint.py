"""The reproducibility fingerprint: the digests of a tiny pipeline's outputs, under emulated CPUs.

A machine of another kind than the one that wrote ``dvc.lock`` must compute
the same bytes (``rainforest.numerics``). With no second machine at hand, the
choices such a machine's libraries would make are emulated on this one, by the
variables and the CPU affinity that those libraries read when they load:

* an AVX2-only CPU: OpenBLAS's Haswell kernels, numpy's AVX-512 loops off,
  oneDNN capped at AVX2 (what each chooses by itself on such a CPU);
* an AVX-512 CPU: OpenBLAS's SkylakeX kernels and oneDNN's every ISA (only
  where this CPU has AVX-512);
* one core against two: the process and every child bound to that many CPUs;
* sixteen cores, as TensorFlow sees them: its thread pools sized 16
  (``TF_NUM_INTRAOP_THREADS``) on this machine's cores.

:func:`fingerprint` runs every stage of :data:`~tests.support.project.TINY`
with the real ``dvc`` under one :class:`Emulation` and returns the SHA-256 of
every output file. ``tests/fingerprint.json`` holds the committed digests;
after a change that is meant to change the pipeline's outputs, rewrite it
with ``python -m tests.support.fingerprint`` (about 30 s) and commit it
beside the new ``dvc.lock``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.project import make_project, run
from rainforest.machine import Machine
from rainforest.numerics import AVX512, FAST_ENVIRON, cpu_flags
from tests.support.paths import ROOT
from tests.support.project import TINY, output_files

#: The committed fingerprint.
FINGERPRINT_PATH = ROOT / "tests" / "fingerprint.json"
#: Seconds one emulated run may take.
TIMEOUT = 600
#: Whether this CPU can run AVX-512 kernels, so that an AVX-512 CPU can be emulated.
HAS_AVX512 = AVX512 <= cpu_flags()


@dataclass(frozen=True)
class Emulation:
    """The choices of another machine's libraries: variables they read, and how many cores they see."""

    environment: dict[str, str] = field(default_factory=dict)
    #: Bind every process to this many of this machine's CPUs (``None``: as they are).
    cores: int | None = None

    def lifting_the_pins(self) -> Emulation:
        """The same machine with ``RAINFOREST_FAST_KERNELS=1``: each library's own choice."""
        return Emulation({**self.environment, FAST_ENVIRON: "1"}, self.cores)

    def command(self, args: list[str]) -> list[str]:
        """``args`` bound to the first :attr:`cores` of this process's CPUs (``taskset``)."""
        if self.cores is None:
            return args
        cpus = sorted(os.sched_getaffinity(0))[: self.cores]
        return ["taskset", "--cpu-list", ",".join(map(str, cpus)), *args]


AVX2_ONLY = {
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
WITH_AVX512 = {"OPENBLAS_CORETYPE": "SkylakeX", "NPY_DISABLE_CPU_FEATURES": "", "ONEDNN_MAX_CPU_ISA": "ALL"}

#: The machines each fingerprint run emulates, by name.
EMULATIONS = {
    "this machine": Emulation(),
    "AVX2-only CPU, 2 cores": Emulation(AVX2_ONLY, cores=2),
    "AVX-512 CPU, 2 cores": Emulation(WITH_AVX512, cores=2),
    "AVX-512 CPU, 1 core": Emulation(WITH_AVX512, cores=1),
    "AVX2-only CPU, 16 cores": Emulation({**AVX2_ONLY, "TF_NUM_INTRAOP_THREADS": "16"}),
}


def fingerprint(path: Path, emulation: Emulation) -> dict[str, str | None]:
    """Run every stage of a fresh :data:`TINY` project in ``path`` under
    ``emulation``; the SHA-256 of each output file, by path."""
    project = make_project(path, TINY)
    run(emulation.command(["dvc", "repro", "--quiet"]), project, env=emulation.environment, timeout=TIMEOUT)
    return output_files(project)


def committed() -> dict:
    """``tests/fingerprint.json``: the machine class that wrote it and the output digests."""
    return json.loads(FINGERPRINT_PATH.read_text())


def main() -> None:
    """Rewrite ``tests/fingerprint.json`` from a run on this machine, as it is."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        outputs = fingerprint(Path(folder) / "tiny", EMULATIONS["this machine"])
    here = Machine.here()
    record = {
        "machine_class": here.machine_class,
        "project": "tests.support.project.TINY",
        "outputs": outputs,
    }
    FINGERPRINT_PATH.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(
        f"wrote {FINGERPRINT_PATH.relative_to(ROOT)}: {len(outputs)} outputs, machine class {here.machine_class}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
