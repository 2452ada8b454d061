"""Tests of rainforest.window_sets: writing and reading window sets."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from rainforest.config import FeatureSettings
from rainforest.window_sets import (
    WINDOW_FIELDS,
    WindowWriter,
    read_spectrogram_settings,
    read_window_attrs,
    read_windows,
)

#: Feature settings of the tiny window sets written here (8 kHz audio).
TINY_FEATURES = FeatureSettings(n_fft=256, hop_length=128, n_mels=8, fmin=0.0, fmax=4000.0, window_seconds=0.1)
N_MELS, N_FRAMES, N_SPECIES, N_SAMPLES = 8, 6, 3, 896


def _attrs() -> dict:
    return {"sample_rate": 8000, **TINY_FEATURES.model_dump(), "species": ["s0", "s1", "s2"], "note": "test"}


def _batch(n: int, seed: int, offset: int = 0, waveforms: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = {
        "spectrograms": rng.standard_normal((n, N_MELS, N_FRAMES)).astype(np.float32),
        "targets": rng.integers(0, 2, (n, N_SPECIES)).astype(np.uint8),
        "masks": rng.integers(0, 2, (n, N_SPECIES)).astype(np.uint8),
        "recording_ids": np.array([f"rec{offset + i:03d}" for i in range(n)], dtype=object),
        "start_times": rng.uniform(0, 50, n),
        "end_times": rng.uniform(50, 60, n),
        "event_species": rng.integers(0, N_SPECIES, n).astype(np.int16),
        "event_present": rng.integers(0, 2, n).astype(np.uint8),
    }
    if waveforms:
        batch["waveforms"] = rng.standard_normal((n, N_SAMPLES)).astype(np.float32)
    return batch


def _write_set(path: Path, batches: list[dict], waveforms: bool = True) -> int:
    writer = WindowWriter(
        path,
        n_mels=N_MELS,
        n_frames=N_FRAMES,
        n_species=N_SPECIES,
        n_samples=N_SAMPLES if waveforms else None,
        attrs=_attrs(),
    )
    with writer:
        for batch in batches:
            writer.append(**batch)
    return writer.n_windows


def _concat(batches: list[dict]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


# --- WindowWriter / read_windows --------------------------------------------------


def test_window_set_round_trip(tmp_path):
    path = tmp_path / "windows.h5"
    batches = [_batch(40, 1), _batch(3, 2, offset=40), _batch(0, 3)]
    assert _write_set(path, batches) == 43
    expected = _concat(batches)
    data = read_windows(path, WINDOW_FIELDS)
    assert set(data) == set(WINDOW_FIELDS)
    for name in WINDOW_FIELDS:
        assert len(data[name]) == 43
        if name == "recording_ids":
            assert data[name].dtype == object
            assert data[name].tolist() == expected[name].tolist()
            assert isinstance(data[name][0], str)
        else:
            assert data[name].dtype == expected[name].dtype, name
            np.testing.assert_array_equal(data[name], expected[name])
    assert _no_temporaries(tmp_path)


def test_read_selected_rows(tmp_path):
    path = tmp_path / "windows.h5"
    batches = [_batch(50, 1)]
    _write_set(path, batches)
    rows = np.array([0, 7, 31, 32, 49])
    data = read_windows(path, ("spectrograms", "recording_ids", "targets"), rows)
    assert set(data) == {"spectrograms", "recording_ids", "targets"}
    np.testing.assert_array_equal(data["spectrograms"], batches[0]["spectrograms"][rows])
    np.testing.assert_array_equal(data["targets"], batches[0]["targets"][rows])
    assert data["recording_ids"].tolist() == ["rec000", "rec007", "rec031", "rec032", "rec049"]


def test_attributes_and_n_windows(tmp_path):
    path = tmp_path / "windows.h5"
    _write_set(path, [_batch(5, 1)])
    attrs = read_window_attrs(path)
    assert attrs["n_windows"] == 5
    assert attrs["note"] == "test"
    assert list(attrs["species"]) == ["s0", "s1", "s2"]
    assert attrs["sample_rate"] == 8000
    spectrogram_settings = read_spectrogram_settings(path)
    assert spectrogram_settings.sample_rate == 8000 and isinstance(spectrogram_settings.sample_rate, int)
    assert spectrogram_settings.features == TINY_FEATURES


def test_empty_window_set(tmp_path):
    path = tmp_path / "windows.h5"
    assert _write_set(path, []) == 0
    data = read_windows(path, ("spectrograms", "recording_ids"))
    assert data["spectrograms"].shape == (0, N_MELS, N_FRAMES)
    assert len(data["recording_ids"]) == 0
    assert read_window_attrs(path)["n_windows"] == 0


def test_without_waveforms(tmp_path):
    path = tmp_path / "windows.h5"
    _write_set(path, [_batch(4, 1, waveforms=False)], waveforms=False)
    with h5py.File(path, "r") as file:
        assert "waveforms" not in file
        assert file["spectrograms"].shape == (4, N_MELS, N_FRAMES)


def test_append_requires_every_field(tmp_path):
    path = tmp_path / "windows.h5"
    batch = _batch(2, 1)
    del batch["masks"]
    with pytest.raises(ValueError, match="masks"):
        _write_set(path, [batch])
    assert not path.exists()
    assert _no_temporaries(tmp_path)


def test_append_refuses_extra_waveforms(tmp_path):
    with pytest.raises(ValueError, match="waveforms"):
        _write_set(tmp_path / "windows.h5", [_batch(2, 1, waveforms=True)], waveforms=False)
    assert not (tmp_path / "windows.h5").exists()


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "windows.h5"
    writer = WindowWriter(
        path, n_mels=N_MELS, n_frames=N_FRAMES, n_species=N_SPECIES, n_samples=N_SAMPLES, attrs=_attrs()
    )
    with pytest.raises(RuntimeError, match="stage killed"), writer:
        writer.append(**_batch(10, 1))
        raise RuntimeError("stage killed")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_set(tmp_path):
    path = tmp_path / "windows.h5"
    _write_set(path, [_batch(6, 1)])
    before = path.read_bytes()
    writer = WindowWriter(
        path, n_mels=N_MELS, n_frames=N_FRAMES, n_species=N_SPECIES, n_samples=N_SAMPLES, attrs=_attrs()
    )
    with pytest.raises(RuntimeError), writer:
        writer.append(**_batch(10, 2))
        raise RuntimeError("stage killed")
    assert path.read_bytes() == before
    assert read_window_attrs(path)["n_windows"] == 6
    assert _no_temporaries(tmp_path)


def test_wrong_shape_fails_cleanly(tmp_path):
    path = tmp_path / "windows.h5"
    batch = _batch(3, 1)
    batch["spectrograms"] = np.zeros((3, N_MELS + 1, N_FRAMES), dtype=np.float32)
    with pytest.raises((TypeError, ValueError)):
        _write_set(path, [batch])
    assert list(tmp_path.iterdir()) == []


def test_same_data_gives_identical_bytes(tmp_path):
    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    _write_set(first, [_batch(37, 1), _batch(5, 2, offset=37)])
    time.sleep(1.1)  # any timestamp in the file would now differ
    _write_set(second, [_batch(37, 1), _batch(5, 2, offset=37)])
    assert first.read_bytes() == second.read_bytes()
    # Different data really gives different bytes (the comparison can fail).
    third = tmp_path / "c.h5"
    _write_set(third, [_batch(37, 9), _batch(5, 2, offset=37)])
    assert third.read_bytes() != first.read_bytes()


def test_spectrogram_rows_read_chosen_rows_of_several_sets(tmp_path):
    from rainforest.window_sets import WindowRows

    first, second = [_batch(10, seed=1)], [_batch(6, seed=2, offset=10)]
    _write_set(tmp_path / "a.h5", first)
    _write_set(tmp_path / "b.h5", second)
    a, b = first[0]["spectrograms"], second[0]["spectrograms"]
    rows = WindowRows([(tmp_path / "a.h5", np.array([1, 4, 7])), (tmp_path / "b.h5", np.array([0, 5]))])
    expected = np.stack([a[1], a[4], a[7], b[0], b[5]])
    assert len(rows) == 5 and rows.shape == (5, *a.shape[1:])
    np.testing.assert_array_equal(rows[3], b[0])
    np.testing.assert_array_equal(rows[1:4], expected[1:4])
    subset = rows[np.array([True, False, True, True, False])]
    assert isinstance(subset, WindowRows) and len(subset) == 3
    np.testing.assert_array_equal(subset[0:3], expected[[0, 2, 3]])
    rows.close()
    np.testing.assert_array_equal(rows[0], a[1])  # reopens
