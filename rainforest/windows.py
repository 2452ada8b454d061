"""Cutting labelled windows around events: the work of the ``etl`` stage.

Each recording is decoded once, however many events it holds; its log-mel
spectrogram is computed once and every event's window is cut from it. Work is
spread over processes, one recording at a time, and results are streamed into
the HDF5 window set in recording order, so the output does not depend on the
number of workers.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from rainforest.audio import index_recordings, load_recording
from rainforest.config import FeatureSettings
from rainforest.errors import LabelError
from rainforest.features import (
    cut_windows,
    event_window_start,
    frame_times,
    log_mel_spectrogram,
    pad_to_length,
    window_frames,
    window_span_samples,
)
from rainforest.labels import read_species, read_training_events, window_labels
from rainforest.storage import WindowWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowGeometry:
    """Sizes shared by every window of a run."""

    sample_rate: int
    features: FeatureSettings

    @property
    def n_frames(self) -> int:
        return window_frames(self.features, self.sample_rate)

    @property
    def n_samples(self) -> int:
        return window_span_samples(self.n_frames, self.features)


def event_windows(
    waveform: np.ndarray, events: pd.DataFrame, geometry: WindowGeometry, n_species: int
) -> dict[str, np.ndarray]:
    """Cut one window around each event of a recording.

    Parameters
    ----------
    waveform
        The recording, mono, at ``geometry.sample_rate``.
    events
        The recording's events (``species_id``, ``t_min``, ``t_max``, ``present``).

    Returns
    -------
    dict
        Arrays with one row per event, named as the fields of a window set
        (without ``recording_ids``).
    """
    features, rate = geometry.features, geometry.sample_rate
    waveform = pad_to_length(waveform, geometry.n_samples)
    spectrogram = log_mel_spectrogram(waveform, rate, features)
    starts = np.array(
        [
            event_window_start(t_min, t_max, spectrogram.shape[1], geometry.n_frames, rate, features)
            for t_min, t_max in zip(events["t_min"], events["t_max"])
        ],
        dtype=np.int64,
    )
    start_times = frame_times(starts, rate, features)
    end_times = start_times + geometry.n_samples / rate
    labels = [window_labels(events, start, end, n_species) for start, end in zip(start_times, end_times)]
    sample_starts = starts * features.hop_length
    return {
        "spectrograms": cut_windows(spectrogram, starts, geometry.n_frames),
        "waveforms": np.stack([waveform[s : s + geometry.n_samples] for s in sample_starts]),
        "targets": np.stack([target for target, _ in labels]),
        "masks": np.stack([mask for _, mask in labels]),
        "start_times": start_times,
        "end_times": end_times,
        "event_species": events["species_id"].to_numpy(np.int16),
        "event_present": events["present"].to_numpy(np.uint8),
    }


def _recording_job(job: tuple[str, Path, pd.DataFrame, WindowGeometry, int]) -> dict[str, np.ndarray]:
    recording_id, path, events, geometry, n_species = job
    windows = event_windows(load_recording(path, geometry.sample_rate), events, geometry, n_species)
    windows["recording_ids"] = np.array([recording_id] * len(events), dtype=object)
    return windows


def build_window_set(
    dataset_dir: str | Path, out_path: str | Path, sample_rate: int, features: FeatureSettings, workers: int
) -> int:
    """Write the window set of every labelled event in a dataset.

    Parameters
    ----------
    dataset_dir
        A folder in the competition's layout.
    out_path
        The HDF5 file to write (atomically).
    workers
        Processes decoding recordings in parallel.

    Returns
    -------
    int
        The number of windows written.

    Raises
    ------
    LabelError
        If a label file is malformed, or names a recording with no audio file.
    AudioError
        If a recording cannot be decoded.
    """
    dataset_dir = Path(dataset_dir)
    species, _ = read_species(dataset_dir / "sample_submission.csv")
    events = read_training_events(dataset_dir, len(species))
    audio = index_recordings(dataset_dir / "train")
    missing = sorted(set(events["recording_id"]) - set(audio))
    if missing:
        raise LabelError(
            f"{dataset_dir}: {len(missing)} recording(s) named in the label files have no audio in "
            f"{dataset_dir / 'train'} (first: {', '.join(missing[:5])}); add the files or remove their rows"
        )
    geometry = WindowGeometry(sample_rate, features)
    jobs = [
        (recording_id, audio[recording_id], group.reset_index(drop=True), geometry, len(species))
        for recording_id, group in events.groupby("recording_id", sort=True)
    ]
    log.info(
        "%s: %d events (%d present, %d absent) in %d recordings; %d workers",
        dataset_dir,
        len(events),
        int(events["present"].sum()),
        int((~events["present"]).sum()),
        len(jobs),
        workers,
    )
    attrs = {
        "sample_rate": sample_rate,
        "window_seconds": features.window_seconds,
        "n_fft": features.n_fft,
        "hop_length": features.hop_length,
        "n_mels": features.n_mels,
        "fmin": features.fmin,
        "fmax": features.fmax,
        "species": species,
    }
    writer = WindowWriter(
        out_path, features.n_mels, geometry.n_frames, len(species), geometry.n_samples, attrs
    )
    with writer, multiprocessing.Pool(workers) if workers > 1 else _SerialPool() as pool:
        for windows in tqdm(pool.imap(_recording_job, jobs), total=len(jobs), desc="etl", unit="rec", disable=None):
            writer.append(**windows)
    return writer.n_windows


class _SerialPool:
    """The slice of ``multiprocessing.Pool`` used here, in this process."""

    def __enter__(self) -> _SerialPool:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    @staticmethod
    def imap(function, jobs):
        return map(function, jobs)
