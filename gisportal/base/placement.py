"""Where a layer lies, judged by its whole extent, and one true answer when it is elsewhere.

Data from outside the served province is either correct data of another province
(a Hà Nội cadastre in its own TM-3) or data of this province in a wrong CRS. The
two need opposite advice, and advice that loops ("pass --crs EPSG:5899" → the same
error) is worse than none. So:

- a layer's location is its extent — the bounds of all its geometries, transformed
  densified so the curvature of the projection is kept — never one representative
  point (a country outline's point lies hundreds of km from the province it covers);
- a layer wholly outside the province is told where it lies: the nearest province by
  name (``seeds/vn_provinces.csv``) and the distance;
- a CRS is suggested only when, read with it, the extent falls inside the province
  (the province's TM-3, the neighbouring provinces' TM-3, VN-2000 and WGS 84 UTM,
  WGS 84, and each with X and Y swapped); with none, the answer is that the data
  appears to be another province's, which this portal does not serve.

The served province's extent comes from :func:`gisportal.base.seeds.province_bbox_lonlat`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import pyproj
import shapely
from pyproj import CRS, Transformer

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.base.errors import CRSError

__all__ = ["MARGIN_DEG", "Box", "Where", "Alternative", "check_layer", "province_box",
           "served_name",
           "box_lonlat", "boxes_lonlat", "where_is", "describe_where", "provinces_covered",
           "alternatives", "outside_error", "no_fit_error", "km_text", "Reading",
           "plausible_reading"]

#: How far (degrees, about 10 km) an extent may reach beyond the province's box and
#: still "fall inside" it: the box is the province's, the data's may be a little wider.
MARGIN_DEG = 0.1

#: The day the province list describes for naming where data lies: the 63 provinces the
#: 2021–2030 plans were made in (the 2025 province a former one joined is named too).
_NAMING_DAY = seeds.PLAN_DISTRICTS_DATE
_MERGED_DAY = date(2025, 7, 1)
_GEOD = pyproj.Geod(ellps="WGS84")
_TM3_LABEL = re.compile(r"TM-3 (\d+(?:\.\d+)?)°")
_POINTS_PER_EDGE = 21


@dataclass(frozen=True)
class Box:
    """A longitude/latitude box (WGS 84)."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.min_lon + self.max_lon) / 2, (self.min_lat + self.max_lat) / 2)

    def grown(self, margin: float) -> Box:
        return Box(self.min_lon - margin, self.min_lat - margin, self.max_lon + margin,
                   self.max_lat + margin)

    def intersects(self, other: Box) -> bool:
        return not (self.max_lon < other.min_lon or self.min_lon > other.max_lon
                    or self.max_lat < other.min_lat or self.min_lat > other.max_lat)

    def within(self, other: Box) -> bool:
        return (other.min_lon <= self.min_lon and self.max_lon <= other.max_lon
                and other.min_lat <= self.min_lat and self.max_lat <= other.max_lat)

    def contains(self, other: Box) -> bool:
        return other.within(self)

    def distance_km(self, other: Box) -> float:
        """Geodesic distance between the nearest points of the two boxes (0 if they meet)."""
        def pair(a0, a1, b0, b1):
            if a1 < b0:
                return a1, b0
            if b1 < a0:
                return a0, b1
            v = max(a0, b0)
            return v, v
        lon_a, lon_b = pair(self.min_lon, self.max_lon, other.min_lon, other.max_lon)
        lat_a, lat_b = pair(self.min_lat, self.max_lat, other.min_lat, other.max_lat)
        return float(_GEOD.inv(lon_a, lat_a, lon_b, lat_b)[2]) / 1000.0

    def text(self) -> str:
        return (f"lon {self.min_lon:.3f}–{self.max_lon:.3f}, "
                f"lat {self.min_lat:.3f}–{self.max_lat:.3f}")


def province_box() -> Box:
    """The served province's extent (seeds/province.json, via seeds)."""
    return Box(*seeds.province_bbox_lonlat())


