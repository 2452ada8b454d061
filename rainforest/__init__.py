"""Detect endangered rainforest species in field recordings.

The library behind the DVC pipeline in this repository: each module holds one
concept (audio loading, features, labels, storage, augmentation, model,
metrics, demo data); the scripts in ``stages/`` are thin entry points on top.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ runtime logs notices at import and during fit that are
# noise to a user; errors still surface as Python exceptions. Set
# TF_CPP_MIN_LOG_LEVEL yourself to see them.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
