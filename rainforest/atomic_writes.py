"""Atomic writes: every file the pipeline writes, written whole or not at all; JSON among them.

Every output goes to a temporary file beside its destination and is renamed
into place only once complete, so a stage that fails or is killed leaves the
previous output intact (or none), never a half-written file. Window sets,
models, images and pages are written through :func:`atomic_path`; text with
:func:`write_text`; JSON with :func:`write_json` (indented, keys sorted), its
numbers rounded by :func:`rounded_or_none`. The module is named for the
promise every writer here keeps.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    A process killed mid-write cannot clean up, so temporaries of ``path``
    left by processes that no longer run are removed first: they never pile up.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


#: Folder -> target file name -> temporaries of it found there, listed once a
#: process: listing a folder for every file written to it would make writing
#: n files to one folder (a detection run's selection tables) cost n squared.
_TEMPORARIES: dict[Path, dict[str, list[Path]]] = {}


def _remove_stale_temporaries(path: Path) -> None:
    folder = path.parent.resolve()
    if folder not in _TEMPORARIES:
        found: dict[str, list[Path]] = {}
        for candidate in folder.iterdir():
            target, marker, pid = candidate.name.rpartition(".tmp-")
            if marker and target.startswith(".") and pid.isdigit():
                found.setdefault(target[1:], []).append(candidate)
        _TEMPORARIES[folder] = found
    for candidate in _TEMPORARIES[folder].pop(path.name, []):
        writer = int(candidate.name.rpartition(".tmp-")[2])  # the id of the process that wrote it
        if not _process_exists(writer):
            candidate.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def rounded_or_none(value: float | None) -> float | None:
    """``value`` rounded to 6 decimals for a JSON file, or ``None`` for a missing or NaN value:
    JSON has no NaN (a species without positives gets null).

    Examples
    --------
    >>> rounded_or_none(0.12345678), rounded_or_none(float("nan")), rounded_or_none(None)
    (0.123457, None, None)
    """
    return None if value is None or math.isnan(value) else round(float(value), 6)


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON with sorted keys, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
