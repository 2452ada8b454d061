"""Tests of rainforest.config: params.yaml loads, and every bad value is refused
with a ConfigError naming the dotted key (or the file)."""

from __future__ import annotations

import copy
from typing import get_args

import pytest
import yaml
from pydantic import ValidationError

from rainforest.config import EmbeddingSettings, FeatureSettings, Settings, load_settings, settings_from_dict
from rainforest.embedding import EMBEDDING_MODELS
from rainforest.errors import ConfigError
from tests.support.paths import PARAMS_PATH, committed_params
from tests.support.project import with_setting


@pytest.fixture(scope="module")
def base() -> dict:
    return committed_params()


def _without(base: dict, dotted: str) -> dict:
    values = copy.deepcopy(base)
    *parents, last = dotted.split(".")
    node = values
    for part in parents:
        node = node[part]
    del node[last]
    return values


def test_project_params_load():
    settings = load_settings(PARAMS_PATH)
    assert isinstance(settings, Settings)
    raw = committed_params()
    assert settings.audio.sample_rate == raw["audio"]["sample_rate"]
    assert settings.features.n_mels == raw["features"]["n_mels"]
    assert settings.model.architecture == raw["model"]["architecture"]
    assert settings.train.spec_augment.time_masks == raw["train"]["spec_augment"]["time_masks"]
    assert settings.features.fmax <= settings.audio.sample_rate / 2


def test_settings_from_dict_matches_file(base):
    assert settings_from_dict(base) == load_settings(PARAMS_PATH)


def test_settings_are_frozen(base):
    settings = settings_from_dict(base)
    with pytest.raises(ValidationError, match="frozen"):
        settings.features.n_mels = 10


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("features.n_mel", 64),  # typo next to the real key
        ("train.epoch", 3),
        ("extra_section", {}),
    ],
)
def test_unknown_key_is_named(base, key, value):
    with pytest.raises(ConfigError, match=r"unknown key") as error:
        settings_from_dict(with_setting(base, key, value))
    assert key in str(error.value)


@pytest.mark.parametrize("key", ["features.n_fft", "train.epochs", "augment.noise.snr_db", "submit"])
def test_missing_key_is_named(base, key):
    with pytest.raises(ConfigError, match=r"missing") as error:
        settings_from_dict(_without(base, key))
    assert key in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("features.n_mels", "many"),
        ("train.batch_size", 12.5),
        ("augment.noise.enabled", "perhaps"),
        ("model.filters", "16,32"),
        ("split.validation_fraction", 0.7),
        ("train.epochs", 0),
        ("etl.windows_per_event", "many"),
        ("etl.windows_per_event", 0),
        ("split.folds", 0),
        ("split.folds", "five"),
        ("model.head", "deep"),
        ("train.early_stopping_patience", -1),
        ("train.early_stopping_patience", True),
        ("train.select_best_epoch", 1),
        ("train.select_best_epoch", "yes"),
    ],
)
def test_wrong_type_or_value_is_named(base, key, value):
    with pytest.raises(ConfigError) as error:
        settings_from_dict(with_setting(base, key, value))
    assert key in str(error.value)


@pytest.mark.parametrize("value", ["auto", 1, 5])
def test_windows_per_event_is_a_number_or_auto(base, value):
    assert settings_from_dict(with_setting(base, "etl.windows_per_event", value)).etl.windows_per_event == value


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("split.folds", ["auto", 1, 5]),
        ("train.early_stopping_patience", ["auto", 0, 8]),
        ("train.select_best_epoch", ["auto", True, False]),
        ("model.head", ["auto", "dense", "linear"]),
    ],
)
def test_data_dependent_settings_take_auto_or_a_value(base, key, values):
    section, name = key.split(".")
    for value in values:
        assert getattr(getattr(settings_from_dict(with_setting(base, key, value)), section), name) == value


def test_fmax_above_nyquist(base):
    values = with_setting(base, "features.fmax", 30000.0)
    with pytest.raises(ConfigError) as error:
        settings_from_dict(values)
    assert "features.fmax" in str(error.value)
    # Exactly half the sample rate is allowed.
    settings_from_dict(with_setting(base, "features.fmax", 24000.0))


def test_fmax_checked_against_audio_sample_rate(base):
    # 15 kHz is fine at 48 kHz but above half of 22.05 kHz.
    with pytest.raises(ConfigError) as error:
        settings_from_dict(with_setting(base, "audio.sample_rate", 22050))
    assert "features.fmax" in str(error.value)


def test_hop_length_above_n_fft(base):
    with pytest.raises(ConfigError, match="must not exceed n_fft") as error:
        settings_from_dict(with_setting(base, "features.hop_length", 4096))
    assert "features.hop_length" in str(error.value)
    # Equal to n_fft is allowed (frames touch, none skipped).
    settings_from_dict(with_setting(base, "features.hop_length", 2048))


@pytest.mark.parametrize("fmin", [15000.0, 20000.0])
def test_fmin_not_below_fmax(base, fmin):
    with pytest.raises(ConfigError, match="must be below fmax") as error:
        settings_from_dict(with_setting(base, "features.fmin", fmin))
    # The pair is reported at features.fmax, the second of the two keys.
    assert "features.fmax" in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("augment.noise.snr_db", [20.0, 3.0]),
        ("augment.gain.db", [6.0, -6.0]),
        ("augment.pitch_shift.semitones", [0.5, -0.5]),
        ("augment.time_stretch.rate", [1.1, 0.9]),
        ("demo.snr_db", [6.0, -12.0]),
    ],
)
def test_unordered_range(base, key, value):
    with pytest.raises(ConfigError, match="low <= high") as error:
        settings_from_dict(with_setting(base, key, value))
    assert key in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("augment.pitch_shift.semitones", [-13.0, 0.0]), ("augment.time_stretch.rate", [0.4, 1.0])],
)
def test_range_outside_limits(base, key, value):
    with pytest.raises(ConfigError, match="must lie within") as error:
        settings_from_dict(with_setting(base, key, value))
    assert key in str(error.value)


