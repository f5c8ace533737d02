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

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.base.findings import Finding
from gisportal.pipeline.normalise import NormalisedLayer, feature_keys, locate_rows
from gisportal.pipeline.validation.boundary import check_boundary
from gisportal.pipeline.validation.context import ValidationContext
from gisportal.pipeline.validation.personal import check_personal
from gisportal.pipeline.validation.placement import check_placement

__all__ = ["CHECKS", "check_geometry", "check_shape", "check_codes", "check_communes",
           "check_keys", "check_area", "row_findings"]

_REASON_POINT = re.compile(r"\[\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s*\]")
_GEOM_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
               5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}


def row_findings(norm: NormalisedLayer, rule: str, rows: np.ndarray, params: list[dict],
                 locations: list[dict | None] | None = None) -> list[Finding]:
    """Findings of `rule` on frame positions ``rows`` (one per row, with its source row
    number and key), at a point on each feature unless `locations` are given."""
    if len(rows) == 0:
        return []
    keys = feature_keys(norm.frame, norm.model, rows)
    locs = locations if locations is not None else locate_rows(norm.frame.geometry.values[rows])
    src_rows = norm.frame["src_row"].to_numpy()[rows]
    return [Finding(rule, row=int(r), key=k, location=loc, params=p)
            for r, k, loc, p in zip(src_rows, keys, locs, params, strict=True)]


#: GEOS validity reasons → Vietnamese, for the GEOM-INVALID message.
_REASONS_VI = {
    "Self-intersection": "đường biên tự cắt",
    "Ring Self-intersection": "vòng biên tự chạm",
    "Hole lies outside shell": "lỗ nằm ngoài vùng bao",
    "Nested shells": "vùng bao lồng nhau",
    "Nested holes": "lỗ lồng nhau",
    "Interior is disconnected": "phần trong bị chia cắt",
    "Too few points in geometry component": "quá ít điểm",
    "Invalid Coordinate": "tọa độ không hợp lệ",
    "Ring is not closed": "vòng biên không khép kín",
    "Duplicate Rings": "vòng trùng nhau",
}


def _point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [round(float(lon), 7), round(float(lat), 7)]}


