"""The CRS an OGC API client can ask for (Part 2), their axis order, and reprojection.

Three are offered for every collection: OGC CRS84 (longitude, latitude: the default
of Part 1 and of GeoJSON), EPSG:4326 (the same datum with **latitude first**, as the
EPSG definition and Part 2 require) and the storage CRS (VN-2000 / TM-3, EPSG:5899 in
Lâm Đồng: easting, northing, exactly as stored). Which axis comes first is read from
the CRS definition, never assumed. Reprojection runs once per page on every
coordinate of every geometry (`shapely.transform` hands PROJ one array), and output
is rounded to what a survey can tell apart: 1e-7 degree (about 1 cm), 1 mm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyproj
import shapely

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.base.errors import UsageError
from gisportal.store.base import Bounds

__all__ = [
    "CRS84",
    "OgcCrs",
    "bbox_area",
    "epsg_uri",
    "extent_crs84",
    "offered",
    "parse_crs",
    "reproject",
]

#: OGC's longitude-latitude WGS 84, the default CRS of OGC API Features and GeoJSON.
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
#: Degrees kept around the storage CRS's area of use when a box is reprojected into it:
#: far outside it a transverse Mercator gives numbers, not places.
_AREA_MARGIN_DEG = 1.0
#: Vertices per side when a box in degrees is reprojected (its sides become curves).
_DENSIFY = 32


@dataclass(frozen=True)
class OgcCrs:
    """One CRS a client can name, with what reprojecting into it needs."""

    #: The URI clients use in ``crs`` and ``bbox-crs`` and see in ``Content-Crs``.
    uri: str
    crs: pyproj.CRS
    #: The first axis is northing or latitude (EPSG:4326): (x, y) are written as (y, x).
    north_first: bool
    #: Decimals kept in output coordinates.
    decimals: int
    #: This is the CRS geometries are stored in (no reprojection at all).
    is_storage: bool

    @property
    def geographic(self) -> bool:
        return self.crs.is_geographic


def epsg_uri(code: int) -> str:
    """The OGC URI of an EPSG CRS, e.g. ``http://www.opengis.net/def/crs/EPSG/0/5899``."""
    return _EPSG_URI.format(int(code))


def _north_first(crs: pyproj.CRS) -> bool:
    return bool(crs.axis_info) and crs.axis_info[0].direction in ("north", "south")


@cache
def offered(store_crs: str) -> tuple[OgcCrs, ...]:
    """CRS84 (the default), EPSG:4326 and the storage CRS, in this order.

    The storage CRS must have an EPSG code (its URI is built from it); a province whose
    TM-3 meridian has none is served in the two WGS 84 CRS only.
    """
    out = []
    for uri, crs in ((CRS84, pyproj.CRS.from_user_input("OGC:CRS84")),
                     (epsg_uri(4326), pyproj.CRS.from_epsg(4326))):
        out.append(OgcCrs(uri, crs, _north_first(crs), 7, False))
    storage = pyproj.CRS.from_user_input(store_crs)
    code = storage.to_epsg(min_confidence=100)
    if code is not None:
        out.append(OgcCrs(epsg_uri(code), storage, _north_first(storage),
                          7 if storage.is_geographic else 3, True))
    return tuple(out)


def parse_crs(value: str | None, store_crs: str, param: str) -> OgcCrs:
    """The offered CRS a ``crs`` or ``bbox-crs`` value names; CRS84 when it is absent.

    Raises
    ------
    UsageError
        Any other value (400), listing the URIs that work.
    """
    choices = offered(store_crs)
    if value is None:
        return choices[0]
    wanted = value.strip()
    for choice in choices:
        if wanted == choice.uri:
            return choice
    raise UsageError(f"{param}={value[:200]!r} is not a CRS this server offers",
                     where=param, fix="use one of: " + ", ".join(c.uri for c in choices))