def served_name(lang: str = "vi") -> str:
    """The served province as a message names it: "tỉnh Lâm Đồng" / "Lâm Đồng"."""
    prov = seeds.province()
    if lang == "vi":
        name = prov["name"]
        return name[:1].lower() + name[1:]
    return prov.get("name_en") or prov["name"]


# --------------------------------------------------------------------------- extents


def _lonlat_ok(lon, lat) -> np.ndarray:
    return np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)


def _edge_points(bounds: np.ndarray, per_edge: int) -> tuple[np.ndarray, np.ndarray]:
    """Points along the four edges of each box (``(n, 4)`` → two ``(n, 4·per_edge)``)."""
    t = np.linspace(0.0, 1.0, per_edge)
    x0, y0, x1, y1 = (bounds[:, i:i + 1] for i in range(4))
    xs = np.hstack([x0 + t * (x1 - x0), x0 + t * (x1 - x0), np.repeat(x0, per_edge, 1),
                    np.repeat(x1, per_edge, 1)])
    ys = np.hstack([np.repeat(y0, per_edge, 1), np.repeat(y1, per_edge, 1),
                    y0 + t * (y1 - y0), y0 + t * (y1 - y0)])
    return xs, ys


def boxes_lonlat(bounds: np.ndarray, crs: CRS, per_edge: int = 5) -> np.ndarray:
    """Each ``(minx, miny, maxx, maxy)`` of ``crs`` as a lon/lat box (``(n, 4)``).

    The edges are sampled (``per_edge`` points each) so a projection's curvature is
    kept; a box any point of which has no valid lon/lat gives a row of NaN.
    """
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    out = np.full((len(bounds), 4), np.nan)
    if len(bounds) == 0:
        return out
    xs, ys = _edge_points(bounds, per_edge)
    if crs.is_geographic and crs.equals(vncrs.WGS84):
        lon, lat = xs, ys
    else:
        # the cached transformer: making one costs ~25 ms, 3 s of the 120 layers the
        # demo publishes
        with np.errstate(invalid="ignore"):
            lon, lat = vncrs.to_lonlat(xs.ravel(), ys.ravel(), crs)
        lon, lat = np.asarray(lon).reshape(xs.shape), np.asarray(lat).reshape(ys.shape)
    good = _lonlat_ok(lon, lat).all(axis=1)
    if good.any():
        out[good] = np.column_stack([lon[good].min(axis=1), lat[good].min(axis=1),
                                     lon[good].max(axis=1), lat[good].max(axis=1)])
    return out


def box_lonlat(bounds: Sequence[float], crs: CRS) -> Box | None:
    """One extent of ``crs`` as a lon/lat box, densified; None when it has no lon/lat."""
    row = boxes_lonlat(np.asarray([bounds], dtype=float), crs, _POINTS_PER_EDGE)[0]
    return None if np.isnan(row).any() else Box(*map(float, row))


# --------------------------------------------------------------------------- where


@dataclass(frozen=True)
class Where:
    """Where an extent lies: the nearest province and how far from the served one."""

    province: seeds.Province
    #: km from the extent's centre to that province's extent (0: inside it)
    province_km: float
    #: km between the extent and the served province's extent
    served_km: float
    #: the province ``province`` became part of on 2025-07-01, when named otherwise
    successor: seeds.Province | None

    @property
    def in_vietnam(self) -> bool:
        """Whether the extent's centre lies in (or within 20 km of) a province's extent."""
        return self.province_km <= 20.0


@cache
def _province_arrays() -> tuple[tuple[seeds.Province, ...], np.ndarray, np.ndarray]:
    provs = tuple(seeds.vn_provinces(_NAMING_DAY))
    boxes = np.array([p.bbox_lonlat for p in provs], dtype=float)
    centres = np.array([p.centre_lonlat for p in provs], dtype=float)
    return provs, boxes, centres


def _successor(code: str) -> seeds.Province | None:
    for p in seeds.vn_provinces(_MERGED_DAY):
        if code in p.predecessors:
            return p
    return None


