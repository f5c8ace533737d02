"""What the parcel sheet says: one function, for the page and its PDF alike.

`build_sheet` turns a look-up answer (`gisportal.services.lookup`, keys ``parcel``,
``planned``, ``plan``, ``units``, ``annual_plans``) into a `SheetContent`: every value
already formatted for the reader's language (`gisportal.base.formats`), the corner
table in the district's survey zone (`corners`) and the map as SVG (`svgmap`). The web
layer renders it with one template for both answers, so the HTML page and the PDF
cannot say different things.

It reads the store three times, all around the one parcel: the parcel itself (its
geometry and its canonical ``address``, which the look-up does not answer), the
parcels and the plan zones in the map's window; and, when the parcel has an address,
the parcels version's allow-list (`outputs.privacy`). It takes the versions from the
answer, not from the catalogue again, so the sheet describes the very state the
look-up answered from — and names those versions, so a printed sheet can be traced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import shapely

from gisportal.base import formats, seeds
from gisportal.base.crs import meridian_text
from gisportal.base.errors import NotFoundError
from gisportal.base.text import nfc
from gisportal.outputs import privacy
from gisportal.outputs.sheet import svgmap
from gisportal.outputs.sheet.corners import CornerTable, corner_table
from gisportal.outputs.sheet.strings import text
from gisportal.store.base import Store
from gisportal.store.projects import LEVEL_NAMES

__all__ = ["AnnualRow", "CornerRow", "Decision", "PlannedRow", "SheetContent",
           "ZoningLot", "ZoningPlan", "build_sheet", "today_in_vietnam"]


def today_in_vietnam() -> date:
    """Today in Asia/Ho_Chi_Minh (UTC+7 all year: Việt Nam keeps no daylight time), so
    a sheet printed at 06:00 in Đà Lạt is not dated yesterday by a server on UTC."""
    try:
        from zoneinfo import ZoneInfo

        zone: Any = ZoneInfo("Asia/Ho_Chi_Minh")
    except Exception:  # no tz database on the host: the offset is fixed anyway
        zone = timezone(timedelta(hours=7))
    return datetime.now(zone).date()


@dataclass(frozen=True)
class PlannedRow:
    """A planned use over the parcel: code, name in the reader's language, colour."""

    code: str
    name: str
    color: str
    area_m2: float | None
    area: str
    share: str


@dataclass(frozen=True)
class Decision:
    """The plan in force over the parcel and what approved it."""

    number: str | None
    date: str | None
    authority: str | None
    pdf_url: str | None
    #: A plan published for comment, without its decision (`workflow.publish`).
    consultation: bool
    status_label: str | None
    version: int


@dataclass(frozen=True)
class AnnualRow:
    """A project of an annual land-use plan over the parcel."""

    year: int | None
    name: str
    code: str | None
    land_use: str | None
    land_use_name: str
    color: str | None
    area: str
    overlap: str
    decision: str | None


@dataclass(frozen=True)
class ZoningLot:
    """A planned lot of a construction or urban plan the parcel falls in (formatted)."""

    code: str
    function: str
    function_name: str
    color: str | None
    area: str
    share: str
    density: str
    floors: str
    far: str


@dataclass(frozen=True)
class ZoningPlan:
    """A construction or urban plan over the parcel (the look-up's ``zoning``)."""

    name: str
    level: str
    decision: str | None
    lots: tuple[ZoningLot, ...]
    #: The part a planned road takes, its roads and the setback, as one sentence.
    road: str | None


def _zoning(answer: Mapping[str, Any], lang: str) -> tuple[ZoningPlan, ...]:
    out = []
    for z in answer.get("zoning") or ():
        project = z.get("project") or {}
        level = LEVEL_NAMES.get(str(project.get("level")), {}).get(lang, "")
        d = project.get("decision")
        decision = None
        if d and d.get("number"):
            day = formats.date(d["date"], lang) if d.get("date") else ""
            decision = " ".join(x for x in (text("sh_decision_no", lang), d["number"],
                                            text("sh_dated", lang) if day else "", day) if x)
        lots = []
        for lot in z.get("lots") or ():
            lo, hi = lot.get("floors_min"), lot.get("floors_max")
            floors = "" if lo is None and hi is None else (
                str(hi if lo is None else lo) if lo is None or hi is None or lo == hi
                else f"{lo}–{hi}")
            lots.append(ZoningLot(
                code=str(lot.get("code") or ""), function=str(lot.get("function") or ""),
                function_name=str((lot.get("function_name_en") if lang == "en"
                                   else lot.get("function_name")) or ""),
                color=lot.get("color"), area=formats.area_m2(lot.get("area_m2"), lang),
                share=formats.share(lot.get("share"), lang),
                density="" if lot.get("max_density_pct") is None else
                formats.number(lot["max_density_pct"], 0, lang) + " %",
                floors=floors,
                far="" if lot.get("far") is None else formats.number(lot["far"], 2, lang)))
        road = None
        red = z.get("red_line")
        if red and red.get("area_m2") is not None:
            road = text("sh_zoning_road", lang, area=formats.area_m2(red["area_m2"], lang),
                        share=formats.share(red.get("share"), lang))
            names = [r["name"] + (f" ({formats.length_m(r['width_m'], lang)})"
                                  if r.get("width_m") is not None else "")
                     for r in red.get("roads") or () if r.get("name")]
            if names:
                road += "; " + text("sh_zoning_roads", lang) + " " + ", ".join(names)
            if red.get("building_line_m") is not None:
                road += "; " + text("sh_zoning_setback", lang,
                                    m=formats.length_m(red["building_line_m"], lang))
        out.append(ZoningPlan(name=str(project.get("name") or ""), level=level,
                              decision=decision, lots=tuple(lots), road=road))
    return tuple(out)


