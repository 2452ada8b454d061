"""Detect endangered rainforest species in field recordings.

The library behind the DVC pipeline in this repository. Each stage's module
is named after it (``etl``, ``split``, ``augment``, ``embedding``,
``training``, ``evaluate``, ``submit``; ``synthetic`` for ``demo``), with
one entry point that ``stages/<name>.py`` calls; ``detect`` scores and
detects species in recordings (``rainforest-detect``); the rest are the
concepts they share (audio, spectrogram, labels, window_sets, model, metrics,
figures, config). This file stays light: it runs before any of them.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ runtime logs notices at import and during fit that are
# noise to a user; errors still surface as Python exceptions. Set
# TF_CPP_MIN_LOG_LEVEL yourself to see them.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Before numpy, OpenBLAS and TensorFlow load: the same kernels on every x86-64
# CPU with AVX2, so the same inputs give the same bytes on another machine
# (rainforest.numerics).
from rainforest.numerics import pin_kernels as _pin_kernels

_pin_kernels()
