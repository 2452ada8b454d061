"""Band-limited Gaussian noise and the FFT helpers behind it.

Shared by :mod:`rainforest.synthetic.call_synthesis` (croaks, clicks) and
:mod:`rainforest.synthetic.backgrounds` (every component).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft


def fast_length(n: int) -> int:
    """A length >= n whose FFT is fast (random call lengths can be prime)."""
    return sfft.next_fast_len(int(n), real=True)


def random_spectrum(amplitude: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random complex values times ``amplitude``: the spectrum of shaped noise.

    Real and imaginary parts are uniform on [-1, 1), three times cheaper to
    draw than Gaussians; every time-domain sample sums many independent bins,
    so the noise is Gaussian all the same.
    """
    values = rng.random(2 * amplitude.size, dtype=np.float32)
    values *= np.float32(2.0)
    values -= np.float32(1.0)
    return values.view(np.complex64) * amplitude.astype(np.float32)


def unit_rms(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to RMS 1 (returned as it is when silent)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return x / rms if rms > 0 else x


def band_amplitude(freqs: np.ndarray, f_low: float, f_high: float, rolloff: float) -> np.ndarray:
    """1 inside [f_low, f_high], Gaussian skirts of width ``rolloff`` outside."""
    if rolloff <= 0:
        return ((freqs >= f_low) & (freqs <= f_high)).astype(np.float32)
    distance = np.maximum(np.maximum(f_low - freqs, freqs - f_high), 0.0)
    return np.exp(-0.5 * (distance / rolloff) ** 2).astype(np.float32)


def band_noise(
    n_samples: int, sample_rate: int, f_low: float, f_high: float, *, rng: np.random.Generator, rolloff: float = 0.0
) -> np.ndarray:
    """Unit-RMS Gaussian noise in [f_low, f_high] (soft skirts of ``rolloff`` Hz)."""
    n_fft = fast_length(n_samples)
    freqs = np.arange(n_fft // 2 + 1, dtype=np.float32) * np.float32(sample_rate / n_fft)
    spectrum = random_spectrum(band_amplitude(freqs, f_low, f_high, rolloff), rng)
    spectrum[0] = 0.0
    return unit_rms(sfft.irfft(spectrum, n_fft)[:n_samples])
