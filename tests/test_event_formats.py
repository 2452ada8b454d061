"""The registry of event formats: every format reads back what it writes, and settings name only registered ones."""

from __future__ import annotations

import doctest
import typing

import pandas as pd
import pytest

from rainforest.config import DataSettings
from rainforest.events import (
    DATASET_FORMATS,
    EVENT_COLUMNS,
    FORMATS,
    SpeciesNames,
    audacity,
    competition,
    detections,
    raven,
    species,
    table,
    verdicts,
)

NAMES = SpeciesNames(("s0", "s1", "s2"), ("Screaming Piha", "Rain Frog", "Tink Frog"))
#: Two events of one recording, as a reader gives them.
EVENTS = pd.DataFrame(
    {
        "recording_id": ["rec_a", "rec_a"],
        "species_id": [2, 0],
        "songtype_id": [1, 1],
        "t_min": [0.5, 2.25],
        "f_min": [1000.0, 250.5],
        "t_max": [1.75, 3.0],
        "f_max": [3000.0, 4000.0],
        "present": [True, True],
        "label": ["Tink Frog", "Screaming Piha"],
    }
)
#: The same events as detections: a window per event, with a score.
DETECTIONS = pd.DataFrame(
    {
        "recording": "rec_a",
        "start": EVENTS["t_min"],
        "end": EVENTS["t_max"],
        "species": ["s2", "s0"],
        "score": [0.9, 0.51],
        "low_freq": EVENTS["f_min"],
        "high_freq": EVENTS["f_max"],
        "label": EVENTS["label"],
    }
)


def _same(read: pd.DataFrame, expected: pd.DataFrame) -> bool:
    # The same values; a reader gives whole numbers as integers, as pandas reads them.
    return read.values.tolist() == expected.values.tolist()


def test_every_format_is_one_module_with_a_reader_and_a_writer():
    assert set(FORMATS) == {"competition", "raven", "audacity", "verdicts", "detections"}
    for name, form in FORMATS.items():
        assert form.name == name and callable(form.read) and callable(form.write)
        assert form.read.__module__ == form.write.__module__ == f"rainforest.events.{name}"


def test_data_annotations_allows_exactly_the_dataset_formats():
    allowed = typing.get_args(DataSettings.model_fields["annotations"].annotation)
    assert set(allowed) == set(DATASET_FORMATS) == {"competition", "raven", "audacity"}


@pytest.mark.parametrize("with_present", [False, True])
def test_competition_files_read_back(tmp_path, with_present):
    path = tmp_path / "labels.csv"
    events = EVENTS.assign(present=[True, False])
    path.write_text(competition.write(events, with_present=with_present))
    read = competition.read(path, NAMES, present=None if with_present else True)
    assert _same(read[EVENT_COLUMNS], events[EVENT_COLUMNS])
    assert list(read["present"]) == ([True, False] if with_present else [True, True])
    assert list(read["label"]) == list(EVENTS["label"]) and list(read["line"]) == [2, 3]


def test_raven_tables_read_back(tmp_path):
    path = tmp_path / raven.table_name("rec_a")
    path.write_text(raven.write(DETECTIONS))
    read = raven.read(path, NAMES, recording_id="rec_a")
    assert _same(read[EVENT_COLUMNS], EVENTS[EVENT_COLUMNS])


def test_audacity_tracks_read_back(tmp_path):
    path = tmp_path / "rec_a.txt"
    path.write_text(audacity.write(EVENTS))
    read = audacity.read(path, NAMES, recording_id="rec_a")
    assert _same(read[EVENT_COLUMNS], EVENTS[EVENT_COLUMNS]) and list(read["line"]) == [1, 3]


def test_verdicts_read_back(tmp_path):
    rows = DETECTIONS.assign(file="/field/rec_a.wav", reason="top", verdict=["yes", "no"])
    path = tmp_path / "verdicts.csv"
    path.write_text(verdicts.write(rows))
    read = verdicts.read(path, NAMES)
    box = ["t_min", "t_max", "f_min", "f_max", "species_id"]
    assert _same(read[box], EVENTS[box])
    assert list(read["present"]) == [True, False] and list(read["file"]) == ["/field/rec_a.wav"] * 2


@pytest.mark.parametrize("labelled", [False, True])
def test_detections_read_back(tmp_path, labelled):
    path = tmp_path / detections.FILE_NAME
    path.write_text(detections.write(DETECTIONS, labelled=labelled))
    read = detections.read(path)
    assert list(read.columns) == detections.columns(labelled=labelled)
    assert read.equals(DETECTIONS[detections.columns(labelled=labelled)])


@pytest.mark.parametrize("module", [table, species, raven, audacity])
def test_docstring_examples_run(module):
    # Whitespace normalised: docstrings expand the tabs of Audacity's lines.
    failures, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
