"""The catalogue: one SQLite file per data home (``catalogue.sqlite``), or PostgreSQL.

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

Production mode: the same components in PostgreSQL
-------------------------------------------------
With the setting ``database`` (``GISPORTAL_DATABASE=postgresql://…``) the components keep
their tables in that database instead, so every app node shares one set of accounts,
sessions, jobs and one audit log. `connect` is the one seam: it reads the setting of
the home it is given (a `DataHome` carries the app's settings; a plain path reads the
environment) and yields either a ``sqlite3.Connection`` (exactly as before) or a thin
`PgConnection` that accepts the same SQL. A component uses it like this::

    SQLITE_MIGRATIONS = {"jobs": ((...SQLite DDL...,), ...)}   # unchanged
    MIGRATIONS: postgres.Migrations = {"jobs": ((...PostgreSQL DDL...,), ...)}

    def connect(home):
        return catalogue.connect(home, SQLITE_MIGRATIONS, MIGRATIONS)

    with connect(home) as conn, catalogue.transaction(conn):
        new_id = conn.execute("INSERT INTO jobs (kind) VALUES (?) RETURNING id",
                              (kind,)).fetchone()[0]

and lists its module in `gisportal.cli.main.MIGRATED` (``gisportal migrate`` applies
``MIGRATIONS``, the PostgreSQL steps, as for the PostGIS store). The common SQL, which
is what keeps a component one piece of code:

- ``?`` placeholders (translated to psycopg's ``%s``; a literal ``%`` is safe);
- rows by name and by index (``row["id"]``, ``row[0]``), like ``sqlite3.Row``;
  ``execute(...)`` returns a cursor with ``fetchone``/``fetchall``/``rowcount``/iteration;
- no ``lastrowid``: ``INSERT … RETURNING id`` (SQLite ≥ 3.35 has it);
- upserts as ``INSERT … ON CONFLICT (…) DO UPDATE/NOTHING`` (both have it; not
  ``INSERT OR REPLACE``). Catching an ``IntegrityError`` and going on inside the same
  transaction does not work in PostgreSQL (the transaction is aborted): use
  ``ON CONFLICT … DO NOTHING RETURNING id`` and look at what came back;
- `transaction` is ``BEGIN IMMEDIATE`` in SQLite (one writer at a time for the whole
  file) but an ordinary READ COMMITTED transaction in PostgreSQL, where writers to
  different rows run side by side. A transaction that reads, decides and writes on the
  strength of what it read (a limit, "the last admin") calls `lock(conn, name)` first:
  a no-op in SQLite (already serialised), a transaction-level advisory lock in
  PostgreSQL, so the same guarantee holds across nodes;
- times stored as ``timestamptz`` come back as the same UTC text the SQLite tables hold
  (``2025-05-01T08:30:00.123Z``), and such text is accepted as a parameter, so code that
  compares or shows times does not change; ``REAL`` becomes ``double precision``;
- a text parameter must not contain NUL (PostgreSQL text cannot hold it): check input
  that may, as the components do for typed names;
- `backend` (``"sqlite"`` / ``"postgresql"``) for the rare statement that differs
  (``PRAGMA``, ``SET LOCAL``).

Opening the catalogue in production mode never creates or changes tables, like the
PostGIS store (`gisportal.store.postgis`): the schema is checked once per process and a
missing or older one is refused (``DATABASE-NOT-MIGRATED``, naming ``gisportal migrate``),
so a mistyped URL never fills the wrong database with tables.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gisportal.base.errors import StoreError

if TYPE_CHECKING:
    import psycopg

    from gisportal.store import postgres
    from gisportal.store.home import DataHome

__all__ = ["CATALOGUE", "BUSY_TIMEOUT_S", "Migrations", "Connection", "PgConnection", "Row",
           "backend", "catalogue_path", "connect", "database_of", "lock", "transaction",
           "migrate"]

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
def transaction(conn: Connection) -> Iterator[Any]:
    """A write transaction: SQLite's takes the write lock at once, so it cannot deadlock;
    PostgreSQL's is an ordinary one (see `lock` for read-decide-write transactions)."""
    if isinstance(conn, PgConnection):
        with conn.raw.transaction():
            yield conn
        return
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
def connect(home: str | os.PathLike[str] | DataHome, migrations: Migrations,
            postgresql: postgres.Migrations | None = None, *,
            row_factory: Callable | None = None,
            foreign_keys: bool = False) -> Iterator[Any]:
    """A connection to the home's catalogue for the ``with`` block.

    Embedded (no ``database`` setting): a fresh ``sqlite3.Connection`` to the catalogue
    file, migrated for ``migrations``, closed on exit. Opened per call (a fraction of a
    millisecond) rather than cached: callers run in CLI commands, server threads and
    forked workers alike, and a fresh connection is right in all of them. Autocommit
    mode: writes use explicit `transaction` blocks, so no read snapshot stays open
    between statements. ``row_factory`` and ``foreign_keys`` apply here.

    Production (``database`` set): a `PgConnection` on a pooled connection, given back to
    the process's pool on exit. ``postgresql`` are the component's PostgreSQL steps; the
    schema is checked against them (once per process), never created — StoreError
    ``DATABASE-NOT-MIGRATED`` until ``gisportal migrate`` ran, and
    ``CATALOGUE-NO-POSTGRESQL`` for a component that has no PostgreSQL tables yet. Rows
    always answer by name and index; foreign keys are always enforced.
    """
    dsn = database_of(home)
    if dsn:
        with _connect_postgresql(dsn, migrations, postgresql) as pg:
            yield pg
        return
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


