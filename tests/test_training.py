"""Every model and training setting changes what is trained.

Each test flips one setting and checks the effect where it acts: the built
model, the labels, the input pipeline, the optimiser or the fit itself.
"""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from rainforest.config import ModelSettings, TrainSettings
from rainforest.detect.scoring import aggregate_windows
from rainforest.model import MelPositionChannel, build_model
from rainforest.training import (
    BestEpochSelection,
    _optimizer,
    label_weights,
    load_training_data,
    make_deterministic,
    select_training_windows,
    train_classifier,
    training_dataset,
)
from rainforest.window_sets import WindowRows, WindowWriter
from tests.support.paths import committed_params
from tests.support.settings import live

PARAMS = committed_params()
N_MELS, N_FRAMES, N_SPECIES = 16, 24, 3


def model_settings(**changes) -> ModelSettings:
    return ModelSettings(**{**PARAMS["model"], "filters": [4, 8], "dense_units": 8, **changes})


def train_settings(**changes) -> TrainSettings:
    return TrainSettings(**{**PARAMS["train"], "epochs": 2, "batch_size": 8, **changes})


def windows(n=24, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    species = np.arange(n) % N_SPECIES
    targets = np.eye(N_SPECIES, dtype=np.uint8)[species]
    present = (np.arange(n) % 4 != 0).astype(np.uint8)
    targets[present == 0] = 0
    spectrograms = rng.normal(-60, 5, (n, N_MELS, N_FRAMES)).astype(np.float32)
    # A learnable cue: each present species brightens its own band.
    for i in np.flatnonzero(present):
        spectrograms[i, 4 * species[i] : 4 * species[i] + 4] += 20
    return {
        "inputs": spectrograms,
        "targets": targets,
        "masks": np.eye(N_SPECIES, dtype=np.uint8)[species],
        "event_species": species.astype(np.int16),
        "event_present": present,
    }


def build(settings: ModelSettings, activation="sigmoid") -> keras.Model:
    return build_model(
        settings, (N_MELS, N_FRAMES), N_SPECIES, mean=np.zeros(N_MELS), variance=np.ones(N_MELS), activation=activation
    )


def layer_types(model: keras.Model) -> set[str]:
    return {type(layer).__name__ for layer in model.layers}


# --- model -----------------------------------------------------------------------


def test_architecture_selects_the_backbone():
    baseline = build(model_settings(architecture="baseline"))
    cnn = build(model_settings(architecture="cnn"))
    resnet = build(model_settings(architecture="resnet"))
    assert {"Resizing", "MinMaxScaling", "Flatten"} <= layer_types(baseline)
    assert "Add" in layer_types(resnet) and "Add" not in layer_types(cnn)
    assert "Normalization" in layer_types(cnn) and "Normalization" not in layer_types(baseline)
    # The baseline's input is the original 224x400 image.
    resizing = next(layer for layer in baseline.layers if type(layer).__name__ == "Resizing")
    assert resizing.output.shape[1:3] == (224, 400)


def test_frequency_channel_adds_the_mel_position_input():
    with_channel = build(model_settings(frequency_channel=True))
    without = build(model_settings(frequency_channel=False))
    assert any(isinstance(layer, MelPositionChannel) for layer in with_channel.layers)
    assert not any(isinstance(layer, MelPositionChannel) for layer in without.layers)
    assert with_channel.count_params() > without.count_params()


@pytest.mark.parametrize("key,value", [("filters", [4, 8, 16]), ("dense_units", 32)])
def test_model_size_settings_change_the_parameter_count(key, value):
    assert build(model_settings(**{key: value})).count_params() != build(model_settings()).count_params()


def test_dropout_is_used():
    model = build(model_settings(dropout=0.42))
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.42]


def test_softmax_loss_builds_a_softmax_head_summing_to_one():
    scores = build(model_settings(), activation="softmax")(windows()["inputs"][:4]).numpy()
    np.testing.assert_allclose(scores.sum(axis=1), 1, rtol=1e-5)


# --- labels and data ---------------------------------------------------------------


def test_unknown_label_weight_weights_unannotated_species():
    data = windows(4)
    low = label_weights(data["targets"], data["masks"], 0.0)
    high = label_weights(data["targets"], data["masks"], 0.5)
    unknown = np.concatenate([np.zeros_like(data["masks"], dtype=bool), data["masks"] == 0], axis=1)
    assert (low[unknown] == 0).all() and (high[unknown] == 0.5).all()
    assert (low[:, :N_SPECIES] == high[:, :N_SPECIES]).all()


