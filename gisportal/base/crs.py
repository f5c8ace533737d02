"""VN-2000 geodesy: the province's TM-3 CRS, CRS parsing, inference, surveyor axis order.

Facts (docs/design.md §4): VN-2000 uses the WGS 84 ellipsoid; its shift to WGS 84 is
EPSG:6960 (coordinate-frame rotations). PROJ's ``+towgs84`` is position-vector, so
the rotation signs flip. Lâm Đồng's cadastral CRS is VN-2000 / TM-3 107°45′
(k0 0.9999, FE 500 000 m) = EPSG:5899. Vietnamese surveyors write X = northing,
Y = easting: every public entry point that takes "X, Y" goes through
:func:`surveyor_to_xy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyproj
import shapely
from pyproj import CRS, Transformer

from gisportal.base import seeds
from gisportal.base.errors import CRSError

__all__ = [
    "TOWGS84_PV",
    "CRSChoice",
    "tm3_crs",
    "store_crs",
    "same_grid",
    "parse_crs",
    "infer_crs",
    "transformer",
    "to_lonlat",
    "from_lonlat",
    "surveyor_to_xy",
    "describe",
    "candidate_crs",
    "zone_crs",
    "area_factor",
    "legal_areas",
    "meridian_text",
    "zone_to_store",
]

#: VN-2000 → WGS 84 (EPSG:6960) in PROJ's position-vector convention (signs of the
#: rotations flipped from the coordinate-frame values of the decision).
TOWGS84_PV = (-191.90441429, -39.30318279, -111.45032835,
              0.00928836, -0.01975479, 0.00427372, 0.252906278)

WGS84 = CRS.from_epsg(4326)


@cache
def tm3_crs(meridian_deg: float) -> CRS:
    """VN-2000 / TM-3 for a central meridian: the EPSG CRS when one exists, else custom.

    EPSG codes exist for most meridians (seeds/vn2000_tm3_meridians.csv); for others a
    PROJ definition with :data:`TOWGS84_PV` is built, which agrees with PROJ's own
    EPSG pipelines to the millimetre (tested).
    """
    for m in seeds.meridians():
        if abs(m.meridian_deg - meridian_deg) < 1e-9 and m.epsg and m.epsg_status == "verified":
            return CRS.from_epsg(m.epsg)
    towgs = ",".join(f"{v:.10g}" for v in TOWGS84_PV)
    return CRS.from_proj4(
        f"+proj=tmerc +lat_0=0 +lon_0={meridian_deg:.10g} +k=0.9999 +x_0=500000 +y_0=0 "
        f"+ellps=WGS84 +towgs84={towgs} +units=m +no_defs +type=crs"
    )


@cache
def store_crs() -> CRS:
    """The CRS geometry is stored in: the province's VN-2000 TM-3 (EPSG:5899 here)."""
    return CRS.from_user_input(seeds.province()["crs"])


def same_grid(crs: CRS, other: CRS) -> bool:
    """Whether coordinates in ``crs`` are already coordinates in ``other``.

    A ``.prj`` that carries the datum shift (``TOWGS84``, as our own export writes it and
    many offices do) parses as a bound CRS that is not "equal" to EPSG:5899, yet its
    coordinates are on the same VN-2000 grid: the shift only matters on the way to WGS 84.
    Going through WGS 84 anyway would add rounding, or a real error when the file's
    shift carries the wrong signs.
    """
    if crs.equals(other):
        return True
    return bool(crs.is_bound and crs.source_crs is not None and crs.source_crs.equals(other))


def parse_crs(text: str) -> CRS:
    """Parse a user-given CRS: ``EPSG:5899``, ``5899``, ``VN2000:107.75`` (any TM-3
    meridian in degrees), a PROJ string or WKT. CRSError with a hint otherwise."""
    value = str(text).strip()
    if value.upper().startswith(("VN2000:", "VN-2000:", "TM3:")):
        try:
            return tm3_crs(float(value.split(":", 1)[1].replace(",", ".")))
        except ValueError:
            pass
    if value.isdigit():
        value = f"EPSG:{value}"
    try:
        return CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"{text!r} is not a coordinate reference system PROJ knows", where="--crs",
                       fix="give an EPSG code such as EPSG:5899 (VN-2000 / TM-3 107°45′), "
                           "VN2000:<meridian degrees>, or a PROJ/WKT definition") from exc


