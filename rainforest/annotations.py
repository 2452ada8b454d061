"""Annotations in the formats people label with, and the species' names.

A dataset in the competition's layout labels its training recordings with
``train_tp.csv`` and ``train_fp.csv`` (:mod:`rainforest.labels`). It may
instead hold, beside each training recording in ``train/``, a Raven Pro
selection table (``data.annotations: raven``) or an Audacity label track
(``data.annotations: audacity``); :func:`read_annotation_events` turns them
into the same events, checked against the recordings they label.

A dataset may also name its species: ``species.csv`` (``species_id,label``,
optionally more columns such as a code or a scientific name), read by
:func:`read_species_labels`. The species stay ``s0 .. sN`` everywhere the
competition needs them (``sample_submission.csv``, the submission's columns);
the names are carried beside them to the model card, the per-species metrics,
the figures and ``rainforest-detect``'s outputs.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from rainforest.audio import index_recordings
from rainforest.errors import LabelError
from rainforest.labels import EVENT_COLUMNS

log = logging.getLogger(__name__)

SPECIES_FILE = "species.csv"

#: The box columns of a Raven selection table, and the event column each becomes.
RAVEN_BOX_COLUMNS = {
    "Begin Time (s)": "t_min",
    "End Time (s)": "t_max",
    "Low Freq (Hz)": "f_min",
    "High Freq (Hz)": "f_max",
}
#: An optional Raven column with each selection's verdict: a "no" row is a
#: known absence (as a row of train_fp.csv), any other row a call.
RAVEN_PRESENT_COLUMN = "Present"
_PRESENT_VALUES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}

#: Raven and Audacity carry no song type; every event gets the competition's most common one.
SONGTYPE_ID = 1

#: ``<recording>.Table.<n>.selections.txt``, the name Raven gives a recording's tables.
_RAVEN_NAME = re.compile(r"^(?P<recording>.+?)\.Table\.\d+\.selections$")


def read_species_labels(dataset_dir: str | Path, species: list[str]) -> list[str] | None:
    """The species' names from the dataset's ``species.csv``, in model order, or None without one.

    Parameters
    ----------
    species
        The species of ``sample_submission.csv`` (``s0 .. sN``).

    Raises
    ------
    LabelError
        If the file lacks ``species_id`` or ``label``, its ids are not the
        whole numbers ``0 .. N`` of the submission's ``s0 .. sN``, each once,
        or a label is empty or repeated; naming the file and line.
    """
    path = Path(dataset_dir) / SPECIES_FILE
    if not path.exists():
        return None
    rows = _read_delimited(path, ",")
    header, header_line = rows[0]
    missing = [name for name in ("species_id", "label") if name not in header]
    if missing:
        raise LabelError(
            f"{path}: line {header_line} (header): missing column(s) {', '.join(missing)}; the header must start "
            f"species_id,label (found {','.join(header)})"
        )
    id_column, label_column = header.index("species_id"), header.index("label")
    labels: dict[int, str] = {}
    seen: dict[str, int] = {}
    for fields, line in rows[1:]:
        value = fields[id_column] if id_column < len(fields) else ""
        label = fields[label_column] if label_column < len(fields) else ""
        if not value.isdigit() or int(value) >= len(species):
            raise LabelError(
                f"{path}: line {line}: species_id must be a whole number from 0 to {len(species) - 1} (the species "
                f"columns s0..s{len(species) - 1} of sample_submission.csv), got {value!r}"
            )
        if int(value) in labels:
            raise LabelError(f"{path}: line {line}: species_id {value} is listed twice; keep one row per species")
        if not label:
            raise LabelError(f"{path}: line {line}: species {value} has an empty label; give it a name")
        if label in seen:
            raise LabelError(
                f"{path}: line {line}: label {label!r} is also species {seen[label]}'s; each species needs its own"
            )
        labels[int(value)], seen[label] = label, int(value)
    absent = [f"{i}" for i in range(len(species)) if i not in labels]
    if absent:
        raise LabelError(
            f"{path}: species {', '.join(absent[:5])} of sample_submission.csv have no row; give every species "
            f"0..{len(species) - 1} a label"
        )
    return [labels[i] for i in range(len(species))]


def species_lookup(species: list[str], labels: list[str] | None) -> dict[str, int]:
    """What an annotation may call a species -> its index: the name, ``s3`` or ``3``."""
    lookup = {name: i for i, name in enumerate(species)} | {str(i): i for i in range(len(species))}
    if labels is not None:
        lookup |= {label: i for i, label in enumerate(labels)}
    return lookup


def _read_delimited(path: Path, delimiter: str) -> list[tuple[list[str], int]]:
    """The non-blank rows of a text table, stripped, each with its line number."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
            rows, line = [], 1
            for row in reader:
                fields = [field.strip() for field in row]
                if any(fields):
                    rows.append((fields, line))
                line = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LabelError(f"{path}: not a readable text table ({error}); save it as UTF-8 text") from None
    if not rows:
        raise LabelError(f"{path}: file is empty; it needs a header row")
    return rows


