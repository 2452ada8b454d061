"""Call synthesis: the samples of one call, and the variation between calls.

:func:`synthesize_call` turns a call shape, band and duration into unit-power
samples (a pure function of its arguments and the RNG); :func:`jitter_call`
draws one call of a species from its model, :func:`lookalike_call` a call of
another animal in the same band.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.fft as sfft

from rainforest.synthetic.call_models import CALL_SHAPES, CallShape, SpeciesCallModel, draw_call_shape
from rainforest.synthetic.noise import band_noise, fast_length

# Constants (candidates for settings).

#: Standard deviation of the per-call pitch factor, and its hard limit.
PITCH_JITTER = 0.02
PITCH_JITTER_LIMIT = 0.05
#: Per-call jitter of pulse / AM / click rates (relative standard deviation).
RATE_JITTER = 0.04
#: Fade in/out of each call, seconds (at most a tenth of the call).
FADE_SECONDS = 0.01
#: Lowest frequency a call may occupy, Hz; highest is this share of Nyquist.
MIN_CALL_FREQUENCY = 50.0
MAX_CALL_NYQUIST_SHARE = 0.95


def _sweep_profile(tau: np.ndarray, sweep: str, curvature: float) -> np.ndarray:
    """Position in the band (0..1) over normalised time ``tau`` (0..1)."""
    if sweep == "up":
        return tau**curvature
    if sweep == "down":
        return 1.0 - tau**curvature
    return np.sin(np.pi * tau) ** curvature  # arch


def _phase(frequency: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    return 2 * np.pi * np.cumsum(frequency) / sample_rate + rng.uniform(0, 2 * np.pi)


def _harmonic_frequencies(f_low: float, f_high: float, n_harmonics: int, margin: float) -> np.ndarray:
    """Multiples of a fundamental that fall inside the band shrunk by ``margin``.

    The fundamental is chosen so that about ``n_harmonics`` multiples fit; when
    the band spans an octave or more, it is the band's lowest frequency.
    """
    lo, hi = f_low * (1 + margin), f_high / (1 + margin)
    if hi <= lo:
        return np.array([(f_low + f_high) / 2])
    f0 = max((hi - lo) / max(n_harmonics - 1, 1), 1.0)
    if lo <= f0:
        f0 = lo
    k = np.arange(np.ceil(lo / f0), np.floor(hi / f0) + 1)
    if k.size == 0:
        return np.array([(lo + hi) / 2])
    return k * f0


def _stack(
    n: int,
    frequencies: np.ndarray,
    pitch: np.ndarray,
    tilt_db: float,
    sample_rate: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sum of sinusoids at ``frequencies * pitch(t)`` with a spectral tilt."""
    out = np.zeros(n)
    base_phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    for i, f in enumerate(frequencies):
        amplitude = 10 ** (-tilt_db * i / 20)
        out += amplitude * np.sin(f * base_phase + rng.uniform(0, 2 * np.pi))
    return out


