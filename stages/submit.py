"""Stage submit: score every test recording and write the competition's submission.

Usage: python stages/submit.py MODEL_KERAS SUBMISSION_CSV TEST_METRICS_JSON [TEST_SPECIES_CSV]

Where the dataset has test ground truth (``test_ground_truth.csv``, as the demo
data does), the submission's LWLRAP and the other scores are written to
TEST_METRICS_JSON, and each species' average precision to TEST_SPECIES_CSV
(default metrics/test_species.csv); otherwise TEST_METRICS_JSON says there was
nothing to score against.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.errors import LabelError
from rainforest.evaluation import score_summary, species_table, submission_table
from rainforest.inference import score_recordings
from rainforest.labels import presence_matrix, read_events, read_species
from rainforest.model import load_card, load_model
from rainforest.runner import run_stage
from rainforest.storage import write_json, write_text

GROUND_TRUTH = "test_ground_truth.csv"


def main(settings, model_path, submission_path, metrics_path, species_path="metrics/test_species.csv"):
    dataset = settings.data.dataset_dir
    species, recording_ids = read_species(dataset / "sample_submission.csv")
    model, card = load_model(model_path), load_card(model_path)
    if species != card.species:
        raise LabelError(
            f"{dataset / 'sample_submission.csv'}: its {len(species)} species columns differ from the "
            f"{len(card.species)} species the model was trained on; retrain on this dataset"
        )
    submit = settings.submit
    scores = score_recordings(
        model, card, dataset / "test", recording_ids, hop_seconds=submit.hop_seconds, batch_size=submit.batch_size,
        aggregation=submit.aggregation, top_k=submit.top_k, workers=submit.workers,
    )
    write_text(submission_path, submission_table(recording_ids, species, scores).to_csv(index=False, float_format="%.6f"))

    if (dataset / GROUND_TRUTH).exists():
        truth = presence_matrix(read_events(dataset / GROUND_TRUTH, len(species)), recording_ids, len(species))
        write_text(species_path, species_table(truth, scores, species).to_csv(index=False))
        write_json(metrics_path, {**score_summary(truth, scores), "recordings": len(recording_ids)})
    else:
        write_text(species_path, "species,average_precision,positives\n")
        note = f"no {GROUND_TRUTH} in {dataset}"
        write_json(metrics_path, {"lwlrap": None, "recordings": len(recording_ids), "note": note})


if __name__ == "__main__":
    run_stage("submit", main)
