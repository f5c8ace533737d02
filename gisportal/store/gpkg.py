"""Embedded backend: one GeoPackage per district plus a SQLite catalogue of versions.

Layout under the data home::

    catalogue.sqlite          versions table (WAL), schema_version table
    districts/<code>.gpkg     one table per version, e.g. parcels_v12 (WAL)
    districts/<code>.lock     flock()ed by whoever writes to <code>.gpkg

Why it is crash-safe: a version id is reserved in the catalogue with the hidden status
``writing`` before its table is written, and flipped to ``draft`` only after the table,
its spatial index and its key index are complete. Publishing is one catalogue
transaction. A writer killed at any point leaves either a ``writing`` row (removed with
its table the next time a store is opened on the home) or a complete draft; the
published pointer is never touched by a write.

Why reads go around GDAL for small queries: opening a GeoPackage through GDAL costs
milliseconds per call, more than a whole key or point look-up. `find`, `at_point`,
`query_bbox` and `records` query the GeoPackage tables with ``sqlite3`` (the key index,
the ``rtree_<table>_geom`` R*Tree) over read-only connections cached per thread, and
decode the GeoPackage geometry blobs themselves; the exact geometry test runs before
any frame is built, and `records` builds none (a GeoDataFrame costs ~0.3 ms, ten times
the query). Bulk `read` uses pyogrio, which is faster for whole layers.

Why `published` and `districts` are cached: every look-up asks for them. Each thread
keeps a snapshot of the published pointers and the district list, valid while its
catalogue connection's ``PRAGMA data_version`` (which changes when any other
connection, in any process, commits to the catalogue) and the store's own write counter
(bumped by every transaction this store runs, which ``data_version`` does not see) stay
the same. Checking both costs a few microseconds; a publish is seen by the next call.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyproj
import shapely
from pyogrio.errors import (
    CRSError,
    DataLayerError,
    DataSourceError,
    FieldError,
    GeometryError,
)
from shapely.geometry.base import BaseGeometry

from gisportal.base.diskspace import DiskFullError, disk_full_error, is_disk_full
from gisportal.base.errors import StoreError
from gisportal.store import base, catalogue
from gisportal.store.base import Bounds, NewLayer, Store, Version
from gisportal.store.common import TableLayer, find_value, page_ids, version_from_row
from gisportal.store.home import DataHome

__all__ = ["GpkgStore"]

logger = logging.getLogger(__name__)

#: Catalogue migrations of this component; entry i brings the schema to version i + 1.
#: Other components (users, audit) keep their own row in ``schema_version``.
_COMPONENT = "store"
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            district TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('writing', 'draft', 'published', 'superseded')),
            source_name TEXT NOT NULL,
            source_sha256 TEXT NOT NULL,
            feature_count INTEGER NOT NULL,
            has_errors INTEGER NOT NULL CHECK (has_errors IN (0, 1)),
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            published_at TEXT,
            published_by TEXT,
            meta TEXT NOT NULL DEFAULT '{}',
            minx REAL, miny REAL, maxx REAL, maxy REAL,
            columns TEXT NOT NULL,
            key_columns TEXT NOT NULL DEFAULT '[]',
            CHECK (status != 'published' OR has_errors = 0)
        )""",
        # The database itself guarantees one published version per layer, whatever a
        # buggy or concurrent caller does.
        """CREATE UNIQUE INDEX versions_one_published ON versions (district, kind)
            WHERE status = 'published'""",
        "CREATE INDEX versions_by_layer ON versions (district, kind, status)",
    ),
    (
        # Planning projects' layers (`base.PROJECT_KINDS`): one published version per
        # (district, kind, project), a district's own layers having no project.
        "ALTER TABLE versions ADD COLUMN project TEXT",
        "DROP INDEX versions_one_published",
        """CREATE UNIQUE INDEX versions_one_published
            ON versions (district, kind, ifnull(project, '')) WHERE status = 'published'""",
        "CREATE INDEX versions_by_project ON versions (project, kind, status)",
    ),
)

#: Ids per query when fetching features by id (well under SQLite's parameter limits).
_ID_CHUNK = 20_000
_VISIBLE = "status IN ('draft', 'published', 'superseded')"
_VERSION_FIELDS = (
    "id, district, kind, status, source_name, source_sha256, feature_count, has_errors, "
    "created_at, created_by, published_at, published_by, meta, minx, miny, maxx, maxy, "
    "project"
)
#: Names of version tables in a district GeoPackage (every kind's: an annual plan's table
#: left out would survive in a backup copy taken while it was written, and a restored
#: catalogue could hand its id out again); anything else there is not ours.
_TABLE_RE = re.compile(
    rf"({'|'.join(map(re.escape, base.KINDS + base.PROJECT_KINDS))})_v([0-9]+)")
#: GeoPackage geometry header: 8 bytes plus an envelope whose size the flags give.
_ENVELOPE_BYTES = (0, 32, 48, 48, 64)
#: GeoPackage registry tables that may name a layer table.
_GPKG_REGISTRIES = (
    "gpkg_extensions",
    "gpkg_geometry_columns",
    "gpkg_ogr_contents",
    "gpkg_data_columns",
    "gpkg_metadata_reference",
    "gpkg_contents",
)


def _q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _table_name(kind: str, version_id: int) -> str:
    return f"{kind}_v{version_id}"


@dataclass(frozen=True)
class _Snapshot:
    """One thread's copy of the catalogue facts look-ups ask for on every request."""

    #: (PRAGMA data_version of the thread's catalogue connection, store write counter)
    token: tuple[int, int]
    published: dict[tuple[str, str], Version]
    districts: tuple[str, ...]
    #: the published layers of planning projects, (project, kind) → version
    projects: dict[tuple[str, str], Version]


