"""Ranking and detection metrics for multi-label species scores.

Every function takes the same two arrays:

``truth``
    ``(n_samples, n_species)`` array of 0/1 (bool, int or float ``0.0``/``1.0``):
    which species are present in each sample.
``scores``
    ``(n_samples, n_species)`` array of finite floats: the model's score for
    each species in each sample (higher means more likely present). Only the
    order of the scores within a sample matters to the ranking metrics.

The headline metric is :func:`lwlrap`, the label-weighted label-ranking
average precision used to score the Kaggle "Rainforest Connection Species
Audio Detection" competition (and Freesound Audio Tagging 2019 before it).
The other functions are diagnostics, and the tables and headline figures that
``evaluate`` and ``submit`` write (:func:`score_summary`, :func:`species_table`
and others).

All functions are pure numpy (plus :mod:`sklearn.metrics` where noted, and
pandas for the tables): no
I/O, no global state. Inputs that cannot be scored (wrong shapes, values other
than 0/1 in ``truth``, non-finite scores, no positive label at all) raise
:class:`ValueError` with a message naming the problem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve

from rainforest.atomic_writes import rounded_or_none


def _validate(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check and normalise a ``(truth, scores)`` pair.

    Parameters
    ----------
    truth : array_like, shape (n_samples, n_species)
        0/1 labels.
    scores : array_like, shape (n_samples, n_species)
        Finite scores.

    Returns
    -------
    truth : np.ndarray of bool, shape (n_samples, n_species)
    scores : np.ndarray of float64, shape (n_samples, n_species)

    Raises
    ------
    ValueError
        If either array is not 2-D, the shapes differ, ``truth`` holds values
        other than 0 and 1, ``scores`` is not numeric or holds NaN or
        infinity, or ``truth`` has no positive label at all.
    """
    truth_arr = np.asarray(truth)
    scores_arr = np.asarray(scores)
    if truth_arr.ndim != 2:
        raise ValueError(
            "truth must be a 2-D array of shape (n_samples, n_species), "
            f"got {truth_arr.ndim}-D array of shape {truth_arr.shape}"
        )
    if scores_arr.ndim != 2:
        raise ValueError(
            "scores must be a 2-D array of shape (n_samples, n_species), "
            f"got {scores_arr.ndim}-D array of shape {scores_arr.shape}"
        )
    if truth_arr.shape != scores_arr.shape:
        raise ValueError(
            "truth and scores must have the same shape (n_samples, n_species), "
            f"got truth {truth_arr.shape} and scores {scores_arr.shape}"
        )
    if truth_arr.dtype != bool:
        if not (np.issubdtype(truth_arr.dtype, np.number) and np.isin(truth_arr, (0, 1)).all()):
            raise ValueError("truth must contain only 0 and 1 (or False and True)")
        truth_arr = truth_arr.astype(bool)
    if not (np.issubdtype(scores_arr.dtype, np.number) or scores_arr.dtype == bool):
        raise ValueError(f"scores must be numeric, got dtype {scores_arr.dtype}")
    scores_arr = scores_arr.astype(np.float64)
    if not np.isfinite(scores_arr).all():
        raise ValueError("scores must be finite: found NaN or infinity")
    if not truth_arr.any():
        raise ValueError("truth has no positive labels: at least one sample must have a species present")
    return truth_arr, scores_arr


