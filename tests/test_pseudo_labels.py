"""Pseudo-labels: choosing them from scores, the fold each belongs to, and training beside them."""

import h5py
import keras
import numpy as np
import pandas as pd
import pytest

from rainforest.config import PseudoLabelSettings, load_settings, settings_from_dict
from rainforest.errors import ConfigError
from rainforest.model import label_weights
from rainforest.pseudo_labels import (
    PSEUDO_LABEL_COLUMNS,
    PseudoLabels,
    pool_folds,
    scoring_members,
    select_pseudo_labels,
)
from rainforest.split import fold_rows
from rainforest.training import Pool, load_training_data, select_training_windows, with_pseudo_labels
from rainforest.window_sets import WindowRows, WindowWriter
from tests.support.paths import PARAMS_PATH, committed_params

SETTINGS = load_settings(PARAMS_PATH)
N_MELS, N_FRAMES, N_SPECIES = 4, 5, 3
SPECIES = ["s0", "s1", "s2"]


def pseudo_settings(**changes) -> PseudoLabelSettings:
    """The committed pseudo-label settings, validated again with ``changes``."""
    return PseudoLabelSettings(**SETTINGS.pseudo_label.model_dump() | changes)


# --- choosing pseudo-labels ------------------------------------------------------------


def test_thresholds_are_inclusive():
    """params.yaml says at least positive_score and at most absence_score."""
    settings = pseudo_settings(positive_score=0.9, absence_score=0.1, max_per_species=10)
    scores = np.array([[0.9], [0.8999], [0.1], [0.1001], [0.5]])
    targets, masks = select_pseudo_labels(scores, settings, np.random.default_rng(0))
    assert targets[:, 0].tolist() == [1, 0, 0, 0, 0]
    assert masks[:, 0].tolist() == [1, 0, 1, 0, 0]
    assert targets.dtype == masks.dtype == np.uint8


def test_the_cap_keeps_the_highest_scoring_positives():
    """Capped positives are the most confident ones, so a common species cannot swamp the rest."""
    settings = pseudo_settings(positive_score=0.9, absence_score=0.1, max_per_species=2)
    # Species 0: five positives, the two highest at rows 3 and 1; species 1: one, below the cap.
    scores = np.array([[0.91, 0.5], [0.98, 0.5], [0.95, 0.95], [0.99, 0.5], [0.92, 0.5]])
    targets, masks = select_pseudo_labels(scores, settings, np.random.default_rng(0))
    assert np.flatnonzero(targets[:, 0]).tolist() == [1, 3]
    assert np.flatnonzero(targets[:, 1]).tolist() == [2]
    # A positive is a known label; nothing else is known here (no score at or below 0.1).
    np.testing.assert_array_equal(masks, targets)


def test_absences_are_capped_drawn_reproducibly_and_never_above_the_score():
    """Absences are drawn (the lowest scores teach least) with the round's seed: the same run, the same labels."""
    settings = pseudo_settings(positive_score=0.9, absence_score=0.2, max_per_species=5)
    scores = np.random.default_rng(1).uniform(0, 1, (200, 2))
    targets, masks = select_pseudo_labels(scores, settings, np.random.default_rng(7))
    again, masks_again = select_pseudo_labels(scores, settings, np.random.default_rng(7))
    np.testing.assert_array_equal(masks, masks_again)
    np.testing.assert_array_equal(targets, again)
    absent = (masks == 1) & (targets == 0)
    for species in range(2):
        # Many more than 5 score at most 0.2 (about 40): the cap holds.
        assert (scores[:, species] <= 0.2).sum() > 5
        assert absent[:, species].sum() == 5
        assert (scores[absent[:, species], species] <= 0.2).all()
        assert targets[:, species].sum() == 5 and (scores[targets[:, species] == 1, species] >= 0.9).all()
    # Drawn, not the lowest: with another seed another set (for these scores and seeds).
    other = select_pseudo_labels(scores, settings, np.random.default_rng(8))[1]
    assert not np.array_equal(other, masks)


# --- folds ---------------------------------------------------------------------------------


