"""Real database servers for the tests: PostgreSQL, MariaDB, a Redis Cluster, Redis + Sentinel.

Each server runs from Debian's packages in a temporary directory, listens on a free loopback port
and is stopped (its whole process group killed if it will not stop) when its fixture ends. A
missing binary fails the test with the package to install; it never skips. PostgreSQL and MariaDB
refuse to run as root, so when the suite runs as root they run as the packages' system accounts
(``postgres``, ``mysql``; ``nobody`` if those are missing) in directories those accounts own.

Session-scoped fixtures are shared by every test; ``own_*`` fixtures give a test a private server
it may kill (:meth:`kill`, a crash: SIGKILL to the process group) and start again on the same port
and data (:meth:`start`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: How long a freshly started server may take to answer before the suite gives up.
STARTUP_SECONDS = 60.0
#: How long a stopping server may take before it is killed.
STOP_SECONDS = 10.0
PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: The password of every account the fixtures create (loopback only, throwaway data).
PASSWORD = "isoms-test-password"  # noqa: S105 - a test server on loopback
DATABASE = "isoms"
ACCOUNT = "isoms"
SENTINEL_NAME = "isoms"


def require(binary: str | Path, package: str) -> str:
    """Return the binary's path; fail (never skip) naming the Debian package when missing."""
    found = shutil.which(str(binary)) if not Path(binary).is_absolute() else str(binary)
    if not found or not Path(found).exists():
        pytest.fail(f"{binary} is not installed: apt-get install {package} (Debian's package)")
    return found


