"""Reference facts that ship with gisportal (``seeds/``), loaded once and cached.

Land-use codes with official colours, VN-2000 TM-3 central meridians of the 63
pre-2025 provinces, Vietnam's provinces with approximate centres and extents, Lâm
Đồng's administrative units as a dated hierarchy with their communes, the province as
it is from 2025-07-01 (its 124 communes and wards, the former communes each was made
of, and the 28 former districts with their VN-2000 zone), and the per-district status
of the 2021–2030 plans. The files are data: changing a colour
or adding a unit is a reviewed data change, not a code change.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from gisportal.base.errors import GisportalError, NotFoundError, UsageError
from gisportal.base.resources import data_dir
from gisportal.base.text import fold, nfc

__all__ = [
    "LandUse",
    "LandUseCatalogue",
    "land_use_catalogue",
    "ZoningFunction",
    "ZoningFunctions",
    "zoning_functions",
    "Meridian",
    "meridians",
    "meridian_for",
    "AdminUnit",
    "admin_units",
    "districts",
    "district",
    "known_district",
    "district_code",
    "DistrictStatus",
    "district_status",
    "province",
    "province_bbox_lonlat",
    "Province",
    "vn_provinces",
    "vn_province",
    "Commune",
    "communes",
    "communes_of",
    "MERGER_DATE",
    "UNIT_LEVELS",
    "CurrentUnit",
    "FormerPart",
    "FormerDistrict",
    "current_units",
    "lineage",
    "former_parts_of",
    "current_units_of_former",
    "former_commune",
    "former_districts",
    "SurveyZone",
    "survey_zone",
]

#: Colour drawn for a code that is not in the catalogue at all.
UNKNOWN_COLOR = "#C8C8C8"


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(data_dir("seeds") / name, encoding="utf-8", newline="") as fh:
        return [{k: nfc(v) for k, v in row.items()} for row in csv.DictReader(fh)]


# --------------------------------------------------------------------------- land use


@dataclass(frozen=True)
class LandUse:
    """One land-use code of the national catalogue (TT 08/2024, legacy TT 27/2018)."""

    code: str
    group: str  # NNP (agricultural), PNN (non-agricultural), CSD (unused), coastal
    parent: str | None
    status: str  # current | legacy | aggregate | tracking
    color: str  # "#RRGGBB": official, or borrowed (see color_source)
    color_source: str  # "official" or "fallback:<CODE>" when no verified colour exists
    replaced_by: str | None  # for legacy codes: the 2024 code that replaces them
    name_vi: str
    name_en: str
    note: str

    @property
    def color_verified(self) -> bool:
        return self.color_source == "official"


_SPLIT = re.compile(r"\s*[+,;/]\s*")


class LandUseCatalogue:
    """The land-use codes, with parsing of combined codes such as ``"ONT+CLN"``."""

    def __init__(self, rows: list[dict[str, str]]):
        raw = {r["code"]: r for r in rows}
        self._codes: dict[str, LandUse] = {}
        for code, r in raw.items():
            color = r["color"]
            if not color:
                # No verified colour: borrow the colour of the code named in
                # color_source ("fallback:NKH"), as documented in seeds/README.md.
                src = r["color_source"].removeprefix("fallback:")
                color = raw[src]["color"] if src in raw else UNKNOWN_COLOR
            self._codes[code] = LandUse(
                code=code,
                group=r["group"],
                parent=r["parent"] or None,
                status=r["status"],
                color=color.upper(),
                color_source=r["color_source"],
                replaced_by=r["replaced_by"] or None,
                name_vi=r["name_vi"],
                name_en=r["name_en"],
                note=r["note"],
            )

    def __contains__(self, code: object) -> bool:
        return code in self._codes

    def __iter__(self):
        return iter(self._codes.values())

    def __len__(self) -> int:
        return len(self._codes)

    def get(self, code: str) -> LandUse | None:
        return self._codes.get(code.strip().upper())

    @staticmethod
    def split(value: str) -> list[str]:
        """Split a combined code into its parts: ``"ONT+CLN"`` → ``["ONT", "CLN"]``.

        Real files join parts with ``+`` mostly, sometimes ``,`` ``;`` or ``/``.
        Parts are upper-cased and stripped; empty parts are dropped.
        """
        return [p.upper() for p in _SPLIT.split(value.strip()) if p]

    def unknown_parts(self, value: str) -> list[str]:
        """The parts of ``value`` that are not catalogue codes (empty when all are known)."""
        return [p for p in self.split(value) if p not in self._codes]

    def primary(self, value: str) -> LandUse | None:
        """The first known part of a (combined) code: it decides the map colour."""
        for part in self.split(value):
            if part in self._codes:
                return self._codes[part]
        return None

    def color(self, value: str) -> str:
        """Map colour for a (combined) code; grey for unknown codes."""
        lu = self.primary(value)
        return lu.color if lu else UNKNOWN_COLOR

    def name(self, value: str, lang: str = "vi") -> str:
        """Human name of a (combined) code, parts joined with " + "."""
        names = []
        for part in self.split(value):
            lu = self._codes.get(part)
            names.append((lu.name_vi if lang == "vi" else lu.name_en) if lu else part)
        return " + ".join(names)


@cache
def land_use_catalogue() -> LandUseCatalogue:
    """The shipped land-use catalogue (``seeds/land_use_codes.csv``)."""
    return LandUseCatalogue(_read_csv("land_use_codes.csv"))


# --------------------------------------------------------------------------- zoning


@dataclass(frozen=True)
class ZoningFunction:
    """A land-use function of a construction/urban zoning plan (QCVN 01:2021/BXD)."""

    code: str
    group: str  # residential, mixed, public, commercial, green, ... (seeds/README.md)
    name_vi: str
    name_en: str
    color: str  # "#RRGGBB" as planning drawings use it (color_source says how sure)
    color_source: str
    aliases: tuple[str, ...]  # codes and names files use for it


class ZoningFunctions:
    """The functions catalogue, resolving what files write (a code, a name, an
    abbreviation, with or without accents) to its code."""

    def __init__(self, rows: list[dict[str, str]]):
        from gisportal.base.models import name_key  # models imports nothing from here

        self._codes: dict[str, ZoningFunction] = {}
        self._by_key: dict[str, str] = {}
        for r in rows:
            aliases = tuple(a.strip() for a in r["aliases"].split("|") if a.strip())
            f = ZoningFunction(code=r["code"], group=r["group"], name_vi=r["name_vi"],
                               name_en=r["name_en"], color=r["color"].upper(),
                               color_source=r["color_source"], aliases=aliases)
            self._codes[f.code] = f
            for spelling in (f.code, f.name_vi, f.name_en, *aliases):
                key = name_key(spelling)
                if key in self._by_key and self._by_key[key] != f.code:
                    raise ValueError(f"seeds/zoning_functions.csv: {spelling!r} names both "
                                     f"{self._by_key[key]} and {f.code}")
                self._by_key[key] = f.code
        self._key = name_key

    def __contains__(self, code: object) -> bool:
        return code in self._codes

    def __iter__(self):
        return iter(self._codes.values())

    def __len__(self) -> int:
        return len(self._codes)

    def get(self, code: str) -> ZoningFunction | None:
        return self._codes.get(code)

    def resolve(self, value: str) -> str | None:
        """The code ``value`` names (``"Đất ở mới"``, ``"dat o moi"``, ``"om"`` → ODM),
        None when the catalogue does not know it. A lot code written before the
        function (``"ODM-01"``, ``"CX.3"``) is not guessed at: files that mix the two
        are mapped with --field. Names are matched with or without their leading
        "Đất" (legends write "Cây xanh" for "Đất cây xanh")."""
        key = self._key(value)
        return self._by_key.get(key) or self._by_key.get("dat" + key)

    def color(self, code: str) -> str:
        f = self._codes.get(code)
        return f.color if f else UNKNOWN_COLOR


@cache
def zoning_functions() -> ZoningFunctions:
    """The shipped functions of zoning plans (``seeds/zoning_functions.csv``)."""
    return ZoningFunctions(_read_csv("zoning_functions.csv"))


# --------------------------------------------------------------------------- meridians


@dataclass(frozen=True)
class Meridian:
    """Central meridian of a province's VN-2000 TM-3 zone (k0 0.9999, FE 500 000 m)."""

    province: str
    meridian_deg: float
    epsg: int | None
    epsg_status: str  # verified | believed


