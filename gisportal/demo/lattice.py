"""The survey lattice of a district: gently warped quadrilateral sections and corridors.

Every parcel is cut out of a section (about 600 m × 600 m). The lattice is rotated
per district and warped by a smooth field, so its lines curve like the roads and
field boundaries of a real landscape; its nodes are jittered a little. A few lattice
lines are corridors: main roads (through the town centres, which sit on nodes) and
rivers. Sections are inset from their edges by half the corridor width, or by half
a metre elsewhere, so corridors and sections never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from .outline import DistrictLayout
from .rand import SmoothNoise

__all__ = ["Corridor", "Lattice", "build_lattice"]

#: nominal section size (metres)
SECTION = 600.0
#: gap between neighbouring sections (metres): an unsurveyed hairline, not a parcel
GAP = 1.0
#: warp amplitude (metres); with the wavelengths below the cells stay convex
WARP = 300.0


@dataclass(frozen=True)
class Corridor:
    """A lattice line that carries a road or a river.

    Attributes
    ----------
    axis
        ``"row"`` (a line of constant ``j``, between section rows ``j-1`` and ``j``)
        or ``"col"`` (constant ``i``).
    index
        The line number.
    width
        Width in metres.
    code
        Land-use code of its parcels (``DGT`` or ``SON``).
    rank
        Crossing priority: where two corridors cross, the lower rank passes through
        and the other one is cut.
    """

    axis: str
    index: int
    width: float
    code: str
    rank: int


@dataclass
class Lattice:
    """Nodes, sections and corridors of one district.

    Attributes
    ----------
    nodes
        ``(ny + 1, nx + 1, 2)`` node coordinates.
    corners
        ``(ny, nx, 4, 2)`` inset section corners, counter-clockwise from the corner
        at node ``(i, j)``: ``(s, t) = (0, 0), (1, 0), (1, 1), (0, 1)``.
    usable
        ``(ny, nx)`` mask of sections that touch the district and are convex.
    corridors
        The road and river lines, by rank.
    """

    nodes: np.ndarray
    corners: np.ndarray
    usable: np.ndarray
    corridors: list[Corridor]

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``: number of section rows and columns."""
        return self.corners.shape[0], self.corners.shape[1]

    def quads(self) -> np.ndarray:
        """Uninset section polygons, ``(ny, nx)`` (they tile the lattice exactly)."""
        n = self.nodes
        ring = np.stack([n[:-1, :-1], n[:-1, 1:], n[1:, 1:], n[1:, :-1]], axis=2)
        return shapely.polygons(ring)

    def line(self, axis: str, index: int) -> np.ndarray:
        """Node coordinates along a lattice line, ``(k, 2)``."""
        return self.nodes[index] if axis == "row" else self.nodes[:, index]


