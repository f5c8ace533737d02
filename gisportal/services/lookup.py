"""Parcel look-up: by commune + sheet + parcel, by lat/lon, by VN-2000 X/Y.

Answers what a resident asks: which parcel, its current use, and what the published
2021–2030 plan says about it — the planned uses with their area and share of the
parcel, computed in VN-2000 TM-3 (never in degrees). The JSON keys are contract
(docs/design.md §6): ``parcel``, ``planned``, ``plan``.

A point with no parcel is an answer, not an error: a click on a road, a river or
outside every district gets ``"parcel": null`` with ``reason`` (``no_parcel`` or
``outside_districts``), a message in Vietnamese and English, and the plan zone(s) at
the point when there are any. Only a key that names no parcel is `NotFoundError`: the
resident typed a sheet and parcel that do not exist.

Which versions are published is one snapshot per look-up (`Store.published_snapshot`),
used for every question of the request — which district's outline covers the point,
its parcels, its plan, its annual plan — so a look-up answers from one state of the
catalogue. The parcel and what lies over it (plan zones, annual-plan projects; at the
point when there is no parcel) are one `Store.records_and_overlays` call: one statement
on PostgreSQL, where they were four round trips with the catalogue's.

What outlives the request is the catalogue, never an answer. On PostgreSQL the
snapshot is the process's kept copy of the published versions, and the look-up's
statement reads, in the same round trip, the token the database draws anew whenever a
published version changes (a publish, a roll-back, a meta update; a trigger in the
same transaction): a copy that is no longer the catalogue is dropped and the look-up
asked again from a fresh one (`_consistent`). So a publish that has returned is in the
next look-up's answer on every node, as when the catalogue was read on every request,
without that round trip. A look-up with no such statement (a point outside every
district, a district without parcels, plan or annual plan) and an error answer (no
such parcel) confirm the snapshot first (`Store.confirm`, one round trip). The
GeoPackage store keeps no copy: its snapshot is read for the request, as before.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd
import shapely

from gisportal.base import crs as vncrs
from gisportal.base import formats, seeds
from gisportal.base.errors import NotFoundError, UsageError
from gisportal.base.seeds import district_code
from gisportal.outputs import privacy
from gisportal.pipeline.normalise import source_attributes
from gisportal.services import annual, workflow, zoning
from gisportal.services.measure import measured
from gisportal.services.units import unit_at, units_at
from gisportal.store.base import Published, StalePublished, Store, Version
from gisportal.store.derived import derived

__all__ = ["NO_PARCEL", "OUTSIDE_DISTRICTS", "lonlat_point", "lookup_key", "lookup_lonlat",
           "lookup_xy", "parse_coordinate", "units_of"]

#: Messages of a point look-up that finds no parcel: (Vietnamese, English).
NO_PARCEL = ("Không có thửa đất tại điểm này", "No parcel here")
OUTSIDE_DISTRICTS = ("Điểm này nằm ngoài các huyện có dữ liệu trên cổng thông tin",
                     "This point is outside every district published on the portal")


#: The look-up's parameters as a resident's page names them, for its Vietnamese errors.
_PARAMETERS_VI = {"lat": "vĩ độ", "lon": "kinh độ", "x": "tọa độ X", "y": "tọa độ Y",
                  "sheet": "số tờ bản đồ", "parcel": "số thửa"}
#: The layer kinds likewise.
_KINDS_VI = {"parcels": "bản đồ địa chính", "plan": "quy hoạch sử dụng đất",
             "boundary": "ranh giới hành chính", "annual_plan": "kế hoạch sử dụng đất hằng năm"}


def _vi_number(value: float) -> str:
    """A bound of a parameter as a Vietnamese reader writes it (``1.000.000``, ``-90``)."""
    decimals = 0 if float(value).is_integer() else len(repr(float(value)).split(".")[1])
    return formats.number(value, decimals, "vi")


def _district_name(code: str) -> str:
    try:
        return seeds.district(code).name
    except KeyError:
        return f"mã {code}"


def parse_coordinate(value: Any, name: str, lo: float, hi: float) -> float:
    """A finite number within [lo, hi], else UsageError naming the parameter (in
    Vietnamese too: a resident's page shows it)."""
    vi = _PARAMETERS_VI.get(name, name)
    shown = str(value).strip()[:30]
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise UsageError(f"{name} must be a number, got {value!r}", where=name,
                         fix=f"give {name} as a decimal number between {lo} and {hi}",
                         what_vi=f"{vi} phải là một số, không phải “{shown}”",
                         fix_vi=f"nhập {vi} là một số từ {_vi_number(lo)} đến "
                                f"{_vi_number(hi)}") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise UsageError(f"{name}={value} is out of range", where=name,
                         fix=f"give {name} between {lo} and {hi}",
                         what_vi=f"{vi} “{shown}” nằm ngoài phạm vi cho phép",
                         fix_vi=f"nhập {vi} từ {_vi_number(lo)} đến {_vi_number(hi)}")
    return number


T = TypeVar("T")

#: Snapshots a look-up tries before it reads the catalogue afresh (module doc): one is
#: stale only when a publish landed since the process last looked (the second attempt
#: then answers), or while replicas at different points of their replay take turns.
ATTEMPTS = 3

#: The plan zones' columns a look-up reads.
PLAN_COLUMNS = ("land_use",)


def _consistent(store: Store, district: str | None, answer: Callable[[Published], T]) -> T:
    """``answer(snapshot)`` from a confirmed snapshot of the published versions (module
    doc): asked again from a new snapshot when a statement of it finds it stale, or
    when the answer (or error) came from a snapshot that `Store.confirm` finds stale.
    After `ATTEMPTS`, from `Store.published_versions` read afresh (confirmed)."""
    for _ in range(ATTEMPTS):
        published = store.published_snapshot(district)
        try:
            result = answer(published)
        except StalePublished:
            continue
        except (NotFoundError, UsageError):
            if _confirmed(store, published):
                raise
            continue
        if _confirmed(store, published):
            return result
    return answer(Published(store.published_versions(district)))


def _confirmed(store: Store, published: Published) -> bool:
    try:
        store.confirm(published)
    except StalePublished:
        return False
    return True


class _Here(NamedTuple):
    """What one `Store.records_and_overlays` call found for a look-up in a district."""

    #: the parcels found (by key, or at the point), as `Store.records` gives them
    parcels: list[dict[str, Any]]
    #: the plan zones (`PLAN_COLUMNS`) over the first parcel's box, else at the point
    zones: list[dict[str, Any]]
    #: the annual-plan features (`annual.COLUMNS`) likewise
    projects: list[dict[str, Any]]
    #: each planning project layer of the district (`zoning.overlays`) with its
    #: features likewise
    zoning: list[tuple[Version, list[dict[str, Any]]]] = []


_NOTHING = _Here([], [], [])


def _here(store: Store, published: Published, district: str, *,
          where: Mapping[str, Any] | None = None, point: tuple[float, float] | None = None,
          ) -> _Here:
    """The district's parcels found by `where` or at `point`, with its published plan's
    zones and annual plan's features over the first one (at the point when none is
    found): one store call (one statement on PostgreSQL, confirming `published`); none
    when the district has none of the three layers."""
    parcels = published.get((district, "parcels"))
    plan = published.get((district, "plan"))
    projects = published.get((district, annual.KIND))
    layers = [(v, columns) for v, columns in ((plan, PLAN_COLUMNS),
                                              (projects, annual.COLUMNS))
              if v is not None]
    plans = zoning.overlays(published, district)
    # Each with its bounds: a store skips a project's layers that cannot meet the parcel.
    overlays = [(v.id, columns, v.bounds) for v, columns in (*layers, *plans)]
    if parcels is None and not overlays:
        return _NOTHING
    found = store.records_and_overlays(None if parcels is None else parcels.id, where=where,
                                       point=point, overlays=overlays, published=published)
    over = iter(found.overlays)
    return _Here(found.records, next(over) if plan is not None else [],
                 next(over) if projects is not None else [],
                 [(v, next(over)) for v, _ in plans])


def _published(published: Published, district: str, kind: str) -> Version:
    """The request's published `kind` layer of the district, else `NotFoundError`."""
    v = published.get((district, kind))
    if v is None:
        raise NotFoundError(f"district {district} has no published {kind} layer",
                            where=f"district {district}",
                            fix="publish one with gisportal ingest --publish or gisportal demo",
                            what_vi=f"{_district_name(district)} chưa công bố "
                                    f"{_KINDS_VI.get(kind, kind)}",
                            fix_vi="dữ liệu sẽ tra cứu được khi cơ quan quản lý công bố")
    return v


def _attributes(row, version: Version, public: bool) -> dict[str, str]:
    """The source attributes of a parcel: for the public, only the columns the allow-list
    of `gisportal.outputs.privacy` lets out (those a planner marked public); for staff, all."""
    return privacy.public_attributes(row, version) if public else source_attributes(row)


def _plan_info(published: Published, district: str,
               ) -> tuple[Version | None, dict[str, Any] | None]:
    """The district's published plan and what an answer says of it (decision, status)."""
    plan = published.get((district, "plan"))
    if plan is None:
        return None, None
    decision = plan.meta.get("decision") or {}
    sha = decision.get("pdf_sha256")
    # The signed decision is public once its plan is published (web/planner_review.py).
    pdf = f"/planner/decisions/{sha}.pdf" if sha else None
    # A published plan without its decision is a draft for comment (workflow.publish):
    # every answer says so, so no one takes it for the plan in force.
    draft = workflow.is_consultation(plan)
    return plan, {"decision": decision.get("number"), "date": decision.get("date"),
                  "authority": decision.get("authority"), "version": plan.id,
                  "published_at": plan.published_at, "decision_pdf": pdf,
                  "status": "consultation" if draft else "approved",
                  "status_label": workflow.CONSULTATION_LABEL["vi"] if draft else None,
                  "status_label_en": workflow.CONSULTATION_LABEL["en"] if draft else None}


def _planned(zones: list[dict[str, Any]], geom, factor: float = 1.0) -> list[dict[str, Any]]:
    """Planned uses over ``geom``: intersection areas with the plan zones found over its
    box (`_Here.zones`), by code, in m² of the district's survey zone (``factor``: see
    `_zone_factor`)."""
    if not zones:
        return []
    geom = measured(geom)
    inter = shapely.intersection(np.array([z["geometry"] for z in zones], dtype=object), geom)
    areas = shapely.area(inter) * factor
    total = float(shapely.area(geom)) * factor
    cat = seeds.land_use_catalogue()
    by_code: dict[str, float] = {}
    for zone, a in zip(zones, areas, strict=True):
        code = zone["land_use"]
        if a > 0 and code is not None:
            by_code[code] = by_code.get(code, 0.0) + float(a)
    out = [{"code": c, "name": cat.name(c), "name_en": cat.name(c, "en"),
            "color": cat.color(c), "area_m2": round(a, 1),
            "share": round(a / total, 4) if total > 0 else None}
           for c, a in by_code.items()]
    return sorted(out, key=lambda d: -d["area_m2"])


def _zone_factor(district: str, geom) -> float:
    """Area in the district's survey zone over area on the store grid, at the parcel
    (`vncrs.area_factor`): 1 for a district of former Lâm Đồng (surveyed on the store's
    own TM-3 107°45′); for one of former Bình Thuận or Đắk Nông (108°30′) the legal area
    differs from the grid's by up to 0.04 %, more than a declared area's tolerance."""
    minx, miny, maxx, maxy = shapely.bounds(geom)
    return float(vncrs.area_factor((minx + maxx) / 2, (miny + maxy) / 2,
                                   vncrs.zone_crs(district)))


def _answer(store: Store, published: Published, district: str, version: Version,
            row: Mapping[str, Any], here: _Here, *, public: bool) -> dict[str, Any]:
    """The JSON answer for one parcel, a `Store.records` record, with what lies over it."""
    geom = row["geometry"]
    cat = seeds.land_use_catalogue()
    _, plan_info = _plan_info(published, district)
    factor = _zone_factor(district, geom)
    computed = float(shapely.area(geom)) * factor
    declared = row.get("area_m2")
    use = row.get("land_use")
    return {
        "parcel": {
            "district": district,
            "district_name": seeds.district(district).name,
            "commune": None if _na(row.get("commune")) else str(row.get("commune")),
            "sheet": None if _na(row.get("sheet")) else int(row.get("sheet")),
            "parcel": None if _na(row.get("parcel")) else int(row.get("parcel")),
            "area_m2": round(float(declared), 1) if not _na(declared) else round(computed, 1),
            "area_computed_m2": round(computed, 1),
            "current_use": None if _na(use) else use,
            "current_use_name": None if _na(use) else cat.name(use),
            "attributes": _attributes(row, version, public),
            "version": version.id,
            "point": lonlat_point(geom),
        },
        "planned": _planned(here.zones, geom, factor),
        "plan": plan_info,
        "units": _units(store, published, geom,
                        units_of(None if _na(row.get("commune")) else row.get("commune"),
                                 district)),
        "annual_plans": annual.annual_plans(here.projects, geom, factor=factor),
        "zoning": zoning.zoning(here.zoning, geom, factor),
    }


def _units(store: Store, published: Published, geom, units: dict[str, Any] | None
           ) -> dict[str, Any] | None:
    """`units_of`, with a split former commune's two options settled by where the
    parcel lies in today's unit shapes (`services.units`), when those are drawn: the
    cut between the two is approximate, so ``current_approximate`` says so."""
    if not units or units.get("current") is not None or not units.get("current_options"):
        return units
    x, y = shapely.get_coordinates(shapely.point_on_surface(geom))[0]
    found = unit_at(store, published, float(x), float(y))
    for option in units["current_options"]:
        if found is not None and option["code"] == found.code:
            return {**units, "current": option, "current_approximate": True}
    return units


def _unit(code: str, name: str, level: str) -> dict[str, str]:
    return {"code": code, "name": name, "level": level}


def units_of(commune: Any, district: str) -> dict[str, Any] | None:
    """Today's unit of a parcel and the former units its certificate may name, from the
    parcel's commune code (a GSO code of before 2025-07-01, as cadastres carry it).

    ``current`` is today's commune or ward (`seeds.current_units_of_former`); ``former``
    lists the former commune, then its district as on 2025-06-30, then the parcel's
    plan district when its name is another: Cát Tiên and Đạ Tẻh were merged into Đạ
    Huoai on 2025-01-01, and the merged district took Đạ Tẻh's code 682, so a code alone
    cannot say which district a certificate names. A former commune split between two
    units has ``current`` null and both in ``current_options``: which one holds the
    parcel needs today's boundaries.
    None when the code is no former commune of the province (the demo's synthetic codes,
    a typing error in a file) or one of another district than the parcel's: the answer
    then says nothing rather than guessing.
    """
    if commune is None:
        return None
    parts = seeds.former_commune(str(commune).strip())
    if not parts:
        return None
    part = parts[0]
    listed = seeds.communes().get(part.code)  # the plans' districts (681–683 apart)
    if district not in (part.district, listed.district if listed else None):
        return None  # a commune of another district: the file's code is not to be trusted
    named = [(part.district, seeds.former_districts()[part.district].name)]
    with contextlib.suppress(KeyError):  # the plan's district, when it is one of them
        named.append((district, seeds.district(district).name))
    former = [_unit(part.code, part.name, part.level)]
    for code, name in named:
        if name not in {u["name"] for u in former[1:]}:  # Đạ Huoai 681 is 682's name
            former.append(_unit(code, name, "district"))
    current = [_unit(u.code, u.name, u.level) for u in seeds.current_units_of_former(part.code)]
    answer: dict[str, Any] = {"current": current[0] if len(current) == 1 else None,
                              "former": former}
    if len(current) > 1:
        answer["current_options"] = current
    return answer


def _na(v: Any) -> bool:
    return v is None or bool(pd.isna(v))


def lonlat_point(geom) -> dict[str, float] | None:
    """WGS 84 ``{"lat", "lon"}`` (7 decimals, about 1 cm) of a point inside a store-CRS
    geometry: where an answer puts its marker and its link; None for no geometry."""
    if geom is None or shapely.is_empty(geom):
        return None
    x, y = shapely.get_coordinates(shapely.point_on_surface(geom))[0]
    lon, lat = vncrs.to_lonlat(x, y)
    return {"lat": round(float(lat), 7), "lon": round(float(lon), 7)}


def lookup_key(store: Store, district: str, sheet: Any, parcel: Any,
               commune: str | None = None, *, public: bool = True) -> dict[str, Any]:
    """The parcel (district, [commune,] sheet, parcel) and its planned uses."""
    district = district_code(district)
    sheet_n = int(parse_coordinate(sheet, "sheet", 0, 1e9))
    parcel_n = int(parse_coordinate(parcel, "parcel", 0, 1e9))
    where: dict[str, Any] = {"sheet": sheet_n, "parcel": parcel_n}
    if commune:
        where["commune"] = str(commune).strip()
    label = (f"commune {commune}, " if commune else "") + f"sheet {sheet_n}, parcel {parcel_n}"
    label_vi = f"tờ {sheet_n}, thửa {parcel_n}" + (f" (xã mã {commune})" if commune else "")
    return _consistent(store, district, lambda published: _key_answer(
        store, published, district, where, label, public=public, label_vi=label_vi))


def _key_answer(store: Store, published: Published, district: str, where: dict[str, Any],
                label: str, *, public: bool, label_vi: str = "") -> dict[str, Any]:
    """`lookup_key` from one snapshot of the published versions."""
    v = _published(published, district, "parcels")
    here = _here(store, published, district, where=where)
    found = here.parcels
    label_vi = label_vi or label
    if not found:
        raise NotFoundError(f"no parcel {label} in district {district}",
                            where=f"district {district}",
                            fix="check the sheet (tờ) and parcel (thửa) numbers on the "
                                "certificate, or search by location",
                            what_vi=f"không có thửa đất {label_vi} ở {_district_name(district)}",
                            fix_vi="kiểm tra lại số tờ, số thửa trên giấy chứng nhận, hoặc "
                                   "tìm theo vị trí trên bản đồ")
    if len(found) > 1:
        communes = sorted({str(f["commune"]) for f in found if not _na(f.get("commune"))})
        raise UsageError(f"{len(found)} parcels have {label} in district {district}",
                         where="commune", fix="give the commune code too: "
                         + ", ".join(communes),
                         what_vi=f"{len(found)} thửa đất có {label_vi} ở "
                                 f"{_district_name(district)}",
                         fix_vi="chọn thêm xã (mã xã: " + ", ".join(communes) + ")")
    return _answer(store, published, district, v, found[0], here, public=public)


def _district_shapes(store: Store, boundary: Version) -> np.ndarray:
    """The district outline(s) of a boundary version (cached while it is published)."""
    return derived(store, boundary, "district-shapes", _build_district_shapes)


def _build_district_shapes(store: Store, boundary: Version) -> np.ndarray:
    """Its ``level = district`` features, or all of them when there is no ``level``."""
    layer = store.read(boundary.id)
    if "level" in layer.columns:
        layer = layer[layer["level"].eq("district").fillna(False).to_numpy(dtype=bool)]
    shapes = layer.geometry.values[~layer.geometry.isna().to_numpy()]
    return np.asarray(shapes, dtype=object)


def _inside(bounds, x: float, y: float) -> bool:
    return bool(bounds) and bounds[0] <= x <= bounds[2] and bounds[1] <= y <= bounds[3]


def _district_at(store: Store, published: Published, x: float, y: float,
                 ) -> tuple[str | None, _Here | None]:
    """The district whose published outline covers the point, and what `_here` found
    at the point in it when that is how the district was found (else None).

    A district without a boundary layer is decided by its published parcels, plan
    zones and planning projects' lots instead (one `_here` at the point, whose answer
    the look-up then uses: the question "is there a parcel or a zone here" is the
    look-up's own); one with a
    boundary layer only by its outline. The districts asked are those of `published`,
    in code order: a district whose versions are all drafts or superseded has nothing
    published that could cover the point, so leaving it out changes no answer (and
    `Store.districts` would cost a round trip of its own).
    """
    unbounded = []
    for code in sorted({d for d, _ in published}):
        b = published.get((code, "boundary"))
        if b is None:
            unbounded.append(code)
        elif _inside(b.bounds, x, y):
            shapes = _district_shapes(store, b)
            if len(shapes) and shapely.intersects_xy(shapes, x, y).any():
                return code, None
    for code in unbounded:
        layers = [published.get((code, "parcels")), published.get((code, "plan")),
                  *(v for v, _ in zoning.overlays(published, code))]
        if any(v is not None and _inside(v.bounds, x, y) for v in layers):
            here = _here(store, published, code, point=(x, y))
            if here.parcels or here.zones or any(records for _, records in here.zoning):
                return code, here
    return None, None


def _nothing_here(store: Store, published: Published, x: float, y: float,
                  district: str | None, here: _Here) -> dict[str, Any]:
    """The answer for a point with no parcel: the plan zone(s) and annual-plan projects
    there (`_here` at the point), if any, and why."""
    lon, lat = (float(v) for v in vncrs.to_lonlat(x, y))
    answer: dict[str, Any] = {
        "parcel": None, "planned": [], "plan": None, "district": district,
        "point": {"lat": round(lat, 7), "lon": round(lon, 7)}
        if math.isfinite(lat) and math.isfinite(lon) else None}
    if district is None:
        reason, (vi, en) = "outside_districts", OUTSIDE_DISTRICTS
    else:
        reason, (vi, en) = "no_parcel", NO_PARCEL
        plan, answer["plan"] = _plan_info(published, district)
        if plan is not None:
            cat = seeds.land_use_catalogue()
            codes = dict.fromkeys(  # in stored order, each code once
                z["land_use"] for z in here.zones if not _na(z["land_use"]))
            answer["planned"] = [{"code": c, "name": cat.name(c), "name_en": cat.name(c, "en"),
                                  "color": cat.color(c), "area_m2": None, "share": None}
                                 for c in codes]
    answer["annual_plans"] = annual.annual_plans(here.projects, shapely.Point(x, y))
    answer["zoning"] = zoning.zoning_at_point(here.zoning, x, y, store)
    answer["units"] = units_at(store, published, x, y, district)
    answer.update(reason=reason, message=vi, message_en=en)
    return answer


def _point_answer(store: Store, published: Published, x: float, y: float,
                  district: str | None, here: _Here | None, *, public: bool) -> dict[str, Any]:
    """The answer at a point of the store CRS in `district` (None: outside every
    district), from what `_here` found there when the caller has it already."""
    if district is None:
        return _nothing_here(store, published, x, y, None, _NOTHING)
    if here is None:
        here = _here(store, published, district, point=(x, y))
    if not here.parcels:  # a district without parcels yet: still a plan zone to show
        return _nothing_here(store, published, x, y, district, here)
    return _answer(store, published, district, published[(district, "parcels")],
                   here.parcels[0], here, public=public)


def _lookup_store_xy(store: Store, x: float, y: float, district: str | None,
                     *, public: bool) -> dict[str, Any]:
    """The point look-up in the store CRS; its snapshot is the district's layers when
    the caller names the district, every district's when it is to be found."""
    district = district_code(district) if district else None

    def answer(published: Published) -> dict[str, Any]:
        found, here = (district, None) if district else _district_at(store, published, x, y)
        return _point_answer(store, published, x, y, found, here, public=public)

    return _consistent(store, district, answer)


def lookup_lonlat(store: Store, lat: Any, lon: Any, district: str | None = None,
                  *, public: bool = True) -> dict[str, Any]:
    """The parcel at WGS 84 ``lat``, ``lon`` (degrees)."""
    lat_f = parse_coordinate(lat, "lat", -90, 90)
    lon_f = parse_coordinate(lon, "lon", -180, 180)
    x, y = vncrs.from_lonlat(lon_f, lat_f)
    return _lookup_store_xy(store, float(x), float(y), district, public=public)


@cache
def province_zones() -> tuple[seeds.SurveyZone, ...]:
    """The survey zones of the province's districts, the store's own first (EPSG:5899,
    then EPSG:9218 for the districts of former Đắk Nông and Bình Thuận). Worked out
    once: asked on every X/Y look-up."""
    own = vncrs.store_crs().to_epsg()
    zones = {seeds.survey_zone(d.code) for d in seeds.districts()}
    return tuple(sorted(zones, key=lambda z: (z.epsg != own, z.epsg)))


def parse_zone(value: Any) -> seeds.SurveyZone:
    """A zone as a user names it: ``9218``, ``EPSG:9218`` or the meridian ``108.5`` /
    ``108°30'``; one of `province_zones` only."""
    zones = province_zones()
    text = str(value).strip().upper().replace(",", ".").replace("EPSG:", "")
    dms = re.fullmatch(r"(\d{3})°\s*(\d{1,2})['′]?", text)
    try:
        degrees = int(dms.group(1)) + int(dms.group(2)) / 60 if dms else float(text)
    except ValueError:
        degrees = None
    for zone in zones:
        if text == str(zone.epsg) or (degrees is not None
                                      and abs(degrees - zone.meridian_deg) < 1e-9):
            return zone
    names = ", ".join(f"{z.epsg} ({vncrs.meridian_text(z.meridian_deg)})" for z in zones)
    raise UsageError(f"zone={value} is not a VN-2000 TM-3 zone of the province",
                     where="zone", fix=f"give one of {names}, or leave it out to let the "
                                       "district (or the point) decide",
                     what_vi=f"“{str(value).strip()[:30]}” không phải múi chiếu VN-2000 TM-3 "
                             "của tỉnh",
                     fix_vi=f"chọn một trong các múi {names}, hoặc để trống để hệ thống tự "
                            "chọn theo huyện (hoặc theo vị trí của điểm)")


def _zone_info(zone: seeds.SurveyZone, how: str) -> dict[str, Any]:
    """What the answer says of the zone the X/Y pair was read in, and why."""
    others = [z for z in province_zones() if z != zone]
    label = f"VN-2000 / TM-3 {vncrs.meridian_text(zone.meridian_deg)} (EPSG:{zone.epsg})"
    other = ", ".join(f"EPSG:{z.epsg}" for z in others)
    notes = {
        "given": ("Tọa độ đọc theo múi chiếu đã chọn: " + label,
                  "X/Y read in the zone given: " + label),
        "district": ("Tọa độ đọc theo múi chiếu của huyện đã chọn: " + label,
                     "X/Y read in the survey zone of the district given: " + label),
        "only": ("Tọa độ đọc theo " + label + ", múi chiếu duy nhất đặt điểm vào một huyện "
                 "đo đạc theo múi đó",
                 "X/Y read in " + label + ", the only zone that puts the point in a "
                 "district surveyed in it"),
        "both": ("Cặp X/Y này hợp lệ ở cả hai múi chiếu (cách nhau khoảng 80 km); đã đọc theo "
                 + label + ". Nếu giấy chứng nhận thuộc huyện cũ của tỉnh Đắk Nông hoặc "
                 "Bình Thuận, hãy chọn múi " + other,
                 "This X/Y pair is valid in both zones (about 80 km apart); read in " + label
                 + ". If the certificate is of a former district of Đắk Nông or Bình Thuận, "
                 "choose zone " + other),
        "none": ("Điểm không thuộc huyện nào ở cả hai múi chiếu; đã đọc theo " + label,
                 "The point falls in no district in either zone; read in " + label),
    }
    vi, en = notes[how]
    return {"crs": zone.crs, "meridian": zone.meridian_deg, "chosen": how,
            "alternatives": [z.crs for z in others], "note": vi, "note_en": en}


def lookup_xy(store: Store, x_north: Any, y_east: Any, district: str | None = None,
              *, zone: Any = None, public: bool = True) -> dict[str, Any]:
    """The parcel at VN-2000 TM-3 ``X`` (northing), ``Y`` (easting), as on a certificate.

    The province has two survey zones 80 km apart (107°45′ for former Lâm Đồng, 108°30′
    for former Đắk Nông and Bình Thuận), and the same X/Y pair is a valid point in
    both. The zone is the one given (`zone`), else the survey zone of the district
    given, else the one whose reading puts the point in a district surveyed in that
    zone; when both readings do, the store's own zone is read and the answer says the
    other one could be meant (``zone.chosen`` = ``both``).
    """
    xn = parse_coordinate(x_north, "x", 0, 10_000_000)
    ye = parse_coordinate(y_east, "y", 0, 1_000_000)
    east, north = vncrs.surveyor_to_xy(xn, ye)
    code = district_code(district) if district else None
    if zone not in (None, ""):
        chosen, how = parse_zone(zone), "given"
    elif code is not None:
        chosen, how = seeds.survey_zone(code), "district"
    else:
        chosen, how = None, ""
    if chosen is not None:
        x, y = vncrs.zone_to_store(chosen.epsg, east, north)
        answer = _lookup_store_xy(store, x, y, code, public=public)
        answer["zone"] = _zone_info(chosen, how)
        return answer

    def answer(published: Published) -> dict[str, Any]:
        readings = []  # per zone: (zone, x, y, the district found there, what was found)
        for z in province_zones():
            x, y = vncrs.zone_to_store(z.epsg, east, north)
            readings.append((z, x, y, *_district_at(store, published, x, y)))
        fits = [r for r in readings if r[3] is not None and seeds.survey_zone(r[3]) == r[0]]
        # None fits: the store's own zone is read (its district, if it fell in one).
        z, x, y, found, here = fits[0] if fits else readings[0]
        how = ("only" if len(fits) == 1 else "both") if fits else "none"
        out = _point_answer(store, published, x, y, found, here, public=public)
        out["zone"] = _zone_info(z, how)
        return out

    return _consistent(store, None, answer)
