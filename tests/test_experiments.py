"""Tests of rainforest.experiments: the model comparison command."""

from __future__ import annotations

import pytest

from rainforest.config import settings_from_dict
from rainforest.experiments import (
    BASELINE,
    CNN_HOLDOUT,
    CONFIGURATIONS,
    EMBEDDING_HEAD,
    EMBEDDING_LINEAR,
    REFIT,
    format_table,
    overrides_for,
    parse_arguments,
    plan,
)
from tests.support.paths import XC_BIRDS, committed_params
from tests.support.project import with_setting

PARAMS = committed_params()


def _apply(params: dict, overrides: dict) -> dict:
    """``params`` with dotted-key ``overrides`` (as dvc exp run --set-param takes them)."""
    for dotted, value in overrides.items():
        params = with_setting(params, dotted, value)
    return params


def test_names_default_to_all_with_the_committed_model_last(tmp_path, monkeypatch):
    (tmp_path / "data/demo").mkdir(parents=True)
    (tmp_path / "data/demo/sample_submission.csv").write_text("recording_id,s0\n")
    monkeypatch.chdir(tmp_path)
    assert parse_arguments([]) == (
        [
            "baseline",
            "cnn-holdout",
            "cnn-last-epoch",
            "cnn-ensemble",
            "cnn-refit",
            "embedding",
            "embedding-linear",
            "embedding-dense",
            "embedding-ensemble",
            "cnn",
        ],
        {"demo": "data/demo"},
        None,
    )
    assert parse_arguments(["cnn", "baseline"])[0] == ["baseline", "cnn"]
    assert parse_arguments(["cnn", "--seeds", "3", "4", "3"])[2] == [3, 4]
    with pytest.raises(SystemExit):
        parse_arguments(["cnn", "--seeds", "three"])
    with pytest.raises(SystemExit):
        parse_arguments(["resnet50"])
    with pytest.raises(SystemExit):  # not a dataset
        parse_arguments(["--datasets", f"nowhere={tmp_path / 'nowhere'}"])
    with pytest.raises(SystemExit):
        parse_arguments(["--datasets", "no-equals-sign"])


def test_plan_runs_the_committed_model_on_the_committed_dataset_and_seed_last():
    datasets = {"demo": "data/demo", "xc": "../shared/real/xc_birds"}
    order = plan(["baseline", "embedding", "cnn"], datasets, "data/demo", [7], 7)
    assert order[-1] == ("demo", "cnn", 7) and len(order) == 6 and len(set(order)) == 6
    seeded = plan(["cnn"], datasets, "data/demo", [3, 7, 9], 7)
    assert seeded[-1] == ("demo", "cnn", 7) and len(seeded) == len(set(seeded)) == 6


def test_every_run_sets_the_seed_and_the_committed_run_puts_it_back():
    assert overrides_for("cnn", PARAMS, seed=3)["train.seed"] == 3
    assert overrides_for("cnn", PARAMS)["train.seed"] == PARAMS["train"]["seed"]


def test_baseline_is_the_original_approach_and_valid_settings():
    settings = settings_from_dict(_apply(PARAMS, overrides_for("baseline", PARAMS)))
    assert settings.model.architecture == "baseline" and settings.model.filters == [16, 32]
    assert settings.train.loss == "softmax_crossentropy" and settings.train.optimizer == "adam"
    assert (settings.train.epochs, settings.train.batch_size) == (25, 16)
    assert not settings.train.use_false_positives and not settings.train.use_augmented
    assert settings.train.mixup_alpha == 0 and settings.train.spec_augment.time_masks == 0


def test_embedding_head_reads_birdnet_windows_as_they_are():
    settings = settings_from_dict(_apply(PARAMS, overrides_for("embedding", PARAMS, str(XC_BIRDS))))
    assert settings.model.architecture == "embedding_head" and settings.embedding.model == "birdnet-v2.4"
    assert settings.features.window_seconds == 3.0 == settings.submit.hop_seconds
    assert settings.data.dataset_dir == XC_BIRDS


def test_the_linear_and_dense_heads_differ_from_the_committed_auto_head_only_in_the_head():
    auto = settings_from_dict(_apply(PARAMS, overrides_for("embedding", PARAMS)))
    assert auto.model.head == "auto" == PARAMS["model"]["head"]
    for name, head in [("embedding-linear", "linear"), ("embedding-dense", "dense")]:
        chosen = settings_from_dict(_apply(PARAMS, overrides_for(name, PARAMS)))
        assert chosen.model.head == head
        assert chosen.model_copy(update={"model": auto.model}) == auto
    assert EMBEDDING_LINEAR == {**EMBEDDING_HEAD, "model.head": "linear"}


def test_the_holdout_configuration_only_changes_the_folds():
    holdout = settings_from_dict(_apply(PARAMS, overrides_for("cnn-holdout", PARAMS)))
    assert holdout.split.folds == 1 and PARAMS["split"]["folds"] == "auto"
    assert holdout.model_copy(update={"split": settings_from_dict(PARAMS).split}) == settings_from_dict(PARAMS)


