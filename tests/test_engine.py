"""Detection over folder trees, on a local Dask cluster and on a cluster started by hand.

Real clusters: ``rainforest-detect --workers 2`` starts a local one; the
kill test starts a scheduler and two workers with Dask's own ``dask``
command, as a user does on a cluster, and kills one of them mid-run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rainforest.detect.run import find_recordings
from rainforest.errors import AudioError
from tests.support.detector import SCRIPT, save_tiny_model, write_recording, write_recordings
from tests.support.settings import RATE

DASK = Path(sys.executable).parent / "dask"


def _outputs(out: Path) -> dict[str, bytes]:
    # Every file the command writes for the user: all but its journal.
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and ".journal" not in p.parts
    }


def _journal_ids(out: Path) -> list[str]:
    lines = (out / ".journal" / "journal.jsonl").read_text().splitlines()
    return sorted(json.loads(line)["recording"] for line in lines)


def _detect(*argv) -> subprocess.CompletedProcess:
    result = subprocess.run([SCRIPT, *map(str, argv)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_folders_are_searched_at_any_depth_with_path_ids(tmp_path):
    for name in [
        "SD01/0500.wav",
        "SD02/0500.flac",
        "SD02/deep/0600.ogg",
        "notes.txt",
        ".hidden/0700.wav",
        "SD01/.0500.wav.part.wav",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    found = find_recordings([tmp_path])
    assert found == {
        "SD01/0500": tmp_path / "SD01/0500.wav",
        "SD02/0500": tmp_path / "SD02/0500.flac",
        "SD02/deep/0600": tmp_path / "SD02/deep/0600.ogg",
    }
    # A file given directly keeps its plain name.
    assert list(find_recordings([tmp_path / "SD02/deep/0600.ogg"])) == ["0600"]
    (tmp_path / "SD01/0500.flac").touch()  # one recording in two formats: which one?
    with pytest.raises(AudioError, match=r"SD01: recording '0500' exists as both 0500.flac and 0500.wav"):
        find_recordings([tmp_path])


def test_the_process_that_hands_out_recordings_does_not_load_tensorflow(tmp_path):
    # A Dask client (often a login node) and a run that stops at a bad argument need no
    # TensorFlow: everything but scoring reads the model's card from its archive as JSON.
    model = save_tiny_model(tmp_path)
    probe = (
        "import sys\n"
        "from rainforest.card import load_card\n"
        "from rainforest.detect.run import detect_recordings, find_recordings\n"
        "from rainforest.detect.cli import detect\n"
        "from rainforest.detect.engine import DetectionJob, detection_results\n"
        f"assert load_card({str(model)!r}).species\n"
        f"assert detect([{str(tmp_path / 'missing')!r}, '--model', {str(model)!r}]) == 1\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "missing: no such file or folder" in result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.mark.slow
def test_a_local_cluster_writes_what_one_process_writes(model, tmp_path):
    # A tree as recorders leave it: the same file names on every card, one unreadable file.
    archive = tmp_path / "archive"
    for card in ["SD01", "SD02/north"]:
        for hour in ["0500", "0600", "0700"]:
            write_recording(archive / card / f"{hour}.wav", RATE, 1, 3.0, "WAV", "PCM_16")
    (archive / "SD01" / "0800.wav").write_bytes(b"RIFF, but cut short")
    options = [archive, "--model", model, "--all", "--skip-unreadable"]  # every score: all compared

    one = _detect(*options, "-o", tmp_path / "one", "--workers", "1")
    two = _detect(*options, "-o", tmp_path / "two", "--workers", "2")
    assert "local Dask cluster of 2 worker process(es)" in two.stderr
    assert "local Dask cluster" not in one.stderr
    assert _outputs(tmp_path / "two") == _outputs(tmp_path / "one")

    outputs = _outputs(tmp_path / "one")
    assert {"SD01/0500.Table.1.selections.txt", "SD02/north/0700.Table.1.selections.txt"} <= set(outputs)
    recordings = [line.split(",")[0] for line in outputs["detections.csv"].decode().splitlines()[1:]]
    assert sorted(set(recordings)) == [
        "SD01/0500",
        "SD01/0600",
        "SD01/0700",
        "SD02/north/0500",
        "SD02/north/0600",
        "SD02/north/0700",
    ]
    assert outputs["skipped.csv"].decode().splitlines()[1].startswith("SD01/0800,")


@pytest.fixture
def cluster(tmp_path):
    """A Dask scheduler and two single-threaded workers, started with the ``dask`` command; yields a client."""
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    processes = [
        subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                scheduler_file,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the Dask scheduler did not start within 60 s"
            time.sleep(0.1)
        for _ in range(2):  # no nanny: a killed worker stays dead
            processes.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        "--scheduler-file",
                        scheduler_file,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        with Client(scheduler_file=str(scheduler_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            yield client
    finally:
        for process in processes:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster, model, tmp_path):
    archive = tmp_path / "archive"
    ids = [f"SD0{i % 4}/rec_{i:02d}" for i in range(40)]
    for recording_id in ids:
        write_recording(archive / f"{recording_id}.wav", RATE, 1, 20.0, "WAV", "PCM_16")
    # One window at a time, every 50 ms: long enough a run to kill a worker in it.
    options = [archive, "--model", model, "--all", "--batch-size", "1", "--hop-seconds", "0.05"]
    _detect(*options, "-o", tmp_path / "whole", "--workers", "1")

    out = tmp_path / "cluster"
    run = subprocess.Popen(
        [SCRIPT, *map(str, options), "-o", str(out), "--scheduler", cluster.scheduler.address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = out / ".journal" / "journal.jsonl"
    deadline, victim = time.monotonic() + 300, None
    while victim is None and time.monotonic() < deadline and run.poll() is None:
        busy = {worker: keys for worker, keys in cluster.processing().items() if keys}
        if journal.exists() and journal.read_text().count("\n") >= 3 and busy:
            victim, lost = next(iter(busy.items()))
            os.kill(cluster.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
        time.sleep(0.01)
    assert victim is not None, "the run ended (or never started) before a worker could be killed"
    finished_at_kill = journal.read_text().count("\n")
    assert run.wait(timeout=600) == 0, run.stderr.read()
    assert finished_at_kill < len(ids), "the run had finished when the worker was killed"

    assert victim not in cluster.scheduler_info()["workers"]
    # The lost worker's recordings were scored again, by the other; each recording once.
    lost_ids = {key.split("-", 2)[2] for key in lost}
    assert lost_ids and lost_ids <= set(ids)
    assert _journal_ids(out) == sorted(ids)
    assert _outputs(out) == _outputs(tmp_path / "whole")


# --- a failure or Ctrl-C ends a run promptly ---------------------------------------

#: Seconds a run that stops at a bad file may take (the program's start with TensorFlow included,
#: on a busy 2-core machine); a run that hangs fails the test here instead of hanging CI.
STOP_LIMIT = 120

#: How the recordings are decoded and scored: one or two decoding threads beside the model in this
#: process (the threads follow the cores the process may use), or a local Dask cluster.
RUNS_ON = {
    "one-decoding-thread": ({0}, ["--workers", "1"]),
    "two-decoding-threads": ({0, 1}, ["--workers", "1"]),
    "local-dask-cluster": ({0, 1}, ["--workers", "2"]),
}


def _as_from_a_terminal(cores: set[int]) -> None:
    """In the child before it starts: pin it to ``cores``, and let SIGINT stop it, as in a terminal. A test
    run started in the background by a non-interactive shell (``pytest &``) ignores SIGINT, the child would
    inherit that, and Python would then install no KeyboardInterrupt handler."""
    os.sched_setaffinity(0, cores)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_within(argv: list, *, cores: set[int], limit: float, interrupt_after: int | None = None, out: Path):
    """Run ``rainforest-detect`` on ``cores``; fail the test unless it ends within ``limit`` seconds.

    ``interrupt_after``: send SIGINT, as Ctrl-C does, once the journal holds that many recordings.
    Returns the finished process, its stderr and its wall time.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        [SCRIPT, *map(str, argv), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a hung run is killed whole, Dask workers too
        preexec_fn=lambda: _as_from_a_terminal(cores),
    )
    journal = out / ".journal" / "journal.jsonl"
    try:
        if interrupt_after is not None:
            while not (journal.exists() and journal.read_text().count("\n") >= interrupt_after):
                assert process.poll() is None, "the run ended before it could be interrupted"
                assert time.monotonic() < started + limit, "the run did not get going"
                time.sleep(0.01)
            interrupted = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C does: to every process of the run
            _, stderr = process.communicate(timeout=limit)
            return process, stderr, time.monotonic() - interrupted
        _, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"rainforest-detect {' '.join(map(str, argv))} still running after {limit} s: it hangs")
    return process, stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def twelve(tmp_path_factory) -> Path:
    """Twelve short FLAC recordings, 00 to 11."""
    return write_recordings(tmp_path_factory.mktemp("twelve"), 12, seconds=3.0, name="{:02d}.flac")