def test_a_pool_window_keeps_its_recordings_fold_or_draws_a_stable_one():
    """A pool window's fold keeps cross-validation honest: its recording's, or one drawn from its id."""
    split = pd.DataFrame({"recording_id": ["a", "b", "c"], "fold": [0, 1, 2]})
    folds = [0, 1, 2]
    ids = np.array(["a", "b", "c", "a", "pool/x", "test/y", "r9"], dtype=object)
    window_folds = pool_folds(ids, split, folds)
    assert window_folds[:4].tolist() == [0, 1, 2, 0]
    assert set(window_folds[4:]) <= set(folds)
    # The same every run and for every window of a recording, whatever else is in the pool.
    np.testing.assert_array_equal(pool_folds(ids[::-1], split, folds), window_folds[::-1])
    unlisted = np.array([f"rec{i}" for i in range(60)], dtype=object)
    drawn = pool_folds(unlisted, split, folds)
    np.testing.assert_array_equal(drawn, pool_folds(np.repeat(unlisted, 2)[::2], split, folds))
    # Spread over the folds rather than piled on one.
    assert set(drawn) == set(folds)
    # Each window is scored by its own fold's model, never by one that trained on its recording.
    np.testing.assert_array_equal(np.asarray(folds)[scoring_members(window_folds, folds)], window_folds)


def test_folds_need_not_be_consecutive():
    # A split whose folds are 1 and 3 (a fold may end up empty): members index into the list.
    split = pd.DataFrame({"recording_id": ["a", "b"], "fold": [3, 1]})
    window_folds = pool_folds(np.array(["a", "b", "z"], dtype=object), split, [1, 3])
    assert window_folds[:2].tolist() == [3, 1] and window_folds[2] in (1, 3)
    members = scoring_members(window_folds, [1, 3])
    assert members[:2].tolist() == [1, 0]


def test_a_holdout_scores_everything_with_its_one_model():
    """A holdout has one model: it scores every pool window."""
    split = pd.DataFrame({"recording_id": ["train", "val"], "fold": [-1, 0]})
    window_folds = pool_folds(np.array(["train", "val", "pool/new"], dtype=object), split, [0])
    # Trained-on and unlisted recordings are -1: every model (the refit too) may learn from them.
    assert window_folds.tolist() == [-1, 0, -1]
    assert scoring_members(window_folds, [0]).tolist() == [0, 0, 0]


# --- one round's labels ---------------------------------------------------------------------


def round_labels():
    """Six pool windows of two folds: rows 0, 2, 3 and 5 get labels."""
    settings = pseudo_settings(positive_score=0.9, absence_score=0.1, max_per_species=10)
    scores = np.array(
        [
            [0.95, 0.5, 0.5],  # 0: s0 present
            [0.5, 0.5, 0.5],  # 1: nothing known
            [0.05, 0.92, 0.5],  # 2: s0 absent, s1 present
            [0.5, 0.5, 0.02],  # 3: s2 absent
            [0.3, 0.6, 0.7],  # 4: nothing known
            [0.99, 0.5, 0.08],  # 5: s0 present, s2 absent
        ]
    )
    window_folds = np.array([0, 1, 1, 0, 0, 1])
    return PseudoLabels.of(scores, window_folds, settings, seed=3), scores


def test_only_windows_with_a_known_label_are_kept():
    """Pool windows with no known label would teach nothing: they are left out."""
    labels, scores = round_labels()
    assert labels.rows.tolist() == [0, 2, 3, 5]
    assert labels.folds.tolist() == [0, 1, 0, 1]
    np.testing.assert_array_equal(labels.scores, scores[[0, 2, 3, 5]])
    assert labels.targets.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]]
    assert labels.masks.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1]]


def test_a_fold_never_trains_on_its_own_labels():
    """A fold's model must not learn from labels its own model gave (its validation recordings')."""
    labels, _ = round_labels()
    assert labels.for_fold(0).tolist() == [False, True, False, True]
    assert labels.for_fold(1).tolist() == [True, False, True, False]
    assert labels.for_fold(None).tolist() == [True] * 4
    # A holdout's validation fold 0; -1 labels teach every model.
    assert PseudoLabels(*(np.array(v) for v in ([1, 2], [-1, 0], [[1]] * 2, [[1]] * 2, [[1.0]] * 2))).for_fold(
        0
    ).tolist() == [True, False]