@cache
def meridians() -> tuple[Meridian, ...]:
    """All 63 pre-2025 provinces."""
    return tuple(
        Meridian(r["province"], float(r["meridian_deg"]), int(r["epsg"]) if r["epsg"] else None,
                 r["epsg_status"])
        for r in _read_csv("vn2000_tm3_meridians.csv")
    )


def meridian_for(province: str) -> Meridian:
    """The TM-3 meridian of a province, matched without diacritics ("lam dong")."""
    key = fold(province).removeprefix("tinh ").removeprefix("tp. ").removeprefix("thanh pho ")
    for m in meridians():
        if fold(m.province).removeprefix("tp. ") == key:
            return m
    raise KeyError(f"unknown province {province!r}")


# --------------------------------------------------------------------------- admin units


@dataclass(frozen=True)
class AdminUnit:
    """An administrative unit valid over a date range (``valid_to`` inclusive)."""

    code: str
    level: str  # province | district
    name: str
    parent: str | None
    valid_from: date | None
    valid_to: date | None
    successors: tuple[str, ...] = ()
    predecessors: tuple[str, ...] = ()
    type: str = ""
    communes: dict[str, int] | None = None
    seat_towns: tuple[str, ...] = ()
    anchor_lonlat: tuple[float, float] | None = None
    #: centroid of the real district (lon, lat): what an uploaded outline is checked against
    centre_lonlat: tuple[float, float] | None = None
    area_km2: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique identity: codes are reused over time (682), so code@valid_from."""
        return f"{self.code}@{self.valid_from.isoformat() if self.valid_from else ''}"

    @property
    def short_name(self) -> str:
        """Name without the "Huyện"/"Thành phố" prefix, for compact labels."""
        return _short_name(self.name)

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


def _short_name(name: str) -> str:
    """A unit's name without its level ("Huyện", "Thành phố", ...), for compact labels."""
    for prefix in ("Thành phố ", "Huyện ", "Thị xã ", "Tỉnh "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@cache
def admin_units() -> tuple[AdminUnit, ...]:
    """Every unit of ``seeds/admin_units.json``, whatever its dates."""
    with open(data_dir("seeds") / "admin_units.json", encoding="utf-8") as fh:
        doc = json.load(fh)
    known = {f.name for f in AdminUnit.__dataclass_fields__.values()}
    units = []
    for u in doc["units"]:
        units.append(
            AdminUnit(
                code=u["code"],
                level=u["level"],
                name=nfc(u["name"]),
                parent=u.get("parent"),
                valid_from=_date(u.get("valid_from")),
                valid_to=_date(u.get("valid_to")),
                successors=tuple(u.get("successors") or ()),
                predecessors=tuple(u.get("predecessors") or ()),
                type=u.get("type", ""),
                communes=u.get("communes"),
                seat_towns=tuple(nfc(s) for s in u.get("seat_towns") or ()),
                anchor_lonlat=tuple(u["anchor_lonlat"]) if u.get("anchor_lonlat") else None,
                centre_lonlat=tuple(u["centre_lonlat"]) if u.get("centre_lonlat") else None,
                area_km2=u.get("area_km2"),
                extra={k: v for k, v in u.items() if k not in known},
            )
        )
    return tuple(units)


#: The 2021–2030 plans are documents of the districts as they were before the 2025
#: merges, so that is the default date for "the districts".
PLAN_DISTRICTS_DATE = date(2024, 12, 31)


def districts(on: date = PLAN_DISTRICTS_DATE) -> list[AdminUnit]:
    """The district-level units valid on ``on``, by code."""
    return sorted((u for u in admin_units() if u.level == "district" and u.valid_on(on)),
                  key=lambda u: u.code)


def district(code: str, on: date = PLAN_DISTRICTS_DATE) -> AdminUnit:
    """One district by GSO code, as it was on ``on``; KeyError when unknown."""
    for u in districts(on):
        if u.code == str(code).strip():
            return u
    raise KeyError(str(code))


def known_district(code: object, *, where: str = "district",
                   error: type[GisportalError] = NotFoundError) -> AdminUnit:
    """The one answer to "is this a district of the province?": its unit, or `error`
    (NotFoundError by default: a 404 on the web; commands pass UsageError) naming the
    known codes, code ``DISTRICT-UNKNOWN``.

    This asks the province's seeds; whether a string is merely *shaped* like a unit
    code (safe in a file name) is `gisportal.store.base.check_district_code`.
    """
    text = "" if code is None else str(code).strip()
    try:
        return district(text)
    except KeyError:
        own = province()["code"]  # former Lâm Đồng's first, then the others by code
        known = ", ".join(f"{d.code} {d.short_name}" for d in sorted(
            districts(), key=lambda d: (d.parent != own, d.code)))
        raise error(f"unknown district code {text[:20]!r}", where=where,
                    fix=f"use a GSO district code: {known}", code="DISTRICT-UNKNOWN",
                    what_vi=f"không có huyện mã “{text[:20]}”",
                    fix_vi="chọn huyện trên bản đồ của tỉnh ở trang chủ") from None


def district_code(code: object, *, where: str = "--district") -> str | None:
    """`known_district` for an optional argument of a command or service: None stays
    None, a known code is returned as its code, anything else is a UsageError."""
    if code is None:
        return None
    return known_district(code, where=where, error=UsageError).code


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class DistrictStatus:
    """Where a district's 2021–2030 plan and digitised cadastre stand."""

    district_code: str
    plan_status: str  # approved | under_appraisal | unknown (no published fact)
    cadastre_status: str | None  # digitised | in_correction | None (not reported)
    as_of: str
    source: str

    @property
    def portal_status(self) -> str:
        """One status for the province map: approved > in_correction > digitised >
        appraisal; ``unknown`` where no fact is published (former Đắk Nông and Bình
        Thuận: the seeds table is the August 2023 announcement of former Lâm Đồng)."""
        if self.plan_status == "approved":
            return "approved"
        return self.cadastre_status or self.plan_status


@cache
def district_status() -> dict[str, DistrictStatus]:
    """Status by district code (``seeds/district_status.csv``)."""
    return {
        r["district_code"]: DistrictStatus(r["district_code"], r["plan_status"],
                                           r["cadastre_status"] or None, r["as_of"], r["source"])
        for r in _read_csv("district_status.csv")
    }


@cache
def province() -> dict[str, Any]:
    """The province the deployment serves: code, name, store CRS, default view."""
    with open(data_dir("seeds") / "province.json", encoding="utf-8") as fh:
        return json.load(fh)


def province_bbox_lonlat() -> tuple[float, float, float, float]:
    """The served province's extent (min lon, min lat, max lon, max lat), WGS 84.

    The one place the extent is read: CRS inference, the placement checks and the
    messages all take it from here, so a change of geography (the 2025 province) is
    one change of ``seeds/province.json``.
    """
    b = province()["bbox_lonlat"]
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


# --------------------------------------------------------------------------- provinces


@dataclass(frozen=True)
class Province:
    """A province of Vietnam with an approximate centre and extent (not a boundary).

    The 63 provinces until 2025-06-30 and the 34 from 2025-07-01 (each a union of
    whole former provinces, listed in ``predecessors``). Centres and extents are
    compiled for telling where misplaced data lies (about ±10 km); extents cover the
    mainland and near islands, not the offshore archipelagos.
    """

    code: str
    name: str
    type: str  # tỉnh | thành phố
    valid_from: date | None
    valid_to: date | None
    predecessors: tuple[str, ...]
    centre_lonlat: tuple[float, float]
    bbox_lonlat: tuple[float, float, float, float]

    @property
    def full_name(self) -> str:
        """"Tỉnh Lâm Đồng", "Thành phố Hà Nội"."""
        return f"{self.type[:1].upper()}{self.type[1:]} {self.name}"

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to)


