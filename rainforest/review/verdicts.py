"""Verdicts on detections, back into training: yes becomes a call, no a known absence.

A person reviewing detections (the review page, :mod:`rainforest.review.page`,
or Raven Pro) says of each whether the species called in it. Those verdicts
become rows of the project's reviewed labels, ``labels.csv`` in
``data.reviews_dir`` (:mod:`rainforest.events.competition`), which
``etl`` reads besides the dataset's ``train_tp.csv`` and ``train_fp.csv``: a
"yes" is a TP row, a "no" an FP row, "unsure" nothing. A verdict on a
recording outside the dataset's ``train/`` copies the recording into
``data.reviews_dir/recordings``, so it becomes a training recording and the
labels never name audio the project does not hold. Both are plain files to
version with the project (``git add reviews``, or ``dvc add`` for many
recordings), so every round of review is reproducible.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rainforest.atomic_writes import atomic_path, write_text
from rainforest.audio import index_recording_tree, index_recordings
from rainforest.config import DataSettings
from rainforest.errors import LabelError
from rainforest.events import (
    EVENT_COLUMNS,
    REVIEWED_LABELS,
    REVIEWED_RECORDINGS,
    competition,
    raven,
    read_reviewed_events,
    read_species,
    read_species_names,
)
from rainforest.events import verdicts as verdict_files

log = logging.getLogger(__name__)

#: The key of a reviewed label: a later verdict on the same window and species replaces an earlier one.
_KEY = ["recording_id", "species_id", "t_min", "t_max"]
#: The columns of the reviewed labels' file.
_LABEL_COLUMNS = [*EVENT_COLUMNS, "present"]


@dataclass(frozen=True)
class ImportSummary:
    """What an import changed in the reviewed labels.

    Attributes
    ----------
    labels_path
        The reviewed labels' file.
    added, replaced, unchanged
        Verdicts that added a row, changed an earlier row's verdict or band,
        or repeated an earlier row.
    yes, no, unsure, blank
        The verdicts read, by value (unsure and blank rows add nothing).
    recordings_added
        Ids of the recordings copied into the reviews' ``recordings/``.
    """

    labels_path: Path
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    yes: int = 0
    no: int = 0
    unsure: int = 0
    blank: int = 0
    recordings_added: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One paragraph for the person who ran the import."""
        copied = (
            f"; copied {len(self.recordings_added)} recording(s) from outside the dataset's train/ into "
            f"{self.labels_path.parent / REVIEWED_RECORDINGS}"
            if self.recordings_added
            else ""
        )
        return (
            f"{self.labels_path}: read {self.yes} yes, {self.no} no, {self.unsure} unsure and {self.blank} blank "
            f"verdict(s): {self.added} row(s) added, {self.replaced} replaced, {self.unchanged} already there "
            f"(unsure and blank add nothing){copied}. Run dvc repro to retrain with them, then dvc metrics diff."
        )


def _raven_recording(path: Path) -> tuple[str, str]:
    # A detection's table sits in rainforest-detect's output folder, under its
    # recording's id, and the run's journal knows the recording's file.
    from rainforest.detect.run import JOURNAL_DIR, recording_files

    for folder in path.parents:
        if (folder / JOURNAL_DIR).is_dir():
            recording_id = raven.recording_of_table(path.relative_to(folder).with_suffix("").as_posix())
            files = recording_files(folder)
            if recording_id not in files:
                break
            return recording_id, str(files[recording_id])
    raise LabelError(
        f"{path}: not a selection table of a rainforest-detect run (no run journal that knows its recording in "
        "the folders above it); import tables from the run's output folder, where rainforest-detect wrote them"
    )


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _training_ids(
    verdicts: pd.DataFrame, dataset_dir: Path, reviewed: dict[str, Path], recordings_dir: Path
) -> tuple[list[str], list[str]]:
    """Each verdict's recording id among the training recordings, and the ids of recordings to copy in.

    A recording in the dataset's ``train/`` keeps its id there; any other is
    copied (once) into ``recordings_dir`` under its detection id, or, where
    that id names another recording, the id plus the start of its content's hash.
    One of the dataset's test recordings is refused: training on it would
    make the test figures meaningless.
    """
    train = index_recordings(dataset_dir / "train")
    test = (
        {path.resolve() for path in index_recordings(dataset_dir / "test").values()}
        if (dataset_dir / "test").is_dir()
        else set()
    )
    in_train = {path.resolve(): recording_id for recording_id, path in train.items()}
    in_reviews = {_digest(path): recording_id for recording_id, path in reviewed.items()}
    ids: list[str] = []
    copied: list[str] = []
    chosen: dict[Path, str] = {}
    for row in verdicts.itertuples():
        source = Path(row.file).resolve()
        if source in chosen:
            ids.append(chosen[source])
            continue
        if source in test:
            raise LabelError(
                f"{row.source}: line {row.line}: {row.file} is one of the dataset's test recordings; training on "
                "it would make the test figures meaningless: review detections in recordings outside test/"
            )
        if source in in_train:
            recording_id = in_train[source]
        elif not source.is_file():
            raise LabelError(
                f"{row.source}: line {row.line}: recording file {row.file} not found; the verdicts name each "
                "recording's file as rainforest-detect found it: import them where that file is"
            )
        else:
            content = _digest(source)
            known = in_reviews.get(content)
            if known is not None:
                recording_id = known
            else:
                recording_id = str(row.recording)
                if recording_id in train or recording_id in reviewed or recording_id in chosen.values():
                    recording_id = f"{row.recording}-{content[:8]}"
                target = recordings_dir / f"{recording_id}{source.suffix.lower()}"
                with atomic_path(target) as temporary:
                    shutil.copyfile(source, temporary)
                reviewed[recording_id] = target
                in_reviews[content] = recording_id
                copied.append(recording_id)
        chosen[source] = recording_id
        ids.append(recording_id)
    return ids, copied


