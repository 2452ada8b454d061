"""Audacity label tracks: a recording's labels, as Audacity exports them (File > Export > Labels).

A label line is ``start<TAB>end<TAB>label``; a line ``\\<TAB>f_min<TAB>f_max``
after it gives its frequency band (Audacity writes one for labels with a
spectral selection). A label without one spans 0 Hz to the recording's
Nyquist frequency. The track of a training recording is ``<recording>.txt``
beside it, and its labels name species as :mod:`rainforest.events.species` says.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rainforest.errors import LabelError
from rainforest.events.species import SpeciesNames
from rainforest.events.table import RecordingShape, read_text_table, validate_events

#: How a message names each event column of a track.
NAMES = {"species_id": "label", "t_min": "start", "t_max": "end", "f_min": "low frequency", "f_max": "high frequency"}


def recording_of_file(path: Path, recording_ids: set[str]) -> str | None:
    """The recording a track beside it labels: the one its name (``<recording>.txt``) names, or None."""
    return path.stem if path.stem in recording_ids else None


def read(
    path: str | Path, species: SpeciesNames, *, recording_id: str, recording: RecordingShape | None = None
) -> pd.DataFrame:
    """The events of one recording's label track.

    Parameters
    ----------
    recording_id
        The recording the track labels.
    recording
        Its shape: its Nyquist frequency is the top of a label without a
        frequency line, and the labels are checked against it (None: such a
        label tops at 1 Hz and nothing is checked, for a recording that etl
        will report as unreadable).

    Returns
    -------
    pd.DataFrame
        The events table (:mod:`rainforest.events.table`).
    """
    path = Path(path)
    # No header: the first line is a label, read as data by padding a header of three columns.
    table, _ = read_text_table(path, delimiter="\t", pad_short_rows=True, header=["start", "end", "label"])
    records: list[dict[str, str | None]] = []
    lines: list[int] = []
    for line, fields in zip(table.index, table.itertuples(index=False)):
        start, end, label = fields
        if start == "\\":
            if not records or records[-1]["f_min"] is not None or not (end and label):
                raise LabelError(
                    f"{path}: line {line}: a frequency line (\\<TAB>low<TAB>high) must follow a label line, "
                    "once; remove it or add its label"
                )
            records[-1]["f_min"], records[-1]["f_max"] = end, label
            continue
        if not (end and label):
            raise LabelError(
                f"{path}: line {line}: expected start<TAB>end<TAB>label (an Audacity label track), got "
                f"{sum(bool(value) for value in fields)} value(s)"
            )
        records.append({"t_min": start, "t_max": end, "species": label, "f_min": None, "f_max": None})
        lines.append(line)
    rows = pd.DataFrame(records, index=lines, columns=["t_min", "t_max", "f_min", "f_max", "species"], dtype=object)
    rows["f_min"] = rows["f_min"].fillna("0")
    rows["f_max"] = rows["f_max"].fillna(f"{recording.nyquist if recording is not None else 1.0}")
    rows["recording_id"], rows["present"] = recording_id, True
    return validate_events(rows, path, species, names=NAMES, recording=recording)


def write(events: pd.DataFrame) -> str:
    """One recording's events as an Audacity label track, each with its frequency line.

    Parameters
    ----------
    events
        The events table (or any table with ``t_min``, ``t_max``, ``f_min``,
        ``f_max`` and ``label``).

    Examples
    --------
    >>> print(write(pd.DataFrame({"t_min": [0.5], "t_max": [1.25], "f_min": [1000.0], "f_max": [3000.0],
    ...                           "label": ["Tink Frog"]})), end="")
    0.5	1.25	Tink Frog
    \\	1000	3000
    """
    return "".join(
        f"{row.t_min:g}\t{row.t_max:g}\t{row.label}\n\\\t{row.f_min:g}\t{row.f_max:g}\n" for row in events.itertuples()
    )
