"""The cadastral parcels of a district: sections cut into lots, exactly as many as asked.

The lattice sections are cut according to what they are (town blocks, village lots,
fields, forest plots) and the lots kept where they lie inside a commune; road and
river pieces are added between the sections; :mod:`~gisportal.demo.survey` decides how
many of each and which, :mod:`~gisportal.demo.attributes` what they record. Parcels
never cross a commune boundary: a half-metre strip along it stays unsurveyed.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from gisportal.base.errors import UsageError

from .attributes import empty_parcel_frame, parcel_frame
from .corridors import corridor_pieces
from .landscape import FARM, FOREST, TOWN, VILLAGE, Landscape, Town
from .lattice import Lattice
from .lots import CROSS, STREET, TRACK, cut_farm, cut_forest, cut_town, cut_village, section_sizes
from .outline import DistrictLayout
from .strips import Cuts, Subdivision, concat_cuts, subdivide
from .survey import (
    EFFICIENCY,
    INFRA,
    Candidates,
    choose_sections,
    field_m2,
    pick,
    plan_quotas,
    section_estimates,
)

__all__ = ["generate_parcels"]

#: strip left unsurveyed along commune boundaries (metres, each side)
EDGE = 0.5
#: densest farmland: fields of 25 m × 40 m, the 1 000 m² floor
_MAX_DENSITY = 36.0


def generate_parcels(
    district: DistrictLayout,
    lattice: Lattice,
    land: Landscape,
    towns: list[Town],
    n: int,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """Exactly ``n`` parcels for ``district`` (metres of ``district.crs``).

    Raises
    ------
    UsageError
        When ``n`` exceeds what the district's area can hold at cadastral lot sizes.
    """
    if n <= 0:
        return empty_parcel_frame(district.crs)
    corners = lattice.corners.reshape(-1, 4, 2)[land.flat]
    areas = shapely.area(shapely.polygons(corners))
    city = any(c.kind == "phuong" for c in district.communes)
    inner = [_prepared(s.buffer(-EDGE, join_style="mitre")) for s in district.commune_shapes]

    # how each section is cut: as what it is, except that when a district is asked for
    # more parcels than its farmland holds even in 1 000 m² fields, forest next to the
    # villages is cut into household plots (as production forest often is)
    style = land.kind.copy()
    density = 1.0
    margin = 1.3
    for _attempt in range(10):
        est = section_estimates(areas, style, density)
        capacity = {k: est[style == k].sum() for k in (TOWN, VILLAGE, FARM, FOREST)}
        capacity[INFRA] = 0.012 * n  # corridors: whatever there is, counted below
        quota = plan_quotas(n, capacity, city)
        if quota[FARM] > capacity[FARM]:
            if density < _MAX_DENSITY:
                density = min(_MAX_DENSITY, density * quota[FARM] / max(capacity[FARM], 1) * 1.1)
                continue
            forest = np.flatnonzero(style == FOREST)
            if len(forest):
                # production forest first; special-use forest (national parks) last
                rank = np.select([land.code[forest] == "RSX", land.code[forest] == "RPH"],
                                 [0, 1], 2)
                forest = forest[np.lexsort((land.priority[forest], rank))]
                per = areas[forest[0]] / field_m2(density) * EFFICIENCY
                extra = int(np.ceil((quota[FARM] - capacity[FARM]) * 1.2 / per)) + 1
                style[forest[:extra]] = FARM
                continue
        chosen = choose_sections(land, style, towns, est, quota, margin)
        pool = _candidates(district, lattice, land, style, chosen, corners, inner, density,
                           rng)
        picked = pick(pool, district, land, towns, n, rng)
        if picked is not None:
            break
        margin *= 1.6
        density = min(_MAX_DENSITY, density * 1.3)
    else:
        raise UsageError(
            f"{n} parcels do not fit in district {district.code}",
            where=f"district {district.code} ({district.boundary.area / 1e6:.0f} km²)",
            fix="ask for fewer parcels per district",
        )
    return parcel_frame(district, land, pool, picked, rng)


def _prepared(geom: shapely.Geometry) -> shapely.Geometry:
    shapely.prepare(geom)
    return geom


def _candidates(
    district: DistrictLayout,
    lattice: Lattice,
    land: Landscape,
    style: np.ndarray,
    chosen: np.ndarray,
    corners: np.ndarray,
    inner: list[shapely.Geometry],
    density: float,
    rng: np.random.Generator,
) -> Candidates:
    """Cut the chosen sections, keep what lies inside a commune, add corridor pieces."""
    cut_by = {TOWN: cut_town, VILLAGE: cut_village, FOREST: cut_forest,
              FARM: lambda r, s: cut_farm(r, s, density)}
    parts: list[Cuts] = []
    offsets: list[int] = []
    batch: list[np.ndarray] = []
    start = 0
    for k in (TOWN, VILLAGE, FARM, FOREST):
        idx = chosen[style[chosen] == k]
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

    klass = style[lot_section]
    commune = _commune_of(district, geometry)
    # forest plots and streets are clipped at commune boundaries, not dropped:
    # dropping them would leave large holes or cut a town's streets
    clip = (klass == FOREST) | np.isin(kind, (STREET, CROSS, TRACK))
    keep, geometry = _inside(geometry, commune, inner, clip=clip)
    lots = Candidates(geometry=geometry[keep], klass=klass[keep], kind=kind[keep],
                 section=lot_section[keep], commune=commune[keep],
                 code=np.full(int(keep.sum()), None, dtype=object))

    pieces, codes = corridor_pieces(lattice, sub, batch_of, rng)
    pieces, codes, piece_commune = _clip_to_communes(pieces, codes, inner)
    return Candidates(
        geometry=np.concatenate([lots.geometry, pieces]),
        klass=np.concatenate([lots.klass, np.full(len(pieces), INFRA)]),
        kind=np.concatenate([lots.kind, np.full(len(pieces), STREET, dtype=np.int8)]),
        section=np.concatenate([lots.section, np.full(len(pieces), -1)]),
        commune=np.concatenate([lots.commune, piece_commune]),
        code=np.concatenate([lots.code, codes]),
    )


def _merge_cross_streets(
    polygons: np.ndarray, cuts: Cuts, lot_section: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _inside(
    geometry: np.ndarray, commune: np.ndarray, inner: list[shapely.Geometry], clip: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
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
    """The largest polygon of each geometry (an empty polygon when there is none)."""
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        polys = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
        out[i] = max(polys, key=lambda p: p.area) if polys else shapely.Polygon()
    return out


def _clip_to_communes(
    pieces: np.ndarray, codes: np.ndarray, inner: list[shapely.Geometry]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


