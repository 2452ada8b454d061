"""Pictures of the validation results, for people who would rather look than read.

Figures use matplotlib's object-oriented API (no pyplot: no global state, no
display) and are saved as PNG at a fixed size and DPI without a software
stamp, so the same data always give the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from rainforest.atomic_writes import atomic_path
from rainforest.config import SpectrogramSettings
from rainforest.detect.thresholds import Detector, precision_recall_by_threshold

DPI = 100

#: Event boxes: calls of the species (train_tp.csv) and lookalikes judged absent (train_fp.csv).
_PRESENT_STYLE: dict[str, Any] = {"edgecolor": "#7CFC00", "linestyle": "-"}
_ABSENT_STYLE: dict[str, Any] = {"edgecolor": "#FF8C00", "linestyle": "--"}

#: Spectrogram levels shown below each window's loudest bin.
_DYNAMIC_RANGE_DB = 80.0

_FREQUENCY_TICKS_HZ = (100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def save_png(figure: Figure, path: str | Path) -> None:
    """Write ``figure`` as a PNG, atomically and byte-reproducibly."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI, metadata={"Software": None})


def average_precision_chart(species: list[str], average_precision: np.ndarray) -> Figure:
    """Horizontal bars of each species' validation average precision, with the macro mean.

    A species without validation positives (AP NaN) is marked n/a.
    """
    figure = Figure(figsize=(6.0, 1.2 + 0.24 * len(species)), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(species))
    values = np.nan_to_num(average_precision, nan=0.0)
    axes.barh(positions, values, color="#4C72B0")
    for position, value in zip(positions, average_precision):
        label = "n/a" if math.isnan(value) else f"{value:.2f}"
        axes.text(values[position] + 0.01, position, label, va="center", fontsize=8)  # type: ignore[arg-type]  # numpy ints: matplotlib takes them, its stubs say float
    macro = float(np.nanmean(average_precision))
    axes.axvline(macro, color="black", linestyle="--", linewidth=1, label=f"macro AP {macro:.3f}")
    axes.legend(loc="lower right", fontsize=8)
    axes.set_yticks(positions, species, fontsize=8)
    axes.invert_yaxis()  # first species on top
    axes.set_xlim(0, 1.1)
    axes.set_xlabel("average precision (validation windows)")
    axes.set_title("Average precision per species")
    return figure


def precision_recall_curves(
    truth: np.ndarray,
    scores: np.ndarray,
    average_precision: np.ndarray,
    detector: Detector,
    names: list[str] | None = None,
) -> Figure:
    """One small precision-recall curve per species, in a grid.

    Each panel marks the species' detection threshold (from ``detector``)
    with a dot and the target precision with a dashed line; a species
    without a threshold is marked "not detected". ``names`` (the species
    with their labels, :meth:`rainforest.model.ModelCard.display_names`), if
    given, title the panels on a line of their own.
    """
    n_species = len(detector.species)
    columns = min(6, n_species)
    rows = math.ceil(n_species / columns)
    figure = Figure(figsize=(2.2 * columns, 2.1 * rows + 0.6), layout="constrained")
    panels = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    for j, (axes, entry) in enumerate(zip(panels, detector.species)):
        head = f"{names[j]}\n" if names is not None else f"{entry.species}  "
        axes.axhline(detector.target_precision, color="grey", linestyle="--", linewidth=0.8)
        if math.isnan(average_precision[j]):
            axes.text(0.5, 0.5, "no validation\npositives", ha="center", va="center", fontsize=8)
            axes.set_title(head.strip(), fontsize=9)
            continue
        _, precision, recall = precision_recall_by_threshold(truth[:, j], scores[:, j])
        axes.plot(recall, precision, color="#4C72B0", linewidth=1.2)
        if entry.threshold is None:
            axes.set_title(f"{head}AP {average_precision[j]:.2f}, not detected", fontsize=9)
            continue
        axes.plot([entry.validation_recall], [entry.validation_precision], "o", color="#C44E52", markersize=4)
        axes.set_title(f"{head}AP {average_precision[j]:.2f}", fontsize=9)
    for axes in panels[n_species:]:
        axes.set_visible(False)
    for axes in panels:
        axes.set_xlim(0, 1.02)
        axes.set_ylim(0, 1.05)
        axes.tick_params(labelsize=7)
    figure.supxlabel("recall", fontsize=9)
    figure.supylabel("precision", fontsize=9)
    figure.suptitle(
        f"Validation precision-recall per species (dot: detection threshold; dashed: target precision "
        f"{detector.target_precision:g})",
        fontsize=10,
    )
    return figure


def spectrogram_extent(
    start: float, n_frames: int, spectrogram_settings: SpectrogramSettings
) -> tuple[float, float, float, float]:
    """Where a window's spectrogram lies on a time (s) by mel axis.

    Returns
    -------
    left, right, bottom, top
        The image's edges (matplotlib's ``extent``): seconds in the recording
        of a window starting at ``start``, and mels, such that each frame and
        each mel bin is centred on the time and frequency it measures.
    """
    features, sample_rate = spectrogram_settings.features, spectrogram_settings.sample_rate
    # Frame i covers samples [i * hop, i * hop + n_fft) of the window: centred at i * hop + n_fft / 2.
    step = features.hop_length / sample_rate
    first = start + (features.n_fft / 2) / sample_rate
    # Mel bin i is centred at the (i + 1)-th of n_mels + 2 points evenly
    # spaced in mel from fmin to fmax (librosa's filter bank, as
    # rainforest.spectrogram builds it), so the image reaches half a spacing beyond the outer centres.
    low, high = librosa.hz_to_mel([features.fmin, features.fmax])
    spacing = (high - low) / (features.n_mels + 1)
    return (
        first - step / 2,
        first + (n_frames - 1) * step + step / 2,
        float(low + spacing / 2),
        float(high - spacing / 2),
    )


