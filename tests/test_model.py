"""Tests of rainforest.model and rainforest.training on tiny inputs."""

from __future__ import annotations

import json
import time
import zipfile

import keras
import numpy as np
import pytest

from rainforest.card import CARD_NAME, ModelCard, load_card
from rainforest.config import ModelSettings, TrainSettings
from rainforest.errors import ModelError
from rainforest.model import (
    BatchNormalization,
    WeightedBinaryCrossentropy,
    build_model,
    label_weights,
    load_model,
    save_model,
)
from rainforest.training import input_statistics, train_classifier
from tests.support.paths import committed_params
from tests.support.settings import SHORT_FEATURES, SHORT_SPECTROGRAM_SETTINGS, live

N_MELS, N_FRAMES, N_SPECIES = SHORT_FEATURES.n_mels, 16, 5
SMALL = ModelSettings(architecture="cnn", frequency_channel=True, filters=[4, 8], dense_units=8, dropout=0.25)


def _model(settings: ModelSettings = SMALL) -> keras.Model:
    return build_model(
        settings, (N_MELS, N_FRAMES), N_SPECIES, mean=np.full(N_MELS, -50.0), variance=np.full(N_MELS, 100.0)
    )


def _inputs(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, N_MELS, N_FRAMES)) * 10 - 50).astype(np.float32)


def _card() -> ModelCard:
    return ModelCard(SHORT_SPECTROGRAM_SETTINGS, species=[f"s{i}" for i in range(N_SPECIES)])


# --- build_model --------------------------------------------------------------------


def test_output_shape_and_range():
    model = _model()
    scores = np.asarray(model.predict(_inputs(7), verbose=0))
    assert scores.shape == (7, N_SPECIES)
    assert np.all((scores >= 0) & (scores <= 1))
    # Any number of frames: submit runs the convolutions over whole recordings.
    assert model.input_shape == (None, N_MELS, None)
    assert model(_inputs(2)[:, :, :5]).shape == (2, N_SPECIES)
    assert model.name == "cnn"


def test_single_filter_block_and_odd_shapes():
    model = build_model(
        ModelSettings(architecture="cnn", frequency_channel=True, filters=[3], dense_units=4, dropout=0.0),
        (13, 9),
        2,
        mean=np.zeros(13),
        variance=np.ones(13),
    )
    scores = np.asarray(model(np.zeros((2, 13, 9), dtype=np.float32)))
    assert scores.shape == (2, 2)


def _count(model: keras.Model, kind: type) -> int:
    return sum(isinstance(layer, kind) for layer in model.layers)


def test_filters_change_the_model():
    base = _model()
    deeper = _model(SMALL.model_copy(update={"filters": [4, 8, 16]}))
    wider = _model(SMALL.model_copy(update={"filters": [6, 8]}))
    assert _count(base, keras.layers.Conv2D) == 2
    assert _count(deeper, keras.layers.Conv2D) == 3
    assert len(deeper.layers) > len(base.layers)
    assert [layer.filters for layer in base.layers if isinstance(layer, keras.layers.Conv2D)] == [4, 8]
    assert wider.count_params() > base.count_params()


def test_dense_units_change_the_model():
    base = _model()
    bigger = _model(SMALL.model_copy(update={"dense_units": 32}))
    assert bigger.count_params() > base.count_params()
    hidden = [layer for layer in bigger.layers if isinstance(layer, keras.layers.Dense) and layer.name != "species"]
    assert [layer.units for layer in hidden] == [32]


def test_dropout_changes_the_model():
    model = _model(SMALL.model_copy(update={"dropout": 0.6}))
    rates = [layer.get_config()["rate"] for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.6]
    assert [layer.rate for layer in _model().layers if isinstance(layer, keras.layers.Dropout)] == [0.25]


def test_input_is_standardised_inside_the_model():
    # Two models whose statistics differ by a shift of the input give the same
    # scores on correspondingly shifted input.
    settings = ModelSettings(architecture="cnn", frequency_channel=True, filters=[4], dense_units=4, dropout=0.0)
    keras.utils.set_random_seed(0)
    a = build_model(settings, (N_MELS, N_FRAMES), 2, mean=np.zeros(N_MELS), variance=np.ones(N_MELS))
    keras.utils.set_random_seed(0)
    b = build_model(settings, (N_MELS, N_FRAMES), 2, mean=np.full(N_MELS, 30.0), variance=np.ones(N_MELS))
    x = _inputs(3)
    np.testing.assert_allclose(np.asarray(a(x, training=False)), np.asarray(b(x + 30, training=False)), atol=1e-5)


