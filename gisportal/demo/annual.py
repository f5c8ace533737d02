"""The annual land-use plan of a synthetic district: a few dozen works and projects.

A district's annual plan (kế hoạch sử dụng đất hằng năm) carries out a slice of its
2021–2030 plan: the roads widened this year, the residential areas opened, the schools
and clinics built. So the demo places each project inside a zone of the district's plan
and gives it that zone's planned use — a stretch of a planned road corridor (DGT), part
of a residential (ONT, ODT), commercial (TMD), industrial-cluster (SKN) or park (DKV)
zone — or, for the public facilities a residential zone holds at the plan's scale (a
kindergarten, a clinic, a cultural house, a sports ground, a market), the facility's own
code. Names follow the wording of real annual plans ("Đường giao thông nông thôn xã …",
"Khu dân cư …", "Trường mầm non …"); areas are rounded to 0.01 ha as approving
documents give them; the decision number is fictitious and says so.

Pure: a function of its arguments (the random generator included), no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import shapely
from shapely import affinity

__all__ = ["ANNUAL_COLUMNS", "DEMO_MARK", "generate_annual_plan"]

#: Columns of the generated layer (the canonical fields of layers/annual_plan.json).
ANNUAL_COLUMNS = ["year", "name", "code", "land_use", "area_m2", "decision", "commune",
                  "geometry"]
#: Marks the decision number as not a real one, wherever it is shown.
DEMO_MARK = "(dữ liệu mẫu / demo)"

#: Village names for places without a commune name (generic, found all over the country).
_VILLAGES = ("Tân Phú", "Phú Hòa", "Hiệp Thạnh", "Tân Hội", "Bình Thạnh", "Phú An",
             "Liên Hiệp", "Tân Thành", "Hòa Bình", "Thanh Bình", "An Lạc", "Đông Hòa",
             "Phước Thành", "Tân Lập", "Đa Phú", "Lạc Viên")
_FLOWERS = ("Hoa Sen", "Hoa Mai", "Hoa Hồng", "Sơn Ca", "Họa Mi", "Vành Khuyên")

#: Project kinds: the zone codes they sit in, their own code (None: the zone's), name
#: templates ({place}: commune or village, {n}: a number, {flower}), the target area
#: range (m²) and the shape (``road``: a stretch of the corridor zone; ``block``: a
#: rotated rectangle of aspect up to 1:2), and a weight.
_KINDS: tuple[dict, ...] = (
    {"zones": ("DGT",), "code": None, "shape": "road", "area": (4_000, 30_000), "weight": 8,
     "names": ("Đường giao thông nông thôn {place}", "Nâng cấp, mở rộng đường liên thôn {place}",
               "Đường giao thông kết nối {place}")},
    {"zones": ("ONT",), "code": None, "shape": "block", "area": (8_000, 40_000), "weight": 5,
     "names": ("Khu dân cư nông thôn {place}", "Khu tái định cư {place}",
               "Đất ở đấu giá quyền sử dụng đất {place}")},
    {"zones": ("ODT",), "code": None, "shape": "block", "area": (10_000, 60_000), "weight": 4,
     "names": ("Khu dân cư đô thị {place}", "Khu dân cư số {n} thị trấn",
               "Chỉnh trang khu dân cư {place}")},
    {"zones": ("ONT", "ODT"), "code": "DGD", "shape": "block", "area": (2_500, 6_000),
     "weight": 4, "names": ("Trường mầm non {flower}", "Mở rộng Trường tiểu học {place}",
                            "Trường trung học cơ sở {place}")},
    {"zones": ("ONT", "ODT"), "code": "DYT", "shape": "block", "area": (800, 2_500),
     "weight": 2, "names": ("Trạm y tế {place}",)},
    {"zones": ("ONT", "ODT"), "code": "DVH", "shape": "block", "area": (500, 1_500),
     "weight": 2, "names": ("Nhà văn hóa thôn {village}",)},
    {"zones": ("ONT", "ODT"), "code": "DTT", "shape": "block", "area": (3_000, 12_000),
     "weight": 1, "names": ("Sân thể thao {place}",)},
    {"zones": ("ONT", "ODT"), "code": "DCH", "shape": "block", "area": (1_500, 5_000),
     "weight": 1, "names": ("Chợ {place}",)},
    {"zones": ("TMD",), "code": None, "shape": "block", "area": (5_000, 30_000), "weight": 2,
     "names": ("Khu thương mại dịch vụ {place}", "Trạm dừng nghỉ {place}")},
    {"zones": ("SKN",), "code": None, "shape": "block", "area": (20_000, 120_000),
     "weight": 1, "names": ("Hạ tầng cụm công nghiệp {place}",)},
    {"zones": ("DKV",), "code": None, "shape": "block", "area": (5_000, 25_000), "weight": 1,
     "names": ("Công viên cây xanh {place}",)},
)
#: Projects per district: "a few dozen".
_COUNT = (24, 40)
#: Tries to place one project before giving up on it.
_TRIES = 8


def _commune_words(name: str) -> str:
    """"Xã Hiệp An" → "xã Hiệp An" (mid-sentence); other names unchanged."""
    for level in ("Xã ", "Phường ", "Thị trấn "):
        if name.startswith(level):
            return level.lower() + name[len(level):]
    return name


def _point_in(zone, rng: np.random.Generator) -> tuple[float, float]:
    """A random point of ``zone`` (its point on surface if sampling keeps missing)."""
    x0, y0, x1, y1 = zone.bounds
    for _ in range(30):
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if shapely.contains_xy(zone, x, y):
            return x, y
    p = shapely.point_on_surface(zone)
    return p.x, p.y


def _polygonal(geom):
    """The largest polygon of an overlay result (None when it has none)."""
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    parts = [q for p in parts for q in shapely.get_parts(p)]
    return max(parts, key=lambda p: p.area) if parts else None


def _shape(zone, kind: dict, rng: np.random.Generator):
    """The project's polygon inside ``zone``, about its target area, or None."""
    target = rng.uniform(*kind["area"])
    x, y = _point_in(zone, rng)
    if kind["shape"] == "road":
        # A stretch of the corridor: the zone cut by a wide box across it; the box's
        # length is what gives the stretch its area (corridors are 24–30 m wide).
        length = float(np.clip(target / 27.0, 150.0, 1_500.0))
        cut = shapely.box(x - length / 2, y - length / 2, x + length / 2, y + length / 2)
    else:
        aspect = rng.uniform(1.0, 2.0)
        w = float(np.sqrt(target / aspect))
        cut = affinity.rotate(shapely.box(x - w / 2, y - w * aspect / 2, x + w / 2,
                                          y + w * aspect / 2), rng.uniform(0, 90),
                              origin=(x, y))
    shape = _polygonal(shapely.intersection(zone, cut))
    if shape is None or shape.area < 0.5 * min(target, kind["area"][0]):
        return None
    return shapely.make_valid(shape) if not shape.is_valid else shape


