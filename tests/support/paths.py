"""Where things are: the repository, its settings, and the real data in ``../shared``.

``../shared`` (beside the clone) holds real recordings and the competition's
label files. It is not part of the repository: tests that read it carry the
``real_audio`` marker and skip, saying what is missing, where it is absent
(fixture ``shared_file`` in ``tests/conftest.py``, or a module-level
``skipif`` on the folder).
"""

from __future__ import annotations

from pathlib import Path

import yaml

#: The repository root (the folder holding ``dvc.yaml`` and ``params.yaml``).
ROOT = Path(__file__).resolve().parents[2]
#: The committed settings of the default run.
PARAMS_PATH = ROOT / "params.yaml"

#: Real data beside the clone.
SHARED = ROOT.parent / "shared"
#: Field recordings: ``spinetail.wav`` (with ``spinetail_labels.txt``, an
#: Audacity label track), ``birds_10s.wav`` and unlabelled ``jura_*.wav`` soundscapes.
SHARED_AUDIO = SHARED / "audio"
#: The Rainforest Connection competition's ``train_tp.csv``, ``train_fp.csv``
#: and ``sample_submission.csv`` (no audio).
SHARED_RFCX = SHARED / "rfcx"
#: A dataset in the competition's layout of real xeno-canto recordings (10 species).
XC_BIRDS = SHARED / "real" / "xc_birds"


def committed_params() -> dict:
    """The committed ``params.yaml``, freshly read: the caller may change it."""
    return yaml.safe_load(PARAMS_PATH.read_text())
