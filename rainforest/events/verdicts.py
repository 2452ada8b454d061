"""Review verdicts: a person's yes, no or unsure on each detection.

The review page (:mod:`rainforest.review.page`) exports a CSV file with
:data:`VERDICT_COLUMNS`; in Raven Pro a reviewer instead adds a
:data:`RAVEN_VERDICT_COLUMN` column to a detection's selection table (written
by ``rainforest-detect``). Both read here into the events table, with the
detection's ``recording`` and ``file`` and the ``verdict`` beside each event;
``rainforest-review import`` turns them into reviewed labels.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rainforest.errors import LabelError
from rainforest.events import raven
from rainforest.events.species import SpeciesNames
from rainforest.events.table import read_text_table, require_columns, validate_events

#: The columns of a verdicts file, as the review page exports it.
VERDICT_COLUMNS = [
    "recording",
    "file",
    "start",
    "end",
    "species",
    "label",
    "score",
    "low_freq",
    "high_freq",
    "reason",
    "verdict",
]
#: What a reviewer may say of a detection.
VERDICTS = ("yes", "no", "unsure")
#: The column a reviewer adds to a detection's Raven selection table, in Raven.
RAVEN_VERDICT_COLUMN = "Verdict"

#: The event column of each column a verdicts file needs.
_EVENT_OF = {"start": "t_min", "end": "t_max", "low_freq": "f_min", "high_freq": "f_max", "species": "species"}


def is_raven_table(path: Path) -> bool:
    """Whether a verdicts file is a detection's Raven selection table (by its name), rather than a CSV file."""
    return path.suffix == ".txt" and raven.recording_of_table(path.stem) is not None


def read(path: str | Path, species: SpeciesNames) -> pd.DataFrame:
    """The verdicts of a review file, as events (``present``: the verdict is yes).

    Returns
    -------
    pd.DataFrame
        The events table (:mod:`rainforest.events.table`), plus ``recording``
        and ``file`` (the detection's recording and its audio file; empty for
        a Raven table, whose run's journal knows them) and ``verdict`` (yes,
        no, unsure or empty).

    Raises
    ------
    LabelError
        Naming the file and line: a missing column, an unknown species or
        verdict, a box that is not a number or is inverted.
    """
    path = Path(path)
    if is_raven_table(path):
        rows, names = raven.read_rows(path, (raven.SPECIES_ID_COLUMN, "Species"))
        require_columns(
            path,
            rows,
            1,
            [RAVEN_VERDICT_COLUMN],
            f"a detection's Raven table needs its {RAVEN_VERDICT_COLUMN} column: add it in Raven (yes, no or unsure "
            "on each selection) and save the table",
        )
        rows = rows.rename(columns={RAVEN_VERDICT_COLUMN: "verdict"})
        rows["recording"], rows["file"] = raven.recording_of_table(path.stem), ""
    else:
        table, header_line = read_text_table(path, pad_short_rows=True)
        require_columns(
            path,
            table,
            header_line,
            [c for c in VERDICT_COLUMNS if c in (*_EVENT_OF, "recording", "file", "verdict")],
            f"a verdicts file has the review page's columns: {','.join(VERDICT_COLUMNS)}",
        )
        rows = table.rename(columns=_EVENT_OF)
        names = {event: column for column, event in _EVENT_OF.items()} | {"species_id": "species"}
    rows["verdict"] = rows["verdict"].str.lower()
    bad = ~rows["verdict"].isin([*VERDICTS, ""]).to_numpy()
    if bad.any():
        raise LabelError(
            f"{path}: line {rows.index[bad][0]}: verdict must be yes, no, unsure or empty, got "
            f"{rows['verdict'][bad].iloc[0]!r}"
        )
    rows["recording_id"], rows["present"] = rows["recording"], rows["verdict"] == "yes"
    events = validate_events(
        rows[["recording_id", "species", "t_min", "t_max", "f_min", "f_max", "present"]], path, species, names=names
    )
    extra = rows[["recording", "file", "verdict"]].reset_index(drop=True)
    return pd.concat([events, extra], axis=1)


def write(rows: pd.DataFrame) -> str:
    """Review rows as a verdicts file: :data:`VERDICT_COLUMNS`, in that order."""
    return rows[VERDICT_COLUMNS].to_csv(index=False, lineterminator="\n")