def _nearest_province(lon: float, lat: float) -> tuple[seeds.Province, float]:
    """The province whose extent holds the point (the nearest centre among several), or
    else the one whose extent is nearest; with the distance to that extent in km."""
    provs, boxes, centres = _province_arrays()
    clon = np.clip(lon, boxes[:, 0], boxes[:, 2])
    clat = np.clip(lat, boxes[:, 1], boxes[:, 3])
    n = len(provs)
    to_box = _GEOD.inv(np.full(n, lon), np.full(n, lat), clon, clat)[2] / 1000.0
    inside = np.flatnonzero(to_box == 0)
    if len(inside):
        to_centre = _GEOD.inv(np.full(len(inside), lon), np.full(len(inside), lat),
                              centres[inside, 0], centres[inside, 1])[2]
        return provs[int(inside[np.argmin(to_centre)])], 0.0
    i = int(np.argmin(to_box))
    return provs[i], float(to_box[i])


def where_is(box: Box) -> Where:
    """Where ``box`` lies: by its centre, among the 63 provinces of the plans' time."""
    prov, km = _nearest_province(*box.centre)
    succ = _successor(prov.code)
    if succ is not None and succ.name == prov.name:
        succ = None
    return Where(prov, km, box.distance_km(province_box()), succ)


def km_text(km: float) -> str:
    """A distance for a message: whole km from 10 km on, one decimal below."""
    return f"{km:.0f}" if km >= 10 else f"{km:.1f}"


def describe_where(where: Where) -> tuple[str, str]:
    """``(vi, en)`` places, to follow "nằm" / "lies": "ở thành phố Hà Nội, cách tỉnh Lâm
    Đồng khoảng 970 km" / "in Hà Nội, about 970 km from Lâm Đồng"."""
    p = where.province
    vi_name, en_name = f"{p.type} {p.name}", p.name
    if where.successor is not None:
        s = where.successor
        vi_name += f" (từ 01/07/2025 thuộc {s.type} {s.name})"
        en_name += f" (part of {s.name} since 2025-07-01)"
    km = km_text(where.served_km)
    if where.in_vietnam:
        return (f"ở {vi_name}, cách {served_name('vi')} khoảng {km} km",
                f"in {en_name}, about {km} km from {served_name('en')}")
    near = km_text(where.province_km)
    return (f"ngoài Việt Nam (gần nhất là {vi_name}, cách {near} km), cách "
            f"{served_name('vi')} khoảng {km} km",
            f"outside Vietnam (the nearest province is {en_name}, {near} km away), "
            f"about {km} km from {served_name('en')}")


@cache
def _centres_in(crs_key: str) -> np.ndarray:
    provs, _, centres = _province_arrays()
    t = Transformer.from_crs(vncrs.WGS84, CRS.from_user_input(crs_key), always_xy=True)
    x, y = t.transform(centres[:, 0], centres[:, 1])
    return shapely.points(np.asarray(x), np.asarray(y))


def provinces_covered(geoms: np.ndarray, crs: CRS | None = None) -> list[seeds.Province]:
    """The provinces whose centre lies inside one of ``geoms`` (store CRS by default).

    A centre is a point well inside its province, so a layer that holds it covers
    (part of) the province: counting them tells a region or country outline from a
    district that spills over a border.
    """
    provs = _province_arrays()[0]
    crs = crs or vncrs.store_crs()
    points = _centres_in(crs.to_wkt())
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(geoms) == 0:
        return []
    tree = shapely.STRtree(geoms)
    try:
        hit = np.unique(tree.query(points, predicate="intersects")[0])
    except shapely.errors.GEOSException:  # an invalid geometry GEOS cannot test: use boxes
        hit = np.unique(tree.query(points)[0])
    return [provs[int(i)] for i in hit]


# --------------------------------------------------------------------------- advice


@dataclass(frozen=True)
class Alternative:
    """A reading of the coordinates that puts them inside the province."""

    crs: CRS
    arg: str  # what to give --crs
    label: str
    swapped: bool = False  # X and Y must be swapped (no --crs does that)


