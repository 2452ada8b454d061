"""Reading recordings: any format soundfile decodes, mixed to mono, resampled.

Recordings are addressed by id, the file name without its extension, as in the
competition (``train/003bec244.flac`` holds recording ``003bec244``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from rainforest.errors import AudioError

#: Extensions looked for when a recording id is resolved to a file, in order.
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg")

#: Largest accepted sample magnitude (24 dB over full scale). Float files may
#: overshoot [-1, 1] a little; much more means integer-scaled or garbage data.
MAX_PEAK = 16.0

#: Samples decoded at a time when a resampled file is read whole.
BLOCK_SAMPLES = 1 << 22

_DATA_SIZE = re.compile(r"^\s*(?:data|SSND)\s*:\s*(?P<declared>\d+)\s*\(should be (?P<actual>\d+)\)", re.MULTILINE)


def index_recordings(folder: str | Path) -> dict[str, Path]:
    """Map each recording id in ``folder`` to its audio file.

    Raises
    ------
    AudioError
        If the folder does not exist, or one id has files in two formats
        (``a.wav`` and ``a.flac``) so that it is ambiguous which one to use.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"{folder}: recordings folder not found; check data.dataset_dir in params.yaml")
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        if path.stem in index:
            raise AudioError(
                f"{folder}: recording {path.stem!r} exists as both {index[path.stem].name} "
                f"and {path.name}; keep one of them"
            )
        index[path.stem] = path
    return index


def index_recording_tree(folder: str | Path) -> dict[str, Path]:
    """Map each recording id under ``folder``, at any depth, to its audio file.

    A recording's id is its path under ``folder`` without the extension,
    ``/``-separated (``SD03/20260412_050000``): recorders name files alike on
    every card. Each subfolder is read as :func:`index_recordings` reads a
    folder; hidden files and folders are passed over.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["SD01/0500.wav", "SD02/0500.flac", ".hidden/0500.wav", "notes.txt"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     (root / name).touch()
    >>> list(index_recording_tree(root))
    ['SD01/0500', 'SD02/0500']
    """
    folder = Path(folder)
    found: dict[str, Path] = {}
    for parent, folders, _ in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        under = Path(parent).relative_to(folder)
        for stem, path in index_recordings(parent).items():
            if not path.name.startswith("."):
                found[(under / stem).as_posix()] = path
    return found


def audio_files(
    folder: str | Path,
    recording_ids: list[str],
    *,
    listed_in: str,
    on_missing: str = "stop",
    hint: str = "",
    index: dict[str, Path] | None = None,
) -> tuple[dict[str, Path], list[str]]:
    """The audio file of each of ``recording_ids`` in ``folder``, and the ids that have none.

    Parameters
    ----------
    listed_in
        Where the ids come from, for the message (``sample_submission.csv``).
    on_missing
        ``"stop"``: raise if any id has no file; ``"skip"``: return them.
    hint
        Appended to the message: another way out.
    index
        The recordings to look in (default: :func:`index_recordings` of ``folder``).

    Returns
    -------
    found : dict
        Recording id -> its file, in the order of ``recording_ids``.
    missing : list
        The ids without a file, sorted.

    Raises
    ------
    AudioError
        If the folder does not exist, or (with ``"stop"``) an id has no file.
    """
    index = index_recordings(folder) if index is None else index
    missing = sorted({recording_id for recording_id in recording_ids if recording_id not in index})
    if missing and on_missing == "stop":
        raise AudioError(
            f"{folder}: {len(missing)} recording(s) listed in {listed_in} have no audio file there "
            f"(first: {', '.join(missing[:5])}); add the files or remove their rows{hint}"
        )
    return {recording_id: index[recording_id] for recording_id in recording_ids if recording_id in index}, missing


@dataclass(frozen=True)
class Skipped:
    """A recording left out of a run because it could not be decoded.

    What ``etl`` (with ``etl.on_unreadable: skip``), scoring and
    ``rainforest-detect`` (with ``--skip-unreadable``) give in its place.

    Attributes
    ----------
    recording_id, path
        The recording and its file.
    reason
        Why it could not be decoded (the :class:`~rainforest.errors.AudioError`'s message).
    """

    recording_id: str
    path: Path
    reason: str


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Mix a (n_samples, n_channels) array down to one channel by averaging."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


