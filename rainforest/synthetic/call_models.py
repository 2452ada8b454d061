"""Call models: how each synthetic species' call sounds.

A :class:`CallShape` is one kind of call (whistle, harmonic stack, trill,
croak, clicks) with its fixed parameters; a :class:`SpeciesCallModel` gives a
species its shape, band and durations, built from its profile
(:mod:`rainforest.synthetic.profiles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Constants (candidates for settings).

#: Call shapes; species ``i`` gets ``CALL_SHAPES[i % len(CALL_SHAPES)]``.
CALL_SHAPES = ("whistle", "harmonic", "trill", "croak", "clicks")
#: Seeds the species' fixed shape parameters (independent of ``settings.seed``,
#: so a species sounds the same in every demo dataset).
SPECIES_SHAPE_SEED = 20210101
#: Per-call length jitter: durations span at least median * (1 -/+ this).
DURATION_JITTER = 0.2


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
        A table as returned by :func:`rainforest.synthetic.profiles.load_species_profiles`.

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