@cache
def _alternative_crs() -> tuple[tuple[CRS, str, str], ...]:
    """CRSs a file of the province is plausibly in: the province's TM-3, the TM-3 of the
    provinces around it (their surveys cross the border), UTM 48/49 on VN-2000 and
    WGS 84, WGS 84 and VN-2000 geographic."""
    prov = seeds.province()
    own = float(prov["tm3_meridian_deg"])
    around = province_box().grown(0.05)
    # The zones the province's former provinces surveyed in come before the neighbours':
    # a former Bình Thuận cadastre mislabelled EPSG:5899 is in 108°30′, and 108°15′
    # (Khánh Hòa's) would also put it inside today's larger province, 27 km off.
    former = sorted({f.meridian_deg for f in seeds.former_districts().values()} - {own})
    neighbours: set[float] = set()
    for p in seeds.vn_provinces(_NAMING_DAY):
        if Box(*p.bbox_lonlat).intersects(around):
            try:
                neighbours.add(seeds.meridian_for(p.name).meridian_deg)
            except KeyError:
                continue
    out = [(vncrs.tm3_crs(m), f"VN-2000 / TM-3 {m}°", _tm3_arg(m))
           for m in (own, *former, *sorted(neighbours - {own, *former}))]
    out += [(CRS.from_epsg(code), CRS.from_epsg(code).name, f"EPSG:{code}")
            for code in (3405, 3406, 32648, 32649, 4326, 4756)]
    return tuple(out)


def _tm3_arg(meridian: float) -> str:
    """What to give --crs for a TM-3 meridian: its EPSG code, else ``VN2000:<degrees>``."""
    code = vncrs.tm3_crs(meridian).to_epsg(min_confidence=90)
    return f"EPSG:{code}" if code else f"VN2000:{meridian:g}"


def alternatives(raw_bounds: Sequence[float], current: CRS | None = None
                 ) -> list[Alternative]:
    """The readings of ``raw_bounds`` (the file's own coordinates) that fall inside the
    province (its box grown by :data:`MARGIN_DEG`), best first; never ``current``."""
    fit_box = province_box().grown(MARGIN_DEG)
    x0, y0, x1, y1 = (float(v) for v in raw_bounds)
    out: list[Alternative] = []
    for crs, label, arg in _alternative_crs():
        same = current is not None and (vncrs.same_grid(current, crs)
                                        or vncrs.same_grid(crs, current))
        for swapped, b in ((False, (x0, y0, x1, y1)), (True, (y0, x0, y1, x1))):
            if same and not swapped:
                continue
            box = box_lonlat(b, crs)
            if box is not None and box.within(fit_box):
                out.append(Alternative(crs, arg, label, swapped))
    out.sort(key=lambda a: a.swapped)  # a plain --crs before a swap of the columns
    return out


def _crs_text(crs: CRS) -> str:
    """``describe`` of a CRS, with the central meridian when the CRS has no name (a
    .prj written from a PROJ string reads as "unknown")."""
    text = vncrs.describe(crs)
    base = crs.source_crs if crs.is_bound and crs.source_crs is not None else crs
    op = base.coordinate_operation
    if crs.name not in ("unknown", "") or op is None:
        return text
    for param in op.params:
        if param.code == "8802":  # EPSG: longitude of natural origin
            return f"{op.method_name} {param.value:g}°"
    return text


def _both(vi: str, en: str) -> str:
    return f"{vi} / {en}"