@cache
def _all_provinces() -> tuple[Province, ...]:
    out = []
    for r in _read_csv("vn_provinces.csv"):
        out.append(Province(
            code=r["code"], name=r["name"], type=r["type"], valid_from=_date(r["valid_from"]),
            valid_to=_date(r["valid_to"]), predecessors=tuple(r["predecessors"].split()),
            centre_lonlat=(float(r["centre_lon"]), float(r["centre_lat"])),
            bbox_lonlat=(float(r["min_lon"]), float(r["min_lat"]), float(r["max_lon"]),
                         float(r["max_lat"]))))
    return tuple(out)


def vn_provinces(on: date = PLAN_DISTRICTS_DATE) -> list[Province]:
    """Vietnam's provinces valid on ``on`` (default: the 63 the 2021–2030 plans know)."""
    return [p for p in _all_provinces() if p.valid_on(on)]


def vn_province(code: str, on: date = PLAN_DISTRICTS_DATE) -> Province:
    """One province by GSO code as it was on ``on``; KeyError when unknown."""
    for p in vn_provinces(on):
        if p.code == str(code).strip():
            return p
    raise KeyError(str(code))


# --------------------------------------------------------------------------- communes


@dataclass(frozen=True)
class Commune:
    """A commune (xã, phường, thị trấn) of the served province and its district."""

    code: str
    name: str
    district: str