def import_verdicts(paths: Sequence[str | Path], *, data: DataSettings) -> ImportSummary:
    """Add the verdicts of review files to the project's reviewed labels.

    Parameters
    ----------
    paths
        Verdicts files exported by the review page (:data:`rainforest.events.verdicts.VERDICT_COLUMNS`),
        or Raven selection tables written by ``rainforest-detect`` with a
        :data:`RAVEN_VERDICT_COLUMN` column added in Raven. Read in order: a
        later verdict on the same window and species replaces an earlier one.
    data
        The ``data`` settings: the dataset (its species, names and
        ``train/``) and ``reviews_dir``, where ``labels.csv`` is updated and
        recordings from outside ``train/`` are copied.

    Returns
    -------
    ImportSummary

    Raises
    ------
    LabelError
        Naming the file and line: a missing column, an unknown species or
        verdict, a box that is not a number or is inverted, a recording file
        that is gone or is one of the dataset's test recordings. Nothing is
        written then.
    """
    dataset_dir, reviews_dir = Path(data.dataset_dir), Path(data.reviews_dir)
    species, _ = read_species(dataset_dir / "sample_submission.csv")
    names = read_species_names(dataset_dir, species)
    read = []
    for path in map(Path, paths):
        if not path.is_file():
            raise LabelError(f"{path}: no such verdicts file")
        rows = verdict_files.read(path, names)
        if verdict_files.is_raven_table(path):
            rows["recording"], rows["file"] = _raven_recording(path)
        read.append(rows)
    verdicts = pd.concat(read, ignore_index=True)
    counts = {name: int(count) for name, count in verdicts["verdict"].value_counts().items()}
    summary = ImportSummary(
        reviews_dir / REVIEWED_LABELS,
        yes=counts.get("yes", 0),
        no=counts.get("no", 0),
        unsure=counts.get("unsure", 0),
        blank=counts.get("", 0),
    )
    verdicts = verdicts[verdicts["verdict"].isin(["yes", "no"])].reset_index(drop=True)
    existing = read_reviewed_events(reviews_dir, names)[_LABEL_COLUMNS]
    if verdicts.empty:
        return summary
    copies = reviews_dir / REVIEWED_RECORDINGS
    reviewed = index_recording_tree(copies) if copies.is_dir() else {}
    ids, copied = _training_ids(verdicts, dataset_dir, reviewed, copies)
    new = verdicts[_LABEL_COLUMNS].assign(recording_id=ids).drop_duplicates(subset=_KEY, keep="last")
    existing = existing.astype({"present": bool, "species_id": int, "songtype_id": int})
    merged = existing.merge(new, on=_KEY, how="outer", suffixes=("_old", ""), indicator=True)
    before = merged["_merge"] == "both"
    same = (
        before
        & (merged["present"] == merged["present_old"])
        & (merged["f_min"] == merged["f_min_old"])
        & (merged["f_max"] == merged["f_max_old"])
    )
    for column in ("songtype_id", "f_min", "f_max", "present"):
        merged[column] = merged[column].where(merged["_merge"] != "left_only", merged[f"{column}_old"])
    labels = merged[_LABEL_COLUMNS].sort_values(_KEY, kind="stable")
    write_text(reviews_dir / REVIEWED_LABELS, competition.write(labels, with_present=True))
    return dataclasses.replace(
        summary,
        added=int((merged["_merge"] == "right_only").sum()),
        replaced=int((before & ~same).sum()),
        unchanged=int(same.sum()),
        recordings_added=copied,
    )
