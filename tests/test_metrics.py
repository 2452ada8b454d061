"""Tests for rainforest.metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, label_ranking_average_precision_score

from rainforest.metrics import (
    average_precision_per_species,
    confusion_rows,
    lwlrap,
    macro_average_precision,
    per_species_lwlrap,
    precision_recall_curve_points,
    score_summary,
    species_table,
    top1_accuracy,
    with_labels,
)


def _reference_lwlrap(truth: np.ndarray, scores: np.ndarray) -> float:
    """Literal port of the Kaggle notebook's loop (with a stable sort)."""
    n_samples, n_classes = scores.shape
    precisions = np.zeros((n_samples, n_classes))
    for i in range(n_samples):
        pos = np.flatnonzero(truth[i] > 0)
        if not len(pos):
            continue
        retrieved = np.argsort(-scores[i], kind="stable")
        rankings = np.zeros(n_classes, dtype=int)
        rankings[retrieved] = range(n_classes)
        retrieved_true = np.zeros(n_classes, dtype=bool)
        retrieved_true[rankings[pos]] = True
        cumulative_hits = np.cumsum(retrieved_true)
        precisions[i, pos] = cumulative_hits[rankings[pos]] / (1 + rankings[pos].astype(float))
    labels_per_class = np.sum(truth > 0, axis=0)
    weights = labels_per_class / float(np.sum(labels_per_class))
    per_class = np.sum(precisions, axis=0) / np.maximum(1, labels_per_class)
    return float(np.sum(per_class * weights))


def _random_problem(seed: int, n_samples: int, n_species: int, *, ties: bool = False):
    rng = np.random.default_rng(seed)
    truth = (rng.random((n_samples, n_species)) < 0.3).astype(int)
    truth[0, rng.integers(n_species)] = 1  # at least one positive overall
    if ties:
        scores = rng.integers(0, 3, size=(n_samples, n_species)) / 2.0
    else:
        # A permutation per row: no ties within a sample.
        scores = np.argsort(rng.random((n_samples, n_species)), axis=1) / n_species
    return truth, scores


# --- LWLRAP: hand-worked examples -------------------------------------------------


def test_lwlrap_one_sample_by_hand():
    # Ranking by score: class 0 (0.9), class 1 (0.8), class 2 (0.1).
    # Positives: class 0 at rank 1 -> 1 hit / rank 1 = 1
    #            class 2 at rank 3 -> 2 hits / rank 3 = 2/3
    # LWLRAP = (1 + 2/3) / 2 = 5/6
    assert lwlrap(np.array([[1, 0, 1]]), np.array([[0.9, 0.8, 0.1]])) == pytest.approx(5 / 6)


def test_lwlrap_two_samples_by_hand():
    # Sample 1: truth [1,0,0], scores [0.1,0.9,0.5] -> order 1,2,0.
    #   class 0 at rank 3 -> 1/3
    # Sample 2: truth [0,1,1], scores [0.2,0.7,0.9] -> order 2,1,0.
    #   class 2 at rank 1 -> 1/1; class 1 at rank 2 -> 2/2
    # LWLRAP = (1/3 + 1 + 1) / 3 positive labels = 7/9
    truth = np.array([[1, 0, 0], [0, 1, 1]])
    scores = np.array([[0.1, 0.9, 0.5], [0.2, 0.7, 0.9]])
    assert lwlrap(truth, scores) == pytest.approx(7 / 9)
    per_species, weights = per_species_lwlrap(truth, scores)
    np.testing.assert_allclose(per_species, [1 / 3, 1, 1])
    np.testing.assert_allclose(weights, [1 / 3, 1 / 3, 1 / 3])


