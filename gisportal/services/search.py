"""The resident's search box: one query string, understood as what a resident types.

In this order: VN-2000 surveyor "X Y" (two numbers over 100 000, X = northing), a
WGS 84 "lat, lon", a sheet + parcel ("12/345", "tờ 12 thửa 345 Liên Nghĩa"), and
otherwise a place name matched without diacritics ("duc trong" → Huyện Đức Trọng).
The first three answer what `gisportal.services.lookup` answers; place names answer a list of
districts and communes with their WGS 84 bounding boxes, best match first, with the
parcels of the district whose address (``DiaChiThua``) contains the words typed and the
plan areas and annual-plan projects whose name does.

A sheet + parcel that several communes of the district share (the commonest search:
residents type "tờ 12 thửa 345" without the commune) answers the list of those parcels,
each with its commune (``kind: "choices"``), to pick one from; it is not an error.
A point (lat, lon or X Y) is looked up wherever it falls: from a district's page, a
point in the neighbouring district answers that district's parcel, and the page says so.

Places include today's communes and wards (from 2025-07-01, `seeds.current_units`),
found by their own name or by the name of a former commune they were made of, as older
land certificates write it: "Phường 7, Đà Lạt" finds "Phường Lang Biang - Đà Lạt", and
the answer says which former commune matched (``former``) and what became of it
(``note`` in Vietnamese, ``note_en``). A current unit's box is that of its former
communes in the published boundary layers, when they are there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import shapely

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.base.errors import NotFoundError, UsageError
from gisportal.base.seeds import district_code
from gisportal.base.text import fold, nfc
from gisportal.outputs import privacy
from gisportal.services import lookup as lk
from gisportal.store.base import Store, Version
from gisportal.store.derived import derived

__all__ = ["search", "commune_names", "MAX_MATCHES", "MAX_PLACES"]

#: At most this many places in an answer.
MAX_PLACES = 10
#: At most this many parcels found by address, and plan areas or projects by name.
MAX_MATCHES = 10
#: Shortest text (letters and digits, folded) searched for in addresses and names:
#: shorter ones match half the district.
MIN_TEXT = 3
#: Longer queries are refused (nothing a resident types is this long).
MAX_QUERY = 200

_NUM = r"(-?\d+(?:\.\d+)?)"
_TWO_NUMBERS = re.compile(rf"^{_NUM}\s*(?:[,;]\s*|\s+){_NUM}$")
_SHEET_WORD = r"(?:to(?:\s+ban\s+do)?|sheet|map\s+sheet)(?:\s+so)?\.?"
_PARCEL_WORD = r"(?:thua(?:\s+dat)?|parcel|lot)(?:\s+so)?\.?"
#: "12/345", "12 345", "12-345", "to 12 thua 345", each optionally followed by a commune.
_PARCEL_AFTER = re.compile(
    rf"^(?:{_SHEET_WORD}\s*)?(\d+)\s*(?:[/,;\-]\s*|\s+)(?:{_PARCEL_WORD}\s*)?(\d+)"
    rf"(?:\s*[,;\-]?\s*(.+))?$")
#: "Liên Nghĩa, tờ 12 thửa 345": the commune first, then the words "tờ" and "thửa".
_PARCEL_BEFORE = re.compile(
    rf"^(.+?)\s*[,;\-]?\s*{_SHEET_WORD}\s*(\d+)\s*[/,;\-]?\s*{_PARCEL_WORD}\s*(\d+)$")
_COMMA_DECIMALS = re.compile(r"^-?\d+,\d+\s*[;\s]\s*-?\d+,\d+$")
_SHEET_ONLY = re.compile(rf"^{_SHEET_WORD}\s*\d+$")
#: Administrative prefixes that residents often leave out, folded.
_PREFIXES = ("thanh pho ", "thi tran ", "thi xa ", "huyen ", "phuong ", "xa ", "tp. ", "tp ",
             "tt. ", "tt ", "h. ", "x. ", "p. ")


@dataclass(frozen=True)
class _Place:
    level: str
    code: str
    name: str
    district: str
    keys: tuple[str, ...]  # folded full name, then folded short name
    bbox: tuple[float, float, float, float] | None  # WGS 84 lon/lat
    #: a current unit found by this former commune's name (seeds.FormerPart)
    former: seeds.FormerPart | None = None
    current: bool = False


def _words(folded: str) -> str:
    """A folded name or query with its punctuation as spaces: "phuong 7, da lat" and
    "phuong 7 - da lat" both read "phuong 7 da lat"."""
    return " ".join(re.sub(r"[,;.\-–/()]+", " ", folded).split())


@cache
def _unit_places() -> tuple[_Place, ...]:
    """Today's units by their own names, then by each former commune's name alone and
    with its former district ("phuong 7", "phuong 7 da lat", "phuong 7 thanh pho da
    lat"); a current unit's places, whatever name found them, lead to it."""
    places = []
    for unit in seeds.current_units().values():
        key = _words(fold(unit.name))
        places.append(_Place(unit.level, unit.code, unit.name, "", (key, _short(key)),
                             None, current=True))
    districts = seeds.former_districts()
    for part in seeds.lineage():
        unit = seeds.current_units()[part.unit]
        name = _words(fold(part.name))
        district = districts.get(part.district)
        keys = [name, _short(name)]
        if district is not None:
            for dn in (_words(fold(district.name)), _words(fold(district.short_name))):
                keys += [f"{name} {dn}", f"{_short(name)} {dn}"]
        places.append(_Place(unit.level, unit.code, unit.name, "", tuple(keys), None,
                             former=part, current=True))
    return tuple(places)


def _unit_answer(p: _Place, bboxes: dict[str, tuple[float, float, float, float]],
                 ) -> dict[str, Any]:
    """A current unit as a search answer: its box from its former communes' boxes, and,
    when a former commune's name found it, which one and what became of it."""
    boxes = [bboxes[f.code] for f in seeds.former_parts_of(p.code) if f.code in bboxes]
    bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes)] if boxes else None
    out: dict[str, Any] = {"level": p.level, "code": p.code, "name": p.name,
                           "district": None, "bbox": bbox, "current": True,
                           "valid_from": seeds.MERGER_DATE.isoformat()}
    if p.former is not None:
        f = p.former
        district = seeds.former_districts().get(f.district)
        where = f" ({district.name})" if district else ""
        out["former"] = {"code": f.code, "name": f.name, "level": f.level,
                         "district": f.district,
                         "district_name": district.name if district else None}
        part = "một phần " if f.share == "partial" else ""
        part_en = "part of it " if f.share == "partial" else ""
        out["note"] = (f"{f.name}{where} — từ 01/07/2025 {part}thuộc {p.name}")
        out["note_en"] = (f"{f.name}{where} — since 1 July 2025 {part_en}in {p.name}")
    return out