def generate_annual_plan(plan_zones: gpd.GeoDataFrame, year: int, rng: np.random.Generator,
                         *, commune_names: Mapping[str, str] | None = None,
                         ) -> gpd.GeoDataFrame:
    """A few dozen plausible projects of the district's annual plan for ``year``.

    Parameters
    ----------
    plan_zones
        The district's 2021–2030 plan zones (``land_use``, ``commune``, geometry), as
        `gisportal.demo.generate.DemoDistrict.plan` holds them.
    year
        The plan year every project gets.
    rng
        The random stream (``numpy.random.default_rng(seed)``): the same stream gives
        the same plan.
    commune_names
        Commune code → name ("Xã Hiệp An") for the projects' names; without it a
        project is named after a village.

    Returns
    -------
    GeoDataFrame
        `ANNUAL_COLUMNS` in the CRS of ``plan_zones``: ``year``, ``name``, ``code``
        (``KH<year>.<n>``), ``land_use``, ``area_m2`` (the drawn area rounded to
        0.01 ha), ``decision`` (one fictitious number for the year, marked
        `DEMO_MARK`), ``commune``, ``geometry`` (each inside its zone). Empty when the
        zones hold none of the uses projects are placed in.
    """
    names = dict(commune_names or {})
    codes = plan_zones["land_use"].astype("string").fillna("").str.upper().to_numpy(object)
    geoms = plan_zones.geometry.to_numpy()
    communes = (plan_zones["commune"].to_numpy(object) if "commune" in plan_zones.columns
                else np.full(len(plan_zones), None, dtype=object))
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    kinds = [k for k in _KINDS if np.isin(codes, k["zones"])[usable].any()]
    decision = f"{int(rng.integers(100, 3000))}/QĐ-UBND {DEMO_MARK}"
    rows: list[dict] = []
    if kinds:
        weights = np.array([k["weight"] for k in kinds], dtype=float)
        count = int(rng.integers(*_COUNT, endpoint=True))
        for _ in range(count):
            kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            candidates = np.flatnonzero(np.isin(codes, kind["zones"]) & usable)
            area = shapely.area(geoms[candidates])
            shape = None
            for _ in range(_TRIES):
                i = int(candidates[rng.choice(len(candidates), p=area / area.sum())])
                shape = _shape(geoms[i], kind, rng)
                if shape is not None:
                    break
            if shape is None:
                continue
            commune = communes[i]
            village = str(rng.choice(_VILLAGES))
            place = (_commune_words(names[commune]) if commune in names
                     else f"thôn {village}")
            name = str(rng.choice(kind["names"])).format(
                place=place, village=village, n=int(rng.integers(1, 9)),
                flower=str(rng.choice(_FLOWERS)))
            taken = sum(r["name"] == name or r["name"].startswith(name + " (giai đoạn ")
                        for r in rows)
            if taken:  # a second park of the same town is its next phase
                name = f"{name} (giai đoạn {taken + 1})"
            rows.append({"year": int(year), "name": name,
                         "code": f"KH{int(year)}.{len(rows) + 1:02d}",
                         "land_use": kind["code"] or codes[i],
                         "area_m2": max(100.0, round(float(shape.area), -2)),
                         "decision": decision,
                         "commune": None if commune is None else str(commune),
                         "geometry": shape})
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in ANNUAL_COLUMNS[:-1]},
                                geometry=[], crs=plan_zones.crs)
    return gpd.GeoDataFrame(rows, columns=ANNUAL_COLUMNS, geometry="geometry",
                            crs=plan_zones.crs)
