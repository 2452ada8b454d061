"""The ``etl`` stage on real field recordings: WAV at 44.1, 32 and 22 kHz, shorter than 60 s.

``spinetail.wav`` comes with an Audacity label track of two species (SP and
CRER); the other recordings are unlabelled soundscapes used as negatives.
"""

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from benchmarks.project import make_project, run
from tests.support.paths import ROOT, SHARED_AUDIO, committed_params

SPECIES = {"SP": 0, "CRER": 1}

# Every test here waits for etl, or the whole pipeline, on the real recordings.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_audio,
    pytest.mark.skipif(not SHARED_AUDIO.is_dir(), reason=f"real recordings not found at {SHARED_AUDIO}"),
]


def audacity_events(path: Path) -> pd.DataFrame:
    """Events of an Audacity label track: ``t_min t_max LABEL`` then ``\\ f_min f_max``."""
    lines = path.read_text().splitlines()
    rows = []
    for times, band in zip(lines[0::2], lines[1::2]):
        t_min, t_max, label = times.split("\t")
        _, f_min, f_max = band.split("\t")
        rows.append((SPECIES[label], float(t_min), float(f_min), float(t_max), float(f_max)))
    return pd.DataFrame(rows, columns=["species_id", "t_min", "f_min", "t_max", "f_max"])


@pytest.fixture(scope="module")
def real_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    dataset = root / "dataset"
    (dataset / "train").mkdir(parents=True)
    (dataset / "test").mkdir()
    shutil.copy(SHARED_AUDIO / "spinetail.wav", dataset / "train" / "spinetail.wav")
    shutil.copy(SHARED_AUDIO / "birds_10s.wav", dataset / "train" / "birds10s.wav")
    events = audacity_events(SHARED_AUDIO / "spinetail_labels.txt").assign(recording_id="spinetail", songtype_id=1)
    # A detector firing on the 32 kHz birdsong, judged not to be a spinetail.
    false_positive = pd.DataFrame(
        [
            {
                "recording_id": "birds10s",
                "species_id": 0,
                "songtype_id": 1,
                "t_min": 2.0,
                "f_min": 2000.0,
                "t_max": 3.0,
                "f_max": 6000.0,
            }
        ]
    )
    columns = ["recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max"]
    events[columns].to_csv(dataset / "train_tp.csv", index=False)
    false_positive[columns].to_csv(dataset / "train_fp.csv", index=False)
    for wav in sorted(SHARED_AUDIO.glob("jura_*.wav"))[:2]:
        shutil.copy(wav, dataset / "test" / wav.name)
    pd.DataFrame({"recording_id": [p.stem for p in sorted((dataset / "test").iterdir())], "s0": 0.5, "s1": 0.5}).to_csv(
        dataset / "sample_submission.csv", index=False
    )
    params = committed_params()
    params["data"]["dataset_dir"] = str(dataset)
    # One window per event, so each window is one event's (auto would cut up to 8 of these few calls).
    params["etl"]["windows_per_event"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "etl.py"), "windows.h5"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return root, events, params


def test_one_window_per_event(real_dataset):
    root, events, params = real_dataset
    with h5py.File(root / "windows.h5") as file:
        is_event = file["event_species"][()] >= 0
        ids = list(file["recording_ids"].asstr()[()][is_event])
        assert ids.count("spinetail") == len(events)
        assert ids.count("birds10s") == 1
        spectrograms = file["spectrograms"][()]
        assert spectrograms.shape[1] == params["features"]["n_mels"]
        assert np.isfinite(spectrograms).all()
        # Real forest sound, not silence or padding: the windows carry energy.
        assert spectrograms.max() > -60


def test_labels_follow_the_label_track(real_dataset):
    root, _, _ = real_dataset
    with h5py.File(root / "windows.h5") as file:
        ids = file["recording_ids"].asstr()[()]
        targets, masks = file["targets"][()], file["masks"][()]
        species = file["event_species"][()]
    spinetail = (ids == "spinetail") & (species >= 0)
    # Each window is labelled with the species of the event it was cut around.
    assert (targets[spinetail, species[spinetail]] == 1).all()
    assert set(species[spinetail]) == {0, 1}
    # The false positive is a known absence of species 0.
    negative = (ids == "birds10s") & (species >= 0)
    assert targets[negative, 0].tolist() == [0] and masks[negative, 0].tolist() == [1]


