"""Label files in the competition's layout, and the labels of a window.

``train_tp.csv`` lists events where a species is present, ``train_fp.csv``
events where a detector fired but a person found the species absent. Both have
the columns ``recording_id,species_id,songtype_id,t_min,f_min,t_max,f_max``.
``sample_submission.csv`` names the test recordings (rows) and the species
(columns ``s0 .. sN``).

A project may also hold reviewed labels (``data.reviews_dir``, by default
``reviews/``): ``labels.csv``, the verdicts people gave on detections
(:mod:`rainforest.review.verdicts` writes it), with the same columns plus
``present``, and ``recordings/``, copies of the reviewed recordings that are
not in the dataset's ``train/``. ``etl`` reads them besides the dataset's own.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rainforest.errors import LabelError

log = logging.getLogger(__name__)

EVENT_COLUMNS = ["recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max"]
#: The reviewed labels' file and recordings folder, inside ``data.reviews_dir``.
REVIEWED_LABELS, REVIEWED_RECORDINGS = "labels.csv", "recordings"
#: The columns of the reviewed labels' file: an event, and whether the species called (1) or not (0).
REVIEWED_COLUMNS = [*EVENT_COLUMNS, "present"]
_NUMERIC_COLUMNS = EVENT_COLUMNS[1:]

#: An event labels a window when at least this share of the shorter of the two
#: lies inside the other.
MIN_OVERLAP_SHARE = 0.5


def _read_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """A CSV file as a table of strings, and the line number of its header.

    The table is indexed by line number in the file; values are stripped of
    surrounding spaces, empty ones are NaN and blank lines are left out. The
    csv module reads it rather than pandas, so that line numbers stay true
    (blank lines and quoted line breaks count) and a row with more values than
    the header is an error, where pandas would shift or drop values silently.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            rows, lines, line = [], [], 1
            for row in reader:
                fields = [field.strip() for field in row]
                if any(fields):
                    rows.append(fields)
                    lines.append(line)
                line = reader.line_num + 1
    except FileNotFoundError:
        raise LabelError(f"{path}: file not found; check data.dataset_dir in params.yaml") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LabelError(f"{path}: not a readable CSV file ({error}); save it as comma-separated UTF-8 text") from None
    if not rows:
        raise LabelError(f"{path}: file is empty; it needs a header row: {','.join(EVENT_COLUMNS)}")
    header, header_line = rows[0], lines[0]
    while not header[-1]:  # trailing commas
        header.pop()
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise LabelError(
            f"{path}: line {header_line} (header): column(s) {', '.join(repeated)} appear more than once; keep one"
        )
    for fields, line in zip(rows[1:], lines[1:]):
        if len(fields) < len(header) or any(fields[len(header) :]):
            raise LabelError(
                f"{path}: line {line}: {len(fields)} values, but the header (line {header_line}) has "
                f"{len(header)} columns; give every column a value (quote values that contain commas)"
            )
    data = [fields[: len(header)] for fields in rows[1:]]
    table = pd.DataFrame(data, columns=header, index=lines[1:], dtype=object)
    return table.replace("", np.nan), header_line


def read_species(path: str | Path) -> tuple[list[str], list[str]]:
    """Read ``sample_submission.csv``.

    Returns
    -------
    species : list of str
        The species columns, ``["s0", "s1", ...]``, in file order.
    recording_ids : list of str
        The test recordings, in file order.
    """
    path = Path(path)
    table, _ = _read_csv(path)
    if table.columns[0] != "recording_id":
        raise LabelError(f"{path}: first column must be 'recording_id', found {table.columns[0]!r}")
    species = list(table.columns[1:])
    expected = [f"s{i}" for i in range(len(species))]
    if not species or species != expected:
        raise LabelError(
            f"{path}: species columns must be s0, s1, ... in order; found {', '.join(species) or 'none'}"
        )
    ids = table["recording_id"]
    if ids.isna().any():
        raise LabelError(f"{path}: row {ids.index[ids.isna()][0]} has no recording_id")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise LabelError(f"{path}: recording {duplicated.iloc[0]!r} is listed twice; keep one row")
    return species, ids.tolist()


