"""Detecting species in field recordings: where in each recording each species called.

The trained model scores windows slid over every recording; a window is a
detection of a species when its score reaches the species' threshold (from the
detector file that ``evaluate`` writes beside the model). Detections are
written as one CSV for all recordings and one Raven Pro selection table per
recording. ``rainforest-detect`` (:mod:`rainforest.detect.cli`) is the command.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from rainforest.detect import raven
from rainforest.audio import index_recordings
from rainforest.detect.thresholds import Detector
from rainforest.errors import AudioError
from rainforest.detect.scoring import make_scorer, score_windows
from rainforest.model import ModelCard
from rainforest.storage import write_text

log = logging.getLogger(__name__)


#: Columns of ``detections.csv``.
DETECTION_COLUMNS = ["recording", "start", "end", "species", "score"]


def find_recordings(inputs: list[str | Path]) -> dict[str, Path]:
    """Recording id (file name without extension) -> audio file, sorted by id.

    Parameters
    ----------
    inputs
        Audio files, taken as given whatever their extension, and folders,
        whose ``.flac``, ``.wav`` and ``.ogg`` files are taken (not those of
        subfolders).

    Raises
    ------
    AudioError
        If an input does not exist, no audio file is found, or two files have
        the same id (their selection tables would overwrite each other).
    """
    found: dict[str, Path] = {}
    for source in map(Path, inputs):
        if source.is_dir():
            paths = index_recordings(source).values()
        elif source.is_file():
            paths = [source]
        else:
            raise AudioError(f"{source}: no such file or folder")
        for path in paths:
            if path.stem in found and found[path.stem] != path:
                raise AudioError(
                    f"{found[path.stem]} and {path}: two recordings named {path.stem!r}; "
                    "rename one, or detect them in separate runs"
                )
            found[path.stem] = path
    if not found:
        raise AudioError(f"{', '.join(map(str, inputs))}: no audio files (.flac, .wav, .ogg) found")
    return dict(sorted(found.items()))


def window_detections(
    recording_id: str,
    starts: np.ndarray,
    scores: np.ndarray,
    window_seconds: float,
    duration: float,
    detector: Detector,
    thresholds: np.ndarray,
) -> pd.DataFrame:
    """The windows of one recording whose score reaches their species' threshold.

    Parameters
    ----------
    starts, scores
        Window start times in seconds (n_windows,) and scores (n_windows,
        n_species), as from :func:`rainforest.detect.scoring.score_windows`.
    window_seconds
        Length of a window; a window's end is clipped to ``duration``, the
        recording's length.
    thresholds
        Per-species scores at or above which a window is a detection.

    Returns
    -------
    pd.DataFrame
        :data:`DETECTION_COLUMNS` plus the species' band, ``low_freq`` and
        ``high_freq`` (Hz), ordered by start, then species in model order.
    """
    rows, columns = np.nonzero(scores >= thresholds[None, :])  # row-major: by start, then species
    bands = np.array([[entry.low_freq_hz, entry.high_freq_hz] for entry in detector.species])
    names = np.array([entry.species for entry in detector.species], dtype=object)
    return pd.DataFrame(
        {
            "recording": recording_id,
            "start": starts[rows],
            "end": np.minimum(starts[rows] + window_seconds, duration),
            "species": names[columns],
            "score": scores[rows, columns].astype(np.float64),
            "low_freq": bands[columns, 0],
            "high_freq": bands[columns, 1],
        }
    )


#: Where a run keeps its journal and each recording's finished rows, inside the output folder.
JOURNAL_DIR = ".journal"


def run_key(*paths: str | Path, thresholds: np.ndarray, hop_seconds: float, batch_size: int) -> str:
    """What a recording's detections depend on besides its file: the model and
    detector files (``paths``, by content) and the options; a journal entry of
    another run key is redone."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    digest.update(np.asarray(thresholds, dtype=np.float64).tobytes())
    digest.update(f"{hop_seconds!r} {batch_size!r}".encode())
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

    def finished(self, recordings: dict[str, Path]) -> dict[str, dict]:
        """Recording id -> its journal entry, for those of ``recordings`` already done by this run key."""
        entries = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # the last line, cut short by a kill
                    continue
                entries[entry["recording"]] = entry
        done = {}
        for recording_id, path in recordings.items():
            entry = entries.get(recording_id)
            if entry is None or entry["run"] != self.key or {k: entry[k] for k in _file_key(path)} != _file_key(path):
                continue
            if entry["skipped"] is None and not self._part(recording_id).exists():
                continue
            done[recording_id] = entry
        return done

    def record(self, recording_id: str, path: Path, rows: str | None, skipped: str | None = None) -> None:
        """Mark a recording finished: its ``detections.csv`` rows, or why it was skipped."""
        if rows is not None:
            write_text(self._part(recording_id), rows)
        entry = {"recording": recording_id, **_file_key(path), "run": self.key, "skipped": skipped}
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as journal:
            journal.write(json.dumps(entry, sort_keys=True) + "\n")
            journal.flush()
            os.fsync(journal.fileno())

    def rows(self, recording_id: str) -> str:
        """The finished ``detections.csv`` rows of a recording."""
        return self._part(recording_id).read_text()


