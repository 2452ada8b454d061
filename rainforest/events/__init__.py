"""Events: labelled calls and known absences, and the file formats they are read from and written to.

An event is a box on a recording's spectrogram (``t_min .. t_max`` seconds,
``f_min .. f_max`` Hz) with a species, and whether the species called in it.
Every format reads into one table and is checked by one validator
(:mod:`rainforest.events.table`); each format is one module with a ``read``
and a ``write``, registered by name in :data:`FORMATS`
(:mod:`rainforest.events.registry`):

``competition``
    ``train_tp.csv``, ``train_fp.csv`` and a project's reviewed ``labels.csv``.
``raven``
    Raven Pro selection tables (and OpenSoundscape's); ``rainforest-detect``
    writes one per recording.
``audacity``
    Audacity label tracks.
``verdicts``
    A person's verdicts on detections (the review page's export, or a Raven
    table with a Verdict column).
``detections``
    ``rainforest-detect``'s ``detections.csv``.

The species an event names are the dataset's (:mod:`rainforest.events.species`);
a dataset's training events, with the reviewed ones, are read by
:mod:`rainforest.events.dataset`.
"""

from rainforest.events.dataset import (
    REVIEWED_LABELS,
    REVIEWED_RECORDINGS,
    read_dataset_events,
    read_reviewed_events,
)
from rainforest.events.registry import DATASET_FORMATS, FORMATS, EventFormat
from rainforest.events.species import SPECIES_FILE, SpeciesNames, read_species, read_species_names
from rainforest.events.table import (
    EVENT_COLUMNS,
    MIN_OVERLAP_SHARE,
    SONGTYPE_ID,
    TABLE_COLUMNS,
    fit_events_to_recording,
    presence_matrix,
    window_labels,
)

__all__ = [
    "DATASET_FORMATS",
    "EVENT_COLUMNS",
    "FORMATS",
    "MIN_OVERLAP_SHARE",
    "REVIEWED_LABELS",
    "REVIEWED_RECORDINGS",
    "SONGTYPE_ID",
    "SPECIES_FILE",
    "TABLE_COLUMNS",
    "EventFormat",
    "SpeciesNames",
    "fit_events_to_recording",
    "presence_matrix",
    "read_dataset_events",
    "read_reviewed_events",
    "read_species",
    "read_species_names",
    "window_labels",
]
