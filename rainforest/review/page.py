"""The review page: chosen detections to look at, listen to and judge, in one offline HTML file.

:func:`write_review_page` reads a ``rainforest-detect`` output folder, chooses
per species the detections worth a verdict
(:func:`rainforest.review.selection.select_for_review`, after the windows of
one call are merged: :func:`rainforest.review.selection.merge_detected`) and
writes ``review/index.html`` beside ``detections.csv``: one card per chosen
detection, grouped by species, with the spectrogram of its window and some
context (``review/excerpts/NNNN.png``, the window and the species' band
marked), the same audio (``NNNN.wav``), its recording's Raven table and
begin time, and yes / no / unsure buttons; first in each species' group, its
reference, the highest-scoring detection of the species in the run
(``reference-NNN.png`` and ``.wav``). The page needs no network and no
server: opened from disk, it keeps the verdicts in the browser's
localStorage and exports them as ``verdicts.csv``
(:data:`rainforest.events.verdicts.VERDICT_COLUMNS`). It fits a phone's
width and a wide screen's, and answers keys. The same inputs give the same
bytes.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import librosa
import numpy as np
import pandas as pd
import soundfile as sf
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from rainforest.atomic_writes import atomic_path, write_text
from rainforest.audio import Recording
from rainforest.card import ModelCard, load_card
from rainforest.config import SpectrogramSettings
from rainforest.detect.run import recording_files
from rainforest.detect.thresholds import Detector, load_detector
from rainforest.errors import AudioError, ModelError
from rainforest.events import detections as detection_files
from rainforest.events import raven
from rainforest.events.verdicts import VERDICT_COLUMNS, VERDICTS
from rainforest.figures import draw_spectrogram, save_png
from rainforest.review.selection import REASONS, merge_detected, select_for_review
from rainforest.spectrogram import log_mel_spectrogram

#: The review's folder inside a detections folder, and its excerpts' folder inside that.
REVIEW_DIR = "review"
EXCERPTS_DIR = "excerpts"

#: Excerpt files: the card's number, four digits, or reference- and the species' number in the model, three
#: digits; then .png or .wav.
_EXCERPT_NAME = re.compile(r"^(\d{4}|reference-\d{3})\.(png|wav)$")
#: The playback speeds the page offers, the first the default. Slowed like a tape, pitch drops by as much:
#: a fast trill at 0.25x is four times longer and two octaves lower.
SPEEDS = (1.0, 0.5, 0.25)
#: The page's keys, as it lists them (its script answers these).
KEYS = (
    ("y / n / u", "yes / no / unsure, then the next card"),
    ("space / p", "play / pause"),
    ("j / &rarr;", "next card"),
    ("k / &larr;", "previous card"),
    ("s", "speed"),
)

_WINDOW_STYLE: dict[str, Any] = {"color": "#7CFC00", "linewidth": 1.2, "linestyle": "--"}
_BAND_STYLE: dict[str, Any] = {"edgecolor": "#00E5FF", "linewidth": 1.6, "fill": False}


@dataclass(frozen=True)
class ReviewPage:
    """What :func:`write_review_page` wrote.

    Attributes
    ----------
    path
        The page, ``<detections>/review/index.html``.
    shown
        Reason (``top``, ``near``, ``bin``) -> the number of cards chosen for it.
    """

    path: Path
    shown: dict[str, int]


@dataclass(frozen=True)
class Excerpt:
    """The span of a recording a card shows: its window and some context each side.

    Attributes
    ----------
    start, end
        The span in seconds, clipped to the recording.
    first_sample, n_samples
        The same span in samples at the model's rate.
    """

    start: float
    end: float
    first_sample: int
    n_samples: int


def excerpt_span(start: float, end: float, *, context_seconds: float, duration: float, sample_rate: int) -> Excerpt:
    """The window ``[start, end)`` widened by ``context_seconds`` each side, within ``[0, duration]``.

    Examples
    --------
    >>> excerpt_span(0.5, 2.5, context_seconds=1.0, duration=3.0, sample_rate=10)
    Excerpt(start=0.0, end=3.0, first_sample=0, n_samples=30)
    """
    first = max(0, round((start - context_seconds) * sample_rate))
    last = min(round(duration * sample_rate), round((end + context_seconds) * sample_rate))
    last = max(last, first + 1)  # a window at the very end still shows a sample
    return Excerpt(first / sample_rate, last / sample_rate, first, last - first)


def excerpt_figure(
    spectrogram: np.ndarray,
    excerpt: Excerpt,
    *,
    window: tuple[float, float],
    band: tuple[float, float],
    spectrogram_settings: SpectrogramSettings,
    title: str,
) -> Figure:
    """An excerpt's spectrogram (:func:`rainforest.figures.draw_spectrogram`)
    with the detection's window (dashed lines at its start and end) and the
    species' frequency band over the window (a box) marked.

    Parameters
    ----------
    spectrogram
        The excerpt's log-mel spectrogram, (n_mels, n_frames).
    window
        The detection's start and end, in seconds in the recording.
    band
        The species' low and high frequency, in Hz.
    """
    figure = Figure(figsize=(6.4, 2.8), layout="constrained")
    axes = figure.add_subplot()
    draw_spectrogram(axes, spectrogram, start=excerpt.start, spectrogram_settings=spectrogram_settings)
    for edge in window:
        axes.axvline(edge, **_WINDOW_STYLE)
    features = spectrogram_settings.features
    low, high = librosa.hz_to_mel(np.clip(band, features.fmin, features.fmax))
    axes.add_patch(Rectangle((window[0], low), window[1] - window[0], high - low, **_BAND_STYLE))
    axes.set_ylabel("frequency (Hz)", fontsize=8)
    axes.set_title(title, fontsize=9)
    return figure


class ReviewRows(NamedTuple):
    """The rows of a review page (:func:`review_rows`).

    Attributes
    ----------
    cards
        The detections chosen for review, in page order.
    references
        Per species with a card, in the model's order, its detection that scores highest.
    """

    cards: pd.DataFrame
    references: pd.DataFrame


def review_rows(
    detections: pd.DataFrame,
    files: dict[str, Path],
    *,
    card: ModelCard,
    detector: Detector,
    top: int,
    near: int,
    bins: int = 0,
    merge: bool = False,
    source: Path,
) -> ReviewRows:
    """The detections chosen for review, and each species' reference, with all a card and the export show.

    Parameters
    ----------
    top, near, bins
        Per species, the cards of each reason (:func:`rainforest.review.selection.select_for_review`).
    merge
        Whether the windows of one call become one card (:func:`rainforest.review.selection.merge_detected`).

    Returns
    -------
    ReviewRows
        Each a table of :data:`VERDICT_COLUMNS` but ``verdict``, plus ``threshold``
        (NaN where the species has none): the cards by species in the model's
        order, then reason (top, near, bin), then score from highest; the
        references with the reason ``reference``.

    Raises
    ------
    ModelError
        If ``detections`` (read from ``source``) holds species the detector does not know.
    AudioError
        If a chosen recording is not in the run's journal.
    """
    entries = {entry.species: entry for entry in detector.species}
    unknown = sorted(set(detections["species"]) - set(entries))
    if unknown:
        raise ModelError(
            f"{source}: species {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} are not the detector's "
            f"({', '.join(list(entries)[:5])}{' ...' if len(entries) > 5 else ''}); make the page with the --model "
            "and --detector that rainforest-detect ran with"
        )
    thresholds = {name: entry.threshold for name, entry in entries.items()}
    if merge:
        detections = merge_detected(detections, thresholds)
    chosen = select_for_review(detections, thresholds, top=top, near=near, bins=bins)
    best = (
        detections.loc[detections.groupby("species", sort=False)["score"].idxmax()] if len(detections) else detections
    )
    order = {species: number for number, species in enumerate(card.species)}
    best = best[best["species"].isin(chosen["species"])]
    best = best.sort_values("species", key=lambda species: species.map(order)).assign(reason="reference")
    lost = sorted((set(chosen["recording"]) | set(best["recording"])) - set(files))
    if lost:
        raise AudioError(
            f"{source.parent / '.journal'}: no audio file recorded for {', '.join(lost[:5])}; the journal was "
            "removed or belongs to another run: run rainforest-detect on that folder again"
        )
    labels = dict(zip(card.species, card.labels)) if card.labels is not None else {}

    def table(rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "recording": rows["recording"],
                "file": rows["recording"].map(lambda recording: str(files[recording])),
                "start": rows["start"].astype(float),
                "end": rows["end"].astype(float),
                "species": rows["species"],
                "label": rows["species"].map(lambda species: labels.get(species, "")),
                "score": rows["score"].astype(float),
                "low_freq": rows["species"].map(lambda species: entries[species].low_freq_hz),
                "high_freq": rows["species"].map(lambda species: entries[species].high_freq_hz),
                "reason": rows["reason"],
                "threshold": rows["species"].map(lambda species: entries[species].threshold),
            }
        ).reset_index(drop=True)

    return ReviewRows(table(chosen), table(best))


def _number(value: float) -> str:
    # As detections.csv writes it (the shortest repr), and the same in the exported CSV.
    return repr(float(value))


def _species_name(label: str, species: str) -> str:
    # The name and the id where the model has names; else the id alone.
    return f"{label} ({species})" if label else species


def _raven_place(row) -> str:
    # Where to see the detection in Raven: its recording's table (beside detections.csv) and its begin time.
    return f"{html.escape(raven.table_name(row.recording))}, begin {row.start:.3f} s"


def _card_html(number: int, row, name: str) -> str:
    threshold = "none (not detected by default)" if pd.isna(row.threshold) else f"{row.threshold:.4f}"
    buttons = "".join(
        f'<button type="button" data-verdict="{verdict}" aria-pressed="false" title="key {verdict[0]}">{verdict}</button>'
        for verdict in VERDICTS
    )
    escape = html.escape
    return f"""<article class="card" data-row="{number}" id="row-{number}">
