"""A user's ONNX embedding model (``embedding.model: onnx``): its descriptor, its
embeddings and every way a descriptor can be wrong, on a tiny model built here
(:mod:`tests.support.onnx_model`)."""

import json
import sys

import h5py
import numpy as np
import pytest
import yaml

from rainforest.card import EmbeddingCard, ModelCard
from rainforest.config import FeatureSettings, ModelSettings, ScoringSettings, SpectrogramSettings, load_descriptor
from rainforest.detect.scoring import EmbeddingScorer, make_scorer
from rainforest.embedding import (
    EMBEDDING_MODELS,
    NoEmbedding,
    OnnxEmbedder,
    check_same_model,
    embed_window_sets,
    fit_windows,
    load_embedding_model,
)
from rainforest.errors import ConfigError, ModelError
from rainforest.model import build_model
from rainforest.window_sets import read_window_attrs
from tests.support.onnx_model import DESCRIPTOR, DIMENSION, SAMPLE_RATE, reference_embeddings, write_tiny_model
from tests.support.windows import window_scores, write_window_set

pytest.importorskip("onnxruntime", reason="needs the onnx extra (make setup-onnx)")

WINDOW = round(SAMPLE_RATE * DESCRIPTOR["window_seconds"])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("onnx") / "embedding_models" / "tiny.onnx")


@pytest.fixture(scope="module")
def embedder(model_file):
    return OnnxEmbedder(file=model_file, threads=2)


@pytest.fixture(scope="module")
def windows():
    """19 windows of tones in noise: 2 full batches of OnnxEmbedder.BATCH (8) and a short one."""
    rng = np.random.default_rng(7)
    t = np.arange(WINDOW) / SAMPLE_RATE
    tones = np.sin(2 * np.pi * rng.uniform(300, 6000, (19, 1)) * t) * rng.uniform(0.01, 0.5, (19, 1))
    return (tones + 0.02 * rng.standard_normal((19, WINDOW)) + 0.1).astype(np.float32)


def descriptor_with(tmp_path, **changes):
    """A copy of the tiny model in ``tmp_path`` with descriptor fields changed."""
    return write_tiny_model(tmp_path / "tiny.onnx", descriptor={**DESCRIPTOR, **changes})


def test_the_registry_holds_every_model_and_none():
    assert EMBEDDING_MODELS == {
        "none": NoEmbedding,
        "birdnet-v2.4": EMBEDDING_MODELS["birdnet-v2.4"],
        "onnx": OnnxEmbedder,
    }
    none = load_embedding_model("none")
    assert none.info is None and none.card() is None
    with pytest.raises(ConfigError, match=r"embedding\.model onnx needs embedding\.onnx_file"):
        load_embedding_model("onnx")


def test_embeddings_are_the_graphs_own_output(embedder, model_file, windows):
    embeddings = embedder.embed(windows)
    assert embeddings.shape == (19, DIMENSION) and embeddings.dtype == np.float32
    # onnx's reference evaluator runs the graph in numpy: the same numbers up to float32 rounding.
    expected = reference_embeddings(model_file, embedder.preprocess(windows))
    np.testing.assert_allclose(embeddings, expected, rtol=1e-5, atol=1e-5)
    assert np.ptp(embeddings, axis=0).min() > 0.1  # not a constant: the windows differ


