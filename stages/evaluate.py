"""Stage evaluate: score the validation windows and write metrics and plots.

Usage: python stages/evaluate.py MODEL_KERAS WINDOWS_H5 SPLIT_CSV METRICS_JSON PLOTS_DIR
"""

from pathlib import Path

import pandas as pd

from rainforest.evaluation import confusion_rows, precision_recall_table, score_summary
from rainforest.model import WeightedBinaryCrossentropy, load_card, load_model
from rainforest.runner import run_stage
from rainforest.split import window_rows
from rainforest.storage import read_windows, write_json, write_text
from rainforest.training import label_weights


def main(settings, model_path, windows_path, split_path, metrics_path, plots_dir):
    split = pd.read_csv(split_path, dtype={"recording_id": str})
    ids = read_windows(windows_path, ("recording_ids",))["recording_ids"]
    validation = read_windows(windows_path, ("spectrograms", "targets", "masks"), window_rows(ids, split, "validation"))
    model, species = load_model(model_path), load_card(model_path).species
    scores = model.predict(validation["spectrograms"], batch_size=256, verbose=0)

    summary = score_summary(validation["targets"], scores, species)
    # Loss over known labels only, whatever weight training gave unknown ones.
    loss = WeightedBinaryCrossentropy()(label_weights(validation["targets"], validation["masks"], 0.0), scores)
    summary["loss"] = round(float(loss), 6)
    summary["n_parameters"] = int(model.count_params())
    write_json(metrics_path, summary)
    plots_dir = Path(plots_dir)
    write_text(plots_dir / "precision_recall.csv", precision_recall_table(validation["targets"], scores).to_csv(index=False))
    write_text(plots_dir / "confusion.csv", confusion_rows(validation["targets"], scores, species).to_csv(index=False))


if __name__ == "__main__":
    run_stage("evaluate", main)