@cache
def communes() -> dict[str, Commune]:
    """Every listed commune by GSO code (``seeds/communes.csv``)."""
    return {r["code"]: Commune(r["code"], r["name"], r["district_code"])
            for r in _read_csv("communes.csv")}


def communes_of(district_code: str) -> dict[str, Commune]:
    """The listed communes of one district by code (empty for an unknown district).

    Districts are those of the 2021–2030 plans: 682 is Đạ Tẻh here, as everywhere a
    code is looked up without a date.
    """
    code = str(district_code).strip()
    return {c.code: c for c in communes().values() if c.district == code}


# ----------------------------------------------------- the province from 2025-07-01


#: The day the district level ended and Lâm Đồng, Đắk Nông and Bình Thuận became one
#: province of 124 communes and wards (Resolution 202/2025/QH15 and 1654–1687/NQ-UBTVQH15).
MERGER_DATE = date(2025, 7, 1)

#: Level identifiers of communes (xã, phường, thị trấn, đặc khu), as the JSON carries
#: them; pages name them through their ``level_<id>`` strings (gisportal.web.i18n).
UNIT_LEVELS = ("commune", "ward", "township", "special_zone")


@dataclass(frozen=True)
class CurrentUnit:
    """A commune, ward or special zone of the province from `MERGER_DATE`."""

    code: str
    name: str
    level: str  # a key of UNIT_LEVELS
    valid_from: date


