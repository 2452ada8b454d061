"""The detector file: per-species thresholds chosen for a target precision, and frequency bands."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import precision_recall_curve

from rainforest.detect.thresholds import (
    build_detector,
    choose_threshold,
    detection_summary,
    frequency_bands,
    load_detector,
    precision_recall_by_threshold,
    save_detector,
    select_thresholds,
)
from rainforest.errors import ModelError


def brute_force_precision(truth: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    detected = scores >= threshold
    return truth[detected].sum() / detected.sum()


def test_precision_recall_by_threshold_matches_scikit_learn():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 2)  # ties, as sigmoid scores of similar windows have
    thresholds, precision, recall = precision_recall_by_threshold(truth, scores)
    assert (np.diff(thresholds) < 0).all() and (np.diff(recall) >= 0).all()
    expected_precision, expected_recall, expected_thresholds = precision_recall_curve(truth, scores)
    # scikit-learn: increasing thresholds, and a last point (recall 0) with no threshold.
    np.testing.assert_allclose(thresholds, expected_thresholds[::-1])
    np.testing.assert_allclose(precision, expected_precision[:-1][::-1])
    np.testing.assert_allclose(recall, expected_recall[:-1][::-1])


def test_lowest_threshold_reaching_the_target():
    truth = np.array([1, 1, 0, 1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    # precision at 0.9, 0.8: 1; 0.7: 2/3; 0.6: 3/4; 0.5: 3/5; 0.4: 4/6.
    choice = choose_threshold(truth, scores, 0.75)
    assert (choice.threshold, choice.rule) == (0.6, "target_precision")
    assert choice.precision == 0.75 and choice.recall == 0.75
    assert choose_threshold(truth, scores, 1.0).threshold == 0.8
    # Precision 2/3 is reached again at 0.4, further down: the lowest threshold wins.
    choice = choose_threshold(truth, scores, 0.65)
    assert (choice.threshold, choice.recall) == (0.4, 1.0)


def test_species_that_never_reaches_the_target_is_not_detected():
    truth = np.array([0, 1, 0, 1, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    # precision at 0.9: 0; 0.8: 1/2; 0.7: 1/3; 0.6: 2/4; 0.1: 3/5.
    choice = choose_threshold(truth, scores, 0.9)
    assert (choice.threshold, choice.rule, choice.precision, choice.recall) == (None, "not_reached", None, 0.0)
    assert choose_threshold(truth, scores, 0.6).threshold == 0.1


def test_species_without_validation_positives_is_not_detected():
    choice = choose_threshold(np.zeros(4), np.array([0.1, 0.2, 0.7, 0.3]), 0.9)
    assert (choice.threshold, choice.rule, choice.precision, choice.recall) == (None, "not_reached", None, None)


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=1, max_size=40),
    target=st.floats(0.05, 1.0),
)
def test_chosen_threshold_is_the_lowest_that_reaches_the_target(data, target):
    truth = np.array([present for present, _ in data], dtype=int)
    scores = np.array([score / 20 for _, score in data])
    choice = choose_threshold(truth, scores, target)
    precisions = {t: brute_force_precision(truth, scores, t) for t in np.unique(scores)}
    if max(precisions.values()) < target:
        assert (choice.threshold, choice.rule) == (None, "not_reached")
        return
    assert choice.rule == "target_precision"
    assert choice.precision == pytest.approx(precisions[choice.threshold]) and choice.precision >= target
    assert all(p < target for t, p in precisions.items() if t < choice.threshold)
    assert choice.recall == pytest.approx(truth[scores >= choice.threshold].sum() / truth.sum())


def test_select_thresholds_chooses_per_species():
    truth = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.1, 0.3], [0.8, 0.1], [0.85, 0.05]])
    first, second = select_thresholds(truth, scores, 1.0)
    assert first.threshold == 0.9 and first.recall == 0.5
    assert second.threshold == 0.3 and second.recall == 1.0


def events_table(rows: list[tuple[int, float, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["species_id", "f_min", "f_max", "present"])


def test_frequency_bands_from_present_calls_only():
    calls = [(0, 1000.0 + 10 * i, 3000.0 + 10 * i, True) for i in range(21)]
    lookalike = [(0, 50.0, 20000.0, False), (2, 100.0, 200.0, False)]
    bands = frequency_bands(events_table(calls + lookalike), 3, default=(50.0, 15000.0))
    # 5 % of the way along 1000 .. 1200 and 95 % along 3000 .. 3200.
    np.testing.assert_allclose(bands[0], [1010.0, 3190.0])
    np.testing.assert_allclose(bands[1], [50.0, 15000.0])  # no calls: the default
    np.testing.assert_allclose(bands[2], [50.0, 15000.0])  # only a lookalike: the default


def test_one_mislabelled_box_does_not_stretch_a_band():
    calls = [(0, 2000.0, 4000.0, True)] * 40 + [(0, 20.0, 22000.0, True)]
    low, high = frequency_bands(events_table(calls), 1, default=(0.0, 1.0))[0]
    assert (low, high) == (2000.0, 4000.0)


#: Model scores are float32, with more digits than a rounded threshold keeps.
SCORES = np.array([[0.712345678, 0.1, 0.9], [0.65, 0.2, 0.1], [0.6, 0.812345678, 0.2]], dtype=np.float32)


def make_detector():
    truth = np.array([[1, 0, 0], [0, 0, 1], [1, 1, 0]])  # s2 never reaches precision 0.9
    choices = select_thresholds(truth, SCORES, 0.9)
    bands = np.array([[100.0, 2000.04], [3000.0, 6000.0], [50.0, 15000.0]])
    return build_detector(["s0", "s1", "s2"], choices, bands, 0.9)


def test_detector_file_round_trip(tmp_path):
    detector = make_detector()
    save_detector(tmp_path / "detector.json", detector)
    loaded = load_detector(tmp_path / "detector.json", ["s0", "s1", "s2"])
    assert loaded == detector
    assert loaded.species[0].low_freq_hz == 100.0 and loaded.species[0].high_freq_hz == 2000.0
    # The thresholds are kept exact: the windows they were chosen at are still detected.
    assert (SCORES[[0, 2], [0, 1]] >= loaded.thresholds[:2]).all()
    assert loaded.species[0].validation_precision == 1.0 and loaded.species[0].validation_recall == 0.5
    # A species without a threshold is written as null and never detected.
    assert loaded.undetected == ["s2"] and loaded.thresholds[2] == np.inf
    values = json.loads((tmp_path / "detector.json").read_text())
    assert [entry["species"] for entry in values["species"]] == ["s0", "s1", "s2"]
    assert values["species"][2]["threshold"] is None


@pytest.mark.parametrize(
    ("content", "species", "message"),
    [
        (None, ["s0", "s1", "s2"], "detector file not found"),
        ("{not json", ["s0", "s1", "s2"], "not a detector file"),
        ('{"species": []}', ["s0", "s1", "s2"], "not a detector file"),
        ('{"target_precision": 0.9, "species": [{"species": "s0"}]}', ["s0"], "not a detector file"),
        (None, ["s0", "s1", "s2", "s3"], "are not the model's 4"),
    ],
)
def test_bad_detector_files_are_refused_naming_the_file(tmp_path, content, species, message):
    path = tmp_path / "detector.json"
    if content is None and len(species) == 4:
        save_detector(path, make_detector())
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ModelError, match=message) as error:
        load_detector(path, species)
    assert str(path) in str(error.value)


def test_detection_summary_pools_every_decision():
    truth = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.6], [0.1, 0.3], [0.4, 0.7], [0.85, 0.05]])
    # s0 reaches precision 0.6 at 0.4 (2 of the 3 windows at or above it); s1 never does.
    detector = build_detector(["s0", "s1"], select_thresholds(truth, scores, 0.6), np.zeros((2, 2)), 0.6)
    assert detector.undetected == ["s1"]
    summary = detection_summary(truth, scores, detector)
    assert summary == {"precision": round(2 / 3, 6), "recall": round(2 / 3, 6)}  # s1's positive is missed
    table = detector.table()
    assert list(table.columns) == ["species", "threshold", "precision", "recall"]
    assert table.iloc[0].to_dict() == {"species": "s0", "threshold": 0.4, "precision": round(2 / 3, 6), "recall": 1.0}
    assert table.iloc[1]["species"] == "s1" and pd.isna(table.iloc[1]["threshold"])
    assert pd.isna(table.iloc[1]["precision"]) and table.iloc[1]["recall"] == 0.0
