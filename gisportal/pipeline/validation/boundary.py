"""Boundary layers are checked, not trusted.

A district's published boundary layer becomes the context of its other layers'
checks (:mod:`gisportal.pipeline.validation.context`): the outline for TOPO-OUTSIDE-DISTRICT
and TOPO-GAP, the communes for ATTR-COMMUNE-UNKNOWN. A wrong one switches those
checks off or points them at the wrong land — a GADM file published as district
672's boundary once let a whole other district's parcels validate with 0 errors. So
a boundary layer uploaded for district D must name its levels in words gisportal
knows (BOUNDARY-LEVEL-UNKNOWN), hold D's own unit by GSO code
(BOUNDARY-DISTRICT-MISSING) with an outline that fits what the seeds know of D
(BOUNDARY-OUTLINE-MISFIT); other districts' units are ignored with a warning
(BOUNDARY-OTHER-UNITS), commune codes the seeds do not list are warned about
(BOUNDARY-COMMUNE-UNKNOWN).

For the other kinds this check reports what the context itself noted (a published
boundary that could not serve, BOUNDARY-CONTEXT-UNUSABLE).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyproj
import shapely

from gisportal.base import crs as vncrs
from gisportal.base import seeds, units
from gisportal.base.findings import Finding
from gisportal.pipeline.normalise import SOURCE_PREFIX, NormalisedLayer, feature_keys, locate_rows
from gisportal.pipeline.validation.context import ValidationContext, communes_inside
from gisportal.pipeline.validation.context import valid_geometries as _valid

__all__ = ["check_boundary", "OUTLINE_THRESHOLDS"]

#: Tolerances of BOUNDARY-OUTLINE-MISFIT, from layers/boundary.json (its
#: ``thresholds_doc`` says why these values).
OUTLINE_THRESHOLDS = ("outline_area_ratio_max", "outline_centre_max_radii",
                      "outline_anchor_tolerance_m")

_GEOD = pyproj.Geod(ellps="WGS84")
_LEVEL_VI = {"province": "tỉnh", "district": "huyện", "commune": "xã"}
_LIST_MAX = 10


def check_boundary(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """Every boundary rule on a boundary layer; the context's notes on any other layer.

    On a boundary layer the ``level`` column is also rewritten in place to the
    canonical words (province, district, commune; a unit with no level value takes its
    GSO code's level), so the stored layer carries them: maps, search and look-ups
    ask for ``level == "district"``. The value as read stays in its ``src:`` column;
    unknown values are kept as read (the layer cannot be published with them). This
    check runs first, before the key check reads the level.
    """
    if norm.model.kind != "boundary":
        return list(ctx.notes)
    frame = norm.frame
    if len(frame) == 0:
        return []
    codes = np.array([units.gso_code(c) for c in frame["code"]], dtype=object)
    raw = frame["level"].to_numpy(dtype=object, na_value=None) if "level" in frame else None
    levels, unknown = units.canonical_levels(raw, codes)
    stored = levels.copy()
    if raw is not None:
        stored[unknown] = raw[unknown]
    frame["level"] = pd.array(stored, dtype="string")
    out = _unknown_levels(norm, raw, unknown)
    district = ctx.district
    if district is None:
        return out
    geoms = frame.geometry.values
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    own = (levels == "district") & (codes == district) & present
    if not own.any():
        return out + [_district_missing(norm, levels, codes, district)]
    outline = shapely.union_all(_valid(geoms[own]))
    out += _outline_fit(norm, outline, district)
    inside = communes_inside(outline, geoms, (levels == "commune") & present)
    out += _other_units(levels, codes, inside, district)
    out += _commune_codes(norm, levels, codes, inside, district)
    return out


# --------------------------------------------------------------------------- helpers


def _row_findings(norm: NormalisedLayer, rule: str, rows: np.ndarray,
                  params: list[dict]) -> list[Finding]:
    if len(rows) == 0:
        return []
    keys = feature_keys(norm.frame, norm.model, rows)
    locs = locate_rows(norm.frame.geometry.values[rows])
    src = norm.frame["src_row"].to_numpy()[rows]
    return [Finding(rule, row=int(r), key=k, location=loc, params=p)
            for r, k, loc, p in zip(src, keys, locs, params, strict=True)]


def _listing(items: list[str]) -> str:
    head = ", ".join(items[:_LIST_MAX])
    return head + (f", … (+{len(items) - _LIST_MAX})" if len(items) > _LIST_MAX else "")


def _district_name(code: str) -> str:
    """A district's name by code (the 2021–2030 plans' district), "" when not one of ours."""
    for day in (seeds.PLAN_DISTRICTS_DATE, None):
        for u in seeds.admin_units():
            if u.level == "district" and u.code == code and (day is None or u.valid_on(day)):
                return u.name
    return ""


# --------------------------------------------------------------------------- levels


def _unknown_levels(norm: NormalisedLayer, raw: np.ndarray | None,
                    unknown: np.ndarray) -> list[Finding]:
    """BOUNDARY-LEVEL-UNKNOWN: one finding per distinct unknown value, on its first row."""
    if raw is None or not unknown.any():
        return []
    vocab = units.level_vocabulary()
    accepted = {"accepted_vi": vocab.accepted("vi"), "accepted_en": vocab.accepted("en")}
    src = norm.frame["src_row"].to_numpy()
    out: list[Finding] = []
    values = [str(v) for v in raw[unknown]]
    for value in dict.fromkeys(values):
        rows = np.flatnonzero(unknown & (raw.astype(str) == value))
        out += _row_findings(norm, "BOUNDARY-LEVEL-UNKNOWN", rows[:1], [{
            "value": value, "count": int(len(rows)),
            "rows": _listing([str(int(r)) for r in src[rows]]), **accepted}])
    return out


# --------------------------------------------------------------------------- district unit


def _column_holding(norm: NormalisedLayer, district: str) -> str | None:
    """A source column (other than the one read as ``code``) that holds ``district``."""
    taken = norm.mapping.mapped.get("code")
    for name in norm.frame.columns:
        if not name.startswith(SOURCE_PREFIX) or name[len(SOURCE_PREFIX):] == taken:
            continue
        values = {units.gso_code(v) for v in pd.unique(norm.frame[name].to_numpy(dtype=object))
                  if v is not None}
        if district in values:
            return name[len(SOURCE_PREFIX):]
    return None


def _district_missing(norm: NormalisedLayer, levels: np.ndarray, codes: np.ndarray,
                      district: str) -> Finding:
    """BOUNDARY-DISTRICT-MISSING, saying what the layer's codes look like instead."""
    known = {u.code for u in seeds.admin_units() if u.level == "district"}
    all_codes = list(dict.fromkeys(c for c in codes if c))
    at_district = list(dict.fromkeys(c for c, lv in zip(codes, levels, strict=True)
                                     if lv == "district" and c))
    vi: list[str] = []
    en: list[str] = []
    gadm = [c for c in all_codes if units.looks_like_gadm(c)]
    if gadm:
        vi.append(f"Các mã trông như mã GADM ({_listing(gadm[:3])}), không phải mã GSO.")
        en.append(f"The codes look like GADM identifiers ({_listing(gadm[:3])}), not GSO "
                  "codes.")
    own_rows = [lv for c, lv in zip(codes, levels, strict=True) if c == district]
    if own_rows:
        level = next((lv for lv in own_rows if lv), None)
        vi.append(f"Mã {district} có trong lớp nhưng ở cấp "
                  f"{_LEVEL_VI.get(level, 'không rõ') if level else 'không rõ'}.")
        en.append(f"Code {district} is in the layer, but at level {level or 'unknown'}.")
    others = [c for c in at_district if c != district and c in known]
    if others:
        names = [f"{c} {_district_name(c)}" for c in others]
        vi.append(f"Lớp có mã của huyện khác: {_listing(names)}.")
        en.append(f"It holds other districts' codes: {_listing(names)}.")
    foreign = [c for c in at_district if c != district and c not in known and c not in gadm]
    if foreign:
        vi.append(f"Các mã cấp huyện {_listing(foreign)} không phải mã huyện của "
                  f"{seeds.province()['name']} (mã của tỉnh khác, hoặc không phải mã GSO?).")
        en.append(f"District-level codes {_listing(foreign)} are no districts of "
                  f"{seeds.province().get('name_en', seeds.province()['name'])} (another "
                  "province's codes, or no GSO codes?).")
    if not at_district and (levels == "commune").any():
        vi.append("Lớp chỉ có các đơn vị cấp xã, không có ranh giới huyện.")
        en.append("The layer holds only communes, no district outline.")
    if not all_codes:
        vi.append("Lớp không có mã đơn vị nào.")
        en.append("The layer has no unit codes.")
    elif not vi:
        vi.append(f"Các mã trong lớp: {_listing(all_codes)}.")
        en.append(f"Codes in the layer: {_listing(all_codes)}.")
    column = _column_holding(norm, district)
    if column is not None:
        fix_vi = (f"cột '{column}' có mã {district}: dùng --field code={column} để đọc mã GSO "
                  "từ cột đó.")
        fix_en = (f"column '{column}' holds {district}: pass --field code={column} to read the "
                  "GSO codes from it.")
    else:
        fix_vi = ("chỉ định cột chứa mã GSO bằng --field code=<cột>, hoặc thêm một đơn vị cấp "
                  f"huyện (level = district) mã {district} có ranh giới của huyện.")
        fix_en = ("map the column that holds GSO codes with --field code=<column>, or add a "
                  f"unit with level 'district' and code {district} holding the district's "
                  "outline.")
    return Finding("BOUNDARY-DISTRICT-MISSING", params={
        "district": district, "name": _district_name(district),
        "codes": all_codes[:_LIST_MAX], "gadm": bool(gadm), "column": column,
        "diagnosis_vi": " ".join(vi), "diagnosis_en": " ".join(en),
        "fix_vi": fix_vi, "fix_en": fix_en})