def test_preprocessing_removes_the_mean_then_scales_the_peak(embedder, windows):
    prepared = embedder.preprocess(windows)
    np.testing.assert_allclose(prepared.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(np.abs(prepared).max(axis=1), 0.25, rtol=1e-6)
    silence = embedder.preprocess(np.zeros((2, WINDOW), np.float32))
    assert not silence.any()


def test_embeddings_do_not_depend_on_batch_size_or_threads(embedder, model_file, windows):
    together = embedder.embed(windows)
    one_by_one = np.concatenate([embedder.embed(windows[i : i + 1]) for i in range(len(windows))])
    in_threes = np.concatenate([embedder.embed(windows[i : i + 3]) for i in range(0, len(windows), 3)])
    one_thread = OnnxEmbedder(file=model_file, threads=1).embed(windows)
    for other in [one_by_one, in_threes, one_thread]:
        assert np.array_equal(together, other)


def test_a_model_with_a_fixed_batch_runs_in_batches_of_that_size(tmp_path, embedder, windows):
    fixed = OnnxEmbedder(file=write_tiny_model(tmp_path / "batch1.onnx", batch=1, samples=WINDOW), threads=2)
    assert fixed._batch == 1
    np.testing.assert_allclose(fixed.embed(windows), embedder.embed(windows), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("changes", "model_options", "message"),
    [
        (
            {"input": "waveform"},
            {},
            r"tiny\.yaml: input: 'waveform' is not an input of .*tiny\.onnx; its inputs: audio \['batch', 16000\]",
        ),
        (
            {"output": "logits"},
            {},
            r"tiny\.yaml: output: 'logits' is not an output of .*tiny\.onnx; its outputs: embedding .*, scores",
        ),
        (
            {"dimension": 32},
            {},
            r"tiny\.yaml: dimension: 32, but output 'embedding' of .*tiny\.onnx gives shape \[8, 16\] .*set dimension: 16",
        ),
        (
            {"sample_rate": 48000},
            {},
            r"tiny\.yaml: window_seconds 1\.0 at sample_rate 48000 is 48000 samples, but .*tiny\.onnx's input 'audio' "
            r"takes 16000 per window; correct sample_rate or window_seconds",
        ),
        (
            {"sha256": "0" * 64},
            {},
            r"tiny\.onnx has SHA-256 [0-9a-f]{64}, but .*tiny\.yaml says sha256: 0{64}",
        ),
    ],
    ids=["input name", "output name", "output size", "rate", "file hash"],
)
def test_a_wrong_descriptor_fails_naming_the_field(tmp_path, changes, model_options, message):
    path = write_tiny_model(tmp_path / "tiny.onnx", descriptor={**DESCRIPTOR, **changes}, **model_options)
    with pytest.raises(ModelError, match=message):
        OnnxEmbedder(file=path)


def test_a_wrong_rate_on_a_model_that_takes_any_length_fails_on_load(tmp_path):
    # Without a fixed input length, the window of silence run on load finds it, not the embed stage.
    path = write_tiny_model(tmp_path / "tiny.onnx", descriptor={**DESCRIPTOR, "sample_rate": 44100}, samples="samples")
    with pytest.raises(
        ModelError,
        match=r"tiny\.yaml: .*tiny\.onnx cannot run on windows of window_seconds 1\.0 at "
        r"sample_rate 44100, 44100 samples \(.*\); check those two fields",
    ):
        OnnxEmbedder(file=path)
    write_tiny_model(path, samples="samples")
    assert OnnxEmbedder(file=path).embed(np.zeros((1, WINDOW), np.float32)).shape == (1, DIMENSION)


def test_an_invalid_or_missing_descriptor_names_the_file_and_each_field(tmp_path, model_file):
    path = descriptor_with(tmp_path, dimension=-3, colour="blue")
    with pytest.raises(ConfigError) as error:
        OnnxEmbedder(file=path)
    message = str(error.value)
    assert message.startswith(f"{path.with_suffix('.yaml')}: 2 invalid setting(s):")
    assert "dimension: Input should be greater than 0" in message
    assert "colour: unknown key; check its spelling against docs/model.md" in message
    path.with_suffix(".yaml").unlink()
    with pytest.raises(ConfigError, match=r"tiny\.yaml: descriptor of an ONNX embedding model not found; write it"):
        OnnxEmbedder(file=path)
    assert load_descriptor(model_file.with_suffix(".yaml")).licence == DESCRIPTOR["licence"]


def test_a_file_that_is_not_onnx_or_not_there_is_named(tmp_path):
    path = descriptor_with(tmp_path)
    path.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"tiny\.onnx: not an ONNX model onnxruntime can load"):
        OnnxEmbedder(file=path)
    with pytest.raises(ModelError, match=r"absent\.onnx: ONNX embedding model not found; put it"):
        OnnxEmbedder(file=tmp_path / "absent.onnx")


def test_without_the_extra_selecting_onnx_says_what_to_install(monkeypatch, model_file):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what import finds when the package is absent
    with pytest.raises(ModelError, match=r"needs the optional onnx extra \(onnxruntime\): run `make setup-onnx`"):
        load_embedding_model("onnx", onnx_file=model_file)


