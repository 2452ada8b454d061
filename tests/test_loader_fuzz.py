"""Property-based tests: whatever a label file or recording holds, the loaders
either load it correctly or raise the project's own error (a PipelineError
naming the file), never another exception."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rainforest.audio import load_recording
from rainforest.errors import AudioError, LabelError
from rainforest.events import EVENT_COLUMNS, read_species
from tests.support.events import read_events
from tests.support.settings import EVENTS_HEADER, RATE

N_SPECIES = 4
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# --- label rows with a known verdict --------------------------------------------------

# One defect each: (column, value) replacing a valid value.
DEFECTS = [
    ("species_id", "seven"),
    ("species_id", str(N_SPECIES)),
    ("species_id", "-1"),
    ("species_id", "1.5"),
    ("songtype_id", "0.5"),
    ("songtype_id", "1e30"),
    ("t_min", ""),
    ("t_min", "-1"),
    ("t_min", "100"),  # after t_max
    ("t_max", "nan"),
    ("t_max", "inf"),
    ("f_min", "-5"),
    ("f_min", "1e9"),  # above f_max
    ("f_max", "12kHz"),
    ("recording_id", ""),
]

valid_rows = st.fixed_dictionaries(
    {
        "recording_id": st.text("abcdef0123456789", min_size=1, max_size=9),
        "species_id": st.integers(0, N_SPECIES - 1).map(str),
        "songtype_id": st.sampled_from(["1", "4", "1.0"]),
        "t_min": st.floats(0, 50, allow_nan=False).map(lambda x: f"{x:.4f}"),
        "duration": st.floats(0.01, 9),
        "f_min": st.floats(0, 5000, allow_nan=False).map(lambda x: f"{x:.2f}"),
        "band": st.floats(1, 10000),
    }
).map(
    lambda r: {
        **{k: r[k] for k in ("recording_id", "species_id", "songtype_id", "t_min", "f_min")},
        "t_max": f"{float(r['t_min']) + r['duration']:.4f}",
        "f_max": f"{float(r['f_min']) + r['band']:.2f}",
    }
)

rows_with_defects = st.lists(
    st.tuples(valid_rows, st.one_of(st.none(), st.sampled_from(DEFECTS))), min_size=0, max_size=8
)


def _line(row: dict) -> str:
    return ",".join(row[column] for column in EVENT_COLUMNS)


@FUZZ
@given(rows=rows_with_defects, blank_after=st.sets(st.integers(0, 8)))
def test_event_rows_load_or_name_a_bad_line(folder, rows, blank_after):
    lines, bad_lines = [EVENTS_HEADER], set()
    for index, (row, defect) in enumerate(rows):
        if defect:
            row = {**row, defect[0]: defect[1]}
            bad_lines.add(len(lines) + 1)
        lines.append(_line(row))
        if index in blank_after:
            lines.append("")  # blank lines do not shift the line numbers
    path = folder / "train_tp.csv"
    path.write_text("\n".join(lines) + "\n")
    if bad_lines:
        with pytest.raises(LabelError) as error:
            read_events(path, N_SPECIES)
        message = str(error.value)
        assert message.startswith(f"{path}: line " if len(bad_lines) == 1 else f"{path}: {len(bad_lines)} rows to fix")
        assert {int(line) for line in re.findall(r"line (\d+)", message)} == bad_lines  # every bad row, at once
        return
    events = read_events(path, N_SPECIES)
    expected = {tuple(float(row[c]) if c != "recording_id" else row[c] for c in EVENT_COLUMNS) for row, _ in rows}
    assert len(events) == len(expected)  # duplicates dropped, nothing else
    assert list(events.columns) == EVENT_COLUMNS
    assert events["species_id"].dtype.kind == "i" and events["songtype_id"].dtype.kind == "i"
    assert (events["t_min"] < events["t_max"]).all() and (events["f_min"] < events["f_max"]).all()


# --- anything at all in a label file ----------------------------------------------------

odd_fields = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "-0", "1e20", '"', '""', " ", "9" * 30, "0x10", "1_000"]),
    st.floats().map(repr),
    st.integers(-(10**20), 10**20).map(str),
)
odd_rows = st.lists(odd_fields, max_size=9).map(",".join)


def _loaded_events_are_valid(events) -> None:
    assert list(events.columns) == EVENT_COLUMNS
    numbers = events[EVENT_COLUMNS[1:]].to_numpy(dtype=float)
    assert np.isfinite(numbers).all()
    assert events["species_id"].between(0, N_SPECIES - 1).all()
    assert (events["t_min"] >= 0).all() and (events["t_min"] < events["t_max"]).all()
    assert events["recording_id"].map(lambda r: isinstance(r, str) and r != "").all()


@FUZZ
@given(rows=st.lists(odd_rows, max_size=6), header=st.sampled_from([EVENTS_HEADER, "", "recording_id,s0,s1"]))
def test_odd_rows_load_or_raise_label_error(folder, rows, header):
    path = folder / "odd.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    try:
        _loaded_events_are_valid(read_events(path, N_SPECIES))
    except LabelError as error:
        assert str(path) in str(error)
    try:
        species, ids = read_species(path)
        assert species == [f"s{i}" for i in range(len(species))] and len(set(ids)) == len(ids)
    except LabelError as error:
        assert str(path) in str(error)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_as_label_files(folder, data):
    path = folder / "bytes.csv"
    path.write_bytes(data)
    try:
        _loaded_events_are_valid(read_events(path, N_SPECIES))
    except LabelError as error:
        assert str(path) in str(error)
    try:
        read_species(path)
    except LabelError as error:
        assert str(path) in str(error)


# --- anything at all in a recording ----------------------------------------------------------


def _encoded(format: str, subtype: str | None, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    tone = 0.5 * np.sin(np.arange(2000) * 0.3)
    sf.write(buffer, tone, rate, format=format, subtype=subtype)
    return buffer.getvalue()


VALID_FILES = [
    ("a.wav", _encoded("WAV", "PCM_16")),
    ("a.wav", _encoded("WAV", "FLOAT")),
    ("a.wav", _encoded("WAV", "PCM_U8", rate=RATE)),
    ("a.flac", _encoded("FLAC", "PCM_24")),
    ("a.ogg", _encoded("OGG", "VORBIS")),
]


def _check_loads_or_audio_error(path) -> None:
    try:
        waveform = load_recording(path, RATE)
    except AudioError as error:
        assert str(path) in str(error)
        return
    assert waveform.dtype == np.float32 and waveform.ndim == 1 and len(waveform) > 0
    assert np.isfinite(waveform).all()


@FUZZ
@given(
    original=st.sampled_from(VALID_FILES),
    flips=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
    keep=st.one_of(st.none(), st.integers(0, 5000)),
)
def test_damaged_recordings_load_or_raise_audio_error(folder, original, flips, keep):
    name, data = original
    damaged = bytearray(data if keep is None else data[:keep])
    for offset, value in flips:  # the header and the first frames
        if offset < len(damaged):
            damaged[offset] = value
    path = folder / name
    path.write_bytes(bytes(damaged))
    _check_loads_or_audio_error(path)


@FUZZ
@given(data=st.binary(max_size=600), name=st.sampled_from(["r.wav", "r.flac", "r.ogg"]))
def test_random_bytes_as_recordings(folder, data, name):
    path = folder / name
    path.write_bytes(data)
    _check_loads_or_audio_error(path)
