"""The submit stage: score every test recording and write the competition's submission."""

from __future__ import annotations

import contextlib
import json
import logging
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

log = logging.getLogger(__name__)

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


def round_model_files(folder: str | Path) -> list[Path]:
    """The rounds' models the train stage wrote (``round_0.keras`` ...), in round order."""
    return sorted(Path(folder).glob("round_*.keras"), key=lambda path: int(path.stem.removeprefix("round_")))


#: What ``metrics/test.json`` says when the pool held the test recordings.
TRANSDUCTIVE = (
    "transductive: the pseudo-label pool held the test recordings (pseudo_label.use_test_recordings), so these "
    "figures do not estimate the model on recordings it has not heard"
)


def write_submission(
    *,
    dataset_dir: str | Path,
    settings: SubmitSettings,
    model_path: str | Path,
    submission_path: str | Path,
    metrics_path: str | Path,
    species_path: str | Path,
    round_models: str | Path | None = None,
    rounds_path: str | Path | None = None,
    rounds_table_path: str | Path | None = None,
    transductive: bool = False,
) -> dict:
    """Score the test recordings of ``dataset_dir`` listed in its
    ``sample_submission.csv`` and write the submission.

    Where the dataset has test ground truth (:data:`GROUND_TRUTH`), the
    submission's LWLRAP and the other headline scores go to
    ``metrics_path``, and each species' average precision to
    ``species_path``; otherwise ``metrics_path`` says there was nothing to
    score against.

    With pseudo-label rounds (``round_models``, the train stage's folder of
    each round's model, the last being the model itself), every earlier
    round's model scores the test recordings too: ``metrics_path`` gets each
    round's test LWLRAP (``rounds``, only when there were rounds), and
    ``rounds_table_path`` a table of round, validation LWLRAP (from the
    train stage's ``rounds_path``) and test LWLRAP, for the plot of LWLRAP by
    round. ``transductive`` (the pool held the test recordings) adds
    :data:`TRANSDUCTIVE` to ``metrics_path``.

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
    truth = None
    if (dataset_dir / GROUND_TRUTH).exists():
        truth_events = competition.read(dataset_dir / GROUND_TRUTH, SpeciesNames(tuple(species)))
        truth = presence_matrix(truth_events, recording_ids, len(species))
        per_species = with_labels(species_table(truth, scores, species), card.labels, species)
        write_text(species_path, per_species.to_csv(index=False))
        summary = {**score_summary(truth, scores), "recordings": len(recording_ids)}
    else:
        write_text(species_path, "species,average_precision,positives" + (",label" if card.labels else "") + "\n")
        summary = {"lwlrap": None, "recordings": len(recording_ids), "note": f"no {GROUND_TRUTH} in {dataset_dir}"}
    if round_models is not None:
        earlier = round_model_files(round_models)[:-1]
        test = []
        for path in earlier:
            log.info("scoring the test recordings with %s", path)
            round_scores = score_recordings(
                load_model(path), load_card(path), dataset_dir / "test", recording_ids, settings
            )
            test.append(None if truth is None else score_summary(truth, round_scores)["lwlrap"])
        test.append(summary["lwlrap"])
        if earlier:
            summary["rounds"] = {f"round_{number}": {"test_lwlrap": value} for number, value in enumerate(test)}
        if rounds_table_path is not None:
            validation = json.loads(Path(rounds_path).read_text()) if rounds_path is not None else {}
            rows = pd.DataFrame(
                {
                    "round": range(len(test)),
                    "validation_lwlrap": [validation.get(f"round_{n}", {}).get("lwlrap") for n in range(len(test))],
                    "test_lwlrap": test,
                }
            )
            write_text(rounds_table_path, rows.to_csv(index=False, float_format="%.6f"))
    if transductive:
        summary["transductive"] = TRANSDUCTIVE
    write_json(metrics_path, summary)
    return summary