def _annotation_files(train_dir: Path, annotations: str) -> dict[Path, str]:
    """Each annotation file in ``train_dir`` -> the recording id it labels (see the module docs)."""
    files = {}
    for path in sorted(train_dir.glob("*.txt")):
        if not path.is_file() or path.name.startswith("."):
            continue
        match = _RAVEN_NAME.match(path.stem) if annotations == "raven" else None
        files[path] = match["recording"] if match else path.stem
    return files


def _raven_rows(path: Path, species_column: str) -> pd.DataFrame:
    """A Raven selection table's boxes, species and verdicts, by line number."""
    rows = _read_delimited(path, "\t")
    header, header_line = rows[0]
    missing = [name for name in [*RAVEN_BOX_COLUMNS, species_column] if name not in header]
    if missing:
        hint = (
            f"; the species column is set by data.species_column in params.yaml (now {species_column!r})"
            if species_column in missing
            else ""
        )
        raise LabelError(
            f"{path}: line {header_line} (header): missing column(s) {', '.join(missing)} (found "
            f"{', '.join(header)}); a selection table needs Raven's {', '.join(RAVEN_BOX_COLUMNS)} and a species "
            f"column{hint}"
        )
    for fields, line in rows[1:]:
        if len(fields) > len(header) and any(fields[len(header) :]):
            raise LabelError(
                f"{path}: line {line}: {len(fields)} values, but the header (line {header_line}) has "
                f"{len(header)} columns"
            )
    data = [(fields + [""] * len(header))[: len(header)] for fields, _ in rows[1:]]
    table = pd.DataFrame(data, columns=header, index=[line for _, line in rows[1:]], dtype=object)
    events = table[list(RAVEN_BOX_COLUMNS)].rename(columns=RAVEN_BOX_COLUMNS)
    events["species"] = table[species_column]
    if RAVEN_PRESENT_COLUMN in table.columns:
        verdicts = table[RAVEN_PRESENT_COLUMN].str.lower().map(_PRESENT_VALUES)
        if verdicts.isna().any():
            line = verdicts.index[verdicts.isna()][0]
            raise LabelError(
                f"{path}: line {line}, column {RAVEN_PRESENT_COLUMN}: expected yes or no, got "
                f"{table[RAVEN_PRESENT_COLUMN][line]!r}"
            )
        events["present"] = verdicts.astype(bool)
    else:
        events["present"] = True
    return events


