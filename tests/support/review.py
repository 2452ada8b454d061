"""A ``rainforest-detect`` output folder to make review pages of.

``tests/test_review_page.py`` and ``tests/test_review_browser.py`` review the
detections of the tiny model (:mod:`tests.support.detector`) over two
recordings in two recorder folders. ``rainforest-detect --all`` writes every
window, so near-threshold choices fall on both sides of the thresholds that
:func:`detections_folder` then sets: s0's in the middle of its scores, s1
none (its near choices are taken around 0.5), s2 at 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rainforest.detect.cli import detect
from tests.support.detector import restored_logging, save_thresholds, save_tiny_model, write_recording

#: Species names on the model's card; the second one needs escaping in HTML.
LABELS = ["Screaming Piha", "Rain <Frog> & Co", "Tink Frog"]

#: Recording id -> (file under the field folder, sample rate, channels, seconds, format, subtype).
RECORDINGS = {
    "SD01/0500": ("SD01/0500.wav", 16000, 1, 5.0, "WAV", "PCM_16"),
    "SD02/0500": ("SD02/0500.flac", 22050, 2, 4.0, "FLAC", "PCM_24"),
}


def detections_folder(root: Path) -> dict[str, Path]:
    """Recordings under ``root/field``, the tiny model with labels under
    ``root/model``, and its ``--all`` detections under ``root/detections``;
    the detector's thresholds are then set as the module says.

    Returns
    -------
    dict
        ``field``, ``model`` (the .keras file), ``detector`` and ``detections`` (the output folder).
    """
    for name, *spec in RECORDINGS.values():
        write_recording(root / "field" / name, *spec)
    model = save_tiny_model(root / "model", labels=LABELS)
    out = root / "detections"
    with restored_logging():
        status = detect([str(root / "field"), "--model", str(model), "-o", str(out), "--all", "--workers", "1"])
    assert status == 0
    scores = pd.read_csv(out / "detections.csv", dtype={"recording": str, "species": str})
    save_thresholds(model.parent, [float(np.median(scores.loc[scores["species"] == "s0", "score"])), None, 0.0])
    return {"field": root / "field", "model": model, "detector": model.parent / "detector.json", "detections": out}
