"""Stage etl: cut a labelled log-mel window around every event of the training recordings.

Usage: python stages/etl.py WINDOWS_H5 [ETL_METRICS_JSON [EVENTS_CSV [ETL_REPORT_JSON]]]

Calls :func:`rainforest.etl.write_window_set`. ETL_METRICS_JSON (default
metrics/etl.json) gets the headline counts, ETL_REPORT_JSON (default
metrics/etl_report.json) the whole report. EVENTS_CSV, if given, gets the
labelled events of train_tp.csv and train_fp.csv as validated, for evaluate:
it depends on them, not on the whole dataset folder, so new test recordings
do not rerun it.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.config import SpectrogramSettings
from rainforest.etl import write_window_set
from rainforest.runner import run_stage


def main(
    settings, windows_path, metrics_path="metrics/etl.json", events_path=None, report_path="metrics/etl_report.json"
):
    write_window_set(
        data=settings.data,
        spectrogram_settings=SpectrogramSettings(settings.audio.sample_rate, settings.features),
        settings=settings.etl,
        windows_path=windows_path,
        metrics_path=metrics_path,
        events_path=events_path,
        report_path=report_path,
    )


if __name__ == "__main__":
    run_stage("etl", main)
