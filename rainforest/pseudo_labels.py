"""Pseudo-labels: the model's confident scores on unlabelled windows, as training labels.

After the first model, each round of the train stage
(:func:`rainforest.training.train_model`) scores the pool
(:mod:`rainforest.pool`), takes per species the windows scoring at least
``positive_score`` as positives and those scoring at most ``absence_score``
as known absences (:func:`select_pseudo_labels`, at most ``max_per_species``
of each), and trains again on them beside the labelled windows, their loss
weighted by ``weight``.

Cross-validation stays honest: every pool window belongs to a fold
(:func:`pool_folds`: its recording's, or one drawn from its id), is scored by
that fold's model, which never trained on its recording, and teaches only the
other folds' models and the refit. So no fold's model trains on a label that
came from itself, nor on anything from the recordings it is validated on.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rainforest.config import PseudoLabelSettings

#: The columns of the pseudo-label table (``data/pseudo_labels.csv``): the
#: round trained on it, then :meth:`PseudoLabels.table`'s.
PSEUDO_LABEL_COLUMNS = ["round", "window", "recording_id", "start", "fold", "species", "label", "score"]


def pool_folds(recording_ids: np.ndarray, split: pd.DataFrame, folds: list[int]) -> np.ndarray:
    """The fold of each pool window: its recording's in the split; for a
    recording the split does not hold, one of ``folds`` drawn from its id
    (the same on every run), or -1 (trained on, never validated) for a holdout.

    Examples
    --------
    >>> split = pd.DataFrame({"recording_id": ["a", "b"], "fold": [0, 1]})
    >>> pool_folds(np.array(["a", "b", "b"], dtype=object), split, [0, 1]).tolist()
    [0, 1, 1]
    >>> pool_folds(np.array(["z"], dtype=object), split, [0]).tolist()
    [-1]
    """
    of_split = dict(zip(split["recording_id"], split["fold"].astype(int)))

    def fold(recording_id: str) -> int:
        if recording_id in of_split:
            return of_split[recording_id]
        return folds[zlib.crc32(recording_id.encode()) % len(folds)] if len(folds) > 1 else -1

    return np.array([fold(str(recording_id)) for recording_id in recording_ids], dtype=np.int64)


def scoring_members(window_folds: np.ndarray, folds: list[int]) -> np.ndarray:
    """Index into ``folds`` of the model that scores each pool window: its
    fold's, or on a holdout (a window of a recording it trained on) the one model.

    Examples
    --------
    >>> scoring_members(np.array([0, 2, 1]), [0, 1, 2]).tolist()
    [0, 2, 1]
    >>> scoring_members(np.array([-1, 3]), [3]).tolist()
    [0, 0]
    """
    if len(folds) == 1:
        return np.zeros(len(window_folds), dtype=np.int64)
    return np.searchsorted(np.asarray(folds), window_folds)


def select_pseudo_labels(
    scores: np.ndarray, settings: PseudoLabelSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Positives and known absences of each species among scored pool windows.

    Per species, the windows scoring at least ``positive_score`` are
    positives (the ``max_per_species`` highest, if more), and those scoring
    at most ``absence_score`` are known absences (``max_per_species`` of
    them drawn with ``rng``, if more: the lowest scores would teach least).

    Returns
    -------
    targets, masks : np.ndarray of uint8, shape of ``scores``
        As a window set's labels: 1 present; 1 where the label is known.

    Examples
    --------
    >>> from rainforest.config import PseudoLabelSettings
    >>> settings = PseudoLabelSettings(rounds=1, training_recordings=True, pool_dir="", use_test_recordings=False,
    ...     windows_per_recording=10, positive_score=0.9, absence_score=0.1, max_per_species=1, weight=0.5)
    >>> scores = np.array([[0.95, 0.5], [0.99, 0.02], [0.05, 0.5]])
    >>> targets, masks = select_pseudo_labels(scores, settings, np.random.default_rng(0))
    >>> targets.tolist(), masks.tolist()
    ([[0, 0], [1, 0], [0, 0]], [[0, 0], [1, 1], [1, 0]])
    """
    targets = np.zeros(scores.shape, np.uint8)
    masks = np.zeros(scores.shape, np.uint8)
    cap = settings.max_per_species
    for species in range(scores.shape[1]):
        column = scores[:, species]
        confident = np.flatnonzero(column >= settings.positive_score)
        # Highest first; a tie goes to the earlier window.
        positives = confident[np.argsort(-column[confident], kind="stable")[:cap]]
        absent = np.flatnonzero(column <= settings.absence_score)
        if len(absent) > cap:
            absent = np.sort(rng.choice(absent, size=cap, replace=False))
        targets[positives, species] = 1
        masks[positives, species] = 1
        masks[absent, species] = 1
    return targets, masks


@dataclass(frozen=True)
class PseudoLabels:
    """One round's pseudo-labels: rows of the pool with at least one known label."""

    #: Rows of the pool (ascending).
    rows: np.ndarray
    #: The fold of each (:func:`pool_folds`): it teaches every model but that fold's.
    folds: np.ndarray
    targets: np.ndarray
    masks: np.ndarray
    #: The scores they were chosen by.
    scores: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray, window_folds: np.ndarray, settings: PseudoLabelSettings, seed: int) -> PseudoLabels:
        """The pseudo-labels of a scored pool (:func:`select_pseudo_labels`, drawing with ``seed``)."""
        targets, masks = select_pseudo_labels(scores, settings, np.random.default_rng(seed))
        rows = np.flatnonzero(masks.any(axis=1))
        return cls(rows, window_folds[rows], targets[rows], masks[rows], scores[rows])

    def for_fold(self, fold: int | None) -> np.ndarray:
        """Which of the labels fold ``fold``'s model trains on: those of the
        other folds (``None``, a refit on everything: all)."""
        return np.ones(len(self.rows), bool) if fold is None else self.folds != fold

    def counts(self, species: list[str]) -> pd.DataFrame:
        """Positives and known absences per species."""
        present = (self.targets == 1) & (self.masks == 1)
        absent = (self.targets == 0) & (self.masks == 1)
        return pd.DataFrame({"species": species, "positives": present.sum(axis=0), "absences": absent.sum(axis=0)})

    def table(self, species: list[str], recording_ids: np.ndarray, start_times: np.ndarray) -> pd.DataFrame:
        """One row per label: ``window`` (its row in the pool), ``recording_id``,
        ``start`` (seconds), ``fold``, ``species``, ``label`` (present or absent), ``score``."""
        window, column = np.nonzero(self.masks)
        return pd.DataFrame(
            {
                "window": self.rows[window],
                "recording_id": np.asarray(recording_ids)[self.rows[window]],
                "start": np.asarray(start_times)[self.rows[window]],
                "fold": self.folds[window],
                "species": np.asarray(species, dtype=object)[column],
                "label": np.where(self.targets[window, column] == 1, "present", "absent"),
                "score": self.scores[window, column],
            }
        )
