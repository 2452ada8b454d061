"""Turning scores into the reports that ``evaluate`` and ``submit`` write."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rainforest import metrics


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN: a species without positives gets null.
    return None if math.isnan(value) else round(float(value), 6)


def score_summary(truth: np.ndarray, scores: np.ndarray) -> dict:
    """The headline figures: LWLRAP, macro average precision and top-1 accuracy.

    Short keys, so that ``dvc metrics show`` of every stage's figures fits a
    terminal; the per-species figures go to :func:`species_table`.

    Parameters
    ----------
    truth
        (n, n_species) 0/1 presence.
    scores
        (n, n_species) model scores.
    """
    return {
        "lwlrap": _finite_or_none(metrics.lwlrap(truth, scores)),
        "macro_ap": _finite_or_none(metrics.macro_average_precision(truth, scores)),
        "top1": _finite_or_none(metrics.top1_accuracy(truth, scores)),
    }


def species_table(truth: np.ndarray, scores: np.ndarray, species: list[str]) -> pd.DataFrame:
    """One row per species: its average precision and number of positives.

    Written as a CSV that ``dvc plots`` draws as a bar chart and ``git diff``
    compares line by line; empty where a species has no positives.
    """
    return pd.DataFrame(
        {
            "species": species,
            "average_precision": [_finite_or_none(ap) for ap in metrics.average_precision_per_species(truth, scores)],
            "positives": np.asarray(truth).sum(axis=0).astype(int),
        }
    )


def confusion_rows(truth: np.ndarray, scores: np.ndarray, species: list[str]) -> pd.DataFrame:
    """One row per sample with exactly one present species: its species and
    the top-scoring one, the layout ``dvc plots``' confusion template counts."""
    single = truth.sum(axis=1) == 1
    return pd.DataFrame(
        {
            "actual": np.asarray(species)[truth[single].argmax(axis=1)],
            "predicted": np.asarray(species)[scores[single].argmax(axis=1)],
        }
    )


def precision_recall_table(truth: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """The micro-averaged precision-recall curve as a table."""
    points = metrics.precision_recall_curve_points(truth, scores)
    return pd.DataFrame(points).round(6)


def submission_table(recording_ids: list[str], species: list[str], scores: np.ndarray) -> pd.DataFrame:
    """The competition's submission: one row per recording, one column per species."""
    table = pd.DataFrame(scores, columns=species)
    table.insert(0, "recording_id", recording_ids)
    return table


def _worst_per_window(badness: np.ndarray, eligible: np.ndarray, n: int) -> list[tuple[int, int]]:
    # Each window's worst eligible species, then the n worst windows: one
    # species per window, so the examples show n different windows.
    masked = np.where(eligible, badness, -np.inf)
    columns = masked.argmax(axis=1)
    worst = masked[np.arange(len(masked)), columns]
    rows = [row for row in np.argsort(-worst, kind="stable") if np.isfinite(worst[row])][:n]
    return [(int(row), int(columns[row])) for row in rows]


def worst_false_positives(truth: np.ndarray, scores: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Up to ``n`` ``(window, species)`` pairs: the windows where a species not
    present (labelled absent, or not labelled) scores highest, highest first,
    each window with its highest-scoring absent species."""
    return _worst_per_window(scores, truth == 0, n)


def worst_false_negatives(truth: np.ndarray, scores: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Up to ``n`` ``(window, species)`` pairs: the windows where a present
    species scores lowest, lowest first, each window with its lowest-scoring
    present species."""
    return _worst_per_window(-scores, truth == 1, n)
