"""Detections: the windows of a recording whose score reaches their species' threshold.

The trained model scores windows slid over every recording; a window is a
detection of a species when its score reaches the species' threshold (from the
detector file that ``evaluate`` writes beside the model). A recording's
detections become its rows of ``detections.csv`` and its Raven Pro selection
table (:class:`RecordingDetections`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rainforest.card import ModelCard
from rainforest.detect import raven
from rainforest.detect.thresholds import Detector

if TYPE_CHECKING:  # scoring loads TensorFlow, which writing detections does not need
    from rainforest.detect.scoring import WindowScores

#: Columns of ``detections.csv``.
DETECTION_COLUMNS = ["recording", "start", "end", "species", "score"]


def detection_columns(card: ModelCard) -> list[str]:
    """The columns of ``detections.csv`` for this model: :data:`DETECTION_COLUMNS`,
    then ``label`` (the species' name) where the model card has names."""
    return DETECTION_COLUMNS + ["label"] if card.labels is not None else DETECTION_COLUMNS


def window_detections(
    recording_id: str,
    starts: np.ndarray,
    scores: np.ndarray,
    *,
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


@dataclass(frozen=True)
class RecordingDetections:
    """What detecting one recording gave: its rows and its selection table, or why it was skipped.

    Attributes
    ----------
    recording_id, path
        The recording and its file.
    seconds
        Its length (0 when it could not be read).
    rows
        Its ``detections.csv`` rows (:data:`DETECTION_COLUMNS`, no header), or ``None``.
    selection_table
        Its Raven selection table's text, or ``None``.
    skipped
        Why it could not be read, or ``None``.
    """

    recording_id: str
    path: Path
    seconds: float
    rows: str | None = None
    selection_table: str | None = None
    skipped: str | None = None


def recording_detections(
    item: WindowScores, card: ModelCard, detector: Detector, thresholds: np.ndarray
) -> RecordingDetections:
    """A recording's window scores -> its ``detections.csv`` rows and Raven
    selection table (:func:`window_detections`), or why it was skipped."""
    if item.skipped:
        return RecordingDetections(item.recording_id, item.path, 0.0, skipped=item.skipped)
    table = window_detections(
        item.recording_id, item.starts, item.scores, window_seconds=card.spectrogram_settings.features.window_seconds,
        duration=item.seconds, detector=detector, thresholds=thresholds,
    )
    if card.labels is not None:
        table["label"] = table["species"].map(dict(zip(card.species, card.labels)))
    rows = table[detection_columns(card)].round({"start": 3, "end": 3, "score": 6})
    return RecordingDetections(
        item.recording_id, item.path, item.seconds, rows.to_csv(index=False, header=False, lineterminator="\n"),
        raven.selection_table(table),
    )
