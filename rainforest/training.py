"""Fitting the classifier: targets, the input pipeline, seeding and the training loop.

The input pipeline applies SpecAugment and mixup online, afresh every epoch,
with random draws derived from ``train.seed`` so the same data and settings
train the same weights.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from dvclive import Live
from dvclive.utils import standardize_metric_name
from tqdm.keras import TqdmCallback

from rainforest.atomic_writes import write_json, write_text
from rainforest.card import EmbeddingCard, ModelCard
from rainforest.config import ModelSettings, PseudoLabelSettings, SpecAugmentSettings, TrainSettings
from rainforest.metrics import lwlrap, rounded_or_none
from rainforest.model import SCORING_BATCH, WeightedBinaryCrossentropy, build_model, ensemble, label_weights, save_model
from rainforest.numerics import training_threads
from rainforest.pseudo_labels import PSEUDO_LABEL_COLUMNS, PseudoLabels, pool_folds, scoring_members
from rainforest.split import fold_rows, read_split, validation_folds
from rainforest.window_sets import (
    LABEL_FIELDS,
    WindowRows,
    read_spectrogram_settings,
    read_window_attrs,
    read_windows,
    write_validation_scores,
)

log = logging.getLogger(__name__)


def one_hot_species(event_species: np.ndarray, n_species: int) -> np.ndarray:
    """Softmax targets: the species of the event each window was cut around."""
    return np.eye(n_species, dtype=np.float32)[event_species]


def input_statistics(inputs: np.ndarray | WindowRows, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each mel bin over all windows and frames (or of
    each dimension of embeddings over all windows), read ``chunk`` windows at
    a time."""
    axes = (0, *range(2, len(inputs.shape)))
    total = squares = 0.0
    for first in range(0, len(inputs), chunk):
        values = np.asarray(inputs[first : first + chunk], dtype=np.float64)
        total = total + values.sum(axis=axes)
        squares = squares + (values**2).sum(axis=axes)
    count = np.prod([inputs.shape[axis] for axis in axes])
    mean = total / count
    return mean, np.maximum(squares / count - mean**2, 1e-6)


def _read_window(inputs: np.ndarray | WindowRows, index: tf.Tensor) -> tf.Tensor:
    # One window, read when the pipeline needs it: from HDF5 for WindowRows.
    window = tf.numpy_function(lambda i: np.asarray(inputs[int(i)], dtype=np.float32), [index], tf.float32)
    return tf.ensure_shape(window, inputs.shape[1:])


