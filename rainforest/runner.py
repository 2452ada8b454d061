"""What every stage script shares: settings, logging, timing and clean errors."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rainforest.config import Settings, load_settings
from rainforest.errors import PipelineError

log = logging.getLogger("rainforest")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(file for file in path.rglob("*") if file.is_file())
    return [path] if path.is_file() else []


def _fingerprint(path: Path) -> tuple | None:
    # Every write is a rename of a new file into place (see storage.atomic_path):
    # a written file has a new inode, whatever the clock's resolution.
    if not path.exists():
        return None
    stats = [(str(file), file.stat()) for file in _files(path)]
    return tuple((name, stat.st_ino, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


def _describe(path: Path) -> str:
    files = _files(path)
    size = sum(file.stat().st_size for file in files)
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


def run_stage(name: str, main: Callable[..., None], params_path: str = "params.yaml") -> None:
    """Run a stage's ``main(settings, *argv)`` and exit.

    The settings are read and validated before any work starts. A
    :class:`PipelineError` (bad data or settings) is printed as one message
    naming what to fix, without a traceback, and the process exits with 1.
    On success one line logs the files and folders among the arguments that
    the stage read and wrote (with their sizes) and how long it took.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    started = time.perf_counter()
    paths = [Path(argument) for argument in sys.argv[1:]]
    before = {path: _fingerprint(path) for path in paths}
    try:
        settings: Settings = load_settings(params_path)
        main(settings, *sys.argv[1:])
    except PipelineError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        sys.exit(1)
    elapsed = f"done in {time.perf_counter() - started:.1f} s"
    log.info("%s: %s", name, "; ".join([*_read_and_written(paths, before), elapsed]))
