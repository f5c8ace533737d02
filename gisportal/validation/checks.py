"""Checks over a normalised layer, each vectorised, each returning findings.

Every check works on whole columns (shapely 2 / pandas), so a 200 000-parcel layer
costs a few vector passes, never a Python loop over features — except to build the
findings themselves, which are few in a file worth publishing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import shapely

from gisportal import crs as vncrs
from gisportal import seeds
from gisportal.findings import Finding
from gisportal.normalise import NormalisedLayer, feature_keys, locate_rows
from gisportal.validation.context import ValidationContext

__all__ = ["CHECKS", "check_geometry", "check_codes", "check_keys", "check_area",
           "check_outside_province"]

_REASON_POINT = re.compile(r"\[\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s*\]")
_GEOM_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
               5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}


def _findings(norm: NormalisedLayer, rule: str, rows: np.ndarray, params: list[dict],
              locations: list[dict | None] | None = None) -> list[Finding]:
    if len(rows) == 0:
        return []
    keys = feature_keys(norm.frame, norm.model, rows)
    locs = locations if locations is not None else locate_rows(norm.frame.geometry.values[rows])
    src_rows = norm.frame["src_row"].to_numpy()[rows]
    return [Finding(rule, row=int(r), key=k, location=loc, params=p)
            for r, k, loc, p in zip(src_rows, keys, locs, params, strict=True)]


def check_geometry(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """GEOM-EMPTY, GEOM-TYPE and GEOM-INVALID (with the GEOS reason and its point)."""
    geoms = norm.frame.geometry.values
    out: list[Finding] = []
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    rows = np.flatnonzero(empty)
    out += _findings(norm, "GEOM-EMPTY", rows, [{}] * len(rows), [None] * len(rows))
    types = shapely.get_type_id(geoms)
    if norm.model.geometry == "polygon":
        wrong = ~empty & ~np.isin(types, (3, 6))
        rows = np.flatnonzero(wrong)
        out += _findings(norm, "GEOM-TYPE", rows, [
            {"geom_type": _GEOM_NAMES.get(int(t), str(t)), "kind": norm.model.kind}
            for t in types[rows]])
    candidates = np.flatnonzero(~empty)
    valid = shapely.is_valid(geoms[candidates])
    rows = candidates[~valid]
    if len(rows):
        reasons = shapely.is_valid_reason(geoms[rows])
        locs: list[dict | None] = []
        params = []
        fallback = locate_rows(geoms[rows])
        xs, ys, has = [], [], []
        for reason in reasons:
            m = _REASON_POINT.search(reason)
            has.append(m is not None)
            xs.append(float(m.group(1)) if m else np.nan)
            ys.append(float(m.group(2)) if m else np.nan)
            params.append({"reason": reason})
        lon, lat = vncrs.to_lonlat(np.array(xs), np.array(ys))
        for i, ok in enumerate(has):
            locs.append({"type": "Point", "coordinates": [round(float(lon[i]), 7),
                                                          round(float(lat[i]), 7)]}
                        if ok else fallback[i])
        out += _findings(norm, "GEOM-INVALID", rows, params, locs)
    return out


def check_codes(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """CODE-UNKNOWN / CODE-LEGACY for land-use codes, part by part, per distinct value."""
    cat = seeds.land_use_catalogue()
    out: list[Finding] = []
    code_fields = [f.name for f in norm.model.fields if f.type == "code"]
    for name in code_fields:
        col = norm.frame[name]
        values = col.dropna().unique()
        verdict: dict[str, list[tuple[str, dict]]] = {}
        for value in values:
            problems = []
            for part in cat.split(value):
                lu = cat.get(part)
                if lu is None:
                    problems.append(("CODE-UNKNOWN", {"code": part, "value": value}))
                elif lu.status == "legacy":
                    problems.append(("CODE-LEGACY", {"code": part, "value": value,
                                                     "replaced_by": lu.replaced_by or "?"}))
            if problems:
                verdict[value] = problems
        if not verdict:
            continue
        arr = col.to_numpy(dtype=object, na_value=None)
        for value, problems in verdict.items():
            rows = np.flatnonzero(arr == value)
            for rule, params in problems:
                out += _findings(norm, rule, rows, [dict(params, field=name)] * len(rows))
    return out


def check_keys(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """KEY-DUPLICATE: each feature that shares its key with another one."""
    key = [k for k in norm.model.key if k in norm.frame.columns]
    if not key:
        return []
    df = norm.frame[key]
    # Key fields absent from the file (e.g. no commune column) do not count; a row with
    # a null in a key field that the file has cannot be a duplicate (ATTR-NULL says it).
    present = [k for k in key if df[k].notna().any()]
    if not present:
        return []
    df = df[present]
    complete = df.notna().all(axis=1)
    dup = df.duplicated(keep=False) & complete
    rows = np.flatnonzero(dup.to_numpy())
    if len(rows) == 0:
        return []
    src_rows = norm.frame["src_row"].to_numpy()
    groups = df.iloc[rows].groupby(present, sort=False).indices
    params: dict[int, dict] = {}
    for gkey, pos in groups.items():
        members = rows[pos]
        gvals = gkey if isinstance(gkey, tuple) else (gkey,)
        label = ", ".join(f"{k}={v}" for k, v in zip(present, gvals, strict=True))
        for m in members:
            others = [int(src_rows[o]) for o in members if o != m]
            params[int(m)] = {"key": label, "rows": ", ".join(map(str, others[:20]))}
    return _findings(norm, "KEY-DUPLICATE", rows, [params[int(r)] for r in rows])


def check_area(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """AREA-MISMATCH: declared area vs area computed in VN-2000 TM-3."""
    if "area_m2" not in norm.frame.columns:
        return []
    declared = norm.frame["area_m2"].to_numpy(dtype=float, na_value=np.nan)
    computed = shapely.area(norm.frame.geometry.values)
    rel = float(norm.model.thresholds.get("area_tolerance_relative", 0.05))
    absolute = float(norm.model.thresholds.get("area_tolerance_m2", 1.0))
    diff = np.abs(declared - computed)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(declared) & (computed > 0) & (diff > np.maximum(rel * computed,
                                                                           absolute))
    rows = np.flatnonzero(bad)
    return _findings(norm, "AREA-MISMATCH", rows, [
        {"declared": round(float(declared[r]), 1), "computed": round(float(computed[r]), 1),
         "diff_pct": round(100 * float(diff[r]) / float(computed[r]), 1)} for r in rows])


def check_outside_province(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """CRS-OUTSIDE-PROVINCE: features whose point lies outside the province box."""
    geoms = norm.frame.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return []
    pts = shapely.point_on_surface(geoms[idx])
    lon, lat = vncrs.to_lonlat(shapely.get_x(pts), shapely.get_y(pts))
    b = seeds.province()["bbox_lonlat"]
    out = (lon < b[0]) | (lon > b[2]) | (lat < b[1]) | (lat > b[3])
    rows = idx[out]
    if len(rows) == 0:
        return []
    dlon = np.maximum(0, np.maximum(b[0] - lon[out], lon[out] - b[2])) * 109.0
    dlat = np.maximum(0, np.maximum(b[1] - lat[out], lat[out] - b[3])) * 110.6
    dist = np.hypot(dlon, dlat)
    return _findings(norm, "CRS-OUTSIDE-PROVINCE", rows,
                     [{"distance_km": round(float(d), 1)} for d in dist])


#: The checks run on every layer, in order. Topology checks join in the validation issue.
CHECKS: tuple[Callable[[NormalisedLayer, ValidationContext], list[Finding]], ...] = (
    check_geometry, check_codes, check_keys, check_area, check_outside_province)