def test_embedding_files_carry_the_models_card(tmp_path, model_file, embedder):
    # 1.5 s windows at 32 kHz: resampled to 16 kHz, then cropped to the model's 1 s.
    rng = np.random.default_rng(3)
    waveforms = (0.1 * rng.standard_normal((70, 48_000))).astype(np.float32)
    write_window_set(tmp_path / "windows.h5", waveforms, 32_000)
    embed_window_sets({tmp_path / "windows.h5": tmp_path / "embeddings.h5"}, model="onnx", onnx_file=model_file)
    with h5py.File(tmp_path / "embeddings.h5", "r") as file:
        embeddings = file["embeddings"][:]
        attrs = dict(file.attrs)
    assert np.array_equal(embeddings, embedder.embed(fit_windows(waveforms, 32_000, embedder.info)))
    assert json.loads(attrs["descriptor"]) == load_descriptor(model_file.with_suffix(".yaml")).model_dump()
    # What train puts on the model's card (rainforest.training.model_card).
    card = EmbeddingCard.from_attrs(read_window_attrs(tmp_path / "embeddings.h5"))
    assert card == embedder.card()
    assert (card.model, card.licence, card.file) == ("onnx", DESCRIPTOR["licence"], model_file.as_posix())
    # The card travels in the model archive as JSON and comes back the same.
    features = FeatureSettings(n_fft=512, hop_length=256, n_mels=8, fmin=0.0, fmax=8000.0, window_seconds=1.5)
    model = ModelCard(SpectrogramSettings(32_000, features), ["s0", "s1"], card)
    assert ModelCard.from_json(model.to_json()).embedding == card


def test_birdnet_cards_keep_their_three_fields():
    card = EmbeddingCard("birdnet-v2.4", "a" * 64, "CC BY-NC-SA 4.0")
    assert card.to_attrs() == {"model": "birdnet-v2.4", "sha256": "a" * 64, "licence": "CC BY-NC-SA 4.0"}
    assert EmbeddingCard.from_attrs(card.to_attrs()) == card


def test_inference_refuses_another_file_or_descriptor(tmp_path, embedder, model_file):
    trained = embedder.card()
    check_same_model(OnnxEmbedder(file=model_file), trained)
    other = write_tiny_model(tmp_path / "other.onnx", seed=1)
    with pytest.raises(ModelError, match=rf"SHA-256 {trained.sha256}, but the one loaded \(.*other\.onnx\) has"):
        check_same_model(OnnxEmbedder(file=other), trained)
    edited = descriptor_with(tmp_path, preprocessing={"remove_mean": True, "peak": 0.5})
    with pytest.raises(ModelError, match=r"differs from the one the model was trained with in preprocessing .*now"):
        check_same_model(OnnxEmbedder(file=edited), trained)


def test_the_scorer_embeds_each_window_with_the_file_model(tmp_path, embedder, model_file, windows):
    settings = ModelSettings(
        architecture="embedding_head", frequency_channel=False, filters=[4], dense_units=4, dropout=0.0
    )
    head = build_model(settings, (DIMENSION,), 3, mean=np.zeros(DIMENSION), variance=np.ones(DIMENSION))
    features = FeatureSettings(n_fft=512, hop_length=256, n_mels=8, fmin=0.0, fmax=8000.0, window_seconds=1.0)
    card = ModelCard(SpectrogramSettings(SAMPLE_RATE, features), ["s0", "s1", "s2"], embedder.card())
    # The file moved since training: --embedding-model says where.
    moved = tmp_path / "moved.onnx"
    moved.write_bytes(model_file.read_bytes())
    moved.with_suffix(".yaml").write_text(yaml.safe_dump(DESCRIPTOR))
    scorer = make_scorer(head, card, embedding_file=moved)
    assert isinstance(scorer, EmbeddingScorer) and scorer.embedder.file == moved
    recording = np.concatenate(windows[:3])
    starts, scores = window_scores(scorer, recording, scoring=ScoringSettings(hop_seconds=1.0, batch_size=2))
    np.testing.assert_allclose(starts, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(scores, np.asarray(head(embedder.embed(windows[:3]))), atol=1e-6)