def _audacity_rows(path: Path) -> pd.DataFrame:
    """An Audacity label track's labels and their frequency lines, by line number.

    A label line is ``start<TAB>end<TAB>label``; a line ``\\<TAB>f_min<TAB>f_max``
    after it gives its frequency band (Audacity writes one for labels with a
    spectral selection). A label without one spans 0 Hz to the recording's
    Nyquist frequency (filled in by the caller: None here).
    """
    records, lines = [], []
    for fields, line in _read_delimited(path, "\t"):
        if fields[0] == "\\":
            if not records or records[-1]["f_min"] is not None or len(fields) != 3:
                raise LabelError(
                    f"{path}: line {line}: a frequency line (\\<TAB>low<TAB>high) must follow a label line, "
                    "once; remove it or add its label"
                )
            records[-1]["f_min"], records[-1]["f_max"] = fields[1], fields[2]
            continue
        if len(fields) != 3:
            raise LabelError(
                f"{path}: line {line}: expected start<TAB>end<TAB>label (an Audacity label track), got "
                f"{len(fields)} value(s)"
            )
        records.append({"t_min": fields[0], "t_max": fields[1], "species": fields[2], "f_min": None, "f_max": None})
        lines.append(line)
    table = pd.DataFrame(records, index=lines, columns=["t_min", "t_max", "f_min", "f_max", "species"], dtype=object)
    return table.assign(present=True)