def test_committed_model_sets_every_overridden_key_back_to_the_committed_value():
    committed = overrides_for("cnn", PARAMS)
    assert set(committed) == (
        set(BASELINE) | set(EMBEDDING_LINEAR) | set(CNN_HOLDOUT) | set(REFIT) | {"data.dataset_dir", "train.seed"}
    )
    assert CONFIGURATIONS["cnn"] == {}
    assert settings_from_dict(_apply(PARAMS, committed)) == settings_from_dict(PARAMS)


def test_table_has_a_row_per_configuration_and_scores_and_speeds_by_hop():
    row = {
        "dataset": "demo",
        "name": "cnn",
        "seed": 7,
        "validation_lwlrap": 0.8,
        "test_lwlrap": 0.9,
        "test_macro_ap": 0.85,
        "train_seconds": 400.0,
        "folds": 1,
        "speeds": {1.0: 700.4},
        "hop_lwlrap": {1.0: 0.9},
        "parameters": 134000,
    }
    head = {
        **row,
        "name": "embedding",
        "folds": 5,
        "speeds": {3.0: 61.2, 1.5: 30.4},
        "hop_lwlrap": {3.0: 0.9, 1.5: 0.95},
    }
    bare = {"dataset": "demo", "name": "bare BirdNET v2.4", "speeds": {3.0: 64.6}}
    lines = format_table([row, head, bare]).splitlines()
    assert len(lines) == 5
    assert lines[2] == "| demo | cnn | 1 | 7 | 0.800 | 0.900 | 0.850 | 400 s | 1 s: 0.900, 700 /s | 134,000 |"
    assert lines[3].startswith("| demo | embedding | 5 | 7 |")
    assert "| 3 s: 0.900, 61 /s; 1.5 s: 0.950, 30 /s |" in lines[3]
    assert lines[4] == "| demo | bare BirdNET v2.4 | | | | | | | 3 s: 65 /s | |"


def test_seeds_of_one_configuration_make_one_row_with_mean_and_spread():
    runs = [
        {
            "dataset": "xc",
            "name": "cnn",
            "seed": seed,
            "validation_lwlrap": v,
            "test_lwlrap": t,
            "test_macro_ap": 0.5,
            "train_seconds": s,
            "folds": 5,
            "speeds": {1.0: 600.0},
            "hop_lwlrap": {1.0: t},
            "parameters": 132202,
        }
        for seed, v, t, s in [(3, 0.921, 0.895, 145.0), (4, 0.921, 0.894, 78.0), (5, 0.846, 0.837, 100.0)]
    ]
    lines = format_table(runs).splitlines()
    assert len(lines) == 3
    assert lines[2] == (
        "| xc | cnn | 5 | 3, 4, 5 | 0.896 ± 0.043 | 0.875 ± 0.033 | 0.500 ± 0.000 | 108 s | "
        "1 s: 0.875 ± 0.033, 600 /s | 132,202 |"
    )


def test_the_mean_of_the_cnn_and_a_head_is_scored_on_the_test_labels(tmp_path):
    from rainforest.experiments import mean_of_models

    (tmp_path / "set").mkdir()
    (tmp_path / "set/sample_submission.csv").write_text("recording_id,s0,s1\nr0,0,0\nr1,0,0\n")
    (tmp_path / "set/test_ground_truth.csv").write_text(
        "recording_id,species_id,songtype_id,t_min,f_min,t_max,f_max\nr0,0,1,1.0,100.0,2.0,900.0\nr1,1,1,1.0,100.0,2.0,900.0\n"
    )

    def run(name, seed, r0, r1):
        return {
            "dataset": "x",
            "name": name,
            "seed": seed,
            "folds": 5,
            "train_seconds": 10.0,
            "speeds": {1.0: 100.0},
            "parameters": 7,
            "submission": f"recording_id,s0,s1\nr0,{r0[0]},{r0[1]}\nr1,{r1[0]},{r1[1]}\n",
        }

    # Each model alone ranks one recording wrong; their mean ranks both right.
    rows = [run("cnn", 3, (0.9, 0.1), (0.6, 0.4)), run("embedding-linear", 3, (0.4, 0.6), (0.1, 0.9))]
    rows.append(run("embedding-linear", 4, (0.4, 0.6), (0.1, 0.9)))  # no cnn run with seed 4: no mean
    (mean,) = mean_of_models(rows, {"x": "set"}, tmp_path)
    assert mean["name"] == "mean of cnn and embedding-linear" and mean["seed"] == 3
    assert mean["test_lwlrap"] == 1.0 and mean["train_seconds"] == 20.0 and mean["speeds"] == {"both": 50.0}
    line = format_table([mean]).splitlines()[2]
    assert line.startswith("| x | mean of cnn and embedding-linear | 5 | 3 |  | 1.000 |")
    assert "| both: 1.000, 50 /s |" in line
