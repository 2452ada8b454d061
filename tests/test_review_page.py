"""The review page: the chosen detections as cards with spectrogram, audio and verdict buttons.

The page is made from a real ``rainforest-detect`` output folder (the tiny
model's ``--all`` detections over two recordings, :mod:`tests.support.review`)
and read back as HTML; the browser's side (clicks, export, reload) is tested
in ``tests/test_review_browser.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from matplotlib.patches import Rectangle

from rainforest.audio import Recording
from rainforest.card import ModelCard
from rainforest.detect.run import recording_files
from rainforest.detect.thresholds import Detector, SpeciesDetector, load_detector
from rainforest.events.verdicts import VERDICT_COLUMNS
from rainforest.figures import spectrogram_extent
from rainforest.review.cli import review
from rainforest.review.page import excerpt_figure, excerpt_span, review_rows, write_review_page
from rainforest.review.selection import merge_detected, select_for_review
from rainforest.spectrogram import log_mel_spectrogram
from tests.support.detector import BANDS, SCRIPT, SPECIES, restored_logging
from tests.support.review import LABELS, RECORDINGS, detections_folder
from tests.support.settings import FEATURES, RATE, SPECTROGRAM_SETTINGS

#: The installed console script, beside rainforest-detect.
REVIEW_SCRIPT = SCRIPT.with_name("rainforest-review")
TOP, NEAR = 2, 3


class PageParser(HTMLParser):
    """The cards of a review page: per ``data-row``, its attributes and text,
    its image and audio sources and its verdict buttons; and every URL the
    page loads (``src`` and ``href`` attributes)."""

    def __init__(self):
        super().__init__()
        self.cards: dict[int, dict] = {}
        self.urls: list[str] = []
        self.scripts: dict[str, str] = {}
        self._card: dict | None = None
        self._script: str | None = None
        self._species: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.urls += [attrs[name] for name in ("src", "href") if attrs.get(name)]
        if tag == "section":
            self._species = attrs.get("data-species")
        if tag == "article":
            self._card = self.cards[int(attrs["data-row"])] = {
                "species_section": self._species,
                "text": "",
                "buttons": [],
                "img": None,
                "audio": None,
            }
        elif self._card is not None and tag in ("img", "audio"):
            self._card[tag] = attrs["src"]
        elif self._card is not None and tag == "button":
            self._card["buttons"].append(attrs["data-verdict"])
        if tag == "script":
            self._script = attrs.get("id", "")
            self.scripts[self._script] = ""

    def handle_endtag(self, tag):
        if tag == "article":
            self._card = None
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._card is not None:
            self._card["text"] += data + " "
        if self._script is not None:
            self.scripts[self._script] += data


def parse(page: Path) -> PageParser:
    parser = PageParser()
    parser.feed(page.read_text())
    return parser


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    return detections_folder(tmp_path_factory.mktemp("review"))


@pytest.fixture(scope="module")
def page(made):
    return write_review_page(made["detections"], model=made["model"], detector=made["detector"], top=TOP, near=NEAR)


@pytest.fixture(scope="module")
def expected(made) -> pd.DataFrame:
    """What select_for_review chooses with the detector's thresholds, of the calls merged: the cards, in order."""
    detections = pd.read_csv(made["detections"] / "detections.csv", dtype={"recording": str, "species": str})
    detector = load_detector(made["detector"], SPECIES)
    thresholds = {entry.species: entry.threshold for entry in detector.species}
    return select_for_review(merge_detected(detections, thresholds), thresholds, top=TOP, near=NEAR)


def copy_of(made, tmp_path) -> Path:
    """A copy of the detections folder (journal included) to change."""
    return Path(shutil.copytree(made["detections"], tmp_path / "detections"))


def run_review(*argv) -> int:
    with restored_logging():
        return review([str(arg) for arg in argv])


# --- what the page shows --------------------------------------------------------------------


