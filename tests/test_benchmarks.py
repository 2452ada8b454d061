"""Tests of the benchmark's bookkeeping (the benchmark itself runs with python -m benchmarks)."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from benchmarks.archive import PER_CARD, archive_table, lay_out_archive
from benchmarks.measure import measure, work_seconds
from benchmarks.pipeline import THROUGHPUTS, marginal_table, table
from benchmarks.pseudo_label_loop import round_figures
from benchmarks.pseudo_label_loop import table as pseudo_label_table
from benchmarks.review_loop import make_loop_dataset, simulated_verdicts
from rainforest.detect.run import find_recordings
from tests.support.detector import write_recording


def test_work_seconds_reads_the_stage_log_line():
    output = "INFO etl: 976 events\nINFO etl: read data/demo (3 files, 1 GB); wrote x.h5 (5 MB); done in 9.5 s\n"
    assert work_seconds("etl", output) == 9.5
    assert work_seconds("original-etl", "original-etl: done in 12.0 s\n") == 12.0
    with pytest.raises(RuntimeError, match="submit"):
        work_seconds("submit", output)


def test_measure_reports_time_memory_and_output(tmp_path):
    # A child holding about 200 MB: the tree's peak memory must see it.
    code = "import time, numpy; a = numpy.ones(25_000_000); time.sleep(0.5); print('held')"
    seconds, peak, output = measure([sys.executable, "-c", code], tmp_path)
    assert seconds >= 0.5 and peak > 200e6 and "held" in output
    with pytest.raises(RuntimeError, match="failed"):
        measure([sys.executable, "-c", "raise SystemExit(3)"], tmp_path)


def _figures(scale: float) -> dict:
    figures = {"train recordings": 10 * scale, "test recordings": 10 * scale}
    for rate, (amount, stage) in THROUGHPUTS.items():
        figures[amount] = 100.0 * scale
        # A fixed second of start-up plus one second per 100 units of work.
        figures[f"{stage} seconds after imports"] = 1.0 + scale
        figures[rate] = figures[amount] / figures[f"{stage} seconds after imports"]
    return figures


def test_marginal_throughput_leaves_out_the_fixed_cost():
    small, large = _figures(1.0), _figures(4.0)
    assert small["etl audio s / s"] == 50.0 and large["etl audio s / s"] == 80.0
    rows = marginal_table(small, large)
    assert "| etl audio s / s | 100.0 |" in rows and "| submit audio s / s / BirdNET audio s / s | 1.00 |" in rows


def test_table_has_a_column_per_size_and_the_ratio():
    lines = table([_figures(1.0), _figures(4.0)]).splitlines()
    assert lines[0] == "| figure | 10 + 10 rec | 40 + 40 rec | ratio |"
    assert "| etl audio s / s | 50.00 | 80.00 | 1.60 |" in lines


def test_the_archive_is_a_tree_of_cards_linking_to_the_sources_in_turn(tmp_path):
    sources = [tmp_path / "a.wav", tmp_path / "b.flac"]
    write_recording(sources[0], 8000, 1, 1.5, "WAV", "PCM_16")
    write_recording(sources[1], 8000, 1, 0.5, "FLAC", "PCM_16")
    n = PER_CARD + 3
    assert lay_out_archive(tmp_path / "archive", sources, n) == pytest.approx((n + 1) // 2 * 1.5 + n // 2 * 0.5)
    found = find_recordings([tmp_path / "archive"])
    assert (
        len(found) == n and list(found)[:2] == ["SD00/00000", "SD00/00001"] and list(found)[-1] == f"SD01/{n - 1:05d}"
    )
    assert found["SD00/00001"].resolve() == sources[1].resolve()
    assert archive_table([("x", "1")]).splitlines()[2] == "| x | 1 |"


def test_model_macs_counts_convolutions_and_dense_layers():
    import keras

    from benchmarks.training import model_macs

    inputs = keras.Input((8, 10, 1))
    conv = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8 x 10 x 4 outputs of 3 x 3 x 1 each
    pooled = keras.layers.GlobalAveragePooling2D()(conv)
    model = keras.Model(inputs, keras.layers.Dense(5)(pooled))  # 5 outputs of 4 each
    assert model_macs(model, (8, 10, 1)) == 8 * 10 * 4 * 9 + 5 * 4


def test_the_review_loop_keeps_labels_of_recordings_taken_in_turn_from_each_species(tmp_path):
    demo = tmp_path / "data/demo"
    for folder, names in {"train": ["r0", "r1", "r2"], "test": ["t0"]}.items():
        for name in names:
            write_recording(demo / folder / f"{name}.flac", 8000, 1, 0.5, "FLAC", "PCM_16")
    header = "recording_id,species_id,songtype_id,t_min,f_min,t_max,f_max\n"
    (demo / "train_tp.csv").write_text(
        header + "r0,0,1,1.0,500,2.0,900\nr2,0,1,1.0,500,2.0,900\nr1,1,1,1.0,500,2.0,900\n"
    )
    (demo / "train_fp.csv").write_text(header + "r1,0,1,1.0,500,2.0,900\nr2,1,1,1.0,500,2.0,900\n")
    (demo / "sample_submission.csv").write_text("recording_id,s0,s1\nt0,0,0\n")
    loop = tmp_path / "data/loop"
    # Species 0's first recording, then species 1's: r2, species 0's second, is left for the pool.
    assert make_loop_dataset(demo, loop, 2) == ["r2"]
    assert (loop / "train_tp.csv").read_text() == header + "r0,0,1,1.0,500,2.0,900\nr1,1,1,1.0,500,2.0,900\n"
    assert (loop / "train_fp.csv").read_text() == header + "r1,0,1,1.0,500,2.0,900\n"
    assert (loop / "train/r2.flac").samefile(demo / "train/r2.flac") and (loop / "sample_submission.csv").exists()


def test_the_simulated_reviewer_says_yes_where_a_call_labels_the_window(tmp_path):
    calls = pd.DataFrame(
        {"recording_id": ["r2", "r2"], "species_id": [1, 0], "t_min": [1.0, 5.0], "t_max": [2.0, 5.2], "present": True}
    )
    chosen = pd.DataFrame(
        {
            "recording": "r2",
            "start": [0.5, 3.0, 4.0, 0.5],
            "end": [2.5, 5.0, 6.0, 2.5],
            "species": ["s1", "s1", "s0", "s0"],
        }
    )
    verdicts = simulated_verdicts(chosen, calls, {"r2": tmp_path / "r2.flac"}, 2)
    assert verdicts["verdict"].tolist() == ["yes", "no", "yes", "no"]
    assert set(verdicts["file"]) == {str(tmp_path / "r2.flac")}


def test_the_pseudo_label_loop_reads_each_rounds_figures_and_tabulates_their_spread(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "rounds.json").write_text(
        '{"round_0": {"lwlrap": 0.5}, "round_1": {"lwlrap": 0.6, "positives": 4, "absences": 10}}'
    )
    (metrics / "test.json").write_text(
        '{"lwlrap": 0.7, "rounds": {"round_0": {"test_lwlrap": 0.65}, "round_1": {"test_lwlrap": 0.7}}}'
    )
    figures = round_figures(tmp_path)
    assert figures == [
        {"validation": 0.5, "test": 0.65, "positives": 0, "absences": 0},
        {"validation": 0.6, "test": 0.7, "positives": 4, "absences": 10},
    ]
    other = [dict(round_, test=round_["test"] + 0.1) for round_ in figures]
    lines = pseudo_label_table([figures, other]).splitlines()
    assert lines[2] == "| 0 | 0.500 ± 0.000 | 0.700 ± 0.071 | 0 | 0 |"
    assert lines[3] == "| 1 | 0.600 ± 0.000 | 0.750 ± 0.071 | 4 | 10 |"
    # No rounds: round 0's figures are evaluate's and submit's.
    (metrics / "rounds.json").write_text("{}")
    (metrics / "validation.json").write_text('{"lwlrap": 0.55}')
    assert round_figures(tmp_path) == [{"validation": 0.55, "test": 0.7, "positives": 0, "absences": 0}]
