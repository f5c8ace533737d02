"""The embedded catalogue: one SQLite file per data home (``catalogue.sqlite``).

Several components keep tables there — the store (versions), accounts (users, tokens,
sign-in failures, the audit log), jobs — each with its own migrations and its own row
in ``schema_version``, so each can evolve alone. This module holds what they share:
where the file is, how a connection is opened, explicit write transactions, and the
migration protocol:

- the common case (every component current) reads one table and takes no write lock,
  so opening never waits for a writer;
- otherwise the file is put in WAL mode (persistent; readers never wait for writers)
  and the missing steps run inside one ``BEGIN IMMEDIATE`` transaction, checked again
  under the lock, so two processes opening a fresh data home cannot both apply them;
- a catalogue written by a newer gisportal is refused, never downgraded.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from gisportal.base.errors import StoreError

__all__ = ["CATALOGUE", "BUSY_TIMEOUT_S", "Migrations", "catalogue_path", "connect",
           "transaction", "migrate"]

CATALOGUE = "catalogue.sqlite"
#: Seconds a statement waits for another connection's write lock before failing.
BUSY_TIMEOUT_S = 30.0

#: Component → its migrations; entry i brings the component's schema to version i + 1.
Migrations = Mapping[str, tuple[tuple[str, ...], ...]]

#: (catalogue path, components) this process has already brought up to date.
_current: set[tuple[str, frozenset[str]]] = set()
_current_lock = threading.Lock()


def catalogue_path(home: str | Path) -> Path:
    """The catalogue file of a data home (the home is created if missing)."""
    root = Path(home).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root / CATALOGUE


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock at once, so it cannot deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # also after a failed COMMIT, or the next BEGIN fails
            conn.execute("ROLLBACK")
        raise


def _versions(conn: sqlite3.Connection) -> dict[str, int]:
    try:
        rows = conn.execute("SELECT component, version FROM schema_version").fetchall()
    except sqlite3.OperationalError:  # no schema_version table yet
        return {}
    return {r[0]: r[1] for r in rows}


def migrate(conn: sqlite3.Connection, path: Path, migrations: Migrations, *,
            begin: Callable[[sqlite3.Connection], AbstractContextManager] = transaction,
            ) -> None:
    """Bring ``migrations``' components up to date on ``conn`` (see the module doc).

    ``begin`` opens the write transaction (the store passes its own, which also tells
    its read snapshots that something changed).
    """
    if all(_versions(conn).get(c, 0) == len(steps) for c, steps in migrations.items()):
        return
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode=WAL")  # not allowed inside a transaction
    with begin(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                     "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        have = _versions(conn)  # again, under the lock: another process may have migrated
        for component, steps in migrations.items():
            current = have.get(component, 0)
            if current > len(steps):
                raise StoreError(
                    f"The catalogue's {component} tables have schema version {current}; "
                    f"this gisportal knows up to {len(steps)}",
                    where=str(path), fix="Upgrade gisportal",
                    code=f"{component.upper()}-SCHEMA-NEWER")
            for statements in steps[current:]:
                for sql in statements:
                    conn.execute(sql)
            conn.execute("INSERT OR REPLACE INTO schema_version (component, version) "
                         "VALUES (?, ?)", (component, len(steps)))


@contextmanager
def connect(home: str | Path, migrations: Migrations, *,
            row_factory: Callable | None = None,
            foreign_keys: bool = False) -> Iterator[sqlite3.Connection]:
    """A fresh connection to the catalogue, migrated for ``migrations``; closed on exit.

    Opened per call (a fraction of a millisecond) rather than cached: callers run in CLI
    commands, server threads and forked workers alike, and a fresh connection is right
    in all of them. Autocommit mode: writes use explicit `transaction` blocks, so no
    read snapshot stays open between statements.
    """
    path = catalogue_path(home)
    uri = "file:" + urllib.request.pathname2url(str(path))
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    try:
        if row_factory is not None:
            conn.row_factory = row_factory
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")
        key = (str(path), frozenset(migrations))
        if key not in _current:
            migrate(conn, path, migrations)
            with _current_lock:
                _current.add(key)
        yield conn
    finally:
        conn.close()
