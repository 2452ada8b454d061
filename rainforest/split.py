"""Splitting the labelled recordings into folds: a holdout, or cross-validation.

The split file (``data/split.csv``) gives each labelled recording a ``fold``:
the model of fold ``k`` trains on every recording whose fold is not ``k`` and
validates on those whose fold is ``k``. A recording of fold ``-1`` is held
out by no model. So a holdout is one fold (0, the validation recordings)
beside fold -1, and K-fold cross-validation gives every recording a fold
from 0 to K - 1: each is scored once by a model that never trained on it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from rainforest.atomic_writes import write_text
from rainforest.config import SplitSettings
from rainforest.errors import ConfigError
from rainforest.window_sets import read_window_attrs, read_windows

log = logging.getLogger(__name__)

#: ``folds: auto`` cross-validates with this many folds ...
AUTO_FOLDS = 5
#: ... when some species has fewer labelled recordings than this; otherwise it holds out
#: ``validation_fraction``. Below it, a 1-in-5 holdout leaves a species one or two
#: recordings to validate on and takes a fifth of the few it has from training.
AUTO_CROSS_VALIDATION_BELOW = 10


def choose_folds(settings: SplitSettings, recordings_per_species: dict[str, int]) -> tuple[int, str]:
    """The number of folds to cross-validate with (1: a holdout), and why.

    Parameters
    ----------
    settings
        ``folds``: a number, or ``auto`` (:data:`AUTO_FOLDS`-fold
        cross-validation when some species has fewer than
        :data:`AUTO_CROSS_VALIDATION_BELOW` labelled recordings, else a holdout).
    recordings_per_species
        Species name -> the number of recordings with a labelled call of it.

    Examples
    --------
    >>> settings = SplitSettings(seed=7, folds="auto", validation_fraction=0.2)
    >>> choose_folds(settings, {"s0": 6, "s1": 30})[0]
    5
    >>> choose_folds(settings, {"s0": 12, "s1": 30})[0]
    1
    """
    if settings.folds != "auto":
        return settings.folds, f"split.folds is {settings.folds}"
    rarest = min(recordings_per_species, key=lambda name: (recordings_per_species[name], name))
    count = recordings_per_species[rarest]
    if count < AUTO_CROSS_VALIDATION_BELOW:
        return AUTO_FOLDS, (
            f"auto: species {rarest} has {count} labelled recording{'' if count == 1 else 's'}, "
            f"fewer than {AUTO_CROSS_VALIDATION_BELOW}"
        )
    return 1, f"auto: every species has {AUTO_CROSS_VALIDATION_BELOW} labelled recordings or more"


def _holdout_folds(validation_fraction: float) -> int:
    # Hold out one of k folds, k chosen so that 1/k is nearest the requested
    # share (round(1 / 0.4) would give k = 2, a 50 % validation set).
    return min(range(2, int(1 / validation_fraction) + 2), key=lambda k: abs(1 / k - validation_fraction))


def split_recordings(
    recording_ids: np.ndarray, strata: np.ndarray, *, folds: int, validation_fraction: float, seed: int
) -> pd.DataFrame:
    """Give each recording its fold.

    Windows of one recording always land in the same fold, so no model
    validates on a recording it trained on. Within that constraint the
    species (``strata``, one label per window) are spread evenly over the folds.

    Parameters
    ----------
    recording_ids
        The recording of each window.
    strata
        One class per window to balance, e.g. the species of its event.
    folds
        1: hold out ``validation_fraction`` of the recordings (fold 0), the
        rest in fold -1; K >= 2: K-fold cross-validation, folds 0 to K - 1.
    validation_fraction
        The holdout's share of the data, in (0, 0.5); unused when cross-validating.
    seed
        Seed of the shuffle; the same seed gives the same split.

    Returns
    -------
    pd.DataFrame
        Columns ``recording_id`` and ``fold``, one row per recording, sorted
        by recording id.

    Examples
    --------
    >>> ids = np.array(["a", "a", "b", "c", "d", "e", "f"])
    >>> split_recordings(ids, np.zeros(7), folds=3, validation_fraction=0.2, seed=1)["fold"].tolist()
    [0, 1, 0, 1, 2, 2]
    """
    n_splits = folds if folds > 1 else _holdout_folds(validation_fraction)
    n_recordings = len(set(recording_ids))
    if n_recordings < n_splits:
        setting = f"split.folds ({folds})" if folds > 1 else f"split.validation_fraction ({validation_fraction})"
        raise ConfigError(
            f"{setting} needs {n_splits} groups of recordings, but there are only {n_recordings} labelled "
            f"recordings; {'lower the folds' if folds > 1 else 'raise the fraction'} or add recordings"
        )
    if np.unique(strata, return_counts=True)[1].max() < n_splits:
        # scikit-learn refuses to stratify when every class is smaller than
        # the number of folds: split by recording alone, and say so.
        log.warning("too few windows per species to stratify %d folds: splitting by recording only", n_splits)
        strata = np.zeros(len(strata), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fold_of: dict[str, int] = {}
    with warnings.catch_warnings():
        # split_window_set names the species rarer than the folds itself.
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        for fold, (_, rows) in enumerate(splitter.split(np.zeros(len(strata)), strata, groups=recording_ids)):
            if folds == 1 and fold > 0:
                break
            fold_of |= dict.fromkeys(np.asarray(recording_ids)[rows], fold)
    recordings = sorted(set(recording_ids))
    return pd.DataFrame({"recording_id": recordings, "fold": [fold_of.get(r, -1) for r in recordings]})


def validation_folds(split: pd.DataFrame) -> list[int]:
    """The folds that have a model: each validates on its own recordings."""
    return sorted(int(fold) for fold in set(split["fold"]) if fold >= 0)


def fold_rows(recording_ids: np.ndarray, split: pd.DataFrame, fold: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ascending) of the windows fold ``fold``'s model trains on, and
    of those it validates on; for ``fold=None`` (a model refit on every
    labelled recording) all of them, and none."""
    held_out = set() if fold is None else set(split.loc[split["fold"] == fold, "recording_id"])
    validating = np.isin(np.asarray(recording_ids, dtype=object), list(held_out))
    return np.flatnonzero(~validating), np.flatnonzero(validating)


