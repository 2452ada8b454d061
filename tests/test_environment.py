"""Stage commands work whichever way DVC is started.

DVC runs ``python stages/<name>.py`` with the first ``python`` on PATH. A user
who runs ``.venv/bin/dvc repro`` without activating the environment gets
another Python, one without the project: the stage must then rerun itself
with the project's ``.venv/bin/python``, or say what to do.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.paths import ROOT

STAGES = sorted(path.stem for path in (ROOT / "stages").glob("[!_]*.py"))
PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A Python with nothing installed, like the system's."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    found = subprocess.run(
        [python, "-c", "import importlib.util; print(importlib.util.find_spec('rainforest'))"],
        capture_output=True,
        text=True,
        check=True,
        env=_without_project_path(),
        cwd=venv,
    )
    assert found.stdout.strip() == "None"
    return python


def _without_project_path() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in {"PYTHONPATH", "VIRTUAL_ENV"}}


def _project(tmp_path: Path, with_venv: bool) -> Path:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "stages", project / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    if with_venv:
        # The environment this test runs in stands for the project's .venv.
        (project / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return project


def _run_stage(python: Path, project: Path, stage: str) -> subprocess.CompletedProcess:
    # Exactly what DVC does (the stage's command in dvc.yaml), with a `python`
    # first on PATH that lacks the project.
    env = {**_without_project_path(), "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    command = shlex.split(PIPELINE[stage]["cmd"])
    assert command[:2] == ["python", f"stages/{stage}.py"]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120)


def test_every_stage_script_imports_the_environment_check_first():
    for stage in STAGES:
        tree = (ROOT / "stages" / f"{stage}.py").read_text().split('"""', 2)[2]
        first_import = next(line for line in tree.splitlines() if line.startswith(("import ", "from ")))
        assert first_import.startswith("import _environment"), stage


# Slow: the stages that import TensorFlow take 5 s or more each.
@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_stage_reruns_itself_with_the_project_python(bare_python, tmp_path, stage):
    if Path(sys.prefix).resolve() == Path(sys.base_prefix).resolve():
        pytest.fail("run the tests in the project's virtual environment (make test)")
    result = _run_stage(bare_python, _project(tmp_path, with_venv=True), stage)
    # No params.yaml here: the message comes from the project's own settings
    # check, so the stage ran with the project's Python.
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().endswith(
        f"{stage}: error: params.yaml: settings file not found; run from the project root"
    )
    assert "Traceback" not in result.stderr


def test_stage_without_a_project_python_says_what_to_run(bare_python, tmp_path):
    result = _run_stage(bare_python, _project(tmp_path, with_venv=False), "split")
    assert result.returncode == 1
    assert "split: error: the rainforest package is not installed for" in result.stderr
    assert "make setup" in result.stderr and ". .venv/bin/activate" in result.stderr
    assert "Traceback" not in result.stderr
