"""Detecting species in field recordings: where in each recording each species called.

The trained model scores windows slid over every recording; a window is a
detection of a species when its score reaches the species' threshold (from the
detector file that ``evaluate`` writes beside the model). Detections are
written as one CSV for all recordings and one Raven Pro selection table per
recording. ``rainforest-detect`` (:mod:`rainforest.detect.cli`) is the command.
"""

from __future__ import annotations

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


def detect_recordings(
    model: keras.Model,
    card: ModelCard,
    detector: Detector,
    recordings: dict[str, Path],
    *,
    thresholds: np.ndarray,
    hop_seconds: float,
    batch_size: int,
    skip_unreadable: bool = False,
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Detections of every recording.

    Each recording is decoded, mixed to mono and resampled to the model's
    rate, whatever its format, rate and length, and scored by windows every
    ``hop_seconds``, in blocks, so a day-long recording takes no more memory
    than a minute-long one (see :func:`rainforest.detect.scoring.score_windows`
    and :func:`window_detections`).

    Returns
    -------
    detections : dict
        Recording id -> its detections, for every recording read.
    skipped : dict
        Recording id -> why it could not be read (only with ``skip_unreadable``).

    Raises
    ------
    AudioError
        If a recording cannot be decoded (without ``skip_unreadable``), or
        none could.
    """
    detections, skipped = {}, {}
    scored = score_windows(
        make_scorer(model, card), recordings, hop_seconds=hop_seconds, batch_size=batch_size,
        skip_unreadable=skip_unreadable, progress="detect",
    )
    try:
        for item in scored:
            if item.skipped:
                skipped[item.recording_id] = item.skipped
                continue
            detections[item.recording_id] = window_detections(
                item.recording_id, item.starts, item.scores, card.features.window_seconds, item.seconds,
                detector, thresholds,
            )
    except AudioError as error:
        raise AudioError(f"{error} (or pass --skip-unreadable to leave it out)") from None
    if not detections:
        first = next(iter(skipped.values()))
        raise AudioError(f"none of the {len(recordings)} recording(s) could be read (first: {first})")
    return detections, skipped


def write_detections(out_dir: str | Path, detections: dict[str, pd.DataFrame]) -> int:
    """Write ``detections.csv`` and one Raven selection table per recording (an
    empty table where nothing was detected), atomically each.

    Returns
    -------
    int
        The number of detections written.
    """
    out_dir = Path(out_dir)
    for recording_id, table in detections.items():
        write_text(out_dir / raven.selection_table_name(recording_id), raven.selection_table(table))
    every = pd.concat([table[DETECTION_COLUMNS] for table in detections.values()], ignore_index=True)
    every = every.round({"start": 3, "end": 3, "score": 6})
    write_text(out_dir / "detections.csv", every.to_csv(index=False, lineterminator="\n"))
    return len(every)
