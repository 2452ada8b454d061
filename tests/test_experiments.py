"""Tests of rainforest.experiments: the baseline-against-main comparison command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmarks.project import merge
from rainforest.config import settings_from_dict
from rainforest.experiments import BASELINE, configuration_names, format_table, overrides_for

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


def _apply(params: dict, overrides: dict) -> dict:
    """``params`` with dotted-key ``overrides`` (as dvc exp run --set-param takes them)."""
    for dotted, value in overrides.items():
        for part in reversed(dotted.split(".")):
            value = {part: value}
        params = merge(params, value)
    return params


def test_names_default_to_all_with_main_last():
    assert configuration_names([]) == ["baseline", "main"]
    assert configuration_names(["main", "baseline"]) == ["baseline", "main"]
    assert configuration_names(["main"]) == ["main"]
    with pytest.raises(SystemExit):
        configuration_names(["resnet50"])


def test_baseline_is_the_original_approach_and_valid_settings():
    settings = settings_from_dict(_apply(PARAMS, overrides_for("baseline", PARAMS)))
    assert settings.model.architecture == "baseline" and settings.model.filters == [16, 32]
    assert settings.train.loss == "softmax_crossentropy" and settings.train.optimizer == "adam"
    assert (settings.train.epochs, settings.train.batch_size) == (25, 16)
    assert not settings.train.use_false_positives and not settings.train.use_augmented
    assert settings.train.mixup_alpha == 0 and settings.train.spec_augment.time_masks == 0


def test_main_sets_every_overridden_key_back_to_the_committed_value():
    main = overrides_for("main", PARAMS)
    assert set(main) == set(BASELINE)
    assert settings_from_dict(_apply(PARAMS, main)) == settings_from_dict(PARAMS)


def test_table_has_a_row_per_configuration():
    row = {
        "name": "main", "validation_lwlrap": 0.8, "test_lwlrap": 0.9, "test_macro_ap": 0.85, "test_top1": 0.95,
        "train_seconds": 400.0, "parameters": 134000, "model_mb": 1.5,
    }
    lines = format_table([row, {**row, "name": "baseline", "test_lwlrap": 0.7}]).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| main | 0.800 | 0.900 |") and "| 134,000 |" in lines[2]
