"""The tests' tiny pipeline project, and comparing and committing such projects.

:data:`TINY` is the smallest project that runs every stage;
:func:`output_files`, :func:`differing` and :func:`commit` compare and commit
projects made by :func:`benchmarks.project.make_project` (where making one and
running commands there live, shared with the benchmarks);
:func:`with_setting` changes one setting of ``params.yaml``, as
``dvc exp run --set-param`` does.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import yaml

from benchmarks.project import run

#: The smallest project that still exercises every stage. 24 training
#: recordings, because with 16 every species/true-or-false-positive stratum
#: holds fewer events than the 5 folds ``split`` draws, which scikit-learn
#: refuses. Pitch shift and time stretch are slow and tested elsewhere; one
#: etl worker saves starting a process pool in every etl run.
TINY = {
    "demo": {"n_train_recordings": 24, "n_test_recordings": 3, "duration_seconds": 8.0, "sample_rate": 32000},
    "audio": {"sample_rate": 32000},
    "features": {"n_fft": 1024, "hop_length": 512, "n_mels": 16},
    # One window per event: with two or three calls per species, auto would cut eight.
    "etl": {"workers": 1, "windows_per_event": 1},
    # A holdout: with two or three recordings per species, auto would cross-validate 5 folds.
    "split": {"folds": 1},
    "augment": {"copies": 1, "pitch_shift": {"enabled": False}, "time_stretch": {"enabled": False}},
    "model": {"filters": [4, 8], "dense_units": 16},
    "train": {"epochs": 1, "batch_size": 16},
}


def with_setting(params: dict, dotted: str, value, *, existing: bool = False) -> dict:
    """``params`` with the setting at ``dotted`` (``augment.gain.db``) set to
    ``value``, as ``dvc exp run --set-param`` sets it; ``params`` is not changed.

    Raises
    ------
    KeyError
        If a section on the way does not exist, or (``existing``) the setting
        itself does not: a misspelt key would otherwise add a new one.
    """
    changed = copy.deepcopy(params)
    *sections, name = dotted.split(".")
    node = changed
    for section in sections:
        node = node[section]
    if existing and name not in node:
        raise KeyError(f"params.yaml has no {dotted}")
    node[name] = copy.deepcopy(value)
    return changed


def output_files(path: Path) -> dict[str, str | None]:
    """SHA-256 of every file of every output recorded in ``dvc.lock`` (data,
    model, metrics and plots alike), by path; ``None`` for a missing output."""
    lock = yaml.safe_load((path / "dvc.lock").read_text())
    digests: dict[str, str | None] = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            target = path / out["path"]
            if not target.exists():
                digests[out["path"]] = None
                continue
            files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
            for file in files:
                digests[file.relative_to(path).as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
    return digests


def differing(a: dict[str, str | None], b: dict[str, str | None]) -> list[str]:
    """The paths whose contents differ between two :func:`output_files`."""
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


def commit(path: Path, message: str) -> None:
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", message], path)