class GpkgStore(Store):
    """`Store` kept in GeoPackages and a SQLite catalogue under a data home directory.

    Safe for several threads and several processes on one machine: catalogue writes
    are short SQLite transactions (busy timeout), layer writes to one district are
    serialised by an OS file lock, and both databases are in WAL mode so lookups never
    wait for an upload.

    Parameters
    ----------
    home
        The data home (a folder, or a `DataHome`); created if missing.
    crs
        CRS of every stored geometry, e.g. ``"EPSG:5899"`` for Lâm Đồng.
    lock_timeout
        Seconds an upload waits for another upload to the same district to finish.
    busy_timeout
        Seconds a SQLite statement waits for a lock held by another connection.
    """

    def __init__(
        self,
        home: str | os.PathLike[str],
        *,
        crs: str,
        lock_timeout: float = 600.0,
        busy_timeout: float = 30.0,
    ) -> None:
        self.crs = crs
        self._crs = pyproj.CRS.from_user_input(crs)
        self.home = DataHome.at(home)
        self.root = self.home.root
        self._districts_dir = self.home.districts
        self._districts_dir.mkdir(parents=True, exist_ok=True)
        self._catalogue_path = self.home.catalogue
        self._lock_timeout = lock_timeout
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._layers: dict[int, TableLayer] = {}
        #: Bumped after every transaction this store runs (see `_snapshot`).
        self._writes = 0
        self._writes_lock = threading.Lock()
        self._closed = False
        self._migrate()
        self.recover()

    # -- connections ---------------------------------------------------------------------

    def _connect(self, path: Path, *, readonly: bool = False) -> sqlite3.Connection:
        """Open a connection that `close` will close, in autocommit mode.

        Autocommit (``isolation_level=None``) because transactions are explicit
        ``BEGIN IMMEDIATE`` blocks: Python's implicit ones would hold read snapshots open.
        """
        if self._closed:
            raise StoreError("The store is closed", where=str(self.root),
                             fix="Open a new store", code="STORE-CLOSED")
        uri = "file:" + urllib.request.pathname2url(str(path.resolve()))
        if readonly:
            uri += "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout,
                               isolation_level=None, check_same_thread=False)
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _db(self) -> sqlite3.Connection:
        """This thread's catalogue connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "catalogue", None)
        if conn is None or self._closed:
            conn = self._connect(self._catalogue_path)
            self._local.catalogue = conn
        return conn

    def _reader(self, district: str) -> sqlite3.Connection:
        """This thread's read-only connection to a district GeoPackage."""
        readers: dict[str, sqlite3.Connection] = self._local.__dict__.setdefault("readers", {})
        conn = readers.get(district)
        if conn is None or self._closed:
            conn = self._connect(self._gpkg_path(district), readonly=True)
            readers[district] = conn
        return conn

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """`catalogue.transaction` (the write lock at once), counted for the snapshots."""
        folder = self._catalogue_path if conn is None else self._districts_dir
        conn = conn or self._db()
        try:
            with catalogue.transaction(conn):
                yield conn
        except sqlite3.Error as exc:  # "database or disk is full": say so, in one line
            if is_disk_full(exc):
                raise disk_full_error(folder, self.root) from exc
            raise
        finally:
            # The writing connection's own data_version does not change on its commits:
            # this counter makes the catalogue snapshots of every thread notice them.
            with self._writes_lock:
                self._writes += 1

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with suppress(sqlite3.Error):
                conn.close()

    # -- catalogue schema and recovery ---------------------------------------------------

    def _migrate(self) -> None:
        """Create or upgrade the catalogue schema; refuse a catalogue from the future."""
        catalogue.migrate(self._db(), self._catalogue_path, {_COMPONENT: _MIGRATIONS},
                          begin=self._transaction)

    def recover(self) -> list[int]:
        """Remove what crashed writers left behind; return the version ids removed.

        A ``writing`` row is stale only if nobody holds its district's lock (writers
        reserve their row after taking it), so districts being written right now are
        left alone. Runs when the store is opened.
        """
        db = self._db()
        districts = [r[0] for r in db.execute(
            "SELECT DISTINCT district FROM versions WHERE status = 'writing'")]
        removed: list[int] = []
        for district in districts:
            fd = self._acquire(district, wait=False)
            if fd is None:
                continue
            try:
                removed += self._recover_district(district)
            finally:
                os.close(fd)
        if removed:
            logger.warning("Removed unfinished versions %s left by a crashed upload", removed)
        return removed

    def _recover_district(self, district: str) -> list[int]:
        """Drop the district's unfinished versions; the caller holds the district lock."""
        db = self._db()
        stale = db.execute("SELECT id, kind FROM versions "
                           "WHERE district = ? AND status = 'writing'", (district,)).fetchall()
        path = self._gpkg_path(district)
        if path.exists():
            # Only the unfinished versions' tables go: a table the catalogue does not know
            # is left for a person to look at, never guessed away.
            try:
                self._drop_tables(path, [_table_name(kind, vid) for vid, kind in stale])
                left = [t for t in self._gpkg_tables(path) if _TABLE_RE.fullmatch(t)]
            except sqlite3.DatabaseError:  # not even a database: GDAL died creating it
                left = []
            visible = db.execute(f"SELECT 1 FROM versions WHERE district = ? AND {_VISIBLE}",
                                 (district,)).fetchone()
            if not left and visible is None:
                # Nothing in it was ever readable, so no reader has it open.
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        with self._transaction(db):
            db.executemany("DELETE FROM versions WHERE id = ? AND status = 'writing'",
                           [(vid,) for vid, _ in stale])
        return [vid for vid, _ in stale]

    # -- district files and locks --------------------------------------------------------

    def _gpkg_path(self, district: str) -> Path:
        return self._districts_dir / f"{district}.gpkg"

    def _acquire(self, district: str, *, wait: bool) -> int | None:
        """flock the district's lock file; return its descriptor (closing it unlocks).

        Polls rather than blocking so that a stuck writer produces an error after
        `lock_timeout` instead of a hung upload. ``None`` when `wait` is false and the
        lock is taken.
        """
        fd = os.open(self._districts_dir / f"{district}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self._lock_timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if not wait:
                        os.close(fd)
                        return None
                    if time.monotonic() >= deadline:
                        raise StoreError(
                            f"Another upload to district {district} has held its lock for "
                            f"over {self._lock_timeout:.0f} s",
                            where=str(self._districts_dir / f"{district}.lock"),
                            fix="Wait for the other upload to finish, then try again",
                            code="STORE-BUSY",
                        ) from None
                    time.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise

    @contextmanager
    def _district_lock(self, district: str) -> Iterator[None]:
        fd = self._acquire(district, wait=True)
        assert fd is not None
        try:
            yield
        finally:
            os.close(fd)

    def _gpkg_tables(self, path: Path) -> list[str]:
        conn = sqlite3.connect(path, timeout=self._busy_timeout)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return [r[0] for r in rows]
        finally:
            conn.close()

    def _ensure_wal(self, path: Path) -> None:
        """Put a GeoPackage in WAL mode so readers never wait for a writer (persistent)."""
        conn = sqlite3.connect(path, timeout=self._busy_timeout, isolation_level=None)
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def _drop_tables(self, path: Path, tables: Sequence[str]) -> None:
        """Drop layer tables from a GeoPackage with their R*Tree and registry rows.

        Done with sqlite3 because pyogrio offers no "delete layer" call. Covers what GDAL
        writes for a feature table: the table (its triggers and indexes go with it), its
        R*Tree and its rows in the registry tables.
        """
        if not tables:
            return
        conn = sqlite3.connect(path, timeout=self._busy_timeout, isolation_level=None)
        try:
            with self._transaction(conn):
                present = {r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                for table in tables:
                    conn.execute(f"DROP TABLE IF EXISTS {_q(f'rtree_{table}_geom')}")
                    conn.execute(f"DROP TABLE IF EXISTS {_q(table)}")
                    for registry in _GPKG_REGISTRIES:
                        if registry in present:
                            conn.execute(f"DELETE FROM {registry} "
                                         "WHERE lower(table_name) = lower(?)", (table,))
        finally:
            conn.close()

    # -- backup --------------------------------------------------------------------------

    def snapshot(self, dest: str | os.PathLike[str]) -> list[Path]:
        """Copy the store into the empty folder `dest` while the portal runs; the files
        written (``catalogue.sqlite``, ``districts/<code>.gpkg``).

        The catalogue (versions, and the accounts, jobs and audit log that share it) is
        copied first with SQLite's online backup API, as of one transaction; then each
        district GeoPackage the same way. Layer tables are immutable, so every version
        the copied catalogue lists is in the later copies; tables written after the
        catalogue was copied are dropped from the copies (a restored store would
        otherwise meet tables it does not know under ids it is about to hand out).
        Neither uploads nor look-ups wait.
        """
        copy_home = DataHome.at(dest)  # the copy is a data home of its own
        copy_home.districts.mkdir(parents=True, exist_ok=False)

        def copy(src: Path, target: Path) -> None:
            uri = "file:" + urllib.request.pathname2url(str(src)) + "?mode=ro"
            source = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout)
            copy_db = sqlite3.connect(target)
            try:
                source.backup(copy_db)
                copy_db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                copy_db.close()
                source.close()

        written = [copy_home.catalogue]
        copy(self._catalogue_path, written[0])
        conn = sqlite3.connect(written[0])
        try:
            known = {_table_name(kind, vid) for vid, kind in conn.execute(
                "SELECT id, kind FROM versions")}
        finally:
            conn.close()
        for gpkg in sorted(self._districts_dir.glob("*.gpkg")):
            target = copy_home.districts / gpkg.name
            copy(gpkg, target)
            later = [t for t in self._gpkg_tables(target)
                     if _TABLE_RE.fullmatch(t) and t not in known]
            self._drop_tables(target, later)
            written.append(target)
        return written

    # -- writing -------------------------------------------------------------------------

    def _write_version(self, new: NewLayer) -> Version:
        district, kind, gdf, keys = new.district, new.kind, new.gdf, new.keys
        path = self._gpkg_path(district)

        with self._district_lock(district):
            with self._transaction() as db:
                version_id = db.execute(
                    "INSERT INTO versions (district, kind, status, source_name, source_sha256,"
                    " feature_count, has_errors, created_at, created_by, meta,"
                    " minx, miny, maxx, maxy, columns, key_columns, project)"
                    " VALUES (?, ?, 'writing', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (district, kind, new.source_name, new.source_sha256, len(gdf),
                     int(bool(new.has_errors)), base.utc_now(), new.created_by, new.meta_json,
                     *(new.bounds or (None,) * 4), json.dumps(new.columns), json.dumps(keys),
                     new.project),
                ).lastrowid
            assert version_id is not None
            table = _table_name(kind, version_id)
            ours: list[str] = []  # tables this call may drop if it fails
            try:
                self._check_new_table(path, table)
                ours.append(table)
                self._write_layer(path, table, gdf, keys, description=new.source_name)
                with self._transaction() as db:
                    db.execute("UPDATE versions SET status = 'draft' "
                               "WHERE id = ? AND status = 'writing'", (version_id,))
            except BaseException as exc:
                self._discard(path, version_id, ours)
                if not isinstance(exc, DiskFullError) and is_disk_full(exc):
                    raise disk_full_error(path, self.root) from exc
                raise
        return self.version(version_id)

    def _check_new_table(self, path: Path, table: str) -> None:
        """Refuse to write where a table exists: pyogrio would silently replace it."""
        if path.exists() and table in self._gpkg_tables(path):
            raise StoreError(
                f"Table {table} already exists; a version is never overwritten",
                where=str(path),
                fix="Check that the catalogue and the district files belong together",
                code="STORE-TABLE-EXISTS",
            )

    def _write_layer(self, path: Path, table: str, gdf: gpd.GeoDataFrame,
                     keys: Sequence[str], *, description: str) -> None:
        """Write a new table in the store CRS, then index its key columns."""
        if path.exists():
            self._ensure_wal(path)  # before the big write, so readers keep reading
        if gdf.crs.srs != self._crs.srs:
            # Same CRS (checked) spelt differently: store it as the store spells it, so
            # the GeoPackage registers the EPSG code rather than a custom definition.
            gdf = gdf.set_crs(self._crs, allow_override=True)
        # GDAL never writes a GeoPackage this process may be reading: its own SQLite
        # library ignores the locks of Python's sqlite3 in the same process, and on
        # closing it deletes the -wal/-shm files under their feet (stale reads, "disk I/O
        # error"). It writes a new file of its own; sqlite3 then copies the table in.
        fresh = not path.exists()
        target = path if fresh else path.with_name(f".{table}.{os.getpid()}.tmp.gpkg")
        try:
            # Mixed Polygon/MultiPolygon are promoted to MultiPolygon (pyogrio's default);
            # a single geometry type is kept as it is.
            options = {"GEOMETRY_NAME": "geom", "SPATIAL_INDEX": "YES",
                       "DESCRIPTION": description}
            if len(gdf) == 0:
                pyogrio.write_dataframe(gdf, target, layer=table, driver="GPKG",
                                        use_arrow=True, **options)
            else:
                _write_in_batches(gdf, target, table, options)
            if not fresh:
                self._copy_table(target, path, table)
        except (DataSourceError, DataLayerError, GeometryError, FieldError, CRSError,
                RuntimeError, ValueError, TypeError) as exc:  # RuntimeError: unsupported dtype
            # A full disk is not a column type: GDAL says "database or disk is full", or
            # loses the cause; the free space now, before the new file goes, tells.
            if is_disk_full(exc, path.parent):
                raise disk_full_error(path, self.root) from exc
            raise StoreError(f"Could not write the layer: {exc}", where=f"{path}:{table}",
                             fix="Check the column types of the layer",
                             code="STORE-WRITE-FAILED") from exc
        finally:
            if not fresh:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)
        self._ensure_wal(path)  # a new file was created by GDAL in rollback-journal mode
        if keys:
            # One composite index serves look-ups by all key columns (or a leading part);
            # one index per further column keeps a look-up that omits the first column
            # (a parcel by sheet and number without its commune) off a full scan.
            indexes = {f"{table}_key": keys}
            indexes.update({f"{table}_key{i}": [k] for i, k in enumerate(keys) if i > 0})
            conn = sqlite3.connect(path, timeout=self._busy_timeout, isolation_level=None)
            try:
                with self._transaction(conn):
                    for name, cols in indexes.items():
                        conn.execute(f"CREATE INDEX {_q(name)} ON {_q(table)} "
                                     f"({', '.join(map(_q, cols))})")
            finally:
                conn.close()

    def _copy_table(self, source: Path, path: Path, table: str) -> None:
        """Copy a feature table GDAL wrote into ``source`` into the GeoPackage ``path``.

        The table, its R*Tree and its registry rows (contents, geometry column, spatial
        reference, extensions, GDAL's feature count) go in one transaction, so readers
        see all of it or nothing. GDAL's triggers are left out: they keep the R*Tree and
        the count in step with edits, and a version table is never edited.
        """
        conn = sqlite3.connect(path, timeout=self._busy_timeout, isolation_level=None)
        try:
            conn.execute("ATTACH DATABASE ? AS src", (str(source),))
            with self._transaction(conn):
                def tables(schema: str) -> dict[str, str]:
                    return dict(conn.execute(
                        f"SELECT name, sql FROM {schema}.sqlite_master WHERE type = 'table'"))

                theirs, ours = tables("src"), tables("main")
                q = _q(table)
                conn.execute(theirs[table])  # CREATE TABLE as GDAL wrote it, in main
                conn.execute(f"INSERT INTO main.{q} SELECT * FROM src.{q}")
                rtree = f"rtree_{table}_geom"
                if rtree in theirs:
                    conn.execute(f"CREATE VIRTUAL TABLE main.{_q(rtree)} "
                                 "USING rtree(id, minx, maxx, miny, maxy)")
                    same_pages = (conn.execute("PRAGMA main.page_size").fetchone()
                                  == conn.execute("PRAGMA src.page_size").fetchone())
                    if same_pages:
                        # The R*Tree lives in three shadow tables whose nodes refer to each
                        # other by number only: copied as they are, the index is the same
                        # (0.1 s for 200 000 boxes, against 1.2 s inserting them again).
                        for shadow in ("node", "rowid", "parent"):
                            name = _q(f"{rtree}_{shadow}")
                            conn.execute(f"DELETE FROM main.{name}")
                            conn.execute(f"INSERT INTO main.{name} SELECT * FROM src.{name}")
                    else:  # node size follows the page size: build the index again
                        conn.execute(f"INSERT INTO main.{_q(rtree)} "
                                     f"SELECT * FROM src.{_q(rtree)}")
                conn.execute(
                    "INSERT OR IGNORE INTO main.gpkg_spatial_ref_sys "
                    "SELECT * FROM src.gpkg_spatial_ref_sys WHERE srs_id IN "
                    "(SELECT srs_id FROM src.gpkg_contents WHERE table_name = ?)", (table,))
                for registry in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions",
                                 "gpkg_ogr_contents"):
                    if registry not in theirs:
                        continue
                    if registry not in ours:
                        conn.execute(theirs[registry])
                    cols = ", ".join(_q(r[1]) for r in conn.execute(
                        f"PRAGMA main.table_info({_q(registry)})"))
                    conn.execute(f"INSERT INTO main.{registry} ({cols}) SELECT {cols} "
                                 f"FROM src.{registry} WHERE lower(table_name) = lower(?)",
                                 (table,))
        finally:
            with suppress(sqlite3.Error):
                conn.execute("DETACH DATABASE src")
            conn.close()

    def _discard(self, path: Path, version_id: int, tables: Sequence[str]) -> None:
        """Undo a failed write. If even that fails, `recover` finishes it on next open."""
        try:
            if path.exists():
                self._drop_tables(path, tables)
            with self._transaction() as db:
                db.execute("DELETE FROM versions WHERE id = ? AND status = 'writing'",
                           (version_id,))
        except Exception:
            logger.exception("Could not remove unfinished version %s; the next store "
                             "opened on %s will", version_id, self.root)

    def publish(self, version_id: int, *, by: str) -> Version:
        with self._transaction() as db:
            version = self._version(db, version_id)
            if version.status == "published":
                return version
            base.check_publishable(version)
            db.execute("UPDATE versions SET status = 'superseded' WHERE district = ? "
                       "AND kind = ? AND project IS ? AND status = 'published'",
                       (version.district, version.kind, version.project))
            db.execute("UPDATE versions SET status = 'published', published_at = ?, "
                       "published_by = ? WHERE id = ?", (base.utc_now(), by, version.id))
            return self._version(db, version.id)

    def update_meta(self, version_id: int, meta: Mapping[str, Any]) -> Version:
        with self._transaction() as db:
            version = self._version(db, version_id)
            db.execute("UPDATE versions SET meta = ? WHERE id = ?",
                       (base.merged_meta(version, meta), version.id))
            return self._version(db, version.id)

    # -- catalogue -----------------------------------------------------------------------

    def _version(self, db: sqlite3.Connection, version_id: int) -> Version:
        vid = base.check_version_id(version_id)
        row = db.execute(f"SELECT {_VERSION_FIELDS} FROM versions WHERE id = ? AND {_VISIBLE}",
                         (vid,)).fetchone()
        if row is None:
            raise base.no_version(version_id)
        return version_from_row(row)

    def version(self, version_id: int) -> Version:
        return self._version(self._db(), version_id)

    def versions(self, district: str | None = None, kind: str | None = None, *,
                 project: str | None = None) -> list[Version]:
        clauses, params = base.catalogue_filter(district, kind, project)
        rows = self._db().execute(
            f"SELECT {_VERSION_FIELDS} FROM versions WHERE {' AND '.join([_VISIBLE, *clauses])} "
            "ORDER BY id DESC", params).fetchall()
        return [version_from_row(r) for r in rows]

    def published(self, district: str, kind: str) -> Version | None:
        key = (base.check_district_code(district), base.check_kind(kind))
        return self._snapshot().published.get(key)

    def districts(self) -> list[str]:
        return list(self._snapshot().districts)

    def published_versions(self, district: str | None = None) -> dict[tuple[str, str], Version]:
        """From this thread's snapshot, checked once (see the module doc): the default
        would check it once per layer, and could mix two states of the catalogue."""
        code = base.check_district_code(district) if district is not None else None
        published = self._snapshot().published
        if code is None:
            return dict(published)
        return {key: v for key, v in published.items() if key[0] == code}

    def published_projects(self) -> dict[tuple[str, str], Version]:
        return dict(self._snapshot().projects)

    def published_snapshot(self, district: str | None = None) -> base.Published:
        """From this thread's snapshot: districts' and projects' layers of one state."""
        code = base.check_district_code(district) if district is not None else None
        snap = self._snapshot()
        published = snap.published if code is None else {
            key: v for key, v in snap.published.items() if key[0] == code}
        return base.Published(published, projects=snap.projects)

    def _snapshot(self) -> _Snapshot:
        """This thread's catalogue snapshot, re-read when anyone committed since.

        The token is read before the catalogue, so a commit landing in between leaves
        a newer snapshot under an older token: re-read once more, never stale.
        """
        db = self._db()
        token = (db.execute("PRAGMA data_version").fetchone()[0], self._writes)
        snap: _Snapshot | None = getattr(self._local, "snapshot", None)
        if snap is not None and snap.token == token:
            return snap
        # One read transaction, so pointers and district list are from one state.
        own = not db.in_transaction
        if own:
            db.execute("BEGIN")
        try:
            rows = db.execute(f"SELECT {_VERSION_FIELDS} FROM versions "
                              "WHERE status = 'published'").fetchall()
            districts = tuple(r[0] for r in db.execute(
                f"SELECT DISTINCT district FROM versions WHERE {_VISIBLE} ORDER BY district"))
        finally:
            if own:
                db.execute("COMMIT")
        published, projects = {}, {}
        for v in map(version_from_row, rows):
            if v.project is None:
                published[(v.district, v.kind)] = v
            else:
                projects[(v.project, v.kind)] = v
        snap = _Snapshot(token, published, districts, projects)
        self._local.snapshot = snap
        return snap

    # -- reading -------------------------------------------------------------------------

    def _layer(self, version_id: int) -> TableLayer:
        """The layer facts of a visible version; cached because they never change."""
        vid = base.check_version_id(version_id)
        layer = self._layers.get(vid)
        if layer is None:
            row = self._db().execute(
                f"SELECT district, kind, columns FROM versions WHERE id = ? AND {_VISIBLE}",
                (vid,)).fetchone()
            if row is None:
                raise base.no_version(version_id)
            district, kind, columns = row
            layer = TableLayer(district, _table_name(kind, vid),
                           tuple((name, dtype) for name, dtype in json.loads(columns)))
            self._layers[vid] = layer
        return layer

    def _read(self, version_id: int, bbox: Bounds | None,
              columns: Sequence[str] | None) -> gpd.GeoDataFrame:
        # Through sqlite3, not GDAL: GDAL's SQLite library closing the file in this
        # process would break the other connections to it (see _copy_table).
        layer = self._layer(version_id)
        names = layer.wanted(columns)
        if bbox is None:
            query: tuple[str, list[object], Any] = ("1", [], None)
        else:
            minx, miny, maxx, maxy = base.check_bbox(bbox)
            sql, params, _ = self._bbox_query(layer, (minx, miny, maxx, maxy))

            def envelope_meets(geoms: np.ndarray) -> np.ndarray:
                # As GDAL's spatial filter: the feature's envelope meets the box.
                b = shapely.bounds(geoms)
                return ((b[:, 0] <= maxx) & (b[:, 2] >= minx)
                        & (b[:, 1] <= maxy) & (b[:, 3] >= miny))

            query = (sql, params, envelope_meets)
        return self._frame(layer, *self._fetch(layer, *query, names))

    def find(self, version_id: int, where: Mapping[str, object]) -> gpd.GeoDataFrame:
        layer = self._layer(version_id)
        return self._frame(layer, *self._fetch(layer, *self._find_query(layer, where)))

    def at_point(self, version_id: int, x: float, y: float) -> gpd.GeoDataFrame:
        layer = self._layer(version_id)
        return self._frame(layer, *self._fetch(layer, *self._point_query(layer, x, y)))

    def _query_bbox(self, version_id: int, bbox: Bounds,
                    columns: Sequence[str] | None) -> gpd.GeoDataFrame:
        layer = self._layer(version_id)
        names = layer.wanted(columns)
        return self._frame(layer, *self._fetch(layer, *self._bbox_query(layer, bbox), names))

    def _records(self, version_id: int, where: Mapping[str, object] | None,
                 point: tuple[float, float] | None, bbox: Bounds | None,
                 columns: Sequence[str] | None) -> list[dict[str, Any]]:
        layer = self._layer(version_id)
        names = layer.wanted(columns)
        if where is not None:
            query = self._find_query(layer, where)
        elif point is not None:
            query = self._point_query(layer, *point)
        else:
            query = self._bbox_query(layer, bbox)  # type: ignore[arg-type]
        names, rows, geoms = self._fetch(layer, *query, names)
        return layer.records(names, rows, geoms, first=1)

    # -- paging by feature id (OGC API Features) ----------------------------------------

    def columns(self, version_id: int) -> list[str]:
        return self._layer(version_id).names

    def _feature_ids(self, version_id: int, where: Mapping[str, object] | None,
                     intersects: Bounds | BaseGeometry | None) -> np.ndarray:
        """As `Store.feature_ids`, through the indexes.

        Unfiltered: the fids are 1..n in a layer written once, so two index look-ups and
        the catalogue's count give the range without reading a row. A box or shape: the
        R*Tree gives candidates with their boxes; a candidate whose (outward-rounded) box
        lies inside a query box surely meets it, only the others are decoded and tested.
        """
        layer = self._layer(version_id)
        conn = self._reader(layer.district)
        table = _q(layer.table)
        clauses: list[str] = []
        params: list[object] = []
        if where:
            sql, values, _ = self._find_query(layer, where)
            clauses.append(sql)
            params.extend(values)
        if intersects is None:
            if not clauses:
                # One aggregate per query: SQLite reads min() or max() of the key from the
                # B-tree only when it is alone; both in one SELECT scan every row (26 ms at
                # 200 000 parcels, on every OGC items page).
                lo, hi = conn.execute(f"SELECT (SELECT min(fid) FROM {table}), "
                                      f"(SELECT max(fid) FROM {table})").fetchone()
                if lo is None:
                    return np.empty(0, dtype=np.int64)
                if hi - lo + 1 == self.version(version_id).feature_count:
                    return np.arange(lo, hi + 1, dtype=np.int64)
            rows = conn.execute(f"SELECT fid FROM {table} WHERE {' AND '.join(clauses) or '1'}"
                                " ORDER BY fid", params).fetchall()
            return np.array([r[0] for r in rows], dtype=np.int64)
        area = base.check_intersects(intersects)
        minx, miny, maxx, maxy = area.bounds
        rtree = _q(f"rtree_{layer.table}_geom")
        filters = "".join(f" AND {c}" for c in clauses)
        rows = conn.execute(
            f"SELECT t.fid, r.minx, r.maxx, r.miny, r.maxy FROM {rtree} r "
            f"JOIN {table} t ON t.fid = r.id WHERE r.minx <= ? AND r.maxx >= ? "
            f"AND r.miny <= ? AND r.maxy >= ?{filters} ORDER BY t.fid",
            [maxx, minx, maxy, miny, *params]).fetchall()
        if not rows:
            return np.empty(0, dtype=np.int64)
        cand = np.array(rows, dtype=np.float64)
        fids = cand[:, 0].astype(np.int64)
        if shapely.equals(area, base.box_geometry(minx, miny, maxx, maxy)) and area.area > 0:
            inside = ((cand[:, 1] >= minx) & (cand[:, 2] <= maxx)
                      & (cand[:, 3] >= miny) & (cand[:, 4] <= maxy))
        else:
            inside = np.zeros(len(fids), dtype=bool)
        keep = inside.copy()
        doubtful = fids[~inside]
        if len(doubtful):
            geoms: dict[int, Any] = {}
            for start in range(0, len(doubtful), _ID_CHUNK):
                chunk = doubtful[start:start + _ID_CHUNK]
                for fid, blob in conn.execute(
                        f"SELECT fid, geom FROM {table} WHERE fid IN "
                        "(SELECT value FROM json_each(?))", [json.dumps(chunk.tolist())]):
                    geoms[fid] = blob
            decoded = _decode_geometries([geoms.get(int(f)) for f in doubtful])
            hit = np.asarray(shapely.intersects(decoded, area), dtype=bool)
            keep[np.flatnonzero(~inside)] = hit & ~shapely.is_missing(decoded)
        return fids[keep]

    def _records_by_id(self, version_id: int, ids: Sequence[int] | np.ndarray,
                       columns: Sequence[str] | None) -> list[dict[str, Any]]:
        layer = self._layer(version_id)
        names = layer.wanted(columns)
        wanted, page = page_ids(ids)
        if not len(wanted):
            return []
        if page:  # one range scan
            where_sql, params = "fid BETWEEN ? AND ?", [int(wanted[0]), int(wanted[-1])]
        else:
            where_sql = "fid IN (SELECT value FROM json_each(?))"
            params = [json.dumps(wanted.tolist())]
        select = ", ".join(["fid", "geom", *map(_q, names)])
        rows = self._reader(layer.district).execute(
            f"SELECT {select} FROM {_q(layer.table)} WHERE {where_sql} ORDER BY fid",
            params).fetchall()
        return layer.records_by_id(names, rows, _decode_geometries([row[1] for row in rows]))

    def _find_query(self, layer: TableLayer, where: Mapping[str, object]) -> tuple[
            str, list[object], None]:
        clauses, params = [], []
        for column, value in base.check_where(where).items():
            layer.check_columns([column], "where")
            sql_value = _sql_value(column, value)
            if sql_value is None:
                clauses.append(f"{_q(column)} IS NULL")
            else:
                clauses.append(f"{_q(column)} = ?")
                params.append(sql_value)
        return " AND ".join(clauses), params, None

    @staticmethod
    def _point_query(layer: TableLayer, x: float, y: float) -> tuple[
            str, list[object], Callable[[np.ndarray], np.ndarray]]:
        px, py = base.check_point(x, y)
        # The R*Tree keeps float32 boxes rounded outwards, so it returns a superset;
        # the exact test settles each candidate (before any frame is built).
        return (f"fid IN (SELECT id FROM {_q(f'rtree_{layer.table}_geom')} "
                "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)",
                [px, px, py, py], lambda geoms: shapely.intersects_xy(geoms, px, py))

    @staticmethod
    def _bbox_query(layer: TableLayer, bbox: Bounds) -> tuple[
            str, list[object], Callable[[np.ndarray], np.ndarray]]:
        minx, miny, maxx, maxy = base.check_bbox(bbox)
        box = base.box_geometry(minx, miny, maxx, maxy)
        # As in at_point: the R*Tree gives a superset, the exact test settles it.
        return (f"fid IN (SELECT id FROM {_q(f'rtree_{layer.table}_geom')} "
                "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)",
                [maxx, minx, maxy, miny], lambda geoms: shapely.intersects(geoms, box))

    def _fetch(
        self,
        layer: TableLayer,
        where_sql: str,
        params: Sequence[object],
        keep: Callable[[np.ndarray], np.ndarray] | None,
        names: Sequence[str] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]], np.ndarray]:
        """Run one query on a layer table: (column names, rows, decoded geometries).

        `names` are the attribute columns to return (checked by the caller); all of
        them by default. `keep(geometries)` gives a boolean mask of the rows to keep.
        Rows are tuples whose first item is the geometry blob.
        """
        names = layer.names if names is None else list(names)
        select = ", ".join(["geom", *map(_q, names)])
        rows = self._reader(layer.district).execute(
            f"SELECT {select} FROM {_q(layer.table)} WHERE {where_sql} ORDER BY fid",
            params).fetchall()
        geoms = _decode_geometries([row[0] for row in rows])
        if keep is not None and rows:
            mask = np.asarray(keep(geoms), dtype=bool)
            rows = [row for row, k in zip(rows, mask, strict=True) if k]
            geoms = geoms[mask]
        return names, rows, geoms

    def _frame(self, layer: TableLayer, names: list[str], rows: list[tuple[Any, ...]],
               geoms: np.ndarray) -> gpd.GeoDataFrame:
        """Fetched rows as `read` returns them."""
        return layer.frame(names, rows, geoms, self._crs)