@dataclass(frozen=True)
class FormerPart:
    """One former commune (before `MERGER_DATE`) that went, wholly or in part, into a
    current unit: what older land certificates name."""

    unit: str  # the current unit's code
    code: str
    name: str
    level: str
    district: str  # the former district's code (as on 2025-06-30: 682 is the merged Đạ Huoai)
    province: str  # the former province's GSO code: 68 Lâm Đồng, 67 Đắk Nông, 60 Bình Thuận
    share: str  # full | partial (split between two current units)


@dataclass(frozen=True)
class FormerDistrict:
    """A district of the three former provinces, with the VN-2000 TM-3 zone its surveys
    were made in: every cadastre and plan of it is in that zone."""

    code: str
    name: str
    province: str
    province_name: str
    meridian_deg: float
    epsg: int
    valid_to: date
    note: str = ""

    @property
    def short_name(self) -> str:
        """Name without the "Huyện"/"Thành phố" prefix, for compact labels."""
        return _short_name(self.name)


@cache
def current_units() -> dict[str, CurrentUnit]:
    """The 124 communes, wards and special zone of today's province by GSO code
    (``seeds/units_2025.csv``)."""
    return {r["code"]: CurrentUnit(r["code"], r["name"], r["level"],
                                   date.fromisoformat(r["valid_from"]))
            for r in _read_csv("units_2025.csv")}


