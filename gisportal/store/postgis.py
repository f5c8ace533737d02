"""Production backend: layer versions in PostgreSQL + PostGIS (setting ``database``).

Layout in the database (created by ``gisportal migrate``, component ``store``)::

    public.schema_version       component → schema version (`gisportal.store.postgres`)
    public.version_ids          the sequence every version id comes from
    public.versions             one row per visible version (the catalogue)
    layers.d<district>_<kind>_v<id>   one table per version: fid, geom, the attributes

Why one table per version: a version is written once and never changed, so its table is
created, filled with ``COPY`` and indexed inside one transaction, with no other writer
and no index maintenance during the load; reading a version is reading a table (no
``WHERE version = …`` over a table holding every version of the province), its indexes
and planner statistics are its own, and a QGIS user given read access sees each version
as a plain PostGIS layer. Tables are named after their district so an operator's
``\\dt layers.*`` reads like the catalogue.

Why a write needs no recovery: the version id is taken from the sequence, then the
table, its data, its indexes and the catalogue row are created in one transaction.
PostgreSQL's DDL is transactional, so a writer killed at any moment leaves nothing (the
server rolls the transaction back when the connection drops), and the id is never
reused (sequences ignore rollbacks). Uploads to one district do not wait for each other.

Why publishing cannot race: `publish` takes a transaction-level advisory lock on the
layer (district, kind) first, so two publishes of one layer run one after the other and
the second sees the first's outcome; the partial unique index
``versions_one_published`` makes the database itself refuse a second published version
whatever a buggy caller does.

Why `published`, `published_versions` and `districts` are not cached: any cache would
need a round trip to the server to know it is still right, and the query itself is one
round trip through an index (~0.1 ms), so every call asks; a publish by any node is
seen at once.

The catalogue of a look-up is the exception, because the look-up has a round trip of
its own to carry the check. A resident's look-up was four statements of ~0.1 ms of
psycopg's Python and ~0.1 ms of server each (the published versions, the parcel, the
plan zones over it, the annual-plan projects over it): on the 2-core machine that was
2.8 times the GeoPackage store's look-up. Now:

* `published_snapshot` answers from this process's copy of the published versions of
  the server the request reads (`_catalogues`, one per primary or replica), with the
  token they were read at: no round trip;
* `records_and_overlays` asks the parcel, the plan zones and projects over it (or at
  the point) and ``publish_generation.token`` in one statement (LATERAL subqueries;
  geometries as WKB, measured in Python exactly as before), prepared on first use, in
  binary, on that same server;
* the token is drawn anew by a trigger in the transaction of every change a published
  version sees (migration step 2): a copy that is no longer the catalogue is found out
  by the very statement that used it, forgotten, and the look-up asked again from a
  fresh copy (`gisportal.services.lookup`); a look-up with no such statement confirms
  its copy by a round trip (`confirm`). What the stale attempt read is dropped, and it
  read only immutable version tables, which are never dropped, so it was safe to run.

So a publish that has returned is in the next look-up on every node, as before, and a
look-up is one statement. Per server, not per database: a replica's copy, its token
and its tables are one replayed state, so a replica read stays consistent with itself
whatever the other replicas have replayed.

Reads: small look-ups (`find`, `at_point`, `query_bbox`, `records`, `feature_ids`) let
PostGIS do the exact geometry test (``ST_Intersects`` after the GiST ``&&`` filter) and
fetch only matching rows in binary; `read` fetches the whole layer with geometries as
WKB. Values come back with the dtypes recorded at write time, exactly as the GeoPackage
store gives them (the contract tests run on both).

Read replicas (setting ``database_replicas``): a store given replica DSNs sends the
read-only queries of `version`, `versions`, `published`, `published_versions`,
`districts` and of every layer read (`read`, `find`, `at_point`, `query_bbox`,
`records`, `feature_ids`, `records_by_id`, `columns`) to one of them, in turn; writes,
and the reads inside a write, go to the primary. `primary` gives a view of the same
store whose reads go to the primary too: staff pages and the publish workflow read what
they have just written, which a replica may not have replayed yet. Why the public is
never failed by a replica:

* a replica that cannot be reached (or breaks mid-query) is left alone for a short,
  growing back-off (`REPLICA_BACKOFF_S` doubling up to `REPLICA_MAX_BACKOFF_S`) and the
  query is answered by the primary at once; its pool waits `REPLICA_CONNECT_TIMEOUT_S`
  for a connection, not the primary's 10 s;
* a replica is behind, never ahead: a version row it returns names a table it has
  (both are created in one transaction), but a version id learnt elsewhere (from the
  primary, another replica, a link) may be newer than it. So a version row a replica
  lacks, and a version table it lacks (``undefined_table``), are asked of the primary
  instead of being "not found"; whatever else a replica answers (which version is
  published, the version list) is the replica's moment, a little behind, as intended.
"""

from __future__ import annotations

import copy
import functools
import io
import itertools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyproj
import shapely
from psycopg import sql
from psycopg.abc import Query
from shapely.geometry.base import BaseGeometry

from gisportal.base.errors import StoreError, UsageError
from gisportal.store import base, postgres
from gisportal.store.base import Bounds, Found, NewLayer, Published, StalePublished, Store, Version
from gisportal.store.common import TableLayer, find_value, page_ids, version_from_row
from gisportal.store.home import DataHome

__all__ = ["MIGRATIONS", "PostgisStore", "layer_table"]

#: The schema the version tables live in.
LAYERS = "layers"

