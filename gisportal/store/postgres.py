"""PostgreSQL plumbing every production component shares: pooled connections and migrations.

Production mode (setting ``database``, ``GISPORTAL_DATABASE=postgresql://…``) keeps the
layer versions (`gisportal.store.postgis`) and, next, the catalogue components (accounts,
jobs, audit) in one PostgreSQL database. This module is all they need of it:

``connection(dsn)``
    A pooled connection for one unit of work (a ``with`` block). Connections are in
    autocommit mode, as the embedded catalogue's are: a read is one statement and holds
    no snapshot afterwards; a write is an explicit ``with conn.transaction():`` block (or
    `transaction`, which is both at once).
``transaction(dsn)``
    A pooled connection inside one transaction, committed when the block ends, rolled
    back if it raises.
``migrate(dsn, migrations)`` / ``check_schema(dsn, migrations)``
    Components with numbered steps, recorded in ``schema_version(component, version)``.
    `migrate` applies the missing steps in one transaction under a transaction-level
    advisory lock, so two nodes starting at once cannot both apply them (the second
    waits, then finds nothing to do); `check_schema` only says whether the schema is
    current. Both refuse a schema newer than the code: a node must never write to tables
    it does not understand, and nothing is ever downgraded.

A component declares its steps as data::

    MIGRATIONS: postgres.Migrations = {
        "jobs": (
            ("CREATE TABLE jobs (id bigserial PRIMARY KEY, ...)",
             "CREATE INDEX jobs_by_state ON jobs (state)"),      # step 1
            ("ALTER TABLE jobs ADD COLUMN node text",),           # step 2
        ),
    }

and adds its module to ``gisportal migrate`` (`gisportal.cli.main.MIGRATED`). A released
step is never edited: a change is a new step.

Why a pool of our own, not ``psycopg_pool``: the processes that use it are forked (gunicorn
workers after the app is loaded, job workers), and a pool's background threads and open
sockets do not survive a ``fork``. This pool has no threads; it remembers the pid that
opened each connection, and a process that finds itself with a pool opened by its parent
drops it (without closing the parent's sockets: that would end the parent's sessions) and
opens its own. It also checks a connection's state when it is handed back, so a
connection left inside a transaction is never reused, and before handing one out, so
one the server has ended (a restart) is replaced, not given to a caller.
"""

from __future__ import annotations

import hashlib
import os
import select
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import pq

from gisportal.base.errors import StoreError, UsageError

__all__ = [
    "MIGRATE_HINT",
    "Migrations",
    "Pool",
    "Step",
    "check_schema",
    "close_pools",
    "connection",
    "describe",
    "migrate",
    "pool",
    "schema_versions",
    "transaction",
]

#: One migration step: SQL statements run in order, or a function given the connection
#: (inside the migration transaction) for what SQL alone cannot say.
Step = Sequence[str] | Callable[[psycopg.Connection[Any]], None]
#: Component → its steps; step i brings the component's schema to version i + 1.
Migrations = Mapping[str, Sequence[Step]]

#: What a person runs to create or upgrade the schema.
MIGRATE_HINT = "Run `gisportal migrate` with the same GISPORTAL_DATABASE"

#: Connections a process keeps per database (idle ones are reused; more wait).
MAX_CONNECTIONS = 10
#: Seconds a caller waits for a free pooled connection before failing.
POOL_TIMEOUT_S = 30.0
#: Seconds a connection may sit idle before it is checked again when handed out.
PING_AFTER_S = 5.0
#: Seconds to wait for the server to accept a new connection.
CONNECT_TIMEOUT_S = 10
#: The advisory lock key every migration takes (a constant all nodes agree on).
_MIGRATION_LOCK = int.from_bytes(hashlib.sha256(b"gisportal schema migration").digest()[:8],
                                 "big", signed=True)


