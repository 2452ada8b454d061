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


def aggregate_windows(scores: np.ndarray, method: str, top_k: int) -> np.ndarray:
    """One score per species from a recording's window scores (n_windows, n_species).

    ``max`` keeps the best window: one clear call is enough. ``mean_top_k``
    averages the ``top_k`` best windows (all of them if fewer), so a single
    loud lookalike sways the score less.
    """
    if method == "max":
        return scores.max(axis=0)
    k = min(top_k, len(scores))
    return np.sort(scores, axis=0)[-k:].mean(axis=0)


def score_recordings(
    model: keras.Model,
    folder: str | Path,
    recording_ids: list[str],
    sample_rate: int,
    features: FeatureSettings,
    hop_seconds: float,
    batch_size: int,
    aggregation: str = "max",
    top_k: int = 1,
) -> np.ndarray:
    """Per-species score of each recording, aggregated over its windows
    (see :func:`aggregate_windows`).

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
        aggregate_windows(
            window_scores(model, load_recording(audio[r], sample_rate), sample_rate, features, hop_seconds, batch_size),
            aggregation,
            top_k,
        )
        for r in tqdm(recording_ids, desc="submit", unit="rec", disable=None)
    ]
    return np.stack(scores)
