"""Waveform augmentations of training windows: noise, gain, time shift, pitch shift, time stretch.

Each augmentation is a pure function of a waveform and its size. The
``augment`` stage applies every enabled one, each with a size drawn from its
configured range, to every copy of every training window, then recomputes the
log-mel spectrogram, so the model sees the same call at other levels, times
and pitches.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from tqdm import tqdm

from rainforest.config import AugmentSettings
from rainforest.parallel import ordered_map
from rainforest.spectrogram import log_mel_spectrogram, window_span_samples
from rainforest.split import read_split, trained_rows
from rainforest.window_sets import (
    WINDOW_FIELDS,
    WindowWriter,
    read_spectrogram_settings,
    read_window_attrs,
    read_windows,
)

log = logging.getLogger(__name__)

#: Training windows per worker job.
WINDOWS_PER_JOB = 64
#: The fields an augmented copy keeps from its window: all but the audio and its spectrogram.
_KEPT_FIELDS = tuple(name for name in WINDOW_FIELDS if name not in ("spectrograms", "waveforms"))


def add_noise(waveform: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` below the waveform's power."""
    power = float(np.mean(waveform.astype(np.float64) ** 2)) or 1e-10
    noise = rng.standard_normal(len(waveform)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (waveform + noise).astype(np.float32)


def apply_gain(waveform: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale the waveform by ``gain_db`` decibels."""
    return (waveform * 10 ** (gain_db / 20)).astype(np.float32)


def shift_time(waveform: np.ndarray, shift_samples: int) -> np.ndarray:
    """Shift the waveform circularly by ``shift_samples`` (positive: later)."""
    return np.roll(waveform, shift_samples)


def shift_pitch(waveform: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shift the pitch by ``semitones`` keeping the duration."""
    return librosa.effects.pitch_shift(waveform, sr=sample_rate, n_steps=semitones, res_type="soxr_hq")


def stretch_time(waveform: np.ndarray, rate: float) -> np.ndarray:
    """Play the waveform ``rate`` times faster keeping the pitch, then crop or
    pad (centred) back to its original length."""
    stretched = librosa.effects.time_stretch(waveform, rate=rate)
    excess = len(stretched) - len(waveform)
    if excess >= 0:
        return stretched[excess // 2 : excess // 2 + len(waveform)]
    return np.pad(stretched, (-excess // 2, -excess - (-excess // 2)))


def augment_waveform(
    waveform: np.ndarray, sample_rate: int, settings: AugmentSettings, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, float]]:
    """Apply every enabled augmentation with a size drawn from its range.

    Returns
    -------
    waveform : np.ndarray
        The augmented waveform, the same length as the input.
    applied : dict
        The size each augmentation was applied with.
    """
    applied: dict[str, float] = {}
    if settings.time_stretch.enabled:
        applied["time_stretch_rate"] = rng.uniform(*settings.time_stretch.rate)
        waveform = stretch_time(waveform, applied["time_stretch_rate"])
    if settings.pitch_shift.enabled:
        applied["pitch_shift_semitones"] = rng.uniform(*settings.pitch_shift.semitones)
        waveform = shift_pitch(waveform, sample_rate, applied["pitch_shift_semitones"])
    if settings.time_shift.enabled:
        limit = int(settings.time_shift.max_seconds * sample_rate)
        shift = int(rng.integers(-limit, limit + 1))
        applied["time_shift_samples"] = shift
        waveform = shift_time(waveform, shift)
    if settings.gain.enabled:
        applied["gain_db"] = rng.uniform(*settings.gain.db)
        waveform = apply_gain(waveform, applied["gain_db"])
    if settings.noise.enabled:
        applied["noise_snr_db"] = rng.uniform(*settings.noise.snr_db)
        waveform = add_noise(waveform, applied["noise_snr_db"], rng)
    return waveform.astype(np.float32), applied


def _augment_chunk(job: tuple) -> list[dict[str, np.ndarray]]:
    # Runs in a worker: every copy of one chunk of training windows.
    windows_path, rows, settings, spectrogram_settings = job
    n_frames = spectrogram_settings.window_frames
    source = read_windows(windows_path, ("waveforms", *_KEPT_FIELDS), rows)
    copies = []
    for copy in range(settings.copies):
        waveforms, spectrograms = [], []
        for row, waveform in zip(rows, source["waveforms"]):
            rng = np.random.default_rng([settings.seed, int(row), copy])
            augmented, _ = augment_waveform(waveform, spectrogram_settings.sample_rate, settings, rng)
            waveforms.append(augmented)
            spectrograms.append(log_mel_spectrogram(augmented, spectrogram_settings)[:, :n_frames])
        copies.append(
            {
                "spectrograms": np.stack(spectrograms),
                # Kept for embedding models, which take audio, not spectrograms.
                "waveforms": np.stack(waveforms),
                **{name: source[name] for name in _KEPT_FIELDS},
            }
        )
    return copies


def build_augmented_set(
    windows_path: str | Path, split: pd.DataFrame | str | Path, out_path: str | Path, settings: AugmentSettings
) -> int:
    """The augment stage: write ``settings.copies`` augmented copies of every training window.

    Only windows of recordings that some fold's model trains on
    (:func:`rainforest.split.trained_rows` of ``split``, the table or the CSV
    file that the split stage writes) are used: all of them when
    cross-validating, none of a holdout's validation recordings. A fold's
    model trains only on the copies of its own training recordings. Spectrograms are computed with the settings
    the window set was made with. Copy ``c`` of window ``i`` draws its
    augmentation sizes from a generator seeded by ``(seed, i, c)``, and chunks
    are written in order, so the output depends neither on processing order
    nor on ``settings.workers``.

    Returns
    -------
    int
        The number of augmented windows written.
    """
    spectrogram_settings = read_spectrogram_settings(windows_path)
    features, n_frames = spectrogram_settings.features, spectrogram_settings.window_frames
    attrs = read_window_attrs(windows_path) | {
        # Not the worker count: it does not change the output.
        "augment": json.dumps(settings.model_dump(exclude={"workers"}), sort_keys=True)
    }
    split = split if isinstance(split, pd.DataFrame) else read_split(split)
    rows = trained_rows(read_windows(windows_path, ("recording_ids",))["recording_ids"], split)
    log.info("augmenting %d training windows x %d copies on %d workers", len(rows), settings.copies, settings.workers)
    chunks = np.array_split(rows, max(1, len(rows) // WINDOWS_PER_JOB)) if settings.copies and len(rows) else []
    jobs = [(windows_path, chunk, settings, spectrogram_settings) for chunk in chunks]
    n_samples = window_span_samples(n_frames, features)
    writer = WindowWriter(
        out_path,
        n_mels=features.n_mels,
        n_frames=n_frames,
        n_species=len(attrs["species"]),
        n_samples=n_samples,
        attrs=attrs,
    )
    with writer, ordered_map(settings.workers) as map_in_order:
        results = map_in_order(_augment_chunk, jobs)
        for copies in tqdm(results, total=len(jobs), desc="augment", unit="chunk", disable=None):
            for windows in copies:
                writer.append(**windows)
    log.info("augment: wrote %d windows to %s", writer.n_windows, out_path)
    return writer.n_windows