def _short(folded: str) -> str:
    for p in _PREFIXES:
        if folded.startswith(p):
            return folded[len(p):].strip()
    return folded


def _lonlat_bbox(geom) -> tuple[float, float, float, float] | None:
    """WGS 84 [w, s, e, n] of a store-CRS geometry (its envelope's corners)."""
    if geom is None or shapely.is_empty(geom):
        return None
    return tuple(vncrs.lonlat_bounds(shapely.bounds(geom), digits=6))  # type: ignore[return-value]


def _boundary_places(store: Store, boundary: Version) -> list[_Place]:
    """The named features of a boundary version (cached while it is published)."""
    return derived(store, boundary, "places", _build_boundary_places)


def _build_boundary_places(store: Store, boundary: Version) -> list[_Place]:
    """The named features of a boundary version (district outline and communes)."""
    layer = store.read(boundary.id)
    places: list[_Place] = []
    if "name" in layer.columns:
        levels = layer["level"] if "level" in layer.columns else [None] * len(layer)
        codes = layer["code"] if "code" in layer.columns else [None] * len(layer)
        for level, code, name, geom in zip(levels, codes, layer["name"], layer.geometry,
                                           strict=True):
            if lk._na(name) or not str(name).strip():
                continue
            level = "commune" if lk._na(level) else str(level)
            name = nfc(str(name).strip())
            key = fold(name)
            places.append(_Place(level, "" if lk._na(code) else str(code), name,
                                 boundary.district, (key, _short(key)),
                                 _lonlat_bbox(geom)))
    return places


def _communes(store: Store, district: str) -> list[_Place]:
    b = store.published(district, "boundary")
    if b is None:
        return []
    return [p for p in _boundary_places(store, b) if p.level == "commune"]


def _district_places(store: Store) -> list[_Place]:
    out = []
    for d in seeds.districts():
        bbox = None
        b = store.published(d.code, "boundary")
        if b is not None:
            outline = [p for p in _boundary_places(store, b) if p.level == "district"]
            bbox = outline[0].bbox if outline else None
        if bbox is None and d.anchor_lonlat:  # no outline: a box of ~5 km around the anchor
            lon, lat = d.anchor_lonlat
            bbox = (round(lon - 0.025, 6), round(lat - 0.025, 6), round(lon + 0.025, 6),
                    round(lat + 0.025, 6))
        key = fold(d.name)
        out.append(_Place("district", d.code, d.name, d.code, (key, fold(d.short_name)), bbox))
    return out