def test_every_chosen_detection_has_a_card_with_its_spectrogram_audio_and_buttons(page, expected, made):
    cards = parse(page.path).cards
    assert sorted(cards) == list(range(1, len(expected) + 1))
    assert page.shown == {
        "top": int((expected["reason"] == "top").sum()),
        "near": int((expected["reason"] == "near").sum()),
        "bin": 0,
    }
    assert page.shown["top"] > 0 and page.shown["near"] > 0
    files = recording_files(made["detections"])
    for number, row in zip(cards, expected.itertuples()):
        card = cards[number]
        assert card["img"] == f"excerpts/{number:04d}.png" and (page.path.parent / card["img"]).is_file()
        assert card["audio"] == f"excerpts/{number:04d}.wav" and (page.path.parent / card["audio"]).is_file()
        assert card["buttons"] == ["yes", "no", "unsure"]
        assert card["species_section"] == row.species
        text = " ".join(card["text"].split())
        label = LABELS[SPECIES.index(row.species)]
        assert f"{label} ({row.species})" in text  # the name, as text (HTMLParser unescapes it), and the id
        assert f"score {row.score:.4f}" in text
        assert f"reason {row.reason}" in text
        assert f"recording {row.recording}" in text
        assert f"{row.start:.3f}–{row.end:.3f} s" in text  # noqa: RUF001 (the page writes an en dash)
        assert f"Raven {row.recording}.Table.1.selections.txt, begin {row.start:.3f} s" in text
        threshold = load_detector(made["detector"], SPECIES).species[SPECIES.index(row.species)].threshold
        assert ("threshold none" in text) if threshold is None else (f"threshold {threshold:.4f}" in text)
        assert Path(files[row.recording]).is_file()


def test_cards_are_grouped_by_species_in_the_models_order(page):
    sections = [card["species_section"] for card in parse(page.path).cards.values()]
    assert sections == sorted(sections, key=SPECIES.index)
    assert set(sections) == set(SPECIES)


def test_each_species_is_led_by_its_best_detection_as_a_reference(page, made):
    text = page.path.read_text()
    detections = pd.read_csv(made["detections"] / "detections.csv", dtype={"recording": str, "species": str})
    for number, species in enumerate(SPECIES):
        section = text.split(f'data-species="{species}"')[1].split("</section>")[0]
        assert section.index('<figure class="reference">') < section.index("<article")
        best = detections.loc[detections["species"] == species, "score"].max()
        assert f"highest-scoring detection in the run, score\n{best:.4f}," in section
        for kind in ("png", "wav"):
            assert f'src="excerpts/reference-{number:03d}.{kind}"' in section
            assert (page.path.parent / "excerpts" / f"reference-{number:03d}.{kind}").is_file()


def test_page_loads_nothing_from_the_network(page):
    parser = parse(page.path)
    assert parser.urls and all(url.startswith("excerpts/") for url in parser.urls)
    text = page.path.read_text()
    assert "http://" not in text and "https://" not in text and "<link" not in text
    assert "<style>" in text and "localStorage" in text and "Blob" in text
    assert 'download="verdicts.csv"' in text and "Export verdicts (CSV)" in text


def test_page_carries_the_exported_columns_of_every_card(page, expected, made):
    data = json.loads(parse(page.path).scripts["review-data"])
    assert data["columns"] == VERDICT_COLUMNS
    assert [list(row) for row in data["rows"]] == [VERDICT_COLUMNS[:-1]] * len(expected)
    files = recording_files(made["detections"])
    for row, chosen in zip(data["rows"], expected.itertuples()):
        assert row["recording"] == chosen.recording and row["file"] == str(files[chosen.recording])
        assert float(row["start"]) == chosen.start and float(row["score"]) == chosen.score
        assert row["label"] == LABELS[SPECIES.index(chosen.species)]
        assert (float(row["low_freq"]), float(row["high_freq"])) == BANDS[SPECIES.index(chosen.species)]
        assert row["reason"] == chosen.reason


