"""A fine mesh of irregular cells (Voronoi cells of a jittered grid) and its adjacency.

Districts and communes are unions of these cells. Building every administrative level
from one mesh makes them nest and tile exactly by construction: a commune boundary is
a chain of cell edges, so it is also a district boundary wherever districts meet, and
no overlay (with its floating-point slivers) is ever needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely

__all__ = ["CellMesh", "cell_polygons", "jittered_mesh", "neighbours"]


@dataclass(frozen=True)
class CellMesh:
    """Cell centres and their Delaunay adjacency in CSR form.

    Attributes
    ----------
    xy
        ``(n, 2)`` cell centres (metres).
    indptr, indices
        Neighbours of cell ``i`` are ``indices[indptr[i]:indptr[i + 1]]``.
    lengths
        Distance to each neighbour, aligned with ``indices``.
    border
        Boolean mask of the cells on the outer rows and columns of the grid.
    spacing
        Grid step in metres: a cell covers ``spacing ** 2`` on average.
    """

    xy: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    lengths: np.ndarray
    border: np.ndarray
    spacing: float

    @property
    def size(self) -> int:
        """Number of cells."""
        return len(self.xy)

    @cached_property
    def adjacency_lists(self) -> tuple[list[int], list[int], list[float]]:
        """``indptr``, ``indices`` and ``lengths`` as Python lists, for the loops of
        region growing (list indexing is several times faster than array indexing)."""
        return self.indptr.tolist(), self.indices.tolist(), self.lengths.tolist()


def jittered_mesh(
    bounds: tuple[float, float, float, float],
    spacing: float,
    rng: np.random.Generator,
    jitter: float = 0.35,
) -> CellMesh:
    """Jittered grid points over ``bounds`` and their Delaunay neighbours.

    A jittered grid gives cells of even size (so cell counts measure area) whose
    shared edges zigzag irregularly: unions of cells have natural-looking borders.

    Parameters
    ----------
    bounds
        ``(minx, miny, maxx, maxy)`` in metres.
    spacing
        Grid step in metres.
    rng
        Source of the jitter.
    jitter
        Maximum displacement as a fraction of ``spacing``.
    """
    minx, miny, maxx, maxy = bounds
    nx = int(np.ceil((maxx - minx) / spacing)) + 1
    ny = int(np.ceil((maxy - miny) / spacing)) + 1
    gx, gy = np.meshgrid(minx + spacing * np.arange(nx), miny + spacing * np.arange(ny))
    offset = rng.uniform(-jitter, jitter, (2, ny, nx)) * spacing
    xy = np.c_[(gx + offset[0]).ravel(), (gy + offset[1]).ravel()]
    border = np.zeros((ny, nx), dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True

    edges = shapely.delaunay_triangles(shapely.multipoints(xy), only_edges=True)
    ends = shapely.get_coordinates(edges).reshape(-1, 2, 2)
    # x alone identifies a jittered point (continuous jitter: ties have probability 0)
    order = np.argsort(xy[:, 0], kind="stable")
    a = order[np.searchsorted(xy[order, 0], ends[:, 0, 0])]
    b = order[np.searchsorted(xy[order, 0], ends[:, 1, 0])]
    if not (np.array_equal(xy[a], ends[:, 0]) and np.array_equal(xy[b], ends[:, 1])):
        raise RuntimeError("Delaunay edge endpoints do not match the mesh points")
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    sort = np.lexsort((dst, src))
    src, dst = src[sort], dst[sort]
    indptr = np.zeros(len(xy) + 1, dtype=np.int64)
    np.add.at(indptr, src + 1, 1)
    indptr = np.cumsum(indptr)
    lengths = np.hypot(*(xy[dst] - xy[src]).T)
    return CellMesh(xy=xy, indptr=indptr, indices=dst, lengths=lengths, border=border.ravel(),
                    spacing=float(spacing))


def neighbours(mesh: CellMesh, cells: np.ndarray) -> np.ndarray:
    """Every neighbour of ``cells`` (with repeats), gathered from the CSR arrays at once."""
    starts = mesh.indptr[cells]
    counts = mesh.indptr[cells + 1] - starts
    first = np.cumsum(counts) - counts  # where each cell's run starts in the output
    return mesh.indices[np.repeat(starts - first, counts) + np.arange(int(counts.sum()))]


def cell_polygons(mesh: CellMesh, which: np.ndarray) -> np.ndarray:
    """Voronoi polygons of the cells ``which`` (indices), as a shapely array.

    Only the cells asked for and their neighbours enter the Voronoi diagram: a cell
    depends on its Delaunay neighbours alone, so the result is exact and cheap.
    The polygons form a valid coverage (GEOS computes each circumcentre once).
    """
    which = np.asarray(which)
    ring = np.zeros(mesh.size, dtype=bool)
    ring[which] = True
    ring[neighbours(mesh, which)] = True
    subset = np.flatnonzero(ring)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(mesh.xy[subset]), ordered=True)
    )
    position = np.searchsorted(subset, which)
    return cells[position]
