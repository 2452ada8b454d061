"""Stage train: fit the classifier on the training windows and their augmented copies.

Usage: python stages/train.py WINDOWS_H5 SPLIT_CSV AUGMENTED_H5 MODEL_KERAS LIVE_DIR
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

import pandas as pd

from rainforest.model import ModelCard, save_model
from rainforest.runner import run_stage
from rainforest.storage import read_feature_settings, read_window_attrs
from rainforest.training import load_training_data, train_classifier


def main(settings, windows_path, split_path, augmented_path, model_path, live_dir):
    split = pd.read_csv(split_path, dtype={"recording_id": str})
    train, validation = load_training_data(windows_path, split, augmented_path, settings.train.use_augmented)
    model = train_classifier(settings.model, settings.train, train, validation, live_dir)

    sample_rate, features = read_feature_settings(windows_path)
    species = [str(name) for name in read_window_attrs(windows_path)["species"]]
    save_model(model, model_path, ModelCard(sample_rate, features, species))


if __name__ == "__main__":
    run_stage("train", main)