# --- WeightedBinaryCrossentropy ---------------------------------------------------


def _bce(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def _masked(labels: list[list[int]], unknown_weight: float) -> np.ndarray:
    """Labels written as 1 / 0 / -1 (unknown), as the loss takes them."""
    labels = np.asarray(labels)
    return label_weights((labels == 1).astype(np.uint8), (labels >= 0).astype(np.uint8), unknown_weight)


def test_masked_loss_ignores_unknown_at_weight_zero():
    y_true = _masked([[1, 0, -1, -1], [0, -1, 1, 1]], 0.0)
    y_pred = np.array([[0.9, 0.2, 0.7, 0.1], [0.3, 0.99, 0.6, 0.8]], dtype=np.float32)
    loss = WeightedBinaryCrossentropy()
    per_sample = np.asarray(loss.call(y_true, y_pred))
    expected = np.array(
        [
            (_bce(1, 0.9) + _bce(0, 0.2)) / 2,
            (_bce(0, 0.3) + _bce(1, 0.6) + _bce(1, 0.8)) / 3,
        ]
    )
    np.testing.assert_allclose(per_sample, expected, rtol=1e-5)
    assert float(loss(y_true, y_pred)) == pytest.approx(expected.mean(), rel=1e-5)
    # Changing the prediction of an unknown label changes nothing.
    y_pred2 = y_pred.copy()
    y_pred2[0, 2] = 0.01
    np.testing.assert_allclose(np.asarray(loss.call(y_true, y_pred2)), per_sample, rtol=1e-6)


def test_masked_loss_counts_unknown_as_absent_at_weight_w():
    w = 0.1
    y_true = _masked([[1, 0, -1, -1]], w)
    y_pred = np.array([[0.9, 0.2, 0.7, 0.1]], dtype=np.float32)
    per_sample = np.asarray(WeightedBinaryCrossentropy().call(y_true, y_pred))
    expected = (_bce(1, 0.9) + _bce(0, 0.2) + w * _bce(0, 0.7) + w * _bce(0, 0.1)) / (1 + 1 + w + w)
    np.testing.assert_allclose(per_sample, [expected], rtol=1e-5)
    # A high score on an unknown label now costs something.
    y_pred2 = y_pred.copy()
    y_pred2[0, 2] = 0.99
    assert float(WeightedBinaryCrossentropy().call(y_true, y_pred2)[0]) > expected


def test_masked_loss_all_unknown():
    y_pred = np.array([[0.5, 0.5, 0.5]], dtype=np.float32)
    assert float(WeightedBinaryCrossentropy().call(_masked([[-1, -1, -1]], 0.0), y_pred)[0]) == 0.0
    assert np.isfinite(float(WeightedBinaryCrossentropy().call(_masked([[-1, -1, -1]], 0.5), y_pred)[0]))


def test_the_loss_gradient_is_the_binary_cross_entropy_s():
    import tensorflow as tf

    targets = np.array([[1, 0, 1, 0]], dtype=np.float32)
    scores = tf.Variable([[0.9, 0.2, 0.3, 0.6]], dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss = WeightedBinaryCrossentropy().call(np.concatenate([targets, np.ones_like(targets)], axis=1), scores)
    # d/dp of -(t log p + (1 - t) log(1 - p)), over the 4 labels' mean.
    expected = (-(targets / scores.numpy()) + (1 - targets) / (1 - scores.numpy())) / 4
    np.testing.assert_allclose(tape.gradient(loss, scores).numpy(), expected, rtol=1e-6)


def test_batch_normalisation_is_keras_s():
    inputs = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 5, 6, 4)).astype(np.float32)
    ours, theirs = BatchNormalization(), keras.layers.BatchNormalization()
    for layer in (ours, theirs):
        layer.build(inputs.shape)
        layer.set_weights([np.full(4, 1.5), np.full(4, -0.5), np.full(4, 0.2), np.full(4, 3.0)])
    for training in (True, False):
        np.testing.assert_allclose(ours(inputs, training=training), theirs(inputs, training=training), atol=1e-5)
    for mine, keras_s in zip(ours.get_weights(), theirs.get_weights()):  # the moving statistics too
        np.testing.assert_allclose(mine, keras_s, rtol=1e-6)
    with pytest.raises(ValueError, match="axis"):
        BatchNormalization(axis=1)