def _corrupt(path: Path) -> None:
    # Garbage over the middle of the audio: the header reads, decoding fails ("cannot decode audio").
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 2000] = b"\xff" * 2000
    path.write_bytes(bytes(data))


@pytest.mark.slow
@pytest.mark.parametrize("runs_on", list(RUNS_ON))
@pytest.mark.parametrize(("where", "bad"), [("first", "00"), ("middle", "05"), ("last", "11")])
def test_a_corrupt_recording_stops_the_run_promptly(twelve, model, tmp_path, runs_on, where, bad):
    folder = tmp_path / "recordings"
    shutil.copytree(twelve, folder)
    _corrupt(folder / f"{bad}.flac")
    cores, options = RUNS_ON[runs_on]
    process, stderr, wall = _run_within(
        [folder, "--model", model, *options], cores=cores, limit=STOP_LIMIT, out=tmp_path / "out"
    )
    print(f"corrupt recording {where}, {runs_on}: exit {process.returncode} in {wall:.1f} s")
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    [error] = [line for line in stderr.splitlines() if line.startswith("rainforest-detect: error:")]
    assert f"{bad}.flac: cannot decode audio" in error
    assert error.endswith("or remove it (or pass --skip-unreadable to leave it out)")
    assert "label rows" not in error


@pytest.mark.slow
@pytest.mark.parametrize("runs_on", ["one-decoding-thread", "local-dask-cluster"])
def test_ctrl_c_stops_a_run_at_once_and_the_same_command_continues(model, runs_on, tmp_path):
    archive = write_recordings(tmp_path / "archive", 30, seconds=20.0)
    cores, options = RUNS_ON[runs_on]
    argv = [archive, "--model", model, "--min-score", "0.4", *options]
    _, _, whole_wall = _run_within(argv, cores=cores, limit=300, out=tmp_path / "whole")

    out = tmp_path / "interrupted"
    process, stderr, stop_wall = _run_within(argv, cores=cores, limit=30, interrupt_after=3, out=out)
    print(f"Ctrl-C, {runs_on}: exit {process.returncode} {stop_wall:.1f} s after SIGINT")
    assert process.returncode == 130, stderr
    assert "rainforest-detect: interrupted" in stderr
    assert "the same command continues from there" in stderr
    assert not (out / "detections.csv").exists()
    finished = _journal_ids(out)
    assert 3 <= len(finished) < 30, "the run was not interrupted part-way"
    assert len(set(finished)) == len(finished)

    process, stderr, rest_wall = _run_within(argv, cores=cores, limit=300, out=out)
    print(f"uninterrupted run {whole_wall:.1f} s; the resumed run {rest_wall:.1f} s")
    assert process.returncode == 0, stderr
    assert f"{len(finished)} of 30 recording(s) already done" in stderr
    assert _journal_ids(out) == sorted(f"rec_{i:02d}" for i in range(30))  # none scored twice
    assert _outputs(out) == _outputs(tmp_path / "whole")
