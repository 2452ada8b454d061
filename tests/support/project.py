"""Running the real ``dvc`` on a copy of the pipeline, for the tests and the benchmark.

:func:`make_project` copies the pipeline (``dvc.yaml``, ``stages/``,
``rainforest/``) and ``params.yaml`` with overrides into a fresh git + DVC
repository; :func:`run` runs a command there with this interpreter's ``dvc``
and ``python`` first on ``PATH`` and the project on ``PYTHONPATH``.
:data:`TINY` is the smallest project that runs every stage;
:func:`output_files`, :func:`differing`, :func:`copy_project` and
:func:`commit` compare, copy and commit such projects.

The tests that use it carry the ``dvc`` marker; ``python -m benchmarks``
imports it from here too.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.paths import ROOT

BIN = Path(sys.executable).parent
STAGES = ["demo", "etl", "split", "augment", "embed", "train", "evaluate", "submit"]

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


def project_env(cwd, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment commands run in: this interpreter's ``dvc`` and
    ``python`` first on ``PATH``, the project in ``cwd`` on ``PYTHONPATH``,
    and the ``extra`` variables."""
    return {**os.environ, "PYTHONPATH": str(cwd), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(extra or {})}


def run(args, cwd, check=True, env: dict[str, str] | None = None, **kwargs):
    """Run ``args`` in ``cwd`` with the ``env`` variables added to
    :func:`project_env`; with ``check``, raise AssertionError (showing the
    command's output) if it exits non-zero, so a test fails with it.
    ``kwargs`` go to ``subprocess.run`` (e.g. ``timeout``)."""
    result = subprocess.run(args, cwd=cwd, env=project_env(cwd, env), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        command = " ".join(map(str, args))
        raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def merge(params: dict, overrides: dict) -> dict:
    """``params`` with ``overrides`` merged in, nested sections key by key."""
    merged = copy.deepcopy(params)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


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


def make_project(path: Path, overrides: dict, source: Path = ROOT) -> Path:
    """A fresh git + DVC repository holding the pipeline of ``source`` (the
    project itself, or another such repository), with nothing run yet.

    ``overrides`` maps sections of ``params.yaml`` to the values to change;
    nested sections (``augment.noise``) are merged key by key.
    """
    path.mkdir(parents=True, exist_ok=True)
    for name in ["dvc.yaml", "stages", "rainforest", "reviews"]:
        if (source / name).is_dir():
            shutil.copytree(source / name, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source / name, path / name)
    params = merge(yaml.safe_load((source / "params.yaml").read_text()), overrides)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (path / ".gitignore").write_text("__pycache__/\n")
    run(["git", "init", "-q"], path)
    run(["git", "config", "user.email", "test@example.com"], path)
    run(["git", "config", "user.name", "test"], path)
    run(["dvc", "init", "-q"], path)
    run(["dvc", "config", "core.analytics", "false"], path)
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", "pipeline"], path)
    return path


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


def copy_project(source: Path, target: Path) -> Path:
    """A copy of a repository: workspace, .git and the DVC cache with its run
    cache (not .dvc/tmp, which holds locks and state of running commands)."""
    def ignore(folder: str, names: list[str]) -> list[str]:
        return ["tmp"] if Path(folder) == source / ".dvc" else []

    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    return target


def commit(path: Path, message: str) -> None:
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", message], path)
