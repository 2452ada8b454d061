"""Reading recordings: any format soundfile decodes, mixed to mono, resampled.

Recordings are addressed by id, the file name without its extension, as in the
competition (``train/003bec244.flac`` holds recording ``003bec244``).
"""

from __future__ import annotations

import re
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from rainforest.errors import AudioError

#: Extensions looked for when a recording id is resolved to a file, in order.
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg")

#: Largest accepted sample magnitude (24 dB over full scale). Float files may
#: overshoot [-1, 1] a little; much more means integer-scaled or garbage data.
MAX_PEAK = 16.0

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


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Mix a (n_samples, n_channels) array down to one channel by averaging."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def load_recording(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode a recording to mono float32 at ``sample_rate``.

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
        If the file is missing, empty, truncated, not audio or cannot be
        decoded, or holds NaN, infinite or absurdly large samples (which
        would reach the features as NaN or infinity).
    """
    path = Path(path)
    # soundfile reports a missing file as a generic LibsndfileError ("System
    # error"), not FileNotFoundError, so check first.
    if not path.exists():
        raise AudioError(f"{path}: recording not found")
    try:
        with sf.SoundFile(path) as file:
            samples, file_rate = file.read(dtype="float32", always_2d=True), file.samplerate
            header_log = file.extra_info
    except FileNotFoundError:
        raise AudioError(f"{path}: recording not found") from None
    except (sf.LibsndfileError, RuntimeError, ValueError) as error:
        raise AudioError(
            f"{path}: cannot decode audio ({error}); re-export the file as FLAC or WAV, "
            "or remove it and its label rows"
        ) from None
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: recording holds no samples; remove it or its label rows")
    _check_complete(path, header_log)
    _check_samples(path, samples)
    waveform = to_mono(samples)
    if file_rate != sample_rate:
        waveform = librosa.resample(waveform, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
        if len(waveform) == 0:
            raise AudioError(
                f"{path}: {samples.shape[0]} sample(s) at {file_rate} Hz are shorter than one sample at "
                f"audio.sample_rate ({sample_rate} Hz); remove the file or its label rows"
            )
    return np.ascontiguousarray(waveform, dtype=np.float32)


def _check_complete(path: Path, header_log: str) -> None:
    # libsndfile quietly reads what is there of a truncated WAV/AIFF (a copy
    # or download cut short); its header log notes the data chunk the header
    # promised, e.g. "data : 96000 (should be 47978)".
    match = _DATA_SIZE.search(header_log)
    if match and int(match["declared"]) > int(match["actual"]):
        raise AudioError(
            f"{path}: file is truncated: its header declares {match['declared']} bytes of audio but only "
            f"{match['actual']} are there; copy or export the file again, or remove it and its label rows"
        )


def _check_samples(path: Path, samples: np.ndarray) -> None:
    # Only float files can hold these values; they would turn into NaN or
    # infinite features (or crash the STFT) far from the file that caused them.
    finite = np.isfinite(samples)
    if not finite.all():
        first = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise AudioError(
            f"{path}: {int((~finite).sum())} sample(s) are NaN or infinite (first at sample {first}); "
            "the file is corrupt: re-export it, or remove it and its label rows"
        )
    peak = float(np.abs(samples).max())
    if peak > MAX_PEAK:
        raise AudioError(
            f"{path}: samples reach {peak:.3g}, far outside full scale [-1, 1] (at most {MAX_PEAK:g} is "
            "accepted); the float file is unnormalised or corrupt: re-export it normalised to [-1, 1]"
        )
