"""The images ``evaluate`` saves: which windows they show, where they draw, and that they are stable PNGs."""

from __future__ import annotations

import io

import librosa
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rainforest import figures
from rainforest.detect.thresholds import build_detector, select_thresholds
from rainforest.metrics import average_precision_per_species, worst_false_negatives, worst_false_positives
from rainforest.spectrogram import log_mel_spectrogram
from tests.support.settings import FEATURES, RATE, SPECTROGRAM_SETTINGS

SPECIES = ["s0", "s1", "s2"]
PRESENT_GREEN = (124, 252, 0)  # #7CFC00, the boxes of labelled calls

# --- which windows -----------------------------------------------------------------------

TRUTH = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0]])
SCORES = np.array([[0.2, 0.9, 0.1], [0.3, 0.6, 0.8], [0.5, 0.4, 0.7], [0.05, 0.95, 0.3]])


def test_worst_false_positives_are_the_highest_absent_scores_one_per_window():
    assert worst_false_positives(TRUTH, SCORES, 10) == [(0, 1), (1, 2), (2, 2), (3, 2)]
    assert worst_false_positives(TRUTH, SCORES, 2) == [(0, 1), (1, 2)]


def test_worst_false_negatives_are_the_lowest_present_scores_one_per_window():
    # Window 2 holds no species: it cannot be missed.
    assert worst_false_negatives(TRUTH, SCORES, 10) == [(3, 0), (0, 0), (1, 1)]
    assert worst_false_negatives(np.zeros_like(TRUTH), SCORES, 3) == []


def test_ties_go_to_the_earlier_window():
    assert worst_false_positives(np.zeros((3, 1)), np.full((3, 1), 0.5), 2) == [(0, 0), (1, 0)]


# --- where the spectrogram lies -------------------------------------------------------------


def test_extent_centres_each_mel_bin_on_its_filter_frequency():
    _, _, bottom, top = figures.spectrogram_extent(0.0, 10, SPECTROGRAM_SETTINGS)
    spacing = (top - bottom) / FEATURES.n_mels
    centres = librosa.mel_to_hz(bottom + (np.arange(FEATURES.n_mels) + 0.5) * spacing)
    filters = librosa.mel_frequencies(FEATURES.n_mels + 2, fmin=FEATURES.fmin, fmax=FEATURES.fmax)[1:-1]
    np.testing.assert_allclose(centres, filters, rtol=1e-6)


def test_a_tone_and_a_click_land_where_they_are():
    n = int(FEATURES.window_seconds * RATE)
    waveform = 0.5 * np.sin(2 * np.pi * 2000 * np.arange(n) / RATE).astype(np.float32)
    waveform[int(0.3 * RATE) : int(0.3 * RATE) + 64] += 1.0  # a click 0.3 s into the window
    spectrogram = log_mel_spectrogram(waveform, SPECTROGRAM_SETTINGS)[:, : SPECTROGRAM_SETTINGS.window_frames]
    n_mels, n_frames = spectrogram.shape
    left, right, bottom, top = figures.spectrogram_extent(10.0, n_frames, SPECTROGRAM_SETTINGS)
    row = int(np.argmax(spectrogram.mean(axis=1)))
    bin_height = (top - bottom) / n_mels
    assert abs(bottom + (row + 0.5) * bin_height - librosa.hz_to_mel(2000)) <= bin_height
    high_band = spectrogram[-8:]  # the click is broadband, the tone is not up there
    column = int(np.argmax(high_band.mean(axis=0)))
    frame_width = (right - left) / n_frames
    assert abs(left + (column + 0.5) * frame_width - 10.3) <= 2 * frame_width


# --- the images ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validation():
    """Three validation windows of two recordings, with a tone per present species."""
    rng = np.random.default_rng(0)
    n = int(FEATURES.window_seconds * RATE)
    t = np.arange(n) / RATE
    tones = {0: 1000, 1: 3000, 2: 6000}
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1]], dtype=np.uint8)
    spectrograms = []
    for present in targets:
        waveform = 0.01 * rng.standard_normal(n)
        for species in np.flatnonzero(present):
            waveform += 0.3 * np.sin(2 * np.pi * tones[species] * t) * (t > 0.2) * (t < 0.8)
        spectrograms.append(log_mel_spectrogram(waveform.astype(np.float32), SPECTROGRAM_SETTINGS)[:, :62])
    return {
        "spectrograms": np.stack(spectrograms),
        "recording_ids": np.array(["rec_a", "rec_a", "rec_b"], dtype=object),
        "start_times": np.array([4.0, 20.0, 0.0]),
        "targets": targets,
        "masks": np.array([[1, 0, 0], [0, 1, 1], [1, 0, 1]], dtype=np.uint8),
        "scores": np.array([[0.8, 0.7, 0.1], [0.2, 0.4, 0.9], [0.6, 0.3, 0.5]]),
    }