@dataclass(frozen=True)
class CornerRow:
    """One row of the printed coordinate table (formatted)."""

    number: int
    x: str
    y: str
    edge: str
    part: int


@dataclass(frozen=True)
class SheetContent:
    """Everything the sheet shows, in one language (see the module docstring)."""

    lang: str
    district: str
    district_name: str
    commune_code: str | None
    #: Today's commune or ward; several names when a split former commune's parcel
    #: could not be placed.
    commune_today: tuple[str, ...]
    commune_approximate: bool
    #: The former commune (when its name differs from today's) and district(s).
    former: tuple[str, ...]
    address: str | None
    sheet: int | None
    parcel: int | None
    area: str
    area_computed: str | None
    current_use: str | None
    current_use_name: str
    current_color: str
    planned: tuple[PlannedRow, ...]
    plan_published: bool
    decision: Decision | None
    annual: tuple[AnnualRow, ...]
    corners: tuple[CornerRow, ...]
    corner_table: CornerTable
    zone_label: str
    thinned_note: str | None
    map_svg: str
    issued: date
    issued_text: str
    parcels_version: int
    plan_version: int | None
    data_note: str
    point: Mapping[str, float]
    attributes: Mapping[str, str] | None = field(default=None)
    #: The construction and urban plans over the parcel (issue 15), largest lot first.
    zoning: tuple[ZoningPlan, ...] = ()


def _key(record: Mapping[str, Any]) -> tuple[Any, Any]:
    return record.get("sheet"), record.get("parcel")


def _parcel_record(store: Store, p: Mapping[str, Any]) -> dict[str, Any]:
    where: dict[str, Any] = {"sheet": p["sheet"], "parcel": p["parcel"]}
    if p.get("commune"):
        where["commune"] = p["commune"]
    found = store.records(p["version"], where=where)
    if not found:  # republished between the look-up and this read
        raise NotFoundError(f"sheet {p['sheet']}, parcel {p['parcel']} is no longer published",
                            where=f"district {p['district']}",
                            fix="open the parcel again from the map")
    return found[0]


def _units(units: Mapping[str, Any] | None) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """Today's name(s), whether they are approximate, and the former units to show."""
    if not units:
        return (), False, ()
    current = units.get("current")
    today = ((current["name"],) if current else
             tuple(u["name"] for u in units.get("current_options") or ()))
    former = [u["name"] for u in units.get("former") or ()]
    if former and today and former[0] in today:  # the commune kept its name
        former = former[1:]
    return today, bool(units.get("current_approximate")), tuple(former)


def _decision(plan: Mapping[str, Any] | None, lang: str) -> Decision | None:
    if not plan:
        return None
    draft = plan.get("status") == "consultation"
    return Decision(
        number=plan.get("decision"),
        date=formats.date(plan["date"], lang) if plan.get("date") else None,
        authority=plan.get("authority"), pdf_url=plan.get("decision_pdf"),
        consultation=draft,
        status_label=(plan.get("status_label_en") if lang == "en" else
                      plan.get("status_label")) if draft else None,
        version=int(plan["version"]))


