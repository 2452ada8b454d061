"""Train the default model a few steps and score with it; print the digests of its weights and scores.

``python -m tests.support.cpu_digests`` prints one JSON object. ``tests/test_other_cpus.py``
runs it on this CPU and under ``qemu-x86_64`` emulating others, whose caches differ from this
one's and whose reciprocal and reciprocal square root are exact where Intel's and AMD's
approximate in different ways: the pinned numerics must make every digest the same.
"""

from __future__ import annotations

import hashlib
import json

import keras
import numpy as np

from rainforest.config import load_settings
from rainforest.model import WeightedBinaryCrossentropy, build_model
from rainforest.training import make_deterministic
from tests.support.paths import ROOT

N_MELS, N_FRAMES, N_SPECIES = 64, 94, 24


def digests() -> dict[str, str]:
    """SHA-256 of the weights after two steps of training, and of the scores of 64 windows."""
    make_deterministic(0)
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(64, N_MELS, N_FRAMES)).astype(np.float32)
    present = (rng.random((64, N_SPECIES)) < 0.1).astype(np.float32)
    labels = np.concatenate([present, np.ones_like(present)], axis=1)
    settings = load_settings(ROOT / "params.yaml").model
    model = build_model(
        settings,
        (N_MELS, N_FRAMES),
        N_SPECIES,
        mean=windows.mean(axis=(0, 2)),
        variance=windows.var(axis=(0, 2)),
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=WeightedBinaryCrossentropy())
    model.fit(windows, labels, batch_size=32, epochs=1, verbose=0, shuffle=False)
    scores = model.predict(windows, batch_size=64, verbose=0)
    weights = b"".join(np.ascontiguousarray(weight).tobytes() for weight in model.get_weights())
    return {
        "weights": hashlib.sha256(weights).hexdigest(),
        "scores": hashlib.sha256(np.ascontiguousarray(scores).tobytes()).hexdigest(),
    }


if __name__ == "__main__":
    print(json.dumps(digests()))
