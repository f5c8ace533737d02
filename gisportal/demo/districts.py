"""Synthetic districts: grown over the cell mesh from the real district anchor points.

No real boundary is used. Each district starts at its anchor (a point inside the real
district) and grows with a speed set by its real area and a budget of cells equal to
that area, through a noisy cost field that makes the borders wander. Cheaper valleys
along paths between neighbouring anchors make the districts meet, so that together
they form one province; the holes they enclose are filled and the surplus shed at the
province's edge. Islands grow alone round their anchors at sea.
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer

from .cells import CellMesh, neighbours
from .growth import enclosed, fill_enclosed, grow_regions
from .rand import SmoothNoise
from .seeds import DistrictSeed

__all__ = ["anchors_xy", "box_mask", "box_polygon", "grow_districts", "grow_island"]

#: width (in cell hops) and cost factor of the valleys joining neighbouring anchors
_VALLEY_REACH, _VALLEY_COST = 4, 0.35
#: growth rounds at most, and how far (a share of its area) every
#: district's area may be from the real one
_ROUNDS, _AREA_TOLERANCE = 8, 0.02
#: cost grows e-fold every this many metres outside the anchors' convex hull
_OUTWARD = 10_000.0
#: speed-up of a district short of its area, and cost factor of the cells a round
#: left over (the next round takes them first)
_SPEED_STEP, _LEFT_COST = 1.0, 0.3
#: passes of shedding surplus (an inland district's goes through its neighbours)
_TRIM_PASSES = 6
#: an island grows within this many equivalent radii (√(area/π)) of its anchor
_ISLAND_REACH = 2.5


def anchors_xy(districts: tuple[DistrictSeed, ...], crs: str) -> np.ndarray:
    """Anchor points of ``districts`` projected to ``crs`` (``(n, 2)``, metres)."""
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    lon = [d.anchor_lonlat[0] for d in districts]
    lat = [d.anchor_lonlat[1] for d in districts]
    x, y = to_crs.transform(lon, lat)
    return np.c_[x, y]


def nearest_cells(mesh: CellMesh, points: np.ndarray, among: np.ndarray | None = None
                  ) -> np.ndarray:
    """Index of the mesh cell nearest to each point (optionally only ``among`` cells)."""
    pool = np.arange(mesh.size) if among is None else np.asarray(among)
    xy = mesh.xy[pool]
    return np.array([pool[np.argmin(np.hypot(*(xy - p).T))] for p in points], dtype=np.int64)


def _neighbour_pairs(points: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of points joined by an edge of their Delaunay triangulation."""
    edges = shapely.delaunay_triangles(shapely.multipoints(points), only_edges=True)
    ends = shapely.get_coordinates(edges).reshape(-1, 2, 2)
    index = {tuple(p): k for k, p in enumerate(points.tolist())}
    return [(index[tuple(a)], index[tuple(b)]) for a, b in ends.tolist()]