def test_excerpts_are_the_window_with_context_at_the_models_rate(page, expected, made):
    files = recording_files(made["detections"])
    for number, row in enumerate(expected.itertuples(), start=1):
        wav = page.path.parent / "excerpts" / f"{number:04d}.wav"
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
        with Recording(files[row.recording], RATE) as recording:
            span = excerpt_span(
                row.start, row.end, context_seconds=1.0, duration=recording.n_samples / RATE, sample_rate=RATE
            )
            audio = recording.read(span.first_sample, span.n_samples)
        assert span.start == pytest.approx(max(0.0, row.start - 1.0), abs=1 / RATE)
        samples, _ = sf.read(wav, dtype="float32")
        np.testing.assert_allclose(samples, audio, atol=1 / 32768 + 1e-6)
        png = (page.path.parent / "excerpts" / f"{number:04d}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and b"tEXt" not in png and b"matplotlib" not in png.lower()


def test_excerpt_span_stays_inside_the_recording():
    assert excerpt_span(2.0, 3.0, context_seconds=1.0, duration=10.0, sample_rate=100).n_samples == 300
    at_start = excerpt_span(0.0, 1.0, context_seconds=1.0, duration=10.0, sample_rate=100)
    assert (at_start.start, at_start.end) == (0.0, 2.0)
    at_end = excerpt_span(9.5, 10.0, context_seconds=2.0, duration=10.0, sample_rate=100)
    assert (at_end.start, at_end.end, at_end.first_sample) == (7.5, 10.0, 750)


def test_excerpt_figure_marks_the_window_and_the_band_in_seconds_and_hertz():
    span = excerpt_span(2.0, 3.0, context_seconds=1.0, duration=10.0, sample_rate=RATE)
    waveform = np.random.default_rng(0).normal(0, 0.1, span.n_samples).astype(np.float32)
    spectrogram = log_mel_spectrogram(waveform, SPECTROGRAM_SETTINGS)
    figure = excerpt_figure(
        spectrogram, span, window=(2.0, 3.0), band=(500.0, 2000.0), spectrogram_settings=SPECTROGRAM_SETTINGS, title="t"
    )
    axes = figure.axes[0]
    assert sorted(line.get_xdata()[0] for line in axes.get_lines()) == [2.0, 3.0]
    (box,) = [patch for patch in axes.patches if isinstance(patch, Rectangle)]
    low, high = librosa.hz_to_mel([500.0, 2000.0])
    assert (box.get_x(), box.get_width()) == (2.0, 1.0)
    assert box.get_y() == pytest.approx(low) and box.get_y() + box.get_height() == pytest.approx(high)
    assert "(s)" in axes.get_xlabel() and "(Hz)" in axes.get_ylabel()
    assert "1k" in [tick.get_text() for tick in axes.get_yticklabels()]
    # The view is the whole excerpt, 1 s to 4 s, to within a frame.
    assert axes.get_xlim() == spectrogram_extent(1.0, spectrogram.shape[1], SPECTROGRAM_SETTINGS)[:2]
    assert axes.get_xlim() == pytest.approx((1.0, 4.0), abs=FEATURES.n_fft / RATE)


def test_bins_draw_one_window_from_each_score_bin_that_holds_any():
    scores = [0.05, 0.12, 0.18, 0.55, 0.61, 0.97, 0.99]
    rows = pd.DataFrame(
        {"recording": [f"r{n}" for n in range(7)], "start": 0.0, "end": 1.0, "species": "s0", "score": scores}
    )
    chosen = select_for_review(rows, {"s0": 0.5}, top=1, bins=4, seed=3)
    assert list(chosen["reason"]) == ["top", "bin", "bin", "bin"]
    # The rest (0.05 .. 0.97) in bins of width 0.23: [0.05, 0.28) [0.28, 0.51) (empty) [0.51, 0.74) [0.74, 0.97].
    bins = sorted(chosen.loc[chosen["reason"] == "bin", "score"])
    assert bins[0] in scores[:3] and bins[1] in (0.55, 0.61) and bins[2] == 0.97
    assert chosen.equals(select_for_review(rows, {"s0": 0.5}, top=1, bins=4, seed=3))
    with pytest.raises(ValueError, match="bins must be 0 or more"):
        select_for_review(rows, {"s0": 0.5}, bins=-1)


def test_windows_of_one_call_are_merged_above_the_threshold_only():
    rows = pd.DataFrame(
        {
            "recording": "a",
            "start": [16.4, 17.4, 18.4, 19.4, 20.4, 40.0],
            "end": [18.4, 19.4, 20.4, 21.4, 22.4, 42.0],
            "species": ["s0"] * 5 + ["s1"],
            "score": [0.7, 0.9, 0.6, 0.2, 0.1, 0.55],
        }
    )
    merged = merge_detected(rows, {"s0": 0.5, "s1": None})
    # s0's three windows over its threshold are one call; those under it stay windows; s1's cut is 0.5.
    assert merged[["species", "start", "end", "score"]].values.tolist() == [
        ["s0", 16.4, 20.4, 0.9],
        ["s1", 40.0, 42.0, 0.55],
        ["s0", 19.4, 21.4, 0.2],
        ["s0", 20.4, 22.4, 0.1],
    ]


def test_label_is_empty_and_the_id_names_the_species_without_names():
    detections = pd.DataFrame(
        {"recording": ["a", "a"], "start": [0.0, 1.0], "end": [1.0, 2.0], "species": ["s1", "s1"], "score": [0.9, 0.2]}
    )
    detector = Detector(
        0.9, [SpeciesDetector(name, 0.5, "target_precision", 1.0, 1.0, *band) for name, band in zip(SPECIES, BANDS)]
    )
    rows, references = review_rows(
        detections,
        {"a": Path("/field/a.wav")},
        card=ModelCard(SPECTROGRAM_SETTINGS, SPECIES),
        detector=detector,
        top=1,
        near=1,
        source=Path("detections.csv"),
    )
    assert list(rows["label"]) == ["", ""] and list(rows["reason"]) == ["top", "near"]
    assert list(rows["file"]) == ["/field/a.wav"] * 2
    assert list(rows.columns[: len(VERDICT_COLUMNS) - 1]) == VERDICT_COLUMNS[:-1]
    assert list(references["score"]) == [0.9] and list(references["reason"]) == ["reference"]


def test_a_run_that_detected_nothing_gives_a_page_that_says_so(made, tmp_path):
    folder = copy_of(made, tmp_path)
    (folder / "detections.csv").write_text("recording,start,end,species,score\n")
    page = write_review_page(folder, model=made["model"], detector=made["detector"])
    assert page.shown == {"top": 0, "near": 0, "bin": 0}
    assert not parse(page.path).cards and "No detections to review." in page.path.read_text()
    assert not list((folder / "review" / "excerpts").iterdir())


# --- the same inputs, the same bytes ----------------------------------------------------------


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
    }