@cache
def lineage() -> tuple[FormerPart, ...]:
    """Every (current unit, former commune) pair of the 2025 reorganisation
    (``seeds/lineage_2025.csv``), by current unit then former code."""
    return tuple(FormerPart(r["unit_code"], r["former_code"], r["former_name"],
                            r["former_level"], r["former_district"], r["former_province"],
                            r["share"])
                 for r in _read_csv("lineage_2025.csv"))


@cache
def _parts_by(attribute: str) -> dict[str, tuple[FormerPart, ...]]:
    """The lineage grouped by ``unit`` (current code) or ``code`` (former code)."""
    out: dict[str, list[FormerPart]] = {}
    for part in lineage():
        out.setdefault(getattr(part, attribute), []).append(part)
    return {k: tuple(v) for k, v in out.items()}


def former_parts_of(unit_code: str) -> tuple[FormerPart, ...]:
    """The former communes a current unit was made of (empty for an unknown code)."""
    return _parts_by("unit").get(str(unit_code).strip(), ())


def former_commune(commune_code: str) -> tuple[FormerPart, ...]:
    """The lineage rows of one former commune: one, or two when it was split (empty for a
    code that is not a former commune of the province)."""
    return _parts_by("code").get(str(commune_code).strip(), ())


def current_units_of_former(commune_code: str) -> tuple[CurrentUnit, ...]:
    """The current unit(s) a former commune went into: one, or two when it was split
    (``share = partial``); empty for a code that is not a former commune."""
    units = current_units()
    return tuple(units[p.unit] for p in former_commune(commune_code))


@cache
def former_districts() -> dict[str, FormerDistrict]:
    """The 28 districts of former Lâm Đồng, Đắk Nông and Bình Thuận by GSO code, with
    their TM-3 meridian and its EPSG code (``seeds/former_districts.csv``)."""
    return {r["code"]: FormerDistrict(r["code"], r["name"], r["former_province"],
                                      r["former_province_name"], float(r["meridian_deg"]),
                                      int(r["epsg"]), date.fromisoformat(r["valid_to"]),
                                      r["note"])
            for r in _read_csv("former_districts.csv")}


@dataclass(frozen=True)
class SurveyZone:
    """The VN-2000 TM-3 zone a district's surveys are in: its EPSG code and meridian."""

    epsg: int
    meridian_deg: float

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"


def survey_zone(district_code: str) -> SurveyZone:
    """The zone every cadastre and plan of a (former) district was surveyed in: the
    meridian of its former province (Quyết định 973/2001/TT-TCĐC). A district of the
    2024 map absent from `former_districts` (Đạ Tẻh's and Cát Tiên's codes 681, 683,
    merged into Đạ Huoai on 2025-01-01) takes its former province's zone; an unknown
    code the province's own (EPSG:5899 here)."""
    code = str(district_code).strip()
    found = former_districts().get(code)
    if found is None:
        unit = next((u for u in admin_units() if u.code == code and u.level == "district"),
                    None)
        found = next((f for f in former_districts().values()
                      if unit is not None and f.province == unit.parent), None)
    if found is not None:
        return SurveyZone(found.epsg, found.meridian_deg)
    prov = province()
    return SurveyZone(int(str(prov["crs"]).split(":")[1]), float(prov["tm3_meridian_deg"]))
