"""``rainforest-review``: review detections in a browser, and bring the verdicts back into training.

Installed as a console script with the project (``pip install -e .``); see
``rainforest-review --help``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from rainforest.cli import run_program, seconds, whole_number

PROG = "rainforest-review"

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Give verdicts on detections, then train on them.

page: writes DETECTIONS_DIR/review/index.html, a page to open in any browser
(offline, from disk, no server; on a phone too): for each species, the
detections that score highest (--top), those nearest its threshold (--near)
and one from each of --bins score bins, the overlapping windows of one call
merged into one card, each with its spectrogram (the window and the species'
band marked), its audio to play (at 1x, 0.5x or 0.25x), its Raven table and
begin time, and yes / no / unsure buttons (or the keys y, n, u); the
species' highest-scoring detection leads its cards as a reference. Verdicts
are kept in the browser across reloads; "Export verdicts (CSV)" downloads
them as verdicts.csv. DETECTIONS_DIR is a
folder rainforest-detect wrote (detections.csv and its journal); make the
page with the model and detector it ran with.

import: adds the verdicts of one or more verdicts.csv files to the reviews
folder of params.yaml (data.reviews_dir): yes as a call of the species, no as
its absence; unsure verdicts are left out. dvc repro then retrains on them."""

_EXAMPLES = """\
examples:
  rainforest-review page detections                       # then open detections/review/index.html
  rainforest-review page detections/site3 --top 10 --near 20
  rainforest-review page detections --top 0 --near 0 --bins 10   # a spread of scores, one per bin
  rainforest-review page detections --model models/model.keras --detector models/detector.json
  rainforest-review import ~/Downloads/verdicts.csv
  rainforest-review import site3/verdicts.csv site4/verdicts.csv --params params.yaml"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{page,import}")
    page = commands.add_parser(
        "page",
        help="write the review page of a rainforest-detect output folder",
        description="Write DETECTIONS_DIR/review/index.html: the detections to judge, with spectrograms and audio.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    page.add_argument("detections_dir", type=Path, metavar="DETECTIONS_DIR", help="a folder rainforest-detect wrote")
    page.add_argument(
        "--model",
        type=Path,
        default=Path("models/model.keras"),
        help="the model the detections were made with (default: %(default)s)",
    )
    page.add_argument(
        "--detector", type=Path, help="its thresholds and bands (default: detector.json beside the model)"
    )
    page.add_argument(
        "--top",
        type=whole_number,
        default=5,
        help="per species, the highest-scoring detections shown (default: %(default)s)",
    )
    page.add_argument(
        "--near",
        type=whole_number,
        default=5,
        help="per species, the detections nearest its threshold shown; below it only where rainforest-detect ran "
        "with a lower --min-score or --all (default: %(default)s)",
    )
    page.add_argument(
        "--bins",
        type=whole_number,
        default=0,
        help="per species, one detection drawn at random from each of this many equal-width bins between its "
        "lowest and highest score, as BirdNET-Analyzer's segments tool samples across confidence "
        "(default: %(default)s)",
    )
    page.add_argument(
        "--merge",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one card per call: the overlapping or touching windows of a species that reach its threshold "
        "joined, with the best score (default: merged; --no-merge shows one card per window)",
    )
    page.add_argument(
        "--context-seconds",
        type=seconds,
        default=1.0,
        help="audio shown and played each side of a detection's window (default: %(default)s)",
    )
    verdicts = commands.add_parser(
        "import",
        help="add exported verdicts to the training data",
        description="Add the verdicts of verdicts.csv files exported from review pages to data.reviews_dir of params.yaml.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verdicts.add_argument("verdicts", nargs="+", type=Path, metavar="VERDICTS", help="verdicts.csv files")
    verdicts.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="the project's settings (default: %(default)s)"
    )
    return parser


def _page(args: argparse.Namespace) -> None:
    from rainforest.review.page import write_review_page

    detector = args.detector or args.model.with_name("detector.json")
    page = write_review_page(
        args.detections_dir,
        model=args.model,
        detector=detector,
        top=args.top,
        near=args.near,
        bins=args.bins,
        merge=args.merge,
        context_seconds=args.context_seconds,
    )
    shown = ", ".join(f"{count} {reason}" for reason, count in page.shown.items())
    log.info(
        "%s: wrote %s (%d detection(s) to review: %s); open it in a browser",
        PROG,
        page.path,
        sum(page.shown.values()),
        shown,
    )


def _import(args: argparse.Namespace) -> None:
    from rainforest.config import load_settings
    from rainforest.review.verdicts import import_verdicts

    data = load_settings(args.params).data
    # Paths in params.yaml are the project's, as DVC runs the stages from its root: the file's folder.
    root = args.params.resolve().parent
    data = data.model_copy(update={"dataset_dir": root / data.dataset_dir, "reviews_dir": root / data.reviews_dir})
    summary = import_verdicts(args.verdicts, data=data)
    log.info("%s: %s", PROG, summary.describe())


def review(argv: Sequence[str] | None = None) -> int:
    """Run ``rainforest-review``; returns the exit status (1 on bad input, with one error line)."""
    args = build_parser().parse_args(argv)
    # The subcommands import their modules themselves, so --help answers without loading them.
    return run_program(PROG, lambda: {"page": _page, "import": _import}[args.command](args))
