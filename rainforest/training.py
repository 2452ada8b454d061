"""Fitting the classifier: labels, input statistics, seeding and the training loop."""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from rainforest.config import ModelSettings, TrainSettings
from rainforest.metrics import lwlrap
from rainforest.model import MaskedBinaryCrossentropy, build_model

log = logging.getLogger(__name__)


def training_labels(targets: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Targets for :class:`MaskedBinaryCrossentropy`: 1, 0, or -1 where unknown."""
    # Cast first: unsigned targets would wrap -1 around to 255.
    return np.where(masks.astype(bool), targets.astype(np.float32), np.float32(-1))


def mel_statistics(spectrograms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each mel bin over all windows and frames."""
    values = spectrograms.astype(np.float64)
    return values.mean(axis=(0, 2)), np.maximum(values.var(axis=(0, 2)), 1e-6)


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic,
    so the same data and settings train the same weights."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class ValidationLwlrap(keras.callbacks.Callback):
    """Score the validation windows after every epoch and log ``val_lwlrap``.

    Only windows with at least one present species count, as in LWLRAP.
    """

    def __init__(self, spectrograms: np.ndarray, targets: np.ndarray, batch_size: int):
        super().__init__()
        labelled = targets.sum(axis=1) > 0
        self.spectrograms = spectrograms[labelled]
        self.targets = targets[labelled]
        self.batch_size = batch_size

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or not len(self.targets):
            return
        scores = self.model.predict(self.spectrograms, batch_size=self.batch_size, verbose=0)
        logs["val_lwlrap"] = lwlrap(self.targets, scores)


def train_classifier(
    model_settings: ModelSettings,
    settings: TrainSettings,
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    callbacks: list[keras.callbacks.Callback],
) -> keras.Model:
    """Build and fit the classifier.

    Parameters
    ----------
    train, validation
        Window sets as read by :func:`rainforest.storage.read_windows`, with
        ``spectrograms``, ``targets`` and ``masks``.
    callbacks
        Extra callbacks (e.g. the metrics logger); they run after the
        validation scorer, so they see ``val_lwlrap``.

    Returns
    -------
    keras.Model
        The model after the last epoch.
    """
    make_deterministic(settings.seed)
    n_windows, n_mels, n_frames = train["spectrograms"].shape
    n_species = train["targets"].shape[1]
    mean, variance = mel_statistics(train["spectrograms"])
    model = build_model(model_settings, n_mels, n_frames, n_species, mean, variance)
    steps = settings.epochs * int(np.ceil(n_windows / settings.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(settings.learning_rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=MaskedBinaryCrossentropy(settings.unknown_label_weight),
    )
    log.info("training on %d windows (%d mels x %d frames), %d parameters", n_windows, n_mels, n_frames, model.count_params())
    model.fit(
        train["spectrograms"],
        training_labels(train["targets"], train["masks"]),
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        shuffle=True,
        validation_data=(validation["spectrograms"], training_labels(validation["targets"], validation["masks"])),
        callbacks=[ValidationLwlrap(validation["spectrograms"], validation["targets"], 256), *callbacks],
        verbose=0,
    )
    return model