# --------------------------------------------------------------------------- outline


def _measure(outline, unit: seeds.AdminUnit, th: dict[str, float]) -> dict:
    """How ``outline`` (store CRS) compares with one seeded unit; ``problems`` lists
    what does not fit, in both languages."""
    area = float(outline.area) / 1e6
    expected = float(unit.area_km2 or 0.0)
    ratio = math.inf if area <= 0 or expected <= 0 else max(area / expected, expected / area)
    c = outline.centroid
    clon, clat = (float(v) for v in vncrs.to_lonlat(c.x, c.y))
    centre_km = float(_GEOD.inv(clon, clat, *unit.centre_lonlat)[2]) / 1000
    radius_km = math.sqrt(expected / math.pi)
    centre_max = th["outline_centre_max_radii"] * radius_km
    ax, ay = vncrs.from_lonlat(*unit.anchor_lonlat)
    anchor_m = float(shapely.distance(outline, shapely.Point(ax, ay)))
    vi: list[str] = []
    en: list[str] = []
    if not ratio <= th["outline_area_ratio_max"]:
        vi.append(f"diện tích {area:.1f} km² so với {expected:.1f} km² (chênh tối đa "
                  f"{th['outline_area_ratio_max']:g} lần)")
        en.append(f"its area is {area:.1f} km² against {expected:.1f} km² (at most "
                  f"{th['outline_area_ratio_max']:g} times either way)")
    if not centre_km <= centre_max:
        vi.append(f"tâm cách tâm huyện {centre_km:.1f} km (tối đa {centre_max:.1f} km)")
        en.append(f"its centre lies {centre_km:.1f} km from the district's centre (at most "
                  f"{centre_max:.1f} km)")
    if not anchor_m <= th["outline_anchor_tolerance_m"]:
        lon, lat = unit.anchor_lonlat
        vi.append(f"không chứa điểm {lat:.4f}, {lon:.4f} (vĩ độ, kinh độ) nằm trong huyện "
                  f"(cách {anchor_m / 1000:.1f} km)")
        en.append(f"it does not contain {lat:.4f}, {lon:.4f} (lat, lon), a point inside the "
                  f"district ({anchor_m / 1000:.1f} km away)")
    return {"area_km2": round(area, 2), "expected_area_km2": expected,
            "area_ratio": None if math.isinf(ratio) else round(ratio, 3),
            "centre_lonlat": [round(clon, 5), round(clat, 5)],
            "expected_centre_lonlat": list(unit.centre_lonlat),
            "centre_km": round(centre_km, 2), "centre_max_km": round(centre_max, 2),
            "anchor_lonlat": list(unit.anchor_lonlat), "anchor_distance_m": round(anchor_m, 1),
            "unit": unit.key, "problems_vi": "; ".join(vi), "problems_en": "; ".join(en),
            "fits": not vi}


