"""What each section of the lattice is: town, village, farmland or forest, now and planned.

Geography depends on the seed only, not on the number of parcels asked for: the
parcel count decides how much of it is surveyed (towns first), never where the towns
are. The same classes drive the 2021–2030 plan, so the plan follows current use except
where towns are planned to grow and where new industry goes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from .lattice import SECTION, Lattice
from .outline import DistrictLayout
from .rand import SmoothNoise

__all__ = ["FARM", "FOREST", "TOWN", "VILLAGE", "Landscape", "Town", "classify", "towns_of"]

TOWN, VILLAGE, FARM, FOREST = 0, 1, 2, 3

#: share of the rural land that is farmed, per district (the rest is forest);
#: the mountain districts and those with national parks are mostly forest
_FARM_SHARE = {"674": 0.3, "675": 0.22, "681": 0.4, "682": 0.4, "683": 0.35}
#: districts with special-use forest (national parks: Bidoup–Núi Bà, Cát Tiên)
_SPECIAL_FOREST = {"674", "675", "683"}


@dataclass(frozen=True)
class Town:
    """A built-up centre.

    Attributes
    ----------
    name
        Town or city name.
    centre
        Its centre (metres).
    radius
        Nominal radius of the built-up area (metres).
    communes
        Indices of the communes it may spread over (a town's dense core stays
        inside its own wards or thị trấn).
    urban
        Urban (ODT) or, for a district seated in a rural commune, rural (ONT).
    """

    name: str
    centre: tuple[float, float]
    radius: float
    communes: tuple[int, ...]
    urban: bool


def towns_of(district: DistrictLayout, rng: np.random.Generator) -> list[Town]:
    """The district's towns, the seat first."""
    communes = district.communes
    wards = tuple(k for k, c in enumerate(communes) if c.kind == "phuong")
    if wards:
        share = 0.12 if district.boundary.area > 300e6 else 0.15
        radius = float(np.sqrt(share * district.boundary.area / np.pi))
        name = district.seed.seat_towns[0] if district.seed.seat_towns else district.seed.name
        return [Town(name, district.anchor, radius, wards, True)]
    towns = []
    for k, c in enumerate(communes):
        if c.kind == "thi_tran":
            base = 1800.0 if not towns else 1400.0
            towns.append(Town(c.place, c.centre, base * rng.uniform(0.9, 1.15), (k,), True))
    if towns:
        return towns
    seat = communes[0]
    return [Town(seat.place, seat.centre, 1100.0 * rng.uniform(0.9, 1.15), (0,), False)]


@dataclass
class Landscape:
    """Per-section facts for the usable sections of a lattice (flat arrays).

    Attributes
    ----------
    flat
        Flat index ``j * nx + i`` of each section.
    centre
        ``(n, 2)`` section centres.
    commune
        Commune index (into the district's communes).
    kind
        ``TOWN``, ``VILLAGE``, ``FARM`` or ``FOREST``.
    town
        Index of the town of a town section (``-1`` otherwise).
    code
        Main current land-use code of the section (``ODT``, ``ONT``, ``CLN``, ``LUC``,
        ``RSX``...): what most of its parcels get.
    priority
        Survey order (lower first) for farmland and forest sections.
    planned
        Planned land-use code 2021–2030.
    """

    flat: np.ndarray
    centre: np.ndarray
    commune: np.ndarray
    kind: np.ndarray
    town: np.ndarray
    code: np.ndarray
    priority: np.ndarray
    planned: np.ndarray


def _adjacent_to(lattice: Lattice, code: str) -> np.ndarray:
    """``(ny, nx)`` mask of sections with an edge on a corridor of ``code``."""
    ny, nx = lattice.shape
    mask = np.zeros((ny, nx), dtype=bool)
    for c in lattice.corridors:
        if c.code != code:
            continue
        if c.axis == "row":
            mask[max(c.index - 1, 0):c.index + 1, :] = True
        else:
            mask[:, max(c.index - 1, 0):c.index + 1] = True
    return mask


