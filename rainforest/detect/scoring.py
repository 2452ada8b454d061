"""Scoring recordings: windows slid over each one, a score per window and species.

One path serves ``submit`` and ``rainforest-detect``: :func:`score_windows`
streams recordings through a scorer and yields each one's window scores. A
recording is decoded and scored in blocks, so memory stays flat whatever its
length (a day-long file scores in the memory of a minute-long one), and the
scores are those of scoring the whole file at once.

A model whose backbone ends in :class:`~rainforest.model.TimeFrequencyPooling`
(``cnn``, ``resnet``) is fully convolutional up to that layer, so a recording
is scored in one pass: the convolutions run once over its whole spectrogram,
:data:`CHUNK_FRAMES` frames at a time, and the pooling and head run on each
window's slice of the resulting feature map. Overlapping windows then share
their convolutions, which halves the cost at the default 50 % overlap. Other
models (``baseline``) score each window cut from the spectrogram. An
``embedding_head`` scores each window's embedding (:class:`EmbeddingScorer`).
:func:`make_scorer` picks the scorer a model needs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from rainforest.audio import Recording, Skipped
from rainforest.card import ModelCard
from rainforest.config import ScoringSettings, SpectrogramSettings
from rainforest.embedding import EmbeddingModel, check_same_model, fit_windows, load_embedding_model
from rainforest.errors import AudioError
from rainforest.model import TimeFrequencyPooling, ensemble_members
from rainforest.parallel import one_blas_thread, streams_ahead
from rainforest.spectrogram import (
    FRAME_BLOCK,
    frame_times,
    sliding_window_starts,
    spectrogram_blocks,
    window_span_samples,
)

log = logging.getLogger(__name__)

#: Spectrogram frames the convolutions see at a time (about 87 s at the
#: default settings): the block a recording is decoded and scored in. The
#: spectrogram's own block, so a streamed spectrogram is the whole one's, bit
#: for bit.
CHUNK_FRAMES = FRAME_BLOCK

#: Samples an embedding scorer decodes at a time (about 22 s at 48 kHz).
EMBEDDING_BLOCK_SAMPLES = 1 << 20


def stream_windows(
    blocks: Iterable[np.ndarray], starts: np.ndarray, width: int, batch_size: int
) -> Iterator[np.ndarray]:
    """Batches of the windows ``[start, start + width)`` along the first axis
    of ``blocks`` joined, read as the blocks arrive.

    Only the rows the next batch needs are held, so memory is bounded by a
    batch's span plus a block, not by the length of the whole. Batch ``i``
    holds the windows ``starts[i * batch_size : (i + 1) * batch_size]``,
    whatever the blocks' sizes.

    Parameters
    ----------
    blocks
        Consecutive blocks of rows, shape (n_rows, ...), together at least
        ``starts[-1] + width`` rows.
    starts
        Ascending first rows of the windows.

    Yields
    ------
    np.ndarray
        Shape (n, ..., width): the window axis last, as
        :func:`numpy.lib.stride_tricks.sliding_window_view` puts it.

    Examples
    --------
    >>> rows = np.arange(10)
    >>> [batch.tolist() for batch in stream_windows(np.array_split(rows, 4), np.array([0, 3, 6, 7]), 3, 3)]
    [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[7, 8, 9]]]
    """
    buffer, offset, first, skip = None, 0, 0, 0  # buffer holds rows offset, offset + 1, ...
    for block in blocks:
        if skip:  # rows before the next window that had not arrived yet
            cut = min(skip, len(block))
            block, skip = block[cut:], skip - cut
        buffer = block if buffer is None else np.concatenate([buffer, block])
        while first < len(starts):
            chosen = starts[first : first + batch_size]
            if chosen[-1] + width > offset + len(buffer):
                break
            # A copy in the layout whole-recording scoring had, so that reductions
            # over the window sum in the same order, to the last bit.
            yield np.lib.stride_tricks.sliding_window_view(buffer, width, axis=0)[chosen - offset]
            first += len(chosen)
            if first < len(starts):  # drop the rows no later window needs
                drop = int(starts[first]) - offset
                skip, offset = max(0, drop - len(buffer)), offset + drop
                buffer = buffer[drop:]
    if first < len(starts):
        raise ValueError(
            f"the blocks end at row {offset + (0 if buffer is None else len(buffer))}, "
            f"before the window at {starts[first]}"
        )


def _padded(blocks: Iterable[np.ndarray], n_samples: int, length: int) -> Iterator[np.ndarray]:
    # The blocks of a recording of n_samples, zero-padded at the end to length.
    yield from blocks
    if length > n_samples:
        yield np.zeros(length - n_samples, dtype=np.float32)


class RecordingScorer:
    """Scores the windows of recordings with a model on spectrograms.

    Parameters
    ----------
    model
        A classifier from :func:`rainforest.model.build_model`.
    spectrogram_settings
        The rate recordings are read at and the spectrogram settings, as it was trained.
    """

    def __init__(self, model: keras.Model, spectrogram_settings: SpectrogramSettings):
        self.model, self.spectrogram_settings = model, spectrogram_settings
        self.features, self.sample_rate = spectrogram_settings.features, spectrogram_settings.sample_rate
        self.n_frames = spectrogram_settings.window_frames
        #: Samples decoded at a time: one chunk of frames.
        self.block_samples = CHUNK_FRAMES * self.features.hop_length
        # An ensemble's members (rainforest.model.ensemble) run side by side:
        # their feature maps stacked on the channel axis, each head on its own channels.
        members = ensemble_members(model)
        poolings = [[layer for layer in member.layers if isinstance(layer, TimeFrequencyPooling)] for member in members]
        self.fully_convolutional = all(len(pooling) == 1 for pooling in poolings) and model.input.shape[2] is None
        if self.fully_convolutional:
            trunks = [keras.Model(member.input, pooling[0].input) for member, pooling in zip(members, poolings)]
            self._trunk_model = trunks[0]
            #: Spectrogram frames per feature-map frame, and a window's width on the map.
            self.stride = CHUNK_FRAMES // self._map_frames(CHUNK_FRAMES)
            self.window_width = self._map_frames(self.n_frames)
            # Compiled once per input shape: half the time of eager calls.
            self._trunk = tf.function(
                lambda x: tf.concat([trunk(x, training=False) for trunk in trunks], axis=-1), reduce_retracing=True
            )
            heads = [keras.Model(pooling[0].output, member.output) for member, pooling in zip(members, poolings)]
            bounds = np.cumsum([0] + [trunk.output.shape[-1] for trunk in trunks])
            self._head = tf.function(lambda x: _mean_of_heads(heads, bounds, x), reduce_retracing=True)

    def _map_frames(self, n_frames: int) -> int:
        return self._trunk_model.compute_output_shape((1, self.features.n_mels, n_frames))[2]

    def input_blocks(self, samples: Iterable[np.ndarray], n_samples: int) -> Iterator[np.ndarray]:
        """The log-mel spectrogram of a recording of ``n_samples`` that arrives
        in pieces, in blocks of :data:`CHUNK_FRAMES` frames; a recording
        shorter than a window is zero-padded to one."""
        length = max(n_samples, window_span_samples(self.n_frames, self.features))
        return spectrogram_blocks(_padded(samples, n_samples, length), self.spectrogram_settings, CHUNK_FRAMES)

    def scores(
        self, blocks: Iterable[np.ndarray], n_samples: int, *, scoring: ScoringSettings
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of every window slid over one recording, from its :meth:`input_blocks`.

        Windows start every ``scoring.hop_seconds`` (rounded to whole frames, or for a
        fully convolutional model to whole feature-map frames, a multiple of
        its stride) and the last one is aligned to the recording's end. A
        recording shorter than a window is zero-padded. ``scoring.batch_size``
        windows are scored at a time.

        Returns
        -------
        start_seconds : np.ndarray
            Shape (n_windows,): where each window starts in the recording. Each
            covers ``features.window_seconds`` from there.
        scores : np.ndarray
            Shape (n_windows, n_species).
        """
        length = max(n_samples, window_span_samples(self.n_frames, self.features))
        n_frames = 1 + (length - self.features.n_fft) // self.features.hop_length
        hop_frames = max(1, round(scoring.hop_seconds * self.sample_rate / self.features.hop_length))
        if self.fully_convolutional:
            # The feature map, averaged over frequency: (map frames, channels)
            # per chunk. Whole chunks are multiples of the stride, so they tile it.
            chunks = (self._trunk(block[None]).numpy().mean(axis=1)[0] for block in blocks)
            full, rest = divmod(n_frames, CHUNK_FRAMES)
            n_map = full * (CHUNK_FRAMES // self.stride) + (self._map_frames(rest) if rest else 0)
            starts = sliding_window_starts(n_map, self.window_width, max(1, round(hop_frames / self.stride)))
            scores = [
                # What TimeFrequencyPooling does to a window of (channels, width): max and mean over time.
                self._head(np.concatenate([windows.max(axis=2), windows.mean(axis=2)], axis=1)).numpy()
                for windows in stream_windows(chunks, starts, self.window_width, scoring.batch_size)
            ]
            starts = starts * self.stride
        else:
            starts = sliding_window_starts(n_frames, self.n_frames, hop_frames)
            frames = (block.T for block in blocks)  # (frames, n_mels): windows come out (n, n_mels, frames)
            scores = [
                self.model(windows, training=False).numpy()
                for windows in stream_windows(frames, starts, self.n_frames, scoring.batch_size)
            ]
        return frame_times(starts, self.spectrogram_settings), np.concatenate(scores)


def _mean_of_heads(heads: list[keras.Model], bounds: np.ndarray, pooled: tf.Tensor) -> tf.Tensor:
    """The mean of each member's head on its own channels of ``pooled`` (the
    max over time of every channel, then the mean), as the ensemble's
    :class:`keras.layers.Average` takes it: summed in order, then divided."""
    maxima, means = tf.split(pooled, 2, axis=1)
    total = None
    for head, first, last in zip(heads, bounds[:-1], bounds[1:]):
        scores = head(tf.concat([maxima[:, first:last], means[:, first:last]], axis=1), training=False)
        total = scores if total is None else total + scores
    assert total is not None, "no heads"
    return total / len(heads)


class EmbeddingScorer:
    """Scores the windows of recordings with a head on a pretrained model's embeddings.

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

    block_samples = EMBEDDING_BLOCK_SAMPLES

    def __init__(self, model: keras.Model, card: ModelCard, embedder: EmbeddingModel):
        assert embedder.info is not None, "a head on embeddings reads a model"
        self.model, self.embedder, self.info = model, embedder, embedder.info
        self.sample_rate = card.spectrogram_settings.sample_rate
        self.window_samples = round(card.spectrogram_settings.features.window_seconds * self.sample_rate)
        self._head = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def input_blocks(self, samples: Iterable[np.ndarray], n_samples: int) -> Iterator[np.ndarray]:
        """The recording's samples, zero-padded to at least one window."""
        return _padded(samples, n_samples, max(n_samples, self.window_samples))

    def scores(
        self, blocks: Iterable[np.ndarray], n_samples: int, *, scoring: ScoringSettings
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`RecordingScorer.scores`; the hop is rounded to whole samples."""
        length = max(n_samples, self.window_samples)
        starts = sliding_window_starts(length, self.window_samples, round(scoring.hop_seconds * self.sample_rate))
        scores = [
            self._head(self.embedder.embed(fit_windows(windows, self.sample_rate, self.info))).numpy()
            for windows in stream_windows(blocks, starts, self.window_samples, scoring.batch_size)
        ]
        return starts / self.sample_rate, np.concatenate(scores)


Scorer = RecordingScorer | EmbeddingScorer


def make_scorer(model: keras.Model, card: ModelCard, *, embedding_file: Path | None = None) -> Scorer:
    """The scorer of a model saved by ``train``: on spectrograms, or for an
    ``embedding_head`` on the embeddings of the model its card names.

    ``embedding_file`` is where that model's ONNX file is, for a head on a
    model from a file (default: the path on the card, from the current folder).

    Raises
    ------
    ConfigError, ModelError
        If the embedding model is not installed or not found, or its file (or
        descriptor) is not the one the head was trained on.
    """
    if card.embedding is None:
        return RecordingScorer(model, card.spectrogram_settings)
    embedder = load_embedding_model(
        card.embedding.model, onnx_file=embedding_file or card.embedding.file, threads=os.cpu_count() or 1
    )
    check_same_model(embedder, card.embedding)
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


@dataclass(frozen=True)
class WindowScores:
    """The window scores of one recording.

    Attributes
    ----------
    recording_id, path
        The recording and its file.
    seconds
        Its length.
    starts, scores
        Window start times in seconds (n_windows,) and scores (n_windows,
        n_species), as from :meth:`RecordingScorer.scores`.
    """

    recording_id: str
    path: Path
    seconds: float
    starts: np.ndarray
    scores: np.ndarray


def _blocks_of(scorer: Scorer, path: Path) -> Callable[[], Iterator]:
    # A stream for streams_ahead: the recording's length, then its scorer input in blocks.
    def stream() -> Iterator:
        with Recording(path, scorer.sample_rate) as recording:
            yield recording.n_samples
            yield from scorer.input_blocks(recording.blocks(scorer.block_samples), recording.n_samples)

    return stream


def score_recording(
    scorer: Scorer,
    recording_id: str,
    path: Path,
    *,
    scoring: ScoringSettings,
    skip_unreadable: bool = False,
    stream: Iterator | None = None,
) -> WindowScores | Skipped:
    """The window scores of one recording, decoded and scored in blocks.

    ``stream`` is the recording's length and then its scorer input, as
    :func:`score_windows` decodes it ahead; by default the file is decoded
    here. The other parameters are :func:`score_windows`'s.

    Raises
    ------
    AudioError
        If the recording cannot be decoded, unless ``skip_unreadable``.
    """
    stream = iter(_blocks_of(scorer, path)()) if stream is None else stream
    try:
        n_samples = next(stream)
        starts, scores = scorer.scores(stream, n_samples, scoring=scoring)
    except AudioError as error:
        if not skip_unreadable:
            raise
        log.warning("skipped %s", error)
        return Skipped(recording_id, path, str(error))
    return WindowScores(recording_id, path, n_samples / scorer.sample_rate, starts, scores)


def score_windows(
    scorer: Scorer,
    recordings: dict[str, Path],
    *,
    scoring: ScoringSettings,
    workers: int = 1,
    skip_unreadable: bool = False,
    progress: str = "score",
) -> Generator[WindowScores | Skipped, None, None]:
    """The window scores of every recording, in order, as each is scored.

    Each recording is decoded (any format, rate and channel count, mixed to
    mono and resampled to the scorer's rate) and scored in blocks: memory
    stays flat in the recording's length. Decoding and spectrograms run on
    ``workers`` threads a few blocks ahead of the model, which uses every
    core itself; the scores are the same for any number of workers. Logs
    the audio seconds scored per second at the end.

    Parameters
    ----------
    recordings
        Recording id -> audio file.
    scoring
        Seconds between window starts, and windows scored at a time (see
        :meth:`RecordingScorer.scores`).
    skip_unreadable
        Yield a recording that cannot be decoded as a
        :class:`~rainforest.audio.Skipped` (and log a warning) instead of raising.
    progress
        The progress bar's label.

    Raises
    ------
    AudioError
        If a recording cannot be decoded, unless ``skip_unreadable``.

    Notes
    -----
    Close the generator (:func:`contextlib.closing`) when not consuming it
    to the end: that stops the decoding threads at once.
    """
    started, audio_seconds, unreadable = time.perf_counter(), 0.0, 0
    decoded = [_blocks_of(scorer, path) for path in recordings.values()]
    with one_blas_thread(), streams_ahead(decoded, workers=workers) as streams:
        for (recording_id, path), stream in tqdm(
            zip(recordings.items(), streams), total=len(recordings), desc=progress, unit="rec", disable=None
        ):
            item = score_recording(
                scorer,
                recording_id,
                path,
                scoring=scoring,
                skip_unreadable=skip_unreadable,
                stream=stream,
            )
            if isinstance(item, Skipped):
                unreadable += 1
            else:
                audio_seconds += item.seconds
            yield item
    elapsed = time.perf_counter() - started
    log.info(
        "scored %d recording(s) (%d unreadable, left out), %.0f s of audio, in %.1f s: %.1f audio seconds per second",
        len(recordings) - unreadable,
        unreadable,
        audio_seconds,
        elapsed,
        audio_seconds / elapsed,
    )
