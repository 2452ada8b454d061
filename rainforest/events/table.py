"""The events table: one reader of text tables that keeps line numbers, one validator.

Every format (:mod:`rainforest.events`) reads its file with
:func:`read_text_table` into strings indexed by line number, renames its
columns to the event columns, and hands the rows to :func:`validate_events`,
which checks them once for all formats and returns the events table:

``recording_id, species_id, songtype_id, t_min, f_min, t_max, f_max``
    The competition's columns (:data:`EVENT_COLUMNS`).
``present``
    True for a call, False for a known absence (a row of ``train_fp.csv``,
    a "no" verdict).
``label``
    The species' name: its label in the dataset's ``species.csv``, else its
    id (``s3``).
``source``, ``line``
    The file and line the row comes from, for messages about it.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rainforest.errors import LabelError

if TYPE_CHECKING:  # species.py reads its files with this module's reader
    from rainforest.events.species import SpeciesNames

log = logging.getLogger(__name__)

EVENT_COLUMNS = ["recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max"]
#: The columns of the events table (see the module docs).
TABLE_COLUMNS = [*EVENT_COLUMNS, "present", "label", "source", "line"]
#: The event's box, in the order a message names them.
BOX_COLUMNS = ["t_min", "t_max", "f_min", "f_max"]

#: Formats without song types (Raven, Audacity, verdicts) give every event the competition's most common one.
SONGTYPE_ID = 1

#: An event labels a window when at least this share of the shorter of the two
#: lies inside the other.
MIN_OVERLAP_SHARE = 0.5


def read_text_table(
    path: str | Path,
    *,
    delimiter: str = ",",
    pad_short_rows: bool = False,
    header: list[str] | None = None,
    not_found: str = "",
) -> tuple[pd.DataFrame, int]:
    """A delimited text file as a table of strings, and the line number of its header.

    The table is indexed by line number in the file; values are stripped of
    surrounding spaces, empty ones are ``""`` and blank lines are left out.
    The csv module reads it rather than pandas, so that line numbers stay true
    (blank lines and quoted line breaks count) and a row with more values than
    the header is an error, where pandas would shift or drop values silently.

    Parameters
    ----------
    delimiter
        ``","`` or ``"\\t"`` (tab-separated files take quotes literally, as
        Raven writes them).
    pad_short_rows
        Give a row with fewer values than the header empty values (Raven
        leaves trailing empty annotations out); otherwise such a row is an error.
    header
        The columns of a file without a header row (every line is data; the
        header's line is then 0).
    not_found
        What to add to the message when the file does not exist.

    Raises
    ------
    LabelError
        Naming the file and line: missing, unreadable or empty, a column
        named twice, a row with more (or fewer) values than the header.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("a,b\\n\\n1, 2\\n")
    >>> table, header_line = read_text_table(path)
    >>> table.loc[3, "b"], header_line
    ('2', 1)
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(
                file, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
            )
            rows, lines, line = [], [], 1
            for row in reader:
                fields = [field.strip() for field in row]
                if any(fields):
                    rows.append(fields)
                    lines.append(line)
                line = reader.line_num + 1
    except FileNotFoundError:
        raise LabelError(f"{path}: file not found{not_found}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LabelError(f"{path}: not a readable text table ({error}); save it as UTF-8 text") from None
    if header is not None:
        rows, lines = [list(header), *rows], [0, *lines]
    if not rows:
        raise LabelError(f"{path}: file is empty; it needs a header row")
    header, header_line = rows[0], lines[0]
    while header and not header[-1]:  # trailing delimiters
        header.pop()
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise LabelError(
            f"{path}: line {header_line} (header): column(s) {', '.join(repeated)} appear more than once; keep one"
        )
    for fields, line in zip(rows[1:], lines[1:]):
        if any(fields[len(header) :]) or (len(fields) < len(header) and not pad_short_rows):
            expected = (
                f"the header (line {header_line}) has {len(header)} columns"
                if header_line
                else f"a line has {len(header)} ({'<TAB>'.join(header)})"
            )
            raise LabelError(
                f"{path}: line {line}: {len(fields)} values, but {expected}; give every column a value "
                "(quote values that contain commas)"
            )
    data = [(fields + [""] * len(header))[: len(header)] for fields in rows[1:]]
    return pd.DataFrame(data, columns=header, index=lines[1:], dtype=object), header_line


def require_columns(path: Path, table: pd.DataFrame, header_line: int, needed: list[str], hint: str) -> None:
    """Raise naming the columns of ``needed`` that ``table`` lacks, with ``hint`` on what the header must be."""
    missing = [name for name in needed if name not in table.columns]
    if missing:
        raise LabelError(f"{path}: line {header_line} (header): missing column(s) {', '.join(missing)}; {hint}")


@dataclass(frozen=True)
class RecordingShape:
    """A recording's length (s) and Nyquist frequency (Hz), to check the events that label it against."""

    recording_id: str
    seconds: float
    nyquist: float


def validate_events(
    rows: pd.DataFrame,
    path: Path,
    species: SpeciesNames,
    *,
    names: Mapping[str, str],
    recording: RecordingShape | None = None,
) -> pd.DataFrame:
    """Check a file's rows and return them as the events table (see the module docs).

    Parameters
    ----------
    rows
        Strings indexed by line number, with the columns ``recording_id``,
        ``species_id`` (a number, as in the competition's files) or
        ``species`` (a name, id or number: :meth:`SpeciesNames.lookup`),
        ``t_min``, ``t_max``, ``f_min``, ``f_max``, optionally
        ``songtype_id`` (else :data:`SONGTYPE_ID`), and ``present`` (bool).
    path
        The file, for messages.
    species
        The dataset's species.
    names
        The file's own name of each column, for messages (``t_min`` is
        ``Begin Time (s)`` in a Raven table).
    recording
        The recording the rows label, if the file labels one: events must
        then lie inside it, in time and below its Nyquist frequency.

    Raises
    ------
    LabelError
        Naming the file, line and column: an empty ``recording_id``, a value
        that is not a finite number, an unknown species, a song type that is
        not a whole number, a box that is inverted, begins before 0 s or lies
        outside its recording.
    """

    problems: list[tuple[int, str]] = []  # (line, what is wrong there), every one of the file
    rows = rows.copy()
    blank = (rows["recording_id"].isna() | (rows["recording_id"] == "")).to_numpy()
    problems += [(line, ": recording_id is empty") for line in rows.index[blank]]
    checked = ~blank  # rows without a problem yet: a row's later checks need its values
    numeric = [c for c in ["species_id", "songtype_id", *BOX_COLUMNS] if c in rows.columns]
    for column in numeric:
        values = pd.to_numeric(rows[column].replace("", np.nan), errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        for i in np.flatnonzero(bad):
            expected = "a number" if pd.isna(values.iloc[i]) else "a finite number"
            problems.append(
                (rows.index[i], f", column {names[column]}: expected {expected}, got {rows[column].iloc[i]!r}")
            )
        checked &= ~bad
        rows[column] = values
    hint = ""
    if "species" in rows.columns:
        ids = species.identify(rows["species"])
        unknown = ids.isna().to_numpy()
        for i in np.flatnonzero(unknown):
            name = rows["species"].iloc[i]
            problems.append((rows.index[i], f": unknown species {name!r}{species.suggestion(name)}"))
        if unknown.any():
            hint = species.how_to_name()
        checked &= ~unknown
        rows["species_id"] = ids.fillna(0)
    if "songtype_id" not in rows.columns:
        rows["songtype_id"] = SONGTYPE_ID
    last = len(species.ids) - 1
    checks = [
        (rows["species_id"] % 1 != 0, f"{names['species_id']} must be a whole number"),
        (
            (rows["species_id"] < 0) | (rows["species_id"] > last),
            f"{names['species_id']} must be between 0 and {last} (the columns of sample_submission.csv)",
        ),
        (
            (rows["songtype_id"] % 1 != 0) | (rows["songtype_id"] < 0) | (rows["songtype_id"] >= 2**31),
            f"{names.get('songtype_id', 'songtype_id')} must be a whole number from 0 to 2147483647",
        ),
        (rows["t_min"] < 0, f"{names['t_min']} must not be negative"),
        (rows["t_min"] >= rows["t_max"], f"{names['t_min']} must be smaller than {names['t_max']}"),
        (rows["f_min"] < 0, f"{names['f_min']} must not be negative"),
        (rows["f_min"] >= rows["f_max"], f"{names['f_min']} must be smaller than {names['f_max']}"),
    ]
    if recording is not None:
        checks += [
            (
                rows["t_max"] > round(recording.seconds, 6),
                f"the event ends after the end of recording {recording.recording_id!r} "
                f"({recording.seconds:.3f} s long)",
            ),
            (
                rows["f_max"] > recording.nyquist,
                f"{names['f_max']} is above {recording.nyquist:g} Hz, the Nyquist frequency of recording "
                f"{recording.recording_id!r}",
            ),
        ]
    for condition, message in checks:
        bad = condition.to_numpy() & checked
        for i in np.flatnonzero(bad):
            values = {names.get(c, c): rows[c].iloc[i] for c in BOX_COLUMNS if c in rows.columns}
            box = ", ".join(f"{name} {value:g}" for name, value in values.items())
            problems.append((rows.index[i], f": {message}; the box is {box}; fix or remove the row"))
        checked &= ~bad  # one problem a row: the first check it fails
    if problems:
        raise LabelError(_problems_message(path, problems, hint))
    rows["species_id"] = rows["species_id"].astype(int)
    rows["songtype_id"] = rows["songtype_id"].astype(int)
    rows["label"] = [species.name(i) for i in rows["species_id"]]
    rows["source"] = str(path)
    # Object ids, whatever pandas would infer: every format's table concatenates alike.
    events = rows.rename_axis("line").reset_index().astype({"recording_id": object, "present": bool})
    return events[TABLE_COLUMNS]


#: How many of a file's problems one message lists.
MAX_PROBLEMS_SHOWN = 20


def _problems_message(path: Path, problems: list[tuple[int, str]], hint: str) -> str:
    """One problem as ``PATH: line N...``; several as a count and a line each, in file order."""
    problems = sorted(problems, key=lambda problem: problem[0])
    advice = f"; {hint}" if hint else ""
    if len(problems) == 1:
        line, text = problems[0]
        return f"{path}: line {line}{text}{advice}"
    shown = [f"  line {line}{text}" for line, text in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return f"{path}: {len(problems)} rows to fix{advice}:\n" + "\n".join(shown)


def drop_repeated(events: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """A file's events without the rows identical to an earlier row, and how many were dropped (logged)."""
    repeated = events.duplicated(subset=[*EVENT_COLUMNS, "present"], keep="first").to_numpy()
    if repeated.any():
        log.warning(
            "%s: dropped %d duplicate row(s), identical to an earlier row (first: line %d)",
            events["source"].iloc[0],
            int(repeated.sum()),
            events["line"][repeated].iloc[0],
        )
    return events[~repeated].reset_index(drop=True), int(repeated.sum())


def empty_events() -> pd.DataFrame:
    """The events table with no rows."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in TABLE_COLUMNS})


def fit_events_to_recording(events: pd.DataFrame, duration: float) -> tuple[pd.DataFrame, int]:
    """Check a recording's events against its length; clamp those that run past its end.

    Parameters
    ----------
    events
        One recording's events (the events table).
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