def read_events(path: str | Path, n_species: int) -> pd.DataFrame:
    """Read and validate an event table (``train_tp.csv`` or ``train_fp.csv``).

    Rows identical to an earlier row are dropped, with a logged warning that
    counts them.

    Raises
    ------
    LabelError
        Naming the file, the row (as a line number in the file) and the
        problem: a missing column, a row with too many or too few values, a
        non-numeric, missing or infinite value, an event that ends before it
        starts or a species outside ``s0 .. s{n_species-1}``.
    """
    table, _ = _read_event_rows(Path(path), n_species)
    return table.drop(columns="line")


def _read_event_rows(path: Path, n_species: int) -> tuple[pd.DataFrame, int]:
    """The validated events of a file with their ``line`` numbers, and how many duplicates were dropped."""
    table, header_line = _read_csv(path)
    missing = [c for c in EVENT_COLUMNS if c not in table.columns]
    if missing:
        raise LabelError(
            f"{path}: line {header_line} (header): missing column(s) {', '.join(missing)}; "
            f"the header must be {','.join(EVENT_COLUMNS)} (found {','.join(table.columns)})"
        )
    table = table[EVENT_COLUMNS].copy()
    for column in _NUMERIC_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        if bad.any():
            row = int(bad.argmax())
            expected = "a number" if pd.isna(values.iloc[row]) else "a finite number"
            raise LabelError(
                f"{path}: line {table.index[row]}, column {column}: expected {expected}, "
                f"got {table[column].iloc[row]!r}"
            )
        table[column] = values
    if table["recording_id"].isna().any():
        raise LabelError(f"{path}: line {table.index[table['recording_id'].isna()][0]}: recording_id is empty")
    _check_rows(path, table, n_species)
    table["species_id"] = table["species_id"].astype(int)
    table["songtype_id"] = table["songtype_id"].astype(int)
    duplicated = table.duplicated(keep="first").to_numpy()
    if duplicated.any():
        log.warning(
            "%s: dropped %d duplicate row(s), identical to an earlier row (first: line %d)",
            path,
            int(duplicated.sum()),
            table.index[duplicated][0],
        )
    table = table[~duplicated].rename_axis("line").reset_index()
    return table[[*EVENT_COLUMNS, "line"]], int(duplicated.sum())


def _check_rows(path: Path, table: pd.DataFrame, n_species: int) -> None:
    checks = [
        (table["species_id"] % 1 != 0, "species_id must be a whole number"),
        (
            (table["species_id"] < 0) | (table["species_id"] >= n_species),
            f"species_id must be between 0 and {n_species - 1} (the columns of sample_submission.csv)",
        ),
        (
            (table["songtype_id"] % 1 != 0) | (table["songtype_id"] < 0) | (table["songtype_id"] >= 2**31),
            "songtype_id must be a whole number from 0 to 2147483647",
        ),
        (table["t_min"] < 0, "t_min must not be negative"),
        (table["t_min"] >= table["t_max"], "t_min must be smaller than t_max"),
        (table["f_min"] < 0, "f_min must not be negative"),
        (table["f_min"] >= table["f_max"], "f_min must be smaller than f_max"),
    ]
    for bad, message in checks:
        bad = bad.to_numpy()
        if bad.any():
            row = int(bad.argmax())
            values = table.iloc[row].to_dict()
            raise LabelError(f"{path}: line {table.index[row]}: {message}; the row is {values}")


def read_training_events(dataset_dir: str | Path, n_species: int) -> tuple[pd.DataFrame, int]:
    """All labelled events of a dataset, and how many duplicate rows were dropped.

    ``train_fp.csv`` is optional: without it there are no known absences.

    Returns
    -------
    events : pd.DataFrame
        The event columns, plus ``present`` (bool: from ``train_tp.csv``), and
        ``source`` and ``line``: the file and line each event comes from, for
        messages about it.
    duplicates : int
        Rows dropped because they repeat an earlier row of the same file.
    """
    dataset_dir = Path(dataset_dir)
    tables, duplicates = [], 0
    for name, present in [("train_tp.csv", True), ("train_fp.csv", False)]:
        path = dataset_dir / name
        if not present and not path.exists():
            continue
        table, dropped = _read_event_rows(path, n_species)
        tables.append(table.assign(present=present, source=str(path)))
        duplicates += dropped
    return pd.concat(tables, ignore_index=True), duplicates


