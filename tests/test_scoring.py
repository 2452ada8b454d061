"""Tests of rainforest.detect.scoring: scoring whole recordings window by window."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import soundfile as sf
from threadpoolctl import threadpool_limits

import rainforest.detect.scoring as inference
import rainforest.spectrogram as spectrogram
from rainforest.audio import Skipped
from rainforest.card import ModelCard
from rainforest.config import FeatureSettings, ModelSettings, ScoringSettings, SpectrogramSettings, SubmitSettings
from rainforest.detect.scoring import RecordingScorer, WindowScores, make_scorer, score_windows, stream_windows
from rainforest.errors import AudioError
from rainforest.model import build_model, ensemble, ensemble_members
from rainforest.spectrogram import (
    log_mel_spectrogram,
    sliding_window_starts,
    window_span_samples,
)
from rainforest.submit import score_recordings
from tests.support.settings import RATE
from tests.support.windows import cut_windows, pad_to_length, window_scores

N_MELS = 16
#: One-second windows of 16 mel bands up to 8 kHz.
FEATURES_16_MELS = FeatureSettings(n_fft=512, hop_length=256, n_mels=N_MELS, fmin=50.0, fmax=8000.0, window_seconds=1.0)
SETTINGS_16_MELS = SpectrogramSettings(RATE, FEATURES_16_MELS)
N_FRAMES = SETTINGS_16_MELS.window_frames  # 62


def _model(architecture: str = "cnn", filters=(4, 8, 8)) -> keras.Model:
    keras.utils.set_random_seed(0)
    settings = ModelSettings(
        architecture=architecture, frequency_channel=True, filters=list(filters), dense_units=8, dropout=0.0
    )
    return build_model(settings, (N_MELS, N_FRAMES), 3, mean=np.full(N_MELS, -40.0), variance=np.full(N_MELS, 100.0))


def _waveform(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def _spectrogram(waveform: np.ndarray) -> np.ndarray:
    # The whole recording's spectrogram, padded to one window, as a scorer sees it.
    return log_mel_spectrogram(
        pad_to_length(waveform, window_span_samples(N_FRAMES, FEATURES_16_MELS)), SETTINGS_16_MELS
    )


@pytest.mark.parametrize(("architecture", "stride"), [("cnn", 8), ("resnet", 16), ("baseline", None)])
def test_cnn_and_resnet_score_whole_recordings_in_one_pass(architecture, stride):
    scorer = RecordingScorer(_model(architecture), SETTINGS_16_MELS)
    assert scorer.fully_convolutional == (stride is not None)
    if stride:
        assert scorer.stride == stride


def test_one_window_recording_scores_as_the_model_does():
    # When the recording is exactly one window long, the pass over the whole
    # recording is the pass over the window: the same numbers.
    model = _model()
    waveform = _waveform(1.0)
    scorer = RecordingScorer(model, SETTINGS_16_MELS)
    starts, scores = window_scores(scorer, waveform, scoring=ScoringSettings(hop_seconds=0.5, batch_size=8))
    spectrogram = _spectrogram(waveform)
    assert spectrogram.shape[1] == N_FRAMES
    np.testing.assert_array_equal(starts, [0.0])
    np.testing.assert_allclose(scores, model(spectrogram[None]).numpy(), atol=1e-5)


def test_an_ensemble_scores_as_the_mean_of_its_members():
    # The folds' models of cross-validation: their feature maps side by side, each head on its own.
    members = [_model(), _model(filters=(4, 8, 8))]
    members[1].set_weights([w * 0.9 for w in members[0].get_weights()])
    combined = ensemble(members)
    assert [m.name for m in ensemble_members(combined)] == ["fold_0", "fold_1"]
    scorer = RecordingScorer(combined, SETTINGS_16_MELS)
    assert scorer.fully_convolutional
    waveform = _waveform(5.0)
    _, scores = window_scores(scorer, waveform, scoring=ScoringSettings(hop_seconds=0.5, batch_size=8))
    each = [
        window_scores(
            RecordingScorer(m, SETTINGS_16_MELS), waveform, scoring=ScoringSettings(hop_seconds=0.5, batch_size=8)
        )[1]
        for m in members
    ]
    np.testing.assert_allclose(scores, (each[0] + each[1]) / 2, atol=1e-6)
    assert not np.allclose(each[0], each[1])
    # One window long: the ensemble model's own output.
    one = _waveform(1.0)
    np.testing.assert_allclose(
        window_scores(scorer, one, scoring=ScoringSettings(hop_seconds=0.5, batch_size=8))[1],
        combined(_spectrogram(one)[None]).numpy(),
        atol=1e-5,
    )


def test_window_starts_step_by_the_hop_and_cover_the_recording():
    scorer = RecordingScorer(_model(), SETTINGS_16_MELS)
    starts, scores = window_scores(scorer, _waveform(10.0), scoring=ScoringSettings(hop_seconds=0.5, batch_size=4))
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
    scorer = RecordingScorer(model, SETTINGS_16_MELS)
    waveform = np.concatenate([_waveform(3.0, 1), 3 * _waveform(3.0, 2), _waveform(3.0, 3)])
    starts, pooled = window_scores(scorer, waveform, scoring=ScoringSettings(hop_seconds=0.5, batch_size=8))
    spectrogram = _spectrogram(waveform)
    frames = np.minimum(
        np.round(starts * RATE / FEATURES_16_MELS.hop_length).astype(int), spectrogram.shape[1] - N_FRAMES
    )
    direct = model(cut_windows(spectrogram, frames, N_FRAMES)).numpy()
    assert np.corrcoef(pooled.ravel(), direct.ravel())[0, 1] > 0.9
    assert np.abs(pooled - direct).mean() < 0.05


def test_long_recordings_are_scored_in_chunks(monkeypatch):
    model = _model()
    waveform = _waveform(12.0)
    whole = window_scores(
        RecordingScorer(model, SETTINGS_16_MELS), waveform, scoring=ScoringSettings(hop_seconds=1.0, batch_size=8)
    )
    monkeypatch.setattr(inference, "CHUNK_FRAMES", 128)
    chunked = window_scores(
        RecordingScorer(model, SETTINGS_16_MELS), waveform, scoring=ScoringSettings(hop_seconds=1.0, batch_size=8)
    )
    np.testing.assert_array_equal(whole[0], chunked[0])
    assert np.abs(whole[1] - chunked[1]).mean() < 0.05


def test_short_recording_gets_one_window():
    starts, scores = window_scores(
        RecordingScorer(_model(), SETTINGS_16_MELS),
        _waveform(0.3),
        scoring=ScoringSettings(hop_seconds=0.5, batch_size=8),
    )
    assert starts.tolist() == [0.0] and scores.shape == (1, 3)


def test_baseline_scores_each_window_cut_from_the_spectrogram():
    model = _model("baseline", filters=(4,))
    waveform = _waveform(4.0)
    starts, scores = window_scores(
        RecordingScorer(model, SETTINGS_16_MELS), waveform, scoring=ScoringSettings(hop_seconds=0.5, batch_size=3)
    )
    spectrogram = log_mel_spectrogram(waveform, SETTINGS_16_MELS)
    frames = np.round(starts * RATE / FEATURES_16_MELS.hop_length).astype(int)
    np.testing.assert_allclose(scores, model(cut_windows(spectrogram, frames, N_FRAMES)).numpy(), atol=1e-5)


def _whole_file_scores(scorer: RecordingScorer, waveform: np.ndarray, hop_seconds: float, batch_size: int):
    # Scoring the whole recording at once, as before scoring streamed: the
    # whole spectrogram, the trunk over its CHUNK_FRAMES chunks, every window's
    # slice of the whole feature map, the head over batches of them. One BLAS
    # thread, as score_windows runs.
    with threadpool_limits(limits=1, user_api="blas"):
        spectrogram = _spectrogram(waveform)
    chunks = range(0, spectrogram.shape[1], inference.CHUNK_FRAMES)
    feature_map = np.concatenate(
        [scorer._trunk(spectrogram[None, :, c : c + inference.CHUNK_FRAMES]).numpy().mean(axis=1)[0] for c in chunks]
    )
    hop_frames = round(round(hop_seconds * RATE / FEATURES_16_MELS.hop_length) / scorer.stride)
    starts = sliding_window_starts(len(feature_map), scorer.window_width, hop_frames)
    windows = np.lib.stride_tricks.sliding_window_view(feature_map, scorer.window_width, axis=0)[starts]
    pooled = np.concatenate([windows.max(axis=2), windows.mean(axis=2)], axis=1)
    scores = np.concatenate(
        [scorer._head(pooled[i : i + batch_size]).numpy() for i in range(0, len(pooled), batch_size)]
    )
    return starts * scorer.stride * FEATURES_16_MELS.hop_length / RATE, scores


@pytest.mark.parametrize("read_samples", [999, 25_000, 10**6])
def test_streamed_scores_are_the_whole_files_scores(tmp_path, monkeypatch, read_samples):
    # A recording of many chunks, decoded in pieces of any size: the scores
    # are exactly those of scoring the whole file at once. (Chunks of the
    # spectrogram's own block size, as CHUNK_FRAMES is by default.)
    monkeypatch.setattr(inference, "CHUNK_FRAMES", 128)
    monkeypatch.setattr(spectrogram, "FRAME_BLOCK", 128)
    scorer = RecordingScorer(_model(), SETTINGS_16_MELS)
    scorer.block_samples = read_samples
    waveform = _waveform(41.3)
    sf.write(tmp_path / "long.wav", waveform, RATE, subtype="FLOAT")
    [item] = score_windows(
        scorer, {"long": tmp_path / "long.wav"}, scoring=ScoringSettings(hop_seconds=0.5, batch_size=7)
    )
    # A scorer of its own: TensorFlow compiles a function afresh for a new
    # batch shape, and after that once for all shapes, which can change the
    # last bit; the same calls in the same order compile the same way.
    starts, scores = _whole_file_scores(RecordingScorer(scorer.model, SETTINGS_16_MELS), waveform, 0.5, 7)
    np.testing.assert_array_equal(item.starts, starts)
    np.testing.assert_array_equal(item.scores, scores)
    assert item.seconds == pytest.approx(41.3)


def test_streamed_baseline_scores_are_the_whole_files_scores():
    model = _model("baseline", filters=(4,))
    scorer = RecordingScorer(model, SETTINGS_16_MELS)
    scorer.block_samples = 3001
    waveform = _waveform(6.0)
    starts, scores = window_scores(scorer, waveform, scoring=ScoringSettings(hop_seconds=0.25, batch_size=5))
    frames = np.round(starts * RATE / FEATURES_16_MELS.hop_length).astype(int)
    windows = cut_windows(_spectrogram(waveform), frames, N_FRAMES)
    expected = np.concatenate([model(windows[i : i + 5], training=False).numpy() for i in range(0, len(windows), 5)])
    np.testing.assert_array_equal(scores, expected)


def test_windows_stream_in_batches_of_the_whole():
    rows = np.arange(50 * 3).reshape(50, 3)
    starts = np.array([0, 4, 9, 20, 21, 40, 44])  # gaps wider than a block, and overlaps
    batches = list(stream_windows(np.array_split(rows, 9), starts, 6, 3))
    whole = np.lib.stride_tricks.sliding_window_view(rows, 6, axis=0)[starts]
    assert [len(batch) for batch in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), whole)
    with pytest.raises(ValueError, match="the blocks end at row 45, before the window at 20"):
        list(stream_windows([rows[:45]], starts, 6, 3))


def test_unreadable_recordings_stop_or_are_skipped(tmp_path):
    sf.write(tmp_path / "good.wav", _waveform(2.0), RATE)
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    recordings = {"bad": tmp_path / "bad.wav", "good": tmp_path / "good.wav"}
    scorer = RecordingScorer(_model(), SETTINGS_16_MELS)
    with pytest.raises(AudioError, match="bad.wav: cannot decode audio"):
        list(score_windows(scorer, recordings, scoring=ScoringSettings(hop_seconds=0.5, batch_size=8)))
    bad, good = score_windows(
        scorer, recordings, scoring=ScoringSettings(hop_seconds=0.5, batch_size=8), skip_unreadable=True, workers=2
    )
    assert bad == Skipped("bad", tmp_path / "bad.wav", bad.reason) and "cannot decode audio" in bad.reason
    assert isinstance(good, WindowScores) and good.scores.shape[1] == 3


def test_scores_come_in_order_whatever_the_threads(tmp_path):
    paths = []
    for i in range(7):
        paths.append(tmp_path / f"r{i}.wav")
        sf.write(paths[-1], _waveform(1.0 + 0.25 * i, seed=i), RATE)
    scorer = RecordingScorer(_model(), SETTINGS_16_MELS)
    recordings = {path.stem: path for path in paths}
    one, three = (
        list(score_windows(scorer, recordings, scoring=ScoringSettings(hop_seconds=0.5, batch_size=8), workers=w))
        for w in (1, 3)
    )
    assert [item.seconds for item in one] == [1.0 + 0.25 * i for i in range(7)]
    assert [item.recording_id for item in three] == list(recordings)
    assert all(np.array_equal(a.scores, b.scores) for a, b in zip(one, three))
    assert len(one[0].starts) < len(one[-1].starts)

    ids = [p.stem for p in paths]
    card = ModelCard(SETTINGS_16_MELS, ["a", "b", "c"])
    settings = {w: SubmitSettings(workers=w, hop_seconds=0.5, batch_size=8, aggregation="max", top_k=1) for w in (1, 2)}
    scores = [score_recordings(_model(), card, tmp_path, ids, settings[w]) for w in (1, 2)]
    np.testing.assert_array_equal(scores[0], scores[1])
    assert scores[0].shape == (7, 3)
    assert isinstance(make_scorer(_model(), card), RecordingScorer)