def test_lwlrap_is_label_weighted_not_sample_averaged():
    # Sample 1: truth [1,1,1,0], scores [0.1,0.2,0.3,0.9] -> order 3,2,1,0.
    #   class 2 at rank 2 -> 1/2; class 1 at rank 3 -> 2/3; class 0 at rank 4 -> 3/4
    # Sample 2: truth [0,0,0,1], scores [0.4,0.3,0.2,0.1] -> class 3 at rank 4 -> 1/4
    # LWLRAP = (1/2 + 2/3 + 3/4 + 1/4) / 4 labels = (13/6) / 4 = 13/24
    # (a per-sample mean would give ((23/12)/3 + 1/4) / 2 = 4/9 instead)
    truth = np.array([[1, 1, 1, 0], [0, 0, 0, 1]])
    scores = np.array([[0.1, 0.2, 0.3, 0.9], [0.4, 0.3, 0.2, 0.1]])
    assert lwlrap(truth, scores) == pytest.approx(13 / 24)
    per_species, weights = per_species_lwlrap(truth, scores)
    np.testing.assert_allclose(per_species, [3 / 4, 2 / 3, 1 / 2, 1 / 4])
    np.testing.assert_allclose(weights, [1 / 4] * 4)


def test_lwlrap_perfect_ranking_is_one():
    truth = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
    scores = np.where(truth, 0.9, 0.1) + np.array([0.01, 0.02, 0.03, 0.04])
    assert lwlrap(truth, scores) == 1.0


def test_lwlrap_ignores_samples_without_positives():
    truth = np.array([[1, 0, 1]])
    scores = np.array([[0.9, 0.8, 0.1]])
    with_empty = np.vstack([truth, [[0, 0, 0]]])
    scores_empty = np.vstack([scores, [[0.3, 0.2, 0.1]]])
    assert lwlrap(with_empty, scores_empty) == lwlrap(truth, scores)


def test_lwlrap_ties_break_by_column_index():
    # Equal scores: the lower column index is ranked first (stable sort).
    # truth [0,1]: class 1 at rank 2 -> 1/2.  truth [1,0]: class 0 at rank 1 -> 1.
    assert lwlrap([[0, 1]], [[0.5, 0.5]]) == pytest.approx(0.5)
    assert lwlrap([[1, 0]], [[0.5, 0.5]]) == pytest.approx(1.0)


def test_lwlrap_accepts_bool_int_and_float_truth():
    scores = np.array([[0.9, 0.8, 0.1]])
    for truth in ([[1, 0, 1]], [[True, False, True]], [[1.0, 0.0, 1.0]]):
        assert lwlrap(truth, scores) == pytest.approx(5 / 6)


# --- LWLRAP: against scikit-learn and the reference loop ----------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(1, 40),
    n_species=st.integers(1, 30),
)
def test_lwlrap_matches_sklearn_weighted_lrap_without_ties(seed, n_samples, n_species):
    truth, scores = _random_problem(seed, n_samples, n_species)
    expected = label_ranking_average_precision_score(truth, scores, sample_weight=truth.sum(axis=1))
    assert lwlrap(truth, scores) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_lwlrap_matches_reference_loop_with_ties(seed):
    truth, scores = _random_problem(seed, 25, 24, ties=True)
    assert lwlrap(truth, scores) == pytest.approx(_reference_lwlrap(truth, scores), rel=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_per_species_decomposition_sums_to_total(seed):
    truth, scores = _random_problem(seed, 30, 24, ties=seed % 2 == 0)
    truth[:, 5] = 0  # a species with no positives gets weight 0
    per_species, weights = per_species_lwlrap(truth, scores)
    assert per_species.shape == weights.shape == (24,)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[5] == 0.0 and per_species[5] == 0.0
    assert (per_species * weights).sum() == lwlrap(truth, scores)


# --- Average precision -----------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn_columnwise(seed):
    truth, scores = _random_problem(seed, 40, 12, ties=seed % 2 == 1)
    truth[:, 3] = 0
    ap = average_precision_per_species(truth, scores)
    assert ap.shape == (12,)
    assert np.isnan(ap[3])
    for j in range(12):
        if j != 3 and truth[:, j].any():
            assert ap[j] == pytest.approx(average_precision_score(truth[:, j], scores[:, j]))
    assert macro_average_precision(truth, scores) == pytest.approx(np.nanmean(ap))


def test_macro_average_precision_by_hand():
    # Species 0: positives are the two highest scores -> AP 1.
    # Species 1: column scores [0.8, 0.5, 0.4], one positive (0.5) ranked 2nd of 3
    #   -> AP = precision at it = 1/2.
    # Species 2: no positives -> ignored.  Mean = (1 + 1/2) / 2 = 3/4.
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.8, 0.1], [0.7, 0.5, 0.2], [0.1, 0.4, 0.3]])
    np.testing.assert_allclose(average_precision_per_species(truth, scores), [1.0, 0.5, np.nan])
    assert macro_average_precision(truth, scores) == pytest.approx(0.75)


