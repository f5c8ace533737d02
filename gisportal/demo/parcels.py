"""The cadastral parcels of a district: exactly as many as asked, towns surveyed first.

The lattice sections are cut according to what they are (town blocks, village lots,
fields, forest plots); a share of the requested count goes to each kind of land, and
within each kind the parcels nearest the centres are taken first, so towns come out
dense and outlying land patchily surveyed, as in a real cadastre under construction.
Parcels never cross a commune boundary: a half-metre strip along it stays unsurveyed.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from ..errors import UsageError
from .corridors import corridor_pieces
from .landscape import FARM, FOREST, TOWN, VILLAGE, Landscape, Town
from .lattice import Lattice
from .lots import BIG, CROSS, PLOT, STREET, TRACK, cut_farm, cut_forest, cut_town, cut_village
from .lots import section_sizes
from .names import organisation_owner, person_names
from .outline import DistrictLayout
from .sheets import number_parcels
from .strips import Cuts, Subdivision, concat_cuts, subdivide

__all__ = ["PARCEL_COLUMNS", "generate_parcels"]

PARCEL_COLUMNS = ["commune", "sheet", "parcel", "land_use", "area_m2", "owner", "address",
                  "geometry"]
INFRA = 4  # class of road and river pieces, after TOWN, VILLAGE, FARM, FOREST
#: strip left unsurveyed along commune boundaries (metres, each side)
EDGE = 0.5
#: square metres per parcel, including streets, measured on generated sections
_TOWN_M2, _VILLAGE_M2, _FOREST_PER_SECTION = 320.0, 670.0, 1.5
#: share of the survey lost along commune boundaries and district edges
_EFFICIENCY = 0.8


def _field_m2(density: float) -> float:
    shrink = np.sqrt(max(density, 1.0))
    return (25.0 + max(25.0, 150.0 / shrink)) / 2 * (40.0 + max(40.0, 150.0 / shrink)) / 2


def _shares(city: bool) -> dict[int, float]:
    town = 0.55 if city else 0.38
    return {INFRA: 0.012, TOWN: town, VILLAGE: 0.14, FOREST: 0.05,
            FARM: 1.0 - town - 0.14 - 0.05 - 0.012}


@dataclass
class _Pool:
    """Candidate parcels before the final pick."""

    geometry: np.ndarray
    klass: np.ndarray
    kind: np.ndarray
    section: np.ndarray  # landscape index, -1 for corridor pieces
    commune: np.ndarray
    code: np.ndarray  # corridor code, or None for lots


def _per_section(areas: np.ndarray, klass: np.ndarray, density: float) -> np.ndarray:
    est = np.zeros(len(areas))
    est[klass == TOWN] = areas[klass == TOWN] / _TOWN_M2
    est[klass == VILLAGE] = areas[klass == VILLAGE] / _VILLAGE_M2
    est[klass == FARM] = areas[klass == FARM] / _field_m2(density)
    est[klass == FOREST] = _FOREST_PER_SECTION
    return est * _EFFICIENCY


def _quotas(n: int, capacity: dict[int, float], city: bool) -> dict[int, int]:
    """Split ``n`` over the kinds of land, moving what a kind cannot hold to others."""
    share = _shares(city)
    want = {k: int(np.floor(n * s)) for k, s in share.items()}
    want[FARM] += n - sum(want.values())
    quota = {k: min(want[k], int(capacity[k])) for k in want}
    short = n - sum(quota.values())
    for k in (FARM, VILLAGE, TOWN, FOREST, INFRA):
        extra = min(short, int(capacity[k]) - quota[k])
        quota[k] += max(extra, 0)
        short -= max(extra, 0)
    quota[FARM] += short  # whatever is left: farmland gets denser
    return quota


def generate_parcels(
    district: DistrictLayout,
    lattice: Lattice,
    land: Landscape,
    towns: list[Town],
    n: int,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """Exactly ``n`` parcels for ``district`` (EPSG:5899 metres).

    Raises
    ------
    UsageError
        When ``n`` exceeds what the district's area can hold at cadastral lot sizes.
    """
    crs = "EPSG:5899"
    if n <= 0:
        return gpd.GeoDataFrame({c: [] for c in PARCEL_COLUMNS[:-1]},
                                geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    corners = lattice.corners.reshape(-1, 4, 2)[land.flat]
    areas = shapely.area(shapely.polygons(corners))
    city = any(c.kind == "phuong" for c in district.communes)
    inner = [_prepared(s.buffer(-EDGE, join_style="mitre")) for s in district.commune_shapes]

    density = 1.0
    margin = 1.3
    for _attempt in range(6):
        est = _per_section(areas, land.kind, density)
        capacity = {k: est[land.kind == k].sum() for k in (TOWN, VILLAGE, FARM, FOREST)}
        capacity[INFRA] = 0.012 * n  # corridors: whatever there is, counted below
        quota = _quotas(n, capacity, city)
        if quota[FARM] > capacity[FARM] and density < 12:
            density = min(12.0, density * quota[FARM] / max(capacity[FARM], 1.0) * 1.1)
            continue
        chosen = _choose_sections(land, towns, est, quota, margin)
        pool = _candidates(district, lattice, land, chosen, corners, inner, density, rng)
        picked = _pick(pool, district, land, towns, quota, n)
        if picked is not None:
            break
        margin *= 1.6
        density *= 1.3
    else:
        raise UsageError(
            f"{n} parcels do not fit in district {district.code}",
            where=f"district {district.code} ({district.boundary.area / 1e6:.0f} km²)",
            fix="ask for fewer parcels per district",
        )
    return _attributes(district, land, pool, picked, rng)


def _prepared(geom: shapely.Geometry) -> shapely.Geometry:
    shapely.prepare(geom)
    return geom


def _choose_sections(land: Landscape, towns: list[Town], est: np.ndarray,
                     quota: dict[int, int], margin: float) -> np.ndarray:
    """Sections to cut: per kind, nearest the centres first, until the quota is covered."""
    order_key = land.priority.copy()
    for k, _ in enumerate(towns):
        mine = land.town == k
        order_key[mine] = np.hypot(*(land.centre[mine] - towns[k].centre).T)
    chosen = []
    for k in (TOWN, VILLAGE, FARM, FOREST):
        idx = np.flatnonzero(land.kind == k)
        if not len(idx) or quota[k] <= 0:
            continue
        idx = idx[np.argsort(order_key[idx], kind="stable")]
        cum = np.cumsum(est[idx])
        take = int(np.searchsorted(cum, quota[k] * margin)) + 2
        chosen.append(idx[:take])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _candidates(district, lattice, land, chosen, corners, inner, density, rng) -> _Pool:
    """Cut the chosen sections, keep what lies inside a commune, add corridor pieces."""
    cut_by = {TOWN: cut_town, VILLAGE: cut_village, FOREST: cut_forest,
              FARM: lambda r, s: cut_farm(r, s, density)}
    parts: list[Cuts] = []
    offsets: list[int] = []
    batch: list[np.ndarray] = []
    start = 0
    for k in (TOWN, VILLAGE, FARM, FOREST):
        idx = chosen[land.kind[chosen] == k]
        if not len(idx):
            continue
        parts.append(cut_by[k](rng, section_sizes(corners[idx])))
        offsets.append(start)
        batch.append(idx)
        start += len(idx)
    ny, nx = lattice.shape
    batch_of = np.full((ny, nx), -1, dtype=np.int64)
    sub: Subdivision | None = None
    if parts:
        sections = np.concatenate(batch)
        cuts = concat_cuts(parts, offsets)
        sub = subdivide(corners[sections], cuts)
        batch_of.ravel()[land.flat[sections]] = np.arange(len(sections))
        lot_section = sections[cuts.section[cuts.strip]]
        geometry, kind, lot_section = _merge_cross_streets(sub.polygons, cuts, lot_section)
    else:
        geometry = np.zeros(0, dtype=object)
        kind = np.zeros(0, dtype=np.int8)
        lot_section = np.zeros(0, dtype=np.int64)

    klass = land.kind[lot_section]
    commune = _commune_of(district, geometry)
    # forest plots and streets are clipped at commune boundaries, not dropped:
    # dropping them would leave large holes or cut a town's streets
    clip = (klass == FOREST) | np.isin(kind, (STREET, CROSS, TRACK))
    keep, geometry = _inside(geometry, commune, inner, clip=clip)
    lots = _Pool(geometry=geometry[keep], klass=klass[keep], kind=kind[keep],
                 section=lot_section[keep], commune=commune[keep],
                 code=np.full(int(keep.sum()), None, dtype=object))

    pieces, codes = corridor_pieces(lattice, sub, batch_of, rng)
    pieces, codes, piece_commune = _clip_to_communes(pieces, codes, inner)
    return _Pool(
        geometry=np.concatenate([lots.geometry, pieces]),
        klass=np.concatenate([lots.klass, np.full(len(pieces), INFRA)]),
        kind=np.concatenate([lots.kind, np.full(len(pieces), STREET, dtype=np.int8)]),
        section=np.concatenate([lots.section, np.full(len(pieces), -1)]),
        commune=np.concatenate([lots.commune, piece_commune]),
        code=np.concatenate([lots.code, codes]),
    )


def _merge_cross_streets(polygons: np.ndarray, cuts: Cuts, lot_section: np.ndarray):
    """Join the two halves of each cross street across a block (back-to-back rows).

    Blocks are two rows of lots; the cross-street piece of the lower row and the one
    right above it become one parcel, as a lane between two streets is.
    """
    cross = np.flatnonzero(cuts.kind == CROSS)
    if not len(cross):
        return polygons, cuts.kind.copy(), lot_section
    strip = cuts.strip[cross]
    # the upper half sits in the next strip of the same section, on the very same s
    key = 4.0 * strip + cuts.b0[cross]
    want = 4.0 * (strip + 1) + cuts.b0[cross]
    order = np.argsort(key, kind="stable")
    pos = np.minimum(np.searchsorted(key[order], want), len(order) - 1)
    partner = order[pos]
    nxt = np.minimum(strip + 1, len(cuts.section) - 1)
    ok = (key[partner] == want) & (cuts.section[nxt] == cuts.section[strip])
    lower, upper = cross[ok], cross[partner[ok]]
    merged = shapely.union(polygons[lower], polygons[upper])
    out = polygons.copy()
    out[lower] = merged
    drop = np.zeros(len(polygons), dtype=bool)
    drop[upper] = True
    return out[~drop], cuts.kind[~drop], lot_section[~drop]


def _commune_of(district: DistrictLayout, geometry: np.ndarray) -> np.ndarray:
    """Commune holding each geometry's centroid (``-1`` outside the district)."""
    commune = np.full(len(geometry), -1, dtype=np.int64)
    if not len(geometry):
        return commune
    xy = shapely.get_coordinates(shapely.centroid(geometry))
    for k, shape in enumerate(district.commune_shapes):
        hit = shapely.contains_xy(_prepared(shape), xy[:, 0], xy[:, 1])
        commune[hit & (commune < 0)] = k
    return commune