@cache
def _to(store_crs: str, target: str) -> pyproj.Transformer:
    """Store CRS → `target` (user input), always (easting/longitude, northing/latitude)."""
    return vncrs.transformer(store_crs, target)


def reproject(geoms: np.ndarray, target: OgcCrs, store_crs: str) -> np.ndarray:
    """Store-CRS geometries in `target`, axes in its order, rounded; ``None`` stays ``None``.

    One PROJ call for all the coordinates of the array: per-geometry calls would cost
    more than the rest of a page.
    """
    decimals = target.decimals
    if target.is_storage:
        if target.north_first:
            return shapely.transform(geoms, lambda c: np.round(c[:, ::-1], decimals))
        return shapely.transform(geoms, lambda c: np.round(c, decimals))
    transformer = _to(store_crs, "EPSG:4326")  # the datum shift; axes are ours to order

    def project(coords: np.ndarray) -> np.ndarray:
        lon, lat = transformer.transform(coords[:, 0], coords[:, 1])
        out = np.column_stack((lat, lon) if target.north_first else (lon, lat))
        return np.round(out, decimals)

    return shapely.transform(geoms, project)


def bbox_area(bbox: Sequence[float], crs: OgcCrs,
              store_crs: str) -> Bounds | shapely.Geometry | None:
    """What a checked ``bbox`` (4 numbers, axis order of `crs`) covers, in the store CRS.

    In the storage CRS that is the box itself. A box in degrees is a rectangle in
    longitude and latitude, whose sides are curves in the projected store CRS: it comes
    back as that (densified) polygon, so that features are tested against the area the
    client asked for, not the box around it. A segment or point (zero width or height)
    comes back as such. ``None`` when the box lies entirely outside the storage CRS's
    area of use, where there cannot be any feature.
    """
    a, b, c, d = (float(v) for v in bbox)
    if crs.is_storage:
        return (b, a, d, c) if crs.north_first else (a, b, c, d)
    minlon, minlat, maxlon, maxlat = (b, a, d, c) if crs.north_first else (a, b, c, d)
    west, south, east, north = _area_of_use(store_crs)
    minlon, maxlon = max(minlon, west), min(maxlon, east)
    minlat, maxlat = max(minlat, south), min(maxlat, north)
    if minlon > maxlon or minlat > maxlat:
        return None
    if minlon == maxlon and minlat == maxlat:
        shape = shapely.Point(minlon, minlat)
    elif minlon == maxlon or minlat == maxlat:
        shape = shapely.LineString([(minlon, minlat), (maxlon, maxlat)])
    else:
        shape = shapely.box(minlon, minlat, maxlon, maxlat)
    step = max(maxlon - minlon, maxlat - minlat) / _DENSIFY
    if step > 0:
        shape = shapely.segmentize(shape, step)
    back = vncrs.transformer("EPSG:4326", store_crs)

    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(back.transform(coords[:, 0], coords[:, 1]))

    return shapely.transform(shape, project)


@cache
def _area_of_use(store_crs: str) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees where the store CRS gives places, with margin."""
    area = pyproj.CRS.from_user_input(store_crs).area_of_use
    if area is None:  # a custom TM-3 (no EPSG code): the province is where it is used
        west, south, east, north = seeds.province()["bbox_lonlat"]
    else:
        west, south, east, north = area.west, area.south, area.east, area.north
    m = _AREA_MARGIN_DEG
    return (max(west - m, -180.0), max(south - m, -90.0),
            min(east + m, 180.0), min(north + m, 90.0))


def extent_crs84(bounds: Bounds, store_crs: str) -> list[float]:
    """A store-CRS box as the CRS84 box containing it, rounded outwards to 1e-6 degree."""
    west, south, east, north = _to(store_crs, "EPSG:4326").transform_bounds(
        *bounds, densify_pts=21)
    scale = 1e6
    return [math.floor(west * scale) / scale, math.floor(south * scale) / scale,
            math.ceil(east * scale) / scale, math.ceil(north * scale) / scale]