def ordered_batches(
    inputs: np.ndarray | WindowRows, batch_size: int, labels: np.ndarray | None = None
) -> tf.data.Dataset:
    """Consecutive batches of windows, read as needed (for scoring and validation loss)."""
    starts = tf.data.Dataset.range(0, len(inputs), batch_size)

    def read(first):
        return np.asarray(inputs[int(first) : int(first) + batch_size], dtype=np.float32)

    batches = starts.map(
        lambda first: tf.ensure_shape(tf.numpy_function(read, [first], tf.float32), (None, *inputs.shape[1:]))
    )
    if labels is not None:
        batches = tf.data.Dataset.zip(batches, tf.data.Dataset.from_tensor_slices(labels).batch(batch_size))
    return batches.prefetch(2)


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, make TensorFlow's ops deterministic and
    fix its thread count (:func:`rainforest.numerics.training_threads`), so the
    same data and settings train the same weights on any number of cores."""
    threads = training_threads()
    # A stage calls this before TensorFlow's first op; where TensorFlow already ran in this
    # process (a test, a notebook), its thread pool stays as it was.
    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _band_mask(length: int, max_width: int, seed: tf.Tensor) -> tf.Tensor:
    """A boolean vector with one random run of 0..max_width True values."""
    width = tf.random.stateless_uniform([], seed, 0, max_width + 1, dtype=tf.int32)
    start = tf.random.stateless_uniform([], seed + 1, 0, tf.maximum(length - width, 0) + 1, dtype=tf.int32)
    positions = tf.range(length)
    return (positions >= start) & (positions < start + width)


def spec_augment(spectrogram: tf.Tensor, settings: SpecAugmentSettings, seed: tf.Tensor) -> tf.Tensor:
    """Mask random runs of frames and of mel bins with the window's mean (SpecAugment).

    Parameters
    ----------
    spectrogram
        One window, shape (n_mels, n_frames).
    seed
        Shape (2,) int64 seed of the stateless random draws.
    """
    n_mels, n_frames = tf.shape(spectrogram)[0], tf.shape(spectrogram)[1]
    masked = tf.zeros_like(spectrogram, dtype=tf.bool)
    for i in range(settings.time_masks):
        band = _band_mask(n_frames, settings.max_time_frames, seed + [0, 2 * i])
        masked |= band[None, :]
    for i in range(settings.frequency_masks):
        band = _band_mask(n_mels, settings.max_frequency_bins, seed + [1, 2 * i])
        masked |= band[:, None]
    return tf.where(masked, tf.reduce_mean(spectrogram), spectrogram)


def mixup(inputs: tf.Tensor, labels: tf.Tensor, alpha: float, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mix each window (spectrogram or embedding) of a batch with another one of the same batch.

    The share of the first window is drawn from Beta(alpha, alpha) per pair.
    Targets mix in the same shares; a label's weight is the larger of the
    two, so a species known in either window stays known.
    """
    batch = tf.shape(inputs)[0]
    partner = tf.random.experimental.stateless_shuffle(tf.range(batch), seed)
    first = tf.random.stateless_gamma([batch], seed + [0, 1], alpha)
    second = tf.random.stateless_gamma([batch], seed + [0, 2], alpha)
    share = first / tf.maximum(first + second, 1e-12)
    # One share per window, broadcast over its other axes.
    window_share = tf.reshape(share, [-1] + [1] * (len(inputs.shape) - 1))
    mixed = window_share * inputs + (1 - window_share) * tf.gather(inputs, partner)
    targets, weights = tf.split(labels, 2, axis=-1)
    other_targets, other_weights = tf.split(tf.gather(labels, partner), 2, axis=-1)
    targets = share[:, None] * targets + (1 - share[:, None]) * other_targets
    return mixed, tf.concat([targets, tf.maximum(weights, other_weights)], axis=-1)


def training_dataset(inputs: np.ndarray | WindowRows, labels: np.ndarray, settings: TrainSettings) -> tf.data.Dataset:
    """Shuffled batches with SpecAugment and mixup, drawn afresh every epoch.

    Only window indices are shuffled; each window is read when its batch is
    made, so a set in HDF5 streams through with flat memory. SpecAugment
    applies to spectrograms only, not to embeddings. Mixup only applies to
    the weighted binary cross-entropy's labels; the softmax loss trains on
    unmixed one-hot targets.
    """
    randomness = tf.data.Dataset.random(seed=settings.seed, rerandomize_each_iteration=True)
    dataset = tf.data.Dataset.zip(tf.data.Dataset.range(len(labels)), randomness.batch(2))
    dataset = dataset.shuffle(len(labels), seed=settings.seed, reshuffle_each_iteration=True)
    labels = tf.constant(labels)
    dataset = dataset.map(lambda index, seed: ((_read_window(inputs, index), tf.gather(labels, index)), seed))
    augment = settings.spec_augment
    if (augment.time_masks or augment.frequency_masks) and len(inputs.shape) == 3:
        dataset = dataset.map(lambda pair, seed: ((spec_augment(pair[0], augment, seed), pair[1]), seed))
    dataset = dataset.map(lambda pair, seed: (pair, seed[0]))
    dataset = dataset.batch(settings.batch_size)
    if settings.mixup_alpha > 0 and settings.loss == "masked_bce":
        dataset = dataset.map(
            lambda pair, seeds: mixup(pair[0], pair[1], settings.mixup_alpha, tf.stack([seeds[0], seeds[-1]]))
        )
    else:
        dataset = dataset.map(lambda pair, seeds: pair)
    return dataset.prefetch(2)