class Recording:
    """An open recording, read whole, in excerpts or as a stream of blocks,
    mono at ``sample_rate``.

    When the file is already at ``sample_rate`` an excerpt decodes only its
    own samples (FLAC and WAV seek exactly), so cutting a few windows from a
    long recording costs a fraction of decoding all of it. Otherwise the
    first excerpt decodes and resamples (soxr, high quality) the whole file,
    once. :meth:`blocks` decodes (and resamples) one block at a time, so a
    day-long recording streams through in flat memory; its samples are the
    same as those of :meth:`read`. Use as a context manager.

    Raises
    ------
    AudioError
        If the file is missing, empty, truncated, not audio or cannot be
        decoded, or holds NaN, infinite or absurdly large samples (which
        would reach the features as NaN or infinity).
    """

    def __init__(self, path: str | Path, sample_rate: int):
        self.path, self.sample_rate = Path(path), sample_rate
        # soundfile reports a missing file as a generic LibsndfileError ("System
        # error"), not FileNotFoundError, so check first.
        if not self.path.exists():
            raise AudioError(f"{self.path}: recording not found")
        with self._decoding():
            self._file = sf.SoundFile(self.path)
        self._waveform: np.ndarray | None = None
        try:
            if self._file.frames == 0:
                raise AudioError(f"{self.path}: recording holds no samples; remove it")
            _check_complete(self.path, self._file.extra_info)
            #: Length of the recording at ``sample_rate`` (librosa.resample's rounding).
            self.n_samples = int(np.ceil(self._file.frames * (sample_rate / self._file.samplerate)))
        except AudioError:
            self._file.close()
            raise

    @property
    def resampled(self) -> bool:
        """Whether the file's rate differs from ``sample_rate``."""
        return self._file.samplerate != self.sample_rate

    def read(self, start: int = 0, n_samples: int | None = None) -> np.ndarray:
        """``n_samples`` from sample ``start`` (default: to the end), zero-padded
        past the end of the recording; 1-D float32."""
        n_samples = self.n_samples - start if n_samples is None else n_samples
        if self.resampled:
            if self._waveform is None:
                self._waveform = np.concatenate(list(self.blocks(BLOCK_SAMPLES)))
            excerpt = self._waveform[start : start + n_samples]
        else:
            excerpt = self._decoded(min(start, self._file.frames), n_samples)
        return np.ascontiguousarray(np.pad(excerpt, (0, n_samples - len(excerpt))), dtype=np.float32)

    def blocks(self, block_samples: int) -> Iterator[np.ndarray]:
        """The whole recording as consecutive blocks of ``block_samples``
        (the last one shorter), 1-D float32, decoding one block at a time."""
        if not self.resampled:
            for start in range(0, self.n_samples, block_samples):
                yield self._decoded(start, block_samples)
            return
        # A streaming resampler gives exactly the samples of resampling the
        # whole file at once (librosa.resample's soxr_hq), which etl uses.
        stream = soxr.ResampleStream(self._file.samplerate, self.sample_rate, 1, dtype="float32", quality="HQ")
        pending, produced = [], 0
        in_block = max(1, round(block_samples * self._file.samplerate / self.sample_rate))
        for start in range(0, self._file.frames, in_block):
            last = start + in_block >= self._file.frames
            pending.append(stream.resample_chunk(self._decoded(start, in_block), last=last))
            ready = np.concatenate(pending)
            if last:  # librosa's length: zero-padded or cut to n_samples
                ready = np.pad(ready, (0, max(0, self.n_samples - produced - len(ready))))[: self.n_samples - produced]
            whole = len(ready) if last else len(ready) - len(ready) % block_samples
            for first in range(0, whole, block_samples):
                yield ready[first : first + block_samples]
            pending, produced = [ready[whole:]], produced + whole

    def _decoded(self, start: int, n_samples: int) -> np.ndarray:
        # Samples [start, start + n_samples) of the file, at its own rate, mono.
        with self._decoding():
            self._file.seek(start)
            if self._file.subtype == "PCM_16":
                # Most recorders write 16-bit audio: decoding it as integers
                # and scaling by 2**-15 gives libsndfile's float samples exactly,
                # a third faster, and integers cannot be NaN or out of range.
                samples = self._file.read(n_samples, dtype="int16", always_2d=True).astype(np.float32)
                samples *= np.float32(2.0**-15)
                return to_mono(samples)
            samples = self._file.read(n_samples, dtype="float32", always_2d=True)
        if len(samples):
            _check_samples(self.path, samples, start)
        return to_mono(samples)

    @contextlib.contextmanager
    def _decoding(self) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise AudioError(f"{self.path}: recording not found") from None
        except (sf.LibsndfileError, RuntimeError, ValueError) as error:
            raise AudioError(
                f"{self.path}: cannot decode audio ({error}); re-export the file as FLAC or WAV, or remove it"
            ) from None

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()


def load_recording(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode a whole recording to mono float32 at ``sample_rate``.

    Parameters
    ----------
    path
        Any file libsndfile reads (FLAC, WAV of any bit depth, OGG ...).
    sample_rate
        Target rate in Hz; the audio is resampled (soxr, high quality) when
        the file's rate differs.

    Returns
    -------
    np.ndarray
        1-D float32 waveform, nominally in [-1, 1].

    Raises
    ------
    AudioError
        As :class:`Recording` does.
    """
    with Recording(path, sample_rate) as recording:
        return recording.read()


def _check_complete(path: Path, header_log: str) -> None:
    # libsndfile quietly reads what is there of a truncated WAV/AIFF (a copy
    # or download cut short); its header log notes the data chunk the header
    # promised, e.g. "data : 96000 (should be 47978)".
    match = _DATA_SIZE.search(header_log)
    if match and int(match["declared"]) > int(match["actual"]):
        raise AudioError(
            f"{path}: file is truncated: its header declares {match['declared']} bytes of audio but only "
            f"{match['actual']} are there; copy or export the file again, or remove it"
        )


def _check_samples(path: Path, samples: np.ndarray, offset: int = 0) -> None:
    # Only float files can hold these values; they would turn into NaN or
    # infinite features (or crash the STFT) far from the file that caused them.
    finite = np.isfinite(samples)
    if not finite.all():
        first = offset + int(np.flatnonzero(~finite.all(axis=1))[0])
        raise AudioError(
            f"{path}: {int((~finite).sum())} sample(s) are NaN or infinite (first at sample {first}); "
            "the file is corrupt: re-export it, or remove it"
        )
    peak = float(np.abs(samples).max())
    if peak > MAX_PEAK:
        raise AudioError(
            f"{path}: samples reach {peak:.3g}, far outside full scale [-1, 1] (at most {MAX_PEAK:g} is "
            "accepted); the float file is unnormalised or corrupt: re-export it normalised to [-1, 1]"
        )
