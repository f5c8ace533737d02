"""GeoPackages looked at with SQLite before and after GDAL reads them.

A GeoPackage is an SQLite database, and SQLite computes what it returns: a layer that
is a *view* over an endless recursive query (``WITH RECURSIVE r(i) AS (SELECT 1 UNION
ALL SELECT i+1 FROM r)``) makes a 100 KB file grow GDAL's memory by 190 MB a second,
and a *virtual generated column* (``GENERATED ALWAYS AS (zeroblob(1e9)) VIRTUAL``)
hands GDAL a gigabyte per row. Neither costs the file any bytes, so no size limit
catches them. :func:`check_geopackage` opens the file with Python's ``sqlite3``,
read-only, queries only its schema, and refuses every registered layer that is not a
plain table before GDAL (which would run the query to count or read the features)
ever opens it.

After GDAL has read a layer, SQLite also tells what GDAL hid: GDAL reads text as C
strings, so a NUL character silently cuts a value short (:func:`nul_texts` finds those
values whole), and it returns a geometry blob it cannot parse (random bytes, truncated
WKB) as no geometry at all, which the validator would call empty
(:func:`unreadable_blobs` tells which rows hold a blob that is there but unreadable,
and why).

Every connection is read-only (``mode=ro`` and ``PRAGMA query_only``), never trusts
the schema's functions, and is interrupted after a time budget, so that this
inspection cannot be the next denial of service.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import shapely

from gisportal.base.errors import InputError
from gisportal.pipeline.read.formats import Dataset, unreadable_error

__all__ = ["check_geopackage", "nul_texts", "unreadable_blobs"]

#: Seconds one inspection may run before SQLite is interrupted: schema queries take
#: milliseconds; the scans after reading are one pass over the layer's table.
INSPECT_SECONDS = 30.0
#: Most values with a NUL fetched whole per column (the note shows a few; a file where
#: every value has one gets the rest cut as GDAL read them, and says so).
MAX_NUL_VALUES = 100_000
#: GeoPackage geometry blob: "GP", version, flags (envelope size in bits 1-3).
_GPKG_MAGIC = b"GP"
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _connect(path: Path, seconds: float = INSPECT_SECONDS) -> Iterator[sqlite3.Connection]:
    """A read-only connection that gives up after ``seconds`` of SQLite work."""
    con = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    deadline = time.monotonic() + seconds
    con.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        con.execute("PRAGMA query_only = ON")
        con.execute("PRAGMA trusted_schema = OFF")
        yield con
    finally:
        con.close()


def _not_plain_error(ds: Dataset, table: str, what: str, code: str) -> InputError:
    return InputError(
        f"the GeoPackage layer {table!r} is {what}, not a plain table of features; "
        "gisportal does not read such layers, as reading them can run without end",
        where=ds.label,
        fix="Export the layer as an ordinary table (QGIS: Export > Save Features As... "
            "GeoPackage; ogr2ogr -f GPKG new.gpkg old.gpkg LAYER) and upload the new file",
        code=code)


def check_geopackage(ds: Dataset) -> None:
    """Refuse a GeoPackage whose layers are not all plain tables, before GDAL opens it.

    Every table registered in ``gpkg_contents`` or ``gpkg_geometry_columns`` must be an
    ordinary SQLite table: a view (``READ-GPKG-VIEW``), a virtual table or a table with
    a column computed on reading (``READ-GPKG-NOT-TABLE``) is refused, whatever its
    ``data_type``, since GDAL would compute it to list, count or read the layer. Only
    the schema is read: nothing here runs the file's own queries.
    """
    try:
        with _connect(ds.path) as con:
            registered = {str(r[0]) for r in con.execute(
                "SELECT table_name FROM gpkg_contents")}
            # No geometry table: GDAL lists no layer with geometry either.
            with suppress(sqlite3.OperationalError):
                registered |= {str(r[0]) for r in con.execute(
                    "SELECT table_name FROM gpkg_geometry_columns")}
            schema = {str(name).casefold(): (str(kind), str(sql or ""))
                      for name, kind, sql in con.execute(
                          "SELECT name, type, sql FROM sqlite_master "
                          "WHERE type IN ('table', 'view')")}
            for table in sorted(registered):
                kind, sql = schema.get(table.casefold(), ("", ""))
                if kind == "view":
                    raise _not_plain_error(ds, table, "a view (a stored query)",
                                           "READ-GPKG-VIEW")
                if kind != "table":
                    continue  # registered but absent: GDAL reports it
                if sql.lstrip().upper().startswith("CREATE VIRTUAL TABLE"):
                    raise _not_plain_error(ds, table, "a virtual table",
                                           "READ-GPKG-NOT-TABLE")
                computed = [str(r[1]) for r in con.execute(
                    f"PRAGMA table_xinfo({_quote(table)})") if r[6] == 2]
                if computed:
                    raise _not_plain_error(
                        ds, table, f"a table with columns computed on reading "
                                   f"({', '.join(computed[:5])})", "READ-GPKG-NOT-TABLE")
    except InputError:
        raise
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise InputError("the GeoPackage's structure takes too long to read",
                             where=ds.label, fix="Export the layer again to a new "
                             "GeoPackage and upload that", code="READ-GPKG-NOT-TABLE") from exc
        if "no such table" in str(exc):
            return  # not a complete GeoPackage: GDAL says what is missing
        raise unreadable_error(ds, exc) from exc
    except sqlite3.DatabaseError as exc:
        raise unreadable_error(ds, exc) from exc


def _positions(con: sqlite3.Connection, table: str, rowids: list[int]) -> np.ndarray:
    """Source rows (GDAL reads a table in rowid order) of the given rowids."""
    ordered = np.fromiter((r[0] for r in con.execute(
        f"SELECT rowid FROM {_quote(table)} ORDER BY rowid")), dtype=np.int64)
    return np.searchsorted(ordered, np.asarray(rowids, dtype=np.int64))


def nul_texts(path: Path, table: str, columns: list[str]) -> dict[str, dict[int, str]]:
    """Text values holding a NUL character, whole, by column and source row.

    GDAL reads SQLite text as a C string, which ends at the first NUL: "Nguyễn\\x00Văn"
    arrives as "Nguyễn" with no warning. One pass over the table finds the values that
    hold a NUL (text or blob in a text column); they are returned with the NUL removed,
    the way the rest of the text is meant to be read. Empty when there are none, or when
    the table cannot be scanned in the time budget (then GDAL's reading stands).
    """
    if not columns:
        return {}
    found = " OR ".join(f"instr(CAST({_quote(c)} AS BLOB), X'00') > 0" for c in columns)
    out: dict[str, dict[int, str]] = {}
    try:
        with _connect(path) as con:
            rows = con.execute(
                f"SELECT rowid, {', '.join(_quote(c) for c in columns)} "
                f"FROM {_quote(table)} WHERE {found} LIMIT {MAX_NUL_VALUES}").fetchall()
            if not rows:
                return {}
            positions = _positions(con, table, [r[0] for r in rows])
    except sqlite3.Error:
        return {}
    for pos, row in zip(positions.tolist(), rows, strict=True):
        for name, value in zip(columns, row[1:], strict=True):
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            if isinstance(value, str) and "\x00" in value:
                out.setdefault(name, {})[int(pos)] = value.replace("\x00", "")
    return out


def _blob_reason(blob: bytes) -> tuple[str, str]:
    """Why a geometry blob cannot be read, in Vietnamese and English."""
    if len(blob) < 8 or blob[:2] != _GPKG_MAGIC:
        return ("dữ liệu hình học lưu trong tệp không phải hình học GeoPackage (các byte đã "
                "hỏng)", "the stored geometry is not a GeoPackage geometry (its bytes are "
                "damaged)")
    envelope = _ENVELOPE_BYTES.get((blob[3] >> 1) & 0x07)
    if envelope is None:
        return ("phần đầu của hình học GeoPackage bị hỏng",
                "the header of the GeoPackage geometry is damaged")
    try:
        shapely.from_wkb(blob[8 + envelope:])
    except shapely.errors.GEOSException as exc:
        detail = str(exc).split(":", 1)[-1].strip()
        return (f"không phân tích được WKB của hình học ({detail}): dữ liệu bị hỏng hoặc bị "
                "cắt cụt", f"the geometry's WKB cannot be parsed ({detail}): it is damaged "
                "or cut short")
    return "GDAL không đọc được hình học đã lưu", "GDAL could not read the stored geometry"


def unreadable_blobs(path: Path, table: str,
                     positions: np.ndarray) -> dict[int, tuple[str, str]]:
    """Which of the rows GDAL read without geometry hold a geometry blob, and why.

    GDAL returns a blob it cannot parse as a null geometry, so a parcel whose bytes were
    damaged would be reported as "empty". Here the table's geometry column is read for
    those rows only: a NULL is a genuinely missing geometry (the validator's GEOM-EMPTY);
    anything else was there and is unreadable. ``positions`` are source rows (rowid
    order, as GDAL reads); the reasons are (Vietnamese, English).
    """
    if not len(positions):
        return {}
    try:
        with _connect(path) as con:
            geom = con.execute("SELECT column_name FROM gpkg_geometry_columns "
                               "WHERE table_name = ? COLLATE NOCASE", (table,)).fetchone()
            if geom is None:
                return {}
            ordered = np.fromiter((r[0] for r in con.execute(
                f"SELECT rowid FROM {_quote(table)} ORDER BY rowid")), dtype=np.int64)
            wanted = positions[(positions >= 0) & (positions < len(ordered))]
            out: dict[int, tuple[str, str]] = {}
            query = (f"SELECT {_quote(str(geom[0]))} FROM {_quote(table)} "
                     "WHERE rowid = ?")
            for pos in wanted.tolist():
                row = con.execute(query, (int(ordered[pos]),)).fetchone()
                if row is not None and row[0] is not None:
                    blob = bytes(row[0]) if not isinstance(row[0], str) else row[0].encode()
                    out[int(pos)] = _blob_reason(blob)
            return out
    except sqlite3.Error:
        return {}