def check_geometry(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """GEOM-EMPTY, GEOM-TYPE and GEOM-INVALID (with the GEOS reason and its point)."""
    geoms = norm.frame.geometry.values
    out: list[Finding] = []
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    rows = np.flatnonzero(empty)
    out += row_findings(norm, "GEOM-EMPTY", rows, [{}] * len(rows), [None] * len(rows))
    types = shapely.get_type_id(geoms)
    if norm.model.geometry == "polygon":
        wrong = ~empty & ~np.isin(types, (3, 6))
        if norm.model.options.get("closed_lines_as_polygons"):
            # Lines left are lots whose outline does not close: the normaliser reported
            # each (ZONING-LOT-NOT-CLOSED, with the gap between its ends).
            wrong &= ~np.isin(types, (1, 2))
        rows = np.flatnonzero(wrong)
        out += row_findings(norm, "GEOM-TYPE", rows, [
            {"geom_type": _GEOM_NAMES.get(int(t), str(t)), "kind": norm.model.kind}
            for t in types[rows]])
    rows = np.flatnonzero(~empty & ~norm.valid)
    if len(rows) == 0:
        return out
    reasons = shapely.is_valid_reason(geoms[rows])
    fallback = locate_rows(geoms[rows])
    parsed = [_REASON_POINT.search(r) for r in reasons]
    xs = np.array([float(m.group(1)) if m else np.nan for m in parsed])
    ys = np.array([float(m.group(2)) if m else np.nan for m in parsed])
    lon, lat = vncrs.to_lonlat(xs, ys)
    params, locs = [], []
    for i, (reason, m) in enumerate(zip(reasons, parsed, strict=True)):
        text = reason[: m.start()] if m else reason
        params.append({"reason": text, "reason_vi": _REASONS_VI.get(text, text),
                       "point": f"{xs[i]:.3f} {ys[i]:.3f}" if m else "?",
                       "x": None if not m else round(float(xs[i]), 3),
                       "y": None if not m else round(float(ys[i]), 3)})
        locs.append(_point(lon[i], lat[i]) if m else fallback[i])
    return out + row_findings(norm, "GEOM-INVALID", rows, params, locs)


def check_shape(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """GEOM-SLIVER, GEOM-TINY, GEOM-REPEATED-POINTS and GEOM-COMPLEX (model thresholds).

    Thinness is measured as mean width 2·area/perimeter: a road 4 m wide and 2 km
    long keeps a mean width near 4 m, while a digitising sliver between neighbours
    has one of centimetres, whatever its length.

    The measures are taken SHAPE_CHUNK features at a time, keeping only the flagged
    ones: this check runs beside the topology check, and a dozen whole-layer arrays
    held at once would add to the validation's peak of memory (12 MB at 200 000
    parcels). The findings are the same, in the same order, as from one pass.
    """
    geoms = norm.frame.geometry.values
    model = norm.model
    if model.geometry != "polygon":  # lines (red lines) have no area, width or holes
        return []
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6)) & norm.valid
    every = np.flatnonzero(polygonal)
    del polygonal
    tiny_m2 = model.threshold("tiny_area_m2")
    sliver_m = model.threshold("sliver_width_m")
    max_vertices = int(model.threshold("max_vertices"))
    max_holes = int(model.threshold("max_holes"))
    parts: dict[str, list[tuple[np.ndarray, ...]]] = {
        "tiny": [], "sliver": [], "repeated": [], "complex": []}
    for start in range(0, len(every), SHAPE_CHUNK):
        idx = every[start:start + SHAPE_CHUNK]
        g = geoms[idx]
        area = shapely.area(g)
        perim = shapely.length(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            width = np.where(perim > 0, 2 * area / perim, 0.0)
        tiny = area < tiny_m2
        parts["tiny"].append((idx[tiny], area[tiny]))
        sliver = (width < sliver_m) & ~tiny
        parts["sliver"].append((idx[sliver], width[sliver], area[sliver]))
        vertices = shapely.get_num_coordinates(g)
        repeated = _repeated_points(g)
        has_rep = repeated > 0
        parts["repeated"].append((idx[has_rep], repeated[has_rep]))
        holes = _holes(g)
        complex_ = (vertices > max_vertices) | (holes > max_holes)
        parts["complex"].append((idx[complex_], vertices[complex_], holes[complex_]))

    def joined(name: str, columns: int) -> list[np.ndarray]:
        got = parts[name]
        if not got:
            return [np.empty(0, dtype=np.int64)] + [np.empty(0)] * (columns - 1)
        return [np.concatenate([p[i] for p in got]) for i in range(columns)]

    out: list[Finding] = []
    rows, areas = joined("tiny", 2)
    out += row_findings(norm, "GEOM-TINY", rows, [
        {"area_m2": round(float(a), 2), "min_m2": tiny_m2} for a in areas])
    rows, widths, areas = joined("sliver", 3)
    out += row_findings(norm, "GEOM-SLIVER", rows, [
        {"width_m": round(float(w), 3), "area_m2": round(float(a), 2)}
        for w, a in zip(widths, areas, strict=True)])
    rows, counts = joined("repeated", 2)
    out += row_findings(norm, "GEOM-REPEATED-POINTS", rows, [{"count": int(n)} for n in counts])
    rows, vertices, holes = joined("complex", 3)
    out += row_findings(norm, "GEOM-COMPLEX", rows, [
        {"vertices": int(v), "holes": int(h)}
        for v, h in zip(vertices, holes, strict=True)])
    return out


#: Features measured at once by check_shape.
SHAPE_CHUNK = 25_000


def _repeated_points(geoms: np.ndarray, chunk: int = 10_000) -> np.ndarray:
    """Repeated consecutive vertices per geometry, counted within each ring.

    Two equal consecutive coordinates of one ring count once. The first pass runs over
    each chunk's coordinate array with the geometry index only, which cannot see where
    one ring ends and the next begins: a hole starting where the shell closed, or a
    multipolygon part starting where the previous one ended (make_valid's output of a
    bow-tie does that), looks like a repeat there. The few geometries that pass flags
    and that have more than one ring are counted again ring by ring
    (:func:`_repeated_in_rings`), so a layer of 200 000 single-ring parcels costs one
    pass and no split of its geometries.
    """
    out = np.zeros(len(geoms), dtype=np.int64)
    for start in range(0, len(geoms), chunk):
        coords, index = shapely.get_coordinates(geoms[start:start + chunk], return_index=True)
        same = (coords[1:] == coords[:-1]).all(axis=1) & (index[1:] == index[:-1])
        out[start:start + chunk] = np.bincount(index[1:][same],
                                               minlength=len(geoms[start:start + chunk]))
    flagged = np.flatnonzero(out)
    if len(flagged):
        g = geoms[flagged]
        several = (shapely.get_type_id(g) != 3) | (shapely.get_num_interior_rings(g) > 0)
        again = flagged[several]
        if len(again):
            out[again] = _repeated_in_rings(geoms[again])
    return out


def _repeated_in_rings(geoms: np.ndarray) -> np.ndarray:
    """Repeated consecutive vertices per (multi)polygon, ring by ring (vectorised).

    Parts and rings are split out with their index arrays, so a pair of equal
    coordinates counts only when both belong to the same ring.
    """
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = (coords[1:] == coords[:-1]).all(axis=1) & (ring[1:] == ring[:-1])
    owner = part_of[ring_part[ring[1:][same]]]
    return np.bincount(owner, minlength=len(geoms)).astype(np.int64)


def _holes(geoms: np.ndarray) -> np.ndarray:
    """Number of interior rings of each (multi)polygon.

    Polygons are counted in place; only multipolygons are split into parts (splitting
    everything would copy every geometry of a 200 000-parcel layer).
    """
    out = np.zeros(len(geoms), dtype=np.int64)
    single = shapely.get_type_id(geoms) == 3
    out[single] = shapely.get_num_interior_rings(geoms[single])
    multi = np.flatnonzero(~single)
    if len(multi):
        parts, index = shapely.get_parts(geoms[multi], return_index=True)
        out[multi] = np.bincount(index, weights=shapely.get_num_interior_rings(parts),
                                 minlength=len(multi)).astype(np.int64)
    return out


#: Rows a layer-wide finding names as examples (CODE-LEGACY).
_EXAMPLES = 5


def check_codes(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """CODE-UNKNOWN / CODE-LEGACY for land-use codes, part by part, per distinct value.

    An unknown code is an error on each feature. A legacy code is one warning per code
    and field for the whole layer, with the number of features and a few example rows:
    a cadastre still coded under TT 27/2018 has thousands of such parcels, and one
    finding each (3 865 in one real file) buried the errors in the report.
    """
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
        legacy: dict[str, tuple[str, list[str], list[np.ndarray]]] = {}
        for value, problems in verdict.items():
            rows = np.flatnonzero(arr == value)
            for rule, params in problems:
                if rule == "CODE-LEGACY":
                    _, seen, parts = legacy.setdefault(params["code"],
                                                       (params["replaced_by"], [], []))
                    seen.append(value)
                    parts.append(rows)
                    continue
                out += row_findings(norm, rule, rows, [dict(params, field=name)] * len(rows))
        for code, (replaced_by, seen, parts) in sorted(legacy.items()):
            out.append(_legacy_finding(norm, name, code, replaced_by, seen,
                                       np.unique(np.concatenate(parts))))
    return out


def _legacy_finding(norm: NormalisedLayer, field: str, code: str, replaced_by: str,
                    values: list[str], rows: np.ndarray) -> Finding:
    """One CODE-LEGACY finding for every feature of the layer that uses ``code``.

    It has no row of its own (it is about the layer); its location is a point on each
    example feature, so the report's map still shows where the code is used.
    """
    examples = rows[:_EXAMPLES]
    src = norm.frame["src_row"].to_numpy()
    example_rows = [int(r) for r in src[examples]]
    points = [p["coordinates"] for p in locate_rows(norm.frame.geometry.values[examples])
              if p is not None]
    location = (None if not points else {"type": "Point", "coordinates": points[0]}
                if len(points) == 1 else {"type": "MultiPoint", "coordinates": points})
    return Finding("CODE-LEGACY", location=location, params={
        "code": code, "replaced_by": replaced_by, "field": field, "count": int(len(rows)),
        "values": sorted(values)[:_EXAMPLES],
        "examples": ", ".join(map(str, example_rows)) + (" …" if len(rows) > len(examples)
                                                          else ""),
        "rows": example_rows})


def check_communes(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """ATTR-COMMUNE-UNKNOWN: commune codes that are not communes of the district."""
    if not ctx.communes or "commune" not in norm.frame.columns:
        return []
    col = norm.frame["commune"].to_numpy(dtype=object, na_value=None)
    known = set(ctx.communes)
    unknown = {v for v in set(col) if v is not None and v not in known}
    out: list[Finding] = []
    for value in sorted(unknown):
        rows = np.flatnonzero(col == value)
        out += row_findings(norm, "ATTR-COMMUNE-UNKNOWN", rows,
                         [{"commune": value, "district": ctx.district}] * len(rows))
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
    if not present or any(k != "commune" for k in norm.model.key if k not in present):
        # Only the commune may be missing (a file of one commune); without its sheet or
        # parcel number a key says nothing (ATTR-REQUIRED reports the missing field).
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
        # Each finding names up to 20 other rows: taken from the group's first 21, so a
        # key shared by thousands of rows costs linear time, not quadratic.
        head = [(int(o), int(src_rows[o])) for o in members[:21]]
        for m in members:
            others = [src for o, src in head if o != m][:20]
            params[int(m)] = {"key": label, "rows": ", ".join(map(str, others))}
    return row_findings(norm, "KEY-DUPLICATE", rows, [params[int(r)] for r in rows])


def check_area(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """AREA-MISMATCH: declared area vs area computed in VN-2000 TM-3, in the zone the
    district was surveyed in (`vncrs.legal_areas`: a parcel of former Bình Thuận is
    measured in TM-3 108°30′ even though it is stored on the province's grid)."""
    if "area_m2" not in norm.frame.columns:
        return []
    declared = norm.frame["area_m2"].to_numpy(dtype=float, na_value=np.nan)
    computed = vncrs.legal_areas(norm.frame.geometry.values, vncrs.zone_crs(ctx.district))
    rel = norm.model.threshold("area_tolerance_relative")
    absolute = norm.model.threshold("area_tolerance_m2")
    diff = np.abs(declared - computed)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(declared) & (computed > 0) & (diff > np.maximum(rel * computed,
                                                                           absolute))
    rows = np.flatnonzero(bad)
    return row_findings(norm, "AREA-MISMATCH", rows, [
        {"declared": round(float(declared[r]), 1), "computed": round(float(computed[r]), 1),
         "diff_pct": round(100 * float(diff[r]) / float(computed[r]), 1)} for r in rows])


#: The checks run on every layer, in order. Topology checks join in the validation issue.
CHECKS: tuple[Callable[[NormalisedLayer, ValidationContext], list[Finding]], ...] = (
    check_boundary, check_geometry, check_shape, check_codes, check_communes, check_keys,
    check_area, check_placement, check_personal)