#: Migrations of the store's tables (see `gisportal.store.postgres.migrate`).
MIGRATIONS: postgres.Migrations = {
    "store": (
        (
            "CREATE EXTENSION IF NOT EXISTS postgis",
            f"CREATE SCHEMA IF NOT EXISTS {LAYERS}",
            "CREATE SEQUENCE version_ids",
            """CREATE TABLE versions (
                id bigint PRIMARY KEY,
                district text NOT NULL,
                kind text NOT NULL,
                status text NOT NULL CHECK (status IN ('draft', 'published', 'superseded')),
                source_name text NOT NULL,
                source_sha256 text NOT NULL,
                feature_count bigint NOT NULL,
                has_errors boolean NOT NULL,
                created_at timestamptz NOT NULL,
                created_by text NOT NULL,
                published_at timestamptz,
                published_by text,
                meta json NOT NULL DEFAULT '{}',
                minx double precision, miny double precision,
                maxx double precision, maxy double precision,
                layer_table text NOT NULL UNIQUE,
                columns json NOT NULL,
                key_columns json NOT NULL DEFAULT '[]',
                CHECK (status <> 'published' OR NOT has_errors)
            )""",
            "ALTER SEQUENCE version_ids OWNED BY versions.id",
            # The database itself guarantees one published version per layer.
            """CREATE UNIQUE INDEX versions_one_published ON versions (district, kind)
                WHERE status = 'published'""",
            "CREATE INDEX versions_by_layer ON versions (district, kind, status)",
        ),
        (
            # The token a look-up compares its kept catalogue with (`published_snapshot`):
            # drawn anew, in the same transaction, by every change a published version
            # sees or makes (publish, roll-back, meta update). Random, not a count: a
            # database restored from a dump and published again must not repeat a token
            # a process kept from before the restore. Row-level and only for published
            # rows: an upload inserts a draft and never waits for this row's lock.
            """CREATE TABLE publish_generation (
                one boolean PRIMARY KEY DEFAULT true CHECK (one),
                token uuid NOT NULL DEFAULT gen_random_uuid()
            )""",
            "INSERT INTO publish_generation DEFAULT VALUES",
            """CREATE FUNCTION publish_generation_bump() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    UPDATE publish_generation SET token = gen_random_uuid();
                    RETURN NULL;
                END
                $$""",
            """CREATE TRIGGER versions_publish_generation_update AFTER UPDATE ON versions
                FOR EACH ROW WHEN (OLD.status = 'published' OR NEW.status = 'published')
                EXECUTE FUNCTION publish_generation_bump()""",
            """CREATE TRIGGER versions_publish_generation_insert AFTER INSERT ON versions
                FOR EACH ROW WHEN (NEW.status = 'published')
                EXECUTE FUNCTION publish_generation_bump()""",
            """CREATE TRIGGER versions_publish_generation_delete AFTER DELETE ON versions
                FOR EACH ROW WHEN (OLD.status = 'published')
                EXECUTE FUNCTION publish_generation_bump()""",
            """CREATE TRIGGER versions_publish_generation_truncate AFTER TRUNCATE ON versions
                FOR EACH STATEMENT EXECUTE FUNCTION publish_generation_bump()""",
        ),
        (
            # Planning projects' layers (`base.PROJECT_KINDS`): one published version per
            # (district, kind, project), a district's own layers having no project.
            "ALTER TABLE versions ADD COLUMN project text",
            "DROP INDEX versions_one_published",
            """CREATE UNIQUE INDEX versions_one_published
                ON versions (district, kind, coalesce(project, '')) WHERE status = 'published'""",
            "CREATE INDEX versions_by_project ON versions (project, kind, status)",
        ),
    ),
}

#: PostgreSQL truncates longer identifiers; longer column names get a positional name.
_MAX_IDENTIFIER_BYTES = 63
#: First key of the advisory locks taken while publishing (the second is the layer's).
_PUBLISH_LOCK = 0x67697370  # "gisp"
_TS = "YYYY-MM-DD\"T\"HH24:MI:SS\"Z\""
_VERSION_FIELDS = (
    "id, district, kind, status, source_name, source_sha256, feature_count, has_errors, "
    f"to_char(created_at AT TIME ZONE 'UTC', '{_TS}'), created_by, "
    f"to_char(published_at AT TIME ZONE 'UTC', '{_TS}'), published_by, meta, "
    "minx, miny, maxx, maxy, project"
)
#: `_VERSION_FIELDS` with meta as its JSON text, for `_shared_meta` to parse.
_META_AS_TEXT_FIELDS = _VERSION_FIELDS.replace(" meta, ", " meta::text, ")
#: Where meta is in those fields.
_META_FIELD = 12
#: Rows encoded per COPY write: the server parses one chunk while the next is encoded
#: (two processes, two cores), and memory holds one chunk of CSV, not the layer's.
#: 10 000 (was 20 000) with Arrow's pool purged after each: a 200 000-parcel ingest's
#: peak growth 1.17 → 0.98 GB per million parcels (bench_ingest --backend production),
#: same time.
_COPY_ROWS = 10_000
#: Column types read back as their ISO text (as the GeoPackage store gives them).
_TEXT_READ = frozenset({"date", "time"})
#: What `_match_value` answers for a value no row of that column can equal.
_NO_MATCH = object()

#: Databases whose store schema this process has found current (checked once each).
_current: set[str] = set()
#: Statements `PostgisStore._records_and_overlays` keeps per store before starting over.
_MAX_STATEMENTS = 1000


class _Catalogue:
    """This process's copy of one server's published versions, and the publish token
    they were read at (`PostgisStore.published_snapshot`)."""

    __slots__ = ("_by_district", "projects", "published", "token")

    def __init__(self, token: object, published: dict[tuple[str, str], Version],
                 projects: dict[tuple[str, str], Version]) -> None:
        self.token = token
        self.published = published
        self.projects = projects
        self._by_district: dict[str, dict[tuple[str, str], Version]] = {}

    def of(self, district: str | None) -> dict[tuple[str, str], Version]:
        """The published versions of `district` (all of them for None), kept: filtering
        the province's on every look-up is the look-up's work done again."""
        if district is None:
            return self.published
        found = self._by_district.get(district)
        if found is None:
            found = {key: v for key, v in self.published.items() if key[0] == district}
            self._by_district[district] = found
        return found


#: Server DSN → this process's copy of its catalogue. Per server, not per database: a
#: replica's copy agrees with that replica's tables and token, whatever the others have
#: replayed. Copied into forked children, where the token keeps it honest.
_catalogues: dict[str, _Catalogue] = {}

#: Seconds a replica that failed is left alone before it is tried again; doubled after
#: each further failure up to `REPLICA_MAX_BACKOFF_S`, so a replica that is down for an
#: hour costs a look-up a refused connection (or a connect timeout) twice a minute.
REPLICA_BACKOFF_S = 2.0
REPLICA_MAX_BACKOFF_S = 30.0
#: Seconds a replica has to accept a new connection before the primary answers instead.
REPLICA_CONNECT_TIMEOUT_S = 2.0

_log = logging.getLogger(__name__)
#: Replica DSN → (failures in a row, time.monotonic() before which it is not tried).
_replica_down: dict[str, tuple[int, float]] = {}
_replica_lock = threading.Lock()
#: Whose turn it is: replicas are taken in turn by every store of the process.
_replica_turn = itertools.count()


def _reset_replica_lock_in_child() -> None:
    """A fork copies a lock held by another thread as held for ever: a fresh one (as
    `gisportal.store.postgres` does for its pools)."""
    global _replica_lock
    _replica_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_replica_lock_in_child)


def _pick_replica(replicas: Sequence[str]) -> str | None:
    """The next replica to read from, skipping those in back-off; None when all are."""
    if not replicas:
        return None
    start = next(_replica_turn)
    now = time.monotonic()
    for i in range(len(replicas)):
        dsn = replicas[(start + i) % len(replicas)]
        down = _replica_down.get(dsn)
        if down is None or down[1] <= now:
            return dsn
    return None


def _replica_failed(dsn: str, why: BaseException) -> None:
    """Leave `dsn` alone for a while (longer after each failure in a row)."""
    with _replica_lock:
        failures = _replica_down.get(dsn, (0, 0.0))[0] + 1
        wait = min(REPLICA_MAX_BACKOFF_S, REPLICA_BACKOFF_S * 2 ** (failures - 1))
        _replica_down[dsn] = (failures, time.monotonic() + wait)
    _log.warning("read replica %s failed (%s); reading from the primary for %.0f s",
                 postgres.describe(dsn), " ".join(str(why).split()) or type(why).__name__,
                 wait)


