"""Tests of rainforest.split: recording-level, stratified, seeded folds (a holdout or cross-validation)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from rainforest.config import SplitSettings
from rainforest.errors import ConfigError
from rainforest.split import (
    AUTO_CROSS_VALIDATION_BELOW,
    AUTO_FOLDS,
    choose_folds,
    fold_rows,
    split_recordings,
    trained_rows,
    validation_folds,
)


def holdout(ids, strata, fraction, seed):
    return split_recordings(ids, strata, folds=1, validation_fraction=fraction, seed=seed)


def window_rows(ids, split, subset):
    train, validation = fold_rows(ids, split, 0)
    return train if subset == "train" else validation


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
        set(split.loc[split["fold"] == -1, "recording_id"]),
        set(split.loc[split["fold"] == 0, "recording_id"]),
    )


def test_one_row_per_recording_sorted():
    ids, strata = _windows()
    split = holdout(ids, strata, 0.2, seed=7)
    assert list(split.columns) == ["recording_id", "fold"]
    assert split["recording_id"].tolist() == sorted(set(ids))
    assert set(split["fold"]) == {-1, 0}
    assert validation_folds(split) == [0]


def test_no_recording_on_both_sides():
    ids, strata = _windows()
    split = holdout(ids, strata, 0.2, seed=7)
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
    split = holdout(ids, strata, fraction, seed=1)
    recording_share = (split["fold"] == 0).mean()
    window_share = len(window_rows(ids, split, "validation")) / len(ids)
    assert recording_share == pytest.approx(fraction, abs=0.07)
    assert window_share == pytest.approx(fraction, abs=0.07)


def test_same_seed_same_split():
    ids, strata = _windows()
    a = holdout(ids, strata, 0.2, seed=3)
    b = holdout(ids.copy(), strata.copy(), 0.2, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_different_seed_different_split():
    ids, strata = _windows()
    a = holdout(ids, strata, 0.2, seed=3)
    b = holdout(ids, strata, 0.2, seed=4)
    assert not a["fold"].equals(b["fold"])
    # Both still respect the fraction.
    assert (b["fold"] == 0).mean() == pytest.approx(0.2, abs=0.07)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_stratum_on_both_sides(seed):
    ids, strata = _windows(n_species=10, recordings_per_species=15, seed=seed)
    split = holdout(ids, strata, 0.2, seed=seed)
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
    split = holdout(ids, strata, 0.25, seed=0)
    train, validation = _sides(split)
    assert not train & validation
    assert len(train | validation) == 100


def test_fold_rows():
    split = pd.DataFrame({"recording_id": ["a", "b", "c"], "fold": [-1, 0, -1]})
    ids = np.array(["c", "a", "b", "z", "a", "b"], dtype=object)
    train, validation = fold_rows(ids, split, 0)
    np.testing.assert_array_equal(validation, [2, 5])
    # A recording absent from the split (reviewed after the split ran) is trained on, never validated on.
    np.testing.assert_array_equal(train, [0, 1, 3, 4])
    assert fold_rows(np.array([], dtype=object), split, 0)[0].size == 0
    # A refit trains on every window and validates on none.
    everything, none = fold_rows(ids, split, None)
    np.testing.assert_array_equal(everything, np.arange(6))
    assert none.size == 0
    assert train.dtype.kind == "i" and validation.dtype.kind == "i"


def test_too_few_recordings_for_the_fraction_names_the_setting():
    with pytest.raises(ConfigError, match="split.validation_fraction"):
        holdout(np.array(["a", "a", "b", "c"]), np.array([0, 1, 0, 1]), 0.2, seed=0)


def test_many_small_strata_fall_back_to_a_grouped_split(caplog):
    # 16 recordings with a species each: every stratum is smaller than 5 folds.
    ids = np.array([f"r{i}" for i in range(16)])
    split = holdout(ids, np.arange(16), 0.2, seed=0)
    assert 2 <= (split["fold"] == 0).sum() <= 5
    assert "splitting by recording only" in caplog.text


# --- cross-validation -----------------------------------------------------------


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_cross_validation_validates_every_recording_once(folds):
    ids, strata = _windows(n_species=6, recordings_per_species=6, seed=folds)
    split = split_recordings(ids, strata, folds=folds, validation_fraction=0.2, seed=7)
    assert validation_folds(split) == list(range(folds))
    assert split["fold"].between(0, folds - 1).all()
    validated = np.concatenate([fold_rows(ids, split, fold)[1] for fold in range(folds)])
    # Every window is validated by exactly one fold's model, which does not train on it.
    np.testing.assert_array_equal(np.sort(validated), np.arange(len(ids)))
    for fold in range(folds):
        train, validation = fold_rows(ids, split, fold)
        assert not set(ids[train]) & set(ids[validation])
    np.testing.assert_array_equal(trained_rows(ids, split), np.arange(len(ids)))
    # Stratified: each species has recordings in every fold (6 recordings, at most 5 folds).
    for species in range(6):
        assert {split.set_index("recording_id").loc[r, "fold"] for r in set(ids[strata == species])} == set(
            range(folds)
        )


def test_a_holdout_trains_on_everything_but_its_validation_recordings():
    ids, strata = _windows()
    split = holdout(ids, strata, 0.2, seed=7)
    np.testing.assert_array_equal(trained_rows(ids, split), fold_rows(ids, split, 0)[0])


def test_the_first_fold_of_cross_validation_is_the_holdout():
    # The same seed and number of groups hold out the same recordings.
    ids, strata = _windows()
    cross = split_recordings(ids, strata, folds=5, validation_fraction=0.2, seed=3)
    held = holdout(ids, strata, 0.2, seed=3)
    assert set(cross.loc[cross["fold"] == 0, "recording_id"]) == set(held.loc[held["fold"] == 0, "recording_id"])


def test_more_folds_than_recordings_names_the_setting():
    with pytest.raises(ConfigError, match=r"split.folds \(5\).*only 3 labelled recordings.*lower the folds"):
        split_recordings(np.array(["a", "b", "c"]), np.zeros(3), folds=5, validation_fraction=0.2, seed=0)


def _settings(folds):
    return SplitSettings(seed=7, folds=folds, validation_fraction=0.2)


def test_auto_cross_validates_when_a_species_has_few_recordings():
    folds, reason = choose_folds(_settings("auto"), {"frog": 30, "cricket": AUTO_CROSS_VALIDATION_BELOW - 1})
    assert folds == AUTO_FOLDS
    assert "cricket" in reason and str(AUTO_CROSS_VALIDATION_BELOW - 1) in reason


def test_auto_holds_out_when_every_species_has_enough_recordings():
    assert choose_folds(_settings("auto"), {"frog": 30, "cricket": AUTO_CROSS_VALIDATION_BELOW})[0] == 1


@pytest.mark.parametrize("folds", [1, 3, 7])
def test_a_number_of_folds_is_kept(folds):
    assert choose_folds(_settings(folds), {"frog": 2}) == (folds, f"split.folds is {folds}")


@pytest.mark.parametrize("value", [0, 21, 2.5, "five", None])
def test_bad_folds_are_refused(value):
    with pytest.raises(ValueError, match="folds"):
        _settings(value)


def test_docstring_examples_run():
    import doctest

    import rainforest.split

    failures, tried = doctest.testmod(rainforest.split)
    assert tried > 0 and failures == 0


def _window_set(path, species_per_recording: list[int]):
    from rainforest.window_sets import WindowWriter

    n, n_species = len(species_per_recording), max(species_per_recording) + 1
    species = np.array(species_per_recording, dtype=np.int16)
    with WindowWriter(
        path,
        n_mels=4,
        n_frames=3,
        n_species=n_species,
        n_samples=None,
        attrs={"species": [f"s{i}" for i in range(n_species)]},
    ) as writer:
        writer.append(
            spectrograms=np.zeros((n, 4, 3), np.float32),
            targets=np.eye(n_species, dtype=np.uint8)[species],
            masks=np.eye(n_species, dtype=np.uint8)[species],
            recording_ids=np.array([f"r{i:02d}" for i in range(n)], dtype=object),
            start_times=np.zeros(n),
            end_times=np.ones(n),
            event_species=species,
            event_present=np.ones(n, np.uint8),
        )


def test_the_split_stage_names_species_too_rare_for_their_folds(tmp_path, caplog):
    from rainforest.split import split_window_set

    caplog.set_level(logging.INFO)
    # s0: 12 recordings; s1: 3, fewer than 5 folds; s2: one recording.
    _window_set(tmp_path / "windows.h5", [0] * 12 + [1] * 3 + [2])
    split = split_window_set(tmp_path / "windows.h5", tmp_path / "split.csv", _settings("auto"))
    assert validation_folds(split) == list(range(AUTO_FOLDS))
    assert "5-fold cross-validation (auto: species s2 has 1 labelled recording, fewer than 10)" in caplog.text
    assert (
        "species s1 has 3 labelled recordings, fewer than split.folds (5): 2 of the folds validate nothing"
        in caplog.text
    )
    assert "species s2 has one labelled recording" in caplog.text
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "split.csv", dtype={"recording_id": str}), split)