def _outline_fit(norm: NormalisedLayer, outline, district: str) -> list[Finding]:
    """BOUNDARY-OUTLINE-MISFIT when the district outline fits none of the seeded units
    with its code (a code is reused: 682 is Đạ Tẻh until 2024, the merged Đạ Huoai from
    2025, and either outline is that district's)."""
    th = {k: norm.model.threshold(k) for k in OUTLINE_THRESHOLDS}
    candidates = [u for u in seeds.admin_units()
                  if u.level == "district" and u.code == district and u.area_km2
                  and u.centre_lonlat and u.anchor_lonlat]
    if not candidates:
        return []
    measured = [_measure(outline, u, th) for u in candidates]
    if any(m["fits"] for m in measured):
        return []
    main = seeds.district(district) if district in {u.code for u in seeds.districts()} \
        else candidates[0]
    m = next(x for u, x in zip(candidates, measured, strict=True) if u.key == main.key)
    m.pop("fits")
    point = shapely.point_on_surface(outline)
    lon, lat = vncrs.to_lonlat(point.x, point.y)
    return [Finding("BOUNDARY-OUTLINE-MISFIT", location={
        "type": "Point", "coordinates": [round(float(lon), 7), round(float(lat), 7)]},
        params={"district": district, "name": main.name, **m,
                "tolerances": th})]


