"""What the checks may know beyond the layer itself: the district and its boundaries.

Topology rules need the district outline (coverage, features outside) and schema
rules the district's commune codes. They come from the district's published
boundary layer when there is one; with none, those checks say nothing rather than
guess. A published layer that lacks the district's own unit is no context at all —
and the report says so (``notes``), instead of 0 errors from checks that did not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gisportal.base import seeds, units
from gisportal.base.findings import Finding

__all__ = ["ValidationContext", "context_from_boundary", "communes_inside",
           "SKIPPED_WITHOUT_OUTLINE"]

#: The checks a district outline feeds, as BOUNDARY-CONTEXT-UNUSABLE names them.
SKIPPED_WITHOUT_OUTLINE = (
    "các đối tượng ngoài huyện (TOPO-OUTSIDE-DISTRICT), độ phủ kín huyện của quy hoạch "
    "(TOPO-GAP) và mã xã (ATTR-COMMUNE-UNKNOWN)",
    "features outside the district (TOPO-OUTSIDE-DISTRICT), the plan's coverage of the "
    "district (TOPO-GAP) and commune codes (ATTR-COMMUNE-UNKNOWN)")


@dataclass(frozen=True)
class ValidationContext:
    """District facts for the checks, all geometry in the store CRS (VN-2000 TM-3)."""

    district: str | None = None
    #: the district's outline, or None when no usable boundary layer is published
    district_boundary: BaseGeometry | None = None
    #: commune code → commune outline, from the same boundary layer
    communes: dict[str, BaseGeometry] = field(default_factory=dict)
    #: findings about the context itself, reported with every layer checked against it
    notes: tuple[Finding, ...] = ()
    #: a zoning plan's project area (zoning_lots, red_lines: the project catalogue's);
    #: None: the zoning checks say what they could not check
    project_area: BaseGeometry | None = None


def context_from_boundary(district: str | None, boundary_frame,
                          source: str = "") -> ValidationContext:
    """Build a context from a boundary layer frame (columns level, code; geometry).

    Levels are read through :mod:`gisportal.base.units` (stored layers hold canonical words;
    older ones may not). With a ``district``, its outline is the union of the units
    with its GSO code at level district — other districts' units are no part of it —
    and its communes are the commune-level units that lie inside the outline (by a
    point on each) or that the seeds list for it: the seeds' lists may lag behind the
    boundaries (older, merged or synthetic codes), the outline is the layer's own.
    A layer without the district's own unit gives no outline and no communes, plus a
    BOUNDARY-CONTEXT-UNUSABLE note naming ``source`` (the published version's id).
    Without a ``district`` every district-level unit makes the outline, as before
    districts were checked. An empty or missing frame gives an empty context.
    """
    if boundary_frame is None or len(boundary_frame) == 0:
        return ValidationContext(district=district)
    codes = [units.gso_code(c) for c in boundary_frame["code"]]
    levels, _ = units.canonical_levels(
        boundary_frame.get("level"), codes)
    geoms = np.asarray(boundary_frame.geometry.values, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    is_district = (levels == "district") & present
    is_commune = (levels == "commune") & present
    if district is not None:
        is_district &= np.array([c == district for c in codes], dtype=bool)
    if not is_district.any():
        if district is None:
            return ValidationContext(district=district)
        note = Finding("BOUNDARY-CONTEXT-UNUSABLE", params={
            "district": district, "source": source or "?",
            "skipped_vi": SKIPPED_WITHOUT_OUTLINE[0], "skipped_en": SKIPPED_WITHOUT_OUTLINE[1]})
        return ValidationContext(district=district, notes=(note,))
    outline = shapely.union_all(valid_geometries(geoms[is_district]))
    communes: dict[str, BaseGeometry] = {}
    if district is not None:
        own = seeds.communes_of(district)
        inside = communes_inside(outline, geoms, is_commune)
        keep = [i for i in np.flatnonzero(is_commune)
                if codes[i] is not None and (codes[i] in own or inside[i])]
    else:
        keep = [i for i in np.flatnonzero(is_commune) if codes[i] is not None]
    for i in keep:
        code, geom = codes[i], geoms[i]
        communes[code] = geom if code not in communes else shapely.union(communes[code], geom)
    return ValidationContext(district=district, district_boundary=outline, communes=communes)


def communes_inside(outline: BaseGeometry, geoms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which of the ``rows`` (a mask over ``geoms``) have a point on them inside ``outline``.

    The one test of "this commune lies in the district", shared with the boundary
    checks so the warnings at upload and the context used later agree.
    """
    inside = np.zeros(len(geoms), dtype=bool)
    idx = np.flatnonzero(rows)
    if len(idx) and outline is not None:
        prepared = shapely.from_wkb(shapely.to_wkb(outline))  # own copy: prepare is in place
        shapely.prepare(prepared)
        points = shapely.point_on_surface(valid_geometries(geoms[idx]))
        inside[idx] = shapely.intersects(prepared, points)
    return inside


def valid_geometries(geoms: np.ndarray) -> np.ndarray:
    """The geometries, repaired where GEOS calls them invalid (a union must not fail)."""
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.makevalid_geometries(geoms[bad])
    return geoms