def _score(place: _Place, q: str) -> int | None:
    """0 exact, 1 prefix, 2 contains (full or short name); None no match."""
    if q in place.keys:
        return 0
    if any(k.startswith(q) for k in place.keys):
        return 1
    if any(q in k for k in place.keys):
        return 2
    return None


def _places(store: Store, q: str, district: str | None) -> list[dict[str, Any]]:
    words = _words(q)
    # Punctuation is no name: ", -" would otherwise be a prefix of every unit's name.
    if len(words) < 2:
        raise UsageError(f"{q!r} is too short to search for a place", where="q",
                         fix="type at least two letters of a district or commune name, "
                             "e.g. 'duc trong' or 'lien nghia'",
                         what_vi=f"“{q}” quá ngắn để tìm địa danh",
                         fix_vi="gõ ít nhất hai chữ của tên huyện, xã, ví dụ “đức trọng” "
                                "hoặc “liên nghĩa”")
    candidates = _district_places(store)
    for code in store.districts():
        b = store.published(code, "boundary")
        if b is not None:
            candidates.extend(p for p in _boundary_places(store, b) if p.level == "commune")
    # Former communes' boxes (their codes are those the lineage names) for today's units.
    bboxes = {p.code: p.bbox for p in candidates if p.level == "commune" and p.code and p.bbox}
    found = []
    for p in candidates:
        s = _score(p, q)
        if s is not None:
            found.append(((s, p.district != district, p.level != "district", p.keys[0]), p))
    best: dict[str, tuple[tuple, _Place]] = {}  # a current unit once, by its best match
    for p in _unit_places():
        s = _score(p, words)
        if s is not None:
            rank = (s, True, True, p.keys[0])
            if p.code not in best or rank < best[p.code][0]:
                best[p.code] = (rank, p)
    found.extend(best.values())
    found.sort(key=lambda t: t[0])
    return [_unit_answer(p, bboxes) if p.current else
            {"level": p.level, "code": p.code, "name": p.name, "district": p.district,
             "bbox": list(p.bbox) if p.bbox else None}
            for _, p in found[:MAX_PLACES]]


def _commune_code(store: Store, district: str, text: str) -> str:
    """The commune code for a code or a name typed by a resident, in ``district``."""
    text = text.strip(" ,;-.")
    if re.fullmatch(r"\d+", text):
        return text
    q = fold(text)
    communes = _communes(store, district)
    if not communes:
        raise NotFoundError(f"district {district} has no published commune names",
                            where=f"district {district}",
                            fix="give the commune code instead of its name, "
                                "e.g. 'tờ 12 thửa 345 67801'",
                            what_vi="huyện này chưa công bố tên các xã",
                            fix_vi="chọn xã trong danh sách hoặc gõ mã xã, ví dụ "
                                   "“tờ 12 thửa 345 24958”")
    for level in (0, 1, 2):
        hits = [c for c in communes if _match(c, _short(q), level)]
        if len(hits) == 1:
            return hits[0].code
        if len(hits) > 1:
            listed = ", ".join(f"{c.name} ({c.code})" for c in hits)
            raise UsageError(f"{text!r} matches {len(hits)} communes", where="commune",
                             fix="give the full name or the code: " + listed,
                             what_vi=f"“{text}” khớp với {len(hits)} xã",
                             fix_vi="gõ đủ tên hoặc mã xã: " + listed)
    listed = ", ".join(f"{c.name} ({c.code})" for c in communes)
    raise UsageError(f"no commune {text!r} in district {district}", where="commune",
                     fix="use one of: " + listed,
                     what_vi=f"huyện không có xã nào tên “{text}”",
                     fix_vi="chọn một trong các xã: " + listed)


def _match(c: _Place, q: str, level: int) -> bool:
    if level == 0:
        return q in (c.keys[0], c.keys[1])
    if level == 1:
        return c.keys[1].startswith(q)
    return q in c.keys[0]


