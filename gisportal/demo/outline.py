"""The synthetic province: its outline, districts and communes as polygons.

Built once per seed (and cached) from one cell mesh over the province box, in the
province's CRS: mainland districts are grown first (never into the sea, see
:mod:`~gisportal.demo.coast`), islands round their own anchors at sea, then communes
inside each district; commune polygons are dissolved from cells and simplified
together as one coverage, and districts and the outline are unions of communes, so
every level nests and tiles exactly. :meth:`DistrictLayout.in_crs` gives a district
in the zone its offices survey in (TM-3 108°30′ for former Đắk Nông and Bình Thuận),
where its parcels and plan are then made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

from .cells import cell_polygons, jittered_mesh
from .coast import at_sea, sea_mask
from .communes import CommuneSpec, grow_communes
from .districts import anchors_xy, box_mask, box_polygon, grow_districts, grow_island
from .rand import rng_for
from .seeds import DistrictSeed, districts_on, province_bbox_lonlat, province_crs, survey_crs

__all__ = ["DistrictLayout", "ProvinceLayout", "province_layout", "province_outline"]

#: mesh step: fine enough for small wards, coarse enough to build the province in seconds
MESH_SPACING = 500.0
#: mesh beyond the province box (the districts never reach it: see BOX_INSET)
MESH_MARGIN = 4 * MESH_SPACING
#: simplification of the cell zigzags, a fraction of the mesh step; islands (Phú Quý,
#: 16 km², some 65 cells) are simplified less, so that their area stays as asked
SIMPLIFY_TOLERANCE = 0.3 * MESH_SPACING
ISLAND_TOLERANCE = 0.1 * MESH_SPACING
#: cell centres stay this far inside the province box (cells reach ~0.5 step beyond)
BOX_INSET = 2 * MESH_SPACING


@dataclass(frozen=True)
class DistrictLayout:
    """Shapes and facts of one synthetic district.

    Attributes
    ----------
    seed
        The district's facts from ``seeds/admin_units.json``.
    crs
        The CRS of every coordinate below (the province's, or the district's survey
        zone after :meth:`in_crs`).
    anchor
        The anchor point in metres: the seat town centre.
    boundary
        The district polygon.
    communes
        Commune specs, the seat first (see :func:`~gisportal.demo.communes.seat_first`).
    commune_shapes
        Commune polygons aligned with ``communes``; they tile ``boundary``.
    island
        Whether the district is an island (its anchor lies at sea).
    """

    seed: DistrictSeed
    crs: str
    anchor: tuple[float, float]
    boundary: Polygon
    communes: tuple[CommuneSpec, ...]
    commune_shapes: tuple[Polygon, ...]
    island: bool = False

    @property
    def code(self) -> str:
        """GSO district code."""
        return self.seed.code

    @property
    def zone_crs(self) -> str:
        """The CRS the district's offices survey in (``seeds.survey_zone``)."""
        return survey_crs(self.code)

    def in_crs(self, crs: str) -> DistrictLayout:
        """The same district with every coordinate in ``crs``.

        Vertices are transformed one by one, so a vertex two communes share stays one
        vertex and the communes still tile the boundary exactly; between zones of the
        one VN-2000 datum the change is a change of projection only.
        """
        if crs == self.crs:
            return self
        to = Transformer.from_crs(self.crs, crs, always_xy=True)

        def move(geom):
            return shapely.transform(geom, lambda xy: np.c_[to.transform(xy[:, 0], xy[:, 1])])

        def point(xy: tuple[float, float]) -> tuple[float, float]:
            x, y = to.transform(*xy)
            return float(x), float(y)

        return replace(
            self, crs=crs, anchor=point(self.anchor), boundary=move(self.boundary),
            communes=tuple(replace(c, centre=point(c.centre)) for c in self.communes),
            commune_shapes=tuple(move(np.array(self.commune_shapes, dtype=object))))


@dataclass(frozen=True)
class ProvinceLayout:
    """The whole synthetic province for one seed, in the province's CRS; ``outline``
    is the mainland and its islands (a MultiPolygon when there are islands)."""

    seed: int
    crs: str
    outline: Polygon | MultiPolygon
    districts: tuple[DistrictLayout, ...]

    def district(self, code: str) -> DistrictLayout:
        """The district with GSO ``code``; ``KeyError`` when there is none."""
        for d in self.districts:
            if d.code == str(code):
                return d
        raise KeyError(code)


