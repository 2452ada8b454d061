"""The benchmark: the pipeline at two or more dataset sizes, stage by stage.

For each size it makes a fresh git + DVC copy of the pipeline whose demo
stage generates that many recordings, runs every stage's command once,
recording its wall time and the peak resident memory of its whole process
tree, records the run in dvc.lock (``dvc commit``), then times a no-op
``dvc repro``. On the same recordings it runs the two references of
:mod:`benchmarks.references`. It prints one Markdown table, with the ratio of
each figure between the largest and the smallest size. Then, on the largest
size's model and test recordings, it runs the archive benchmark
(:mod:`benchmarks.archive`: ``rainforest-detect`` over 1,000 one-minute files
with 1 and 2 workers, memory over the run, resume after SIGKILL, BirdNET on
the same files) and prints its table.

Usage::

    pip install -r benchmarks/requirements.txt   # the references' packages
    python -m benchmarks --sizes 30 120          # train recordings per size

Run ``python -m benchmarks --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import pandas as pd
import psutil
import yaml

from tests.support.project import STAGES, make_project, project_env, run

#: Seconds between memory samples of a running stage.
POLL_SECONDS = 0.05
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
#: Run as a script in each project (it reads the project's params.yaml).
REFERENCES = Path(__file__).with_name("references.py")


def measure(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run ``command`` (with the ``env`` variables added); return its wall
    seconds, the peak summed resident memory (bytes) of its process and all
    their children, and its output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=project_env(cwd, env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    parent, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass  # a process ended between listing and reading it
        time.sleep(POLL_SECONDS)
    output = process.stdout.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{output}")
    return time.perf_counter() - started, peak, output


def work_seconds(stage: str, output: str) -> float:
    """The time a stage logged for its work ("STAGE: done in S s"): its wall
    time less the interpreter's start and the imports (TensorFlow's take
    seconds), which a run on the full data set would not notice."""
    match = re.search(rf"{stage}: [^\n]*done in ([0-9.]+) s", output)
    if not match:
        raise RuntimeError(f"stage {stage} logged no 'done in' line:\n{output}")
    return float(match[1])

def stage_commands(project: Path) -> dict[str, str]:
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return {name: stages[name]["cmd"] for name in STAGES}


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
    with h5py.File(project / "data/features/windows.h5") as windows, h5py.File(project / "data/features/augmented.h5") as augmented:
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
    for ours, theirs in [("etl audio s / s", "original etl audio s / s"), ("submit audio s / s", "BirdNET audio s / s")]:
        if ours in rates and theirs in rates:
            lines.append(f"| {ours} / {theirs} | {rates[ours] / rates[theirs]:,.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 120], help="train recordings per size (default: 30 120)")
    parser.add_argument(
        "--test-fraction", type=float, default=1.0,
        help="test recordings per train recording (default: 1, so that loading and tracing the model weigh in submit as little as at full scale)",
    )
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3; early stopping off)")
    parser.add_argument("--birdnet-processes", type=int, default=2, help="BirdNET processes; 0 skips BirdNET (default: 2)")
    parser.add_argument(
        "--archive-recordings", type=int, default=1000,
        help="files of the archive run on the largest size's model and test recordings (default: 1000; 0 skips it)",
    )
    parser.add_argument("--archive-workers", type=int, nargs="+", default=[1, 2], help="--workers of the archive runs (default: 1 2)")
    parser.add_argument("--workdir", type=Path, help="where the projects go (default: a temporary folder, removed)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    from benchmarks.archive import archive_figures, archive_table  # it imports this module

    with tempfile.TemporaryDirectory(prefix="rainforest-benchmark-") as temporary:
        workdir = args.workdir or Path(temporary)
        results = [
            benchmark_size(workdir, n, max(1, round(n * args.test_fraction)), args.epochs, args.birdnet_processes)
            for n in sorted(args.sizes)
        ]
        if args.archive_recordings:
            largest = workdir / f"train-{max(args.sizes)}"
            sources = sorted((largest / "data/demo/test").glob("*.flac"))
            archive = archive_figures(
                largest / "models/model.keras", sources, n_recordings=args.archive_recordings,
                workers=args.archive_workers, workdir=workdir / "archive",
                birdnet_recordings=min(40, len(sources)) if args.birdnet_processes else 0,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    if len(results) > 1:
        print()
        print(marginal_table(results[0], results[-1]))
    if args.archive_recordings:
        print()
        print(archive_table(archive))


if __name__ == "__main__":
    main()