def _numbers(a: str, b: str, district: str | None, store: Store) -> dict[str, Any] | None:
    x, y = float(a), float(b)
    if x > 100_000 and y > 100_000:
        # Vietnam lies north of 8° N: a VN-2000 northing (X, > 900 000) is always larger
        # than a TM-3 easting (Y, about 500 000 ± 200 000). Y X typed the other way round
        # is therefore recognisable, and put right.
        swapped = x < y
        xn, ye = (b, a) if swapped else (a, b)
        result = lk.lookup_xy(store, xn, ye, district)
        if district and result.get("parcel") is None:  # read in the district's zone
            result = _elsewhere(result, lk.lookup_xy(store, xn, ye, None,
                                                     zone=seeds.survey_zone(district).epsg),
                                district)
        lon, lat = vncrs.to_lonlat(*vncrs.surveyor_to_xy(float(xn), float(ye)))
        return {"kind": "xy", "x": float(xn), "y": float(ye), "swapped": swapped,
                "point": {"lat": round(float(lat), 7), "lon": round(float(lon), 7)},
                "result": result}
    if x > 100_000 or y > 100_000:
        raise UsageError(f"{a} {b} is neither VN-2000 X Y nor latitude, longitude",
                         where="q", fix="give both VN-2000 coordinates (X = northing, e.g. "
                                        "1294512.3 541230.8) or latitude, longitude in "
                                        "degrees (e.g. 11.70, 108.32)",
                         what_vi=f"“{a} {b}” không phải tọa độ VN-2000 X Y hay vĩ độ, kinh độ",
                         fix_vi="gõ cả hai tọa độ VN-2000 (X là tọa độ bắc, ví dụ 1294512,3 "
                                "541230,8) hoặc vĩ độ, kinh độ (ví dụ 11,70 108,32)")
    if "." in a or "." in b:
        lat, lon = (a, b)
        if abs(x) > 90 and abs(y) <= 90:  # "108.32, 11.70": longitude first
            lat, lon = b, a
        result = lk.lookup_lonlat(store, lat, lon, district)
        if district and result.get("parcel") is None:
            result = _elsewhere(result, lk.lookup_lonlat(store, lat, lon, None), district)
        return {"kind": "latlon", "point": {"lat": float(lat), "lon": float(lon)},
                "result": result}
    return None  # two whole numbers: a sheet and a parcel


def _elsewhere(here: dict[str, Any], anywhere: dict[str, Any], district: str,
               ) -> dict[str, Any]:
    """The answer for a point searched from a district's page that has no parcel of
    that district: the answer of wherever the point falls (`anywhere`, the district
    found from the published outlines) when that is another district or a parcel,
    else the district's own answer. The page then says where the point is and links
    there. The zone an X/Y pair was read in stays the one the page's district chose."""
    found = (anywhere.get("parcel") or {}).get("district") or anywhere.get("district")
    if anywhere.get("parcel") is None and found in (None, district):
        return here
    if "zone" in here:
        anywhere["zone"] = here["zone"]
    return anywhere


def _need_district(district: str | None) -> str:
    if not district:
        raise UsageError("a sheet and parcel number needs a district", where="district",
                         fix="search from a district's page, or add &district= (e.g. 678)",
                         what_vi="số tờ, số thửa chỉ tra cứu được trong một huyện",
                         fix_vi="chọn huyện cũ trên bản đồ rồi tìm trên trang của huyện")
    return district


