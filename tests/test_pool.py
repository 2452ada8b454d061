"""The pool stage: unlabelled windows cut where no label is, for pseudo-label rounds."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from rainforest.config import EtlSettings
from rainforest.errors import AudioError
from rainforest.etl import build_window_set
from rainforest.pool import FOLDER_PREFIX, TEST_PREFIX, build_pool_set, pool_recordings
from rainforest.spectrogram import window_span_samples
from rainforest.window_sets import WINDOW_FIELDS, read_window_attrs, read_windows
from tests.support.settings import EVENTS_HEADER, RATE, SPECTROGRAM_SETTINGS, data_settings

#: Seconds of each training recording; r2 is labelled nowhere.
TRAIN_SECONDS = {"r0": 8, "r1": 6, "r2": 5}
TEST_SECONDS = {"t0": 4, "t1": 3}
#: Events of train_tp.csv (present) and train_fp.csv (absent): id, species, t_min, t_max.
TP_EVENTS = [("r0", 0, 1.0, 1.5), ("r0", 1, 5.0, 5.4), ("r1", 1, 2.0, 2.5)]
FP_EVENTS = [("r1", 0, 4.0, 4.3)]
#: Samples in one window (and its kept audio).
WINDOW_SAMPLES = window_span_samples(SPECTROGRAM_SETTINGS.window_frames, SPECTROGRAM_SETTINGS.features)
#: The pool's windows per recording in most tests.
PER_RECORDING = 3


def write_recording(path, seconds, seed):
    """A few seconds of noise as 16-bit FLAC at :data:`RATE` (the etl's rate: no resampling)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).normal(0, 0.1, RATE * seconds).clip(-1, 1), RATE, subtype="PCM_16")


def event_rows(events):
    return [f"{rid},{species},1,{t_min},500.0,{t_max},3000.0" for rid, species, t_min, t_max in events]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A dataset and what its etl stage writes: ``(dataset, windows.h5, events.csv)``."""
    root = tmp_path_factory.mktemp("pool")
    dataset = root / "dataset"
    for seed, (rid, seconds) in enumerate(TRAIN_SECONDS.items()):
        write_recording(dataset / "train" / f"{rid}.flac", seconds, seed)
    for seed, (rid, seconds) in enumerate(TEST_SECONDS.items(), start=10):
        write_recording(dataset / "test" / f"{rid}.flac", seconds, seed)
    (dataset / "train_tp.csv").write_text("\n".join([EVENTS_HEADER, *event_rows(TP_EVENTS)]) + "\n")
    (dataset / "train_fp.csv").write_text("\n".join([EVENTS_HEADER, *event_rows(FP_EVENTS)]) + "\n")
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1\nt0,0,0\nt1,0,0\n")
    settings = EtlSettings(workers=1, on_unreadable="stop", background_windows=2, windows_per_event=1)
    build_window_set(
        data_settings(dataset),
        root / "windows.h5",
        spectrogram_settings=SPECTROGRAM_SETTINGS,
        settings=settings,
        events_path=root / "events.csv",
    )
    return dataset, root / "windows.h5", root / "events.csv"


def pool(labelled, out, **changes):
    """Build the pool of the ``labelled`` dataset into folder ``out``; ``(report, pool path, report path)``."""
    dataset, windows_path, events_path = labelled
    out.mkdir(parents=True, exist_ok=True)
    values = {
        "dataset_dir": dataset,
        "windows_path": windows_path,
        "events_path": events_path,
        "spectrogram_settings": SPECTROGRAM_SETTINGS,
        "rounds": 1,
        "training_recordings": True,
        "pool_dir": out / "empty_pool",
        "use_test_recordings": False,
        "windows_per_recording": PER_RECORDING,
        "keep_waveforms": False,
        "workers": 1,
        "skip_unreadable": False,
        "pool_path": out / "pool.h5",
        "report_path": out / "pool.json",
    } | changes
    if values["pool_dir"] == out / "empty_pool":
        values["pool_dir"].mkdir(exist_ok=True)
    report = build_pool_set(**values)
    return report, values["pool_path"], values["report_path"]


def read_all(path):
    with h5py.File(path, "r") as file:
        return {name: file[name][()] for name in file}


def test_pool_windows_overlap_no_labelled_window_or_event(labelled, tmp_path):
    """A person's label always wins: no pool window overlaps a labelled window or event, and none has a label."""
    _, windows_path, events_path = labelled
    report, pool_path, report_path = pool(labelled, tmp_path)
    windows = read_windows(pool_path, ("recording_ids", "start_times", "end_times", "targets", "masks"))
    windows |= read_windows(pool_path, ("event_species", "event_present"))
    ids = windows["recording_ids"]
    # Every training recording gives windows, r2 (no label anywhere) too; at most PER_RECORDING each.
    counts = pd.Series(ids).value_counts()
    assert set(counts.index) == set(TRAIN_SECONDS)
    assert (counts <= PER_RECORDING).all() and counts["r2"] == PER_RECORDING
    # Nothing a person labelled (a window of windows.h5, a true or false positive event) is in the pool.
    cut = read_windows(windows_path, ("recording_ids", "start_times", "end_times"))
    taken = pd.concat(
        [
            pd.DataFrame(
                {"recording_id": cut["recording_ids"], "t_min": cut["start_times"], "t_max": cut["end_times"]}
            ),
            pd.read_csv(events_path)[["recording_id", "t_min", "t_max"]],
        ]
    )
    assert set(taken["recording_id"]) >= {"r0", "r1"} and len(taken) > len(TP_EVENTS) + len(FP_EVENTS)
    for rid, start, end in zip(ids, windows["start_times"], windows["end_times"]):
        spans = taken[taken["recording_id"] == rid]
        assert ((end <= spans["t_min"]) | (start >= spans["t_max"])).all(), (rid, start, end)
        assert 0 <= start < TRAIN_SECONDS[rid]
    # All labels unknown: no pool window is anyone's label.
    assert windows["targets"].sum() == 0 and windows["masks"].sum() == 0
    assert (windows["event_species"] == -1).all() and (windows["event_present"] == 0).all()
    # The report says what was written; the file keeps the window set's settings.
    assert json.loads(report_path.read_text()) == {
        "recordings": 3,
        "windows": len(ids),
        "skipped": 0,
    }
    assert report.windows == len(ids)
    assert read_window_attrs(pool_path)["n_windows"] == len(ids)
    assert list(read_window_attrs(pool_path)["species"]) == ["s0", "s1"]


def test_the_pool_keeps_off_all_of_a_long_event(labelled, tmp_path):
    """An event longer than the windows cut around it is taken whole: the pool avoids the part no window covers."""
    dataset, windows_path, events_path = labelled
    events = pd.read_csv(events_path)
    # A 3.5 s call at the start of r2 (5 s), which windows.h5 has no window of.
    long_call = events.iloc[:1].assign(recording_id="r2", t_min=0.0, t_max=3.5)
    pd.concat([events, long_call]).to_csv(tmp_path / "events.csv", index=False)
    _, pool_path, _ = pool((dataset, windows_path, tmp_path / "events.csv"), tmp_path)
    windows = read_windows(pool_path, ("recording_ids", "start_times"))
    starts = windows["start_times"][windows["recording_ids"] == "r2"]
    assert len(starts) == PER_RECORDING and (starts >= 3.5).all()


def test_no_rounds_give_an_empty_pool_without_reading_a_recording(labelled, tmp_path):
    # With rounds 0 the pool folder is not even looked for.
    report, pool_path, report_path = pool(labelled, tmp_path, rounds=0, pool_dir=tmp_path / "absent")
    assert report.windows == 0 and report.recordings == 0
    assert read_window_attrs(pool_path)["n_windows"] == 0
    assert read_windows(pool_path, ("targets",))["targets"].shape == (0, 2)
    assert json.loads(report_path.read_text()) == {"recordings": 0, "skipped": 0, "windows": 0}
    # Even with use_test_recordings, an empty pool holds no test recording.
    report, _, _ = pool(labelled, tmp_path / "test", rounds=0, use_test_recordings=True)
    assert report.windows == 0 and report.recordings == 0


def test_test_recordings_and_a_pool_folder_add_prefixed_ids(labelled, tmp_path):
    """Test and folder recordings get prefixed ids, so none can share an id (and its folds) with a training recording."""
    folder = tmp_path / "recorders"
    write_recording(folder / "SD01" / "0500.flac", 3, 20)
    write_recording(folder / "SD02" / "deep" / "0500.flac", 3, 21)
    write_recording(folder / "top.flac", 2, 22)
    report, pool_path, report_path = pool(labelled, tmp_path, pool_dir=folder, use_test_recordings=True)
    ids = read_windows(pool_path, ("recording_ids",))["recording_ids"]
    expected = [
        *TRAIN_SECONDS,
        # A folder's own recordings, then its subfolders' (os.walk's order, sorted).
        FOLDER_PREFIX + "top",
        FOLDER_PREFIX + "SD01/0500",
        FOLDER_PREFIX + "SD02/deep/0500",
        *(TEST_PREFIX + rid for rid in TEST_SECONDS),
    ]
    # In pool_recordings' order: training, then the folder's, then the test recordings.
    assert list(dict.fromkeys(ids)) == expected
    assert report.recordings == len(expected)
    assert json.loads(report_path.read_text())["recordings"] == len(expected)
    found = pool_recordings(labelled[0], training_recordings=False, pool_dir=folder, use_test_recordings=False)
    assert list(found) == expected[3:6]


def test_the_pool_is_the_same_for_any_number_of_workers(labelled, tmp_path):
    """The pool is a DVC output: its bytes must not depend on etl.workers."""
    _, one, _ = pool(labelled, tmp_path / "one", use_test_recordings=True)
    _, two, _ = pool(labelled, tmp_path / "two", use_test_recordings=True, workers=2)
    assert one.read_bytes() == two.read_bytes()
    # Seeded by the recording's id, not by the order of the work: again the same.
    _, again, _ = pool(labelled, tmp_path / "again", use_test_recordings=True)
    assert again.read_bytes() == one.read_bytes()


def test_waveforms_are_kept_only_for_an_embedding_model(labelled, tmp_path):
    """Audio is stored only where the embed stage needs it; it must not change the rest of the file."""
    _, without, _ = pool(labelled, tmp_path / "without", keep_waveforms=False)
    _, kept, _ = pool(labelled, tmp_path / "kept", keep_waveforms=True)
    plain, with_audio = read_all(without), read_all(kept)
    assert "waveforms" not in plain and set(with_audio) == set(WINDOW_FIELDS)
    n_windows = len(plain["targets"])
    assert with_audio["waveforms"].shape == (n_windows, WINDOW_SAMPLES) and np.abs(with_audio["waveforms"]).max() > 0
    # The audio changes nothing else.
    for name, values in plain.items():
        np.testing.assert_array_equal(with_audio[name], values, err_msg=name)


def test_each_kept_waveform_is_the_audio_its_window_was_cut_from(labelled, tmp_path):
    """The embed stage embeds the kept audio: it must be the window's own samples."""
    dataset = labelled[0]
    _, kept, _ = pool(labelled, tmp_path, keep_waveforms=True)
    windows = read_windows(kept, ("recording_ids", "start_times", "waveforms"))
    assert len(windows["recording_ids"])
    for rid, start, waveform in zip(windows["recording_ids"], windows["start_times"], windows["waveforms"]):
        whole, _ = sf.read(dataset / "train" / f"{rid}.flac", dtype="float32")
        first = round(start * RATE)
        np.testing.assert_array_equal(waveform, whole[first : first + WINDOW_SAMPLES])


def test_a_missing_pool_folder_is_named(labelled, tmp_path):
    """A mistyped pool_dir stops the stage, naming the folder and the setting to fix."""
    missing = tmp_path / "no_such_folder"
    with pytest.raises(AudioError, match="pseudo_label.pool_dir") as error:
        pool(labelled, tmp_path, pool_dir=missing)
    assert str(missing) in str(error.value)
    assert not (tmp_path / "pool.h5").exists()


def test_a_pool_of_no_recording_is_refused(labelled, tmp_path):
    # Without the training recordings and with an empty folder, the rounds would have nothing to label.
    with pytest.raises(AudioError, match=r"pseudo_label\.rounds is 1 .*pseudo_label\.training_recordings"):
        pool(labelled, tmp_path, training_recordings=False)
    assert not (tmp_path / "pool.h5").exists()


def test_an_undecodable_pool_recording_stops_or_is_skipped(labelled, tmp_path):
    """A broken recording stops the stage, naming it, unless etl.on_unreadable says skip."""
    folder = tmp_path / "recorders"
    write_recording(folder / "good.flac", 3, 30)
    (folder / "broken.flac").write_bytes(b"not audio at all " * 64)
    with pytest.raises(AudioError, match="broken.flac") as error:
        pool(labelled, tmp_path / "stop", pool_dir=folder, training_recordings=False)
    assert "etl.on_unreadable" in str(error.value)
    _, pool_path, report_path = pool(
        labelled, tmp_path / "skip", pool_dir=folder, training_recordings=False, skip_unreadable=True
    )
    ids = set(read_windows(pool_path, ("recording_ids",))["recording_ids"])
    assert ids == {FOLDER_PREFIX + "good"}
    assert json.loads(report_path.read_text()) == {
        "recordings": 1,
        "windows": PER_RECORDING,
        "skipped": 1,
    }