def _paths(mesh: CellMesh, seeds: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Cells on greedy walks over the mesh between the seeds of each pair."""
    cells = set(int(c) for c in seeds)
    for a, b in pairs:
        target = mesh.xy[seeds[b]]
        cell, dst = int(seeds[a]), int(seeds[b])
        while cell != dst:
            nbrs = mesh.indices[mesh.indptr[cell]:mesh.indptr[cell + 1]]
            gap = np.hypot(*(mesh.xy[nbrs] - target).T)
            if gap.min() >= np.hypot(*(mesh.xy[cell] - target)):
                break
            cell = int(nbrs[np.argmin(gap)])
            cells.add(cell)
    return np.array(sorted(cells), dtype=np.int64)


def box_polygon(bbox_lonlat: tuple[float, float, float, float], crs: str) -> shapely.Polygon:
    """A lon/lat box projected to ``crs``, edges densified (a box in degrees is not a
    rectangle in a projected CRS)."""
    west, south, east, north = bbox_lonlat
    t = np.linspace(0.0, 1.0, 65)[:-1]
    lon = np.concatenate([west + (east - west) * t, np.full(64, east),
                          east - (east - west) * t, np.full(64, west)])
    lat = np.concatenate([np.full(64, south), south + (north - south) * t,
                          np.full(64, north), north - (north - south) * t])
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return shapely.Polygon(np.c_[x, y])


def box_mask(mesh: CellMesh, box: shapely.Polygon, inset: float) -> np.ndarray:
    """Cells lying ``inset`` metres or more inside ``box`` (see :func:`box_polygon`)."""
    inner = box.buffer(-inset)
    shapely.prepare(inner)
    return shapely.contains_xy(inner, mesh.xy[:, 0], mesh.xy[:, 1])


def grow_island(mesh: CellMesh, district: DistrictSeed, anchor: np.ndarray,
                rng: np.random.Generator, allowed: np.ndarray) -> np.ndarray:
    """Cells of an island district: grown from its anchor over ``allowed`` (sea) cells
    within a few radii of it, up to its area, through a noisy cost field (a ragged
    shore); cells it encloses are its own. Far from the mainland by construction."""
    budget = round(district.area_km2 * 1e6 / mesh.spacing**2)
    radius = np.sqrt(district.area_km2 * 1e6 / np.pi)
    near = allowed & (np.hypot(*(mesh.xy - anchor).T) < _ISLAND_REACH * radius)
    seed = nearest_cells(mesh, anchor[None, :], np.flatnonzero(near))
    noise = SmoothNoise(rng, (3_000.0, 1_200.0))
    cost = np.exp(0.5 * noise(mesh.xy[:, 0], mesh.xy[:, 1]))
    labels = grow_regions(mesh, seed, np.array([budget]), cost=cost, allowed=near)
    return np.flatnonzero(fill_enclosed(mesh, labels) == 0)


def grow_districts(
    mesh: CellMesh,
    districts: tuple[DistrictSeed, ...],
    anchors: np.ndarray,
    rng: np.random.Generator,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """District index of every mesh cell (``-1`` outside the province).

    Districts grow from their anchors, through a noisy cost field with valleys along
    the Delaunay edges between the anchors, each up to its real area; growing beyond
    the anchors' hull costs more. The seats are often near their district's edge, so
    districts grown round them enclose holes: the holes go to their neighbours (the
    bigger ones taking more), the cells are made cheap for the next round, and the
    surplus is shed again (`_trim`). Should the districts not meet, the valleys are
    deepened; should one be hemmed in short of its area, it is sped up; the growth is
    redone and the best round kept. Only ``allowed`` cells are taken.
    """
    cell_area = mesh.spacing**2
    budgets = np.array([round(d.area_km2 * 1e6 / cell_area) for d in districts])
    seeds = nearest_cells(mesh, anchors)
    noise = SmoothNoise(rng, (30_000.0, 12_000.0, 4_000.0, 1_500.0))
    cost = np.exp(0.55 * noise(mesh.xy[:, 0], mesh.xy[:, 1]))
    hull = shapely.convex_hull(shapely.multipoints(anchors))
    cost *= np.exp(shapely.distance(hull, shapely.points(mesh.xy)) / _OUTWARD)

    # cheap valleys along paths joining the anchors draw neighbouring districts
    # towards each other, so that they meet before their budgets run out
    valley = _dilate(mesh, _paths(mesh, seeds, _neighbour_pairs(mesh.xy[seeds])), _VALLEY_REACH)
    speed = np.sqrt(budgets.astype(float))
    depth = 1
    holes = np.zeros(mesh.size, dtype=bool)
    best, best_error = None, np.inf
    for _ in range(_ROUNDS):
        floor = cost.copy()
        floor[valley] *= _VALLEY_COST**depth
        floor[holes] *= _LEFT_COST
        labels = grow_regions(mesh, seeds, budgets, speed=speed, cost=floor, allowed=allowed)
        holes |= enclosed(mesh, labels)
        # big districts take the larger shares of a hole: the smaller share of their area
        labels = fill_enclosed(mesh, labels, speed=budgets.astype(float))
        if (labels[mesh.border] >= 0).any():
            raise RuntimeError("the province grew to the edge of the mesh: enlarge its margin")
        if not _connected(mesh, labels >= 0):
            depth += 1  # deeper valleys: the province must come out in one piece
            continue
        ratio = np.bincount(labels[labels >= 0], minlength=len(seeds)) / budgets
        error = float(np.abs(ratio - 1.0).max())
        if error < best_error:
            best, best_error = labels, error
        if best_error <= _AREA_TOLERANCE:
            break
        speed = speed * np.minimum(ratio, 1.0) ** -_SPEED_STEP
    if best is None:
        raise RuntimeError("the districts did not join up into one province")
    return _trim(mesh, best, budgets, seeds)


def _trim(mesh: CellMesh, labels: np.ndarray, budgets: np.ndarray, seeds: np.ndarray
          ) -> np.ndarray:
    """Shed the surplus of districts that filled a hole, layer by layer, their cells
    farthest from the anchor first: to the outside where the district reaches the
    province's edge, else to its neighbours, which shed it in turn on the next pass. A
    change that would cut a district (or the province) in pieces is not made."""
    out = labels.copy()
    for _ in range(_TRIM_PASSES):
        counts = np.bincount(out[out >= 0], minlength=len(budgets))
        over = np.flatnonzero(counts > budgets * (1.0 + _AREA_TOLERANCE / 2))
        for region in over[np.argsort(-(counts[over] / budgets[over]), kind="stable")]:
            trial = out.copy()
            surplus = int(counts[region] - budgets[region])
            anchor = mesh.xy[seeds[region]]
            while surplus > 0:
                mine = np.flatnonzero(trial == region)
                mine = mine[mine != seeds[region]]
                owner = np.repeat(np.arange(len(mine)), np.diff(mesh.indptr)[mine])
                nbr = trial[neighbours(mesh, mine)]
                outside = np.zeros(len(mine), dtype=bool)
                np.logical_or.at(outside, owner, nbr < 0)
                taker = np.full(len(mine), -1)
                np.maximum.at(taker, owner, np.where(nbr != region, nbr, -1))
                edge = outside if outside.any() else taker >= 0
                if not edge.any():
                    break
                cells = mine[edge]
                far = np.argsort(-np.hypot(*(mesh.xy[cells] - anchor).T), kind="stable")
                pick = far[:surplus]
                trial[cells[pick]] = -1 if outside.any() else taker[edge][pick]
                surplus -= len(pick)
            if _connected(mesh, trial == region) and _connected(mesh, trial >= 0):
                out = trial
    return out


def _dilate(mesh: CellMesh, cells: np.ndarray, steps: int) -> np.ndarray:
    """Mask of ``cells`` and every cell within ``steps`` neighbour hops of them."""
    mask = np.zeros(mesh.size, dtype=bool)
    mask[cells] = True
    frontier = np.asarray(cells)
    for _ in range(steps):
        nbrs = neighbours(mesh, frontier)
        frontier = np.unique(nbrs[~mask[nbrs]])
        mask[frontier] = True
    return mask


def _connected(mesh: CellMesh, mask: np.ndarray) -> bool:
    """Whether the cells of ``mask`` form one piece: a breadth-first flood from one cell,
    a whole frontier per numpy step (a Python loop over cells took 7 s of the layout)."""
    cells = np.flatnonzero(mask)
    if not len(cells):
        return True
    seen = np.zeros(mesh.size, dtype=bool)
    seen[cells[0]] = True
    frontier = cells[:1]
    reached = 1
    while len(frontier):
        nbrs = neighbours(mesh, frontier)
        nbrs = np.unique(nbrs[mask[nbrs] & ~seen[nbrs]])
        seen[nbrs] = True
        reached += len(nbrs)
        frontier = nbrs
    return reached == len(cells)
