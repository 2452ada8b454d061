"""Tests of rainforest.spectrogram: log-mel spectrograms and window geometry."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rainforest.config import FeatureSettings, SpectrogramSettings
from rainforest.spectrogram import (
    POWER_FLOOR,
    event_window_start,
    frame_times,
    log_mel_spectrogram,
    recording_frames,
    sliding_window_starts,
    window_span_samples,
)
from tests.support.settings import RATE
from tests.support.windows import cut_windows, pad_to_length

#: Half-second windows of 32 mel bands up to 8 kHz.
HALF_SECOND_FEATURES = FeatureSettings(n_fft=512, hop_length=256, n_mels=32, fmin=50.0, fmax=8000.0, window_seconds=0.5)
HALF_SECOND_SETTINGS = SpectrogramSettings(RATE, HALF_SECOND_FEATURES)


def _frames(n_samples: int, features: FeatureSettings = HALF_SECOND_FEATURES) -> int:
    return 1 + (max(n_samples, features.n_fft) - features.n_fft) // features.hop_length


@pytest.mark.parametrize("n_samples", [100, 512, 513, 16000, 16257])
def test_recording_frames_counts_the_spectrogram_frames(n_samples):
    waveform = np.ones(n_samples, dtype=np.float32)
    spectrogram = log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS)
    assert recording_frames(n_samples, HALF_SECOND_FEATURES) == spectrogram.shape[1]


def test_matches_librosa_reference():
    # The FFT is our own (faster) framing, the numbers must be librosa's.
    waveform = np.random.default_rng(3).standard_normal(2 * RATE).astype(np.float32)
    power = np.abs(librosa.stft(waveform, n_fft=512, hop_length=256, center=False, window="hann")) ** 2
    basis = librosa.filters.mel(sr=RATE, n_fft=512, n_mels=32, fmin=50.0, fmax=8000.0)
    reference = 10 * np.log10(np.maximum(basis @ power, POWER_FLOOR))
    np.testing.assert_allclose(log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS), reference, atol=1e-3)


def test_long_recording_is_computed_in_blocks_with_the_same_values(monkeypatch):
    import rainforest.spectrogram as features_module

    waveform = np.random.default_rng(4).standard_normal(3 * RATE).astype(np.float32)
    whole = log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS)
    monkeypatch.setattr(features_module, "FRAME_BLOCK", 7)
    np.testing.assert_allclose(log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS), whole, atol=1e-4)


def test_a_batch_of_waveforms_gives_the_spectrogram_of_each():
    batch = np.random.default_rng(5).standard_normal((3, RATE // 2)).astype(np.float32)
    spectrograms = log_mel_spectrogram(batch, HALF_SECOND_SETTINGS)
    assert (
        spectrograms.shape == (3, HALF_SECOND_FEATURES.n_mels, _frames(RATE // 2)) and spectrograms.dtype == np.float32
    )
    for waveform, spectrogram in zip(batch, spectrograms):
        np.testing.assert_allclose(spectrogram, log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS), atol=1e-4)
    assert log_mel_spectrogram(batch[:, :100], HALF_SECOND_SETTINGS).shape == (3, HALF_SECOND_FEATURES.n_mels, 1)


def test_shape_and_dtype():
    waveform = np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    spectrogram = log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS)
    assert spectrogram.dtype == np.float32
    assert spectrogram.shape == (HALF_SECOND_FEATURES.n_mels, _frames(RATE))
    assert spectrogram.shape == (32, 1 + (16000 - 512) // 256)
    assert np.all(np.isfinite(spectrogram))


def test_float64_input_gives_float32():
    waveform = np.random.default_rng(0).standard_normal(4000)
    assert log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS).dtype == np.float32


def test_short_waveform_padded_to_one_frame():
    spectrogram = log_mel_spectrogram(np.ones(100, dtype=np.float32), HALF_SECOND_SETTINGS)
    assert spectrogram.shape == (HALF_SECOND_FEATURES.n_mels, 1)
    assert np.all(np.isfinite(spectrogram))
    assert spectrogram.max() > 10 * np.log10(POWER_FLOOR)


def test_silence_is_the_floor():
    spectrogram = log_mel_spectrogram(np.zeros(RATE // 2, dtype=np.float32), HALF_SECOND_SETTINGS)
    assert np.all(np.isfinite(spectrogram))
    np.testing.assert_allclose(spectrogram, 10 * np.log10(POWER_FLOOR), rtol=1e-6)
    assert spectrogram[0, 0] == pytest.approx(-100.0)


@pytest.mark.parametrize("frequency", [300.0, 1000.0, 2500.0, 6000.0])
def test_tone_peaks_in_its_mel_bin(frequency):
    t = np.arange(RATE) / RATE
    waveform = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    features = HALF_SECOND_FEATURES
    spectrogram = log_mel_spectrogram(waveform, SpectrogramSettings(RATE, features))
    peak_bins = spectrogram.argmax(axis=0)
    # The mel bin whose filter responds most to the tone's frequency.
    basis = librosa.filters.mel(
        sr=RATE, n_fft=features.n_fft, n_mels=features.n_mels, fmin=features.fmin, fmax=features.fmax
    )
    fft_bin = int(round(frequency * features.n_fft / RATE))
    expected = int(basis[:, fft_bin].argmax())
    assert np.all(np.abs(peak_bins - expected) <= 1)
    assert np.bincount(peak_bins).argmax() == expected
    # The bin's centre frequency is near the tone.
    centres = librosa.mel_frequencies(features.n_mels + 2, fmin=features.fmin, fmax=features.fmax)[1:-1]
    assert centres[expected] == pytest.approx(frequency, rel=0.15)


def test_level_is_absolute():
    # A fixed reference: 6 dB louder input is 20*log10(2) dB higher everywhere.
    waveform = np.random.default_rng(3).standard_normal(RATE // 2).astype(np.float32) * 0.1
    quiet = log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS)
    loud = log_mel_spectrogram(2 * waveform, HALF_SECOND_SETTINGS)
    np.testing.assert_allclose(loud - quiet, 20 * np.log10(2), atol=1e-3)


def test_frames_are_not_centre_padded():
    # Frame 0 covers samples [0, n_fft): an impulse after it leaves frame 0 silent.
    waveform = np.zeros(4 * HALF_SECOND_FEATURES.n_fft, dtype=np.float32)
    waveform[HALF_SECOND_FEATURES.n_fft + 10] = 1.0
    spectrogram = log_mel_spectrogram(waveform, HALF_SECOND_SETTINGS)
    np.testing.assert_allclose(spectrogram[:, 0], 10 * np.log10(POWER_FLOOR))
    # Frame 1 covers [256, 768): the impulse sits near its middle.
    assert spectrogram[:, 1].max() > -40


# --- THE KEY PROPERTY: cutting windows equals recomputing on the cut audio ---


@pytest.mark.parametrize(
    "features",
    [
        HALF_SECOND_FEATURES,
        FeatureSettings(n_fft=1024, hop_length=1024, n_mels=16, fmin=0.0, fmax=8000.0, window_seconds=0.3),
        FeatureSettings(n_fft=400, hop_length=160, n_mels=40, fmin=100.0, fmax=7000.0, window_seconds=0.25),
    ],
    ids=["half-overlap", "no-overlap", "odd-hop"],
)
def test_cut_window_equals_spectrogram_of_cut_waveform(features):
    rng = np.random.default_rng(42)
    whole = rng.standard_normal(3 * RATE).astype(np.float32) * rng.uniform(0.01, 1.0)
    spectrogram = log_mel_spectrogram(whole, SpectrogramSettings(RATE, features))
    n_frames = SpectrogramSettings(RATE, features).window_frames
    span = window_span_samples(n_frames, features)
    last = spectrogram.shape[1] - n_frames
    starts = np.array([0, 1, 7, last // 2, last])
    windows = cut_windows(spectrogram, starts, n_frames)
    assert windows.shape == (len(starts), features.n_mels, n_frames)
    for k, window in zip(starts, windows):
        piece = whole[k * features.hop_length : k * features.hop_length + span]
        assert len(piece) == span
        direct = log_mel_spectrogram(piece, SpectrogramSettings(RATE, features))
        assert direct.shape == window.shape
        np.testing.assert_allclose(window, direct, atol=1e-3, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(8000, 24000),
    n_frames=st.integers(1, 20),
    position=st.floats(0.0, 1.0),
)
def test_cut_window_property(seed, n_samples, n_frames, position):
    whole = np.random.default_rng(seed).standard_normal(n_samples).astype(np.float32)
    spectrogram = log_mel_spectrogram(whole, HALF_SECOND_SETTINGS)
    n_frames = min(n_frames, spectrogram.shape[1])
    k = int(position * (spectrogram.shape[1] - n_frames))
    [window] = cut_windows(spectrogram, np.array([k]), n_frames)
    span = window_span_samples(n_frames, HALF_SECOND_FEATURES)
    start = k * HALF_SECOND_FEATURES.hop_length
    direct = log_mel_spectrogram(whole[start : start + span], HALF_SECOND_SETTINGS)
    np.testing.assert_allclose(window, direct, atol=1e-3, rtol=1e-5)


def test_window_frames_and_span():
    assert HALF_SECOND_SETTINGS.window_frames == round(0.5 * RATE / 256)
    assert window_span_samples(1, HALF_SECOND_FEATURES) == HALF_SECOND_FEATURES.n_fft
    assert window_span_samples(5, HALF_SECOND_FEATURES) == 4 * 256 + 512
    tiny = HALF_SECOND_FEATURES.model_copy(update={"window_seconds": 0.001})
    assert SpectrogramSettings(RATE, tiny).window_frames == 1


def test_frame_times():
    np.testing.assert_allclose(frame_times(np.array([0, 1, 10]), HALF_SECOND_SETTINGS), [0.0, 0.016, 0.16])
    assert frame_times(125, HALF_SECOND_SETTINGS) == pytest.approx(2.0)


# --- event_window_start --------------------------------------------------------


def test_event_window_is_centred_on_event():
    n_window = HALF_SECOND_SETTINGS.window_frames
    n_recording = _frames(60 * RATE)
    t_min, t_max = 20.0, 21.0
    start = event_window_start(t_min, t_max, n_recording_frames=n_recording, spectrogram_settings=HALF_SECOND_SETTINGS)
    # Centre of the window (in seconds) = centre of its first frame + (F-1)/2 hops.
    first_centre = (start * HALF_SECOND_FEATURES.hop_length + HALF_SECOND_FEATURES.n_fft / 2) / RATE
    window_centre = first_centre + (n_window - 1) / 2 * HALF_SECOND_FEATURES.hop_length / RATE
    assert window_centre == pytest.approx((t_min + t_max) / 2, abs=HALF_SECOND_FEATURES.hop_length / RATE)
    # The window's samples straddle the event's centre symmetrically.
    span = window_span_samples(n_window, HALF_SECOND_FEATURES)
    window_start_s = start * HALF_SECOND_FEATURES.hop_length / RATE
    window_end_s = window_start_s + span / RATE
    assert t_min < window_start_s < 20.5 < window_end_s < t_max
    assert (20.5 - window_start_s) == pytest.approx(window_end_s - 20.5, abs=HALF_SECOND_FEATURES.hop_length / RATE)


@pytest.mark.parametrize("centre", [5.0, 12.3, 33.33, 50.01])
def test_event_window_centre_matches_waveform(centre):
    n_window = HALF_SECOND_SETTINGS.window_frames
    start = event_window_start(
        centre - 0.1, centre + 0.1, n_recording_frames=_frames(60 * RATE), spectrogram_settings=HALF_SECOND_SETTINGS
    )
    span = window_span_samples(n_window, HALF_SECOND_FEATURES)
    middle_sample = start * HALF_SECOND_FEATURES.hop_length + span / 2
    assert abs(middle_sample - centre * RATE) <= HALF_SECOND_FEATURES.hop_length / 2 + 1


def test_event_window_clamped_at_start():
    assert event_window_start(0.0, 0.1, n_recording_frames=1000, spectrogram_settings=HALF_SECOND_SETTINGS) == 0
    assert event_window_start(0.0, 0.0001, n_recording_frames=1000, spectrogram_settings=HALF_SECOND_SETTINGS) == 0


def test_event_window_clamped_at_end():
    n_window = HALF_SECOND_SETTINGS.window_frames
    n_recording = _frames(10 * RATE)
    start = event_window_start(9.9, 10.0, n_recording_frames=n_recording, spectrogram_settings=HALF_SECOND_SETTINGS)
    assert start == n_recording - n_window
    # Even an event past the end stays inside.
    assert (
        event_window_start(15.0, 16.0, n_recording_frames=n_recording, spectrogram_settings=HALF_SECOND_SETTINGS)
        == n_recording - n_window
    )


def test_event_window_in_recording_shorter_than_window():
    assert event_window_start(0.1, 0.2, n_recording_frames=5, spectrogram_settings=HALF_SECOND_SETTINGS) == 0


def test_event_window_is_int():
    start = event_window_start(3.0, 4.0, n_recording_frames=1000, spectrogram_settings=HALF_SECOND_SETTINGS)
    assert isinstance(start, int)


# --- sliding_window_starts -------------------------------------------------------


@pytest.mark.parametrize(
    ("n_recording", "n_window", "hop"), [(100, 31, 10), (100, 30, 10), (1000, 125, 62), (50, 50, 7)]
)
def test_sliding_window_starts(n_recording, n_window, hop):
    starts = sliding_window_starts(n_recording, n_window, hop)
    last = n_recording - n_window
    assert starts[0] == 0
    assert starts[-1] == last
    assert np.all(np.diff(starts)[:-1] == hop)
    assert 0 < np.diff(starts)[-1] <= hop if len(starts) > 1 else True
    assert np.all(np.diff(starts) > 0)
    # Every frame of the recording is covered by some window.
    covered = np.zeros(n_recording, dtype=bool)
    for start in starts:
        covered[start : start + n_window] = True
    assert covered.all()


def test_sliding_window_starts_exact_grid():
    np.testing.assert_array_equal(sliding_window_starts(100, 30, 10), [0, 10, 20, 30, 40, 50, 60, 70])
    np.testing.assert_array_equal(sliding_window_starts(100, 31, 10), [0, 10, 20, 30, 40, 50, 60, 69])


@pytest.mark.parametrize("n_recording", [0, 1, 20, 30])
def test_sliding_window_short_recording(n_recording):
    np.testing.assert_array_equal(sliding_window_starts(n_recording, 30, 10), [0])


def test_sliding_window_zero_hop_does_not_hang():
    np.testing.assert_array_equal(sliding_window_starts(5, 3, 0), [0, 1, 2])


def test_sliding_then_cut_on_short_recording_after_padding():
    # A recording shorter than a window: pad the waveform to the window's span
    # and the single window at 0 can be cut.
    n_window = HALF_SECOND_SETTINGS.window_frames
    waveform = np.random.default_rng(0).standard_normal(RATE // 10).astype(np.float32)
    padded = pad_to_length(waveform, window_span_samples(n_window, HALF_SECOND_FEATURES))
    spectrogram = log_mel_spectrogram(padded, HALF_SECOND_SETTINGS)
    starts = sliding_window_starts(spectrogram.shape[1], n_window, 10)
    assert cut_windows(spectrogram, starts, n_window).shape == (1, HALF_SECOND_FEATURES.n_mels, n_window)
