"""The window set: its HDF5 schema, its writer and readers, and the validation scores row for row of it.

A *window set* is an HDF5 file with one row per window, in the fields of
:data:`WINDOW_SCHEMA`, and the settings that made it as file attributes,
written atomically (:mod:`rainforest.atomic_writes`). The embed stage's files
hold ``embeddings`` (float32 (n, dimension)), row for row of a window set, and
are read with the same readers. The train stage's validation scores are a CSV
table of a window set's rows that evaluate reads (:func:`write_validation_scores`).
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from rainforest.atomic_writes import atomic_path, write_text
from rainforest.config import FeatureSettings, SpectrogramSettings

#: The window set's fields: name -> (dtype, one row's shape in named
#: dimensions, meaning). In the order :class:`WindowWriter` creates them,
#: which is part of the file's bytes.
WINDOW_SCHEMA: dict[str, tuple[type | np.dtype, tuple[str, ...], str]] = {
    "spectrograms": (np.float32, ("n_mels", "n_frames"), "log-mel dB"),
    "targets": (np.uint8, ("n_species",), "1 present, 0 absent"),
    "masks": (np.uint8, ("n_species",), "1 where the target is known"),
    "recording_ids": (h5py.string_dtype(), (), "the recording the window was cut from"),
    "start_times": (np.float64, (), "seconds into the recording"),
    "end_times": (np.float64, (), "seconds into the recording"),
    "event_species": (np.int16, (), "species of the event the window was cut around, -1 for background"),
    "event_present": (np.uint8, (), "whether that event is a true (1) or false (0) positive"),
    "waveforms": (np.float32, ("n_samples",), "the audio the spectrogram was made from (optional)"),
}
WINDOW_FIELDS = tuple(WINDOW_SCHEMA)
#: The fields that label a window (what training and evaluation read besides the inputs).
LABEL_FIELDS = ("targets", "masks", "event_species", "event_present")

#: Windows per HDF5 chunk: the unit the window set is written and read in.
HDF5_CHUNK_WINDOWS = 32


class WindowWriter:
    """Stream windows into a new window set, atomically.

    Use as a context manager; the file appears at ``path`` only when the
    block completes without error.

    Parameters
    ----------
    path
        Destination of the HDF5 file.
    n_mels, n_frames, n_species
        Shape of one window's spectrogram and label vectors.
    n_samples
        Length of one window's waveform, or ``None`` to store no waveforms.
    attrs
        Settings to record as file attributes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        n_mels: int,
        n_frames: int,
        n_species: int,
        n_samples: int | None,
        attrs: dict,
    ):
        self.path = Path(path)
        sizes = {"n_mels": n_mels, "n_frames": n_frames, "n_species": n_species, "n_samples": n_samples}
        self._shapes = {
            name: (tuple(sizes[dimension] for dimension in dimensions), dtype)
            for name, (dtype, dimensions, _) in WINDOW_SCHEMA.items()
            if name != "waveforms" or n_samples is not None
        }
        self._attrs = attrs
        self._stack = contextlib.ExitStack()
        self._file: h5py.File = None  # opened by __enter__
        self._pending: dict[str, list[np.ndarray]] = {name: [] for name in self._shapes}
        self._written = 0
        self.n_windows = 0

    def __enter__(self) -> WindowWriter:
        temporary = self._stack.enter_context(atomic_path(self.path))
        self._file = self._stack.enter_context(h5py.File(temporary, "w"))
        for name, (shape, dtype) in self._shapes.items():
            self._file.create_dataset(
                name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype, chunks=(HDF5_CHUNK_WINDOWS, *shape)
            )
        for key, value in self._attrs.items():
            self._file.attrs[key] = value
        return self

    def append(self, **fields: np.ndarray) -> None:
        """Append a batch of windows; every field of the set must be given.

        Windows are buffered and written a whole HDF5 chunk at a time: a
        chunk of waveforms is larger than HDF5's chunk cache, so writing a
        few rows into it would read and rewrite the whole chunk each time.
        """
        if set(fields) != set(self._shapes):
            raise ValueError(f"expected fields {sorted(self._shapes)}, got {sorted(fields)}")
        for name, values in fields.items():
            self._pending[name].append(np.asarray(values))
        self.n_windows += len(fields["targets"])
        if self.n_windows - self._written >= HDF5_CHUNK_WINDOWS:
            self._flush(whole_chunks_only=True)

    def _flush(self, whole_chunks_only: bool) -> None:
        pending = {name: np.concatenate(parts) for name, parts in self._pending.items() if parts}
        if not pending:
            return
        count = len(pending["targets"])
        if whole_chunks_only:
            count -= count % HDF5_CHUNK_WINDOWS
        for name, values in pending.items():
            dataset = self._file[name]
            dataset.resize(self._written + count, axis=0)
            dataset[self._written :] = values[:count]
            self._pending[name] = [values[count:]]
        self._written += count

    def __exit__(self, *exc_info) -> bool | None:
        if exc_info[0] is None:
            self._flush(whole_chunks_only=False)
        self._file.attrs["n_windows"] = self.n_windows
        return self._stack.__exit__(*exc_info)