def _replica_answered(dsn: str) -> None:
    if dsn in _replica_down:
        with _replica_lock:
            _replica_down.pop(dsn, None)


def layer_table(district: str, kind: str, version_id: int) -> str:
    """The name, in schema ``layers``, of a version's table."""
    return f"d{district}_{kind}_v{int(version_id)}"


@dataclass(frozen=True)
class _PgLayer:
    """The immutable facts about a visible version that reads need, cached by id."""

    layer: TableLayer
    #: the table, schema-qualified, ready for SQL
    table: sql.Composable
    #: attribute name → its column name in the table
    sql_names: dict[str, str]
    feature_count: int
    #: attributes read as text: dates and times, which the GeoPackage store (and so the
    #: contract) gives as ISO text
    as_text: frozenset[str] = frozenset()

    #: `head`'s rendered statements, by (columns, fid first)
    heads: dict[tuple[tuple[str, ...], bool], sql.SQL] = field(default_factory=dict,
                                                               compare=False)
    #: `PostgisStore._find_clause`'s rendered filters, by (column, how matched) pairs
    clauses: dict[tuple[tuple[str, str], ...], sql.SQL] = field(default_factory=dict,
                                                                compare=False)

    def select(self, names: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("{}::text" if n in self.as_text else "{}").format(
                _column(self.sql_names[n])) for n in names)

    def head(self, names: Sequence[str], fid: bool) -> sql.SQL:
        """``SELECT [fid,] geom, <columns> FROM <table> WHERE `` as rendered text, made
        once per column list: composing and quoting a dozen identifiers on every look-up
        cost about a tenth of its time in Python (profiled); the table and its columns
        never change, so neither does the text."""
        key = (tuple(names), fid)
        found = self.heads.get(key)
        if found is None:
            select = [sql.SQL("fid")] if fid else []
            # The column itself, not ST_AsBinary(geom): in binary results a geometry
            # arrives as the EWKB PostGIS keeps, which shapely reads (the SRID comes
            # along), and the server spends no function call per row (a whole layer
            # reads in half the time).
            select.append(sql.SQL("geom"))
            if names:
                select.append(self.select(names))
            found = sql.SQL(sql.SQL("SELECT {} FROM {} WHERE ").format(
                sql.SQL(", ").join(select), self.table).as_string(None))
            self.heads[key] = found
        return found


