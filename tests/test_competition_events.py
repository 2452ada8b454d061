"""Tests of rainforest.events: the competition's CSV files, the events table's checks and window labels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rainforest.errors import LabelError
from rainforest.events import EVENT_COLUMNS, MIN_OVERLAP_SHARE, presence_matrix, read_species, window_labels
from tests.support.events import read_events, read_training_events
from tests.support.settings import EVENTS_HEADER

GOOD_ROWS = [
    "003bec244,14,1,44.544,2531.25,45.1307,5531.25",
    "006ab765f,23,1,39.9615,7235.16,46.0452,11283.4",
    "007f87ba2,12,1,39.136,562.5,42.272,3281.25",
]


def _write(tmp_path: Path, lines: list[str], name: str = "train_tp.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _line_number(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    assert match, f"no line number in {message!r}"
    return int(match.group(1))


# --- the real competition files -------------------------------------------------


@pytest.mark.real_audio
def test_real_sample_submission(shared_file):
    species, ids = read_species(shared_file("rfcx/sample_submission.csv"))
    assert species == [f"s{i}" for i in range(24)]
    assert len(ids) == 1992
    assert len(set(ids)) == 1992
    assert ids[0] == "000316da7"
    assert all(isinstance(i, str) for i in ids)


@pytest.mark.real_audio
def test_real_train_tp(shared_file):
    events = read_events(shared_file("rfcx/train_tp.csv"), 24)
    assert len(events) == 1216
    assert list(events.columns) == EVENT_COLUMNS
    assert events["species_id"].between(0, 23).all()
    assert set(events["species_id"]) == set(range(24))
    assert events["species_id"].dtype.kind == "i"
    assert (events["t_min"] < events["t_max"]).all()
    assert events["recording_id"].nunique() == 1132
    assert events["recording_id"].iloc[0] == "003bec244"
    assert set(events["songtype_id"]) <= {1, 4}


@pytest.mark.real_audio
def test_real_train_fp(shared_file):
    events = read_events(shared_file("rfcx/train_fp.csv"), 24)
    assert len(events) == 7781
    assert events["recording_id"].nunique() == 3958


@pytest.mark.real_audio
def test_real_training_events(tmp_path, shared_file):
    folder = shared_file("rfcx/train_tp.csv").parent
    events, duplicates = read_training_events(folder, 24)
    assert duplicates == 0
    assert len(events) == 1216 + 7781
    assert events["present"].sum() == 1216
    assert events["present"].dtype == bool


def test_recording_ids_keep_leading_zeros_and_digits(tmp_path):
    path = _write(tmp_path, [EVENTS_HEADER, "0012345,1,1,1.0,100,2.0,200", "1e5,2,1,1.0,100,2.0,200"])
    events = read_events(path, 3)
    assert events["recording_id"].tolist() == ["0012345", "1e5"]


# --- malformed event files --------------------------------------------------------


def test_missing_column(tmp_path):
    path = _write(tmp_path, ["recording_id,species_id,songtype_id,t_min,f_min,t_max", "a,1,1,1.0,100,2.0"])
    with pytest.raises(LabelError, match="f_max") as error:
        read_events(path, 24)
    assert str(path) in str(error.value)
    assert _line_number(str(error.value)) == 1


@pytest.mark.parametrize(
    ("bad_row", "column"),
    [
        ("abc,seven,1,1.0,100,2.0,200", "species_id"),
        ("abc,1,1,1.0,100,two,200", "t_max"),
        ("abc,1,1,1.0,100hz,2.0,200", "f_min"),
    ],
)
def test_non_numeric_value(tmp_path, bad_row, column):
    path = _write(tmp_path, [EVENTS_HEADER, *GOOD_ROWS, bad_row])
    with pytest.raises(LabelError, match="expected a number") as error:
        read_events(path, 24)
    message = str(error.value)
    assert str(path) in message
    assert _line_number(message) == 5  # header is line 1, three good rows, then the bad one
    assert column in message


@pytest.mark.parametrize(
    ("bad_row", "column"),
    [("abc,1,1,,100,2.0,200", "t_min"), ("abc,,1,1.0,100,2.0,200", "species_id"), ("abc,1,1,1.0,100,2.0,", "f_max")],
)
def test_empty_value(tmp_path, bad_row, column):
    path = _write(tmp_path, [EVENTS_HEADER, GOOD_ROWS[0], bad_row, GOOD_ROWS[1]])
    with pytest.raises(LabelError) as error:
        read_events(path, 24)
    message = str(error.value)
    assert str(path) in message
    assert _line_number(message) == 3
    assert column in message


def test_empty_recording_id(tmp_path):
    path = _write(tmp_path, [EVENTS_HEADER, GOOD_ROWS[0], ",1,1,1.0,100,2.0,200"])
    with pytest.raises(LabelError, match="recording_id") as error:
        read_events(path, 24)
    assert str(path) in str(error.value)
    assert _line_number(str(error.value)) == 3


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("abc,1,1,5.0,100,5.0,200", "t_min must be smaller than t_max"),
        ("abc,1,1,6.0,100,5.0,200", "t_min must be smaller than t_max"),
        ("abc,1,1,1.0,300,2.0,200", "f_min must be smaller than f_max"),
        ("abc,1,1,1.0,200,2.0,200", "f_min must be smaller than f_max"),
        ("abc,24,1,1.0,100,2.0,200", "species_id must be between 0 and 23"),
        ("abc,-1,1,1.0,100,2.0,200", "species_id must be between 0 and 23"),
        ("abc,1.5,1,1.0,100,2.0,200", "whole number"),
        ("abc,1,1,-1.0,100,2.0,200", "t_min must not be negative"),
    ],
)
def test_invalid_row(tmp_path, bad_row, expected):
    path = _write(tmp_path, [EVENTS_HEADER, *GOOD_ROWS[:2], bad_row, GOOD_ROWS[2]])
    with pytest.raises(LabelError, match=expected) as error:
        read_events(path, 24)
    assert str(path) in str(error.value)
    assert _line_number(str(error.value)) == 4


def test_species_range_follows_n_species(tmp_path):
    path = _write(tmp_path, [EVENTS_HEADER, "abc,5,1,1.0,100,2.0,200"])
    assert len(read_events(path, 6)) == 1
    with pytest.raises(LabelError, match="between 0 and 4"):
        read_events(path, 5)


def test_empty_file(tmp_path):
    path = tmp_path / "train_tp.csv"
    path.write_bytes(b"")
    with pytest.raises(LabelError, match="empty") as error:
        read_events(path, 24)
    assert str(path) in str(error.value)


def test_header_only_is_no_events(tmp_path):
    events = read_events(_write(tmp_path, [EVENTS_HEADER]), 24)
    assert len(events) == 0
    assert list(events.columns) == EVENT_COLUMNS


def test_missing_file(tmp_path):
    path = tmp_path / "train_tp.csv"
    with pytest.raises(LabelError, match="not found") as error:
        read_events(path, 24)
    assert str(path) in str(error.value)


def test_binary_file(tmp_path):
    path = tmp_path / "train_tp.csv"
    path.write_bytes(bytes(range(128, 256)) * 10)
    with pytest.raises(LabelError) as error:
        read_events(path, 24)
    assert str(path) in str(error.value)


def test_extra_columns_are_dropped(tmp_path):
    path = _write(tmp_path, [EVENTS_HEADER + ",note", GOOD_ROWS[0] + ",loud"])
    events = read_events(path, 24)
    assert list(events.columns) == EVENT_COLUMNS
    assert events.loc[0, "t_max"] == pytest.approx(45.1307)


# --- sample_submission -----------------------------------------------------------


def test_sample_submission_small(tmp_path):
    path = _write(tmp_path, ["recording_id,s0,s1,s2", "b,0,0,0", "a,0,0,0"], "sample_submission.csv")
    assert read_species(path) == (["s0", "s1", "s2"], ["b", "a"])


@pytest.mark.parametrize(
    "header",
    ["recording_id,s0,s2", "recording_id,s1,s0", "recording_id,s0,species1", "recording_id", "id,s0,s1"],
)
def test_sample_submission_bad_columns(tmp_path, header):
    n = header.count(",")
    path = _write(tmp_path, [header, "a" + ",0" * n], "sample_submission.csv")
    with pytest.raises(LabelError) as error:
        read_species(path)
    assert str(path) in str(error.value)


def test_sample_submission_duplicated_id(tmp_path):
    path = _write(tmp_path, ["recording_id,s0,s1", "a,0,0", "b,0,0", "a,0,0"], "sample_submission.csv")
    with pytest.raises(LabelError, match="'a' is listed twice") as error:
        read_species(path)
    assert str(path) in str(error.value)


def test_sample_submission_missing_id(tmp_path):
    path = _write(tmp_path, ["recording_id,s0,s1", "a,0,0", ",0,0"], "sample_submission.csv")
    with pytest.raises(LabelError, match="row 3") as error:
        read_species(path)
    assert str(path) in str(error.value)


# --- read_training_events -------------------------------------------------------


def test_training_events_without_fp(tmp_path):
    _write(tmp_path, [EVENTS_HEADER, *GOOD_ROWS])
    events, duplicates = read_training_events(tmp_path, 24)
    assert duplicates == 0
    assert len(events) == 3
    assert events["present"].all()


def test_training_events_with_fp(tmp_path):
    _write(tmp_path, [EVENTS_HEADER, *GOOD_ROWS])
    _write(tmp_path, [EVENTS_HEADER, "xyz,3,1,1.0,100,2.0,200"], "train_fp.csv")
    events, duplicates = read_training_events(tmp_path, 24)
    assert duplicates == 0
    assert events["present"].tolist() == [True, True, True, False]
    assert events["recording_id"].iloc[-1] == "xyz"
    assert events.index.tolist() == [0, 1, 2, 3]


def test_training_events_bad_fp_names_fp_file(tmp_path):
    _write(tmp_path, [EVENTS_HEADER, *GOOD_ROWS])
    fp = _write(tmp_path, [EVENTS_HEADER, "xyz,30,1,1.0,100,2.0,200"], "train_fp.csv")
    with pytest.raises(LabelError) as error:
        read_training_events(tmp_path, 24)
    assert str(fp) in str(error.value)
    assert _line_number(str(error.value)) == 2


def test_training_events_without_tp(tmp_path):
    with pytest.raises(LabelError, match="train_tp.csv"):
        read_training_events(tmp_path, 24)


# --- window_labels --------------------------------------------------------------


def _events(rows: list[tuple[int, float, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["species_id", "t_min", "t_max", "present"])


def test_present_event_inside_window():
    target, mask = window_labels(_events([(2, 10.5, 11.5, True)]), 10.0, 12.0, 5)
    assert target.dtype == np.uint8 and mask.dtype == np.uint8
    np.testing.assert_array_equal(target, [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(mask, [0, 0, 1, 0, 0])


def test_false_positive_event_is_known_absent():
    target, mask = window_labels(_events([(3, 10.5, 11.5, False)]), 10.0, 12.0, 5)
    np.testing.assert_array_equal(target, [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(mask, [0, 0, 0, 1, 0])


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_presence_wins_over_false_positive(order):
    rows = [(1, 10.2, 11.0, True), (1, 10.5, 11.8, False)]
    target, mask = window_labels(_events([rows[i] for i in order]), 10.0, 12.0, 3)
    np.testing.assert_array_equal(target, [0, 1, 0])
    np.testing.assert_array_equal(mask, [0, 1, 0])


def test_barely_overlapping_event_is_ignored():
    # 1 s event, 0.3 s of it inside the window: 30% < 50% of the shorter.
    target, mask = window_labels(_events([(0, 11.7, 12.7, True), (1, 9.7, 10.2, False)]), 10.0, 12.0, 3)
    np.testing.assert_array_equal(target, [0, 0, 0])
    np.testing.assert_array_equal(mask, [0, 0, 0])


def test_overlap_threshold_boundary():
    # Exactly half of a 1 s event inside counts; a bit less does not.
    assert MIN_OVERLAP_SHARE == 0.5
    target, _ = window_labels(_events([(0, 11.5, 12.5, True)]), 10.0, 12.0, 1)
    assert target[0] == 1
    target, _ = window_labels(_events([(0, 11.55, 12.55, True)]), 10.0, 12.0, 1)
    assert target[0] == 0


def test_long_event_covering_window_counts():
    # The window is the shorter: fully inside a 7 s event.
    target, mask = window_labels(_events([(4, 5.0, 12.0, True)]), 8.0, 10.0, 5)
    assert target[4] == 1 and mask[4] == 1


def test_disjoint_event_is_ignored():
    target, mask = window_labels(_events([(0, 20.0, 21.0, True), (1, 1.0, 2.0, False)]), 10.0, 12.0, 2)
    assert target.sum() == 0 and mask.sum() == 0


def test_other_species_stay_unknown():
    events = _events([(0, 10.1, 10.9, True), (5, 11.0, 11.5, False), (7, 30.0, 31.0, True)])
    target, mask = window_labels(events, 10.0, 12.0, 8)
    np.testing.assert_array_equal(target, [1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(mask, [1, 0, 0, 0, 0, 1, 0, 0])


def test_no_events():
    events = _events([]).astype({"species_id": int, "t_min": float, "t_max": float, "present": bool})
    target, mask = window_labels(events, 0.0, 2.0, 4)
    assert target.tolist() == [0, 0, 0, 0] and mask.tolist() == [0, 0, 0, 0]


# --- presence_matrix ------------------------------------------------------------


def test_presence_matrix():
    events = pd.DataFrame({"recording_id": ["a", "a", "c", "zzz", "a"], "species_id": [0, 3, 1, 2, 0]})
    truth = presence_matrix(events, ["a", "b", "c"], 4)
    assert truth.dtype == np.uint8
    np.testing.assert_array_equal(truth, [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]])


def test_presence_matrix_follows_id_order():
    events = pd.DataFrame({"recording_id": ["a", "b"], "species_id": [0, 1]})
    np.testing.assert_array_equal(presence_matrix(events, ["b", "a"], 2), [[0, 1], [1, 0]])
