"""A detection run, inputs to output folder: the recordings found in folder trees, the journal, the tables.

The module holds one run's life, from finding its recordings to its last table
(named for that, not "archive", a word that also names a model's ``.keras`` zip).

``rainforest-detect`` (:mod:`rainforest.detect.cli`) runs
:func:`detect_recordings`: every recording found under the inputs is scored
(:mod:`rainforest.detect.engine`, in this process or on a Dask cluster) and
its detections written to the output folder as it is done: its Raven Pro
selection table, and a line in the run's :class:`Journal`. A run that was
killed continues where it stopped; ``detections.csv`` and ``skipped.csv``
are written at the end, the same bytes whether or not it was interrupted and
however many workers ran it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rainforest.atomic_writes import write_text
from rainforest.audio import Skipped, index_recording_tree
from rainforest.card import load_card
from rainforest.detect.engine import DetectionJob, detection_results
from rainforest.errors import AudioError
from rainforest.events import detections as detection_files
from rainforest.events import raven

log = logging.getLogger(__name__)

#: Where a run keeps its journal and each recording's finished rows, inside the output folder.
JOURNAL_DIR = ".journal"


def find_recordings(inputs: list[str | Path]) -> dict[str, Path]:
    """Recording id -> audio file, sorted by id.

    Parameters
    ----------
    inputs
        Audio files, taken as given whatever their extension (their id is the
        file name without extension), and folders, whose ``.flac``, ``.wav``
        and ``.ogg`` files are taken at any depth (their id is the path under
        the folder without extension, ``SD03/20260412_050000``: recorders
        name files alike on every card).

    Raises
    ------
    AudioError
        If an input does not exist, no audio file is found, or two files have
        the same id (their selection tables would overwrite each other).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["SD01/0500.wav", "SD02/0500.flac", "notes.txt"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     (root / name).touch()
    >>> list(find_recordings([root]))
    ['SD01/0500', 'SD02/0500']
    """
    found: dict[str, Path] = {}
    for source in map(Path, inputs):
        if source.is_dir():
            recordings = index_recording_tree(source)
        elif source.is_file():
            recordings = {source.stem: source}
        else:
            raise AudioError(f"{source}: no such file or folder")
        for recording_id, path in recordings.items():
            if recording_id in found and found[recording_id] != path:
                raise AudioError(
                    f"{found[recording_id]} and {path}: two recordings with the id {recording_id!r}; "
                    "rename one, or detect them in separate runs"
                )
            found[recording_id] = path
    if not found:
        raise AudioError(f"{', '.join(map(str, inputs))}: no audio files (.flac, .wav, .ogg) found")
    return dict(sorted(found.items()))


def run_key(job: DetectionJob) -> str:
    """What a recording's detections depend on besides its file: the model and
    detector files (by content) and the options; a journal entry of another
    run key is redone."""
    digest = hashlib.sha256()
    for path in (job.model, job.detector):
        digest.update(Path(path).read_bytes())
    digest.update(np.asarray(job.thresholds, dtype=np.float64).tobytes())
    digest.update(f"{job.scoring.hop_seconds!r} {job.scoring.batch_size!r}".encode())
    if job.merge:  # only then, so the journals of runs without it stay valid
        digest.update(b"merge")
    return digest.hexdigest()


def _file_key(path: Path) -> dict:
    # A changed file (new size or modification time) is redone.
    stat = path.stat()
    return {"file": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class Journal:
    """The recordings a detection run into ``out_dir`` has finished, so that the
    same command continues where a crash or a kill stopped it.

    Each finished recording's rows of ``detections.csv`` are written to
    ``.journal/parts/<id>.csv`` (atomically), then one line is appended to
    ``.journal/journal.jsonl`` (flushed to disk): a recording is finished
    only once its line is there, and a line cut short by a kill is ignored.
    A recording counts as finished for a later run only if its file (path,
    size, modification time) and the run key (:func:`run_key`) are the same.
    """

    def __init__(self, out_dir: str | Path, key: str):
        self.folder, self.key = Path(out_dir) / JOURNAL_DIR, key
        self.path = self.folder / "journal.jsonl"

    def _part(self, recording_id: str) -> Path:
        return self.folder / "parts" / f"{recording_id}.csv"

    def entries(self) -> dict[str, dict]:
        """Recording id -> its latest journal entry, whatever its run key (none before a run)."""
        entries = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # the last line, cut short by a kill
                    continue
                entries[entry["recording"]] = entry
        return entries

    def finished(self, recordings: dict[str, Path]) -> dict[str, dict]:
        """Recording id -> its journal entry, for those of ``recordings`` already done by this run key."""
        entries = self.entries()
        done = {}
        for recording_id, path in recordings.items():
            entry = entries.get(recording_id)
            if entry is None or entry["run"] != self.key or {k: entry[k] for k in _file_key(path)} != _file_key(path):
                continue
            if entry["skipped"] is None and not self._part(recording_id).exists():
                continue
            done[recording_id] = entry
        return done

    def record(
        self,
        recording_id: str,
        path: Path,
        rows: str | None,
        *,
        skipped: str | None = None,
        highest: tuple[float, ...] | None = None,
    ) -> None:
        """Mark a recording finished: its ``detections.csv`` rows and each species' highest
        window score, or why it was skipped."""
        if rows is not None:
            write_text(self._part(recording_id), rows)
        entry = {"recording": recording_id, **_file_key(path), "run": self.key, "skipped": skipped}
        if highest is not None:
            entry["highest"] = list(highest)
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.path, "ab+") as journal:
            if journal.tell():  # after a line cut short by a kill, a new line, or this entry is lost with it
                journal.seek(-1, os.SEEK_END)
                if journal.read(1) != b"\n":
                    line = "\n" + line
            journal.write(line.encode())
            journal.flush()
            os.fsync(journal.fileno())

    def rows(self, recording_id: str) -> str:
        """The finished ``detections.csv`` rows of a recording."""
        return self._part(recording_id).read_text()


def recording_files(out_dir: str | Path) -> dict[str, Path]:
    """Recording id -> its audio file (resolved, as the run found it), for
    every recording a detection run into ``out_dir`` scored.

    Recordings the run skipped as unreadable are left out. Empty when
    ``out_dir`` holds no journal.
    """
    # The run key only decides what a later run redoes; any entry names the file.
    entries = Journal(out_dir, key="").entries()
    return {
        recording_id: Path(entry["file"]) for recording_id, entry in sorted(entries.items()) if not entry["skipped"]
    }


@dataclass(frozen=True)
class DetectionSummary:
    """What a detection run did.

    Attributes
    ----------
    scored
        Recordings scored by this run.
    resumed
        Recordings an earlier run had scored, taken from the journal.
    skipped
        Recording id -> why it could not be read, for every unreadable recording of the run (found
        now or by an earlier run); with ``scored`` and ``resumed``, every recording of the run.
    detections
        Rows written to ``detections.csv``.
    highest
        Each species' highest window score over the recordings scored (now, or by an earlier run
        whose journal kept it), in model order; None when none was, or a journal of an older version
        kept none.
    """

    scored: int
    resumed: int
    skipped: dict[str, str]
    detections: int
    highest: tuple[float, ...] | None = None


def detect_recordings(
    job: DetectionJob,
    recordings: dict[str, Path],
    out_dir: str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
) -> DetectionSummary:
    """Detect species in every recording and write the results to ``out_dir``.

    Each recording is decoded, mixed to mono and resampled to the model's
    rate, whatever its format, rate and length, and scored by windows every
    ``job.scoring.hop_seconds``, in blocks, so a day-long recording takes no more
    memory than a minute-long one (see
    :func:`rainforest.detect.scoring.score_windows`). As each recording is
    done, by this process or a worker (:func:`rainforest.detect.engine.detection_results`),
    its Raven selection table is written (``<id>.Table.1.selections.txt``,
    in the subfolder of its id) and it is marked in the run's
    :class:`Journal`; recordings the journal holds for this run are not
    scored again, so a run that was killed continues where it stopped, and
    new recordings added to an archive are the only ones scored. Finally
    ``detections.csv`` (every recording's rows, by recording id) and
    ``skipped.csv`` (each unreadable recording and why) are written, the
    same bytes whether or not the run was interrupted, and for any
    ``workers`` or cluster.

    Parameters
    ----------
    workers, scheduler
        Where the recordings are scored: see :func:`rainforest.detect.engine.detection_results`.

    Raises
    ------
    AudioError
        If a recording cannot be decoded (without ``job.skip_unreadable``;
        the recordings finished before it are kept), or none could.
    """
    out_dir = Path(out_dir)
    journal = Journal(out_dir, run_key(job))
    done = journal.finished(recordings)
    if done:
        log.info(
            "%d of %d recording(s) already done (journal in %s): not scored again",
            len(done),
            len(recordings),
            journal.folder,
        )
    pending = {recording_id: path for recording_id, path in recordings.items() if recording_id not in done}
    n_scored = 0
    skipped = {recording_id: entry["skipped"] for recording_id, entry in done.items() if entry["skipped"]}
    # Each species' highest score, kept as the recordings stream by: what the summary says when little is detected.
    highest = np.full(len(job.thresholds), -np.inf)
    for entry in done.values():
        highest = np.maximum(highest, entry.get("highest", -np.inf))
    try:
        with detection_results(job, pending, workers=workers, scheduler=scheduler) as results:
            for result in results:
                if isinstance(result, Skipped):
                    skipped[result.recording_id] = result.reason
                    journal.record(result.recording_id, result.path, None, skipped=result.reason)
                    continue
                write_text(out_dir / raven.table_name(result.recording_id), result.selection_table)
                n_scored += 1
                journal.record(result.recording_id, result.path, result.rows, highest=result.highest)
                highest = np.maximum(highest, result.highest)
    except AudioError as error:
        raise AudioError(f"{error} (or pass --skip-unreadable to leave it out)") from None
    except KeyboardInterrupt:
        log.info(
            "stopped after scoring %d recording(s); the journal in %s keeps every finished one: the same command "
            "continues from there",
            n_scored,
            journal.folder,
        )
        raise
    skipped = {recording_id: skipped[recording_id] for recording_id in recordings if recording_id in skipped}
    if len(skipped) == len(recordings):
        first = next(iter(skipped.values()))
        raise AudioError(f"none of the {len(recordings)} recording(s) could be read (first: {first})")
    rows = [journal.rows(recording_id) for recording_id in recordings if recording_id not in skipped]
    header = ",".join(detection_files.columns(labelled=load_card(job.model).labels is not None))
    write_text(out_dir / detection_files.FILE_NAME, header + "\n" + "".join(rows))
    skipped_table = pd.DataFrame({"recording": list(skipped), "reason": list(skipped.values())})
    write_text(out_dir / "skipped.csv", skipped_table.to_csv(index=False, lineterminator="\n"))
    return DetectionSummary(
        scored=n_scored,
        resumed=sum(not entry["skipped"] for entry in done.values()),
        skipped=skipped,
        detections=sum(row.count("\n") for row in rows),
        highest=tuple(map(float, highest)) if np.isfinite(highest).all() else None,
    )