def _inside(geometry: np.ndarray, commune: np.ndarray, inner: list, clip: np.ndarray):
    """Which lots lie inside their commune's inner strip; clip the ``clip`` ones that
    do not, keeping them when at least a quarter remains."""
    keep = np.zeros(len(geometry), dtype=bool)
    out = geometry.copy()
    for k, shape in enumerate(inner):
        mine = np.flatnonzero(commune == k)
        if not len(mine):
            continue
        ok = shapely.contains_properly(shape, geometry[mine])
        keep[mine[ok]] = True
        cut = mine[~ok & clip[mine]]
        if len(cut):
            parts = _largest_part(shapely.intersection(geometry[cut], shape))
            good = shapely.area(parts) >= 0.25 * shapely.area(geometry[cut])
            out[cut[good]] = parts[good]
            keep[cut[good]] = True
    return keep, out


def _largest_part(geoms: np.ndarray) -> np.ndarray:
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        polys = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
        out[i] = max(polys, key=lambda p: p.area) if polys else shapely.Polygon()
    return out


def _clip_to_communes(pieces: np.ndarray, codes: np.ndarray, inner: list):
    """Split corridor pieces at commune boundaries (one part per commune)."""
    if not len(pieces):
        empty = np.zeros(0, dtype=object)
        return empty, empty, np.zeros(0, dtype=np.int64)
    valid = shapely.is_valid(pieces)
    pieces, codes = pieces[valid], codes[valid]
    tree = shapely.STRtree(pieces)
    geoms, out_codes, out_commune = [], [], []
    for k, shape in enumerate(inner):
        hit = tree.query(shape, predicate="intersects")
        if not len(hit):
            continue
        hit = np.sort(hit)
        whole = shapely.contains_properly(shape, pieces[hit])
        parts = np.where(whole, pieces[hit], None)
        cut = ~whole
        if cut.any():
            parts[cut] = _largest_part(shapely.intersection(pieces[hit[cut]], shape))
        good = shapely.area(parts) >= 100.0
        geoms.append(parts[good])
        out_codes.append(codes[hit[good]])
        out_commune.append(np.full(int(good.sum()), k))
    return (np.concatenate(geoms), np.concatenate(out_codes),
            np.concatenate(out_commune).astype(np.int64))


