"""Tests of rainforest.inference: scoring whole recordings window by window."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import soundfile as sf

import rainforest.inference as inference
from rainforest.config import FeatureSettings, ModelSettings
from rainforest.features import cut_windows, log_mel_spectrogram, window_frames
from rainforest.inference import RecordingScorer, read_prepared, score_recordings
from rainforest.model import ModelCard, build_model
from tests.support.settings import RATE

N_MELS = 16
#: One-second windows of 16 mel bands up to 8 kHz.
FEATURES_16_MELS = FeatureSettings(n_fft=512, hop_length=256, n_mels=N_MELS, fmin=50.0, fmax=8000.0, window_seconds=1.0)
N_FRAMES = window_frames(FEATURES_16_MELS, RATE)  # 62


def _model(architecture: str = "cnn", filters=(4, 8, 8)) -> keras.Model:
    keras.utils.set_random_seed(0)
    settings = ModelSettings(
        architecture=architecture, frequency_channel=True, filters=list(filters), dense_units=8, dropout=0.0
    )
    return build_model(settings, (N_MELS, N_FRAMES), 3, np.full(N_MELS, -40.0), np.full(N_MELS, 100.0))


def _waveform(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


@pytest.mark.parametrize(("architecture", "stride"), [("cnn", 8), ("resnet", 16), ("baseline", None)])
def test_cnn_and_resnet_score_whole_recordings_in_one_pass(architecture, stride):
    scorer = RecordingScorer(_model(architecture), FEATURES_16_MELS, RATE)
    assert scorer.fully_convolutional == (stride is not None)
    if stride:
        assert scorer.stride == stride


def test_one_window_recording_scores_as_the_model_does():
    # When the recording is exactly one window long, the pass over the whole
    # recording is the pass over the window: the same numbers.
    model = _model()
    waveform = _waveform(1.0)
    scorer = RecordingScorer(model, FEATURES_16_MELS, RATE)
    starts, scores = scorer.window_scores(waveform, 0.5, 8)
    spectrogram = scorer.prepare(waveform)
    assert spectrogram.shape[1] == N_FRAMES
    np.testing.assert_array_equal(starts, [0.0])
    np.testing.assert_allclose(scores, model(spectrogram[None]).numpy(), atol=1e-5)


def test_window_starts_step_by_the_hop_and_cover_the_recording():
    scorer = RecordingScorer(_model(), FEATURES_16_MELS, RATE)
    starts, scores = scorer.window_scores(_waveform(10.0), 0.5, 4)
    assert scores.shape == (len(starts), 3) and np.all((scores >= 0) & (scores <= 1))
    step = np.diff(starts)
    stride_seconds = scorer.stride * FEATURES_16_MELS.hop_length / RATE
    # The hop is rounded to whole feature-map frames, the last window aligned to the end.
    np.testing.assert_allclose(step[:-1], round(0.5 / stride_seconds) * stride_seconds)
    assert 0 < step[-1] <= step[0]
    assert starts[0] == 0.0 and starts[-1] + FEATURES_16_MELS.window_seconds >= 10.0 - stride_seconds


def test_pooled_scores_follow_the_per_window_scores():
    # Away from the one-window case, the windows' convolutions also see their
    # neighbours' audio, so the numbers differ a little, not the ranking.
    model = _model()
    scorer = RecordingScorer(model, FEATURES_16_MELS, RATE)
    waveform = np.concatenate([_waveform(3.0, 1), 3 * _waveform(3.0, 2), _waveform(3.0, 3)])
    starts, pooled = scorer.window_scores(waveform, 0.5, 8)
    spectrogram = scorer.prepare(waveform)
    frames = np.minimum(np.round(starts * RATE / FEATURES_16_MELS.hop_length).astype(int), spectrogram.shape[1] - N_FRAMES)
    direct = model(cut_windows(spectrogram, frames, N_FRAMES)).numpy()
    assert np.corrcoef(pooled.ravel(), direct.ravel())[0, 1] > 0.9
    assert np.abs(pooled - direct).mean() < 0.05


def test_long_recordings_are_scored_in_chunks(monkeypatch):
    model = _model()
    waveform = _waveform(12.0)
    whole = RecordingScorer(model, FEATURES_16_MELS, RATE).window_scores(waveform, 1.0, 8)
    monkeypatch.setattr(inference, "CHUNK_FRAMES", 128)
    chunked = RecordingScorer(model, FEATURES_16_MELS, RATE).window_scores(waveform, 1.0, 8)
    np.testing.assert_array_equal(whole[0], chunked[0])
    assert np.abs(whole[1] - chunked[1]).mean() < 0.05


def test_short_recording_gets_one_window():
    starts, scores = RecordingScorer(_model(), FEATURES_16_MELS, RATE).window_scores(_waveform(0.3), 0.5, 8)
    assert starts.tolist() == [0.0] and scores.shape == (1, 3)


def test_baseline_scores_each_window_cut_from_the_spectrogram():
    model = _model("baseline", filters=(4,))
    waveform = _waveform(4.0)
    starts, scores = RecordingScorer(model, FEATURES_16_MELS, RATE).window_scores(waveform, 0.5, 3)
    spectrogram = log_mel_spectrogram(waveform, RATE, FEATURES_16_MELS)
    frames = np.round(starts * RATE / FEATURES_16_MELS.hop_length).astype(int)
    np.testing.assert_allclose(scores, model(cut_windows(spectrogram, frames, N_FRAMES)).numpy(), atol=1e-5)


def test_spectrograms_come_in_order_whatever_the_threads(tmp_path):
    paths = []
    for i in range(7):
        paths.append(tmp_path / f"r{i}.wav")
        sf.write(paths[-1], _waveform(1.0 + 0.25 * i, seed=i), RATE)
    scorer = RecordingScorer(_model(), FEATURES_16_MELS, RATE)
    one, three = list(read_prepared(scorer, paths, 1)), list(read_prepared(scorer, paths, 3))
    assert [seconds for seconds, _ in one] == [1.0 + 0.25 * i for i in range(7)]
    assert [s.shape for _, s in one] == [s.shape for _, s in three]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(one, three))
    assert one[0][1].shape[1] < one[-1][1].shape[1]

    ids = [p.stem for p in paths]
    card = ModelCard(RATE, FEATURES_16_MELS, ["a", "b", "c"])
    scores = [
        score_recordings(_model(), card, tmp_path, ids, hop_seconds=0.5, batch_size=8, workers=w) for w in (1, 2)
    ]
    np.testing.assert_array_equal(scores[0], scores[1])
    assert scores[0].shape == (7, 3)
