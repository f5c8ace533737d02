"""Communes of a synthetic district: seeded around the seat town, grown over the mesh.

The communes are the district's real former ones (GSO code, name, kind); only their
shapes are synthetic. The seat town (thị trấn, or the city's wards) sits on the
district anchor, which is the real town centre; a second town goes some way out; rural
communes (xã) are spread over the rest by farthest-point sampling. Each commune then
grows over the district's cells with a budget, wards smaller than rural communes, as in
reality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import CellMesh
from .districts import nearest_cells
from .growth import grow_regions
from .rand import SmoothNoise
from .seeds import CommuneSeed, DistrictSeed, fold

__all__ = ["CommuneSpec", "grow_communes"]

#: relative area of a commune by kind (a ward is much smaller than a rural commune)
_KIND_WEIGHT = {"phuong": 0.45, "thi_tran": 0.75, "xa": 1.0}
_GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


@dataclass(frozen=True)
class CommuneSpec:
    """A commune before it has a shape.

    Attributes
    ----------
    code
        The real GSO code of the former commune (``"24961"``).
    name
        Its full NFC name (``"Thị trấn Liên Nghĩa"``, ``"Phường 3"``, ``"Xã Phú Hội"``).
    place
        The name without its prefix, for addresses and organisation names.
    kind
        ``"xa"``, ``"phuong"`` or ``"thi_tran"``.
    centre
        Town or village centre (metres): where its houses cluster.
    is_seat
        Whether it is urban (a ward or a town) or, in a district without towns, the
        rural commune the district is seated in: its centre is built up densely.
    """

    code: str
    name: str
    place: str
    kind: str
    centre: tuple[float, float]
    is_seat: bool


def seat_first(district: DistrictSeed) -> list[CommuneSeed]:
    """The district's communes in growing order: wards, towns, rural communes, each in
    code order except that the seat comes first — the town named by the first seat town
    (spellings folded: ``Mađaguôi`` is ``Thị trấn Ma Đa Guôi``) or, in a district
    without wards or towns, the rural commune named after the seat (else the first)."""
    by_kind = {k: [c for c in district.communes if c.kind == k]
               for k in ("phuong", "thi_tran", "xa")}
    seat = fold(district.seat_towns[0]) if district.seat_towns else None
    first = "thi_tran" if by_kind["thi_tran"] and not by_kind["phuong"] else (
        None if by_kind["phuong"] else "xa")
    if first is not None and seat is not None:
        group = by_kind[first]
        hit = next((k for k, c in enumerate(group) if fold(c.place) == seat), 0)
        group.insert(0, group.pop(hit))
    return [*by_kind["phuong"], *by_kind["thi_tran"], *by_kind["xa"]]


def _spread_seeds(
    mesh: CellMesh, cells: np.ndarray, fixed: list[int], count: int, rng: np.random.Generator
) -> list[int]:
    """Add ``count`` seeds among ``cells`` far from ``fixed`` and from each other."""
    xy = mesh.xy[cells]
    mind = np.full(len(cells), np.inf)
    for cell in fixed:
        mind = np.minimum(mind, np.hypot(*(xy - mesh.xy[cell]).T))
    chosen: list[int] = []
    for _ in range(count):
        # a random handicap keeps the pattern from looking like a lattice
        pick = int(np.argmax(mind * rng.uniform(0.8, 1.0, len(cells))))
        chosen.append(int(cells[pick]))
        mind = np.minimum(mind, np.hypot(*(xy - xy[pick]).T))
    return chosen


def grow_communes(
    mesh: CellMesh,
    district_cells: np.ndarray,
    district: DistrictSeed,
    anchor: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[CommuneSpec]]:
    """Split the cells of one district into its communes.

    Parameters
    ----------
    mesh
        The province cell mesh.
    district_cells
        Indices of the district's cells.
    district
        The district's seed facts (its communes, seat towns).
    anchor
        The district anchor in metres: the seat town centre.
    rng
        The district's commune stream.

    Returns
    -------
    labels, specs
        Commune index (into ``specs``) of each of ``district_cells``, and the specs.
    """
    kinds = seat_first(district)
    weights = np.array([_KIND_WEIGHT[c.kind] for c in kinds]) * rng.uniform(0.75, 1.3,
                                                                          len(kinds))
    n_cells = len(district_cells)
    budgets = _split_budget(n_cells, weights)
    area = n_cells * mesh.spacing**2
    anchor_cell = int(nearest_cells(mesh, anchor[None, :], district_cells)[0])

    seeds: list[int] = []
    # the seat: ward 1 or the first town on the anchor, other wards in a sunflower round it
    n_ward = district.n_phuong
    if n_ward:
        ward_area = budgets[:n_ward].sum() * mesh.spacing**2
        radius = 0.85 * np.sqrt(ward_area / np.pi)
        turn = rng.uniform(0, 2 * np.pi)
        spots = [anchor]
        for k in range(1, n_ward):
            r = radius * np.sqrt((k + 0.5) / n_ward)
            a = turn + k * _GOLDEN_ANGLE
            spots.append(anchor + r * np.array([np.cos(a), np.sin(a)]))
        seeds += _unique_nearest(mesh, np.array(spots), district_cells)
    if district.n_thi_tran:
        seeds.append(anchor_cell)
        reach = np.sqrt(area / np.pi)
        dist = np.hypot(*(mesh.xy[district_cells] - anchor).T)
        for _ in range(1, district.n_thi_tran):
            ring = district_cells[(dist > 0.35 * reach) & (dist < 0.65 * reach)]
            pool = ring if len(ring) else district_cells
            seeds.append(int(pool[rng.integers(len(pool))]))
    if not seeds:
        seeds.append(anchor_cell)  # the seat commune of a district without towns
    seeds += _spread_seeds(mesh, district_cells, seeds, district.n_communes - len(seeds), rng)
    seeds_arr = np.array(seeds, dtype=np.int64)

    allowed = np.zeros(mesh.size, dtype=bool)
    allowed[district_cells] = True
    noise = SmoothNoise(rng, (8_000.0, 3_000.0, 1_200.0))
    cost = np.ones(mesh.size)
    cost[district_cells] = np.exp(0.5 * noise(*mesh.xy[district_cells].T))
    labels = grow_regions(mesh, seeds_arr, budgets, speed=np.sqrt(budgets), cost=cost,
                          allowed=allowed)
    if (labels[district_cells] < 0).any():
        # budgets met before every cell was reached: let the nearest communes take the rest
        labels = grow_regions(mesh, seeds_arr, None, cost=cost, allowed=allowed, labels=labels)

    specs = []
    for i, (real, cell) in enumerate(zip(kinds, seeds_arr, strict=True)):
        specs.append(
            CommuneSpec(
                code=real.code,
                name=real.name,
                place=real.place,
                kind=real.kind,
                centre=(float(mesh.xy[cell, 0]), float(mesh.xy[cell, 1])),
                is_seat=real.kind != "xa" or (i == 0 and not district.n_phuong
                                              + district.n_thi_tran),
            )
        )
    # the seat ward, town or commune is centred on the anchor exactly (the real centre)
    first = specs[0]
    specs[0] = CommuneSpec(first.code, first.name, first.place, first.kind,
                           (float(anchor[0]), float(anchor[1])), True)
    return labels[district_cells], specs


def _split_budget(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` (largest remainder)."""
    share = weights / weights.sum() * total
    base = np.floor(share).astype(np.int64)
    rest = total - base.sum()
    base[np.argsort(base - share)[:rest]] += 1
    return np.maximum(base, 1)


def _unique_nearest(mesh: CellMesh, points: np.ndarray, cells: np.ndarray) -> list[int]:
    taken: list[int] = []
    pool = np.asarray(cells)
    for p in points:
        free = pool[~np.isin(pool, taken)]
        taken.append(int(free[np.argmin(np.hypot(*(mesh.xy[free] - p).T))]))
    return taken