def classify(
    district: DistrictLayout, lattice: Lattice, towns: list[Town], rng: np.random.Generator
) -> Landscape:
    """Decide the current and planned use of every usable section."""
    ny, nx = lattice.shape
    flat = np.flatnonzero(lattice.usable.ravel())
    nodes = lattice.nodes
    centre_grid = (nodes[:-1, :-1] + nodes[:-1, 1:] + nodes[1:, 1:] + nodes[1:, :-1]) / 4
    centre = centre_grid.reshape(-1, 2)[flat]
    x, y = centre.T
    n = len(flat)

    commune = np.full(n, -1)
    for k, shape in enumerate(district.commune_shapes):
        shapely.prepare(shape)
        commune[shapely.contains_xy(shape, x, y) & (commune < 0)] = k
    outside = np.flatnonzero(commune < 0)  # centre outside the district: nearest commune
    if len(outside):
        tree = shapely.STRtree(list(district.commune_shapes))
        found = tree.query_nearest(shapely.points(centre[outside]), all_matches=False)
        commune[outside[found[0]]] = found[1]
    kinds = np.array([c.kind for c in district.communes])
    commune_centre = np.array([c.centre for c in district.communes])

    wobble = SmoothNoise(rng, (2_500.0, 900.0))(x, y)
    kind = np.full(n, -1)
    town = np.full(n, -1)
    best = np.full(n, np.inf)
    for t, tw in enumerate(towns):
        d = np.hypot(x - tw.centre[0], y - tw.centre[1])
        ok = (d < tw.radius * (1 + 0.25 * wobble)) & np.isin(commune, tw.communes) & (d < best)
        town[ok] = t
        best[ok] = d[ok]
    kind[town >= 0] = TOWN

    on_road = _adjacent_to(lattice, "DGT").ravel()[flat]
    on_river = _adjacent_to(lattice, "SON").ravel()[flat]
    near_river = on_river | _near(lattice, "SON", 2).ravel()[flat]
    to_centre = np.hypot(*(centre - commune_centre[commune]).T)
    rural = (kinds[commune] == "xa") & (kind < 0)
    # a village round each commune centre, and houses strung along the main roads
    core = to_centre < 750.0 * (1 + 0.3 * wobble)
    ribbon = on_road & (to_centre < 2500.0) & (wobble > -0.3)
    village = rural & (core | ribbon)
    kind[village] = VILLAGE

    settle = np.vstack([commune_centre, [t.centre for t in towns]])
    d_settle = np.min(np.hypot(x[:, None] - settle[:, 0], y[:, None] - settle[:, 1]), axis=1)
    field = SmoothNoise(rng, (9_000.0, 3_500.0, 1_400.0))(x, y)
    score = field + d_settle / 6_000.0 - 0.8 * near_river
    rest = kind < 0
    share = _FARM_SHARE.get(district.code, 0.55)
    cut = np.quantile(score[rest], share) if rest.any() else 0.0
    kind[rest & (score <= cut)] = FARM
    kind[kind < 0] = FOREST

    code = np.empty(n, dtype=object)
    urban = np.array([t.urban for t in towns])
    code[kind == TOWN] = np.where(urban[town[kind == TOWN]], "ODT", "ONT")
    code[kind == VILLAGE] = "ONT"
    farm = kind == FARM
    code[farm] = np.where(near_river[farm] & (rng.random(farm.sum()) < 0.85), "LUC", "CLN")
    forest = kind == FOREST
    hills = SmoothNoise(rng, (6_000.0, 2_000.0))(x, y)
    fcode = np.where(hills[forest] > 0.35, "RPH", "RSX").astype(object)
    if district.code in _SPECIAL_FOREST and forest.any():
        remote = score[forest] > np.quantile(score[forest], 0.55)
        fcode[remote] = "RDD"
    code[forest] = fcode

    priority = d_settle * np.exp(0.5 * SmoothNoise(rng, (4_000.0, 1_500.0))(x, y))
    planned = _planned(code, kind, centre, towns, wobble, on_road, rng)
    return Landscape(flat=flat, centre=centre, commune=commune, kind=kind, town=town,
                     code=code, priority=priority, planned=planned)


def _near(lattice: Lattice, code: str, reach: int) -> np.ndarray:
    ny, nx = lattice.shape
    mask = np.zeros((ny, nx), dtype=bool)
    for c in lattice.corridors:
        if c.code != code:
            continue
        if c.axis == "row":
            mask[max(c.index - reach, 0):c.index + reach, :] = True
        else:
            mask[:, max(c.index - reach, 0):c.index + reach] = True
    return mask


def _planned(
    code: np.ndarray, kind: np.ndarray, centre: np.ndarray, towns: list[Town],
    wobble: np.ndarray, on_road: np.ndarray, rng: np.random.Generator,
) -> np.ndarray:
    """Planned use 2021–2030: current use, plus town growth and an industrial cluster."""
    planned = code.copy()
    x, y = centre.T
    n = len(code)
    for tw in towns:
        d = np.hypot(x - tw.centre[0], y - tw.centre[1])
        core = (kind == 0) & (d < 0.35 * tw.radius) & (rng.random(n) < 0.3)
        planned[core] = "TMD"
        ring = (kind != 0) & (kind != 3) & (d < tw.radius + 1500.0 * (1 + 0.3 * wobble))
        draw = rng.random(n)
        grow = np.where(draw < 0.7, "ODT" if tw.urban else "ONT",
                        np.where(draw < 0.88, "TMD", "DKV"))
        planned[ring] = grow[ring]
    # one industrial cluster (SKN) on a main road, a few kilometres out of the seat
    seat = towns[0].centre
    d = np.hypot(x - seat[0], y - seat[1])
    site = np.flatnonzero((kind == 2) & on_road & (d > 3_000.0) & (d < 9_000.0))
    if len(site):
        first = site[rng.integers(len(site))]
        near = np.hypot(x - x[first], y - y[first])
        cluster = (near < 1.6 * SECTION) & (kind == 2)
        planned[cluster] = "SKN"
    return planned
