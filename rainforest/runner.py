"""What every stage script shares: its settings, usage, logging, timing and clean errors."""

from __future__ import annotations

import inspect
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from rainforest.cli import run_program
from rainforest.config import Settings, load_settings
from rainforest.errors import ConfigError

log = logging.getLogger("rainforest")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(file for file in path.rglob("*") if file.is_file())
    return [path] if path.is_file() else []


def _fingerprint(path: Path) -> tuple | None:
    # Every write is a rename of a new file into place (see atomic_writes.atomic_path):
    # a written file has a new inode, whatever the clock's resolution.
    if not path.exists():
        return None
    stats = [(str(file), file.stat()) for file in _files(path)]
    return tuple((name, stat.st_ino, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


def _describe(path: Path) -> str:
    files = _files(path)
    size: float = sum(file.stat().st_size for file in files)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            break
        size /= 1000
    amount = f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
    return f"{path} ({len(files)} file{'s' * (len(files) != 1)}, {amount})" if path.is_dir() else f"{path} ({amount})"


def _read_and_written(paths: list[Path], before: dict[Path, tuple | None]) -> list[str]:
    """Which of the stage's path arguments it wrote (changed) and which it only read."""
    after = {path: _fingerprint(path) for path in paths}
    written = [path for path in paths if after[path] is not None and after[path] != before[path]]
    read = [path for path in paths if before[path] is not None and path not in written]
    groups = [("read", read), ("wrote", written)]
    return [f"{verb} {', '.join(map(_describe, group))}" for verb, group in groups if group]


class StageSettings:
    """The settings a stage declares as params in ``dvc.yaml``: whole sections
    (``split``) and single keys (``data.dataset_dir``).

    Reading anything else raises, so a stage cannot depend on a setting
    without DVC knowing: a change to a key reruns exactly the stages that
    read it.

    Examples
    --------
    >>> from rainforest.config import load_settings
    >>> settings = StageSettings(load_settings("params.yaml"), "submit", ["data.dataset_dir", "submit"])
    >>> settings.submit.hop_seconds, settings.data.dataset_dir.name
    (1.0, 'demo')
    >>> settings.train
    Traceback (most recent call last):
    ...
    rainforest.errors.ConfigError: stage submit reads the params section 'train', which dvc.yaml does not declare for it; add `- train` to its params in dvc.yaml
    >>> settings.data.reviews_dir
    Traceback (most recent call last):
    ...
    rainforest.errors.ConfigError: stage submit reads the param 'data.reviews_dir', which dvc.yaml does not declare for it; add `- data.reviews_dir` to its params in dvc.yaml
    """

    def __init__(self, settings: Settings, stage: str, params: list[str]):
        self._settings, self._stage = settings, stage
        self._sections = frozenset(name for name in params if "." not in name)
        self._keys = frozenset(name for name in params if "." in name)

    def __getattr__(self, section: str):
        if section in self._sections:
            return getattr(self._settings, section)
        keys = {name.partition(".")[2] for name in self._keys if name.partition(".")[0] == section}
        if keys:
            return _SectionKeys(getattr(self._settings, section), self._stage, section, keys)
        raise ConfigError(
            f"stage {self._stage} reads the params section {section!r}, which dvc.yaml does not declare for it; "
            f"add `- {section}` to its params in dvc.yaml"
        )


class _SectionKeys:
    """The keys of one section that a stage declares one by one."""

    def __init__(self, section_settings, stage: str, section: str, keys: set[str]):
        self._values, self._stage, self._section, self._keys = section_settings, stage, section, keys

    def __getattr__(self, key: str):
        if key in self._keys:
            return getattr(self._values, key)
        name = f"{self._section}.{key}"
        raise ConfigError(
            f"stage {self._stage} reads the param {name!r}, which dvc.yaml does not declare for it; "
            f"add `- {name}` to its params in dvc.yaml"
        )


def declared_params(pipeline_path: str | Path, stage: str) -> list[str]:
    """The params (sections and keys) that ``dvc.yaml`` declares for ``stage``.

    Raises
    ------
    ConfigError
        If the file is missing or does not define the stage.
    """
    pipeline_path = Path(pipeline_path)
    try:
        stages = yaml.safe_load(pipeline_path.read_text())["stages"]
        return list(stages[stage].get("params", []))
    except FileNotFoundError:
        raise ConfigError(
            f"{pipeline_path}: not found; the stage scripts run from a project holding dvc.yaml"
        ) from None
    except (KeyError, TypeError, AttributeError, yaml.YAMLError):
        raise ConfigError(f"{pipeline_path}: defines no stage {stage!r} with its params") from None


def _usage(main: Callable[..., None]) -> str:
    # The "Usage: ..." line of the stage script's docstring.
    doc = sys.modules[main.__module__].__doc__ or ""
    return next((line.strip() for line in doc.splitlines() if line.strip().startswith("Usage:")), "")


def run_stage(name: str, main: Callable[..., None], params_path: str = "params.yaml") -> None:
    """Run a stage's ``main(settings, *argv)`` and exit.

    ``settings`` holds only the params (sections and keys) that ``dvc.yaml`` (beside
    the ``stages/`` folder) declares for the stage (:class:`StageSettings`);
    they are read and validated before any work starts. Called with the
    wrong number of arguments, the stage prints its usage and exits with 2.
    Otherwise it runs as :func:`rainforest.cli.run_program` runs a program
    (exit status 1 and one message on a :class:`~rainforest.errors.PipelineError`).
    On success one line logs the files and folders among the arguments that
    the stage read and wrote (with their sizes) and how long it took.
    """
    started = time.perf_counter()
    arguments = sys.argv[1:]
    try:
        inspect.signature(main).bind(None, *arguments)
    except TypeError:
        print(f"{name}: error: {len(arguments)} argument(s) given\n{_usage(main)}", file=sys.stderr)
        sys.exit(2)
    paths = [Path(argument) for argument in arguments]
    before = {path: _fingerprint(path) for path in paths}
    pipeline = Path(inspect.getfile(main)).resolve().parents[1] / "dvc.yaml"

    def stage() -> None:
        main(StageSettings(load_settings(params_path), name, declared_params(pipeline, name)), *arguments)
        elapsed = f"done in {time.perf_counter() - started:.1f} s"
        log.info("%s: %s", name, "; ".join([*_read_and_written(paths, before), elapsed]))

    sys.exit(run_program(name, stage))