def _pick(pool: _Pool, district: DistrictLayout, land: Landscape, towns: list[Town],
          quota: dict[int, int], n: int):
    """Indices of exactly ``n`` candidates by quota and survey order, or None if short."""
    have = {k: int((pool.klass == k).sum()) for k in quota}
    if sum(have.values()) < n:
        return None
    take = {k: min(quota[k], have[k]) for k in quota}
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
    picked = []
    for k, count in take.items():
        idx = np.flatnonzero(pool.klass == k)
        idx = idx[np.argsort(order_key[idx], kind="stable")]
        picked.append(idx[:count])
    return np.sort(np.concatenate(picked))


# --------------------------------------------------------------------------- attributes

_BIG_TOWN = (["DGD", "TON", "DYT", "TMD", "DKV", "TSC"], [0.3, 0.2, 0.1, 0.25, 0.1, 0.05])
_CODES = {
    ("ODT", PLOT): (["ODT", "TMD", "ODT+CLN"], [0.93, 0.05, 0.02]),
    ("ONT", PLOT): (["ONT", "ONT+CLN", "CLN", "TMD"], [0.58, 0.25, 0.14, 0.03]),
    ("ONT", BIG): (["CLN", "DGD", "TON", "ONT+CLN", "DYT", "NTD"],
                   [0.45, 0.15, 0.15, 0.15, 0.05, 0.05]),
    ("CLN", PLOT): (["CLN", "HNK", "NTS", "LUK", "NKH", "NTD"], [0.72, 0.22, 0.02, 0.02, 0.01,
                                                                 0.01]),
    ("CLN", BIG): (["ONT+CLN", "ONT"], [0.8, 0.2]),
    ("LUC", PLOT): (["LUC", "HNK", "LUK", "CLN", "NTS"], [0.72, 0.14, 0.06, 0.06, 0.02]),
    ("LUC", BIG): (["ONT+CLN", "ONT"], [0.8, 0.2]),
    ("LUC", TRACK): (["DTL", "DGT"], [0.5, 0.5]),
}


