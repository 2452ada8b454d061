"""Where detection runs: in this process, or over the worker processes of a Dask cluster.

A detection run is one task per recording: decode it, score its windows and
turn the scores into detections (:func:`detect_recording`). The tasks run in
this process (``workers=1``), on a local Dask cluster of ``workers`` processes
started for the run, or on an existing cluster at a scheduler's address, whose
workers may be on other machines (they must reach the recordings and the
model at the same paths). Each worker loads the model once and keeps it for
every recording it is given.

The results come back to this process, which alone writes the outputs (see
:func:`rainforest.detect.run.detect_recordings`): a worker that dies
loses only the recordings it was scoring, which Dask gives to another worker,
and nothing is written twice. A recording's detections are the same whichever
process scores it: the scores do not depend on TensorFlow's or the decoders'
thread count (``tests/test_engine.py`` checks it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rainforest.audio import Skipped
from rainforest.card import load_card
from rainforest.config import ScoringSettings
from rainforest.detect.detections import RecordingDetections, recording_detections
from rainforest.detect.thresholds import load_detector
from rainforest.errors import AudioError
from rainforest.numerics import unpinned_libraries
from rainforest.parallel import available_cores, one_blas_thread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectionJob:
    """What every recording of a run is detected with: sent to each worker, so small.

    Attributes
    ----------
    model, detector
        The trained model and its detector file (per-species thresholds and bands).
    thresholds
        Per-species scores at or above which a window is a detection, in model order.
    scoring
        Seconds between window starts, and windows scored at a time.
    skip_unreadable
        Whether a recording that cannot be decoded is reported instead of stopping the run.
    merge
        Whether the overlapping windows of one species are written as one detection
        (:func:`rainforest.events.detections.merge_overlapping`).
    embedding_file
        For a head on a user's ONNX embedding model: its file, if not at the
        path on the model's card.
    """

    model: Path
    detector: Path
    thresholds: tuple[float, ...]
    scoring: ScoringSettings
    skip_unreadable: bool = False
    merge: bool = False
    embedding_file: Path | None = None


#: Dask's setting of the environment its nannies start workers in.
NANNY_ENVIRON = "distributed.nanny.pre-spawn-environ"


@functools.lru_cache(maxsize=1)
def _loaded(model_path: Path, detector_path: Path, embedding_file: Path | None):
    # Once per process: the scorer, card and detector (a worker keeps them for every recording).
    # TensorFlow is imported here, in the processes that score, not at the top: the
    # process that only hands recordings to a cluster and writes the outputs never loads it.
    from rainforest.detect.scoring import make_scorer
    from rainforest.model import load_model

    model, card = load_model(model_path), load_card(model_path)
    return make_scorer(model, card, embedding_file=embedding_file), card, load_detector(detector_path, card.species)


@functools.cache
def _share_the_worker_cores() -> None:
    # Once per worker process, before its first TensorFlow op: as many
    # TensorFlow threads as the worker has (one on a local cluster: a process
    # per core), and one BLAS thread, so that workers don't fight for cores.
    import tensorflow as tf
    from distributed import get_worker

    with contextlib.suppress(RuntimeError):  # TensorFlow already ran in this process
        tf.config.threading.set_intra_op_parallelism_threads(get_worker().state.nthreads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    one_blas_thread()
    unpinned = unpinned_libraries()
    if unpinned:
        log.warning(
            "this Dask worker loaded %s before rainforest pinned its kernels, so its scores may differ in their "
            "last bits from other machines'; start workers with the pins: eval \"$(python -m rainforest.machine "
            'environment)"; dask worker ...',
            " and ".join(unpinned),
        )
    if "MALLOC_TRIM_THRESHOLD_" in os.environ:
        log.warning(
            "this Dask worker runs with MALLOC_TRIM_THRESHOLD_=%s (a nanny sets it), which makes recordings "
            "about 1.5 times slower to score; start workers with --no-nanny, or set MALLOC_TRIM_THRESHOLD_: null "
            "under %s in their Dask configuration",
            os.environ["MALLOC_TRIM_THRESHOLD_"],
            NANNY_ENVIRON,
        )


def detect_recording(job: DetectionJob, recording_id: str, path: Path) -> RecordingDetections | Skipped:
    """Detect species in one recording: the task a Dask worker runs.

    A recording that cannot be decoded comes back as
    :class:`~rainforest.audio.Skipped` even without ``job.skip_unreadable``:
    the process that writes the outputs stops the run at it
    (:func:`detection_results`), and the worker does not log it as a task that crashed.
    """
    from rainforest.detect.scoring import score_recording  # see _loaded

    _share_the_worker_cores()
    scorer, card, detector = _loaded(job.model, job.detector, job.embedding_file)
    try:
        item = score_recording(scorer, recording_id, path, scoring=job.scoring, skip_unreadable=job.skip_unreadable)
    except AudioError as error:
        return Skipped(recording_id, path, str(error))
    return recording_detections(item, card, detector, np.asarray(job.thresholds), merge=job.merge)


def _in_process(job: DetectionJob, recordings: dict[str, Path]) -> Generator[RecordingDetections | Skipped, None, None]:
    # One process: TensorFlow on every core, the next recordings decoded ahead, a thread per core.
    from rainforest.detect.scoring import score_windows  # see _loaded

    scorer, card, detector = _loaded(job.model, job.detector, job.embedding_file)
    scored = score_windows(
        scorer,
        recordings,
        scoring=job.scoring,
        skip_unreadable=job.skip_unreadable,
        progress="detect",
        workers=available_cores(),
    )
    with contextlib.closing(scored):  # its decoding threads stop whenever this stops
        for item in scored:
            yield recording_detections(item, card, detector, np.asarray(job.thresholds), merge=job.merge)


def _on_cluster(
    client, job: DetectionJob, recordings: dict[str, Path]
) -> Generator[RecordingDetections | Skipped, None, None]:
    from distributed import as_completed

    started, audio_seconds, unreadable = time.perf_counter(), 0.0, 0
    # One task per recording; the recordings of a worker that dies are given
    # to another (the scheduler does that), and each result comes back once.
    run = uuid.uuid4().hex
    futures = client.map(
        detect_recording,
        [job] * len(recordings),
        list(recordings),
        list(recordings.values()),
        key=[f"detect-{run}-{recording_id}" for recording_id in recordings],
    )
    with tqdm(total=len(futures), desc="detect", unit="rec", disable=None) as bar:
        for future in as_completed(futures):
            result = future.result()
            future.release()  # its result is written: let the cluster forget it
            if isinstance(result, Skipped) and not job.skip_unreadable:
                raise AudioError(result.reason)
            if isinstance(result, Skipped):
                unreadable += 1
            else:
                audio_seconds += result.seconds
            bar.update()
            yield result
    elapsed = time.perf_counter() - started
    log.info(
        "scored %d recording(s) (%d unreadable, left out), %.0f s of audio, in %.1f s on %d worker(s): %.1f audio "
        "seconds per second",
        len(recordings) - unreadable,
        unreadable,
        audio_seconds,
        elapsed,
        len(client.scheduler_info()["workers"]),
        audio_seconds / elapsed,
    )


@contextlib.contextmanager
def _client(workers: int, scheduler: str | None):
    import dask
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # not every worker's start and stop
    if scheduler:
        with Client(scheduler, timeout="30s") as client:
            log.info(
                "detecting on the Dask cluster at %s (%d worker(s))", scheduler, len(client.scheduler_info()["workers"])
            )
            yield client
        return
    # One single-threaded process per worker: the model gets one core in each.
    # Without Dask's MALLOC_TRIM_THRESHOLD_ for its workers: it makes glibc
    # hand every large array back to the system when freed, and fault it in
    # again for the next recording, which triples a spectrogram's CPU time.
    with (
        dask.config.set({f"{NANNY_ENVIRON}.MALLOC_TRIM_THRESHOLD_": None}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info("detecting on a local Dask cluster of %d worker process(es)", workers)
        yield client


@contextlib.contextmanager
def detection_results(
    job: DetectionJob, recordings: dict[str, Path], *, workers: int = 1, scheduler: str | None = None
) -> Iterator[Iterator[RecordingDetections | Skipped]]:
    """Yield an iterator over the detections of every recording, each as it is done.

    Parameters
    ----------
    recordings
        Recording id -> audio file.
    workers
        Processes on this machine: more than one starts a local Dask cluster
        of that many single-threaded workers for the run (at most one per
        recording; results then come in the order they finish); 1, or a
        single recording, runs in this process: TensorFlow on every core, the
        next recordings decoded ahead on a thread per core.
    scheduler
        The address of a running Dask scheduler (``tcp://host:8786``), whose
        workers are used instead of local ones.

    Raises
    ------
    AudioError
        As the iterator reaches a recording that cannot be decoded, unless
        ``job.skip_unreadable``.
    """
    if not recordings:
        yield iter(())
        return
    # Closed on leaving the block, however it is left (an error, Ctrl-C): its
    # decoding threads, or the cluster's tasks, stop with it.
    if scheduler is None and min(workers, len(recordings)) <= 1:
        with contextlib.closing(_in_process(job, recordings)) as results:
            yield results
        return
    workers = min(workers, len(recordings))  # no idle processes
    with _client(workers, scheduler) as client, contextlib.closing(_on_cluster(client, job, recordings)) as results:
        yield results
