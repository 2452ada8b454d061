"""Stage submit: score every test recording and write the competition's submission.

Usage: python stages/submit.py MODEL_KERAS SUBMISSION_CSV TEST_METRICS_JSON [TEST_SPECIES_CSV [ROUND_MODELS_DIR ROUNDS_JSON ROUNDS_CSV]]

Calls :func:`rainforest.submit.write_submission`. Where the dataset has test
ground truth (test_ground_truth.csv, as the demo data does), the
submission's LWLRAP and the other scores go to TEST_METRICS_JSON, and each
species' average precision to TEST_SPECIES_CSV (default
metrics/test_species.csv). With ROUND_MODELS_DIR (train's model of each
pseudo-label round) and ROUNDS_JSON (train's figures of each round), every
earlier round's model scores the test recordings too, and ROUNDS_CSV gets
each round's validation and test LWLRAP.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.runner import run_stage
from rainforest.submit import write_submission


def main(
    settings,
    model_path,
    submission_path,
    metrics_path,
    species_path="metrics/test_species.csv",
    round_models=None,
    rounds_path=None,
    rounds_table_path=None,
):
    write_submission(
        dataset_dir=settings.data.dataset_dir,
        settings=settings.submit,
        model_path=model_path,
        submission_path=submission_path,
        metrics_path=metrics_path,
        species_path=species_path,
        round_models=round_models,
        rounds_path=rounds_path,
        rounds_table_path=rounds_table_path,
        transductive=settings.pseudo_label.use_test_recordings and settings.pseudo_label.rounds > 0,
    )


if __name__ == "__main__":
    run_stage("submit", main)
