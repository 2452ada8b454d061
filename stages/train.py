"""Stage train: fit the classifier on the training windows and their augmented copies.

Usage: python stages/train.py WINDOWS_H5 SPLIT_CSV AUGMENTED_H5 WINDOW_EMBEDDINGS_H5 AUGMENTED_EMBEDDINGS_H5 MODEL_KERAS LIVE_DIR

The classifier reads the windows' spectrograms, or with model.architecture:
embedding_head their embeddings (the embed stage's two files); its card names
the embedding model and the SHA-256 of its file, so inference computes the
same features.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

import pandas as pd

from rainforest.model import save_model
from rainforest.runner import run_stage
from rainforest.training import load_training_data, model_card, train_classifier


def main(settings, windows_path, split_path, augmented_path, window_embeddings_path, augmented_embeddings_path,
         model_path, live_dir):
    split = pd.read_csv(split_path, dtype={"recording_id": str})
    head = settings.model.architecture == "embedding_head"
    embeddings = (window_embeddings_path, augmented_embeddings_path) if head else None
    train, validation = load_training_data(windows_path, split, augmented_path, settings.train.use_augmented, embeddings)
    model = train_classifier(settings.model, settings.train, train, validation, live_dir)
    save_model(model, model_path, model_card(windows_path, embeddings[0] if head else None))


if __name__ == "__main__":
    run_stage("train", main)
