"""Growing regions over a cell mesh from seed cells, with area budgets.

A multi-source Dijkstra in which each region has a speed (so bigger regions reach
further in the same time, like a multiplicatively weighted Voronoi diagram), a cell
budget (so areas come out as asked), and a noisy per-cell cost (so borders wander
like ridges and streams instead of following straight bisectors).
"""

from __future__ import annotations

import heapq

import numpy as np

from .cells import CellMesh

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
    speed_l = [1.0] * n_regions if speed is None else [float(v) for v in speed]
    cost_l = [1.0] * mesh.size if cost is None else np.asarray(cost, dtype=float).tolist()
    ok = [True] * mesh.size if allowed is None else np.asarray(allowed, dtype=bool).tolist()
    limit = [2**62] * n_regions if budgets is None else [int(b) for b in budgets]
    # plain lists: element access in the loop is several times faster than on arrays
    out = [-1] * mesh.size if labels is None else labels.tolist()
    taken = [0] * n_regions
    heap: list[tuple[float, int, int]] = []
    if labels is None:
        heap = [(0.0, r, int(c)) for r, c in enumerate(seeds)]
    else:
        # restart from what is already held: those cells are re-marked when popped
        for cell in np.flatnonzero(labels >= 0).tolist():
            heap.append((0.0, out[cell], cell))
            taken[out[cell]] += 1
            out[cell] = -2
    heapq.heapify(heap)

    indptr, indices, lengths = mesh.adjacency_lists
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
    return np.array(out, dtype=np.int64)


def enclosed(mesh: CellMesh, labels: np.ndarray) -> np.ndarray:
    """Mask of the cells that no region took but that are cut off from the mesh border
    by regions: the holes a union of the regions would have."""
    free = labels < 0
    outside = free & mesh.border
    stack = list(np.flatnonzero(outside))
    indptr, indices = mesh.indptr, mesh.indices
    while stack:
        cell = stack.pop()
        for nb in indices[indptr[cell]:indptr[cell + 1]]:
            if free[nb] and not outside[nb]:
                outside[nb] = True
                stack.append(nb)
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
