"""The dataset's species: their ids (``sample_submission.csv``) and names (``species.csv``).

The species stay ``s0 .. sN`` everywhere the competition needs them
(``sample_submission.csv``, the submission's columns); a dataset may also name
them in ``species.csv`` (``species_id,label``, optionally more columns such as
a code or a scientific name), and the names are carried beside the ids to the
model card, the per-species metrics, the figures and ``rainforest-detect``'s
outputs. An annotation may call a species by its name, its id or its number.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rainforest.errors import LabelError
from rainforest.events.table import read_text_table, require_columns

#: The file of a dataset that names its species.
SPECIES_FILE = "species.csv"


@dataclass(frozen=True)
class SpeciesNames:
    """A dataset's species ids and, where ``species.csv`` gives them, names.

    Examples
    --------
    >>> names = SpeciesNames(("s0", "s1"), ("Screaming Piha", "Tink Frog"))
    >>> names.identify(pd.Series(["Tink Frog", "tink frog", "s0", "1"])).tolist()
    [1.0, 1.0, 0.0, 1.0]
    >>> names.name(0), SpeciesNames(("s0",)).name(0)
    ('Screaming Piha', 's0')
    """

    ids: tuple[str, ...]
    labels: tuple[str, ...] | None = None

    def lookup(self) -> dict[str, int]:
        """What an annotation may call a species -> its index: the name, ``s3`` or ``3``, in lower case
        (:meth:`identify` matches without regard to case)."""
        lookup = {name: i for i, name in enumerate(self.ids)} | {str(i): i for i in range(len(self.ids))}
        if self.labels is not None:
            lookup |= {label: i for i, label in enumerate(self.labels)}
        return {name.casefold(): i for name, i in lookup.items()}

    def identify(self, names: pd.Series) -> pd.Series:
        """Each name's species index, matched without regard to case (NaN where none matches).

        Examples
        --------
        >>> SpeciesNames(("s0", "s1"), ("Tink Frog", "Rain Frog")).identify(pd.Series(["rain frog", "S0", "x"])).tolist()
        [1.0, 0.0, nan]
        """
        return names.str.casefold().map(self.lookup()).astype(float)

    def suggestion(self, name: str) -> str:
        """`` (did you mean 'X'?)`` for the species name closest to an unknown ``name``, or ``""``.

        Examples
        --------
        >>> SpeciesNames(("s0",), ("Dark-eyed Junco",)).suggestion("Dark eyed Junco")
        " (did you mean 'Dark-eyed Junco'?)"
        """
        known = list(self.labels) if self.labels is not None else list(self.ids)
        by_folded = {label.casefold(): label for label in known}
        close = difflib.get_close_matches(name.casefold(), by_folded, n=1, cutoff=0.6)
        return f" (did you mean {by_folded[close[0]]!r}?)" if close else ""

    def name(self, index: int) -> str:
        """The species' label, or its id where the dataset names none."""
        return self.labels[index] if self.labels is not None else self.ids[index]

    def how_to_name(self) -> str:
        """How a file may name a species, for an error message about one it does not know."""
        last = len(self.ids) - 1
        shown = list(self.labels[:3]) if self.labels is not None else []
        named = (
            f"a label of species.csv ({', '.join(shown)}{', ...' if len(self.labels) > 3 else ''}), "
            if self.labels is not None
            else ""
        )
        return (
            f"write {named}an id (s0..s{last}) or a number (0..{last}), or add the species (to "
            "sample_submission.csv, and species.csv if there is one)"
        )


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
    table, _ = read_text_table(path, not_found="; check data.dataset_dir in params.yaml")
    if table.columns[0] != "recording_id":
        raise LabelError(f"{path}: first column must be 'recording_id', found {table.columns[0]!r}")
    species = list(table.columns[1:])
    expected = [f"s{i}" for i in range(len(species))]
    if not species or species != expected:
        raise LabelError(f"{path}: species columns must be s0, s1, ... in order; found {', '.join(species) or 'none'}")
    ids = table["recording_id"]
    if (ids == "").any():
        raise LabelError(f"{path}: row {ids.index[ids == ''][0]} has no recording_id")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise LabelError(f"{path}: recording {duplicated.iloc[0]!r} is listed twice; keep one row")
    return species, ids.tolist()


def read_species_names(dataset_dir: str | Path, species: list[str]) -> SpeciesNames:
    """The species of ``sample_submission.csv`` with their names from the dataset's ``species.csv``, if any.

    Raises
    ------
    LabelError
        If the file lacks ``species_id`` or ``label``, its ids are not the
        whole numbers ``0 .. N`` of the submission's ``s0 .. sN``, each once,
        or a label is empty or repeated; naming the file and line.
    """
    path = Path(dataset_dir) / SPECIES_FILE
    if not path.exists():
        return SpeciesNames(tuple(species))
    table, header_line = read_text_table(path, pad_short_rows=True)
    require_columns(
        path,
        table,
        header_line,
        ["species_id", "label"],
        f"the header must start species_id,label (found {','.join(table.columns)})",
    )
    labels: dict[int, str] = {}
    seen: dict[str, int] = {}
    for line, value, label in zip(table.index, table["species_id"], table["label"]):
        if not value.isdigit() or int(value) >= len(species):
            raise LabelError(
                f"{path}: line {line}: species_id must be a whole number from 0 to {len(species) - 1} (the species "
                f"columns s0..s{len(species) - 1} of sample_submission.csv), got {value!r}"
            )
        if int(value) in labels:
            raise LabelError(f"{path}: line {line}: species_id {value} is listed twice; keep one row per species")
        if not label:
            raise LabelError(f"{path}: line {line}: species {value} has an empty label; give it a name")
        if label.casefold() in seen:
            raise LabelError(
                f"{path}: line {line}: label {label!r} is also species {seen[label.casefold()]}'s (names are matched "
                "without regard to case); each species needs its own"
            )
        labels[int(value)], seen[label.casefold()] = label, int(value)
    absent = [f"{i}" for i in range(len(species)) if i not in labels]
    if absent:
        raise LabelError(
            f"{path}: species {', '.join(absent[:5])} of sample_submission.csv have no row; give every species "
            f"0..{len(species) - 1} a label"
        )
    return SpeciesNames(tuple(species), tuple(labels[i] for i in range(len(species))))