def test_windows_stay_inside_short_recordings(real_dataset):
    root, _, _ = real_dataset
    with h5py.File(root / "windows.h5") as file:
        ids = file["recording_ids"].asstr()[()]
        ends = file["end_times"][()]
        starts = file["start_times"][()]
    assert (starts >= 0).all()
    for recording, name in [("spinetail", "spinetail.wav"), ("birds10s", "birds_10s.wav")]:
        assert ends[ids == recording].max() <= sf.info(SHARED_AUDIO / name).duration + 1e-6


# --- the whole pipeline on real audio -------------------------------------------------

SEGMENT_SECONDS = 13.0 / 4


def write_segments(samples, rate, events, start, stop, folder, prefix, pieces):
    """Cut ``samples[start:stop]`` seconds into ``pieces`` recordings; return their events."""
    rows = []
    edges = np.linspace(start, stop, pieces + 1)
    for i, (begin, end) in enumerate(itertools.pairwise(edges)):
        recording = f"{prefix}{i}"
        sf.write(folder / f"{recording}.wav", samples[int(begin * rate) : int(end * rate)], rate)
        inside = events[(events["t_min"] >= begin) & (events["t_max"] <= end)]
        rows.append(inside.assign(recording_id=recording, t_min=inside["t_min"] - begin, t_max=inside["t_max"] - begin))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def spinetail_pipeline(tmp_path_factory):
    project = make_project(
        tmp_path_factory.mktemp("spinetail") / "project",
        {
            "data": {"dataset_dir": "data/spinetail"},
            "model": {"filters": [8, 16, 32], "dense_units": 32},
            "augment": {"copies": 3},
            "train": {"epochs": 25, "batch_size": 8, "early_stopping_patience": 0, "learning_rate": 0.003},
            "submit": {"hop_seconds": 0.5},
        },
    )
    dataset = project / "data" / "spinetail"
    for folder in ["train", "test"]:
        (dataset / folder).mkdir(parents=True)
    samples, rate = sf.read(SHARED_AUDIO / "spinetail.wav", dtype="float32")
    duration = len(samples) / rate
    events = audacity_events(SHARED_AUDIO / "spinetail_labels.txt").assign(songtype_id=1)
    columns = ["recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max"]
    # Train on events in the first two thirds, test on the last third.
    train = write_segments(samples, rate, events, 0.0, 2 * duration / 3, dataset / "train", "spinetail_train", 4)
    truth = write_segments(samples, rate, events, 2 * duration / 3, duration, dataset / "test", "spinetail_test", 2)
    # Real forest soundscapes without either species: false positives to
    # train on, and negatives to rank against at test time.
    jura = sorted(SHARED_AUDIO.glob("jura_*.wav"))
    negatives = []
    for path in jura[:4]:
        shutil.copy(path, dataset / "train" / path.name)
        for species_id in SPECIES.values():
            negatives.append(
                {
                    "recording_id": path.stem,
                    "species_id": species_id,
                    "songtype_id": 1,
                    "t_min": 3.0 + species_id * 3,
                    "f_min": 2000.0,
                    "t_max": 4.5 + species_id * 3,
                    "f_max": 9000.0,
                }
            )
    for path in jura[4:]:
        shutil.copy(path, dataset / "test" / path.name)
    train[columns].to_csv(dataset / "train_tp.csv", index=False)
    pd.DataFrame(negatives)[columns].to_csv(dataset / "train_fp.csv", index=False)
    truth[columns].to_csv(dataset / "test_ground_truth.csv", index=False)
    test_ids = sorted(p.stem for p in (dataset / "test").iterdir())
    pd.DataFrame({"recording_id": test_ids, "s0": 0.5, "s1": 0.5}).to_csv(
        dataset / "sample_submission.csv", index=False
    )
    run(["dvc", "repro", "submit"], project)
    return project, truth


@pytest.mark.dvc
def test_pipeline_ranks_present_species_above_chance(spinetail_pipeline):
    project, truth = spinetail_pipeline
    submission = pd.read_csv(project / "data" / "submission.csv").set_index("recording_id")
    present = truth.groupby("recording_id")["species_id"].apply(set)
    negatives = [r for r in submission.index if r.startswith("jura")]
    assert len(negatives) == 4 and len(present) >= 1
    # For each species, how often a recording where it calls outscores a
    # soundscape without it (the area under the ROC curve; chance is 0.5).
    wins = []
    for species_id in SPECIES.values():
        column = f"s{species_id}"
        positives = [r for r, species in present.items() if species_id in species]
        wins += [submission.loc[p, column] > submission.loc[n, column] for p in positives for n in negatives]
    assert len(wins) >= 4
    assert np.mean(wins) > 0.5, f"present species ranked above negatives in {np.mean(wins):.2f} of pairs"