class PostgisStore(Store):
    """`Store` kept in PostgreSQL + PostGIS; safe for any number of threads, processes
    and nodes (see the module doc).

    Parameters
    ----------
    home
        The data home (a folder or a `DataHome`): its settings name the database, and
        what is made from versions (tiles, decision PDFs) goes to its file areas.
    crs
        CRS of every stored geometry, e.g. ``"EPSG:5899"``; its EPSG code is the SRID of
        every geometry column.
    dsn
        The database (``postgresql://…``); ``home.settings["database"]`` by default.
    replicas
        Streaming read replicas of that database: the public reads go to them in turn
        (module doc, "Read replicas"); none by default. `primary` pins reads to `dsn`.

    Raises
    ------
    StoreError
        The database is unreachable, or its schema is not the one this code knows
        (``gisportal migrate`` creates and upgrades it; opening a store never does, so a
        mistyped URL never fills the wrong database with tables).
    """

    def __init__(self, home: str | os.PathLike[str] | DataHome, *, crs: str,
                 dsn: str | None = None, replicas: Sequence[str] = ()) -> None:
        self.crs = crs
        self._crs = pyproj.CRS.from_user_input(crs)
        srid = self._crs.to_epsg()
        if srid is None:
            raise StoreError(f"The store CRS {crs} has no EPSG code to use as SRID",
                             where="crs", fix="Use an EPSG CRS such as EPSG:5899",
                             code="STORE-NO-SRID")
        self.srid: int = srid
        self.home = DataHome.at(home)
        dsn = dsn or str(self.home.settings.get("database") or "")
        if not dsn:
            raise UsageError("No database is configured for the PostGIS store",
                             where="database", fix="Set GISPORTAL_DATABASE=postgresql://…")
        self.dsn = dsn
        self.replicas: tuple[str, ...] = tuple(r for r in replicas if r and r != dsn)
        #: Whether every read goes to the primary (the `primary` view, or no replicas).
        self._pinned = not self.replicas
        self._primary_view: PostgisStore | None = None
        self._layers: dict[int, _PgLayer] = {}
        #: `_records_and_overlays`' statements by shape (shared with the `primary` view)
        self._statements: dict[tuple[Any, ...], str] = {}
        #: `_point_clause` as rendered text
        self._at_point = sql.SQL(
            f"ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), {self.srid}))")
        self._closed = False
        if dsn not in _current:
            postgres.check_schema(dsn, MIGRATIONS)
            _current.add(dsn)

    def __repr__(self) -> str:
        extra = f", replicas={len(self.replicas)}" if self.replicas else ""
        pinned = ", primary" if self.replicas and self._pinned else ""
        return f"PostgisStore({postgres.describe(self.dsn)!r}, crs={self.crs!r}{extra}{pinned})"

    def primary(self) -> PostgisStore:
        """This store with every read on the primary: for code that reads what it (or a
        job) has just written — the staff pages, the publish workflow — which a replica
        may not have replayed yet. The same object each call, sharing this store's
        cached layer facts; the store itself when it has no replicas."""
        if self._pinned:
            return self
        view = self._primary_view
        if view is None:
            view = copy.copy(self)
            view._pinned = True
            view._primary_view = view
            self._primary_view = view
        return view

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection (the pool is this process's: safe after fork)."""
        if self._closed:
            raise StoreError("The store is closed", where=postgres.describe(self.dsn),
                             fix="Open a new store", code="STORE-CLOSED")
        try:
            with postgres.connection(self.dsn) as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise StoreError(f"The database failed: {' '.join(str(exc).split())}",
                             where=postgres.describe(self.dsn),
                             fix="Check that PostgreSQL is running, then try again",
                             code="DATABASE-UNAVAILABLE") from exc

    def close(self) -> None:
        """Mark the store (and its `primary` view) closed. The pooled connections stay
        with the process's pool, which other stores on the same database share."""
        self._closed = True
        if self._primary_view is not None:
            self._primary_view._closed = True

    def _select(self, query: Query, params: Sequence[object] = (), *, binary: bool = False,
                needed: bool = False, prepare: bool | None = None) -> list[tuple[Any, ...]]:
        """The rows of one read-only query: from a replica unless the store is pinned to
        the primary (or every replica is in back-off); from the primary when the
        replica fails, lacks a table, or — `needed` — returns no row (module doc)."""
        if self._closed:
            raise StoreError("The store is closed", where=postgres.describe(self.dsn),
                             fix="Open a new store", code="STORE-CLOSED")
        replica = None if self._pinned else _pick_replica(self.replicas)
        if replica is not None:
            rows = self._on_replica(replica, query, params, binary, prepare)
            if rows is not None and (rows or not needed):
                return rows
        with self._conn() as conn:
            return conn.execute(query, params, binary=binary, prepare=prepare).fetchall()

    def _read_server(self) -> str:
        """Where the next public read goes: a replica in turn, else the primary."""
        if self._pinned:
            return self.dsn
        return _pick_replica(self.replicas) or self.dsn

    def _select_on(self, server: str, query: Query, params: Sequence[object] = (), *,
                   binary: bool = False, prepare: bool | None = None,
                   ) -> list[tuple[Any, ...]] | None:
        """The rows of one read-only query on `server` (the primary or one of the
        replicas); None when that replica could not answer (`_on_replica`)."""
        if self._closed:
            raise StoreError("The store is closed", where=postgres.describe(self.dsn),
                             fix="Open a new store", code="STORE-CLOSED")
        if server != self.dsn:
            return self._on_replica(server, query, params, binary, prepare)
        with self._conn() as conn:
            return conn.execute(query, params, binary=binary, prepare=prepare).fetchall()

    @staticmethod
    def _on_replica(dsn: str, query: Query, params: Sequence[object],
                    binary: bool, prepare: bool | None = None,
                    ) -> list[tuple[Any, ...]] | None:
        """The rows from replica `dsn`, or None when it could not answer (the caller
        asks the primary): unreachable or broken mid-query (then left alone for a
        while), or behind (a table not replayed yet, a query cancelled by replay)."""
        try:
            with postgres.pool(dsn, connect_timeout=REPLICA_CONNECT_TIMEOUT_S
                               ).connection() as conn:
                try:
                    rows = conn.execute(query, params, binary=binary,
                                        prepare=prepare).fetchall()
                except psycopg.Error as exc:
                    if conn.closed or conn.broken:
                        _replica_failed(dsn, exc)
                    return None
        except StoreError as exc:  # no connection: refused, timed out, every one busy
            _replica_failed(dsn, exc)
            return None
        _replica_answered(dsn)
        return rows

    # -- writing -------------------------------------------------------------------------

    def _write_version(self, new: NewLayer) -> Version:
        district, kind, gdf, columns, keys = new.district, new.kind, new.gdf, new.columns, new.keys
        attrs = new.names
        sql_names = _sql_names(attrs)
        try:
            table_arrow = _arrow_table(gdf, attrs)
            types = [_pg_type(name, table_arrow.schema.field(name).type) for name in attrs]
            geoms = _promote(np.asarray(gdf.geometry.values, dtype=object))
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            raise _write_failed(exc, f"{kind} layer of {district}") from exc

        with self._conn() as conn:
            try:
                with conn.transaction():
                    version_id = conn.execute("SELECT nextval('version_ids')").fetchone()[0]
                    name = layer_table(district, kind, version_id)
                    table = sql.Identifier(LAYERS, name)
                    # Until the transaction ends, pg_stat_activity says what this session
                    # is writing: an operator (and the crash tests) can see it.
                    conn.execute("SELECT set_config('application_name', %s, true)",
                                 (f"gisportal[{os.getpid()}] writing {LAYERS}.{name}",))
                    definition = sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(sql_names[a]), sql.SQL(t))
                        for a, t in zip(attrs, types, strict=True))
                    conn.execute(sql.SQL(
                        "CREATE TABLE {} (fid bigint NOT NULL, geom {}{}{})").format(
                        table, _geometry_column(geoms, self.srid),
                        sql.SQL(", " if attrs else ""), definition))
                    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(
                            table)) as copy:
                        for chunk in self._csv(geoms, table_arrow):
                            copy.write(chunk)
                    # Indexes after the load: built in one pass instead of row by row.
                    conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (fid)").format(table))
                    conn.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(table))
                    if keys:
                        # One composite index serves look-ups by all key columns (or a
                        # leading part); one per further column keeps a look-up that
                        # omits the first column off a full scan (as the GeoPackage store).
                        for cols in [keys, *([k] for k in keys[1:])]:
                            conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(
                                table, sql.SQL(", ").join(
                                    sql.Identifier(sql_names[c]) for c in cols)))
                    # No ANALYZE here (a tenth of the write): autovacuum analyses the new
                    # table soon after it commits, and until then the planner's defaults
                    # already choose these indexes for key and point look-ups.
                    conn.execute(
                        "INSERT INTO versions (id, district, kind, status, source_name, "
                        "source_sha256, feature_count, has_errors, created_at, created_by, "
                        "meta, minx, miny, maxx, maxy, layer_table, columns, key_columns, "
                        "project) VALUES (%s, %s, %s, 'draft', %s, %s, %s, %s, %s, %s, %s, %s, "
                        "%s, %s, %s, %s, %s, %s, %s)",
                        (version_id, district, kind, new.source_name, new.source_sha256,
                         len(gdf), bool(new.has_errors), base.utc_now(), new.created_by,
                         new.meta_json, *(new.bounds or (None,) * 4), name,
                         json.dumps([[a, d, sql_names[a], t] for (a, d), t
                                     in zip(columns, types, strict=True)],
                                    ensure_ascii=False),
                         json.dumps(keys, ensure_ascii=False), new.project))
            except psycopg.OperationalError as exc:
                if isinstance(exc, psycopg.errors.DiskFull):
                    raise StoreError("The database server's disk is full",
                                     where=postgres.describe(self.dsn),
                                     fix="Free space on the database server, then upload "
                                         "again", code="DISK-FULL") from exc
                raise  # the connection failed: _conn says so
            except (psycopg.DatabaseError,  # a value the column type refuses, ...
                    pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
                raise _write_failed(exc, f"{kind} layer of {district}") from exc
        return self.primary().version(version_id)  # just written: no replica has it yet

    def _csv(self, geoms: np.ndarray, table: pa.Table) -> Iterator[bytes]:
        """The rows as CSV for ``COPY``, `_COPY_ROWS` at a time: fid, geometry as hex
        EWKB (SRID included, as the column requires), the attributes.

        CSV because PostgreSQL and Arrow agree on it exactly (an unquoted empty field is
        NULL, ``""`` the empty string, quotes doubled) and Arrow writes it in C: no
        Python loop over values but the hex encoding of each geometry.
        """
        options = pa_csv.WriteOptions(include_header=False)
        for start in range(0, len(geoms), _COPY_ROWS):
            part = geoms[start:start + _COPY_ROWS]
            wkb = shapely.to_wkb(shapely.set_srid(part, self.srid), include_srid=True)
            chunk = pa.table({
                "fid": pa.array(np.arange(start + 1, start + len(part) + 1, dtype=np.int64)),
                "geom": pa.array([None if w is None else w.hex() for w in wkb],
                                 type=pa.string()),
            })
            for i, column in enumerate(table.columns):
                chunk = chunk.append_column(f"c{i}", column.slice(start, len(part)))
            out = io.BytesIO()
            pa_csv.write_csv(chunk, out, options)
            del chunk, wkb
            yield out.getvalue()
            # The chunk's Arrow buffers are freed; mimalloc keeps their pages until
            # asked, which would add every chunk's to the ingest's peak (issue 12).
            out.close()
            pa.default_memory_pool().release_unused()

    def publish(self, version_id: int, *, by: str) -> Version:
        with self._conn() as conn, conn.transaction():
            version = self._version(conn, version_id)
            if version.status == "published":
                return version
            base.check_publishable(version)
            # One publish of a layer at a time; each statement after the lock sees the
            # previous publish committed (READ COMMITTED takes a snapshot per statement).
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                         (_PUBLISH_LOCK, f"{version.district}/{version.kind}/"
                                         f"{version.project or ''}"))
            conn.execute("UPDATE versions SET status = 'superseded' WHERE district = %s "
                         "AND kind = %s AND project IS NOT DISTINCT FROM %s "
                         "AND status = 'published'",
                         (version.district, version.kind, version.project))
            conn.execute("UPDATE versions SET status = 'published', published_at = %s, "
                         "published_by = %s WHERE id = %s", (base.utc_now(), by, version.id))
            return self._version(conn, version.id)

    def update_meta(self, version_id: int, meta: Mapping[str, Any]) -> Version:
        with self._conn() as conn, conn.transaction():
            version = self._version(conn, version_id, lock=True)
            conn.execute("UPDATE versions SET meta = %s WHERE id = %s",
                         (base.merged_meta(version, meta), version.id))
            return self._version(conn, version.id)

    # -- catalogue -----------------------------------------------------------------------

    def _version(self, conn: psycopg.Connection[Any], version_id: int, *,
                 lock: bool = False) -> Version:
        vid = _version_id(version_id)
        row = conn.execute(f"SELECT {_VERSION_FIELDS} FROM versions WHERE id = %s"
                           + (" FOR UPDATE" if lock else ""), (vid,)).fetchone()
        if row is None:
            raise base.no_version(version_id)
        return version_from_row(row)

    def version(self, version_id: int) -> Version:
        rows = self._select(f"SELECT {_VERSION_FIELDS} FROM versions WHERE id = %s",
                            (_version_id(version_id),), needed=True)
        if not rows:
            raise base.no_version(version_id)
        return version_from_row(rows[0])

    def versions(self, district: str | None = None, kind: str | None = None, *,
                 project: str | None = None) -> list[Version]:
        clauses, params = base.catalogue_filter(district, kind, project)
        where = " AND ".join(clauses).replace("?", "%s")
        rows = self._select(f"SELECT {_VERSION_FIELDS} FROM versions "
                            f"WHERE {where} ORDER BY id DESC", params)
        return [version_from_row(r) for r in rows]

    def published(self, district: str, kind: str) -> Version | None:
        district, kind = base.check_district_code(district), base.check_kind(kind)
        rows = self._select(f"SELECT {_VERSION_FIELDS} FROM versions WHERE district = %s "
                            "AND kind = %s AND project IS NULL AND status = 'published'",
                            (district, kind))
        return version_from_row(rows[0]) if rows else None

    def districts(self) -> list[str]:
        return [r[0] for r in self._select(
            "SELECT DISTINCT district FROM versions ORDER BY district")]

    def published_versions(self, district: str | None = None) -> dict[tuple[str, str], Version]:
        """One query (through the partial index ``versions_one_published``) instead of
        the default's one per layer: a look-up's catalogue questions cost one round trip.
        Read where `published` reads (a replica unless pinned), as one statement, so the
        answer is one moment of the catalogue."""
        code = [base.check_district_code(district)] if district is not None else []
        rows = self._select(f"SELECT {_META_AS_TEXT_FIELDS} FROM versions "
                            "WHERE status = 'published' AND project IS NULL"
                            + (" AND district = %s" if code else ""), code)
        return _published_from_rows(rows)[0]

    def published_projects(self) -> dict[tuple[str, str], Version]:
        rows = self._select(f"SELECT {_META_AS_TEXT_FIELDS} FROM versions "
                            "WHERE status = 'published' AND project IS NOT NULL")
        return _published_from_rows(rows)[1]

    def published_snapshot(self, district: str | None = None) -> Published:
        """The published versions as this process last read them from the server the
        request will read (a replica in turn, or the primary), with the token they
        were read at: no round trip. `records_and_overlays` (or `confirm`) compares the
        token with the server's in its own statement (module doc, "The catalogue of a
        look-up"). Read afresh, and confirmed, when the process has no copy from that
        server yet (the first look-up, or the first after a publish)."""
        code = base.check_district_code(district) if district is not None else None
        server = self._read_server()
        kept = _catalogues.get(server)
        fresh = kept is None
        if kept is None:
            server, kept = self._load_catalogue(server)
        snapshot = Published(kept.of(code), token=kept.token, server=server,
                             projects=kept.projects)
        snapshot.confirmed = fresh
        return snapshot

    def _load_catalogue(self, server: str) -> tuple[str, _Catalogue]:
        """Every published version and the publish token, from `server` in one
        statement (so they agree), kept for the next look-ups; from the primary when a
        replica cannot answer. The server read and what was kept."""
        # publish_generation's columns (one, token) are no names of versions'. The
        # layer facts come along: a newly published version's look-ups need them next.
        query = (f"SELECT g.token, layer_table, columns, {_META_AS_TEXT_FIELDS} "
                 "FROM publish_generation g LEFT JOIN versions ON versions.status = 'published'")
        rows = self._select_on(server, query) if server != self.dsn else None
        if rows is None:
            server = self.dsn
            rows = self._select_on(server, query)
            assert rows is not None  # the primary raises rather than answering None
        token, rows = rows[0][0], [r for r in rows if r[1] is not None]
        kept = _Catalogue(token, *_published_from_rows(r[3:] for r in rows))
        for r in rows:
            if r[3] not in self._layers:  # id, district, …, feature_count
                self._layers[r[3]] = _pg_layer(r[4], r[1], r[2], r[3 + 6])
        _catalogues[server] = kept
        return server, kept

    def confirm(self, published: Published) -> None:
        """One round trip to the snapshot's server for its publish token (module doc);
        `StalePublished` (the kept copy forgotten) when it is another, or when that
        replica cannot answer."""
        if published.confirmed:
            return
        server = published.server or self.dsn
        rows = self._select_on(server, "SELECT token FROM publish_generation", prepare=True)
        self._check_token(published, server, None if rows is None else rows[0][0])

    @staticmethod
    def _check_token(published: Published, server: str, token: object) -> None:
        """Mark `published` confirmed when `token` (the server's, None when the server
        could not answer) is its own, else forget the kept copy and raise."""
        if token is not None and token == published.token:
            published.confirmed = True
            return
        kept = _catalogues.get(server)
        if kept is not None and kept.token == published.token:
            _catalogues.pop(server, None)
        raise StalePublished(f"the published versions changed on {postgres.describe(server)}")

    # -- reading -------------------------------------------------------------------------

    def _layer(self, version_id: int) -> _PgLayer:
        """The layer facts of a version; cached because they never change."""
        vid = _version_id(version_id)
        found = self._layers.get(vid)
        if found is None:
            rows = self._select("SELECT district, layer_table, columns, feature_count "
                                "FROM versions WHERE id = %s", (vid,), needed=True)
            if not rows:
                raise base.no_version(version_id)
            found = self._layers[vid] = _pg_layer(*rows[0])
        return found

    def _fetch(self, pg: _PgLayer, where: sql.Composable, params: Sequence[object],
               names: Sequence[str], *, fid: bool = False,
               ) -> tuple[list[tuple[Any, ...]], np.ndarray]:
        """Rows (EWKB first, or fid then EWKB) of the matching features in stored order,
        and their geometries decoded."""
        query = sql.Composed([pg.head(names, fid), where, sql.SQL(" ORDER BY fid")])
        # Binary results: integers, floats and WKB arrive without text parsing.
        rows = self._select(query, params, binary=True)
        at = 1 if fid else 0
        geoms = shapely.from_wkb(np.array([row[at] for row in rows], dtype=object)) \
            if rows else np.empty(0, dtype=object)
        return rows, geoms

    def _query(self, pg: _PgLayer, names: Sequence[str], where: sql.Composable,
               params: Sequence[object]) -> gpd.GeoDataFrame:
        return pg.layer.frame(names, *self._fetch(pg, where, params, names), self._crs)

    def _read(self, version_id: int, bbox: Bounds | None,
              columns: Sequence[str] | None) -> gpd.GeoDataFrame:
        pg = self._layer(version_id)
        names = pg.layer.wanted(columns)
        if bbox is None:
            return self._query(pg, names, sql.SQL("true"), [])
        minx, miny, maxx, maxy = base.check_bbox(bbox)
        # As GDAL's spatial filter (and the GeoPackage store): the feature's envelope
        # meets the box. && compares float4 boxes rounded outwards; the exact test follows.
        where = sql.SQL("geom && ST_MakeEnvelope(%s, %s, %s, %s, {srid}) "
                        "AND ST_XMin(geom) <= %s AND ST_XMax(geom) >= %s "
                        "AND ST_YMin(geom) <= %s AND ST_YMax(geom) >= %s").format(
            srid=sql.Literal(self.srid))
        return self._query(pg, names, where, [minx, miny, maxx, maxy, maxx, minx, maxy, miny])

    def _find_clause(self, pg: _PgLayer, where: Mapping[str, object]) -> tuple[
            sql.SQL, list[object]]:
        """`find`'s filter: bound parameters, each converted to its column's type as the
        GeoPackage store's SQLite compares them (a form's "2" matches the integer 2).

        The text depends only on which columns are matched and how (NULL, as text, by
        value), so it is rendered once per such shape and kept with the layer: quoting
        identifiers on every key look-up cost more than the look-up's own Python work.
        """
        shape: list[tuple[str, str]] = []
        params: list[object] = []
        impossible = False
        for column, value in base.check_where(where).items():
            pg.layer.check_columns([column], "where")
            dtype = pg.layer.dtypes[column]
            matched = _match_value(column, value, dtype)
            if matched is None:
                shape.append((column, "null"))
            elif matched is _NO_MATCH:
                impossible = True
            elif _family(dtype) == "other":  # dates and the like: as their text
                shape.append((column, "text"))
                params.append(str(matched))
            else:
                shape.append((column, "value"))
                params.append(matched)
        if impossible:
            return sql.SQL("false"), []
        key = tuple(shape)
        clause = pg.clauses.get(key)
        if clause is None:
            forms = {"null": "{} IS NULL", "text": "{}::text = %s", "value": "{} = %s"}
            clause = sql.SQL(sql.SQL(" AND ").join(
                sql.SQL(forms[how]).format(_column(pg.sql_names[column]))
                for column, how in shape).as_string(None))
            pg.clauses[key] = clause
        return clause, params

    def _point_clause(self, x: float, y: float) -> tuple[sql.Composable, list[object]]:
        return self._at_point, list(base.check_point(x, y))

    def _area_clause(self, area: BaseGeometry) -> tuple[sql.Composable, list[object]]:
        """Features whose geometry intersects `area` (GiST filter, then the exact test)."""
        return (sql.SQL("ST_Intersects(geom, ST_GeomFromWKB(%s, {}))").format(
            sql.Literal(self.srid)), [shapely.to_wkb(area)])

    def _bbox_clause(self, bbox: Bounds) -> tuple[sql.Composable, list[object]]:
        return self._area_clause(base.box_geometry(*base.check_bbox(bbox)))

    def find(self, version_id: int, where: Mapping[str, object]) -> gpd.GeoDataFrame:
        pg = self._layer(version_id)
        return self._query(pg, pg.layer.names, *self._find_clause(pg, where))

    def at_point(self, version_id: int, x: float, y: float) -> gpd.GeoDataFrame:
        pg = self._layer(version_id)
        return self._query(pg, pg.layer.names, *self._point_clause(x, y))

    def _query_bbox(self, version_id: int, bbox: Bounds,
                    columns: Sequence[str] | None) -> gpd.GeoDataFrame:
        pg = self._layer(version_id)
        return self._query(pg, pg.layer.wanted(columns), *self._bbox_clause(bbox))

    def _records(self, version_id: int, where: Mapping[str, object] | None,
                 point: tuple[float, float] | None, bbox: Bounds | None,
                 columns: Sequence[str] | None) -> list[dict[str, Any]]:
        pg = self._layer(version_id)
        names = pg.layer.wanted(columns)
        if where is not None:
            clause = self._find_clause(pg, where)
        elif point is not None:
            clause = self._point_clause(*point)
        else:
            clause = self._bbox_clause(bbox)  # type: ignore[arg-type]
        rows, geoms = self._fetch(pg, *clause, names)
        return pg.layer.records(names, rows, geoms, first=1)

    def _records_and_overlays(self, version_id: int | None, where: Mapping[str, object] | None,
                              point: tuple[float, float] | None, columns: Sequence[str] | None,
                              overlays: Sequence[base.Overlay],
                              published: Published | None) -> Found:
        """One statement for the features, what lies over the first of them, and the
        publish token that confirms `published` (module doc, "The catalogue of a
        look-up"); the geometries come as WKB and Python measures them as before.

        Sent to the snapshot's server when it is still to be confirmed (its copy of the
        catalogue names tables that server has); else where any read goes."""
        pg = None if version_id is None else self._layer(version_id)
        names = [] if pg is None else pg.layer.wanted(columns)
        over = [(layer, layer.layer.wanted(cols))
                for layer, cols in ((self._layer(o[0]), o[1]) for o in overlays)]
        xy = None if point is None else base.check_point(*point)
        params: list[object] = []
        clause = None
        if pg is not None:
            clause, params = self._find_clause(pg, where) if where is not None \
                else (self._at_point, list(xy))  # type: ignore[arg-type]
        if xy is not None:
            params.extend(xy)  # the point the overlays are asked at when nothing is found
        key = (version_id, tuple(names), None if clause is None else clause.as_string(None),
               xy is not None, tuple((o[0], tuple(n)) for o, (_, n)
                                     in zip(overlays, over, strict=True)))
        query = self._statements.get(key)
        if query is None:
            query = self._overlay_statement(pg, names, clause, xy is not None, over)
            if len(self._statements) >= _MAX_STATEMENTS:
                self._statements.clear()
            self._statements[key] = query
        check = published is not None and not published.confirmed
        if published is not None and published.server is not None:
            rows = self._select_on(published.server, query, params, binary=True, prepare=True)
            if rows is None and not check:  # a confirmed snapshot: any server will do
                rows = self._select(query, params, binary=True, prepare=True)
        else:
            rows = self._select(query, params, binary=True, prepare=True)
        if check:
            self._check_token(published, published.server or self.dsn,  # type: ignore[union-attr]
                              None if rows is None else rows[0][0])
        assert rows is not None
        first = rows[0]
        records: list[dict[str, Any]] = []
        if pg is not None and first[1] is not None:
            found = [r for r in rows if r[1] is not None]
            geoms = shapely.from_wkb(np.array([r[2] for r in found], dtype=object))
            records = pg.layer.records(names, found, geoms, first=3)
        at = 1 if pg is None else 3 + len(names)
        out: list[list[dict[str, Any]]] = []
        for layer, cols in over:
            wkb = first[at]
            if wkb is None:
                out.append([])
            else:
                values = first[at + 1:at + 1 + len(cols)]
                out.append(layer.layer.records(
                    cols, list(zip(*values, strict=True)) if cols else [()] * len(wkb),
                    shapely.from_wkb(np.array(wkb, dtype=object)), first=0))
            at += 1 + len(cols)
        return Found(records, out)

    def _overlay_statement(self, pg: _PgLayer | None, names: Sequence[str],
                           clause: sql.SQL | None, point: bool,
                           over: Sequence[tuple[_PgLayer, list[str]]]) -> str:
        """The text of `_records_and_overlays`' statement (kept by its shape).

        ``publish_generation`` gives the one row everything else joins to, so the
        token comes back even when nothing is found. The features are a LATERAL
        subquery in stored order, numbered; each overlay layer is one more LATERAL
        aggregating, in its stored order, the features meeting the probe: the first
        feature's envelope (`Store.records`' bbox test: ST_Envelope is exact, and a
        point or a segment for a degenerate box, as `base.box_geometry`), the point
        when nothing was found, NULL (no row) otherwise. ``ST_Intersects`` with the
        probe uses each layer's GiST index. Geometries as EWKB (``geometry::bytea``).
        """
        srid = self.srid
        point_sql = f"ST_SetSRID(ST_MakePoint(%s, %s), {srid})" if point else "NULL::geometry"
        select = ["g.token"]
        # LIMIT 1: the planner then counts on one row (the table has no statistics).
        joins = ["FROM (SELECT token FROM publish_generation LIMIT 1) g"]
        if pg is not None:
            columns = [sql.SQL("{}::text AS c{}" if n in pg.as_text else "{} AS c{}").format(
                _column(pg.sql_names[n]), sql.Literal(i)) for i, n in enumerate(names)]
            inner = sql.SQL("LEFT JOIN LATERAL (SELECT fid, geom{}{}, row_number() OVER "
                            "(ORDER BY fid) AS rn FROM {} WHERE {}) p ON true").format(
                sql.SQL(", " if columns else ""), sql.SQL(", ").join(columns), pg.table,
                clause)
            joins.append(inner.as_string(None))
            select += ["p.fid", "p.geom", *(f"p.c{i}" for i in range(len(names)))]
            probe = (f"CASE WHEN p.fid IS NULL THEN {point_sql} "
                     "WHEN p.rn = 1 THEN ST_Envelope(p.geom) END")
        else:
            probe = point_sql
        joins.append(f"CROSS JOIN LATERAL (SELECT {probe} AS probe) q")
        for i, (layer, cols) in enumerate(over):
            aggregates = [sql.SQL("array_agg(z.geom::bytea ORDER BY z.fid) AS g")]
            aggregates += [sql.SQL("array_agg(z.{}{} ORDER BY z.fid) AS c{}").format(
                _column(layer.sql_names[n]),
                sql.SQL("::text" if n in layer.as_text else ""), sql.Literal(j))
                for j, n in enumerate(cols)]
            joins.append(sql.SQL("CROSS JOIN LATERAL (SELECT {} FROM {} z "
                                 "WHERE ST_Intersects(z.geom, q.probe)) o{}").format(
                sql.SQL(", ").join(aggregates), layer.table, sql.Literal(i)).as_string(None))
            select += [f"o{i}.g", *(f"o{i}.c{j}" for j in range(len(cols)))]
        order = " ORDER BY p.fid" if pg is not None else ""
        return f"SELECT {', '.join(select)} {' '.join(joins)}{order}"

    # -- paging by feature id (OGC API Features) ----------------------------------------

    def columns(self, version_id: int) -> list[str]:
        return self._layer(version_id).layer.names

    def _feature_ids(self, version_id: int, where: Mapping[str, object] | None,
                     intersects: Bounds | BaseGeometry | None) -> np.ndarray:
        """As `Store.feature_ids`: fids are 1..n in a table written once, so an
        unfiltered call reads nothing; filters run in the database."""
        pg = self._layer(version_id)
        clauses: list[sql.Composable] = []
        params: list[object] = []
        if where:
            clause, values = self._find_clause(pg, where)
            clauses.append(clause)
            params.extend(values)
        if intersects is not None:
            clause, values = self._area_clause(base.check_intersects(intersects))
            clauses.append(clause)
            params.extend(values)
        if not clauses:
            return np.arange(1, pg.feature_count + 1, dtype=np.int64)
        query = sql.SQL("SELECT fid FROM {} WHERE {} ORDER BY fid").format(
            pg.table, sql.SQL(" AND ").join(clauses))
        rows = self._select(query, params, binary=True)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def _records_by_id(self, version_id: int, ids: Sequence[int] | np.ndarray,
                       columns: Sequence[str] | None) -> list[dict[str, Any]]:
        pg = self._layer(version_id)
        names = pg.layer.wanted(columns)
        wanted, page = page_ids(ids)
        if not len(wanted):
            return []
        if page:  # one range scan
            where, params = sql.SQL("fid BETWEEN %s AND %s"), [int(wanted[0]), int(wanted[-1])]
        else:
            where, params = sql.SQL("fid = ANY(%s)"), [wanted.tolist()]
        return pg.layer.records_by_id(names, *self._fetch(pg, where, params, names, fid=True))


