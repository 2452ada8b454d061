"""Cutting windows from a recording: around events, and in the background."""

import numpy as np
import pandas as pd
import soundfile as sf

from rainforest.audio import Recording, load_recording
from rainforest.config import EtlSettings, FeatureSettings, SpectrogramSettings
from rainforest.etl import (
    AUTO_MAX_WINDOWS_PER_CALL,
    AUTO_WINDOWS_PER_SPECIES,
    background_window_starts,
    build_window_set,
    event_windows,
    windows_per_call,
)
from rainforest.spectrogram import log_mel_spectrogram, window_span_samples
from rainforest.window_sets import read_windows
from tests.support.settings import EVENTS_HEADER, RATE, SPECTROGRAM_SETTINGS, data_settings
from tests.support.windows import cut_windows

#: One-second windows of 16 mel bands, for 8 kHz recordings (up to 4 kHz).
FEATURES_8KHZ = FeatureSettings(n_fft=512, hop_length=256, n_mels=16, fmin=50, fmax=4000, window_seconds=1.0)
SETTINGS_8KHZ = SpectrogramSettings(8000, FEATURES_8KHZ)
#: Samples in one window of those.
WINDOW_SAMPLES = window_span_samples(SETTINGS_8KHZ.window_frames, FEATURES_8KHZ)


def events(*spans, present=True):
    return pd.DataFrame(
        {
            "species_id": [i % 3 for i in range(len(spans))],
            "t_min": [a for a, _ in spans],
            "t_max": [b for _, b in spans],
            "present": present,
        }
    )


def test_background_windows_overlap_no_event():
    recording_events = events((2.0, 3.0), (6.5, 7.0))
    starts = background_window_starts(recording_events, 310, 20, SETTINGS_8KHZ, np.random.default_rng(0))
    assert len(starts) == 20 and len(set(starts)) == 20
    begin = starts * FEATURES_8KHZ.hop_length / 8000
    end = begin + WINDOW_SAMPLES / 8000
    for t_min, t_max in [(2.0, 3.0), (6.5, 7.0)]:
        assert ((end <= t_min) | (begin >= t_max)).all()


def test_background_windows_are_capped_by_the_room_left():
    # Events cover the whole 10 s recording: no room for background.
    crowded = events((0.0, 5.0), (5.0, 10.0))
    assert len(background_window_starts(crowded, 310, 3, SETTINGS_8KHZ, np.random.default_rng(0))) == 0


def _recording(tmp_path, waveform: np.ndarray) -> Recording:
    sf.write(tmp_path / "recording.flac", waveform, 8000, subtype="PCM_24")
    return Recording(tmp_path / "recording.flac", 8000)


def test_event_windows_add_unlabelled_background_windows(tmp_path):
    waveform = np.random.default_rng(1).normal(0, 0.1, 8000 * 10).astype(np.float32)
    recording_events = events((2.0, 3.0), (6.5, 7.0))
    with _recording(tmp_path, waveform) as recording:
        windows = event_windows(
            recording, recording_events, SETTINGS_8KHZ, n_species=3, n_background=2, rng=np.random.default_rng(3)
        )
        again = event_windows(
            recording, recording_events, SETTINGS_8KHZ, n_species=3, n_background=2, rng=np.random.default_rng(3)
        )
    assert len(windows["targets"]) == 4
    assert list(windows["event_species"]) == [0, 1, -1, -1]
    assert list(windows["event_present"]) == [1, 1, 0, 0]
    assert windows["masks"][2:].sum() == 0 and windows["targets"][:2].sum() == 2
    np.testing.assert_array_equal(windows["start_times"], again["start_times"])


