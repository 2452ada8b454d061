"""Real servers on the loopback interface, for the tests of DVC remotes.

:func:`ssh_server` starts Debian's OpenSSH ``sshd`` on 127.0.0.1 with a host
key and an authorized client key of its own (for the current user), and
:func:`s3_server` starts moto's S3-compatible server (``moto_server``, as
DVC's own S3 tests use). :class:`ThrottledProxy` sits between a client and
either server and slows the client's uploads down, so that a test can kill a
``dvc push`` while it is still under way. Everything listens on 127.0.0.1 at
a free port, waits a bounded time for the server to come up (failing with
its log if it does not) and stops it on exit.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: Seconds a server may take to accept connections before the test fails.
START_TIMEOUT = 30.0
SSHD = Path("/usr/sbin/sshd")
#: Dummy credentials for moto (it accepts any).
S3_KEY_ID = "testing-key-id"
S3_SECRET = "testing-secret-key"


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> None:
    """Return once ``port`` on 127.0.0.1 accepts a connection.

    Raises
    ------
    RuntimeError
        If ``process`` exits first, or ``timeout`` seconds pass; the message
        holds the server's log.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args[0]} exited ({process.returncode}) before listening on "
                f"{LOOPBACK}:{port}:\n{log.read_text(errors='replace')}"
            )
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"{process.args[0]} did not listen on {LOOPBACK}:{port} within {timeout:.0f} s:\n"
        f"{log.read_text(errors='replace')}"
    )


@contextlib.contextmanager
def _serving(args: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    # Start a server, wait for its port, and stop it (kill after 10 s) on exit.
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_for_port(port, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class SSHServer:
    port: int
    user: str
    #: The client's private key, authorized for ``user``.
    keyfile: Path


@contextlib.contextmanager
def ssh_server(folder: Path) -> Iterator[SSHServer]:
    """``sshd`` on 127.0.0.1 at a free port, keys and config in ``folder``.

    Only public-key logins, for the current user, with the client key
    ``folder/client_key``; SFTP for DVC. ``StrictModes no``, because pytest's
    temporary folders are not laid out as ``~/.ssh`` is.
    """
    if not SSHD.exists():
        raise RuntimeError(f"{SSHD} is missing: apt-get install openssh-server")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ["host_key", "client_key"]:
        for old in [folder / name, folder / f"{name}.pub"]:
            old.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
            check=True,
            capture_output=True,
        )
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    # sshd refuses to start without its privilege separation folder.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {LOOPBACK}:{port}",
                f"HostKey {folder / 'host_key'}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                f"PidFile {folder / 'sshd.pid'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {getpass.getuser()}",
                "StrictModes no",
                "UsePAM no",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
            ]
        )
        + "\n"
    )
    # -D: stay in the foreground; -e: log to stderr (the log file).
    with _serving([str(SSHD), "-D", "-e", "-f", str(config)], port, folder / "sshd.log"):
        yield SSHServer(port, getpass.getuser(), folder / "client_key")


@dataclass(frozen=True)
class S3Server:
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self):
        """A boto3 S3 client of this server, with the dummy credentials."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
        )

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextlib.contextmanager
def s3_server(folder: Path) -> Iterator[S3Server]:
    """moto's S3-compatible server on 127.0.0.1 at a free port (objects in
    memory, gone when it stops); its log in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    moto_server = Path(sys.executable).parent / "moto_server"
    args = [str(moto_server)] if moto_server.exists() else [sys.executable, "-m", "moto.server"]
    with _serving(
        [*args, "-H", LOOPBACK, "-p", str(port)],
        port,
        folder / "moto.log",
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    ):
        yield S3Server(port)


class ThrottledProxy:
    """A TCP proxy on 127.0.0.1 that forwards to ``target_port`` there,
    passing at most ``rate`` bytes per second from the clients to the server
    (all connections together; ``rate=None``: no limit). :attr:`rate` may be
    changed while it runs; :meth:`cut` cuts the connections. Use it as a
    context manager."""

    CHUNK = 16 * 1024

    def __init__(self, target_port: int, rate: float | None):
        self.target_port = target_port
        self.rate = rate
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._next_send = time.monotonic()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> ThrottledProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def cut(self) -> None:
        """Cut every open connection, dropping what the proxy holds of it and
        has not passed on yet, as a network failure would. (A client killed
        mid-upload leaves its last requests in the proxy's socket buffers,
        which would otherwise still reach the server, slowly.)"""
        cut, self._sockets = self._sockets, []
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((LOOPBACK, self.target_port))
            except OSError:
                client.close()
                continue
            # No Nagle delays: SFTP and HTTP wait for many small replies.
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _wait_for_budget(self, size: int) -> None:
        # A shared schedule: each chunk may go once the ones before it have
        # had their share of the rate.
        rate = self.rate
        if not rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_send)
            self._next_send = start + size / rate
        time.sleep(max(0.0, start - now))

    def _pump(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        try:
            while data := source.recv(self.CHUNK):
                if upload:
                    self._wait_for_budget(len(data))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