def describe(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(dsn)
    except ValueError:
        return "(unparsable database URL)"
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _unavailable(dsn: str, exc: BaseException) -> StoreError:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return StoreError(f"Cannot reach the database {describe(dsn)}: {message}",
                      where="database", fix="Check GISPORTAL_DATABASE and that PostgreSQL "
                      "is running and accepts this user", code="DATABASE-UNAVAILABLE")


class Pool:
    """Connections to one database for one process; thread-safe, no threads of its own.

    Parameters
    ----------
    dsn
        A ``postgresql://`` URL (or libpq key=value string).
    max_size
        Connections open at most; callers beyond it wait up to `timeout` seconds.
    timeout
        Seconds to wait for a free connection.
    connect_timeout
        Seconds to wait for the server to accept a new connection (a read replica's
        pool waits less: a look-up reads from the primary instead).
    """

    def __init__(self, dsn: str, *, max_size: int = MAX_CONNECTIONS,
                 timeout: float = POOL_TIMEOUT_S,
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self.pid = os.getpid()
        self.max_size = max_size
        self.timeout = timeout
        #: (connection, time.monotonic() when it was given back), last given back last
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        self._open = 0  # connections handed out or idle
        self._cond = threading.Condition()
        self._closed = False

    def _new(self) -> psycopg.Connection[Any]:
        try:
            # TimeZone UTC: timestamps come back the same on every node. The
            # application name shows the pid in pg_stat_activity, where an operator
            # looks for who holds a lock.
            return psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout,
                                   options="-c TimeZone=UTC",
                                   application_name=f"gisportal[{os.getpid()}]")
        except psycopg.OperationalError as exc:
            raise _unavailable(self.dsn, exc) from exc
        except psycopg.ProgrammingError as exc:  # libpq cannot parse the setting at all
            raise UsageError(f"{describe(self.dsn)!r} is not a PostgreSQL URL",
                             where="GISPORTAL_DATABASE",
                             fix="set it like postgresql://user:password@host:5432/gisportal",
                             code="SETTING-INVALID") from exc

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for the ``with`` block, returned to the pool afterwards.

        In autocommit mode; left in a transaction (or broken) it is closed, not reused.
        """
        conn = self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _take(self) -> psycopg.Connection[Any]:
        deadline = time.monotonic() + self.timeout
        idle: tuple[psycopg.Connection[Any], float] | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise StoreError("The database pool is closed", where=describe(self.dsn),
                                     fix="Open a new store", code="STORE-CLOSED")
                if self._idle:
                    idle = self._idle.pop()
                    break
                if self._open < self.max_size:
                    self._open += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(
                        f"All {self.max_size} database connections of this process stayed "
                        f"busy for {self.timeout:.0f} s", where=describe(self.dsn),
                        fix="Try again; if it persists, look for long-running queries",
                        code="DATABASE-BUSY")
                self._cond.wait(left)
        # Checked outside the lock: a ping to a hung server must not stall other threads.
        if idle is not None and _alive(idle[0], time.monotonic() - idle[1]):
            return idle[0]
        try:  # a new connection in the slot taken (or freed by a dead idle one)
            return self._new()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        reusable = (not conn.closed
                    and conn.info.transaction_status == pq.TransactionStatus.IDLE)
        with self._cond:
            if reusable and not self._closed and os.getpid() == self.pid:
                self._idle.append((conn, time.monotonic()))
                self._cond.notify()
                return
            self._open -= 1
            self._cond.notify()
        if os.getpid() == self.pid:
            with suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        """Close the idle connections; those in use close when they are given back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        if os.getpid() == self.pid:
            for conn, _ in idle:
                with suppress(psycopg.Error):
                    conn.close()


def _alive(conn: psycopg.Connection[Any], idle_s: float) -> bool:
    """Whether an idle connection can be handed out, so that the caller's first query is
    not the one to find out that the server ended the session (a restart, an
    administrator's ``pg_terminate_backend``).

    An idle connection has nothing to read: when its socket is readable, the server has
    sent its goodbye and closed it (a poll, microseconds). One that sat idle for a while
    is also pinged (an empty query, one round trip), for what a poll cannot see (a
    network gone silent).
    """
    if conn.closed or conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    try:
        poller = select.poll()  # not select(): it fails on descriptors past 1024
        poller.register(conn.fileno(), select.POLLIN)
        readable = bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        readable = True
    if readable:
        with suppress(psycopg.Error):
            conn.close()
        return False
    if idle_s < PING_AFTER_S:
        return True
    try:
        conn.execute("")
    except psycopg.Error:
        with suppress(psycopg.Error):
            conn.close()
        return False
    return True


_pools: dict[str, Pool] = {}
_pools_lock = threading.Lock()


def _reset_lock_in_child() -> None:
    """A fork copies a lock held by another thread as held, for ever: a child process
    gets a fresh one (the parent's pools it finds are then replaced, see `pool`)."""
    global _pools_lock
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def pool(dsn: str, *, connect_timeout: float = CONNECT_TIMEOUT_S) -> Pool:
    """This process's pool for `dsn`, opened on first use and again after a ``fork``.

    The parent's pool is dropped in the child without closing its connections: closing
    would tell the server to end sessions the parent is still using. `connect_timeout`
    applies to a pool opened by this call.
    """
    with _pools_lock:
        found = _pools.get(dsn)
        if found is None or found.pid != os.getpid() or found._closed:
            found = _pools[dsn] = Pool(dsn, connect_timeout=connect_timeout)
        return found


@contextmanager
def connection(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A pooled autocommit connection to `dsn` for the ``with`` block."""
    with pool(dsn).connection() as conn:
        yield conn


@contextmanager
def transaction(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection to `dsn` inside one transaction (commit at the end, rollback
    if the block raises)."""
    with pool(dsn).connection() as conn, conn.transaction():
        yield conn


def close_pools() -> None:
    """Close every pool of this process (tests; a process about to exit)."""
    with _pools_lock:
        pools = [p for p in _pools.values() if p.pid == os.getpid()]
        _pools.clear()
    for p in pools:
        p.close()


# -- migrations ------------------------------------------------------------------------------


def schema_versions(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Component → recorded schema version (empty before the first migration)."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    return dict(conn.execute("SELECT component, version FROM schema_version").fetchall())


def _newer(dsn: str, component: str, have: int, know: int) -> StoreError:
    return StoreError(
        f"The database's {component} tables have schema version {have}; this gisportal "
        f"knows up to {know}", where=describe(dsn), fix="Upgrade gisportal on this node",
        code=f"{component.upper()}-SCHEMA-NEWER")


def check_schema(dsn: str, migrations: Migrations) -> None:
    """Raise `StoreError` unless every component of `migrations` is exactly current.

    A schema behind the code (or missing) names ``gisportal migrate``; one ahead of it
    asks for an upgrade. One short query; nothing is created.
    """
    try:
        with connection(dsn) as conn:
            have = schema_versions(conn)
    except psycopg.OperationalError as exc:
        raise _unavailable(dsn, exc) from exc
    behind = []
    for component, steps in migrations.items():
        current = have.get(component, 0)
        if current > len(steps):
            raise _newer(dsn, component, current, len(steps))
        if current < len(steps):
            behind.append(f"{component} {current} → {len(steps)}")
    if behind:
        raise StoreError(
            f"The database schema is not current ({', '.join(behind)})",
            where=describe(dsn), fix=MIGRATE_HINT, code="DATABASE-NOT-MIGRATED")


def migrate(dsn: str, migrations: Migrations) -> dict[str, tuple[int, int]]:
    """Bring every component of `migrations` up to date; return what was done.

    Returns
    -------
    dict
        Component → ``(version before, version after)``, for every component given
        (equal numbers: nothing to do).

    All missing steps of all components run in one transaction under
    ``pg_advisory_xact_lock``: PostgreSQL's DDL is transactional, so a failed step leaves
    the schema as it was, and a second node migrating at the same moment waits for the
    lock, then reads the versions again and finds them current.
    """
    done: dict[str, tuple[int, int]] = {}
    try:
        with transaction(dsn) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                         "component text PRIMARY KEY, version integer NOT NULL)")
            have = schema_versions(conn)
            for component, steps in migrations.items():
                current = have.get(component, 0)
                if current > len(steps):
                    raise _newer(dsn, component, current, len(steps))
                for step in steps[current:]:
                    if callable(step):
                        step(conn)
                    else:
                        for sql in step:
                            conn.execute(sql)  # type: ignore[arg-type]  # our own literals
                conn.execute("INSERT INTO schema_version (component, version) VALUES (%s, %s) "
                             "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                             (component, len(steps)))
                done[component] = (current, len(steps))
    except psycopg.OperationalError as exc:
        raise _unavailable(dsn, exc) from exc
    return done
