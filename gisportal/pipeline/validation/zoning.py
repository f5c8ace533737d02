"""Checks of construction and urban zoning plans: planned lots and red lines.

A zoning plan (đồ án quy hoạch xây dựng: general, zoning 1/2000–1/5000, detailed 1/500)
divides its project area into lots (``zoning_lots``), each with a land-use function of
QCVN 01:2021/BXD and the indicators of the drawing's table, and draws the roads' red
lines and building lines (``red_lines``). Beside the checks of every layer (geometry,
KEY-DUPLICATE on lot codes, AREA-MISMATCH, personal data), this module checks:

- the lots' functions against ``seeds/zoning_functions.csv`` (ZONING-FUNCTION-UNKNOWN,
  ZONING-FUNCTION-FROM-LAYER for a DXF whose layers name them);
- the indicators (ZONING-DENSITY-RANGE, ZONING-FLOORS-RANGE, ZONING-FAR-RANGE,
  ZONING-POPULATION-RANGE) and their consistency: the floor-area ratio cannot exceed
  density × floors (ZONING-FAR-INCONSISTENT);
- that lots do not overlap (TOPO-OVERLAP, GEOM-DUPLICATE, TOPO-OVERLAP-MINOR, found by
  the topology module's coverage validation and STRtree) and leave no gap: without a
  project area the holes of their union (TOPO-GAP up to ``gap_max_m2``, larger ones
  ZONING-HOLE-LEFT-OUT), with one every piece of it no lot covers (TOPO-GAP) and every
  lot reaching beyond it (ZONING-OUTSIDE-PROJECT);
- red lines: lines only (ZONING-LINE-EXPECTED), a known line type
  (ZONING-LINE-TYPE-UNKNOWN), a plausible width, given or as a cross-section
  (ZONING-WIDTH-MISSING, ZONING-WIDTH-RANGE, ZONING-WIDTH-SECTION-DIFFERS), and none
  beyond the project area (ZONING-OUTSIDE-PROJECT).

The project area comes with the project catalogue (``ValidationContext.project_area``);
``gisportal validate --kind zoning_lots|red_lines`` has none, and the report says which
checks that leaves out (ZONING-NO-PROJECT-AREA). Every threshold is read from
``layers/zoning_lots.json`` / ``layers/red_lines.json``. Every check is vectorised or
runs on an STRtree: a 1/2000 plan has a few thousand lots, and nothing compares pairs.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry

from gisportal.base.findings import Finding
from gisportal.pipeline.normalise import SOURCE_PREFIX, NormalisedLayer, locate_rows
from gisportal.pipeline.validation.checks import row_findings
from gisportal.pipeline.validation.context import ValidationContext

# The topology module's machinery for polygon coverages (the coverage validation that
# finds overlap candidates, the STRtree, gap widths, GeoJSON locations): the same rules
# (TOPO-OVERLAP, GEOM-DUPLICATE, TOPO-GAP) are found the same way for lots as for plan
# zones. Its ``check_topology`` runs for parcels and plan zones only (TOPOLOGY_KINDS).
from gisportal.pipeline.validation.topology import (
    TopologyLayer,
    findings_geojson,
    inscribed_widths,
    interior_holes,
    overlap_findings,
)
from gisportal.pipeline.values import parse_column, vocabulary_known

__all__ = ["ZONING_CHECKS", "ZONING_KINDS", "LOTS", "RED_LINES", "check_zoning", "check_lots",
           "check_red_lines", "check_functions", "check_indicators", "check_lot_topology",
           "check_line_geometry", "check_line_types", "check_widths",
           "check_lines_outside_project"]

#: The layer kinds of zoning plans.
LOTS = "zoning_lots"
RED_LINES = "red_lines"
ZONING_KINDS = (LOTS, RED_LINES)

#: Example rows a layer-wide finding names.
_EXAMPLES = 5
_LINEAR = (1, 2, 5)
_BUILDING_LINE = "building_line"

_SKIPPED = {
    LOTS: ("độ phủ kín ranh giới đồ án của các ô (chỉ kiểm tra khoảng hở giữa các ô) và các ô "
           "vượt ra ngoài ranh giới đồ án (ZONING-OUTSIDE-PROJECT)",
           "the lots' coverage of the project area (only gaps between lots were checked) and "
           "lots beyond the project boundary (ZONING-OUTSIDE-PROJECT)"),
    RED_LINES: ("các chỉ giới nằm ngoài ranh giới đồ án (ZONING-OUTSIDE-PROJECT)",
                "red lines outside the project boundary (ZONING-OUTSIDE-PROJECT)"),
}


# --------------------------------------------------------------------------- helpers

def _numbers(norm: NormalisedLayer, name: str) -> np.ndarray:
    """A numeric canonical column as floats, NaN where missing."""
    return norm.frame[name].to_numpy(dtype="float64", na_value=np.nan)


def _column(norm: NormalisedLayer, name: str) -> str:
    """The source column a field came from, for messages (the field's name if none)."""
    return norm.mapping.mapped.get(name, name)


def _fmt(value: float) -> str:
    """A value as the table writes it: 3 not 3.0, 2.5."""
    return f"{value:g}"


def _per_value(norm: NormalisedLayer, rule: str, field: str, unknown: np.ndarray,
               values: np.ndarray) -> list[Finding]:
    """One finding per distinct unknown value: its count, example rows, their points.

    A DXF whose lots all sit on layer "0" would otherwise give one finding per lot.
    """
    out: list[Finding] = []
    src = norm.frame["src_row"].to_numpy()
    for value in sorted({str(v) for v in values[unknown]}):
        rows = np.flatnonzero(unknown & (values == value))
        examples = rows[:_EXAMPLES]
        points = [p["coordinates"] for p in locate_rows(norm.frame.geometry.values[examples])
                  if p is not None]
        location = (None if not points else {"type": "Point", "coordinates": points[0]}
                    if len(points) == 1 else {"type": "MultiPoint", "coordinates": points})
        example_rows = [int(r) for r in src[examples]]
        out.append(Finding(rule, location=location, params={
            "value": value, "column": _column(norm, field), "count": int(len(rows)),
            "examples": ", ".join(map(str, example_rows))
            + (" …" if len(rows) > len(examples) else ""), "rows": example_rows}))
    return out


def _no_project(kind: str) -> Finding:
    vi, en = _SKIPPED[kind]
    return Finding("ZONING-NO-PROJECT-AREA", params={"kind": kind, "skipped_vi": vi,
                                                     "skipped_en": en})


def _prepared(geom: BaseGeometry) -> BaseGeometry:
    """A prepared copy (preparing is in place, and a context's geometry is shared)."""
    own = shapely.from_wkb(shapely.to_wkb(geom))
    if not shapely.is_valid(own):
        own = shapely.make_valid(own)
    shapely.prepare(own)
    return own


# --------------------------------------------------------------------------- lots

def check_functions(norm: NormalisedLayer) -> list[Finding]:
    """ZONING-FUNCTION-UNKNOWN per distinct value; ZONING-FUNCTION-FROM-LAYER when a
    DXF's layer names gave the functions."""
    vocabulary = norm.model.field("function").vocabulary
    if vocabulary is None or "function" not in norm.mapping.mapped:
        return []
    known = vocabulary_known(vocabulary)
    values = norm.frame["function"].to_numpy(dtype=object, na_value=None)
    present = np.array([v is not None for v in values], dtype=bool)
    unknown = present & ~np.isin(values.astype(str), list(known))
    out: list[Finding] = []
    if norm.mapping.mapped["function"] == "Layer":
        out.append(Finding("ZONING-FUNCTION-FROM-LAYER", params={
            "known": int((present & ~unknown).sum()), "unknown": int(unknown.sum())}))
    return out + _per_value(norm, "ZONING-FUNCTION-UNKNOWN", "function", unknown, values)


def check_indicators(norm: NormalisedLayer) -> list[Finding]:
    """The lots' indicators within their plausible ranges and consistent with each other.

    ZONING-FAR-INCONSISTENT is judged only where density, maximum floors and FAR are
    all given and none of them is already out of range (one wrong value, one finding).
    """
    m = norm.model
    density = _numbers(norm, "density_pct")
    fmin = _numbers(norm, "floors_min")
    fmax = _numbers(norm, "floors_max")
    far = _numbers(norm, "far")
    people = _numbers(norm, "population")
    out: list[Finding] = []
    with np.errstate(invalid="ignore"):
        lo, hi = m.threshold("density_min_pct"), m.threshold("density_max_pct")
        bad_density = np.isfinite(density) & ((density < lo) | (density > hi))
        rows = np.flatnonzero(bad_density)
        out += row_findings(norm, "ZONING-DENSITY-RANGE", rows, [
            {"value": _fmt(density[r]), "column": _column(norm, "density_pct"),
             "min": _fmt(lo), "max": _fmt(hi)} for r in rows])

        lo, hi = m.threshold("floors_min"), m.threshold("floors_max")
        below = (np.isfinite(fmin) & (fmin < lo)) | (np.isfinite(fmax) & (fmax < lo))
        above = (np.isfinite(fmin) & (fmin > hi)) | (np.isfinite(fmax) & (fmax > hi))
        crossed = np.isfinite(fmin) & np.isfinite(fmax) & (fmin > fmax)
        bad_floors = below | above | crossed
        rows = np.flatnonzero(bad_floors)
        params = []
        for r in rows:
            shown = "–".join(_fmt(v) for v in (fmin[r], fmax[r]) if np.isfinite(v))
            if crossed[r]:
                vi = (f"tầng tối thiểu {_fmt(fmin[r])} lớn hơn tầng tối đa {_fmt(fmax[r])}")
                en = f"minimum floors {_fmt(fmin[r])} above maximum floors {_fmt(fmax[r])}"
            else:
                vi = f"{shown} tầng, ngoài khoảng {_fmt(lo)}–{_fmt(hi)}"
                en = f"{shown} floors, outside {_fmt(lo)}–{_fmt(hi)}"
            params.append({"floors_min": None if not np.isfinite(fmin[r]) else _fmt(fmin[r]),
                           "floors_max": None if not np.isfinite(fmax[r]) else _fmt(fmax[r]),
                           "problem_vi": vi, "problem_en": en,
                           "column": _column(norm, "floors_max")})
        out += row_findings(norm, "ZONING-FLOORS-RANGE", rows, params)

        lo, hi = m.threshold("far_min"), m.threshold("far_max")
        bad_far = np.isfinite(far) & ((far < lo) | (far > hi))
        rows = np.flatnonzero(bad_far)
        out += row_findings(norm, "ZONING-FAR-RANGE", rows, [
            {"value": _fmt(far[r]), "column": _column(norm, "far"), "min": _fmt(lo),
             "max": _fmt(hi)} for r in rows])

        bound = density / 100 * fmax
        slack = m.threshold("far_tolerance") + m.threshold("far_tolerance_relative") * bound
        judged = (np.isfinite(far) & np.isfinite(bound) & ~bad_density & ~bad_floors
                  & ~bad_far)
        rows = np.flatnonzero(judged & (far > bound + slack))
        out += row_findings(norm, "ZONING-FAR-INCONSISTENT", rows, [
            {"far": _fmt(far[r]), "density": _fmt(density[r]), "floors": _fmt(fmax[r]),
             "bound": f"{bound[r]:.2f}".rstrip("0").rstrip(".")} for r in rows])

        lo = m.threshold("population_min")
        rows = np.flatnonzero(np.isfinite(people) & (people < lo))
        out += row_findings(norm, "ZONING-POPULATION-RANGE", rows, [
            {"value": _fmt(people[r]), "column": _column(norm, "population"), "min": _fmt(lo)}
            for r in rows])
    return out


def _union(layer: TopologyLayer) -> BaseGeometry:
    """The lots' union: GEOS's coverage union when no edge is unmatched (exact, fast)."""
    if len(layer.flagged) == 0:
        try:
            return shapely.coverage_union_all(layer.geoms)
        except GEOSException:
            pass
    return shapely.union_all(layer.geoms)


def _gap_findings(layer: TopologyLayer, gaps: np.ndarray) -> list[Finding]:
    """TOPO-GAP (error) for each gap, largest first, naming the lots along it."""
    if len(gaps) == 0:
        return []
    gaps = gaps[np.lexsort((shapely.bounds(gaps)[:, 0], -shapely.area(gaps)))]
    widths = inscribed_widths(gaps, 0.005)
    rows = layer.bordering(gaps)
    locs = findings_geojson(list(gaps))
    return [Finding("TOPO-GAP", severity="error", location=loc, params={
        "area_m2": round(float(shapely.area(g)), 2), "width_m": round(float(w), 2),
        "rows": ", ".join(map(str, r[:20])) + (" …" if len(r) > 20 else ""),
        "bordering_rows": r})
        for g, w, r, loc in zip(gaps, widths, rows, locs, strict=True)]


def check_lot_topology(norm: NormalisedLayer,
                       project_area: BaseGeometry | None = None) -> list[Finding]:
    """Overlaps and duplicates between lots, gaps, lots outside the project area.

    Parameters
    ----------
    norm
        A normalised ``zoning_lots`` layer (store CRS).
    project_area
        The project's boundary (store CRS), when the lots are checked against a project.
        With it, every piece of it that no lot covers is a gap (TOPO-GAP) and every lot
        reaching beyond it is ZONING-OUTSIDE-PROJECT. Without it, gaps are the holes
        of the lots' union: up to ``gap_max_m2`` TOPO-GAP, larger ones one
        ZONING-HOLE-LEFT-OUT (land the plan leaves out).

    Returns
    -------
    list of Finding
        Overlaps and duplicates (lower source row), gaps (largest first), then lots
        outside the project area.
    """
    layer = TopologyLayer(norm, ValidationContext())
    if len(layer.geoms) == 0:
        return []
    m = norm.model
    out, _ = overlap_findings(layer)
    tol = m.threshold("gap_tolerance_m2")
    union = _union(layer)
    if project_area is not None and not shapely.is_empty(project_area):
        area = _prepared(project_area)
        pieces = shapely.get_parts(shapely.difference(area, union))
        pieces = pieces[np.isin(shapely.get_type_id(pieces), (3, 6))]
        out += _gap_findings(layer, pieces[shapely.area(pieces) > tol])
        out += _lots_outside(layer, area)
        return out
    holes = interior_holes(union)
    if len(holes) == 0:
        return out
    area = shapely.area(holes)
    limit = m.threshold("gap_max_m2")
    out += _gap_findings(layer, holes[(area > tol) & (area <= limit)])
    left = holes[area > limit]
    if len(left):
        sizes = shapely.area(left)
        out.append(Finding("ZONING-HOLE-LEFT-OUT", location=findings_geojson(
            [shapely.multipolygons(list(left))])[0], params={
            "count": int(len(left)), "min_m2": _fmt(limit),
            "total_m2": round(float(sizes.sum()), 1), "max_m2": round(float(sizes.max()), 1)}))
    return out


def _lots_outside(layer: TopologyLayer, area: BaseGeometry) -> list[Finding]:
    """ZONING-OUTSIDE-PROJECT for lots: the part beyond the project area, in m²."""
    g = layer.geoms
    rest = np.flatnonzero(~shapely.contains_properly(area, g))
    if len(rest) == 0:
        return []
    outside = shapely.difference(g[rest], area)
    area_out, total = shapely.area(outside), shapely.area(g[rest])
    m = layer.norm.model
    bad = ((area_out > m.threshold("outside_tolerance_m2"))
           & (area_out > m.threshold("outside_tolerance_relative") * total))
    return layer.findings("ZONING-OUTSIDE-PROJECT", rest[bad], [
        {"amount": round(float(o), 2), "unit": "m²", "pct": round(100 * float(o) / float(t), 1)}
        for o, t in zip(area_out[bad], total[bad], strict=True)], list(outside[bad]))


def check_lots(norm: NormalisedLayer, project_area: BaseGeometry | None = None
               ) -> list[Finding]:
    """Every rule of planned lots; ZONING-NO-PROJECT-AREA without a project area."""
    out = check_functions(norm) + check_indicators(norm)
    out += check_lot_topology(norm, project_area)
    if project_area is None:
        out.append(_no_project(LOTS))
    return out


# --------------------------------------------------------------------------- red lines

def check_line_geometry(norm: NormalisedLayer) -> list[Finding]:
    """ZONING-LINE-EXPECTED: polygons, points or collections in a line layer."""
    geoms = norm.frame.geometry.values
    types = shapely.get_type_id(geoms)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    rows = np.flatnonzero(~empty & ~np.isin(types, _LINEAR))
    names = {0: "Point", 3: "Polygon", 4: "MultiPoint", 6: "MultiPolygon",
             7: "GeometryCollection"}
    return row_findings(norm, "ZONING-LINE-EXPECTED", rows, [
        {"geom_type": names.get(int(types[r]), str(types[r])), "kind": norm.model.kind}
        for r in rows])


def check_line_types(norm: NormalisedLayer) -> list[Finding]:
    """ZONING-LINE-TYPE-UNKNOWN per distinct value not in the line-type vocabulary."""
    vocabulary = norm.model.field("line_type").vocabulary
    if vocabulary is None or "line_type" not in norm.mapping.mapped:
        return []
    values = norm.frame["line_type"].to_numpy(dtype=object, na_value=None)
    present = np.array([v is not None for v in values], dtype=bool)
    unknown = present & ~np.isin(values.astype(str), list(vocabulary_known(vocabulary)))
    return _per_value(norm, "ZONING-LINE-TYPE-UNKNOWN", "line_type", unknown, values)


def _road(norm: NormalisedLayer, rows: np.ndarray) -> list[tuple[str, str]]:
    """`` đường X`` / `` of road X`` for messages, empty when the line names no road."""
    names = norm.frame["road_name"].to_numpy(dtype=object, na_value=None)[rows]
    return [("", "") if not n else (f" (đường {n})", f" (road {n})") for n in names]


def check_widths(norm: NormalisedLayer) -> list[Finding]:
    """ZONING-WIDTH-MISSING, ZONING-WIDTH-RANGE and ZONING-WIDTH-SECTION-DIFFERS.

    Building lines need no width; lines of another or no stated type are taken as red
    lines. A width the file gives that cannot be read is ATTR-TYPE already, not
    "missing" as well.
    """
    m = norm.model
    frame = norm.frame
    width = _numbers(norm, "width_m")
    kind = frame["line_type"].to_numpy(dtype=object, na_value=None)
    red = np.array([k != _BUILDING_LINE for k in kind], dtype=bool)
    linear = np.isin(shapely.get_type_id(frame.geometry.values), _LINEAR)
    # A width the file wrote but that cannot be read is ATTR-TYPE; a cross-section that
    # gives no width (its name, "1-1") leaves the width missing.
    given = np.zeros(len(frame), dtype=bool)
    col = norm.mapping.mapped.get("width_m")
    if col is not None and SOURCE_PREFIX + col in frame.columns:
        text = frame[SOURCE_PREFIX + col].astype("string").str.strip()
        given = (text.notna() & (text != "")).to_numpy(dtype=bool)
    out: list[Finding] = []
    rows = np.flatnonzero(red & linear & ~np.isfinite(width) & ~given)
    out += row_findings(norm, "ZONING-WIDTH-MISSING", rows, [
        {"road": vi, "road_en": en} for vi, en in _road(norm, rows)])
    lo, hi = m.threshold("width_min_m"), m.threshold("width_max_m")
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(np.isfinite(width) & ((width < lo) | (width > hi)))
    out += row_findings(norm, "ZONING-WIDTH-RANGE", rows, [
        {"value": _fmt(width[r]), "min": _fmt(lo), "max": _fmt(hi), "road": vi, "road_en": en}
        for r, (vi, en) in zip(rows, _road(norm, rows), strict=True)])
    col = norm.mapping.mapped.get("width_m")
    if col is None or "cross_section" not in norm.mapping.mapped:
        return out
    own = parse_column(frame[SOURCE_PREFIX + col], m.field("width_m").parse["as"]).values
    section = frame["cross_section"]
    total = parse_column(section, m.field("cross_section").parse["as"]).values
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(np.isfinite(own) & np.isfinite(total)
                              & (np.abs(own - total) > m.threshold("width_section_tolerance_m")))
    texts = section.to_numpy(dtype=object, na_value=None)
    out += row_findings(norm, "ZONING-WIDTH-SECTION-DIFFERS", rows, [
        {"width": _fmt(own[r]), "section": texts[r], "total": _fmt(total[r]), "road": vi,
         "road_en": en} for r, (vi, en) in zip(rows, _road(norm, rows), strict=True)])
    return out


def check_lines_outside_project(norm: NormalisedLayer,
                                project_area: BaseGeometry) -> list[Finding]:
    """ZONING-OUTSIDE-PROJECT for lines: the length beyond the project area, over both
    ``outside_tolerance_m`` and ``outside_tolerance_relative`` of the line.

    Parameters
    ----------
    norm
        A normalised ``red_lines`` layer (store CRS).
    project_area
        The project's boundary (store CRS).
    """
    geoms = norm.frame.geometry.values
    usable = np.flatnonzero(np.isin(shapely.get_type_id(geoms), _LINEAR)
                            & ~shapely.is_empty(geoms))
    if len(usable) == 0 or project_area is None or shapely.is_empty(project_area):
        return []
    area = _prepared(project_area)
    rest = usable[~shapely.contains_properly(area, geoms[usable])]
    if len(rest) == 0:
        return []
    outside = shapely.difference(geoms[rest], area)
    length_out, total = shapely.length(outside), shapely.length(geoms[rest])
    m = norm.model
    bad = ((length_out > m.threshold("outside_tolerance_m"))
           & (length_out > m.threshold("outside_tolerance_relative") * total))
    return row_findings(norm, "ZONING-OUTSIDE-PROJECT", rest[bad], [
        {"amount": round(float(o), 2), "unit": "m", "pct": round(100 * float(o) / float(t), 1)}
        for o, t in zip(length_out[bad], total[bad], strict=True)],
        findings_geojson(list(outside[bad])))


def check_red_lines(norm: NormalisedLayer, project_area: BaseGeometry | None = None
                    ) -> list[Finding]:
    """Every rule of red lines; ZONING-NO-PROJECT-AREA without a project area."""
    out = check_line_geometry(norm) + check_line_types(norm) + check_widths(norm)
    if project_area is None:
        out.append(_no_project(RED_LINES))
    else:
        out += check_lines_outside_project(norm, project_area)
    return out


# --------------------------------------------------------------------------- engine

def check_zoning(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """The zoning kinds' own rules, against ``ctx.project_area`` (other kinds: none)."""
    if norm.model.kind == LOTS:
        return check_lots(norm, ctx.project_area)
    if norm.model.kind == RED_LINES:
        return check_red_lines(norm, ctx.project_area)
    return []


#: What the engine appends to its checks.
ZONING_CHECKS = (check_zoning,)
