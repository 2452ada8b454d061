"""The review loop, simulated on the demo data: does reviewing near the threshold beat reviewing at random?

A fresh git + DVC copy of the pipeline makes the demo data (or takes
``--dataset``, such as ``../shared/real/xc_birds``), then keeps the labels of
only ``--labelled`` training recordings, taken in turn from each species; the
other training recordings are the pool, unlabelled as far as the pipeline
knows. Round 0
trains on the labelled ones (``dvc repro``). Each later round, for each
strategy, in a copy of its own:

1. ``rainforest-detect --all`` scores every window of the pool with the
   round's model;
2. per species, ``--budget`` windows not reviewed before are chosen
   (:func:`rainforest.review.selection.select_for_review`): ``near``, those
   whose score is closest to the species' threshold, or ``random``;
3. the reviewer is the dataset's own list of calls (``train_tp.csv`` before
   it was cut): "yes" where a call of the species labels the window (the rule
   training uses, :func:`rainforest.events.window_labels`), else "no";
4. the verdicts are imported into the reviewed labels (what ``rainforest-review
   import`` does, :func:`rainforest.review.verdicts.import_verdicts`), and
   ``dvc repro`` retrains.

It prints one Markdown table: strategy, round, verdicts so far (and the
share that were yes), test LWLRAP (``metrics/test.json``), and precision
and recall of the test recordings at the detector's thresholds (a species is
detected in a recording when a window's score reaches its threshold).

Usage::

    python -m benchmarks.review_loop --labelled 60 --budget 4 --rounds 2
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.project import BIN, copy_project, make_project, merge, parse_overrides, run
from rainforest.audio import index_recordings
from rainforest.config import load_settings
from rainforest.detect.thresholds import load_detector
from rainforest.events import SpeciesNames, competition, presence_matrix, read_species, window_labels
from rainforest.events.verdicts import VERDICT_COLUMNS
from rainforest.review.selection import select_for_review
from rainforest.review.verdicts import import_verdicts

ROOT = Path(__file__).resolve().parents[1]
#: The dataset the loop trains on: the demo's recordings, its labels cut to the labelled recordings.
LOOP_DATASET = "data/loop"
#: Settings for training on few labels, as the loop starts from: five windows along each call (docs/model.md,
#: "Which model to use"), and all the epochs, the best kept: with a few hundred windows the validation
#: score stays flat for the first epochs, and early stopping would end the training there.
FEW_LABELS = {"etl": {"windows_per_event": 5}, "train": {"early_stopping_patience": 0}}
#: What each round reproduces: everything upstream of the test and validation figures (not the
#: demo stage, when the loop runs on another dataset).
TARGETS = ("evaluate", "submit")


def labelled_recordings(calls: pd.DataFrame, n_labelled: int) -> list[str]:
    """``n_labelled`` training recordings, taken in turn from each species' recordings
    (by id), so that every species keeps labelled calls however few are kept.

    Examples
    --------
    >>> calls = pd.DataFrame({"recording_id": ["a", "b", "c", "d"], "species_id": [0, 0, 0, 1]})
    >>> labelled_recordings(calls, 2)
    ['a', 'd']
    """
    by_species = [sorted(set(group)) for _, group in calls.groupby("species_id")["recording_id"]]
    order: list[str] = []
    for turn in range(max(map(len, by_species))):
        for recordings in by_species:
            if turn < len(recordings) and recordings[turn] not in order:
                order.append(recordings[turn])
    return order[:n_labelled]


def make_loop_dataset(source: Path, loop: Path, n_labelled: int) -> list[str]:
    """``loop``: the dataset ``source`` with the labels of ``n_labelled`` training recordings only
    (:func:`labelled_recordings`), its audio linked; returns the pool: the other training recordings."""
    for folder in ("train", "test"):
        (loop / folder).mkdir(parents=True)
        for path in sorted((source / folder).iterdir()):
            try:
                os.link(path, loop / folder / path.name)
            except OSError:  # another file system
                shutil.copy(path, loop / folder / path.name)
    for name in ("sample_submission.csv", "test_ground_truth.csv", "species.csv"):
        if (source / name).exists():
            shutil.copy(source / name, loop / name)
    calls = pd.read_csv(source / "train_tp.csv", dtype={"recording_id": str})
    labelled = set(labelled_recordings(calls, n_labelled))
    for name in ("train_tp.csv", "train_fp.csv"):
        if (source / name).exists():
            table = pd.read_csv(source / name, dtype={"recording_id": str})
            table[table["recording_id"].isin(labelled)].to_csv(loop / name, index=False)
    return sorted(path.stem for path in (source / "train").iterdir() if path.stem not in labelled)


def make_loop_project(
    path: Path, overrides: dict, dataset: Path | None, n_labelled: int
) -> tuple[Path, Path, list[str]]:
    """A fresh project at ``path`` (:func:`~benchmarks.project.make_project`) whose dataset,
    :data:`LOOP_DATASET`, is ``dataset`` (default: the demo data, made there) with the labels of
    ``n_labelled`` training recordings only (:func:`make_loop_dataset`). Returns the project, the
    source dataset and the pool."""
    project = make_project(path, overrides)
    if dataset is None:
        run(["dvc", "repro", "demo"], project, timeout=3600)
    source = dataset.resolve() if dataset else project / "data/demo"
    return project, source, make_loop_dataset(source, project / LOOP_DATASET, n_labelled)


def test_figures(project: Path) -> dict[str, float]:
    """Test LWLRAP, and precision and recall over test recordings and species at the detector's thresholds."""
    dataset = project / LOOP_DATASET
    species, _ = read_species(dataset / "sample_submission.csv")
    submission = pd.read_csv(project / "data/submission.csv")
    truth = presence_matrix(
        competition.read(dataset / "test_ground_truth.csv", SpeciesNames(tuple(species))),
        submission["recording_id"].astype(str).tolist(),
        len(species),
    ).astype(bool)
    thresholds = load_detector(project / "models/detector.json", species).thresholds
    detected = submission[species].to_numpy() >= np.where(np.isnan(thresholds), np.inf, thresholds)
    hits = int((detected & truth).sum())
    return {
        "lwlrap": json.loads((project / "metrics/test.json").read_text())["lwlrap"],
        "precision": hits / max(1, int(detected.sum())),
        "recall": hits / max(1, int(truth.sum())),
    }


