"""Step two of the data flow: a read layer → our CRS, our fields, our types.

Input is the reader's :class:`~gisportal.read.sources.SourceLayer` (source columns,
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

from gisportal import crs as vncrs
from gisportal import placement, seeds
from gisportal.errors import InputError
from gisportal.findings import Finding
from gisportal.models import FieldMapping, LayerModel, match_fields

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


def _choose_crs(src, override: str | None, anchor) -> vncrs.CRSChoice:
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
    return vncrs.infer_crs(tuple(shapely.total_bounds(present)), anchor)


def _coerce(values: pd.Series, ftype: str) -> tuple[pd.Series, np.ndarray]:
    """Convert a source column to the field type; returns (converted, bad_mask).

    bad_mask marks values that are present but cannot be converted. Numeric source
    columns are converted directly; text is stripped once and parsed vectorised.
    """
    numeric_src = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(
        values)
    if ftype in ("int", "float"):
        if numeric_src:
            num = values.astype("Float64")
            bad = np.zeros(len(values), dtype=bool)
        else:
            text = values.astype("string").str.strip()
            present = text.notna() & (text != "")
            num = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
            bad = (present & num.isna()).to_numpy(dtype=bool)
        if ftype == "int":
            frac = (num.notna() & (num != num.round())).to_numpy(dtype=bool)
            num = num.where(~frac)
            return num.round().astype("Int64"), bad | frac
        return num.astype("Float64"), bad
    if numeric_src:
        # Integer-valued numbers read from DBF numeric fields (672.0) are codes: "672".
        num = values.astype("Float64")
        integral = num.notna() & (num == num.round())
        text = values.astype("string")
        text = text.where(~integral, num.round().astype("Int64").astype("string"))
    else:
        # Work on the distinct values (a commune or land-use column of 200 000 rows has
        # a few dozen) and spread the result back with the codes.
        codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
        clean = pd.Series(uniques, dtype="string").str.strip()
        clean = clean.where(clean != "")
        if ftype == "code":
            clean = clean.str.upper().str.replace(" ", "", regex=False)
        taken = clean.to_numpy(dtype=object, na_value=None)[codes]
        taken[codes < 0] = None
        return pd.Series(taken, index=values.index, dtype="string"), np.zeros(
            len(values), dtype=bool)
    if ftype == "code":
        text = text.str.upper().str.replace(" ", "", regex=False)
    return text, np.zeros(len(values), dtype=bool)


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
    choice = _choose_crs(src, crs, anchor)

    geoms = gdf.geometry.values
    gtypes = shapely.get_type_id(geoms)
    if model.geometry == "polygon":
        polygonal = np.isin(gtypes, (3, 6))
        if not polygonal.any():
            kinds = sorted({shapely.GeometryType(t).name.title().replace("string", "String")
                            for t in set(gtypes.tolist()) if t >= 0})
            raise InputError(
                f"the layer holds {', '.join(kinds) or 'no'} geometries; a {model.kind} layer "
                "needs polygons",
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

    source_cols = [c for c in gdf.columns if c != gdf.geometry.name]
    mapping = match_fields(model, source_cols, field_overrides)
    out = {}
    bad_rows: dict[str, np.ndarray] = {}
    for f in model.fields:
        col = mapping.mapped.get(f.name)
        if col is None and f.default == "row":
            out[f.name] = pd.Series(np.arange(len(frame)).astype(str), index=frame.index,
                                    dtype="string")
            continue
        if col is None:
            out[f.name] = pd.Series(pd.NA, index=frame.index,
                                    dtype="Int64" if f.type == "int" else
                                    "Float64" if f.type == "float" else "string")
            continue
        converted, bad = _coerce(gdf[col], f.type)
        out[f.name] = converted
        bad_rows[f.name] = bad

    result = gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=store, index=frame.index)
    # The reader's index is the row number in the source file (with gaps where a
    # damaged record was dropped): keep it as src_row, then number rows 0..n-1.
    result.insert(0, "src_row", np.asarray(gdf.index, dtype="int64"))
    # Source attributes ride along as columns (pandas shares, not copies, the data).
    for col in source_cols:
        result[SOURCE_PREFIX + col] = gdf[col].to_numpy()
    result = result.reset_index(drop=True)
    norm = NormalisedLayer(result, model, choice, mapping, findings)

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


def _check_placement(frame: gpd.GeoDataFrame, where: str, choice: vncrs.CRSChoice,
                     raw: np.ndarray | None = None) -> None:
    """Refuse a layer whose extent lies wholly outside the province, saying where it
    lies and, only if one places it inside, which CRS to read it in: see
    :func:`gisportal.placement.check_layer` (``raw``: the geometries as read)."""
    placement.check_layer(frame.geometry.values, raw, choice, where)
