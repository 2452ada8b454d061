"""Stage augment: write augmented copies of the training windows.

Usage: python stages/augment.py WINDOWS_H5 SPLIT_CSV AUGMENTED_H5

Calls :func:`rainforest.augment.build_augmented_set`.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.augment import build_augmented_set
from rainforest.runner import run_stage


def main(settings, windows_path, split_path, augmented_path):
    build_augmented_set(windows_path, split_path, augmented_path, settings.augment)


if __name__ == "__main__":
    run_stage("augment", main)
