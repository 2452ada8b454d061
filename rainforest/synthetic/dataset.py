"""Recordings and the demo dataset in the competition's layout.

:func:`plan_recordings` decides what every recording holds,
:func:`render_recording` synthesises one (background, calls, lookalikes) as a
pure function of its plan and RNG, and :func:`make_demo_dataset` writes them.

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
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from rainforest.config import DemoSettings
from rainforest.errors import LabelError
from rainforest.events import EVENT_COLUMNS, competition
from rainforest.synthetic.backgrounds import synthesize_background
from rainforest.synthetic.call_models import SpeciesCallModel, species_call_models
from rainforest.synthetic.call_synthesis import CallVariant, jitter_call, lookalike_call, synthesize_call
from rainforest.synthetic.profiles import load_species_profiles

# Constants (candidates for settings).

#: Share of train recordings holding a second species.
SECOND_SPECIES_PROBABILITY = 0.25
#: Inclusive range of calls per species in a recording.
CALLS_PER_SPECIES = (1, 3)
#: The recording is scaled down only if its peak would exceed this.
PEAK_LIMIT = 0.9
#: Attempts at placing a call without overlapping a call of the same group.
PLACEMENT_ATTEMPTS = 30

_SPLITS = ("train", "test")
# RNG stream tags; every seed key has the same length (4) because SeedSequence
# treats trailing zeros as absent, so keys of different lengths could collide.
_STREAM_RECORDING = 1
_STREAM_PLAN = 2
_STREAM_IDS = 3


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
        call = synthesize_call(variant.shape, variant.duration, variant.f_low, variant.f_high, sample_rate=sr, rng=rng)
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

    def take(self, exclude: set[int] | frozenset[int] = frozenset()) -> int:
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
            plans.append(RecordingPlan(ids[offset + index], split, index, tuple(species), tuple(calls), tuple(targets)))
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
    for name, rows in [("train_tp.csv", tp_rows), ("train_fp.csv", fp_rows), ("test_ground_truth.csv", truth_rows)]:
        (out_dir / name).write_text(competition.write(_events_table(rows)))
    test_ids = sorted(p.recording_id for p in plans if p.split == "test")
    submission = pd.DataFrame({"recording_id": test_ids})
    for species_id in range(n_species):
        submission[f"s{species_id}"] = 0.5
    submission.to_csv(out_dir / "sample_submission.csv", index=False)


def make_demo_dataset(out_dir: str | Path, settings: DemoSettings, profiles: pd.DataFrame | None = None) -> None:
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
    profiles : pandas.DataFrame, optional
        Species profiles, as from :func:`rainforest.synthetic.profiles.load_species_profiles`
        (the default: the profiles that ship with the package); species ids
        must be ``0 .. N-1``.
    """
    out_dir = Path(out_dir)
    profiles = load_species_profiles() if profiles is None else profiles
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