class BestEpochSelection(keras.callbacks.Callback):
    """Score the validation windows after every epoch, log ``val_lwlrap``,
    keep the best epoch's weights and stop early when it stops improving.

    Only windows with at least one present species count, as in LWLRAP.

    Parameters
    ----------
    patience
        Epochs without a better score before training stops; 0 never stops.
    restore_best
        Put the best epoch's weights back when training ends.
    """

    def __init__(self, inputs: np.ndarray | WindowRows, targets: np.ndarray, patience: int, restore_best: bool):
        super().__init__()
        labelled = targets.sum(axis=1) > 0
        self.inputs = inputs[labelled]
        self.targets = targets[labelled]
        self.patience = patience
        self.restore_best = restore_best
        self.best_score = -np.inf
        self.best_epoch = -1
        self.improved_epoch = -1
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not len(self.targets):
            return
        scores = self.model.predict(ordered_batches(self.inputs, SCORING_BATCH), verbose=0)
        score = lwlrap(self.targets, scores)
        if logs is not None:
            logs["val_lwlrap"] = score
        if score > self.best_score:
            self.improved_epoch = epoch
        # A tie goes to the later epoch: on a small validation set LWLRAP
        # can saturate at 1.0 from the first epoch, which would otherwise
        # keep a barely trained model. A tie is no improvement, though.
        if score >= self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.best_weights = self.model.get_weights()
        if self.patience and epoch - self.improved_epoch >= self.patience:
            log.info("no better validation LWLRAP for %d epochs: stopping after epoch %d", self.patience, epoch)
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore_best and self.best_weights is not None:
            log.info("keeping epoch %d (validation LWLRAP %.4f)", self.best_epoch, self.best_score)
            self.model.set_weights(self.best_weights)


def _labels(windows: dict[str, np.ndarray], settings: TrainSettings, n_species: int) -> np.ndarray:
    if "label_weights" in windows:  # a round's pseudo-labels weigh in (with_pseudo_labels)
        return windows["label_weights"]
    if settings.loss == "softmax_crossentropy":
        return one_hot_species(windows["event_species"], n_species)
    return label_weights(windows["targets"], windows["masks"], settings.unknown_label_weight)


def _optimizer(settings: TrainSettings, steps: int) -> keras.optimizers.Optimizer:
    rate = settings.learning_rate
    if settings.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(settings.learning_rate, decay_steps=steps)
    if settings.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=settings.weight_decay)
    return keras.optimizers.Adam(rate)


def select_training_windows(windows: dict[str, np.ndarray], settings: TrainSettings) -> dict[str, np.ndarray]:
    """Drop the false-positive windows unless ``use_false_positives``."""
    if settings.use_false_positives:
        return windows
    keep = windows["event_present"].astype(bool)
    return {name: values[keep] for name, values in windows.items()}


def load_training_data(
    windows_path: str | Path,
    split: pd.DataFrame,
    fold: int | None,
    augmented_path: str | Path,
    *,
    use_augmented: bool,
    embeddings: tuple[str | Path, str | Path] | None = None,
) -> tuple[dict, dict]:
    """The windows fold ``fold``'s model trains on (with their augmented copies
    if ``use_augmented``) and the windows it validates on; for ``fold=None``
    every window, and none (:func:`~rainforest.split.fold_rows`).

    Labels are read into memory; ``inputs`` are :class:`WindowRows` that
    stream from the HDF5 files as training reads them: the spectrograms, or
    with ``embeddings`` (the embedding files of the window set and of the
    augmented set, row for row) the embeddings. Validation windows carry
    ``rows``, their indices in the window set.
    """
    recording_ids = read_windows(windows_path, ("recording_ids",))["recording_ids"]
    train_rows, validation_rows = fold_rows(recording_ids, split, fold)
    sources, field = (
        ((windows_path, augmented_path), "spectrograms") if embeddings is None else (embeddings, "embeddings")
    )
    train: dict[str, Any] = read_windows(windows_path, LABEL_FIELDS, train_rows)
    parts = [(sources[0], train_rows)]
    if use_augmented:
        copies = read_windows(augmented_path, ("recording_ids",))["recording_ids"]
        copy_rows = fold_rows(copies, split, fold)[0]
        augmented = read_windows(augmented_path, LABEL_FIELDS, copy_rows)
        train = {name: np.concatenate([train[name], augmented[name]]) for name in LABEL_FIELDS}
        parts.append((sources[1], copy_rows))
    train["inputs"] = WindowRows(parts, field)
    validation: dict[str, Any] = read_windows(windows_path, LABEL_FIELDS, validation_rows)
    validation["inputs"] = WindowRows([(sources[0], validation_rows)], field)
    validation["rows"] = validation_rows
    return train, validation