def describe(crs: CRS) -> str:
    """Short label: ``EPSG:5899 (VN-2000 / TM-3 zone 107-45)`` or the CRS name."""
    code = crs.to_epsg(min_confidence=90)
    return f"EPSG:{code} ({crs.name})" if code else crs.name


@cache
def transformer(src: str, dst: str) -> Transformer:
    """Cached transformer between two CRS given as user input; x=easting/lon, y=northing/lat."""
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def _key(crs: CRS) -> str:
    code = crs.to_epsg(min_confidence=100)
    return f"EPSG:{code}" if code else crs.to_wkt()


@cache
def _store_key() -> str:
    """`_key` of the store CRS, worked out once: ``to_epsg`` costs ~35 µs, and every
    look-up converts a point both ways."""
    return _key(store_crs())


def to_lonlat(x, y, crs: CRS | None = None):
    """Store-CRS (or ``crs``) easting/northing → WGS 84 lon, lat (arrays or scalars)."""
    return transformer(_store_key() if crs is None else _key(crs), "EPSG:4326").transform(x, y)


def lonlat_bounds(bounds, crs: CRS | None = None,
                  digits: int | None = None) -> list[float]:
    """Store-CRS (or ``crs``) bounds → WGS 84 ``[west, south, east, north]``, from the
    four corners (a TM-3 grid's edges are not parallels and meridians); rounded to
    `digits` decimals when given."""
    minx, miny, maxx, maxy = bounds
    lons, lats = to_lonlat([minx, maxx, minx, maxx], [miny, miny, maxy, maxy], crs)
    out = [float(min(lons)), float(min(lats)), float(max(lons)), float(max(lats))]
    return out if digits is None else [round(v, digits) for v in out]


def from_lonlat(lon, lat, crs: CRS | None = None):
    """WGS 84 lon, lat → store-CRS (or ``crs``) easting, northing."""
    return transformer("EPSG:4326", _store_key() if crs is None else _key(crs)).transform(
        lon, lat)


# --------------------------------------------------------------------------- zones


@cache
def _store_epsg() -> int | None:
    return store_crs().to_epsg()


@cache
def zone_crs(district: str | None) -> CRS:
    """The CRS a district's surveys are in (`seeds.survey_zone`); the store CRS for none.

    The province keeps one store grid (EPSG:5899) for every district, so that one
    spatial index, one tile pipeline and one look-up transform serve it all; a
    district surveyed in another zone (former Đắk Nông and Bình Thuận: TM-3 108°30′,
    EPSG:9218) is reprojected on the way in and on the way out (exports), and its
    legal areas are measured in its own zone (:func:`legal_areas`). Both zones are the
    same VN-2000 datum, so the reprojection is a change of projection only (no datum
    shift): a round trip moves a coordinate by nanometres (tested).
    """
    if district is None:
        return store_crs()
    zone = seeds.survey_zone(district)
    return store_crs() if _store_epsg() == zone.epsg else CRS.from_epsg(zone.epsg)


def meridian_text(meridian_deg: float) -> str:
    """``108°30′``: a zone's central meridian as surveyors write it."""
    degrees = int(meridian_deg)
    minutes = round((meridian_deg - degrees) * 60)
    return f"{degrees}°{minutes:02d}′"


def zone_to_store(epsg: int, east, north):
    """Easting/northing of the zone EPSG:`epsg` → the store grid (a no-op for the store's
    own zone). By code, not CRS object: ``to_epsg`` costs ~35 µs a call on a look-up."""
    if epsg == _store_epsg():
        return east, north
    return transformer(f"EPSG:{epsg}", _store_key()).transform(east, north)


