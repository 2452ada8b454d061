"""The class of machine whose bytes this one computes, and the one that wrote ``dvc.lock``.

Every x86-64 Linux machine with AVX2 and FMA runs the same kernels, told the
same cache sizes (:mod:`rainforest.numerics`): class
:data:`~rainforest.numerics.BASELINE`.

``dvc.lock.machine`` records the class of the machine that wrote
``dvc.lock``. ``make run`` prints :func:`lock_machine_line` before it runs
the pipeline, and records this machine when the run rewrote the lock. CI
fails where the committed lock came from another class than its own
(``check --strict``).

Usage: ``python -m rainforest.machine [show|check|record|environment] [--strict]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from rainforest.numerics import AVX2, AVX512, BASELINE, cpu_flags, fast_kernels, pins

#: Where the repository records the machine that wrote dvc.lock.
LOCK_MACHINE_FILE = "dvc.lock.machine"


def machine_class(flags: frozenset[str] | set[str], *, machine: str, system: str, fast: bool = False) -> str:
    """The class of machine that computes the same bytes as this one.

    ``flags`` are the CPU's instruction-set extensions (as /proc/cpuinfo lists
    them). :data:`BASELINE` for every x86-64 Linux CPU with AVX2 and FMA, pinned.
    Anything else computes its own bytes: with the pins lifted, the CPU's own
    level followed by ``-native`` (outputs then depend on its model and
    cores too); an older x86-64 CPU, another architecture or system, by name.

    Examples
    --------
    >>> machine_class({"avx2", "fma", *AVX512}, machine="x86_64", system="Linux")
    'x86-64-v3'
    >>> machine_class({"avx2", "fma", *AVX512}, machine="x86_64", system="Linux", fast=True)
    'x86-64-v4-native'
    >>> machine_class({"sse2"}, machine="x86_64", system="Linux")
    'x86-64-v2-or-older'
    >>> machine_class(set(), machine="aarch64", system="Linux")
    'Linux-aarch64'
    """
    if system != "Linux" or machine != "x86_64":
        return f"{system}-{machine}"
    if not AVX2 <= flags:
        return "x86-64-v2-or-older"
    if fast:
        return f"x86-64-v{4 if AVX512 <= flags else 3}-native"
    return BASELINE


@dataclass(frozen=True)
class Machine:
    """What decides the bytes a machine computes: its class."""

    machine_class: str

    @classmethod
    def here(cls) -> Machine:
        """This machine, as the environment left it (``RAINFOREST_FAST_KERNELS``)."""
        return cls(
            machine_class(cpu_flags(), machine=platform.machine(), system=platform.system(), fast=fast_kernels())
        )

    @classmethod
    def parse(cls, text: str) -> Machine:
        """Read :meth:`record`'s text (a ``class: ...`` line)."""
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        return cls(fields.get("class", "").strip())

    def record(self) -> str:
        return f"class: {self.machine_class}\n"


def lock_machine_line(recorded: Machine | None, here: Machine) -> str:
    """One line saying whether machine ``here`` reproduces a ``dvc.lock``
    written on ``recorded`` (``None``: not recorded).

    Examples
    --------
    >>> lock_machine_line(Machine("x86-64-v3"), Machine("x86-64-v3"))
    'machine class x86-64-v3, as dvc.lock: outputs reproduce it byte for byte'
    >>> print(lock_machine_line(Machine("x86-64-v3"), Machine("Linux-aarch64")))
    machine class Linux-aarch64, but dvc.lock was written on x86-64-v3: outputs will differ in their last bits and stages will rerun (docs/reproducibility.md)
    """
    if recorded is None:
        return (
            f"machine class {here.machine_class}, but {LOCK_MACHINE_FILE} does not say where dvc.lock was "
            "written: outputs may differ in their last bits (docs/reproducibility.md)"
        )
    if recorded.machine_class != here.machine_class:
        return (
            f"machine class {here.machine_class}, but dvc.lock was written on {recorded.machine_class}: "
            "outputs will differ in their last bits and stages will rerun (docs/reproducibility.md)"
        )
    return f"machine class {here.machine_class}, as dvc.lock: outputs reproduce it byte for byte"


def main(argv: list[str] | None = None) -> int:
    """``python -m rainforest.machine [show|check|record|environment] [--strict]``.

    ``show`` prints this machine's class; ``check`` prints
    :func:`lock_machine_line` for ``dvc.lock.machine`` (exit 1 with
    ``--strict`` if the classes differ, as CI runs it); ``record`` writes
    this machine there; ``environment`` prints the pins as shell ``export``
    lines, for a process that loads numpy before ``rainforest`` (a
    ``dask worker``: ``eval "$(python -m rainforest.machine environment)"``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m rainforest.machine", description=(main.__doc__ or "").split("\n")[0]
    )
    parser.add_argument("action", nargs="?", choices=["show", "check", "record", "environment"], default="show")
    parser.add_argument("--strict", action="store_true", help="check: exit 1 if dvc.lock came from another class")
    parser.add_argument("--file", type=Path, default=Path(LOCK_MACHINE_FILE), help="default: %(default)s")
    args = parser.parse_args(argv)
    here = Machine.here()
    if args.action == "show":
        print(here.record(), end="")
    elif args.action == "record":
        args.file.write_text(here.record())
    elif args.action == "environment":
        print("".join(f"export {name}='{value}'\n" for name, value in sorted(pins().items())), end="")
    else:
        recorded = Machine.parse(args.file.read_text()) if args.file.exists() else None
        print(lock_machine_line(recorded, here))
        if args.strict and (recorded is None or recorded.machine_class != here.machine_class):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
