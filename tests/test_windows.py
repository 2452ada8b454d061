"""Cutting windows from a recording: around events, and in the background."""

import numpy as np
import pandas as pd

from rainforest.config import FeatureSettings
from rainforest.windows import WindowGeometry, background_window_starts, event_windows

FEATURES = FeatureSettings(n_fft=512, hop_length=256, n_mels=16, fmin=50, fmax=4000, window_seconds=1.0)
GEOMETRY = WindowGeometry(8000, FEATURES)


def events(*spans, present=True):
    return pd.DataFrame(
        {"species_id": [i % 3 for i in range(len(spans))], "t_min": [a for a, _ in spans], "t_max": [b for _, b in spans], "present": present}
    )


def test_background_windows_overlap_no_event():
    recording_events = events((2.0, 3.0), (6.5, 7.0))
    starts = background_window_starts(recording_events, 310, 20, GEOMETRY, np.random.default_rng(0))
    assert len(starts) == 20 and len(set(starts)) == 20
    begin = starts * FEATURES.hop_length / 8000
    end = begin + GEOMETRY.n_samples / 8000
    for t_min, t_max in [(2.0, 3.0), (6.5, 7.0)]:
        assert ((end <= t_min) | (begin >= t_max)).all()


def test_background_windows_are_capped_by_the_room_left():
    # Events cover the whole 10 s recording: no room for background.
    crowded = events((0.0, 5.0), (5.0, 10.0))
    assert len(background_window_starts(crowded, 310, 3, GEOMETRY, np.random.default_rng(0))) == 0


def test_event_windows_add_unlabelled_background_windows():
    waveform = np.random.default_rng(1).normal(0, 0.1, 8000 * 10).astype(np.float32)
    recording_events = events((2.0, 3.0), (6.5, 7.0))
    windows = event_windows(waveform, recording_events, GEOMETRY, 3, n_background=2, rng=np.random.default_rng(3))
    assert len(windows["targets"]) == 4
    assert list(windows["event_species"]) == [0, 1, -1, -1]
    assert list(windows["event_present"]) == [1, 1, 0, 0]
    assert windows["masks"][2:].sum() == 0 and windows["targets"][:2].sum() == 2
    again = event_windows(waveform, recording_events, GEOMETRY, 3, n_background=2, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(windows["start_times"], again["start_times"])