# -- production mode: the same components in PostgreSQL -------------------------------------


def database_of(home: str | os.PathLike[str] | DataHome) -> str:
    """The PostgreSQL URL the home's settings name (``database``), or ``""`` (embedded).

    A `DataHome` answers with the settings it was made with (the app's, the CLI's); a
    path with the environment's, read alone (every connection asks: loading every
    setting and resolving the home each time cost more than a SQLite connect).
    """
    from gisportal.base.settings import setting
    from gisportal.store.home import DataHome

    value = home.settings.get("database") if isinstance(home, DataHome) \
        else setting("database")
    return str(value or "").strip()


class Row(tuple):
    """A result row by index and by column name (``row[0]``, ``row["id"]``), as
    ``sqlite3.Row`` answers, so component code reads rows the same on both backends.
    A tuple, so rows compare and unpack like the tuples SQLite gives without a factory.
    """

    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                key = self._index[key]
            except KeyError:
                raise IndexError(f"No item with that key: {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """The column names, in order (as ``sqlite3.Row.keys``)."""
        return list(self._index)


@lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    """One `Row` subclass per column list: the name → index map is made once, not per
    row (a page of audit events is hundreds of rows)."""
    return type("Row", (Row,), {"_index": {n: i for i, n in enumerate(names)}})


def _rows(cursor: Any) -> Callable[[Sequence[Any]], Any]:
    """psycopg row factory making `Row` objects."""
    if cursor.description is None:  # a statement without result columns
        return tuple
    cls = _row_class(tuple(c.name for c in cursor.description))
    return lambda values: cls(values)


@lru_cache(maxsize=4096)
def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s``, and every literal ``%`` doubled (psycopg
    reads ``%`` as a placeholder anywhere, inside quotes too). A ``?`` inside a quoted
    literal or identifier stays. Cached: the components' statements are a few hundred
    strings at most."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if ch == "%":
            out.append("%%")
        elif quote:
            out.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=1)
def _utc_text_loader() -> type:
    """A psycopg loader giving ``timestamptz`` values as the embedded catalogue's UTC
    text (``2025-05-01T08:30:00.123Z``, milliseconds as `audit.utc_now` writes them), so
    the components compare, show and return times exactly as they do from SQLite."""
    from psycopg.types.datetime import TimestamptzLoader

    class UtcTextLoader(TimestamptzLoader):
        def load(self, data: Any) -> str:  # type: ignore[override]
            t = super().load(data)
            return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    return UtcTextLoader


class PgConnection:
    """A pooled psycopg connection speaking the catalogue's SQL (see the module doc).

    Thin on purpose: it translates placeholders, makes rows and loads times as text;
    everything else is psycopg's (``raw`` is the connection itself, in autocommit mode).
    The loader is registered on each cursor, not on the connection: the connection goes
    back to a pool the PostGIS store shares, whose ``timestamptz`` must stay datetimes.
    """

    backend = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def _cursor(self) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor(row_factory=_rows)
        cur.adapters.register_loader("timestamptz", _utc_text_loader())
        return cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        """Run one statement with positional ``?`` parameters; the cursor (rows fetched
        with ``fetchone``/``fetchall`` or by iterating, ``rowcount``)."""
        return self._cursor().execute(_pg_sql(sql), tuple(params))  # type: ignore[arg-type]

    def executemany(self, sql: str, seq: Iterator[Sequence[Any]] | Sequence[Sequence[Any]],
                    ) -> psycopg.Cursor[Any]:
        """Run one statement for each parameter tuple (one round trip per batch)."""
        cur = self._cursor()
        cur.executemany(_pg_sql(sql), [tuple(p) for p in seq])  # type: ignore[arg-type]
        return cur


#: What `connect` yields: SQLite's own connection, or the PostgreSQL one.
Connection = sqlite3.Connection | PgConnection


def backend(conn: Connection) -> str:
    """``"sqlite"`` or ``"postgresql"``, for the rare statement that differs."""
    return "postgresql" if isinstance(conn, PgConnection) else "sqlite"


def lock(conn: Connection, name: str) -> None:
    """Serialise this transaction with every other that takes the lock ``name``, until
    it ends.

    For a transaction that reads, decides and writes (count the attempts, then admit
    one; check for another admin, then disable): SQLite's ``BEGIN IMMEDIATE`` already
    admits one writer at a time, so this is a no-op there; in PostgreSQL it takes a
    transaction-level advisory lock, which works across nodes. Call it first thing inside
    `transaction`.
    """
    if not isinstance(conn, PgConnection):
        return
    from psycopg import pq

    if conn.raw.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise RuntimeError("catalogue.lock outside a transaction would be let go at once")
    key = int.from_bytes(hashlib.sha256(f"gisportal catalogue {name}".encode()).digest()[:8],
                         "big", signed=True)
    conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


@contextmanager
def _connect_postgresql(dsn: str, migrations: Migrations,
                        postgresql: postgres.Migrations | None) -> Iterator[PgConnection]:
    """`connect` in production mode: the schema checked (once per process), a pooled
    connection for the block, a lost server reported as StoreError."""
    import psycopg

    from gisportal.store import postgres

    if postgresql is None:
        raise StoreError(
            f"The catalogue's {', '.join(sorted(migrations))} tables are not available in "
            "PostgreSQL in this gisportal", where=postgres.describe(dsn),
            fix="Unset GISPORTAL_DATABASE (embedded mode), or upgrade gisportal",
            code="CATALOGUE-NO-POSTGRESQL")
    key = (dsn, frozenset(postgresql))
    if key not in _current:
        postgres.check_schema(dsn, postgresql)  # never migrates: see the module doc
        with _current_lock:
            _current.add(key)
    try:
        with postgres.connection(dsn) as raw:
            yield PgConnection(raw)
    except psycopg.OperationalError as exc:
        raise StoreError(f"The database failed: {' '.join(str(exc).split())}",
                         where=postgres.describe(dsn),
                         fix="Check that PostgreSQL is running, then try again",
                         code="DATABASE-UNAVAILABLE") from exc