def draw_spectrogram(
    axes, spectrogram: np.ndarray, *, start: float, spectrogram_settings: SpectrogramSettings
) -> tuple[float, float, float, float]:
    """A log-mel spectrogram starting at ``start`` s in its recording, on a time
    (s) by frequency (Hz ticks, mel-spaced) axis, its top 80 dB shown.

    The view stays on the spectrogram whatever is drawn over it afterwards.
    Returns its :func:`spectrogram_extent`.
    """
    features = spectrogram_settings.features
    left, right, bottom, top = spectrogram_extent(start, spectrogram.shape[1], spectrogram_settings)
    loudest = float(spectrogram.max())
    axes.imshow(
        spectrogram,
        origin="lower",
        aspect="auto",
        extent=(left, right, bottom, top),
        cmap="magma",
        vmin=loudest - _DYNAMIC_RANGE_DB,
        vmax=loudest,
        interpolation="nearest",
    )
    ticks = [hz for hz in _FREQUENCY_TICKS_HZ if features.fmin <= hz <= features.fmax]
    axes.set_yticks(librosa.hz_to_mel(ticks), [f"{hz // 1000}k" if hz >= 1000 else str(hz) for hz in ticks])
    axes.set_xlim(left, right)
    axes.set_ylim(bottom, top)
    axes.set_xlabel("time in the recording (s)", fontsize=7)
    axes.tick_params(labelsize=7)
    return left, right, bottom, top


def _draw_window(
    axes,
    spectrogram: np.ndarray,
    start: float,
    events: pd.DataFrame,
    species: list[str],
    highlight: int,
    spectrogram_settings: SpectrogramSettings,
) -> None:
    """A window's spectrogram (:func:`draw_spectrogram`) with the labelled
    event boxes that fall in it; ``highlight``'s boxes drawn thicker."""
    left, right, _, top = draw_spectrogram(axes, spectrogram, start=start, spectrogram_settings=spectrogram_settings)
    inside = events[(events["t_max"] > left) & (events["t_min"] < right)]
    for event in inside.itertuples(index=False):
        low, high = librosa.hz_to_mel([event.f_min, event.f_max])
        style = _PRESENT_STYLE if event.present else _ABSENT_STYLE
        width = 2.2 if event.species_id == highlight else 1.0
        axes.add_patch(
            Rectangle((event.t_min, low), event.t_max - event.t_min, high - low, fill=False, linewidth=width, **style)
        )
        axes.text(
            max(event.t_min, left),
            min(high, top),
            species[event.species_id],
            color=style["edgecolor"],
            fontsize=7,
            fontweight="bold",
            va="top",
            clip_on=True,
            bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none", "pad": 1.5},
        )


def window_examples(
    windows: dict[str, np.ndarray],
    scores: np.ndarray,
    picks: list[tuple[int, int]],
    *,
    events: pd.DataFrame,
    species: list[str],
    spectrogram_settings: SpectrogramSettings,
    title: str,
) -> Figure:
    """A grid of validation windows, each with its labelled event boxes.

    Parameters
    ----------
    windows
        ``spectrograms``, ``recording_ids``, ``start_times``, ``targets`` and
        ``masks`` of the validation windows.
    scores
        The model's scores of those windows, (n_windows, n_species).
    picks
        ``(window row, species column)`` pairs to show, in order.
    events
        The dataset's labelled events (``recording_id``, ``species_id``,
        ``t_min``, ``t_max``, ``f_min``, ``f_max``, ``present``).
    title
        The figure's title.
    """
    columns = max(1, min(3, len(picks)))
    rows = max(1, math.ceil(len(picks) / columns))
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.8), layout="constrained")
    panels = figure.subplots(rows, columns, squeeze=False).ravel()
    by_recording = dict(tuple(events.groupby("recording_id")))
    no_events = events.iloc[:0]
    for axes, (row, column) in zip(panels, picks):
        recording_id, start = windows["recording_ids"][row], float(windows["start_times"][row])
        _draw_window(
            axes,
            windows["spectrograms"][row],
            start,
            by_recording.get(recording_id, no_events),
            species,
            column,
            spectrogram_settings,
        )
        if windows["targets"][row, column]:
            label = "labelled present"
        else:
            label = "labelled absent" if windows["masks"][row, column] else "not labelled"
        axes.set_title(
            f"{recording_id} at {start:.1f} s\n{species[column]} score {scores[row, column]:.3f} ({label})", fontsize=8
        )
    if not picks:
        panels[0].text(0.5, 0.5, "none", ha="center", va="center")
    for axes in panels[len(picks) :]:
        axes.set_axis_off()
    figure.supylabel("frequency (Hz, mel scale)", fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.legend(
        handles=[
            Line2D([], [], color=_PRESENT_STYLE["edgecolor"], linestyle="-", label="labelled call (train_tp.csv)"),
            Line2D([], [], color=_ABSENT_STYLE["edgecolor"], linestyle="--", label="labelled absent (train_fp.csv)"),
        ],
        loc="outside lower center",
        ncols=2,
        fontsize=8,
    )
    return figure
