"""``rainforest-detect``: detections CSV and Raven selection tables from new recordings.

The command runs as installed (the console script in the environment's bin
folder) on recordings of several formats, rates, channel counts and lengths,
with a small untrained model and a detector file whose thresholds make the
outcome known: s0 is detected in every window, s1 (no threshold: it never
reached the target precision) in none, s2 in some (its threshold lies between
two of its scores, as ``--all`` reports them).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rainforest.detect.cli import detect
from rainforest.detect.detections import window_detections
from rainforest.detect.run import Journal, find_recordings
from rainforest.detect.thresholds import Detector, SpeciesDetector, save_detector
from rainforest.errors import AudioError
from rainforest.events import raven
from rainforest.events.detections import merge_overlapping
from tests.support.detector import (
    BANDS,
    SCRIPT,
    SPECIES,
    restored_logging,
    save_thresholds,
    save_tiny_model,
    write_recording,
    write_recordings,
)
from tests.support.settings import FEATURES, RATE

#: Raven Pro's selection-table columns, as Raven writes them (its user manual,
#: chapter "Selections"; e.g. BirdNET's Raven output), then the two
#: annotation columns this project adds.
RAVEN_COLUMNS = [
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Species",
    "Score",
]

#: name -> (sample rate, channels, seconds, format, subtype): formats, rates,
#: channel counts and lengths a field recorder might produce.
RECORDINGS = {
    "site_a.wav": (22050, 2, 3.3, "WAV", "PCM_24"),
    "site_b.flac": (44100, 1, 2.5, "FLAC", "PCM_16"),
    "short.ogg": (16000, 1, 0.4, "OGG", "VORBIS"),  # shorter than one window
}
#: Given as a file, not found in a folder: any format libsndfile reads.
EXTRA = ("extra.aiff", (8000, 1, 1.7, "AIFF", "PCM_16"))


def run_in_process(*argv) -> int:
    """The command's entry point, in this process (no Keras start-up per call), scoring in this process too."""
    with restored_logging():
        return detect([str(arg) for arg in argv] + ["--workers", "1"])


@pytest.fixture(scope="module")
def field(tmp_path_factory) -> dict[str, Path]:
    """A folder of recordings, a note that is not audio, and one more recording elsewhere."""
    root = tmp_path_factory.mktemp("field")
    (root / "folder").mkdir()
    for name, spec in RECORDINGS.items():
        write_recording(root / "folder" / name, *spec)
    (root / "folder" / "notes.txt").write_text("site visit 12 May\n")
    write_recording(root / EXTRA[0], *EXTRA[1])
    return {"folder": root / "folder", "extra": root / EXTRA[0]}


def durations() -> dict[str, float]:
    specs = {Path(name).stem: spec for name, spec in [*RECORDINGS.items(), EXTRA]}
    return {stem: int(rate * seconds) / rate for stem, (rate, _, seconds, _, _) in specs.items()}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small untrained model, and a detector file beside it (thresholds set by ``thresholds``)."""
    return save_tiny_model(tmp_path_factory.mktemp("model")).parent


@pytest.fixture(scope="module")
def every_window(field, model_dir, tmp_path_factory) -> pd.DataFrame:
    """``--all``: every window and species with its score."""
    out = tmp_path_factory.mktemp("all")
    options = ["--model", model_dir / "model.keras", "-o", out, "--all"]
    assert run_in_process(field["folder"], field["extra"], *options) == 0
    return read_detections(out)


@pytest.fixture(scope="module")
def thresholds(every_window, model_dir) -> list[float | None]:
    """s0: 0 (every window); s1: none; s2: in the widest gap between its
    scores, far from any score the CSV's rounding could move across it."""
    scores = np.unique(every_window.loc[every_window["species"] == "s2", "score"])
    assert len(scores) >= 2, "the model gives s2 one score everywhere: nothing to threshold"
    widest = int(np.argmax(np.diff(scores)))
    chosen = [0.0, None, float(scores[widest] + scores[widest + 1]) / 2]
    save_thresholds(model_dir, chosen)
    return chosen


