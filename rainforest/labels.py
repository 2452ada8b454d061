"""Label files in the competition's layout, and the labels of a window.

``train_tp.csv`` lists events where a species is present, ``train_fp.csv``
events where a detector fired but a person found the species absent. Both have
the columns ``recording_id,species_id,songtype_id,t_min,f_min,t_max,f_max``.
``sample_submission.csv`` names the test recordings (rows) and the species
(columns ``s0 .. sN``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rainforest.errors import LabelError

EVENT_COLUMNS = ["recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max"]
_NUMERIC_COLUMNS = EVENT_COLUMNS[1:]

#: An event labels a window when at least this share of the shorter of the two
#: lies inside the other.
MIN_OVERLAP_SHARE = 0.5


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"recording_id": str})
    except FileNotFoundError:
        raise LabelError(f"{path}: file not found; check data.dataset_dir in params.yaml") from None
    except pd.errors.EmptyDataError:
        raise LabelError(f"{path}: file is empty; it needs a header row: {','.join(EVENT_COLUMNS)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise LabelError(f"{path}: not a readable CSV file ({error})") from None


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
    table = _read_csv(path)
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
        raise LabelError(f"{path}: row {int(ids.isna().to_numpy().argmax()) + 2} has no recording_id")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise LabelError(f"{path}: recording {duplicated.iloc[0]!r} is listed twice; keep one row")
    return species, ids.tolist()


def read_events(path: str | Path, n_species: int) -> pd.DataFrame:
    """Read and validate an event table (``train_tp.csv`` or ``train_fp.csv``).

    Raises
    ------
    LabelError
        Naming the file, the row (as a line number in the file) and the
        problem: a missing column, a non-numeric or missing value, an event
        that ends before it starts or a species outside ``s0 .. s{n_species-1}``.
    """
    path = Path(path)
    table = _read_csv(path)
    missing = [c for c in EVENT_COLUMNS if c not in table.columns]
    if missing:
        raise LabelError(
            f"{path}: line 1 (header): missing column(s) {', '.join(missing)}; "
            f"the header must be {','.join(EVENT_COLUMNS)}"
        )
    table = table[EVENT_COLUMNS].copy()
    for column in _NUMERIC_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            row = int(bad.argmax())
            raise LabelError(
                f"{path}: line {row + 2}, column {column}: expected a number, got {table[column].iloc[row]!r}"
            )
        table[column] = values
    if table["recording_id"].isna().any():
        row = int(table["recording_id"].isna().to_numpy().argmax())
        raise LabelError(f"{path}: line {row + 2}: recording_id is empty")
    _check_rows(path, table, n_species)
    table["species_id"] = table["species_id"].astype(int)
    table["songtype_id"] = table["songtype_id"].astype(int)
    return table.reset_index(drop=True)


def _check_rows(path: Path, table: pd.DataFrame, n_species: int) -> None:
    checks = [
        (table["species_id"] % 1 != 0, "species_id must be a whole number"),
        (
            (table["species_id"] < 0) | (table["species_id"] >= n_species),
            f"species_id must be between 0 and {n_species - 1} (the columns of sample_submission.csv)",
        ),
        (table["t_min"] < 0, "t_min must not be negative"),
        (table["t_min"] >= table["t_max"], "t_min must be smaller than t_max"),
        (table["f_min"] >= table["f_max"], "f_min must be smaller than f_max"),
    ]
    for bad, message in checks:
        bad = bad.to_numpy()
        if bad.any():
            row = int(bad.argmax())
            values = table.iloc[row].to_dict()
            raise LabelError(f"{path}: line {row + 2}: {message}; the row is {values}")


def read_training_events(dataset_dir: str | Path, n_species: int) -> pd.DataFrame:
    """All labelled events of a dataset, with a boolean column ``present``.

    ``train_fp.csv`` is optional: without it there are no known absences.
    """
    dataset_dir = Path(dataset_dir)
    positives = read_events(dataset_dir / "train_tp.csv", n_species).assign(present=True)
    fp_path = dataset_dir / "train_fp.csv"
    if not fp_path.exists():
        return positives
    negatives = read_events(fp_path, n_species).assign(present=False)
    return pd.concat([positives, negatives], ignore_index=True)


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
