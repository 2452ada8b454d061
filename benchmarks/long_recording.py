"""The long-recording benchmark: ``rainforest-detect`` on one recording of many hours.

Continuous recorders write day-long files. Scoring streams each recording in
blocks, so memory must stay flat in its length: this writes one recording of
each length asked for (a demo test recording repeated, with fresh noise in
each minute so no two minutes are alike, as 16-bit RF64 WAV at the model's
rate), runs ``rainforest-detect`` on it with the given model, and prints one
Markdown row per length: wall time, audio seconds scored per second, and the
peak resident memory of the whole process.

Usage::

    python -m benchmarks.long_recording --model models/model.keras --hours 2 24

It needs the model's ``detector.json`` beside it (``dvc repro`` writes both)
and, for 24 hours, about 8.3 GB of free disk under ``--workdir``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.measure import measure

ROOT = Path(__file__).resolve().parents[1]
#: Seconds of audio written at a time.
WRITE_SECONDS = 60


def write_long_recording(path: Path, hours: float, source: Path, sample_rate: int) -> float:
    """Write ``hours`` of ``source`` repeated, with fresh low noise each minute; returns its seconds."""
    minute, _ = sf.read(source, dtype="float32", always_2d=False)
    minute = np.resize(minute, WRITE_SECONDS * sample_rate)
    n_blocks = max(1, round(hours * 3600 / WRITE_SECONDS))
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format="RF64") as out:
        for _ in range(n_blocks):
            out.write(np.clip(minute + 0.003 * rng.standard_normal(len(minute)).astype(np.float32), -1, 1))
    return n_blocks * WRITE_SECONDS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.long_recording", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, default=ROOT / "models/model.keras", help="trained model (default: %(default)s)"
    )
    parser.add_argument("--source", type=Path, help="recording to repeat (default: the first demo test recording)")
    parser.add_argument("--hours", type=float, nargs="+", default=[2.0, 24.0], help="lengths (default: 2 24)")
    parser.add_argument("--workdir", type=Path, help="where the recordings go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    from rainforest.card import load_card

    card = load_card(args.model)
    source = args.source or sorted((ROOT / "data/demo/test").glob("*.flac"))[0]
    detect = str(Path(sys.executable).parent / "rainforest-detect")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rainforest-long-") as temporary:
        workdir = args.workdir or Path(temporary)
        for hours in args.hours:
            path = workdir / f"long_{hours:g}h.wav"
            print(f"writing {path} ...", file=sys.stderr, flush=True)
            seconds = write_long_recording(path, hours, source, card.spectrogram_settings.sample_rate)
            print(f"rainforest-detect {path} ...", file=sys.stderr, flush=True)
            wall, peak, _ = measure(
                [detect, str(path), "--model", str(args.model), "--output", str(workdir / "out")], ROOT
            )
            rows.append(f"| {seconds / 3600:g} | {wall:.0f} | {seconds / wall:.0f} | {peak / 2**20:.0f} |")
            path.unlink()
    print("| recording hours | rainforest-detect wall s | audio s / s | peak MiB |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
