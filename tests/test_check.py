"""Stage check: a bad setting stops the run before DVC removes any stage's outputs.

DVC deletes a stage's outputs before it runs the stage's command, so a stage
that refused a bad setting itself would already have lost them. On a tiny copy
of the pipeline, run once and committed, a bad ``dvc exp run -S`` and a
``dvc repro`` after a bad edit stop at ``check`` with the settings' message;
every output of the earlier run is still there with the same bytes, ``dvc
status`` names nothing but the changed params, and ``git checkout params.yaml``
brings back a workspace that is up to date.
"""

from __future__ import annotations

import re

import pytest
import yaml

from benchmarks.project import make_project, run
from tests.support.project import TINY, commit, differing, output_files, with_setting

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

#: Seconds any one dvc command may take before the test fails.
TIMEOUT = 600


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = make_project(tmp_path_factory.mktemp("check") / "project", TINY)
    run(["dvc", "repro"], path, timeout=TIMEOUT)
    commit(path, "the tiny run")
    return path, output_files(path)


def assert_refused_with_everything_in_place(path, outputs, result, message: str, changed: dict[str, list[str]]) -> None:
    log = result.stdout + result.stderr
    assert result.returncode != 0, log
    assert re.findall(r"Running stage '([^']+)'", log) == ["check"], log
    assert f"check: error: params.yaml: 1 invalid setting(s):\n  {message}" in log
    assert "Traceback" not in log
    assert differing(outputs, output_files(path)) == [], "an output changed or went missing"
    # dvc status: the changed settings, as changed deps, and nothing else (no output deleted or modified).
    status = yaml.safe_load(run(["dvc", "status", "--json"], path, timeout=TIMEOUT).stdout)
    assert set(status) == set(changed), status
    for stage, entries in status.items():
        assert entries == [{"changed deps": {"params.yaml": dict.fromkeys(changed[stage], "modified")}}]
    run(["git", "checkout", "params.yaml"], path)
    assert "Data and pipelines are up to date." in run(["dvc", "status"], path, timeout=TIMEOUT).stdout


def test_a_bad_dvc_exp_run_set_param_leaves_every_output(project):
    path, outputs = project
    result = run(["dvc", "exp", "run", "-S", "model.architecture=embedding_head"], path, check=False, timeout=TIMEOUT)
    assert_refused_with_everything_in_place(
        path,
        outputs,
        result,
        "model.architecture (embedding_head) and embedding.model (none) disagree",
        {"check": ["model"], "train": ["model"]},
    )


def test_a_bad_edit_stops_dvc_repro_before_etl(project):
    # etl and pool read features: without check, DVC would delete their outputs before they refused the setting.
    path, outputs = project
    params = yaml.safe_load((path / "params.yaml").read_text())
    (path / "params.yaml").write_text(yaml.safe_dump(with_setting(params, "features.n_mels", 0), sort_keys=False))
    result = run(["dvc", "repro"], path, check=False, timeout=TIMEOUT)
    assert_refused_with_everything_in_place(
        path, outputs, result, "features.n_mels", {"check": ["features"], "etl": ["features"], "pool": ["features"]}
    )