def search(store: Store, q: str, district: str | None = None) -> dict[str, Any]:
    """Understand ``q`` (see the module doc) and answer it.

    Returns ``{"kind": "xy" | "latlon" | "parcel", "result": <look-up answer>}`` or
    ``{"kind": "places", "places": [...]}``. Raises UsageError for an empty or
    unreadable query, NotFoundError when a parcel or point has nothing.
    """
    if district is not None and str(district).strip():
        district = district_code(str(district).strip())
    else:
        district = None
    text = nfc(str(q or "")).strip()
    if not text:
        raise UsageError("nothing to search for", where="q",
                         fix="type a place name (e.g. 'Liên Nghĩa'), a sheet and parcel "
                             "(e.g. 'tờ 12 thửa 345'), latitude, longitude or VN-2000 X Y",
                         what_vi="chưa có gì để tìm",
                         fix_vi="gõ tên địa danh (ví dụ “Liên Nghĩa”), số tờ và số thửa "
                                "(ví dụ “tờ 12 thửa 345”), vĩ độ, kinh độ hoặc tọa độ VN-2000")
    if len(text) > MAX_QUERY:
        raise UsageError(f"the query is {len(text)} characters long", where="q",
                         fix=f"keep it under {MAX_QUERY} characters",
                         what_vi=f"nội dung tìm kiếm dài {len(text)} ký tự",
                         fix_vi=f"gõ ngắn hơn {MAX_QUERY} ký tự")
    folded = fold(text)
    if _COMMA_DECIMALS.match(folded):  # "11,70 108,32": Vietnamese decimal commas
        folded = re.sub(r"(\d),(\d)", r"\1.\2", folded)
    m = _TWO_NUMBERS.match(folded)
    if m:
        answer = _numbers(m.group(1), m.group(2), district, store)
        if answer is not None:
            return answer
    m = _PARCEL_AFTER.match(folded)
    if m:
        sheet, parcel, rest = m.group(1), m.group(2), m.group(3)
    else:
        m = _PARCEL_BEFORE.match(folded)
        if m:
            rest, sheet, parcel = m.group(1), m.group(2), m.group(3)
    if m:
        d = _need_district(district)
        commune = _commune_code(store, d, rest) if rest and rest.strip(" ,;-.") else None
        try:
            result = lk.lookup_key(store, d, sheet, parcel, commune)
        except UsageError as err:
            if err.where != "commune":
                raise
            return {"kind": "choices", "sheet": int(sheet), "parcel": int(parcel),
                    "district": d, "choices": _choices(store, d, int(sheet), int(parcel))}
        return {"kind": "parcel", "sheet": int(sheet), "parcel": int(parcel),
                "commune": commune, "result": result}
    if _SHEET_ONLY.match(folded):
        raise UsageError(f"{text!r} gives a map sheet but no parcel number", where="q",
                         fix=f"add the parcel (thửa), e.g. '{text} thửa 345'",
                         what_vi=f"“{text}” mới có số tờ, chưa có số thửa",
                         fix_vi=f"gõ thêm số thửa, ví dụ “{text} thửa 345”")
    if re.search(r"\d", folded) and not re.search(r"[a-z]{2}", folded):
        raise UsageError(f"cannot read {text!r}", where="q",
                         fix="give a sheet and parcel as '12/345', latitude, longitude as "
                             "'11.70, 108.32', or VN-2000 X Y as '1294512.3 541230.8'",
                         what_vi=f"không hiểu “{text}”",
                         fix_vi="gõ số tờ và số thửa như “12/345”, vĩ độ, kinh độ như "
                                "“11,70 108,32” hoặc tọa độ VN-2000 X Y như "
                                "“1294512,3 541230,8”")
    return {"kind": "places", "places": _places(store, folded, district),
            "parcels": _by_address(store, folded, district),
            "projects": _by_name(store, folded, district)}


# ------------------------------------------------- several parcels with one key


#: What a parcel to choose from shows (`_parcel_choice`), when public.
_CHOICE_COLUMNS = ("commune", "sheet", "parcel", "address", "land_use")


def _public(store: Store, version: Version, wanted: tuple[str, ...]) -> list[str]:
    """The columns of `wanted` the version has and the public may see (one read of its
    column list)."""
    have = set(store.columns(version.id))
    return [c for c in wanted if c in have and privacy.is_public(version, c)]


def commune_names(store: Store, district: str) -> dict[str, str]:
    """Commune code → name: the published boundary's names, else the seeds' list (the
    district page's commune picker and the parcels a search lists name them alike)."""
    names = {c.code: c.name for c in seeds.communes_of(district).values()}
    names.update({c.code: c.name for c in _communes(store, district) if c.code})
    return names


def _parcel_choice(district: str, record: dict[str, Any], names: dict[str, str],
                   ) -> dict[str, Any]:
    """One parcel of a list to choose from: its key, commune (code and name, and
    today's unit when the code is a former commune's), where it is, its address."""
    commune = None if lk._na(record.get("commune")) else str(record["commune"])
    units = lk.units_of(commune, district) if commune else None
    today = (units or {}).get("current") or None
    return {"district": district, "district_name": seeds.district(district).name,
            "commune": commune, "commune_name": names.get(commune or ""),
            "unit_today": today["name"] if today else None,
            "sheet": None if lk._na(record.get("sheet")) else int(record["sheet"]),
            "parcel": None if lk._na(record.get("parcel")) else int(record["parcel"]),
            "address": None if lk._na(record.get("address")) else str(record["address"]),
            "land_use": None if lk._na(record.get("land_use")) else str(record["land_use"]),
            "point": lk.lonlat_point(record.get("geometry"))}


