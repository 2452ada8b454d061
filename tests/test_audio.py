"""Tests of rainforest.audio on real files written with soundfile."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rainforest.audio import AUDIO_EXTENSIONS, index_recordings, load_recording, to_mono
from rainforest.errors import AudioError
from tests.support.settings import COMPETITION_RATE


def _tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _peak_frequency(waveform: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.fft.rfftfreq(len(waveform), 1 / rate)[spectrum.argmax()])


@pytest.fixture
def signal() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.3 * rng.uniform(-1, 1, COMPETITION_RATE // 2)).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "subtype", "tolerance"),
    [
        ("a.flac", "PCM_16", 2**-15),
        ("a.flac", "PCM_24", 2**-23),
        ("a.wav", "PCM_16", 2**-15),
        ("a.wav", "PCM_24", 2**-23),
        ("a.wav", "FLOAT", 0.0),
    ],
)
def test_lossless_formats_round_trip(tmp_path, signal, name, subtype, tolerance):
    path = tmp_path / name
    sf.write(path, signal, COMPETITION_RATE, subtype=subtype)
    waveform = load_recording(path, COMPETITION_RATE)
    assert waveform.dtype == np.float32
    assert waveform.ndim == 1
    assert waveform.flags["C_CONTIGUOUS"]
    assert len(waveform) == len(signal)
    np.testing.assert_allclose(waveform, signal, atol=tolerance + 1e-7)


def test_ogg_vorbis(tmp_path):
    tone = _tone(1000.0, 1.0, COMPETITION_RATE)
    path = tmp_path / "a.ogg"
    sf.write(path, tone, COMPETITION_RATE, format="OGG", subtype="VORBIS")
    waveform = load_recording(path, COMPETITION_RATE)
    assert waveform.dtype == np.float32
    assert abs(len(waveform) - len(tone)) <= 8
    assert np.all(np.isfinite(waveform))
    # Lossy, but the tone survives: same frequency, similar level.
    assert _peak_frequency(waveform, COMPETITION_RATE) == pytest.approx(1000.0, abs=5)
    assert np.sqrt(np.mean(waveform**2)) == pytest.approx(np.sqrt(np.mean(tone**2)), rel=0.1)


def test_stereo_is_mixed_to_mean(tmp_path):
    rng = np.random.default_rng(1)
    left = (0.4 * rng.uniform(-1, 1, 4800)).astype(np.float32)
    right = (0.4 * rng.uniform(-1, 1, 4800)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), COMPETITION_RATE, subtype="FLOAT")
    waveform = load_recording(path, COMPETITION_RATE)
    assert waveform.shape == (4800,)
    np.testing.assert_allclose(waveform, (left + right) / 2, atol=1e-7)


def test_opposite_channels_cancel(tmp_path):
    tone = _tone(440.0, 0.1, COMPETITION_RATE)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([tone, -tone], axis=1), COMPETITION_RATE, subtype="PCM_24")
    assert np.max(np.abs(load_recording(path, COMPETITION_RATE))) < 1e-6


def test_to_mono_leaves_mono_alone():
    x = np.arange(5, dtype=np.float32)
    assert to_mono(x) is x
    np.testing.assert_array_equal(to_mono(np.stack([x, 3 * x], axis=1)), 2 * x)


@pytest.mark.parametrize("file_rate", [22050, 44100, 96000])
def test_other_sample_rate_is_resampled(tmp_path, file_rate):
    tone = _tone(1000.0, 1.5, file_rate)
    path = tmp_path / "tone.wav"
    sf.write(path, tone, file_rate, subtype="FLOAT")
    waveform = load_recording(path, COMPETITION_RATE)
    assert waveform.dtype == np.float32
    assert abs(len(waveform) - len(tone) * COMPETITION_RATE / file_rate) <= 3
    # The tone keeps its frequency: the spectral peak is at 1 kHz, not at
    # 1 kHz * COMPETITION_RATE / file_rate as it would be if samples were just relabelled.
    assert _peak_frequency(waveform, COMPETITION_RATE) == pytest.approx(1000.0, abs=2)
    # And its level (away from the edges of the resampling filter).
    middle = waveform[len(waveform) // 4 : 3 * len(waveform) // 4]
    assert np.max(np.abs(middle)) == pytest.approx(0.5, abs=0.02)


def test_same_rate_is_not_resampled(tmp_path, signal):
    path = tmp_path / "a.wav"
    sf.write(path, signal, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_recording(path, 16000), signal)


def test_missing_file(tmp_path):
    path = tmp_path / "missing.flac"
    with pytest.raises(AudioError, match="not found") as error:
        load_recording(path, COMPETITION_RATE)
    assert str(path) in str(error.value)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError) as error:
        load_recording(path, COMPETITION_RATE)
    assert str(path) in str(error.value)


def test_header_only_wav(tmp_path):
    path = tmp_path / "nosamples.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), COMPETITION_RATE, subtype="PCM_16")
    with pytest.raises(AudioError, match="no samples") as error:
        load_recording(path, COMPETITION_RATE)
    assert str(path) in str(error.value)


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("recording_id,species_id\nabc,3\n")
    with pytest.raises(AudioError, match="cannot decode") as error:
        load_recording(path, COMPETITION_RATE)
    assert str(path) in str(error.value)


def test_truncated_flac(tmp_path, signal):
    full = tmp_path / "full.flac"
    sf.write(full, np.tile(signal, 6), COMPETITION_RATE)
    data = full.read_bytes()
    path = tmp_path / "truncated.flac"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as error:
        load_recording(path, COMPETITION_RATE)
    assert str(path) in str(error.value)


def test_directory_is_not_a_recording(tmp_path):
    path = tmp_path / "folder.wav"
    path.mkdir()
    with pytest.raises(AudioError) as error:
        load_recording(path, COMPETITION_RATE)
    assert str(path) in str(error.value)


# --- index_recordings -------------------------------------------------------


def test_index_maps_ids_to_files(tmp_path, signal):
    for name in ["003bec244.flac", "006ab765f.wav", "00ad36516.ogg", "UPPER.FLAC"]:
        sf.write(tmp_path / name, signal, COMPETITION_RATE)
    (tmp_path / "train_tp.csv").write_text("recording_id\n")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.wav").mkdir()  # a folder named like audio is not a recording
    index = index_recordings(tmp_path)
    assert index == {
        "003bec244": tmp_path / "003bec244.flac",
        "006ab765f": tmp_path / "006ab765f.wav",
        "00ad36516": tmp_path / "00ad36516.ogg",
        "UPPER": tmp_path / "UPPER.FLAC",
    }
    # Every indexed file really loads.
    for path in index.values():
        assert len(load_recording(path, COMPETITION_RATE)) > 0


def test_index_of_empty_folder(tmp_path):
    assert index_recordings(tmp_path) == {}


def test_index_refuses_one_id_in_two_formats(tmp_path, signal):
    sf.write(tmp_path / "abc.wav", signal, COMPETITION_RATE)
    sf.write(tmp_path / "abc.flac", signal, COMPETITION_RATE)
    with pytest.raises(AudioError, match="abc") as error:
        index_recordings(tmp_path)
    assert "abc.wav" in str(error.value) and "abc.flac" in str(error.value)


def test_index_missing_folder(tmp_path):
    folder = tmp_path / "train"
    with pytest.raises(AudioError) as error:
        index_recordings(folder)
    assert str(folder) in str(error.value)


def test_extensions():
    assert set(AUDIO_EXTENSIONS) == {".flac", ".wav", ".ogg"}


# --- real recordings --------------------------------------------------------


@pytest.mark.real_audio
def test_real_spinetail_at_48k(shared_file):
    path = shared_file("audio/spinetail.wav")
    waveform = load_recording(path, 48000)
    assert waveform.dtype == np.float32
    assert waveform.ndim == 1
    assert len(waveform) / 48000 == pytest.approx(19.5, abs=0.1)
    assert np.all(np.isfinite(waveform))
    assert 0 < np.max(np.abs(waveform)) <= 1.05
    # Resampling must preserve the length ratio exactly (to a few samples).
    info = sf.info(path)
    assert abs(len(waveform) - info.frames * 48000 / info.samplerate) <= 3


@pytest.mark.real_audio
def test_real_jura_recording_at_48k(shared_file):
    path = shared_file("audio/jura_S4A03895_20190522_060000.wav")
    info = sf.info(path)
    waveform = load_recording(path, 48000)
    assert abs(len(waveform) - info.frames * 48000 / info.samplerate) <= 3
    assert np.all(np.isfinite(waveform))
    assert np.std(waveform) > 0


@pytest.mark.parametrize(
    ("file_rate", "subtype", "suffix"),
    [(16000, "PCM_16", ".flac"), (16000, "FLOAT", ".wav"), (22050, "PCM_16", ".wav")],
)
def test_excerpts_equal_slices_of_the_whole_recording(tmp_path, file_rate, subtype, suffix):
    from rainforest.audio import Recording

    path = tmp_path / f"r{suffix}"
    signal = (0.3 * np.random.default_rng(0).standard_normal((3 * file_rate, 2))).astype(np.float32)
    sf.write(path, signal, file_rate, subtype=subtype)
    whole = load_recording(path, 16000)
    with Recording(path, 16000) as recording:
        assert recording.n_samples == len(whole)
        for start, n in [(0, 100), (12345, 4000), (len(whole) - 50, 200), (len(whole) + 10, 30)]:
            excerpt = recording.read(start, n)
            assert excerpt.shape == (n,) and excerpt.dtype == np.float32
            expected = whole[start : start + n]
            np.testing.assert_array_equal(excerpt[: len(expected)], expected)
            assert np.all(excerpt[len(expected) :] == 0)
