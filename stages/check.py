"""Stage check: validate the whole params.yaml before any stage removes an output.

Usage: python stages/check.py STAMP

DVC deletes a stage's outputs before it runs the stage's command, so a stage
that refused a bad setting itself would already have lost its previous
outputs. Every other stage depends on STAMP, so this one runs first, and a bad
setting stops the run here with everything in place. STAMP is a persistent
output (DVC leaves it in place) whose text never changes: a valid change of
settings reruns only the stages that read them.

Calls :func:`rainforest.atomic_writes.write_text` (``run_stage`` has already
read every section of params.yaml with :func:`rainforest.config.load_settings`).
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.atomic_writes import write_text
from rainforest.runner import run_stage

STAMP = "params.yaml: every setting valid (stage check)\n"


def main(settings, stamp_path):
    write_text(stamp_path, STAMP)


if __name__ == "__main__":
    run_stage("check", main)