def _csv_rows(table: pd.DataFrame) -> str:
    rows = table[DETECTION_COLUMNS].round({"start": 3, "end": 3, "score": 6})
    return rows.to_csv(index=False, header=False, lineterminator="\n")


@dataclass(frozen=True)
class DetectionSummary:
    """What a detection run did.

    Attributes
    ----------
    scored
        Recordings scored by this run.
    resumed
        Recordings an earlier run had finished (scored or skipped), taken from the journal.
    skipped
        Recording id -> why it could not be read, for every unreadable recording of the run.
    detections
        Rows written to ``detections.csv``.
    """

    scored: int
    resumed: int
    skipped: dict[str, str]
    detections: int


def detect_recordings(
    model: keras.Model,
    card: ModelCard,
    detector: Detector,
    recordings: dict[str, Path],
    out_dir: str | Path,
    *,
    thresholds: np.ndarray,
    hop_seconds: float,
    batch_size: int,
    key: str,
    skip_unreadable: bool = False,
) -> DetectionSummary:
    """Detect species in every recording and write the results to ``out_dir``.

    Each recording is decoded, mixed to mono and resampled to the model's
    rate, whatever its format, rate and length, and scored by windows every
    ``hop_seconds``, in blocks, so a day-long recording takes no more memory
    than a minute-long one (see :func:`rainforest.detect.scoring.score_windows`
    and :func:`window_detections`). As each recording is done its Raven
    selection table is written and it is marked in the run's
    :class:`Journal`; recordings the journal holds for this ``key`` are not
    scored again, so a run that was killed continues where it stopped, and
    new recordings added to an archive are the only ones scored. Finally
    ``detections.csv`` (every recording's rows, by recording id) and
    ``skipped.csv`` (each unreadable recording and why) are written, the
    same bytes whether or not the run was interrupted.

    Raises
    ------
    AudioError
        If a recording cannot be decoded (without ``skip_unreadable``; the
        recordings finished before it are kept), or none could.
    """
    out_dir = Path(out_dir)
    journal = Journal(out_dir, key)
    done = journal.finished(recordings)
    if done:
        log.info("%d of %d recording(s) already done (journal in %s): not scored again",
                 len(done), len(recordings), journal.folder)
    pending = {recording_id: path for recording_id, path in recordings.items() if recording_id not in done}
    scored = score_windows(
        make_scorer(model, card), pending, hop_seconds=hop_seconds, batch_size=batch_size,
        skip_unreadable=skip_unreadable, progress="detect",
    )
    n_scored = 0
    skipped = {recording_id: entry["skipped"] for recording_id, entry in done.items() if entry["skipped"]}
    try:
        for item in scored:
            if item.skipped:
                journal.record(item.recording_id, item.path, None, skipped=item.skipped)
                skipped[item.recording_id] = item.skipped
                continue
            table = window_detections(
                item.recording_id, item.starts, item.scores, card.features.window_seconds, item.seconds,
                detector, thresholds,
            )
            write_text(out_dir / raven.selection_table_name(item.recording_id), raven.selection_table(table))
            journal.record(item.recording_id, item.path, _csv_rows(table))
            n_scored += 1
    except AudioError as error:
        raise AudioError(f"{error} (or pass --skip-unreadable to leave it out)") from None
    skipped = {recording_id: skipped[recording_id] for recording_id in recordings if recording_id in skipped}
    if len(skipped) == len(recordings):
        first = next(iter(skipped.values()))
        raise AudioError(f"none of the {len(recordings)} recording(s) could be read (first: {first})")
    rows = [journal.rows(recording_id) for recording_id in recordings if recording_id not in skipped]
    write_text(out_dir / "detections.csv", ",".join(DETECTION_COLUMNS) + "\n" + "".join(rows))
    skipped_table = pd.DataFrame({"recording": list(skipped), "reason": list(skipped.values())})
    write_text(out_dir / "skipped.csv", skipped_table.to_csv(index=False, lineterminator="\n"))
    return DetectionSummary(
        scored=n_scored, resumed=len(done), skipped=skipped, detections=sum(row.count("\n") for row in rows)
    )
