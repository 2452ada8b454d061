"""Stage split: give each labelled recording its fold (a holdout, or cross-validation).

Usage: python stages/split.py WINDOWS_H5 SPLIT_CSV

Calls :func:`rainforest.split.split_window_set`.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.runner import run_stage
from rainforest.split import split_window_set


def main(settings, windows_path, split_path):
    split_window_set(windows_path, split_path, settings.split)


if __name__ == "__main__":
    run_stage("split", main)
