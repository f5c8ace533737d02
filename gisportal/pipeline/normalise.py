"""Step two of the data flow: a read layer → our CRS, our fields, our types.

Input is the reader's :class:`~gisportal.pipeline.read.sources.SourceLayer` (source columns,
decoded text, declared CRS or none). Output is a :class:`NormalisedLayer` whose frame
is in the store CRS (VN-2000 TM-3) with the layer model's canonical columns, plus
``src_row`` (0-based row in the source) and every source attribute as a column
``src:<name>`` (text already NFC from the reader), so nothing the planner sent is
lost. Per-value problems become findings; only problems with the layer as a whole
raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisportal.base import crs as vncrs
from gisportal.base import placement, seeds
from gisportal.base.errors import InputError
from gisportal.base.findings import Finding
from gisportal.base.models import Field, FieldMapping, LayerModel, match_fields
from gisportal.pipeline.values import parse_column, resolve_vocabulary

__all__ = ["NormalisedLayer", "normalise", "feature_keys", "locate_rows", "SOURCE_PREFIX",
           "source_attributes"]

_TYPE_WORDS = {"int": ("số nguyên", "a whole number"), "float": ("số", "a number"),
               "str": ("văn bản", "text"), "code": ("mã", "a code")}


@dataclass
class NormalisedLayer:
    """A layer in store CRS with canonical columns, and what was decided on the way."""

    frame: gpd.GeoDataFrame
    model: LayerModel
    crs_choice: vncrs.CRSChoice
    mapping: FieldMapping
    findings: list[Finding] = field(default_factory=list)

    @cached_property
    def valid(self) -> np.ndarray:
        """GEOS validity of each geometry (False for missing ones), computed once:
        several checks need it and it is one of the costlier passes."""
        return np.asarray(shapely.is_valid(self.frame.geometry.values), dtype=bool)

    def read_info(self) -> dict[str, Any]:
        return {"crs": self.crs_choice.to_dict(), "fields": self.mapping.to_dict()}


def _choose_crs(src, override: str | None, anchor,
                district: str | None = None) -> vncrs.CRSChoice:
    if override:
        c = vncrs.parse_crs(override)
        return vncrs.CRSChoice(c, "override", f"given with --crs: {vncrs.describe(c)}",
                               f"chỉ định bằng --crs: {vncrs.describe(c)}")
    if src.declared_crs is not None:
        c = src.declared_crs
        origin = ".prj file" if src.crs_origin == "prj" else "the file itself"
        return vncrs.CRSChoice(c, "declared", f"declared by {origin}: {vncrs.describe(c)}",
                               f"khai báo trong tệp: {vncrs.describe(c)}")
    geoms = src.frame.geometry.values
    present = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(present) == 0:
        raise InputError("no feature has a geometry", where=src.source_name,
                         fix="export the layer again with its geometry")
    return vncrs.infer_crs(tuple(shapely.total_bounds(present)), anchor, district)


#: Whole numbers up to 2**53 are exact in a float64; a "whole" float beyond that is not
#: a sheet number or a code any more, only the rounding of one.
_EXACT_INT = 2.0**53


def _is_number_column(values: pd.Series) -> bool:
    """True for real-number columns (int, uint, float, nullable or not).

    Booleans and complex numbers are numeric to pandas but are not numbers a field can
    take: they go through the text path (and fail there as ATTR-TYPE, not as a crash).
    """
    dtype = values.dtype
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_complex_dtype(dtype))


def _number_as_text(values: pd.Series) -> pd.Series:
    """A number column as text, whole numbers without ``.0``.

    Integer-valued numbers read from DBF numeric fields (672.0) are codes: "672".
    Integer columns keep every digit (no trip through float); non-finite or huge
    floats keep their own spelling ("inf", "1e+20") instead of overflowing int64.
    """
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("string")
    num = values.astype("Float64")
    arr = num.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < _EXACT_INT)
    text = values.astype("string")
    if integral.any():
        whole = pd.Series(np.where(integral, np.round(arr), 0).astype(np.int64),
                          index=values.index).astype("string")
        text = text.where(~integral, whole)
    return text


def _value_as_text(value: Any) -> str | None:
    """One value of a mixed (object) column as text; None for a missing value.

    GeoJSON and GeoPackage columns can mix types row by row (numbers, text, dates,
    lists, binary blobs); each becomes the text a planner would read.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        if np.isnan(f):
            return None
        if np.isfinite(f) and f.is_integer() and abs(f) < _EXACT_INT:
            return str(int(f))
        return repr(f)
    if isinstance(value, np.ndarray):
        return str(value.tolist())
    return str(value)