@cache
def _proj(epsg: int) -> pyproj.Proj:
    return pyproj.Proj(CRS.from_epsg(epsg))


def area_factor(x, y, zone: CRS) -> np.ndarray:
    """Ratio of an area measured in `zone` to the same area measured in the store grid,
    at store-grid points (x, y).

    Transverse Mercator is conformal, so a small figure's area scales by the square of
    the point scale factor (PROJ's ``areal_scale``): the ratio of the two zones' factors
    at the figure's centre (of its bounding box) converts its area from one zone to the
    other. Over a parcel or a plan zone the factor varies by less than 1e-6 of itself, so
    the converted area equals the one computed on the figure reprojected vertex by vertex
    to within 1e-9
    (tested) — at a fraction of the cost (200 000 parcels in 0.25 s).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    store = _store_epsg()
    if zone is store_crs() or store is None:
        return np.ones(np.broadcast(x, y).shape)
    other = zone.to_epsg()
    if other is None or other == store:
        return np.ones(np.broadcast(x, y).shape)
    source = _proj(store)
    lon, lat = source(x, y, inverse=True)  # VN-2000 geographic: both zones share it
    return (_proj(other).get_factors(lon, lat).areal_scale
            / source.get_factors(lon, lat).areal_scale)


def legal_areas(geoms, zone: CRS | None = None) -> np.ndarray:
    """Areas (m²) of store-grid geometries as measured in `zone` (default: the store's).

    The cadastre's legal area is the one measured in the zone the parcel was surveyed
    in: 80 km off a zone's meridian the other zone's measure differs by 0.03 %, three
    times the tolerance a declared area is checked with.
    """
    areas = np.asarray(shapely.area(geoms), dtype=float)
    if zone is None or zone is store_crs() or zone.to_epsg() == _store_epsg() \
            or areas.size == 0:
        return areas
    box = shapely.bounds(geoms)  # NaN for missing and empty geometries (area 0 or NaN)
    with np.errstate(invalid="ignore"):
        factor = area_factor((box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2,
                             zone)
    return np.where(areas > 0, areas * factor, areas)


def surveyor_to_xy(x_north: float, y_east: float) -> tuple[float, float]:
    """A certificate's "X, Y" (X = northing, Y = easting) → (easting, northing).

    Kept as a named function so the swap is done in exactly one place.
    """
    return float(y_east), float(x_north)


# --------------------------------------------------------------------------- inference


@dataclass(frozen=True)
class CRSChoice:
    """The CRS a layer is read in, and how it was decided."""

    crs: CRS
    origin: str  # declared | override | inferred
    reason_en: str
    reason_vi: str
    alternatives: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"crs": describe(self.crs), "origin": self.origin, "reason": self.reason_en,
                "reason_vi": self.reason_vi, "alternatives": list(self.alternatives)}


# Candidate CRSs in order of preference for Vietnamese planning files with no .prj.
# VN-2000 UTM and WGS 84 UTM differ by about 200 m here: indistinguishable from the
# coordinates alone; VN-2000 is what cadastral offices use, so it comes first.
# A district named on the command line puts its own survey zone first: the meridian of
# its former province (Bình Thuận and Đắk Nông surveyed in 108°30′, not the 107°45′ of
# former Lâm Đồng), since both zones put a file's box inside today's province.
def _candidates(district: str | None = None) -> list[tuple[CRS, str]]:
    prov = seeds.province()
    own = tm3_crs(float(prov["tm3_meridian_deg"]))
    out: list[tuple[CRS, str]] = []
    if district is not None:
        zone = seeds.survey_zone(district)
        out.append((tm3_crs(zone.meridian_deg), f"VN-2000 / TM-3 {zone.meridian_deg}°"))
    out += [(own, f"VN-2000 / TM-3 {prov['tm3_meridian_deg']}° (the province's cadastral CRS)"),
           (CRS.from_epsg(3405), "VN-2000 / UTM zone 48N"),
           (CRS.from_epsg(3406), "VN-2000 / UTM zone 49N"),
           (CRS.from_epsg(32648), "WGS 84 / UTM zone 48N"),
           (CRS.from_epsg(32649), "WGS 84 / UTM zone 49N")]
    others = sorted({m.meridian_deg for m in seeds.meridians()} - {prov["tm3_meridian_deg"]})
    out += [(tm3_crs(m), f"VN-2000 / TM-3 {m}° (another province's meridian)") for m in others]
    seen: set[str] = set()  # the district's zone once, where it was put first
    return [(c, label) for c, label in out if not (c.to_wkt() in seen or seen.add(c.to_wkt()))]


def candidate_crs(district: str | None = None) -> list[tuple[CRS, str]]:
    """The CRSs inference tries, with their labels, in order of preference."""
    return _candidates(district)


def _inside(lon: float, lat: float, box: tuple[float, float, float, float]) -> bool:
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def infer_crs(bounds: tuple[float, float, float, float],
              anchor_lonlat: tuple[float, float] | None = None,
              district: str | None = None) -> CRSChoice:
    """Guess the CRS of coordinates with no declared CRS.

    The data's bounding box is tried in each candidate CRS; a candidate fits when the
    box lands inside the province (with a 10 km margin). Among those that fit, the
    `district`'s survey zone wins (`seeds.survey_zone`), then the province's own TM-3,
    then the order of :func:`_candidates`; with a district anchor, a candidate must also
    land within 60 km of it. Raises CRSError when
    nothing fits, with one true answer (:mod:`gisportal.base.placement`): the reading that
    puts the data in the province but far from the district (check --district), the
    province whose data it appears to be (CRS-OUTSIDE-PROVINCE), swapped axes, or no
    known CRS — never a --crs that would fail the same way.
    """
    minx, miny, maxx, maxy = bounds
    prov = seeds.province()
    pb = seeds.province_bbox_lonlat()
    margin = 0.1  # degrees, ~10 km
    box = (pb[0] - margin, pb[1] - margin, pb[2] + margin, pb[3] + margin)
    corners = [(minx, miny), (maxx, maxy)]
    geod = pyproj.Geod(ellps="WGS84")

    def fits(lonlat_pts) -> bool:
        if not all(_inside(lo, la, box) for lo, la in lonlat_pts):
            return False
        if anchor_lonlat is not None:
            clo = (lonlat_pts[0][0] + lonlat_pts[1][0]) / 2
            cla = (lonlat_pts[0][1] + lonlat_pts[1][1]) / 2
            if geod.inv(clo, cla, *anchor_lonlat)[2] > 60_000:
                return False
        return True

    # Geographic degrees: only plausible when every coordinate is a valid lon/lat.
    if -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90:
        if fits(corners):
            return CRSChoice(WGS84, "inferred",
                             "no CRS in the file; coordinates are longitudes/latitudes inside "
                             "the province, read as WGS 84 (EPSG:4326)",
                             "tệp không có hệ tọa độ; tọa độ là kinh độ/vĩ độ trong tỉnh, "
                             "đọc theo WGS 84 (EPSG:4326)",
                             ("EPSG:4756 (VN-2000 geographic) differs by about 200 m",))
    else:
        fitting = []
        for crs, label in _candidates(district):
            t = transformer(_key(crs), "EPSG:4326")
            pts = [t.transform(x, y) for x, y in corners]
            if fits(pts):
                fitting.append((crs, label))
        if fitting:
            crs, label = fitting[0]
            alts = tuple(lbl for _, lbl in fitting[1:4])
            why_en, why_vi = _zone_reason(district, crs)
            return CRSChoice(crs, "inferred",
                             f"no CRS in the file; the coordinates (x {minx:.0f}–{maxx:.0f}, "
                             f"y {miny:.0f}–{maxy:.0f}) fall inside the province as {label}; "
                             f"read as {describe(crs)}{why_en}",
                             f"tệp không có hệ tọa độ; tọa độ (x {minx:.0f}–{maxx:.0f}, "
                             f"y {miny:.0f}–{maxy:.0f}) nằm trong tỉnh khi hiểu là {label}; "
                             f"đọc theo {describe(crs)}{why_vi}",
                             alts)
    swapped = ""
    if not (-180 <= minx <= 180):
        t = transformer(_key(_candidates(district)[0][0]), "EPSG:4326")
        if fits([t.transform(y, x) for x, y in corners]):
            swapped = (" The coordinates fit if X and Y are swapped (X = northing, as surveyors "
                       "write it): swap the columns in the source software.")
    if anchor_lonlat is not None and not swapped:
        far = _far_from_district(bounds, anchor_lonlat, box)
        if far is not None:
            raise far
    if not swapped:
        from gisportal.base import placement  # placement builds on this module

        elsewhere = placement.no_fit_error(bounds, _candidates())
        if elsewhere is not None:
            raise elsewhere
    raise CRSError(
        f"the coordinates (x {minx:.6g}–{maxx:.6g}, y {miny:.6g}–{maxy:.6g}) fit no known "
        f"CRS for {prov['name']}.{swapped}",
        where="file has no .prj / embedded CRS",
        fix="add the .prj file from the source software, or pass --crs with the CRS the "
            "coordinates were made in (none of VN-2000 TM-3, VN-2000 or WGS 84 UTM 48/49 "
            "and WGS 84 puts them in the province)",
        code="CRS-UNKNOWN")


def _zone_reason(district: str | None, crs: CRS) -> tuple[str, str]:
    """Why the district's zone was read, when it was (English, Vietnamese)."""
    if district is None or not crs.equals(tm3_crs(seeds.survey_zone(district).meridian_deg)):
        return "", ""
    former = seeds.former_districts().get(district)
    unit = next((u for u in seeds.admin_units() if u.code == district
                 and u.level == "district"), None)
    name = former.name if former else unit.name if unit else district
    province = former.province_name if former else seeds.province()["name"]
    m = meridian_text(seeds.survey_zone(district).meridian_deg)
    return (f"; district {district} ({name}) is of former {province}, whose surveys use "
            f"the meridian {m}",
            f"; huyện {district} ({name}) thuộc {province} cũ, đo đạc theo kinh tuyến trục {m}")


def _far_from_district(bounds: tuple[float, float, float, float],
                       anchor_lonlat: tuple[float, float],
                       box: tuple[float, float, float, float]) -> CRSError | None:
    """When a candidate puts the data inside the province but over 60 km from the
    district: the error says so and which district it looks like (the --district may
    be wrong), and the --crs that reads it as it is."""
    minx, miny, maxx, maxy = bounds
    geod = pyproj.Geod(ellps="WGS84")
    geographic = -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    readings = [(WGS84, "WGS 84")] if geographic else _candidates()
    for crs, label in readings:
        t = transformer(_key(crs), "EPSG:4326")
        (lo0, la0), (lo1, la1) = t.transform(minx, miny), t.transform(maxx, maxy)
        if not (_inside(lo0, la0, box) and _inside(lo1, la1, box)):
            continue
        clo, cla = (lo0 + lo1) / 2, (la0 + la1) / 2
        km = geod.inv(clo, cla, *anchor_lonlat)[2] / 1000
        near = min(seeds.districts(), key=lambda d: geod.inv(clo, cla, *d.anchor_lonlat)[2]
                   if d.anchor_lonlat else float("inf"))
        arg = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else describe(crs)
        return CRSError(
            f"dữ liệu nằm trong tỉnh khi đọc theo {label} nhưng cách huyện đã chọn {km:.0f} km "
            f"(gần {near.name} ({near.code}) hơn) / read as {label} the data lies in the "
            f"province but {km:.0f} km from the district given (closer to {near.name}, "
            f"{near.code})",
            where="file has no .prj / embedded CRS; --district",
            fix=f"kiểm tra --district (có thể là --district {near.code}); nếu đúng là dữ liệu "
                f"của huyện này, dùng --crs {arg} / check --district (perhaps --district "
                f"{near.code}); to read the file as it is, pass --crs {arg}",
            code="CRS-UNKNOWN")
    return None
