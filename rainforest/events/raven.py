"""Raven Pro selection tables: boxes a person draws (or opens) over a recording's spectrogram.

A selection table is tab-separated text with a header row; Raven Pro opens it
beside the sound file (File > Open Selection Table) and draws each row as a
box from Begin to End Time and Low to High Freq. The columns after the box are
annotations: the species, and here a score or a verdict.

Reading: a training recording's table is any ``<recording>*.txt`` beside it,
for example ``<recording>.Table.1.selections.txt`` (as Raven saves it; several
tables of one recording are read together), ``<recording>.selections.txt``
(as OpenSoundscape writes it) or ``<recording>.txt``. The species is in the
column ``data.species_column`` (``Species``), or in OpenSoundscape's
``annotation`` where the table has no such column. An optional ``Present``
column holds a verdict per selection: a "no" row is a known absence (as a row
of ``train_fp.csv``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from rainforest.errors import LabelError
from rainforest.events.species import SpeciesNames
from rainforest.events.table import RecordingShape, read_text_table, require_columns, validate_events

#: The box columns of a selection table, and the event column each becomes.
BOX_COLUMNS = {"Begin Time (s)": "t_min", "End Time (s)": "t_max", "Low Freq (Hz)": "f_min", "High Freq (Hz)": "f_max"}
#: Raven's own columns, in the order Raven writes them, then the annotations this project writes.
COLUMNS = ["Selection", "View", "Channel", *BOX_COLUMNS, "Species", "Score"]
#: Added after :data:`COLUMNS` where the species have names: ``Species`` then
#: holds the name, this column the model's id (``s3``).
SPECIES_ID_COLUMN = "Species Id"
#: The species column of the tables OpenSoundscape writes, read where the table lacks the configured one.
OPENSOUNDSCAPE_SPECIES_COLUMN = "annotation"
#: An optional column with each selection's verdict: a "no" row is a known absence.
PRESENT_COLUMN = "Present"
PRESENT_VALUES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}
#: The view Raven draws a selection in: the first spectrogram of the sound window.
VIEW = "Spectrogram 1"
#: The file names of a recording's tables that the reader accepts, for messages.
PATTERNS = (
    "<recording>.Table.<n>.selections.txt (Raven), <recording>.selections.txt (OpenSoundscape) or <recording>*.txt"
)

#: ``<recording>.Table.<n>.selections``, the name Raven gives a recording's tables (without ``.txt``).
_RAVEN_NAME = re.compile(r"^(?P<recording>.+?)\.Table\.\d+\.selections$")


def table_name(recording_id: str) -> str:
    """The file name Raven gives the first selection table of a recording."""
    return f"{recording_id}.Table.1.selections.txt"


def recording_of_table(name: str) -> str | None:
    """The recording a table's file name (without ``.txt``) names in Raven's own pattern, or None."""
    match = _RAVEN_NAME.match(name)
    return match["recording"] if match else None


def recording_of_file(path: Path, recording_ids: set[str]) -> str | None:
    """The recording a ``<recording>*.txt`` table beside it labels: the longest id its name starts with.

    Examples
    --------
    >>> recording_of_file(Path("rec_1.Table.1.selections.txt"), {"rec_1", "rec_10"})
    'rec_1'
    >>> recording_of_file(Path("rec_10.selections.txt"), {"rec_1", "rec_10"})
    'rec_10'
    >>> recording_of_file(Path("notes.txt"), {"rec_1"}) is None
    True
    """
    stem = path.name[: -len(".txt")]
    starts = [rid for rid in recording_ids if stem.startswith(rid)]
    return max(starts, key=len) if starts else None


def read_rows(path: Path, species_columns: tuple[str, ...], *, hint: str = "") -> tuple[pd.DataFrame, dict[str, str]]:
    """A table's selections as strings by line (``t_min .. f_max``, ``species``, other columns kept),
    and each event column's name in the table, for messages.

    The species are read from the first of ``species_columns`` that the table
    has; ``hint`` ends the message about a table that has none.
    """
    table, header_line = read_text_table(path, delimiter="\t", pad_short_rows=True)
    species_column = next((name for name in species_columns if name in table.columns), species_columns[0])
    require_columns(
        path,
        table,
        header_line,
        [*BOX_COLUMNS, species_column],
        f"a selection table needs Raven's {', '.join(BOX_COLUMNS)} and a species column: "
        f"{' or '.join(species_columns)} (found {', '.join(table.columns)}){hint}",
    )
    rows = table.rename(columns=BOX_COLUMNS).rename(columns={species_column: "species"})
    names = {event: column for column, event in BOX_COLUMNS.items()} | {"species_id": species_column}
    return rows, names


def read(
    path: str | Path,
    species: SpeciesNames,
    *,
    recording_id: str,
    recording: RecordingShape | None = None,
    species_column: str = "Species",
) -> pd.DataFrame:
    """The events of one recording's selection table.

    Parameters
    ----------
    recording_id
        The recording the table labels.
    recording
        Its shape, to check the boxes against (None: not checked).
    species_column
        The column holding the species (``data.species_column``); a table
        without it may hold them in OpenSoundscape's ``annotation``.

    Returns
    -------
    pd.DataFrame
        The events table (:mod:`rainforest.events.table`).

    Raises
    ------
    LabelError
        Naming the file and line (see :func:`rainforest.events.table.validate_events`),
        or a ``Present`` value that is not yes or no.
    """
    path = Path(path)
    rows, names = read_rows(
        path,
        (species_column, OPENSOUNDSCAPE_SPECIES_COLUMN),
        hint=f"; the species column is set by data.species_column in params.yaml (now {species_column!r})",
    )
    rows["recording_id"] = recording_id
    if PRESENT_COLUMN in rows.columns:
        present = rows[PRESENT_COLUMN].str.lower().map(PRESENT_VALUES)
        if present.isna().any():
            line = present.index[present.isna()][0]
            raise LabelError(
                f"{path}: line {line}, column {PRESENT_COLUMN}: expected yes or no, got {rows[PRESENT_COLUMN][line]!r}"
            )
        rows["present"] = present.astype(bool)
    else:
        rows["present"] = True
    return validate_events(
        rows[["recording_id", "species", *BOX_COLUMNS.values(), "present"]],
        path,
        species,
        names=names,
        recording=recording,
    )


def write(detections: pd.DataFrame) -> str:
    """One recording's detections (or events) as a Raven Pro selection table.

    Parameters
    ----------
    detections
        Columns ``start``, ``end`` (seconds), ``low_freq``, ``high_freq`` (Hz),
        ``species`` and ``score``, one row per selection, in the order to
        number them (from 1), and optionally ``label``: the species' name,
        then written as ``Species``, with the id in :data:`SPECIES_ID_COLUMN`.
        No rows gives a table with only the header.

    Returns
    -------
    str
        Tab-separated text with the header row :data:`COLUMNS`, one line per
        selection, each line ending in a newline; channel 1 (recordings are
        mixed to mono), times to the millisecond, frequencies to 0.1 Hz and
        scores to four decimals.
    """
    detections = detections.reset_index(drop=True)
    table = pd.DataFrame(
        {
            "Selection": range(1, len(detections) + 1),
            "View": VIEW,
            "Channel": 1,
            "Begin Time (s)": detections["start"].map("{:.3f}".format),
            "End Time (s)": detections["end"].map("{:.3f}".format),
            "Low Freq (Hz)": detections["low_freq"].map("{:.1f}".format),
            "High Freq (Hz)": detections["high_freq"].map("{:.1f}".format),
            "Species": detections["label"] if "label" in detections else detections["species"],
            "Score": detections["score"].map("{:.4f}".format),
            SPECIES_ID_COLUMN: detections["species"],
        },
        columns=COLUMNS + [SPECIES_ID_COLUMN] if "label" in detections else COLUMNS,
    )
    return table.to_csv(sep="\t", index=False, lineterminator="\n")