def _as_text(values: pd.Series) -> pd.Series:
    """Any source column as pandas text (missing values NA), never raising.

    Object columns are converted value by value on their *distinct* values (a commune
    or land-use column of 200 000 rows has a few dozen) and spread back by code.
    """
    if _is_number_column(values):
        return _number_as_text(values)
    if isinstance(values.dtype, pd.StringDtype):
        return values.astype("string")
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in (
            "string", "empty"):
        # Plain text (the usual case: one C pass decides it), or bool, datetime,
        # timedelta, categorical...: pandas spells them itself.
        try:
            return values.astype("string")
        except (TypeError, ValueError):
            pass
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists of a GeoJSON array property)
        taken = np.array([_value_as_text(v) for v in values], dtype=object)
        return pd.Series(taken, index=values.index, dtype="string")
    # One extra slot for code -1 (missing), so a column with no value at all (no
    # uniques) still indexes cleanly.
    texts = np.empty(len(uniques) + 1, dtype=object)
    texts[:-1] = [_value_as_text(v) for v in np.asarray(uniques, dtype=object)]
    texts[-1] = None
    return pd.Series(texts[codes], index=values.index, dtype="string")


def _coerce(values: pd.Series, ftype: str) -> tuple[pd.Series, np.ndarray]:
    """Convert a source column to the field type; returns (converted, bad_mask).

    bad_mask marks values that are present but cannot be converted (they become
    ATTR-TYPE findings). Whatever the column holds — nothing at all, mixed types,
    dates where a number belongs, infinities, 10 000-character text — this returns a
    column of the field's type and never raises: one odd column must not cost the
    planner the report on the whole file.
    """
    if isinstance(values, pd.DataFrame):  # two source columns of one name: take the first
        values = values.iloc[:, 0]
    n = len(values)
    if ftype in ("int", "float"):
        if ftype == "int" and _is_number_column(values) and pd.api.types.is_signed_integer_dtype(
                values.dtype):
            return values.astype("Int64"), np.zeros(n, dtype=bool)
        if _is_number_column(values):
            num = values.astype("Float64")
            present = num.notna().to_numpy(dtype=bool)
        else:
            text = _as_text(values).str.strip()
            present = (text.notna() & (text != "")).to_numpy(dtype=bool)
            num = pd.to_numeric(text.str.replace(",", ".", regex=False),
                                errors="coerce").astype("Float64")
        arr = num.to_numpy(dtype=float, na_value=np.nan)
        ok = np.isfinite(arr)  # "inf", "nan", "1e400" are not numbers a field can hold
        if ftype == "int":
            with np.errstate(invalid="ignore"):
                ok &= (arr == np.round(arr)) & (np.abs(arr) < _EXACT_INT)
            whole = np.where(ok, np.round(arr), 0).astype(np.int64)
            out = pd.Series(pd.arrays.IntegerArray(whole, ~ok), index=values.index)
        else:
            out = pd.Series(pd.arrays.FloatingArray(np.where(ok, arr, 0.0), ~ok),
                            index=values.index)
        return out, present & ~ok
    text = _as_text(values)
    # Clean the distinct values only and spread the result back with the codes.
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype="string")
    clean = distinct.str.strip()
    clean = clean.where(clean != "")
    if ftype == "code":
        clean = clean.str.upper().str.replace(" ", "", regex=False)
    if text.dtype == _STRING and clean.equals(distinct):
        # Nothing to clean (the usual case): the text as it is, which for text the
        # reader holds in Arrow shares its buffers instead of making the column again.
        return text.rename(None), np.zeros(n, dtype=bool)
    taken = np.empty(len(clean) + 1, dtype=object)
    taken[:-1] = clean.to_numpy(dtype=object, na_value=None)
    taken[-1] = None  # code -1: missing (the slot also makes an all-empty column work)
    return pd.Series(taken[codes], index=values.index, dtype="string"), np.zeros(n, dtype=bool)


