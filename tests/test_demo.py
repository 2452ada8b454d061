"""Tests of the demo-data generator (the package rainforest/synthetic/)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import find_peaks, stft

from rainforest.config import DemoSettings
from rainforest.errors import LabelError
from rainforest.synthetic.backgrounds import BACKGROUND_RMS_RANGE, synthesize_background
from rainforest.synthetic.call_models import (
    CALL_SHAPES,
    DURATION_JITTER,
    CallShape,
    draw_call_shape,
    species_call_models,
)
from rainforest.synthetic.call_synthesis import PITCH_JITTER_LIMIT, synthesize_call
from rainforest.synthetic.dataset import (
    PEAK_LIMIT,
    RecordingPlan,
    make_demo_dataset,
    plan_recordings,
    render_recording,
    to_pcm16,
)
from rainforest.synthetic.profiles import (
    DEFAULT_PROFILES_PATH,
    PROFILE_COLUMNS,
    load_species_profiles,
    species_profiles_from_labels,
)
from rainforest.synthetic.profiles import main as profiles_main

N_SPECIES = 24
TINY = {
    "seed": 5,
    "n_train_recordings": 6,
    "n_test_recordings": 3,
    "duration_seconds": 10.0,
    "sample_rate": 48000,
    "snr_db": (-12.0, 6.0),
    "lookalikes_per_recording": 2.0,
    "max_species_per_test_recording": 3,
}


def tiny_settings(**overrides) -> DemoSettings:
    return DemoSettings(**{**TINY, **overrides})


def read_events(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"recording_id": str})


@pytest.fixture(scope="module")
def profiles() -> pd.DataFrame:
    return load_species_profiles()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, profiles) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    make_demo_dataset(out, tiny_settings(), profiles)
    return out


@pytest.fixture(scope="module")
def loud_dataset(tmp_path_factory, profiles) -> Path:
    """Every call at +10 dB broadband SNR, a couple of recordings longer."""
    out = tmp_path_factory.mktemp("loud") / "data"
    make_demo_dataset(out, tiny_settings(seed=9, snr_db=(10.0, 10.0), duration_seconds=20.0), profiles)
    return out


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- layout -------------------------------------------------------------------


def test_layout_and_exact_columns(dataset):
    assert sorted(p.name for p in dataset.iterdir()) == [
        "sample_submission.csv",
        "test",
        "test_ground_truth.csv",
        "train",
        "train_fp.csv",
        "train_tp.csv",
    ]
    for name in ("train_tp.csv", "train_fp.csv", "test_ground_truth.csv"):
        header = (dataset / name).read_text().splitlines()[0]
        assert header == "recording_id,species_id,songtype_id,t_min,f_min,t_max,f_max", name
    submission = pd.read_csv(dataset / "sample_submission.csv", dtype={"recording_id": str})
    assert list(submission.columns) == ["recording_id"] + [f"s{i}" for i in range(N_SPECIES)]
    assert (submission.iloc[:, 1:] == 0.5).all().all()
    assert len(submission) == TINY["n_test_recordings"]


def test_ids_unique_and_files_match_csv_rows(dataset):
    train_ids = {p.stem for p in (dataset / "train").iterdir()}
    test_ids = {p.stem for p in (dataset / "test").iterdir()}
    assert all(p.suffix == ".flac" for p in (dataset / "train").iterdir())
    assert len(train_ids) == TINY["n_train_recordings"] and len(test_ids) == TINY["n_test_recordings"]
    assert not train_ids & test_ids
    assert all(re.fullmatch(r"[0-9a-f]{9}", i) for i in train_ids | test_ids)
    tp = read_events(dataset / "train_tp.csv")
    fp = read_events(dataset / "train_fp.csv")
    # Every train recording holds a species; every row names an existing file.
    assert set(tp["recording_id"]) == train_ids
    assert set(fp["recording_id"]) <= train_ids
    truth = read_events(dataset / "test_ground_truth.csv")
    assert set(truth["recording_id"]) <= test_ids
    submission = pd.read_csv(dataset / "sample_submission.csv", dtype={"recording_id": str})
    assert set(submission["recording_id"]) == test_ids and submission["recording_id"].is_unique


def test_audio_is_mono_pcm16_flac_of_the_right_rate_and_length(dataset):
    expected_frames = int(TINY["duration_seconds"] * TINY["sample_rate"])
    for path in sorted(dataset.glob("*/*.flac")):
        info = sf.info(path)
        assert (info.format, info.subtype, info.channels) == ("FLAC", "PCM_16", 1), path
        assert info.samplerate == TINY["sample_rate"]
        samples, rate = sf.read(path, dtype="float32")
        assert samples.ndim == 1 and samples.size == expected_frames and rate == TINY["sample_rate"]
        peak = np.abs(samples).max()
        assert 0.01 < peak <= PEAK_LIMIT + 1e-4, path
        assert 0.003 < np.sqrt(np.mean(samples**2)) < 0.1, path


# --- events -------------------------------------------------------------------


def test_events_lie_inside_the_recording_and_the_species_band(dataset, profiles):
    band = profiles.set_index("species_id")
    tolerance = PITCH_JITTER_LIMIT + 1e-3
    for name in ("train_tp.csv", "test_ground_truth.csv"):
        events = read_events(dataset / name)
        assert len(events) > 0, name
        assert (events["t_min"] >= 0).all() and (events["t_max"] <= TINY["duration_seconds"]).all()
        assert (events["t_max"] > events["t_min"]).all() and (events["f_max"] > events["f_min"]).all()
        low = band.loc[events["species_id"], "f_min"].to_numpy()
        high = band.loc[events["species_id"], "f_max"].to_numpy()
        assert (np.abs(events["f_min"] / low - 1) <= tolerance).all(), name
        assert (np.abs(events["f_max"] / high - 1) <= tolerance).all(), name
        assert (events["songtype_id"] == band.loc[events["species_id"], "songtype_id"].to_numpy()).all()
        # Durations stay near the species' real durations.
        durations = (events["t_max"] - events["t_min"]).to_numpy()
        shortest = band.loc[events["species_id"], "duration_q10"].to_numpy() * (1 - DURATION_JITTER) - 0.01
        longest = band.loc[events["species_id"], "duration_q90"].to_numpy() * (1 + DURATION_JITTER) + 0.01
        assert ((durations >= shortest) & (durations <= longest)).all(), name


def test_fp_rows_name_species_whose_band_overlaps_the_lookalike(dataset, profiles):
    fp = read_events(dataset / "train_fp.csv")
    tp = read_events(dataset / "train_tp.csv")
    assert len(fp) > 0
    band = profiles.set_index("species_id")
    low = band.loc[fp["species_id"], "f_min"].to_numpy()
    high = band.loc[fp["species_id"], "f_max"].to_numpy()
    overlap = np.minimum(fp["f_max"], high) - np.maximum(fp["f_min"], low)
    assert (overlap > 0.3 * (high - low)).all()
    # A lookalike imitates a species absent from its recording.
    present = set(zip(tp["recording_id"], tp["species_id"], strict=True))
    assert not any((r, s) in present for r, s in zip(fp["recording_id"], fp["species_id"], strict=True))
    assert (fp["t_min"] >= 0).all() and (fp["t_max"] <= TINY["duration_seconds"]).all()


def test_test_ground_truth_matches_test_audio_and_some_recordings_are_empty(dataset):
    truth = read_events(dataset / "test_ground_truth.csv")
    test_ids = {p.stem for p in (dataset / "test").glob("*.flac")}
    assert len(truth) > 0
    assert set(truth["recording_id"]) <= test_ids
    assert len(set(truth["recording_id"])) < len(test_ids)  # at least one holds no species
    per_recording = truth.groupby("recording_id")["species_id"].nunique()
    assert per_recording.max() <= TINY["max_species_per_test_recording"]


def test_tp_band_energy_exceeds_a_stretch_without_calls(loud_dataset):
    """At +10 dB, a call's band holds clearly more energy than the same band without calls."""
    tp = read_events(loud_dataset / "train_tp.csv")
    fp = read_events(loud_dataset / "train_fp.csv")
    everything = pd.concat([tp, fp])
    ratios = []
    for recording_id, events in tp.groupby("recording_id"):
        samples, rate = sf.read(loud_dataset / "train" / f"{recording_id}.flac", dtype="float64")
        freqs, times, spectrum = stft(samples, rate, nperseg=1024, noverlap=512)
        power = np.abs(spectrum) ** 2
        busy = np.zeros(times.size, dtype=bool)
        for row in everything[everything["recording_id"] == recording_id].itertuples():
            busy |= (times >= row.t_min - 0.1) & (times <= row.t_max + 0.1)
        for row in events.itertuples():
            in_band = (freqs >= row.f_min) & (freqs <= row.f_max)
            band_power = power[in_band].sum(axis=0)
            during = band_power[(times >= row.t_min) & (times <= row.t_max)].mean()
            quiet = band_power[~busy]
            if quiet.size < 10:
                continue
            ratios.append(during / np.median(quiet))
    assert len(ratios) >= 5
    ratios = np.array(ratios)
    assert np.median(ratios) > 5.0
    assert (ratios > 2.0).mean() >= 0.9