# -- helpers --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _shared_meta(text: str) -> dict[str, Any]:
    """A version's meta parsed from its JSON text, kept by that text.

    Why: a point look-up asks `PostgisStore.published_versions` for every district's
    layers on each request, and parsing their meta (a read report each, ~1 KB) was half
    the cost of that query. Keyed by the text itself, an entry cannot be stale: a meta
    update is another text. The parsed dict is shared by every version given it, as
    `Store.published` allows (callers treat meta as read-only); at most 256 are kept.
    """
    return json.loads(text)


def _column(name: str) -> sql.SQL:
    """A column name quoted for the text of a statement sent with parameters: ``%``
    doubled, as psycopg reads every other ``%`` as a placeholder (a file's "Tỷ lệ %"
    column made every read of its layer fail)."""
    return sql.SQL(sql.Identifier(name).as_string(None).replace("%", "%%"))


def _pg_layer(district: str, name: str, columns: Sequence[Sequence[str]],
              count: int) -> _PgLayer:
    """A version's layer facts from its catalogue row (district, layer_table, columns as
    parsed JSON, feature_count)."""
    layer = TableLayer(district, name, tuple((c[0], c[1]) for c in columns))
    return _PgLayer(layer, sql.Identifier(LAYERS, name), {c[0]: c[2] for c in columns},
                    count, frozenset(c[0] for c in columns if c[3] in _TEXT_READ))


