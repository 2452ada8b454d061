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

from rainforest.audio import Skipped
from rainforest.card import ModelCard
from rainforest.detect.thresholds import Detector
from rainforest.events import detections as detection_files
from rainforest.events import raven

if TYPE_CHECKING:  # scoring loads TensorFlow, which writing detections does not need
    from rainforest.detect.scoring import WindowScores


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
        :data:`rainforest.events.detections.DETECTION_COLUMNS` plus the species' band, ``low_freq`` and
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
    """What detecting one recording gave: its rows and its selection table.

    Attributes
    ----------
    recording_id, path
        The recording and its file.
    seconds
        Its length.
    rows
        Its ``detections.csv`` rows (:mod:`rainforest.events.detections`, no header).
    selection_table
        Its Raven selection table's text.
    highest
        Each species' highest window score in the recording, in model order.
    """

    recording_id: str
    path: Path
    seconds: float
    rows: str
    selection_table: str
    highest: tuple[float, ...]


def recording_detections(
    item: WindowScores | Skipped, card: ModelCard, detector: Detector, thresholds: np.ndarray, *, merge: bool = False
) -> RecordingDetections | Skipped:
    """A recording's window scores -> its ``detections.csv`` rows and Raven
    selection table (:func:`window_detections`, with ``merge`` the overlapping
    windows of a species joined: :func:`rainforest.events.detections.merge_overlapping`);
    a skipped recording stays skipped."""
    if isinstance(item, Skipped):
        return item
    table = window_detections(
        item.recording_id,
        item.starts,
        item.scores,
        window_seconds=card.spectrogram_settings.features.window_seconds,
        duration=item.seconds,
        detector=detector,
        thresholds=thresholds,
    )
    if merge:
        table = detection_files.merge_overlapping(table)
    if card.labels is not None:
        table["label"] = table["species"].map(dict(zip(card.species, card.labels)))
    rows = detection_files.write(table, labelled=card.labels is not None, header=False)
    highest = tuple(map(float, item.scores.max(axis=0)))
    return RecordingDetections(item.recording_id, item.path, item.seconds, rows, raven.write(table), highest)
