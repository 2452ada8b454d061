"""``rainforest-detect``: run the trained model over new field recordings.

Installed as a console script with the project (``pip install -e .``); see
``rainforest-detect --help``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rainforest.cli import positive_number, positive_whole_number, run_program, score
from rainforest.errors import ConfigError
from rainforest.parallel import available_cores

if TYPE_CHECKING:  # loaded in _detect, not for --help
    from rainforest.card import ModelCard
    from rainforest.detect.run import DetectionSummary
    from rainforest.detect.thresholds import Detector

PROG = "rainforest-detect"

_DESCRIPTION = """\
Find where in each recording each species called. The trained model scores
windows slid over every recording (any format libsndfile reads, any sample
rate, length and channel count); a window whose score reaches the species'
threshold is a detection. The thresholds, chosen on the validation windows for
a target precision (evaluate.target_precision), and each species' frequency
band come from the detector file that the evaluate stage writes beside the
model.

Writes to OUTPUT: detections.csv (recording, start, end, species, score, and
label, the species' name, for a model trained with a species.csv; one row per
window and species detected, by recording, start and species; with --merge one
per call: a species' overlapping windows joined), one
Raven Pro selection table per recording, <recording>.Table.1.selections.txt,
to open over the recording in Raven (File > Open Selection Table), and
skipped.csv (the recordings left out by --skip-unreadable, and why).

Folders are searched at any depth; a recording's id is its path under the
folder without extension (SD03/20260412_050000), and its selection table is
written under the same subfolder of OUTPUT.

Runs are resumable: OUTPUT/.journal records each finished recording, so the
same command after a crash or a kill scores only what is left (and, over a
folder that has grown, only the new recordings), with the same final files.
A recording whose file changed, or a run with another model, detector or
options, is scored again.

Recordings are scored by --workers processes on this machine (a local Dask
cluster), or by the workers of a running Dask cluster (--scheduler, or the
DASK_SCHEDULER_ADDRESS variable); the outputs are the same either way."""

_EXAMPLES = """\
examples:
  rainforest-detect data/demo/test
  rainforest-detect site3/ extra/rec_0412.wav --output detections/site3
  rainforest-detect field.flac --min-score 0.3      # more detections, less precise
  rainforest-detect field.flac --all                # every window and species, for analysis
  rainforest-detect field.flac --merge              # one row per call, not per overlapping window
  rainforest-detect /archive/2026 --workers 8       # a season of recorder cards, 8 processes
  rainforest-detect /archive/2026 --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="RECORDING_OR_FOLDER",
        help="audio files (any format libsndfile reads), or folders whose .flac, .wav and .ogg files (at any "
        "depth) are read",
    )
    parser.add_argument(
        "--model", type=Path, default=Path("models/model.keras"), help="trained model (default: %(default)s)"
    )
    parser.add_argument(
        "--detector",
        type=Path,
        help="per-species thresholds and bands (default: detector.json beside the model)",
    )
    parser.add_argument(
        "--embedding-model",
        type=Path,
        metavar="ONNX_FILE",
        help="for a head on your own ONNX embedding model: its file, with its descriptor beside it, if not at the "
        "path the model's card names (from the project folder); it must be the file the head was trained on",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("detections"), help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--hop-seconds",
        type=positive_number,
        help="seconds between window starts, at most the model's window length (default: 1 for a model on "
        "spectrograms; the window length, no overlap, for a head on embeddings, whose model is the cost)",
    )
    parser.add_argument(
        "--batch-size", type=positive_whole_number, default=64, help="windows scored at a time (default: %(default)s)"
    )
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--min-score",
        type=score,
        metavar="SCORE",
        help="one threshold for every species instead of the detector's per-species thresholds",
    )
    chosen.add_argument("--all", action="store_true", help="write every window and species, whatever its score")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="write a species' overlapping or touching windows in a recording as one detection, from the first "
        "one's start to the last one's end, with the best score (default: one row per window)",
    )
    parser.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="leave out recordings that cannot be decoded, with a warning, instead of stopping",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=positive_whole_number,
        help="processes scoring recordings on this machine, as a local Dask cluster; 1 scores in this process "
        f"(default: one per core on more than 2 cores, else 1; {default_workers()} here)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://host:8786) whose workers score the recordings; they must reach the "
        "recordings and the model at the same paths (default: $DASK_SCHEDULER_ADDRESS, if set)",
    )
    return parser


def default_workers() -> int:
    """One worker process per core; on 2 cores or fewer, this process alone.

    On 2 cores one process, decoding on a thread per core while TensorFlow
    scores, measured faster than a local cluster of two (1,209 against 1,008
    audio seconds per second over 1,000 one-minute files, the cluster's start
    included; docs/benchmark.md) in under half the memory; more cores need
    more processes.
    """
    cores = available_cores()
    return cores if cores > 2 else 1


def detect(argv: Sequence[str] | None = None) -> int:
    """Run ``rainforest-detect``; returns the exit status (1 on bad input, with one error line)."""
    args = build_parser().parse_args(argv)
    return run_program(PROG, lambda: _detect(args))


