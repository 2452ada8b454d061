"""Verdicts back into training: the import into the reviewed labels, and etl reading them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from rainforest.config import DataSettings, EtlSettings
from rainforest.detect.run import Journal
from rainforest.errors import AudioError, LabelError
from rainforest.etl import build_window_set
from rainforest.events import EVENT_COLUMNS
from rainforest.events.verdicts import VERDICT_COLUMNS
from rainforest.review.verdicts import import_verdicts
from rainforest.window_sets import read_windows
from tests.support.events import read_reviewed
from tests.support.settings import EVENTS_HEADER, RATE, SPECTROGRAM_SETTINGS

ETL = EtlSettings(workers=1, on_unreadable="stop", background_windows=0, windows_per_event=1)


def _noise(path: Path, seed: int, seconds: float = 6.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).normal(0, 0.05, int(RATE * seconds)).astype(np.float32), RATE)
    return path


@pytest.fixture
def project(tmp_path) -> tuple[DataSettings, Path]:
    """A dataset of two labelled train recordings, one unlabelled, and a pool outside it."""
    dataset = tmp_path / "dataset"
    for seed, name in enumerate(["rec_a", "rec_b", "rec_c"]):
        _noise(dataset / "train" / f"{name}.wav", seed)
    (dataset / "test").mkdir()
    (dataset / "train_tp.csv").write_text(f"{EVENTS_HEADER}\nrec_a,0,1,1.0,500,2.0,3000\nrec_b,1,1,2.0,500,3.0,3000\n")
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1,s2\ntest0,0,0,0\n")
    pool = tmp_path / "pool"
    _noise(pool / "SD01" / "0500.wav", 10)
    _noise(pool / "rec_a.wav", 11)  # the id of a train recording, other audio
    data = DataSettings(
        dataset_dir=dataset, annotations="competition", species_column="Species", reviews_dir=tmp_path / "reviews"
    )
    return data, pool


def verdict(recording: str, file: Path, start: float, species: str, answer: str, *, high: float = 4000.0) -> dict:
    return {
        "recording": recording,
        "file": str(file),
        "start": start,
        "end": start + 1.0,
        "species": species,
        "label": "",
        "score": 0.5,
        "low_freq": 1000.0,
        "high_freq": high,
        "reason": "near",
        "verdict": answer,
    }


def write_verdicts(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows, columns=VERDICT_COLUMNS).to_csv(path, index=False)
    return path


def labels(data: DataSettings) -> pd.DataFrame:
    return pd.read_csv(Path(data.reviews_dir) / "labels.csv")


def test_yes_and_no_become_reviewed_labels_and_outside_recordings_are_copied_in(project, tmp_path):
    data, pool = project
    train = Path(data.dataset_dir) / "train"
    rows = [
        verdict("rec_c", train / "rec_c.wav", 1.0, "s2", "yes"),
        verdict("rec_c", train / "rec_c.wav", 3.0, "s2", "no"),
        verdict("SD01/0500", pool / "SD01" / "0500.wav", 2.0, "s0", "yes"),
        verdict("rec_a", pool / "rec_a.wav", 0.0, "1", "no"),
        verdict("SD01/0500", pool / "SD01" / "0500.wav", 4.0, "s1", "unsure"),
    ]
    summary = import_verdicts([write_verdicts(tmp_path / "verdicts.csv", rows)], data=data)
    assert (summary.added, summary.replaced, summary.unchanged) == (4, 0, 0)
    assert (summary.yes, summary.no, summary.unsure, summary.blank) == (2, 2, 1, 0)
    # The pool's rec_a is another recording than train's rec_a: it gets an id of its own.
    copied = dict(zip(summary.recordings_added, ["SD01/0500", "rec_a"]))
    assert summary.recordings_added[0] == "SD01/0500" and summary.recordings_added[1].startswith("rec_a-")
    reviews = Path(data.reviews_dir)
    for recording_id, source in copied.items():
        assert (reviews / "recordings" / f"{recording_id}.wav").read_bytes() == (pool / f"{source}.wav").read_bytes()
    table = labels(data)
    assert list(table.columns) == [*EVENT_COLUMNS, "present"]
    assert table[["recording_id", "species_id", "t_min", "t_max", "present"]].values.tolist() == [
        ["SD01/0500", 0, 2.0, 3.0, 1],
        [summary.recordings_added[1], 1, 0.0, 1.0, 0],
        ["rec_c", 2, 1.0, 2.0, 1],
        ["rec_c", 2, 3.0, 4.0, 0],
    ]
    assert "2 yes, 2 no, 1 unsure" in summary.describe() and "4 row(s) added" in summary.describe()


def test_importing_again_changes_nothing_and_a_new_verdict_replaces_the_old(project, tmp_path):
    data, pool = project
    train = Path(data.dataset_dir) / "train"
    first = [
        verdict("rec_c", train / "rec_c.wav", 1.0, "s2", "yes"),
        verdict("SD01/0500", pool / "SD01" / "0500.wav", 2.0, "s0", "yes"),
    ]
    path = write_verdicts(tmp_path / "verdicts.csv", first)
    import_verdicts([path], data=data)
    before = (Path(data.reviews_dir) / "labels.csv").read_bytes()
    again = import_verdicts([path], data=data)
    assert (again.added, again.replaced, again.unchanged, again.recordings_added) == (0, 0, 2, [])
    assert (Path(data.reviews_dir) / "labels.csv").read_bytes() == before
    changed = write_verdicts(
        tmp_path / "second.csv",
        [
            verdict("rec_c", train / "rec_c.wav", 1.0, "s2", "no"),
            verdict("rec_c", train / "rec_c.wav", 1.0, "s2", "unsure"),
        ],
    )
    summary = import_verdicts([changed], data=data)
    assert (summary.added, summary.replaced, summary.unchanged) == (0, 1, 0)
    assert labels(data).set_index("recording_id").loc["rec_c", "present"] == 0
    assert labels(data).set_index("recording_id").loc["SD01/0500", "present"] == 1


def test_a_raven_table_with_a_verdict_column_added_in_raven(project, tmp_path):
    data, pool = project
    out = tmp_path / "detections"
    journal = Journal(out, key="run")
    journal.record("SD01/0500", pool / "SD01" / "0500.wav", "")
    table = out / "SD01" / "0500.Table.1.selections.txt"
    table.parent.mkdir(parents=True)
    table.write_text(
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tSpecies\tScore"
        "\tVerdict\n"
        "1\tSpectrogram 1\t1\t1.0\t3.0\t500\t3000\ts1\t0.9\tYes\n"
        "2\tSpectrogram 1\t1\t3.0\t5.0\t500\t3000\ts2\t0.8\tno\n"
        "3\tSpectrogram 1\t1\t4.0\t6.0\t500\t3000\ts2\t0.7\t\n"
    )
    summary = import_verdicts([table], data=data)
    assert (summary.yes, summary.no, summary.blank, summary.added) == (1, 1, 1, 2)
    assert labels(data)[["recording_id", "species_id", "present"]].values.tolist() == [
        ["SD01/0500", 1, 1],
        ["SD01/0500", 2, 0],
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"verdict": "maybe"}, "line 2: verdict must be yes, no, unsure or empty, got 'maybe'"),
        ({"species": "s9"}, "line 2: unknown species 's9'"),
        ({"start": "soon"}, "line 2, column start: expected a number, got 'soon'"),
        ({"high_freq": 500.0}, "line 2: low_freq must be smaller than high_freq"),
        ({"file": "/nowhere/gone.wav"}, "line 2: recording file /nowhere/gone.wav not found"),
        ({"file": "TEST"}, "is one of the dataset's test recordings; training on it would make the test figures"),
    ],
)
def test_bad_verdicts_name_the_file_and_line_and_write_nothing(project, tmp_path, change, message):
    data, pool = project
    if change.get("file") == "TEST":
        change = {"file": _noise(Path(data.dataset_dir) / "test" / "test0.wav", 30)}
    row = verdict("SD01/0500", pool / "SD01" / "0500.wav", 2.0, "s0", "yes") | change
    path = write_verdicts(tmp_path / "verdicts.csv", [row])
    with pytest.raises(LabelError, match=f"^{path}: ") as error:
        import_verdicts([path], data=data)
    assert message in str(error.value)
    assert not Path(data.reviews_dir).exists()


def test_a_verdicts_file_without_its_columns(project, tmp_path):
    data, _ = project
    path = tmp_path / "verdicts.csv"
    path.write_text("recording,start,verdict\na,1.0,yes\n")
    with pytest.raises(LabelError, match="line 1 \\(header\\): missing column\\(s\\) file, end, species"):
        import_verdicts([path], data=data)


def test_etl_reads_the_reviewed_labels_and_their_copied_recordings(project, tmp_path):
    data, pool = project
    train = Path(data.dataset_dir) / "train"
    without = build_window_set(data, tmp_path / "before.h5", spectrogram_settings=SPECTROGRAM_SETTINGS, settings=ETL)
    assert (without.recordings_read, without.windows_written, without.events_reviewed) == (2, 2, 0)
    rows = [
        verdict("rec_c", train / "rec_c.wav", 1.0, "s2", "yes"),
        verdict("SD01/0500", pool / "SD01" / "0500.wav", 2.0, "s0", "no"),
    ]
    import_verdicts([write_verdicts(tmp_path / "verdicts.csv", rows)], data=data)
    report = build_window_set(
        data,
        tmp_path / "after.h5",
        spectrogram_settings=SPECTROGRAM_SETTINGS,
        settings=ETL,
        events_path=tmp_path / "events.csv",
    )
    assert (report.recordings_read, report.windows_written, report.events_reviewed) == (4, 4, 2)
    windows = read_windows(tmp_path / "after.h5", ("recording_ids", "event_species", "event_present"))
    assert [r.decode() if isinstance(r, bytes) else r for r in windows["recording_ids"]] == [
        "SD01/0500",
        "rec_a",
        "rec_b",
        "rec_c",
    ]
    assert windows["event_species"].tolist() == [0, 0, 1, 2]
    assert windows["event_present"].tolist() == [0, 1, 1, 1]
    assert len(pd.read_csv(tmp_path / "events.csv")) == 4


def test_without_reviewed_labels_etl_writes_the_same_bytes(project, tmp_path):
    data, _ = project
    build_window_set(data, tmp_path / "none.h5", spectrogram_settings=SPECTROGRAM_SETTINGS, settings=ETL)
    Path(data.reviews_dir).mkdir()
    (Path(data.reviews_dir) / "labels.csv").write_text(",".join([*EVENT_COLUMNS, "present"]) + "\n")
    build_window_set(data, tmp_path / "empty.h5", spectrogram_settings=SPECTROGRAM_SETTINGS, settings=ETL)
    assert (tmp_path / "none.h5").read_bytes() == (tmp_path / "empty.h5").read_bytes()


def test_bad_reviewed_labels(project):
    data, _ = project
    reviews = Path(data.reviews_dir)
    reviews.mkdir()
    (reviews / "labels.csv").write_text(",".join([*EVENT_COLUMNS, "present"]) + "\nrec_c,2,1,1.0,500,2.0,3000,yes\n")
    with pytest.raises(LabelError, match="labels.csv: line 2, column present: expected 1 .* got 'yes'"):
        read_reviewed(reviews, 3)
    (reviews / "labels.csv").write_text(",".join([*EVENT_COLUMNS, "present"]) + "\nrec_c,7,1,1.0,500,2.0,3000,1\n")
    with pytest.raises(LabelError, match="labels.csv: line 2: species_id must be between 0 and 2"):
        read_reviewed(reviews, 3)


def test_a_copied_recording_under_a_train_id_is_refused(project, tmp_path):
    data, _ = project
    reviews = Path(data.reviews_dir)
    _noise(reviews / "recordings" / "rec_a.wav", 20)
    (reviews / "labels.csv").write_text(",".join([*EVENT_COLUMNS, "present"]) + "\nrec_a,2,1,1.0,500,2.0,3000,1\n")
    with pytest.raises(AudioError, match="recording 'rec_a' is also in the dataset's train/"):
        build_window_set(data, tmp_path / "w.h5", spectrogram_settings=SPECTROGRAM_SETTINGS, settings=ETL)
