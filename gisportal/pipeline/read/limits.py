"""How much of a file gisportal agrees to read: features, columns and the length of a value.

A small file can still ask for too much. Six features with 10 000 properties each took
minutes to read and validate (pandas builds a frame that wide in quadratic time, and
SQLite tables stop at 2 000 columns), and a layer of millions of features needs memory
in proportion. :func:`check_counts` asks GDAL for the layer's own feature and field
counts (``pyogrio.read_info``: a header for shapefiles, GeoPackages and FlatGeobuf; one
parse for the text formats, the price of refusing a 40 000-column GeoJSON in seconds
instead of minutes) and refuses a layer over ``max_features`` or ``max_columns`` before
its records are read, naming the count, the limit and the setting.

Long values are the other excess. GDAL stops reading a GeoJSON at a string of more than
10 million characters (or a number of more than 1 024) with "Too many characters in
number", which tells a planner nothing: :func:`value_too_long_error` finds the property
and feature and says so (``READ-VALUE-TOO-LONG``). Text GDAL did read is cut to
:data:`MAX_VALUE_CHARS` by :func:`cut_long_values`, one ``READ-VALUE-CUT`` note a
column: no land-use attribute is a megabyte long, and the store and reports would carry
it into every page that shows the feature.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
from geopandas import GeoDataFrame

from gisportal.base.errors import InputError
from gisportal.base.settings import load_settings
from gisportal.pipeline.read.layers import Candidate
from gisportal.pipeline.read.notes import Note

__all__ = ["MAX_VALUE_CHARS", "SQLITE_COLUMN_ROOM", "check_counts", "cut_long_values",
           "layer_limits", "value_too_long_error"]

#: Longest text value kept whole, in characters.
MAX_VALUE_CHARS = 1_000_000
#: Source columns the store can hold: SQLite's 2 000-column limit, less room for the
#: layer model's canonical fields and the store's own columns.
SQLITE_COLUMN_ROOM = 1_900
#: GDAL's GeoJSON reader: longest string, longest number (CPLJSonStreamingParser).
_GDAL_JSON_STRING = 10_000_000
_GDAL_JSON_NUMBER = 1_024
_KEY = rb'"(?P<k>[^"\\]{0,1000})"\s*:\s*'
_LONG_TEXT = re.compile(_KEY + rb'(?P<v>"[^"\\]{%d})' % _GDAL_JSON_STRING)
_LONG_NUMBER = re.compile(_KEY + rb'(?P<v>-?[0-9.eE+-]{%d})' % (_GDAL_JSON_NUMBER + 1))
#: json-c (GDAL's parser for small GeoJSON files) refuses a number too large for a double.
_UNRECOGNISED_NUMBER = re.compile(r"Unrecognized number: -?[0-9.eE+-]{64}")
_BIG_NUMBER = re.compile(_KEY + rb'(?P<v>-?[0-9.eE+-]{64})')
_DIGITS = re.compile(rb'[0-9.eE+-]*')
_PROPERTIES = re.compile(rb'"properties"\s*:')
#: Example rows named in a note.
_EXAMPLES = 5


def layer_limits(max_features: int | None, max_columns: int | None) -> tuple[int, int]:
    """The limits to apply: the ones given, else the settings (environment, defaults)."""
    if max_features is None or max_columns is None:
        settings = load_settings()
        max_features = int(settings["max_features"]) if max_features is None else max_features
        max_columns = int(settings["max_columns"]) if max_columns is None else max_columns
    return max_features, max_columns


def check_counts(c: Candidate, open_options: dict[str, str], where: str, *,
                 max_features: int, max_columns: int) -> dict | None:
    """Refuse a layer with too many features or columns, from GDAL's counts of it.

    Returns the layer information (``pyogrio.read_info``) for the reader to reuse, or
    None when GDAL cannot even describe the layer: then reading it fails with the
    reason, which is the better message.
    """
    kwargs = dict(open_options)
    if c.inner is not None:
        kwargs["layer"] = c.inner
    try:
        info = pyogrio.read_info(c.dataset.path, **kwargs)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, RuntimeError,
            OSError):
        return None
    columns = len(info.get("fields", ()))
    column_limit = min(max_columns, SQLITE_COLUMN_ROOM)
    if columns > column_limit:
        setting = column_limit == max_columns
        why = (f"the limit is {column_limit:,} (setting max_columns, GISPORTAL_MAX_COLUMNS)"
               if setting else
               f"the store holds at most {SQLITE_COLUMN_ROOM:,} source columns (SQLite "
               "tables stop at 2,000)")
        raise InputError(
            f"the layer has {columns:,} attribute columns; {why}", where=where,
            fix="Drop the columns the plan does not use before exporting (QGIS: Export > "
                "Save Features As..., untick the fields; ogr2ogr -select FIELD1,FIELD2)"
                + (", or ask the administrator to raise max_columns" if setting else ""),
            code="READ-TOO-MANY-COLUMNS")
    features = int(info.get("features", -1))
    if features > max_features:
        raise InputError(
            f"the layer has {features:,} features; the limit is {max_features:,} "
            "(setting max_features, GISPORTAL_MAX_FEATURES)", where=where,
            fix="Split the layer into smaller files (one district or commune each), or ask "
                "the administrator to raise max_features",
            code="READ-TOO-MANY-FEATURES")
    return info


def _long_value_at(path: Path, patterns: tuple[tuple[re.Pattern[bytes], str], ...]
                   ) -> tuple[str | None, int | None, int, str]:
    """(property, feature row, length, "text"|"number") of the first over-long value.

    Scans the file (mapped, not loaded) with each pattern in turn for a property whose
    value is longer than GDAL reads; the row is the number of ``"properties"`` members
    before it, less one. Best effort: escapes inside a long string, or a long value
    outside the properties, leave property and row None and the length 0.
    """
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        hit, what = None, patterns[0][1]
        for pattern, kind in patterns:
            hit, what = pattern.search(mm), kind
            if hit is not None:
                break
        if hit is None:
            return None, None, 0, patterns[0][1]
        start = hit.start("v") + (1 if what == "text" else 0)
        if what == "text":
            end = mm.find(b'"', hit.end())
            end = len(mm) if end < 0 else end
        else:
            end = _DIGITS.match(mm, hit.end()).end()  # type: ignore[union-attr]
        before = sum(1 for _ in _PROPERTIES.finditer(mm, 0, hit.start()))
        name = hit.group("k").decode("utf-8", errors="replace")
        return name, (before - 1 if before else None), end - start, what


def value_too_long_error(c: Candidate, exc: BaseException, where: str) -> InputError | None:
    """The true cause behind GDAL's GeoJSON errors about long values, or None.

    GDAL's streaming GeoJSON parser (large files) says "Too many characters in number"
    for a *string* of 10 million characters or more as well as for a number over 1 024
    characters; its json-c parser (small files) says "Unrecognized number: 1111…",
    quoting the whole number, for one too large to be a number. The planner needs to
    know which value it is and what to do about it.
    """
    if c.dataset.kind != "geojson":
        return None
    message = str(exc)
    if "Too many characters in number" in message:
        name, row, length, what = _long_value_at(
            c.dataset.path, ((_LONG_TEXT, "text"), (_LONG_NUMBER, "number")))
        limit = _GDAL_JSON_STRING if what == "text" else _GDAL_JSON_NUMBER + 1
        size = f"{length:,} characters" if length >= limit else \
            f"{limit:,} characters or more"
        reads = (f"GDAL reads text of up to {_GDAL_JSON_STRING - 1:,} characters"
                 if what == "text" else
                 f"GDAL reads numbers of up to {_GDAL_JSON_NUMBER:,} characters")
    elif _UNRECOGNISED_NUMBER.search(message):
        name, row, length, what = _long_value_at(c.dataset.path, ((_BIG_NUMBER, "number"),))
        size = f"{length:,} characters" if length else "many digits"
        reads = "too large to be read as a number"
    else:
        return None
    place = ", ".join(p for p in (f"property {name!r}" if name is not None else "",
                                  f"feature {row} (row {row})" if row is not None else "")
                      if p)
    kind = "text" if what == "text" else "a number"
    return InputError(
        f"a value of the GeoJSON is too long to read: {kind} of {size}; {reads}",
        where=where + (f", {place}" if place else ""),
        fix="Remove or shorten the value (attributes of a plan are short text and "
            "numbers: a document or image belongs in a separate file) and export again",
        code="READ-VALUE-TOO-LONG")


def cut_long_values(frame: GeoDataFrame, notes: list[Note], *,
                    limit: int = MAX_VALUE_CHARS) -> GeoDataFrame:
    """Cut text values longer than ``limit`` characters, one warning note per column.

    Only called for files larger than ``limit`` bytes: a smaller file holds no value
    that long, and the usual upload then costs nothing here.
    """
    geom = frame.geometry.name
    for name in frame.columns:
        if name == geom:
            continue
        series = frame[name]
        if not (series.dtype == object or isinstance(series.dtype, pd.StringDtype)):
            continue
        if isinstance(series.dtype, pd.StringDtype):
            lengths = series.str.len().to_numpy(dtype=np.float64, na_value=0.0)
        else:  # binary or mixed values: only text is measured
            lengths = np.fromiter((len(v) if v.__class__ is str else 0 for v in series.array),
                                  dtype=np.float64, count=len(series))
        long_pos = np.flatnonzero(lengths > limit)
        if not len(long_pos):
            continue
        rows = frame.index.to_numpy()[long_pos]
        longest = int(lengths[long_pos].max())
        values = series.to_numpy(dtype=object, copy=True)
        for p in long_pos.tolist():
            values[p] = values[p][:limit]
        frame[name] = pd.Series(values, index=frame.index, dtype=series.dtype, name=name)
        shown = ", ".join(str(int(r)) for r in rows[:_EXAMPLES])
        more = "…" if len(rows) > _EXAMPLES else ""
        notes.append(Note(
            "READ-VALUE-CUT", "warning",
            f"Cột {name!r}: {len(rows)} giá trị dài hơn {limit:,} ký tự (dài nhất {longest:,})"
            f" đã bị cắt còn {limit:,} ký tự (dòng {shown}{more}).",
            f"Column {name!r}: {len(rows)} values longer than {limit:,} characters (the "
            f"longest {longest:,}) were cut to {limit:,} characters (rows {shown}{more})."))
    return frame
