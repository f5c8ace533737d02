"""Geometry for drawing, never for measuring: what a page embeds of a feature.

A published parcel may hold a million vertices (a surveyor's densified arc, a bad
export); the store and every download keep it exact, but a web page that embeds it
(the parcel sheet's map, the compare map's features, the OGC API's HTML map) would
weigh tens of megabytes and take seconds to draw, for detail finer than a pixel. Such
a feature is simplified here to what a screen can show: exact to half a pixel when the
feature fills `SCREEN_PX` pixels (a tolerance relative to the feature's own size, so
it holds at whatever zoom the page shows it, in any CRS), and never more than
`MAX_VERTICES` vertices. Ordinary features (up to `EXACT_UP_TO` vertices: every real
parcel and nearly every plan zone) go out untouched, byte for byte.

Costs stay linear in the vertex count: a radial thinning pass (GEOS
``remove_repeated_points``) runs first, so the topology-preserving simplification
works on a few thousand vertices, not on a million.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException

__all__ = ["SCREEN_PX", "MAX_VERTICES", "EXACT_UP_TO", "display_geometries",
           "display_geometry"]

#: Pixels a feature may span on screen while its outline stays exact to half a pixel.
SCREEN_PX = 2048
#: Vertices one feature keeps at most on a page (a circle needs ~100 at half a pixel).
MAX_VERTICES = 2000
#: Features with at most this many vertices go out exact.
EXACT_UP_TO = 1000
#: Above this many vertices, the topology-preserving pass is too slow (seconds for a
#: million): the thinning tolerance grows until the geometry is this small.
_THIN_TO = 50_000


def display_geometries(geoms: Sequence[Any] | np.ndarray) -> np.ndarray:
    """`geoms` (shapely geometries or None) with each heavy one simplified for display.

    Returns a new object array; light geometries are the very objects given.
    """
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    counts = shapely.get_num_coordinates(arr)
    for i in np.flatnonzero(counts > EXACT_UP_TO):
        arr[i] = _simplified(arr[i])
    return arr


def display_geometry(geom: Any) -> Any:
    """One geometry as :func:`display_geometries` gives it."""
    return display_geometries([geom])[0]


def _count(geom: Any) -> int:
    return int(shapely.get_num_coordinates(geom))


def _simplified(geom: Any) -> Any:
    x0, y0, x1, y1 = shapely.bounds(geom)
    size = max(x1 - x0, y1 - y0)
    if not math.isfinite(size) or size <= 0:
        return geom
    tol = size / SCREEN_PX / 2
    out = geom
    # Linear-time thinning: drops the vertices closer than `tol` to the last one kept
    # (a densified arc loses nearly all). A ring it would collapse raises: skip it.
    while _count(out) > _THIN_TO and tol < size:
        try:
            out = shapely.remove_repeated_points(out, tol)
        except GEOSException:
            break
        if _count(out) > _THIN_TO:
            tol *= 2
    if _count(out) > _THIN_TO:  # rings too small to thin: Douglas-Peucker drops them
        out = shapely.simplify(out, tol, preserve_topology=False)
    out = shapely.simplify(out, tol, preserve_topology=True)
    while _count(out) > MAX_VERTICES and tol < size:
        tol *= 2
        out = shapely.simplify(out, tol, preserve_topology=True)
    if _count(out) > MAX_VERTICES:  # thousands of parts or holes: drop the small ones
        out = shapely.simplify(out, tol, preserve_topology=False)
    if out is None or shapely.is_empty(out) or _count(out) > MAX_VERTICES:
        return shapely.envelope(geom)
    return out
