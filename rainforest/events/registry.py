"""The event formats by name: where a new format is registered (one module, one line in :data:`FORMATS`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rainforest.events import audacity, competition, detections, raven, verdicts


@dataclass(frozen=True)
class EventFormat:
    """A format of event files: its reader and writer, and how messages name it.

    Attributes
    ----------
    name
        As settings and messages name it (``data.annotations: raven``).
    title
        What its files are, in a message ("Raven selection tables").
    files
        The file names it reads.
    read, write
        Its module's ``read`` (a file -> the events table, or for
        ``detections`` the table as written) and ``write`` (rows -> the file's text).
    recording_of
        For a format of files beside each training recording (``data.annotations``):
        the recording a file labels, from its name and the recordings' ids (None: none).
    """

    name: str
    title: str
    files: str
    read: Callable
    write: Callable[..., str]
    recording_of: Callable[[Path, set[str]], str | None] | None = None


FORMATS: dict[str, EventFormat] = {
    form.name: form
    for form in [
        EventFormat(
            "competition",
            "the competition's CSV files",
            "train_tp.csv, train_fp.csv",
            competition.read,
            competition.write,
        ),
        EventFormat(
            "raven", "Raven selection tables", raven.PATTERNS, raven.read, raven.write, raven.recording_of_file
        ),
        EventFormat(
            "audacity",
            "Audacity label tracks",
            "<recording>.txt",
            audacity.read,
            audacity.write,
            audacity.recording_of_file,
        ),
        EventFormat(
            "verdicts",
            "review verdicts",
            "the review page's verdicts CSV, or a detection's Raven table "
            f"with a {verdicts.RAVEN_VERDICT_COLUMN} column",
            verdicts.read,
            verdicts.write,
        ),
        EventFormat(
            "detections", "rainforest-detect's detections", detections.FILE_NAME, detections.read, detections.write
        ),
    ]
}

#: The formats a dataset's training labels may come in (``data.annotations``).
DATASET_FORMATS = tuple(name for name, form in FORMATS.items() if name == "competition" or form.recording_of)
