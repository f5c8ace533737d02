"""How much of each kind of land to survey, and which parcels make the count.

A requested parcel count is shared out over towns, villages, farmland, forest and
road/river pieces; the shares bend to what each kind of land in the district can
hold. Within each kind, what lies nearest the centres is surveyed first: towns come
out dense and complete, outlying land in patches, as in a cadastre still being made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from .landscape import FARM, FOREST, TOWN, VILLAGE, Landscape, Town
from .outline import DistrictLayout
from .rand import SmoothNoise

__all__ = ["INFRA", "Candidates", "choose_sections", "field_m2", "pick", "plan_quotas",
           "section_estimates"]

#: class of road and river pieces, after TOWN, VILLAGE, FARM and FOREST
INFRA = 4
#: square metres per parcel, including streets, measured on generated sections
_TOWN_M2, _VILLAGE_M2, _FOREST_PER_SECTION = 320.0, 670.0, 1.5
#: share of the lots lost along commune boundaries and district edges
EFFICIENCY = 0.8


@dataclass
class Candidates:
    """Parcels cut and clipped, before the final pick (aligned arrays).

    Attributes
    ----------
    geometry
        Polygons.
    klass
        ``TOWN``, ``VILLAGE``, ``FARM``, ``FOREST`` or ``INFRA``.
    kind
        Lot tag from :mod:`~gisportal.demo.lots` (plot, big plot, street...).
    section
        Landscape index of the section it was cut from (``-1`` for corridor pieces).
    commune
        Commune index.
    code
        Land-use code already known (corridor pieces), else None.
    """

    geometry: np.ndarray
    klass: np.ndarray
    kind: np.ndarray
    section: np.ndarray
    commune: np.ndarray
    code: np.ndarray


def field_m2(density: float) -> float:
    """Mean field area (m²) when farmland is cut ``density`` times finer than usual."""
    shrink = np.sqrt(max(density, 1.0))
    return (25.0 + max(25.0, 150.0 / shrink)) / 2 * (40.0 + max(40.0, 150.0 / shrink)) / 2


def _shares(city: bool) -> dict[int, float]:
    town = 0.55 if city else 0.38
    return {INFRA: 0.012, TOWN: town, VILLAGE: 0.14, FOREST: 0.05,
            FARM: 1.0 - town - 0.14 - 0.05 - 0.012}


def section_estimates(areas: np.ndarray, klass: np.ndarray, density: float) -> np.ndarray:
    """Expected number of parcels from each section once cut and clipped."""
    est = np.zeros(len(areas))
    est[klass == TOWN] = areas[klass == TOWN] / _TOWN_M2
    est[klass == VILLAGE] = areas[klass == VILLAGE] / _VILLAGE_M2
    est[klass == FARM] = areas[klass == FARM] / field_m2(density)
    est[klass == FOREST] = _FOREST_PER_SECTION
    return est * EFFICIENCY


def _wants(n: int, city: bool) -> dict[int, int]:
    """Split ``n`` over the kinds of land by the usual shares."""
    want = {k: int(np.floor(n * s)) for k, s in _shares(city).items()}
    want[TOWN] += n - sum(want.values())  # towns are surveyed first
    return want


def plan_quotas(n: int, capacity: dict[int, float], city: bool) -> dict[int, int]:
    """Split ``n`` over the kinds of land, moving what a kind cannot hold (by the
    estimates) to others: this decides how many sections to cut, and how finely."""
    want = _wants(n, city)
    quota = {k: min(want[k], int(capacity[k])) for k in want}
    short = n - sum(quota.values())
    for k in (FARM, VILLAGE, TOWN, FOREST, INFRA):
        extra = min(short, int(capacity[k]) - quota[k])
        quota[k] += max(extra, 0)
        short -= max(extra, 0)
    quota[FARM] += short  # whatever is left: farmland gets denser
    return quota


def choose_sections(land: Landscape, style: np.ndarray, towns: list[Town], est: np.ndarray,
                    quota: dict[int, int], margin: float) -> np.ndarray:
    """Sections to cut: per kind, nearest the centres first, until the quota (times
    ``margin``) is covered."""
    order_key = land.priority.copy()
    for k, _ in enumerate(towns):
        mine = land.town == k
        order_key[mine] = np.hypot(*(land.centre[mine] - towns[k].centre).T)
    chosen = []
    for k in (TOWN, VILLAGE, FARM, FOREST):
        idx = np.flatnonzero(style == k)
        if not len(idx) or quota[k] <= 0:
            continue
        idx = idx[np.argsort(order_key[idx], kind="stable")]
        cum = np.cumsum(est[idx])
        take = int(np.searchsorted(cum, quota[k] * margin)) + 2
        chosen.append(idx[:take])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def pick(pool: Candidates, district: DistrictLayout, land: Landscape, towns: list[Town],
         n: int, rng: np.random.Generator) -> np.ndarray | None:
    """Indices of exactly ``n`` candidates, or None when fewer were cut.

    The usual shares apply again, now to what was actually cut: a town holding more
    lots than estimated is surveyed in full rather than leaving holes for more fields.
    """
    kinds = (INFRA, TOWN, VILLAGE, FARM, FOREST)
    have = {k: int((pool.klass == k).sum()) for k in kinds}
    if sum(have.values()) < n:
        return None
    want = _wants(n, any(c.kind == "phuong" for c in district.communes))
    take = {k: min(want[k], have[k]) for k in kinds}
    short = n - sum(take.values())
    for k in (FARM, VILLAGE, TOWN, FOREST, INFRA):
        extra = min(short, have[k] - take[k])
        take[k] += extra
        short -= extra

    centroid = shapely.get_coordinates(shapely.centroid(pool.geometry))
    town_xy = np.array([t.centre for t in towns])
    order_key = np.zeros(len(pool.geometry))
    sec = pool.section
    lots = sec >= 0
    town = lots & (land.town[np.maximum(sec, 0)] >= 0)
    # distance to the nearest point, not the centroid: a long street reaching the
    # centre is surveyed with the blocks it serves
    order_key[town] = shapely.distance(
        shapely.points(town_xy[land.town[sec[town]]]), pool.geometry[town]
    )
    village = lots & (pool.klass == VILLAGE)
    centres = np.array([c.centre for c in district.communes])
    order_key[village] = np.hypot(*(centroid[village] - centres[pool.commune[village]]).T)
    rural = lots & ((pool.klass == FARM) | (pool.klass == FOREST))
    order_key[rural] = land.priority[sec[rural]]
    infra = ~lots
    order_key[infra] = np.min(np.hypot(centroid[infra, 0, None] - town_xy[:, 0],
                                       centroid[infra, 1, None] - town_xy[:, 1]), axis=1)
    # a wobble of the survey front keeps towns from coming out as perfect discs
    wobble = SmoothNoise(rng, (1_800.0, 700.0))(centroid[:, 0], centroid[:, 1])
    built = town | village
    order_key[built] *= np.exp(0.15 * wobble[built])
    picked = []
    for k, count in take.items():
        idx = np.flatnonzero(pool.klass == k)
        idx = idx[np.argsort(order_key[idx], kind="stable")]
        picked.append(idx[:count])
    return np.sort(np.concatenate(picked))