def model_card(windows_path: str | Path, embeddings_path: str | Path | None = None) -> ModelCard:
    """The card of a model trained on this window set (and on these embeddings
    of it, for an ``embedding_head``): what inference must reproduce."""
    window_attrs = read_window_attrs(windows_path)
    species = [str(name) for name in window_attrs["species"]]
    labels = [str(name) for name in window_attrs["species_labels"]] if "species_labels" in window_attrs else None
    embedding = None
    if embeddings_path is not None:
        embedding = EmbeddingCard.from_attrs(read_window_attrs(embeddings_path))
    return ModelCard(read_spectrogram_settings(windows_path), species, embedding, labels)


class EpochCurves(keras.callbacks.Callback):
    """Log every epoch's training and validation loss and validation LWLRAP
    with dvclive, for ``dvc plots``: dvclive's own Keras callback, with each
    fold's curves under a name of its own (``prefix``, e.g. ``fold_2/``)."""

    def __init__(self, live: Live, prefix: str = ""):
        super().__init__()
        self.live, self.prefix = live, prefix

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.live.step = epoch
        for metric, value in (logs or {}).items():
            self.live.log_metric(self.prefix + standardize_metric_name(metric, "dvclive.keras"), value)
        self.live.sync()


#: ``early_stopping_patience: auto`` on a holdout.
AUTO_PATIENCE = 8


def epoch_choice(settings: TrainSettings, *, cross_validating: bool) -> TrainSettings:
    """``settings`` with ``early_stopping_patience`` and ``select_best_epoch``
    decided where they are ``auto``.

    On a holdout (every species with 10 or more labelled recordings under
    ``split.folds: auto``), training stops after :data:`AUTO_PATIENCE`
    epochs without a better validation LWLRAP and keeps the best epoch. When
    cross-validating, each fold's validation set is a few recordings per
    species: an epoch chosen on it is chosen by chance, and would flatter the
    out-of-fold scores that judge the model and set its thresholds. So every
    fold trains all ``epochs`` of its schedule and keeps the last.

    Examples
    --------
    >>> from rainforest.config import load_settings
    >>> auto = load_settings().train
    >>> holdout, folds = epoch_choice(auto, cross_validating=False), epoch_choice(auto, cross_validating=True)
    >>> (holdout.early_stopping_patience, holdout.select_best_epoch), (folds.early_stopping_patience, folds.select_best_epoch)
    ((8, True), (0, False))
    """
    decided = {}
    if settings.early_stopping_patience == "auto":
        decided["early_stopping_patience"] = 0 if cross_validating else AUTO_PATIENCE
    if settings.select_best_epoch == "auto":
        decided["select_best_epoch"] = not cross_validating
    return settings.model_copy(update=decided)


def final_model_choice(settings: TrainSettings, *, cross_validating: bool) -> str:
    """``final_model`` decided where it is ``auto``: ``refit`` when
    cross-validating, ``ensemble`` (the holdout's one model) otherwise.

    When cross-validating, every fold trains its whole schedule and keeps the
    last epoch, so a refit on all the labelled recordings runs the same schedule
    on a fifth more data, and scores K times faster than the folds' ensemble.
    On a holdout the model's epoch was chosen on the holdout: a refit can only
    guess it, and scored lower on the demo (docs/model.md, "Cross-validation").

    Examples
    --------
    >>> from rainforest.config import load_settings
    >>> auto = load_settings().train
    >>> final_model_choice(auto, cross_validating=True), final_model_choice(auto, cross_validating=False)
    ('refit', 'ensemble')
    """
    if settings.final_model != "auto":
        return settings.final_model
    return "refit" if cross_validating else "ensemble"


