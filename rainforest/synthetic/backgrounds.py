"""Backgrounds: coloured noise, insect choruses, wind and rain, mixed.

The steady components (coloured noise, insect choruses, wind) are built as
one-sided spectra on the recording's frequency grid and summed, so a whole
background costs a single inverse FFT; only rain bursts, which are short,
are made in the time domain.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft as sfft

from rainforest.synthetic.noise import band_amplitude, band_noise, random_spectrum, unit_rms

#: Background RMS is drawn log-uniformly from this range (a candidate for settings).
BACKGROUND_RMS_RANGE = (0.01, 0.05)


def _unit_power(spectrum: np.ndarray, n_samples: int) -> np.ndarray:
    """Scale one-sided spectrum bins (none at DC) so the signal has mean square 1."""
    parts = spectrum.view(np.float32) if spectrum.dtype == np.complex64 else spectrum.view(np.float64)
    energy = 2.0 * float(np.sum(np.square(parts, dtype=np.float64)))  # no BLAS: same sum everywhere
    return spectrum * np.float32(n_samples / np.sqrt(energy)) if energy > 0 else spectrum


def coloured_noise_spectrum(n_samples: int, sample_rate: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """One-sided spectrum of unit-power noise with power ``1/f**alpha`` (flat below 20 Hz)."""
    amplitude = np.exp(np.float32(-alpha / 2) * _log_frequencies(n_samples, sample_rate))
    amplitude[0] = 0.0
    # Scaled by the expected power (E|value|^2 = 2/3 for uniform parts): cheap,
    # and the background is normalised exactly once all components are mixed.
    expected = 2.0 * (2.0 / 3.0) * float(np.sum(np.square(amplitude, dtype=np.float64)))
    return random_spectrum(amplitude * np.float32(n_samples / np.sqrt(expected)), rng)


@functools.lru_cache(maxsize=4)
def _log_frequencies(n_samples: int, sample_rate: int) -> np.ndarray:
    """``log(max(f, 20 Hz))`` on the recording's rfft grid (cached; read-only)."""
    freqs = np.arange(n_samples // 2 + 1, dtype=np.float32) * np.float32(sample_rate / n_samples)
    log_freqs = np.log(np.maximum(freqs, np.float32(20.0)))
    log_freqs.flags.writeable = False
    return log_freqs


def insect_chorus_spectrum(n_samples: int, sample_rate: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """An insect chorus: a steady narrow band with fast amplitude modulation.

    The band is 0.4-3 kHz wide, centred at 2-14 kHz; the AM (20-150 Hz,
    depth 0.4-1) is applied in the frequency domain as two shifted copies of
    the carrier's spectrum.

    Returns
    -------
    first_bin : int
        Index of the first bin of ``spectrum`` in the recording's spectrum.
    spectrum : numpy.ndarray
        complex64 bins, unit power.
    """
    df = sample_rate / n_samples
    centre = rng.uniform(2000.0, min(14000.0, 0.4 * sample_rate))
    width = rng.uniform(400.0, min(3000.0, centre))
    rolloff = width / 10
    f_low, f_high = centre - width / 2, centre + width / 2
    rate, depth = rng.uniform(20.0, 150.0), rng.uniform(0.4, 1.0)
    shift = max(int(round(rate / df)), 1)
    lo = max(int((f_low - 3 * rolloff) / df), shift + 1)
    hi = min(int((f_high + 3 * rolloff) / df) + 1, n_samples // 2 + 1 - shift)
    carrier = random_spectrum(band_amplitude(np.arange(lo, hi) * df, f_low, f_high, rolloff), rng)
    # x(t) * ((1 - d/2) - (d/2) cos(2 pi r t + phi)) in the frequency domain.
    phase = np.complex64(np.exp(1j * rng.uniform(0, 2 * np.pi)))
    spectrum = np.zeros(hi - lo + 2 * shift, dtype=np.complex64)
    spectrum[shift:-shift] += np.float32(1 - depth / 2) * carrier
    spectrum[2 * shift :] -= np.float32(depth / 4) * phase * carrier
    spectrum[: -2 * shift] -= np.float32(depth / 4) * np.conj(phase) * carrier
    return lo - shift, _unit_power(spectrum, n_samples)


def _smooth_random(n_samples: int, sample_rate: float, knot_seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A slowly varying curve: Gaussian knots every ``knot_seconds``, cosine-interpolated."""
    duration = n_samples / sample_rate
    knots = rng.standard_normal(int(duration / knot_seconds) + 2)
    control_t = np.arange(0.0, duration + 0.01, 0.01)  # 100 Hz control rate
    position = control_t / knot_seconds
    index = position.astype(np.int64)
    weight = 0.5 - 0.5 * np.cos(np.pi * (position - index))
    control = knots[index] * (1 - weight) + knots[index + 1] * weight
    return np.interp(np.arange(n_samples) / sample_rate, control_t, control)


def wind_spectrum(n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Wind: low-pass noise (cut-off 100-600 Hz) with slow gusts.

    The gusts multiply the noise in the time domain, at an eighth of the
    sample rate; the result's spectrum is returned on the recording's
    frequency grid, starting at DC (bin 0 is zeroed), unit power.
    """
    decimation = 8
    m = -(-n_samples // decimation)
    low_rate = sample_rate / decimation
    cutoff = rng.uniform(100.0, 600.0)
    freqs = np.arange(m // 2 + 1, dtype=np.float32) * np.float32(low_rate / m)
    carrier = sfft.irfft(random_spectrum(band_amplitude(freqs, 10.0, cutoff, cutoff / 3), rng), m)
    gusts = np.exp(rng.uniform(0.4, 1.0) * _smooth_random(m, low_rate, rng.uniform(0.7, 3.0), rng))
    spectrum = sfft.rfft((carrier * gusts).astype(np.float32))
    spectrum[0] = 0.0
    return _unit_power(spectrum[: n_samples // 2 + 1], n_samples)


def rain(n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One to four rain bursts: decaying broadband hiss plus droplet clicks.

    Silence outside the bursts; a burst's RMS is about 1 near its onset.
    """
    out = np.zeros(n_samples, dtype=np.float32)
    duration = n_samples / sample_rate
    for _ in range(int(rng.integers(1, 5))):
        length = min(float(rng.uniform(1.5, 8.0)), duration)
        n = int(length * sample_rate)
        start = int(rng.integers(0, n_samples - n + 1))
        t = np.arange(n, dtype=np.float32) / np.float32(sample_rate)
        rise, decay = np.float32(rng.uniform(0.05, 0.6)), np.float32(rng.uniform(0.4, 3.0))
        envelope = np.minimum(t / rise, 1) * np.exp(-np.maximum(t - rise, 0) / decay)
        hiss = band_noise(n, sample_rate, 500.0, min(16000.0, 0.45 * sample_rate), rng=rng, rolloff=800.0)
        n_drops = int(rng.poisson(rng.uniform(20, 200) * length))
        k = int(0.004 * sample_rate)
        kernel = rng.standard_normal(k) * np.exp(-np.arange(k) / (0.0008 * sample_rate))
        positions = rng.integers(0, n - k, n_drops)[:, None] + np.arange(k)
        weights = rng.lognormal(0.0, 0.6, n_drops)[:, None] * kernel
        droplets = np.bincount(positions.ravel(), weights.ravel(), minlength=n).astype(np.float32)
        droplets = unit_rms(droplets) if n_drops else droplets
        level = np.float32(10 ** (rng.uniform(-6, 3) / 20))
        out[start : start + n] += level * envelope * (hiss + np.float32(rng.uniform(0.1, 0.5)) * droplets)
    return out


def synthesize_background(n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A field-recording background with an RMS in :data:`BACKGROUND_RMS_RANGE`.

    Coloured noise (power ``1/f**alpha``, ``alpha`` uniform in [0.5, 2]) is
    always there; one to three insect choruses (p = 0.55), wind (p = 0.45)
    and rain bursts (p = 0.3) are each added at their own random level, so no
    two backgrounds are alike.

    Parameters
    ----------
    n_samples : int
        Length of the recording in samples.
    sample_rate : int
        Samples per second.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        float32 samples.
    """
    spectrum = coloured_noise_spectrum(n_samples, sample_rate, float(rng.uniform(0.5, 2.0)), rng)
    if rng.random() < 0.55:
        for _ in range(int(rng.integers(1, 4))):
            first, chorus = insect_chorus_spectrum(n_samples, sample_rate, rng)
            spectrum[first : first + chorus.size] += np.float32(10 ** (rng.uniform(-12, 3) / 20)) * chorus
    if rng.random() < 0.45:
        gusty = wind_spectrum(n_samples, sample_rate, rng)
        spectrum[: gusty.size] += np.float32(10 ** (rng.uniform(-8, 6) / 20)) * gusty
    mix = sfft.irfft(spectrum, n_samples)
    if rng.random() < 0.3:
        mix += rain(n_samples, sample_rate, rng)
    target = np.exp(rng.uniform(*np.log(BACKGROUND_RMS_RANGE)))
    return (unit_rms(mix) * np.float32(target)).astype(np.float32)