def simulated_verdicts(
    chosen: pd.DataFrame, calls: pd.DataFrame, files: dict[str, Path], n_species: int
) -> pd.DataFrame:
    """The demo's known calls as the reviewer: "yes" where a call of the species labels the window."""
    answers = []
    for row in chosen.itertuples():
        events = calls[calls["recording_id"] == row.recording]
        target, _ = window_labels(events, row.start, row.end, n_species)
        answers.append("yes" if target[int(row.species[1:])] == 1 else "no")
    return chosen.assign(file=[str(files[r]) for r in chosen["recording"]], verdict=answers)


def review_round(
    project: Path, pool: list[str], strategy: str, *, budget: int, round_number: int, calls: pd.DataFrame
) -> pd.DataFrame:
    """One round in ``project``: detect in the pool, choose, answer, import, ``dvc repro``; returns the verdicts."""
    dataset = project / LOOP_DATASET
    species, _ = read_species(dataset / "sample_submission.csv")
    files = {
        recording_id: path for recording_id, path in index_recordings(dataset / "train").items() if recording_id in pool
    }
    out = project / f"review/round{round_number}"
    run(
        [str(BIN / "rainforest-detect"), *map(str, files.values()), "--all", "-o", str(out), "--workers", "1"],
        project,
        timeout=3600,
    )
    detections = pd.read_csv(out / "detections.csv", dtype={"recording": str})
    reviewed = project / "review/verdicts"
    if reviewed.is_dir():  # windows reviewed in earlier rounds are not offered again
        before = pd.concat([pd.read_csv(path, dtype={"recording": str}) for path in sorted(reviewed.glob("*.csv"))])
        seen = set(zip(before["recording"], before["start"], before["species"]))
        detections = detections[
            [key not in seen for key in zip(detections["recording"], detections["start"], detections["species"])]
        ]
    detector = load_detector(project / "models/detector.json", species)
    thresholds = {entry.species: entry.threshold for entry in detector.species}
    counts = {"near": budget, "random": 0} if strategy == "near" else {"near": 0, "random": budget}
    chosen = select_for_review(detections, thresholds, **counts, seed=round_number)
    verdicts = simulated_verdicts(chosen, calls, files, len(species))
    if "label" not in verdicts:
        verdicts["label"] = ""
    # The box is the species' band from the detector, as the review page exports it.
    bands = {entry.species: (entry.low_freq_hz, entry.high_freq_hz) for entry in detector.species}
    verdicts["low_freq"] = [bands[name][0] for name in verdicts["species"]]
    verdicts["high_freq"] = [bands[name][1] for name in verdicts["species"]]
    reviewed.mkdir(parents=True, exist_ok=True)
    path = reviewed / f"round{round_number}.csv"
    verdicts.reindex(columns=VERDICT_COLUMNS).to_csv(path, index=False)
    data = load_settings(project / "params.yaml").data
    import_verdicts(
        [path],
        data=data.model_copy(
            update={"dataset_dir": project / data.dataset_dir, "reviews_dir": project / data.reviews_dir}
        ),
    )
    run(["dvc", "repro", *TARGETS], project, timeout=7200)
    return verdicts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.review_loop", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", type=Path, help="a dataset in the competition's layout to run the loop on (default: the demo data)"
    )
    parser.add_argument(
        "--labelled", type=int, default=60, help="training recordings that keep their labels (default: 60)"
    )
    parser.add_argument("--budget", type=int, default=4, help="verdicts per species per round (default: 4)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of review after round 0 (default: 2)")
    parser.add_argument("--strategies", nargs="+", choices=["near", "random"], default=["near", "random"])
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a params.yaml override for every run, as YAML (train.epochs=5), after the loop's own "
        f"({FEW_LABELS}); repeatable",
    )
    parser.add_argument("--workdir", type=Path, help="where the projects go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    overrides = merge({"data": {"dataset_dir": LOOP_DATASET}, **copy.deepcopy(FEW_LABELS)}, parse_overrides(args.set))
    with tempfile.TemporaryDirectory(prefix="rainforest-review-loop-") as temporary:
        workdir = args.workdir or Path(temporary)
        base, source, pool = make_loop_project(workdir / "round0", overrides, args.dataset, args.labelled)
        calls = pd.read_csv(source / "train_tp.csv", dtype={"recording_id": str}).assign(present=True)
        calls = calls[calls["recording_id"].isin(pool)]
        run(["dvc", "repro", *TARGETS], base, timeout=7200)
        start = test_figures(base)
        rows = [("both", 0, 0, "", start)]
        print(f"round 0: {args.labelled} labelled recordings, pool of {len(pool)}: {start}", flush=True)
        for strategy in args.strategies:
            project = copy_project(base, workdir / strategy)
            verdicts = []
            for round_number in range(1, args.rounds + 1):
                verdicts.append(
                    review_round(project, pool, strategy, budget=args.budget, round_number=round_number, calls=calls)
                )
                given = pd.concat(verdicts)
                figures = test_figures(project)
                rows.append((strategy, round_number, len(given), f"{(given['verdict'] == 'yes').mean():.0%}", figures))
                print(f"{strategy} round {round_number}: {len(given)} verdicts: {figures}", flush=True)
    lines = [
        "| strategy | round | verdicts | yes | test LWLRAP | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for strategy, round_number, given, yes, figures in rows:
        lines.append(
            f"| {strategy} | {round_number} | {given} | {yes} | {figures['lwlrap']:.3f} | "
            f"{figures['precision']:.3f} | {figures['recall']:.3f} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
