"""Stage train: fit the classifier on the training windows and their augmented copies.

Usage: python stages/train.py WINDOWS_H5 SPLIT_CSV AUGMENTED_H5 MODEL_KERAS LIVE_DIR
"""

import numpy as np
import pandas as pd
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from rainforest.model import ModelCard, save_model
from rainforest.runner import run_stage
from rainforest.split import window_rows
from rainforest.storage import read_feature_settings, read_window_attrs, read_windows
from rainforest.training import train_classifier

FIELDS = ("spectrograms", "targets", "masks")


def main(settings, windows_path, split_path, augmented_path, model_path, live_dir):
    split = pd.read_csv(split_path, dtype={"recording_id": str})
    ids = read_windows(windows_path, ("recording_ids",))["recording_ids"]
    originals = read_windows(windows_path, FIELDS, window_rows(ids, split, "train"))
    augmented = read_windows(augmented_path, FIELDS)
    train = {name: np.concatenate([originals[name], augmented[name]]) for name in FIELDS}
    validation = read_windows(windows_path, FIELDS, window_rows(ids, split, "validation"))

    live = Live(live_dir, save_dvc_exp=False, dvcyaml=False)
    model = train_classifier(settings.model, settings.train, train, validation, [DVCLiveCallback(live=live)])

    sample_rate, features = read_feature_settings(windows_path)
    species = [str(name) for name in read_window_attrs(windows_path)["species"]]
    save_model(model, model_path, ModelCard(sample_rate, features, species))


if __name__ == "__main__":
    run_stage("train", main)