def test_rerun_writes_the_same_bytes_and_drops_excerpts_it_no_longer_shows(made, page, tmp_path):
    folder = copy_of(made, tmp_path)
    first = folder_bytes(folder / "review")
    write_review_page(folder, model=made["model"], detector=made["detector"], top=TOP, near=NEAR)
    assert folder_bytes(folder / "review") == first
    fewer = write_review_page(folder, model=made["model"], detector=made["detector"], top=1, near=0)
    cards = sum(fewer.shown.values())
    assert fewer.shown == {"top": cards, "near": 0, "bin": 0}
    # A reference for each species with a card.
    shown = {card["species_section"] for card in parse(fewer.path).cards.values()}
    stems = [f"{number:04d}" for number in range(1, cards + 1)] + [
        f"reference-{SPECIES.index(species):03d}" for species in shown
    ]
    assert sorted(path.name for path in (folder / "review" / "excerpts").iterdir()) == sorted(
        f"{stem}.{kind}" for stem in stems for kind in ("png", "wav")
    )


# --- the command and its errors -----------------------------------------------------------------


def test_command_explains_itself(capsys):
    with pytest.raises(SystemExit) as exit_code:
        review(["--help"])
    assert exit_code.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rainforest-review") and "examples:" in out
    assert "rainforest-review page detections" in out and "rainforest-review import" in out
    with pytest.raises(SystemExit):
        review(["page", "--help"])
    out = capsys.readouterr().out
    for option in ["--model", "--detector", "--top", "--near", "--bins", "--no-merge", "--context-seconds", "--all"]:
        assert option in out


