"""What the two backends share below the contract: a version kept as a table of typed columns.

`gisportal.store.gpkg` and `gisportal.store.postgis` both keep each version as a table
(``fid``, ``geom``, the attributes) and record each attribute's pandas dtype in the
catalogue, so that a read gives back the dtypes the upload had. The layer facts they
cache per version (`TableLayer`), the way a stored value becomes what `read` and
`records` give, the catalogue row as a `Version` and the value a ``find`` matches are
therefore the same code for both, and live here once.

Why not in ``base.py``: ``base.py`` is the contract every caller reads (`Store`,
`Version`, and the argument checks any backend applies, which is why those and the
preambles of the public methods are there). What is here is how two particular backends
store a layer; a backend keeping layers some other way would not use it, and callers
never do. Neither backend imports the other: both import from here and from ``base.py``.
"""

from __future__ import annotations

import functools
import json
import math
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from geopandas.array import from_shapely

from gisportal.base.errors import UsageError
from gisportal.store.base import Version, check_columns, column_list

__all__ = [
    "TableLayer",
    "column_array",
    "find_value",
    "page_ids",
    "plain_as",
    "version_from_row",
]

#: Dtypes whose values sqlite3 already returns as `records` gives them (None if missing).
_PLAIN_DTYPES = frozenset({"int64", "Int64", "float64", "Float64", "string", "str", "object"})


@dataclass(frozen=True)
class TableLayer:
    """The immutable facts about a visible version that reads need, cached by id."""

    district: str
    table: str
    #: (name, pandas dtype) of the attribute columns, in stored order
    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def check_columns(self, names: Sequence[str], where: str) -> list[str]:
        return check_columns(names, self.names, self.table, where)

    def wanted(self, columns: Sequence[str] | None) -> list[str]:
        """Requested columns (all by default), checked, in stored order (as read gives them)."""
        if columns is None:
            return self.names
        wanted = set(self.check_columns(column_list(columns), "columns"))
        return [name for name in self.names if name in wanted]

    @cached_property
    def plain(self) -> dict[str, Callable[[Any], Any]]:
        """Column name → conversion of a stored value to what `records` gives, for the
        columns whose sqlite3 value is not already that (GeoPackage booleans are 0/1)."""
        out: dict[str, Callable[[Any], Any]] = {}
        for name, dtype in self.columns:
            if dtype in ("bool", "boolean"):
                out[name] = bool
            elif dtype not in _PLAIN_DTYPES:  # dates and the like: as the frame has them
                out[name] = functools.partial(plain_as, dtype=self.dtypes[name])
        return out

    def records(self, names: Sequence[str], rows: Sequence[tuple[Any, ...]],
                geoms: np.ndarray, *, first: int) -> list[dict[str, Any]]:
        """Fetched rows as dicts of plain values plus ``geometry``; the attribute
        ``names`` start at position ``first`` of each row."""
        plain = self.plain
        columns_out = [(i, name, plain.get(name)) for i, name in enumerate(names, start=first)]
        out = []
        for row, geom in zip(rows, geoms, strict=True):
            rec = {name: row[i] if convert is None or row[i] is None else convert(row[i])
                   for i, name, convert in columns_out}
            rec["geometry"] = geom
            out.append(rec)
        return out

    def records_by_id(self, names: Sequence[str], rows: Sequence[tuple[Any, ...]],
                      geoms: np.ndarray) -> list[dict[str, Any]]:
        """Rows of fid, geometry, the attribute ``names`` as `Store.records_by_id` gives
        them: `records` plus ``"fid"``."""
        out = self.records(names, rows, geoms, first=2)
        for rec, row in zip(out, rows, strict=True):
            rec["fid"] = int(row[0])
        return out

    def frame(self, names: Sequence[str], rows: Sequence[tuple[Any, ...]],
              geoms: np.ndarray, crs: Any) -> gpd.GeoDataFrame:
        """Fetched rows (geometry first, then the attribute ``names``) as `read` returns
        them.

        Built column by column with the stored dtypes: pandas' own per-column
        conversions on a GeoDataFrame cost more than the query itself.
        """
        dtypes = self.dtypes
        data: dict[str, Any] = {  # a comprehension per column beats zip(*rows) by half
            name: column_array([row[i] for row in rows], dtypes[name])
            for i, name in enumerate(names, start=1)
        }
        data["geometry"] = from_shapely(geoms, crs=crs)
        return gpd.GeoDataFrame(pd.DataFrame(data, copy=False), geometry="geometry")

    @cached_property
    def dtypes(self) -> dict[str, Any]:
        """Column name → pandas dtype object (parsing the names each time is slow)."""
        out: dict[str, Any] = {}
        for name, dtype in self.columns:
            try:
                out[name] = pd.api.types.pandas_dtype(dtype)
            except TypeError:  # a dtype this pandas does not know: let column_array fall back
                out[name] = dtype
        return out


def column_array(values: list[Any], dtype: Any) -> Any:
    """Values read from a table as an array of the dtype recorded at write time.

    GeoPackage has no nullable integers or booleans, so the stored dtype is re-applied.
    ``pd.array`` converts in one step; values it refuses are inferred, then converted if
    possible, else kept as inferred.
    """
    try:
        return pd.array(values, dtype=dtype)
    except (TypeError, ValueError):
        column = pd.Series(values, dtype=object if not values else None)
        with suppress(TypeError, ValueError):
            column = column.astype(dtype)
        return column.array


def plain_as(value: Any, dtype: Any) -> Any:
    """One stored value converted as `column_array` converts its column, then made plain."""
    converted = column_array([value], dtype)[0]
    if pd.api.types.is_scalar(converted) and pd.isna(converted):
        return None
    return converted.item() if isinstance(converted, np.generic) else converted


def page_ids(ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, bool]:
    """The ids `Store.records_by_id` can find (unique, ascending, positive), and whether
    they are one unbroken run (a page: one range scan)."""
    wanted = np.unique(np.asarray(ids, dtype=np.int64))
    wanted = wanted[wanted >= 1]
    return wanted, bool(len(wanted)) and bool(wanted[-1] - wanted[0] + 1 == len(wanted))


def find_value(column: str, value: object) -> object:
    """A `Store.find` value as plain Python: ``None`` for a missing value (NULL, NA, NaT,
    NaN), text in NFC; `UsageError` for a value no column can be matched against."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if not isinstance(value, (bool, int, float, str)):
        raise UsageError(f"Cannot match column {column!r} against {type(value).__name__}",
                         where="where", fix="Use a str, int, float, bool or None value")
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    return value


def version_from_row(row: Sequence[Any]) -> Version:
    """A catalogue row (the backends' ``_VERSION_FIELDS``) as a `Version`; ``meta`` as
    JSON text (SQLite) or already parsed (PostgreSQL's ``json``)."""
    (vid, district, kind, status, source_name, source_sha256, feature_count, has_errors,
     created_at, created_by, published_at, published_by, meta, minx, miny, maxx, maxy,
     project) = row
    return Version(
        id=vid, district=district, kind=kind, status=status, source_name=source_name,
        source_sha256=source_sha256, feature_count=feature_count, has_errors=bool(has_errors),
        created_at=created_at, created_by=created_by, published_at=published_at,
        published_by=published_by, meta=json.loads(meta) if isinstance(meta, str) else meta,
        bounds=None if minx is None else (minx, miny, maxx, maxy), project=project,
    )
