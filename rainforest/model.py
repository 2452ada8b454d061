"""The species classifier: a compact CNN on log-mel windows (or a head on embeddings), one score per species.

Read top to bottom, :func:`build_model` and its backbones are the architecture. The custom layers
and the loss are registered with Keras, so a saved model loads in safe mode
(no code from the file is executed), and :func:`save_model` writes a ``.keras``
archive whose bytes depend only on the weights, not on when it was saved.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from rainforest.atomic_writes import atomic_path
from rainforest.card import CARD_NAME, ModelCard, reading_model
from rainforest.config import ModelSettings
from rainforest.numerics import pin_tensorflow

# Before TensorFlow's first op, which every use of the model comes after: the
# same cache sizes and arithmetic on every CPU, so the same bytes.
pin_tensorflow()

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
class MinMaxScaling(layers.Layer):
    """Scale each example to [0, 1] by its own minimum and maximum (the baseline's input scaling)."""

    def call(self, inputs):
        low = ops.min(inputs, axis=(1, 2, 3), keepdims=True)
        high = ops.max(inputs, axis=(1, 2, 3), keepdims=True)
        return (inputs - low) / ops.maximum(high - low, 1e-6)


#: Windows scored at a time when a whole window set is scored (validation).
SCORING_BATCH = 256


def label_weights(
    targets: np.ndarray, masks: np.ndarray, unknown_weight: float, known_weight: float = 1.0
) -> np.ndarray:
    """Targets and loss weights side by side, as :class:`WeightedBinaryCrossentropy` takes them.

    Returns
    -------
    np.ndarray of float32, shape (n, 2 * n_species)
        Targets (1 present, 0 otherwise), then weights: ``known_weight`` (1
        for a person's labels, less for pseudo-labels) where the label is
        known, ``unknown_weight`` where nobody annotated the species.
    """
    known = masks.astype(bool)
    # Cast first: unsigned targets would wrap around in arithmetic.
    values = np.where(known, targets.astype(np.float32), np.float32(0))
    weights = np.where(known, np.float32(known_weight), np.float32(unknown_weight))
    return np.concatenate([values, weights], axis=1).astype(np.float32)


@ops.custom_gradient
def _log(x):
    """The natural log, whose gradient divides by ``x``.

    TensorFlow's own gradient of log multiplies by ``reciprocal(x)``, which
    starts from the CPU's approximate reciprocal (``vrcpps``), whose last bits
    differ between Intel and AMD; a division is exact on every CPU, so training
    gives the same model on both (docs/reproducibility.md).
    """

    def gradient(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        return upstream / x

    return ops.log(x), gradient


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BatchNormalization(layers.BatchNormalization):
    """Keras's batch normalisation (channels last), dividing by the standard deviation.

    Keras multiplies by ``rsqrt(variance + epsilon)``, which TensorFlow starts
    from the CPU's approximate reciprocal square root (``vrsqrtps``), whose
    last bits differ between Intel and AMD; ``sqrt`` and a division are exact
    on every CPU, so training gives the same model on both
    (docs/reproducibility.md). Moving statistics are kept as Keras keeps them.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.axis != -1 or self.renorm or self.synchronized or not (self.center and self.scale):
            raise ValueError(
                "rainforest's BatchNormalization takes Keras's defaults for axis, renorm, synchronized, center and scale"
            )

    def call(self, inputs, training=None):
        if training and self.trainable:
            mean, variance = self._moments(inputs, None)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = self.gamma / ops.sqrt(variance + self.epsilon)
        return inputs * scale + (self.beta - mean * scale)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy with a weight per label.

    ``y_true`` holds the targets and the weights side by side, shape
    (batch, 2 * n_species): targets in [0, 1] (mixup makes them fractional),
    then weights (1 for a known label, smaller for one nobody annotated, 0 to
    ignore it). Each example's loss is its weighted mean over species.
    """

    def __init__(self, name: str = "weighted_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        targets, weights = ops.split(ops.cast(y_true, y_pred.dtype), 2, axis=-1)
        # Keras's binary cross-entropy, with a log whose gradient divides (see _log).
        scores = ops.clip(y_pred, keras.config.epsilon(), 1.0 - keras.config.epsilon())
        per_label = -(targets * _log(scores) + (1.0 - targets) * _log(1.0 - scores))
        return ops.sum(per_label * weights, axis=-1) / ops.maximum(ops.sum(weights, axis=-1), 1e-6)


#: The baseline resizes every window to this (mel bins, frames) image, as the
#: solution this project grew from did.
BASELINE_INPUT_SIZE = (224, 400)


def _baseline_backbone(x, settings: ModelSettings):
    # The original approach: an image CNN on a resized, min-max scaled window.
    x = layers.Resizing(*BASELINE_INPUT_SIZE)(x)
    x = MinMaxScaling()(x)
    for filters in settings.filters:
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D((2, 4), padding="same")(x)
    return layers.Flatten()(x)


def _plain_backbone(x, settings: ModelSettings):
    for filters in settings.filters:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    return TimeFrequencyPooling()(x)


def _residual_block(x, filters: int):
    shortcut = x if x.shape[-1] == filters else layers.Conv2D(filters, 1, use_bias=False)(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = BatchNormalization()(x)
    x = layers.ReLU()(layers.Add()([shortcut, x]))
    return layers.MaxPooling2D(2, padding="same")(x)


def _residual_backbone(x, settings: ModelSettings):
    # The stem halves both axes first, so the residual blocks (two 3x3
    # convolutions and a shortcut each) cost about what the plain CNN does.
    x = layers.Conv2D(settings.filters[0], 3, padding="same", use_bias=False)(x)
    x = BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    for filters in settings.filters:
        x = _residual_block(x, filters)
    return TimeFrequencyPooling()(x)


def build_model(
    settings: ModelSettings,
    input_shape: tuple[int, ...],
    n_species: int,
    *,
    mean: np.ndarray,
    variance: np.ndarray,
    activation: str = "sigmoid",
) -> keras.Model:
    """The classifier, from a log-mel window (or a window's embedding) to one score per species.

    Parameters
    ----------
    settings
        ``architecture`` picks the backbone: ``cnn`` (one 3x3 convolution,
        batch normalisation and 2x2 max-pooling per entry of ``filters``),
        ``resnet`` (a residual block per entry), ``baseline`` (the original
        approach: resize to 224x400, min-max scale, one convolution and 2x4
        max-pooling per entry, flatten) or ``embedding_head`` (none: the
        input is already a pretrained model's embedding). ``head``
        ``linear`` maps the features straight to the species; otherwise a
        hidden layer of ``dense_units`` and ``dropout`` come first.
    input_shape
        Shape of one input: ``(n_mels, n_frames)`` of a log-mel window
        (``cnn`` and ``resnet`` accept any number of frames), or
        ``(dimension,)`` of an embedding.
    mean, variance
        Statistics of the training inputs per mel bin (or per embedding
        dimension), which every architecture but ``baseline`` standardises
        its input with. With ``frequency_channel``, ``cnn`` and ``resnet``
        also see a channel holding each mel bin's position, so a call in the
        wrong band looks different.
    activation
        ``sigmoid`` (independent species) or ``softmax`` (exactly one).
    """
    if settings.architecture == "embedding_head":
        inputs = keras.Input(shape=input_shape, name="embedding")
        x = layers.Normalization(axis=-1, mean=mean, variance=variance)(inputs)
        x = layers.Dropout(settings.dropout)(x)
        return _head(inputs, x, settings, n_species, activation)
    n_mels, n_frames = input_shape
    # cnn and resnet take any number of frames: they are fully convolutional
    # up to their pooling, so submit can score a whole recording in one pass.
    time_axis = n_frames if settings.architecture == "baseline" else None
    inputs = keras.Input(shape=(n_mels, time_axis), name="log_mel")
    x = layers.Reshape((n_mels, -1, 1))(inputs)
    if settings.architecture == "baseline":
        x = _baseline_backbone(x, settings)
    else:
        x = layers.Normalization(axis=1, mean=mean, variance=variance)(x)
        if settings.frequency_channel:
            x = MelPositionChannel()(x)
        backbone = _residual_backbone if settings.architecture == "resnet" else _plain_backbone
        x = backbone(x, settings)
    return _head(inputs, x, settings, n_species, activation)


def _head(inputs, x, settings: ModelSettings, n_species: int, activation: str) -> keras.Model:
    # linear: one logistic regression per species on the features.
    if settings.head != "linear":
        x = layers.Dense(settings.dense_units, activation="relu")(x)
        x = layers.Dropout(settings.dropout)(x)
    outputs = layers.Dense(n_species, activation=activation, name="species")(x)
    return keras.Model(inputs, outputs, name=settings.architecture)


def ensemble(members: list[keras.Model]) -> keras.Model:
    """One model whose scores are the mean of its ``members``' (one per
    cross-validation fold, each trained on the others' recordings).

    The members keep their layers; :func:`ensemble_members` gives them back.
    """
    if len(members) == 1:
        return members[0]
    name = f"{members[0].name}_ensemble"
    for index, member in enumerate(members):
        member.name = f"fold_{index}"  # a model's layers need distinct names
    inputs = keras.Input(shape=members[0].input.shape[1:], name=members[0].input.name)
    outputs = layers.Average(name="species")([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The models an :func:`ensemble` averages, or ``[model]`` for a single model."""
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return members or [model]


# A fixed timestamp for every archive member, so the bytes do not depend on
# when the model was saved.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _renumber_shared_objects(config: object) -> object:
    """Replace Keras' ``shared_object_id`` values by 1, 2, ... in order of appearance.

    Keras marks an object that several layers share (e.g. one dtype policy)
    with ``shared_object_id`` = its ``id()``, a memory address that differs
    from one process to the next, so two trainings to the same weights would
    write different bytes. Numbering the ids keeps which configs share an
    object, which is all loading uses them for.
    """
    numbers: dict[object, int] = {}

    def visit(value: object) -> None:
        if isinstance(value, dict):
            if "shared_object_id" in value:
                value["shared_object_id"] = numbers.setdefault(value["shared_object_id"], len(numbers) + 1)
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(config)
    return config


def save_model(model: keras.Model, path: str | Path, card: ModelCard) -> None:
    """Save ``model`` as a ``.keras`` archive, atomically and reproducibly.

    Keras stamps the save time into ``metadata.json`` and the zip entries,
    and memory addresses into ``config.json`` (see
    :func:`_renumber_shared_objects`); all are normalised, so the same
    weights always give the same bytes, in any process.
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
                    elif name == "config.json":
                        data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
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
    """Load a model saved by :func:`save_model`, in Keras safe mode.

    Raises
    ------
    ModelError
        If the file is missing or is not a model saved by this project.
    """
    path = Path(path)
    with reading_model(path):
        return keras.models.load_model(path, compile=False, safe_mode=True)
