"""Tests of rainforest.augment: each augmentation does what it claims, and the
augmented window set is built from training windows only, reproducibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.signal import hilbert

from rainforest.augment import (
    add_noise,
    apply_gain,
    augment_waveform,
    build_augmented_set,
    shift_pitch,
    shift_time,
    stretch_time,
)
from rainforest.config import AugmentSettings
from rainforest.spectrogram import log_mel_spectrogram, window_span_samples
from rainforest.window_sets import WINDOW_FIELDS, WindowWriter, read_window_attrs, read_windows
from tests.support.settings import COMPETITION_RATE, RATE, SHORT_FEATURES, SHORT_SPECTROGRAM_SETTINGS


def _settings(**enabled) -> AugmentSettings:
    """Every augmentation disabled except those named (True)."""
    values = {
        "seed": 11,
        "workers": 1,
        "copies": 1,
        "noise": {"enabled": False, "snr_db": [3.0, 20.0]},
        "gain": {"enabled": False, "db": [-6.0, 6.0]},
        "time_shift": {"enabled": False, "max_seconds": 0.2},
        "pitch_shift": {"enabled": False, "semitones": [-2.0, 2.0]},
        "time_stretch": {"enabled": False, "rate": [0.8, 1.25]},
    }
    for name, on in enabled.items():
        values[name]["enabled"] = on
    return AugmentSettings(**values)


ALL_ON = dict(noise=True, gain=True, time_shift=True, pitch_shift=True, time_stretch=True)


def _tone(frequency: float = 1000.0, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * COMPETITION_RATE)) / COMPETITION_RATE
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _burst(start: float = 0.7, end: float = 1.3, seconds: float = 2.0, frequency: float = 2000.0) -> np.ndarray:
    x = np.zeros(int(seconds * COMPETITION_RATE), dtype=np.float32)
    a, b = int(start * COMPETITION_RATE), int(end * COMPETITION_RATE)
    x[a:b] = 0.5 * np.sin(2 * np.pi * frequency * np.arange(b - a) / COMPETITION_RATE)
    return x


def _peak_frequency(waveform: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.fft.rfftfreq(len(waveform), 1 / COMPETITION_RATE)[spectrum.argmax()])


def _active(waveform: np.ndarray) -> tuple[float, float]:
    """First and last second where the envelope is above half its maximum."""
    envelope = np.abs(hilbert(waveform))
    on = np.flatnonzero(envelope > envelope.max() / 2)
    return on[0] / COMPETITION_RATE, on[-1] / COMPETITION_RATE


def _power_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2))


# --- single augmentations -------------------------------------------------------


@pytest.mark.parametrize("snr_db", [0.0, 3.0, 10.0, 20.0])
def test_noise_at_requested_snr(snr_db):
    signal = _burst()
    noisy = add_noise(signal, snr_db, np.random.default_rng(0))
    assert noisy.dtype == np.float32
    assert len(noisy) == len(signal)
    noise = noisy.astype(np.float64) - signal
    assert _power_db(signal) - _power_db(noise) == pytest.approx(snr_db, abs=1.0)
    # White: spread over the whole recording, not only the burst.
    assert np.std(noise[: COMPETITION_RATE // 2]) == pytest.approx(np.std(noise[-COMPETITION_RATE // 2 :]), rel=0.05)


def test_noise_on_silence_stays_finite_and_tiny():
    noisy = add_noise(np.zeros(1000, dtype=np.float32), 10.0, np.random.default_rng(0))
    assert np.all(np.isfinite(noisy))
    assert 0 < np.max(np.abs(noisy)) < 1e-4


def test_noise_depends_on_generator():
    signal = _tone()
    a = add_noise(signal, 10.0, np.random.default_rng(1))
    b = add_noise(signal, 10.0, np.random.default_rng(1))
    c = add_noise(signal, 10.0, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("gain_db", [-6.0, -1.5, 3.0, 6.0])
def test_gain_by_requested_db(gain_db):
    signal = _burst()
    louder = apply_gain(signal, gain_db)
    assert louder.dtype == np.float32
    assert len(louder) == len(signal)
    assert _power_db(louder) - _power_db(signal) == pytest.approx(gain_db, abs=0.01)
    np.testing.assert_allclose(louder, signal * 10 ** (gain_db / 20), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shift", [-4800, -1, 1, 12345])
def test_time_shift_moves_onset(shift):
    signal = _burst(0.7, 1.3)
    shifted = shift_time(signal, shift)
    assert len(shifted) == len(signal)
    onset = np.flatnonzero(signal)[0]
    assert np.flatnonzero(shifted)[0] == onset + shift
    np.testing.assert_array_equal(shifted[onset + shift : onset + shift + 1000], signal[onset : onset + 1000])
    assert shift_time(signal, 0) is not None and np.array_equal(shift_time(signal, 0), signal)


@pytest.mark.parametrize("semitones", [-2.0, -0.5, 0.5, 3.0])
def test_pitch_shift_moves_peak(semitones):
    signal = _tone(1000.0)
    shifted = shift_pitch(signal, COMPETITION_RATE, semitones)
    assert len(shifted) == len(signal)
    assert shifted.dtype == np.float32
    expected = 1000.0 * 2 ** (semitones / 12)
    assert _peak_frequency(shifted) == pytest.approx(expected, rel=0.01)
    # The peak really moved (more than the frequency resolution of 1 Hz).
    assert abs(_peak_frequency(shifted) - 1000.0) > 20


@pytest.mark.parametrize("rate", [0.8, 0.9, 1.1, 1.25])
def test_time_stretch_changes_duration(rate):
    signal = _burst(0.7, 1.3)
    stretched = stretch_time(signal, rate)
    assert len(stretched) == len(signal)
    start, end = _active(stretched)
    assert end - start == pytest.approx(0.6 / rate, rel=0.05)
    # Centred: the burst stays around 1.0 s.
    assert (start + end) / 2 == pytest.approx(1.0, abs=0.02)
    # Pitch kept.
    assert _peak_frequency(stretched) == pytest.approx(2000.0, rel=0.01)


@pytest.mark.parametrize("n", [4351, 4352, 48000])
def test_time_stretch_keeps_odd_and_even_lengths(n):
    signal = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    for rate in (0.83, 1.17):
        assert len(stretch_time(signal, rate)) == n


# --- augment_waveform -------------------------------------------------------------


def test_everything_disabled_returns_input():
    signal = _burst()
    out, applied = augment_waveform(signal, COMPETITION_RATE, _settings(), np.random.default_rng(0))
    assert applied == {}
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, signal)


@pytest.mark.parametrize(
    ("name", "key", "low", "high"),
    [
        ("noise", "noise_snr_db", 3.0, 20.0),
        ("gain", "gain_db", -6.0, 6.0),
        ("time_shift", "time_shift_samples", -0.2 * COMPETITION_RATE, 0.2 * COMPETITION_RATE),
        ("pitch_shift", "pitch_shift_semitones", -2.0, 2.0),
        ("time_stretch", "time_stretch_rate", 0.8, 1.25),
    ],
)
def test_single_augmentation_applies_reported_size(name, key, low, high):
    signal = _burst(0.4, 0.7, seconds=1.0)
    out, applied = augment_waveform(signal, COMPETITION_RATE, _settings(**{name: True}), np.random.default_rng(5))
    assert list(applied) == [key]
    size = applied[key]
    assert low <= size <= high
    assert len(out) == len(signal)
    assert out.dtype == np.float32
    assert not np.allclose(out, signal, atol=1e-4)
    # The output is exactly that augmentation at the reported size.
    if name == "noise":
        rng = np.random.default_rng(5)
        rng.uniform(3.0, 20.0)
        expected = add_noise(signal, size, rng)
    elif name == "gain":
        expected = apply_gain(signal, size)
    elif name == "time_shift":
        assert isinstance(size, int)
        expected = shift_time(signal, size)
    elif name == "pitch_shift":
        expected = shift_pitch(signal, COMPETITION_RATE, size)
    else:
        expected = stretch_time(signal, size)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_all_augmentations_together():
    signal = _burst(0.4, 0.7, seconds=1.0)
    out, applied = augment_waveform(signal, COMPETITION_RATE, _settings(**ALL_ON), np.random.default_rng(0))
    assert set(applied) == {
        "noise_snr_db",
        "gain_db",
        "time_shift_samples",
        "pitch_shift_semitones",
        "time_stretch_rate",
    }
    assert len(out) == len(signal)
    assert np.all(np.isfinite(out))


def test_same_seed_same_output_other_seed_differs():
    signal = _burst(0.4, 0.7, seconds=1.0)
    settings = _settings(**ALL_ON)
    a, applied_a = augment_waveform(signal, COMPETITION_RATE, settings, np.random.default_rng([11, 3, 0]))
    b, applied_b = augment_waveform(signal, COMPETITION_RATE, settings, np.random.default_rng([11, 3, 0]))
    c, applied_c = augment_waveform(signal, COMPETITION_RATE, settings, np.random.default_rng([11, 3, 1]))
    np.testing.assert_array_equal(a, b)
    assert applied_a == applied_b
    assert not np.array_equal(a, c)
    assert applied_a != applied_c


def test_input_is_not_modified():
    signal = _burst(0.4, 0.7, seconds=1.0)
    before = signal.copy()
    augment_waveform(signal, COMPETITION_RATE, _settings(**ALL_ON), np.random.default_rng(0))
    np.testing.assert_array_equal(signal, before)


# --- build_augmented_set --------------------------------------------------------

RECORDINGS = ["r0", "r1", "r2", "r3", "r4"]
# A holdout: r1 and r4 validate (fold 0), the others train (fold -1).
SPLIT = pd.DataFrame({"recording_id": RECORDINGS, "fold": [-1, 0, -1, -1, 0]})
N_SPECIES = 4


def _window_set(path: Path, n: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    n_frames = SHORT_SPECTROGRAM_SETTINGS.window_frames
    n_samples = window_span_samples(n_frames, SHORT_FEATURES)
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / RATE
    waveforms = np.stack(
        [0.3 * np.sin(2 * np.pi * rng.uniform(300, 5000) * t) * np.hanning(n_samples) for _ in range(n)]
    ).astype(np.float32)
    data = {
        "waveforms": waveforms,
        "spectrograms": np.stack([log_mel_spectrogram(w, SHORT_SPECTROGRAM_SETTINGS) for w in waveforms]),
        "targets": rng.integers(0, 2, (n, N_SPECIES)).astype(np.uint8),
        "masks": np.ones((n, N_SPECIES), dtype=np.uint8),
        "recording_ids": np.array([RECORDINGS[i % len(RECORDINGS)] for i in range(n)], dtype=object),
        "start_times": np.arange(n, dtype=np.float64),
        "end_times": np.arange(n, dtype=np.float64) + 0.25,
        "event_species": rng.integers(0, N_SPECIES, n).astype(np.int16),
        "event_present": rng.integers(0, 2, n).astype(np.uint8),
    }
    attrs = {"sample_rate": RATE, **SHORT_FEATURES.model_dump(), "species": [f"s{i}" for i in range(N_SPECIES)]}
    with WindowWriter(
        path, n_mels=SHORT_FEATURES.n_mels, n_frames=n_frames, n_species=N_SPECIES, n_samples=n_samples, attrs=attrs
    ) as writer:
        writer.append(**data)
    return data


def _augment_settings(copies: int, seed: int = 11, workers: int = 1) -> AugmentSettings:
    settings = _settings(**ALL_ON).model_dump()
    settings.update(copies=copies, seed=seed, workers=workers)
    settings["time_shift"]["max_seconds"] = 0.05
    return AugmentSettings(**settings)


@pytest.fixture
def window_set(tmp_path):
    path = tmp_path / "windows.h5"
    return path, _window_set(path)


def test_augmented_set_uses_training_windows_only(tmp_path, window_set):
    source_path, source = window_set
    out = tmp_path / "augmented.h5"
    count = build_augmented_set(source_path, SPLIT, out, _augment_settings(copies=2))
    train_rows = np.flatnonzero(np.isin(source["recording_ids"], ["r0", "r2", "r3"]))
    assert len(train_rows) == 12
    assert count == 2 * len(train_rows)
    data = read_windows(out, ("spectrograms", "targets", "masks", "recording_ids", "start_times", "event_species"))
    assert set(data["recording_ids"]) == {"r0", "r2", "r3"}
    # Labels copied: copy 0 of every training window, then copy 1 (one chunk).
    for name in ("targets", "masks", "start_times", "event_species"):
        np.testing.assert_array_equal(data[name], np.concatenate([source[name][train_rows]] * 2))
    assert data["recording_ids"].tolist() == source["recording_ids"][train_rows].tolist() * 2
    # New spectrograms of the same shape, different from the originals and between copies.
    assert data["spectrograms"].shape == (count, *source["spectrograms"].shape[1:])
    assert data["spectrograms"].dtype == np.float32
    assert np.all(np.isfinite(data["spectrograms"]))
    originals = np.concatenate([source["spectrograms"][train_rows]] * 2)
    assert np.all(np.abs(data["spectrograms"] - originals).max(axis=(1, 2)) > 1.0)
    first, second = np.split(data["spectrograms"], 2)
    assert np.all(np.abs(first - second).max(axis=(1, 2)) > 1.0)
    attrs = read_window_attrs(out)
    assert attrs["n_windows"] == count
    assert attrs["sample_rate"] == RATE
    assert '"copies": 2' in attrs["augment"]
    # The augmented audio too, for embedding models: the audio the spectrograms were made from.
    waveforms = read_windows(out, ("waveforms",))["waveforms"]
    assert waveforms.shape == (count, source["waveforms"].shape[1]) and waveforms.dtype == np.float32
    assert np.array_equal(
        log_mel_spectrogram(waveforms[0], SHORT_SPECTROGRAM_SETTINGS)[:, : data["spectrograms"].shape[2]],
        data["spectrograms"][0],
    )


def test_augmented_spectrogram_matches_augmented_waveform(tmp_path, window_set):
    source_path, source = window_set
    out = tmp_path / "augmented.h5"
    settings = _augment_settings(copies=1)
    build_augmented_set(source_path, SPLIT, out, settings)
    row = int(np.flatnonzero(source["recording_ids"] == "r2")[0])
    augmented, _ = augment_waveform(source["waveforms"][row], RATE, settings, np.random.default_rng([11, row, 0]))
    expected = log_mel_spectrogram(augmented, SHORT_SPECTROGRAM_SETTINGS)
    written = read_windows(out, ("spectrograms",))["spectrograms"]
    train_rows = np.flatnonzero(np.isin(source["recording_ids"], ["r0", "r2", "r3"]))
    np.testing.assert_allclose(written[list(train_rows).index(row)], expected, atol=1e-4)


def test_augmented_set_is_reproducible(tmp_path, window_set):
    source_path, _ = window_set
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    build_augmented_set(source_path, SPLIT, a, _augment_settings(copies=1))
    # Two worker processes write the same bytes as one.
    build_augmented_set(source_path, SPLIT, b, _augment_settings(copies=1, workers=2))
    assert a.read_bytes() == b.read_bytes()
    build_augmented_set(source_path, SPLIT, c, _augment_settings(copies=1, seed=12))
    spectrograms_a = read_windows(a, ("spectrograms",))["spectrograms"]
    spectrograms_c = read_windows(c, ("spectrograms",))["spectrograms"]
    assert not np.array_equal(spectrograms_a, spectrograms_c)


def test_zero_copies_writes_empty_set(tmp_path, window_set):
    source_path, _ = window_set
    out = tmp_path / "augmented.h5"
    assert build_augmented_set(source_path, SPLIT, out, _augment_settings(copies=0)) == 0
    assert read_window_attrs(out)["n_windows"] == 0
    assert set(WINDOW_FIELDS) - {"waveforms"} <= set(read_windows(out, tuple(set(WINDOW_FIELDS) - {"waveforms"})))


def test_cross_validation_augments_every_window(tmp_path, window_set):
    # Every recording trains the models of the folds it is not in.
    source_path, source = window_set
    out = tmp_path / "augmented.h5"
    split = SPLIT.assign(fold=[0, 1, 2, 0, 1])
    assert build_augmented_set(source_path, split, out, _augment_settings(copies=1)) == len(source["targets"])
    ids = read_windows(out, ("recording_ids",))["recording_ids"]
    assert ids.tolist() == source["recording_ids"].tolist()


def test_no_training_windows_writes_empty_set(tmp_path, window_set):
    source_path, _ = window_set
    out = tmp_path / "augmented.h5"
    split = SPLIT.assign(fold=0)
    assert build_augmented_set(source_path, split, out, _augment_settings(copies=1)) == 0
    assert read_window_attrs(out)["n_windows"] == 0
