"""Messy input from users: each case either is handled correctly or stops cleanly.

Stopping cleanly means exit status 1, one ``STAGE: error: ...`` line naming
the file, row or setting, what is wrong and what to do, no traceback, and no
output written (the previous outputs stay byte for byte). The ``etl`` and
``submit`` cases run the real stage scripts as subprocesses in a temporary
folder holding a ``params.yaml`` that points at a small dataset written here.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from rainforest.atomic_writes import atomic_path
from rainforest.config import EtlSettings, ModelSettings, SpectrogramSettings, load_settings, settings_from_dict
from rainforest.errors import AudioError, ConfigError, LabelError, ModelError
from rainforest.etl import build_window_set
from rainforest.events import EVENT_COLUMNS, fit_events_to_recording
from tests.support.events import read_events, read_training_events
from tests.support.paths import ROOT, committed_params
from tests.support.project import with_setting
from tests.support.settings import EVENTS_HEADER, FEATURES, RATE, SPECTROGRAM_SETTINGS, data_settings

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
PREVIOUS = {
    "windows.h5": b"previous window set",
    "metrics/etl.json": b'{"previous": true}\n',
    "metrics/etl_report.json": b'{"previous": true}\n',
}


# --- helpers ------------------------------------------------------------------------


def tone(seconds: float = 3.0, rate: int = RATE, amplitude: float = 0.5, frequency: float = 1000.0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def audio_bytes(samples: np.ndarray, rate: int = RATE, format: str = "WAV", subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=format, subtype=subtype)
    return buffer.getvalue()


def event(recording_id: str, species: int = 0, t_min: float = 1.0, t_max: float = 2.0, f_max: float = 3000.0) -> str:
    return f"{recording_id},{species},1,{t_min},500.0,{t_max},{f_max}"


def make_dataset(
    root: Path, recordings: dict[str, bytes], tp_rows: list[str], fp_rows: list[str] | None = None
) -> Path:
    """A dataset in the competition's layout with three species."""
    dataset = root / "dataset"
    (dataset / "train").mkdir(parents=True)
    (dataset / "test").mkdir()
    for name, data in recordings.items():
        (dataset / "train" / name).write_bytes(data)
    (dataset / "train_tp.csv").write_text("\n".join([EVENTS_HEADER, *tp_rows]) + "\n")
    if fp_rows is not None:
        (dataset / "train_fp.csv").write_text("\n".join([EVENTS_HEADER, *fp_rows]) + "\n")
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1,s2\ntest0,0,0,0\n")
    return dataset


def project_params(dataset: Path | str, **etl) -> dict:
    params = committed_params()
    params["data"]["dataset_dir"] = str(dataset)
    params["audio"]["sample_rate"] = RATE
    params["features"].update(FEATURES.model_dump())
    # One window per event, whatever the few calls per species here would make auto cut.
    params["etl"].update({"workers": 1, "on_unreadable": "stop", "windows_per_event": 1, **etl})
    return params


def _etl_settings(on_unreadable: str = "stop") -> EtlSettings:
    return EtlSettings(workers=1, on_unreadable=on_unreadable, background_windows=0, windows_per_event=1)


def write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def etl(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "etl.py"), "windows.h5", "metrics/etl.json"],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def write_previous_outputs(root: Path) -> None:
    for name, data in PREVIOUS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def outputs(root: Path) -> dict[str, bytes]:
    """Every file the stage may have written: all but the dataset and the settings."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.name != "params.yaml" and "dataset" not in path.relative_to(root).parts
    }


def read_event_windows(path: Path) -> dict[str, np.ndarray]:
    """The windows of a window set cut around events (not background windows, whose species is -1)."""
    with h5py.File(path) as file:
        events = file["event_species"][()] >= 0
        return {
            "ids": file["recording_ids"].asstr()[()][events],
            "spectrograms": file["spectrograms"][()][events],
            "present": file["event_present"][()][events],
            "total": len(events),
        }


def stopped_with(result: subprocess.CompletedProcess, stage: str = "etl") -> str:
    """The one error line of a stage that stopped cleanly."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{stage}: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "error:" not in result.stderr, result.stderr
    return result.stderr


