"""The parcel's corner points and edge lengths, as a land-use certificate lists them.

A certificate (giấy chứng nhận) numbers the corners of the parcel 1..n and gives each
one's VN-2000 coordinates in the district's own survey zone — X the northing, Y the
easting, in metres to the centimetre — and the length of each edge. The store keeps
every district on one grid (EPSG:5899); a district of former Đắk Nông or Bình Thuận
was surveyed on TM-3 108°30′ (EPSG:9218), so its corners are reprojected to that zone
and its edges measured there: those are the numbers on the resident's certificate.

Corners are the vertices of the exterior ring(s) in stored order, without the closing
repeat. A parcel of thousands of vertices (a densified arc, a bad export) cannot be
listed on one page: above `MAX_CORNERS` the table lists the vertices a
Douglas–Peucker simplification keeps (each under its own number in the full ring, so
point 1 234 is the 1 234th vertex) and says how many there are, how far the listed
outline strays from the real one, and that an edge is then the distance between two
listed points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.outputs.display import display_geometry

__all__ = ["MAX_CORNERS", "Corner", "CornerTable", "corner_table"]

#: Rows of the coordinate table that fit beside the map on the one A4 page.
MAX_CORNERS = 24


@dataclass(frozen=True)
class Corner:
    """One listed corner: its number in its ring, surveyor X (northing) and Y
    (easting) in the survey zone, and the length of the edge to the next listed corner."""

    number: int
    x_north: float
    y_east: float
    edge_m: float
    #: The polygon the corner belongs to (1-based), for a parcel in several parts.
    part: int = 1


@dataclass(frozen=True)
class CornerTable:
    """The corners listed on the sheet and what the reader must know about them."""

    corners: tuple[Corner, ...]
    #: Vertices of the exterior ring(s), closing repeats left out.
    total: int
    #: Whether `corners` is a thinned selection (then `tolerance_m` says by how much).
    thinned: bool
    tolerance_m: float
    #: The survey zone the coordinates are in.
    epsg: int
    meridian_deg: float
    parts: int
    #: Each listed corner on the store grid (easting, northing), for the map.
    grid: tuple[tuple[float, float], ...] = ()


def _rings(geom) -> list[np.ndarray]:
    """The exterior rings of a (multi)polygon on the store grid, open (n × 2)."""
    polygons = [g for g in shapely.get_parts(geom)
                if shapely.get_type_id(g) == 3 and not g.is_empty]
    return [np.asarray(p.exterior.coords)[:-1, :2] for p in polygons]


def _kept_indices(ring: np.ndarray, budget: int) -> tuple[np.ndarray, float]:
    """Indices into `ring` of at most `budget` vertices that keep its shape best, and
    the simplification tolerance (m) that chose them.

    Works on the display outline (`outputs.display`: a vertex subset of at most a few
    thousand) so a million-vertex ring costs a radial pass, not a Douglas–Peucker run
    per tried tolerance; the tolerance is the smallest found by bisection whose kept
    vertices fit. The kept coordinates are original vertices, found back in `ring` by
    exact match.
    """
    light = np.asarray(display_geometry(shapely.Polygon(ring)).exterior.coords)[:-1]
    # Start where the ring starts and simplify it as a line (whose ends Douglas–Peucker
    # always keeps; GEOS may drop a ring's start), so point 1 is always listed.
    start = np.flatnonzero((light[:, 0] == ring[0, 0]) & (light[:, 1] == ring[0, 1]))
    light = np.roll(light, -int(start[0]), axis=0) if len(start) else np.vstack([ring[:1],
                                                                                 light])
    closed = shapely.linestrings(np.vstack([light, light[:1]]))
    lo, hi = 0.0, float(np.ptp(light, axis=0).max()) or 1.0
    best = None
    for _ in range(40):
        mid = (lo + hi) / 2
        kept = shapely.get_coordinates(shapely.simplify(closed, mid, preserve_topology=False))
        if 3 <= len(kept) - 1 <= budget:
            best, hi = kept[:-1], mid
        else:
            lo = mid
        if hi - lo < 0.001:
            break
    if best is None:  # degenerate ring: an even stride, first vertex kept
        return np.linspace(0, len(ring) - 1, budget).astype(int), hi
    index = {}
    for i, (x, y) in enumerate(best):
        hits = np.flatnonzero((ring[:, 0] == x) & (ring[:, 1] == y))
        if len(hits):
            index[int(hits[0])] = i
    return np.array(sorted(index)), hi


def corner_table(geom, district: str, max_corners: int = MAX_CORNERS) -> CornerTable:
    """The corners of the parcel `geom` (store grid) in `district`'s survey zone."""
    zone = seeds.survey_zone(district)
    rings = _rings(geom)
    total = sum(len(r) for r in rings)
    thinned = total > max_corners
    tolerance = 0.0
    chosen: list[tuple[int, np.ndarray, np.ndarray]] = []  # part, numbers, points
    for part, ring in enumerate(rings, 1):
        if thinned:
            budget = max(3, round(max_corners * len(ring) / total))
            idx, tol = _kept_indices(ring, budget)
            tolerance = max(tolerance, tol)
        else:
            idx = np.arange(len(ring))
        chosen.append((part, idx + 1, ring[idx]))
    store_epsg = vncrs.store_crs().to_epsg()
    corners: list[Corner] = []
    grid: list[tuple[float, float]] = []
    for part, numbers, pts in chosen:
        grid += [(float(x), float(y)) for x, y in pts]
        if zone.epsg != store_epsg:
            east, north = vncrs.transformer(f"EPSG:{store_epsg}", f"EPSG:{zone.epsg}"
                                            ).transform(pts[:, 0], pts[:, 1])
            pts = np.column_stack([east, north])
        edges = np.hypot(*(np.roll(pts, -1, axis=0) - pts).T)
        corners += [Corner(int(n), float(y), float(x), float(e), part)
                    for n, (x, y), e in zip(numbers, pts, edges, strict=True)]
    return CornerTable(tuple(corners), total, thinned, tolerance, zone.epsg,
                       zone.meridian_deg, len(rings), tuple(grid))
