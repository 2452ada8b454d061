"""Which detections a person reviews: the top-scoring of each species, those near its threshold, and a spread.

A verdict on a detection the model is sure of confirms what the model already
knows; a verdict near the species' threshold, where the model is unsure
whether the species called, is the one that moves the threshold and teaches
the model most (uncertainty sampling, as in active learning). A random
choice is the baseline both are measured against (``benchmarks.review_loop``).
A choice across score bins, one window from each, shows a person how the
species looks at every score, as BirdNET-Analyzer's segments tool samples
across confidence.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from rainforest.events.detections import merge_overlapping

#: Why a window was chosen for review, in the order the choices are made.
REASONS = ("top", "near", "random", "bin")
#: The cut of a species without a threshold: its near choices are taken around it.
NO_THRESHOLD_CUT = 0.5


def merge_detected(detections: pd.DataFrame, thresholds: Mapping[str, float | None]) -> pd.DataFrame:
    """The windows reaching their species' threshold merged into calls; those below it kept as they are.

    A call heard in three overlapping windows is one detection to judge, not
    three (:func:`rainforest.events.detections.merge_overlapping`). Windows
    below the threshold (in a ``--all`` run, every other window) stay single:
    merged, a species' whole recording would become one.

    Parameters
    ----------
    detections
        Rows of ``detections.csv`` of the species in ``thresholds``.
    thresholds
        Species -> its threshold, or ``None`` (then :data:`NO_THRESHOLD_CUT`).

    Returns
    -------
    pd.DataFrame
        The merged calls, then the windows below the thresholds, with the same columns.
    """
    cuts = detections["species"].map(lambda species: _cut(thresholds[species])).astype(float)
    reached = detections["score"] >= cuts
    return pd.concat([merge_overlapping(detections[reached]), detections[~reached]], ignore_index=True)


def _cut(threshold: float | None) -> float:
    return NO_THRESHOLD_CUT if threshold is None else threshold


def select_for_review(
    detections: pd.DataFrame,
    thresholds: Mapping[str, float | None],
    *,
    top: int = 0,
    near: int = 0,
    random: int = 0,
    bins: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Choose, for each species, the windows a person should give a verdict on.

    Parameters
    ----------
    detections
        Rows of ``detections.csv``: ``recording``, ``start``, ``end``,
        ``species``, ``score`` and any other columns (kept). Rows below a
        species' threshold are there when ``rainforest-detect`` ran with a
        lower ``--min-score`` or ``--all``; only then can near-threshold
        choices fall on both sides of it.
    thresholds
        Species -> its detection threshold, or ``None`` where it has none
        (then its near choices are taken around :data:`NO_THRESHOLD_CUT`).
    top
        Per species, the highest-scoring windows at or above its threshold.
    near
        Per species, the windows whose score is closest to its threshold,
        above or below, among those not already chosen.
    random
        Per species, windows drawn at random from the rest, with ``seed``.
    bins
        Per species, the rest's scores split into this many bins of equal
        width, from its lowest score to its highest, and one window drawn at
        random (with ``seed``) from each bin that holds any.

    Returns
    -------
    pd.DataFrame
        The chosen rows, with a column ``reason`` (one of :data:`REASONS`),
        by species (in the order of ``thresholds``), reason, then score from
        highest. A window is chosen at most once per species. The same
        inputs give the same choice.

    Examples
    --------
    >>> rows = pd.DataFrame({"recording": ["a", "a", "b", "b"], "start": [0.0, 1.0, 0.0, 1.0],
    ...                      "end": [2.0, 3.0, 2.0, 3.0], "species": "s0", "score": [0.95, 0.52, 0.41, 0.1]})
    >>> select_for_review(rows, {"s0": 0.5}, top=1, near=1)[["recording", "start", "score", "reason"]]
      recording  start  score reason
    0         a    0.0   0.95    top
    1         a    1.0   0.52   near
    """
    for name, count in (("top", top), ("near", near), ("random", random), ("bins", bins)):
        if count < 0:
            raise ValueError(f"{name} must be 0 or more, got {count}")
    unknown = sorted(set(detections["species"]) - set(thresholds))
    if unknown:
        raise ValueError(f"detections of species the detector does not know: {', '.join(map(str, unknown))}")
    # A stable order first, so the choice does not depend on the file's row order.
    ordered = detections.sort_values(["species", "recording", "start"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    chosen = []
    for species, threshold in thresholds.items():
        rows = ordered[ordered["species"] == species]
        if rows.empty:
            continue
        cut = _cut(threshold)
        scores = rows["score"].to_numpy()
        picks = []
        confident = rows.index[scores >= cut][np.argsort(-scores[scores >= cut], kind="stable")]
        picks.append(("top", confident[:top]))
        rest = rows.index.difference(picks[0][1], sort=False)
        closeness = np.abs(rows.loc[rest, "score"].to_numpy() - cut)
        picks.append(("near", rest[np.argsort(closeness, kind="stable")][:near]))
        rest = rest.difference(picks[1][1], sort=False)
        picks.append(("random", rest[np.sort(rng.permutation(len(rest))[:random])] if random else rest[:0]))
        rest = rest.difference(picks[2][1], sort=False)
        picks.append(("bin", _one_per_bin(rows.loc[rest, "score"], bins, rng) if bins and len(rest) else rest[:0]))
        for reason, index in picks:
            block = rows.loc[index].assign(reason=reason)
            chosen.append(block.sort_values("score", ascending=False, kind="stable"))
    if not chosen:
        return detections.iloc[:0].assign(reason=pd.Series(dtype=object))
    return pd.concat(chosen, ignore_index=True)


def _one_per_bin(scores: pd.Series, bins: int, rng: np.random.Generator) -> pd.Index:
    # The index of one score drawn from each non-empty bin of equal width between the lowest and highest.
    values = scores.to_numpy()
    edges = np.linspace(values.min(), values.max(), bins + 1)
    which = np.digitize(values, edges[1:-1])  # 0 .. bins - 1; the highest score in the last bin
    return pd.Index([rng.choice(scores.index[which == number]) for number in np.unique(which)])