# --- audio through the etl stage --------------------------------------------------------


def _flac_with_garbage() -> bytes:
    data = bytearray(audio_bytes(tone(), format="FLAC"))
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    return bytes(data)


def _nan_samples() -> bytes:
    samples = tone()
    samples[RATE : RATE + 10] = np.nan
    return audio_bytes(samples, subtype="FLOAT")


UNREADABLE = {
    "truncated WAV": ("bad.wav", lambda: audio_bytes(tone())[:30000], "file is truncated"),
    "truncated FLAC": ("bad.flac", lambda: audio_bytes(tone(), format="FLAC")[:20000], "cannot decode audio"),
    "corrupt FLAC": ("bad.flac", _flac_with_garbage, "cannot decode audio"),
    "zero bytes": ("bad.wav", lambda: b"", "cannot decode audio"),
    "not audio": ("bad.wav", lambda: b"recording_id,species_id\nabc,3\n" * 50, "cannot decode audio"),
    "NaN samples": ("bad.wav", _nan_samples, "NaN or infinite"),
    "unnormalised float": ("bad.wav", lambda: audio_bytes(tone(amplitude=30000.0), subtype="FLOAT"), "full scale"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_recording_stops_etl(tmp_path, case):
    name, make, problem = UNREADABLE[case]
    # The good recording sorts after the bad one, so the run fails fast.
    recordings = {name: make(), "good.flac": audio_bytes(tone(), format="FLAC")}
    dataset = make_dataset(tmp_path, recordings, [event("bad"), event("good")])
    write_params(tmp_path, project_params(dataset))
    write_previous_outputs(tmp_path)
    message = stopped_with(etl(tmp_path))
    assert str(dataset / "train" / name) in message
    assert problem in message
    assert "etl.on_unreadable: skip" in message  # what else the user can do
    assert outputs(tmp_path) == PREVIOUS


@pytest.mark.parametrize("workers", [1, 2])
def test_a_corrupt_recording_among_many_stops_etl_promptly(tmp_path, workers):
    # The bad one in the middle of twelve: the workers still busy with the others end with the run.
    good = audio_bytes(tone(), format="FLAC")
    recordings = {f"{i:02d}.flac": _flac_with_garbage() if i == 5 else good for i in range(12)}
    dataset = make_dataset(tmp_path, recordings, [event(f"{i:02d}") for i in range(12)])
    write_params(tmp_path, project_params(dataset, workers=workers))
    write_previous_outputs(tmp_path)
    started = time.monotonic()
    message = stopped_with(etl(tmp_path))  # etl's time limit fails the test if the run hangs
    print(f"etl, {workers} worker(s): stopped at the corrupt recording in {time.monotonic() - started:.1f} s")
    assert str(dataset / "train" / "05.flac") in message and "cannot decode audio" in message
    assert "remove its label rows too" in message
    assert outputs(tmp_path) == PREVIOUS


def test_recording_missing_for_a_label_row_stops_etl(tmp_path):
    dataset = make_dataset(tmp_path, {"good.flac": audio_bytes(tone(), format="FLAC")}, [event("good"), event("gone")])
    write_params(tmp_path, project_params(dataset))
    write_previous_outputs(tmp_path)
    message = stopped_with(etl(tmp_path))
    assert "gone" in message and "have no audio" in message and str(dataset / "train") in message
    assert "etl.on_unreadable: skip" in message
    assert outputs(tmp_path) == PREVIOUS


def test_unreadable_recordings_are_skipped_and_reported(tmp_path, monkeypatch):
    good = audio_bytes(tone(), format="FLAC")
    recordings = {
        "a.flac": good,
        "b.flac": _flac_with_garbage(),
        "c.wav": audio_bytes(tone()),
        "d.wav": b"",
        "f.wav": b"not audio at all\n" * 100,
        "g.wav": audio_bytes(tone())[:30000],
        "h.wav": _nan_samples(),
        "i.flac": good,
    }
    rows = [event("a"), event("a", 1, 0.2, 0.9), event("b"), event("c"), event("d"), event("e"), event("e", 2)]
    rows += [event("f"), event("g"), event("h"), event("i")]
    dataset = make_dataset(tmp_path, recordings, rows)
    write_params(tmp_path, project_params(dataset, workers=2, on_unreadable="skip"))
    log = succeeded(etl(tmp_path))

    report = json.loads((tmp_path / "metrics/etl_report.json").read_text())
    headline = json.loads((tmp_path / "metrics/etl.json").read_text())
    assert headline == {"recordings": 3, "skipped": 6, "windows": report["windows_written"]}
    skipped = {item["recording_id"]: item["reason"] for item in report["skipped"]}
    assert [item["recording_id"] for item in report["skipped"]] == ["b", "d", "e", "f", "g", "h"]
    assert "cannot decode audio" in skipped["b"] and str(dataset / "train" / "b.flac") in skipped["b"]
    assert "cannot decode audio" in skipped["d"] and "cannot decode audio" in skipped["f"]
    assert skipped["e"] == f"no audio file in {dataset / 'train'}"
    assert "truncated" in skipped["g"]
    assert "NaN" in skipped["h"]
    assert report["recordings_read"] == 3
    assert report["recordings_skipped"] == 6
    assert report["events_skipped"] == 7
    windows = read_event_windows(tmp_path / "windows.h5")
    assert windows["ids"].tolist() == ["a", "a", "c", "i"]
    assert np.isfinite(windows["spectrograms"]).all()
    assert report["windows_written"] == windows["total"]
    for recording_id in skipped:
        assert f"skipped recording {recording_id}:" in log
    assert "skipped 6 unreadable recording(s) holding 7 event(s)" in log

    # Skipping happens in the worker processes, yet the output does not depend on how many:
    # the stage's own code, in this process with one worker, writes the same bytes.
    settings = load_settings(tmp_path / "params.yaml")
    settings = settings.model_copy(update={"etl": settings.etl.model_copy(update={"workers": 1})})
    monkeypatch.syspath_prepend(str(ROOT / "stages"))  # as when the script runs: its folder first
    main = runpy.run_path(str(ROOT / "stages" / "etl.py"))["main"]
    main(settings, tmp_path / "serial.h5", tmp_path / "serial.json", None, tmp_path / "serial_report.json")
    assert json.loads((tmp_path / "serial_report.json").read_text()) == report
    assert json.loads((tmp_path / "serial.json").read_text()) == headline
    assert (tmp_path / "serial.h5").read_bytes() == (tmp_path / "windows.h5").read_bytes()


def test_every_recording_skipped_stops(tmp_path):
    dataset = make_dataset(tmp_path, {"a.wav": b""}, [event("a"), event("b")])
    with pytest.raises(AudioError, match="all 2 labelled recording") as error:
        build_window_set(
            data_settings(dataset),
            tmp_path / "windows.h5",
            spectrogram_settings=SPECTROGRAM_SETTINGS,
            settings=_etl_settings("skip"),
        )
    assert str(dataset / "train") in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def _peak_mel_and_level(spectrogram: np.ndarray) -> tuple[int, float]:
    profile = spectrogram.mean(axis=1)
    return int(profile.argmax()), float(profile.max())


def test_formats_rates_and_edge_cases_are_handled(tmp_path):
    reference = tone()
    clipped = np.clip(tone(amplitude=3.0), -1.0, 1.0)
    recordings = {
        "ref.wav": audio_bytes(reference, subtype="PCM_16"),
        "u8.wav": audio_bytes(reference, subtype="PCM_U8"),
        "pcm24.wav": audio_bytes(reference, subtype="PCM_24"),
        "pcm32.wav": audio_bytes(reference, subtype="PCM_32"),
        "float.wav": audio_bytes(reference, subtype="FLOAT"),
        "double.wav": audio_bytes(reference, subtype="DOUBLE"),
        "flac24.flac": audio_bytes(reference, format="FLAC", subtype="PCM_24"),
        "stereo.wav": audio_bytes(np.stack([reference, reference], axis=1), subtype="PCM_16"),
        "rate8k.wav": audio_bytes(tone(rate=8000), 8000),
        "rate22k.wav": audio_bytes(tone(rate=22050), 22050),
        "rate44k.flac": audio_bytes(tone(rate=44100), 44100, format="FLAC"),
        "rate96k.wav": audio_bytes(tone(rate=96000), 96000, subtype="FLOAT"),
        "clipped.wav": audio_bytes(clipped, subtype="PCM_16"),
        "hot.wav": audio_bytes(tone(amplitude=1.5), subtype="FLOAT"),  # over full scale, but a real level
        "silence.flac": audio_bytes(np.zeros(3 * RATE, np.float32), format="FLAC"),
        "short.wav": audio_bytes(tone(seconds=0.3)),  # shorter than one window
    }
    tones = [name.split(".")[0] for name in recordings if name.split(".")[0] not in {"silence", "short"}]
    rows = [event(r) for r in tones]
    rows += [event("silence", 1), event("short", 2, 0.05, 0.25)]
    rows += [event("ref", 2, 2.5, 4.0)]  # runs past the 3 s recording: clamped
    rows += [event("ref")]  # a duplicate row: dropped
    duplicate_line = len(rows) + 1
    rows += [event("float", 1, 0.5, 1.5, f_max=12000.0)]  # band above 8 kHz: accepted
    dataset = make_dataset(tmp_path, recordings, rows, fp_rows=[event("pcm24", 1, 0.1, 0.6)])
    write_params(tmp_path, project_params(dataset))
    log = succeeded(etl(tmp_path))

    windows = read_event_windows(tmp_path / "windows.h5")
    ids, spectrograms, present = windows["ids"], windows["spectrograms"], windows["present"]
    assert len(ids) == len(rows)  # every event plus the FP event, less the duplicate
    assert np.isfinite(spectrograms).all() and spectrograms.min() >= -100.0
    assert (spectrograms[ids == "silence"] == -100.0).all()  # silence: the floor, never -inf or NaN
    assert ids[present == 0].tolist() == ["pcm24"]
    expected_bin, expected_level = _peak_mel_and_level(spectrograms[ids == "ref"][0])
    for name in tones:
        window = spectrograms[(ids == name) & (present == 1)][0]
        peak_bin, level = _peak_mel_and_level(window)
        assert peak_bin == expected_bin, name  # the tone stays at 1 kHz whatever the rate
        tolerance = 12.0 if name in {"clipped", "hot"} else 1.0
        assert level == pytest.approx(expected_level, abs=tolerance), name
    short = spectrograms[ids == "short"][0]
    assert short[:, -5:].max() == -100.0  # zero-padded past its end
    assert short.max() > -40.0

    report = json.loads((tmp_path / "metrics/etl_report.json").read_text())
    assert report["recordings_read"] == len(recordings) and report["recordings_skipped"] == 0
    assert report["skipped"] == [] and report["windows_written"] == windows["total"]
    assert report["events_dropped_as_duplicates"] == 1
    assert report["events_clamped"] == 1
    assert report["events_above_nyquist"] == 1
    assert f"dropped 1 duplicate row(s), identical to an earlier row (first: line {duplicate_line})" in log
    assert "1 event(s) run past the end of their recording" in log
    assert "1 event(s) have f_max above 8000 Hz" in log and "not used for features" in log


# --- labels ---------------------------------------------------------------------------------


def test_event_starting_after_the_recording_stops_etl(tmp_path):
    dataset = make_dataset(
        tmp_path, {"a.wav": audio_bytes(tone(seconds=2.0))}, [event("a", 0, 0.5, 1.0), event("a", 1, 2.5, 3.0)]
    )
    write_params(tmp_path, project_params(dataset))
    write_previous_outputs(tmp_path)
    message = stopped_with(etl(tmp_path))
    assert str(dataset / "train_tp.csv") in message and "line 3" in message
    assert "starts at 2.5 s" in message and "2.000 s long" in message and "remove the row" in message
    assert outputs(tmp_path) == PREVIOUS


def test_renamed_column_stops_etl(tmp_path):
    dataset = make_dataset(tmp_path, {"a.wav": audio_bytes(tone())}, [event("a")])
    tp = dataset / "train_tp.csv"
    tp.write_text(tp.read_text().replace("t_min", "start", 1))
    write_params(tmp_path, project_params(dataset))
    write_previous_outputs(tmp_path)
    message = stopped_with(etl(tmp_path))
    assert str(tp) in message and "missing column(s) t_min" in message and "found recording_id,species_id" in message
    assert outputs(tmp_path) == PREVIOUS


def test_label_file_without_events_stops(tmp_path):
    dataset = make_dataset(tmp_path, {"a.wav": audio_bytes(tone())}, [], fp_rows=[event("a")])
    with pytest.raises(LabelError, match="holds no events") as error:
        build_window_set(
            data_settings(dataset),
            tmp_path / "windows.h5",
            spectrogram_settings=SPECTROGRAM_SETTINGS,
            settings=_etl_settings(),
        )
    assert str(dataset / "train_tp.csv") in str(error.value)
    assert not (tmp_path / "windows.h5").exists()


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "train_tp.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-inf", "1e999"])
@pytest.mark.parametrize("column", ["t_min", "t_max", "f_max"])
def test_nan_and_infinite_values(tmp_path, value, column):
    row = dict(zip(EVENT_COLUMNS, ["a", "1", "1", "1.0", "100", "2.0", "200"]))
    row[column] = value
    path = _write(tmp_path, [EVENTS_HEADER, event("a"), ",".join(row.values())])
    with pytest.raises(LabelError, match=f"line 3, column {column}: expected a (finite )?number") as error:
        read_events(path, 3)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("a,1,1.5,1.0,100,2.0,200", "songtype_id must be a whole number"),
        ("a,1,1e30,1.0,100,2.0,200", "songtype_id must be a whole number"),
        ("a,1,-1,1.0,100,2.0,200", "songtype_id must be a whole number"),
        ("a,1,1,1.0,-100,2.0,200", "f_min must not be negative"),
    ],
)
def test_rows_that_would_be_changed_silently(tmp_path, bad_row, expected):
    # Before these checks a songtype of 1.5 became 1, and 1e30 overflowed.
    path = _write(tmp_path, [EVENTS_HEADER, event("a"), bad_row])
    with pytest.raises(LabelError, match=expected) as error:
        read_events(path, 3)
    assert "line 3" in str(error.value)


