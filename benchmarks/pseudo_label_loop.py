"""Pseudo-label rounds, simulated: do a model's own confident scores on unlabelled recordings teach it?

A fresh git + DVC copy of the pipeline makes the demo data (or takes
``--dataset``, such as ``../shared/real/xc_birds``), keeps the labels of only
``--labelled`` training recordings (:func:`benchmarks.review_loop.make_loop_dataset`,
as the review loop does), and leaves the other training recordings in
``train/`` unlabelled: with ``pseudo_label.training_recordings`` they are the
pool, with the free time of the labelled ones. ``dvc repro`` then runs
``--rounds`` rounds (``pseudo_label.rounds``), once per ``--seeds`` seed
(``train.seed``), each in a project of its own.

It prints one Markdown table: per round, the mean and spread (sample
standard deviation) over the seeds of the out-of-fold validation LWLRAP
(``metrics/rounds.json``) and the test LWLRAP (``metrics/test.json``), and
the pseudo-labels the round trained on (positives, and absences).

Usage::

    python -m benchmarks.pseudo_label_loop --labelled 60 --set train.epochs=5 --set train.use_augmented=false \
        --set etl.windows_per_event=2 --set split.folds=3
    python -m benchmarks.pseudo_label_loop --dataset ../shared/real/xc_birds --labelled 30 --set split.folds=3
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
from pathlib import Path

import yaml

from benchmarks.project import copy_project, merge, parse_overrides, run
from benchmarks.review_loop import FEW_LABELS, LOOP_DATASET, TARGETS, make_loop_project


def round_figures(project: Path) -> list[dict[str, float]]:
    """Each round's validation and test LWLRAP and pseudo-label counts, from the project's metrics
    (with no rounds, round 0's are evaluate's and submit's headline figures)."""
    rounds = json.loads((project / "metrics/rounds.json").read_text())
    test = json.loads((project / "metrics/test.json").read_text())
    if not rounds:
        validation = json.loads((project / "metrics/validation.json").read_text())
        return [{"validation": validation["lwlrap"], "test": test["lwlrap"], "positives": 0, "absences": 0}]
    return [
        {
            "validation": rounds[f"round_{n}"]["lwlrap"],
            "test": test["rounds"][f"round_{n}"]["test_lwlrap"],
            "positives": rounds[f"round_{n}"].get("positives", 0),
            "absences": rounds[f"round_{n}"].get("absences", 0),
        }
        for n in range(len(rounds))
    ]


def _spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"


def table(runs: list[list[dict[str, float]]]) -> str:
    """The Markdown table of :func:`round_figures` of every seed's run, mean ± standard deviation per round."""
    lines = [
        "| round | validation LWLRAP | test LWLRAP | pseudo-positives | pseudo-absences |",
        "|---:|---:|---:|---:|---:|",
    ]
    for number in range(len(runs[0])):
        figures = [run_[number] for run_ in runs]
        lines.append(
            f"| {number} | {_spread([f['validation'] for f in figures])} | {_spread([f['test'] for f in figures])} | "
            f"{statistics.fmean(f['positives'] for f in figures):.0f} | "
            f"{statistics.fmean(f['absences'] for f in figures):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pseudo_label_loop", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dataset", type=Path, help="a dataset in the competition's layout (default: the demo data)")
    parser.add_argument(
        "--labelled", type=int, default=60, help="training recordings that keep their labels (default: 60)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="pseudo-label rounds after round 0 (default: 3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5], help="train.seed of each run")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=f"a params.yaml override for every run, as YAML (train.epochs=5), after the loop's own ({FEW_LABELS}); "
        "repeatable",
    )
    parser.add_argument("--workdir", type=Path, help="where the projects go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    overrides = merge(
        {"data": {"dataset_dir": LOOP_DATASET}, "pseudo_label": {"rounds": args.rounds}, **copy.deepcopy(FEW_LABELS)},
        parse_overrides(args.set),
    )
    runs = []
    with tempfile.TemporaryDirectory(prefix="rainforest-pseudo-labels-") as temporary:
        workdir = args.workdir or Path(temporary)
        base, _, pool = make_loop_project(workdir / "base", overrides, args.dataset, args.labelled)
        print(f"{args.labelled} labelled training recordings, {len(pool)} unlabelled", flush=True)
        for seed in args.seeds:
            project = copy_project(base, workdir / f"seed{seed}")
            params = yaml.safe_load((project / "params.yaml").read_text())
            params["train"]["seed"] = seed
            (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            run(["dvc", "repro", *TARGETS], project, timeout=4 * 3600)
            runs.append(round_figures(project))
            print(f"train.seed {seed}: {runs[-1]}", flush=True)
    print(table(runs))


if __name__ == "__main__":
    main()
