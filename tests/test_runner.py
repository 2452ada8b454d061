"""What every stage shares (rainforest.runner): only its declared settings, its usage, clean errors."""

from __future__ import annotations

import doctest
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import rainforest.detect.scoring
import rainforest.parallel
import rainforest.runner
import rainforest.spectrogram
from rainforest.config import load_settings
from rainforest.errors import ConfigError
from rainforest.runner import StageSettings, declared_params
from tests.support.paths import PARAMS_PATH, ROOT

PROBE = '''"""Stage probe: reads one settings section.

Usage: python stages/probe.py SECTION
"""

import _environment  # noqa: F401

from rainforest.runner import run_stage


def main(settings, section):
    print(getattr(settings, section))


if __name__ == "__main__":
    run_stage("probe", main)
'''


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def probe_project(tmp_path: Path) -> Path:
    # A project whose dvc.yaml declares the probe stage's params: split only.
    (tmp_path / "stages").mkdir()
    shutil.copy(ROOT / "stages" / "_environment.py", tmp_path / "stages")
    (tmp_path / "stages" / "probe.py").write_text(PROBE)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"probe": {"cmd": "x", "params": ["split"]}}}))
    shutil.copy(PARAMS_PATH, tmp_path / "params.yaml")
    return tmp_path


def test_a_stage_reads_its_declared_params(probe_project):
    result = _run(["stages/probe.py", "split"], probe_project)
    assert result.returncode == 0, result.stderr
    assert "seed=7" in result.stdout and "validation_fraction=0.2" in result.stdout


def test_a_stage_cannot_read_an_undeclared_section(probe_project):
    result = _run(["stages/probe.py", "train"], probe_project)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "probe: error: stage probe reads the params section 'train', which dvc.yaml does not declare for it; "
        "add `- train` to its params in dvc.yaml"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("arguments", [[], ["a", "b", "c"]], ids=["too few", "too many"])
def test_a_stage_called_wrongly_prints_its_usage(arguments):
    result = _run(["stages/split.py", *arguments], ROOT)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"split: error: {len(arguments)} argument(s) given",
        "Usage: python stages/split.py WINDOWS_H5 SPLIT_CSV",
    ]


def test_stage_settings_hand_out_declared_params_only():
    settings = StageSettings(load_settings(PARAMS_PATH), "evaluate", declared_params(ROOT / "dvc.yaml", "evaluate"))
    assert settings.evaluate.target_precision == 0.9
    with pytest.raises(ConfigError, match="stage evaluate reads the params section 'train'"):
        settings.train  # noqa: B018


def test_a_stage_declaring_one_key_of_a_section_reads_that_key_only():
    settings = StageSettings(load_settings(PARAMS_PATH), "submit", declared_params(ROOT / "dvc.yaml", "submit"))
    assert settings.data.dataset_dir == load_settings(PARAMS_PATH).data.dataset_dir
    with pytest.raises(ConfigError, match=r"reads the param 'data.reviews_dir'.*add `- data.reviews_dir`"):
        settings.data.reviews_dir  # noqa: B018


@pytest.mark.parametrize(
    "module", [rainforest.runner, rainforest.parallel, rainforest.spectrogram, rainforest.detect.scoring]
)
def test_docstring_examples_run(module, monkeypatch):
    monkeypatch.chdir(ROOT)  # the runner's example reads params.yaml
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_a_stage_outside_a_project_says_so(probe_project):
    (probe_project / "dvc.yaml").unlink()
    result = _run(["stages/probe.py", "split"], probe_project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("dvc.yaml: not found; the stage scripts run from a project holding dvc.yaml")