EVENTS = pd.DataFrame(
    {
        "recording_id": ["rec_a", "rec_a", "rec_a", "rec_b", "rec_b"],
        "species_id": [0, 1, 2, 0, 2],
        "t_min": [4.2, 20.2, 20.1, 0.2, 0.2],
        "t_max": [4.8, 20.8, 20.9, 0.8, 0.8],
        "f_min": [800.0, 2500.0, 5000.0, 800.0, 5000.0],
        "f_max": [1300.0, 3500.0, 7000.0, 1300.0, 7000.0],
        "present": [True, True, False, True, True],
    }
)


def examples_figure(validation, picks):
    return figures.window_examples(
        validation,
        validation["scores"],
        picks,
        events=EVENTS,
        species=SPECIES,
        spectrogram_settings=SPECTROGRAM_SETTINGS,
        title="Worst false positives",
    )


def test_event_boxes_are_drawn_where_the_events_are(validation):
    figure = examples_figure(validation, [(1, 2), (0, 1)])
    second_window = figure.axes[0]  # window 1: rec_a 20.0 .. 21.0 s, one call and one lookalike
    boxes = sorted((patch.get_x(), patch.get_y(), patch.get_linestyle()) for patch in second_window.patches)
    assert boxes == sorted(
        [
            (20.2, librosa.hz_to_mel(2500.0), "-"),
            (20.1, librosa.hz_to_mel(5000.0), "--"),
        ]
    )
    assert "s2 score 0.900 (labelled absent)" in second_window.get_title()
    first_window = figure.axes[1]  # rec_a 4.0 .. 5.0 s: only its own event, not those at 20 s
    assert [(patch.get_x(), patch.get_width()) for patch in first_window.patches] == [(4.2, pytest.approx(0.6))]
    assert "(not labelled)" in first_window.get_title()


def all_figures(validation):
    truth, scores = validation["targets"], validation["scores"]
    average_precision = average_precision_per_species(truth, scores)
    detector = build_detector(SPECIES, select_thresholds(truth, scores, 0.9), np.zeros((3, 2)), 0.9)
    return {
        "average_precision": figures.average_precision_chart(SPECIES, average_precision),
        "precision_recall_by_species": figures.precision_recall_curves(truth, scores, average_precision, detector),
        "worst_false_positives": examples_figure(validation, worst_false_positives(truth, scores, 6)),
        "worst_false_negatives": examples_figure(validation, worst_false_negatives(truth, scores, 6)),
        "nothing_to_show": examples_figure(validation, []),
    }


def test_images_are_png_of_their_figure_size_with_content(validation, tmp_path):
    for name, figure in all_figures(validation).items():
        figures.save_png(figure, tmp_path / f"{name}.png")
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, name
        image = Image.open(io.BytesIO(data))
        width, height = figure.get_size_inches() * figures.DPI
        assert image.size == (round(width), round(height)), name
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) > 20, f"{name} is nearly blank"
        if name.startswith("worst"):
            green = np.all(np.abs(pixels.astype(int) - PRESENT_GREEN) < 30, axis=1)
            assert green.sum() > 100, f"{name}: no labelled-call box visible"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{name}.png" for name in all_figures(validation))


def test_images_are_byte_for_byte_reproducible(validation, tmp_path):
    for attempt in ["first", "second"]:
        for name, figure in all_figures(validation).items():
            figures.save_png(figure, tmp_path / attempt / f"{name}.png")
    first = {path.name: path.read_bytes() for path in (tmp_path / "first").iterdir()}
    second = {path.name: path.read_bytes() for path in (tmp_path / "second").iterdir()}
    assert len(first) == 5 and first == second
    assert b"Software" not in first["average_precision.png"]  # no matplotlib version stamp
