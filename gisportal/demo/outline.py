"""The synthetic province: its outline, districts and communes as polygons.

Built once per seed (and cached) from one cell mesh: districts are grown first, then
communes inside each district; commune polygons are dissolved from cells and
simplified together as one coverage, and districts and the outline are unions of
communes, so every level nests and tiles exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from shapely.geometry import Polygon

from .cells import cell_polygons, jittered_mesh
from .communes import CommuneSpec, grow_communes
from .districts import anchors_xy, box_mask, grow_districts
from .names import commune_names
from .rand import rng_for
from .seeds import DistrictSeed, districts_on, province_bbox_lonlat, province_crs

__all__ = ["DistrictLayout", "ProvinceLayout", "province_layout", "province_outline"]

#: mesh step: fine enough for small wards, coarse enough to build the province in seconds
MESH_SPACING = 500.0
#: room around the anchors for the districts to grow into
MESH_MARGIN = 50_000.0
#: simplification of the cell zigzags, a fraction of the mesh step
SIMPLIFY_TOLERANCE = 0.3 * MESH_SPACING
#: cell centres stay this far inside the province box (cells reach ~0.5 step beyond)
BOX_INSET = 2 * MESH_SPACING


@dataclass(frozen=True)
class DistrictLayout:
    """Shapes and facts of one synthetic district.

    Attributes
    ----------
    seed
        The district's facts from ``seeds/admin_units.json``.
    anchor
        The anchor point in metres (EPSG:5899): the seat town centre.
    boundary
        The district polygon.
    communes
        Commune specs, in code order.
    commune_shapes
        Commune polygons aligned with ``communes``; they tile ``boundary``.
    """

    seed: DistrictSeed
    anchor: tuple[float, float]
    boundary: Polygon
    communes: tuple[CommuneSpec, ...]
    commune_shapes: tuple[Polygon, ...]

    @property
    def code(self) -> str:
        """GSO district code."""
        return self.seed.code


@dataclass(frozen=True)
class ProvinceLayout:
    """The whole synthetic province for one seed."""

    seed: int
    crs: str
    outline: Polygon
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

    Takes a few seconds: one mesh of ~100 000 cells, two rounds of region growing,
    one coverage simplification.
    """
    crs = province_crs()
    districts = districts_on()
    anchors = anchors_xy(districts, crs)
    minx, miny = anchors.min(axis=0) - MESH_MARGIN
    maxx, maxy = anchors.max(axis=0) + MESH_MARGIN
    mesh = jittered_mesh((minx, miny, maxx, maxy), MESH_SPACING, rng_for(seed, "mesh"))
    # the real province's box bounds the synthetic one (the portal rejects what lies
    # outside it); the inset keeps simplified edges off the box
    inside_box = box_mask(mesh, province_bbox_lonlat(), crs, BOX_INSET)
    district_of = grow_districts(mesh, districts, anchors, rng_for(seed, "districts"),
                                 allowed=inside_box)

    xa_total = sum(d.n_xa for d in districts)
    towns = {t for d in districts for t in d.seat_towns}
    xa_names = commune_names(rng_for(seed, "commune-names"), xa_total, towns)

    commune_of = np.full(mesh.size, -1, dtype=np.int64)
    specs: list[list[CommuneSpec]] = []
    first = 0
    offset = 0
    for i, district in enumerate(districts):
        cells = np.flatnonzero(district_of == i)
        labels, district_specs = grow_communes(
            mesh, cells, district, anchors[i], xa_names[first:],
            rng_for(seed, "communes", district.code),
        )
        first += district.n_xa
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
    shapes = _simplify_coverage(shapes)

    out = []
    start = 0
    for i, district in enumerate(districts):
        own = shapes[start:start + len(specs[i])]
        start += len(specs[i])
        boundary = _single_polygon(shapely.coverage_union_all(own), district.code)
        out.append(DistrictLayout(
            seed=district,
            anchor=(float(anchors[i, 0]), float(anchors[i, 1])),
            boundary=boundary,
            communes=tuple(specs[i]),
            commune_shapes=tuple(_single_polygon(s, c.code) for s, c in zip(own, specs[i],
                                                                           strict=True)),
        ))
    outline = _single_polygon(shapely.coverage_union_all(shapes), "province")
    return ProvinceLayout(seed=seed, crs=crs, outline=outline, districts=tuple(out))


def province_outline(seed: int = 68) -> Polygon:
    """The outline of the synthetic province that the districts of ``seed`` tile."""
    return province_layout(seed).outline


def _simplify_coverage(shapes: np.ndarray) -> np.ndarray:
    """Smooth the cell zigzags of a coverage without opening gaps between neighbours."""
    for tolerance in (SIMPLIFY_TOLERANCE, SIMPLIFY_TOLERANCE / 3):
        simple = shapely.coverage_simplify(shapes, tolerance)
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
