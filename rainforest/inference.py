"""Scoring whole recordings: slide the window over the spectrogram, keep each species' maximum."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from rainforest.audio import index_recordings, load_recording
from rainforest.config import FeatureSettings
from rainforest.errors import AudioError
from rainforest.features import cut_windows, log_mel_spectrogram, pad_to_length, sliding_window_starts, window_frames, window_span_samples


def window_scores(
    model: keras.Model,
    waveform: np.ndarray,
    sample_rate: int,
    features: FeatureSettings,
    hop_seconds: float,
    batch_size: int,
) -> np.ndarray:
    """Scores of every window slid over a recording, shape (n_windows, n_species).

    The recording's spectrogram is computed once; windows start every
    ``hop_seconds`` (rounded to whole frames) and the last one is aligned to
    the recording's end. A recording shorter than a window is zero-padded.
    """
    n_frames = window_frames(features, sample_rate)
    waveform = pad_to_length(waveform, window_span_samples(n_frames, features))
    spectrogram = log_mel_spectrogram(waveform, sample_rate, features)
    hop_frames = max(1, round(hop_seconds * sample_rate / features.hop_length))
    starts = sliding_window_starts(spectrogram.shape[1], n_frames, hop_frames)
    windows = cut_windows(spectrogram, starts, n_frames)
    return np.concatenate(
        [model(windows[i : i + batch_size], training=False).numpy() for i in range(0, len(windows), batch_size)]
    )


def score_recordings(
    model: keras.Model,
    folder: str | Path,
    recording_ids: list[str],
    sample_rate: int,
    features: FeatureSettings,
    hop_seconds: float,
    batch_size: int,
) -> np.ndarray:
    """Per-species score of each recording: the maximum over its windows.

    Returns
    -------
    np.ndarray
        Shape (len(recording_ids), n_species), rows in the given order.

    Raises
    ------
    AudioError
        If a recording has no audio file in ``folder``, or cannot be decoded.
    """
    audio = index_recordings(folder)
    missing = [r for r in recording_ids if r not in audio]
    if missing:
        raise AudioError(
            f"{folder}: {len(missing)} recording(s) listed in sample_submission.csv have no audio "
            f"(first: {', '.join(missing[:5])}); add the files or remove their rows"
        )
    scores = [
        window_scores(
            model, load_recording(audio[r], sample_rate), sample_rate, features, hop_seconds, batch_size
        ).max(axis=0)
        for r in tqdm(recording_ids, desc="submit", unit="rec", disable=None)
    ]
    return np.stack(scores)