def _recording_shape(path: Path) -> tuple[float, float] | None:
    """A recording's length (s) and Nyquist frequency (Hz) at its own rate, or None if unreadable."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None  # etl reports it as unreadable (or skips it)
    return info.frames / info.samplerate, info.samplerate / 2


def _validate(
    path: Path, table: pd.DataFrame, recording_id: str, lookup: dict[str, int], shape: tuple[float, float] | None
) -> pd.DataFrame:
    """Numbers, species and boxes of one file's events; the events in the competition's columns."""
    columns = {"t_min": "Begin Time (s)", "t_max": "End Time (s)", "f_min": "Low Freq (Hz)", "f_max": "High Freq (Hz)"}
    # An Audacity label without a frequency line spans the whole band (an
    # unreadable recording's events are never used: etl stops or skips it).
    table["f_min"] = table["f_min"].fillna(0.0)
    table["f_max"] = table["f_max"].fillna(shape[1] if shape is not None else 1.0)
    for column in ["t_min", "t_max", "f_min", "f_max"]:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        if bad.any():
            line = table.index[int(bad.argmax())]
            raise LabelError(
                f"{path}: line {line}, {columns[column]}: expected a number, got {table[column][line]!r}"
            )
        table[column] = values.astype(float)
    species = table["species"].map(lookup)
    if species.isna().any():
        line = species.index[species.isna()][0]
        last = max(lookup.values())
        names = [name for name in lookup if not name.isdigit() and name != f"s{lookup[name]}"]
        known = f"a label of species.csv ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}), " if names else ""
        raise LabelError(
            f"{path}: line {line}: unknown species {table['species'][line]!r}; write {known}an id (s0..s{last}) or "
            f"a number (0..{last}), or add the species (to sample_submission.csv, and species.csv if there is one)"
        )
    checks = [
        (table["t_min"] < 0, "the selection begins before 0 s"),
        (table["t_min"] >= table["t_max"], "the selection must begin before it ends"),
        (table["f_min"] < 0, "the low frequency must not be negative"),
        (table["f_min"] >= table["f_max"], "the low frequency must be below the high frequency"),
    ]
    if shape is not None:
        duration, nyquist = shape
        checks += [
            (table["t_max"] > round(duration, 6),
             f"the selection ends after the end of recording {recording_id!r} ({duration:.3f} s long)"),
            (table["f_max"] > nyquist,
             f"the high frequency is above {nyquist:g} Hz, the Nyquist frequency of recording {recording_id!r}"),
        ]
    for bad, message in checks:
        bad = bad.to_numpy()
        if bad.any():
            line = table.index[int(bad.argmax())]
            row = table.loc[line]
            raise LabelError(
                f"{path}: line {line}: {message}; the box is {row['t_min']:g}-{row['t_max']:g} s, "
                f"{row['f_min']:g}-{row['f_max']:g} Hz; fix or remove the row"
            )
    events = pd.DataFrame(
        {
            "recording_id": recording_id,
            "species_id": species.astype(int),
            "songtype_id": SONGTYPE_ID,
            "t_min": table["t_min"],
            "f_min": table["f_min"],
            "t_max": table["t_max"],
            "f_max": table["f_max"],
            "present": table["present"].astype(bool),
            "source": str(path),
            "line": table.index,
        },
    )
    # Object ids, as read_training_events gives them (pandas would make a string column).
    return events.astype({"recording_id": object}).reset_index(drop=True)


def read_annotation_events(
    dataset_dir: str | Path,
    species: list[str],
    annotations: str,
    species_column: str = "Species",
    labels: list[str] | None = None,
) -> tuple[pd.DataFrame, int]:
    """The events of a dataset's Raven selection tables or Audacity label tracks.

    Every ``*.txt`` file in ``train/`` is one recording's annotations: a
    Raven table named ``<recording>.Table.<n>.selections.txt`` (as Raven
    saves it; several tables of one recording are read together) or
    ``<recording>.txt``; an Audacity track ``<recording>.txt``. A species is
    written as its label in ``species.csv``, its id (``s3``) or its number
    (``3``).

    Parameters
    ----------
    annotations
        ``"raven"`` or ``"audacity"``.
    species_column
        The Raven column holding the species.
    labels
        The species' names (:func:`read_species_labels`), if any.

    Returns
    -------
    events, duplicates
        As :func:`rainforest.labels.read_training_events`: the event columns,
        ``present``, ``source`` and ``line``, ordered by file and line; and how
        many rows repeating an earlier row of the same file were dropped.

    Raises
    ------
    LabelError
        Naming the file and line: a missing column, a value that is not a
        number, an unknown species, a box that is inverted, begins before 0,
        ends after its recording or reaches above its Nyquist frequency; an
        annotation file whose recording is not in ``train/``; no annotation
        files at all.
    """
    dataset_dir = Path(dataset_dir)
    train_dir = dataset_dir / "train"
    recordings = index_recordings(train_dir)
    files = _annotation_files(train_dir, annotations)
    name = "Raven selection tables (<recording>.Table.1.selections.txt)" if annotations == "raven" else (
        "Audacity label tracks (<recording>.txt)"
    )
    if not files:
        raise LabelError(
            f"{train_dir}: no {name} beside the recordings; data.annotations is {annotations!r} in params.yaml "
            "(competition reads train_tp.csv)"
        )
    orphans = [path for path, recording_id in files.items() if recording_id not in recordings]
    if orphans:
        raise LabelError(
            f"{orphans[0]}: no recording {files[orphans[0]]!r} in {train_dir} for this table "
            f"({len(orphans)} such file(s)); add the recording, rename the table after it, or remove the table"
        )
    lookup = species_lookup(species, labels)
    tables, duplicates = [], 0
    for path, recording_id in files.items():
        rows = _raven_rows(path, species_column) if annotations == "raven" else _audacity_rows(path)
        events = _validate(path, rows, recording_id, lookup, _recording_shape(recordings[recording_id]))
        repeated = events.duplicated(subset=[*EVENT_COLUMNS, "present"]).to_numpy()
        if repeated.any():
            log.warning("%s: dropped %d duplicate row(s), identical to an earlier row (first: line %d)",
                        path, int(repeated.sum()), events["line"][repeated].iloc[0])
        duplicates += int(repeated.sum())
        tables.append(events[~repeated])
    events = pd.concat(tables, ignore_index=True)
    unlabelled = len(recordings) - len(set(files.values()))
    log.info("%s: %d event(s) from %d %s; %d recording(s) without one are not used",
             train_dir, len(events), len(files), name.split(" (")[0], unlabelled)
    return events, duplicates
