"""Tests of rainforest.split: recording-level, stratified, seeded splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rainforest.split import SUBSETS, split_recordings, window_rows


def _windows(n_species: int = 8, recordings_per_species: int = 25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Windows of recordings each holding 1-4 windows of one species."""
    rng = np.random.default_rng(seed)
    ids, strata = [], []
    for species in range(n_species):
        for r in range(recordings_per_species):
            n = int(rng.integers(1, 5))
            ids += [f"rec{species:02d}_{r:03d}"] * n
            strata += [species] * n
    order = rng.permutation(len(ids))
    return np.array(ids, dtype=object)[order], np.array(strata)[order]


def _sides(split: pd.DataFrame) -> tuple[set, set]:
    return (
        set(split.loc[split["subset"] == "train", "recording_id"]),
        set(split.loc[split["subset"] == "validation", "recording_id"]),
    )


def test_one_row_per_recording_sorted():
    ids, strata = _windows()
    split = split_recordings(ids, strata, 0.2, seed=7)
    assert list(split.columns) == ["recording_id", "subset"]
    assert split["recording_id"].tolist() == sorted(set(ids))
    assert set(split["subset"]) == set(SUBSETS)


def test_no_recording_on_both_sides():
    ids, strata = _windows()
    split = split_recordings(ids, strata, 0.2, seed=7)
    train, validation = _sides(split)
    assert train and validation
    assert not train & validation
    assert train | validation == set(ids)
    # Every window of a recording lands on its recording's side.
    train_rows = window_rows(ids, split, "train")
    validation_rows = window_rows(ids, split, "validation")
    assert set(ids[train_rows]) == train
    assert set(ids[validation_rows]) == validation
    assert len(train_rows) + len(validation_rows) == len(ids)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.25, 0.3, 0.4])
def test_validation_share_near_fraction(fraction):
    ids, strata = _windows(recordings_per_species=40)
    split = split_recordings(ids, strata, fraction, seed=1)
    recording_share = (split["subset"] == "validation").mean()
    window_share = len(window_rows(ids, split, "validation")) / len(ids)
    assert recording_share == pytest.approx(fraction, abs=0.07)
    assert window_share == pytest.approx(fraction, abs=0.07)


def test_same_seed_same_split():
    ids, strata = _windows()
    a = split_recordings(ids, strata, 0.2, seed=3)
    b = split_recordings(ids.copy(), strata.copy(), 0.2, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_different_seed_different_split():
    ids, strata = _windows()
    a = split_recordings(ids, strata, 0.2, seed=3)
    b = split_recordings(ids, strata, 0.2, seed=4)
    assert not a["subset"].equals(b["subset"])
    # Both still respect the fraction.
    assert (b["subset"] == "validation").mean() == pytest.approx(0.2, abs=0.07)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_stratum_on_both_sides(seed):
    ids, strata = _windows(n_species=10, recordings_per_species=15, seed=seed)
    split = split_recordings(ids, strata, 0.2, seed=seed)
    train_rows = window_rows(ids, split, "train")
    validation_rows = window_rows(ids, split, "validation")
    for stratum in range(10):
        assert np.any(strata[train_rows] == stratum), f"stratum {stratum} missing from training"
        assert np.any(strata[validation_rows] == stratum), f"stratum {stratum} missing from validation"
    # Balanced: each stratum's validation share is near the fraction.
    for stratum in range(10):
        share = np.sum(strata[validation_rows] == stratum) / np.sum(strata == stratum)
        assert 0.05 < share < 0.4, f"stratum {stratum}: {share:.2f} of its windows in validation"


def test_recordings_with_several_strata_stay_whole():
    rng = np.random.default_rng(5)
    ids = np.array([f"r{i // 3:03d}" for i in range(300)], dtype=object)
    strata = rng.integers(0, 5, 300)
    split = split_recordings(ids, strata, 0.25, seed=0)
    train, validation = _sides(split)
    assert not train & validation
    assert len(train | validation) == 100


def test_window_rows():
    split = pd.DataFrame({"recording_id": ["a", "b", "c"], "subset": ["train", "validation", "train"]})
    ids = np.array(["c", "a", "b", "z", "a", "b"], dtype=object)
    np.testing.assert_array_equal(window_rows(ids, split, "train"), [0, 1, 4])
    np.testing.assert_array_equal(window_rows(ids, split, "validation"), [2, 5])
    # A recording absent from the split is on neither side.
    assert 3 not in window_rows(ids, split, "train") and 3 not in window_rows(ids, split, "validation")
    assert window_rows(np.array([], dtype=object), split, "train").size == 0
    assert window_rows(ids, split, "test").size == 0
    assert window_rows(ids, split, "train").dtype.kind == "i"


def test_too_few_recordings_for_the_fraction_names_the_setting():
    from rainforest.errors import ConfigError

    with pytest.raises(ConfigError, match="split.validation_fraction"):
        split_recordings(np.array(["a", "a", "b", "c"]), np.array([0, 1, 0, 1]), 0.2, seed=0)


def test_many_small_strata_fall_back_to_a_grouped_split(caplog):
    # 16 recordings with a species each: every stratum is smaller than 5 folds.
    ids = np.array([f"r{i}" for i in range(16)])
    split = split_recordings(ids, np.arange(16), 0.2, seed=0)
    assert 2 <= (split["subset"] == "validation").sum() <= 5
    assert "splitting by recording only" in caplog.text
