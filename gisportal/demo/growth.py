"""Growing regions over a cell mesh from seed cells, with area budgets.

A multi-source Dijkstra in which each region has a speed (so bigger regions reach
further in the same time, like a multiplicatively weighted Voronoi diagram), a cell
budget (so areas come out as asked), and a noisy per-cell cost (so borders wander
like ridges and streams instead of following straight bisectors).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from .cells import CellMesh, neighbours

__all__ = ["enclosed", "fill_enclosed", "grow_regions"]


def grow_regions(
    mesh: CellMesh,
    seeds: np.ndarray,
    budgets: np.ndarray | None,
    *,
    speed: np.ndarray | None = None,
    cost: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Label cells by the region that reaches them first.

    Parameters
    ----------
    mesh
        The cell mesh.
    seeds
        Seed cell of each region (region ``r`` starts at ``seeds[r]``).
    budgets
        Maximum number of cells per region, or ``None`` for no limit.
    speed
        Growth speed per region (default 1).
    cost
        Cost multiplier per cell (default 1): high cost slows every region.
    allowed
        Mask of the cells that may be taken (default: all).
    labels
        Existing labels to continue from (``-1`` = free); regions then also grow
        from every cell they already hold.

    Returns
    -------
    numpy.ndarray
        Region index per cell, ``-1`` where no region got.
    """
    n_regions = len(seeds)
    seeds = np.asarray(seeds, dtype=np.int64)
    ok_mask = None if allowed is None else np.asarray(allowed, dtype=bool)
    graph = _graph(mesh, seeds, ok_mask, labels)
    cells = graph.cells  # mesh index of each graph node (None: the mesh itself)

    def local(values: np.ndarray) -> np.ndarray:
        return values if cells is None else values[cells]

    speed_l = [1.0] * n_regions if speed is None else [float(v) for v in speed]
    size = mesh.size if cells is None else len(cells)
    cost_l = [1.0] * size if cost is None else local(np.asarray(cost, dtype=float)).tolist()
    ok = [True] * size if ok_mask is None else local(ok_mask).tolist()
    limit = [2**62] * n_regions if budgets is None else [int(b) for b in budgets]
    # plain lists: element access in the loop is several times faster than on arrays
    out = [-1] * size if labels is None else local(labels).tolist()
    taken = [0] * n_regions
    heap: list[tuple[float, int, int]] = []
    if labels is None:
        heap = [(0.0, r, int(c)) for r, c in enumerate(graph.node(seeds))]
    else:
        # restart from what is already held: only the held cells next to a free cell that
        # may be taken can grow (the others, popped first at distance 0, pushed nothing),
        # so only they are re-marked and pushed; all held cells count against budgets
        held = labels >= 0
        taken = np.bincount(labels[held], minlength=n_regions).tolist()
        free = ~held if ok_mask is None else ~held & ok_mask
        edge = np.zeros(mesh.size, dtype=bool)
        edge[neighbours(mesh, np.flatnonzero(free))] = True
        for node in graph.node(np.flatnonzero(held & edge)).tolist():
            heap.append((0.0, out[node], node))
            out[node] = -2
    heapq.heapify(heap)

    indptr, indices, lengths = graph.lists
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        dist, region, cell = pop(heap)
        state = out[cell]
        if state >= 0:
            continue
        if state == -1:
            if taken[region] >= limit[region]:
                continue
            taken[region] += 1
        out[cell] = region
        step = speed_l[region]
        for k in range(indptr[cell], indptr[cell + 1]):
            nb = indices[k]
            if out[nb] == -1 and ok[nb]:
                push(heap, (dist + lengths[k] * cost_l[nb] / step, region, nb))
    if cells is None:
        return np.array(out, dtype=np.int64)
    result = np.full(mesh.size, -1, dtype=np.int64) if labels is None else labels.copy()
    result[cells] = out
    return result


#: below this share of the mesh, regions grow over a graph of the cells they may reach
#: alone (a district's communes: 1–3 % of the mesh), not over the whole mesh
_SUBGRAPH_SHARE = 0.25


@dataclass(frozen=True)
class _Graph:
    """The graph regions grow over, its adjacency as Python lists for the loop.

    ``cells`` is the mesh cell of each node, increasing (so ties between equal
    distances and regions are broken by cell order just as over the whole mesh), or
    None when the graph is the whole mesh (then nodes are cells).
    """

    cells: np.ndarray | None
    lists: tuple[list[int], list[int], list[float]]

    def node(self, cells: np.ndarray) -> np.ndarray:
        """The nodes of mesh ``cells`` (each must be in the graph)."""
        return cells if self.cells is None else np.searchsorted(self.cells, cells)


def _graph(mesh: CellMesh, seeds: np.ndarray, allowed: np.ndarray | None,
           labels: np.ndarray | None) -> _Graph:
    """The graph for growing regions from ``seeds`` (and the cells ``labels`` holds)
    into ``allowed`` cells.

    Why a subgraph: a region only ever enters allowed cells, so when they are few the
    cells the growth can touch (allowed, seeds, held) and the steps into allowed cells
    are the whole graph. Converting the whole mesh's per-cell arrays to lists for each
    district's communes cost more than growing them. The outcome is the same: the same
    steps in the same order, with the same lengths and costs.
    """
    if allowed is None or allowed.sum() > _SUBGRAPH_SHARE * mesh.size:
        return _Graph(None, mesh.adjacency_lists)
    keep = allowed.copy()
    keep[seeds] = True
    if labels is not None:
        keep |= labels >= 0
    cells = np.flatnonzero(keep)
    starts = mesh.indptr[cells]
    counts = mesh.indptr[cells + 1] - starts
    first = np.cumsum(counts) - counts
    steps = np.repeat(starts - first, counts) + np.arange(int(counts.sum()))
    owner = np.repeat(np.arange(len(cells)), counts)
    into = allowed[mesh.indices[steps]]  # only steps into allowed cells are ever taken
    indptr = np.zeros(len(cells) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(owner[into], minlength=len(cells)))
    indices = np.searchsorted(cells, mesh.indices[steps[into]])
    return _Graph(cells, (indptr.tolist(), indices.tolist(), mesh.lengths[steps[into]].tolist()))


def enclosed(mesh: CellMesh, labels: np.ndarray) -> np.ndarray:
    """Mask of the cells that no region took but that are cut off from the mesh border
    by regions: the holes a union of the regions would have.

    The free cells reachable from the border are flooded a whole frontier per numpy
    step (a Python loop over cells cost 5.5 s of the 18 s layout under the profiler);
    the set reached does not depend on the order, so the result is the same."""
    free = labels < 0
    outside = free & mesh.border
    frontier = np.flatnonzero(outside)
    while len(frontier):
        nbrs = neighbours(mesh, frontier)
        frontier = np.unique(nbrs[free[nbrs] & ~outside[nbrs]])
        outside[frontier] = True
    return free & ~outside


def fill_enclosed(mesh: CellMesh, labels: np.ndarray, speed: np.ndarray | None = None
                  ) -> np.ndarray:
    """Give cells that no region took but that are cut off from the mesh border
    to a neighbouring region, so unions of cells have no holes; with ``speed`` (per
    region), faster regions take more of a hole."""
    holes = enclosed(mesh, labels)
    if not holes.any():
        return labels
    n_regions = int(labels.max()) + 1
    return grow_regions(
        mesh,
        np.zeros(n_regions, dtype=np.int64),
        None,
        speed=speed,
        allowed=holes | (labels >= 0),
        labels=labels,
    )
