"""Synthetic districts: grown over the cell mesh from the real district anchor points.

No real boundary is used. Each district starts at its anchor (a point inside the real
district) and grows with a speed set by its real area and a budget of cells equal to
that area, through a noisy cost field that makes the borders wander. Cheaper valleys
along paths between neighbouring anchors make the districts meet, so that together
they form one province.
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer

from .cells import CellMesh
from .growth import fill_enclosed, grow_regions
from .rand import SmoothNoise
from .seeds import DistrictSeed

__all__ = ["anchors_xy", "box_mask", "grow_districts"]

#: width (in cell hops) and cost factor of the valleys joining the anchors
_VALLEY_REACH, _VALLEY_COST = 2, 0.35
#: growth rounds at most, and the share of its area every district should reach
_ROUNDS, _AREA_TOLERANCE = 8, 0.97


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


def _spanning_paths(mesh: CellMesh, seeds: np.ndarray) -> np.ndarray:
    """Cells on paths joining the seeds along a minimum spanning tree of them.

    Each path walks the Delaunay graph greedily towards its target, which on a
    Delaunay triangulation always arrives; the cells form a connected tree.
    """
    xy = mesh.xy[seeds]
    n = len(seeds)
    joined = [0]
    cells = {int(seeds[0])}
    best = np.hypot(*(xy - xy[0]).T)
    parent = np.zeros(n, dtype=np.int64)
    best[0] = np.inf
    for _ in range(n - 1):
        nxt = int(np.argmin(best))
        src, dst = int(seeds[parent[nxt]]), int(seeds[nxt])
        target = mesh.xy[dst]
        cell = src
        while cell != dst:
            nbrs = mesh.indices[mesh.indptr[cell]:mesh.indptr[cell + 1]]
            gap = np.hypot(*(mesh.xy[nbrs] - target).T)
            if gap.min() >= np.hypot(*(mesh.xy[cell] - target)):
                break  # cannot happen on a Delaunay graph; guards against a loop
            cell = int(nbrs[np.argmin(gap)])
            cells.add(cell)
        joined.append(nxt)
        best[nxt] = np.inf
        closer = np.hypot(*(xy - xy[nxt]).T)
        update = (closer < best) & ~np.isin(np.arange(n), joined)
        best[update] = closer[update]
        parent[update] = nxt
    return np.array(sorted(cells), dtype=np.int64)


def box_mask(mesh: CellMesh, bbox_lonlat: tuple[float, float, float, float], crs: str,
             inset: float) -> np.ndarray:
    """Cells lying ``inset`` metres or more inside a lon/lat box (edges densified, as
    a box in degrees is not a rectangle in a projected CRS)."""
    west, south, east, north = bbox_lonlat
    t = np.linspace(0.0, 1.0, 65)[:-1]
    lon = np.concatenate([west + (east - west) * t, np.full(64, east),
                          east - (east - west) * t, np.full(64, west)])
    lat = np.concatenate([np.full(64, south), south + (north - south) * t,
                          np.full(64, north), north - (north - south) * t])
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    box = shapely.Polygon(np.c_[x, y]).buffer(-inset)
    shapely.prepare(box)
    return shapely.contains_xy(box, mesh.xy[:, 0], mesh.xy[:, 1])


def grow_districts(
    mesh: CellMesh,
    districts: tuple[DistrictSeed, ...],
    anchors: np.ndarray,
    rng: np.random.Generator,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """District index of every mesh cell (``-1`` outside the province).

    Districts grow from their anchors, through a noisy cost field with valleys along
    a spanning tree of the anchors, each up to its real area; cells the districts
    enclose but none took go to a neighbour. Should the districts not meet, the
    valleys are deepened; should one be hemmed in short of its area, it is sped up;
    and the growth is redone. Only ``allowed`` cells are taken.
    """
    cell_area = mesh.spacing**2
    budgets = np.array([round(d.area_km2 * 1e6 / cell_area) for d in districts])
    seeds = nearest_cells(mesh, anchors)
    noise = SmoothNoise(rng, (30_000.0, 12_000.0, 4_000.0, 1_500.0))
    cost = np.exp(0.55 * noise(mesh.xy[:, 0], mesh.xy[:, 1]))

    # cheap valleys along paths joining the anchors draw neighbouring districts
    # towards each other, so that they meet before their budgets run out
    valley = _dilate(mesh, _spanning_paths(mesh, seeds), _VALLEY_REACH)
    speed = np.sqrt(budgets.astype(float))
    depth = 1
    best, best_score = None, -1.0
    for _ in range(_ROUNDS):
        floor = cost.copy()
        floor[valley] *= _VALLEY_COST**depth
        labels = grow_regions(mesh, seeds, budgets, speed=speed, cost=floor, allowed=allowed)
        labels = fill_enclosed(mesh, labels)
        if (labels[mesh.border] >= 0).any():
            raise RuntimeError("the province grew to the edge of the mesh: enlarge its margin")
        if not _connected(mesh, labels >= 0):
            depth += 1  # deeper valleys: the province must come out in one piece
            continue
        ratio = np.bincount(labels[labels >= 0], minlength=len(seeds)) / budgets
        if ratio.min() > best_score:
            best, best_score = labels, float(ratio.min())
        if best_score >= _AREA_TOLERANCE:
            break
        # a district hemmed in (by the box or faster neighbours) before its budget was
        # met: speed it up and grow again
        speed = speed * np.minimum(ratio, 1.0) ** -1.0
    if best is None:
        raise RuntimeError("the districts did not join up into one province")
    return best


def _dilate(mesh: CellMesh, cells: np.ndarray, steps: int) -> np.ndarray:
    """Mask of ``cells`` and every cell within ``steps`` neighbour hops of them."""
    mask = np.zeros(mesh.size, dtype=bool)
    mask[cells] = True
    frontier = np.asarray(cells)
    for _ in range(steps):
        nbrs = mesh.indices[np.concatenate([np.arange(mesh.indptr[c], mesh.indptr[c + 1])
                                            for c in frontier])]
        frontier = np.unique(nbrs[~mask[nbrs]])
        mask[frontier] = True
    return mask


def _connected(mesh: CellMesh, mask: np.ndarray) -> bool:
    """Whether the cells of ``mask`` form one piece."""
    cells = np.flatnonzero(mask)
    if not len(cells):
        return True
    inside = mask.tolist()
    indptr, indices, _ = mesh.adjacency_lists
    seen = {int(cells[0])}
    stack = [int(cells[0])]
    while stack:
        cell = stack.pop()
        for k in range(indptr[cell], indptr[cell + 1]):
            nb = indices[k]
            if inside[nb] and nb not in seen:
                seen.add(nb)
                stack.append(nb)
    return len(seen) == len(cells)