# -- helpers --------------------------------------------------------------------------------


#: Features turned into WKB and Arrow at once when a layer is written. A batch is held
#: as Python bytes, as the Arrow column GDAL reads and as GDAL's features, beside the
#: layer: 10 000 rather than 25 000 lowers a 200 000-parcel write's peak by about 5 MB.
WRITE_BATCH = 10_000
#: shapely's geometry type ids, as names (what GeoSeries.geom_type gives).
_GEOM_TYPES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
               "MultiLineString", "MultiPolygon", "GeometryCollection")
#: Single geometry types, their multi type and how to make one of the other.
_MULTI = {"Point": ("MultiPoint", shapely.multipoints),
          "LineString": ("MultiLineString", shapely.multilinestrings),
          "Polygon": ("MultiPolygon", shapely.multipolygons)}


def _write_in_batches(gdf: gpd.GeoDataFrame, target: Path, table: str,
                      options: Mapping[str, str]) -> None:
    """Write ``gdf`` as a new GPKG layer, WRITE_BATCH features at a time.

    The file is what ``pyogrio.write_dataframe(gdf, use_arrow=True)`` writes: the layer's
    geometry type, CRS and column types are decided on the whole frame as pyogrio
    decides them. But pyogrio turns the whole layer into WKB and then into one Arrow
    table, both next to the frame (400 MB more for a million parcels); here GDAL reads
    a stream of record batches, each built when GDAL asks for it.
    """
    geom = gdf.geometry.name
    geometry = gdf.geometry
    values = np.asarray(geometry.values)
    # Type ids, not ``geometry.geom_type``: that is a text column (11 MB for 200 000
    # features, Arrow-backed) where one byte per feature says the same.
    kinds = shapely.get_type_id(values).astype(np.int8)
    has_z = bool(shapely.has_z(values[~(shapely.is_missing(values)
                                        | shapely.is_empty(values))]).any())
    del values
    names = [_GEOM_TYPES[k] for k in np.unique(kinds) if k >= 0]  # -1: missing
    promote = None  # the single type whose features become multi, if any
    geometry_type = names[0] if len(names) == 1 else "Unknown"
    for single, (multi, _) in _MULTI.items():
        if len(names) == 2 and set(names) == {single, multi}:
            # A GPKG layer holds one type: both become multi (pyogrio's default).
            geometry_type, promote = multi, single
    if has_z and geometry_type != "Unknown":
        geometry_type += " Z"
    epsg = geometry.crs.to_epsg() if geometry.crs else None
    crs = None if not geometry.crs else f"EPSG:{epsg}" if epsg else \
        geometry.crs.to_wkt("WKT1_GDAL")

    # Columns pyarrow cannot take as they are become text, as pyogrio makes them.
    frame = pd.DataFrame(gdf, copy=False)
    datetimes = []
    for name, dtype in frame.dtypes.items():
        if name == geom:
            continue
        if dtype == "object":
            inferred = pd.api.types.infer_dtype(frame[name])
            if inferred == "string":
                continue
            if inferred == "datetime":
                frame[name] = frame[name].astype("string")
                datetimes.append(name)
            else:
                try:
                    pa.Schema.from_pandas(frame[[name]])
                except pa.ArrowInvalid:
                    frame[name] = frame[name].astype("string")
        elif isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) != "UTC":
            frame[name] = frame[name].astype("string")
            datetimes.append(name)
    fields = []
    for name, dtype in frame.dtypes.items():
        if name == geom:
            field = pa.field(name, pa.binary())
        elif dtype == "object" and pd.api.types.infer_dtype(frame[name]) == "string":
            field = pa.field(name, pa.string())  # what pyarrow makes of Python text
        else:
            field = pa.Schema.from_pandas(frame[[name]], preserve_index=False).field(0)
            if pa.types.is_null(field.type):  # GDAL takes no null type: text
                field = field.with_type(pa.string())
            elif pa.types.is_dictionary(field.type) and pa.types.is_null(
                    field.type.value_type):
                field = field.with_type(pa.dictionary(field.type.index_type, pa.string()))
        if name in datetimes:
            field = field.with_metadata({"GDAL:OGR:type": "DateTime"})
        fields.append(field)
    schema = pa.schema(fields)

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(frame), WRITE_BATCH):
            part = frame.iloc[start:start + WRITE_BATCH].copy(deep=False)
            geoms = np.array(part[geom].array, dtype=object)
            if promote is not None:
                mask = kinds[start:start + WRITE_BATCH] == _GEOM_TYPES.index(promote)
                if mask.any():
                    geoms[mask] = _MULTI[promote][1](np.atleast_2d(geoms[mask]), axis=0)
            part[geom] = shapely.to_wkb(geoms)
            del geoms
            # Through a Table: a column backed by a chunked Arrow array (text that a
            # commune update concatenated) is not one RecordBatch column as it is.
            yield from pa.Table.from_pandas(part, schema=schema,
                                            preserve_index=False).to_batches()
            del part
            # GDAL has written the batch: Arrow's pool would keep its pages (WKB, column
            # copies) on top of the layer for the rest of the write.
            pa.default_memory_pool().release_unused()

    pyogrio.write_arrow(pa.RecordBatchReader.from_batches(schema, batches()), target,
                        layer=table, driver="GPKG", geometry_name=geom,
                        geometry_type=geometry_type, crs=crs, **options)


def _decode_geometries(blobs: Sequence[bytes | None]) -> np.ndarray:
    """Shapely geometries from GeoPackage blobs: skip the header, parse the WKB."""
    wkb: list[bytes | None] = []
    for blob in blobs:
        if blob is None:
            wkb.append(None)
            continue
        envelope = (blob[3] >> 1) & 0x07
        if blob[:2] != b"GP" or envelope >= len(_ENVELOPE_BYTES):
            raise StoreError("A stored geometry is not a GeoPackage geometry blob",
                             fix="The district GeoPackage may be damaged; restore it",
                             code="STORE-BAD-GEOMETRY")
        wkb.append(blob[8 + _ENVELOPE_BYTES[envelope]:])
    return shapely.from_wkb(np.array(wkb, dtype=object))


def _sql_value(column: str, value: object) -> object:
    """A `find` value as an SQL parameter; ``None`` means "match NULL"."""
    value = find_value(column, value)
    return int(value) if isinstance(value, bool) else value  # GeoPackage booleans: 0/1