#: The dtype of canonical text fields.
_STRING = pd.Series([], dtype="string").dtype
#: The dtype pandas gives a column of Python strings (Arrow-backed text in pandas 3).
_TEXT = pd.Series(np.array(["text"], dtype=object)).dtype


def _source_values(values: pd.Series) -> Any:
    """A source column as it is stored: the values of ``to_numpy``, typed by pandas.

    The frame is built from ``to_numpy`` arrays, whose strings pandas turns back into
    Arrow-backed text. Text the reader already holds that way is passed on as it is
    instead: the same values and dtype, without one Python string per row on the way
    (a million parcels × 4 text columns is 300 MB) and without a second copy of the
    text. A column with no text at all stays as ``to_numpy`` gives it (pandas keeps
    such a column as objects).
    """
    if (isinstance(values.dtype, pd.StringDtype) and values.dtype == _TEXT
            and values.notna().any()):
        return values.array
    return values.to_numpy()


def feature_keys(frame: pd.DataFrame, model: LayerModel, rows: np.ndarray) -> list[dict]:
    """Key fields of the given frame positions, as plain values for reports."""
    cols = [k for k in model.key if k in frame.columns]
    out = []
    sub = frame.iloc[rows][cols] if cols else None
    for i in range(len(rows)):
        if sub is None:
            out.append({})
            continue
        rec = {}
        for c in cols:
            v = sub.iat[i, cols.index(c)]
            rec[c] = None if pd.isna(v) else (int(v) if isinstance(v, np.integer) else v)
        out.append(rec)
    return out


def locate_rows(geoms: np.ndarray, crs_key: Any = None) -> list[dict | None]:
    """A point on each geometry (representative point), as GeoJSON in WGS 84."""
    pts = shapely.point_on_surface(geoms)
    ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    xs = np.full(len(pts), np.nan)
    ys = np.full(len(pts), np.nan)
    xs[ok] = shapely.get_x(pts[ok])
    ys[ok] = shapely.get_y(pts[ok])
    lon, lat = vncrs.to_lonlat(xs, ys, crs_key)
    return [{"type": "Point", "coordinates": [round(float(a), 7), round(float(b), 7)]}
            if o else None for a, b, o in zip(lon, lat, ok, strict=True)]


#: Prefix of the columns that keep the source attributes as they were read.
SOURCE_PREFIX = "src:"  # ":" never starts a canonical name, so no source name collides


def source_attributes(row: Mapping[str, Any], hidden: set[str] | frozenset = frozenset()
                      ) -> dict[str, str]:
    """The source attributes of a stored feature, as text, without ``hidden`` names.

    Numbers read from the file come back as the text of the number; missing values
    are left out. Used by look-ups and exports, so the prefix stays in this module.
    """
    out = {}
    for name, value in row.items():
        if not name.startswith(SOURCE_PREFIX):
            continue
        key = name[len(SOURCE_PREFIX):]
        if key in hidden or value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = str(value)
    return out


def _type_names(gtypes: np.ndarray) -> list[str]:
    """The geometry types present, as a refusal names them (``LineString``, ``Point``)."""
    return sorted({shapely.GeometryType(t).name.title().replace("string", "String")
                   for t in set(gtypes.tolist()) if t >= 0})


