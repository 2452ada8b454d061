"""Experiments in parallel: ``dvc exp run --queue`` and ``dvc queue start -j 2``.

A parameter grid is queued on a tiny copy of the pipeline, run by two queue
workers side by side, and compared with ``dvc exp show``, as
docs/metrics.md shows it.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from benchmarks.project import make_project, project_env, run

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

TINY = {
    "demo": {"n_train_recordings": 30, "n_test_recordings": 4, "duration_seconds": 10.0},
    "train": {"epochs": 2, "batch_size": 16},
}
GRID = [1, 3]  # train.epochs of each queued experiment


def _experiments(project) -> dict[str, dict]:
    # Experiment name -> its params.yaml values and metrics, from dvc exp show.
    rows = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    found = {}
    for row in rows:
        for experiment in row.get("experiments") or []:
            for revision in experiment["revs"]:
                data = revision.get("data") or {}
                if revision.get("name"):
                    found[revision["name"]] = data
    return found


def test_a_queued_grid_runs_on_two_workers(tmp_path):
    project = make_project(tmp_path / "project", TINY)
    run(["dvc", "repro"], project, timeout=900)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline run"], project)
    run(["dvc", "exp", "run", "--queue", "-S", f"train.epochs={','.join(map(str, GRID))}"], project)
    queued = run(["dvc", "queue", "status"], project).stdout
    assert queued.count("Queued") == len(GRID), queued

    # Not through run(): the queue's workers outlive the command and hold any
    # pipe it is given, so capturing its output would wait for the whole queue.
    subprocess.run(
        ["dvc", "queue", "start", "-j", "2"],
        cwd=project,
        env=project_env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=120,
    )
    deadline, running_seen, statuses = time.monotonic() + 900, 0, []
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], project).stdout
        statuses.append(status)
        running_seen = max(running_seen, status.count("Running"))
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the queue did not finish in 15 minutes:\n{status}")
    assert status.count("Success") == len(GRID), status
    assert running_seen == 2, "the experiments never ran side by side:\n" + "\n".join(statuses)

    experiments = _experiments(project)
    assert len(experiments) == len(GRID), experiments.keys()
    epochs = sorted(data["params"]["params.yaml"]["data"]["train"]["epochs"] for data in experiments.values())
    assert epochs == GRID
    for data in experiments.values():
        test = data["metrics"]["metrics/test.json"]["data"]
        assert test["recordings"] == TINY["demo"]["n_test_recordings"]
        assert 0.0 <= test["lwlrap"] <= 1.0
    # The workspace is untouched: its params are still the committed ones.
    assert run(["git", "status", "--porcelain"], project).stdout == ""
