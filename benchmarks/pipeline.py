"""The pipeline benchmark: every stage at two or more dataset sizes, and the references.

:func:`benchmark_size` makes one size's project and measures it;
:func:`table` and :func:`marginal_table` print the figures.
``python -m benchmarks`` (:mod:`benchmarks.__main__`) runs it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import h5py
import pandas as pd
import yaml

from benchmarks.measure import REFERENCES, measure, work_seconds
from benchmarks.project import make_project, run, stage_commands

RECORDING_SECONDS = 60.0
#: Throughput -> (the work it counts, the stage whose time it takes).
THROUGHPUTS = {
    "etl audio s / s": ("etl audio s", "etl"),
    "augment audio s / s": ("augment audio s", "augment"),
    "train examples / s": ("train examples", "train"),
    "submit audio s / s": ("submit audio s", "submit"),
    "original etl audio s / s": ("etl audio s", "original-etl"),
    "BirdNET audio s / s": ("submit audio s", "birdnet"),
}


def benchmark_size(workdir: Path, n_train: int, n_test: int, epochs: int, birdnet_processes: int) -> dict:
    """Every figure of one dataset size."""
    project = make_project(
        workdir / f"train-{n_train}",
        {
            "demo": {"n_train_recordings": n_train, "n_test_recordings": n_test},
            "train": {"epochs": epochs, "early_stopping_patience": 0},
        },
    )
    figures: dict[str, float] = {"train recordings": n_train, "test recordings": n_test}
    for stage, command in stage_commands(project).items():
        print(f"[{n_train}] {stage} ...", file=sys.stderr, flush=True)
        seconds, peak, output = measure(["bash", "-c", command], project)
        figures[f"{stage} seconds"] = seconds
        figures[f"{stage} seconds after imports"] = work_seconds(stage, output)
        figures[f"{stage} peak MiB"] = peak / 2**20
    run(["dvc", "commit", "--force", "--quiet"], project)
    no_op = []
    for _ in range(3):
        started = time.perf_counter()
        output = run(["dvc", "repro"], project).stdout
        no_op.append(time.perf_counter() - started)
        if "didn't change" not in output and "up to date" not in output:
            raise RuntimeError(f"dvc repro was not a no-op after dvc commit:\n{output}")
    figures["no-op dvc repro seconds"] = statistics.median(no_op)

    params = yaml.safe_load((project / "params.yaml").read_text())
    split = pd.read_csv(project / "data/split.csv", dtype={"recording_id": str})
    with (
        h5py.File(project / "data/features/windows.h5") as windows,
        h5py.File(project / "data/features/augmented.h5") as augmented,
    ):
        ids = windows["recording_ids"].asstr()[()]
        # The windows of the first fold's model (the demo's holdout: fold 0 validates).
        n_train_windows = int(pd.Series(ids).isin(split.loc[split["fold"] != 0, "recording_id"]).sum())
        n_augmented = len(augmented["targets"])
    # The work each stage does, to turn its time into a throughput.
    figures["etl audio s"] = n_train * RECORDING_SECONDS
    figures["augment audio s"] = n_augmented * params["features"]["window_seconds"]
    figures["train examples"] = (n_train_windows + n_augmented) * epochs
    figures["submit audio s"] = n_test * RECORDING_SECONDS

    print(f"[{n_train}] references ...", file=sys.stderr, flush=True)
    dataset = project / "data/demo"
    _, peak, output = measure(
        [sys.executable, str(REFERENCES), "original-etl", str(dataset), str(workdir / "original.pkl")], project
    )
    figures["original-etl seconds after imports"] = work_seconds("original-etl", output)
    figures["original etl peak MiB"] = peak / 2**20
    if birdnet_processes:
        _, _, output = measure(
            [sys.executable, str(REFERENCES), "birdnet", str(dataset / "test"), str(birdnet_processes)], project
        )
        figures["birdnet seconds after imports"] = work_seconds("birdnet", output)
    for rate, (amount, stage) in THROUGHPUTS.items():
        if f"{stage} seconds after imports" in figures:
            figures[rate] = figures[amount] / figures[f"{stage} seconds after imports"]
    figures["etl speed / original"] = figures["etl audio s / s"] / figures["original etl audio s / s"]
    figures["etl peak memory / original"] = figures["etl peak MiB"] / figures["original etl peak MiB"]
    if birdnet_processes:
        figures["submit speed / BirdNET"] = figures["submit audio s / s"] / figures["BirdNET audio s / s"]
    return figures


def table(results: list[dict]) -> str:
    """One Markdown row per figure, one column per size, then largest / smallest."""
    sizes = [f"{int(r['train recordings'])} + {int(r['test recordings'])} rec" for r in results]
    lines = [f"| figure | {' | '.join(sizes)} | ratio |", f"|---|{'---:|' * (len(results) + 1)}"]
    for name in results[0]:
        if name.endswith("recordings"):
            continue
        values = [r.get(name, float("nan")) for r in results]
        ratio = values[-1] / values[0] if values[0] else float("nan")
        lines.append(f"| {name} | {' | '.join(f'{v:,.2f}' for v in values)} | {ratio:.2f} |")
    return "\n".join(lines)


def marginal_table(small: dict, large: dict) -> str:
    """Throughputs of the extra work between two sizes: (extra work) / (extra
    time), free of each stage's fixed cost (loading the model, tracing it,
    starting workers), which a run at full scale does not notice."""
    lines = ["| between the sizes | marginal throughput |", "|---|---:|"]
    rates = {}
    for rate, (amount, stage) in THROUGHPUTS.items():
        seconds = f"{stage} seconds after imports"
        if seconds in small and seconds in large:
            rates[rate] = (large[amount] - small[amount]) / (large[seconds] - small[seconds])
            lines.append(f"| {rate} | {rates[rate]:,.1f} |")
    for ours, theirs in [
        ("etl audio s / s", "original etl audio s / s"),
        ("submit audio s / s", "BirdNET audio s / s"),
    ]:
        if ours in rates and theirs in rates:
            lines.append(f"| {ours} / {theirs} | {rates[ours] / rates[theirs]:,.2f} |")
    return "\n".join(lines)
