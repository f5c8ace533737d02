"""Road and river parcels: the ribbons between sections along corridor lattice lines.

A corridor parcel is bounded by the sides of the sections on either side of its line,
taking exactly their vertices (including the corners of the lots that front it), so
roads and lots share edges vertex for vertex. Corridors are cut into pieces every few
sections, and where a more important corridor crosses: the road passes over the river
on a bridge, a minor road stops at the edge of the main road.
"""

from __future__ import annotations

import numpy as np
import shapely

from .lattice import Corridor, Lattice
from .strips import Subdivision

__all__ = ["corridor_pieces"]


def _side(lattice: Lattice, sub: Subdivision | None, batch_of: np.ndarray, row: int, col: int,
          which: str) -> np.ndarray:
    """Points along one side of section ``(row, col)``: the lots' points when the
    section was cut, else its two inset corners."""
    k = batch_of[row, col]
    if sub is not None and k >= 0:
        return sub.side(int(k), which)
    c = lattice.corners[row, col]
    return {"bottom": c[[0, 1]], "top": c[[3, 2]], "left": c[[0, 3]], "right": c[[1, 2]]}[which]


def corridor_pieces(
    lattice: Lattice,
    sub: Subdivision | None,
    batch_of: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Polygons of all corridor pieces touching usable sections, and their codes.

    Parameters
    ----------
    lattice
        The district lattice.
    sub
        The cut sections (``None`` when none was cut).
    batch_of
        ``(ny, nx)`` index of each section in ``sub`` (``-1`` when not cut).
    rng
        Source of the piece lengths.
    """
    ny, nx = lattice.shape
    polygons: list[shapely.Polygon] = []
    codes: list[str] = []
    for corridor in lattice.corridors:
        stops = _crossings(lattice.corridors, corridor)
        n_edges = nx if corridor.axis == "row" else ny
        run: list[int] = []
        length = int(rng.integers(2, 5))
        for e in range(n_edges):
            a, b = _neighbours(corridor, e)
            relevant = lattice.usable[a] or lattice.usable[b]
            if run and (not relevant or e in stops or len(run) >= length):
                polygons.append(_piece(lattice, sub, batch_of, corridor, run))
                codes.append(corridor.code)
                run = []
                length = int(rng.integers(2, 5))
            if relevant:
                run.append(e)
        if run:
            polygons.append(_piece(lattice, sub, batch_of, corridor, run))
            codes.append(corridor.code)
    return np.array(polygons, dtype=object), np.array(codes, dtype=object)


def _neighbours(c: Corridor, e: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Sections on either side of edge ``e`` of corridor ``c``: (after, before) the line."""
    if c.axis == "row":
        return (c.index, e), (c.index - 1, e)
    return (e, c.index), (e, c.index - 1)


def _crossings(corridors: list[Corridor], c: Corridor) -> set[int]:
    """Edges of ``c`` at which a corridor of higher priority crosses it."""
    return {o.index for o in corridors if o.axis != c.axis and o.rank < c.rank}


def _piece(lattice: Lattice, sub: Subdivision | None, batch_of: np.ndarray,
           corridor: Corridor, run: list[int]) -> shapely.Polygon:
    """The ribbon along edges ``run`` of ``corridor``, between the sections' sides."""
    after_side, before_side = ("bottom", "top") if corridor.axis == "row" else ("left", "right")
    after = [_side(lattice, sub, batch_of, *_neighbours(corridor, e)[0], after_side) for e in run]
    before = [_side(lattice, sub, batch_of, *_neighbours(corridor, e)[1], before_side)
              for e in run]
    ring = np.vstack([np.vstack(after), np.vstack(before)[::-1]])
    return shapely.Polygon(ring)