def outside_error(raw_bounds: Sequence[float], box: Box | None, choice: vncrs.CRSChoice,
                  where: str) -> CRSError:
    """The CRS-OUTSIDE-PROVINCE error for a layer that lies wholly outside the province.

    ``raw_bounds`` are the file's own coordinates, ``box`` their extent in lon/lat as
    read with ``choice`` (None when they have no lon/lat in it).
    """
    crs_text = _crs_text(choice.crs)
    origin_vi = {"declared": "khai báo trong tệp", "override": "chỉ định bằng --crs",
                 "inferred": "suy đoán"}.get(choice.origin, choice.origin)
    if box is None:
        what = _both(f"với {crs_text} ({origin_vi}) tọa độ không phải là vị trí hợp lệ "
                     "trên Trái Đất",
                     f"with {crs_text} ({choice.origin}) the coordinates are no valid "
                     "position on Earth")
        where_vi = where_en = ""
        far = None
    else:
        far = where_is(box)
        where_vi, where_en = describe_where(far)
        what = _both(f"với {crs_text} ({origin_vi}) lớp dữ liệu nằm {where_vi} "
                     f"({box.text()})",
                     f"with {crs_text} ({choice.origin}) the layer lies {where_en} "
                     f"({box.text()})")
    alts = alternatives(raw_bounds, choice.crs)
    plain = [a for a in alts if not a.swapped]
    if plain:
        a = plain[0]
        others = ", ".join(x.arg for x in plain[1:3])
        more_vi = f" (cũng vừa: {others})" if others else ""
        more_en = f" (also fitting: {others})" if others else ""
        fix = _both(f"hệ tọa độ có lẽ sai: đọc theo {a.label}, dữ liệu nằm trong "
                    f"{served_name('vi')} — dùng --crs {a.arg}{more_vi}",
                    f"the CRS is probably wrong: read as {a.label} the data falls inside "
                    f"{served_name('en')} — pass --crs {a.arg}{more_en}")
    elif alts:
        a = alts[0]
        fix = _both(f"X và Y bị đảo (X là tọa độ bắc theo cách ghi của ngành đo đạc): đổi "
                    f"hai cột trong phần mềm nguồn rồi xuất lại; khi đó dữ liệu nằm trong "
                    f"{served_name('vi')} theo {a.label}",
                    f"X and Y appear swapped (surveyors write X = northing): swap the two "
                    f"columns in the source software and export again; the data then falls "
                    f"inside {served_name('en')} as {a.label}")
    else:
        inferred_vi = inferred_en = ""
        if choice.origin == "inferred":
            inferred_vi = (" Tệp không có .prj nên hệ tọa độ được suy đoán; nếu đây là dữ liệu "
                           f"của {served_name('vi')}, hãy kèm tệp .prj từ phần mềm nguồn.")
            inferred_en = (" The file has no .prj, so its CRS was inferred; if this is data "
                           f"of {served_name('en')}, add the .prj from the source software.")
        served = seeds.province()["code"]
        own = far is not None and far.province_km == 0 and far.province.code != served
        reading = None if own else plausible_reading(raw_bounds)
        if own or reading is not None:
            p = far.province if own else reading.where.province
            read_vi = read_en = ""
            if reading is not None:
                where_vi, where_en = describe_where(reading.where)
                read_vi = f"đọc theo {reading.label}, dữ liệu nằm {where_vi}: "
                read_en = f"read as {reading.label} the data lies {where_en}: "
            vi = (f"{read_vi}dữ liệu có vẻ là của {p.type} {p.name}, còn cổng này chỉ phục vụ "
                  f"{served_name('vi')}: hãy tải lên dữ liệu của các huyện thuộc "
                  f"{served_name('vi')}.{inferred_vi}")
            en = (f"{read_en}the data appears to be of {p.name}, and this portal serves "
                  f"{served_name('en')} only: upload data of its districts.{inferred_en}")
        else:
            vi = (f"không có hệ tọa độ nào đưa dữ liệu vào {served_name('vi')}: kiểm tra tệp "
                  f"và hệ tọa độ trong phần mềm nguồn.{inferred_vi}")
            en = (f"no CRS puts the data inside {served_name('en')}: check the file and its "
                  f"CRS in the source software.{inferred_en}")
        fix = _both(vi, en)
    return CRSError(what, where=where, fix=fix, code="CRS-OUTSIDE-PROVINCE")


@dataclass(frozen=True)
class Reading:
    """A CRS in which coordinates land plausibly in some other province."""

    label: str
    box: Box
    where: Where