def synthesize_call(
    shape_params: CallShape,
    duration: float,
    f_low: float,
    f_high: float,
    *,
    sample_rate: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Synthesise one call occupying the band [f_low, f_high].

    Parameters
    ----------
    shape_params : CallShape
        The call's shape and its parameters.
    duration : float
        Length of the call, s.
    f_low, f_high : float
        The band the call occupies, Hz (``0 < f_low < f_high < sample_rate/2``).
    sample_rate : int
        Samples per second.
    rng : numpy.random.Generator
        Source of phases and noise.

    Returns
    -------
    numpy.ndarray
        ``round(duration * sample_rate)`` float64 samples with unit power
        (mean square 1), faded in and out over :data:`FADE_SECONDS`.
    """
    n = max(int(round(duration * sample_rate)), 16)
    t = np.arange(n) / sample_rate
    tau = t / (n / sample_rate)
    bandwidth = f_high - f_low
    s = shape_params
    if s.kind == "whistle":
        position = _sweep_profile(tau, s.sweep, s.curvature)
        vibrato = s.vibrato_depth * np.sin(2 * np.pi * s.vibrato_rate * t + rng.uniform(0, 2 * np.pi))
        position = np.clip(position * (1 - 2 * s.vibrato_depth) + s.vibrato_depth + vibrato, 0.0, 1.0)
        call = np.sin(_phase(f_low + bandwidth * position, sample_rate, rng))
        call *= np.sin(np.pi * tau) ** 0.5  # swell
    elif s.kind == "harmonic":
        frequencies = _harmonic_frequencies(f_low, f_high, s.n_harmonics, margin=s.glide)
        pitch = 1 + s.glide * (2 * _sweep_profile(tau, s.sweep, 1.0) - 1)
        call = _stack(n, frequencies, pitch, s.tilt_db, sample_rate, rng)
        call *= np.minimum(1.0, 4 * np.minimum(tau, 1 - tau)) ** 0.7  # plateau
    elif s.kind == "trill":
        cycles = t * s.rate
        within = (cycles - np.floor(cycles)) / s.duty  # 0..1 inside a note
        in_note = within < 1.0
        position = _sweep_profile(np.clip(within, 0.0, 1.0), s.sweep, s.curvature)
        call = np.sin(_phase(f_low + bandwidth * position, sample_rate, rng))
        call *= np.where(in_note, np.sin(np.pi * np.clip(within, 0.0, 1.0)) ** 2, 0.0)
    elif s.kind == "croak":
        frequencies = _harmonic_frequencies(f_low, f_high, s.n_harmonics, margin=0.01)
        carrier = _stack(n, frequencies, np.ones(n), s.tilt_db, sample_rate, rng)
        carrier /= np.sqrt(np.mean(carrier**2)) + 1e-12
        noise = band_noise(n, sample_rate, f_low, f_high, rng=rng)
        noise /= np.sqrt(np.mean(noise**2)) + 1e-12
        carrier = np.sqrt(1 - s.noise_share) * carrier + np.sqrt(s.noise_share) * noise
        am = (0.5 - 0.5 * np.cos(2 * np.pi * s.rate * t + rng.uniform(0, 2 * np.pi))) ** s.sharpness
        call = carrier * am
    elif s.kind == "clicks":
        period = 1.0 / s.rate
        n_clicks = max(int(duration / period), 1)
        times = (np.arange(n_clicks) + 0.5 + rng.uniform(-0.2, 0.2, n_clicks)) * period
        positions = np.clip((times * sample_rate).astype(int), 0, n - 1)
        k = max(int(5 * s.click_seconds * sample_rate), 4)
        n_fft = fast_length(n + k)
        impulses = np.zeros(n_fft)
        np.add.at(impulses, positions, rng.lognormal(0.0, 0.3, n_clicks))
        kernel = rng.standard_normal(k) * np.exp(-np.arange(k) / (s.click_seconds * sample_rate))
        spectrum = sfft.rfft(impulses) * sfft.rfft(kernel, n_fft)
        freqs = np.arange(spectrum.size) * (sample_rate / n_fft)
        spectrum[(freqs < f_low) | (freqs > f_high)] = 0.0
        call = sfft.irfft(spectrum, n_fft)[:n]
    else:
        raise ValueError(f"unknown call shape {s.kind!r}; expected one of {CALL_SHAPES}")
    call = apply_fade(call, sample_rate)
    power = np.mean(call**2)
    return call / np.sqrt(power) if power > 0 else call


def apply_fade(samples: np.ndarray, sample_rate: int, seconds: float = FADE_SECONDS) -> np.ndarray:
    """Raised-cosine fade in and out over ``seconds`` (at most a tenth of the signal)."""
    m = min(int(seconds * sample_rate), samples.size // 10)
    if m < 2:
        return samples
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
    out = samples.copy()
    out[:m] *= ramp
    out[-m:] *= ramp[::-1]
    return out


@dataclass(frozen=True)
class CallVariant:
    """One concrete call: a shape with its band (Hz) and duration (s)."""

    shape: CallShape
    f_low: float
    f_high: float
    duration: float


def _clip_band(f_low: float, f_high: float, sample_rate: int) -> tuple[float, float]:
    top = MAX_CALL_NYQUIST_SHARE * sample_rate / 2
    f_low = float(np.clip(f_low, MIN_CALL_FREQUENCY, top - 50.0))
    f_high = float(np.clip(f_high, f_low + 50.0, top))
    return f_low, f_high


def jitter_call(
    model: SpeciesCallModel, sample_rate: int, max_duration: float, rng: np.random.Generator
) -> CallVariant:
    """One call of a species: its model with per-call jitter.

    The pitch (band) moves by a factor ``1 + N(0, PITCH_JITTER)`` (clipped at
    :data:`PITCH_JITTER_LIMIT`); the duration is triangular on the model's
    ``[duration_low, duration_high]`` with its mode at the median; pulse/AM/
    click rates move by ``N(0, RATE_JITTER)``.
    """
    pitch = 1 + float(np.clip(rng.normal(0, PITCH_JITTER), -PITCH_JITTER_LIMIT, PITCH_JITTER_LIMIT))
    f_low, f_high = _clip_band(model.f_low * pitch, model.f_high * pitch, sample_rate)
    low, mode, high = model.duration_low, model.duration_median, model.duration_high
    duration = float(rng.triangular(low, mode, high)) if high > low else mode
    duration = float(np.clip(duration, 0.05, max_duration))
    shape = model.shape
    if shape.rate > 0:
        shape = replace(shape, rate=shape.rate * float(np.exp(rng.normal(0, RATE_JITTER))))
    return CallVariant(shape, f_low, f_high, duration)


def lookalike_call(
    model: SpeciesCallModel, sample_rate: int, max_duration: float, rng: np.random.Generator
) -> CallVariant:
    """A call of another animal that shares (part of) a species' band.

    Half the lookalikes have a different call shape with fresh parameters; the
    other half keep the species' shape but differ clearly in modulation: a
    pulse/AM/click rate 1.8-3x higher or lower, the opposite sweep, a different
    harmonic count, and a duration 1.6-2.5x longer or shorter. The band is
    shifted by up to a third of the species' bandwidth and scaled 0.7-1.3x, so
    it always overlaps the species' band.
    """
    width = model.f_high - model.f_low
    centre = (model.f_low + model.f_high) / 2 + rng.uniform(-0.33, 0.33) * width
    half = width * rng.uniform(0.7, 1.3) / 2
    f_low, f_high = _clip_band(centre - half, centre + half, sample_rate)
    duration = model.duration_median * float(np.exp(rng.uniform(-0.4, 0.4)))
    if rng.random() < 0.5:
        kinds = [k for k in CALL_SHAPES if k != model.shape.kind]
        shape = draw_call_shape(str(rng.choice(kinds)), rng)
    else:
        shape = model.shape
        factor = float(rng.uniform(1.8, 3.0))
        factor = factor if rng.random() < 0.5 else 1 / factor
        flipped = {"up": "down", "down": "up", "arch": str(rng.choice(["up", "down"]))}[shape.sweep]
        shape = replace(
            shape,
            rate=shape.rate * factor,
            sweep=flipped,
            n_harmonics=max(2, shape.n_harmonics + int(rng.choice([-2, 2, 3]))),
            vibrato_rate=float(rng.uniform(10.0, 20.0)) if shape.kind == "whistle" else shape.vibrato_rate,
            vibrato_depth=0.08 if shape.kind == "whistle" else shape.vibrato_depth,
        )
        duration = model.duration_median * float(rng.uniform(1.6, 2.5)) ** float(rng.choice([-1, 1]))
    duration = float(np.clip(duration, 0.05, max_duration))
    return CallVariant(shape, f_low, f_high, duration)