def _choices(store: Store, district: str, sheet: int, parcel: int) -> list[dict[str, Any]]:
    """The parcels of the district with this sheet and parcel number, by commune."""
    v = store.published(district, "parcels")
    if v is None:
        return []
    columns = _public(store, v, _CHOICE_COLUMNS)
    names = commune_names(store, district)
    found = [_parcel_choice(district, r, names) for r in store.records(
        v.id, where={"sheet": sheet, "parcel": parcel}, columns=columns)]
    return sorted(found, key=lambda c: (c["commune_name"] or "", c["commune"] or ""))


# ------------------------------------------------- addresses and names


@dataclass(frozen=True)
class _TextIndex:
    """One text column of a version, folded (`fold`, punctuation as spaces), for
    substring search: the values joined in one string, so that finding a query in
    200 000 addresses is one `str.find` pass in C rather than a Python loop."""

    text: str
    starts: np.ndarray  # offset of each value in `text`, then len(text)
    ids: np.ndarray  # feature id of each value

    def find(self, q: str, limit: int) -> list[int]:
        """Ids of the first `limit` values containing `q`, in stored order."""
        out: list[int] = []
        pos = self.text.find(q)
        while pos != -1 and len(out) < limit:
            i = int(np.searchsorted(self.starts, pos, side="right")) - 1
            out.append(int(self.ids[i]))
            pos = self.text.find(q, int(self.starts[i + 1]))  # next value on
        return out


def _text_index(column: str):
    def build(store: Store, version: Version) -> _TextIndex:
        frame = store.read(version.id, columns=[column])
        ids = store.feature_ids(version.id)
        texts = [("" if lk._na(v) else _words(fold(str(v)))) for v in frame[column]]
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
        starts = np.concatenate(([0], np.cumsum(lengths)))
        return _TextIndex("\n".join(texts) + "\n", starts, ids)
    return build


def _find_text(store: Store, version: Version, column: str, q: str) -> list[int]:
    """Ids of `version`'s features whose public `column` contains the folded `q`."""
    if not _public(store, version, (column,)):
        return []
    index = derived(store, version, ("text", column), _text_index(column))
    return index.find(q, MAX_MATCHES)


def _searchable(q: str) -> str | None:
    """The folded words of a query worth a text search (letters in it, long enough)."""
    words = _words(q)
    return words if len(words.replace(" ", "")) >= MIN_TEXT and re.search(r"[a-z]", words) \
        else None


def _by_address(store: Store, q: str, district: str | None) -> list[dict[str, Any]]:
    """Parcels of the page's district whose address contains the query. Only with a
    district: the index of a district is built on its first search (about a second for
    200 000 parcels), which a province-wide search would pay thirty times."""
    words = _searchable(q)
    v = store.published(district, "parcels") if district and words else None
    if v is None:
        return []
    ids = _find_text(store, v, "address", words)
    if not ids:
        return []
    columns = _public(store, v, _CHOICE_COLUMNS)
    names = commune_names(store, district)
    return [_parcel_choice(district, r, names)
            for r in store.records_by_id(v.id, ids, columns=columns)]


def _by_name(store: Store, q: str, district: str | None) -> list[dict[str, Any]]:
    """Plan areas and annual-plan projects whose name (or project code) contains the
    query: in the page's district first, then in the others (these layers are small)."""
    words = _searchable(q)
    if words is None:
        return []
    published = store.published_versions(None)
    order = sorted({d for d, _ in published}, key=lambda d: (d != district, d))
    out: list[dict[str, Any]] = []
    for code in order:
        for kind in ("annual_plan", "plan"):
            v = published.get((code, kind))
            if v is None or len(out) >= MAX_MATCHES:
                continue
            ids = _find_text(store, v, "name", words)
            if kind == "annual_plan" and len(ids) < MAX_MATCHES:
                ids = sorted(set(ids) | set(_find_text(store, v, "code", words)))
            columns = _public(store, v, ("name", "code", "year", "land_use"))
            for r in store.records_by_id(v.id, ids, columns=columns)[:MAX_MATCHES - len(out)]:
                geom = r.get("geometry")
                out.append({"kind": kind, "district": code,
                            "district_name": seeds.district(code).name,
                            "name": None if lk._na(r.get("name")) else str(r["name"]),
                            "code": None if lk._na(r.get("code")) else str(r["code"]),
                            "year": None if lk._na(r.get("year")) else int(r["year"]),
                            "land_use": None if lk._na(r.get("land_use"))
                            else str(r["land_use"]),
                            "bbox": list(_lonlat_bbox(geom)) if geom is not None
                            and not shapely.is_empty(geom) else None,
                            "point": lk.lonlat_point(geom)})
    return out
