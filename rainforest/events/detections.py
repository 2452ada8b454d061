"""``detections.csv``: every detection of a ``rainforest-detect`` run, one row per window and species.

Columns :data:`DETECTION_COLUMNS` (the recording's id, the window's start and
end in seconds, the species' id and its score), then ``label`` (the species'
name) where the model's species have names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rainforest.errors import ConfigError, LabelError

#: Columns of ``detections.csv``.
DETECTION_COLUMNS = ["recording", "start", "end", "species", "score"]
#: The file's name in a run's output folder.
FILE_NAME = "detections.csv"


def columns(*, labelled: bool) -> list[str]:
    """The columns of ``detections.csv``: :data:`DETECTION_COLUMNS`, then ``label`` if the species have names."""
    return DETECTION_COLUMNS + ["label"] if labelled else DETECTION_COLUMNS


def write(detections: pd.DataFrame, *, labelled: bool, header: bool = True) -> str:
    """Detections as ``detections.csv`` text: times to the millisecond, scores to six decimals.

    Parameters
    ----------
    detections
        The :func:`columns` of the file, one row per detection.
    labelled
        Whether to write ``label``.
    header
        Whether to start with the header line (a run writes each recording's
        rows as it finishes, and the header once).
    """
    rows = detections[columns(labelled=labelled)].round({"start": 3, "end": 3, "score": 6})
    return rows.to_csv(index=False, header=header, lineterminator="\n")


def merge_overlapping(detections: pd.DataFrame) -> pd.DataFrame:
    """One detection per call: the overlapping or touching windows of one species in one recording joined.

    Windows slid with a hop shorter than their length overlap, so one call
    reaching the threshold in three windows is three rows; joined, it is one
    row from the first window's start to the last one's end, with the best
    window's score and its other columns.

    Parameters
    ----------
    detections
        Rows with at least ``recording``, ``start``, ``end``, ``species`` and
        ``score`` (as :func:`read` gives or a run writes).

    Returns
    -------
    pd.DataFrame
        The same columns, one row per run of windows of a species whose each
        window starts at or before the end of the ones before it, in the
        order of each run's first window in ``detections``. Merging merged
        rows changes nothing.

    Examples
    --------
    >>> rows = pd.DataFrame({"recording": "a", "start": [16.4, 17.4, 18.4, 30.0], "end": [18.4, 19.4, 20.4, 32.0],
    ...                      "species": "s0", "score": [0.7, 0.9, 0.6, 0.8]})
    >>> merge_overlapping(rows)
      recording  start   end species  score
    0         a   16.4  20.4      s0    0.9
    1         a   30.0  32.0      s0    0.8
    """
    if detections.empty:  # read from a header alone, its columns are not numbers
        return detections.reset_index(drop=True)
    table = detections.reset_index(drop=True).assign(_position=np.arange(len(detections)))
    ordered = table.sort_values(["recording", "species", "start"], kind="stable")
    keys = [ordered["recording"], ordered["species"]]
    # The furthest end reached by the windows before each one, of its recording and species.
    reached = ordered.groupby(keys, sort=False)["end"].cummax().groupby(keys, sort=False).shift()
    runs = (~(ordered["start"] <= reached)).cumsum()
    grouped = ordered.groupby(runs, sort=False)
    merged = ordered.loc[grouped["score"].idxmax()].assign(
        start=grouped["start"].min().to_numpy(),
        end=grouped["end"].max().to_numpy(),
        _position=grouped["_position"].min().to_numpy(),
    )
    return merged.sort_values("_position").drop(columns="_position").reset_index(drop=True)


def read(path: str | Path) -> pd.DataFrame:
    """A ``detections.csv``, with every column as written.

    Raises
    ------
    ConfigError
        If there is no such file.
    LabelError
        If it is not a detections table.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path.parent}: no {FILE_NAME}; run rainforest-detect with --output {path.parent} first")
    try:
        detections = pd.read_csv(path, dtype={"recording": str, "species": str, "label": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise LabelError(f"{path}: not a detections table ({error}); run rainforest-detect again") from None
    missing = [column for column in DETECTION_COLUMNS if column not in detections]
    if missing:
        raise LabelError(
            f"{path}: not a detections table: no column {', '.join(missing)} (expected {','.join(DETECTION_COLUMNS)})"
        )
    for column in ("start", "end", "score"):
        # A run that detected nothing writes the header alone: no values to check.
        if len(detections) and not pd.api.types.is_numeric_dtype(detections[column]):
            raise LabelError(f"{path}: column {column} holds values that are not numbers; run rainforest-detect again")
    return detections