def train_classifier(
    model_settings: ModelSettings,
    settings: TrainSettings,
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray] | None,
    live: Live,
    *,
    curves: str = "",
    cross_validating: bool = False,
    stop_after: int | None = None,
) -> keras.Model:
    """Build and fit the classifier.

    Parameters
    ----------
    train, validation
        Window sets as :func:`load_training_data` reads them, or in memory:
        ``inputs`` (spectrograms, or embeddings for ``embedding_head``),
        ``targets``, ``masks``, ``event_species`` and ``event_present``.
        Without ``validation`` (a refit) every epoch trains and the last is kept.
    live
        Where dvclive logs every epoch's training and validation loss and
        validation LWLRAP, for ``dvc plots``; ``curves`` prefixes their names.
    cross_validating
        Whether ``validation`` is one fold of several (:func:`epoch_choice`).
    stop_after
        Stop after this many epochs of the ``epochs`` schedule (a refit, for
        the epochs the folds kept); ``None`` runs the schedule.

    Returns
    -------
    keras.Model
        The model of the best epoch (``select_best_epoch``) or the last one;
        its ``epochs_kept`` attribute says how many epochs it trained.
    """
    make_deterministic(settings.seed)
    settings = epoch_choice(settings, cross_validating=cross_validating)
    train = select_training_windows(train, settings)
    n_windows, *input_shape = train["inputs"].shape
    n_species = train["targets"].shape[1]
    mean, variance = input_statistics(train["inputs"])
    softmax = settings.loss == "softmax_crossentropy"
    model = build_model(
        model_settings,
        tuple(input_shape),
        n_species,
        mean=mean,
        variance=variance,
        activation="softmax" if softmax else "sigmoid",
    )
    steps = settings.epochs * int(np.ceil(n_windows / settings.batch_size))
    model.compile(
        optimizer=_optimizer(settings, steps),
        loss=keras.losses.CategoricalCrossentropy() if softmax else WeightedBinaryCrossentropy(),
    )
    log.info(
        "training %s%s on %d windows (inputs %s), %d parameters",
        model_settings.architecture,
        f" ({curves.rstrip('/')})" if curves else "",
        n_windows,
        " x ".join(map(str, input_shape)),
        model.count_params(),
    )
    callbacks, validation_data = [], None
    if validation is not None:
        validation = select_training_windows(validation, settings)
        validation_data = ordered_batches(validation["inputs"], SCORING_BATCH, _labels(validation, settings, n_species))
        selection = BestEpochSelection(
            validation["inputs"],
            validation["targets"],
            settings.early_stopping_patience,  # type: ignore[arg-type]  # epoch_choice above decided "auto"
            settings.select_best_epoch,  # type: ignore[arg-type]
        )
        callbacks.append(selection)
    history = model.fit(
        training_dataset(train["inputs"], _labels(train, settings, n_species), settings),
        epochs=stop_after or settings.epochs,
        validation_data=validation_data,
        # After the scorer, so the logger sees val_lwlrap.
        callbacks=[
            *callbacks,
            EpochCurves(live, curves),
            # An epoch progress bar on a terminal, nothing in logs.
            TqdmCallback(verbose=0, disable=None, desc=f"train {curves.rstrip('/')}".strip()),
        ],
        shuffle=False,  # the dataset reshuffles itself every epoch
        verbose=0,
    )
    restored = validation is not None and settings.select_best_epoch and selection.best_weights is not None
    model.epochs_kept = selection.best_epoch + 1 if restored else len(history.epoch)
    return model


def candidate_heads(settings: ModelSettings) -> list[str]:
    """The heads :func:`train_model` fits: ``model.head``, or for ``auto``
    the dense head, except on embeddings, where a linear probe is the
    classic first choice and a hidden layer may still pay: both, linear first.

    Examples
    --------
    >>> from rainforest.config import ModelSettings
    >>> head = ModelSettings(architecture="embedding_head", frequency_channel=True, filters=[8], dense_units=8,
    ...                      dropout=0.3)
    >>> candidate_heads(head), candidate_heads(head.model_copy(update={"architecture": "cnn"}))
    (['linear', 'dense'], ['dense'])
    """
    if settings.head != "auto":
        return [settings.head]
    return ["linear", "dense"] if settings.architecture == "embedding_head" else ["dense"]


@dataclass
class FoldModels:
    """The models of every fold of a split, and each validated window's score
    by the model of its fold (rows of the window set, ascending)."""

    members: list[keras.Model]
    #: Epochs each member trained and kept (the best epoch's, or all of them).
    epochs: list[int]
    rows: np.ndarray
    folds: np.ndarray
    scores: np.ndarray
    targets: np.ndarray

    @property
    def lwlrap(self) -> float:
        """Out-of-fold LWLRAP over the validated windows with a present species."""
        labelled = self.targets.sum(axis=1) > 0
        return lwlrap(self.targets[labelled], self.scores[labelled]) if labelled.any() else float("nan")


