"""Cutting labelled windows around events: the work of the ``etl`` stage.

Each recording is decoded once, however many events it holds, and only the
spectrogram frames its windows cover are computed. Work is
spread over processes, one recording at a time, and results are streamed into
the HDF5 window set in recording order, so the output does not depend on the
number of workers.

A recording that is missing or cannot be decoded either stops the run or, with
``etl.on_unreadable: skip``, is left out and listed in the run's report, so no
recording disappears unnoticed.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from rainforest.atomic_writes import write_json, write_text
from rainforest.audio import Recording, Skipped, audio_files, index_recording_tree, index_recordings
from rainforest.config import DataSettings, EtlSettings, SpectrogramSettings
from rainforest.errors import AudioError, LabelError
from rainforest.events import (
    EVENT_COLUMNS,
    REVIEWED_LABELS,
    REVIEWED_RECORDINGS,
    fit_events_to_recording,
    read_dataset_events,
    read_reviewed_events,
    read_species,
    read_species_names,
    window_labels,
)
from rainforest.parallel import ordered_map
from rainforest.spectrogram import (
    event_window_start,
    frame_times,
    log_mel_spectrogram,
    recording_frames,
    window_span_samples,
)
from rainforest.window_sets import WindowWriter

log = logging.getLogger(__name__)


def background_window_starts(
    events: pd.DataFrame,
    n_recording_frames: int,
    count: int,
    spectrogram_settings: SpectrogramSettings,
    rng: np.random.Generator,
) -> np.ndarray:
    """First frames of up to ``count`` windows that overlap no event of the recording.

    Most of a test recording is background; these windows show the model
    what no call looks like. Fewer are returned where events leave no room.
    """
    n_frames, rate = spectrogram_settings.window_frames, spectrogram_settings.sample_rate
    candidates = np.arange(max(0, n_recording_frames - n_frames) + 1)
    start_times = frame_times(candidates, spectrogram_settings)
    end_times = start_times + window_span_samples(n_frames, spectrogram_settings.features) / rate
    free = np.ones(len(candidates), dtype=bool)
    for t_min, t_max in zip(events["t_min"], events["t_max"]):
        free &= (end_times <= t_min) | (start_times >= t_max)
    choices = candidates[free]
    return np.sort(rng.choice(choices, size=min(count, len(choices)), replace=False)).astype(np.int64)


def event_windows(
    recording: Recording,
    events: pd.DataFrame,
    spectrogram_settings: SpectrogramSettings,
    *,
    n_species: int,
    n_background: int = 0,
    rng: np.random.Generator | None = None,
    windows_per_event: int | Sequence[int] = 1,
) -> dict[str, np.ndarray]:
    """Cut windows around each event of a recording, and background windows.

    Only the windows' own samples are read (see :class:`Recording`), and the
    spectrogram of each is computed from them: by the geometry of
    :mod:`rainforest.spectrogram`, the same numbers as cutting it from the whole
    recording's spectrogram.

    Parameters
    ----------
    recording
        The open recording, at ``spectrogram_settings.sample_rate``.
    events
        The recording's events (``species_id``, ``t_min``, ``t_max``, ``present``).
    n_species
        Species in the dataset: the width of the labels.
    n_background
        Windows to add that overlap no event (see
        :func:`background_window_starts`), drawn with ``rng``. Their labels are
        all unknown; their ``event_species`` is -1.
    windows_per_event
        Windows cut along each event, one count for all or one per event:
        the event is split into this many equal spans and a window is
        centred on each (1: one window centred on the event).

    Returns
    -------
    dict
        Arrays with one row per window, events first, named as the fields of
        a window set (without ``recording_ids``).
    """
    features, rate = spectrogram_settings.features, spectrogram_settings.sample_rate
    n_samples = window_span_samples(spectrogram_settings.window_frames, features)
    # A recording shorter than a window is zero-padded to one window.
    n_recording_frames = recording_frames(max(recording.n_samples, n_samples), features)
    # A song longer than a window gives several different views of itself;
    # linspace keeps t_min and t_max exact, so one window per event is unchanged.
    counts = np.broadcast_to(np.asarray(windows_per_event, dtype=np.int64), (len(events),))
    spans = [np.linspace(t_min, t_max, n + 1) for t_min, t_max, n in zip(events["t_min"], events["t_max"], counts)]
    event_starts = [
        event_window_start(
            edges[k], edges[k + 1], n_recording_frames=n_recording_frames, spectrogram_settings=spectrogram_settings
        )
        for edges in spans
        for k in range(len(edges) - 1)
    ]
    background = (
        background_window_starts(events, n_recording_frames, n_background, spectrogram_settings, rng)  # type: ignore[arg-type]  # callers with n_background give rng
        if n_background
        else np.zeros(0, dtype=np.int64)
    )
    starts = np.concatenate([np.array(event_starts, dtype=np.int64), background])
    start_times = frame_times(starts, spectrogram_settings)
    end_times = start_times + n_samples / rate
    labels = [window_labels(events, start, end, n_species) for start, end in zip(start_times, end_times)]
    species, present = events["species_id"].to_numpy(np.int16), events["present"].to_numpy(np.uint8)
    waveforms = np.stack([recording.read(int(start) * features.hop_length, n_samples) for start in starts])
    return {
        "spectrograms": log_mel_spectrogram(waveforms, spectrogram_settings),
        "waveforms": waveforms,
        "targets": np.stack([target for target, _ in labels]),
        "masks": np.stack([mask for _, mask in labels]),
        "start_times": start_times,
        "end_times": end_times,
        "event_species": np.concatenate([np.repeat(species, counts), np.full(len(background), -1, np.int16)]),
        "event_present": np.concatenate([np.repeat(present, counts), np.zeros(len(background), np.uint8)]),
    }


#: ``windows_per_event: auto`` cuts at least this many windows of each species' labelled calls ...
AUTO_WINDOWS_PER_SPECIES = 24
#: ... with at most this many along one call (a call shorter than a window gives near-copies).
AUTO_MAX_WINDOWS_PER_CALL = 8


def windows_per_call(calls_per_species: dict[int, int], setting: int | str) -> dict[int, int]:
    """Windows to cut along each labelled event, by species.

    With an integer ``setting``, that many for every species. With
    ``"auto"``, the CNN gets enough distinct windows of every species to
    learn from: a species with ``n`` labelled calls (its present events)
    gets ``ceil(AUTO_WINDOWS_PER_SPECIES / n)`` windows along each, between 1
    and :data:`AUTO_MAX_WINDOWS_PER_CALL`; its known absences get as many.
    A dataset with dozens of calls per species (the demo, the competition)
    keeps one window per call; one with a handful (a user's first labels)
    gets several views of each call, the setting that lifted the CNN on
    real recordings with 6 calls per species (docs/model.md).

    Examples
    --------
    >>> windows_per_call({0: 50, 1: 6, 2: 2, 3: 0}, "auto")
    {0: 1, 1: 4, 2: 8, 3: 1}
    >>> windows_per_call({0: 50, 1: 6}, 3)
    {0: 3, 1: 3}
    """
    if setting != "auto":
        return {species: int(setting) for species in calls_per_species}
    return {
        species: min(AUTO_MAX_WINDOWS_PER_CALL, max(1, math.ceil(AUTO_WINDOWS_PER_SPECIES / calls))) if calls else 1
        for species, calls in calls_per_species.items()
    }


@dataclass(frozen=True)
class RecordingJob:
    """One recording's share of the work, sent to a worker process."""

    recording_id: str
    path: Path
    events: pd.DataFrame
    spectrogram_settings: SpectrogramSettings
    n_species: int
    skip_unreadable: bool
    n_background: int = 0
    #: Windows along each of ``events``, in their order.
    windows_per_event: tuple[int, ...] | int = 1


@dataclass(frozen=True)
class RecordingResult:
    """What a worker returns for a recording it could read: its windows."""

    windows: dict[str, np.ndarray]
    events_clamped: int = 0


def _recording_job(job: RecordingJob) -> RecordingResult | Skipped:
    # Runs in a worker: a skipped recording comes back as a result, in its
    # place in recording order, so the output does not depend on the workers.
    try:
        with Recording(job.path, job.spectrogram_settings.sample_rate) as recording:
            events, clamped = fit_events_to_recording(
                job.events, recording.n_samples / job.spectrogram_settings.sample_rate
            )
            # Seeded by the recording's id: the same windows whatever the worker or order.
            rng = np.random.default_rng(zlib.crc32(job.recording_id.encode()))
            windows = event_windows(
                recording,
                events,
                job.spectrogram_settings,
                n_species=job.n_species,
                n_background=job.n_background,
                rng=rng,
                windows_per_event=job.windows_per_event,
            )
    except AudioError as error:
        if job.skip_unreadable:
            return Skipped(job.recording_id, job.path, str(error))
        raise AudioError(
            f"{error} (if you remove the recording, remove its label rows too; or set etl.on_unreadable: skip in "
            "params.yaml to leave it out)"
        ) from None
    windows["recording_ids"] = np.array([job.recording_id] * len(windows["targets"]), dtype=object)
    return RecordingResult(windows, events_clamped=clamped)


@dataclass
class EtlReport:
    """What an ``etl`` run read, wrote, left out and changed: its report file.

    :meth:`headline` is the part tracked as DVC metrics; :meth:`to_dict` the
    whole report, with every skipped recording and why.
    """

    recordings_read: int = 0
    recordings_skipped: int = 0
    windows_written: int = 0
    events_skipped: int = 0
    events_dropped_as_duplicates: int = 0
    events_clamped: int = 0
    events_above_nyquist: int = 0
    #: Events from the reviewed labels (``data.reviews_dir``), in the counts above too (a
    #: round's new recordings and windows show in the headline).
    events_reviewed: int = 0
    #: Windows cut along each labelled event, by species id (etl.windows_per_event).
    windows_per_call: dict[str, int] = field(default_factory=dict)
    #: ``{"recording_id", "reason"}`` of each skipped recording, by id.
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def headline(self) -> dict:
        """The counts a person compares between runs (``dvc metrics show``)."""
        return {"recordings": self.recordings_read, "skipped": self.recordings_skipped, "windows": self.windows_written}


def build_window_set(
    data: DataSettings,
    out_path: str | Path,
    *,
    spectrogram_settings: SpectrogramSettings,
    settings: EtlSettings,
    events_path: str | Path | None = None,
) -> EtlReport:
    """Write the window set of every labelled event in a dataset.

    Parameters
    ----------
    data
        The dataset (``dataset_dir``, a folder in the competition's layout),
        where its events come from (``annotations``): ``"competition"``
        (``train_tp.csv`` and ``train_fp.csv``), ``"raven"`` or
        ``"audacity"`` (a file beside each recording,
        :func:`rainforest.events.read_dataset_events`, whose Raven
        tables name the species in ``species_column``), and ``reviews_dir``,
        a folder of reviewed labels (:func:`rainforest.events.read_reviewed_events`)
        whose events are added to the dataset's: their recordings are in the
        dataset's ``train/`` or in ``reviews_dir/recordings``. A
        ``species.csv`` in the dataset gives the species' names, stored in
        the window set as ``species_labels``.
    out_path
        The HDF5 file to write (atomically).
    spectrogram_settings
        The rate recordings are read at, and the spectrograms' settings.
    settings
        ``workers`` (processes decoding recordings in parallel);
        ``on_unreadable``: ``"stop"`` (a missing or undecodable recording
        raises) or ``"skip"`` (it is left out, with its events, and listed in
        the report); ``background_windows`` (windows per recording cut where
        no event is, labels all unknown); ``windows_per_event`` (a number,
        or ``"auto"``: by species, :func:`windows_per_call`).
    events_path
        If given, a CSV that gets the labelled events as validated (column
        ``present``: from train_tp.csv), written after the window set.

    Returns
    -------
    EtlReport
        Counts of recordings read and skipped (with the reasons), windows
        written, and events skipped, dropped as duplicates, clamped to their
        recording's end or with a frequency band above the Nyquist frequency.

    Raises
    ------
    LabelError
        If a label file is malformed or has no events, or an event starts
        after its recording's end.
    AudioError
        If (with ``"stop"``) a recording has no audio file or cannot be
        decoded, or every recording was skipped.
    """
    dataset_dir, reviews_dir = Path(data.dataset_dir), Path(data.reviews_dir)
    species, _ = read_species(dataset_dir / "sample_submission.csv")
    names = read_species_names(dataset_dir, species)
    events, duplicates = read_dataset_events(
        dataset_dir, names, annotations=data.annotations, species_column=data.species_column
    )
    if data.annotations == "competition":
        listed_in, source = "train_tp.csv and train_fp.csv", dataset_dir / "train_tp.csv"
    else:
        listed_in, source = f"the {data.annotations} annotations", dataset_dir / "train"
    train_dir = dataset_dir / "train"
    recordings = index_recordings(train_dir)
    reviewed = read_reviewed_events(reviews_dir, names)
    if len(reviewed):
        recordings = _with_reviewed_recordings(recordings, reviews_dir / REVIEWED_RECORDINGS)
        events = pd.concat([events, reviewed], ignore_index=True)
        listed_in += f" and {reviews_dir / REVIEWED_LABELS}"
    if not events["present"].any():
        raise LabelError(f"{source}: holds no events; etl needs at least one labelled call")
    report = EtlReport(
        events_dropped_as_duplicates=duplicates,
        events_above_nyquist=_count_band_above_nyquist(events, spectrogram_settings.sample_rate),
        events_reviewed=len(reviewed),
    )
    audio, missing = audio_files(
        train_dir,
        list(events["recording_id"].unique()),
        listed_in=listed_in,
        index=recordings,
        on_missing=settings.on_unreadable,
        hint=" (or set etl.on_unreadable: skip in params.yaml to leave them out)",
    )
    skipped = dict.fromkeys(missing, f"no audio file in {train_dir}")
    features, n_frames = spectrogram_settings.features, spectrogram_settings.window_frames
    calls = events[events["present"]]["species_id"].value_counts()
    per_call = windows_per_call({i: int(calls.get(i, 0)) for i in range(len(species))}, settings.windows_per_event)
    report.windows_per_call = {species[i]: n for i, n in per_call.items()}
    _log_windows_per_call(settings.windows_per_event, per_call, calls, species)
    jobs = [
        RecordingJob(
            recording_id,
            audio[recording_id],
            group.reset_index(drop=True),
            spectrogram_settings,
            len(species),
            skip_unreadable=settings.on_unreadable == "skip",
            n_background=settings.background_windows,
            windows_per_event=tuple(per_call[i] for i in group["species_id"]),
        )
        for recording_id, group in events.groupby("recording_id", sort=True)
        if recording_id in audio
    ]
    log.info(
        "%s: %d events (%d present, %d absent) in %d recordings; %d workers",
        dataset_dir,
        len(events),
        int(events["present"].sum()),
        int((~events["present"]).sum()),
        len(jobs) + len(missing),
        settings.workers,
    )
    attrs = {
        "sample_rate": spectrogram_settings.sample_rate,
        "window_seconds": features.window_seconds,
        "n_fft": features.n_fft,
        "hop_length": features.hop_length,
        "n_mels": features.n_mels,
        "fmin": features.fmin,
        "fmax": features.fmax,
        "species": species,
    }
    if names.labels is not None:  # only then, so a dataset without names gives the same bytes as before
        attrs["species_labels"] = list(names.labels)
    writer = WindowWriter(
        out_path,
        n_mels=features.n_mels,
        n_frames=n_frames,
        n_species=len(species),
        n_samples=window_span_samples(n_frames, features),
        attrs=attrs,
    )
    background_windows = 0
    with writer, ordered_map(settings.workers) as map_in_order:
        results = map_in_order(_recording_job, jobs)
        for result in tqdm(results, total=len(jobs), desc="etl", unit="rec", disable=None):
            if isinstance(result, Skipped):
                skipped[result.recording_id] = result.reason
                continue
            writer.append(**result.windows)
            report.recordings_read += 1
            report.events_clamped += result.events_clamped
            background_windows += int((result.windows["event_species"] == -1).sum())
        if not report.recordings_read:
            first = min(skipped)
            raise AudioError(
                f"{train_dir}: all {len(skipped)} labelled recording(s) were skipped as unreadable, so there is "
                f"nothing to write (first: {first}: {skipped[first]})"
            )
    report.windows_written = writer.n_windows
    if settings.background_windows and not background_windows:
        log.warning(
            "no background window: in every recording the labelled events leave no %g s free of calls, so the "
            "model never sees what no call sounds like and may score background high; label recordings with "
            "quiet stretches, or shorten features.window_seconds",
            features.window_seconds,
        )
    if events_path is not None:
        write_text(events_path, events[[*EVENT_COLUMNS, "present"]].to_csv(index=False))
    report.skipped = [{"recording_id": r, "reason": skipped[r]} for r in sorted(skipped)]
    report.recordings_skipped = len(skipped)
    report.events_skipped = int(events["recording_id"].isin(skipped).sum())
    _log_report(report)
    return report


def _with_reviewed_recordings(recordings: dict[str, Path], folder: Path) -> dict[str, Path]:
    # The reviewed recordings that are not in train/ (rainforest-review import
    # copies them there, under ids that no train/ recording has).
    reviewed = index_recording_tree(folder) if folder.is_dir() else {}
    both = sorted(set(recordings) & set(reviewed))
    if both:
        raise AudioError(
            f"{folder}: recording {both[0]!r} is also in the dataset's train/ ({recordings[both[0]]}); an id must "
            "name one recording: remove or rename the copy and its rows in labels.csv"
        )
    return recordings | reviewed


def _count_band_above_nyquist(events: pd.DataFrame, sample_rate: int) -> int:
    # Such a band cannot be seen at this sample rate, but nothing depends on
    # it: say so, and keep the event.
    above = events["f_max"] > sample_rate / 2
    if above.any():
        first = events[above].iloc[0]
        log.warning(
            "%d event(s) have f_max above %g Hz, the Nyquist frequency of audio.sample_rate (first: %s line %d); "
            "accepted: windows are cut by time only, the frequency band is not used for features",
            int(above.sum()),
            sample_rate / 2,
            first["source"],
            first["line"],
        )
    return int(above.sum())


def _log_windows_per_call(setting: int | str, per_call: dict[int, int], calls: pd.Series, species: list[str]) -> None:
    # What "auto" chose, and why: the run's report holds it too (windows_per_call).
    if setting != "auto":
        return
    groups: dict[int, list[str]] = {}
    for i, n in per_call.items():
        groups.setdefault(n, []).append(f"{species[i]} ({int(calls.get(i, 0))} calls)")
    log.info(
        "etl.windows_per_event: auto, at least %d windows of each species' calls (at most %d along one): %s",
        AUTO_WINDOWS_PER_SPECIES,
        AUTO_MAX_WINDOWS_PER_CALL,
        "; ".join(
            f"{n} per call for {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
            for n, names in sorted(groups.items())
        ),
    )


def _log_report(report: EtlReport) -> None:
    if report.events_clamped:
        log.warning(
            "%d event(s) run past the end of their recording: t_max clamped to the recording's end",
            report.events_clamped,
        )
    for item in report.skipped:
        log.warning("skipped recording %s: %s", item["recording_id"], item["reason"])
    if report.skipped:
        log.warning(
            "skipped %d unreadable recording(s) holding %d event(s); listed in the etl report",
            report.recordings_skipped,
            report.events_skipped,
        )


def write_window_set(
    *,
    data: DataSettings,
    spectrogram_settings: SpectrogramSettings,
    settings: EtlSettings,
    windows_path: str | Path,
    metrics_path: str | Path,
    events_path: str | Path | None = None,
    report_path: str | Path,
) -> EtlReport:
    """The etl stage: :func:`build_window_set`, then its report.

    ``metrics_path`` gets the headline counts that ``dvc metrics show``
    tracks (recordings read and skipped, windows written); ``report_path``
    the whole report: each skipped recording with the reason, and the events
    dropped as duplicates, clamped to their recording's end or skipped with
    their recording. ``data`` (the ``data`` settings) names the dataset and
    its annotations' format and the reviewed labels read besides them.
    """
    report = build_window_set(
        data, windows_path, spectrogram_settings=spectrogram_settings, settings=settings, events_path=events_path
    )
    write_json(report_path, report.to_dict())
    write_json(metrics_path, report.headline())
    log.info(
        "etl: wrote %d windows from %d recordings to %s (%d skipped; report in %s)",
        report.windows_written,
        report.recordings_read,
        windows_path,
        report.recordings_skipped,
        report_path,
    )
    return report