def _land_use(pool: _Pool, land: Landscape, picked: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
    code = np.empty(len(picked), dtype=object)
    kind = pool.kind[picked]
    sec = pool.section[picked]
    base = np.where(sec >= 0, land.code[np.maximum(sec, 0)], None)
    fixed = pool.code[picked]
    code[fixed != None] = fixed[fixed != None]  # noqa: E711 (elementwise)
    lots = fixed == None  # noqa: E711
    klass = pool.klass[picked]
    street = lots & np.isin(kind, (STREET, CROSS, TRACK))
    code[street] = "DGT"
    forest = lots & (klass == FOREST)
    code[forest] = base[forest]
    town = lots & (klass == TOWN) & ~street
    big_town = town & (kind == BIG)
    code[big_town] = rng.choice(_BIG_TOWN[0], int(big_town.sum()), p=_BIG_TOWN[1])
    for (main, tag), (choices, weights) in _CODES.items():
        sel = lots & (base == main) & (kind == tag) & ~big_town & ~forest
        if tag == TRACK:
            sel = lots & (base == main) & (kind == TRACK)
        if sel.any():
            code[sel] = rng.choice(choices, int(sel.sum()), p=weights)
    left = lots & np.array([c is None for c in code])
    code[left] = base[left]
    return code


def _attributes(district: DistrictLayout, land: Landscape, pool: _Pool, picked: np.ndarray,
                rng: np.random.Generator) -> gpd.GeoDataFrame:
    geometry = pool.geometry[picked]
    commune = pool.commune[picked]
    klass = pool.klass[picked]
    code = _land_use(pool, land, picked, rng)

    scale = np.where(np.isin(klass, (TOWN, VILLAGE)), 0, np.where(klass == FOREST, 2, 1))
    centroid = shapely.get_coordinates(shapely.centroid(geometry))
    origin = np.array([[s.bounds[0], s.bounds[3]] for s in district.commune_shapes])
    sheet, number = number_parcels(commune, scale, centroid, origin)

    true_area = shapely.area(geometry)
    noisy = rng.random(len(picked)) < 0.04
    declared = true_area * np.where(noisy, 1.0 + rng.uniform(-0.005, 0.005, len(picked)), 1.0)
    declared = np.round(declared, 1)

    specs = district.communes
    short = district.seed.name.split(" ", 1)[1] if " " in district.seed.name else ""
    short = short.removeprefix("phố ")
    owners = person_names(rng, len(picked), kho_share=0.1)
    owner = np.empty(len(picked), dtype=object)
    address = np.empty(len(picked), dtype=object)
    sec = pool.section[picked]
    company = rng.random(len(picked)) < 0.5
    for i in range(len(picked)):
        spec = specs[commune[i]]
        c = code[i]
        org = organisation_owner(c, spec.name, spec.place, short)
        owner[i] = org if org is not None and not (c == "RSX" and company[i]) else owners[i]
        s = sec[i]
        if s < 0:
            address[i] = None
        elif klass[i] == FOREST:
            address[i] = f"Tiểu khu {100 + s % 600}, {spec.name}"
        elif spec.kind == "xa":
            address[i] = f"Thôn {1 + s % 9}, {spec.name}"
        else:
            address[i] = f"Tổ dân phố {1 + s % 12}, {spec.name}"

    frame = gpd.GeoDataFrame(
        {
            "commune": np.array([specs[k].code for k in commune], dtype=object),
            "sheet": sheet,
            "parcel": number,
            "land_use": code,
            "area_m2": declared,
            "owner": owner,
            "address": address,
        },
        geometry=gpd.GeoSeries(geometry, crs="EPSG:5899"),
        crs="EPSG:5899",
    )
    return frame.sort_values(["commune", "sheet", "parcel"], kind="stable").reset_index(
        drop=True)
