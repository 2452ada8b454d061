"""Reading event files in tests by species count, as the library reads them by species names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rainforest.events import EVENT_COLUMNS, SpeciesNames, competition, read_dataset_events, read_reviewed_events
from rainforest.events.table import drop_repeated


def species_names(n_species: int) -> SpeciesNames:
    """The species ``s0 .. s{n-1}``, without names."""
    return SpeciesNames(tuple(f"s{i}" for i in range(n_species)))


def read_events(path: str | Path, n_species: int) -> pd.DataFrame:
    """A competition file's events in its own columns, duplicates dropped (as etl reads it)."""
    events, _ = drop_repeated(competition.read(path, species_names(n_species)))
    return events[EVENT_COLUMNS]


def read_training_events(dataset_dir: str | Path, n_species: int) -> tuple[pd.DataFrame, int]:
    """A competition dataset's events (:func:`rainforest.events.read_dataset_events`)."""
    return read_dataset_events(dataset_dir, species_names(n_species))


def read_reviewed(reviews_dir: str | Path, n_species: int) -> pd.DataFrame:
    """A project's reviewed events (:func:`rainforest.events.read_reviewed_events`)."""
    return read_reviewed_events(reviews_dir, species_names(n_species))