def test_windows_read_from_excerpts_equal_windows_cut_from_the_whole_recording(tmp_path):
    waveform = np.random.default_rng(2).normal(0, 0.1, 8000 * 10).astype(np.float32)
    recording_events = events((0.1, 0.4), (2.0, 3.0), (9.5, 9.9))
    with _recording(tmp_path, waveform) as recording:
        windows = event_windows(
            recording, recording_events, SETTINGS_8KHZ, n_species=3, n_background=2, rng=np.random.default_rng(3)
        )
    whole = load_recording(tmp_path / "recording.flac", 8000)
    starts = np.round(windows["start_times"] * 8000 / FEATURES_8KHZ.hop_length).astype(int)
    assert starts[0] == 0 and starts[2] == (len(whole) - WINDOW_SAMPLES) // FEATURES_8KHZ.hop_length
    for start, excerpt in zip(starts, windows["waveforms"]):
        np.testing.assert_array_equal(excerpt, whole[start * FEATURES_8KHZ.hop_length :][:WINDOW_SAMPLES])
    cut = cut_windows(log_mel_spectrogram(whole, SETTINGS_8KHZ), starts, SETTINGS_8KHZ.window_frames)
    np.testing.assert_allclose(windows["spectrograms"], cut, atol=1e-4)


def test_recording_shorter_than_a_window_is_zero_padded(tmp_path):
    waveform = np.random.default_rng(4).normal(0, 0.1, 3000).astype(np.float32)
    with _recording(tmp_path, waveform) as recording:
        windows = event_windows(recording, events((0.05, 0.2)), SETTINGS_8KHZ, n_species=3)
    assert windows["waveforms"].shape == (1, WINDOW_SAMPLES)
    assert np.all(windows["waveforms"][0, 3000:] == 0) and np.any(windows["waveforms"][0, :3000] != 0)


def test_windows_per_event_spread_windows_along_each_event(tmp_path):
    waveform = np.random.default_rng(5).normal(0, 0.1, 8000 * 10).astype(np.float32)
    # A 3 s event in 1 s windows, and a short one.
    recording_events = events((2.0, 5.0), (7.0, 7.3))
    with _recording(tmp_path, waveform) as recording:
        one = event_windows(
            recording, recording_events, SETTINGS_8KHZ, n_species=3, n_background=1, rng=np.random.default_rng(3)
        )
        three = event_windows(
            recording,
            recording_events,
            SETTINGS_8KHZ,
            n_species=3,
            n_background=1,
            rng=np.random.default_rng(3),
            windows_per_event=3,
        )
    assert list(three["event_species"]) == [0, 0, 0, 1, 1, 1, -1]
    assert list(three["event_present"]) == [1, 1, 1, 1, 1, 1, 0]
    assert (three["targets"][:6].sum(axis=1) == 1).all()
    # The long event's windows are centred on its thirds: 2.5, 3.5 and 4.5 s.
    centres = (three["start_times"][:3] + three["end_times"][:3]) / 2
    np.testing.assert_allclose(centres, [2.5, 3.5, 4.5], atol=FEATURES_8KHZ.hop_length / 8000)
    # The middle window of each event is the one windows_per_event 1 cuts.
    np.testing.assert_array_equal(three["start_times"][[1, 4, 6]], one["start_times"])
    np.testing.assert_array_equal(three["spectrograms"][[1, 4, 6]], one["spectrograms"])


def test_windows_per_event_can_differ_from_one_event_to_the_next(tmp_path):
    # etl.windows_per_event: auto gives each event its species' count.
    waveform = np.random.default_rng(5).normal(0, 0.1, 8000 * 10).astype(np.float32)
    recording_events = events((2.0, 5.0), (7.0, 7.3))
    with _recording(tmp_path, waveform) as recording:
        mixed = event_windows(recording, recording_events, SETTINGS_8KHZ, n_species=3, windows_per_event=(3, 1))
        three = event_windows(recording, recording_events, SETTINGS_8KHZ, n_species=3, windows_per_event=3)
        one = event_windows(recording, recording_events, SETTINGS_8KHZ, n_species=3)
    assert list(mixed["event_species"]) == [0, 0, 0, 1]
    np.testing.assert_array_equal(mixed["start_times"], [*three["start_times"][:3], one["start_times"][1]])


