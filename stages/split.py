"""Stage split: assign each training recording to the training or validation subset.

Usage: python stages/split.py WINDOWS_H5 SPLIT_CSV
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

import logging

import numpy as np

from rainforest.runner import run_stage
from rainforest.split import split_recordings
from rainforest.storage import read_windows, write_text


def main(settings, windows_path, split_path):
    windows = read_windows(windows_path, ("recording_ids", "event_species", "event_present"))
    n_species = int(windows["event_species"].max()) + 1
    # Balance true and false positive events of each species, and background
    # windows (event_species -1), separately.
    species, present = windows["event_species"].astype(int), windows["event_present"].astype(int)
    strata = np.where(species < 0, 2 * n_species, species + n_species * (1 - present))
    split = split_recordings(
        windows["recording_ids"], strata, settings.split.validation_fraction, settings.split.seed
    )
    write_text(split_path, split.to_csv(index=False))
    logging.info("split: %s", split["subset"].value_counts().to_dict())


if __name__ == "__main__":
    run_stage("split", main)
