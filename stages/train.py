"""Stage train: fit the classifier on the training windows and their augmented copies.

Usage: python stages/train.py WINDOWS_H5 SPLIT_CSV AUGMENTED_H5 WINDOW_EMBEDDINGS_H5 AUGMENTED_EMBEDDINGS_H5 MODEL_KERAS LIVE_DIR

Calls :func:`rainforest.training.train_model`. The classifier reads the
windows' spectrograms, or with model.architecture: embedding_head their
embeddings (the embed stage's two files).
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.runner import run_stage
from rainforest.training import train_model


def main(settings, windows_path, split_path, augmented_path, window_embeddings_path, augmented_embeddings_path,
         model_path, live_dir):
    train_model(
        model=settings.model, settings=settings.train, windows_path=windows_path, split_path=split_path,
        augmented_path=augmented_path, window_embeddings_path=window_embeddings_path,
        augmented_embeddings_path=augmented_embeddings_path, model_path=model_path, live_dir=live_dir,
    )


if __name__ == "__main__":
    run_stage("train", main)
