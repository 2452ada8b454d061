"""Stage etl: cut a labelled log-mel window around every event of the training recordings.

Usage: python stages/etl.py WINDOWS_H5 [ETL_METRICS_JSON [EVENTS_CSV [ETL_REPORT_JSON]]]

ETL_METRICS_JSON (default metrics/etl.json) gets the headline counts that
``dvc metrics show`` tracks: recordings read and skipped, windows written.
ETL_REPORT_JSON (default metrics/etl_report.json) gets the whole report: each
skipped recording with the reason, and the events dropped as duplicates,
clamped to their recording's end or skipped with their recording.
EVENTS_CSV, if given, gets the labelled events of train_tp.csv and
train_fp.csv as validated (column ``present``: from train_tp.csv), for
evaluate: it depends on them, not on the whole dataset folder, so new test
recordings do not rerun it.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

import logging

from rainforest.runner import run_stage
from rainforest.storage import write_json
from rainforest.windows import build_window_set


def main(settings, windows_path, metrics_path="metrics/etl.json", events_path=None,
         report_path="metrics/etl_report.json"):
    report = build_window_set(
        settings.data.dataset_dir,
        windows_path,
        settings.audio.sample_rate,
        settings.features,
        settings.etl.workers,
        settings.etl.on_unreadable,
        settings.etl.background_windows,
        events_path,
        windows_per_event=settings.etl.windows_per_event,
    )
    write_json(report_path, report.to_dict())
    write_json(metrics_path, report.headline())
    logging.info(
        "etl: wrote %d windows from %d recordings to %s (%d skipped; report in %s)",
        report.windows_written, report.recordings_read, windows_path, report.recordings_skipped, report_path,
    )


if __name__ == "__main__":
    run_stage("etl", main)