def test_call_snr_follows_the_documented_broadband_definition(profiles):
    settings = tiny_settings(snr_db=(-6.0, 3.0))
    models = species_call_models(profiles)
    plan = RecordingPlan("000000abc", "train", 0, (4, 11), (2, 2), ())
    rng_key = [1, 2, 3, 4]
    mix, events = render_recording(plan, models, settings, np.random.default_rng(rng_key))
    n = mix.size
    background = synthesize_background(n, settings.sample_rate, np.random.default_rng(rng_key))
    if np.abs(mix).max() >= PEAK_LIMIT - 1e-6:
        pytest.skip("recording was scaled down; the check needs the unscaled mix")
    assert len(events) == 4
    spans = [(round(e.t_min * settings.sample_rate), round(e.t_max * settings.sample_rate)) for e in events]
    for event, (a, b) in zip(events, spans, strict=True):
        if any(a < d and c < b for c, d in spans if (c, d) != (a, b)):
            continue  # another call overlaps
        call_power = np.mean((mix[a:b].astype(np.float64) - background[a:b]) ** 2)
        measured = 10 * np.log10(call_power / np.mean(background[a:b].astype(np.float64) ** 2))
        assert settings.snr_db[0] <= event.snr_db <= settings.snr_db[1]
        assert measured == pytest.approx(event.snr_db, abs=0.3)


