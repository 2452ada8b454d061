"""What the pinned kernels cost: each stage's time with the pins and with them lifted.

``rainforest.numerics`` pins every x86-64 CPU with AVX2 to the same kernels
(OpenBLAS's Haswell ones, numpy's and oneDNN's AVX2 loops) and training to
:data:`~rainforest.numerics.TRAINING_THREADS` threads, so that every such
machine computes the same bytes. On a CPU with AVX-512, or with more cores,
that may cost time. This benchmark makes one project of the default
pipeline, generates its demo data once, then runs every later stage's
command with the pins (the default) and with ``RAINFOREST_FAST_KERNELS=1``,
alternating the two ``--repeats`` times, and prints each stage's median time
("done in", after the imports) in both modes.

Usage::

    python -m benchmarks.kernels                 # the default run, 30 epochs: about 25 minutes on 2 cores
    python -m benchmarks.kernels --epochs 10 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.measure import measure, work_seconds
from benchmarks.project import STAGES, make_project, stage_commands
from rainforest.numerics import FAST_ENVIRON, TRAINING_THREADS

#: The stages timed, in order (check only validates the settings, demo only makes the data).
TIMED = STAGES[2:]
MODES = {"pinned": {}, "lifted": {FAST_ENVIRON: "1", "NPY_DISABLE_CPU_FEATURES": "", "ONEDNN_MAX_CPU_ISA": "ALL"}}


def stage_times(workdir: Path, *, epochs: int | None, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Seconds of each timed stage's work, by mode, one entry per repeat."""
    overrides = {"train": {"epochs": epochs}} if epochs else {}
    project = make_project(workdir / "pins", overrides)
    commands = stage_commands(project)
    measure(["bash", "-c", commands["demo"]], project)
    times: dict[str, dict[str, list[float]]] = {stage: {mode: [] for mode in MODES} for stage in TIMED}
    for repeat in range(repeats):
        # Alternate which mode goes first, so a machine that slows down within the hour does not favour one.
        for mode in list(MODES) if repeat % 2 == 0 else list(reversed(MODES)):
            for stage in TIMED:
                print(f"[{repeat + 1}/{repeats}] {mode} {stage} ...", file=sys.stderr, flush=True)
                _, _, output = measure(["bash", "-c", commands[stage]], project, MODES[mode])
                times[stage][mode].append(work_seconds(stage, output))
                print(f"    {times[stage][mode][-1]:.1f} s", file=sys.stderr, flush=True)
    return times


def table(times: dict[str, dict[str, list[float]]]) -> str:
    lines = ["| stage | pinned s | lifted s | pinned / lifted |", "|---|---:|---:|---:|"]
    totals = dict.fromkeys(MODES, 0.0)
    for stage, by_mode in times.items():
        medians = {mode: statistics.median(values) for mode, values in by_mode.items()}
        for mode in MODES:
            totals[mode] += medians[mode]
        ratio = f"{medians['pinned'] / medians['lifted']:.2f}" if medians["lifted"] else "-"
        lines.append(f"| {stage} | {medians['pinned']:.1f} | {medians['lifted']:.1f} | {ratio} |")
    lines.append(
        f"| all | {totals['pinned']:.1f} | {totals['lifted']:.1f} | {totals['pinned'] / totals['lifted']:.2f} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kernels", description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, help="training epochs (default: params.yaml's)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode, alternating (default: 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        times = stage_times(Path(folder), epochs=args.epochs, repeats=args.repeats)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"{cpu}, {os.cpu_count()} cores; training threads pinned: {TRAINING_THREADS}; "
        f"median of {args.repeats} runs per mode"
    )
    print(table(times))


if __name__ == "__main__":
    main()
