"""Stage evaluate: from the validation windows' scores, choose detection thresholds, write metrics, plots and images.

Usage: python stages/evaluate.py MODEL_KERAS WINDOWS_H5 VALIDATION_SCORES_CSV EVENTS_CSV METRICS_JSON PLOTS_DIR DETECTOR_JSON

Calls :func:`rainforest.evaluate.evaluate_model`, whose docstring says what
each file holds.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.evaluate import evaluate_model
from rainforest.runner import run_stage


def main(
    settings, model_path, windows_path, validation_scores_path, events_path, metrics_path, plots_dir, detector_path
):
    evaluate_model(
        settings=settings.evaluate,
        model_path=model_path,
        windows_path=windows_path,
        validation_scores_path=validation_scores_path,
        events_path=events_path,
        metrics_path=metrics_path,
        plots_dir=plots_dir,
        detector_path=detector_path,
    )


if __name__ == "__main__":
    run_stage("evaluate", main)
