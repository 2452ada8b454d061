"""Run a stage with the project's Python, whichever way DVC was started.

DVC runs ``python stages/<name>.py`` with the first ``python`` on ``PATH``.
Started as ``.venv/bin/dvc repro`` from a shell where the virtual environment
is not activated, that is another Python, which lacks the project. Then the
script is run again, same arguments, with the project's ``.venv/bin/python``
(``make setup`` makes it); without one, the stage stops with what to do.
Every stage script imports this module first.
"""

import importlib.util
import os
import sys
from pathlib import Path

_VENV = Path(__file__).resolve().parents[1] / ".venv"

if importlib.util.find_spec("rainforest") is None:
    stage = Path(sys.argv[0]).stem
    if (_VENV / "bin" / "python").exists() and Path(sys.prefix).resolve() != _VENV.resolve():
        python = str(_VENV / "bin" / "python")
        os.execv(python, [python, *sys.argv])
    sys.exit(
        f"{stage}: error: the rainforest package is not installed for {sys.executable}; "
        "run `make setup`, then `. .venv/bin/activate` before dvc (or run `make run`)"
    )
