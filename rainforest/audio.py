"""Reading recordings: any format soundfile decodes, mixed to mono, resampled.

Recordings are addressed by id, the file name without its extension, as in the
competition (``train/003bec244.flac`` holds recording ``003bec244``).
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from rainforest.errors import AudioError

#: Extensions looked for when a recording id is resolved to a file, in order.
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg")


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
        If the file is missing, empty, not audio or cannot be decoded.
    """
    path = Path(path)
    # soundfile reports a missing file as a generic LibsndfileError ("System
    # error"), not FileNotFoundError, so check first.
    if not path.exists():
        raise AudioError(f"{path}: recording not found")
    try:
        samples, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise AudioError(f"{path}: recording not found") from None
    except (sf.LibsndfileError, RuntimeError, ValueError) as error:
        raise AudioError(
            f"{path}: cannot decode audio ({error}); re-export the file as FLAC or WAV, "
            "or remove it and its label rows"
        ) from None
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: recording holds no samples; remove it or its label rows")
    waveform = to_mono(samples)
    if file_rate != sample_rate:
        waveform = librosa.resample(waveform, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(waveform, dtype=np.float32)