# --------------------------------------------------------------------------- other units


def _other_units(levels: np.ndarray, codes: np.ndarray, inside: np.ndarray,
                 district: str) -> list[Finding]:
    """BOUNDARY-OTHER-UNITS: provinces, other districts, and communes outside the
    district's outline that its list does not hold (they play no part in its checks)."""
    listed = seeds.communes()
    own = seeds.communes_of(district)
    found: dict[tuple[str, str], int] = {}
    for level, code, within in zip(levels, codes, inside, strict=True):
        if level == "province" or (level == "district" and code != district):
            key = (str(level), code or "?")
        elif level == "commune" and code is not None and code not in own and not within:
            key = ("commune", code)
        else:
            continue
        found[key] = found.get(key, 0) + 1
    if not found:
        return []
    vi, en = [], []
    for (level, code), n in found.items():
        times = f" ×{n}" if n > 1 else ""
        if level == "commune" and code in listed:
            c = listed[code]
            vi.append(f"{code} {c.name} (xã của huyện {c.district}){times}")
            en.append(f"{code} {c.name} (commune of district {c.district}){times}")
        elif level == "commune":
            vi.append(f"{code} (xã ngoài ranh giới huyện){times}")
            en.append(f"{code} (commune outside the district's outline){times}")
        else:
            label = f"{code} {_district_name(code) if level == 'district' else ''}".strip()
            vi.append(f"{label} ({_LEVEL_VI[level]}){times}")
            en.append(f"{label} ({level}){times}")
    return [Finding("BOUNDARY-OTHER-UNITS", params={
        "district": district, "count": sum(found.values()), "units_vi": _listing(vi),
        "units_en": _listing(en)})]


def _commune_codes(norm: NormalisedLayer, levels: np.ndarray, codes: np.ndarray,
                   inside: np.ndarray, district: str) -> list[Finding]:
    """BOUNDARY-COMMUNE-UNKNOWN: communes inside the district whose code its list lacks
    (they still count as its communes: the outline says so)."""
    listed = seeds.communes()
    own = seeds.communes_of(district)
    rows = np.flatnonzero([lv == "commune" and c is not None and c not in own and within
                           for lv, c, within in zip(levels, codes, inside, strict=True)])
    name = _district_name(district)
    params = []
    for r in rows:
        other = listed.get(codes[r])
        params.append({
            "code": codes[r], "district": district, "name": name,
            "listed_for": other.district if other else None,
            "elsewhere_vi": f" (danh mục xếp mã này vào huyện {other.district}: {other.name})"
                            if other else "",
            "elsewhere_en": f" (the list has it in district {other.district}: {other.name})"
                            if other else ""})
    return _row_findings(norm, "BOUNDARY-COMMUNE-UNKNOWN", rows, params)