def _detect(args: argparse.Namespace) -> None:
    # Imported here, not above: pandas and the decoders take a second to load, --help should not wait.
    # TensorFlow loads only where recordings are scored (rainforest.detect.engine).
    from rainforest.card import load_card
    from rainforest.config import ScoringSettings
    from rainforest.detect.engine import DetectionJob
    from rainforest.detect.run import detect_recordings, find_recordings
    from rainforest.detect.thresholds import load_detector
    from rainforest.events import detections as detection_files

    started = time.perf_counter()
    recordings = find_recordings(args.inputs)
    card = load_card(args.model)
    detector_path = args.detector or args.model.with_name("detector.json")
    detector = load_detector(detector_path, card.species)
    window_seconds = card.spectrogram_settings.features.window_seconds
    hop_seconds = args.hop_seconds or (window_seconds if card.embedding else 1.0)
    if hop_seconds > window_seconds:
        raise ConfigError(
            f"--hop-seconds ({hop_seconds}) must not exceed the model's window "
            f"({window_seconds} s): windows would skip audio"
        )
    if args.merge and args.all:
        raise ConfigError(
            "--merge with --all would join every window of a species into one detection per recording: "
            "use --merge with the detector's thresholds or --min-score"
        )
    if args.all or args.min_score is not None:
        thresholds = np.full(len(card.species), 0.0 if args.all else args.min_score)
    else:
        thresholds = detector.thresholds
        if detector.undetected:
            logging.info(
                "%s: not detecting %s: below the target precision %g on validation (--min-score shows them)",
                PROG,
                ", ".join(detector.undetected),
                detector.target_precision,
            )
    job = DetectionJob(
        args.model.resolve(),
        detector_path.resolve(),
        tuple(map(float, thresholds)),
        ScoringSettings(hop_seconds=hop_seconds, batch_size=args.batch_size),
        args.skip_unreadable,
        merge=args.merge,
        embedding_file=_embedding_file(card, args.embedding_model),
    )
    # --workers asks for local processes, whatever the environment names.
    scheduler = args.scheduler or (None if args.workers else os.environ.get("DASK_SCHEDULER_ADDRESS") or None)
    workers = args.workers or default_workers()
    summary = detect_recordings(job, recordings, args.output, workers=workers, scheduler=scheduler)
    total = len(recordings)
    logging.info(
        "%s: %d recording(s): %d scored now, %d scored by an earlier run, %d unreadable (listed in %s); with %s "
        "and %s; wrote %d detection(s) to %s and %d Raven selection table(s) beside it; done in %.1f s",
        PROG,
        total,
        summary.scored,
        summary.resumed,
        len(summary.skipped),
        args.output / "skipped.csv",
        args.model,
        detector_path,
        summary.detections,
        args.output / detection_files.FILE_NAME,
        total - len(summary.skipped),
        time.perf_counter() - started,
    )
    if not args.all:
        for line in why_few_detections(summary, card=card, detector=detector, thresholds=thresholds):
            logging.info("%s: %s", PROG, line)


def _embedding_file(card: ModelCard, given: Path | None) -> Path | None:
    """The ONNX file of a head on a user's embedding model, as an absolute
    path (workers may start elsewhere); None for other models."""
    if card.embedding is None or card.embedding.file is None:
        if given is not None:
            raise ConfigError("--embedding-model: the model's card names no ONNX embedding model; leave it out")
        return None
    path = given or Path(card.embedding.file)
    if not path.is_file():
        raise ConfigError(
            f"{path}: the ONNX embedding model the head was trained on was not found"
            + ("" if given else " (the path on the model's card, from this folder): run from the project folder, or")
            + " give its file with --embedding-model"
        )
    return path.resolve()


#: Species named, at most, in the line on the highest scores.
NAMED_SPECIES = 8


def why_few_detections(
    summary: DetectionSummary, *, card: ModelCard, detector: Detector, thresholds: np.ndarray
) -> list[str]:
    """Why a run detected little, and what to do next: two lines for its summary, or none.

    "Little" is fewer detections than recordings scored: a species that calls
    in a recording is usually detected in several of its windows. The lines
    say which species the model knows (its card), which of them have no
    threshold, the highest score each species reached against its threshold
    (those closest to theirs first), and the options that show more.

    Parameters
    ----------
    thresholds
        The run's per-species thresholds, in model order (``--min-score``'s, or
        the detector's; infinite for a species without one).
    """
    recordings = summary.scored + summary.resumed
    if summary.highest is None or summary.detections >= recordings:
        return []
    names, highest, finite = card.display_names(), np.asarray(summary.highest), np.isfinite(thresholds)
    # Those closest to their threshold first, then those without one, by score.
    gaps = np.where(finite, highest - np.where(finite, thresholds, 0.0), highest)
    order = sorted(range(len(names)), key=lambda j: (finite[j], gaps[j]), reverse=True)
    scores = ", ".join(
        f"{names[j]} {highest[j]:.2f} " + (f"of {thresholds[j]:.2f}" if finite[j] else "(none)")
        for j in order[:NAMED_SPECIES]
    )
    more = f" and {len(names) - NAMED_SPECIES} more" if len(names) > NAMED_SPECIES else ""
    without = (
        f", {int((~finite).sum())} of them without a threshold (below the target precision "
        f"{detector.target_precision:g} on validation)"
        if not finite.all()
        else ""
    )
    why = (
        f"few detections ({summary.detections} in {recordings} recording(s)): the model knows only the "
        f"{len(names)} species it was trained on{without}; each species' highest score against its threshold: "
        f"{scores}{more}"
    )
    what_next = (
        "to see more: --min-score SCORE detects every species at SCORE (less precise), --all writes every "
        "window's scores; for other species or sites, label your own recordings and train on them (docs/data.md)"
    )
    return [why, what_next]
