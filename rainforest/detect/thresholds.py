"""The detector: a score threshold and a frequency band per species, saved beside the model.

``evaluate`` chooses each species' threshold on the validation windows, for a
target precision, and takes its frequency band from the training labels;
``rainforest-detect`` reads both to turn window scores into detections that
open in Raven with a box around the band where the species calls.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from rainforest.atomic_writes import rounded_or_none, write_json
from rainforest.errors import ModelError

#: How a threshold was chosen. ``target_precision``: the lowest threshold at
#: which the species' validation windows reach the target precision.
#: ``not_reached``: no threshold does (or no validation window holds the
#: species): the species has no threshold and is not detected by default.
Rule = Literal["target_precision", "not_reached"]

#: A species' band runs from this quantile of its events' f_min to the
#: opposite quantile of their f_max, so one mislabelled box does not stretch it.
BAND_QUANTILE = 0.05


def precision_recall_by_threshold(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall of one species at each of its distinct scores used as threshold.

    A window is detected when its score is at or above the threshold.

    Parameters
    ----------
    truth : np.ndarray, shape (n,)
        1 where the species is present.
    scores : np.ndarray, shape (n,)
        The species' scores.

    Returns
    -------
    thresholds, precision, recall : np.ndarray
        Each of shape (n_distinct_scores,), thresholds in decreasing order (so
        recall is non-decreasing). Recall is NaN everywhere when no window
        holds the species.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    sorted_scores = np.asarray(scores, dtype=np.float64)[order]
    hits = np.cumsum(np.asarray(truth)[order] > 0)
    # Windows with equal scores are detected together: keep the last of each run.
    last = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    detected = np.arange(1, len(order) + 1)[last]
    positives = hits[-1] if len(hits) else 0
    recall = hits[last] / positives if positives else np.full(int(last.sum()), np.nan)
    return sorted_scores[last], hits[last] / detected, recall


@dataclass(frozen=True)
class ThresholdChoice:
    """One species' threshold (``None``: never detect it), how it was chosen
    (a :data:`Rule`), and the validation precision and recall it gives
    (``None`` where undefined)."""

    threshold: float | None
    rule: Rule
    precision: float | None
    recall: float | None


def choose_threshold(truth: np.ndarray, scores: np.ndarray, target_precision: float) -> ThresholdChoice:
    """The lowest threshold at which one species reaches ``target_precision``.

    That is the threshold with the highest recall among those precise enough.
    A species that never reaches the target, or has no positive window to
    tell, gets no threshold: detections that would be wrong more often than
    the user accepts would bury the right ones (``rainforest-detect
    --min-score`` still shows it).

    Parameters
    ----------
    truth, scores : np.ndarray, shape (n,)
        The species' presence and scores over the validation windows.
    target_precision
        In (0, 1].
    """
    thresholds, precision, recall = precision_recall_by_threshold(truth, scores)
    reaching = np.flatnonzero(precision >= target_precision)
    if not len(reaching):
        return ThresholdChoice(None, "not_reached", None, 0.0 if np.asarray(truth).any() else None)
    # Thresholds decrease along the arrays: the last one precise enough is the lowest.
    best = reaching[-1]
    return ThresholdChoice(float(thresholds[best]), "target_precision", float(precision[best]), float(recall[best]))


def select_thresholds(truth: np.ndarray, scores: np.ndarray, target_precision: float) -> list[ThresholdChoice]:
    """:func:`choose_threshold` for every species (column) of ``truth`` and ``scores``, shape (n, n_species)."""
    return [choose_threshold(truth[:, j], scores[:, j], target_precision) for j in range(truth.shape[1])]


def frequency_bands(events: pd.DataFrame, n_species: int, default: tuple[float, float]) -> np.ndarray:
    """Each species' frequency band, from its labelled calls.

    Parameters
    ----------
    events
        Event table with ``species_id``, ``f_min``, ``f_max`` and ``present``
        (the events table, :mod:`rainforest.events.table`); only present
        events count.
    default
        ``(low, high)`` in Hz for a species without any call.

    Returns
    -------
    np.ndarray, shape (n_species, 2)
        Low and high frequency in Hz: the :data:`BAND_QUANTILE` quantile of
        f_min and the ``1 - BAND_QUANTILE`` quantile of f_max.
    """
    bands = np.tile(np.asarray(default, dtype=np.float64), (n_species, 1))
    calls = events[events["present"].astype(bool)]
    for species_id, group in calls.groupby("species_id"):
        bands[species_id] = [
            np.quantile(group["f_min"], BAND_QUANTILE),
            np.quantile(group["f_max"], 1 - BAND_QUANTILE),
        ]
    return bands


@dataclass(frozen=True)
class SpeciesDetector:
    """What detecting one species takes: its score threshold (``None``: not
    detected) and frequency band."""

    species: str
    threshold: float | None
    rule: Rule
    validation_precision: float | None
    validation_recall: float | None
    low_freq_hz: float
    high_freq_hz: float


@dataclass(frozen=True)
class Detector:
    """Per-species thresholds and bands, in the model's species order."""

    target_precision: float
    species: list[SpeciesDetector]

    @property
    def thresholds(self) -> np.ndarray:
        """Per-species thresholds; infinite (never reached) for a species without one."""
        return np.array([np.inf if entry.threshold is None else entry.threshold for entry in self.species])

    @property
    def undetected(self) -> list[str]:
        """The species without a threshold."""
        return [entry.species for entry in self.species if entry.threshold is None]

    def to_dict(self) -> dict:
        return {"target_precision": self.target_precision, "species": [asdict(entry) for entry in self.species]}

    def table(self) -> pd.DataFrame:
        """One row per species: its threshold and validation precision and recall there."""
        return pd.DataFrame(
            {
                "species": [entry.species for entry in self.species],
                "threshold": [rounded_or_none(entry.threshold) for entry in self.species],
                "precision": [entry.validation_precision for entry in self.species],
                "recall": [entry.validation_recall for entry in self.species],
            }
        )