# --- determinism, independence, atomicity ----------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path, dataset, profiles):
    again = tmp_path / "again"
    make_demo_dataset(again, tiny_settings(), profiles)
    first, second = _file_bytes(dataset), _file_bytes(again)
    assert first.keys() == second.keys()
    assert all(first[name] == second[name] for name in first)
    other = tmp_path / "other"
    make_demo_dataset(other, tiny_settings(seed=6), profiles)
    third = _file_bytes(other)
    assert (
        read_events(other / "train_tp.csv")["recording_id"].tolist()
        != read_events(dataset / "train_tp.csv")["recording_id"].tolist()
    )
    flac_first = sorted(v for k, v in first.items() if k.endswith(".flac"))
    flac_third = sorted(v for k, v in third.items() if k.endswith(".flac"))
    assert not set(flac_first) & set(flac_third)


def test_a_recording_depends_only_on_its_own_rng(dataset, profiles):
    settings = tiny_settings()
    plans = plan_recordings(settings, N_SPECIES)
    models = species_call_models(profiles)
    plan = [p for p in plans if p.split == "test"][-1]  # made last; rendered first here
    rng = np.random.default_rng([settings.seed, 1, 1, plan.index])
    samples, _ = render_recording(plan, models, settings, rng)
    stored, _ = sf.read(dataset / "test" / f"{plan.recording_id}.flac", dtype="int16")
    np.testing.assert_array_equal(to_pcm16(samples), stored)