# --- Top-1 and confusion counts --------------------------------------------------

_TRUTH = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
_SCORES = np.array(
    [
        [0.9, 0.1, 0.2],  # top 0, present      -> hit;  single species 0 -> (0, 0)
        [0.5, 0.1, 0.4],  # top 0, absent       -> miss; two species, not in confusion
        [0.9, 0.0, 0.0],  # no positives        -> skipped everywhere
        [0.1, 0.8, 0.3],  # top 1, absent       -> miss; single species 0 -> (0, 1)
        [0.2, 0.2, 0.7],  # top 2, present      -> hit;  single species 2 -> (2, 2)
    ]
)


def test_top1_accuracy_by_hand():
    # 4 samples with positives, 2 hits -> 1/2
    assert top1_accuracy(_TRUTH, _SCORES) == pytest.approx(0.5)


def test_top1_accuracy_tie_goes_to_lowest_index():
    assert top1_accuracy([[1, 0]], [[0.5, 0.5]]) == 1.0
    assert top1_accuracy([[0, 1]], [[0.5, 0.5]]) == 0.0


def _confusion_counts(truth, scores) -> np.ndarray:
    # The matrix dvc plots' confusion template draws from the rows.
    rows = confusion_rows(truth, scores, ["a", "b", "c"])
    table = pd.crosstab(rows["actual"], rows["predicted"]).reindex(index=list("abc"), columns=list("abc"))
    return table.fillna(0).to_numpy().astype(int)


def test_confusion_counts_by_hand():
    counts = _confusion_counts(_TRUTH, _SCORES)
    expected = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(counts, expected)


def test_confusion_counts_without_single_species_samples_is_zero():
    assert len(confusion_rows([[1, 1, 0]], [[0.1, 0.2, 0.3]], ["a", "b", "c"])) == 0
    np.testing.assert_array_equal(_confusion_counts([[1, 1, 0]], [[0.1, 0.2, 0.3]]), np.zeros((3, 3), dtype=int))


# --- Precision/recall curve ---------------------------------------------------------


def test_pr_points_are_thinned_and_ordered():
    rng = np.random.default_rng(0)
    truth = (rng.random((200, 24)) < 0.1).astype(int)
    scores = rng.random((200, 24))
    full = precision_recall_curve_points(truth, scores, max_points=10**6)
    points = precision_recall_curve_points(truth, scores, max_points=50)
    assert full["precision"].size > 50
    assert set(points) == {"precision", "recall", "threshold"}
    sizes = {points[k].size for k in points}
    assert len(sizes) == 1 and 2 <= sizes.pop() <= 50
    for key in points:
        assert np.isfinite(points[key]).all()
        # first and last points of the full curve are kept
        assert points[key][0] == full[key][0]
        assert points[key][-1] == full[key][-1]
    assert np.all(np.diff(points["recall"]) <= 0)  # recall non-increasing
    assert np.all(np.diff(points["threshold"]) > 0)  # threshold increasing
    assert points["recall"][0] == 1.0 and points["recall"][-1] == 0.0
    assert points["precision"][-1] == 1.0
    # deterministic
    again = precision_recall_curve_points(truth, scores, max_points=50)
    for key in points:
        np.testing.assert_array_equal(points[key], again[key])


