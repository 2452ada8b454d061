"""Stage evaluate: score the validation windows, choose detection thresholds, write metrics, plots and images.

Usage: python stages/evaluate.py MODEL_KERAS WINDOWS_H5 WINDOW_EMBEDDINGS_H5 SPLIT_CSV EVENTS_CSV METRICS_JSON PLOTS_DIR DETECTOR_JSON

WINDOW_EMBEDDINGS_H5 (the embed stage's) gives the validation windows' inputs
when the model is an embedding_head.

EVENTS_CSV holds the labelled events, as etl writes them. DETECTOR_JSON gets
each species' detection threshold (the lowest validation score that reaches
evaluate.target_precision) and frequency band (from its labelled calls):
rainforest-detect reads it beside the model. PLOTS_DIR gets the plot data and
the images (PNG) that dvc plots show renders, the labelled event boxes drawn
on the worst validation windows, and validation_species.csv: each species'
average precision, threshold, and precision and recall at it. METRICS_JSON
gets the headline figures only, so that dvc metrics show fits a terminal.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

import logging
from pathlib import Path

import pandas as pd

from rainforest.detector import build_detector, detection_summary, frequency_bands, save_detector, select_thresholds
from rainforest.evaluation import (
    confusion_rows,
    precision_recall_table,
    score_summary,
    species_table,
    worst_false_negatives,
    worst_false_positives,
)
from rainforest.figures import average_precision_chart, precision_recall_curves, save_png, window_examples
from rainforest.metrics import average_precision_per_species
from rainforest.model import WeightedBinaryCrossentropy, load_card, load_model
from rainforest.runner import run_stage
from rainforest.split import window_rows
from rainforest.storage import read_windows, write_json, write_text
from rainforest.training import SCORING_BATCH, label_weights

VALIDATION_FIELDS = ("spectrograms", "targets", "masks", "recording_ids", "start_times")


def main(settings, model_path, windows_path, window_embeddings_path, split_path, events_path, metrics_path, plots_dir,
         detector_path):
    split = pd.read_csv(split_path, dtype={"recording_id": str})
    ids = read_windows(windows_path, ("recording_ids",))["recording_ids"]
    rows = window_rows(ids, split, "validation")
    validation = read_windows(windows_path, VALIDATION_FIELDS, rows)
    model, card = load_model(model_path), load_card(model_path)
    species, truth = card.species, validation["targets"]
    inputs = validation["spectrograms"]
    if card.embedding is not None:
        inputs = read_windows(window_embeddings_path, ("embeddings",), rows)["embeddings"]
    scores = model.predict(inputs, batch_size=SCORING_BATCH, verbose=0)
    events = pd.read_csv(events_path, dtype={"recording_id": str})

    target_precision = settings.evaluate.target_precision
    bands = frequency_bands(events, len(species), (card.features.fmin, card.features.fmax))
    detector = build_detector(species, select_thresholds(truth, scores, target_precision), bands, target_precision)
    save_detector(detector_path, detector)
    undetected = ", ".join(detector.undetected) or "none"
    pooled = detection_summary(truth, scores, detector)
    logging.info(
        "evaluate: %d of %d species reach precision %g on validation (not, so not detected: %s); "
        "pooled over the validation windows: precision %s, recall %s",
        len(species) - len(detector.undetected), len(species), target_precision, undetected,
        pooled["precision"], pooled["recall"],
    )

    # Loss over known labels only, whatever weight training gave unknown ones.
    loss = WeightedBinaryCrossentropy()(label_weights(truth, validation["masks"], 0.0), scores)
    summary = {
        **score_summary(truth, scores),
        "loss": round(float(loss), 6),
        "windows": int(len(truth)),
    }
    write_json(metrics_path, summary)

    plots_dir = Path(plots_dir)
    per_species = species_table(truth, scores, species).merge(detector.table(), on="species")
    write_text(plots_dir / "validation_species.csv", per_species.to_csv(index=False))
    write_text(plots_dir / "precision_recall.csv", precision_recall_table(truth, scores).to_csv(index=False))
    write_text(plots_dir / "confusion.csv", confusion_rows(truth, scores, species).to_csv(index=False))
    average_precision = average_precision_per_species(truth, scores)
    save_png(average_precision_chart(species, average_precision), plots_dir / "average_precision.png")
    curves = precision_recall_curves(truth, scores, average_precision, detector)
    save_png(curves, plots_dir / "precision_recall_by_species.png")
    n = settings.evaluate.worst_examples
    for name, picks, title in [
        ("worst_false_positives", worst_false_positives(truth, scores, n),
         "Worst false positives: validation windows whose absent species scores highest"),
        ("worst_false_negatives", worst_false_negatives(truth, scores, n),
         "Worst false negatives: validation windows whose present species scores lowest"),
    ]:
        figure = window_examples(validation, scores, picks, events, species, card.sample_rate, card.features, title)
        save_png(figure, plots_dir / f"{name}.png")


if __name__ == "__main__":
    run_stage("evaluate", main)
