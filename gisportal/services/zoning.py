"""What construction and urban planning projects say about a parcel: the look-up's
``zoning`` answer.

For a parcel in a town, "the zoning of my parcel" is what the approved construction or
urban plans say: which planned lot (ô quy hoạch) it falls in, its function, the building
density, floors and floor-area ratio allowed, and whether a planned road takes part of
it ("đất có dính lộ giới không?"). A project's published lots and red lines are overlays
of the look-up's one store call (`gisportal.services.lookup`), and the project's name,
level and decision come with the versions' meta (`gisportal.services.projects`), so the
answer costs no round trip of its own.

The road's part of a parcel is its intersection with the lots whose function is a road
(``GT``: the lots of a plan cover its area, and its red lines are those lots' edges);
the roads named are the red lines within `NEAR_M` of that part, with their right of
way. Where the plan draws a building line (chỉ giới xây dựng) across the parcel, the
setback is its distance from the red line, measured at the middle of the building line
inside the parcel. Areas are in m² of the district's survey zone, as every look-up area.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import shapely

from gisportal.base import seeds
from gisportal.services.decisions import decision_of
from gisportal.services.measure import measured
from gisportal.store.base import Published, Store, Version

__all__ = ["LINE_COLUMNS", "LOT_COLUMNS", "ROAD_FUNCTIONS", "overlays", "zoning",
           "zoning_at_point"]

#: The planned lots' columns a look-up reads.
LOT_COLUMNS = ("lot_code", "function", "density_pct", "floors_min", "floors_max", "far")
#: The red lines' columns a look-up reads.
LINE_COLUMNS = ("road_name", "width_m", "line_type")
#: Functions whose lots are a road's right of way (the land inside the red lines).
ROAD_FUNCTIONS = frozenset({"GT"})
#: A red line this close (m) to the road's part of a parcel names its road.
NEAR_M = 1.0
#: A lot sharing less than this of the parcel (m²) is a drawing's sliver, not an answer.
MIN_AREA_M2 = 0.5


def overlays(published: Published, district: str) -> list[tuple[Version, tuple[str, ...]]]:
    """The published project layers a look-up in `district` asks about, with their
    columns: each project's lots, then its red lines, projects in id order."""
    out = []
    for (_project, kind), version in sorted(published.projects.items()):
        if version.district != district:
            continue
        out.append((version, LOT_COLUMNS if kind == "zoning_lots" else LINE_COLUMNS))
    return out


def _project_info(lots: Version | None, lines: Version | None) -> dict[str, Any]:
    """What an answer says of a project: from its layers' meta (facts and decision)."""
    version = lots or lines
    assert version is not None
    facts = version.meta.get("project") or {}
    decision = decision_of(lots) if lots is not None else None
    return {
        "id": version.project, "name": facts.get("name"), "level": facts.get("level"),
        "scale": facts.get("scale"), "status": facts.get("status"),
        "decision": None if decision is None else {
            "number": decision.number, "date": decision.date,
            "authority": decision.authority,
            "pdf": f"/projects/{version.project}/decisions/{decision.pdf_sha256}.pdf"
            if decision.pdf_sha256 else None},
        "url": f"/projects/{version.project}",
    }


def _num(value: Any, digits: int | None = 1) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(number):
        return None
    if digits is None:
        return int(round(number))
    return round(number, digits)


def _lot(record: Mapping[str, Any], area: float | None, total: float) -> dict[str, Any]:
    """A lot as an answer lists it: code, function with its names and colour, the part
    of the parcel in it (none at a point), its indicators."""
    code = record.get("function")
    functions = seeds.zoning_functions()
    known = functions.get(code) if isinstance(code, str) else None
    return {
        "code": record.get("lot_code"), "function": code,
        "function_name": known.name_vi if known else None,
        "function_name_en": known.name_en if known else None,
        "color": functions.color(code) if isinstance(code, str) else None,
        "area_m2": None if area is None else round(area, 1),
        "share": round(area / total, 4) if area is not None and total > 0 else None,
        "max_density_pct": _num(record.get("density_pct")),
        "floors_min": _num(record.get("floors_min"), None),
        "floors_max": _num(record.get("floors_max"), None),
        "far": _num(record.get("far"), 2),
    }


def _lots(records: Sequence[Mapping[str, Any]], geom, total: float, factor: float,
          ) -> tuple[list[dict[str, Any]], Any]:
    """The lots the parcel falls in, largest share first, and the road part (the union
    of its intersections with road lots; None when there is none)."""
    if not records:
        return [], None
    shapes = np.array([r["geometry"] for r in records], dtype=object)
    inter = shapely.intersection(shapes, geom)
    areas = shapely.area(inter) * factor
    lots, road = [], []
    for record, piece, area in zip(records, inter, areas, strict=True):
        if not area >= MIN_AREA_M2:  # a sliver, or no geometry (NaN)
            continue
        lots.append(_lot(record, float(area), total))
        if record.get("function") in ROAD_FUNCTIONS:
            road.append(piece)
    lots.sort(key=lambda d: -d["area_m2"])
    return lots, (shapely.union_all(road) if road else None)


def _roads(lines: Sequence[Mapping[str, Any]], close: np.ndarray) -> list[dict[str, Any]]:
    """The roads of the red lines `close` selects: name and right of way, each once."""
    roads, seen = [], set()
    for i in np.flatnonzero(close):
        key = (lines[i].get("road_name"), _num(lines[i].get("width_m")))
        if key not in seen:
            seen.add(key)
            roads.append({"name": key[0], "width_m": key[1]})
    return roads


