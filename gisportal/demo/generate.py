"""Entry points: a whole synthetic province, or one district, as GeoDataFrames.

Pure functions of their arguments: no file or store I/O (the demo service saves and
ingests what they return). Each district draws from its own random streams, so one
district generated alone equals the same district generated with the province.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import geopandas as gpd
from shapely.geometry import Polygon

from gisportal.base.errors import UsageError

from .landscape import classify, towns_of
from .lattice import build_lattice
from .outline import DistrictLayout, province_layout, province_outline
from .parcels import generate_parcels
from .plan import generate_plan
from .rand import rng_for

__all__ = ["DemoDistrict", "generate_district", "generate_province", "iter_province",
           "province_outline"]

@dataclass
class DemoDistrict:
    """One generated district, all layers in ``crs``: the VN-2000 / TM-3 zone its
    offices survey in (``seeds.survey_zone``), as they would deliver them.

    Attributes
    ----------
    code, name
        GSO district code (``"678"``) and name (``"Huyện Đức Trọng"``).
    crs
        ``"EPSG:5899"`` (107°45′, former Lâm Đồng) or ``"EPSG:9218"`` (108°30′,
        former Đắk Nông and Bình Thuận); every frame carries it too.
    boundary
        District polygon.
    communes
        ``code`` (the real GSO code of the former commune), ``name`` (NFC, as
        ``seeds/communes.csv`` has it), ``kind`` (``xa``, ``phuong``, ``thi_tran``, from
        the name's prefix), ``geometry``; in code order; they tile ``boundary``.
    parcels
        ``commune``, ``sheet``, ``parcel`` (the key), ``land_use`` (code, sometimes
        combined as ``ONT+CLN``), ``area_m2`` (declared area, as surveyed: rounded to
        0.1 m², a few off by up to 0.5 %), ``owner`` (synthetic personal data the
        portal must hide), ``address`` (may be None), ``geometry``.
    plan
        2021–2030 zones: ``zone_id``, ``land_use`` (planned code), ``commune``,
        ``geometry``; they tile ``boundary`` exactly.
    """

    code: str
    name: str
    crs: str
    boundary: Polygon
    communes: gpd.GeoDataFrame
    parcels: gpd.GeoDataFrame
    plan: gpd.GeoDataFrame


def _communes_frame(layout: DistrictLayout) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {
            "code": [c.code for c in layout.communes],
            "name": [c.name for c in layout.communes],
            "kind": [c.kind for c in layout.communes],
        },
        geometry=gpd.GeoSeries(list(layout.commune_shapes), crs=layout.crs),
        crs=layout.crs,
    )
    return frame.sort_values("code", kind="stable").reset_index(drop=True)


def _build(layout: DistrictLayout, parcels: int, seed: int,
           progress: Callable[[str, int], None]) -> DemoDistrict:
    # the district is surveyed in its own zone: lattice, parcels, declared areas and
    # plan are made in its coordinates, as its office would make them
    layout = layout.in_crs(layout.zone_crs)
    code = layout.code
    towns = towns_of(layout, rng_for(seed, "towns", code))
    lattice = build_lattice(layout, rng_for(seed, "lattice", code), [t.centre for t in towns])
    land = classify(layout, lattice, towns, rng_for(seed, "landscape", code))
    parcel_frame = generate_parcels(layout, lattice, land, towns, parcels,
                                    rng_for(seed, "parcels", code))
    progress("parcels", len(parcel_frame))
    plan = generate_plan(layout, lattice, land, towns)
    progress("plan", 1)
    return DemoDistrict(
        code=code,
        name=layout.seed.name,
        crs=layout.crs,
        boundary=layout.boundary,
        communes=_communes_frame(layout),
        parcels=parcel_frame,
        plan=plan,
    )


def _district_layout(seed: int, code: str) -> DistrictLayout:
    layout = province_layout(seed)
    try:
        return layout.district(str(code))
    except KeyError:
        known = ", ".join(d.code for d in layout.districts)
        raise UsageError(f"no demo district {code}", where="district",
                         fix=f"use one of {known}") from None


def generate_district(code: str, parcels: int, *, seed: int = 68) -> DemoDistrict:
    """Generate one district of the synthetic province.

    Parameters
    ----------
    code
        GSO code of a plan district, valid on 2024-12-31 (former Lâm Đồng 672–683,
        Đắk Nông 660–667, Bình Thuận 593–602).
    parcels
        Exact number of parcels to generate (towns are surveyed first).
    seed
        Same seed, same output, bit for bit.
    """
    layout = _district_layout(seed, code)
    if parcels < 0:
        raise UsageError("the number of parcels cannot be negative", where="parcels")
    return _build(layout, int(parcels), seed, lambda stage, count: None)


def generate_province(
    parcels_per_district: int = 2000,
    *,
    seed: int = 68,
    districts: Sequence[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> list[DemoDistrict]:
    """Generate the synthetic province, district by district.

    Parameters
    ----------
    parcels_per_district
        Exact number of parcels in each district.
    seed
        Same seed, same output.
    districts
        Codes to generate (default: all 30, in code order).
    progress
        Called as ``progress(stage, count)`` where ``count`` is the running total of
        that stage's unit: ``("layout", 1)`` once the province shapes exist, then per
        district ``("parcels", parcels generated so far)``, ``("plan", plans made so
        far)`` and ``("district", districts finished so far)``. A progress bar can
        follow ``"parcels"`` up to ``parcels_per_district × len(districts)``.
    """
    return list(iter_province(parcels_per_district, seed=seed, districts=districts,
                              progress=progress))


def iter_province(
    parcels_per_district: int = 2000,
    *,
    seed: int = 68,
    districts: Sequence[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Iterator[DemoDistrict]:
    """`generate_province` one district at a time, as each is made.

    Why: the demo service ingests a district while the next is generated, and holds
    one district's frames at a time, not the province's. Every code is checked
    before the first district is made (an unknown one raises UsageError at once).
    """
    if parcels_per_district < 0:
        raise UsageError("the number of parcels cannot be negative", where="parcels")
    report = progress or (lambda stage, count: None)
    layout = province_layout(seed)
    report("layout", 1)
    codes = [d.code for d in layout.districts] if districts is None else [str(c) for c in
                                                                           districts]
    chosen = [_district_layout(seed, c) for c in codes]
    return _districts(chosen, int(parcels_per_district), seed, report)


def _districts(chosen: list[DistrictLayout], parcels: int, seed: int,
               report: Callable[[str, int], None]) -> Iterator[DemoDistrict]:
    totals = {"parcels": 0, "plan": 0}

    def running(stage: str, count: int) -> None:
        totals[stage] += count
        report(stage, totals[stage])

    for done, district in enumerate(chosen, start=1):
        yield _build(district, parcels, seed, running)
        report("district", done)
