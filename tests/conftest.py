"""Shared fixtures: a real redis-server on a free loopback port, a hash-copy counter, and a
helper for child processes that must answer Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# No wall-clock limits in unit tests: Hypothesis's default 200 ms deadline per example failed
# test_totp_round_trip on a loaded shared machine (309 ms once, 0.4 ms on the retry).
settings.register_profile("isoms-otp", deadline=None)
settings.load_profile("isoms-otp")

#: The PostgreSQL, MariaDB, Redis Cluster and Sentinel fixtures (tests/servers.py).
pytest_plugins = ["servers"]

#: Debian's package installs it here; `.ci/run` installs the package when it is missing.
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
#: How long a freshly started server may take to answer PING before the suite gives up.
STARTUP_SECONDS = 20.0


@dataclass
class RedisServer:
    """A redis-server child process listening on 127.0.0.1:port, without persistence."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        """The redis:// URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def default_sigint() -> Callable[[], None]:
    """Return a ``preexec_fn`` that gives a child process the default SIGINT disposition.

    A shell runs a job started with ``&`` with SIGINT ignored, and children inherit that: a
    Python child then never raises KeyboardInterrupt, and a test that stops it with SIGINT
    (as Ctrl-C would) waits for nothing. Resetting it in the child makes such tests behave
    the same from a terminal, a script or CI.
    """
    return _default_sigint


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")
    return False


def start_redis(directory: Path, *extra: str) -> RedisServer:
    """Start redis-server on a free loopback port; fail the test (never skip) if it cannot.

    ``extra`` arguments follow the defaults (no persistence) and override them, such as
    ``"--appendonly", "yes"`` or ``"--cluster-enabled", "yes"``.
    """
    if not Path(REDIS_SERVER).exists():
        pytest.fail(
            "redis-server is not installed; install Debian's package: apt-get install redis-server"
        )
    # servers is also this suite's plugin (pytest_plugins): imported here, after pytest has
    # registered it for assertion rewriting.
    from servers import free_port  # noqa: PLC0415

    for _attempt in range(3):  # another process may take the free port before the server binds it
        # A cluster node also binds port + 10000 (its bus): free_port checks both, below the
        # ephemeral range, so neither can be over 65535 or taken by an outgoing connection.
        port = free_port(bus="--cluster-enabled" in extra)
        process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--dir", str(directory),
                "--loglevel", "warning",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        server = RedisServer(process=process, port=port)
        deadline = time.monotonic() + STARTUP_SECONDS
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(port):
                return server
            time.sleep(0.02)
        server.stop()
    pytest.fail(f"redis-server ({REDIS_SERVER}) did not start on a loopback port")


@pytest.fixture(autouse=True, scope="session")
def _private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point $XDG_STATE_HOME at a temporary directory: no test writes the user's own state
    (the demo's default database lives there)."""
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state-home"))
    yield
    if before is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = before


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_session: RedisServer) -> str:
    """The session server's URL, with every database emptied for this test."""
    import redis  # noqa: PLC0415 - the optional extra, needed only by Redis tests

    with redis.Redis.from_url(redis_session.url) as client:
        client.flushall()
    return redis_session.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that a test may stop halfway."""
    server = start_redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Return a function that starts a private redis-server with extra arguments.

    ``redis_servers("--appendonly", "yes")`` starts one (see :func:`start_redis`); every server
    started is stopped after the test.
    """
    started: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        directory = tmp_path / f"redis-{len(started)}"
        directory.mkdir()
        started.append(start_redis(directory, *extra))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisServer]:
    """A one-node Redis Cluster (cluster mode, every slot on this node)."""
    import redis  # noqa: PLC0415 - the optional extra, needed only by Redis tests

    server = start_redis(
        tmp_path,
        "--cluster-enabled", "yes",
        "--cluster-config-file", str(tmp_path / "nodes.conf"),
    )  # fmt: skip
    try:
        with redis.Redis(port=server.port, socket_timeout=5) as admin:
            admin.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
            deadline = time.monotonic() + STARTUP_SECONDS
            while b"cluster_state:ok" not in admin.execute_command("CLUSTER", "INFO"):
                if time.monotonic() > deadline:
                    pytest.fail("the one-node Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.02)
        yield server
    finally:
        server.stop()


class CopyCounter:
    """A stand-in for an OTP object's inner hash state that counts copy() calls.

    Each computed candidate code costs exactly one copy, so the count is the work done.
    """

    def __init__(self, state: Any) -> None:
        self.state = state
        self.copies = 0

    def copy(self) -> Any:
        """Count the call and return a real copy, so results stay correct."""
        self.copies += 1
        return self.state.copy()


@pytest.fixture
def count_copies() -> Callable[[Any], CopyCounter]:
    """Return a function that wraps an HOTP/TOTP's inner state in a :class:`CopyCounter`."""

    def wrap(otp: Any) -> CopyCounter:
        counter = CopyCounter(otp._inner)
        object.__setattr__(otp, "_inner", counter)  # the object is frozen: bypass that
        return counter

    return wrap