def per_species_lwlrap(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-species label-ranking precision and each species' weight in LWLRAP.

    For every sample and every species present in it, the precision at that
    species' rank is (number of present species ranked at or above it) /
    (its rank). A species' label-ranking precision is the mean of these over
    the samples in which it is present; its weight is its share of all
    positive labels. Hence ``(per_species * weights).sum() == lwlrap(truth,
    scores)``.

    Parameters
    ----------
    truth : array_like, shape (n_samples, n_species)
        0/1 labels (bool or int).
    scores : array_like, shape (n_samples, n_species)
        Finite scores; higher ranks first.

    Returns
    -------
    per_species : np.ndarray of float64, shape (n_species,)
        Label-ranking precision of each species; ``0.0`` for a species with
        no positive sample (its weight is 0 too, as in the reference
        implementation).
    weights : np.ndarray of float64, shape (n_species,)
        Number of positive labels of each species divided by the total number
        of positive labels; sums to 1.

    Raises
    ------
    ValueError
        See :func:`lwlrap`.

    Notes
    -----
    Ties are broken as in the competition's reference implementation with a
    stable sort: within a sample, species are ordered by
    ``np.argsort(-scores, kind="stable")``, so among species with equal
    scores the one with the lower column index is ranked first (higher).
    A tie is therefore neither optimistic nor pessimistic by itself: it
    depends on column order. (scikit-learn's
    :func:`~sklearn.metrics.label_ranking_average_precision_score` instead
    gives tied labels the worst rank of the tie, so the two agree only when
    there are no ties among a sample's scores.)
    """
    truth_b, scores_f = _validate(truth, scores)
    _, n_species = truth_b.shape

    # order[i, r] = column ranked r-th (0-based) in sample i.
    order = np.argsort(-scores_f, axis=1, kind="stable")
    truth_sorted = np.take_along_axis(truth_b, order, axis=1)
    hits_at_or_above = np.cumsum(truth_sorted, axis=1)
    ranks = np.arange(1, n_species + 1, dtype=np.float64)
    precision_sorted = hits_at_or_above / ranks
    # Undo the sort: precision[i, j] is the precision at species j's rank.
    precision = np.empty_like(precision_sorted)
    np.put_along_axis(precision, order, precision_sorted, axis=1)
    precision = np.where(truth_b, precision, 0.0)

    labels_per_species = truth_b.sum(axis=0)
    weights = labels_per_species / float(labels_per_species.sum())
    per_species = precision.sum(axis=0) / np.maximum(1, labels_per_species)
    return per_species, weights


def lwlrap(truth: np.ndarray, scores: np.ndarray) -> float:
    """Label-weighted label-ranking average precision (the competition metric).

    For every sample and every species present in it, take the precision at
    that species' rank: (number of present species ranked at or above it) /
    (its rank). LWLRAP is the mean of these over all (sample, present
    species) pairs, which weights each species by its share of positive
    labels. Samples with no species present contribute nothing.

    Parameters
    ----------
    truth : array_like, shape (n_samples, n_species)
        0/1 labels (bool or int).
    scores : array_like, shape (n_samples, n_species)
        Finite scores; higher ranks first.

    Returns
    -------
    float
        LWLRAP in ``(0, 1]``; ``1.0`` when in every sample all present
        species outrank all absent ones.

    Raises
    ------
    ValueError
        If either array is not 2-D, the shapes differ, ``truth`` holds values
        other than 0/1, ``scores`` holds NaN or infinity, or ``truth`` has no
        positive label.

    Notes
    -----
    Equal scores within a sample are ranked by column index (lower index
    first), following the reference implementation with a stable sort; see
    :func:`per_species_lwlrap`. With no ties the result equals
    ``sklearn.metrics.label_ranking_average_precision_score(truth, scores,
    sample_weight=truth.sum(axis=1))``.

    Examples
    --------
    >>> lwlrap([[1, 0, 1]], [[0.9, 0.8, 0.1]])  # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    per_species, weights = per_species_lwlrap(truth, scores)
    return float(np.sum(per_species * weights))


def average_precision_per_species(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision of each species over samples (one column at a time).

    Parameters
    ----------
    truth : array_like, shape (n_samples, n_species)
        0/1 labels (bool or int).
    scores : array_like, shape (n_samples, n_species)
        Finite scores.

    Returns
    -------
    np.ndarray of float64, shape (n_species,)
        :func:`sklearn.metrics.average_precision_score` of each column;
        ``np.nan`` for a species with no positive sample (AP is undefined).

    Raises
    ------
    ValueError
        See :func:`lwlrap`.
    """
    truth_b, scores_f = _validate(truth, scores)
    result = np.full(truth_b.shape[1], np.nan)
    for j in np.flatnonzero(truth_b.any(axis=0)):
        result[j] = average_precision_score(truth_b[:, j], scores_f[:, j])
    return result


def macro_average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Unweighted mean of the per-species average precision.

    Parameters
    ----------
    truth : array_like, shape (n_samples, n_species)
        0/1 labels (bool or int).
    scores : array_like, shape (n_samples, n_species)
        Finite scores.

    Returns
    -------
    float
        Mean of :func:`average_precision_per_species` over the species that
        have at least one positive sample (the others are ignored).

    Raises
    ------
    ValueError
        See :func:`lwlrap`.
    """
    return float(np.nanmean(average_precision_per_species(truth, scores)))


def top1_accuracy(truth: np.ndarray, scores: np.ndarray) -> float:
    """Fraction of samples whose highest-scoring species is present.

    Parameters
    ----------
    truth : array_like, shape (n_samples, n_species)
        0/1 labels (bool or int).
    scores : array_like, shape (n_samples, n_species)
        Finite scores.

    Returns
    -------
    float
        Among samples with at least one species present, the fraction whose
        top-scoring species is one of them. A tie for the top score goes to
        the lowest column index (as :func:`numpy.argmax` and :func:`lwlrap`).

    Raises
    ------
    ValueError
        See :func:`lwlrap`.
    """
    truth_b, scores_f = _validate(truth, scores)
    keep = truth_b.any(axis=1)
    top = np.argmax(scores_f[keep], axis=1)
    hits = truth_b[keep][np.arange(top.size), top]
    return float(hits.mean())


def precision_recall_curve_points(
    truth: np.ndarray, scores: np.ndarray, max_points: int = 200
) -> dict[str, np.ndarray]:
    """Micro-averaged precision/recall curve, thinned for plotting.

    All (sample, species) pairs are pooled into one binary problem and passed
    to :func:`sklearn.metrics.precision_recall_curve`; the curve is then
    thinned to at most ``max_points`` evenly spaced points (by index), always
    keeping the first and the last. The thinning is deterministic.

    Parameters
    ----------
    truth : array_like, shape (n_samples, n_species)
        0/1 labels (bool or int).
    scores : array_like, shape (n_samples, n_species)
        Finite scores.
    max_points : int, default 200
        Largest number of points to return; at least 2.

    Returns
    -------
    dict of str to np.ndarray
        ``precision``, ``recall`` and ``threshold``, float64 arrays of equal
        length (at most ``max_points``), in scikit-learn's order: threshold
        increasing, recall non-increasing, ending at recall 0 and precision
        1. scikit-learn gives that final point no threshold; here it gets the
        smallest float above every score (``np.nextafter(scores.max(),
        np.inf)``), at which nothing is predicted present, so every value is
        finite and the arrays can be written as JSON.

    Raises
    ------
    ValueError
        If ``max_points`` is not an integer >= 2, or as :func:`lwlrap`.
    """
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)):
        raise ValueError(f"max_points must be an integer >= 2, got {max_points!r}")
    if max_points < 2:
        raise ValueError(f"max_points must be an integer >= 2, got {max_points}")
    truth_b, scores_f = _validate(truth, scores)
    precision, recall, threshold = precision_recall_curve(truth_b.ravel(), scores_f.ravel())
    threshold = np.append(threshold, np.nextafter(scores_f.max(), np.inf))
    n = precision.size
    if n > max_points:
        keep = np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))
        precision, recall, threshold = precision[keep], recall[keep], threshold[keep]
    return {
        "precision": np.asarray(precision, dtype=np.float64),
        "recall": np.asarray(recall, dtype=np.float64),
        "threshold": np.asarray(threshold, dtype=np.float64),
    }


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
        "lwlrap": rounded_or_none(lwlrap(truth, scores)),
        "macro_ap": rounded_or_none(macro_average_precision(truth, scores)),
        "top1": rounded_or_none(top1_accuracy(truth, scores)),
    }