def test_use_false_positives_keeps_or_drops_absent_windows():
    data = windows()
    kept = select_training_windows(data, train_settings(use_false_positives=True))
    dropped = select_training_windows(data, train_settings(use_false_positives=False, loss="masked_bce"))
    assert len(kept["targets"]) == 24
    assert len(dropped["targets"]) == int(data["event_present"].sum()) < 24
    assert dropped["event_present"].all()


def write_set(path, data, ids, waveforms=False):
    attrs = {"species": [f"s{i}" for i in range(N_SPECIES)]}
    with WindowWriter(
        path, n_mels=N_MELS, n_frames=N_FRAMES, n_species=N_SPECIES, n_samples=8 if waveforms else None, attrs=attrs
    ) as writer:
        fields = {("spectrograms" if name == "inputs" else name): values for name, values in data.items()}
        if waveforms:
            fields["waveforms"] = np.zeros((len(ids), 8), np.float32)
        writer.append(
            **fields,
            recording_ids=np.array(ids, dtype=object),
            start_times=np.zeros(len(ids)),
            end_times=np.ones(len(ids)),
        )


def test_use_augmented_adds_the_augmented_windows(tmp_path):
    data = windows(8)
    ids = ["a", "a", "b", "b", "c", "c", "d", "d"]
    write_set(tmp_path / "windows.h5", data, ids, waveforms=True)
    write_set(tmp_path / "augmented.h5", {k: v[:6] for k, v in data.items()}, ids[:6])
    split = pd.DataFrame({"recording_id": list("abcd"), "fold": [-1, -1, -1, 0]})
    with_copies, validation = load_training_data(
        tmp_path / "windows.h5", split, 0, tmp_path / "augmented.h5", use_augmented=True
    )
    without, _ = load_training_data(tmp_path / "windows.h5", split, 0, tmp_path / "augmented.h5", use_augmented=False)
    assert len(without["targets"]) == 6 and len(with_copies["targets"]) == 12
    assert len(validation["targets"]) == 2
    # Spectrograms stay on disk until read, in the order of the labels.
    assert isinstance(with_copies["inputs"], WindowRows) and with_copies["inputs"].shape[0] == 12
    np.testing.assert_array_equal(with_copies["inputs"][0:12], np.concatenate([data["inputs"][:6]] * 2))
    np.testing.assert_array_equal(with_copies["targets"], np.concatenate([data["targets"][:6]] * 2))
    np.testing.assert_array_equal(validation["inputs"][0:2], data["inputs"][6:])
    np.testing.assert_array_equal(validation["rows"], [6, 7])


def test_a_fold_trains_on_the_other_folds_and_their_copies_only(tmp_path):
    data = windows(8)
    ids = ["a", "a", "b", "b", "c", "c", "d", "d"]
    write_set(tmp_path / "windows.h5", data, ids, waveforms=True)
    # Cross-validation augments every window; copies of the held-out fold's recordings must not train its model.
    write_set(tmp_path / "augmented.h5", data, ids)
    split = pd.DataFrame({"recording_id": list("abcd"), "fold": [0, 1, 0, 1]})
    for fold, held_out in [(0, [0, 1, 4, 5]), (1, [2, 3, 6, 7])]:
        train, validation = load_training_data(
            tmp_path / "windows.h5", split, fold, tmp_path / "augmented.h5", use_augmented=True
        )
        kept = [row for row in range(8) if row not in held_out]
        np.testing.assert_array_equal(validation["rows"], held_out)
        np.testing.assert_array_equal(train["inputs"][0:8], np.concatenate([data["inputs"][kept]] * 2))
        np.testing.assert_array_equal(train["targets"], np.concatenate([data["targets"][kept]] * 2))


@pytest.mark.slow
def test_training_streamed_from_hdf5_equals_training_in_memory(tmp_path):
    data = windows(24)
    ids = [f"r{i // 2:02d}" for i in range(24)]
    write_set(tmp_path / "windows.h5", data, ids)
    split = pd.DataFrame({"recording_id": sorted(set(ids)), "fold": [-1] * 9 + [0] * 3})
    streamed, validation = load_training_data(
        tmp_path / "windows.h5", split, 0, tmp_path / "none.h5", use_augmented=False
    )
    in_memory = {**streamed, "inputs": data["inputs"][:18]}
    validation_in_memory = {**validation, "inputs": data["inputs"][18:]}
    settings = train_settings(epochs=2, early_stopping_patience=0)

    def weights(train, val):
        model = train_classifier(model_settings(architecture="cnn"), settings, train, val, live(tmp_path))
        return np.concatenate([w.ravel() for w in model.get_weights()])

    np.testing.assert_array_equal(weights(streamed, validation), weights(in_memory, validation_in_memory))


