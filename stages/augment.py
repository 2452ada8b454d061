"""Stage augment: write augmented copies of the training windows.

Usage: python stages/augment.py WINDOWS_H5 SPLIT_CSV AUGMENTED_H5
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

import logging

import pandas as pd

from rainforest.augment import build_augmented_set
from rainforest.runner import run_stage


def main(settings, windows_path, split_path, augmented_path):
    split = pd.read_csv(split_path, dtype={"recording_id": str})
    n_windows = build_augmented_set(windows_path, split, augmented_path, settings.augment)
    logging.info("augment: wrote %d windows to %s", n_windows, augmented_path)


if __name__ == "__main__":
    run_stage("augment", main)
