"""Species profiles: the band and call durations of each synthetic species.

The profile table, one row per species, holds the median frequency band and
the call-duration quantiles of the real species, derived from the
competition's ``train_tp.csv`` (see ``rainforest/resources/README.md``). It is
packaged as ``rainforest/resources/species_profiles.csv``; regenerate it with::

    python -m rainforest.synthetic profiles SOURCE_CSV OUT_CSV
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rainforest.errors import LabelError

#: Columns of the species profile table.
PROFILE_COLUMNS = [
    "species_id",
    "n_events",
    "f_min",
    "f_max",
    "duration_median",
    "duration_q10",
    "duration_q90",
    "songtype_id",
]
#: The packaged profile table, derived from the competition's train_tp.csv.
DEFAULT_PROFILES_PATH = Path(__file__).parent.parent / "resources" / "species_profiles.csv"


def species_profiles_from_labels(tp: pd.DataFrame) -> pd.DataFrame:
    """Summarise the competition's true-positive labels per species.

    Parameters
    ----------
    tp : pandas.DataFrame
        The competition's ``train_tp.csv`` (columns ``species_id, songtype_id,
        t_min, f_min, t_max, f_max`` at least).

    Returns
    -------
    pandas.DataFrame
        One row per species, sorted by ``species_id``, with columns
        :data:`PROFILE_COLUMNS`: the number of events, the median ``f_min`` and
        ``f_max`` (Hz), the median, 10 % and 90 % quantiles of the event
        duration ``t_max - t_min`` (s) and the most common ``songtype_id``
        (the smallest on ties). Floats are rounded to 2 decimals.
    """
    missing = {"species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max"} - set(tp.columns)
    if missing:
        raise LabelError(f"labels lack column(s) {', '.join(sorted(missing))}")
    table = tp.assign(duration=tp["t_max"] - tp["t_min"])
    grouped = table.groupby("species_id", sort=True)
    profiles = pd.DataFrame(
        {
            "n_events": grouped.size(),
            "f_min": grouped["f_min"].median(),
            "f_max": grouped["f_max"].median(),
            "duration_median": grouped["duration"].median(),
            "duration_q10": grouped["duration"].quantile(0.1),
            "duration_q90": grouped["duration"].quantile(0.9),
            "songtype_id": grouped["songtype_id"].agg(lambda s: s.mode().min()),
        }
    ).reset_index()
    floats = ["f_min", "f_max", "duration_median", "duration_q10", "duration_q90"]
    profiles[floats] = profiles[floats].astype(float).round(2)
    for column in ("species_id", "n_events", "songtype_id"):
        profiles[column] = profiles[column].astype("int64")
    return profiles[PROFILE_COLUMNS]


def load_species_profiles(path: str | Path | None = None) -> pd.DataFrame:
    """Read a species profile table.

    Parameters
    ----------
    path : str or Path, optional
        The CSV to read; by default the table packaged with the module,
        :data:`DEFAULT_PROFILES_PATH`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PROFILE_COLUMNS`, one row per species, sorted by id.

    Raises
    ------
    LabelError
        If the file is missing, lacks a column, or its species ids are not
        ``0 .. N-1`` (the submission's columns ``s0 .. s{N-1}`` need that).
    """
    path = Path(path) if path is not None else DEFAULT_PROFILES_PATH
    try:
        profiles = pd.read_csv(path)
    except FileNotFoundError:
        raise LabelError(f"{path}: species profile table not found") from None
    missing = [c for c in PROFILE_COLUMNS if c not in profiles.columns]
    if missing:
        raise LabelError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(PROFILE_COLUMNS)}")
    profiles = profiles[PROFILE_COLUMNS].sort_values("species_id").reset_index(drop=True)
    if profiles["species_id"].tolist() != list(range(len(profiles))):
        raise LabelError(f"{path}: species_id must be 0 .. N-1 with one row each")
    bad = profiles[(profiles["f_min"] >= profiles["f_max"]) | (profiles["duration_median"] <= 0)]
    if len(bad):
        raise LabelError(f"{path}: species {bad['species_id'].tolist()} need f_min < f_max and a positive duration")
    return profiles


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rainforest.synthetic profiles SOURCE_CSV OUT_CSV`` (see ``__main__.py``)."""
    parser = argparse.ArgumentParser(prog="python -m rainforest.synthetic", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    profiles = commands.add_parser("profiles", help="derive the species profile table from a train_tp.csv")
    profiles.add_argument("source_csv", type=Path, help="the competition's train_tp.csv")
    profiles.add_argument("out_csv", type=Path, help="where to write the profile table")
    args = parser.parse_args(argv)
    try:
        table = species_profiles_from_labels(pd.read_csv(args.source_csv))
    except (FileNotFoundError, LabelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out_csv, index=False)
    print(f"wrote {len(table)} species to {args.out_csv}")
    return 0