def test_line_numbers_count_blank_lines(tmp_path):
    path = _write(tmp_path, [EVENTS_HEADER, event("a"), "", "", event("b"), "b,1,1,3.0,100,2.0,200"])
    with pytest.raises(LabelError, match="line 6: t_min must be smaller than t_max"):
        read_events(path, 3)


def test_blank_lines_and_stray_spaces_are_tolerated(tmp_path):
    header = ", ".join(EVENT_COLUMNS)
    path = _write(tmp_path, [header, "", " a ,0,1,1.0,100,2.0,200", "", "b,1,1,1.0,100,2.0,200", "", ""])
    events = read_events(path, 3)
    assert events["recording_id"].tolist() == ["a", "b"]
    assert list(events.columns) == EVENT_COLUMNS


@pytest.mark.parametrize(
    ("row", "count"),
    [
        ("a,1,1,1.0,100,2.0,200,loud", 8),  # pandas would shift or drop the extra value
        ("a,1,1,1.0,100", 5),
    ],
)
def test_row_with_the_wrong_number_of_values(tmp_path, row, count):
    path = _write(tmp_path, [EVENTS_HEADER, event("a"), row])
    with pytest.raises(LabelError, match=rf"line 3: {count} values, but the header \(line 1\) has 7 columns"):
        read_events(path, 3)


