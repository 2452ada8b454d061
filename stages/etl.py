"""Stage etl: cut a labelled log-mel window around every event of the training recordings.

Usage: python stages/etl.py WINDOWS_H5
"""

import logging

from rainforest.runner import run_stage
from rainforest.windows import build_window_set


def main(settings, windows_path):
    n_windows = build_window_set(
        settings.data.dataset_dir, windows_path, settings.audio.sample_rate, settings.features, settings.etl.workers
    )
    logging.info("etl: wrote %d windows to %s", n_windows, windows_path)


if __name__ == "__main__":
    run_stage("etl", main)