# --- input pipeline ---------------------------------------------------------------


def first_batch(settings: TrainSettings):
    data = windows()
    labels = label_weights(data["targets"], data["masks"], settings.unknown_label_weight)
    make_deterministic(settings.seed)
    x, y = next(iter(training_dataset(data["inputs"], labels, settings)))
    return data, x.numpy(), y.numpy()


NO_AUGMENTATION = {"time_masks": 0, "max_time_frames": 4, "frequency_masks": 0, "max_frequency_bins": 4}


def test_spec_augment_masks_runs_of_frames_and_bins():
    plain = train_settings(mixup_alpha=0.0, spec_augment=NO_AUGMENTATION)
    data, x, _ = first_batch(plain)
    originals = {row.tobytes() for row in data["inputs"]}
    assert all(window.tobytes() in originals for window in x)

    masked_settings = train_settings(
        mixup_alpha=0.0, spec_augment={**NO_AUGMENTATION, "time_masks": 2, "max_time_frames": 6}
    )
    _, masked, _ = first_batch(masked_settings)
    assert not all(window.tobytes() in originals for window in masked)
    # A time mask sets whole frames to one value (the window's mean).
    flat_frames = [(window.std(axis=0) == 0).sum() for window in masked]
    assert max(flat_frames) >= 1


def test_spec_augment_draws_new_masks_every_epoch():
    settings = train_settings(mixup_alpha=0.0, spec_augment={**NO_AUGMENTATION, "frequency_masks": 2})
    data = windows()
    labels = label_weights(data["targets"], data["masks"], 0.1)
    make_deterministic(settings.seed)
    dataset = training_dataset(data["inputs"], labels, settings)
    first = np.concatenate([x.numpy() for x, _ in dataset])
    second = np.concatenate([x.numpy() for x, _ in dataset])
    assert not np.array_equal(first, second)


def test_mixup_blends_windows_and_targets():
    _, _, plain_labels = first_batch(train_settings(mixup_alpha=0.0, spec_augment=NO_AUGMENTATION))
    assert set(np.unique(plain_labels[:, :N_SPECIES])) <= {0.0, 1.0}
    _, _, mixed_labels = first_batch(train_settings(mixup_alpha=0.4, spec_augment=NO_AUGMENTATION))
    targets = mixed_labels[:, :N_SPECIES]
    assert ((targets > 0) & (targets < 1)).any()
    assert (targets >= 0).all() and (targets <= 1).all()


# --- optimiser and fit --------------------------------------------------------------


def test_optimizer_and_weight_decay():
    assert isinstance(_optimizer(train_settings(optimizer="adamw", weight_decay=0.01), 10), keras.optimizers.AdamW)
    adam = _optimizer(train_settings(optimizer="adam"), 10)
    assert type(adam) is keras.optimizers.Adam


def test_cosine_schedule_decays_the_learning_rate():
    cosine = _optimizer(train_settings(schedule="cosine", learning_rate=0.01), 100)
    constant = _optimizer(train_settings(schedule="constant", learning_rate=0.01), 100)
    assert float(cosine.learning_rate) == pytest.approx(0.01)
    assert float(cosine._get_current_learning_rate()) == pytest.approx(0.01)
    assert float(keras.ops.convert_to_numpy(cosine._learning_rate(50))) == pytest.approx(0.005, rel=1e-3)
    assert float(constant.learning_rate) == pytest.approx(0.01)


@pytest.mark.slow
def test_learning_rate_epochs_and_batch_size_change_the_weights(tmp_path):
    def fitted(**changes):
        model = train_classifier(
            model_settings(architecture="cnn"),
            train_settings(mixup_alpha=0.0, early_stopping_patience=0, select_best_epoch=False, **changes),
            windows(),
            windows(12, seed=1),
            live(tmp_path),
        )
        return np.concatenate([w.ravel() for w in model.get_weights()])

    reference = fitted()
    np.testing.assert_array_equal(reference, fitted())  # deterministic
    for change in [{"learning_rate": 0.02}, {"epochs": 3}, {"batch_size": 4}, {"seed": 9}]:
        assert not np.array_equal(reference, fitted(**change)), change