def test_trailing_commas_are_not_values(tmp_path):
    path = _write(tmp_path, [EVENTS_HEADER + ",", event("a") + ",", event("b") + ",,"])
    assert read_events(path, 3)["recording_id"].tolist() == ["a", "b"]


def test_repeated_column(tmp_path):
    path = _write(tmp_path, [EVENTS_HEADER + ",t_min", event("a") + ",3.0"])
    with pytest.raises(LabelError, match=r"line 1 \(header\): column\(s\) t_min appear more than once"):
        read_events(path, 3)


def test_file_of_blank_lines_is_empty(tmp_path):
    path = _write(tmp_path, ["", "  ", ""])
    with pytest.raises(LabelError, match="file is empty; it needs a header row"):
        read_events(path, 3)


def test_blank_recording_id(tmp_path):
    path = _write(tmp_path, [EVENTS_HEADER, event("a"), "   ,1,1,1.0,100,2.0,200"])
    with pytest.raises(LabelError, match="line 3: recording_id is empty"):
        read_events(path, 3)


def test_duplicate_rows_are_dropped_and_counted(tmp_path, caplog):
    # "1" and "1.0" are the same number: still a duplicate.
    lines = [EVENTS_HEADER, event("a"), event("b"), "a,0,1,1,500,2,3000", event("a", 1), event("b")]
    path = _write(tmp_path, lines)
    with caplog.at_level(logging.WARNING, logger="rainforest.events.table"):
        events = read_events(path, 3)
    assert len(events) == 3
    assert events[["recording_id", "species_id"]].values.tolist() == [["a", 0], ["b", 0], ["a", 1]]
    assert f"{path}: dropped 2 duplicate row(s), identical to an earlier row (first: line 4)" in caplog.text
    (tmp_path / "sample_submission.csv").write_text("recording_id,s0\n")
    (tmp_path / "train_fp.csv").write_text("\n".join([EVENTS_HEADER, event("c"), event("c")]) + "\n")
    events, duplicates = read_training_events(tmp_path, 3)
    assert duplicates == 3
    assert events[["source", "line"]].values.tolist() == [
        [str(path), 2],
        [str(path), 3],
        [str(path), 5],
        [str(tmp_path / "train_fp.csv"), 2],
    ]