def trained_rows(recording_ids: np.ndarray, split: pd.DataFrame) -> np.ndarray:
    """Indices (ascending) of the windows at least one fold's model trains on:
    all of them when cross-validating, those outside the holdout otherwise."""
    folds = validation_folds(split)
    return fold_rows(recording_ids, split, folds[0])[0] if len(folds) == 1 else np.arange(len(recording_ids))


def read_split(path: str | Path) -> pd.DataFrame:
    """The split file that :func:`split_window_set` writes: ``recording_id``, ``fold``."""
    return pd.read_csv(path, dtype={"recording_id": str})


def split_window_set(windows_path: str | Path, split_path: str | Path, settings: SplitSettings) -> pd.DataFrame:
    """The split stage: choose the number of folds (:func:`choose_folds`),
    give each recording of a window set its fold (:func:`split_recordings`)
    and write the split as CSV.

    The true and false positive events of each species, and background
    windows, are balanced separately.
    """
    windows = read_windows(windows_path, ("recording_ids", "event_species", "event_present"))
    names = [str(name) for name in read_window_attrs(windows_path)["species"]]
    species, present = windows["event_species"].astype(int), windows["event_present"].astype(int)
    recording_ids = np.asarray(windows["recording_ids"], dtype=object)
    labelled = {name: len(set(recording_ids[(species == index) & (present == 1)])) for index, name in enumerate(names)}
    folds, reason = choose_folds(settings, {name: count for name, count in labelled.items() if count})
    log.info("split: %s (%s)", "a holdout" if folds == 1 else f"{folds}-fold cross-validation", reason)
    for name, count in labelled.items():
        if count == 1:
            log.warning(
                "species %s has one labelled recording: no model both trains and validates on it, so its "
                "validation figures and threshold say little; label more of its calls",
                name,
            )
        elif count < folds:
            log.warning(
                "species %s has %d labelled recordings, fewer than split.folds (%d): %d of the folds validate "
                "nothing of it; label more of its calls or lower split.folds",
                name,
                count,
                folds,
                folds - count,
            )
    # One stratum per species and event kind (true, false positive), one for background (species -1).
    n_species = int(species.max()) + 1
    strata = np.where(species < 0, 2 * n_species, species + n_species * (1 - present))
    split = split_recordings(
        recording_ids, strata, folds=folds, validation_fraction=settings.validation_fraction, seed=settings.seed
    )
    write_text(split_path, split.to_csv(index=False))
    log.info("split: recordings per fold %s", split["fold"].value_counts().sort_index().to_dict())
    return split
