"""Stage train: fit one classifier per fold of the split on the other folds' windows and their augmented copies.

Usage: python stages/train.py WINDOWS_H5 SPLIT_CSV AUGMENTED_H5 WINDOW_EMBEDDINGS_H5 AUGMENTED_EMBEDDINGS_H5 MODEL_KERAS VALIDATION_SCORES_CSV LIVE_DIR

Calls :func:`rainforest.training.train_model`. The classifier reads the
windows' spectrograms, or with model.architecture: embedding_head their
embeddings (the embed stage's two files). The model is the holdout's one
model or the folds' ensemble; the validation scores are each fold's
windows scored by its own model.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.runner import run_stage
from rainforest.training import TrainingFiles, train_model


def main(
    settings,
    windows_path,
    split_path,
    augmented_path,
    window_embeddings_path,
    augmented_embeddings_path,
    model_path,
    validation_scores_path,
    live_dir,
):
    files = TrainingFiles(
        windows_path,
        split_path,
        augmented_path,
        window_embeddings_path,
        augmented_embeddings_path,
        model_path,
        validation_scores_path,
        live_dir,
    )
    train_model(model=settings.model, settings=settings.train, files=files)


if __name__ == "__main__":
    run_stage("train", main)
