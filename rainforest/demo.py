"""Synthetic demo data in the competition's layout.

The demo dataset lets the whole pipeline run without the (large, licensed)
competition audio. It imitates the Rainforest Connection Species Audio
Detection data: 24 species whose frequency bands and call durations are the
real ones (see ``resources/species_profiles.csv``), calls of several distinct
shapes, varied backgrounds (coloured noise, rain, insect choruses, wind),
low-SNR calls and lookalike calls of other animals in the same bands.

SNR, throughout, is broadband: ``10*log10(P_call / P_background)`` with
``P`` the mean square over the samples the call spans, all frequencies
included. A narrow-band call at -12 dB can therefore stand out in its band
when the background's power lies elsewhere (low-frequency noise, wind), and
vanish when it does not.

Layout written by :func:`make_demo_dataset`::

    out_dir/
        train/<recording_id>.flac     mono PCM_16 FLAC
        test/<recording_id>.flac
        train_tp.csv                  real calls in train recordings
        train_fp.csv                  lookalike calls, named after the species
                                      whose band they share
        sample_submission.csv         recording_id,s0..s{N-1}; every value 0.5
        test_ground_truth.csv         real calls in test recordings (not part
                                      of the competition layout)

The middle of the module is pure functions on arrays (:func:`synthesize_call`,
:func:`synthesize_background`, :func:`render_recording`); files are read and
written only at the edges (:func:`load_species_profiles`,
:func:`make_demo_dataset`).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.fft as sfft
import soundfile as sf
from tqdm import tqdm

from rainforest.config import DemoSettings
from rainforest.errors import LabelError

# ---------------------------------------------------------------------------
# Constants (candidates for settings; see the module's report).
# ---------------------------------------------------------------------------

#: Columns of train_tp.csv, train_fp.csv and test_ground_truth.csv.
EVENT_COLUMNS = ["recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max"]
#: Columns of the species profile table.
PROFILE_COLUMNS = [
    "species_id",
    "n_events",
    "f_min",
    "f_max",
    "duration_median",
    "duration_q10",
    "duration_q90",
    "songtype_id",
]
#: The packaged profile table, derived from the competition's train_tp.csv.
DEFAULT_PROFILES_PATH = Path(__file__).parent / "resources" / "species_profiles.csv"

#: Call shapes; species ``i`` gets ``CALL_SHAPES[i % len(CALL_SHAPES)]``.
CALL_SHAPES = ("whistle", "harmonic", "trill", "croak", "clicks")
#: Seeds the species' fixed shape parameters (independent of ``settings.seed``,
#: so a species sounds the same in every demo dataset).
SPECIES_SHAPE_SEED = 20210101
#: Share of train recordings holding a second species.
SECOND_SPECIES_PROBABILITY = 0.25
#: Inclusive range of calls per species in a recording.
CALLS_PER_SPECIES = (1, 3)
#: Standard deviation of the per-call pitch factor, and its hard limit.
PITCH_JITTER = 0.02
PITCH_JITTER_LIMIT = 0.05
#: Per-call length jitter: durations span at least median * (1 -/+ this).
DURATION_JITTER = 0.2
#: Per-call jitter of pulse / AM / click rates (relative standard deviation).
RATE_JITTER = 0.04
#: Fade in/out of each call, seconds (at most a tenth of the call).
FADE_SECONDS = 0.01
#: Background RMS is drawn log-uniformly from this range.
BACKGROUND_RMS_RANGE = (0.01, 0.05)
#: The recording is scaled down only if its peak would exceed this.
PEAK_LIMIT = 0.9
#: Lowest frequency a call may occupy, Hz; highest is this share of Nyquist.
MIN_CALL_FREQUENCY = 50.0
MAX_CALL_NYQUIST_SHARE = 0.95
#: Attempts at placing a call without overlapping a call of the same group.
PLACEMENT_ATTEMPTS = 30

_SPLITS = ("train", "test")
# RNG stream tags; every seed key has the same length (4) because SeedSequence
# treats trailing zeros as absent, so keys of different lengths could collide.
_STREAM_RECORDING = 1
_STREAM_PLAN = 2
_STREAM_IDS = 3


# ---------------------------------------------------------------------------
# Species profiles
# ---------------------------------------------------------------------------


def species_profiles_from_labels(tp: pd.DataFrame) -> pd.DataFrame:
    """Summarise the competition's true-positive labels per species.

    Parameters
    ----------
    tp : pandas.DataFrame
        The competition's ``train_tp.csv`` (columns ``species_id, songtype_id,
        t_min, f_min, t_max, f_max`` at least).

    Returns
    -------
    pandas.DataFrame
        One row per species, sorted by ``species_id``, with columns
        :data:`PROFILE_COLUMNS`: the number of events, the median ``f_min`` and
        ``f_max`` (Hz), the median, 10 % and 90 % quantiles of the event
        duration ``t_max - t_min`` (s) and the most common ``songtype_id``
        (the smallest on ties). Floats are rounded to 2 decimals.
    """
    missing = {"species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max"} - set(tp.columns)
    if missing:
        raise LabelError(f"labels lack column(s) {', '.join(sorted(missing))}")
    table = tp.assign(duration=tp["t_max"] - tp["t_min"])
    grouped = table.groupby("species_id", sort=True)
    profiles = pd.DataFrame(
        {
            "n_events": grouped.size(),
            "f_min": grouped["f_min"].median(),
            "f_max": grouped["f_max"].median(),
            "duration_median": grouped["duration"].median(),
            "duration_q10": grouped["duration"].quantile(0.1),
            "duration_q90": grouped["duration"].quantile(0.9),
            "songtype_id": grouped["songtype_id"].agg(lambda s: s.mode().min()),
        }
    ).reset_index()
    floats = ["f_min", "f_max", "duration_median", "duration_q10", "duration_q90"]
    profiles[floats] = profiles[floats].astype(float).round(2)
    for column in ("species_id", "n_events", "songtype_id"):
        profiles[column] = profiles[column].astype("int64")
    return profiles[PROFILE_COLUMNS]


def load_species_profiles(path: str | Path | None = None) -> pd.DataFrame:
    """Read a species profile table.

    Parameters
    ----------
    path : str or Path, optional
        The CSV to read; by default the table packaged with the module,
        :data:`DEFAULT_PROFILES_PATH`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PROFILE_COLUMNS`, one row per species, sorted by id.

    Raises
    ------
    LabelError
        If the file is missing, lacks a column, or its species ids are not
        ``0 .. N-1`` (the submission's columns ``s0 .. s{N-1}`` need that).
    """
    path = Path(path) if path is not None else DEFAULT_PROFILES_PATH
    try:
        profiles = pd.read_csv(path)
    except FileNotFoundError:
        raise LabelError(f"{path}: species profile table not found") from None
    missing = [c for c in PROFILE_COLUMNS if c not in profiles.columns]
    if missing:
        raise LabelError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(PROFILE_COLUMNS)}")
    profiles = profiles[PROFILE_COLUMNS].sort_values("species_id").reset_index(drop=True)
    if profiles["species_id"].tolist() != list(range(len(profiles))):
        raise LabelError(f"{path}: species_id must be 0 .. N-1 with one row each")
    bad = profiles[(profiles["f_min"] >= profiles["f_max"]) | (profiles["duration_median"] <= 0)]
    if len(bad):
        raise LabelError(f"{path}: species {bad['species_id'].tolist()} need f_min < f_max and a positive duration")
    return profiles


# ---------------------------------------------------------------------------
# Call models
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallShape:
    """How one kind of call sounds; the band and duration are given separately.

    Attributes
    ----------
    kind : str
        One of :data:`CALL_SHAPES`.
    sweep : str
        ``"up"``, ``"down"`` or ``"arch"``: direction of the frequency sweep
        (whistles, trill notes) or of the pitch glide (harmonic stacks).
    curvature : float
        Exponent shaping the sweep (1 is linear).
    rate : float
        Pulse rate of a trill, AM rate of a croak, click rate of clicks (Hz).
    duty : float
        Share of each pulse period a trill note lasts.
    n_harmonics : int
        Harmonics in a stack, or in a croak's carrier.
    tilt_db : float
        Level drop from one harmonic to the next, dB.
    glide : float
        Relative pitch glide over a harmonic stack.
    vibrato_rate, vibrato_depth : float
        Frequency modulation of whistles (Hz, share of the band).
    sharpness : float
        Exponent sharpening a croak's AM pulses.
    click_seconds : float
        Decay time of one click, s.
    noise_share : float
        Share of band-limited noise in a croak.
    """

    kind: str
    sweep: str = "up"
    curvature: float = 1.0
    rate: float = 0.0
    duty: float = 0.5
    n_harmonics: int = 1
    tilt_db: float = 3.0
    glide: float = 0.0
    vibrato_rate: float = 0.0
    vibrato_depth: float = 0.0
    sharpness: float = 1.0
    click_seconds: float = 0.001
    noise_share: float = 0.0


@dataclass(frozen=True)
class SpeciesCallModel:
    """A species' call: its shape, band (Hz) and durations (s)."""

    species_id: int
    songtype_id: int
    shape: CallShape
    f_low: float
    f_high: float
    duration_median: float
    duration_low: float
    duration_high: float


def draw_call_shape(kind: str, rng: np.random.Generator) -> CallShape:
    """Draw the fixed parameters of a call shape of the given kind.

    Parameters
    ----------
    kind : str
        One of :data:`CALL_SHAPES`.
    rng : numpy.random.Generator
        Source of the parameters.

    Returns
    -------
    CallShape
    """
    if kind == "whistle":
        return CallShape(
            kind,
            sweep=str(rng.choice(["up", "down", "arch"])),
            curvature=float(rng.uniform(0.6, 1.8)),
            vibrato_rate=float(rng.uniform(0.0, 8.0)),
            vibrato_depth=float(rng.uniform(0.0, 0.04)),
        )
    if kind == "harmonic":
        return CallShape(
            kind,
            sweep=str(rng.choice(["up", "down", "arch"])),
            n_harmonics=int(rng.integers(3, 7)),
            tilt_db=float(rng.uniform(0.0, 6.0)),
            glide=float(rng.uniform(0.0, 0.03)),
        )
    if kind == "trill":
        return CallShape(
            kind,
            sweep=str(rng.choice(["up", "down"])),
            curvature=float(rng.uniform(0.7, 1.5)),
            rate=float(rng.uniform(5.0, 25.0)),
            duty=float(rng.uniform(0.35, 0.7)),
        )
    if kind == "croak":
        return CallShape(
            kind,
            rate=float(rng.uniform(8.0, 60.0)),
            n_harmonics=int(rng.integers(4, 11)),
            tilt_db=float(rng.uniform(1.0, 4.0)),
            sharpness=float(rng.uniform(1.5, 4.0)),
            noise_share=float(rng.uniform(0.1, 0.4)),
        )
    if kind == "clicks":
        return CallShape(
            kind,
            rate=float(rng.uniform(15.0, 120.0)),
            click_seconds=float(rng.uniform(0.0005, 0.002)),
        )
    raise ValueError(f"unknown call shape {kind!r}; expected one of {CALL_SHAPES}")


def species_call_models(profiles: pd.DataFrame) -> list[SpeciesCallModel]:
    """Give every species a call model built from its profile.

    The shape kind is ``CALL_SHAPES[species_id % len(CALL_SHAPES)]``, so every
    kind is shared by several species; its parameters come from an RNG seeded
    by :data:`SPECIES_SHAPE_SEED` and the species id, so they are fixed.

    Parameters
    ----------
    profiles : pandas.DataFrame
        A table as returned by :func:`load_species_profiles`.

    Returns
    -------
    list of SpeciesCallModel
        Indexed by species id.
    """
    models = []
    for row in profiles.sort_values("species_id").itertuples(index=False):
        species_id = int(row.species_id)
        rng = np.random.default_rng([SPECIES_SHAPE_SEED, species_id, 0, 1])
        kind = CALL_SHAPES[species_id % len(CALL_SHAPES)]
        median = float(row.duration_median)
        models.append(
            SpeciesCallModel(
                species_id=species_id,
                songtype_id=int(row.songtype_id),
                shape=draw_call_shape(kind, rng),
                f_low=float(row.f_min),
                f_high=float(row.f_max),
                duration_median=median,
                duration_low=min(float(row.duration_q10), median * (1 - DURATION_JITTER)),
                duration_high=max(float(row.duration_q90), median * (1 + DURATION_JITTER)),
            )
        )
    return models


# ---------------------------------------------------------------------------
# Call synthesis
# ---------------------------------------------------------------------------


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
        noise = _band_noise(n, sample_rate, f_low, f_high, rng)
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
        n_fft = _fast_length(n + k)
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


# ---------------------------------------------------------------------------
# Backgrounds
# ---------------------------------------------------------------------------
#
# The steady components (coloured noise, insect choruses, wind) are built as
# one-sided spectra on the recording's frequency grid and summed, so a whole
# background costs a single inverse FFT; only rain bursts, which are short,
# are made in the time domain.


def _fast_length(n: int) -> int:
    """A length >= n whose FFT is fast (random call lengths can be prime)."""
    return sfft.next_fast_len(int(n), real=True)


def _random_spectrum(amplitude: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random complex values times ``amplitude``: the spectrum of shaped noise.

    Real and imaginary parts are uniform on [-1, 1), three times cheaper to
    draw than Gaussians; every time-domain sample sums many independent bins,
    so the noise is Gaussian all the same.
    """
    values = rng.random(2 * amplitude.size, dtype=np.float32)
    values *= np.float32(2.0)
    values -= np.float32(1.0)
    return values.view(np.complex64) * amplitude.astype(np.float32)


def _unit_power(spectrum: np.ndarray, n_samples: int) -> np.ndarray:
    """Scale one-sided spectrum bins (none at DC) so the signal has mean square 1."""
    parts = spectrum.view(np.float32) if spectrum.dtype == np.complex64 else spectrum.view(np.float64)
    energy = 2.0 * float(np.sum(np.square(parts, dtype=np.float64)))  # no BLAS: same sum everywhere
    return spectrum * np.float32(n_samples / np.sqrt(energy)) if energy > 0 else spectrum


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return x / rms if rms > 0 else x


def _band_amplitude(freqs: np.ndarray, f_low: float, f_high: float, rolloff: float) -> np.ndarray:
    """1 inside [f_low, f_high], Gaussian skirts of width ``rolloff`` outside."""
    if rolloff <= 0:
        return ((freqs >= f_low) & (freqs <= f_high)).astype(np.float32)
    distance = np.maximum(np.maximum(f_low - freqs, freqs - f_high), 0.0)
    return np.exp(-0.5 * (distance / rolloff) ** 2).astype(np.float32)


def _band_noise(
    n_samples: int, sample_rate: int, f_low: float, f_high: float, rng: np.random.Generator, rolloff: float = 0.0
) -> np.ndarray:
    """Unit-RMS Gaussian noise in [f_low, f_high] (soft skirts of ``rolloff`` Hz)."""
    n_fft = _fast_length(n_samples)
    freqs = np.arange(n_fft // 2 + 1, dtype=np.float32) * np.float32(sample_rate / n_fft)
    spectrum = _random_spectrum(_band_amplitude(freqs, f_low, f_high, rolloff), rng)
    spectrum[0] = 0.0
    return _unit_rms(sfft.irfft(spectrum, n_fft)[:n_samples])


def coloured_noise_spectrum(n_samples: int, sample_rate: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """One-sided spectrum of unit-power noise with power ``1/f**alpha`` (flat below 20 Hz)."""
    amplitude = np.exp(np.float32(-alpha / 2) * _log_frequencies(n_samples, sample_rate))
    amplitude[0] = 0.0
    # Scaled by the expected power (E|value|^2 = 2/3 for uniform parts): cheap,
    # and the background is normalised exactly once all components are mixed.
    expected = 2.0 * (2.0 / 3.0) * float(np.sum(np.square(amplitude, dtype=np.float64)))
    return _random_spectrum(amplitude * np.float32(n_samples / np.sqrt(expected)), rng)


@functools.lru_cache(maxsize=4)
def _log_frequencies(n_samples: int, sample_rate: int) -> np.ndarray:
    """``log(max(f, 20 Hz))`` on the recording's rfft grid (cached; read-only)."""
    freqs = np.arange(n_samples // 2 + 1, dtype=np.float32) * np.float32(sample_rate / n_samples)
    log_freqs = np.log(np.maximum(freqs, np.float32(20.0)))
    log_freqs.flags.writeable = False
    return log_freqs


def insect_chorus_spectrum(
    n_samples: int, sample_rate: int, rng: np.random.Generator
) -> tuple[int, np.ndarray]:
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
    carrier = _random_spectrum(_band_amplitude(np.arange(lo, hi) * df, f_low, f_high, rolloff), rng)
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
    carrier = sfft.irfft(_random_spectrum(_band_amplitude(freqs, 10.0, cutoff, cutoff / 3), rng), m)
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
        hiss = _band_noise(n, sample_rate, 500.0, min(16000.0, 0.45 * sample_rate), rng, rolloff=800.0)
        n_drops = int(rng.poisson(rng.uniform(20, 200) * length))
        k = int(0.004 * sample_rate)
        kernel = rng.standard_normal(k) * np.exp(-np.arange(k) / (0.0008 * sample_rate))
        positions = rng.integers(0, n - k, n_drops)[:, None] + np.arange(k)
        weights = rng.lognormal(0.0, 0.6, n_drops)[:, None] * kernel
        droplets = np.bincount(positions.ravel(), weights.ravel(), minlength=n).astype(np.float32)
        droplets = _unit_rms(droplets) if n_drops else droplets
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
    return (_unit_rms(mix) * np.float32(target)).astype(np.float32)


# ---------------------------------------------------------------------------
# Recordings
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingPlan:
    """What one recording holds.

    Its species, the number of calls of each, and the species its lookalike
    calls imitate (one lookalike per entry).
    """

    recording_id: str
    split: str
    index: int
    species: tuple[int, ...]
    calls: tuple[int, ...]
    lookalike_targets: tuple[int, ...]


@dataclass(frozen=True)
class CallEvent:
    """A call placed in a recording (times in s, band in Hz)."""

    species_id: int
    songtype_id: int
    t_min: float
    t_max: float
    f_min: float
    f_max: float
    snr_db: float
    lookalike: bool


def _place(
    duration: float, taken: list[tuple[float, float]], recording_seconds: float, rng: np.random.Generator
) -> float | None:
    """A start time whose call does not overlap ``taken``; None if none found."""
    latest = recording_seconds - duration
    for _ in range(PLACEMENT_ATTEMPTS):
        start = float(rng.uniform(0.0, latest))
        if all(start + duration <= a or start >= b for a, b in taken):
            return start
    return None


def render_recording(
    plan: RecordingPlan,
    models: Sequence[SpeciesCallModel],
    settings: DemoSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[CallEvent]]:
    """Synthesise one recording: background, species calls and lookalikes.

    Each species of ``plan.species`` calls ``plan.calls`` times; each target
    in ``plan.lookalike_targets`` gets one lookalike call. Calls of one
    species (or lookalikes of one target) do not overlap each other; calls of
    different species may. A call that finds no room (after
    :data:`PLACEMENT_ATTEMPTS` tries) is left out.

    Every call is placed at an SNR drawn uniformly from ``settings.snr_db``,
    where SNR is broadband: ``10*log10(P_call / P_background)``, ``P`` the
    mean square over the samples the call spans (all frequencies; other calls
    are not counted as background). If the mix would peak above
    :data:`PEAK_LIMIT`, the whole recording is scaled down, which keeps every
    SNR.

    Parameters
    ----------
    plan : RecordingPlan
        What the recording holds.
    models : sequence of SpeciesCallModel
        Indexed by species id.
    settings : DemoSettings
        Sample rate, duration and SNR range.
    rng : numpy.random.Generator
        The recording's own RNG; the background is its first draw.

    Returns
    -------
    samples : numpy.ndarray
        float32, ``round(settings.duration_seconds * settings.sample_rate)`` long.
    events : list of CallEvent
        Real calls (``lookalike=False``) and lookalikes (``lookalike=True``,
        named after their target species).
    """
    sr = settings.sample_rate
    n_samples = int(round(settings.duration_seconds * sr))
    recording_seconds = n_samples / sr
    max_duration = 0.9 * recording_seconds
    background = synthesize_background(n_samples, sr, rng)
    mix = background.copy()
    events: list[CallEvent] = []

    calls: list[tuple[int, CallVariant, bool]] = []
    for species_id, n_calls in zip(plan.species, plan.calls, strict=True):
        for _ in range(n_calls):
            calls.append((species_id, jitter_call(models[species_id], sr, max_duration, rng), False))
    for target in plan.lookalike_targets:
        calls.append((target, lookalike_call(models[target], sr, max_duration, rng), True))

    taken: dict[tuple[int, bool], list[tuple[float, float]]] = {}
    for species_id, variant, is_lookalike in calls:
        group = taken.setdefault((species_id, is_lookalike), [])
        start = _place(variant.duration, group, recording_seconds, rng)
        if start is None:
            continue
        call = synthesize_call(variant.shape, variant.duration, variant.f_low, variant.f_high, sr, rng)
        first = min(int(round(start * sr)), n_samples - call.size)
        span = slice(first, first + call.size)
        snr_db = float(rng.uniform(*settings.snr_db))
        background_power = float(np.mean(np.square(background[span], dtype=np.float64)))
        mix[span] += (call * np.sqrt(background_power * 10 ** (snr_db / 10))).astype(np.float32)
        t_min, t_max = first / sr, (first + call.size) / sr
        group.append((t_min, t_max))
        events.append(
            CallEvent(
                species_id=species_id,
                songtype_id=models[species_id].songtype_id,
                t_min=t_min,
                t_max=t_max,
                f_min=variant.f_low,
                f_max=variant.f_high,
                snr_db=snr_db,
                lookalike=is_lookalike,
            )
        )
    peak = float(np.max(np.abs(mix)))
    if peak > PEAK_LIMIT:
        mix *= np.float32(PEAK_LIMIT / peak)
    return mix, events


class _ShuffledRounds:
    """Draws from ``values`` in shuffled rounds, so each is drawn about equally often."""

    def __init__(self, values: Sequence[int], rng: np.random.Generator):
        self._values = list(values)
        self._rng = rng
        self._queue: deque[int] = deque()

    def _refill(self) -> None:
        self._queue.extend(self._values[i] for i in self._rng.permutation(len(self._values)))

    def take(self, exclude: set[int] = frozenset()) -> int:
        if set(self._values) <= set(exclude):
            raise ValueError("every value is excluded")
        while True:
            if not self._queue:
                self._refill()
            for i, value in enumerate(self._queue):
                if value not in exclude:
                    del self._queue[i]
                    return value
            self._refill()


def recording_ids(n: int, seed: int) -> list[str]:
    """``n`` unique ids of 9 lowercase hex characters, like ``003bec244``."""
    rng = np.random.default_rng([seed, _STREAM_IDS, 0, 1])
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        for value in rng.integers(0, 16**9, size=n - len(ids)):
            text = f"{int(value):09x}"
            if text not in seen:
                seen.add(text)
                ids.append(text)
    return ids


def plan_recordings(settings: DemoSettings, n_species: int) -> list[RecordingPlan]:
    """Decide the species, call counts and lookalike targets of every recording.

    Species, call counts and lookalike targets are drawn in shuffled rounds
    (each value once per round, in random order), so every species gets about
    the same number of recordings, calls and lookalikes.

    Train recordings hold one species, two with probability
    :data:`SECOND_SPECIES_PROBABILITY`, so every species appears in about
    ``n_train / n_species * 1.25`` recordings. Test recordings hold 0 to
    ``settings.max_species_per_test_recording`` species (at least one test
    recording holds none when there are two or more). Each species calls
    :data:`CALLS_PER_SPECIES` times; recordings get a Poisson number (mean
    ``settings.lookalikes_per_recording``) of lookalikes, each targeting a
    species absent from the recording.

    Returns
    -------
    list of RecordingPlan
        Train recordings first, then test recordings.
    """
    ids = recording_ids(settings.n_train_recordings + settings.n_test_recordings, settings.seed)
    low, high = CALLS_PER_SPECIES
    plans = []
    for split_index, split in enumerate(_SPLITS):
        rng = np.random.default_rng([settings.seed, _STREAM_PLAN, split_index, 1])
        species_draw, extra_draw, target_draw = (_ShuffledRounds(range(n_species), rng) for _ in range(3))
        call_draws = [_ShuffledRounds(range(low, high + 1), rng) for _ in range(n_species)]
        if split == "train":
            n_recordings, offset = settings.n_train_recordings, 0
            counts = 1 + (rng.random(n_recordings) < SECOND_SPECIES_PROBABILITY) * (n_species > 1)
        else:
            n_recordings, offset = settings.n_test_recordings, settings.n_train_recordings
            most = min(settings.max_species_per_test_recording, n_species)
            counts = rng.integers(0, most + 1, size=n_recordings)
            if n_recordings >= 2 and not (counts == 0).any():
                counts[rng.integers(n_recordings)] = 0
        for index in range(n_recordings):
            species: list[int] = []
            for k in range(int(counts[index])):
                species.append((species_draw if k == 0 else extra_draw).take(set(species)))
            calls = [call_draws[s].take() for s in species]
            n_lookalikes = int(rng.poisson(settings.lookalikes_per_recording)) if len(species) < n_species else 0
            targets = [target_draw.take(set(species)) for _ in range(n_lookalikes)]
            plans.append(
                RecordingPlan(ids[offset + index], split, index, tuple(species), tuple(calls), tuple(targets))
            )
    return plans


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16, rounding to nearest and clipping."""
    scaled = np.asarray(samples, dtype=np.float32) * np.float32(32767.0)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)


def _events_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    table = table.astype({"species_id": "int64", "songtype_id": "int64"})
    table[["t_min", "t_max"]] = table[["t_min", "t_max"]].astype(float).round(4)
    table[["f_min", "f_max"]] = table[["f_min", "f_max"]].astype(float).round(2)
    return table.sort_values(["recording_id", "t_min", "species_id"], kind="stable").reset_index(drop=True)


def _write_dataset(out_dir: Path, settings: DemoSettings, profiles: pd.DataFrame) -> None:
    models = species_call_models(profiles)
    n_species = len(models)
    tp_rows: list[dict] = []
    fp_rows: list[dict] = []
    truth_rows: list[dict] = []
    for split in _SPLITS:
        (out_dir / split).mkdir(parents=True)
    plans = plan_recordings(settings, n_species)
    for plan in tqdm(plans, desc="demo", unit="rec", disable=None):
        split_index = _SPLITS.index(plan.split)
        rng = np.random.default_rng([settings.seed, _STREAM_RECORDING, split_index, plan.index])
        samples, events = render_recording(plan, models, settings, rng)
        sf.write(
            out_dir / plan.split / f"{plan.recording_id}.flac",
            to_pcm16(samples),
            settings.sample_rate,
            format="FLAC",
            subtype="PCM_16",
        )
        for event in events:
            row = {
                "recording_id": plan.recording_id,
                "species_id": event.species_id,
                "songtype_id": event.songtype_id,
                "t_min": event.t_min,
                "f_min": event.f_min,
                "t_max": event.t_max,
                "f_max": event.f_max,
            }
            if plan.split == "train":
                (fp_rows if event.lookalike else tp_rows).append(row)
            elif not event.lookalike:
                truth_rows.append(row)
    _events_table(tp_rows).to_csv(out_dir / "train_tp.csv", index=False)
    _events_table(fp_rows).to_csv(out_dir / "train_fp.csv", index=False)
    _events_table(truth_rows).to_csv(out_dir / "test_ground_truth.csv", index=False)
    test_ids = sorted(p.recording_id for p in plans if p.split == "test")
    submission = pd.DataFrame({"recording_id": test_ids})
    for species_id in range(n_species):
        submission[f"s{species_id}"] = 0.5
    submission.to_csv(out_dir / "sample_submission.csv", index=False)


def make_demo_dataset(out_dir: Path, settings: DemoSettings, profiles: pd.DataFrame) -> None:
    """Write a synthetic dataset in the competition's layout to ``out_dir``.

    Each call is mixed in at a broadband SNR drawn uniformly from
    ``settings.snr_db``: call power over background power, both measured over
    the samples the call spans (see :func:`render_recording`).

    The result depends only on ``settings`` and ``profiles``: the same inputs
    give byte-identical files. Each recording draws from its own RNG,
    ``default_rng([seed, 1, split_index, recording_index])``, so the output
    does not depend on the order recordings are made in.

    The dataset is built in a temporary sibling directory
    (``.<name>.tmp-<pid>``) that is renamed to ``out_dir`` when complete; an
    existing ``out_dir`` is moved aside first and deleted afterwards, so
    ``out_dir`` never holds a half-written dataset.

    Parameters
    ----------
    out_dir : Path
        Where the dataset goes; replaced if it exists.
    settings : DemoSettings
        Sizes, seed, SNR range and lookalike rate.
    profiles : pandas.DataFrame
        Species profiles, as from :func:`load_species_profiles`; species ids
        must be ``0 .. N-1``.
    """
    out_dir = Path(out_dir)
    if profiles["species_id"].tolist() != list(range(len(profiles))):
        profiles = profiles.sort_values("species_id").reset_index(drop=True)
        if profiles["species_id"].tolist() != list(range(len(profiles))):
            raise LabelError("species profiles: species_id must be 0 .. N-1 with one row each")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    try:
        _write_dataset(tmp, settings, profiles)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out_dir.exists():
            old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rainforest.demo profiles SOURCE_CSV OUT_CSV``."""
    parser = argparse.ArgumentParser(prog="python -m rainforest.demo", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    profiles = commands.add_parser("profiles", help="derive the species profile table from a train_tp.csv")
    profiles.add_argument("source_csv", type=Path, help="the competition's train_tp.csv")
    profiles.add_argument("out_csv", type=Path, help="where to write the profile table")
    args = parser.parse_args(argv)
    try:
        table = species_profiles_from_labels(pd.read_csv(args.source_csv))
    except (FileNotFoundError, LabelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out_csv, index=False)
    print(f"wrote {len(table)} species to {args.out_csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