def plausible_reading(bounds: Sequence[float],
                      candidates: Sequence[tuple[CRS, str]] | None = None) -> Reading | None:
    """The first CRS in which ``bounds`` land wholly inside a province other than the
    served one, or None.

    A TM-3 reading counts only when it puts the data in a province whose surveys use
    that meridian (a Hà Nội cadastre read at 105°), so the many meridians cannot make
    any numbers look like some province's; UTM and WGS 84 readings count as they are.
    Coordinates in the range of longitudes and latitudes are read as WGS 84 only.
    """
    x0, y0, x1, y1 = (float(v) for v in bounds)
    if -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90:
        readings = [(vncrs.WGS84, "WGS 84 (longitude, latitude)")]
    else:
        # TM-3 first: near its meridian a TM-3 file reads almost the same as UTM, and
        # the meridian that matches the province is the better answer.
        readings = sorted(candidates if candidates is not None else vncrs.candidate_crs(),
                          key=lambda c: _TM3_LABEL.search(c[1]) is None)
    served = seeds.province()["code"]
    for crs, label in readings:
        box = box_lonlat((x0, y0, x1, y1), crs)
        if box is None:
            continue
        far = where_is(box)
        p = far.province
        if (far.province_km > 0 or p.code == served
                or not Box(*p.bbox_lonlat).grown(MARGIN_DEG).contains(box)):
            continue
        tm3 = _TM3_LABEL.search(label)
        if tm3 is not None:
            try:
                if abs(seeds.meridian_for(p.name).meridian_deg - float(tm3.group(1))) > 1e-9:
                    continue
            except KeyError:
                continue
        return Reading(label, box, far)
    return None


def check_layer(geoms: np.ndarray, raw: np.ndarray | None, choice: vncrs.CRSChoice,
                where: str) -> None:
    """Raise CRS-OUTSIDE-PROVINCE when the layer's extent lies wholly outside the province.

    ``geoms`` are the layer in the store CRS, ``raw`` the same geometries as read
    (in ``choice``'s CRS; None: the extent is taken back to it). A layer that overlaps
    the province passes: its features outside are findings of the validation.
    """
    geoms = np.asarray(geoms, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not present.any():
        return
    store = vncrs.store_crs()
    box = box_lonlat(shapely.total_bounds(geoms[present]), store)
    if box is not None and box.intersects(province_box()):
        return
    if raw is not None:
        raw = np.asarray(raw, dtype=object)
        raw_bounds = shapely.total_bounds(raw[~(shapely.is_missing(raw)
                                                | shapely.is_empty(raw))])
    else:
        back = Transformer.from_crs(store, choice.crs, always_xy=True)
        raw_bounds = back.transform_bounds(*shapely.total_bounds(geoms[present]))
    # Where the file's own coordinates lie as read (the store's copy of them may be
    # infinite when they are no position in that CRS).
    box = box_lonlat(raw_bounds, store if vncrs.same_grid(choice.crs, store) else choice.crs)
    raise outside_error(raw_bounds, box, choice, where)


def no_fit_error(bounds: Sequence[float], candidates: Sequence[tuple[CRS, str]]
                 ) -> CRSError | None:
    """For coordinates with no declared CRS that fit no CRS of the province: the error
    saying whose data they appear to be (:func:`plausible_reading`), or None when they
    fit no province either."""
    reading = plausible_reading(bounds, candidates)
    if reading is None:
        return None
    label, box, p = reading.label, reading.box, reading.where.province
    where_vi, where_en = describe_where(reading.where)
    return CRSError(
        _both(f"tệp không có hệ tọa độ (.prj); đọc theo {label}, tọa độ "
              f"({box.text()}) nằm {where_vi}: dữ liệu có vẻ là của {p.type} {p.name}",
              f"the file has no CRS (.prj); read as {label} the coordinates "
              f"({box.text()}) lie {where_en}: the data appears to be of {p.name}"),
        where="file has no .prj / embedded CRS",
        fix=_both(f"cổng này chỉ phục vụ {served_name('vi')}: hãy tải lên dữ liệu của các "
                  f"huyện thuộc {served_name('vi')}; nếu đây là dữ liệu của "
                  f"{served_name('vi')}, hãy kèm tệp .prj từ phần mềm nguồn",
                  f"this portal serves {served_name('en')} only: upload data of its "
                  f"districts; if this is data of {served_name('en')}, add the .prj "
                  "from the source software"),
        code="CRS-OUTSIDE-PROVINCE")
