"""The sea off the Bình Thuận coast: where mainland districts may not grow.

Since 2025-07-01 the province reaches the South China Sea (former Bình Thuận). The
demo does not copy the real coast; a rough line through a dozen points, a few
kilometres seaward of the coastal seats (La Gi, Phan Thiết, Liên Hương), keeps the
synthetic districts on land, and everything south-east of it is sea. A district whose
anchor lies at sea (Phú Quý) is an island: it is grown over sea cells round its anchor
alone, so it never touches the mainland. Deterministic: a fixed line, no noise (the
cell mesh makes the shore ragged enough).
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer

from .cells import CellMesh

__all__ = ["COAST_LONLAT", "at_sea", "sea_mask", "sea_polygon"]

#: the shore, south-west to north-east (WGS 84, lon/lat): from beyond the western
#: end of the province box past Hàm Tân, La Gi, Kê Gà, Phan Thiết, Mũi Né, Phan Rí
#: Cửa and Liên Hương to beyond its eastern end
COAST_LONLAT: tuple[tuple[float, float], ...] = (
    (107.00, 10.36), (107.58, 10.52), (107.80, 10.635), (107.99, 10.675), (108.06, 10.79),
    (108.14, 10.895), (108.30, 10.925), (108.40, 11.02), (108.56, 11.12),
    (108.74, 11.195), (108.86, 11.30), (109.20, 11.36),
)
#: the sea polygon is closed this far south of the province box (degrees)
_SOUTH = 10.0


def sea_polygon(crs: str) -> shapely.Polygon:
    """The sea south-east of :data:`COAST_LONLAT`, projected to ``crs`` (edges
    densified: a straight line in degrees is not straight in a projected CRS)."""
    ring = [*COAST_LONLAT, (COAST_LONLAT[-1][0], _SOUTH), (COAST_LONLAT[0][0], _SOUTH)]
    lon, lat = [], []
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True):
        t = np.linspace(0.0, 1.0, 17)[:-1]
        lon.extend(x0 + (x1 - x0) * t)
        lat.extend(y0 + (y1 - y0) * t)
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return shapely.Polygon(np.c_[x, y])


def sea_mask(mesh: CellMesh, crs: str) -> np.ndarray:
    """Which mesh cells (by their centre) lie at sea."""
    sea = sea_polygon(crs)
    shapely.prepare(sea)
    return shapely.contains_xy(sea, mesh.xy[:, 0], mesh.xy[:, 1])


def at_sea(points: np.ndarray, crs: str) -> np.ndarray:
    """Which of ``points`` (``(n, 2)`` metres in ``crs``) lie at sea: island anchors."""
    sea = sea_polygon(crs)
    return shapely.contains_xy(sea, points[:, 0], points[:, 1])
