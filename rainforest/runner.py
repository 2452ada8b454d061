"""What every stage script shares: settings, logging, timing and clean errors."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from rainforest.config import Settings, load_settings
from rainforest.errors import PipelineError

log = logging.getLogger("rainforest")


def run_stage(name: str, main: Callable[..., None], params_path: str = "params.yaml") -> None:
    """Run a stage's ``main(settings, *argv)`` and exit.

    The settings are read and validated before any work starts. A
    :class:`PipelineError` (bad data or settings) is printed as one message
    naming what to fix, without a traceback, and the process exits with 1.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    started = time.perf_counter()
    try:
        settings: Settings = load_settings(params_path)
        main(settings, *sys.argv[1:])
    except PipelineError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        sys.exit(1)
    log.info("%s: done in %.1f s", name, time.perf_counter() - started)
