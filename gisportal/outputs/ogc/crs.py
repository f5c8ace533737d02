"""The CRS an OGC API client can ask for (Part 2), their axis order, and reprojection.

Three are offered for every collection: OGC CRS84 (longitude, latitude: the default
of Part 1 and of GeoJSON), EPSG:4326 (the same datum with **latitude first**, as the
EPSG definition and Part 2 require) and the storage CRS (VN-2000 / TM-3, EPSG:5899 in
Lâm Đồng: easting, northing, exactly as stored). A collection of a district surveyed
in another zone (former Đắk Nông and Bình Thuận: TM-3 108°30′, EPSG:9218) also offers
that zone (`survey_crs`): it is the grid of the district's certificates and its own
surveyors' files, and the export writes the district in it too. Which axis comes first is read from
the CRS definition, never assumed. Reprojection runs once per page on every distinct
coordinate of the page (one array for PROJ), and output is rounded to what a survey
can tell apart: 1e-7 degree (about 1 cm), 1 mm.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
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
    "ground_coords",
    "ground_points",
    "in_axis_order",
    "reproject",
    "survey_crs",
    "uris_of",
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


def survey_crs(district: str) -> str | None:
    """``EPSG:<code>`` of the zone a district is surveyed in (`seeds.survey_zone`); None
    for a code the seeds do not know (nothing more to offer than the storage CRS)."""
    try:
        return f"EPSG:{seeds.survey_zone(district).epsg}"
    except (KeyError, ValueError):
        return None


@cache
def offered(store_crs: str, survey: str | None = None) -> tuple[OgcCrs, ...]:
    """CRS84 (the default), EPSG:4326, the storage CRS and, when it is another one, the
    ``survey`` CRS of the collection's district (`survey_crs`), in this order.

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
    if survey is not None:
        zone = pyproj.CRS.from_user_input(survey)
        zone_code = zone.to_epsg(min_confidence=100)
        if zone_code is not None and zone_code != code:
            out.append(OgcCrs(epsg_uri(zone_code), zone, _north_first(zone), 3, False))
    return tuple(out)


def uris_of(store_crs: str, districts: Iterable[str]) -> list[str]:
    """The URIs some collection of `districts` offers, each once, in `offered` order: the
    list of ``/collections`` and the enums of the API definition."""
    out = [c.uri for c in offered(store_crs)]
    for district in sorted(set(districts)):
        out += [c.uri for c in offered(store_crs, survey_crs(district)) if c.uri not in out]
    return out


def parse_crs(value: str | None, store_crs: str, param: str,
              survey: str | None = None) -> OgcCrs:
    """The offered CRS a ``crs`` or ``bbox-crs`` value names; CRS84 when it is absent.

    Raises
    ------
    UsageError
        Any other value (400), listing the URIs that work.
    """
    choices = offered(store_crs, survey)
    if value is None:
        return choices[0]
    wanted = value.strip()
    for choice in choices:
        if wanted == choice.uri:
            return choice
    raise UsageError(f"{param}={value[:200]!r} is not a CRS this collection offers",
                     where=param, fix="use one of: " + ", ".join(c.uri for c in choices))


@cache
def _to(store_crs: str, target: str) -> pyproj.Transformer:
    """Store CRS → `target` (user input), always (easting/longitude, northing/latitude)."""
    return vncrs.transformer(store_crs, target)


def ground_points(coords: np.ndarray, target: OgcCrs,
                  store_crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Store-CRS ``(easting, northing)`` coordinates (an ``(n, 2)`` array) in `target`, as
    the distinct points and, for each coordinate, the index of its point: rounded, in
    ground order — ``(easting, northing)`` or ``(longitude, latitude)``, whatever
    `target`'s axis order (`in_axis_order` applies that).

    One PROJ call for all the coordinates, each distinct point once: neighbouring
    parcels share their corners and every ring repeats its first point, so a page of
    cadastral parcels holds about three coordinates per distinct point, and PROJ is most
    of the cost of an answer (and writing numbers the next: a writer can write each
    distinct point once too). The same point gives the same numbers, however often.
    """
    decimals = target.decimals
    if target.is_storage:
        return np.round(coords, decimals), np.arange(len(coords))
    if not len(coords):
        return np.empty((0, 2)), np.arange(0)
    # To WGS 84: the datum shift. To another TM-3 zone of VN-2000: a change of projection
    # only.
    transformer = _to(store_crs, "EPSG:4326" if target.geographic else _user_input(target))
    points = np.ascontiguousarray(coords, dtype=np.float64).view(np.complex128).ravel()
    distinct, where = np.unique(points, return_inverse=True)
    x, y = distinct.real.copy(), distinct.imag.copy()
    transformer.transform(x, y, inplace=True)
    out = np.empty((len(distinct), 2))
    out[:, 0], out[:, 1] = x, y
    return np.round(out, decimals, out=out), where.ravel()


def ground_coords(coords: np.ndarray, target: OgcCrs, store_crs: str) -> np.ndarray:
    """`ground_points`, one row per coordinate."""
    points, where = ground_points(coords, target, store_crs)
    return points[where]


def in_axis_order(coords: np.ndarray, target: OgcCrs) -> np.ndarray:
    """Ground-order coordinates (`ground_coords`) in `target`'s axis order: latitude or
    northing first where its definition says so (EPSG:4326)."""
    return np.ascontiguousarray(coords[:, ::-1]) if target.north_first else coords


def reproject(geoms: np.ndarray, target: OgcCrs, store_crs: str) -> np.ndarray:
    """Store-CRS geometries in `target`, axes in its order, rounded; ``None`` stays ``None``."""
    return shapely.transform(
        geoms, lambda c: in_axis_order(ground_coords(c, target, store_crs), target))


def _user_input(target: OgcCrs) -> str:
    """``EPSG:<code>`` of an offered CRS, the key `_to` caches its transformers by."""
    return "EPSG:" + target.uri.rsplit("/", 1)[1]


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
    if not crs.geographic:  # another zone's grid: its box, as a shape on the store grid
        minx, miny, maxx, maxy = (b, a, d, c) if crs.north_first else (a, b, c, d)
        zone_box = (shapely.box(minx, miny, maxx, maxy) if minx < maxx and miny < maxy
                    else shapely.Point(minx, miny) if (minx, miny) == (maxx, maxy)
                    else shapely.LineString([(minx, miny), (maxx, maxy)]))
        step = max(maxx - minx, maxy - miny) / _DENSIFY
        if step > 0:
            zone_box = shapely.segmentize(zone_box, step)
        to_store = vncrs.transformer(_user_input(crs), store_crs)
        return shapely.transform(zone_box, lambda c: np.column_stack(
            to_store.transform(c[:, 0], c[:, 1])))
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
