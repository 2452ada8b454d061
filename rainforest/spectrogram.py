"""Log-mel spectrograms and the geometry of windows on them.

Spectrograms are computed without centre padding (``center=False``), so frame
``i`` covers samples ``[i * hop, i * hop + n_fft)``. A window of ``F`` frames
starting at frame ``k`` is then exactly the spectrogram of the waveform slice
``[k * hop, k * hop + window_span_samples(F))``: cutting a window from a
recording's spectrogram and computing the spectrogram of the cut waveform give
the same numbers, which keeps ``etl``, ``augment`` and ``submit`` consistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

import librosa
import numpy as np
import scipy.fft

from rainforest.config import FeatureSettings, SpectrogramSettings

#: Floor of the power spectrogram before the logarithm: silence maps to
#: -100 dB instead of -inf.
POWER_FLOOR = 1e-10
#: The same floor in dB, applied after the logarithm too: float32 log10 of
#: POWER_FLOOR is -100.00001 on some CPUs' SIMD kernels, -100 on others.
FLOOR_DB = -100.0

#: Frames transformed at a time: bounds the memory of long recordings.
FRAME_BLOCK = 4096


@lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    return librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)


def window_span_samples(n_frames: int, features: FeatureSettings) -> int:
    """Number of waveform samples that ``n_frames`` frames cover."""
    return (n_frames - 1) * features.hop_length + features.n_fft


def recording_frames(n_samples: int, features: FeatureSettings) -> int:
    """Number of spectrogram frames of a recording of ``n_samples`` (at least one)."""
    return 1 + max(0, n_samples - features.n_fft) // features.hop_length


#: Frames windowed and transformed at a time within a block: their copies stay
#: in the CPU's cache (twice as fast as the whole block at once, same numbers).
FFT_FRAMES = 128


def _log_mel_of_frames(frames: np.ndarray, spectrogram_settings: SpectrogramSettings) -> np.ndarray:
    # (..., n_fft) waveform frames -> (..., n_mels) log-mel. A float32 real FFT
    # of the frames: about 3x faster than librosa.stft, which works in small
    # blocks and returns the same values to float32 precision. The mel
    # projection runs on the whole block, whose shape fixes its summation order.
    features = spectrogram_settings.features
    hann = _hann(features.n_fft)
    power = np.empty((*frames.shape[:-1], features.n_fft // 2 + 1), dtype=np.float32)
    for first in range(0, frames.shape[-2], FFT_FRAMES):
        spectrum = scipy.fft.rfft(frames[..., first : first + FFT_FRAMES, :] * hann, axis=-1)
        np.add(np.square(spectrum.real), np.square(spectrum.imag), out=power[..., first : first + FFT_FRAMES, :])
    basis = _mel_basis(spectrogram_settings.sample_rate, features.n_fft, features.n_mels, features.fmin, features.fmax)
    mel = power @ basis.T
    return np.maximum(10.0 * np.log10(np.maximum(mel, POWER_FLOOR)), np.float32(FLOOR_DB))


def _frames(waveform: np.ndarray, features: FeatureSettings) -> np.ndarray:
    # (..., n_samples) -> (..., n_frames, n_fft): frame i is samples
    # [i * hop, i * hop + n_fft), a view: nothing is copied.
    waveform = np.asarray(waveform, dtype=np.float32)
    short = max(0, features.n_fft - waveform.shape[-1])
    waveform = np.pad(waveform, [(0, 0)] * (waveform.ndim - 1) + [(0, short)])
    return np.lib.stride_tricks.sliding_window_view(waveform, features.n_fft, axis=-1)[..., :: features.hop_length, :]


def log_mel_spectrogram(waveform: np.ndarray, spectrogram_settings: SpectrogramSettings) -> np.ndarray:
    """Log-mel power spectrogram in dB, float32.

    Parameters
    ----------
    waveform
        Shape (n_samples,), or (n_waveforms, n_samples) for a batch of
        waveforms of the same length.

    Returns
    -------
    np.ndarray
        Shape (n_mels, n_frames), or (n_waveforms, n_mels, n_frames). A
        waveform shorter than one FFT frame is zero-padded to one frame.
        Values are ``10 * log10(max(power, POWER_FLOOR))`` against a fixed
        reference of 1, so levels are comparable across recordings and
        silence stays finite. Frames use a periodic Hann window and no
        centre padding.
    """
    features = spectrogram_settings.features
    frames = _frames(waveform, features)
    n_frames = frames.shape[-2]
    spectrogram = np.empty((*frames.shape[:-2], features.n_mels, n_frames), dtype=np.float32)
    for first in range(0, n_frames, FRAME_BLOCK):
        block = _log_mel_of_frames(frames[..., first : first + FRAME_BLOCK, :], spectrogram_settings)
        spectrogram[..., first : first + block.shape[-2]] = np.swapaxes(block, -1, -2)
    return spectrogram


def spectrogram_blocks(
    pieces: Iterable[np.ndarray], spectrogram_settings: SpectrogramSettings, block_frames: int = FRAME_BLOCK
) -> Iterator[np.ndarray]:
    """The log-mel spectrogram of a waveform that arrives in pieces, ``block_frames`` frames at a time.

    Only one block's samples are held at a time, so memory stays flat however
    long the waveform. Joined along time, the blocks are
    :func:`log_mel_spectrogram` of the whole waveform; with the default
    ``block_frames`` they are its numbers bit for bit (it computes the same
    blocks).

    Parameters
    ----------
    pieces
        Consecutive pieces of a 1-D waveform, of any lengths.

    Yields
    ------
    np.ndarray
        Shape (n_mels, block_frames); the last block may be narrower.

    Examples
    --------
    >>> from rainforest.config import FeatureSettings
    >>> features = FeatureSettings(n_fft=512, hop_length=256, n_mels=16, fmin=50.0, fmax=8000.0, window_seconds=1.0)
    >>> settings = SpectrogramSettings(16000, features)
    >>> waveform = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    >>> blocks = list(spectrogram_blocks(np.array_split(waveform, 7), settings, block_frames=20))
    >>> [block.shape[1] for block in blocks]
    [20, 20, 20, 1]
    >>> bool(np.allclose(np.concatenate(blocks, axis=1), log_mel_spectrogram(waveform, settings), atol=1e-4))
    True
    """
    features = spectrogram_settings.features
    step, span = block_frames * features.hop_length, window_span_samples(block_frames, features)
    buffer, yielded = np.zeros(0, dtype=np.float32), False
    for piece in pieces:
        buffer = np.concatenate([buffer, np.asarray(piece, dtype=np.float32)])
        while len(buffer) >= span:
            yield log_mel_spectrogram(buffer[:span], spectrogram_settings)
            buffer, yielded = buffer[step:], True
    # What is left holds the last frames, if it is one FFT frame long (a
    # waveform shorter than that is padded to one frame, as the whole is).
    if len(buffer) >= features.n_fft or not yielded:
        yield log_mel_spectrogram(buffer, spectrogram_settings)


def frame_times(frames: np.ndarray | int, spectrogram_settings: SpectrogramSettings) -> np.ndarray:
    """Start time in seconds of the given frame indices."""
    hop_length, sample_rate = spectrogram_settings.features.hop_length, spectrogram_settings.sample_rate
    return np.asarray(frames, dtype=np.float64) * hop_length / sample_rate


def event_window_start(
    t_min: float, t_max: float, *, n_recording_frames: int, spectrogram_settings: SpectrogramSettings
) -> int:
    """First frame of the window centred on an event, clamped inside the recording.

    Parameters
    ----------
    t_min, t_max
        The event's start and end in seconds.
    n_recording_frames
        Frames in the recording's spectrogram.
    spectrogram_settings
        What the spectrogram and its windows (``window_frames`` long) are made with.
    """
    features, n_window_frames = spectrogram_settings.features, spectrogram_settings.window_frames
    centre_sample = (t_min + t_max) / 2 * spectrogram_settings.sample_rate
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