def _offset_corner(a0: np.ndarray, a1: np.ndarray, da: np.ndarray,
                   b0: np.ndarray, b1: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Intersection of edge ``a0→a1`` moved inward by ``da`` and ``b0→b1`` by ``db``.

    Edges run counter-clockwise, so the inward normal of direction ``(dx, dy)`` is
    ``(-dy, dx)``.
    """
    ta = a1 - a0
    tb = b1 - b0
    na = np.stack([-ta[..., 1], ta[..., 0]], axis=-1)
    na /= np.linalg.norm(na, axis=-1, keepdims=True)
    nb = np.stack([-tb[..., 1], tb[..., 0]], axis=-1)
    nb /= np.linalg.norm(nb, axis=-1, keepdims=True)
    ca = np.sum(na * a0, axis=-1) + da
    cb = np.sum(nb * b0, axis=-1) + db
    det = na[..., 0] * nb[..., 1] - na[..., 1] * nb[..., 0]
    x = (ca * nb[..., 1] - cb * na[..., 1]) / det
    y = (na[..., 0] * cb - nb[..., 0] * ca) / det
    return np.stack([x, y], axis=-1)


def build_lattice(
    district: DistrictLayout,
    rng: np.random.Generator,
    towns: list[tuple[float, float]],
) -> Lattice:
    """Lay the lattice over ``district`` with crossroads at the first town centre.

    Parameters
    ----------
    district
        The district's shapes.
    rng
        The district's lattice stream.
    towns
        Town centres (metres), the seat first; each gets a row and a column road.
    """
    angle = rng.uniform(0.0, np.pi / 2)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    origin = np.asarray(towns[0], dtype=float)
    local = (np.asarray(district.boundary.exterior.coords) - origin) @ rot  # = R^T p
    lo = np.floor(local.min(axis=0) / SECTION) - 2
    hi = np.ceil(local.max(axis=0) / SECTION) + 2
    iu = np.arange(lo[0], hi[0] + 1)
    jv = np.arange(lo[1], hi[1] + 1)
    gu, gv = np.meshgrid(iu * SECTION, jv * SECTION)
    warp_u = SmoothNoise(rng, (16_000.0, 8_000.0), (1.0, 0.4))
    warp_v = SmoothNoise(rng, (16_000.0, 8_000.0), (1.0, 0.4))
    du = WARP * (warp_u(gu, gv) - warp_u(0.0, 0.0))
    dv = WARP * (warp_v(gu, gv) - warp_v(0.0, 0.0))
    jitter = rng.uniform(-0.06, 0.06, (2, *gu.shape)) * SECTION
    centre = (gu == 0) & (gv == 0)  # the seat town centre stays on its node
    jitter[:, centre] = 0.0
    lu = gu + du + jitter[0]
    lv = gv + dv + jitter[1]
    nodes = origin + np.stack([lu, lv], axis=-1) @ rot.T
    ny, nx = nodes.shape[0] - 1, nodes.shape[1] - 1

    lattice = Lattice(nodes=nodes, corners=np.empty((ny, nx, 4, 2)),
                      usable=np.zeros((ny, nx), bool), corridors=[])
    lattice.corridors = _choose_corridors(lattice, district, towns, rng)
    half_row = np.full(ny + 1, GAP / 2)
    half_col = np.full(nx + 1, GAP / 2)
    for c in lattice.corridors:
        (half_row if c.axis == "row" else half_col)[c.index] = c.width / 2
    n00, n10 = nodes[:-1, :-1], nodes[:-1, 1:]
    n11, n01 = nodes[1:, 1:], nodes[1:, :-1]
    hb = np.broadcast_to(half_row[:-1, None], (ny, nx))
    ht = np.broadcast_to(half_row[1:, None], (ny, nx))
    hl = np.broadcast_to(half_col[None, :-1], (ny, nx))
    hr = np.broadcast_to(half_col[None, 1:], (ny, nx))
    corners = np.stack([
        _offset_corner(n01, n00, hl, n00, n10, hb),
        _offset_corner(n00, n10, hb, n10, n11, hr),
        _offset_corner(n10, n11, hr, n11, n01, ht),
        _offset_corner(n11, n01, ht, n01, n00, hl),
    ], axis=2)
    lattice.corners = corners
    lattice.usable = _convex(corners) & shapely.intersects(
        _prepared(district.boundary), shapely.polygons(corners)
    )
    return lattice


def _prepared(geom: shapely.Geometry) -> shapely.Geometry:
    shapely.prepare(geom)
    return geom


def _convex(corners: np.ndarray) -> np.ndarray:
    edge = np.roll(corners, -1, axis=2) - corners
    nxt = np.roll(edge, -1, axis=2)
    cross = edge[..., 0] * nxt[..., 1] - edge[..., 1] * nxt[..., 0]
    return (cross > 0).all(axis=2)


def _choose_corridors(
    lattice: Lattice, district: DistrictLayout, towns: list[tuple[float, float]],
    rng: np.random.Generator,
) -> list[Corridor]:
    """Roads through every town centre, one more road, and one or two rivers."""
    ny, nx = lattice.nodes.shape[0] - 1, lattice.nodes.shape[1] - 1
    flat = lattice.nodes.reshape(-1, 2)
    rows: dict[int, Corridor] = {}
    cols: dict[int, Corridor] = {}
    rank = 0
    for k, town in enumerate(towns):
        node = int(np.argmin(np.hypot(*(flat - np.asarray(town)).T)))
        j, i = divmod(node, nx + 1)
        width = 22.0 if k == 0 else 14.0
        if 0 < j < ny and j not in rows:
            rows[j] = Corridor("row", j, width, "DGT", rank)
            rank += 1
        if 0 < i < nx and i not in cols:
            cols[i] = Corridor("col", i, width, "DGT", rank)
            rank += 1

    inside = shapely.contains_xy(_prepared(district.boundary), *lattice.nodes.reshape(-1, 2).T)
    inside = inside.reshape(ny + 1, nx + 1)

    def pick(taken: dict[int, Corridor], n_lines: int, along: np.ndarray, gap: int) -> int | None:
        # a line well inside the district, away from the other corridors on that axis
        options = [
            k for k in range(2, n_lines - 1)
            if along[k] >= 0.5 * along.max() and all(abs(k - t) > gap for t in taken)
        ]
        return int(options[rng.integers(len(options))]) if options else None

    along_row = inside.sum(axis=1)
    along_col = inside.sum(axis=0)
    axis = "row" if rng.random() < 0.5 else "col"
    extra = pick(rows if axis == "row" else cols, ny if axis == "row" else nx,
                 along_row if axis == "row" else along_col, 5)
    if extra is not None:
        (rows if axis == "row" else cols)[extra] = Corridor(axis, extra, 12.0, "DGT", rank)
        rank += 1
    for _ in range(1 + int(rng.random() < 0.5)):
        axis = "row" if rng.random() < 0.5 else "col"
        taken = rows if axis == "row" else cols
        line = pick(taken, ny if axis == "row" else nx,
                    along_row if axis == "row" else along_col, 3)
        if line is not None:
            taken[line] = Corridor(axis, line, float(rng.uniform(25.0, 50.0)), "SON", 100 + rank)
            rank += 1
    return sorted([*rows.values(), *cols.values()], key=lambda c: c.rank)
