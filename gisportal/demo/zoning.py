"""Planning projects of the demo province: a town's zoning plan, a detailed plan inside
it, and a small town's general plan with an adjustment to compare.

Each plan is drawn as consultants draw one: blocks of lots between roads on a grid
laid over the town's centre, every road a lot of its own (function ``GT``) so that the
lots cover the project area without gaps or overlaps, the roads' red lines on the
edges of those lots, and building lines a few metres behind the red lines of the main
roads. Functions follow a town's pattern (mixed use and commerce along the main road,
schools and clinics on their own blocks, housing elsewhere, a park), with indicators
in the ranges of QCVN 01:2021/BXD that agree with each other (the floor-area ratio
never above density × floors). Coordinates are whole metres of the district's survey
grid, so shared edges are exact.

Field names are those of consultants' files (``KyHieuLo``, ``ChucNang``, ``MatDoXD``,
``TangCao``, ``HeSoSDD``; ``TenDuong``, ``LoGioi``, ``LoaiChiGioi``), read through the
layer models' aliases like any upload.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from gisportal.demo.rand import rng_for

__all__ = ["DemoProject", "PROJECTS", "plan_frames"]

#: Indicators per function: (density % range, floors range); FAR = density × floors × k.
_INDICATORS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "ODM": ((60, 80), (3, 5)), "OHT": ((70, 90), (2, 4)), "HH": ((40, 60), (5, 12)),
    "TM": ((40, 60), (4, 9)), "GD": ((30, 40), (2, 4)), "YT": ((35, 45), (3, 5)),
    "CX": ((3, 5), (1, 1)), "VH": ((30, 40), (1, 3)), "CQ": ((35, 45), (3, 5)),
}
#: Road names of the demo (real street names of Lâm Đồng towns are not claimed: these
#: are common Vietnamese street names, the plan is fictitious).
_ROAD_NAMES = ("Đường Thống Nhất", "Đường Hùng Vương", "Đường Trần Phú", "Đường Lê Lợi",
               "Đường Nguyễn Trãi", "Đường Hai Bà Trưng", "Đường Lý Thường Kiệt",
               "Đường Phan Bội Châu", "Đường Quang Trung", "Đường Ngô Quyền")


@dataclass(frozen=True)
class DemoProject:
    """One demo project: where (a district's seat, an offset in metres), how big, and
    the grid of its blocks."""

    id: str
    district: str
    name: str
    level: str
    scale: str
    #: offset of the project's south-west corner from the district's anchor (m)
    offset: tuple[float, float]
    #: block columns and rows, block size (m), road width (m): main roads every
    #: `main_every` blocks are wider
    blocks: tuple[int, int]
    block: tuple[float, float]
    road: float
    main_road: float
    main_every: int
    #: the project this one lies inside (a detailed plan in a zoning plan), for the doc
    inside: str | None = None
    #: an adjustment: a second version whose functions differ on some lots
    adjusted: bool = False


PROJECTS: tuple[DemoProject, ...] = (
    DemoProject(
        id="678-lien-nghia-phan-khu", district="678",
        name="Quy hoạch phân khu trung tâm thị trấn Liên Nghĩa (dữ liệu minh họa)",
        level="zoning", scale="1/2000", offset=(-450.0, -350.0), blocks=(6, 5),
        block=(120.0, 100.0), road=13.0, main_road=24.0, main_every=3),
    DemoProject(
        id="678-lien-nghia-chi-tiet", district="678",
        name="Quy hoạch chi tiết khu dân cư số 1 thị trấn Liên Nghĩa (dữ liệu minh họa)",
        level="detailed", scale="1/500", offset=(-426.0, -326.0), blocks=(4, 3),
        block=(22.0, 25.0), road=6.0, main_road=6.0, main_every=99,
        inside="678-lien-nghia-phan-khu"),
    DemoProject(
        id="679-dran-chung", district="679",
        name="Điều chỉnh quy hoạch chung thị trấn Dran, huyện Đơn Dương (dữ liệu minh họa)",
        level="general", scale="1/5000", offset=(-600.0, -500.0), blocks=(5, 4),
        block=(220.0, 200.0), road=16.0, main_road=30.0, main_every=2, adjusted=True),
)


def _breaks(n: int, size: float, road: float, main_road: float, main_every: int
            ) -> tuple[list[tuple[float, float]], list[tuple[float, float, bool]]]:
    """Along one axis from 0: the blocks' spans and the roads' spans (with whether the
    road is a main one); a road before the first block and after the last."""
    blocks, roads = [], []
    at = 0.0
    for i in range(n + 1):
        main = i % main_every == 0
        width = main_road if main else road
        roads.append((at, at + width, main))
        at += width
        if i < n:
            blocks.append((at, at + size))
            at += size
    return blocks, roads


def _function(rng: np.random.Generator, i: int, j: int, p: DemoProject) -> str:
    """A town's pattern: commerce and mixed use along the main roads, a school and a
    clinic, a park, housing elsewhere (existing housing in a general plan's old core)."""
    nx, ny = p.blocks
    if (i, j) == (nx // 2, ny // 2):
        return "CX"
    if (i, j) == (0, ny - 1):
        return "GD"
    if (i, j) == (nx - 1, 0):
        return "YT"
    if p.level == "detailed":
        return "ODM"
    if j % p.main_every == 0 and i % 2 == 0:  # every other block along a main road
        return "HH" if rng.random() < 0.6 else "TM"
    if p.level == "general" and i < nx // 2:
        return "OHT"
    return "ODM"


def _indicators(rng: np.random.Generator, function: str) -> tuple[str, str, str]:
    """Density, floors and FAR as a drawing's table writes them ("60%", "3-5", "2,4")."""
    if function not in _INDICATORS:
        return "", "", ""
    (d0, d1), (f0, f1) = _INDICATORS[function]
    density = int(rng.integers(d0 // 5, d1 // 5 + 1)) * 5 if d1 >= 10 else int(
        rng.integers(d0, d1 + 1))
    floors_min = int(rng.integers(f0, f1 + 1))
    floors_max = int(rng.integers(floors_min, f1 + 1))
    far = density / 100 * floors_max * float(rng.uniform(0.75, 0.95))
    far = round(far, 2 if far < 1 else 1)  # a park's 0,03, a block's 2,4
    floors = str(floors_max) if floors_min == floors_max else f"{floors_min}-{floors_max}"
    return f"{density}%", floors, f"{far}".replace(".", ",")


def plan_frames(p: DemoProject, origin: tuple[float, float], crs: str, seed: int, *,
                version: int = 1) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The project's lots and red lines, in `crs` (the district's survey grid), its
    south-west corner at `origin` + `p.offset` (rounded to the metre). `version` 2 is
    the adjustment of an adjusted project: the first block becomes a park and every
    third block of housing becomes mixed use (its indicators those of mixed use); every
    other lot keeps its function and indicators (each lot draws from a stream of its
    own), so comparing the two versions shows exactly those changes."""
    x0 = float(round(origin[0] + p.offset[0]))
    y0 = float(round(origin[1] + p.offset[1]))
    xb, xr = _breaks(p.blocks[0], p.block[0], p.road, p.main_road, p.main_every)
    yb, yr = _breaks(p.blocks[1], p.block[1], p.road, p.main_road, p.main_every)
    width, height = xr[-1][1], yr[-1][1]
    codes, functions, densities, floors, fars, geoms = [], [], [], [], [], []
    prefix = "CT" if p.level == "detailed" else ""
    for j, (b0, b1) in enumerate(yb):
        for i, (a0, a1) in enumerate(xb):
            rng = rng_for(seed, "zoning", p.id, i, j)
            function = _function(rng, i, j, p)
            if version == 2 and function in ("ODM", "OHT") and (i + j) % 3 == 0:
                function = "HH"
            if version == 2 and (i, j) == (0, 0):
                function = "CX"
            density, floor, far = _indicators(rng_for(seed, "indicators", p.id, i, j,
                                                      function), function)
            codes.append(f"{prefix}{function}-{j + 1}.{i + 1}")
            functions.append(function)
            densities.append(density)
            floors.append(floor)
            fars.append(far)
            geoms.append(shapely.box(x0 + a0, y0 + b0, x0 + a1, y0 + b1))
    # Roads: each horizontal one across the whole width; the vertical ones between them.
    road_lines, road_names, road_widths, line_types = [], [], [], []
    n = 0
    for k, (b0, b1, main) in enumerate(yr):
        n += 1
        name = _ROAD_NAMES[k % len(_ROAD_NAMES)]
        width_m = b1 - b0
        codes.append(f"GT-{n}")
        functions.append("GT")
        densities.append("")
        floors.append("")
        fars.append("")
        geoms.append(shapely.box(x0, y0 + b0, x0 + width, y0 + b1))
        for y in (b0, b1):
            if 0 < y < height:
                road_lines.append(shapely.LineString([(x0, y0 + y), (x0 + width, y0 + y)]))
                road_names.append(name)
                road_widths.append(f"{width_m:g}")
                line_types.append("Chỉ giới đường đỏ")
        if main:
            # The building line 4 m (6 m along main roads) behind the red line.
            setback = 6.0
            for y, sign in ((b0, -1), (b1, 1)):
                yy = y + sign * setback
                if 0 < yy < height:
                    road_lines.append(shapely.LineString([(x0, y0 + yy),
                                                          (x0 + width, y0 + yy)]))
                    road_names.append(name)
                    road_widths.append("")
                    line_types.append("Chỉ giới xây dựng")
    for k, (a0, a1, _main) in enumerate(xr):
        name = _ROAD_NAMES[(k + 5) % len(_ROAD_NAMES)]
        for b0, b1 in yb:
            n += 1
            codes.append(f"GT-{n}")
            functions.append("GT")
            densities.append("")
            floors.append("")
            fars.append("")
            geoms.append(shapely.box(x0 + a0, y0 + b0, x0 + a1, y0 + b1))
            for x in (a0, a1):
                if 0 < x < width:
                    road_lines.append(shapely.LineString([(x0 + x, y0 + b0),
                                                          (x0 + x, y0 + b1)]))
                    road_names.append(name)
                    road_widths.append(f"{a1 - a0:g}")
                    line_types.append("Chỉ giới đường đỏ")
    lots = gpd.GeoDataFrame({"KyHieuLo": codes, "ChucNang": functions, "MatDoXD": densities,
                             "TangCao": floors, "HeSoSDD": fars},
                            geometry=geoms, crs=crs)
    lines = gpd.GeoDataFrame({"TenDuong": road_names, "LoGioi": road_widths,
                              "LoaiChiGioi": line_types}, geometry=road_lines, crs=crs)
    return lots, lines
