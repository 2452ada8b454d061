"""Stage pool: unlabelled windows of the training recordings' free time (and of a folder of recordings) for pseudo-label rounds.

Usage: python stages/pool.py WINDOWS_H5 EVENTS_CSV POOL_H5 POOL_METRICS_JSON

Calls :func:`rainforest.pool.build_pool_set`. With pseudo_label.rounds: 0
(the default) the pool is empty and nothing is read. No pool window overlaps
a window of WINDOWS_H5 or an event of EVENTS_CSV (etl's outputs), so a
person's label always wins over a pseudo-label. The windows keep their audio
only for an embedding model (embedding.model), which the embed stage runs on
them.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.config import SpectrogramSettings
from rainforest.pool import build_pool_set
from rainforest.runner import run_stage


def main(settings, windows_path, events_path, pool_path, report_path):
    build_pool_set(
        dataset_dir=settings.data.dataset_dir,
        windows_path=windows_path,
        events_path=events_path,
        spectrogram_settings=SpectrogramSettings(settings.audio.sample_rate, settings.features),
        rounds=settings.pseudo_label.rounds,
        training_recordings=settings.pseudo_label.training_recordings,
        pool_dir=settings.pseudo_label.pool_dir,
        use_test_recordings=settings.pseudo_label.use_test_recordings,
        windows_per_recording=settings.pseudo_label.windows_per_recording,
        keep_waveforms=settings.embedding.model != "none",
        workers=settings.etl.workers,
        skip_unreadable=settings.etl.on_unreadable == "skip",
        pool_path=pool_path,
        report_path=report_path,
    )


if __name__ == "__main__":
    run_stage("pool", main)
