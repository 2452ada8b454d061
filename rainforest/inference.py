"""Scoring whole recordings: windows slid over the spectrogram, one score per species.

A model whose backbone ends in :class:`~rainforest.model.TimeFrequencyPooling`
(``cnn``, ``resnet``) is fully convolutional up to that layer, so a recording
is scored in one pass: the convolutions run once over its whole spectrogram
and the pooling and head run on each window's slice of the resulting feature
map. Overlapping windows then share their convolutions, which halves the cost
at the default 50 % overlap. Other models (``baseline``) score each window cut
from the spectrogram. An ``embedding_head`` scores each window's embedding
(:class:`EmbeddingScorer`). :func:`make_scorer` picks the scorer a model needs.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from rainforest.audio import index_recordings, load_recording
from rainforest.config import FeatureSettings
from rainforest.embedding import EmbeddingModel, fit_windows, load_embedding_model
from rainforest.errors import AudioError, ModelError
from rainforest.features import (
    cut_windows,
    frame_times,
    log_mel_spectrogram,
    pad_to_length,
    sliding_window_starts,
    window_frames,
    window_span_samples,
)
from rainforest.model import ModelCard, TimeFrequencyPooling

log = logging.getLogger(__name__)

#: Spectrogram frames the convolutions see at a time (about 87 s at the
#: default settings): bounds the memory of scoring an hour-long recording.
CHUNK_FRAMES = 4096


class RecordingScorer:
    """Scores the windows of whole recordings with one model.

    Parameters
    ----------
    model
        A classifier from :func:`rainforest.model.build_model`.
    features
        The spectrogram settings it was trained with.
    sample_rate
        The rate recordings are read at.
    """

    def __init__(self, model: keras.Model, features: FeatureSettings, sample_rate: int):
        self.model, self.features, self.sample_rate = model, features, sample_rate
        self.n_frames = window_frames(features, sample_rate)
        pooling = [layer for layer in model.layers if isinstance(layer, TimeFrequencyPooling)]
        self.fully_convolutional = len(pooling) == 1 and model.input.shape[2] is None
        if self.fully_convolutional:
            trunk = keras.Model(model.input, pooling[0].input)
            n_mels = features.n_mels
            #: Spectrogram frames per feature-map frame, and a window's width on the map.
            self.stride = CHUNK_FRAMES // trunk.compute_output_shape((1, n_mels, CHUNK_FRAMES))[2]
            self.window_width = trunk.compute_output_shape((1, n_mels, self.n_frames))[2]
            # Compiled once per input shape: half the time of eager calls.
            self._trunk = tf.function(lambda x: trunk(x, training=False), reduce_retracing=True)
            head = keras.Model(pooling[0].output, model.output)
            self._head = tf.function(lambda x: head(x, training=False), reduce_retracing=True)

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        """The recording's log-mel spectrogram, zero-padded to at least one window."""
        waveform = pad_to_length(waveform, window_span_samples(self.n_frames, self.features))
        return log_mel_spectrogram(waveform, self.sample_rate, self.features)

    def window_scores(self, waveform: np.ndarray, hop_seconds: float, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores of every window slid over one recording.

        Windows start every ``hop_seconds`` (rounded to whole frames, or for a
        fully convolutional model to whole feature-map frames, a multiple of
        its stride) and the last one is aligned to the recording's end. A
        recording shorter than a window is zero-padded.

        Returns
        -------
        start_seconds : np.ndarray
            Shape (n_windows,): where each window starts in the recording. Each
            covers ``features.window_seconds`` from there.
        scores : np.ndarray
            Shape (n_windows, n_species).
        """
        return self.prepared_scores(self.prepare(waveform), hop_seconds, batch_size)

    def prepared_scores(
        self, spectrogram: np.ndarray, hop_seconds: float, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`window_scores` of a spectrogram from :meth:`prepare`."""
        hop_frames = max(1, round(hop_seconds * self.sample_rate / self.features.hop_length))
        if self.fully_convolutional:
            starts, scores = self._pooled_window_scores(spectrogram, hop_frames, batch_size)
        else:
            starts = sliding_window_starts(spectrogram.shape[1], self.n_frames, hop_frames)
            windows = cut_windows(spectrogram, starts, self.n_frames)
            scores = np.concatenate(
                [self.model(windows[i : i + batch_size], training=False).numpy() for i in range(0, len(windows), batch_size)]
            )
        return frame_times(starts, self.sample_rate, self.features), scores

    def _pooled_window_scores(self, spectrogram: np.ndarray, hop_frames: int, batch_size: int):
        # Mean over frequency of the last feature map, for the whole recording.
        # Chunks are multiples of the stride, so they tile the map exactly.
        over_frequency = np.concatenate(
            [
                self._trunk(spectrogram[None, :, first : first + CHUNK_FRAMES]).numpy().mean(axis=1)[0]
                for first in range(0, spectrogram.shape[1], CHUNK_FRAMES)
            ]
        )
        starts = sliding_window_starts(len(over_frequency), self.window_width, max(1, round(hop_frames / self.stride)))
        # (n_windows, channels, width): each window's slice of the map.
        windows = np.lib.stride_tricks.sliding_window_view(over_frequency, self.window_width, axis=0)[starts]
        # What TimeFrequencyPooling does to one window: max and mean over time.
        pooled = np.concatenate([windows.max(axis=2), windows.mean(axis=2)], axis=1)
        scores = np.concatenate(
            [self._head(pooled[i : i + batch_size]).numpy() for i in range(0, len(pooled), batch_size)]
        )
        return starts * self.stride, scores


class EmbeddingScorer:
    """Scores the windows of whole recordings with a head on a pretrained model's embeddings.

    Each window (``features.window_seconds`` at the card's rate) is fitted to
    the embedding model's input (:func:`rainforest.embedding.fit_windows`),
    embedded, and scored by the head. The embedding model is the cost: at a
    hop of its own window length (3 s for BirdNET) every sample is embedded
    once, and a hop of half that costs twice as much.

    Parameters
    ----------
    model
        A head built with ``architecture: embedding_head``.
    card
        Its card, naming the embedding model.
    embedder
        That embedding model, loaded.
    """

    def __init__(self, model: keras.Model, card: ModelCard, embedder: EmbeddingModel):
        self.model, self.embedder, self.sample_rate = model, embedder, card.sample_rate
        self.window_samples = round(card.features.window_seconds * card.sample_rate)
        self._head = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        """The recording, zero-padded to at least one window."""
        return pad_to_length(waveform, self.window_samples)

    def window_scores(self, waveform: np.ndarray, hop_seconds: float, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`RecordingScorer.window_scores`; the hop is rounded to whole samples."""
        return self.prepared_scores(self.prepare(waveform), hop_seconds, batch_size)

    def prepared_scores(self, waveform: np.ndarray, hop_seconds: float, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`window_scores` of a waveform from :meth:`prepare`."""
        starts = sliding_window_starts(len(waveform), self.window_samples, round(hop_seconds * self.sample_rate))
        windows = np.lib.stride_tricks.sliding_window_view(waveform, self.window_samples)
        scores = [
            self._head(self.embedder.embed(fit_windows(windows[batch], self.sample_rate, self.embedder.info))).numpy()
            for batch in np.array_split(starts, np.arange(batch_size, len(starts), batch_size))
        ]
        return starts / self.sample_rate, np.concatenate(scores)


def make_scorer(model: keras.Model, card: ModelCard) -> RecordingScorer | EmbeddingScorer:
    """The scorer of a model saved by ``train``: on spectrograms, or for an
    ``embedding_head`` on the embeddings of the model its card names.

    Raises
    ------
    ConfigError, ModelError
        If the embedding model is not installed, or its file is not the one
        the head was trained on.
    """
    if card.embedding is None:
        return RecordingScorer(model, card.features, card.sample_rate)
    embedder = load_embedding_model(card.embedding.model, threads=os.cpu_count() or 1)
    if embedder.info.sha256 != card.embedding.sha256:
        raise ModelError(
            f"the model was trained on embeddings of a {card.embedding.model} file with SHA-256 "
            f"{card.embedding.sha256}, but the installed one has {embedder.info.sha256}; install the version "
            "it was trained with, or retrain (dvc repro)"
        )
    return EmbeddingScorer(model, card, embedder)


def aggregate_windows(scores: np.ndarray, method: str, top_k: int) -> np.ndarray:
    """One score per species from a recording's window scores (n_windows, n_species).

    ``max`` keeps the best window: one clear call is enough. ``mean_top_k``
    averages the ``top_k`` best windows (all of them if fewer), so a single
    loud lookalike sways the score less.
    """
    if method == "max":
        return scores.max(axis=0)
    k = min(top_k, len(scores))
    return np.sort(scores, axis=0)[-k:].mean(axis=0)


def read_prepared(
    scorer: RecordingScorer | EmbeddingScorer, paths: list[Path], workers: int
) -> Iterator[tuple[float, np.ndarray]]:
    """Decode ``paths`` and prepare them for the scorer (compute their
    spectrograms), in order, on ``workers`` threads a few recordings ahead, so
    that this work overlaps scoring (decoding and FFTs release the GIL).
    Yields each recording's duration in seconds and its prepared input.

    Raises
    ------
    AudioError
        If a recording cannot be decoded (see :func:`rainforest.audio.load_recording`).
    """
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for path in paths:
            pending.append(pool.submit(_read_and_prepare, scorer, path))
            # A bounded lookahead: memory stays flat however many recordings.
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _read_and_prepare(scorer: RecordingScorer | EmbeddingScorer, path: Path) -> tuple[float, np.ndarray]:
    waveform = load_recording(path, scorer.sample_rate)
    return len(waveform) / scorer.sample_rate, scorer.prepare(waveform)


def score_recordings(
    model: keras.Model,
    card: ModelCard,
    folder: str | Path,
    recording_ids: list[str],
    *,
    hop_seconds: float,
    batch_size: int,
    aggregation: str = "max",
    top_k: int = 1,
    workers: int = 1,
) -> np.ndarray:
    """Per-species score of each recording, aggregated over its windows
    (see :func:`aggregate_windows`), with the scorer the model needs
    (:func:`make_scorer`). Logs the audio seconds scored per second.

    Returns
    -------
    np.ndarray
        Shape (len(recording_ids), n_species), rows in the given order.

    Raises
    ------
    AudioError
        If a recording has no audio file in ``folder``, or cannot be decoded.
    """
    audio = index_recordings(folder)
    missing = [r for r in recording_ids if r not in audio]
    if missing:
        raise AudioError(
            f"{folder}: {len(missing)} recording(s) listed in sample_submission.csv have no audio "
            f"(first: {', '.join(missing[:5])}); add the files or remove their rows"
        )
    scorer = make_scorer(model, card)
    started, audio_seconds, scores = time.perf_counter(), 0.0, []
    # TensorFlow already keeps every core busy: a BLAS thread pool on top (for
    # the spectrograms' mel projection) would oversubscribe them, 25 % slower.
    with threadpool_limits(limits=1, user_api="blas"):
        prepared = read_prepared(scorer, [audio[r] for r in recording_ids], workers)
        for seconds, recording in tqdm(prepared, total=len(recording_ids), desc="submit", unit="rec", disable=None):
            window_scores = scorer.prepared_scores(recording, hop_seconds, batch_size)[1]
            scores.append(aggregate_windows(window_scores, aggregation, top_k))
            audio_seconds += seconds
    elapsed = time.perf_counter() - started
    log.info(
        "scored %d recordings, %.0f s of audio, in %.1f s: %.1f audio seconds per second",
        len(recording_ids), audio_seconds, elapsed, audio_seconds / elapsed,
    )
    return np.stack(scores)