def test_unique_rows_log_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        read_events(_write(tmp_path, [EVENTS_HEADER, event("a"), event("b")]), 3)
    assert caplog.text == ""


def _recording_events(rows: list[tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [("a", 0, t_min, t_max, "train_tp.csv", line) for line, (t_min, t_max) in enumerate(rows, start=2)],
        columns=["recording_id", "species_id", "t_min", "t_max", "source", "line"],
    )


def test_events_running_past_the_end_are_clamped():
    rows = [(1.0, 2.0), (8.0, 10.0), (9.5, 12.0), (3.0, 9.0)]
    events, clamped = fit_events_to_recording(_recording_events(rows), 10.0)
    assert clamped == 1
    assert events["t_max"].tolist() == [2.0, 10.0, 10.0, 9.0]
    assert events["t_min"].tolist() == [1.0, 8.0, 9.5, 3.0]


@pytest.mark.parametrize("t_min", [10.0, 11.0])
def test_event_starting_at_or_after_the_end_is_an_error(t_min):
    expected = r"train_tp.csv: line 3: the event starts at .* after the end of recording 'a'"
    with pytest.raises(LabelError, match=expected):
        fit_events_to_recording(_recording_events([(1.0, 2.0), (t_min, t_min + 1)]), 10.0)


# --- settings ---------------------------------------------------------------------------------


def _leaves(tree: dict, prefix: str = ""):
    for name, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_every_setting_is_validated():
    base = committed_params()
    keys = list(_leaves(base))
    assert "etl.on_unreadable" in keys
    for key in keys:
        with pytest.raises(ConfigError) as error:
            settings_from_dict(with_setting(base, key, {"not": "a value"}))
        assert f"  {key}: " in str(error.value), key


def test_on_unreadable_names_its_allowed_values():
    base = committed_params()
    assert base["etl"]["on_unreadable"] == "stop"
    with pytest.raises(ConfigError, match=r"etl.on_unreadable: Input should be 'stop' or 'skip' \(got 'ignore'\)"):
        settings_from_dict(with_setting(base, "etl.on_unreadable", "ignore"))
    del base["etl"]["on_unreadable"]
    with pytest.raises(ConfigError, match=r"etl.on_unreadable: missing; add it"):
        settings_from_dict(base)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("features.fmax", 30000.0, "features.fmax (30000.0) must be at most half of audio.sample_rate"),
        ("features.window_seconds", 0.01, "features.window_seconds (0.01) must hold at least one FFT frame"),
        ("submit.hop_seconds", 5.0, "submit.hop_seconds (5.0) must not exceed features.window_seconds"),
    ],
)
def test_checks_across_sections_name_the_key_briefly(key, value, expected):
    base = committed_params()
    with pytest.raises(ConfigError) as error:
        settings_from_dict(with_setting(base, key, value))
    message = str(error.value)
    assert f"\n  {expected}" in message
    assert "dataset_dir" not in message  # not the whole file echoed back
    assert max(len(line) for line in message.splitlines()) < 200


