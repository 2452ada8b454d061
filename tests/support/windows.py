"""Windows cut the simple way, that the tests hold the streaming code to.

The library never holds a whole recording's windows or spectrogram in memory
(:mod:`rainforest.detect.scoring` streams them); the tests build their
expectations from these instead. :func:`write_window_set` writes a small window
set of given waveforms, the input of the embed stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rainforest.config import ScoringSettings
from rainforest.detect.scoring import Scorer
from rainforest.window_sets import WindowWriter


def pad_to_length(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad ``waveform`` at the end to at least ``n_samples`` samples."""
    if len(waveform) >= n_samples:
        return waveform
    return np.pad(waveform, (0, n_samples - len(waveform)))


def cut_windows(spectrogram: np.ndarray, starts: np.ndarray, n_window_frames: int) -> np.ndarray:
    """Stack the windows starting at ``starts``: shape (n_windows, n_mels, n_window_frames)."""
    views = np.lib.stride_tricks.sliding_window_view(spectrogram, n_window_frames, axis=1)
    return np.ascontiguousarray(views[:, starts].transpose(1, 0, 2))


def window_scores(scorer: Scorer, waveform: np.ndarray, *, scoring: ScoringSettings) -> tuple[np.ndarray, np.ndarray]:
    """``scorer.scores`` of a recording in memory, fed in the scorer's blocks."""
    pieces = (waveform[first : first + scorer.block_samples] for first in range(0, len(waveform), scorer.block_samples))
    blocks = scorer.input_blocks(pieces, len(waveform))
    return scorer.scores(blocks, len(waveform), scoring=scoring)


def write_window_set(path: Path, waveforms: np.ndarray, rate: int) -> Path:
    """A window set of ``waveforms`` at ``rate`` Hz (blank spectrograms and labels), for the embedding tests."""
    with WindowWriter(
        path,
        n_mels=4,
        n_frames=3,
        n_species=2,
        n_samples=waveforms.shape[1],
        attrs={"sample_rate": rate, "species": ["s0", "s1"]},
    ) as writer:
        n = len(waveforms)
        writer.append(
            spectrograms=np.zeros((n, 4, 3), np.float32),
            waveforms=waveforms,
            targets=np.zeros((n, 2), np.uint8),
            masks=np.zeros((n, 2), np.uint8),
            recording_ids=np.array(["r"] * n, dtype=object),
            start_times=np.zeros(n),
            end_times=np.ones(n),
            event_species=np.zeros(n, np.int16),
            event_present=np.ones(n, np.uint8),
        )
    return path