def _published_from_rows(rows: Iterable[Sequence[Any]]) -> tuple[
        dict[tuple[str, str], Version], dict[tuple[str, str], Version]]:
    """Catalogue rows (`_META_AS_TEXT_FIELDS`) as `published_versions` answers them
    (districts' own layers) and as `published_projects` does (projects' layers)."""
    districts, projects = {}, {}
    for row in rows:
        v = version_from_row((*row[:_META_FIELD], _shared_meta(row[_META_FIELD]),
                              *row[_META_FIELD + 1:]))
        if v.project is None:
            districts[(v.district, v.kind)] = v
        else:
            projects[(v.project, v.kind)] = v
    return districts, projects


def _version_id(version_id: object) -> int:
    """A version id as an int; anything else (or out of bigint's range) is not found."""
    vid = base.check_version_id(version_id)
    if not 0 < vid < 2**63:
        raise base.no_version(version_id)
    return vid


def _write_failed(exc: BaseException, what: str) -> StoreError:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return StoreError(f"Could not write the {what}: {message}", where="add_version",
                      fix="Check the column types of the layer", code="STORE-WRITE-FAILED")


def _sql_names(names: Sequence[str]) -> dict[str, str]:
    """Attribute name → column name in the table: the name itself, unless PostgreSQL
    would truncate it (63 bytes) — then ``_c<i>``, unique among the others."""
    taken = {n for n in names if len(n.encode()) <= _MAX_IDENTIFIER_BYTES} | base.RESERVED_COLUMNS
    out = {}
    for i, name in enumerate(names):
        if len(name.encode()) <= _MAX_IDENTIFIER_BYTES:
            out[name] = name
            continue
        candidate, n = f"_c{i}", 0
        while candidate in taken:
            n += 1
            candidate = f"_c{i}_{n}"
        taken.add(candidate)
        out[name] = candidate
    return out


