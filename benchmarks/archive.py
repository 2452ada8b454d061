"""The archive benchmark: ``rainforest-detect`` over a folder tree of many one-minute recordings.

Recorders leave a season as thousands of short files on many cards. This lays
out ``--recordings`` files as a tree of cards (``SD00/…``, links to the demo
test recordings, taken in turn), then runs ``rainforest-detect`` over it as a
user would, once for each of ``--workers``. For each run it prints the audio
seconds scored per second (over the whole command, start-up included), the
peak resident memory of the command and all its workers, and whether memory
stayed flat: the mean memory while the last 10 % of the files were scored
against the first 10 % (from the first file done). Then it kills a run with SIGKILL once half the files
are done, runs the same command again, and reports how many finished files
the second run redid (none should be) and whether its outputs are the
uninterrupted run's, byte for byte. With ``--birdnet-recordings`` it also
times BirdNET-Analyzer's reference (:mod:`benchmarks.references`) on that many
of the files, for the ratio of audio seconds per second.

Usage::

    python -m benchmarks.archive --model models/model.keras --recordings 1000 --workers 1 2

It needs the model's ``detector.json`` beside it (``dvc repro`` writes both).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.measure import REFERENCES, work_seconds
from benchmarks.project import project_env

ROOT = Path(__file__).resolve().parents[1]
DETECT = str(Path(sys.executable).parent / "rainforest-detect")
#: Recordings per card folder of the tree.
PER_CARD = 100
POLL_SECONDS = 0.1


def lay_out_archive(folder: Path, sources: list[Path], n_recordings: int) -> float:
    """A tree of ``n_recordings`` links to ``sources`` (in turn), ``PER_CARD`` per card; returns its audio seconds."""
    import soundfile as sf

    seconds = 0.0
    for i in range(n_recordings):
        source = sources[i % len(sources)]
        link = folder / f"SD{i // PER_CARD:02d}" / f"{i:05d}{source.suffix}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source.resolve())
        seconds += sf.info(source).duration
    return seconds


def _finished(out: Path) -> int:
    journal = out / ".journal" / "journal.jsonl"
    return journal.read_text().count("\n") if journal.exists() else 0


def _tree_rss(process: psutil.Process) -> int:
    try:
        tree = [process, *process.children(recursive=True)]
        return sum(p.memory_info().rss for p in tree if p.is_running())
    except psutil.Error:  # a process ended between listing and reading it
        return 0


def run_detect(
    archive: Path, out: Path, model: Path, *, workers: int, n_recordings: int, kill_at: int | None = None
) -> dict:
    """Run ``rainforest-detect`` (killed with SIGKILL once ``kill_at`` files are done); its figures."""
    command = [DETECT, str(archive), "--model", str(model), "-o", str(out), "--workers", str(workers)]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=project_env(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    parent, samples = psutil.Process(process.pid), []  # (files done, memory)
    while process.poll() is None:
        done = _finished(out)
        samples.append((done, _tree_rss(parent)))
        if kill_at is not None and done >= kill_at:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return {"killed at": done}
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - started
    if kill_at is not None:
        raise RuntimeError(f"{' '.join(command)} finished before {kill_at} files were done: use more recordings")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{process.communicate()[1]}")
    tenth = max(1, n_recordings // 10)
    # From the first file done: before it the workers are still starting.
    first = [rss for done, rss in samples if 1 <= done < tenth and rss]
    last = [rss for done, rss in samples if done >= n_recordings - tenth and rss]
    return {
        "wall s": wall,
        "peak MiB": max(rss for _, rss in samples) / 2**20,
        "first 10 % MiB": statistics.mean(first) / 2**20 if first else float("nan"),
        "last 10 % MiB": statistics.mean(last) / 2**20 if last else float("nan"),
    }


def _outputs(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and ".journal" not in p.parts
    }


def archive_figures(
    model: Path,
    sources: list[Path],
    *,
    n_recordings: int,
    workers: list[int],
    workdir: Path,
    birdnet_recordings: int = 0,
) -> list[tuple[str, str]]:
    """Every figure of the archive benchmark, as (name, formatted value) rows."""
    archive = workdir / "archive"
    audio_seconds = lay_out_archive(archive, sources, n_recordings)
    rows = [("recordings; audio hours", f"{n_recordings:,}; {audio_seconds / 3600:.1f}")]
    rates = {}
    for n in workers:
        print(f"rainforest-detect --workers {n} over {n_recordings} recordings ...", file=sys.stderr, flush=True)
        figures = run_detect(archive, workdir / f"out-{n}", model, workers=n, n_recordings=n_recordings)
        rates[n] = audio_seconds / figures["wall s"]
        drift = figures["last 10 % MiB"] / figures["first 10 % MiB"] - 1
        rows += [
            (f"{n} worker(s): wall s", f"{figures['wall s']:.1f}"),
            (f"{n} worker(s): audio s / s", f"{rates[n]:,.0f}"),
            (f"{n} worker(s): peak MiB (all processes)", f"{figures['peak MiB']:,.0f}"),
            (
                f"{n} worker(s): memory, last 10 % of files vs first 10 %",
                f"{figures['first 10 % MiB']:,.0f} -> {figures['last 10 % MiB']:,.0f} MiB ({drift:+.1%})",
            ),
        ]
    n = workers[-1]
    print(f"rainforest-detect --workers {n}, killed half-way, then run again ...", file=sys.stderr, flush=True)
    resumed = workdir / "resumed"
    killed = run_detect(archive, resumed, model, workers=n, n_recordings=n_recordings, kill_at=n_recordings // 2)[
        "killed at"
    ]
    again = run_detect(archive, resumed, model, workers=n, n_recordings=n_recordings)
    redone = _finished(resumed) - n_recordings  # one journal line per file scored: any more were redone
    same = _outputs(resumed) == _outputs(workdir / f"out-{n}")
    rows += [
        ("resume: files done when killed (SIGKILL)", f"{killed:,} of {n_recordings:,}"),
        ("resume: finished files scored again by the rerun", f"{redone}"),
        ("resume: rerun wall s", f"{again['wall s']:.1f}"),
        ("resume: outputs byte-identical to the uninterrupted run", "yes" if same else "NO"),
    ]
    if birdnet_recordings:
        subset = workdir / "birdnet"
        subset.mkdir()
        for source in sources[:birdnet_recordings]:
            (subset / source.name).symlink_to(source.resolve())
        print(f"BirdNET-Analyzer on {birdnet_recordings} recordings ...", file=sys.stderr, flush=True)
        result = subprocess.run(
            [sys.executable, str(REFERENCES), "birdnet", str(subset), str(n)],
            cwd=ROOT,
            env=project_env(ROOT),
            capture_output=True,
            text=True,
            check=True,
        )
        import soundfile as sf

        birdnet_rate = sum(sf.info(s).duration for s in sources[:birdnet_recordings]) / work_seconds(
            "birdnet", result.stdout + result.stderr
        )
        rows += [
            (f"BirdNET-Analyzer, {n} processes: audio s / s", f"{birdnet_rate:,.0f}"),
            (f"{n} worker(s) / BirdNET-Analyzer", f"{rates[n] / birdnet_rate:.1f}x"),
        ]
    return rows


def archive_table(rows: list[tuple[str, str]]) -> str:
    """The archive figures as a Markdown table."""
    lines = [f"| archive run, {os.cpu_count()} cores | |", "|---|---:|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.archive", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, default=ROOT / "models/model.keras", help="trained model (default: %(default)s)"
    )
    parser.add_argument(
        "--sources",
        type=Path,
        default=ROOT / "data/demo/test",
        help="folder of recordings the archive links to (default: %(default)s)",
    )
    parser.add_argument("--recordings", type=int, default=1000, help="files in the archive (default: 1000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="--workers of each run (default: 1 2)")
    parser.add_argument(
        "--birdnet-recordings",
        type=int,
        default=0,
        help="also time BirdNET-Analyzer on this many of the recordings (default: 0, not run)",
    )
    parser.add_argument(
        "--wav",
        action="store_true",
        help="link to 16-bit WAV copies of the sources (as most recorders write) instead of them",
    )
    parser.add_argument("--workdir", type=Path, help="where the archive goes (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    sources = sorted(p for p in args.sources.iterdir() if p.suffix.lower() in (".flac", ".wav"))
    with tempfile.TemporaryDirectory(prefix="rainforest-archive-") as temporary:
        workdir = args.workdir or Path(temporary)
        if args.wav:
            import soundfile as sf

            (workdir / "wav").mkdir(parents=True)
            for i, source in enumerate(sources):
                samples, rate = sf.read(source, dtype="int16")
                sources[i] = workdir / "wav" / f"{source.stem}.wav"
                sf.write(sources[i], samples, rate, subtype="PCM_16")
        rows = archive_figures(
            args.model,
            sources,
            n_recordings=args.recordings,
            workers=args.workers,
            workdir=workdir,
            birdnet_recordings=args.birdnet_recordings,
        )
    print(archive_table(rows))


if __name__ == "__main__":
    main()
