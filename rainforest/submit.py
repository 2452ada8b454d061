"""The submit stage: score every test recording and write the competition's submission."""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from rainforest.atomic_writes import write_json, write_text
from rainforest.audio import audio_files
from rainforest.card import ModelCard, load_card
from rainforest.config import SubmitSettings
from rainforest.detect.scoring import WindowScores, aggregate_windows, make_scorer, score_windows
from rainforest.errors import LabelError
from rainforest.events import SpeciesNames, competition, presence_matrix, read_species
from rainforest.metrics import score_summary, species_table, with_labels
from rainforest.model import load_model

#: The test labels, where a dataset has them (the demo data does).
GROUND_TRUTH = "test_ground_truth.csv"


def submission_table(recording_ids: list[str], species: list[str], scores: np.ndarray) -> pd.DataFrame:
    """The competition's submission: one row per recording, one column per species."""
    table = pd.DataFrame(scores, columns=species)
    table.insert(0, "recording_id", recording_ids)
    return table


def score_recordings(
    model: keras.Model, card: ModelCard, folder: str | Path, recording_ids: list[str], settings: SubmitSettings
) -> np.ndarray:
    """Per-species score of each recording, aggregated over its windows
    (:func:`rainforest.detect.scoring.aggregate_windows`), with the scorer the
    model needs, windows every ``settings.hop_seconds``.

    Returns
    -------
    np.ndarray
        Shape (len(recording_ids), n_species), rows in the given order.

    Raises
    ------
    AudioError
        If a recording has no audio file in ``folder``, or cannot be decoded.
    """
    recordings, _ = audio_files(folder, recording_ids, listed_in="sample_submission.csv")
    scored = score_windows(
        make_scorer(model, card),
        recordings,
        scoring=settings.scoring,
        workers=settings.workers,
        progress="submit",
    )
    rows = []
    with contextlib.closing(scored):  # its decoding threads stop whenever this stops (an error, Ctrl-C)
        for item in scored:
            assert isinstance(item, WindowScores)  # without skip_unreadable an unreadable recording raises
            rows.append(aggregate_windows(item.scores, settings.aggregation, settings.top_k))
    return np.stack(rows)


def write_submission(
    *,
    dataset_dir: str | Path,
    settings: SubmitSettings,
    model_path: str | Path,
    submission_path: str | Path,
    metrics_path: str | Path,
    species_path: str | Path,
) -> dict:
    """Score the test recordings of ``dataset_dir`` listed in its
    ``sample_submission.csv`` and write the submission.

    Where the dataset has test ground truth (:data:`GROUND_TRUTH`), the
    submission's LWLRAP and the other headline scores go to
    ``metrics_path``, and each species' average precision to
    ``species_path``; otherwise ``metrics_path`` says there was nothing to
    score against.

    Returns
    -------
    dict
        What was written to ``metrics_path``.

    Raises
    ------
    LabelError
        If the species columns of ``sample_submission.csv`` are not those the
        model was trained on.
    """
    dataset_dir = Path(dataset_dir)
    species, recording_ids = read_species(dataset_dir / "sample_submission.csv")
    model, card = load_model(model_path), load_card(model_path)
    if species != card.species:
        raise LabelError(
            f"{dataset_dir / 'sample_submission.csv'}: its {len(species)} species columns differ from the "
            f"{len(card.species)} species the model was trained on; retrain on this dataset"
        )
    scores = score_recordings(model, card, dataset_dir / "test", recording_ids, settings)
    table = submission_table(recording_ids, species, scores)
    write_text(submission_path, table.to_csv(index=False, float_format="%.6f"))
    if (dataset_dir / GROUND_TRUTH).exists():
        truth_events = competition.read(dataset_dir / GROUND_TRUTH, SpeciesNames(tuple(species)))
        truth = presence_matrix(truth_events, recording_ids, len(species))
        per_species = with_labels(species_table(truth, scores, species), card.labels, species)
        write_text(species_path, per_species.to_csv(index=False))
        summary = {**score_summary(truth, scores), "recordings": len(recording_ids)}
    else:
        write_text(species_path, "species,average_precision,positives" + (",label" if card.labels else "") + "\n")
        summary = {"lwlrap": None, "recordings": len(recording_ids), "note": f"no {GROUND_TRUTH} in {dataset_dir}"}
    write_json(metrics_path, summary)
    return summary