def normalise(src, model: LayerModel, *, crs: str | None = None,
              district: str | None = None,
              field_overrides: Mapping[str, str] | None = None) -> NormalisedLayer:
    """Project, map fields and coerce types; problems per value become findings.

    Raises InputError when the layer as a whole does not fit the model (no polygon at
    all for a polygon layer) and CRSError when the CRS cannot be decided or puts the
    whole layer outside the province.
    """
    gdf = src.frame
    anchor = None
    if district:
        try:
            anchor = seeds.district(district).anchor_lonlat
        except KeyError:
            anchor = None
    choice = _choose_crs(src, crs, anchor, district)

    geoms = gdf.geometry.values
    unclosed = None
    if model.options.get("closed_lines_as_polygons"):
        geoms, unclosed = closed_lines_as_polygons(np.asarray(geoms))
    gtypes = shapely.get_type_id(geoms)
    if model.geometry == "line" and not np.isin(gtypes, _LINEAR).any():
        kinds = _type_names(gtypes)
        raise InputError(
            f"the layer holds {', '.join(kinds) or 'no'} geometries; a layer of kind "
            f"{model.kind} needs lines",
            where=src.source_name,
            fix="export the red lines and building lines as lines (in CAD: polylines), "
                "not as areas, points or labels" if kinds else "export the layer with geometry",
            code="GEOM-TYPE")
    if model.geometry == "polygon":
        polygonal = np.isin(gtypes, (3, 6))
        if not polygonal.any():
            kinds = _type_names(gtypes)
            raise InputError(
                f"the layer holds {', '.join(kinds) or 'no'} geometries; a layer of kind "
                f"{model.kind} needs polygons",
                where=src.source_name,
                fix="export the parcel/zone polygons (in CAD: closed polylines) rather than "
                    "points, labels or lines" if kinds else "export the layer with geometry",
                code="GEOM-TYPE")

    store = vncrs.store_crs()
    # The reader's array carries the file's own CRS; the choice (e.g. --crs) wins.
    frame = gpd.GeoDataFrame(geometry=gpd.GeoSeries(np.asarray(geoms), index=gdf.index,
                                                    crs=choice.crs))
    if vncrs.same_grid(choice.crs, store):
        frame = frame.set_crs(store, allow_override=True)
    else:
        frame = frame.to_crs(store)
    findings: list[Finding] = []
    _check_placement(frame, src.source_name, choice, raw=geoms)

    geometry_name = gdf.geometry.name  # a property that is not free: read it once
    source_cols = [c for c in gdf.columns if c != geometry_name]
    mapping = match_fields(model, source_cols, field_overrides)
    out = {}
    bad_rows: dict[str, np.ndarray] = {}
    missing: dict[str, Any] = {}  # an all-missing column of each dtype
    fills: list[tuple[str, np.ndarray]] = []  # (field, values for where it has none)
    fractions: list[tuple[Field, str, int]] = []
    for f in model.fields:
        col = mapping.mapped.get(f.name)
        if col is None and f.default == "row":
            out[f.name] = pd.Series(np.arange(len(frame)).astype(str), index=frame.index,
                                    dtype="string")
            continue
        if col is None:
            dtype = "Int64" if f.type == "int" else "Float64" if f.type == "float" else "string"
            if dtype not in missing:
                missing[dtype] = pd.Series(pd.NA, index=frame.index, dtype=dtype).array
            # Each column gets its own array; copying an Arrow-backed one shares its
            # (immutable) buffers, so five empty text columns weigh one.
            out[f.name] = pd.Series(missing[dtype].copy(), index=frame.index)
            continue
        if f.parse is not None and "fills" not in f.parse:
            parsed = parse_column(_first(gdf[col]), f.parse["as"])
            converted, bad = _typed(parsed.values, parsed.bad, f.type, frame.index)
            if "low" in f.parse:
                fills.append((f.parse["low"], parsed.low))
            if parsed.fractions:
                fractions.append((f, col, parsed.fractions))
        else:
            converted, bad = _coerce(gdf[col], f.type)
            if f.parse is not None:  # the text stays; what it reads as fills another field
                fills.append((f.parse["fills"],
                              parse_column(_first(gdf[col]), f.parse["as"]).values))
        if f.vocabulary is not None and f.type in ("str", "code"):
            # A DXF's Layer column names layers such as "QH_DAT-O-MOI": tried by parts.
            converted = resolve_vocabulary(converted, f.vocabulary, by_parts=col == "Layer")
        out[f.name] = converted
        bad_rows[f.name] = bad
    for name, values in fills:
        target = model.field(name)
        given = out[name].isna().to_numpy(dtype=bool)
        take = given & np.isfinite(values)
        if take.any():
            typed, _ = _typed(np.where(take, values, np.nan), np.zeros(len(values), bool),
                              target.type, frame.index)
            out[name] = out[name].where(~take, typed)

    # The reader's index is the row number in the source file (with gaps where a
    # damaged record was dropped): keep it as src_row, then number rows 0..n-1.
    columns: dict[str, Any] = {"src_row": np.asarray(gdf.index, dtype="int64"), **out,
                               "geometry": frame.geometry.values}
    # Source attributes ride along as columns. The frame is built once from one dict:
    # inserting them one at a time is quadratic in their number (6 features × 10 000
    # properties took minutes), and joining a second frame copies every column again.
    # Of two source columns of one name, the first is kept, as _coerce does.
    for pos, col in enumerate(gdf.columns):
        if col != geometry_name and SOURCE_PREFIX + col not in columns:
            columns[SOURCE_PREFIX + col] = _source_values(gdf.iloc[:, pos])
    result = gpd.GeoDataFrame(columns, geometry="geometry", crs=store, index=frame.index)
    del columns
    result = result.reset_index(drop=True)
    norm = NormalisedLayer(result, model, choice, mapping, findings)

    for f, col, count in fractions:
        findings.append(Finding("ZONING-PERCENT-FRACTION", params={
            "field": f.name, "column": col, "count": count,
            "label_vi": f.label.get("vi", ""), "label_en": f.label.get("en", "")}))
    if unclosed is not None and unclosed.any():
        rows = np.flatnonzero(unclosed)
        g = result.geometry.values[rows]
        gaps = shapely.distance(shapely.get_point(g, 0), shapely.get_point(g, -1))
        keys = feature_keys(result, model, rows)
        locs = locate_rows(shapely.get_point(g, -1))
        for r, k, loc, gap in zip(result["src_row"].to_numpy()[rows], keys, locs, gaps,
                                  strict=True):
            findings.append(Finding("ZONING-LOT-NOT-CLOSED", row=int(r), key=k, location=loc,
                                    params={"gap_m": round(float(gap), 3)}))
    # Findings about values: missing required fields, nulls, unconvertible values.
    for f in model.fields:
        col = mapping.mapped.get(f.name)
        if col is None:
            if f.required:
                findings.append(Finding("ATTR-REQUIRED-MISSING", params={
                    "field": f.name, "label_vi": f.label.get("vi", ""),
                    "label_en": f.label.get("en", ""), "aliases": ", ".join(f.aliases)}))
            continue
        bad = bad_rows[f.name]
        nulls = (result[f.name].isna().to_numpy() & ~bad) if f.required else np.zeros_like(bad)
        for rule, mask in (("ATTR-TYPE", bad), ("ATTR-NULL", nulls)):
            rows = np.flatnonzero(mask)
            if len(rows) == 0:
                continue
            keys = feature_keys(result, model, rows)
            locs = locate_rows(result.geometry.values[rows])
            raw = gdf[col].to_numpy()[rows]
            src_rows = result["src_row"].to_numpy()[rows]
            tv, te = _TYPE_WORDS[f.type]
            for r, k, loc, v in zip(src_rows, keys, locs, raw, strict=True):
                findings.append(Finding(rule, row=int(r), key=k, location=loc, params={
                    "field": f.name, "column": col, "value": "" if pd.isna(v) else str(v),
                    "type_vi": tv, "type_en": te}))
    return norm