def read_window_attrs(path: str | Path) -> dict:
    """The file attributes of a window set."""
    with h5py.File(path, "r") as file:
        return dict(file.attrs)


def read_spectrogram_settings(path: str | Path) -> SpectrogramSettings:
    """The sample rate and feature settings a window set was made with."""
    attrs = read_window_attrs(path)
    # HDF5 gives NumPy scalars; the settings take Python numbers only.
    features = FeatureSettings(**{name: attrs[name].item() for name in FeatureSettings.model_fields})
    return SpectrogramSettings(int(attrs["sample_rate"]), features)


def read_windows(path: str | Path, fields: tuple[str, ...], rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Read ``fields`` of a window set (or ``embeddings`` of an embedding
    file): all rows, or the given rows (ascending)."""
    out = {}
    with h5py.File(path, "r") as file:
        for name in fields:
            dataset = file[name].asstr() if name == "recording_ids" else file[name]
            values = dataset[()] if rows is None else dataset[np.asarray(rows)]
            out[name] = np.asarray(values, dtype=object) if name == "recording_ids" else values
    return out


class WindowRows:
    """One field (spectrograms, or embeddings) of chosen rows of one or more
    HDF5 files, read on demand.

    Array-like enough for training (``len``, ``shape``, an integer, a slice,
    or a boolean or integer array as index), so a training set larger than
    memory streams from HDF5 instead of being loaded.

    Parameters
    ----------
    parts
        ``(path, rows)`` of each file, rows ascending; row ``i`` of this
        object is the ``i``-th of all parts' rows in that order.
    field
        The dataset to read from each file.
    """

    def __init__(self, parts: list[tuple[str | Path, np.ndarray]], field: str = "spectrograms"):
        self._paths = [Path(path) for path, _ in parts]
        self._part = np.concatenate([np.full(len(rows), i, dtype=np.int64) for i, (_, rows) in enumerate(parts)])
        self._row = np.concatenate([np.asarray(rows, dtype=np.int64) for _, rows in parts])
        self._files: list[h5py.File] | None = None
        self._field = field
        with h5py.File(self._paths[0], "r") as file:
            self._window_shape = file[field].shape[1:]

    def _of(self, part: np.ndarray, row: np.ndarray) -> WindowRows:
        subset = copy.copy(self)
        subset._part, subset._row, subset._files = part, row, None
        return subset

    def joined(self, other: WindowRows) -> WindowRows:
        """These rows, then ``other``'s (the same field, the same window shape)."""
        if (other._field, other._window_shape) != (self._field, self._window_shape):
            raise ValueError(f"cannot join {other._field} {other._window_shape} to {self._field} {self._window_shape}")
        both = self._of(
            np.concatenate([self._part, other._part + len(self._paths)]), np.concatenate([self._row, other._row])
        )
        both._paths = self._paths + other._paths
        return both

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._row), *self._window_shape)

    def __len__(self) -> int:
        return len(self._row)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self._datasets()[self._part[index]][self._row[index]]
        part, row = self._part[index], self._row[index]
        if isinstance(index, slice):
            return self._read(part, row)
        return self._of(part, row)

    def _read(self, part: np.ndarray, row: np.ndarray) -> np.ndarray:
        out = np.empty((len(row), *self._window_shape), dtype=np.float32)
        datasets = self._datasets()
        for i in np.unique(part):
            where = np.flatnonzero(part == i)
            # HDF5 needs ascending rows; rows of one part are.
            out[where] = datasets[i][row[where]]
        return out

    def _datasets(self) -> list[h5py.Dataset]:
        # Opened on first read: the object can be made in one process and read in another.
        if self._files is None:
            self._files = [h5py.File(path, "r") for path in self._paths]
        return [file[self._field] for file in self._files]

    def close(self) -> None:
        """Close the files (they reopen on the next read)."""
        for file in self._files or []:
            file.close()
        self._files = None


def write_validation_scores(
    path: str | Path, rows: np.ndarray, folds: np.ndarray, scores: np.ndarray, species: list[str]
) -> None:
    """Write each validation window's scores: ``window`` (its row in the window
    set), ``fold`` (the model that scored it, which never trained on its
    recording) and one column per species, in window order."""
    table = pd.DataFrame(scores, columns=species)
    table.insert(0, "fold", folds)
    table.insert(0, "window", rows)
    # Nine significant digits give every float32 score back exactly.
    write_text(path, table.sort_values("window", kind="stable").to_csv(index=False, float_format="%.9g"))


def read_validation_scores(path: str | Path) -> pd.DataFrame:
    """The table :func:`write_validation_scores` writes, scores as float32."""
    table = pd.read_csv(path)
    return table.astype(dict.fromkeys(table.columns[2:], np.float32))