def test_auto_windows_per_call_fill_each_species_to_the_target_within_the_cap():
    counts = windows_per_call({0: 24, 1: 100, 2: 6, 3: 5, 4: 1, 5: 0}, "auto")
    assert counts == {0: 1, 1: 1, 2: 4, 3: 5, 4: AUTO_MAX_WINDOWS_PER_CALL, 5: 1}
    for species, calls in {2: 6, 3: 5}.items():
        assert calls * counts[species] >= AUTO_WINDOWS_PER_SPECIES > calls * (counts[species] - 1)
    assert windows_per_call({0: 24, 1: 3}, 2) == {0: 2, 1: 2}


def test_auto_cuts_more_windows_of_a_species_with_few_calls_and_reports_it(tmp_path):
    # s0: 30 calls (one window each); s1: 3 calls (8 each, the cap); s2: 6 calls (4 each), one known absence.
    dataset = tmp_path / "dataset"
    (dataset / "train").mkdir(parents=True)
    rows = [f"r{i},0,1,{1 + 2 * k}.0,500.0,{1.5 + 2 * k},3000.0" for i in range(3) for k in range(10)]
    rows += [f"r3,1,1,{1 + 2 * k}.0,500.0,{1.5 + 2 * k},3000.0" for k in range(3)]
    rows += [f"r4,2,1,{1 + 2 * k}.0,500.0,{1.5 + 2 * k},3000.0" for k in range(6)]
    for i in range(5):
        sf.write(dataset / "train" / f"r{i}.wav", np.random.default_rng(i).normal(0, 0.1, RATE * 21), RATE)
    (dataset / "train_tp.csv").write_text("\n".join([EVENTS_HEADER, *rows]) + "\n")
    (dataset / "train_fp.csv").write_text(f"{EVENTS_HEADER}\nr4,1,1,15.0,500.0,15.5,3000.0\n")
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1,s2\ntest0,0,0,0\n")
    settings = EtlSettings(workers=1, on_unreadable="stop", background_windows=0, windows_per_event="auto")
    report = build_window_set(
        data_settings(dataset), tmp_path / "windows.h5", spectrogram_settings=SPECTROGRAM_SETTINGS, settings=settings
    )
    assert report.windows_per_call == {"s0": 1, "s1": 8, "s2": 4}
    windows = read_windows(tmp_path / "windows.h5", ("event_species", "event_present"))
    present = windows["event_present"] == 1
    assert np.bincount(windows["event_species"][present], minlength=3).tolist() == [30, 24, 24]
    assert (windows["event_species"][~present] == 1).sum() == 8  # the known absence of s1, as many
    assert report.windows_written == 30 + 24 + 24 + 8


def test_a_dataset_without_background_time_says_so(tmp_path, caplog):
    # Every recording is one call from end to end: no room for a background window anywhere.
    dataset = tmp_path / "dataset"
    (dataset / "train").mkdir(parents=True)
    for i in range(3):
        sf.write(dataset / "train" / f"r{i}.wav", np.random.default_rng(i).normal(0, 0.1, RATE * 2), RATE)
    rows = [f"r{i},{i % 2},1,0.0,500.0,2.0,3000.0" for i in range(3)]
    (dataset / "train_tp.csv").write_text("\n".join([EVENTS_HEADER, *rows]) + "\n")
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1\ntest0,0,0\n")
    settings = EtlSettings(workers=1, on_unreadable="stop", background_windows=2, windows_per_event=1)
    report = build_window_set(
        data_settings(dataset), tmp_path / "windows.h5", spectrogram_settings=SPECTROGRAM_SETTINGS, settings=settings
    )
    assert report.windows_written == 3
    assert "no background window" in caplog.text and "features.window_seconds" in caplog.text
