"""Train named model configurations side by side on one or more datasets and print one table.

Usage (from the project root, with the pipeline already reproduced once)::

    python -m rainforest.experiments                                   # every model, demo data
    python -m rainforest.experiments cnn embedding --datasets demo=data/demo xc_birds=../shared/real/xc_birds
    python -m rainforest.experiments cnn embedding-linear --datasets xc_birds=../shared/real/xc_birds --seeds 3 4 5
    python -m rainforest.experiments --help

Each configuration is a set of ``params.yaml`` overrides, run on each dataset
and each training seed (``--seeds``) as ``dvc exp run --force --downstream
etl`` (named ``DATASET-MODEL-sSEED``), so every run is cut, trained and scored
from scratch and its training time is measured. With several seeds a row
gives each figure's mean and standard deviation over them: one run on a few
dozen test recordings moves by 0.02 to 0.05. The validation LWLRAP is
evaluate's: out of fold, over every labelled recording, where the split
cross-validates. Its inference speed is measured afterwards in this process: the
test recordings scored as ``submit`` scores them, in audio seconds per wall
second; for the embedding heads also at a 1.5 s hop, with the test LWLRAP
there. For the embedding head, the bare BirdNET model's own speed on the
same recordings (3 s windows, no overlap) is measured beside it. The
committed configuration (``cnn``) on the committed dataset and seed runs last
and sets every overridden key back to its committed value, so the workspace
ends where it started, with the default model's outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

#: The approach this project grew from: a resized, min-max scaled window, two
#: convolutions, a softmax over species trained on true positives only, no
#: augmentation, Adam, 25 epochs, batch 16.
BASELINE = {
    "model.architecture": "baseline",
    "model.frequency_channel": False,
    "model.filters": [16, 32],
    "model.dense_units": 128,
    "model.dropout": 0.5,
    "train.loss": "softmax_crossentropy",
    "train.use_false_positives": False,
    "train.use_augmented": False,
    "train.optimizer": "adam",
    "train.schedule": "constant",
    "train.learning_rate": 0.001,
    "train.epochs": 25,
    "train.batch_size": 16,
    "train.early_stopping_patience": 0,
    "train.select_best_epoch": False,
    "train.spec_augment.time_masks": 0,
    "train.spec_augment.frequency_masks": 0,
    "train.mixup_alpha": 0.0,
}

#: A head on BirdNET v2.4 embeddings (the optional birdnet extra): BirdNET's
#: own 3 s windows, scored without overlap.
EMBEDDING_HEAD = {
    "model.architecture": "embedding_head",
    "embedding.model": "birdnet-v2.4",
    "features.window_seconds": 3.0,
    "submit.hop_seconds": 3.0,
}

#: The head without a hidden layer: one logistic regression per species on
#: the standardised embedding; and the head with one. ``embedding`` (model.head:
#: auto, as committed) fits both and keeps the better out of fold.
EMBEDDING_LINEAR = {**EMBEDDING_HEAD, "model.head": "linear"}
EMBEDDING_DENSE = {**EMBEDDING_HEAD, "model.head": "dense"}

#: The CNN validated on a 1-in-5 holdout and trained on the other four fifths
#: only, whatever the number of labelled recordings (split.folds: 1).
CNN_HOLDOUT = {"split.folds": 1}

#: The CNN trained for all its epochs, the last one kept: no early stopping or
#: epoch selection on a fold of a dozen recordings.
CNN_LAST_EPOCH = {"train.early_stopping_patience": 0, "train.select_best_epoch": False}

#: Ship the folds' ensemble where ``final_model: auto`` would refit one model
#: on every labelled recording (when cross-validating), or a refit even where
#: ``auto`` would ship the holdout's model.
ENSEMBLE = {"train.final_model": "ensemble"}
REFIT = {"train.final_model": "refit"}

#: Name -> overrides of params.yaml; ``cnn`` is params.yaml as committed.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "baseline": BASELINE,
    "cnn": {},
    "cnn-holdout": CNN_HOLDOUT,
    "cnn-last-epoch": CNN_LAST_EPOCH,
    "cnn-ensemble": ENSEMBLE,
    "cnn-refit": REFIT,
    "embedding": EMBEDDING_HEAD,
    "embedding-linear": EMBEDDING_LINEAR,
    "embedding-dense": EMBEDDING_DENSE,
    "embedding-ensemble": {**EMBEDDING_HEAD, **ENSEMBLE},
}
COMMITTED = "cnn"

#: Extra inference hops measured for the embedding heads (seconds).
EXTRA_HOPS = (1.5,)

_TRAIN_TIME = re.compile(r"train: [^\n]*done in ([0-9.]+) s")


def _lookup(params: dict, dotted: str):
    for part in dotted.split("."):
        params = params[part]
    return params


def overrides_for(name: str, committed: dict, dataset_dir: str | None = None, seed: int | None = None) -> dict:
    """Every key any configuration overrides, set to ``name``'s value or the
    committed one, the dataset and the training seed (the committed ones by default)."""
    keys = sorted({key for overrides in CONFIGURATIONS.values() for key in overrides})
    values = {key: CONFIGURATIONS[name].get(key, _lookup(committed, key)) for key in keys}
    return {
        **values,
        "data.dataset_dir": dataset_dir or _lookup(committed, "data.dataset_dir"),
        "train.seed": _lookup(committed, "train.seed") if seed is None else seed,
    }


def _set_param(key: str, value) -> str:
    return f"{key}={json.dumps(value)}"


def _environment() -> dict[str, str]:
    # This interpreter's dvc, and its python for the stages, even if nothing is activated.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def score_test(root: Path, dataset_dir: Path, hop_seconds: float) -> tuple[float, float]:
    """Audio seconds per wall second of scoring the test recordings with the
    workspace's model, as ``submit`` does (one worker thread per core), and
    the test LWLRAP of those scores (the maximum over windows)."""
    from rainforest.card import load_card
    from rainforest.config import SubmitSettings
    from rainforest.events import SpeciesNames, competition, presence_matrix, read_species
    from rainforest.metrics import lwlrap
    from rainforest.model import load_model
    from rainforest.submit import GROUND_TRUTH, score_recordings

    model, card = load_model(root / "models/model.keras"), load_card(root / "models/model.keras")
    species, recording_ids = read_species(dataset_dir / "sample_submission.csv")
    started = time.perf_counter()
    settings = SubmitSettings(
        workers=os.cpu_count() or 1, hop_seconds=hop_seconds, batch_size=64, aggregation="max", top_k=1
    )
    scores = score_recordings(model, card, dataset_dir / "test", recording_ids, settings)
    speed = _audio_seconds(dataset_dir, recording_ids) / (time.perf_counter() - started)
    truth_events = competition.read(dataset_dir / GROUND_TRUTH, SpeciesNames(tuple(species)))
    truth = presence_matrix(truth_events, recording_ids, len(species))
    return speed, lwlrap(truth, scores)


def _audio_seconds(dataset_dir: Path, recording_ids: list[str]) -> float:
    import soundfile

    from rainforest.audio import index_recordings

    audio = index_recordings(dataset_dir / "test")
    return sum(soundfile.info(audio[recording_id]).duration for recording_id in recording_ids)


def bare_birdnet_speed(dataset_dir: Path) -> float:
    """Audio seconds per wall second of BirdNET's own, unmodified classifier
    on the test recordings cut into 3 s windows without overlap (the model
    alone: decoding is not timed)."""
    import numpy as np

    from rainforest.audio import index_recordings, load_recording
    from rainforest.embedding import BirdNetEmbedder

    info = BirdNetEmbedder.info
    interpreter = BirdNetEmbedder.interpreter(BirdNetEmbedder.model_bytes(), threads=os.cpu_count() or 1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    windows: list[np.ndarray] = []
    for path in index_recordings(dataset_dir / "test").values():
        waveform = load_recording(path, info.sample_rate)
        count = len(waveform) // info.window_samples
        windows.extend(waveform[: count * info.window_samples].reshape(count, 1, info.window_samples))
    started = time.perf_counter()
    for window in windows:
        interpreter.set_tensor(index, window.astype(np.float32))
        interpreter.invoke()
    return len(windows) * info.window_seconds / (time.perf_counter() - started)


def run_configuration(name: str, dataset: str, dataset_dir: str, committed: dict, root: Path, *, seed: int) -> dict:
    """Run one configuration on one dataset with one training seed as a DVC experiment and collect its figures."""
    experiment = f"{dataset}-{name}-s{seed}"
    command = ["dvc", "exp", "run", "--name", experiment, "--force", "--downstream", "etl"]
    for key, value in overrides_for(name, committed, dataset_dir, seed).items():
        command += ["--set-param", _set_param(key, value)]
    print(f"== {dataset} {name} seed {seed}: {' '.join(command)}", file=sys.stderr, flush=True)
    result = subprocess.run(command, cwd=root, env=_environment(), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"experiment {experiment} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    train_time = _TRAIN_TIME.search(result.stdout + result.stderr)
    validation = json.loads((root / "metrics/validation.json").read_text())
    test = json.loads((root / "metrics/test.json").read_text())
    from rainforest.model import load_model  # TensorFlow: only once the experiment has run
    from rainforest.split import read_split, validation_folds

    hop = CONFIGURATIONS[name].get("submit.hop_seconds", _lookup(committed, "submit.hop_seconds"))
    hops = [hop, *EXTRA_HOPS] if name.startswith("embedding") else [hop]
    scored = {each: score_test(root, root / dataset_dir, each) for each in hops}
    return {
        "dataset": dataset,
        "name": name,
        "seed": seed,
        "validation_lwlrap": validation["lwlrap"],
        "test_lwlrap": test["lwlrap"],
        "test_macro_ap": test["macro_ap"],
        "train_seconds": float(train_time.group(1)) if train_time else float("nan"),
        "folds": len(validation_folds(read_split(root / "data/split.csv"))),
        "speeds": {each: speed for each, (speed, _) in scored.items()},
        "hop_lwlrap": {each: score for each, (_, score) in scored.items()},
        "parameters": load_model(root / "models/model.keras").count_params(),
        # Its test scores, for the mean of two models (mean_of_models).
        "submission": (root / "data/submission.csv").read_text(),
    }


def mean_of_models(rows: list[dict], datasets: dict[str, str], root: Path) -> list[dict]:
    """Rows for the mean of a CNN's and an embedding head's test scores (each
    ``cnn*`` and ``embedding*`` configuration run on the same dataset with the
    same seed): a candidate best model where the BirdNET extra is installed.
    Training time is both models', and the speed that of running both at
    their own hops."""
    import io

    import pandas as pd

    from rainforest.events import SpeciesNames, competition, presence_matrix, read_species
    from rainforest.metrics import score_summary
    from rainforest.submit import GROUND_TRUTH

    runs = {(row["dataset"], row["name"], row["seed"]): row for row in rows if "submission" in row}
    pairs = [
        (cnn, head)
        for (dataset, name, seed), cnn in runs.items()
        if name.startswith("cnn")
        for (head_dataset, head_name, head_seed), head in runs.items()
        if head_name.startswith("embedding") and (head_dataset, head_seed) == (dataset, seed)
    ]
    means = []
    for cnn, head in pairs:
        dataset, seed = cnn["dataset"], cnn["seed"]
        dataset_dir = root / datasets[dataset]
        species, recording_ids = read_species(dataset_dir / "sample_submission.csv")
        tables = [pd.read_csv(io.StringIO(run["submission"]), dtype={"recording_id": str}) for run in (cnn, head)]
        scores = sum(table.set_index("recording_id").loc[recording_ids, species].to_numpy() for table in tables) / 2
        truth_events = competition.read(dataset_dir / GROUND_TRUTH, SpeciesNames(tuple(species)))
        truth = presence_matrix(truth_events, recording_ids, len(species))
        summary = score_summary(truth, scores)
        # Each at the hop its submission was scored at, its configuration's own (the first measured).
        speed = 1 / sum(1 / next(iter(run["speeds"].values())) for run in (cnn, head))
        means.append(
            {
                "dataset": dataset,
                "name": f"mean of {cnn['name']} and {head['name']}",
                "seed": seed,
                "folds": cnn["folds"],
                "test_lwlrap": summary["lwlrap"],
                "test_macro_ap": summary["macro_ap"],
                "train_seconds": cnn["train_seconds"] + head["train_seconds"],
                "speeds": {"both": speed},
                "hop_lwlrap": {"both": summary["lwlrap"]},
                "parameters": cnn["parameters"] + head["parameters"],
            }
        )
    return means


#: The figures a row averages over seeds.
FIGURES = ("validation_lwlrap", "test_lwlrap", "test_macro_ap")


def _spread(values: list[float]) -> str:
    """``0.875`` for one value, ``0.875 ± 0.033`` (mean ± sample standard deviation) for several."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _hop(hop: float | str) -> str:
    return f"{hop:g} s" if isinstance(hop, float) else hop


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the figures of each configuration on each dataset.

    The runs of one configuration on one dataset (its seeds) make one row:
    each score as its mean ± standard deviation, the mean training time,
    and by inference hop the test LWLRAP and the speed. A row without scores
    (the bare BirdNET model) shows only its speed; the mean of two models
    (:func:`mean_of_models`) has no validation score, and its speed is that
    of running both.
    """
    lines = [
        "| dataset | model | folds | seeds | validation LWLRAP (out of fold) | test LWLRAP | test macro AP | "
        "training time | by hop: test LWLRAP, inference audio s per s | parameters |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["name"]), []).append(row)
    for (dataset, name), runs in groups.items():
        hops = runs[0]["speeds"]
        speeds = {hop: f"{statistics.mean(run['speeds'][hop] for run in runs):.0f}" for hop in hops}
        if "test_lwlrap" not in runs[0]:
            by_hop = "; ".join(f"{_hop(hop)}: {speed} /s" for hop, speed in speeds.items())
            lines.append(f"| {dataset} | {name} | | | | | | | {by_hop} | |")
            continue
        by_hop = "; ".join(
            f"{_hop(hop)}: {_spread([run['hop_lwlrap'][hop] for run in runs])}, {speeds[hop]} /s" for hop in hops
        )
        seeds = ", ".join(str(run["seed"]) for run in runs)
        scores = " | ".join(_spread([run[figure] for run in runs]) if figure in runs[0] else "" for figure in FIGURES)
        train = statistics.mean(run["train_seconds"] for run in runs)
        lines.append(
            f"| {dataset} | {name} | {runs[0]['folds']} | {seeds} | {scores} | {train:.0f} s | {by_hop} | "
            f"{runs[0]['parameters']:,} |"
        )
    return "\n".join(lines)


def _dataset(text: str) -> tuple[str, str]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def parse_arguments(argv: list[str] | None = None) -> tuple[list[str], dict[str, str], list[int] | None]:
    """The configurations (all by default, the committed one last), datasets and training seeds
    (``None``: the committed one) the command line asks for."""
    parser = argparse.ArgumentParser(prog="python -m rainforest.experiments", description=__doc__.splitlines()[0])
    # Checked here, not with choices=: Python 3.11's argparse checks an empty
    # nargs="*" list against the choices and refuses it.
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"{', '.join(CONFIGURATIONS)} (default: all)")
    parser.add_argument(
        "--datasets",
        nargs="+",
        type=_dataset,
        metavar="NAME=PATH",
        help="datasets in the competition layout, by name (default: demo=data/demo)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        metavar="SEED",
        help="train.seed values; each row gives the mean and spread over them (default: params.yaml's)",
    )
    arguments = parser.parse_args(argv)
    names = arguments.names or list(CONFIGURATIONS)
    unknown = [name for name in names if name not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGURATIONS)}")
    datasets = dict(arguments.datasets or [("demo", "data/demo")])
    for name, path in datasets.items():
        if not (Path(path) / "sample_submission.csv").is_file():
            parser.error(
                f"dataset {name}: {path} is not a dataset in the competition layout (no sample_submission.csv)"
            )
    seeds = list(dict.fromkeys(arguments.seeds)) if arguments.seeds else None
    # The committed model runs last, so the workspace ends on the committed params.
    return sorted(dict.fromkeys(names), key=lambda name: name == COMMITTED), datasets, seeds


def plan(
    names: list[str], datasets: dict[str, str], committed_dataset: str, seeds: list[int], committed_seed: int
) -> list[tuple[str, str, int]]:
    """``(dataset, configuration, seed)`` runs in order: the committed
    configuration on the committed dataset with the committed seed last."""
    runs = [(dataset, name, seed) for dataset in datasets for name in names for seed in seeds]
    last = (_name_of(datasets, committed_dataset), COMMITTED, committed_seed)
    return sorted(runs, key=lambda run: run == last)


def _name_of(datasets: dict[str, str], path: str) -> str | None:
    return next((name for name, dataset_dir in datasets.items() if Path(dataset_dir) == Path(path)), None)


def main(argv: list[str] | None = None) -> None:
    names, datasets, seeds = parse_arguments(argv)
    root = Path.cwd()
    committed = yaml.safe_load((root / "params.yaml").read_text())
    committed_seed = _lookup(committed, "train.seed")
    seeds = seeds or [committed_seed]
    rows = []
    for dataset, name, seed in plan(names, datasets, _lookup(committed, "data.dataset_dir"), seeds, committed_seed):
        rows.append(run_configuration(name, dataset, datasets[dataset], committed, root, seed=seed))
        if name == "embedding" and seed == seeds[0]:  # the bare model's speed does not depend on the seed
            bare = bare_birdnet_speed(root / datasets[dataset])
            rows.append({"dataset": dataset, "name": "bare BirdNET v2.4", "speeds": {3.0: bare}})
    print(format_table(rows + mean_of_models(rows, datasets, root)))


if __name__ == "__main__":
    main()
