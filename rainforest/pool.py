"""The pool: unlabelled windows for pseudo-label rounds (the ``pool`` stage).

A person labels a few dozen calls per species; a recorder yields thousands of
hours. The pool is a window set (:mod:`rainforest.window_sets`) of that
unlabelled audio, cut at random where it is free: from the training
recordings' time that no labelled window or event covers (and from the
recordings in ``train/`` nobody labelled), from a folder of recordings, and,
by an opt-in meant for competitions, from the test recordings. Its labels are
all unknown; the train stage's rounds (:mod:`rainforest.pseudo_labels`) give
some of them labels.

Because no pool window overlaps a labelled window or event, a person's label
or verdict (``rainforest-review import``) always wins over a pseudo-label:
where a person said something, there is no pool window.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from rainforest.atomic_writes import write_json
from rainforest.audio import Recording, Skipped, index_recording_tree, index_recordings
from rainforest.config import SpectrogramSettings
from rainforest.errors import AudioError
from rainforest.etl import background_window_starts
from rainforest.parallel import ordered_map
from rainforest.spectrogram import frame_times, log_mel_spectrogram, recording_frames, window_span_samples
from rainforest.window_sets import WindowWriter, read_window_attrs, read_windows

log = logging.getLogger(__name__)

#: Prefixes of the ids of pool recordings that are not training recordings, so
#: that a test or pool recording never shares an id with a training recording.
TEST_PREFIX, FOLDER_PREFIX = "test/", "pool/"


@dataclass(frozen=True)
class PoolJob:
    """One pool recording: where it is and the time spans already labelled in it."""

    recording_id: str
    path: Path
    #: ``t_min``, ``t_max`` of every labelled window and event in the recording.
    taken: pd.DataFrame
    spectrogram_settings: SpectrogramSettings
    n_species: int
    count: int
    keep_waveforms: bool
    skip_unreadable: bool


def pool_windows(job: PoolJob) -> dict[str, np.ndarray] | Skipped:
    """Up to ``job.count`` windows of one recording that overlap nothing in
    ``job.taken``, drawn at random (seeded by the recording's id, so the same
    windows whatever the worker), all labels unknown; as fields of a window
    set (none where nothing is free), or the recording :class:`Skipped`."""
    settings = job.spectrogram_settings
    features = settings.features
    n_samples = window_span_samples(settings.window_frames, features)
    try:
        with Recording(job.path, settings.sample_rate) as recording:
            n_frames = recording_frames(max(recording.n_samples, n_samples), features)
            rng = np.random.default_rng(zlib.crc32(job.recording_id.encode()))
            starts = background_window_starts(job.taken, n_frames, job.count, settings, rng)
            if not len(starts):  # labelled windows and events cover the recording
                return {}
            waveforms = np.stack([recording.read(int(start) * features.hop_length, n_samples) for start in starts])
    except AudioError as error:
        if job.skip_unreadable:
            return Skipped(job.recording_id, job.path, str(error))
        raise AudioError(
            f"{error} (a pool recording: remove it, or set etl.on_unreadable: skip in params.yaml to leave it out)"
        ) from None
    n = len(starts)
    start_times = frame_times(starts, settings)
    windows = {
        "spectrograms": log_mel_spectrogram(waveforms, settings),
        "targets": np.zeros((n, job.n_species), np.uint8),
        "masks": np.zeros((n, job.n_species), np.uint8),
        "recording_ids": np.array([job.recording_id] * n, dtype=object),
        "start_times": start_times,
        "end_times": start_times + n_samples / settings.sample_rate,
        "event_species": np.full(n, -1, np.int16),
        "event_present": np.zeros(n, np.uint8),
    }
    if job.keep_waveforms:
        windows["waveforms"] = waveforms
    return windows


def pool_recordings(
    dataset_dir: str | Path, *, training_recordings: bool, pool_dir: str | Path, use_test_recordings: bool
) -> dict[str, Path]:
    """The pool's recordings by id, in the order the pool holds them: the
    training recordings (``train/``, with ``training_recordings``), then ``pool_dir``'s (at any depth, ids
    prefixed ``pool/``), then, with ``use_test_recordings``, the test
    recordings (ids prefixed ``test/``)."""
    dataset_dir = Path(dataset_dir)
    found: dict[str, Path] = {}
    if training_recordings:
        found |= index_recordings(dataset_dir / "train")
    if not Path(pool_dir).is_dir():
        raise AudioError(f"{pool_dir}: pool folder not found; check pseudo_label.pool_dir in params.yaml")
    found |= {FOLDER_PREFIX + name: path for name, path in index_recording_tree(pool_dir).items()}
    if use_test_recordings:
        found |= {TEST_PREFIX + name: path for name, path in index_recordings(dataset_dir / "test").items()}
    return found


@dataclass
class PoolReport:
    """What the pool stage read and wrote (``metrics/pool.json``)."""

    # The names of etl's figures, so that dvc metrics show gains no column.
    recordings: int = 0
    skipped: int = 0
    windows: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def build_pool_set(
    *,
    dataset_dir: str | Path,
    windows_path: str | Path,
    events_path: str | Path,
    spectrogram_settings: SpectrogramSettings,
    rounds: int,
    training_recordings: bool,
    pool_dir: str | Path,
    use_test_recordings: bool,
    windows_per_recording: int,
    keep_waveforms: bool,
    workers: int,
    skip_unreadable: bool,
    pool_path: str | Path,
    report_path: str | Path,
) -> PoolReport:
    """Write the pool's window set (atomically) and its report.

    With ``rounds`` 0 the pool is empty: nothing is read, and the file is a
    window set of no windows.

    Parameters
    ----------
    training_recordings, pool_dir, use_test_recordings
        Where the recordings come from (:func:`pool_recordings`).
    windows_per_recording
        Windows drawn from the free time of each.
    windows_path, events_path
        The etl stage's window set and labelled events: the time they cover
        in each recording is left out of the pool.
    keep_waveforms
        Store each window's audio too, for an embedding model (the embed
        stage embeds the pool as it does the window set).
    workers
        Processes decoding recordings; the pool is the same for any number.
    skip_unreadable
        Leave out a recording that cannot be decoded (listed in the report)
        instead of stopping.

    Raises
    ------
    AudioError
        If ``pool_dir`` does not exist, or (without ``skip_unreadable``) a
        pool recording cannot be decoded.
    """
    attrs = read_window_attrs(windows_path)
    attrs.pop("n_windows", None)
    n_species = len(attrs["species"])
    features = spectrogram_settings.features
    recordings = {}
    if rounds:
        recordings = pool_recordings(
            dataset_dir,
            training_recordings=training_recordings,
            pool_dir=pool_dir,
            use_test_recordings=use_test_recordings,
        )
        if not recordings:
            raise AudioError(
                f"pseudo_label.rounds is {rounds} but the pool holds no recording: put recordings in {pool_dir} "
                "(pseudo_label.pool_dir) or set pseudo_label.training_recordings: true"
            )
    labelled = read_windows(windows_path, ("recording_ids", "start_times", "end_times"))
    taken = pd.concat(
        [
            pd.DataFrame(
                {
                    "recording_id": labelled["recording_ids"],
                    "t_min": labelled["start_times"],
                    "t_max": labelled["end_times"],
                }
            ),
            pd.read_csv(events_path, dtype={"recording_id": str})[["recording_id", "t_min", "t_max"]],
        ],
        ignore_index=True,
    )
    by_recording = dict(iter(taken.groupby("recording_id", sort=False)))
    empty = taken.iloc[:0]
    jobs = [
        PoolJob(
            recording_id,
            path,
            by_recording.get(recording_id, empty).reset_index(drop=True),
            spectrogram_settings,
            n_species,
            windows_per_recording,
            keep_waveforms,
            skip_unreadable,
        )
        for recording_id, path in recordings.items()
    ]
    report = PoolReport()
    n_frames = spectrogram_settings.window_frames
    writer = WindowWriter(
        pool_path,
        n_mels=features.n_mels,
        n_frames=n_frames,
        n_species=n_species,
        n_samples=window_span_samples(n_frames, features) if keep_waveforms else None,
        attrs=attrs,
    )
    with writer, ordered_map(workers) as map_in_order:
        for result in tqdm(map_in_order(pool_windows, jobs), total=len(jobs), desc="pool", unit="rec", disable=None):
            if isinstance(result, Skipped):
                log.warning("pool: leaving out %s: %s", result.recording_id, result.reason)
                report.skipped += 1
                continue
            if result:
                writer.append(**result)
            report.recordings += 1
    report.windows = writer.n_windows
    if rounds:
        log.info(
            "pool: %d windows from %d recordings (%d skipped as unreadable)%s",
            report.windows,
            report.recordings,
            report.skipped,
            "; it holds the test recordings, so the test figures are transductive" if use_test_recordings else "",
        )
    write_json(report_path, report.to_dict())
    return report
