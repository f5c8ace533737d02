"""The 2021–2030 land-use plan of a district: zones that tile the district exactly.

Zones are built from one planar arrangement: the lattice lines, the commune
boundaries and the outlines of the planned road and river corridors are noded
together and polygonized, so neighbouring faces share their edges exactly; faces are
labelled (corridor, or the planned use of their section) and dissolved per commune
and use into zones with GEOS coverage union, which keeps that exactness.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from .landscape import Landscape, Town
from .lattice import SECTION, Lattice
from .outline import DistrictLayout

__all__ = ["PLAN_COLUMNS", "generate_plan"]

PLAN_COLUMNS = ["zone_id", "land_use", "commune", "geometry"]
#: faces smaller than this (m²) take the use of their longest-bordering neighbour, so
#: that no zone is a sliver left where a corridor edge nearly meets another line
_SLIVER_M2 = 500.0
#: planned width of existing roads (they are to be widened) and of new roads
_ROAD_WIDTH, _NEW_ROAD_WIDTH = 30.0, 24.0


def _new_road_lines(lattice: Lattice, towns: list[Town]) -> list[tuple[str, int]]:
    """Two new roads: a row and a column line a little beyond the seat town's edge,
    bypassing it; lines that already carry a corridor are skipped."""
    ny, nx = lattice.shape
    flat = lattice.nodes.reshape(-1, 2)
    node = int(np.argmin(np.hypot(*(flat - np.asarray(towns[0].centre)).T)))
    j, i = divmod(node, nx + 1)
    step = int(np.ceil(towns[0].radius / SECTION)) + 1
    used = {(c.axis, c.index) for c in lattice.corridors}
    out = []
    for axis, index, limit in (("row", j + step, ny), ("col", i - step, nx)):
        if 0 < index < limit and (axis, index) not in used:
            out.append((axis, index))
    return out


def generate_plan(
    district: DistrictLayout,
    lattice: Lattice,
    land: Landscape,
    towns: list[Town],
) -> gpd.GeoDataFrame:
    """Plan zones (in ``district.crs``) covering ``district.boundary`` without gap or
    overlap."""
    boundary = district.boundary
    shapely.prepare(boundary)
    window = boundary.buffer(2 * SECTION)
    ny, nx = lattice.shape
    lines = [shapely.LineString(lattice.line("row", j)) for j in range(ny + 1)]
    lines += [shapely.LineString(lattice.line("col", i)) for i in range(nx + 1)]
    lines = [g for g in shapely.intersection(lines, window) if not g.is_empty]

    corridors: list[tuple[shapely.Geometry, str]] = []
    for c in lattice.corridors:  # existing roads and rivers, by crossing priority
        width = _ROAD_WIDTH if c.code == "DGT" else c.width + 20.0
        corridors.append((shapely.LineString(lattice.line(c.axis, c.index)).buffer(
            width / 2, cap_style="flat"), c.code))
    for axis, index in _new_road_lines(lattice, towns):
        corridors.append((shapely.LineString(lattice.line(axis, index)).buffer(
            _NEW_ROAD_WIDTH / 2, cap_style="flat"), "DGT"))
    # roads go over rivers: list roads first, rivers last
    corridors.sort(key=lambda item: item[1] == "SON")
    outlines = [shapely.intersection(shapely.boundary(g), window) for g, _ in corridors]

    edges = shapely.union_all(
        [*lines, *outlines, *(shapely.boundary(s) for s in district.commune_shapes)]
    )
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(edges)))
    spot = shapely.point_on_surface(faces)
    xy = shapely.get_coordinates(spot)
    inside = shapely.contains_xy(boundary, xy[:, 0], xy[:, 1])
    faces, spot, xy = faces[inside], spot[inside], xy[inside]

    code = np.empty(len(faces), dtype=object)
    # faces in a corridor: the first corridor (highest priority) holding them wins
    tree = shapely.STRtree([g for g, _ in corridors])
    hit_face, hit_corridor = tree.query(spot, predicate="within")
    order = np.lexsort((hit_corridor, hit_face))
    hit_face, hit_corridor = hit_face[order], hit_corridor[order]
    first = np.ones(len(hit_face), dtype=bool)
    first[1:] = hit_face[1:] != hit_face[:-1]
    code[hit_face[first]] = [corridors[k][1] for k in hit_corridor[first]]
    # other faces: the planned use of their section
    rest = np.flatnonzero(code == None)  # noqa: E711 (elementwise)
    quads = lattice.quads().ravel()
    where = np.full(len(quads), -1)
    where[land.flat] = np.arange(len(land.flat))
    q_face, q_quad = shapely.STRtree(quads).query(spot[rest], predicate="within")
    code[rest[q_face]] = land.planned[np.maximum(where[q_quad], 0)]
    missing = np.flatnonzero(code == None)  # noqa: E711
    if len(missing):  # a face in a section too skewed to use: take the nearest section
        near = shapely.STRtree(shapely.points(land.centre)).query_nearest(
            spot[missing], all_matches=False)
        code[missing[near[0]]] = land.planned[near[1]]

    commune = np.full(len(faces), -1)
    for k, shape in enumerate(district.commune_shapes):
        shapely.prepare(shape)
        commune[shapely.contains_xy(shape, xy[:, 0], xy[:, 1]) & (commune < 0)] = k

    code = _absorb_slivers(faces, code, commune)

    zones, zone_code, zone_commune = [], [], []
    key = np.array([f"{c:03d}|{u}" for c, u in zip(commune, code, strict=True)])
    for group in np.unique(key):
        members = faces[key == group]
        merged = shapely.coverage_union_all(members)
        parts = shapely.get_parts(merged)
        k, use = group.split("|")
        zones.extend(parts)
        zone_code.extend([use] * len(parts))
        zone_commune.extend([district.communes[int(k)].code] * len(parts))
    zones_arr = np.array(zones, dtype=object)
    centre = shapely.get_coordinates(shapely.centroid(zones_arr))
    order = np.lexsort((centre[:, 0], -centre[:, 1], np.array(zone_commune)))
    return gpd.GeoDataFrame(
        {
            "zone_id": [f"{district.code}-QH{i + 1:05d}" for i in range(len(order))],
            "land_use": np.array(zone_code, dtype=object)[order],
            "commune": np.array(zone_commune, dtype=object)[order],
        },
        geometry=gpd.GeoSeries(zones_arr[order], crs=district.crs),
        crs=district.crs,
    )


def _absorb_slivers(faces: np.ndarray, code: np.ndarray, commune: np.ndarray) -> np.ndarray:
    """Give each tiny face the use of the neighbour (same commune) it shares most edge
    with; the dissolve then merges it into that neighbour's zone."""
    area = shapely.area(faces)
    tiny = np.flatnonzero(area < _SLIVER_M2)
    if not len(tiny):
        return code
    out = code.copy()
    tree = shapely.STRtree(faces)
    pair_tiny, pair_other = tree.query(faces[tiny], predicate="intersects")
    small, other = tiny[pair_tiny], pair_other
    ok = (other != small) & (commune[other] == commune[small]) & (area[other] >= _SLIVER_M2)
    small, other = small[ok], other[ok]
    shared = shapely.length(shapely.intersection(shapely.boundary(faces[small]),
                                                 shapely.boundary(faces[other])))
    order = np.lexsort((-shared, small))
    small, other, shared = small[order], other[order], shared[order]
    first = np.ones(len(small), dtype=bool)
    first[1:] = small[1:] != small[:-1]
    best = first & (shared > 0)
    out[small[best]] = code[other[best]]
    return out
