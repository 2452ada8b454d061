"""Train named model configurations side by side as DVC experiments and print one table.

Usage (from the project root, with the pipeline already reproduced once)::

    python -m rainforest.experiments                 # baseline and main
    python -m rainforest.experiments main            # only the main model

Each configuration is a set of ``params.yaml`` overrides. It runs as
``dvc exp run --force --downstream train`` (train, evaluate and submit, on the
same windows), so every row is trained from scratch on the same data and its
training time is measured. The main configuration runs last and sets every
overridden key back to its committed value, so the workspace ends where it
started, with the main model's outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
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

#: Name -> overrides of params.yaml; the main model is params.yaml as committed.
CONFIGURATIONS = {"baseline": BASELINE, "main": {}}

_TRAIN_TIME = re.compile(r"train: [^\n]*done in ([0-9.]+) s")


def _lookup(params: dict, dotted: str):
    for part in dotted.split("."):
        params = params[part]
    return params


def overrides_for(name: str, committed: dict) -> dict:
    """Every key any configuration overrides, set to ``name``'s value or the committed one."""
    keys = sorted({key for overrides in CONFIGURATIONS.values() for key in overrides})
    return {key: CONFIGURATIONS[name].get(key, _lookup(committed, key)) for key in keys}


def _set_param(key: str, value) -> str:
    return f"{key}={json.dumps(value)}"


def run_configuration(name: str, committed: dict, root: Path) -> dict:
    """Run one configuration as a DVC experiment and collect its figures."""
    command = ["dvc", "exp", "run", "--name", name, "--force", "--downstream", "train"]
    for key, value in overrides_for(name, committed).items():
        command += ["--set-param", _set_param(key, value)]
    print(f"== {name}: {' '.join(command)}", file=sys.stderr, flush=True)
    # This interpreter's dvc, and its python for the stages, even if nothing is activated.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"experiment {name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    train_time = _TRAIN_TIME.search(result.stdout + result.stderr)
    validation = json.loads((root / "metrics/validation.json").read_text())
    test = json.loads((root / "metrics/test.json").read_text())
    from rainforest.model import load_model  # TensorFlow: only once the experiment has run
    return {
        "name": name,
        "validation_lwlrap": validation["lwlrap"],
        "test_lwlrap": test["lwlrap"],
        "test_macro_ap": test["macro_ap"],
        "test_top1": test["top1"],
        "train_seconds": float(train_time.group(1)) if train_time else float("nan"),
        "parameters": load_model(root / "models/model.keras").count_params(),
        "model_mb": (root / "models/model.keras").stat().st_size / 1e6,
    }


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the figures of each configuration."""
    lines = [
        "| model | validation LWLRAP | test LWLRAP | test macro AP | test top-1 | training time | parameters | model file |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['validation_lwlrap']:.3f} | {row['test_lwlrap']:.3f} | "
            f"{row['test_macro_ap']:.3f} | {row['test_top1']:.3f} | {row['train_seconds']:.0f} s | "
            f"{row['parameters']:,} | {row['model_mb']:.1f} MB |"
        )
    return "\n".join(lines)


def configuration_names(argv: list[str] | None = None) -> list[str]:
    """The configurations the command line asks for (all by default), main last."""
    parser = argparse.ArgumentParser(prog="python -m rainforest.experiments", description=__doc__.splitlines()[0])
    # Checked here, not with choices=: Python 3.11's argparse checks an empty
    # nargs="*" list against the choices and refuses it.
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"{', '.join(CONFIGURATIONS)} (default: all)")
    names = parser.parse_args(argv).names or list(CONFIGURATIONS)
    unknown = [name for name in names if name not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGURATIONS)}")
    # The main model runs last, so the workspace ends on the committed params.
    return sorted(dict.fromkeys(names), key=lambda name: name == "main")


def main(argv: list[str] | None = None) -> None:
    names = configuration_names(argv)
    root = Path.cwd()
    committed = yaml.safe_load((root / "params.yaml").read_text())
    rows = [run_configuration(name, committed, root) for name in names]
    print(format_table(rows))

if __name__ == "__main__":
    main()
