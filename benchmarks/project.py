"""A copy of the pipeline in a fresh git + DVC repository, and running commands there.

:func:`make_project` copies the pipeline (``dvc.yaml``, ``stages/``,
``rainforest/``) and ``params.yaml`` with overrides into a fresh git + DVC
repository; :func:`run` runs a command there with this interpreter's ``dvc``
and ``python`` first on ``PATH`` and the project on ``PYTHONPATH``;
:func:`stage_commands` reads each stage's command from its ``dvc.yaml``;
:func:`copy_project` copies such a repository with its DVC cache.

The pipeline, kernels and review-loop benchmarks measure such projects, and the
tests that run the real ``dvc`` run them (their tiny project and output
comparisons are :mod:`tests.support.project`). It lives here, not in
``tests/``, so that the benchmarks do not depend on the test suite; the tests
import it from here.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

#: The repository root, the pipeline the projects copy.
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ["check", "demo", "etl", "split", "augment", "pool", "embed", "train", "evaluate", "submit"]


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


def parse_overrides(items: list[str]) -> dict:
    """``SECTION.KEY=VALUE`` items (a benchmark's ``--set``), values read as
    YAML, as nested overrides for :func:`make_project`.

    Examples
    --------
    >>> parse_overrides(["train.epochs=5", "augment.gain.db=[-3, 3]"])
    {'train': {'epochs': 5}, 'augment': {'gain': {'db': [-3, 3]}}}
    """
    overrides: dict = {}
    for item in items:
        dotted, _, value = item.partition("=")
        *sections, key = dotted.split(".")
        node = overrides
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = yaml.safe_load(value)
    return overrides


def make_project(path: Path, overrides: dict, source: Path = ROOT) -> Path:
    """A fresh git + DVC repository holding the pipeline of ``source`` (the
    project itself, or another such repository), with nothing run yet.

    ``overrides`` maps sections of ``params.yaml`` to the values to change;
    nested sections (``augment.noise``) are merged key by key.
    """
    path.mkdir(parents=True, exist_ok=True)
    for name in ["dvc.yaml", "stages", "rainforest", "reviews", "embedding_models", "pool"]:
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


def stage_commands(project: Path) -> dict[str, str]:
    """The command of each of :data:`STAGES`, as the project's ``dvc.yaml`` gives it."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return {name: stages[name]["cmd"] for name in STAGES}


def copy_project(source: Path, target: Path) -> Path:
    """A copy of a repository: workspace, .git and the DVC cache with its run
    cache (not .dvc/tmp, which holds locks and state of running commands)."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        return ["tmp"] if Path(folder) == source / ".dvc" else []

    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    return target