def species_table(truth: np.ndarray, scores: np.ndarray, species: list[str]) -> pd.DataFrame:
    """One row per species: its average precision and number of positives.

    Written as a CSV that ``dvc plots`` draws as a bar chart and ``git diff``
    compares line by line; empty where a species has no positives.
    """
    return pd.DataFrame(
        {
            "species": species,
            "average_precision": [rounded_or_none(ap) for ap in average_precision_per_species(truth, scores)],
            "positives": np.asarray(truth).sum(axis=0).astype(int),
        }
    )


def with_labels(table: pd.DataFrame, labels: list[str] | None, species: list[str]) -> pd.DataFrame:
    """A per-species table with the species' names added as a last column, ``label``.

    Without labels (a dataset without ``species.csv``) the table is returned
    as it is, so its file keeps the same bytes.
    """
    if labels is None:
        return table
    return table.assign(label=table["species"].map(dict(zip(species, labels))))


def confusion_rows(truth: np.ndarray, scores: np.ndarray, species: list[str]) -> pd.DataFrame:
    """One row per sample with exactly one present species: its species and
    the top-scoring one, the layout ``dvc plots``' confusion template counts."""
    truth, scores = _validate(truth, scores)
    single = truth.sum(axis=1) == 1
    return pd.DataFrame(
        {
            "actual": np.asarray(species)[truth[single].argmax(axis=1)],
            "predicted": np.asarray(species)[scores[single].argmax(axis=1)],
        }
    )


def precision_recall_table(truth: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """The micro-averaged precision-recall curve as a table."""
    points = precision_recall_curve_points(truth, scores)
    return pd.DataFrame(points).round(6)


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