def _arrow_table(gdf: gpd.GeoDataFrame, attrs: Sequence[str]) -> pa.Table:
    """The attribute columns as Arrow (categoricals as their values)."""
    columns = {}
    for name in attrs:
        array = pa.array(gdf[name], from_pandas=True)
        if pa.types.is_dictionary(array.type):
            array = array.cast(array.type.value_type)
        columns[name] = array
    return pa.table(columns) if columns else pa.table({})


def _pg_type(name: str, arrow_type: pa.DataType) -> str:
    """The PostgreSQL type of an attribute column, from its Arrow type."""
    t = pa.types
    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_integer(arrow_type):
        return "numeric" if arrow_type == pa.uint64() else "bigint"
    if t.is_floating(arrow_type):
        return "double precision"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_null(arrow_type) \
            or getattr(t, "is_string_view", lambda _: False)(arrow_type):
        return "text"
    if t.is_date(arrow_type):
        return "date"
    if t.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if t.is_time(arrow_type):
        return "time"
    if t.is_decimal(arrow_type):
        return "numeric"
    raise TypeError(f"column {name!r} has values of type {arrow_type}, which a layer "
                    "cannot hold")


def _promote(geoms: np.ndarray) -> np.ndarray:
    """Single parts as multi-parts when a layer mixes them (Polygon and MultiPolygon →
    MultiPolygon), as GDAL does when the GeoPackage store writes; one type is kept."""
    types = shapely.get_type_id(geoms)
    present = set(np.unique(types[types >= 0]).tolist())
    out = geoms
    # (single type id, multi type id, constructor)
    for single, multi, make in ((0, 4, shapely.multipoints), (1, 5, shapely.multilinestrings),
                                (3, 6, shapely.multipolygons)):
        if {single, multi} <= present:
            out = out.copy() if out is geoms else out
            idx = np.flatnonzero(types == single)
            out[idx] = make(geoms[idx], indices=np.arange(len(idx)))
    return out