def test_pr_points_small_curve_is_not_thinned():
    truth = np.array([[1, 0], [0, 1]])
    scores = np.array([[0.9, 0.2], [0.4, 0.6]])
    points = precision_recall_curve_points(truth, scores)
    # thresholds 0.2, 0.4, 0.6, 0.9 plus the final (recall 0) point
    assert points["precision"].size == 5
    np.testing.assert_allclose(points["recall"], [1, 1, 1, 0.5, 0])
    np.testing.assert_allclose(points["precision"], [0.5, 2 / 3, 1, 1, 1])
    assert points["threshold"][-1] > scores.max()


@pytest.mark.parametrize("bad", [1, 0, 2.5, True])
def test_pr_points_rejects_bad_max_points(bad):
    with pytest.raises(ValueError, match="max_points"):
        precision_recall_curve_points([[1, 0]], [[0.9, 0.1]], max_points=bad)


# --- Bad input --------------------------------------------------------------------

_ALL_FUNCTIONS = [
    lwlrap,
    per_species_lwlrap,
    average_precision_per_species,
    macro_average_precision,
    top1_accuracy,
    lambda truth, scores: confusion_rows(truth, scores, ["a", "b", "c"]),
    precision_recall_curve_points,
]


@pytest.mark.parametrize("func", _ALL_FUNCTIONS)
def test_mismatched_shapes_raise(func):
    with pytest.raises(ValueError, match="same shape"):
        func(np.ones((2, 3)), np.ones((2, 4)))


@pytest.mark.parametrize("func", _ALL_FUNCTIONS)
def test_one_dimensional_input_raises(func):
    with pytest.raises(ValueError, match="truth must be a 2-D"):
        func(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.1]))
    with pytest.raises(ValueError, match="scores must be a 2-D"):
        func(np.array([[1, 0, 1]]), np.array([0.9, 0.8, 0.1]))


@pytest.mark.parametrize("func", _ALL_FUNCTIONS)
def test_no_positives_raise(func):
    with pytest.raises(ValueError, match="no positive labels"):
        func(np.zeros((3, 4)), np.random.default_rng(0).random((3, 4)))


def test_non_binary_truth_raises():
    with pytest.raises(ValueError, match="only 0 and 1"):
        lwlrap([[2, 0, 1]], [[0.9, 0.8, 0.1]])


def test_non_finite_scores_raise():
    with pytest.raises(ValueError, match="finite"):
        lwlrap([[1, 0, 1]], [[np.nan, 0.8, 0.1]])
    with pytest.raises(ValueError, match="finite"):
        lwlrap([[1, 0, 1]], [[np.inf, 0.8, 0.1]])


def test_headline_summary_and_species_table():
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.2], [0.1, 0.3, 0.1], [0.7, 0.4, 0.9]])
    summary = score_summary(truth, scores)
    # Short keys only: dvc metrics show tracks this, per-species figures go to the table.
    assert summary == {
        "lwlrap": round(lwlrap(truth, scores), 6),
        "macro_ap": round(macro_average_precision(truth, scores), 6),
        "top1": round(top1_accuracy(truth, scores), 6),
    }
    table = species_table(truth, scores, ["a", "b", "c"])
    assert list(table["species"]) == ["a", "b", "c"] and list(table["positives"]) == [2, 1, 0]
    assert table["average_precision"].iloc[0] == 1.0 and table["average_precision"].iloc[1] == 0.5
    assert pd.isna(table["average_precision"].iloc[2])  # no positives: undefined, written empty


def test_species_names_are_a_last_column_and_nothing_without_them():
    truth = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.2], [0.2, 0.8, 0.1], [0.1, 0.3, 0.7], [0.6, 0.5, 0.1]])
    table = species_table(truth, scores, ["s0", "s1", "s2"])
    assert with_labels(table, None, ["s0", "s1", "s2"]) is table
    named = with_labels(table, ["Black Phoebe", "California Towhee", "Dark-eyed Junco"], ["s0", "s1", "s2"])
    assert list(named.columns) == [*table.columns, "label"]
    assert list(named["label"]) == ["Black Phoebe", "California Towhee", "Dark-eyed Junco"]
    pd.testing.assert_frame_equal(named.drop(columns="label"), table)