def fit_folds(
    model: ModelSettings,
    settings: TrainSettings,
    load_fold: Callable[[int], tuple[dict, dict]],
    folds: list[int],
    live: Live,
    *,
    curves: str = "",
) -> FoldModels:
    """Fit one classifier per fold (:func:`train_classifier`) on
    ``load_fold(fold)``'s training windows, and score its validation windows with it."""
    members, rows, fold_of, scores, targets = [], [], [], [], []
    for fold in folds:
        train, validation = load_fold(fold)
        prefix = curves + (f"fold_{fold}/" if len(folds) > 1 else "")
        member = train_classifier(
            model, settings, train, validation, live, curves=prefix, cross_validating=len(folds) > 1
        )
        members.append(member)
        scores.append(member.predict(ordered_batches(validation["inputs"], SCORING_BATCH), verbose=0))
        rows.append(validation["rows"])
        fold_of.append(np.full(len(validation["rows"]), fold))
        targets.append(validation["targets"])
    order = np.argsort(np.concatenate(rows), kind="stable")
    return FoldModels(
        members,
        [member.epochs_kept for member in members],
        *(np.concatenate(parts)[order] for parts in (rows, fold_of, scores, targets)),
    )


def refit(
    model: ModelSettings, settings: TrainSettings, train: dict, folds: FoldModels, live: Live, *, curves: str = ""
) -> keras.Model:
    """One classifier trained on every labelled window (``train``, as
    :func:`load_training_data` reads fold ``None``) for the median of the
    epochs the folds' models kept, on the schedule they trained on.

    When cross-validating with the committed settings every fold keeps all
    ``epochs``, so the refit runs the same schedule on all the data.
    """
    epochs = int(np.median(folds.epochs))
    log.info(
        "train.final_model refit: one model on every labelled recording for %d epochs (the folds kept %s)",
        epochs,
        ", ".join(map(str, folds.epochs)),
    )
    started = time.perf_counter()
    classifier = train_classifier(
        model,
        settings,
        train,
        None,
        live,
        curves=curves + "refit/",
        cross_validating=len(folds.epochs) > 1,
        stop_after=epochs,
    )
    # The refit's share of the stage's time: what it costs over the ensemble.
    log.info("refit trained in %.0f s", time.perf_counter() - started)
    return classifier


def with_pseudo_labels(
    train: dict, pool: WindowRows, labels: PseudoLabels, fold: int | None, settings: TrainSettings, weight: float
) -> dict:
    """Fold ``fold``'s training windows (:func:`load_training_data`) and the
    pool windows whose pseudo-labels it may train on (those of the other
    folds, :meth:`PseudoLabels.for_fold`), with their loss weights side by
    side (``label_weights``): ``weight`` on a pseudo-label, 1 on a person's label."""
    chosen = labels.for_fold(fold)
    targets, masks = labels.targets[chosen], labels.masks[chosen]
    n_species = targets.shape[1]
    return {
        "inputs": train["inputs"].joined(pool[labels.rows[chosen]]),
        "targets": np.concatenate([train["targets"], targets]),
        "masks": np.concatenate([train["masks"], masks]),
        "event_species": np.concatenate([train["event_species"], np.full(len(targets), -1, np.int16)]),
        # Kept with use_false_positives: false where a species is present.
        "event_present": np.concatenate([train["event_present"], targets.any(axis=1).astype(np.uint8)]),
        "label_weights": np.concatenate(
            [
                _labels(train, settings, n_species),
                label_weights(targets, masks, settings.unknown_label_weight, known_weight=weight),
            ]
        ),
    }