def test_command_writes_the_page(made, tmp_path, capsys):
    folder = copy_of(made, tmp_path)
    shutil.rmtree(folder / "review")
    status = run_review(
        "page", folder, "--model", made["model"], "--top", "1", "--near", "1", "--bins", "2", "--context-seconds", "0.5"
    )
    assert status == 0
    cards = len(parse(folder / "review" / "index.html").cards)
    log = capsys.readouterr().err
    assert f"wrote {folder / 'review' / 'index.html'} ({cards} detection(s) to review: " in log
    assert " bin)" in log and " 0 bin)" not in log
    assert "open it in a browser" in log


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rainforest-review: error: ")
    return lines[0]


def test_a_folder_without_detections_says_to_run_rainforest_detect(made, tmp_path, capsys):
    assert run_review("page", tmp_path, "--model", made["model"]) == 1
    line = one_error_line(capsys)
    assert str(tmp_path) in line and "no detections.csv" in line and "run rainforest-detect" in line


def test_species_the_detector_does_not_know_are_refused(made, tmp_path, capsys):
    folder = copy_of(made, tmp_path)
    table = (folder / "detections.csv").read_text()
    (folder / "detections.csv").write_text(table.replace(",s2,", ",s9,"))
    assert run_review("page", folder, "--model", made["model"]) == 1
    line = one_error_line(capsys)
    assert "detections.csv: species s9 are not the detector's" in line and "--detector" in line


def test_a_detections_folder_without_its_journal_is_refused(made, tmp_path, capsys):
    folder = copy_of(made, tmp_path)
    shutil.rmtree(folder / ".journal")
    assert run_review("page", folder, "--model", made["model"]) == 1
    assert "no audio file recorded for SD01/0500" in one_error_line(capsys)


def test_a_table_that_is_not_detections_is_refused(made, tmp_path, capsys):
    (tmp_path / "detections.csv").write_text("recording,begin\na,0\n")
    assert run_review("page", tmp_path, "--model", made["model"]) == 1
    assert "not a detections table: no column start, end, species, score" in one_error_line(capsys)
    (tmp_path / "detections.csv").write_text("recording,start,end,species,score\na,0,1,s0,high\n")
    assert run_review("page", tmp_path, "--model", made["model"]) == 1
    assert "column score holds values that are not numbers" in one_error_line(capsys)


def test_a_missing_model_or_detector_is_refused(made, tmp_path, capsys):
    assert run_review("page", made["detections"], "--model", tmp_path / "none.keras") == 1
    assert "none.keras" in one_error_line(capsys)
    assert run_review("page", made["detections"], "--model", made["model"], "--detector", tmp_path / "d.json") == 1
    assert "d.json: detector file not found" in one_error_line(capsys)


def test_bad_options_are_refused(made, capsys):
    for option, value in [("--top", "-1"), ("--context-seconds", "-0.5")]:
        with pytest.raises(SystemExit) as exit_code:
            review(["page", str(made["detections"]), option, value])
        assert exit_code.value.code == 2
        assert f"argument {option}: must be" in capsys.readouterr().err


# A fresh Python importing TensorFlow: slow.
@pytest.mark.slow
def test_installed_command_writes_the_page(made, tmp_path):
    assert REVIEW_SCRIPT.exists(), "rainforest-review is not installed: pip install --no-deps -e ."
    folder = copy_of(made, tmp_path)
    result = subprocess.run(
        [REVIEW_SCRIPT, "page", folder, "--model", made["model"], "--top", "1", "--near", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and f"wrote {folder / 'review' / 'index.html'}" in result.stderr
    assert 0 < len(parse(folder / "review" / "index.html").cards) <= len(SPECIES) * 2
    assert set(recording_files(folder)) == set(RECORDINGS)