def test_counts_and_table():
    """The counts and data/pseudo_labels.csv say which label each window got, and why."""
    labels, _ = round_labels()
    counts = labels.counts(SPECIES)
    assert counts.to_dict("list") == {"species": SPECIES, "positives": [2, 1, 0], "absences": [1, 0, 2]}
    ids = np.array([f"r{i}" for i in range(6)], dtype=object)
    starts = np.arange(6) * 10.0
    table = labels.table(SPECIES, ids, starts)
    assert ["round", *table.columns] == PSEUDO_LABEL_COLUMNS
    # One row per known label, window by window, in species order.
    assert table["window"].tolist() == [0, 2, 2, 3, 5, 5]
    assert table["species"].tolist() == ["s0", "s0", "s1", "s2", "s0", "s2"]
    assert table["label"].tolist() == ["present", "absent", "present", "absent", "present", "absent"]
    assert table["recording_id"].tolist() == ["r0", "r2", "r2", "r3", "r5", "r5"]
    assert table["start"].tolist() == [0.0, 20.0, 20.0, 30.0, 50.0, 50.0]
    assert table["fold"].tolist() == [0, 1, 1, 0, 1, 1]
    np.testing.assert_allclose(table["score"], [0.95, 0.05, 0.92, 0.02, 0.99, 0.08])


def test_no_confident_score_gives_no_labels():
    """A round where the model is confident of nothing gives empty labels, not an error."""
    settings = pseudo_settings(positive_score=0.9, absence_score=0.1)
    labels = PseudoLabels.of(np.full((4, 2), 0.5), np.zeros(4, int), settings, seed=0)
    assert len(labels.rows) == 0 and labels.targets.shape == (0, 2)
    assert labels.counts(["a", "b"])["positives"].tolist() == [0, 0]
    assert len(labels.table(["a", "b"], np.array(["r"] * 4, dtype=object), np.zeros(4))) == 0


# --- training beside them -------------------------------------------------------------------


def write_set(path, ids, *, seed, targets=None, masks=None, spectrograms=True):
    """A small window set (distinct random spectrograms) of windows of recordings ``ids``."""
    n = len(ids)
    rng = np.random.default_rng(seed)
    zeros = np.zeros((n, N_SPECIES), np.uint8)
    with WindowWriter(
        path, n_mels=N_MELS, n_frames=N_FRAMES, n_species=N_SPECIES, n_samples=None, attrs={"species": SPECIES}
    ) as writer:
        writer.append(
            spectrograms=rng.normal(-50, 10, (n, N_MELS, N_FRAMES)).astype(np.float32),
            targets=zeros if targets is None else targets,
            masks=zeros if masks is None else masks,
            recording_ids=np.array(ids, dtype=object),
            start_times=np.arange(n, dtype=np.float64),
            end_times=np.arange(n, dtype=np.float64) + 1,
            event_species=np.full(n, -1, np.int16),
            event_present=np.ones(n, np.uint8),
        )
    with h5py.File(path, "r") as file:
        return file["spectrograms"][()]


@pytest.fixture
def training_files(tmp_path):
    """A labelled window set of four recordings in two folds, and a pool of six windows."""
    ids = ["a", "a", "b", "b", "c", "d"]
    species = np.array([0, 1, 2, 0, 1, 2])
    targets = np.eye(N_SPECIES, dtype=np.uint8)[species]
    masks = targets.copy()
    masks[0] = 1  # window 0 knows every species: s0 present, s1 and s2 absent
    labelled = write_set(tmp_path / "windows.h5", ids, seed=0, targets=targets, masks=masks)
    pool = write_set(tmp_path / "pool.h5", ["pool/x", "a", "pool/y", "c", "d", "test/z"], seed=1)
    split = pd.DataFrame({"recording_id": list("abcd"), "fold": [0, 1, 0, 1]})
    return tmp_path, split, labelled, pool


