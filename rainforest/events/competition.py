"""The competition's event files: ``train_tp.csv``, ``train_fp.csv`` and a project's reviewed ``labels.csv``.

``train_tp.csv`` lists events where a species is present, ``train_fp.csv``
events where a detector fired but a person found the species absent. Both have
the columns ``recording_id,species_id,songtype_id,t_min,f_min,t_max,f_max``
(:data:`rainforest.events.table.EVENT_COLUMNS`). A project's reviewed labels
(``labels.csv`` in ``data.reviews_dir``, written by ``rainforest-review
import``) have the same columns plus ``present``: 1 (the species called) or 0.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rainforest.errors import LabelError
from rainforest.events.species import SpeciesNames
from rainforest.events.table import EVENT_COLUMNS, read_text_table, require_columns, validate_events

#: The column of a reviewed labels' file that says whether the species called (1) or not (0).
PRESENT_COLUMN = "present"


def read(path: str | Path, species: SpeciesNames, *, present: bool | None = True) -> pd.DataFrame:
    """The events of a competition CSV file.

    Parameters
    ----------
    present
        Whether the file's events are calls (``train_tp.csv``: True) or known
        absences (``train_fp.csv``: False); None reads each row's ``present``
        column (a reviewed ``labels.csv``).

    Returns
    -------
    pd.DataFrame
        The events table (:mod:`rainforest.events.table`), duplicates kept.

    Raises
    ------
    LabelError
        Naming the file, the row (as a line number in the file) and the
        problem: a missing column, a row with too many or too few values, a
        non-numeric, missing or infinite value, an event that ends before it
        starts, a species outside ``s0 .. s{n-1}``, a ``present`` that is not 0 or 1.
    """
    path = Path(path)
    table, header_line = read_text_table(path, not_found="; check data.dataset_dir in params.yaml")
    columns = EVENT_COLUMNS if present is not None else [*EVENT_COLUMNS, PRESENT_COLUMN]
    require_columns(
        path,
        table,
        header_line,
        columns,
        f"the header must be {','.join(columns)} (found {','.join(table.columns)})",
    )
    rows = table[EVENT_COLUMNS].copy()
    if present is None:
        values = table[PRESENT_COLUMN]
        bad = ~values.isin(["0", "1"]).to_numpy()
        if bad.any():
            raise LabelError(
                f"{path}: line {table.index[bad][0]}, column {PRESENT_COLUMN}: expected 1 (the species called) or 0 "
                f"(it did not), got {values[bad].iloc[0]!r}"
            )
        rows["present"] = values == "1"
    else:
        rows["present"] = present
    return validate_events(rows, path, species, names={column: column for column in EVENT_COLUMNS})


def write(events: pd.DataFrame, *, with_present: bool = False) -> str:
    """Events as a competition CSV file: :data:`EVENT_COLUMNS`, and ``present`` (0 or 1) if asked."""
    columns = [*EVENT_COLUMNS, PRESENT_COLUMN] if with_present else EVENT_COLUMNS
    table = events[columns].astype({"species_id": int, "songtype_id": int})
    if with_present:
        table = table.astype({PRESENT_COLUMN: bool}).astype({PRESENT_COLUMN: int})
    return table.to_csv(index=False, lineterminator="\n")