def test_feature_settings_direct_construction_validates():
    kwargs = dict(n_fft=512, hop_length=256, n_mels=32, fmin=0.0, fmax=8000.0, window_seconds=1.0)
    FeatureSettings(**kwargs)
    with pytest.raises(ValueError):
        FeatureSettings(**{**kwargs, "hop_length": 1024})
    with pytest.raises(ValueError):
        FeatureSettings(**{**kwargs, "fmin": 8000.0})


def test_range_needs_two_values(base):
    with pytest.raises(ConfigError) as error:
        settings_from_dict(with_setting(base, "augment.gain.db", [1.0, 2.0, 3.0]))
    assert "augment.gain.db" in str(error.value)


def test_submit_hop_longer_than_window(base):
    with pytest.raises(ConfigError) as error:
        settings_from_dict(with_setting(base, "submit.hop_seconds", 3.0))
    assert "submit.hop_seconds" in str(error.value)
    settings_from_dict(with_setting(base, "submit.hop_seconds", 2.0))


def test_unknown_architecture(base):
    with pytest.raises(ConfigError) as error:
        settings_from_dict(with_setting(base, "model.architecture", "transformer"))
    assert "model.architecture" in str(error.value)


def test_every_error_is_reported(base):
    values = with_setting(with_setting(base, "train.epochs", -1), "etl.workers", 0)
    with pytest.raises(ConfigError) as error:
        settings_from_dict(values)
    assert "train.epochs" in str(error.value)
    assert "etl.workers" in str(error.value)


def test_load_settings_names_file_with_bad_value(tmp_path, base):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(with_setting(base, "features.fmax", 30000.0)))
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(path) in str(error.value)
    assert "features.fmax" in str(error.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match="not found") as error:
        load_settings(path)
    assert str(path) in str(error.value)


def test_not_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("features: [unclosed\n  n_fft: : :\n")
    with pytest.raises(ConfigError, match="not valid YAML") as error:
        load_settings(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_yaml_that_is_not_a_mapping(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train.epochs", True),
        ("etl.workers", 2.5),
        ("demo.seed", "3"),
        ("train.learning_rate", True),
        ("demo.snr_db", [True, 6.0]),
    ],
)
def test_booleans_and_fractions_are_not_numbers(base, key, value):
    # YAML reads `yes` and `true` as booleans: lax parsing would make them 1.
    with pytest.raises(ConfigError) as error:
        settings_from_dict(with_setting(base, key, value))
    assert key in str(error.value)


def test_integers_are_valid_floats(base):
    assert settings_from_dict(with_setting(base, "train.learning_rate", 1)).train.learning_rate == 1.0


def test_embedding_head_and_embedding_model_go_together(base):
    for key, value in [("model.architecture", "embedding_head"), ("embedding.model", "birdnet-v2.4")]:
        with pytest.raises(ConfigError) as error:
            settings_from_dict(with_setting(base, key, value))
        message = str(error.value)
        assert "model.architecture" in message and "embedding.model" in message and "set both" in message
    both = with_setting(with_setting(base, "model.architecture", "embedding_head"), "embedding.model", "birdnet-v2.4")
    assert settings_from_dict(both).embedding.model == "birdnet-v2.4"


def test_embedding_models_in_the_settings_are_the_registered_ones():
    allowed = set(get_args(EmbeddingSettings.model_fields["model"].annotation))
    assert allowed == set(EMBEDDING_MODELS) == {"none", "birdnet-v2.4", "onnx"}


def test_onnx_file_must_lie_in_the_folder_embed_depends_on(base):
    for path in ["models/perch.onnx", "/data/perch.onnx", "embedding_models/../perch.onnx"]:
        with pytest.raises(
            ConfigError, match=r"embedding\.onnx_file: must be a path inside the project's embedding_models/"
        ):
            settings_from_dict(with_setting(base, "embedding.onnx_file", path))
    with pytest.raises(ConfigError, match=r"embedding\.onnx_file: must name an \.onnx file"):
        settings_from_dict(with_setting(base, "embedding.onnx_file", "embedding_models/perch.tflite"))


def test_a_missing_onnx_model_stops_the_settings_check(base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    onnx = with_setting(with_setting(base, "model.architecture", "embedding_head"), "embedding.model", "onnx")
    onnx = with_setting(onnx, "embedding.onnx_file", "embedding_models/perch.onnx")
    with pytest.raises(ConfigError, match=r"embedding_models/perch\.onnx \(the ONNX model\) not found"):
        settings_from_dict(onnx)
    (tmp_path / "embedding_models").mkdir()
    (tmp_path / "embedding_models/perch.onnx").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"embedding_models/perch\.yaml \(its descriptor\) not found"):
        settings_from_dict(onnx)
    (tmp_path / "embedding_models/perch.yaml").write_text("")
    assert settings_from_dict(onnx).embedding.onnx_file == "embedding_models/perch.onnx"