def test_pseudo_labels_join_a_folds_training_windows(training_files):
    """Each fold trains on its windows and the other folds' pseudo-labels, these weighted by weight."""
    folder, split, labelled, pool_spectrograms = training_files
    settings = SETTINGS.train.model_copy(update={"loss": "masked_bce", "unknown_label_weight": 0.25})
    pool = Pool.read(folder / "pool.h5", None, split)
    labels, _ = round_labels()
    # round_labels' folds are those of its six windows; these are the pool's own.
    labels = PseudoLabels(labels.rows, pool.folds[labels.rows], labels.targets, labels.masks, labels.scores)
    assert pool.folds[[1, 3, 4]].tolist() == [0, 0, 1]
    for fold in [0, 1, None]:
        train, _ = load_training_data(folder / "windows.h5", split, fold, folder / "none.h5", use_augmented=False)
        n_train = len(train["targets"])
        chosen = labels.rows[labels.for_fold(fold)]
        joined = with_pseudo_labels(train, pool.inputs, labels, fold, settings, weight=0.4)
        assert len(joined["inputs"]) == n_train + len(chosen)
        for name in ("targets", "masks", "event_species", "event_present", "label_weights"):
            assert len(joined[name]) == n_train + len(chosen), name
        # The training windows first, as they were, then the chosen pool windows, read from the pool file.
        kept = fold_rows(np.array(list("aabbcd"), dtype=object), split, fold)[0]
        np.testing.assert_array_equal(joined["inputs"][:n_train], labelled[kept])
        np.testing.assert_array_equal(joined["inputs"][n_train:], pool_spectrograms[chosen])
        # A fold never trains on a pseudo-label scored by its own model (that of its own recordings).
        if fold is not None:
            assert (pool.folds[chosen] != fold).all()
            held_out = set(split.loc[split["fold"] == fold, "recording_id"])
            assert not held_out & set(pool.recording_ids[chosen])
        else:
            assert len(chosen) == len(labels.rows)
        values, weights = np.split(joined["label_weights"], 2, axis=1)
        # A person's labels weigh 1 where known and unknown_label_weight elsewhere, as without a pool.
        np.testing.assert_array_equal(
            joined["label_weights"][:n_train], label_weights(train["targets"], train["masks"], 0.25)
        )
        assert (weights[:n_train][train["masks"] == 1] == 1).all()
        # A pseudo-label weighs weight; an unknown species of a pool window unknown_label_weight.
        pool_masks, pool_targets = labels.masks[labels.for_fold(fold)], labels.targets[labels.for_fold(fold)]
        np.testing.assert_array_equal(weights[n_train:], np.where(pool_masks == 1, np.float32(0.4), np.float32(0.25)))
        np.testing.assert_array_equal(values[n_train:], pool_targets)
        np.testing.assert_array_equal(joined["targets"][n_train:], pool_targets)
        np.testing.assert_array_equal(joined["masks"][n_train:], pool_masks)
        assert (joined["event_species"][n_train:] == -1).all()
        assert joined["event_present"][n_train:].tolist() == pool_targets.any(axis=1).astype(int).tolist()


def test_without_false_positives_only_pool_windows_with_a_positive_train(training_files):
    # use_false_positives: false drops windows whose event is absent; a pool window of absences only is one.
    folder, split, _, pool_spectrograms = training_files
    settings = SETTINGS.train.model_copy(update={"use_false_positives": False})
    pool = Pool.read(folder / "pool.h5", None, split)
    labels, _ = round_labels()
    train, _ = load_training_data(folder / "windows.h5", split, None, folder / "none.h5", use_augmented=False)
    kept = select_training_windows(with_pseudo_labels(train, pool.inputs, labels, None, settings, 0.5), settings)
    n_train = len(train["targets"])
    assert len(kept["label_weights"]) == len(kept["inputs"]) == n_train + 3  # rows 0, 2 and 5 have a positive
    np.testing.assert_array_equal(kept["inputs"][n_train:], pool_spectrograms[[0, 2, 5]])


def test_pool_read_gives_each_window_its_fold_and_scorer(training_files):
    """Each pool window is scored by the model that never trained on its recording."""
    folder, split, _, pool_spectrograms = training_files
    pool = Pool.read(folder / "pool.h5", None, split)
    assert pool.recording_ids.tolist() == ["pool/x", "a", "pool/y", "c", "d", "test/z"]
    np.testing.assert_array_equal(pool.start_times, np.arange(6.0))
    np.testing.assert_array_equal(pool.inputs[0:6], pool_spectrograms)
    np.testing.assert_array_equal(pool.scorers, pool.folds)  # folds 0 and 1: member i is fold i's
    # Each window is scored by its fold's model: two models answering constants tell which.
    members = [constant_model(bias) for bias in (-3.0, 3.0)]
    scores = pool.scores(members)
    expected = np.where(pool.folds[:, None] == 0, 1 / (1 + np.exp(3.0)), 1 / (1 + np.exp(-3.0)))
    np.testing.assert_allclose(scores, np.broadcast_to(expected, (6, N_SPECIES)), rtol=1e-5)


