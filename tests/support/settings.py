"""Small sample rates and feature settings that many tests build their inputs with.

These are the values several test files share. A file that needs other values
keeps its own, under a name that says how they differ (``HALF_SECOND_FEATURES``
in ``test_spectrogram.py``), so that ``FEATURES`` means the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

from rainforest.config import DataSettings, FeatureSettings, SpectrogramSettings
from rainforest.events import EVENT_COLUMNS

#: The sample rate of the small recordings and window sets the tests write.
RATE = 16000
#: 48 kHz: the rate of the competition's recordings (and BirdNET's input).
COMPETITION_RATE = 48000

#: One-second windows of 32 mel bands up to 8 kHz (at :data:`RATE`, 62 frames).
FEATURES = FeatureSettings(n_fft=512, hop_length=256, n_mels=32, fmin=50.0, fmax=8000.0, window_seconds=1.0)
#: Quarter-second windows of 16 mel bands up to 8 kHz: window sets and models kept tiny.
SHORT_FEATURES = FeatureSettings(n_fft=512, hop_length=256, n_mels=16, fmin=50.0, fmax=8000.0, window_seconds=0.25)
#: :data:`FEATURES` and :data:`SHORT_FEATURES` at :data:`RATE`, as spectrograms and windows are made with them.
SPECTROGRAM_SETTINGS = SpectrogramSettings(RATE, FEATURES)
SHORT_SPECTROGRAM_SETTINGS = SpectrogramSettings(RATE, SHORT_FEATURES)

#: The header line of the competition's label files (``train_tp.csv``, ``train_fp.csv``).
EVENTS_HEADER = ",".join(EVENT_COLUMNS)


def data_settings(dataset_dir, **changes) -> DataSettings:
    """The ``data`` settings of the dataset at ``dataset_dir``: the competition's
    label files, and no reviewed labels (a ``reviews_dir`` that does not
    exist), unless ``changes`` say otherwise."""
    values = {
        "dataset_dir": dataset_dir,
        "annotations": "competition",
        "species_column": "Species",
        "reviews_dir": Path(dataset_dir) / "no_reviews",
    }
    return DataSettings(**values | changes)


def live(folder):
    """A dvclive logger writing under ``folder/live``, as the train stage makes one."""
    from dvclive import Live

    return Live(str(folder / "live"), save_dvc_exp=False, dvcyaml=False)
