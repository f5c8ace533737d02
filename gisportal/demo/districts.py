"""Synthetic districts: grown over the cell mesh from the real district anchor points.

No real boundary is used. Each district starts at its anchor (a point inside the real
district) and grows with a speed set by its real area and a budget of cells equal to
that area, through a noisy cost field that makes the borders wander.
"""

from __future__ import annotations

import numpy as np
from pyproj import Transformer

from .cells import CellMesh
from .growth import fill_enclosed, grow_regions
from .rand import SmoothNoise
from .seeds import DistrictSeed

__all__ = ["anchors_xy", "grow_districts"]


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


def grow_districts(
    mesh: CellMesh,
    districts: tuple[DistrictSeed, ...],
    anchors: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """District index of every mesh cell (``-1`` outside the province).

    Budgets are the real areas in cells; speeds their square roots so that districts
    of different sizes meet roughly where their areas say they should.
    """
    cell_area = mesh.spacing**2
    budgets = np.array([round(d.area_km2 * 1e6 / cell_area) for d in districts])
    seeds = nearest_cells(mesh, anchors)
    noise = SmoothNoise(rng, (30_000.0, 12_000.0, 4_000.0, 1_500.0))
    cost = np.exp(0.55 * noise(mesh.xy[:, 0], mesh.xy[:, 1]))
    labels = grow_regions(mesh, seeds, budgets, speed=np.sqrt(budgets), cost=cost)
    labels = fill_enclosed(mesh, labels)
    if (labels[mesh.border] >= 0).any():
        raise RuntimeError("the province grew to the edge of the mesh: enlarge its margin")
    return labels

