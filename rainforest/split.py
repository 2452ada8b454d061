"""Splitting windows into training and validation sets by recording."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from rainforest.config import SplitSettings
from rainforest.errors import ConfigError
from rainforest.storage import read_windows, write_text

SUBSETS = ("train", "validation")

log = logging.getLogger(__name__)


def split_recordings(
    recording_ids: np.ndarray, strata: np.ndarray, validation_fraction: float, seed: int
) -> pd.DataFrame:
    """Assign each recording to training or validation.

    Windows of one recording always land on the same side, so no recording
    leaks from training into validation. Within that constraint the species
    (``strata``, one label per window) are spread evenly over both sides.

    Parameters
    ----------
    recording_ids
        The recording of each window.
    strata
        One class per window to balance, e.g. the species of its event.
    validation_fraction
        Share of the data to hold out, in (0, 0.5).
    seed
        Seed of the shuffle; the same seed gives the same split.

    Returns
    -------
    pd.DataFrame
        Columns ``recording_id`` and ``subset`` (``train`` or ``validation``),
        one row per recording, sorted by recording id.
    """
    # Hold out one of k folds, k chosen so that 1/k is nearest the requested
    # share (round(1 / 0.4) would give k = 2, a 50 % validation set).
    n_splits = min(range(2, int(1 / validation_fraction) + 2), key=lambda k: abs(1 / k - validation_fraction))
    n_recordings = len(set(recording_ids))
    if n_recordings < n_splits:
        raise ConfigError(
            f"split.validation_fraction ({validation_fraction}) holds out 1 of {n_splits} groups of "
            f"recordings, but there are only {n_recordings} labelled recordings; raise the fraction "
            "or add recordings"
        )
    if np.unique(strata, return_counts=True)[1].max() < n_splits:
        # scikit-learn refuses to stratify when every class is smaller than
        # the number of folds: split by recording alone, and say so.
        log.warning("too few windows per species to stratify %d folds: splitting by recording only", n_splits)
        strata = np.zeros(len(strata), dtype=int)
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, validation_rows = next(folds.split(np.zeros(len(strata)), strata, groups=recording_ids))
    validation = set(np.asarray(recording_ids)[validation_rows])
    recordings = sorted(set(recording_ids))
    return pd.DataFrame(
        {
            "recording_id": recordings,
            "subset": ["validation" if r in validation else "train" for r in recordings],
        }
    )


def window_rows(recording_ids: np.ndarray, split: pd.DataFrame, subset: str) -> np.ndarray:
    """Indices (ascending) of the windows whose recording is in ``subset``."""
    chosen = set(split.loc[split["subset"] == subset, "recording_id"])
    return np.flatnonzero([r in chosen for r in recording_ids])


def read_split(path: str | Path) -> pd.DataFrame:
    """The split file that :func:`split_window_set` writes: ``recording_id``, ``subset``."""
    return pd.read_csv(path, dtype={"recording_id": str})


def subset_rows(windows_path: str | Path, split: pd.DataFrame, subset: str) -> np.ndarray:
    """Indices (ascending) of the windows of a window set whose recording is in ``subset``."""
    return window_rows(read_windows(windows_path, ("recording_ids",))["recording_ids"], split, subset)


def split_window_set(windows_path: str | Path, split_path: str | Path, settings: SplitSettings) -> pd.DataFrame:
    """The split stage: assign the recordings of a window set to training or
    validation (:func:`split_recordings`) and write the split as CSV.

    The true and false positive events of each species, and background
    windows, are balanced separately.
    """
    windows = read_windows(windows_path, ("recording_ids", "event_species", "event_present"))
    n_species = int(windows["event_species"].max()) + 1
    species, present = windows["event_species"].astype(int), windows["event_present"].astype(int)
    # One stratum per species and event kind (true, false positive), one for background (species -1).
    strata = np.where(species < 0, 2 * n_species, species + n_species * (1 - present))
    split = split_recordings(windows["recording_ids"], strata, settings.validation_fraction, settings.seed)
    write_text(split_path, split.to_csv(index=False))
    log.info("split: %s", split["subset"].value_counts().to_dict())
    return split
