"""A dataset's training events: from its format's files, and a project's reviewed labels.

``data.annotations`` names the format (:data:`rainforest.events.FORMATS`):
``competition`` reads ``train_tp.csv`` and ``train_fp.csv`` (optional: without
it there are no known absences); a format of files beside the recordings
(``raven``, ``audacity``) reads every ``*.txt`` file in ``train/`` as the
annotations of the recording its name starts with. A project's reviewed labels
(``data.reviews_dir``: ``labels.csv`` and ``recordings/``, copies of reviewed
recordings that are not in the dataset's ``train/``) are read besides them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import soundfile as sf

from rainforest.audio import index_recordings
from rainforest.errors import LabelError
from rainforest.events import competition
from rainforest.events.registry import FORMATS
from rainforest.events.species import SpeciesNames
from rainforest.events.table import RecordingShape, drop_repeated, empty_events

log = logging.getLogger(__name__)

#: The reviewed labels' file and recordings folder, inside ``data.reviews_dir``.
REVIEWED_LABELS, REVIEWED_RECORDINGS = "labels.csv", "recordings"


def read_dataset_events(
    dataset_dir: str | Path, species: SpeciesNames, *, annotations: str = "competition", species_column: str = "Species"
) -> tuple[pd.DataFrame, int]:
    """All labelled events of a dataset, and how many rows repeating an earlier row of their file were dropped.

    Parameters
    ----------
    annotations
        The format of the dataset's labels (``data.annotations``).
    species_column
        The Raven tables' species column (``data.species_column``).

    Returns
    -------
    events : pd.DataFrame
        The events table (:mod:`rainforest.events.table`), ordered by file and line.
    duplicates : int

    Raises
    ------
    LabelError
        Naming the file and line of a bad row; an annotation file whose
        recording is not in ``train/``; no annotation files at all.
    """
    dataset_dir = Path(dataset_dir)
    if annotations == "competition":
        files = [(dataset_dir / "train_tp.csv", True), (dataset_dir / "train_fp.csv", False)]
        tables = [
            drop_repeated(competition.read(path, species, present=present))
            for path, present in files
            if present or path.exists()
        ]
    else:
        tables = _read_beside_recordings(dataset_dir / "train", species, annotations, species_column)
    events = pd.concat([table for table, _ in tables], ignore_index=True)
    return events, sum(dropped for _, dropped in tables)


def _read_beside_recordings(
    train_dir: Path, species: SpeciesNames, annotations: str, species_column: str
) -> list[tuple[pd.DataFrame, int]]:
    form = FORMATS[annotations]
    assert form.recording_of is not None  # a format of files beside the recordings (DATASET_FORMATS)
    recordings = index_recordings(train_dir)
    files = sorted(path for path in train_dir.glob("*.txt") if path.is_file() and not path.name.startswith("."))
    if not files:
        raise LabelError(
            f"{train_dir}: no {form.title} ({form.files}) beside the recordings; data.annotations is "
            f"{annotations!r} in params.yaml (competition reads train_tp.csv)"
        )
    tables, labelled = [], set()
    for path in files:
        recording_id = form.recording_of(path, set(recordings))
        if recording_id is None:
            raise LabelError(
                f"{path}: no recording in {train_dir} that this file's name starts with; name it after its "
                f"recording ({form.files}), add the recording, or remove the file"
            )
        options = {"species_column": species_column} if annotations == "raven" else {}
        events = form.read(
            path,
            species,
            recording_id=recording_id,
            recording=_recording_shape(recording_id, recordings[recording_id]),
            **options,
        )
        tables.append(drop_repeated(events) if len(events) else (events, 0))
        labelled.add(recording_id)
    log.info(
        "%s: %d event(s) from %d %s; %d recording(s) without one are not used",
        train_dir,
        sum(len(table) for table, _ in tables),
        len(files),
        form.title,
        len(recordings) - len(labelled),
    )
    return tables


def _recording_shape(recording_id: str, path: Path) -> RecordingShape | None:
    """A recording's length and Nyquist frequency at its own rate, or None if unreadable."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None  # etl reports it as unreadable (or skips it)
    return RecordingShape(recording_id, info.frames / info.samplerate, info.samplerate / 2)


def read_reviewed_events(reviews_dir: str | Path, species: SpeciesNames) -> pd.DataFrame:
    """The events of a project's reviewed labels (``reviews_dir/labels.csv``); none without the file.

    Raises
    ------
    LabelError
        As :func:`rainforest.events.competition.read`, naming the file and line.
    """
    path = Path(reviews_dir) / REVIEWED_LABELS
    if not path.exists():
        return empty_events()
    events, _ = drop_repeated(competition.read(path, species, present=None))
    return events
