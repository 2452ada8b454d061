"""Pseudo-label rounds from params.yaml through ``dvc repro``, with the real ``dvc``.

The tiny project (:data:`tests.support.project.TINY`) with one round, a pool
of its test recordings (the competitions' opt-in, so that the tiny
recordings, which their calls fill, leave a pool at all) and cut-offs a
one-epoch model reaches: the round's model, labels and figures are DVC
outputs, a rerun gives them byte for byte, and a round's setting reruns
train and what follows it, not the pool.
"""

import json

import pandas as pd
import pytest
import yaml

from benchmarks.project import make_project, merge, run
from rainforest.pseudo_labels import PSEUDO_LABEL_COLUMNS
from rainforest.submit import TRANSDUCTIVE
from tests.support.project import TINY, commit, differing, output_files, with_setting

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

SETTINGS = merge(
    TINY,
    {
        "pseudo_label": {
            "rounds": 1,
            "use_test_recordings": True,
            # A one-epoch model's scores stay near 0.5: cut-offs it reaches.
            "positive_score": 0.5,
            "absence_score": 0.49,
            "max_per_species": 3,
        }
    },
)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("rounds") / "project", SETTINGS)
    run(["dvc", "repro"], project, timeout=900)
    commit(project, "run")
    return project


def test_each_rounds_model_labels_and_figures_are_outputs(project):
    pool = json.loads((project / "metrics/pool.json").read_text())
    assert pool["windows"] > 0 and pool["recordings"] == 24 + 3 and pool["skipped"] == 0
    rounds = json.loads((project / "metrics/rounds.json").read_text())
    assert list(rounds) == ["round_0", "round_1"] and set(rounds["round_0"]) == {"lwlrap"}
    labels = pd.read_csv(project / "data/pseudo_labels.csv", dtype={"recording_id": str})
    assert list(labels.columns) == PSEUDO_LABEL_COLUMNS and len(labels)
    assert (labels["round"] == 1).all() and labels["recording_id"].str.startswith("test/").all()
    assert rounds["round_1"]["positives"] == (labels["label"] == "present").sum()
    assert rounds["round_1"]["absences"] == (labels["label"] == "absent").sum()
    # Each species' labels within the cap, positives at or above the cut-off.
    assert labels.groupby(["species", "label"]).size().max() <= SETTINGS["pseudo_label"]["max_per_species"]
    assert (labels.loc[labels["label"] == "present", "score"] >= 0.5).all()
    # The last round's model is the model; every earlier one is kept beside it.
    models = sorted(path.name for path in (project / "models/rounds").iterdir())
    assert models == ["round_0.keras", "round_1.keras"]
    assert (project / "models/rounds/round_1.keras").read_bytes() == (project / "models/model.keras").read_bytes()
    test = json.loads((project / "metrics/test.json").read_text())
    assert test["rounds"]["round_1"]["test_lwlrap"] == test["lwlrap"]
    assert test["transductive"] == TRANSDUCTIVE
    table = pd.read_csv(project / "metrics/rounds.csv")
    assert table["round"].tolist() == [0, 1]
    assert table["test_lwlrap"].round(6).tolist() == [
        round(test["rounds"][f"round_{n}"]["test_lwlrap"], 6) for n in range(2)
    ]
    assert table["validation_lwlrap"].tolist() == [rounds[f"round_{n}"]["lwlrap"] for n in range(2)]


def test_the_rounds_figures_are_side_by_side_in_dvc_metrics_and_plots(project):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    metrics = next(iter(shown.values()))["data"]
    assert metrics["metrics/rounds.json"]["data"]["round_1"]["lwlrap"] is not None
    assert "round_1" in metrics["metrics/test.json"]["data"]["rounds"]
    plots = run(["dvc", "plots", "show", "--json"], project).stdout
    assert "LWLRAP by pseudo-label round" in plots


def test_retraining_gives_every_round_byte_for_byte(project):
    before = output_files(project)
    run(["dvc", "repro", "--force", "--single-item", "train"], project, timeout=900)
    assert differing(before, output_files(project)) == []
    assert "up to date" in run(["dvc", "status"], project).stdout


def test_a_rounds_setting_reruns_train_and_what_follows_and_undoing_it_restores_them(project):
    before = output_files(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    (project / "params.yaml").write_text(yaml.safe_dump(with_setting(params, "pseudo_label.weight", 0.25)))
    log = run(["dvc", "repro"], project, timeout=900).stdout
    ran = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}
    assert ran == {"check", "train", "evaluate", "submit"}
    assert "data/pseudo_labels.csv" in differing(before, output_files(project)) or "models/model.keras" in differing(
        before, output_files(project)
    )
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    log = run(["dvc", "repro"], project, timeout=900).stdout
    assert "Running stage 'train'" not in log, log
    assert differing(before, output_files(project)) == []
