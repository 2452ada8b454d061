"""DVC remotes on real servers: ``dvc push`` and ``dvc pull`` over SSH and S3.

Each test starts its own server on 127.0.0.1 (:mod:`tests.support.servers`):
Debian's OpenSSH ``sshd`` for an ``ssh://`` remote (plugin ``dvc-ssh``), and
moto's S3-compatible server for an ``s3://`` remote (``dvc-s3``), as
docs/remotes.md configures them: the URL in the committed ``.dvc/config``, the
credentials (SSH user and key file, S3 keys) in ``.dvc/config.local``, which
git does not track. The client reaches the server through a
:class:`~tests.support.servers.ThrottledProxy`, unthrottled except where a
test needs a slow upload.

* **Round trip.** The outputs of ``demo`` and ``etl`` on a tiny demo dataset
  (the cheapest stages that write real DVC-cached outputs: a folder of 27
  recordings and 4 label files, the HDF5 window set) go up with ``dvc push``;
  a fresh ``git clone`` with its own credentials gets them back with
  ``dvc pull``, byte for byte, and ``dvc repro etl`` there runs nothing.
* **Interrupted push.** A ``dvc push`` killed (SIGKILL) while uploading, with
  some objects on the remote and others not, completes when run again: the
  remote then holds every object the outputs need, each one's content matching
  its name (the MD5 that DVC addresses it by), and a fresh clone pulls every
  output byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from benchmarks.project import copy_project, make_project, project_env, run
from tests.support.project import TINY, commit, differing, output_files
from tests.support.servers import S3_KEY_ID, S3_SECRET, ThrottledProxy, s3_server, ssh_server

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

#: The stage whose outputs (and those of ``demo`` before it) are shared.
TARGET = "etl"
#: Seconds any one dvc command may take.
TIMEOUT = 300
#: Upload rate (bytes/s) of the push that is interrupted: the 34 MB of
#: outputs take about 9 s, so the kill comes well before the end.
SLOW_UPLOAD = 4e6
BUCKET = "rainforest-dvc"


@dataclass
class Remote:
    """A remote on a running server, as a project configures it."""

    kind: str
    url: str
    #: ``dvc remote modify`` options committed in .dvc/config (besides the URL).
    committed: dict[str, str]
    #: Credentials: ``dvc remote modify --local`` options, in .dvc/config.local.
    credentials: dict[str, str]
    proxy: ThrottledProxy
    #: The remote's objects, as ``xx/yyyy...`` paths below ``files/md5``.
    objects: Callable[[], set[str]]
    #: The content of one object, by its path from :attr:`objects`.
    read: Callable[[str], bytes]
    #: Strings that must not appear in git (the secrets themselves).
    secrets: list[str]


@pytest.fixture(params=["ssh", "s3"])
def remote(request, tmp_path) -> Iterator[Remote]:
    if request.param == "ssh":
        folder = tmp_path / "ssh-remote"
        with ssh_server(tmp_path / "sshd") as server, ThrottledProxy(server.port, None) as proxy:
            store = folder / "files" / "md5"

            def objects() -> set[str]:
                # Without the hidden .tmp files of uploads cut short.
                if not store.exists():
                    return set()
                return {
                    p.relative_to(store).as_posix()
                    for p in store.rglob("*")
                    if p.is_file() and not p.name.startswith(".")
                }

            yield Remote(
                "ssh",
                f"ssh://127.0.0.1:{proxy.port}{folder}",
                {},
                {"user": server.user, "keyfile": str(server.keyfile)},
                proxy,
                objects,
                lambda name: (store / name).read_bytes(),
                [server.keyfile.read_text()],
            )
    else:
        with s3_server(tmp_path / "moto") as server, ThrottledProxy(server.port, None) as proxy:
            client = server.client()
            client.create_bucket(Bucket=BUCKET)
            prefix = "store/files/md5/"

            def objects() -> set[str]:
                return {key.removeprefix(prefix) for key in server.keys(BUCKET) if key.startswith(prefix)}

            def read(name: str) -> bytes:
                return client.get_object(Bucket=BUCKET, Key=prefix + name)["Body"].read()

            yield Remote(
                "s3",
                f"s3://{BUCKET}/store",
                {"endpointurl": f"http://127.0.0.1:{proxy.port}"},
                {"access_key_id": S3_KEY_ID, "secret_access_key": S3_SECRET},
                proxy,
                objects,
                read,
                [S3_KEY_ID, S3_SECRET],
            )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """A tiny project with ``demo`` and ``etl`` run and committed (dvc.lock
    in git, the outputs in the DVC cache)."""
    path = make_project(tmp_path_factory.mktemp("remotes") / "project", TINY)
    run(["dvc", "repro", TARGET], path, timeout=TIMEOUT)
    commit(path, "demo and etl")
    return path


def add_credentials(path: Path, remote: Remote) -> None:
    for option, value in remote.credentials.items():
        run(["dvc", "remote", "modify", "--local", "storage", option, value], path)


def origin_with_remote(pipeline: Path, target: Path, remote: Remote) -> Path:
    """A copy of the pipeline's repository with ``remote`` as its default,
    the URL committed and the credentials in .dvc/config.local."""
    origin = copy_project(pipeline, target)
    run(["dvc", "remote", "add", "-d", "storage", remote.url], origin)
    for option, value in remote.committed.items():
        run(["dvc", "remote", "modify", "storage", option, value], origin)
    commit(origin, f"{remote.kind} remote")
    add_credentials(origin, remote)
    return origin


def shared_objects(path: Path) -> set[str]:
    """The objects ``dvc push`` sends, as paths below ``files/md5``: those of
    the cached outputs in dvc.lock, a folder's listing and its files. (Not the
    uncached metrics, which the cache holds for the run cache only.)"""
    stages = yaml.safe_load((path / "dvc.yaml").read_text())["stages"]
    cached = {
        out if isinstance(out, str) else next(iter(out))
        for stage in stages.values()
        for out in stage.get("outs", [])
        if isinstance(out, str) or next(iter(out.values())).get("cache", True)
    }
    oids = set()
    for stage in yaml.safe_load((path / "dvc.lock").read_text())["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] in cached:
                oids.add(out["md5"])
                if out["md5"].endswith(".dir"):
                    listing = path / ".dvc" / "cache" / "files" / "md5" / out["md5"][:2] / out["md5"][2:]
                    oids.update(entry["md5"] for entry in json.loads(listing.read_text()))
    return {f"{oid[:2]}/{oid[2:]}" for oid in oids}


def assert_credentials_stay_out_of_git(origin: Path, remote: Remote) -> None:
    tracked = run(["git", "ls-files"], origin).stdout.split()
    assert ".dvc/config" in tracked and ".dvc/config.local" not in tracked, tracked
    assert run(["git", "check-ignore", ".dvc/config.local"], origin, check=False).returncode == 0
    committed = run(["git", "show", "HEAD:.dvc/config"], origin).stdout
    assert remote.url in committed, committed
    for option in remote.credentials:
        assert f"{option} =" not in committed, committed
    for secret in remote.secrets:
        assert secret.strip() not in committed, committed
    local = (origin / ".dvc" / "config.local").read_text()
    assert all(value in local for value in remote.credentials.values()), local


def pull_into_fresh_clone(origin: Path, target: Path, remote: Remote) -> Path:
    """``git clone`` of ``origin``, its own credentials, ``dvc pull``; the
    clone has none of the outputs before."""
    run(["git", "clone", "-q", str(origin), str(target)], origin.parent)
    assert not (target / ".dvc" / "config.local").exists()
    assert not (target / "data" / "features" / "windows.h5").exists()
    add_credentials(target, remote)
    # The stages after etl have not run: pull what etl and demo wrote.
    run(["dvc", "pull", "--with-deps", TARGET], target, timeout=TIMEOUT)
    return target


def assert_same_outputs_and_nothing_to_run(clone: Path, pipeline: Path) -> None:
    expected = output_files(pipeline)
    assert expected and None not in expected.values()
    assert differing(expected, output_files(clone)) == []
    status = run(["dvc", "status", TARGET], clone, timeout=TIMEOUT).stdout
    assert "Data and pipelines are up to date." in status, status
    log = run(["dvc", "repro", TARGET], clone, timeout=TIMEOUT)
    assert "Running stage" not in log.stdout + log.stderr, log.stdout + log.stderr


def assert_content_addressed(remote: Remote) -> None:
    """Every object on the remote is whole: its MD5 is its name."""
    for name in sorted(remote.objects()):
        oid = name.replace("/", "").removesuffix(".dir")
        assert hashlib.md5(remote.read(name)).hexdigest() == oid, f"{name} on the {remote.kind} remote is damaged"


def settled(objects: Callable[[], set[str]], timeout: float = 30.0) -> set[str]:
    """The remote's objects once two listings half a second apart agree (a
    server may still be storing an upload it had whole before the cut)."""
    deadline = time.monotonic() + timeout
    before = objects()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        after = objects()
        if after == before:
            return after
        before = after
    raise AssertionError(f"the remote's objects still changed {timeout:.0f} s after the push was killed")


def test_push_and_pull_into_a_fresh_clone_gives_the_same_bytes_and_reruns_nothing(pipeline, remote, tmp_path):
    origin = origin_with_remote(pipeline, tmp_path / "origin", remote)
    assert_credentials_stay_out_of_git(origin, remote)
    run(["dvc", "push"], origin, timeout=TIMEOUT)
    assert remote.objects() == shared_objects(origin)
    assert "in sync" in run(["dvc", "status", "--cloud"], origin, timeout=TIMEOUT).stdout

    clone = pull_into_fresh_clone(origin, tmp_path / "clone", remote)
    assert_same_outputs_and_nothing_to_run(clone, pipeline)


def test_an_interrupted_push_completes_on_retry(pipeline, remote, tmp_path):
    origin = origin_with_remote(pipeline, tmp_path / "origin", remote)
    cached = shared_objects(origin)
    remote.proxy.rate = SLOW_UPLOAD
    push = subprocess.Popen(
        ["dvc", "push"],
        cwd=origin,
        env=project_env(origin),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while not remote.objects() and push.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if push.poll() is None:
        os.killpg(push.pid, signal.SIGKILL)
    log = push.communicate()[0]
    assert push.returncode == -signal.SIGKILL, f"dvc push ended ({push.returncode}) before it was killed:\n{log}"
    remote.proxy.cut()
    reached = settled(remote.objects)
    assert reached, f"no object reached the remote in {TIMEOUT} s:\n{log}"
    # The kill came partway: some objects are there, the others are not.
    assert reached < cached, f"{len(reached)} of {len(cached)} objects on the remote after the kill"

    remote.proxy.rate = None
    retry = run(["dvc", "push"], origin, timeout=TIMEOUT)
    pushed = re.search(r"(\d+) files? pushed", retry.stdout)
    assert pushed and int(pushed[1]) == len(cached - reached), retry.stdout
    assert remote.objects() == cached
    assert_content_addressed(remote)

    clone = pull_into_fresh_clone(origin, tmp_path / "clone", remote)
    assert_same_outputs_and_nothing_to_run(clone, pipeline)
