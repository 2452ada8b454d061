"""Stage submit: score every test recording and write the competition's submission.

Usage: python stages/submit.py MODEL_KERAS SUBMISSION_CSV TEST_METRICS_JSON [TEST_SPECIES_CSV]

Calls :func:`rainforest.submit.write_submission`. Where the dataset has test
ground truth (test_ground_truth.csv, as the demo data does), the
submission's LWLRAP and the other scores go to TEST_METRICS_JSON, and each
species' average precision to TEST_SPECIES_CSV (default
metrics/test_species.csv).
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.runner import run_stage
from rainforest.submit import write_submission


def main(settings, model_path, submission_path, metrics_path, species_path="metrics/test_species.csv"):
    write_submission(
        dataset_dir=settings.data.dataset_dir,
        settings=settings.submit,
        model_path=model_path,
        submission_path=submission_path,
        metrics_path=metrics_path,
        species_path=species_path,
    )


if __name__ == "__main__":
    run_stage("submit", main)