def constant_model(bias: float) -> keras.Model:
    """A model scoring every species of every window sigmoid(``bias``)."""
    inputs = keras.Input((N_MELS, N_FRAMES))
    dense = keras.layers.Dense(N_SPECIES, activation="sigmoid", kernel_initializer="zeros")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.bias.assign(np.full(N_SPECIES, bias, np.float32))
    return model


def test_label_weights_weigh_known_labels_by_known_weight():
    """A pseudo-label weighs known_weight; an unknown species unknown_weight."""
    targets = np.array([[1, 0], [0, 0]], np.uint8)
    masks = np.array([[1, 1], [0, 1]], np.uint8)
    weighted = label_weights(targets, masks, 0.1, known_weight=0.5)
    assert weighted.dtype == np.float32
    np.testing.assert_array_equal(weighted, np.array([[1, 0, 0.5, 0.5], [0, 0, 0.1, 0.5]], np.float32))
    # A person's label weighs 1 by default.
    np.testing.assert_array_equal(label_weights(targets, masks, 0.1)[:, 2:], np.array([[1, 1], [0.1, 1]], np.float32))


def test_joined_rows_read_in_order_and_refuse_another_field(tmp_path):
    """Training windows and pool windows stream from two files as one input."""
    first = write_set(tmp_path / "first.h5", ["a"] * 5, seed=4)
    second = write_set(tmp_path / "second.h5", ["b"] * 4, seed=5)
    rows = WindowRows([(tmp_path / "first.h5", np.array([1, 3]))]).joined(
        WindowRows([(tmp_path / "second.h5", np.array([0, 2, 3]))])
    )
    assert rows.shape == (5, N_MELS, N_FRAMES)
    expected = np.concatenate([first[[1, 3]], second[[0, 2, 3]]])
    np.testing.assert_array_equal(rows[0:5], expected)
    np.testing.assert_array_equal(rows[3], second[2])
    # A subset of the joined rows reads across both files.
    np.testing.assert_array_equal(rows[np.array([0, 4])][0:2], expected[[0, 4]])
    with h5py.File(tmp_path / "embeddings.h5", "w") as file:
        file["embeddings"] = np.zeros((4, 8), np.float32)
    embeddings = WindowRows([(tmp_path / "embeddings.h5", np.arange(4))], "embeddings")
    with pytest.raises(ValueError, match="cannot join embeddings"):
        rows.joined(embeddings)
    with pytest.raises(ValueError, match="to embeddings"):
        embeddings.joined(rows)


# --- settings -------------------------------------------------------------------------------


def test_absence_score_must_be_below_positive_score():
    """A window cannot be both a species' positive and its known absence."""
    values = committed_params()
    values["pseudo_label"] |= {"positive_score": 0.6, "absence_score": 0.6}
    with pytest.raises(ConfigError, match=r"pseudo_label: absence_score \(0\.6\) must be below positive_score"):
        settings_from_dict(values)
    values["pseudo_label"]["absence_score"] = 0.59
    assert settings_from_dict(values).pseudo_label.absence_score == 0.59


def test_rounds_need_the_masked_loss():
    """A pseudo-label is one species' presence or absence, which a softmax loss cannot take."""
    values = committed_params()
    values["pseudo_label"]["rounds"] = 1
    values["train"] |= {"loss": "softmax_crossentropy", "use_false_positives": False}
    with pytest.raises(ConfigError, match=r"pseudo_label\.rounds \(1\) needs train\.loss: masked_bce"):
        settings_from_dict(values)
    values["train"]["loss"] = "masked_bce"
    assert settings_from_dict(values).pseudo_label.rounds == 1
    # Without rounds the softmax loss is fine.
    values["pseudo_label"]["rounds"] = 0
    values["train"]["loss"] = "softmax_crossentropy"
    assert settings_from_dict(values).train.loss == "softmax_crossentropy"


def test_the_docstring_examples_run():
    import doctest

    import benchmarks.project
    import rainforest.pseudo_labels

    for module in (rainforest.pseudo_labels, benchmarks.project):
        failures, tried = doctest.testmod(module)
        assert tried > 0 and failures == 0, module.__name__
