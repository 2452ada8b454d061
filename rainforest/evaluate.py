"""The evaluate stage: from the validation windows' scores, choose detection thresholds, write metrics, plots and images."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from rainforest.atomic_writes import write_json, write_text
from rainforest.card import load_card
from rainforest.config import EvaluateSettings
from rainforest.detect.thresholds import (
    build_detector,
    detection_summary,
    frequency_bands,
    save_detector,
    select_thresholds,
)
from rainforest.figures import average_precision_chart, precision_recall_curves, save_png, window_examples
from rainforest.metrics import (
    average_precision_per_species,
    confusion_rows,
    precision_recall_table,
    score_summary,
    species_table,
    with_labels,
    worst_false_negatives,
    worst_false_positives,
)
from rainforest.model import WeightedBinaryCrossentropy, label_weights
from rainforest.window_sets import LABEL_FIELDS, read_validation_scores, read_windows

log = logging.getLogger(__name__)


def evaluate_model(
    *,
    settings: EvaluateSettings,
    model_path: str | Path,
    windows_path: str | Path,
    validation_scores_path: str | Path,
    events_path: str | Path,
    metrics_path: str | Path,
    plots_dir: str | Path,
    detector_path: str | Path,
) -> dict:
    """Judge the trained model by its validation windows' scores and write what the evaluate stage writes.

    The scores are train's: each validated window scored by the model of its
    fold, which never trained on its recording. When cross-validating, that
    is every labelled recording, and the thresholds and figures describe the
    folds' models; the shipped model is their ensemble.

    Parameters
    ----------
    settings
        ``target_precision`` (each species' threshold is the lowest
        validation score that reaches it) and ``worst_examples`` (validation
        windows drawn in the worst-example images).
    model_path
        The trained model, whose card names the species and features.
    validation_scores_path
        Train's validation scores
        (:func:`rainforest.window_sets.write_validation_scores`).
    events_path
        The labelled events, as etl writes them (bands, boxes in the images).
    metrics_path
        Gets the headline figures only, so that ``dvc metrics show`` fits a terminal.
    plots_dir
        Gets the plot data and the images (PNG) that ``dvc plots show``
        renders, the labelled event boxes drawn on the worst validation
        windows, and ``validation_species.csv``: each species' average
        precision, threshold, and precision and recall at it.
    detector_path
        Gets each species' detection threshold and frequency band (from its
        labelled calls): ``rainforest-detect`` reads it beside the model.

    Returns
    -------
    dict
        The headline figures written to ``metrics_path``.
    """
    card = load_card(model_path)
    validated = read_validation_scores(validation_scores_path)
    rows = validated["window"].to_numpy()
    validation = read_windows(windows_path, ("spectrograms", "recording_ids", "start_times", *LABEL_FIELDS), rows)
    species, truth = card.species, validation["targets"]
    scores = validated[species].to_numpy()
    events = pd.read_csv(events_path, dtype={"recording_id": str})

    target_precision = settings.target_precision
    features = card.spectrogram_settings.features
    bands = frequency_bands(events, len(species), (features.fmin, features.fmax))
    detector = build_detector(species, select_thresholds(truth, scores, target_precision), bands, target_precision)
    save_detector(detector_path, detector)
    pooled = detection_summary(truth, scores, detector)
    log.info(
        "evaluate: %d of %d species reach precision %g on validation (not, so not detected: %s); "
        "pooled over the validation windows: precision %s, recall %s",
        len(species) - len(detector.undetected),
        len(species),
        target_precision,
        ", ".join(detector.undetected) or "none",
        pooled["precision"],
        pooled["recall"],
    )

    # Loss over known labels only, whatever weight training gave unknown ones.
    loss = WeightedBinaryCrossentropy()(label_weights(truth, validation["masks"], 0.0), scores)
    summary = {**score_summary(truth, scores), "loss": round(float(loss), 6), "windows": int(len(truth))}
    write_json(metrics_path, summary)

    plots_dir = Path(plots_dir)
    per_species = species_table(truth, scores, species).merge(detector.table(), on="species")
    per_species = with_labels(per_species, card.labels, species)
    names = card.display_names()
    write_text(plots_dir / "validation_species.csv", per_species.to_csv(index=False))
    write_text(plots_dir / "precision_recall.csv", precision_recall_table(truth, scores).to_csv(index=False))
    write_text(plots_dir / "confusion.csv", confusion_rows(truth, scores, species).to_csv(index=False))
    average_precision = average_precision_per_species(truth, scores)
    save_png(average_precision_chart(names, average_precision), plots_dir / "average_precision.png")
    curves = precision_recall_curves(
        truth, scores, average_precision, detector, names if card.labels is not None else None
    )
    save_png(curves, plots_dir / "precision_recall_by_species.png")
    n = settings.worst_examples
    for name, picks, title in [
        (
            "worst_false_positives",
            worst_false_positives(truth, scores, n),
            "Worst false positives: validation windows whose absent species scores highest",
        ),
        (
            "worst_false_negatives",
            worst_false_negatives(truth, scores, n),
            "Worst false negatives: validation windows whose present species scores lowest",
        ),
    ]:
        figure = window_examples(
            validation,
            scores,
            picks,
            events=events,
            species=names,
            spectrogram_settings=card.spectrogram_settings,
            title=title,
        )
        save_png(figure, plots_dir / f"{name}.png")
    return summary