def test_early_stopping_stops_when_validation_stops_improving(tmp_path):
    # A learning rate of ~0 freezes the weights, so validation never improves.
    settings = train_settings(learning_rate=1e-12, epochs=10, early_stopping_patience=2, mixup_alpha=0.0)
    model = train_classifier(model_settings(), settings, windows(), windows(12, seed=1), live(tmp_path))
    steps = pd.read_csv(tmp_path / "live/plots/metrics/eval/lwlrap.tsv", sep="\t")["step"]
    assert list(steps) == [0, 1, 2]
    assert model.epochs_kept == 3  # frozen weights tie every epoch; a tie goes to the later one


def test_a_refit_trains_without_validation_for_the_epochs_it_is_given(tmp_path):
    settings = train_settings(epochs=4, mixup_alpha=0.0)
    model = train_classifier(model_settings(), settings, windows(), None, live(tmp_path), stop_after=2)
    assert model.epochs_kept == 2
    losses = pd.read_csv(tmp_path / "live/plots/metrics/train/loss.tsv", sep="\t")
    assert list(losses["step"]) == [0, 1]
    assert not (tmp_path / "live/plots/metrics/eval").exists()
    # Two epochs of a four-epoch schedule: not the weights of a two-epoch schedule.
    shorter = train_classifier(
        model_settings(), train_settings(epochs=2, mixup_alpha=0.0), windows(), None, live(tmp_path / "other")
    )
    assert shorter.epochs_kept == 2
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), shorter.get_weights()))


def test_select_best_epoch_restores_the_best_weights():
    data, validation = windows(), windows(12, seed=1)
    model = build(model_settings())
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    selection = BestEpochSelection(validation["inputs"], validation["targets"], patience=0, restore_best=True)
    snapshots = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    model.fit(data["inputs"], data["targets"].astype("float32"), epochs=4, verbose=0, callbacks=[selection, record])
    best = snapshots[selection.best_epoch]
    for restored, expected in zip(model.get_weights(), best):
        np.testing.assert_array_equal(restored, expected)


def test_select_best_epoch_prefers_the_later_of_tied_epochs():
    # One labelled validation window that every epoch ranks right: LWLRAP is
    # 1.0 throughout, as on a tiny validation set; the last epoch must be kept.
    inputs = keras.Input((N_MELS, N_FRAMES))
    head = keras.layers.Dense(N_SPECIES, activation="sigmoid", kernel_initializer="zeros")
    model = keras.Model(inputs, head(keras.layers.Flatten()(inputs)))
    targets = np.zeros((1, N_SPECIES), np.uint8)
    targets[0, 0] = 1
    selection = BestEpochSelection(windows(1)["inputs"], targets, patience=0, restore_best=True)
    selection.set_model(model)
    for epoch in range(4):
        head.bias.assign(np.eye(N_SPECIES, dtype=np.float32)[0] * (epoch + 1))  # new weights, same ranking
        logs = {}
        selection.on_epoch_end(epoch, logs)
        assert logs["val_lwlrap"] == 1.0
    head.bias.assign(np.zeros(N_SPECIES, np.float32))
    selection.on_train_end()
    assert selection.best_epoch == 3 and head.bias.numpy()[0] == 4.0


# --- submission aggregation -----------------------------------------------------------


def test_aggregation_max_or_mean_of_top_k():
    scores = np.array([[0.9, 0.1], [0.2, 0.3], [0.1, 0.4]])
    np.testing.assert_allclose(aggregate_windows(scores, "max", 2), [0.9, 0.4])
    np.testing.assert_allclose(aggregate_windows(scores, "mean_top_k", 2), [0.55, 0.35])
    np.testing.assert_allclose(aggregate_windows(scores, "mean_top_k", 10), scores.mean(axis=0))


def test_training_seed_reaches_tensorflow():
    make_deterministic(5)
    first = tf.random.uniform([3]).numpy()
    make_deterministic(5)
    assert np.array_equal(first, tf.random.uniform([3]).numpy())


def test_docstring_examples_run():
    import doctest

    import rainforest.training

    failures, tried = doctest.testmod(rainforest.training)
    assert tried > 0 and failures == 0