<img src="{EXCERPTS_DIR}/{number:04d}.png" alt="spectrogram of {escape(row.recording)} at {row.start:.3f} s" \
width="640" height="280">
<audio controls preload="none" src="{EXCERPTS_DIR}/{number:04d}.wav"></audio>
<dl>
<dt>species</dt><dd>{escape(name)}</dd>
<dt>score</dt><dd>{row.score:.4f}</dd>
<dt>threshold</dt><dd>{threshold}</dd>
<dt>reason</dt><dd>{escape(row.reason)}</dd>
<dt>recording</dt><dd title="{escape(row.file)}">{escape(row.recording)}</dd>
<dt>time</dt><dd>{row.start:.3f}&ndash;{row.end:.3f} s</dd>
<dt>Raven</dt><dd>{_raven_place(row)}</dd>
</dl>
<div class="verdicts">{buttons}</div>
</article>"""


def _reference_html(stem: str, row) -> str:
    escape = html.escape
    return f"""<figure class="reference">
<img src="{EXCERPTS_DIR}/{stem}.png" alt="reference: spectrogram of {escape(row.recording)} at {row.start:.3f} s" \
width="640" height="280">
<audio controls preload="none" src="{EXCERPTS_DIR}/{stem}.wav"></audio>
<figcaption><strong>Reference</strong>: this species' highest-scoring detection in the run, score
{row.score:.4f}, {escape(row.recording)} {row.start:.3f}&ndash;{row.end:.3f} s (Raven: {_raven_place(row)}).
Compare each card with it.</figcaption>
</figure>"""


def _reference_stem(species: str, species_ids: list[str]) -> str:
    return f"reference-{species_ids.index(species):03d}"


def page_html(rows: pd.DataFrame, *, title: str, references: pd.DataFrame | None = None) -> str:
    """The review page of ``rows`` (as from :func:`review_rows`): cards grouped
    by species, each group led by its species' row of ``references`` where
    there is one (with ``stem``, its excerpts' file name without extension);
    inline CSS and script, no network.

    The script keeps each card's verdict in localStorage under a key made of
    the page's location and a digest of its rows (a page made again over
    other rows starts afresh), counts the verdicts given, and exports those
    rows that have one as ``verdicts.csv``, in page order. Keys answer the
    card in focus (:data:`KEYS`); the speed menu sets every player's speed.
    """
    export = [
        {
            column: _number(row[column]) if isinstance(row[column], float) else str(row[column])
            for column in VERDICT_COLUMNS[:-1]
        }
        for _, row in rows.iterrows()
    ]
    digest = hashlib.sha256(json.dumps(export, sort_keys=True).encode()).hexdigest()[:16]
    references = rows.iloc[:0].assign(stem="") if references is None else references
    sections = []
    for species, group in rows.groupby("species", sort=False):
        first = group.iloc[0]
        name = _species_name(first["label"], species)
        counts = ", ".join(
            f"{(group['reason'] == reason).sum()} {reason}" for reason in REASONS if (group["reason"] == reason).any()
        )
        reference = references[references["species"] == species]
        cards = "\n".join(
            [_reference_html(row.stem, row) for row in reference.itertuples()]
            + [_card_html(int(number) + 1, row, name) for number, row in zip(group.index, group.itertuples())]
        )
        sections.append(
            f'<section class="species" data-species="{html.escape(species)}">\n'
            f"<h2>{html.escape(name)} <small>({counts})</small></h2>\n"
            f'<div class="cards">\n{cards}\n</div>\n</section>'
        )
    body = "\n".join(sections) or '<p class="empty">No detections to review.</p>'
    # "</" inside the JSON would end the script element early.
    data = json.dumps({"key": digest, "columns": VERDICT_COLUMNS, "rows": export}, indent=None).replace("</", "<\\/")
    speeds = "".join(f'<option value="{speed:g}">{speed:g}&times;</option>' for speed in SPEEDS)
    keys = " &middot; ".join(f"<kbd>{key}</kbd> {what}" for key, what in KEYS)
    return _TEMPLATE.format(
        title=html.escape(title),
        total=len(rows),
        body=body,
        data=data,
        css=_CSS,
        script=_SCRIPT,
        speeds=speeds,
        keys=keys,
    )


def write_review_page(
    detections_dir: str | Path,
    *,
    model: str | Path,
    detector: str | Path,
    top: int = 5,
    near: int = 5,
    bins: int = 0,
    merge: bool = True,
    context_seconds: float = 1.0,
) -> ReviewPage:
    """Write the review page of a ``rainforest-detect`` output folder.

    Parameters
    ----------
    detections_dir
        The folder ``rainforest-detect`` wrote: ``detections.csv`` and the
        journal naming each recording's file.
    model, detector
        The model (its card: rate, features, species' names) and detector
        file (thresholds and bands) the detections were made with.
    top, near, bins
        Per species, the highest-scoring detections, those nearest its
        threshold, and one from each of ``bins`` score bins to show
        (:func:`rainforest.review.selection.select_for_review`).
    merge
        Whether the overlapping windows of one call become one card
        (:func:`rainforest.review.selection.merge_detected`).
    context_seconds
        Audio shown and played each side of a detection's window.

    Returns
    -------
    ReviewPage
        The page's path and the cards shown per reason.

    Raises
    ------
    PipelineError
        If ``detections.csv`` is missing or malformed, names species the
        detector does not know, a recording is not in the journal or cannot
        be read, or the model or detector file is bad.
    """
    detections_dir = Path(detections_dir)
    detections_path = detections_dir / detection_files.FILE_NAME
    detections = detection_files.read(detections_path)
    card = load_card(model)
    species_detector = load_detector(detector, card.species)
    rows = review_rows(
        detections,
        recording_files(detections_dir),
        card=card,
        detector=species_detector,
        top=top,
        near=near,
        bins=bins,
        merge=merge,
        source=detections_path,
    )
    stems = [f"{number:04d}" for number in range(1, len(rows.cards) + 1)] + [
        _reference_stem(species, card.species) for species in rows.references["species"]
    ]
    review_dir = detections_dir / REVIEW_DIR
    written = _write_excerpts(
        pd.concat([rows.cards, rows.references], ignore_index=True).assign(stem=stems),
        review_dir / EXCERPTS_DIR,
        card=card,
        context_seconds=context_seconds,
    )
    # Excerpts of an earlier page with more cards would otherwise linger.
    for stale in sorted((review_dir / EXCERPTS_DIR).glob("*")):
        if _EXCERPT_NAME.match(stale.name) and stale.name not in written:
            stale.unlink()
    # The page last: it appears only once every excerpt it shows is in place.
    page = review_dir / "index.html"
    references = rows.references.assign(stem=stems[len(rows.cards) :])
    write_text(page, page_html(rows.cards, references=references, title=f"Review: {detections_dir.resolve().name}"))
    return ReviewPage(page, {reason: int((rows.cards["reason"] == reason).sum()) for reason in ("top", "near", "bin")})


def _write_excerpts(rows: pd.DataFrame, folder: Path, *, card: ModelCard, context_seconds: float) -> set[str]:
    # Each row's spectrogram and audio, named after its stem; returns the file names written.
    folder.mkdir(parents=True, exist_ok=True)
    written, sample_rate = set(), card.spectrogram_settings.sample_rate
    for file, group in rows.groupby("file", sort=True):
        with Recording(file, sample_rate) as recording:
            duration = recording.n_samples / sample_rate
            for row in group.itertuples():
                excerpt = excerpt_span(
                    row.start,
                    row.end,
                    context_seconds=context_seconds,
                    duration=duration,
                    sample_rate=sample_rate,
                )
                waveform = recording.read(excerpt.first_sample, excerpt.n_samples)
                name = _species_name(row.label, row.species)
                figure = excerpt_figure(
                    log_mel_spectrogram(waveform, card.spectrogram_settings),
                    excerpt,
                    window=(row.start, row.end),
                    band=(row.low_freq, row.high_freq),
                    spectrogram_settings=card.spectrogram_settings,
                    title=f"{name} {row.score:.3f}: {row.recording} {row.start:.2f}-{row.end:.2f} s",
                )
                save_png(figure, folder / f"{row.stem}.png")
                with atomic_path(folder / f"{row.stem}.wav") as temporary:
                    sf.write(temporary, np.clip(waveform, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
                written |= {f"{row.stem}.png", f"{row.stem}.wav"}
    return written


_CSS = """\
html { scroll-padding-top: 9rem; } /* what is scrolled to stays below the sticky header */
body { font-family: system-ui, sans-serif; margin: .5rem 1.5rem; color: #222; background: #fafafa; }
header { background: #fafafa; padding: .4rem 0; border-bottom: 1px solid #ccc; z-index: 1; }
header p { margin: .3rem 0; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 .5rem; }
.keys { font-size: .85rem; color: #555; }
kbd { font-family: inherit; border: 1px solid #aaa; border-radius: 3px; padding: 0 .3rem; background: #fff; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 20rem), 1fr)); gap: .8rem; }
.card, .reference { min-width: 0; padding: .5rem; background: #fff; border: 1px solid #ddd; border-radius: 6px; }
.reference { margin: 0; background: #eef4fb; border-style: dashed; font-size: .85rem; }
.card img, .reference img { display: block; width: 100%; height: auto; }
.card audio, .reference audio { display: block; width: 100%; margin: .3rem 0; }
.card dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .3rem 0; font-size: .85rem; }
.card dt { color: #666; }
.card dd, .reference figcaption { margin: 0; overflow-wrap: anywhere; }
.verdicts { display: flex; gap: .4rem; }
.verdicts button { flex: 1; font-size: 1rem; min-height: 2.6rem; border: 1px solid #888; border-radius: 4px;
  background: #eee; cursor: pointer; }
.verdicts button[aria-pressed="true"][data-verdict="yes"] { background: #2e7d32; color: #fff; }
.verdicts button[aria-pressed="true"][data-verdict="no"] { background: #c62828; color: #fff; }
.verdicts button[aria-pressed="true"][data-verdict="unsure"] { background: #f9a825; color: #000; }
.card.judged { border-color: #888; }
.card.current { outline: 3px solid #1565c0; outline-offset: 1px; }
#export, #speed { font-size: 1rem; padding: .3rem .6rem; }
/* On a wide screen the header stays in sight; on a phone it would take half of it. */
@media (min-width: 48rem) { header { position: sticky; top: 0; } }
@media (max-width: 48rem) { body { margin: .4rem .6rem; } html { scroll-padding-top: 1rem; } .keys { display: none; } }"""

_SCRIPT = """\
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("review-data").textContent);
  var storageKey = "rainforest-review:" + location.pathname + ":" + data.key;
  var verdicts = {};
  try { verdicts = JSON.parse(localStorage.getItem(storageKey) || "{}"); } catch (error) { verdicts = {}; }
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var current = 0;
  var speed = document.getElementById("speed");

  function save() {
    try { localStorage.setItem(storageKey, JSON.stringify(verdicts)); } catch (error) { /* private mode: kept until closed */ }
  }

  function show() {
    cards.forEach(function (card, index) {
      var verdict = verdicts[card.dataset.row];
      card.classList.toggle("judged", Boolean(verdict));
      card.classList.toggle("current", index === current);
      card.querySelectorAll("button[data-verdict]").forEach(function (button) {
        button.setAttribute("aria-pressed", String(button.dataset.verdict === verdict));
      });
    });
    document.getElementById("counter").textContent = String(Object.keys(verdicts).length);
  }

  // A second choice of the same verdict takes it back; returns whether the card has one now.
  function choose(card, verdict) {
    var row = card.dataset.row;
    if (verdicts[row] === verdict) { delete verdicts[row]; } else { verdicts[row] = verdict; }
    save();
    return Boolean(verdicts[row]);
  }

  function goTo(index) {
    if (!cards.length) { return; }
    current = Math.max(0, Math.min(cards.length - 1, index));
    show();
    cards[current].scrollIntoView({ block: "center" });
  }

  function setSpeed(rate) {
    speed.value = String(rate);
    document.querySelectorAll("audio").forEach(function (audio) {
      audio.preservesPitch = false;  // slowed like a tape: a trill's notes come apart, lower
      audio.defaultPlaybackRate = rate;
      audio.playbackRate = rate;
    });
  }

  document.addEventListener("click", function (event) {
    var card = event.target.closest(".card");
    if (card) { current = cards.indexOf(card); }
    var button = event.target.closest("button[data-verdict]");
    if (button) { choose(card, button.dataset.verdict); }
    if (card) { show(); }
  });

  // The player started is the card in focus, and plays alone.
  document.addEventListener("play", function (event) {
    document.querySelectorAll("audio").forEach(function (audio) { if (audio !== event.target) { audio.pause(); } });
    var card = event.target.closest(".card");
    if (card) { current = cards.indexOf(card); show(); }
  }, true);

  speed.addEventListener("change", function () { setSpeed(Number(speed.value)); });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("select, input, textarea")) { return; }
    var card = cards[current];
    var verdict = { y: "yes", n: "no", u: "unsure" }[event.key];
    if (verdict && card) {
      if (choose(card, verdict)) { goTo(current + 1); } else { show(); }
    } else if ((event.key === " " || event.key === "p") && card) {
      var audio = card.querySelector("audio");
      if (audio.paused) { audio.play(); } else { audio.pause(); }
    } else if (event.key === "j" || event.key === "ArrowRight") {
      goTo(current + 1);
    } else if (event.key === "k" || event.key === "ArrowLeft") {
      goTo(current - 1);
    } else if (event.key === "s") {
      var options = Array.prototype.map.call(speed.options, function (option) { return option.value; });
      setSpeed(Number(options[(options.indexOf(speed.value) + 1) % options.length]));
    } else {
      return;
    }
    event.preventDefault();  // no scrolling on space, no button pressed twice
  });

  function csvField(text) {
    return /[",\\r\\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  document.getElementById("export").addEventListener("click", function () {
    var lines = [data.columns.join(",")];
    data.rows.forEach(function (row, index) {
      var verdict = verdicts[String(index + 1)];
      if (!verdict) { return; }
      var record = Object.assign({}, row, { verdict: verdict });
      lines.push(data.columns.map(function (column) { return csvField(record[column]); }).join(","));
    });
    var blob = new Blob([lines.join("\\n") + "\\n"], { type: "text/csv" });
    var link = document.getElementById("download");
    if (link.href) { URL.revokeObjectURL(link.href); }
    link.href = URL.createObjectURL(blob);
    link.click();
  });

  setSpeed(Number(speed.value));
  show();
})();"""

_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
<p>Listen to each detection and judge it: is the species calling in the marked window?
<span class="count"><span id="counter">0</span> of {total} judged.</span></p>
<p><button type="button" id="export">Export verdicts (CSV)</button>
<label>speed <select id="speed">{speeds}</select></label>
<a id="download" download="verdicts.csv" hidden>verdicts.csv</a></p>
<p class="keys">Keys: {keys}</p>
</header>
<main>
{body}
</main>
<script type="application/json" id="review-data">{data}</script>
<script>
{script}
</script>
</body>
</html>
"""
