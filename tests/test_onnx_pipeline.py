"""A user's ONNX embedding model through every stage and rainforest-detect, with the real ``dvc``.

The tiny project (:data:`tests.support.project.TINY`) with ``embedding.model:
onnx`` and the tiny ONNX model of :mod:`tests.support.onnx_model` in its
``embedding_models/``: embed, train (both heads, as ``model.head: auto`` fits
them), evaluate, submit and rainforest-detect run on it; editing the
descriptor reruns the embeddings and what follows, and putting it back gives
the same outputs byte for byte.
"""

import re
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from benchmarks.project import make_project, merge, run
from rainforest.card import load_card
from rainforest.embedding import OnnxEmbedder, fit_windows
from tests.support.onnx_model import DESCRIPTOR, write_tiny_model
from tests.support.project import TINY, output_files

pytest.importorskip("onnxruntime", reason="needs the onnx extra (make setup-onnx)")
pytestmark = [pytest.mark.dvc, pytest.mark.slow]

ONNX_FILE = "embedding_models/tiny.onnx"
SETTINGS = merge(
    TINY, {"embedding": {"model": "onnx", "onnx_file": ONNX_FILE}, "model": {"architecture": "embedding_head"}}
)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("onnx") / "project", SETTINGS)
    write_tiny_model(project / ONNX_FILE)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "the tiny ONNX embedding model"], project)
    log = run(["dvc", "repro"], project, timeout=900)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "run"], project)
    return project, log.stdout + log.stderr


def test_every_stage_runs_on_the_onnx_models_embeddings(project):
    project, log = project
    card = load_card(project / "models/model.keras").embedding
    assert (card.model, card.file, card.licence) == ("onnx", ONNX_FILE, DESCRIPTOR["licence"])
    assert card.descriptor["output"] == "embedding" and card.descriptor["preprocessing"]["peak"] == 0.25
    # Both heads trained and compared (model.head: auto).
    kept = re.search(r"model.head auto: keeping (\w+) \(out-of-fold LWLRAP linear [0-9.]+, dense [0-9.]+\)", log)
    assert kept, log
    submission = pd.read_csv(project / "data/submission.csv")
    assert len(submission) == TINY["demo"]["n_test_recordings"] and submission.shape[1] == 25
    assert (project / "metrics/test.json").is_file() and (project / "models/detector.json").is_file()


def test_the_stored_embeddings_are_the_models_own(project):
    project, _ = project
    embedder = OnnxEmbedder(file=project / ONNX_FILE, threads=1)
    with h5py.File(project / "data/features/windows.h5", "r") as windows:
        waveforms, rate = windows["waveforms"][:], int(windows.attrs["sample_rate"])
    with h5py.File(project / "data/features/window_embeddings.h5", "r") as embeddings:
        stored = embeddings["embeddings"][:]
    assert stored.shape == (len(waveforms), DESCRIPTOR["dimension"])
    assert np.array_equal(stored, embedder.embed(fit_windows(waveforms, rate, embedder.info)))


def test_detect_finds_the_model_on_its_card_or_where_it_is_told(project, tmp_path):
    project, _ = project
    test = str(project / "data/demo/test")
    run(["rainforest-detect", test, "--min-score", "0.05", "--output", "first"], project)
    detections = (project / "first/detections.csv").read_bytes()
    assert detections.count(b"\n") > 1
    elsewhere = tmp_path / "models"
    elsewhere.mkdir()
    for name in ["tiny.onnx", "tiny.yaml"]:
        shutil.copy(project / "embedding_models" / name, elsewhere / name)
    # From another folder the card's relative path does not resolve: the error says what to give.
    away = run(["rainforest-detect", test, "--model", str(project / "models/model.keras")], tmp_path, check=False)
    assert away.returncode == 1
    assert "embedding_models/tiny.onnx: the ONNX embedding model the head was trained on was not found" in away.stderr
    assert "--embedding-model" in away.stderr
    given = ["--model", str(project / "models/model.keras"), "--embedding-model", str(elsewhere / "tiny.onnx")]
    run(["rainforest-detect", test, *given, "--min-score", "0.05", "--output", "second"], tmp_path)
    assert (tmp_path / "second/detections.csv").read_bytes() == detections
    # Another file, or the same one with another descriptor, is refused.
    write_tiny_model(elsewhere / "tiny.onnx", seed=5)
    other = run(["rainforest-detect", test, *given], tmp_path, check=False)
    assert other.returncode == 1 and "but the one loaded" in other.stderr and "retrain" in other.stderr


def test_editing_the_descriptor_reruns_what_it_must_and_reverting_restores_every_byte(project):
    project, _ = project
    before = output_files(project)
    descriptor = project / "embedding_models/tiny.yaml"
    original = descriptor.read_text()
    edited = yaml.safe_load(original)
    edited["preprocessing"]["peak"] = 0.5
    descriptor.write_text(yaml.safe_dump(edited))
    status = run(["dvc", "status"], project).stdout
    assert "embed:" in status and "modified:           embedding_models" in status
    log = run(["dvc", "repro", "--no-run-cache"], project, timeout=900).stdout
    assert set(re.findall(r"Running stage '([^']+)'", log)) == {"embed", "train", "evaluate", "submit"}, log
    assert output_files(project)["data/features/window_embeddings.h5"] != before["data/features/window_embeddings.h5"]
    descriptor.write_text(original)
    run(["dvc", "repro", "--no-run-cache"], project, timeout=900)
    assert output_files(project) == before