@dataclass(frozen=True)
class Pool:
    """The pool's windows as a model reads them, and the fold of each (:func:`~rainforest.pseudo_labels.pool_folds`)."""

    inputs: WindowRows
    recording_ids: np.ndarray
    start_times: np.ndarray
    folds: np.ndarray
    #: The member of the folds' models that scores each window (:func:`~rainforest.pseudo_labels.scoring_members`).
    scorers: np.ndarray

    @classmethod
    def read(cls, path: str | Path, embeddings_path: str | Path | None, split: pd.DataFrame) -> Pool:
        """The pool of window set ``path`` (its spectrograms, or the embeddings in ``embeddings_path``)."""
        fields = read_windows(path, ("recording_ids", "start_times"))
        rows = np.arange(len(fields["recording_ids"]))
        source, field = (path, "spectrograms") if embeddings_path is None else (embeddings_path, "embeddings")
        folds = pool_folds(fields["recording_ids"], split, validation_folds(split))
        return cls(
            WindowRows([(source, rows)], field),
            fields["recording_ids"],
            fields["start_times"],
            folds,
            scoring_members(folds, validation_folds(split)),
        )

    def scores(self, members: list[keras.Model]) -> np.ndarray:
        """Each window's scores by the model of its fold, which never trained on its recording
        (on a holdout, by the one model, which never trained on the window)."""
        scores = np.zeros((len(self.inputs), members[0].output_shape[-1]), np.float32)
        for i, member in enumerate(members):
            rows = np.flatnonzero(self.scorers == i)
            if len(rows):
                scores[rows] = member.predict(ordered_batches(self.inputs[rows], SCORING_BATCH), verbose=0)
        return scores


@dataclass(frozen=True)
class TrainingFiles:
    """The files of one training run, in the train stage's order: what it
    reads (the window set, its split, the augmented copies, the pool, and the
    embed stage's embeddings of the three, row for row) and what it writes
    (the model, the validation scores, dvclive's folder of curves, each
    round's model, the pseudo-labels, the rounds' figures and the
    pseudo-labels' counts per species)."""

    windows: str | Path
    split: str | Path
    augmented: str | Path
    pool: str | Path
    window_embeddings: str | Path
    augmented_embeddings: str | Path
    pool_embeddings: str | Path
    model: str | Path
    validation_scores: str | Path
    live_dir: str | Path
    round_models: str | Path
    pseudo_labels: str | Path
    rounds: str | Path
    pseudo_label_counts: str | Path


def fit_round(
    model: ModelSettings,
    settings: TrainSettings,
    load_fold: Callable[[int | None], tuple[dict, dict]],
    folds: list[int],
    live: Live,
    *,
    curves: str = "",
) -> tuple[FoldModels, keras.Model]:
    """Fit every candidate head on every fold (:func:`fit_folds`), keep the
    head with the higher out-of-fold LWLRAP, and make the model shipped
    (:func:`final_model_choice`): the holdout's model or the folds'
    ensemble, or a :func:`refit`. Returns the kept head's fold models and the model."""
    heads = candidate_heads(model)
    fitted = {
        head: fit_folds(
            model.model_copy(update={"head": head}),
            settings,
            load_fold,
            folds,
            live,
            curves=curves + (f"{head}/" if len(heads) > 1 else ""),
        )
        for head in heads
    }
    # The first of the best: a tie goes to the simpler head.
    kept = max(heads, key=lambda head: (fitted[head].lwlrap, -heads.index(head)))
    if len(heads) > 1:
        log.info(
            "model.head auto: keeping %s (out-of-fold LWLRAP %s)",
            kept,
            ", ".join(f"{head} {fitted[head].lwlrap:.4f}" for head in heads),
        )
    best = fitted[kept]
    final = final_model_choice(settings, cross_validating=len(best.members) > 1)
    if settings.final_model == "auto":
        log.info(
            "train.final_model auto: %s (%s)",
            final,
            "the split cross-validates" if final == "refit" else "a holdout: its model, with the epoch it chose",
        )
    if final == "refit":
        classifier = refit(
            model.model_copy(update={"head": kept}), settings, load_fold(None)[0], best, live, curves=curves
        )
    else:
        classifier = ensemble(best.members)
    return best, classifier


