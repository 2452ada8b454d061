"""The species classifier: a compact CNN on log-mel windows, one sigmoid per species.

Read top to bottom, :func:`build_model` is the architecture. The custom layers
and the loss are registered with Keras, so a saved model loads in safe mode
(no code from the file is executed), and :func:`save_model` writes a ``.keras``
archive whose bytes depend only on the weights, not on when it was saved.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from rainforest.config import FeatureSettings, ModelSettings
from rainforest.storage import atomic_path

_PACKAGE = "rainforest"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MelPositionChannel(layers.Layer):
    """Append a channel holding each mel bin's position, from -1 (lowest) to 1.

    Convolutions are blind to where on the frequency axis a pattern sits;
    this channel tells them, so a call in the wrong band looks different.
    """

    def call(self, inputs):
        n_mels = ops.shape(inputs)[1]
        position = ops.cast(ops.reshape(ops.linspace(-1.0, 1.0, n_mels), (1, n_mels, 1, 1)), inputs.dtype)
        return ops.concatenate([inputs, ops.zeros_like(inputs[..., :1]) + position], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], input_shape[3] + 1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TimeFrequencyPooling(layers.Layer):
    """Average over frequency, then take the max and the mean over time.

    The max finds a call anywhere in the window; the mean keeps how much of
    the window it fills.
    """

    def call(self, inputs):
        over_time = ops.mean(inputs, axis=1)
        return ops.concatenate([ops.max(over_time, axis=1), ops.mean(over_time, axis=1)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[3])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy over known labels only.

    Targets are 1 (present), 0 (known absent) or -1 (unknown: nobody
    annotated that species in the window). Unknown labels count as absent
    with weight ``unknown_weight``; 0 ignores them entirely.
    """

    def __init__(self, unknown_weight: float = 0.0, name: str = "masked_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.unknown_weight = unknown_weight

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        known = ops.cast(y_true >= 0, y_pred.dtype)
        weights = known + (1.0 - known) * self.unknown_weight
        targets = ops.maximum(y_true, 0.0)
        per_label = keras.losses.binary_crossentropy(targets[..., None], y_pred[..., None])
        return ops.sum(per_label * weights, axis=-1) / ops.maximum(ops.sum(weights, axis=-1), 1.0)

    def get_config(self):
        return {**super().get_config(), "unknown_weight": self.unknown_weight}


def build_model(
    settings: ModelSettings, n_mels: int, n_frames: int, n_species: int, mel_mean: np.ndarray, mel_var: np.ndarray
) -> keras.Model:
    """The classifier, from a log-mel window to one probability per species.

    Parameters
    ----------
    settings
        ``filters`` gives one convolution block per entry (a 3x3
        convolution with batch normalisation, then 2x2 max-pooling);
        ``dense_units`` and ``dropout`` size the head.
    n_mels, n_frames
        Shape of one input window.
    mel_mean, mel_var
        Per-mel-bin statistics of the training spectrograms, used to
        standardise the input inside the model.
    """
    inputs = keras.Input(shape=(n_mels, n_frames), name="log_mel")
    x = layers.Reshape((n_mels, n_frames, 1))(inputs)
    x = layers.Normalization(axis=1, mean=mel_mean, variance=mel_var)(x)
    x = MelPositionChannel()(x)
    for filters in settings.filters:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = TimeFrequencyPooling()(x)
    x = layers.Dropout(settings.dropout)(x)
    x = layers.Dense(settings.dense_units, activation="relu")(x)
    x = layers.Dropout(settings.dropout)(x)
    outputs = layers.Dense(n_species, activation="sigmoid", name="species")(x)
    return keras.Model(inputs, outputs, name=settings.architecture)


# A fixed timestamp for every archive member, so the bytes do not depend on
# when the model was saved.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


#: Archive member holding the model's card.
CARD_NAME = "rainforest_card.json"


@dataclass(frozen=True)
class ModelCard:
    """What a user of the model needs besides the weights: the audio and
    feature settings its input was made with, and the species it scores."""

    sample_rate: int
    features: FeatureSettings
    species: list[str]

    def to_json(self) -> str:
        return json.dumps(
            {"sample_rate": self.sample_rate, "features": self.features.model_dump(), "species": self.species},
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        values = json.loads(text)
        return cls(int(values["sample_rate"]), FeatureSettings(**values["features"]), list(values["species"]))


def save_model(model: keras.Model, path: str | Path, card: ModelCard) -> None:
    """Save ``model`` as a ``.keras`` archive, atomically and reproducibly.

    Keras stamps the save time into ``metadata.json`` and the zip entries;
    both are normalised, so the same weights always give the same bytes.
    The card is stored in the archive beside the weights.
    """
    path = Path(path)
    with atomic_path(path) as temporary:
        staging = temporary.with_suffix(".keras")
        try:
            model.save(staging)
            with zipfile.ZipFile(staging) as source, zipfile.ZipFile(temporary, "w") as target:
                for name in sorted(source.namelist()):
                    data = source.read(name)
                    if name == "metadata.json":
                        metadata = json.loads(data)
                        metadata.pop("date_saved", None)
                        data = json.dumps(metadata, sort_keys=True).encode()
                    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    target.writestr(info, data)
                info = zipfile.ZipInfo(CARD_NAME, date_time=_ZIP_DATE)
                info.external_attr = 0o644 << 16
                target.writestr(info, card.to_json())
        finally:
            staging.unlink(missing_ok=True)


def load_model(path: str | Path) -> keras.Model:
    """Load a model saved by :func:`save_model`, in Keras safe mode."""
    return keras.models.load_model(path, compile=False, safe_mode=True)


def load_card(path: str | Path) -> ModelCard:
    """The card stored with a model by :func:`save_model`."""
    with zipfile.ZipFile(path) as archive:
        return ModelCard.from_json(archive.read(CARD_NAME))
