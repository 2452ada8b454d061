"""End to end: the real ``dvc repro`` in a fresh git repository on a tiny demo dataset.

The project's pipeline files are copied into a temporary directory, the demo
is shrunk through params.yaml, and every stage runs as a user would run it.
Then each output is checked: the HDF5 layout, the split, the model, the
metrics' fields and the submission's format.
"""

import json
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from benchmarks.project import STAGES, make_project, run

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

TINY = {
    "demo": {"n_train_recordings": 30, "n_test_recordings": 4, "duration_seconds": 10.0},
    "train": {"epochs": 2, "batch_size": 16},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = make_project(tmp_path_factory.mktemp("e2e") / "project", TINY)
    result = run(["dvc", "repro"], path)
    return path, result.stdout + result.stderr


def test_repro_runs_every_stage(project):
    _, log = project
    for stage in STAGES:
        assert f"Running stage '{stage}'" in log


def test_window_set_layout(project):
    path, _ = project
    params = yaml.safe_load((path / "params.yaml").read_text())
    features = params["features"]
    n_frames = round(features["window_seconds"] * params["audio"]["sample_rate"] / features["hop_length"])
    events = pd.concat([pd.read_csv(path / "data/demo/train_tp.csv"), pd.read_csv(path / "data/demo/train_fp.csv")])
    # etl.windows_per_event: auto, as committed: its report says how many windows each species' events got.
    per_call = json.loads((path / "metrics/etl_report.json").read_text())["windows_per_call"]
    assert set(per_call) == {f"s{i}" for i in range(24)} and max(per_call.values()) > 1  # few calls in this demo
    with h5py.File(path / "data/features/windows.h5") as file:
        n = len(file["targets"])
        background = file["event_species"][()] == -1
        # Each event's windows, plus up to etl.background_windows per recording.
        assert n - background.sum() == sum(per_call[f"s{species}"] for species in events["species_id"])
        cut = np.bincount(file["event_species"][()][~background], minlength=24)
        calls = np.bincount(events["species_id"], minlength=24)
        assert cut.tolist() == [calls[i] * per_call[f"s{i}"] for i in range(24)]
        recordings = events["recording_id"].nunique()
        assert 0 < background.sum() <= params["etl"]["background_windows"] * recordings
        assert (file["masks"][()][background] == 0).all(), "background windows have unknown labels"
        assert file["spectrograms"].shape == (n, features["n_mels"], n_frames)
        assert file["spectrograms"].dtype == np.float32
        assert np.isfinite(file["spectrograms"][()]).all()
        assert file["waveforms"].shape[0] == n
        for name in ["targets", "masks"]:
            assert file[name].shape == (n, 24)
        for name in ["recording_ids", "start_times", "end_times", "event_species", "event_present"]:
            assert file[name].shape == (n,)
        assert set(file["recording_ids"].asstr()[()]) == set(events["recording_id"].astype(str))
        targets, masks = file["targets"][()], file["masks"][()]
        assert (targets <= masks).all(), "a present label must be known"
        assert targets.sum() >= (file["event_present"][()] == 1).sum()
        assert (file["end_times"][()] > file["start_times"][()]).all()
        assert (file["start_times"][()] >= 0).all()
        assert (file["end_times"][()] <= params["demo"]["duration_seconds"] + 1e-6).all()
        for key in ["sample_rate", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "window_seconds"]:
            expected = params["audio"]["sample_rate"] if key == "sample_rate" else features[key]
            assert file.attrs[key] == expected
        assert list(file.attrs["species"]) == [f"s{i}" for i in range(24)]


def test_split_is_grouped_by_recording(project):
    path, _ = project
    split = pd.read_csv(path / "data/split.csv", dtype={"recording_id": str})
    assert list(split.columns) == ["recording_id", "fold"]
    assert split["recording_id"].is_unique
    # split.folds: auto, as committed: with 30 recordings, some species has fewer than 10, so 5 folds.
    assert set(split["fold"]) == set(range(5))


def test_cross_validation_augments_every_window(project):
    path, _ = project
    with (
        h5py.File(path / "data/features/augmented.h5") as augmented,
        h5py.File(path / "data/features/windows.h5") as windows,
    ):
        # Every recording trains the models of the four folds it is not in.
        assert augmented["recording_ids"].asstr()[()].tolist() == windows["recording_ids"].asstr()[()].tolist()
        assert augmented["spectrograms"].shape[1:] == windows["spectrograms"].shape[1:]


def test_model_and_training_log(project):
    path, log = project
    from rainforest.model import ensemble_members, load_model

    # train.final_model: auto, as committed: cross-validating, it ships one model refit on every recording.
    assert "train.final_model auto: refit (the split cross-validates)" in log
    assert "train.final_model refit: one model on every labelled recording for 2 epochs" in log
    model = load_model(path / "models/model.keras")
    assert ensemble_members(model) == [model]
    logged = json.loads((path / "metrics/train/metrics.json").read_text())
    assert logged["step"] == TINY["train"]["epochs"] - 1
    for fold in range(5):
        assert "loss" in logged[f"fold_{fold}"]["train"] and "lwlrap" in logged[f"fold_{fold}"]["eval"]
        epochs = pd.read_csv(path / f"metrics/train/plots/metrics/fold_{fold}/eval/lwlrap.tsv", sep="\t")
        assert list(epochs["step"]) == list(range(TINY["train"]["epochs"]))
    # The refit has no validation: its training loss only.
    assert set(logged["refit"]) == {"train"}
    refit = pd.read_csv(path / "metrics/train/plots/metrics/refit/train/loss.tsv", sep="\t")
    assert list(refit["step"]) == list(range(TINY["train"]["epochs"]))


def _detect_as_submit(path):
    # Each test recording's best window per species: what submit keeps, at the same hop.
    run(["rainforest-detect", "data/demo/test", "--output", "detections", "--all", "--hop-seconds", "1"], path)
    detections = pd.read_csv(path / "detections/detections.csv", dtype={"recording": str})
    submission = pd.read_csv(path / "data/submission.csv", dtype={"recording_id": str}).set_index("recording_id")
    best = detections.groupby(["recording", "species"])["score"].max().unstack()
    assert sorted(best.index) == sorted(submission.index) and len(best) == TINY["demo"]["n_test_recordings"]
    np.testing.assert_allclose(best.loc[submission.index, submission.columns], submission, atol=2e-6)


def test_rainforest_detect_scores_as_submit_does(project):
    _detect_as_submit(project[0])


def test_the_folds_ensemble_instead_of_the_refit(project, tmp_path):
    from rainforest.model import ensemble_members, load_model

    path = tmp_path / "ensemble"
    shutil.copytree(project[0], path, symlinks=True, ignore=shutil.ignore_patterns("detections"))
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["train"]["final_model"] = "ensemble"
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(["dvc", "repro"], path)
    log = result.stdout + result.stderr
    # The folds' models are the same: only the model shipped, and what reads it, change (and check
    # validates the changed settings).
    ran = {stage for stage in STAGES if f"Running stage '{stage}'" in log}
    assert ran == {"check", "train", "evaluate", "submit"}, log
    assert (path / "data/validation_scores.csv").read_bytes() == (
        project[0] / "data/validation_scores.csv"
    ).read_bytes()
    members = ensemble_members(load_model(path / "models/model.keras"))
    assert [member.name for member in members] == [f"fold_{fold}" for fold in range(5)]
    _detect_as_submit(path)


@pytest.mark.parametrize(
    "key, value, stages",
    [
        ("data.reviews_dir", "other_reviews", {"etl"}),  # submit reads data.dataset_dir only
        ("data.dataset_dir", "data/elsewhere", {"etl", "pool", "submit"}),
        ("submit.hop_seconds", 2.0, {"submit"}),
        ("train.final_model", "ensemble", {"train"}),
        ("audio.sample_rate", 44100, {"etl", "pool"}),
    ],
)
def test_a_changed_key_reruns_exactly_the_stages_that_read_it(project, key, value, stages):
    path, _ = project
    committed = (path / "params.yaml").read_text()
    params = yaml.safe_load(committed)
    section, name = key.split(".")
    params[section][name] = value
    try:
        (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        status = json.loads(run(["dvc", "status", "--json"], path).stdout)
    finally:
        (path / "params.yaml").write_text(committed)
    # The stages whose own params changed (and check, which reads every section); DVC reruns what follows
    # only if their outputs change.
    changed = {
        stage
        for stage, changes in status.items()
        if any("params.yaml" in change.get("changed deps", {}) for change in changes if isinstance(change, dict))
    }
    assert changed == stages | {"check"}, status


def test_every_labelled_window_is_scored_once_out_of_fold(project):
    path, _ = project
    scores = pd.read_csv(path / "data/validation_scores.csv")
    split = pd.read_csv(path / "data/split.csv", dtype={"recording_id": str}).set_index("recording_id")["fold"]
    with h5py.File(path / "data/features/windows.h5") as windows:
        ids = windows["recording_ids"].asstr()[()]
    assert list(scores.columns) == ["window", "fold", *[f"s{i}" for i in range(24)]]
    assert scores["window"].tolist() == list(range(len(ids)))
    # Each window scored by the model of its recording's fold: the one that never trained on it.
    assert scores["fold"].tolist() == [split[recording] for recording in ids]
    assert scores.iloc[:, 2:].stack().between(0, 1).all()


def test_validation_metrics(project):
    path, _ = project
    metrics = json.loads((path / "metrics/validation.json").read_text())
    assert set(metrics) == {"lwlrap", "macro_ap", "top1", "loss", "windows"}
    # Out of fold: every window of every labelled recording.
    with h5py.File(path / "data/features/windows.h5") as windows:
        assert metrics["windows"] == len(windows["targets"])
    for key in ["lwlrap", "macro_ap", "top1", "loss"]:
        assert 0 <= metrics[key] <= (1 if key != "loss" else 10), key
    species = pd.read_csv(path / "metrics/plots/validation_species.csv")
    assert list(species.columns) == ["species", "average_precision", "positives", "threshold", "precision", "recall"]
    assert list(species["species"]) == [f"s{i}" for i in range(24)]
    assert species["positives"].sum() > 0
    # A species without validation positives has no average precision.
    assert species["average_precision"].isna().equals(species["positives"] == 0)
    pr = pd.read_csv(path / "metrics/plots/precision_recall.csv")
    assert {"precision", "recall", "threshold"} <= set(pr.columns)
    confusion = pd.read_csv(path / "metrics/plots/confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"]


def test_etl_writes_the_labelled_events_for_evaluate(project):
    path, _ = project
    events = pd.read_csv(path / "data/features/events.csv", dtype={"recording_id": str})
    tp, fp = (pd.read_csv(path / f"data/demo/train_{kind}.csv", dtype={"recording_id": str}) for kind in ["tp", "fp"])
    assert list(events.columns) == [*tp.columns, "present"]
    assert events["present"].sum() == len(tp) and (~events["present"]).sum() == len(fp)
    pd.testing.assert_frame_equal(events[events["present"]].drop(columns="present").reset_index(drop=True), tp)


IMAGES = ["average_precision", "precision_recall_by_species", "worst_false_positives", "worst_false_negatives"]


def test_evaluate_writes_the_detector_beside_the_model(project):
    path, _ = project
    detector = json.loads((path / "models/detector.json").read_text())
    params = yaml.safe_load((path / "params.yaml").read_text())
    assert detector["target_precision"] == params["evaluate"]["target_precision"]
    assert [entry["species"] for entry in detector["species"]] == [f"s{i}" for i in range(24)]
    for entry in detector["species"]:
        assert entry["rule"] in {"target_precision", "not_reached"}
        assert (entry["threshold"] is None) == (entry["rule"] == "not_reached")
        assert entry["threshold"] is None or 0 <= entry["threshold"] <= 1
        assert 0 <= entry["low_freq_hz"] < entry["high_freq_hz"] <= 24000
    species = pd.read_csv(path / "metrics/plots/validation_species.csv")
    thresholds = {entry["species"]: entry["threshold"] for entry in detector["species"]}
    for row in species.itertuples():
        assert (pd.isna(row.threshold) and thresholds[row.species] is None) or row.threshold == pytest.approx(
            thresholds[row.species], abs=1e-6
        )


def test_evaluate_saves_images_that_dvc_plots_renders(project):
    path, log = project
    for name in IMAGES:
        data = (path / f"metrics/plots/{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, name
    shown = json.loads(run(["dvc", "plots", "show", "--json"], path).stdout)
    for name in IMAGES:
        (plot,) = shown["data"][f"metrics/plots/{name}.png"]
        assert plot["type"] == "image"
    assert "evaluate: read models/model.keras" in log and "wrote metrics/validation.json" in log


def test_detect_command_on_the_test_recordings(project):
    path, _ = project
    result = run(["rainforest-detect", "data/demo/test", "--all"], path)
    assert "Traceback" not in result.stderr
    detections = pd.read_csv(path / "detections/detections.csv", dtype={"recording": str})
    assert list(detections.columns) == ["recording", "start", "end", "species", "score"]
    sample = pd.read_csv(path / "data/demo/sample_submission.csv", dtype={"recording_id": str})
    assert set(detections["recording"]) == set(sample["recording_id"])
    detector = json.loads((path / "models/detector.json").read_text())["species"]
    band = {entry["species"]: (entry["low_freq_hz"], entry["high_freq_hz"]) for entry in detector}
    for recording in sample["recording_id"]:
        table = pd.read_csv(path / f"detections/{recording}.Table.1.selections.txt", sep="\t")
        assert len(table) == (detections["recording"] == recording).sum()
        boxes = table[["Species", "Low Freq (Hz)", "High Freq (Hz)"]].itertuples(index=False)
        assert all(band[species] == (low, high) for species, low, high in boxes)


def test_submission_format(project):
    path, _ = project
    sample = pd.read_csv(path / "data/demo/sample_submission.csv", dtype={"recording_id": str})
    submission = pd.read_csv(path / "data/submission.csv", dtype={"recording_id": str})
    assert list(submission.columns) == list(sample.columns)
    assert list(submission["recording_id"]) == list(sample["recording_id"])
    scores = submission.iloc[:, 1:].to_numpy()
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    test = json.loads((path / "metrics/test.json").read_text())
    assert set(test) == {"lwlrap", "macro_ap", "top1", "recordings"}
    assert 0 <= test["lwlrap"] <= 1
    assert test["recordings"] == TINY["demo"]["n_test_recordings"]
    species = pd.read_csv(path / "metrics/test_species.csv")
    assert list(species["species"]) == [f"s{i}" for i in range(24)]
    assert ((species["average_precision"].dropna() >= 0) & (species["average_precision"].dropna() <= 1)).all()


def test_second_repro_runs_nothing(project):
    path, _ = project
    log = run(["dvc", "repro"], path).stdout
    assert "Running stage" not in log
    assert "up to date" in run(["dvc", "status"], path).stdout


def test_dvc_metrics_and_plots_commands(project):
    path, _ = project
    shown = run(["dvc", "metrics", "show", "--json"], path).stdout
    assert "lwlrap" in shown
    run(["dvc", "plots", "show", "-o", str(path / "plots_html")], path)
    assert (path / "plots_html" / "index.html").exists()
