"""Raven Pro selection tables: detections as boxes a person can open over the recording.

A selection table is tab-separated text with a header row; Raven Pro opens it
beside the sound file (File > Open Selection Table) and draws each row as a
box from Begin to End Time and Low to High Freq on the spectrogram. The
columns after the box are annotations, here the species and its score.
"""

from __future__ import annotations

import pandas as pd

#: Raven's own columns, in the order Raven writes them, then the annotations.
COLUMNS = [
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Species",
    "Score",
]

#: Added after :data:`COLUMNS` where the species have names: ``Species`` then
#: holds the name, this column the model's id (``s3``).
SPECIES_ID_COLUMN = "Species Id"

#: The view Raven draws a selection in: the first spectrogram of the sound window.
VIEW = "Spectrogram 1"


def selection_table_name(recording_id: str) -> str:
    """The file name Raven gives the first selection table of a recording."""
    return f"{recording_id}.Table.1.selections.txt"


def selection_table(detections: pd.DataFrame) -> str:
    """One recording's detections as a Raven Pro selection table.

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