#: Shapely type ids of lines (LineString, LinearRing, MultiLineString).
_LINEAR = (1, 2, 5)


def closed_lines_as_polygons(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed lines as the polygons they enclose; also which lines do not close.

    Lots drawn in CAD are polylines: a DWG saved as DXF, or exported to a shapefile of
    lines, gives LineStrings whose last vertex is the first. A single closed line
    becomes the polygon of that ring exactly (vertex for vertex, so a ring that crosses
    itself is still GEOM-INVALID); a MultiLineString of closed rings becomes the area
    they build (an outer ring and a hole give a polygon with a hole). Lines whose ends
    do not meet are left as they are and marked: the caller reports them
    (ZONING-LOT-NOT-CLOSED) instead of guessing how to close them.
    """
    types = shapely.get_type_id(geoms)
    linear = np.isin(types, _LINEAR)
    if not linear.any():
        return geoms, np.zeros(len(geoms), dtype=bool)
    geoms = np.array(geoms, dtype=object)
    closed = np.zeros(len(geoms), dtype=bool)
    closed[linear] = shapely.is_closed(geoms[linear]) & ~shapely.is_empty(geoms[linear])
    single = closed & np.isin(types, (1, 2))
    single[single] = shapely.get_num_coordinates(geoms[single]) >= 4
    if single.any():
        coords, index = shapely.get_coordinates(geoms[single], return_index=True)
        geoms[single] = shapely.polygons(shapely.linearrings(coords, indices=index))
    multi = np.flatnonzero(closed & (types == 5))
    if len(multi):
        built = shapely.build_area(geoms[multi])
        ok = ~shapely.is_empty(built)
        geoms[multi[ok]] = built[ok]
        closed[multi[~ok]] = False
    unclosed = linear & ~closed & ~shapely.is_empty(geoms)
    unclosed &= np.isin(shapely.get_type_id(geoms), (1, 2))  # a gap has two ends
    return geoms, unclosed


def _first(values: pd.Series | pd.DataFrame) -> pd.Series:
    """A source column; of two columns of one name, the first (as `_coerce` takes it)."""
    return values.iloc[:, 0] if isinstance(values, pd.DataFrame) else values


def _typed(values: np.ndarray, bad: np.ndarray, ftype: str,
           index: pd.Index) -> tuple[pd.Series, np.ndarray]:
    """Parsed numbers (NaN: none) as a column of the field's type, and what is bad.

    An int field takes whole numbers only: 3.5 floors is a bad value, not 3.
    """
    ok = np.isfinite(values)
    bad = bad.copy()
    if ftype == "int":
        with np.errstate(invalid="ignore"):
            whole = ok & (values == np.round(values)) & (np.abs(values) < _EXACT_INT)
        bad |= ok & ~whole
        ints = np.where(whole, np.round(values), 0).astype(np.int64)
        return pd.Series(pd.arrays.IntegerArray(ints, ~whole), index=index), bad
    if ftype == "float":
        return pd.Series(pd.arrays.FloatingArray(np.where(ok, values, 0.0), ~ok),
                         index=index), bad
    text = pd.Series([None if not o else repr(float(v)) for v, o in zip(values, ok,
                                                                        strict=True)],
                     index=index, dtype="string")
    return text, bad


def _check_placement(frame: gpd.GeoDataFrame, where: str, choice: vncrs.CRSChoice,
                     raw: np.ndarray | None = None) -> None:
    """Refuse a layer whose extent lies wholly outside the province, saying where it
    lies and, only if one places it inside, which CRS to read it in: see
    :func:`gisportal.base.placement.check_layer` (``raw``: the geometries as read)."""
    placement.check_layer(frame.geometry.values, raw, choice, where)