def _map(store: Store, answer: Mapping[str, Any], geom, corners: CornerTable,
         lang: str) -> str:
    p = answer["parcel"]
    frame = svgmap.frame_around(shapely.bounds(geom))
    cat = seeds.land_use_catalogue()
    zones: list[svgmap.Zone] = []
    if answer.get("plan"):
        for z in store.records(answer["plan"]["version"], bbox=frame.bbox,
                               columns=["land_use"]):
            code = z.get("land_use")
            if z.get("geometry") is not None:
                zones.append(svgmap.Zone(z["geometry"], str(code or ""), cat.color(code or "")))
    neighbours = []
    bounds = tuple(shapely.bounds(geom))
    for r in store.records(p["version"], bbox=frame.bbox, columns=["sheet", "parcel"]):
        g = r.get("geometry")
        if g is None or (_key(r) == (p["sheet"], p["parcel"])
                         and tuple(shapely.bounds(g)) == bounds):
            continue  # the parcel itself
        label = str(r["parcel"]) if r.get("sheet") == p["sheet"] and r.get("parcel") else ""
        neighbours.append(svgmap.Neighbour(g, label))
    return svgmap.map_svg(
        frame, geom, zones=zones, neighbours=neighbours,
        parcel_label=str(p["parcel"]) if p.get("parcel") is not None else "",
        corners=[(c.number, *c_grid) for c, c_grid in zip(corners.corners, corners.grid,
                                                          strict=True)],
        lang=lang, north=text("sh_north", lang), title=text("sh_map", lang))


def build_sheet(store: Store, answer: Mapping[str, Any], *, lang: str = "vi",
                today: date | None = None, staff: bool = False) -> SheetContent:
    """The sheet of the parcel a look-up answered (`lookup_key`'s answer).

    `staff` adds the parcel's source attributes as the answer gives them (all of them,
    personal data included, when the caller looked up as staff); without it the
    canonical address is shown only if the version's allow-list lets it out.
    """
    lang = "en" if lang == "en" else "vi"
    p = answer["parcel"]
    record = _parcel_record(store, p)
    geom = record["geometry"]
    district = str(p["district"])
    cat = seeds.land_use_catalogue()

    address = record.get("address")
    if address and not staff and not privacy.is_public(store.version(p["version"]),
                                                       "address"):
        address = None
    table = corner_table(geom, district)
    corners = tuple(CornerRow(c.number, formats.number(c.x_north, 2, lang, grouping=False),
                              formats.number(c.y_east, 2, lang, grouping=False),
                              formats.number(c.edge_m, 2, lang), c.part)
                    for c in table.corners)
    thinned = text("sh_thinned", lang, total=formats.number(table.total, 0, lang),
                   shown=len(table.corners),
                   tolerance=formats.length_m(table.tolerance_m, lang)) \
        if table.thinned else None
    zone_label = text("sh_zone", lang, meridian=meridian_text(table.meridian_deg),
                      epsg=table.epsg)
    today_names, approximate, former = _units(answer.get("units"))
    use = p.get("current_use")
    plan = answer.get("plan")
    day = today or today_in_vietnam()
    declared, computed = p.get("area_m2"), p.get("area_computed_m2")
    return SheetContent(
        lang=lang, district=district, district_name=str(p.get("district_name") or ""),
        commune_code=p.get("commune"), commune_today=today_names,
        commune_approximate=approximate, former=former,
        address=nfc(str(address)).strip() or None if address else None,
        sheet=p.get("sheet"), parcel=p.get("parcel"),
        area=formats.area_m2(declared, lang),
        area_computed=formats.area_m2(computed, lang)
        if computed is not None and declared is not None
        and formats.number(computed, 1) != formats.number(declared, 1) else None,
        current_use=use, current_use_name=cat.name(use, lang) if use else "",
        current_color=cat.color(use) if use else "#ffffff",
        planned=tuple(PlannedRow(x["code"], x["name_en"] if lang == "en" else x["name"],
                                 x["color"], x.get("area_m2"),
                                 formats.area_m2(x.get("area_m2"), lang),
                                 formats.share(x.get("share"), lang))
                      for x in answer.get("planned") or ()),
        plan_published=plan is not None, decision=_decision(plan, lang),
        annual=tuple(AnnualRow(
            year=x.get("year"), name=str(x.get("name") or ""), code=x.get("code"),
            land_use=x.get("land_use"),
            land_use_name=str((x.get("land_use_name_en") if lang == "en"
                               else x.get("land_use_name")) or ""),
            color=x.get("color"), area=formats.area_m2(x.get("area_m2"), lang),
            overlap=formats.area_m2(x.get("overlap_m2"), lang)
            + (f" ({formats.share(x['share'], lang)})" if x.get("share") is not None else "")
            if x.get("overlap_m2") is not None else "",
            decision=x.get("decision")) for x in answer.get("annual_plans") or ()),
        corners=corners, corner_table=table, zone_label=zone_label, thinned_note=thinned,
        map_svg=_map(store, answer, geom, table, lang),
        issued=day, issued_text=formats.date(day, lang),
        parcels_version=int(p["version"]),
        plan_version=int(plan["version"]) if plan else None,
        data_note=text("sh_data", lang, parcels=p["version"], plan=plan["version"])
        if plan else text("sh_data_no_plan", lang, parcels=p["version"]),
        point=p.get("point") or {},
        attributes=dict(p.get("attributes") or {}) if staff else None,
        zoning=_zoning(answer, lang))
