"""Log-mel spectrograms and the geometry of windows on them.

Spectrograms are computed without centre padding (``center=False``), so frame
``i`` covers samples ``[i * hop, i * hop + n_fft)``. A window of ``F`` frames
starting at frame ``k`` is then exactly the spectrogram of the waveform slice
``[k * hop, k * hop + window_span_samples(F))``: cutting a window from a
recording's spectrogram and computing the spectrogram of the cut waveform give
the same numbers, which keeps ``etl``, ``augment`` and ``submit`` consistent.
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np

from rainforest.config import FeatureSettings

#: Floor of the power spectrogram before the logarithm: silence maps to
#: -100 dB instead of -inf.
POWER_FLOOR = 1e-10


@lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def window_frames(features: FeatureSettings, sample_rate: int) -> int:
    """Number of spectrogram frames in one window (at least one)."""
    return max(1, round(features.window_seconds * sample_rate / features.hop_length))


def window_span_samples(n_frames: int, features: FeatureSettings) -> int:
    """Number of waveform samples that ``n_frames`` frames cover."""
    return (n_frames - 1) * features.hop_length + features.n_fft


def pad_to_length(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad ``waveform`` at the end to at least ``n_samples`` samples."""
    if len(waveform) >= n_samples:
        return waveform
    return np.pad(waveform, (0, n_samples - len(waveform)))


def log_mel_spectrogram(waveform: np.ndarray, sample_rate: int, features: FeatureSettings) -> np.ndarray:
    """Log-mel power spectrogram in dB, shape (n_mels, n_frames), float32.

    A waveform shorter than one FFT frame is zero-padded to one frame. Values
    are ``10 * log10(max(power, POWER_FLOOR))`` against a fixed reference of 1,
    so levels are comparable across recordings and silence stays finite.
    """
    waveform = pad_to_length(np.asarray(waveform, dtype=np.float32), features.n_fft)
    stft = librosa.stft(
        waveform, n_fft=features.n_fft, hop_length=features.hop_length, center=False, window="hann"
    )
    power = stft.real**2 + stft.imag**2
    basis = _mel_basis(sample_rate, features.n_fft, features.n_mels, features.fmin, features.fmax)
    mel = basis @ power
    return (10.0 * np.log10(np.maximum(mel, POWER_FLOOR))).astype(np.float32)


def frame_times(frames: np.ndarray | int, sample_rate: int, features: FeatureSettings) -> np.ndarray:
    """Start time in seconds of the given frame indices."""
    return np.asarray(frames, dtype=np.float64) * features.hop_length / sample_rate


def event_window_start(
    t_min: float,
    t_max: float,
    n_recording_frames: int,
    n_window_frames: int,
    sample_rate: int,
    features: FeatureSettings,
) -> int:
    """First frame of the window centred on an event, clamped inside the recording.

    Parameters
    ----------
    t_min, t_max
        The event's start and end in seconds.
    n_recording_frames
        Frames in the recording's spectrogram.
    n_window_frames
        Frames in one window.
    """
    centre_sample = (t_min + t_max) / 2 * sample_rate
    # Frame i is centred on sample i * hop + n_fft / 2.
    centre_frame = (centre_sample - features.n_fft / 2) / features.hop_length
    start = int(round(centre_frame - (n_window_frames - 1) / 2))
    return int(np.clip(start, 0, max(0, n_recording_frames - n_window_frames)))


def sliding_window_starts(n_recording_frames: int, n_window_frames: int, hop_frames: int) -> np.ndarray:
    """First frames of windows slid over a recording every ``hop_frames``.

    The last window is aligned to the recording's end so its tail is covered;
    a recording shorter than a window yields the single start 0.
    """
    last = max(0, n_recording_frames - n_window_frames)
    starts = np.arange(0, last + 1, max(1, hop_frames))
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def cut_windows(spectrogram: np.ndarray, starts: np.ndarray, n_window_frames: int) -> np.ndarray:
    """Stack the windows starting at ``starts``: shape (n_windows, n_mels, n_window_frames)."""
    views = np.lib.stride_tricks.sliding_window_view(spectrogram, n_window_frames, axis=1)
    return np.ascontiguousarray(views[:, starts].transpose(1, 0, 2))
