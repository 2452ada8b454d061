"""A small untrained model with a detector file, and recordings to detect in.

``tests/test_detections.py`` and ``tests/test_engine.py`` run
``rainforest-detect`` with them: three species whose thresholds the tests set
(:func:`save_thresholds`), so what is detected is known.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import keras
import numpy as np
import soundfile as sf

from rainforest.card import ModelCard
from rainforest.config import ModelSettings
from rainforest.detect.thresholds import Detector, SpeciesDetector, save_detector
from rainforest.model import build_model, save_model
from tests.support.paths import committed_params
from tests.support.settings import FEATURES, RATE, SPECTROGRAM_SETTINGS

#: The installed console script.
SCRIPT = Path(sys.executable).parent / "rainforest-detect"
SPECIES = ["s0", "s1", "s2"]
BANDS = [(500.0, 2000.0), (2500.0, 4000.5), (4000.0, 7900.0)]


def write_recording(path: Path, rate: int, channels: int, seconds: float, format: str, subtype: str) -> None:
    """A chirp in noise, the same for the same file name."""
    rng = np.random.default_rng(len(path.name))
    t = np.arange(int(rate * seconds)) / rate
    chirp = 0.3 * np.sin(2 * np.pi * (800 + 400 * t) * t)
    samples = chirp[:, None] + 0.05 * rng.standard_normal((len(t), channels))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples.astype(np.float32), rate, format=format, subtype=subtype)


def write_recordings(folder: Path, count: int, *, seconds: float, name: str = "rec_{:02d}.wav") -> Path:
    """``count`` mono recordings of ``seconds`` at :data:`RATE` in ``folder``, named by ``name``
    (its suffix picks the format: WAV or FLAC, 16-bit); returns the folder."""
    for i in range(count):
        path = folder / name.format(i)
        write_recording(path, RATE, 1, seconds, path.suffix[1:].upper(), "PCM_16")
    return folder


def save_thresholds(folder: Path, thresholds: list[float | None]) -> None:
    """``folder/detector.json`` with these thresholds (``None``: the species never reached the target)."""
    entries = []
    for name, threshold, (low, high) in zip(SPECIES, thresholds, BANDS):
        rule = "not_reached" if threshold is None else "target_precision"
        entries.append(SpeciesDetector(name, threshold, rule, 1.0, 1.0, low, high))
    save_detector(folder / "detector.json", Detector(0.9, entries))


def save_tiny_model(folder: Path, labels: list[str] | None = None) -> Path:
    """An untrained four-filter CNN at ``folder/model.keras``, thresholds 0 beside it; returns its path.

    ``labels``: the species' names on its card (as from a dataset's species.csv).
    """
    settings = ModelSettings(**{**committed_params()["model"], "architecture": "cnn", "filters": [4], "dense_units": 4})
    # Seeded: the weights (so the scores the tests compare) must not depend on which tests ran before.
    keras.utils.set_random_seed(0)
    model = build_model(
        settings,
        (FEATURES.n_mels, SPECTROGRAM_SETTINGS.window_frames),
        len(SPECIES),
        mean=np.full(32, -60.0),
        variance=np.full(32, 400.0),
    )
    save_model(model, folder / "model.keras", ModelCard(SPECTROGRAM_SETTINGS, SPECIES, labels=labels))
    save_thresholds(folder, [0.0, 0.0, 0.0])
    return folder / "model.keras"


@contextlib.contextmanager
def restored_logging():
    """Run a command in this process and leave pytest's logging as it was
    (the commands configure logging for themselves)."""
    handlers, level = logging.root.handlers[:], logging.root.level
    try:
        yield
    finally:
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)
