"""Raven selection tables (Raven's and OpenSoundscape's) and Audacity label tracks as training events,
and species.csv (rainforest.events)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from rainforest.card import ModelCard
from rainforest.config import EtlSettings
from rainforest.errors import LabelError
from rainforest.etl import build_window_set
from rainforest.events import EVENT_COLUMNS, TABLE_COLUMNS, SpeciesNames, read_dataset_events, read_species_names
from rainforest.training import model_card
from rainforest.window_sets import read_window_attrs, read_windows
from tests.support.settings import RATE, SPECTROGRAM_SETTINGS, data_settings

SPECIES = ["s0", "s1", "s2"]
NAMES = ["Black Phoebe", "California Towhee", "Dark-eyed Junco"]
RAVEN_HEADER = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tSpecies"
#: Each training recording's length in seconds (at RATE: Nyquist 8000 Hz).
RECORDINGS = {"rec_a": 4.0, "rec_b": 3.0}


def read_annotation_events(dataset, species, annotations, species_column="Species", labels=None):
    names = SpeciesNames(tuple(species), tuple(labels) if labels is not None else None)
    return read_dataset_events(dataset, names, annotations=annotations, species_column=species_column)


def read_species_labels(dataset, species):
    labels = read_species_names(dataset, species).labels
    return list(labels) if labels is not None else None


def raven_row(selection: int, begin: float, end: float, low: float, high: float, species: str, *extra: str) -> str:
    return "\t".join([str(selection), "Spectrogram 1", "1", str(begin), str(end), str(low), str(high), species, *extra])


def make_dataset(root: Path, tables: dict[str, list[str]], species_csv: str | None = None) -> Path:
    """A dataset of two noise recordings in train/, a file per entry of ``tables`` beside them."""
    dataset = root / "dataset"
    (dataset / "train").mkdir(parents=True)
    (dataset / "test").mkdir()
    rng = np.random.default_rng(0)
    for recording_id, seconds in RECORDINGS.items():
        samples = rng.normal(0, 0.05, int(RATE * seconds)).astype(np.float32)
        sf.write(dataset / "train" / f"{recording_id}.wav", samples, RATE)
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1,s2\nt1,0,0,0\n")
    for name, lines in tables.items():
        (dataset / "train" / name).write_text("\n".join(lines) + "\n")
    if species_csv is not None:
        (dataset / "species.csv").write_text(species_csv)
    return dataset


SPECIES_CSV = "species_id,label,code\n0,Black Phoebe,blkpho\n1,California Towhee,caltow\n2,Dark-eyed Junco,daejun\n"
GOOD_RAVEN = {
    "rec_a.Table.1.selections.txt": [
        RAVEN_HEADER,
        raven_row(1, 0.5, 1.25, 1000.0, 3000.0, "Black Phoebe"),
        raven_row(2, 2.0, 3.5, 2500, 4000, "s2"),  # an id, and whole-number frequencies
    ],
    "rec_b.Table.1.selections.txt": [RAVEN_HEADER, raven_row(1, 1.0, 2.0, 500.0, 7999.0, "1")],
}


def line_of(message: str) -> int:
    return int(re.search(r"line (\d+)", message).group(1))


# --- species.csv ---------------------------------------------------------------------------


def test_species_labels_in_model_order(tmp_path):
    dataset = make_dataset(tmp_path, {}, "species_id,label\n2,Dark-eyed Junco\n0,Black Phoebe\n1,California Towhee\n")
    assert read_species_labels(dataset, SPECIES) == NAMES


def test_without_species_csv_there_are_no_labels(tmp_path):
    assert read_species_labels(make_dataset(tmp_path, {}), SPECIES) is None


@pytest.mark.parametrize(
    "text, message, line",
    [
        ("id,label\n0,A\n", "missing column(s) species_id", 1),
        ("species_id,label\n0,A\n1,B\n3,C\n", "species_id must be a whole number from 0 to 2", 4),
        ("species_id,label\n0,A\n1,B\n1,C\n", "species_id 1 is listed twice", 4),
        ("species_id,label\n0,A\n1,\n2,C\n", "species 1 has an empty label", 3),
        ("species_id,label\n0,A\n1,B\n2,A\n", "label 'A' is also species 0's", 4),
    ],
)
def test_bad_species_csv(tmp_path, text, message, line):
    dataset = make_dataset(tmp_path, {}, text)
    with pytest.raises(LabelError, match=re.escape(message)) as error:
        read_species_labels(dataset, SPECIES)
    assert str(dataset / "species.csv") in str(error.value) and line_of(str(error.value)) == line


def test_species_csv_must_name_every_species(tmp_path):
    with pytest.raises(LabelError, match="species 2 of sample_submission.csv have no row"):
        read_species_labels(make_dataset(tmp_path, {}, "species_id,label\n0,A\n1,B\n"), SPECIES)


@pytest.mark.real_audio
def test_real_species_csv_of_xc_birds(shared_file):
    path = shared_file("real/xc_birds/species.csv")
    from rainforest.events import read_species

    species, _ = read_species(path.parent / "sample_submission.csv")
    labels = read_species_labels(path.parent, species)
    assert len(labels) == len(species) == 10 and len(set(labels)) == 10
    assert labels[0] == "Black Phoebe"
    names = SpeciesNames(tuple(species), tuple(labels))
    assert names.identify(pd.Series(["Black Phoebe", "black phoebe", "BLACK PHOEBE"])).tolist() == [0.0] * 3


@pytest.mark.real_audio
def test_xc_birds_as_raven_tables_gives_the_same_events(shared_file, tmp_path):
    # xc_birds' train_tp.csv and train_fp.csv rewritten as one Raven table per
    # recording (species by name, a Present column for the absences), as a
    # person labelling in Raven would leave them.
    from rainforest.events import read_species
    from tests.support.events import read_training_events

    source = shared_file("real/xc_birds/species.csv").parent
    species, _ = read_species(source / "sample_submission.csv")
    labels = read_species_labels(source, species)
    (tmp_path / "train").mkdir()
    for path in (source / "train").iterdir():
        (tmp_path / "train" / path.name).symlink_to(path)
    expected, _ = read_training_events(source, len(species))
    for recording_id, rows in expected.groupby("recording_id"):
        table = pd.DataFrame(
            {
                "Selection": range(1, len(rows) + 1),
                "View": "Spectrogram 1",
                "Channel": 1,
                "Begin Time (s)": rows["t_min"],
                "End Time (s)": rows["t_max"],
                "Low Freq (Hz)": rows["f_min"],
                "High Freq (Hz)": rows["f_max"],
                "Species": [labels[i] for i in rows["species_id"]],
                "Present": np.where(rows["present"], "yes", "no"),
            }
        )
        table.to_csv(tmp_path / "train" / f"{recording_id}.Table.1.selections.txt", sep="\t", index=False)
    events, _ = read_annotation_events(tmp_path, species, "raven", "Species", labels)
    key = [*EVENT_COLUMNS, "present"]
    pd.testing.assert_frame_equal(
        events[key].sort_values(key).reset_index(drop=True), expected[key].sort_values(key).reset_index(drop=True)
    )
    assert len(events) == 90 and int(events["present"].sum()) == 60


# --- Raven selection tables ----------------------------------------------------------------


def test_raven_tables_become_events(tmp_path):
    dataset = make_dataset(tmp_path, GOOD_RAVEN, SPECIES_CSV)
    events, duplicates = read_annotation_events(dataset, SPECIES, "raven", "Species", NAMES)
    assert duplicates == 0
    assert list(events.columns) == TABLE_COLUMNS
    assert list(events["label"]) == ["Black Phoebe", "Dark-eyed Junco", "California Towhee"]
    assert events[EVENT_COLUMNS].values.tolist() == [
        ["rec_a", 0, 1, 0.5, 1000.0, 1.25, 3000.0],
        ["rec_a", 2, 1, 2.0, 2500.0, 3.5, 4000.0],
        ["rec_b", 1, 1, 1.0, 500.0, 2.0, 7999.0],
    ]
    assert events["present"].all() and list(events["line"]) == [2, 3, 2]


def test_raven_species_column_is_a_setting_and_present_column_gives_absences(tmp_path):
    header = RAVEN_HEADER.replace("Species", "Annotation") + "\tPresent"
    tables = {
        "rec_a.Table.1.selections.txt": [
            header,
            raven_row(1, 0.5, 1.0, 100, 900, "s0", "yes"),
            raven_row(2, 1.5, 2.0, 100, 900, "s1", "no"),
        ]
    }
    events, _ = read_annotation_events(make_dataset(tmp_path, tables), SPECIES, "raven", "Annotation")
    assert list(events["species_id"]) == [0, 1] and list(events["present"]) == [True, False]


def test_raven_plain_txt_and_several_tables_per_recording(tmp_path):
    tables = {
        "rec_a.Table.1.selections.txt": [RAVEN_HEADER, raven_row(1, 0.5, 1.0, 100, 900, "s0")],
        "rec_a.Table.2.selections.txt": [RAVEN_HEADER, raven_row(1, 1.5, 2.0, 100, 900, "s1")],
        "rec_b.txt": [RAVEN_HEADER, raven_row(1, 0.5, 1.0, 100, 900, "s2")],
    }
    events, _ = read_annotation_events(make_dataset(tmp_path, tables), SPECIES, "raven")
    assert list(zip(events["recording_id"], events["species_id"])) == [("rec_a", 0), ("rec_a", 1), ("rec_b", 2)]


def _raven_error(tmp_path, lines, species_column="Species", labels=None) -> str:
    dataset = make_dataset(tmp_path, {"rec_a.Table.1.selections.txt": lines})
    with pytest.raises(LabelError) as error:
        read_annotation_events(dataset, SPECIES, "raven", species_column, labels)
    message = str(error.value)
    assert message.startswith(str(dataset / "train" / "rec_a.Table.1.selections.txt"))
    return message


def test_raven_missing_column(tmp_path):
    header = RAVEN_HEADER.replace("\tLow Freq (Hz)", "")
    message = _raven_error(tmp_path, [header, "1\tSpectrogram 1\t1\t0.5\t1.0\t900\ts0"])
    assert "line 1 (header): missing column(s) Low Freq (Hz)" in message


def test_raven_missing_species_column_names_the_setting(tmp_path):
    message = _raven_error(tmp_path, [RAVEN_HEADER, raven_row(1, 0.5, 1.0, 100, 900, "s0")], "Common Name")
    assert "missing column(s) Common Name" in message and "data.species_column" in message


def test_raven_unknown_species(tmp_path):
    lines = [RAVEN_HEADER, raven_row(1, 0.5, 1.0, 100, 900, "s0"), raven_row(2, 1.5, 2.0, 100, 900, "Wrentit")]
    message = _raven_error(tmp_path, lines, labels=NAMES)
    assert line_of(message) == 3 and "unknown species 'Wrentit'" in message and "Black Phoebe" in message


@pytest.mark.parametrize(
    "row, expected",
    [
        (raven_row(1, 3.5, 4.5, 100, 900, "s0"), "ends after the end of recording 'rec_a' (4.000 s long)"),
        (raven_row(1, 0.5, 1.0, 100, 8500, "s0"), "above 8000 Hz, the Nyquist frequency of recording 'rec_a'"),
        (raven_row(1, 1.0, 0.5, 100, 900, "s0"), "Begin Time (s) must be smaller than End Time (s)"),
        (raven_row(1, 0.5, 1.0, 900, 100, "s0"), "Low Freq (Hz) must be smaller than High Freq (Hz)"),
        (raven_row(1, -0.5, 1.0, 100, 900, "s0"), "Begin Time (s) must not be negative"),
        (raven_row(1, 0.5, "x", 100, 900, "s0"), "End Time (s): expected a number, got 'x'"),
        (raven_row(1, 0.5, 1.0, 100, 900, "s0") + "\textra", "9 values, but the header"),
    ],
)
def test_raven_bad_rows(tmp_path, row, expected):
    message = _raven_error(tmp_path, [RAVEN_HEADER, raven_row(1, 0.1, 0.2, 100, 900, "s1"), row])
    assert expected in message and line_of(message) == 3


def test_table_without_its_recording(tmp_path):
    dataset = make_dataset(tmp_path, {"rec_c.Table.1.selections.txt": [RAVEN_HEADER]})
    with pytest.raises(
        LabelError, match=r"no recording in .*train that this file's name starts with; name it after its recording"
    ) as error:
        read_annotation_events(dataset, SPECIES, "raven")
    assert str(error.value).startswith(str(dataset / "train" / "rec_c.Table.1.selections.txt"))


def test_opensoundscape_tables_read_without_renaming(tmp_path):
    # As OpenSoundscape's BoxedAnnotations.to_raven_files writes them: <recording>.selections.txt,
    # the species in "annotation".
    header = RAVEN_HEADER.replace("\tSpecies", "\tannotation")
    tables = {
        "rec_a.selections.txt": [header, raven_row(1, 0.5, 1.25, 1000.0, 3000.0, "Black Phoebe")],
        "rec_b.selections.txt": [header, raven_row(1, 1.0, 2.0, 500.0, 7999.0, "s2")],
    }
    events, _ = read_annotation_events(make_dataset(tmp_path, tables, SPECIES_CSV), SPECIES, "raven", labels=NAMES)
    assert events[["recording_id", "species_id", "label"]].values.tolist() == [
        ["rec_a", 0, "Black Phoebe"],
        ["rec_b", 2, "Dark-eyed Junco"],
    ]


def test_any_table_named_after_its_recording_is_read(tmp_path):
    tables = {"rec_b - checked by Ana.txt": [RAVEN_HEADER, raven_row(1, 1.0, 2.0, 500.0, 7999.0, "s1")]}
    events, _ = read_annotation_events(make_dataset(tmp_path, tables), SPECIES, "raven")
    assert events[["recording_id", "species_id", "line"]].values.tolist() == [["rec_b", 1, 2]]


def test_a_table_named_after_no_recording_names_the_accepted_patterns(tmp_path):
    dataset = make_dataset(tmp_path, {"notes.txt": [RAVEN_HEADER, raven_row(1, 1.0, 2.0, 500.0, 7999.0, "s1")]})
    with pytest.raises(LabelError) as error:
        read_annotation_events(dataset, SPECIES, "raven")
    message = str(error.value)
    assert message.startswith(str(dataset / "train" / "notes.txt"))
    for pattern in ["<recording>.Table.<n>.selections.txt", "<recording>.selections.txt", "<recording>*.txt"]:
        assert pattern in message


def test_species_names_match_without_regard_to_case(tmp_path):
    tables = {
        "rec_a.Table.1.selections.txt": [
            RAVEN_HEADER,
            raven_row(1, 0.5, 1.25, 1000.0, 3000.0, "black PHOEBE"),
            raven_row(2, 2.0, 3.5, 2500, 4000, "S2"),
        ]
    }
    events, _ = read_annotation_events(make_dataset(tmp_path, tables, SPECIES_CSV), SPECIES, "raven", labels=NAMES)
    assert list(events["species_id"]) == [0, 2] and list(events["label"]) == ["Black Phoebe", "Dark-eyed Junco"]


def test_every_bad_row_of_a_table_is_reported_at_once_with_a_close_match(tmp_path):
    rows = [
        raven_row(1, 0.5, 1.25, 1000.0, 3000.0, "Dark eyed Junco"),
        raven_row(2, 2.0, 3.5, 2500, 4000, "s2"),  # fine
        raven_row(3, 2.0, "soon", 2500, 4000, "s2"),
        raven_row(4, 3.0, 2.0, 2500, 4000, "s1"),
        raven_row(5, 1.0, 2.0, 500, 4000, "Wrentit"),
    ]
    dataset = make_dataset(tmp_path, {"rec_a.Table.1.selections.txt": [RAVEN_HEADER, *rows]}, SPECIES_CSV)
    with pytest.raises(LabelError) as error:
        read_annotation_events(dataset, SPECIES, "raven", labels=NAMES)
    message = str(error.value)
    assert message.startswith(f"{dataset / 'train' / 'rec_a.Table.1.selections.txt'}: 4 rows to fix; write a label")
    lines = message.split("\n")[1:]
    assert [line_of(line) for line in lines] == [2, 4, 5, 6]
    assert "unknown species 'Dark eyed Junco' (did you mean 'Dark-eyed Junco'?)" in lines[0]
    assert "column End Time (s): expected a number, got 'soon'" in lines[1]
    assert "Begin Time (s) must be smaller than End Time (s)" in lines[2]
    assert "unknown species 'Wrentit'" in lines[3] and "did you mean" not in lines[3]


def test_species_csv_refuses_names_that_differ_only_in_case(tmp_path):
    dataset = make_dataset(tmp_path, {}, "species_id,label\n0,Black Phoebe\n1,black phoebe\n2,Dark-eyed Junco\n")
    with pytest.raises(LabelError, match="line 3: label 'black phoebe' is also species 0's"):
        read_species_labels(dataset, SPECIES)


def test_no_tables_at_all(tmp_path):
    with pytest.raises(LabelError, match="no Raven selection tables .* data.annotations is 'raven'"):
        read_annotation_events(make_dataset(tmp_path, {}), SPECIES, "raven")


# --- Audacity label tracks -----------------------------------------------------------------


def test_audacity_label_tracks_become_events(tmp_path):
    tracks = {
        "rec_a.txt": ["0.500000\t1.250000\tBlack Phoebe", "\\\t1000.000000\t3000.000000", "2.0\t3.5\ts2"],
        "rec_b.txt": ["1.0\t2.0\t1"],
    }
    events, _ = read_annotation_events(make_dataset(tmp_path, tracks, SPECIES_CSV), SPECIES, "audacity", labels=NAMES)
    # A label without a frequency line spans 0 Hz to the recording's Nyquist frequency.
    assert events[EVENT_COLUMNS].values.tolist() == [
        ["rec_a", 0, 1, 0.5, 1000.0, 1.25, 3000.0],
        ["rec_a", 2, 1, 2.0, 0.0, 3.5, 8000.0],
        ["rec_b", 1, 1, 1.0, 0.0, 2.0, 8000.0],
    ]
    assert list(events["line"]) == [1, 3, 1]


@pytest.mark.parametrize(
    "lines, expected, line",
    [
        (["0.5\t1.0\ts0", "1.5\t2.0"], "expected start<TAB>end<TAB>label", 2),
        (["\\\t100\t900"], "a frequency line", 1),
        (["0.5\t1.0\ts0", "\\\t100\t900", "\\\t100\t900"], "a frequency line", 3),
        (["0.5\t1.0\tWrentit"], "unknown species 'Wrentit'", 1),
        (["0.5\t4.5\ts0"], "ends after the end of recording 'rec_a'", 1),
        (["0.5\t1.0\ts0", "\\\t100\t9000"], "above 8000 Hz", 1),
    ],
)
def test_audacity_bad_lines(tmp_path, lines, expected, line):
    dataset = make_dataset(tmp_path, {"rec_a.txt": lines})
    with pytest.raises(LabelError, match=re.escape(expected)) as error:
        read_annotation_events(dataset, SPECIES, "audacity")
    assert str(error.value).startswith(str(dataset / "train" / "rec_a.txt")) and line_of(str(error.value)) == line


# --- through etl, to the model card --------------------------------------------------------


def _etl(dataset: Path, out: Path, annotations: str, events_path: Path | None = None):
    settings = EtlSettings(workers=1, on_unreadable="stop", background_windows=0, windows_per_event=1)
    return build_window_set(
        data_settings(dataset, annotations=annotations),
        out,
        spectrogram_settings=SPECTROGRAM_SETTINGS,
        settings=settings,
        events_path=events_path,
    )


def test_etl_reads_a_raven_dataset_and_carries_the_names(tmp_path):
    dataset = make_dataset(tmp_path, GOOD_RAVEN, SPECIES_CSV)
    report = _etl(dataset, tmp_path / "windows.h5", "raven", tmp_path / "events.csv")
    assert (report.recordings_read, report.windows_written, report.events_clamped) == (2, 3, 0)
    windows = read_windows(tmp_path / "windows.h5", ("event_species", "recording_ids", "targets"))
    assert list(windows["event_species"]) == [0, 2, 1]
    assert list(windows["recording_ids"]) == ["rec_a", "rec_a", "rec_b"]
    assert [str(label) for label in read_window_attrs(tmp_path / "windows.h5")["species_labels"]] == NAMES
    events = pd.read_csv(tmp_path / "events.csv")
    assert list(events.columns) == [*EVENT_COLUMNS, "present"] and len(events) == 3
    card = model_card(tmp_path / "windows.h5")
    assert card.species == SPECIES and card.labels == NAMES
    assert ModelCard.from_json(card.to_json()) == card
    assert card.display_names() == [f"s{i} {name}" for i, name in enumerate(NAMES)]


def test_etl_without_species_csv_stores_no_labels(tmp_path):
    dataset = make_dataset(
        tmp_path,
        GOOD_RAVEN | {"rec_a.Table.1.selections.txt": [RAVEN_HEADER, raven_row(1, 0.5, 1.25, 1000.0, 3000.0, "s0")]},
    )
    _etl(dataset, tmp_path / "windows.h5", "raven")
    assert "species_labels" not in read_window_attrs(tmp_path / "windows.h5")
    card = model_card(tmp_path / "windows.h5")
    assert card.labels is None and "labels" not in card.to_json() and card.display_names() == SPECIES


def test_etl_reads_an_audacity_dataset(tmp_path):
    dataset = make_dataset(tmp_path, {"rec_a.txt": ["0.5\t1.0\ts0"], "rec_b.txt": ["1.0\t2.0\ts1"]})
    report = _etl(dataset, tmp_path / "windows.h5", "audacity")
    assert (report.recordings_read, report.windows_written) == (2, 2)


def test_the_etl_stage_follows_data_annotations(tmp_path):
    from rainforest.config import DataSettings
    from rainforest.etl import write_window_set

    dataset = make_dataset(tmp_path, GOOD_RAVEN, SPECIES_CSV)
    data = DataSettings(
        dataset_dir=dataset, annotations="raven", species_column="Species", reviews_dir=tmp_path / "reviews"
    )
    settings = EtlSettings(workers=1, on_unreadable="stop", background_windows=0, windows_per_event=2)
    report = write_window_set(
        data=data,
        spectrogram_settings=SPECTROGRAM_SETTINGS,
        settings=settings,
        windows_path=tmp_path / "w.h5",
        metrics_path=tmp_path / "etl.json",
        report_path=tmp_path / "report.json",
    )
    assert report.recordings_read == 2 and report.windows_written == 3 * 2
    with pytest.raises(LabelError, match="missing column"):
        write_window_set(
            data=data.model_copy(update={"species_column": "Common Name"}),
            spectrogram_settings=SPECTROGRAM_SETTINGS,
            settings=settings,
            windows_path=tmp_path / "x.h5",
            metrics_path=tmp_path / "x.json",
            report_path=tmp_path / "x_report.json",
        )
    assert not (tmp_path / "x.h5").exists()