def train_model(
    *, model: ModelSettings, settings: TrainSettings, pseudo_label: PseudoLabelSettings, files: TrainingFiles
) -> keras.Model:
    """The train stage: fit one classifier per fold of the split on the
    windows of the other folds and their augmented copies (:func:`fit_folds`),
    and save the model with its card: with ``final_model: ensemble`` the one
    model of a holdout, or the :func:`~rainforest.model.ensemble` of the
    folds' models when cross-validating; with ``refit`` one model trained
    afresh on every labelled recording (:func:`refit`); with ``auto``, as
    :func:`final_model_choice` decides (:func:`fit_round`).

    The classifier reads the windows' spectrograms, or with
    ``architecture: embedding_head`` their embeddings (the embed stage's
    files); its card names the embedding model and the SHA-256 of its file,
    so inference computes the same features. With several
    :func:`candidate_heads`, each is fitted on every fold and the one with
    the higher out-of-fold LWLRAP is kept. ``files.validation_scores`` gets
    every validated window's score by the model that did not train on it
    (:func:`write_validation_scores`): evaluate's metrics and thresholds.

    With ``pseudo_label.rounds`` R > 0, R rounds follow: each scores the
    pool (:class:`Pool`) with the last round's fold models, takes the
    confident windows as pseudo-labels
    (:class:`~rainforest.pseudo_labels.PseudoLabels`) and fits every model
    again with them (:func:`with_pseudo_labels`). The model and validation
    scores written are the last round's; ``files.round_models`` gets every
    round's model (``round_0.keras``, ... ``round_R.keras``, the last the
    model itself, whatever R), ``files.pseudo_labels`` every round's labels,
    ``files.rounds`` each round's out-of-fold LWLRAP and label counts, and
    ``files.pseudo_label_counts`` the labels per species.
    """
    on_embeddings = model.architecture == "embedding_head"
    embeddings = (files.window_embeddings, files.augmented_embeddings) if on_embeddings else None
    split = read_split(files.split)
    folds = validation_folds(split)
    pool = Pool.read(files.pool, files.pool_embeddings if on_embeddings else None, split)
    card = model_card(files.windows, files.window_embeddings if on_embeddings else None)
    live = Live(str(files.live_dir), save_dvc_exp=False, dvcyaml=False)
    round_models = Path(files.round_models)
    round_models.mkdir(parents=True, exist_ok=True)
    labels: PseudoLabels | None = None
    # Empty without rounds: round 0's figures are evaluate's, and the default's dvc metrics show stays narrow.
    figures: dict[str, Any] = {}
    tables = []
    counts = pd.DataFrame({"species": card.species, "positives": 0, "absences": 0})
    for round_number in range(pseudo_label.rounds + 1):

        def load_fold(fold: int | None, labels: PseudoLabels | None = labels) -> tuple[dict, dict]:
            train, validation = load_training_data(
                files.windows, split, fold, files.augmented, use_augmented=settings.use_augmented, embeddings=embeddings
            )
            if labels is not None:
                train = with_pseudo_labels(train, pool.inputs, labels, fold, settings, pseudo_label.weight)
            return train, validation

        best, classifier = fit_round(
            model, settings, load_fold, folds, live, curves=f"round_{round_number}/" if pseudo_label.rounds else ""
        )
        if pseudo_label.rounds:
            figures[f"round_{round_number}"] = {"lwlrap": rounded_or_none(best.lwlrap)}
        if labels is not None:
            figures[f"round_{round_number}"] |= {
                "positives": int(labels.targets.sum()),
                "absences": int(((labels.targets == 0) & (labels.masks == 1)).sum()),
            }
        if round_number == pseudo_label.rounds:
            break
        log.info(
            "round %d: out-of-fold LWLRAP %.4f; scoring the pool's %d windows",
            round_number,
            best.lwlrap,
            len(pool.inputs),
        )
        save_model(classifier, round_models / f"round_{round_number}.keras", card)
        # The next round's seed differs, so each round draws its own absences.
        labels = PseudoLabels.of(pool.scores(best.members), pool.folds, pseudo_label, settings.seed + round_number)
        round_counts = labels.counts(card.species)
        counts[["positives", "absences"]] += round_counts[["positives", "absences"]].to_numpy()
        log.info(
            "round %d's pseudo-labels: %d positives of %d species, %d absences",
            round_number + 1,
            int(round_counts["positives"].sum()),
            int((round_counts["positives"] > 0).sum()),
            int(round_counts["absences"].sum()),
        )
        tables.append(labels.table(card.species, pool.recording_ids, pool.start_times).assign(round=round_number + 1))
    live.end()
    save_model(classifier, files.model, card)
    # The last round's model is the model, byte for byte.
    shutil.copyfile(files.model, round_models / f"round_{pseudo_label.rounds}.keras")
    write_validation_scores(files.validation_scores, best.rows, best.folds, best.scores, card.species)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    write_text(
        files.pseudo_labels, table.reindex(columns=PSEUDO_LABEL_COLUMNS).to_csv(index=False, float_format="%.6f")
    )
    write_json(files.rounds, figures)
    write_text(files.pseudo_label_counts, counts.to_csv(index=False))
    return classifier