def _geometry_column(geoms: np.ndarray, srid: int) -> sql.Composable:
    """The geometry column's type: any geometry type, 2D, or 3D when every geometry has Z
    (the type modifier both checks the SRID and tells GIS clients what the layer holds).
    A layer mixing 2D and 3D geometries, which the GeoPackage store keeps as they are,
    gets no type modifier (it would refuse one or the other) and a CHECK on the SRID."""
    present = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    has_z = shapely.has_z(present)
    if not has_z.any():
        return sql.SQL("geometry(Geometry, {})").format(sql.Literal(srid))
    if has_z.all():
        return sql.SQL("geometry(GeometryZ, {})").format(sql.Literal(srid))
    return sql.SQL("geometry CHECK (ST_SRID(geom) = {})").format(sql.Literal(srid))


def _family(dtype: Any) -> str:
    """``bool``, ``int``, ``float``, ``text`` or ``other``: how `find` matches a column."""
    try:
        kind = np.dtype(dtype).kind if not isinstance(dtype, pd.api.extensions.ExtensionDtype) \
            else dtype.kind
    except TypeError:
        return "other"
    if isinstance(dtype, pd.StringDtype) or kind in "OSU":
        return "text"
    return {"b": "bool", "i": "int", "u": "int", "f": "float"}.get(kind, "other")


def _match_value(column: str, value: object, dtype: Any) -> object:
    """A `find` value as a parameter of the column's type; ``None`` matches NULL;
    `_NO_MATCH` when no value of the column can equal it (as SQLite compares)."""
    value = find_value(column, value)
    if value is None:
        return None
    family = _family(dtype)
    if family == "text" or family == "other":
        if isinstance(value, bool):
            return str(int(value))
        return value if isinstance(value, str) else str(value)
    number: int | float
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                return _NO_MATCH
            if not math.isfinite(number):
                return _NO_MATCH
    else:
        number = int(value) if isinstance(value, bool) else value
    if family == "float":
        return float(number)
    if isinstance(number, float):
        if not number.is_integer():
            return _NO_MATCH
        number = int(number)
    if family == "bool":
        return bool(number) if number in (0, 1) else _NO_MATCH
    return number if -2**63 <= number < 2**63 else _NO_MATCH
