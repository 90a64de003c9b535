"""Fixtures of the data server tests: real ``awe dataserver serve`` processes.

Each server listens on a free loopback port, serves a directory under the test's
``tmp_path`` and writes its stderr to a log file beside it, which a failure to start
shows. Every process a test starts is stopped when the test ends, killed if need be.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

TOKEN = "test-token-8c1f"
"""The bearer token the servers are started with unless a test says otherwise."""

START_TIMEOUT = 30.0
"""Seconds a server may take to answer ``GET /`` before the test fails."""


def free_port():
    """A loopback port nothing listens on now (the kernel's choice for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_random(path, size, seed, chunk=16 << 20):
    """Write ``size`` seeded random bytes to ``path`` in chunks, never holding the whole
    file in memory; return ``path``."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            left -= n
    return path


def corrupt(path, offset=0):
    """Flip one byte of a (read-only) stored file in place, as a disk fault would."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


class ServerHandle:
    """One running ``awe dataserver serve`` process.

    Attributes
    ----------
    url : `str`
        The base URL, ``http://127.0.0.1:<port>``.
    root : `pathlib.Path`
        The directory it serves.
    process : `subprocess.Popen`
        The server process; ``pid`` is its id.
    token : `str` or None
        The token it was started with.
    """

    def __init__(self, factory, root, port, process, log, options):
        self._factory, self.root, self.port, self.process = factory, root, port, process
        self.log, self.options = log, options
        self.url = f"http://127.0.0.1:{port}"
        self.token = options["token"]

    def __repr__(self):
        return f"ServerHandle({self.url!r}, root={str(self.root)!r}, pid={self.pid})"

    @property
    def pid(self):
        return self.process.pid

    def stderr(self):
        """What the server wrote to stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self):
        """Kill the server with SIGKILL, as a crash or the OOM killer would, and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        """Stop the server gracefully (SIGTERM), killing it if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self):
        """Start a new server on the same root with the same options; return its handle."""
        return self._factory.start(self.root, **self.options)

    def start_another(self, root=None, **options):
        """Start a second, independent server (its own root unless given); see
        `ServerFactory.start` for the options. It is stopped with this one."""
        return self._factory.start(root, **options)


class ServerFactory:
    """Starts servers for one test and stops them all at its end."""

    def __init__(self, tmp_path):
        self.tmp_path, self.handles = tmp_path, []

    def start(self, root=None, *, token=TOKEN, token_file=False, protect_reads=False,
              deletable=()):
        """Start a server and wait until it answers.

        Parameters
        ----------
        root : path, optional
            The directory to serve; a new one under ``tmp_path`` by default.
        token : `str` or None
            The bearer token; None starts a read-only server.
        token_file : `bool`
            Give the token with ``--token-file`` rather than ``$AWE_DATASERVER_TOKEN``.
        protect_reads : `bool`
            Pass ``--protect-reads``.
        deletable : sequence of `str`
            Patterns, each passed with ``--deletable``.
        """
        n = len(self.handles)
        root = self.tmp_path / f"server-{n}" if root is None else root
        options = dict(token=token, token_file=token_file, protect_reads=protect_reads,
                       deletable=tuple(deletable))
        env = {k: v for k, v in os.environ.items() if k != "AWE_DATASERVER_TOKEN"}
        extra = []
        if token and token_file:
            path = self.tmp_path / f"server-{n}.token"
            path.write_text(token + "\n")
            extra += ["--token-file", str(path)]
        elif token:
            env["AWE_DATASERVER_TOKEN"] = token
        if protect_reads:
            extra.append("--protect-reads")
        for pattern in deletable:
            extra += ["--deletable", pattern]
        for attempt in range(5):  # another process may take the free port before us
            port = free_port()
            log = self.tmp_path / f"server-{n}-{attempt}.log"
            with open(log, "wb") as stderr:
                process = subprocess.Popen(
                    [sys.executable, "-m", "awe", "dataserver", "serve", "--root", str(root),
                     "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                     *extra],
                    env=env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
            handle = ServerHandle(self, root, port, process, log, options)
            self.handles.append(handle)
            if _wait_until_up(handle):
                return handle
            if "address already in use" not in handle.stderr().lower():
                break
        pytest.fail(f"the data server {handle.url} (pid {handle.pid}, exit code "
                    f"{process.poll()}) did not start; its stderr:\n{handle.stderr()}",
                    pytrace=False)

    def stop_all(self):
        for handle in self.handles:
            handle.stop()


def _wait_until_up(handle):
    """Wait until ``GET /`` answers as a data server; False if the process ended."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            return False
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(handle.url + "/", timeout=2) as response:
                if json.loads(response.read()).get("service") == "awe-dataserver":
                    return handle.process.poll() is None
        time.sleep(0.05)
    handle.kill()
    pytest.fail(f"the data server {handle.url} (pid {handle.pid}) did not answer GET / "
                f"within {START_TIMEOUT} s; its stderr:\n{handle.stderr()}", pytrace=False)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """Keep the developer's token and cache out of the tests: a client without a token
    must send none, and no test may write to ``~/.cache``."""
    monkeypatch.delenv("AWE_DATASERVER_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def start_server(tmp_path):
    """A function that starts another independent server (see `ServerFactory.start`)
    and returns its `ServerHandle`; all are stopped at the end of the test."""
    factory = ServerFactory(tmp_path)
    yield factory.start
    factory.stop_all()


@pytest.fixture
def server(start_server):
    """A running server with token `TOKEN` that may delete names matching
    ``Sandbox-*``; ``server.start_another()`` starts a second one."""
    yield start_server(deletable=["Sandbox-*"])