def test_weighted_loss_config_round_trip():
    loss = WeightedBinaryCrossentropy()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, WeightedBinaryCrossentropy)


# --- label_weights ------------------------------------------------------------------


def test_label_weights_from_uint8():
    targets = np.array([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=np.uint8)
    masks = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], dtype=np.uint8)
    labels = label_weights(targets, masks, 0.25)
    assert labels.dtype == np.float32
    # Targets (an unknown target reads 0), then weights.
    np.testing.assert_array_equal(labels[:, :4], [[1, 0, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_array_equal(labels[:, 4:], [[1, 1, 0.25, 0.25], [0.25, 1, 1, 0.25]])
    assert labels.max() <= 1  # no uint8 wrap-around to 255


def test_input_statistics():
    spectrograms = np.stack([np.full((3, 4), 1.0), np.full((3, 4), 3.0)]).astype(np.float32)
    spectrograms[:, 2] = 5.0
    mean, var = input_statistics(spectrograms)
    np.testing.assert_allclose(mean, [2.0, 2.0, 5.0])
    np.testing.assert_allclose(var, [1.0, 1.0, 1e-6])


# --- saving and loading ---------------------------------------------------------------


def test_save_is_reproducible_and_loads(tmp_path):
    model = _model()
    first, second = tmp_path / "a.keras", tmp_path / "b.keras"
    save_model(model, first, _card())
    time.sleep(1.1)  # a timestamp anywhere in the archive would now differ
    save_model(model, second, _card())
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.keras", "b.keras"]  # no temporaries

    x = _inputs(4, seed=1)
    loaded = load_model(first)
    np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0)))
    assert load_card(first) == _card()
    with zipfile.ZipFile(first) as archive:
        assert CARD_NAME in archive.namelist()
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())


def test_different_weights_give_different_bytes(tmp_path):
    model = _model()
    save_model(model, tmp_path / "a.keras", _card())
    model.get_layer("species").kernel.assign(model.get_layer("species").kernel + 1.0)
    save_model(model, tmp_path / "b.keras", _card())
    assert (tmp_path / "a.keras").read_bytes() != (tmp_path / "b.keras").read_bytes()


def test_card_round_trip():
    card = _card()
    assert ModelCard.from_json(card.to_json()) == card
    assert ModelCard.from_json(card.to_json().encode()) == card


def test_lambda_layer_is_refused(tmp_path):
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    # Refused by Keras' safe mode, reported as a bad model file.
    with pytest.raises(ModelError, match="(?i)evil.keras: not a model.*(lambda|safe)"):
        load_model(path)


# --- train_classifier ----------------------------------------------------------------


def test_train_classifier_runs_one_epoch(tmp_path):
    rng = np.random.default_rng(0)
    n = 32

    def dataset(n: int) -> dict[str, np.ndarray]:
        targets = rng.integers(0, 2, (n, N_SPECIES)).astype(np.uint8)
        targets[0, 0] = 1
        return {
            "inputs": _inputs(n, seed=int(rng.integers(1000))),
            "targets": targets,
            "masks": rng.integers(0, 2, (n, N_SPECIES)).astype(np.uint8),
            "event_species": rng.integers(0, N_SPECIES, n).astype(np.int16),
            "event_present": np.ones(n, np.uint8),
        }

    train, validation = dataset(n), dataset(8)
    params = committed_params()["train"]
    settings = TrainSettings(**{**params, "epochs": 1, "batch_size": 16, "learning_rate": 0.01})
    model = train_classifier(SMALL, settings, train, validation, live(tmp_path))
    logged = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert np.isfinite(logged["train"]["loss"]) and np.isfinite(logged["eval"]["loss"])
    assert 0 <= logged["eval"]["lwlrap"] <= 1
    scores = np.asarray(model.predict(validation["inputs"], verbose=0))
    assert scores.shape == (8, N_SPECIES)
    assert np.all((scores >= 0) & (scores <= 1))
    assert isinstance(model.loss, WeightedBinaryCrossentropy)


@pytest.mark.parametrize("content", [None, b"", b"not a zip", b"PK\x03\x04 truncated"])
def test_missing_or_corrupt_model_file_is_a_model_error(tmp_path, content):
    path = tmp_path / "model.keras"
    if content is not None:
        path.write_bytes(content)
    for load in (load_model, load_card):
        with pytest.raises(ModelError, match="model.keras: (model not found|not a model saved by the train stage)"):
            load(path)