def postgres_bin(name: str) -> str:
    """Return a PostgreSQL server binary (Debian keeps them off PATH)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return require(candidates[0] if candidates else PG_BIN / name, "postgresql")


def free_port(*, bus: bool = False) -> int:
    """Return a loopback port that is free now (and, with ``bus``, port + 10000 too).

    Below Linux's ephemeral range (32768 and up), so that no outgoing connection of another
    process takes it between this probe and the server's bind.
    """
    for _attempt in range(200):
        port = random.randint(20_000, 32_000)
        wanted = [port, port + 10_000] if bus else [port]
        probes: list[socket.socket] = []
        try:
            for each in wanted:
                probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                probes.append(probe)
                probe.bind(("127.0.0.1", each))
        except OSError:
            continue
        else:
            chosen: int = probes[0].getsockname()[1]
            return chosen
        finally:
            for probe in probes:
                probe.close()
    pytest.fail("no free loopback port found")


@dataclass(frozen=True)
class Account:
    """The system account a server runs as (``None`` fields: the current user)."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_server(cls, *names: str) -> Account:
        """Pick the first existing account of ``names`` (then ``nobody``) when running as root."""
        if os.geteuid() != 0:
            return cls()
        for name in (*names, "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(uid=entry.pw_uid, gid=entry.pw_gid)
        pytest.fail("running as root and no unprivileged account to run the server as")

    def make_dir(self, prefix: str) -> Path:
        """Create a temporary directory this account owns."""
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.own(path)
        return path

    def own(self, path: Path) -> None:
        """Give ``path`` (recursively) to this account."""
        if self.uid is None or self.gid is None:
            return
        os.chown(path, self.uid, self.gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(Path(root) / name, self.uid, self.gid, follow_symlinks=False)

    def popen(self, argv: list[str], log: Path, **options: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` as this account, in its own process group, output to ``log``."""
        if self.uid is not None:
            options.update(user=self.uid, group=self.gid, extra_groups=[])
        with log.open("ab") as sink:  # the child keeps its own copy; no pipe to drain or close
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": "/usr/sbin:/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"},
                **options,
            )

    def run(self, argv: list[str], log: Path, *, timeout: float = 120.0) -> None:
        """Run ``argv`` to completion as this account; fail the test with its log if it fails."""
        process = self.popen(argv, log)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            kill_group(process)
        if code != 0:
            pytest.fail(f"{Path(argv[0]).name} failed ({code}):\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    """The end of a server log, for failure messages."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def kill_group(process: subprocess.Popen[bytes], *, graceful: bool = False) -> None:
    """Stop ``process`` and every process of its group; with ``graceful``, SIGTERM first."""
    try:
        if graceful and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)


def wait_until(
    ready: Callable[[], bool], what: str, processes: list[subprocess.Popen[bytes]], log: Path
) -> None:
    """Poll ``ready`` until it is true; fail with the log if a process dies or time runs out."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        dead = [p for p in processes if p.poll() is not None]
        if dead:
            pytest.fail(f"{what} exited ({dead[0].returncode}) while starting:\n{tail(log)}")
        with contextlib.suppress(Exception):  # anything until it answers; the deadline bounds it
            if ready():
                return
        time.sleep(0.05)
    pytest.fail(f"{what} did not answer within {STARTUP_SECONDS:.0f} s:\n{tail(log)}")


# -- PostgreSQL -------------------------------------------------------------------------------


@dataclass
class PostgresServer:
    """A PostgreSQL server on 127.0.0.1:port; ``url`` is an unprivileged account's database."""

    directory: Path
    account: Account
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (psycopg 3) of the test database as the test account."""
        return f"postgresql+psycopg://{ACCOUNT}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def admin_url(self) -> str:
        """The same database as the superuser (to inspect or sabotage)."""
        return f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.directory / "server.log"

    def initialise(self) -> None:
        """Create the cluster (superuser ``postgres``), then the account and its database."""
        (self.directory / "pwfile").write_text(PASSWORD + "\n")
        self.account.own(self.directory)
        self.account.run(
            [
                postgres_bin("initdb"), "-D", str(self.directory / "data"), "-U", "postgres",
                "--pwfile", str(self.directory / "pwfile"), "--auth=scram-sha-256",
                "--encoding=UTF8", "--locale=C", "--no-sync",
            ],
            self.directory / "initdb.log",
        )  # fmt: skip
        self.start()
        import psycopg  # noqa: PLC0415 - the sql extra, needed only here

        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {ACCOUNT} LOGIN PASSWORD '{PASSWORD}'")
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ACCOUNT}")

    def _dsn(self, database: str) -> str:
        return (
            f"host=127.0.0.1 port={self.port} dbname={database} user=postgres "
            f"password={PASSWORD} connect_timeout=2"
        )

    def start(self) -> None:
        """Start (or restart) the server on its port and data; return once it answers."""
        self.process = self.account.popen(
            [
                postgres_bin("postgres"), "-D", str(self.directory / "data"),
                "-p", str(self.port), "-k", str(self.directory),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "full_page_writes=off", "-c", "max_connections=120",
                "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning",
            ],
            self.log,
        )  # fmt: skip
        import psycopg  # noqa: PLC0415 - the sql extra, needed only here

        def answers() -> bool:
            with psycopg.connect(self._dsn("postgres")) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)

        wait_until(answers, "postgres", [self.process], self.log)

    def kill(self) -> None:
        """Crash the server: SIGKILL to the postmaster and every backend."""
        if self.process is not None:
            kill_group(self.process)

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL)."""
        if self.process is not None:
            kill_group(self.process, graceful=True)
            self.process = None


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server, removed afterwards."""
    account = Account.for_server("postgres")
    server = PostgresServer(directory=account.make_dir("isoms-pg-"), account=account)
    try:
        server.initialise()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


# -- MariaDB ----------------------------------------------------------------------------------


@dataclass
class MariaDBServer:
    """A MariaDB server on 127.0.0.1:port; ``url`` is an unprivileged account's database."""

    directory: Path
    account: Account
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (PyMySQL) of the test database as the test account."""
        return f"mysql+pymysql://{ACCOUNT}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def socket(self) -> Path:
        """The server's unix socket (root's way in)."""
        return self.directory / "mysqld.sock"

    @property
    def log(self) -> Path:
        """The server's error log."""
        return self.directory / "server.log"

    def _options(self) -> list[str]:
        # Small buffers and a lazy log flush (on commit to the OS, not to disk) keep it quick;
        # killing the server still loses nothing committed (only an OS crash would).
        return [
            "--no-defaults", f"--datadir={self.directory / 'data'}",
            "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin",
        ]  # fmt: skip

    def initialise(self) -> None:
        """Create the data directory, start, then make the account and its database."""
        self.account.run(
            [
                require("mariadb-install-db", "mariadb-server"), *self._options(),
                "--basedir=/usr", "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            self.directory / "install.log",
        )  # fmt: skip
        self.start()
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
            cursor.execute(f"CREATE USER '{ACCOUNT}'@'%' IDENTIFIED BY '{PASSWORD}'")
            cursor.execute(f"GRANT ALL ON {DATABASE}.* TO '{ACCOUNT}'@'%'")

    def admin(self) -> Any:
        """A PyMySQL connection as root over the unix socket (autocommit)."""
        import pymysql  # noqa: PLC0415 - the sql extra, needed only here

        return pymysql.connect(
            unix_socket=str(self.socket), user="root", autocommit=True, connect_timeout=2
        )

    def start(self) -> None:
        """Start (or restart) the server on its port and data; return once it answers."""
        self.process = self.account.popen(
            [
                require("/usr/sbin/mariadbd", "mariadb-server"), *self._options(),
                f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
                f"--pid-file={self.directory / 'mysqld.pid'}", f"--log-error={self.log}",
                "--skip-name-resolve", "--max-connections=200",
            ],
            self.directory / "stdout.log",
        )  # fmt: skip

        def answers() -> bool:
            # Knock first: PyMySQL leaks its socket when a connection attempt fails.
            with socket.socket(socket.AF_UNIX) as knock:
                knock.settimeout(1)
                knock.connect(str(self.socket))
            with contextlib.closing(self.admin()) as conn:
                return bool(conn.ping(reconnect=False) is None)

        wait_until(answers, "mariadbd", [self.process], self.log)

    def kill(self) -> None:
        """Crash the server: SIGKILL."""
        if self.process is not None:
            kill_group(self.process)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.process is not None:
            kill_group(self.process, graceful=True)
            self.process = None


@contextlib.contextmanager
def running_mariadb() -> Iterator[MariaDBServer]:
    """A fresh MariaDB server, removed afterwards."""
    account = Account.for_server("mysql")
    server = MariaDBServer(directory=account.make_dir("isoms-mariadb-"), account=account)
    try:
        server.initialise()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


# -- Redis: one node, a cluster, a sentinel group ----------------------------------------------


def redis_answers(port: int, *, expect: bytes = b"+PONG") -> bool:
    """Whether something on 127.0.0.1:port answers PING as Redis does."""
    with socket.create_connection(("127.0.0.1", port), 1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(64).startswith(expect)


@dataclass
class RedisNode:
    """One redis-server (or redis-sentinel) process on 127.0.0.1:port."""

    directory: Path
    port: int
    arguments: list[str]
    binary: str = "redis-server"
    package: str = "redis-server"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        """The node's log file."""
        return self.directory / f"redis-{self.port}.log"

    def start(self) -> None:
        """Start the node; return once it answers PING."""
        argv = [require(self.binary, self.package), *self.arguments]
        self.process = Account().popen(argv, self.log)
        wait_until(lambda: redis_answers(self.port), self.binary, [self.process], self.log)

    def kill(self) -> None:
        """Crash the node: SIGKILL, no shutdown save."""
        if self.process is not None:
            kill_group(self.process)

    def pause(self) -> None:
        """Freeze the node (SIGSTOP) without closing its sockets."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused node run again (SIGCONT)."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)  # a paused node cannot exit
            kill_group(self.process, graceful=True)
            self.process = None


def redis_node(directory: Path, *extra: str, port: int | None = None) -> RedisNode:
    """A redis-server without persistence, on a free port unless ``port`` is given."""
    port = port or free_port()
    arguments = [
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--dir", str(directory), "--loglevel", "warning",
        "--repl-diskless-sync-delay", "0",  # replicas sync at once, not after 5 s
        *extra,
    ]  # fmt: skip
    return RedisNode(directory=directory, port=port, arguments=arguments)


@dataclass
class RedisClusterNodes:
    """Redis Cluster masters (and their replicas) on loopback holding all 16384 slots."""

    nodes: list[RedisNode]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """(host, port) of every node, for ``redis.cluster.RedisCluster``."""
        return [("127.0.0.1", node.port) for node in self.nodes]

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def cluster_ok(port: int, replicas: int) -> bool:
    """Whether the node on ``port`` serves every slot of a healthy cluster, replicas linked.

    CLUSTER SLOTS may not list a replica for seconds more (until gossip carries a non-zero
    replication offset); the tests only need the primaries to have their replica connected.
    """
    import redis  # noqa: PLC0415 - the redis extra, needed only here

    with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as client:
        info = client.cluster("INFO")  # parsed into a dict of str
        replication = client.info("replication")
    if replication["role"] == "master":
        linked = int(replication["connected_slaves"]) >= replicas
    else:
        linked = replication["master_link_status"] == "up"
    return bool(info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == 16384) and linked


@contextlib.contextmanager
def running_cluster(masters: int = 3, replicas: int = 1) -> Iterator[RedisClusterNodes]:
    """A fresh cluster of ``masters`` masters with ``replicas`` each, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="isoms-cluster-"))
    cluster = RedisClusterNodes(nodes=[])
    try:
        for _index in range(masters * (1 + replicas)):
            port = free_port(bus=True)
            node = redis_node(
                directory, "--cluster-enabled", "yes",
                "--cluster-config-file", str(directory / f"nodes-{port}.conf"),
                "--cluster-node-timeout", "2000", port=port,
            )  # fmt: skip
            cluster.nodes.append(node)
            node.start()
        create = [
            require("redis-cli", "redis-tools"), "--cluster", "create",
            *[f"127.0.0.1:{node.port}" for node in cluster.nodes],
            "--cluster-replicas", str(replicas), "--cluster-yes",
        ]  # fmt: skip
        log = directory / "create.log"
        Account().run(create, log, timeout=STARTUP_SECONDS)
        processes = [node.process for node in cluster.nodes if node.process is not None]
        for node in cluster.nodes:
            wait_until(
                functools.partial(cluster_ok, node.port, replicas), "redis cluster", processes, log
            )
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class SentinelGroup:
    """A Redis primary, one replica and three sentinels watching them as ``SENTINEL_NAME``."""

    directory: Path
    primary: RedisNode
    replica: RedisNode
    sentinels: list[RedisNode] = field(default_factory=list)
    name: str = SENTINEL_NAME

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every sentinel, for ``redis.sentinel.Sentinel``."""
        return [("127.0.0.1", node.port) for node in self.sentinels]

    def master_port(self) -> int:
        """The port the sentinels now give for the primary."""
        import redis  # noqa: PLC0415 - the redis extra, needed only here

        ports = set()
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                with redis.Redis(port=sentinel.port, socket_timeout=1) as client:
                    address = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name
                    )
                ports.add(int(address[1]))
        return ports.pop() if len(ports) == 1 else 0

    def stop(self) -> None:
        """Stop every process."""
        for node in (*self.sentinels, self.replica, self.primary):
            node.stop()


def _sentinels_ready(group: SentinelGroup) -> bool:
    import redis  # noqa: PLC0415 - the redis extra, needed only here

    for sentinel in group.sentinels:
        with redis.Redis(port=sentinel.port, socket_timeout=1, decode_responses=True) as client:
            state = client.execute_command("SENTINEL", "MASTER", group.name)
            if isinstance(state, list):
                state = dict(zip(state[::2], state[1::2], strict=True))
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                return False
            client.execute_command("SENTINEL", "CKQUORUM", group.name)
    return True


def _replica_linked(replica: RedisNode) -> bool:
    import redis  # noqa: PLC0415 - the redis extra, needed only here

    with redis.Redis(port=replica.port, socket_timeout=1) as client:
        return bool(client.info("replication").get("master_link_status") == "up")


#: The replica logs in to the primary as this ACL user, so a test can cut replication.
REPLICATION_USER = "replication"


@contextlib.contextmanager
def running_sentinel_group() -> Iterator[SentinelGroup]:
    """A fresh primary + replica + 3 sentinels (quorum 2, 1 s down-after), removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="isoms-sentinel-"))
    access = ["--user", REPLICATION_USER, "on", f">{PASSWORD}", "~*", "&*", "+@all"]
    primary = redis_node(directory, *access)
    replica = redis_node(
        directory, *access, "--replicaof", "127.0.0.1", "0", "--masteruser",
        REPLICATION_USER, "--masterauth", PASSWORD,
    )  # fmt: skip
    replica.arguments[replica.arguments.index("--replicaof") + 2] = str(primary.port)
    group = SentinelGroup(directory=directory, primary=primary, replica=replica)
    try:
        primary.start()
        replica.start()
        processes = [node.process for node in (primary, replica) if node.process]
        wait_until(lambda: _replica_linked(replica), "redis replica", processes, replica.log)
        for _index in range(3):
            port = free_port()
            config = directory / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {directory}\n"
                f"sentinel monitor {group.name} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {group.name} 1000\n"
                f"sentinel failover-timeout {group.name} 10000\n"
                f"sentinel parallel-syncs {group.name} 1\n"
            )
            sentinel = RedisNode(
                directory=directory, port=port, arguments=[str(config)],
                binary="redis-sentinel", package="redis-sentinel",
            )  # fmt: skip
            group.sentinels.append(sentinel)
            sentinel.start()
        processes += [node.process for node in group.sentinels if node.process]
        wait_until(lambda: _sentinels_ready(group), "redis sentinels", processes, primary.log)
        yield group
    finally:
        group.stop()
        shutil.rmtree(directory, ignore_errors=True)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server a test may kill and start again."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_session() -> Iterator[MariaDBServer]:
    """One MariaDB server for the whole session."""
    with running_mariadb() as server:
        yield server


@pytest.fixture
def own_mariadb() -> Iterator[MariaDBServer]:
    """A private MariaDB server a test may kill and start again."""
    with running_mariadb() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster_session() -> Iterator[RedisClusterNodes]:
    """One Redis Cluster of 3 masters, each with a replica, for the whole session."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def sentinel_session() -> Iterator[SentinelGroup]:
    """One primary + replica + 3 sentinels for the whole session (never failed over)."""
    with running_sentinel_group() as group:
        yield group


@pytest.fixture
def own_sentinel_group() -> Iterator[SentinelGroup]:
    """A private sentinel group a test may fail over."""
    with running_sentinel_group() as group:
        yield group