# A fresh Python importing TensorFlow: the tests that wait for it are slow.
@pytest.fixture(scope="module")
def installed_run(field, model_dir, thresholds, tmp_path_factory):
    """The installed command, run as a user would, with the detector's thresholds."""
    out = tmp_path_factory.mktemp("run") / "detections"
    result = subprocess.run(
        [SCRIPT, field["folder"], field["extra"], "--model", model_dir / "model.keras", "--output", out],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return out, result.stderr


def read_detections(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "detections.csv", dtype={"recording": str, "species": str})


def read_raven(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


# --- the command --------------------------------------------------------------------------


def test_installed_command_explains_itself():
    assert SCRIPT.exists(), "rainforest-detect is not installed: pip install --no-deps -e ."
    result = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: rainforest-detect")
    for option in ["--model", "--detector", "--output", "--hop-seconds", "--batch-size", "--min-score", "--all"]:
        assert option in result.stdout
    assert "Raven" in result.stdout and "detections.csv" in result.stdout


@pytest.mark.slow
def test_detections_csv_lists_windows_by_recording_start_and_species(installed_run, field):
    out, log = installed_run
    detections = read_detections(out)
    assert list(detections.columns) == ["recording", "start", "end", "species", "score"]
    lengths = durations()
    assert set(detections["recording"]) == set(lengths)
    order = detections.assign(rank=detections["species"].map(SPECIES.index))
    assert order.equals(order.sort_values(["recording", "start", "rank"], kind="stable"))
    assert not detections.duplicated(["recording", "start", "species"]).any()
    # Times lie in the recording; a window lasts window_seconds, or to the recording's end.
    end_of = detections["recording"].map(lengths)
    assert (detections["start"] >= 0).all() and (detections["end"] > detections["start"]).all()
    assert (detections["end"] <= end_of + 1e-3).all()
    assert (detections["end"] - detections["start"] <= FEATURES.window_seconds + 1e-3).all()
    assert f"wrote {len(detections)} detection(s)" in log


@pytest.mark.slow
def test_thresholds_decide_what_is_detected(installed_run, every_window, thresholds):
    detections = read_detections(installed_run[0])
    # Exactly the windows at or above their species' threshold: s0 all, s1 none, s2 some.
    minimum = {name: np.inf if threshold is None else threshold for name, threshold in zip(SPECIES, thresholds)}
    kept = every_window[every_window["score"] >= every_window["species"].map(minimum)]
    pd.testing.assert_frame_equal(detections, kept.reset_index(drop=True))
    assert "s1" not in set(detections["species"])
    assert "not detecting s1: below the target precision 0.9" in installed_run[1]
    s2 = (detections["species"] == "s2").sum()
    assert 0 < s2 < (every_window["species"] == "s2").sum()
    # Threshold 0: every window, one second apart, the last one reaching the recording's end.
    for recording, length in durations().items():
        windows = detections[(detections["recording"] == recording) & (detections["species"] == "s0")]
        assert windows["start"].iloc[0] == 0
        assert windows["end"].iloc[-1] == pytest.approx(length, abs=0.05)
        hops = max(0.0, np.ceil(length - FEATURES.window_seconds))
        assert len(windows) == hops + 1
    short = detections[detections["recording"] == "short"]
    assert list(short["end"].unique()) == [0.4]


@pytest.mark.slow
def test_one_raven_selection_table_per_recording(installed_run, field):
    out, _ = installed_run
    detections = read_detections(out)
    tables = sorted(path.name for path in out.glob("*.txt"))
    assert tables == sorted(f"{recording}.Table.1.selections.txt" for recording in durations())
    for recording, expected in detections.groupby("recording"):
        path = out / f"{recording}.Table.1.selections.txt"
        assert path.read_text().splitlines()[0].split("\t") == RAVEN_COLUMNS
        table = read_raven(path)
        assert list(table.columns) == RAVEN_COLUMNS
        assert list(table["Selection"]) == [str(i) for i in range(1, len(expected) + 1)]
        assert set(table["View"]) == {"Spectrogram 1"} and set(table["Channel"]) == {"1"}
        np.testing.assert_allclose(table["Begin Time (s)"].astype(float), expected["start"], atol=5e-4)
        np.testing.assert_allclose(table["End Time (s)"].astype(float), expected["end"], atol=5e-4)
        assert list(table["Species"]) == list(expected["species"])
        np.testing.assert_allclose(table["Score"].astype(float), expected["score"], atol=5e-5)
        bands = dict(zip(SPECIES, BANDS))
        for species, low, high in zip(table["Species"], table["Low Freq (Hz)"], table["High Freq (Hz)"]):
            assert (float(low), float(high)) == bands[species]


def test_all_writes_every_window_and_min_score_one_threshold(every_window, thresholds, field, model_dir, tmp_path):
    counts = every_window.groupby("recording")["species"].value_counts().unstack()
    assert list(counts.columns) == SPECIES and (counts.nunique(axis=1) == 1).all()
    options = ["--model", model_dir / "model.keras", "-o", tmp_path / "out", "--min-score", str(thresholds[2])]
    assert run_in_process(field["folder"], *options) == 0
    expected = every_window[(every_window["score"] >= thresholds[2]) & (every_window["recording"] != "extra")]
    pd.testing.assert_frame_equal(read_detections(tmp_path / "out"), expected.reset_index(drop=True))


def test_merge_writes_one_detection_per_run_of_touching_windows(every_window, thresholds, field, model_dir, tmp_path):
    options = ["--model", model_dir / "model.keras", "-o", tmp_path / "out", "--min-score", str(thresholds[2])]
    assert run_in_process(field["folder"], *options, "--merge") == 0
    windows = every_window[(every_window["score"] >= thresholds[2]) & (every_window["recording"] != "extra")]
    merged = read_detections(tmp_path / "out")
    pd.testing.assert_frame_equal(merged, merge_overlapping(windows))
    # The tiny model's windows are 1 s apart and 1 s long: runs of them touch.
    assert len(merged) < len(windows)
    assert (merged["end"] - merged["start"] > 1.0).any()
    for recording, expected in merged.groupby("recording"):
        table = read_raven(tmp_path / "out" / f"{recording}.Table.1.selections.txt")
        np.testing.assert_allclose(table["Begin Time (s)"].astype(float), expected["start"], atol=5e-4)
        np.testing.assert_allclose(table["End Time (s)"].astype(float), expected["end"], atol=5e-4)
        np.testing.assert_allclose(table["Score"].astype(float), expected["score"], atol=5e-5)


def test_merge_with_all_is_refused(capsys, field, model_dir, tmp_path):
    assert run_in_process(field["extra"], "--model", model_dir / "model.keras", "-o", tmp_path, "--merge", "--all") == 1
    assert "--merge with --all would join every window" in error_line(capsys.readouterr().err)


def test_a_run_that_detects_little_says_why_and_what_next(every_window, thresholds, field, model_dir, tmp_path, capsys):
    # s0 at 0 detects every window: plenty, and no word on it.
    assert run_in_process(field["folder"], "--model", model_dir / "model.keras", "-o", tmp_path / "plenty") == 0
    assert "few detections" not in capsys.readouterr().err

    # One threshold above every score: nothing detected.
    best = every_window.groupby("species")["score"].max().sort_values(ascending=False)
    options = ["--model", model_dir / "model.keras", "--min-score", "1", "-o", tmp_path / "few"]
    assert run_in_process(field["folder"], field["extra"], *options) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "rainforest-detect: " in line]
    why, what_next = lines[-2:]
    n = len(RECORDINGS) + 1
    assert f"few detections (0 in {n} recording(s)): the model knows only the 3 species it was trained on" in why
    # Each species' best score against the threshold, the closest first (to 2 places, from scores rounded to 4).
    said = re.findall(r"(s\d) (\d\.\d\d) of (\d\.\d\d)", why.split("against its threshold: ")[1])
    assert [name for name, _, _ in said] == list(best.index)
    assert all(abs(float(score) - best[name]) < 0.0051 and of == "1.00" for name, score, of in said)
    assert "--min-score SCORE" in what_next and "--all" in what_next and "train on them" in what_next
    # Resumed from the journal, which keeps each recording's highest scores: the same words.
    assert run_in_process(field["folder"], field["extra"], *options) == 0
    again = [line for line in capsys.readouterr().err.splitlines() if "few detections" in line]
    assert [line.split(" INFO ")[1] for line in again] == [why.split(" INFO ")[1]]

    # With the detector's thresholds, a species without one is said to have none.
    save_thresholds(model_dir, [1.0, None, 1.0])
    try:
        options = ["--model", model_dir / "model.keras", "-o", tmp_path / "none"]
        assert run_in_process(field["folder"], *options) == 0
    finally:
        save_thresholds(model_dir, thresholds)
    [why] = [line for line in capsys.readouterr().err.splitlines() if "few detections" in line]
    assert "few detections (0 in " in why and "1 of them without a threshold" in why
    [score] = re.findall(r"s1 (\d\.\d\d) \(none\)$", why)
    in_folder = every_window[every_window["recording"] != "extra"]  # this run left the extra recording out
    assert abs(float(score) - in_folder.loc[in_folder["species"] == "s1", "score"].max()) < 0.0051


# --- bad input ------------------------------------------------------------------------------


def error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("rainforest-detect: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
def test_missing_model_stops_the_installed_command(field, tmp_path):
    result = subprocess.run(
        [SCRIPT, field["folder"], "--model", tmp_path / "none.keras", "-o", tmp_path / "out"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "none.keras: model not found" in error_line(result.stderr)
    assert not (tmp_path / "out").exists()


def _other_detector(folder: Path) -> Path:
    entries = [SpeciesDetector("s0", 0.5, "target_precision", 1.0, 1.0, 0.0, 1.0)]
    save_detector(folder / "other.json", Detector(0.9, entries))
    return folder / "other.json"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing input", "nowhere.wav: no such file or folder"),
        ("folder without audio", "no audio files (.flac, .wav, .ogg) found"),
        ("not a model", "not a model saved by the train stage"),
        ("no detector", "detector.json: detector file not found"),
        ("detector of another model", "are not the model's 3"),
        ("hop longer than a window", "--hop-seconds (1.5) must not exceed the model's window (1.0 s)"),
        ("undecodable recording", "bad.wav: cannot decode audio"),
    ],
)
def test_bad_input_stops_with_one_line(capsys, field, model_dir, tmp_path, case, expected):
    inputs, options = [field["extra"]], ["--model", model_dir / "model.keras"]
    if case == "missing input":
        inputs = [tmp_path / "nowhere.wav"]
    elif case == "folder without audio":
        (tmp_path / "empty").mkdir()
        inputs = [tmp_path / "empty"]
    elif case == "not a model":
        (tmp_path / "model.keras").write_text("not a model")
        options = ["--model", tmp_path / "model.keras"]
    elif case == "no detector":
        (tmp_path / "lone").mkdir()
        (tmp_path / "lone" / "model.keras").write_bytes((model_dir / "model.keras").read_bytes())
        options = ["--model", tmp_path / "lone" / "model.keras"]
    elif case == "detector of another model":
        options += ["--detector", _other_detector(tmp_path)]
    elif case == "hop longer than a window":
        options += ["--hop-seconds", "1.5"]
    elif case == "undecodable recording":
        (tmp_path / "bad.wav").write_bytes(b"RIFF and then nothing useful" * 20)
        inputs = [field["extra"], tmp_path / "bad.wav"]
    assert run_in_process(*inputs, *options, "-o", tmp_path / "out") == 1
    error = error_line(capsys.readouterr().err)
    assert expected in error
    if case == "undecodable recording":  # detect's own advice, not etl's
        assert "label rows" not in error and error.endswith("(or pass --skip-unreadable to leave it out)")
    assert not (tmp_path / "out").exists()


def test_unreadable_recordings_can_be_skipped(capsys, field, model_dir, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF and then nothing useful" * 20)
    options = ["--model", model_dir / "model.keras", "-o", tmp_path / "out", "--skip-unreadable"]
    assert run_in_process(field["extra"], tmp_path / "bad.wav", *options) == 0
    err = capsys.readouterr().err
    assert "skipped" in err
    # The counts agree: the one recording read and the one left out make the two.
    assert "scored 1 recording(s) (1 unreadable, left out)" in err
    assert "2 recording(s): 1 scored now, 0 scored by an earlier run, 1 unreadable" in err
    assert run_in_process(field["extra"], tmp_path / "bad.wav", *options) == 0  # resumed: the same counts
    assert "2 recording(s): 0 scored now, 1 scored by an earlier run, 1 unreadable" in capsys.readouterr().err
    assert set(read_detections(tmp_path / "out")["recording"]) == {"extra"}
    assert not (tmp_path / "out" / "bad.Table.1.selections.txt").exists()
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    assert skipped["recording"].tolist() == ["bad"] and "cannot decode audio" in skipped["reason"][0]


def test_recordings_named_alike_in_two_folders_are_refused(tmp_path):
    for folder in ["north", "south"]:
        (tmp_path / folder).mkdir()
        write_recording(tmp_path / folder / "dawn.wav", 8000, 1, 0.2, "WAV", "PCM_16")
    with pytest.raises(AudioError, match="two recordings with the id 'dawn'"):
        find_recordings([tmp_path / "north", tmp_path / "south"])
    # The same file twice is one recording.
    assert list(find_recordings([tmp_path / "north", tmp_path / "north" / "dawn.wav"])) == ["dawn"]


# --- the tables, as pure functions ---------------------------------------------------------


def test_window_detections_orders_by_start_then_model_species_order():
    names = [f"s{i}" for i in range(12)]
    entries = [SpeciesDetector(n, 0.5, "target_precision", 1.0, 1.0, 100.0 * i, 200.0 * i) for i, n in enumerate(names)]
    detector = Detector(0.9, entries)
    scores = np.zeros((3, 12))
    scores[0, [10, 2]] = 0.9
    scores[2, 11] = 0.5  # exactly at the threshold: detected
    scores[1, 3] = 0.49
    table = window_detections(
        "r",
        np.array([0.0, 1.0, 2.0]),
        scores,
        window_seconds=2.0,
        duration=3.5,
        detector=detector,
        thresholds=detector.thresholds,
    )
    assert list(table["species"]) == ["s2", "s10", "s11"]
    assert list(table["start"]) == [0.0, 0.0, 2.0] and list(table["end"]) == [2.0, 2.0, 3.5]
    assert list(table["low_freq"]) == [200.0, 1000.0, 1100.0]


def test_selection_table_text():
    detections = pd.DataFrame(
        {
            "start": [1.0, 12.3456],
            "end": [3.0, 14.3456],
            "low_freq": [500.0, 4000.04],
            "high_freq": [2000.0, 7900.0],
            "species": ["s3", "s10"],
            "score": [0.91234, 0.5],
        },
        index=[7, 3],  # any index: rows are numbered in order
    )
    assert raven.write(detections) == (
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tSpecies\tScore\n"
        "1\tSpectrogram 1\t1\t1.000\t3.000\t500.0\t2000.0\ts3\t0.9123\n"
        "2\tSpectrogram 1\t1\t12.346\t14.346\t4000.0\t7900.0\ts10\t0.5000\n"
    )
    assert raven.write(detections.iloc[:0]) == "\t".join(RAVEN_COLUMNS) + "\n"
    assert raven.COLUMNS == RAVEN_COLUMNS
    assert raven.table_name("0099526bd") == "0099526bd.Table.1.selections.txt"


# --- resumable runs ---------------------------------------------------------------


def _outputs(out: Path) -> dict[str, bytes]:
    # Every file the command writes for the user: all but its journal.
    return {
        str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file() and ".journal" not in p.parts
    }


def _journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / ".journal" / "journal.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A folder of 40 recordings of 20 s: long enough a run to kill half-way."""
    return write_recordings(tmp_path_factory.mktemp("archive"), 40, seconds=20.0)


@pytest.mark.slow
def test_a_killed_run_continues_where_it_stopped(archive, model_dir, tmp_path):
    options = ["--model", model_dir / "model.keras", "--min-score", "0.4"]
    assert run_in_process(archive, *options, "-o", tmp_path / "whole") == 0

    out = tmp_path / "killed"
    process = subprocess.Popen(
        [SCRIPT, archive, *options, "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    journal = out / ".journal" / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (journal.exists() and journal.read_text().count("\n") >= 3):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    finished = {entry["recording"] for entry in _journal(out)}
    assert 3 <= len(finished) < 40, "the run was not killed half-way"
    assert not (out / "detections.csv").exists()

    result = subprocess.run([SCRIPT, archive, *options, "-o", out], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(finished)} of 40 recording(s) already done" in result.stderr
    # No finished recording was scored again: one journal line each.
    assert sorted(entry["recording"] for entry in _journal(out)) == sorted(f"rec_{i:02d}" for i in range(40))
    assert _outputs(out) == _outputs(tmp_path / "whole")


def test_a_journal_line_cut_short_by_a_kill_loses_no_later_entry(tmp_path):
    recording = tmp_path / "rec.wav"
    write_recording(recording, *RECORDINGS["site_b.flac"][:3], "WAV", "PCM_16")
    journal = Journal(tmp_path / "out", key="run")
    journal.record("first", recording, "first,0.0,1.0,s0,0.5\n")
    with open(journal.path, "a") as cut:
        cut.write('{"recording": "second", "fi')  # a kill mid-line
    journal.record("third", recording, "third,0.0,1.0,s0,0.5\n")
    assert set(journal.entries()) == {"first", "third"}
    assert set(journal.finished({"first": recording, "second": recording, "third": recording})) == {"first", "third"}


def test_a_changed_recording_or_option_is_redone(archive, model_dir, tmp_path, capsys):
    folder = tmp_path / "site"
    folder.mkdir()
    for name in ["rec_00.wav", "rec_01.wav"]:
        shutil.copy(archive / name, folder / name)
    # --all: every window has a row, whatever the untrained model's scores.
    options = ["--model", model_dir / "model.keras", "-o", tmp_path / "out", "--all"]
    assert run_in_process(folder, *options) == 0
    assert run_in_process(folder, *options) == 0
    assert "2 of 2 recording(s) already done" in capsys.readouterr().err
    write_recording(folder / "rec_01.wav", RATE, 1, 5.0, "WAV", "PCM_16")  # a new file under the same name
    assert run_in_process(folder, *options) == 0
    assert "1 of 2 recording(s) already done" in capsys.readouterr().err
    assert read_detections(tmp_path / "out").groupby("recording")["end"].max()["rec_01"] <= 5.0
    assert run_in_process(folder, *options[:-1], "--min-score", "0.5") == 0  # another option: everything again
    assert "already done" not in capsys.readouterr().err


# --- species names (a dataset's species.csv, carried on the model card) -------------------

NAMES = ["Black Phoebe", "California Towhee", "Dark-eyed Junco"]


def test_species_names_appear_in_detections_and_raven_tables(field, tmp_path):
    named = save_tiny_model(tmp_path / "named", labels=NAMES).parent
    plain = save_tiny_model(tmp_path / "plain").parent
    runs = {}
    for name, folder in [("named", named), ("plain", plain)]:
        out = tmp_path / f"{name}_out"
        assert run_in_process(field["folder"], "--model", folder / "model.keras", "-o", out, "--min-score", "0") == 0
        runs[name] = out
    with_names, without = read_detections(runs["named"]), read_detections(runs["plain"])
    # The same columns in the same order, then the name; the ids stay as they were.
    assert list(with_names.columns) == ["recording", "start", "end", "species", "score", "label"]
    assert list(without.columns) == ["recording", "start", "end", "species", "score"]
    # Two untrained models score differently; with --min-score 0 both list every window and species.
    key = ["recording", "start", "end", "species"]
    pd.testing.assert_frame_equal(with_names[key], without[key])
    assert list(with_names["label"]) == [NAMES[SPECIES.index(s)] for s in with_names["species"]]
    for path in sorted(runs["named"].glob("*.txt")):
        table = read_raven(path)
        assert list(table.columns) == [*RAVEN_COLUMNS, raven.SPECIES_ID_COLUMN]
        assert set(table["Species"]) <= set(NAMES) and len(table)
        assert list(table["Species"]) == [NAMES[SPECIES.index(s)] for s in table[raven.SPECIES_ID_COLUMN]]
        assert list(read_raven(runs["plain"] / path.name).columns) == RAVEN_COLUMNS