def read_reviewed_events(reviews_dir: str | Path, n_species: int) -> pd.DataFrame:
    """The events of a project's reviewed labels (``reviews_dir/labels.csv``), as :func:`read_training_events`'.

    A project without the file has no reviewed events (an empty table).

    Raises
    ------
    LabelError
        As :func:`read_events`, or if ``present`` is missing or not 0 or 1,
        naming the file and line.
    """
    path = Path(reviews_dir) / REVIEWED_LABELS
    columns = [*EVENT_COLUMNS, "present", "source", "line"]
    if not path.exists():
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    table, header_line = _read_csv(path)
    if "present" not in table.columns:
        raise LabelError(
            f"{path}: line {header_line} (header): missing column present; the header must be "
            f"{','.join(REVIEWED_COLUMNS)}"
        )
    present = table["present"]
    bad = ~present.isin(["0", "1"]).to_numpy()
    if bad.any():
        raise LabelError(
            f"{path}: line {table.index[bad][0]}, column present: expected 1 (the species called) or 0 (it did "
            f"not), got {present[bad].iloc[0]!r}"
        )
    events, _ = _read_event_rows(path, n_species)
    events["present"] = (present.loc[events["line"]] == "1").to_numpy()
    return events.assign(source=str(path))[columns]


def fit_events_to_recording(events: pd.DataFrame, duration: float) -> tuple[pd.DataFrame, int]:
    """Check a recording's events against its length; clamp those that run past its end.

    Parameters
    ----------
    events
        One recording's events, with ``recording_id``, ``t_min``, ``t_max``,
        ``source`` and ``line`` (as from :func:`read_training_events`).
    duration
        The recording's length in seconds.

    Returns
    -------
    events : pd.DataFrame
        The events, with ``t_max`` clamped to ``duration``.
    clamped : int
        How many events were clamped.

    Raises
    ------
    LabelError
        If an event starts at or after the recording's end, naming its file and line.
    """
    late = (events["t_min"] >= duration).to_numpy()
    if late.any():
        row = events[late].iloc[0]
        raise LabelError(
            f"{row['source']}: line {row['line']}: the event starts at {row['t_min']} s, at or after the end "
            f"of recording {row['recording_id']!r} ({duration:.3f} s long); fix t_min and t_max or remove the row"
        )
    overrun = (events["t_max"] > duration).to_numpy()
    if overrun.any():
        events = events.assign(t_max=np.minimum(events["t_max"].to_numpy(), duration))
    return events, int(overrun.sum())


def window_labels(events: pd.DataFrame, start: float, end: float, n_species: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-species target and mask of the window ``[start, end)`` seconds.

    Parameters
    ----------
    events
        The events of the window's recording, with columns ``species_id``,
        ``t_min``, ``t_max`` and ``present``.

    Returns
    -------
    target : np.ndarray of uint8, shape (n_species,)
        1 where a present event overlaps the window, else 0.
    mask : np.ndarray of uint8, shape (n_species,)
        1 where the label is known: a present event, or an absent (false
        positive) event, overlaps the window. 0 where nobody said anything.
        Presence wins when both kinds of event of one species overlap.
    """
    target = np.zeros(n_species, dtype=np.uint8)
    mask = np.zeros(n_species, dtype=np.uint8)
    overlap = np.minimum(events["t_max"].to_numpy(), end) - np.maximum(events["t_min"].to_numpy(), start)
    shorter = np.minimum(events["t_max"].to_numpy() - events["t_min"].to_numpy(), end - start)
    overlapping = overlap >= MIN_OVERLAP_SHARE * shorter
    species = events["species_id"].to_numpy()[overlapping]
    present = events["present"].to_numpy()[overlapping].astype(bool)
    mask[species] = 1
    target[species[present]] = 1
    return target, mask


def presence_matrix(events: pd.DataFrame, recording_ids: list[str], n_species: int) -> np.ndarray:
    """(n_recordings, n_species) 0/1 matrix of which species each recording holds."""
    row_of = {rid: i for i, rid in enumerate(recording_ids)}
    truth = np.zeros((len(recording_ids), n_species), dtype=np.uint8)
    for recording_id, species_id in zip(events["recording_id"], events["species_id"]):
        if recording_id in row_of:
            truth[row_of[recording_id], species_id] = 1
    return truth
