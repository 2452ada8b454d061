"""Train named model configurations side by side on one or more datasets and print one table.

Usage (from the project root, with the pipeline already reproduced once)::

    python -m rainforest.experiments                                   # every model, demo data
    python -m rainforest.experiments cnn embedding --datasets demo=data/demo xc_birds=../shared/real/xc_birds
    python -m rainforest.experiments --help

Each configuration is a set of ``params.yaml`` overrides, run on each dataset
as ``dvc exp run --force --downstream etl`` (named ``DATASET-MODEL``), so
every row is cut, trained and scored from scratch and its training time is
measured. Its inference speed is measured afterwards in this process: the
test recordings scored as ``submit`` scores them, in audio seconds per wall
second. For the embedding head, the bare BirdNET model's own speed on the
same recordings (3 s windows, no overlap) is measured beside it. The
committed configuration (``cnn``) on the committed dataset runs last and sets
every overridden key back to its committed value, so the workspace ends where
it started, with the default model's outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

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

#: The CNN with five windows cut along each labelled call: what it needs to
#: learn from a few dozen calls per species (five times the training time).
CNN_WINDOWS5 = {"etl.windows_per_event": 5}

#: Name -> overrides of params.yaml; ``cnn`` is params.yaml as committed.
CONFIGURATIONS = {"baseline": BASELINE, "cnn": {}, "cnn-windows5": CNN_WINDOWS5, "embedding": EMBEDDING_HEAD}
COMMITTED = "cnn"

#: Extra inference hops measured for the embedding head (seconds).
EXTRA_HOPS = (1.5,)

_TRAIN_TIME = re.compile(r"train: [^\n]*done in ([0-9.]+) s")


def _lookup(params: dict, dotted: str):
    for part in dotted.split("."):
        params = params[part]
    return params


def overrides_for(name: str, committed: dict, dataset_dir: str | None = None) -> dict:
    """Every key any configuration overrides, set to ``name``'s value or the
    committed one, and the dataset (the committed one by default)."""
    keys = sorted({key for overrides in CONFIGURATIONS.values() for key in overrides})
    values = {key: CONFIGURATIONS[name].get(key, _lookup(committed, key)) for key in keys}
    return {**values, "data.dataset_dir": dataset_dir or _lookup(committed, "data.dataset_dir")}


def _set_param(key: str, value) -> str:
    return f"{key}={json.dumps(value)}"


def _environment() -> dict[str, str]:
    # This interpreter's dvc, and its python for the stages, even if nothing is activated.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def scoring_speed(root: Path, dataset_dir: Path, hop_seconds: float) -> float:
    """Audio seconds per wall second of scoring the test recordings with the
    workspace's model, as ``submit`` does (one worker thread per core)."""
    from rainforest.config import SubmitSettings
    from rainforest.labels import read_species
    from rainforest.card import load_card
    from rainforest.model import load_model
    from rainforest.submit import score_recordings

    model, card = load_model(root / "models/model.keras"), load_card(root / "models/model.keras")
    _, recording_ids = read_species(dataset_dir / "sample_submission.csv")
    started = time.perf_counter()
    settings = SubmitSettings(
        workers=os.cpu_count() or 1, hop_seconds=hop_seconds, batch_size=64, aggregation="max", top_k=1
    )
    score_recordings(model, card, dataset_dir / "test", recording_ids, settings)
    return _audio_seconds(dataset_dir, recording_ids) / (time.perf_counter() - started)


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
    import tensorflow as tf

    from rainforest.audio import index_recordings, load_recording
    from rainforest.embedding import BirdNetEmbedder

    info = BirdNetEmbedder.info
    interpreter = tf.lite.Interpreter(model_content=BirdNetEmbedder.model_bytes(), num_threads=os.cpu_count() or 1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    windows = []
    for path in index_recordings(dataset_dir / "test").values():
        waveform = load_recording(path, info.sample_rate)
        count = len(waveform) // info.window_samples
        windows.extend(waveform[: count * info.window_samples].reshape(count, 1, info.window_samples))
    started = time.perf_counter()
    for window in windows:
        interpreter.set_tensor(index, window.astype(np.float32))
        interpreter.invoke()
    return len(windows) * info.window_seconds / (time.perf_counter() - started)


def run_configuration(name: str, dataset: str, dataset_dir: str, committed: dict, root: Path) -> dict:
    """Run one configuration on one dataset as a DVC experiment and collect its figures."""
    command = ["dvc", "exp", "run", "--name", f"{dataset}-{name}", "--force", "--downstream", "etl"]
    for key, value in overrides_for(name, committed, dataset_dir).items():
        command += ["--set-param", _set_param(key, value)]
    print(f"== {dataset} {name}: {' '.join(command)}", file=sys.stderr, flush=True)
    result = subprocess.run(command, cwd=root, env=_environment(), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"experiment {dataset}-{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    train_time = _TRAIN_TIME.search(result.stdout + result.stderr)
    validation = json.loads((root / "metrics/validation.json").read_text())
    test = json.loads((root / "metrics/test.json").read_text())
    from rainforest.model import load_model  # TensorFlow: only once the experiment has run

    hop = CONFIGURATIONS[name].get("submit.hop_seconds", _lookup(committed, "submit.hop_seconds"))
    speeds = {hop: scoring_speed(root, root / dataset_dir, hop)}
    if name == "embedding":
        speeds |= {extra: scoring_speed(root, root / dataset_dir, extra) for extra in EXTRA_HOPS}
    return {
        "dataset": dataset,
        "name": name,
        "validation_lwlrap": validation["lwlrap"],
        "test_lwlrap": test["lwlrap"],
        "test_macro_ap": test["macro_ap"],
        "train_seconds": float(train_time.group(1)) if train_time else float("nan"),
        "speeds": speeds,
        "parameters": load_model(root / "models/model.keras").count_params(),
    }


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the figures of each configuration on each dataset.

    A row without scores (the bare BirdNET model) shows only its speed.
    """
    lines = [
        "| dataset | model | validation LWLRAP | test LWLRAP | test macro AP | training time | "
        "inference (audio s per s, by hop) | parameters |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        speeds = ", ".join(f"{speed:.0f} (hop {hop:g} s)" for hop, speed in row["speeds"].items())
        if "test_lwlrap" not in row:
            lines.append(f"| {row['dataset']} | {row['name']} | | | | | {speeds} | |")
            continue
        lines.append(
            f"| {row['dataset']} | {row['name']} | {row['validation_lwlrap']:.3f} | {row['test_lwlrap']:.3f} | "
            f"{row['test_macro_ap']:.3f} | {row['train_seconds']:.0f} s | {speeds} | {row['parameters']:,} |"
        )
    return "\n".join(lines)


def _dataset(text: str) -> tuple[str, str]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def parse_arguments(argv: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The configurations (all by default, the committed one last) and datasets the command line asks for."""
    parser = argparse.ArgumentParser(prog="python -m rainforest.experiments", description=__doc__.splitlines()[0])
    # Checked here, not with choices=: Python 3.11's argparse checks an empty
    # nargs="*" list against the choices and refuses it.
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"{', '.join(CONFIGURATIONS)} (default: all)")
    parser.add_argument(
        "--datasets", nargs="+", type=_dataset, metavar="NAME=PATH",
        help="datasets in the competition layout, by name (default: demo=data/demo)",
    )
    arguments = parser.parse_args(argv)
    names = arguments.names or list(CONFIGURATIONS)
    unknown = [name for name in names if name not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGURATIONS)}")
    datasets = dict(arguments.datasets or [("demo", "data/demo")])
    for name, path in datasets.items():
        if not (Path(path) / "sample_submission.csv").is_file():
            parser.error(f"dataset {name}: {path} is not a dataset in the competition layout (no sample_submission.csv)")
    # The committed model runs last, so the workspace ends on the committed params.
    return sorted(dict.fromkeys(names), key=lambda name: name == COMMITTED), datasets


def plan(names: list[str], datasets: dict[str, str], committed_dataset: str) -> list[tuple[str, str]]:
    """``(dataset, configuration)`` pairs in run order: the committed
    configuration on the committed dataset last."""
    pairs = [(dataset, name) for dataset in datasets for name in names]
    return sorted(pairs, key=lambda pair: pair == (_name_of(datasets, committed_dataset), COMMITTED))


def _name_of(datasets: dict[str, str], path: str) -> str | None:
    return next((name for name, dataset_dir in datasets.items() if Path(dataset_dir) == Path(path)), None)


def main(argv: list[str] | None = None) -> None:
    names, datasets = parse_arguments(argv)
    root = Path.cwd()
    committed = yaml.safe_load((root / "params.yaml").read_text())
    rows = []
    for dataset, name in plan(names, datasets, _lookup(committed, "data.dataset_dir")):
        rows.append(run_configuration(name, dataset, datasets[dataset], committed, root))
        if name == "embedding":
            bare = bare_birdnet_speed(root / datasets[dataset])
            rows.append({"dataset": dataset, "name": "bare BirdNET v2.4", "speeds": {3.0: bare}})
    print(format_table(rows))


if __name__ == "__main__":
    main()