def _lines(lines: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The lines' shapes and which of them are red lines (every line but a building
    line: a line of no known type bounds a road too)."""
    shapes = np.array([r["geometry"] for r in lines], dtype=object)
    red = np.array([r.get("line_type") != "building_line" for r in lines], dtype=bool)
    return shapes, red


def _red_line(lines: Sequence[Mapping[str, Any]], geom, road, total: float,
              factor: float) -> dict[str, Any] | None:
    """The part of the parcel inside a planned road, the roads, and the setback."""
    shapes, red = _lines(lines)
    area = float(shapely.area(road)) * factor if road is not None else 0.0
    taken = area >= MIN_AREA_M2
    roads: list[dict[str, Any]] = []
    if len(shapes):
        close = red & (shapely.distance(shapes, road if taken else geom) <= NEAR_M)
        if not taken:
            # No road lot takes part of the parcel: a red line crossing it still does.
            close &= shapely.intersects(shapes, shapely.buffer(geom, -NEAR_M))
        roads = _roads(lines, close)
    if not taken and not roads:
        return None
    answer: dict[str, Any] = {"area_m2": round(area, 1),
                              "share": round(area / total, 4) if total > 0 else None,
                              "roads": roads}
    setback = _setback(shapes[red], shapes[~red], geom) if len(shapes) else None
    if setback is not None:
        answer["building_line_m"] = setback
    return answer


def _setback(red: np.ndarray, building: np.ndarray, geom) -> float | None:
    """The distance (m) from the red line to the building line inside the parcel,
    measured at the middle of the building line's part in it; None without both."""
    if not len(red) or not len(building):
        return None
    inside = shapely.intersection(building, geom)
    inside = inside[~shapely.is_empty(inside)]
    if not len(inside):
        return None
    part = max(inside, key=lambda g: g.length)
    if part.length <= 0:
        return None
    middle = shapely.line_interpolate_point(shapely.line_merge(part)
                                            if part.geom_type == "MultiLineString" else part,
                                            0.5, normalized=True)
    nearest = shapely.distance(red, middle)
    return round(float(np.min(nearest)), 1)


def zoning(found: Sequence[tuple[Version, list[dict[str, Any]]]], geom,
           factor: float = 1.0) -> list[dict[str, Any]]:
    """The ``zoning`` answer for a parcel: each project whose lots or red lines touch
    it, with its lots (share of the parcel in each) and its red line.

    `found` pairs each project layer asked (`overlays`) with the records the store found
    over the parcel's box; `geom` is the parcel in the store CRS, `factor` the area
    factor of the district's survey zone.
    """
    if not found or geom is None or shapely.is_empty(geom):
        return []
    geom = measured(geom)
    total = float(shapely.area(geom)) * factor
    out = []
    for lots_v, lot_records, lines_v, line_records in _by_project(found):
        lots, road = _lots(lot_records, geom, total, factor)
        red_line = _red_line(line_records, geom, road, total, factor) if (
            line_records or road is not None) else None
        if not lots and red_line is None:
            continue
        out.append({"project": _project_info(lots_v, lines_v), "lots": lots,
                    "red_line": red_line})
    return out


def zoning_at_point(found: Sequence[tuple[Version, list[dict[str, Any]]]], x: float,
                    y: float, store: Store) -> list[dict[str, Any]]:
    """The ``zoning`` answer at a point with no parcel (a click on a road or a lot not
    yet parcelled): the lots under the point, without areas; a road lot there names its
    red lines' roads.

    The look-up's overlays at a point hold the lines *through* the point, which a click
    on a road never hits: the red lines along the road lot are asked for by the lot's
    box, one more store call, only on this rare path (a click with no parcel, on a road).
    """
    out = []
    for lots_v, lot_records, lines_v, _ in _by_project(found):
        here = [r for r in lot_records if r["geometry"] is not None
                and shapely.intersects_xy(r["geometry"], x, y)]
        if not here:
            continue
        red_line = None
        road = [r["geometry"] for r in here if r.get("function") in ROAD_FUNCTIONS]
        if road:
            lines: list[dict[str, Any]] = []
            if lines_v is not None:
                minx, miny, maxx, maxy = shapely.bounds(road[0])
                lines = store.records(lines_v.id, bbox=(minx - NEAR_M, miny - NEAR_M,
                                                        maxx + NEAR_M, maxy + NEAR_M),
                                      columns=LINE_COLUMNS)
            shapes, red = _lines(lines)
            close = red & (shapely.distance(shapes, road[0]) <= NEAR_M) if len(shapes) \
                else red
            red_line = {"area_m2": None, "share": None, "roads": _roads(lines, close)}
        out.append({"project": _project_info(lots_v, lines_v),
                    "lots": [_lot(r, None, 0.0) for r in here], "red_line": red_line})
    return out


def _by_project(found: Sequence[tuple[Version, list[dict[str, Any]]]]) -> Iterator[tuple[
        Version | None, list[dict[str, Any]], Version | None, list[dict[str, Any]]]]:
    """Per project, in the order asked: its lots version and records, its red lines
    version and records (None and [] for a layer it has not published)."""
    by_project: dict[str, dict[str, tuple[Version, list[dict[str, Any]]]]] = {}
    for version, records in found:
        by_project.setdefault(str(version.project), {})[version.kind] = (version, records)
    for layers in by_project.values():
        yield (*layers.get("zoning_lots", (None, [])), *layers.get("red_lines", (None, [])))
