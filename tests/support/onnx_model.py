"""A tiny ONNX embedding model, built at test time, and its descriptor.

The tests of ``embedding.model: onnx`` need an ONNX file; real models (Perch v2)
are hundreds of megabytes and downloaded by their users. This one is a
log filter-bank: frames of the window, projected on windowed cosines (one per
band, log-spaced from 150 Hz to 7 kHz), squared and averaged over the frames,
logged, and mixed by a fixed random matrix into the embedding. It has a second
output (``scores``) as classifier models do, so a descriptor must pick the
embedding by name. It is built with ``onnx.helper`` from numpy weights, and
:func:`reference_embeddings` runs the same graph with onnx's own reference
evaluator.

Example
-------
>>> import tempfile
>>> path = write_tiny_model(Path(tempfile.mkdtemp()) / "tiny.onnx")
>>> path.with_suffix(".yaml").is_file()
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 1.0
FRAME = 400  # 25 ms
BANDS = 24
DIMENSION = 16
SCORES = 3
#: The descriptor of the model as written; tests change fields of a copy.
DESCRIPTOR = {
    "sample_rate": SAMPLE_RATE,
    "window_seconds": WINDOW_SECONDS,
    "input": "audio",
    "output": "embedding",
    "dimension": DIMENSION,
    "preprocessing": {"remove_mean": True, "peak": 0.25},
    "licence": "CC0-1.0 (a test model)",
}


def _weights(seed: int) -> dict[str, np.ndarray]:
    t = np.arange(FRAME) / SAMPLE_RATE
    bands = np.geomspace(150, 7000, BANDS)
    filters = np.hanning(FRAME)[:, None] * np.cos(2 * np.pi * bands[None, :] * t[:, None])
    rng = np.random.default_rng(seed)
    return {
        "filters": filters.astype(np.float32),
        "mix": (rng.standard_normal((BANDS, DIMENSION)) / np.sqrt(BANDS)).astype(np.float32),
        "classify": rng.standard_normal((DIMENSION, SCORES)).astype(np.float32),
        "floor": np.array(1e-6, np.float32),
        "frames": np.array([0, round(SAMPLE_RATE * WINDOW_SECONDS) // FRAME, FRAME], np.int64),
        "time_axis": np.array([1], np.int64),
    }


def tiny_model(*, seed: int = 0, batch: int | str = "batch", samples: int | str | None = None) -> onnx.ModelProto:
    """The model: input ``audio`` (batch, samples) float, outputs ``embedding``
    (batch, 16) and ``scores`` (batch, 3). ``batch`` and ``samples`` fix a
    dimension (an int) or leave it free (a name); ``samples`` defaults to one
    window at the model's rate."""
    samples = round(SAMPLE_RATE * WINDOW_SECONDS) if samples is None else samples
    weights = _weights(seed)
    nodes = [
        helper.make_node("Reshape", ["audio", "frames"], ["framed"]),
        helper.make_node("MatMul", ["framed", "filters"], ["filtered"]),
        helper.make_node("Mul", ["filtered", "filtered"], ["power"]),
        helper.make_node("ReduceMean", ["power", "time_axis"], ["band_power"], keepdims=0),
        helper.make_node("Add", ["band_power", "floor"], ["floored"]),
        helper.make_node("Log", ["floored"], ["log_power"]),
        helper.make_node("MatMul", ["log_power", "mix"], ["embedding"]),
        helper.make_node("MatMul", ["embedding", "classify"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_embedding",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, samples])],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, DIMENSION]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, SCORES]),
        ],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="rainforest-tests")
    model.ir_version = 8  # what onnxruntime 1.31 reads, whatever the onnx package writes by default
    onnx.checker.check_model(model, full_check=True)
    return model


def write_tiny_model(path: Path, *, descriptor: dict | None = None, **model_options) -> Path:
    """Write :func:`tiny_model` (``model_options``) to ``path`` and its
    descriptor (:data:`DESCRIPTOR`, or ``descriptor``) beside it; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_model(**model_options), path)
    path.with_suffix(".yaml").write_text(yaml.safe_dump(DESCRIPTOR if descriptor is None else descriptor))
    return path


def reference_embeddings(path: Path, windows: np.ndarray) -> np.ndarray:
    """The graph's own output for ``windows`` (already preprocessed), from
    onnx's reference evaluator (numpy), not onnxruntime."""
    from onnx.reference import ReferenceEvaluator

    (embeddings,) = ReferenceEvaluator(onnx.load(path)).run(["embedding"], {"audio": windows.astype(np.float32)})
    return embeddings