def build_detector(
    species: list[str], choices: list[ThresholdChoice], bands: np.ndarray, target_precision: float
) -> Detector:
    """Combine thresholds (:func:`select_thresholds`) and bands (:func:`frequency_bands`)."""
    entries = [
        SpeciesDetector(
            # The threshold is kept exact: rounding it up would lose the window it was chosen at.
            name,
            choice.threshold,
            choice.rule,
            rounded_or_none(choice.precision),
            rounded_or_none(choice.recall),
            round(float(low), 1),
            round(float(high), 1),
        )
        for name, choice, (low, high) in zip(species, choices, bands)
    ]
    return Detector(target_precision, entries)


def detection_summary(truth: np.ndarray, scores: np.ndarray, detector: Detector) -> dict:
    """Precision and recall at the detector's per-species thresholds, pooled
    over every (window, species) decision; precision is ``None`` where nothing
    is detected. Each species' own figures are in :meth:`Detector.table`."""
    detected = scores >= detector.thresholds[None, :]
    hits = int((detected & (truth == 1)).sum())
    return {
        "precision": round(hits / int(detected.sum()), 6) if detected.any() else None,
        "recall": round(hits / int(truth.sum()), 6),
    }


def save_detector(path: str | Path, detector: Detector) -> None:
    """Write the detector as JSON, atomically."""
    write_json(path, detector.to_dict())


def load_detector(path: str | Path, species: list[str]) -> Detector:
    """Read a detector written by :func:`save_detector` for a model scoring ``species``.

    Raises
    ------
    ModelError
        If the file is missing, is not a detector, or lists other species
        than the model's.
    """
    path = Path(path)
    try:
        values = json.loads(path.read_text())
        detector = Detector(values["target_precision"], [SpeciesDetector(**entry) for entry in values["species"]])
    except FileNotFoundError:
        raise ModelError(
            f"{path}: detector file not found; the evaluate stage writes it beside the model "
            "(dvc repro evaluate), or pass --detector"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise ModelError(
            f"{path}: not a detector file ({type(error).__name__}: {error}); rerun dvc repro evaluate"
        ) from None
    names = [entry.species for entry in detector.species]
    if names != species:
        raise ModelError(
            f"{path}: its species ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''}) are not the model's "
            f"{len(species)}; use the detector written by evaluate for this model"
        )
    return detector
