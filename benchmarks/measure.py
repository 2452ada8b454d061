"""Measuring a command: its wall time, the peak memory of its process tree, the time its stage logged.

The benchmarks time stages and the references (:data:`REFERENCES`, a script
run in each project) this way.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import psutil

from benchmarks.project import project_env

#: Seconds between memory samples of a running stage.
POLL_SECONDS = 0.05
#: Run as a script in each project (it reads the project's params.yaml).
REFERENCES = Path(__file__).with_name("references.py")


def measure(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run ``command`` (with the ``env`` variables added); return its wall
    seconds, the peak summed resident memory (bytes) of its process and all
    their children, and its output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=project_env(cwd, env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    parent, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass  # a process ended between listing and reading it
        time.sleep(POLL_SECONDS)
    output = process.communicate()[0]
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{output}")
    return time.perf_counter() - started, peak, output


def work_seconds(stage: str, output: str) -> float:
    """The time a stage logged for its work ("STAGE: done in S s"): its wall
    time less the interpreter's start and the imports (TensorFlow's take
    seconds), which a run on the full data set would not notice."""
    match = re.search(rf"{stage}: [^\n]*done in ([0-9.]+) s", output)
    if not match:
        raise RuntimeError(f"stage {stage} logged no 'done in' line:\n{output}")
    return float(match[1])