@lru_cache(maxsize=4)
def province_layout(seed: int = 68) -> ProvinceLayout:
    """Build (once per seed) the province's districts and communes.

    Takes a few seconds: one mesh of ~230 000 cells over the province box, a few
    rounds of region growing, one coverage simplification.
    """
    crs = province_crs()
    districts = districts_on()
    anchors = anchors_xy(districts, crs)
    box = box_polygon(province_bbox_lonlat(), crs)
    minx, miny, maxx, maxy = np.array(box.bounds) + np.array([-1, -1, 1, 1]) * MESH_MARGIN
    mesh = jittered_mesh((minx, miny, maxx, maxy), MESH_SPACING, rng_for(seed, "mesh"))
    # the real province's box bounds the synthetic one (the portal rejects what lies
    # outside it); the inset keeps simplified edges off the box
    inside_box = box_mask(mesh, box, BOX_INSET)
    sea = sea_mask(mesh, crs)
    island = at_sea(anchors, crs)
    mainland = np.flatnonzero(~island)
    district_of = np.full(mesh.size, -1, dtype=np.int64)
    grown = grow_districts(mesh, tuple(districts[i] for i in mainland), anchors[mainland],
                           rng_for(seed, "districts"), allowed=inside_box & ~sea)
    district_of[grown >= 0] = mainland[grown[grown >= 0]]
    for i in np.flatnonzero(island):
        cells = grow_island(mesh, districts[i], anchors[i],
                            rng_for(seed, "island", districts[i].code),
                            allowed=inside_box & sea & (district_of < 0))
        district_of[cells] = i

    commune_of = np.full(mesh.size, -1, dtype=np.int64)
    specs: list[list[CommuneSpec]] = []
    offset = 0
    for i, district in enumerate(districts):
        cells = np.flatnonzero(district_of == i)
        labels, district_specs = grow_communes(
            mesh, cells, district, anchors[i], rng_for(seed, "communes", district.code))
        commune_of[cells] = labels + offset
        offset += len(district_specs)
        specs.append(district_specs)

    inside = np.flatnonzero(commune_of >= 0)
    polygons = cell_polygons(mesh, inside)
    order = np.argsort(commune_of[inside], kind="stable")
    bounds = np.searchsorted(commune_of[inside][order], np.arange(offset + 1))
    shapes = np.array([
        shapely.coverage_union_all(polygons[order[bounds[k]:bounds[k + 1]]])
        for k in range(offset)
    ])
    # each landmass is a coverage of its own: islands are simplified less
    of_island = np.repeat(island, [len(s) for s in specs])
    shapes[~of_island] = _simplify_coverage(shapes[~of_island], SIMPLIFY_TOLERANCE)
    for i in np.flatnonzero(island):
        start = sum(len(s) for s in specs[:i])
        own = slice(start, start + len(specs[i]))
        shapes[own] = _simplify_coverage(shapes[own], ISLAND_TOLERANCE)

    out = []
    start = 0
    for i, district in enumerate(districts):
        own = shapes[start:start + len(specs[i])]
        start += len(specs[i])
        boundary = _single_polygon(shapely.coverage_union_all(own), district.code)
        out.append(DistrictLayout(
            seed=district,
            crs=crs,
            anchor=(float(anchors[i, 0]), float(anchors[i, 1])),
            boundary=boundary,
            communes=tuple(specs[i]),
            commune_shapes=tuple(_single_polygon(s, c.code) for s, c in zip(own, specs[i],
                                                                           strict=True)),
            island=bool(island[i]),
        ))
    outline = shapely.coverage_union_all(shapes)
    return ProvinceLayout(seed=seed, crs=crs, outline=outline, districts=tuple(out))


def province_outline(seed: int = 68) -> Polygon | MultiPolygon:
    """The outline of the synthetic province that the districts of ``seed`` tile, in
    the province's CRS: the mainland, and its islands as further parts."""
    return province_layout(seed).outline


def _simplify_coverage(shapes: np.ndarray, tolerance: float) -> np.ndarray:
    """Smooth the cell zigzags of a coverage without opening gaps between neighbours."""
    if not len(shapes):
        return shapes
    for step in (tolerance, tolerance / 3):
        simple = shapely.coverage_simplify(shapes, step)
        if (
            shapely.is_valid(simple).all()
            and (shapely.get_type_id(simple) == 3).all()
            and shapely.coverage_is_valid(simple)
        ):
            return simple
    return shapes


def _single_polygon(geom: shapely.Geometry, what: str) -> Polygon:
    if geom.geom_type == "Polygon":
        return geom
    raise RuntimeError(f"generated shape of {what} is a {geom.geom_type}, not a Polygon")