def test_stage_with_bad_settings_stops_before_any_work(tmp_path):
    # The dataset does not even exist: the settings are refused before it is looked at.
    params = project_params(tmp_path / "nowhere", on_unreadable="sometimes")
    params["features"]["fmax"] = "high"
    write_params(tmp_path, params)
    write_previous_outputs(tmp_path)
    result = etl(tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "etl: error: params.yaml: 2 invalid setting(s):" in result.stderr
    assert "etl.on_unreadable: Input should be 'stop' or 'skip'" in result.stderr
    assert "features.fmax: Input should be a valid number" in result.stderr
    assert "nowhere" not in result.stderr
    assert outputs(tmp_path) == PREVIOUS


# --- outputs are written atomically --------------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".out.txt.tmp-{dead}"
    alive = tmp_path / f".out.txt.tmp-{os.getppid()}"  # a writer that may still be running
    other = tmp_path / f".other.txt.tmp-{dead}"  # another target's: not ours to judge
    for path in (stale, alive, other):
        path.write_text("half-written")
    with atomic_path(tmp_path / "out.txt") as temporary:
        temporary.write_text("new")
    assert (tmp_path / "out.txt").read_text() == "new"
    assert not stale.exists()
    assert alive.exists() and other.exists()


def test_killed_etl_leaves_the_previous_output_and_a_rerun_succeeds(tmp_path):
    # Enough audio that the run is still writing when it is killed.
    n = 40
    recordings = {f"r{i:02d}.wav": audio_bytes(tone(seconds=10.0, frequency=300.0 + 20 * i)) for i in range(n)}
    rows = [event(f"r{i:02d}", i % 3, t, t + 1.0) for i in range(n) for t in (2.0, 6.0)]
    dataset = make_dataset(tmp_path, recordings, rows)
    write_params(tmp_path, project_params(dataset))
    write_previous_outputs(tmp_path)

    process = subprocess.Popen(
        [sys.executable, str(ROOT / "stages" / "etl.py"), "windows.h5", "metrics/etl.json"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    temporary = tmp_path / f".windows.h5.tmp-{process.pid}"
    deadline = time.monotonic() + 120
    # Kill once the temporary holds some windows (the writer flushes in chunks).
    while process.poll() is None and time.monotonic() < deadline:
        if temporary.exists() and temporary.stat().st_size > 1_000_000:
            break
        time.sleep(0.005)
    assert process.poll() is None, "etl finished before it could be killed; make the dataset larger"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    left = outputs(tmp_path)
    assert set(left) - set(PREVIOUS) <= {temporary.name}  # at most the hidden temporary
    assert {name: left[name] for name in PREVIOUS} == PREVIOUS  # byte for byte

    succeeded(etl(tmp_path))
    assert not temporary.exists()  # the rerun removed the dead run's temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "metrics", "params.yaml", "windows.h5"]
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == ["etl.json", "etl_report.json"]
    assert len(read_event_windows(tmp_path / "windows.h5")["ids"]) == len(rows)


# --- the submit stage ----------------------------------------------------------------------


@pytest.mark.slow
def test_submit_stops_when_test_recordings_have_no_audio(tmp_path):
    from rainforest.card import ModelCard
    from rainforest.model import build_model, save_model

    dataset = tmp_path / "dataset"
    (dataset / "test").mkdir(parents=True)
    (dataset / "test" / "t1.wav").write_bytes(audio_bytes(tone()))
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1,s2\nt1,0,0,0\nt2,0,0,0\nt3,0,0,0\n")
    params = project_params(dataset)
    write_params(tmp_path, params)
    features = load_settings(tmp_path / "params.yaml").features
    n_frames = SpectrogramSettings(RATE, features).window_frames
    model_settings = ModelSettings(**{**params["model"], "architecture": "cnn", "filters": [4], "dense_units": 4})
    n_mels = features.n_mels
    model = build_model(model_settings, (n_mels, n_frames), 3, mean=np.zeros(n_mels), variance=np.ones(n_mels))
    save_model(model, tmp_path / "model.keras", ModelCard(SpectrogramSettings(RATE, features), ["s0", "s1", "s2"]))
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "submit.py"), "model.keras", "submission.csv", "metrics/test.json"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    message = stopped_with(result, "submit")
    assert "sample_submission.csv" in message and str(dataset / "test") in message
    assert "2 recording(s)" in message and "t2, t3" in message
    assert not (tmp_path / "submission.csv").exists() and not (tmp_path / "metrics").exists()


@pytest.mark.slow
@pytest.mark.parametrize("content", [None, b"not a model"], ids=["missing", "corrupt"])
def test_submit_stops_on_a_missing_or_corrupt_model(tmp_path, content):
    dataset = tmp_path / "dataset"
    (dataset / "test").mkdir(parents=True)
    (dataset / "test" / "t1.wav").write_bytes(audio_bytes(tone()))
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1,s2\nt1,0,0,0\n")
    write_params(tmp_path, project_params(dataset))
    if content is not None:
        (tmp_path / "model.keras").write_bytes(content)
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "submit.py"), "model.keras", "submission.csv", "metrics/test.json"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    message = stopped_with(result, "submit")
    assert "model.keras: " in message and ("model not found" in message or "not a model saved" in message)
    assert not (tmp_path / "submission.csv").exists()


# --- loading a model runs no code from the file ---------------------------------------------


def test_model_with_code_is_refused_without_running_it(tmp_path):
    import keras

    from rainforest.model import load_model

    marker = tmp_path / "code-ran"
    # The Lambda's code leaves a marker when it runs (as it does while the model is rebuilt).
    leave_marker = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    inputs = keras.Input(shape=(4,))
    path = tmp_path / "evil.keras"
    keras.Model(inputs, keras.layers.Lambda(leave_marker)(inputs)).save(path)
    marker.unlink(missing_ok=True)  # building the model ran the code once, here
    # Refused by Keras' safe mode, reported as a bad model file.
    with pytest.raises(ModelError, match="(?i)evil.keras: not a model.*(lambda|safe)"):
        load_model(path)
    assert not marker.exists()
    # The marker does detect running code: an unsafe load leaves it.
    keras.models.load_model(path, compile=False, safe_mode=False)
    assert marker.exists()


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_disguised_as_a_model_is_not_unpickled(tmp_path):
    from rainforest.model import load_model

    marker = tmp_path / "code-ran"
    path = tmp_path / "model.keras"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelError, match="not a model saved by the train stage"):
        load_model(path)
    assert not marker.exists()