def test_existing_out_dir_is_replaced_and_no_temporary_dir_is_left(tmp_path, profiles):
    out = tmp_path / "data"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    make_demo_dataset(out, tiny_settings(n_train_recordings=2, n_test_recordings=1), profiles)
    assert not (out / "stale.txt").exists()
    assert (out / "train_tp.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_failure_leaves_the_old_dataset_and_no_temporary_dir(tmp_path, profiles, monkeypatch):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    real = render_recording
    monkeypatch.setattr("rainforest.synthetic.dataset.render_recording", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        make_demo_dataset(out, tiny_settings(n_train_recordings=2, n_test_recordings=1), profiles)
    assert (out / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


# --- planning ---------------------------------------------------------------------


def test_default_sized_plan_spreads_species_evenly():
    settings = tiny_settings(n_train_recordings=240, n_test_recordings=80, lookalikes_per_recording=1.5)
    plans = plan_recordings(settings, N_SPECIES)
    train = [p for p in plans if p.split == "train"]
    recordings = np.zeros(N_SPECIES)
    calls = np.zeros(N_SPECIES)
    lookalikes = np.zeros(N_SPECIES)
    for plan in train:
        assert 1 <= len(plan.species) <= 2 and len(set(plan.species)) == len(plan.species)
        assert all(1 <= c <= 3 for c in plan.calls)
        assert not set(plan.lookalike_targets) & set(plan.species)
        for species, n_calls in zip(plan.species, plan.calls, strict=True):
            recordings[species] += 1
            calls[species] += n_calls
        for target in plan.lookalike_targets:
            lookalikes[target] += 1
    assert recordings.min() >= 4
    assert sum(len(p.species) == 1 for p in train) > 0.6 * len(train)
    assert calls.max() <= 1.3 * calls.mean() and calls.min() >= 0.7 * calls.mean()
    assert lookalikes.min() >= 5
    test = [p for p in plans if p.split == "test"]
    assert any(not p.species for p in test)
    assert max(len(p.species) for p in test) <= 3
    ids = [p.recording_id for p in plans]
    assert len(set(ids)) == len(ids) == 320


# --- sounds -------------------------------------------------------------------------


def _shape_features(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    freqs, _, spectrum = stft(samples, sample_rate, nperseg=2048, noverlap=1536)
    power = np.abs(spectrum) ** 2
    active = power.sum(axis=0) > 0.05 * power.sum(axis=0).max()
    band = power[(freqs >= 2000) & (freqs <= 6000)][:, active] + 1e-20
    flatness = np.exp(np.mean(np.log(band), axis=0)) / np.mean(band, axis=0)
    peaks = [len(find_peaks(column, height=0.1 * column.max(), distance=4)[0]) for column in power[:, active].T]
    hop = int(0.002 * sample_rate)  # 2 ms envelope
    envelope = np.sqrt(np.mean(samples[: samples.size // hop * hop].reshape(-1, hop) ** 2, axis=1))
    core = envelope[envelope.size // 10 : -envelope.size // 10]
    modulation = np.abs(np.fft.rfft(core - core.mean()))
    modulation_freqs = np.fft.rfftfreq(core.size, 0.002)
    usable = modulation_freqs > 3
    return {
        "flatness": float(np.median(flatness)),
        "peaks": float(np.median(peaks)),
        "envelope_cv": float(core.std() / core.mean()),
        "pulse_rate": float(modulation_freqs[usable][np.argmax(modulation[usable])]),
    }


def test_call_shapes_really_differ():
    sample_rate = 48000
    shapes = {
        "whistle": CallShape("whistle", sweep="up"),
        "harmonic": CallShape("harmonic", n_harmonics=5, glide=0.01),
        "trill": CallShape("trill", rate=12.0, duty=0.5),
        "croak": CallShape("croak", rate=30.0, n_harmonics=6, sharpness=2.0, noise_share=0.2),
        "clicks": CallShape("clicks", rate=60.0, click_seconds=0.001),
    }
    assert set(shapes) == set(CALL_SHAPES)
    features = {}
    for kind, shape in shapes.items():
        samples = synthesize_call(shape, 1.5, 2000.0, 6000.0, sample_rate=sample_rate, rng=np.random.default_rng(0))
        assert samples.size == round(1.5 * sample_rate)
        assert np.mean(samples**2) == pytest.approx(1.0, rel=1e-6)
        assert abs(samples[0]) < 0.05 and abs(samples[-1]) < 0.05  # faded
        features[kind] = _shape_features(samples, sample_rate)
    whistle, harmonic, trill, croak, clicks = (features[k] for k in CALL_SHAPES)
    # Tonal, steady calls: one line versus a stack of lines.
    assert whistle["peaks"] == 1 and whistle["envelope_cv"] < 0.4 and whistle["flatness"] < 0.05
    assert harmonic["peaks"] >= 3 and harmonic["envelope_cv"] < 0.4 and harmonic["flatness"] < 0.05
    # Pulsed calls: the envelope repeats at the shape's rate.
    assert trill["envelope_cv"] > 0.8 and trill["peaks"] == 1
    assert trill["pulse_rate"] / 12.0 == pytest.approx(round(trill["pulse_rate"] / 12.0), abs=0.05)
    assert croak["envelope_cv"] > 0.5 and croak["peaks"] >= 3
    assert croak["pulse_rate"] == pytest.approx(30.0, rel=0.05)
    assert clicks["pulse_rate"] == pytest.approx(60.0, rel=0.05)
    # Clicks are noise-like within the band; nothing else is as flat.
    assert clicks["flatness"] > 0.3
    assert clicks["flatness"] > 1.5 * max(f["flatness"] for k, f in features.items() if k != "clicks")


def test_calls_stay_inside_their_band():
    sample_rate = 48000
    rng = np.random.default_rng(3)
    for kind in CALL_SHAPES:
        shape = draw_call_shape(kind, rng)
        samples = synthesize_call(shape, 1.0, 3000.0, 5000.0, sample_rate=sample_rate, rng=rng)
        spectrum = np.abs(np.fft.rfft(samples)) ** 2
        freqs = np.fft.rfftfreq(samples.size, 1 / sample_rate)
        inside = spectrum[(freqs >= 2700) & (freqs <= 5300)].sum()
        assert inside / spectrum.sum() > 0.95, kind


def test_species_models_use_every_shape_several_times_and_are_fixed(profiles):
    models = species_call_models(profiles)
    assert [m.species_id for m in models] == list(range(N_SPECIES))
    kinds = pd.Series([m.shape.kind for m in models]).value_counts()
    assert set(kinds.index) == set(CALL_SHAPES) and kinds.min() >= 4
    assert models == species_call_models(profiles)
    # Species of one shape differ in their parameters.
    trills = [m.shape for m in models if m.shape.kind == "trill"]
    assert len({round(s.rate, 3) for s in trills}) == len(trills)
    for model in models:
        assert model.duration_low <= model.duration_median <= model.duration_high


def test_background_is_varied_and_at_a_realistic_level():
    sample_rate = 48000
    n = 5 * sample_rate
    levels, spectra = [], []
    for seed in range(6):
        background = synthesize_background(n, sample_rate, np.random.default_rng(seed))
        assert background.dtype == np.float32 and background.size == n
        rms = float(np.sqrt(np.mean(background.astype(np.float64) ** 2)))
        assert BACKGROUND_RMS_RANGE[0] * 0.99 <= rms <= BACKGROUND_RMS_RANGE[1] * 1.01
        levels.append(rms)
        spectrum = np.abs(np.fft.rfft(background)) ** 2
        spectra.append(np.log10(np.add.reduceat(spectrum, np.arange(0, spectrum.size, spectrum.size // 32))))
    assert len({round(v, 6) for v in levels}) == 6
    spectra = np.array(spectra)
    distances = [np.abs(spectra[i] - spectra[j]).mean() for i in range(6) for j in range(i + 1, 6)]
    assert min(distances) > 0.05


# --- profiles -------------------------------------------------------------------------


@pytest.mark.real_audio
def test_committed_profiles_equal_those_derived_from_the_competition_labels(profiles, shared_file):
    # The competition labels are only needed to check the table.
    source = shared_file("rfcx/train_tp.csv")
    derived = species_profiles_from_labels(pd.read_csv(source))
    committed = pd.read_csv(DEFAULT_PROFILES_PATH)
    pd.testing.assert_frame_equal(committed, derived)
    assert len(committed) == N_SPECIES
    pd.testing.assert_frame_equal(profiles, derived)


@pytest.mark.real_audio
def test_profiles_cli_regenerates_the_table(tmp_path, shared_file):
    source = shared_file("rfcx/train_tp.csv")
    out = tmp_path / "profiles.csv"
    assert profiles_main(["profiles", str(source), str(out)]) == 0
    assert out.read_bytes() == DEFAULT_PROFILES_PATH.read_bytes()


def test_species_profiles_from_labels_on_a_small_table():
    tp = pd.DataFrame(
        {
            "recording_id": ["a", "b", "c", "d"],
            "species_id": [1, 1, 1, 0],
            "songtype_id": [4, 4, 1, 1],
            "t_min": [0.0, 1.0, 2.0, 5.0],
            "f_min": [100.0, 200.0, 300.0, 50.0],
            "t_max": [1.0, 3.0, 5.0, 5.5],
            "f_max": [1000.0, 2000.0, 3000.0, 500.0],
        }
    )
    table = species_profiles_from_labels(tp)
    assert list(table.columns) == PROFILE_COLUMNS
    assert table["species_id"].tolist() == [0, 1]
    one = table.iloc[1]
    assert (one["n_events"], one["f_min"], one["f_max"], one["songtype_id"]) == (3, 200.0, 2000.0, 4)
    assert one["duration_median"] == 2.0 and one["duration_q10"] == 1.2 and one["duration_q90"] == 2.8


def test_load_species_profiles_rejects_bad_tables(tmp_path):
    missing = tmp_path / "missing.csv"
    with pytest.raises(LabelError, match="not found"):
        load_species_profiles(missing)
    table = load_species_profiles()
    gap = tmp_path / "gap.csv"
    table[table["species_id"] != 3].to_csv(gap, index=False)
    with pytest.raises(LabelError, match="0 .. N-1"):
        load_species_profiles(gap)
    short = tmp_path / "short.csv"
    table.drop(columns="duration_q90").to_csv(short, index=False)
    with pytest.raises(LabelError, match="duration_q90"):
        load_species_profiles(short)
