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

Run ``python -m benchmarks --help`` for the options. This module is only the
entry point: the pipeline benchmark is :mod:`benchmarks.pipeline`, the archive
benchmark :mod:`benchmarks.archive`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks.archive import archive_figures, archive_table
from benchmarks.pipeline import benchmark_size, marginal_table, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[30, 120], help="train recordings per size (default: 30 120)"
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=1.0,
        help="test recordings per train recording (default: 1, so that loading and tracing the model weigh in submit as little as at full scale)",
    )
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3; early stopping off)")
    parser.add_argument(
        "--birdnet-processes", type=int, default=2, help="BirdNET processes; 0 skips BirdNET (default: 2)"
    )
    parser.add_argument(
        "--archive-recordings",
        type=int,
        default=1000,
        help="files of the archive run on the largest size's model and test recordings (default: 1000; 0 skips it)",
    )
    parser.add_argument(
        "--archive-workers", type=int, nargs="+", default=[1, 2], help="--workers of the archive runs (default: 1 2)"
    )
    parser.add_argument("--workdir", type=Path, help="where the projects go (default: a temporary folder, removed)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)

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
                largest / "models/model.keras",
                sources,
                n_recordings=args.archive_recordings,
                workers=args.archive_workers,
                workdir=workdir / "archive",
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
