"""What the annual land-use plans say about a parcel or a point (``annual_plans``).

Residents check the annual plan (kế hoạch sử dụng đất hằng năm) before buying land: a
parcel inside a project of the 2026 plan is land the State plans to recover or convert
that year. The 2021–2030 plan (``planned``) says what the land is zoned for; this says
which works or project is planned on it, in which year, under which decision.

A parcel gets the projects whose polygon shares a positive area with it — the overlap
in m² and its share of the parcel, as ``planned`` gives them for plan zones — and a
point with no parcel (a road, a river) the projects containing it. Newest year first:
the year a resident asks about is the coming one. A project drawn as several polygons
(a road in segments) is one item: its parts' overlaps are added up.

What to ask the store is the caller's: the look-up asks for the published layer's
features (`COLUMNS`) over the parcel's box, or at the point, in the same call as the
parcel itself (`Store.records_and_overlays`: on PostgreSQL the same statement), and
nothing when the district publishes no annual plan. This module turns those features
into the answer, so the look-up's cost hardly changes with an annual plan published.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gisportal.base import seeds
from gisportal.services.measure import measured

__all__ = ["COLUMNS", "KIND", "annual_plans"]

#: The layer kind of annual plans.
KIND = "annual_plan"
#: The stored columns an answer needs (all canonical, none personal: layers/annual_plan.json).
COLUMNS = ("year", "name", "code", "land_use", "area_m2", "decision")


def _na(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def _text(value: Any) -> str | None:
    return None if _na(value) else str(value)


def annual_plans(found: list[dict[str, Any]], geom: BaseGeometry | None, *,
                 factor: float = 1.0) -> list[dict[str, Any]]:
    """The annual-plan items over a parcel (a polygon) or at a point, newest year first.

    Parameters
    ----------
    found
        The district's published annual-plan features (columns `COLUMNS`) the store
        found over the parcel's bounding box, or at the point (`Store.records`, or
        ``Found.overlays`` of `Store.records_and_overlays`); none when the district
        has no published annual plan.
    geom
        The parcel (store CRS): the items sharing a positive area with it, with
        ``overlap_m2`` and ``share``; or a point: the items containing it, with those
        two null.
    factor
        Legal area over store-grid area at the parcel (1 where the district was
        surveyed in the store's own zone), applied to every area measured here.

    Returns
    -------
    list of dict
        ``year``, ``name``, ``code``, ``land_use``, ``land_use_name`` (and
        ``land_use_name_en``, ``color``), ``area_m2`` (the project's area as the plan
        gives it, else as drawn), ``area_computed_m2``, ``overlap_m2``, ``share``,
        ``decision``.
    """
    if not found or geom is None or shapely.is_empty(geom):
        return []
    if shapely.get_type_id(geom) == 0:  # a point: the items containing it
        return _items(found, [None] * len(found), None, factor)
    parcel = measured(geom)
    shapes = np.array([f["geometry"] for f in found], dtype=object)
    areas = shapely.area(shapely.intersection(shapes, parcel)) * factor
    keep = areas > 0
    kept = [f for f, k in zip(found, keep, strict=True) if k]
    overlaps: list[float | None] = [float(a) for a in areas[keep]]
    return _items(kept, overlaps, float(shapely.area(parcel)) * factor, factor)


def _items(found: list[dict[str, Any]], overlaps: list[float | None], total: float | None,
           factor: float) -> list[dict[str, Any]]:
    """One item per project (parts of one project joined), newest year first."""
    cat = seeds.land_use_catalogue()
    groups: dict[tuple, dict[str, Any]] = {}
    for f, overlap in zip(found, overlaps, strict=True):
        year = None if _na(f.get("year")) else int(f["year"])
        key = (year, _text(f.get("name")), _text(f.get("code")), _text(f.get("land_use")),
               _text(f.get("decision")))
        g = groups.setdefault(key, {"declared": [], "computed": 0.0, "overlap": None})
        declared = f.get("area_m2")
        if not _na(declared):
            g["declared"].append(float(declared))
        g["computed"] += float(shapely.area(f["geometry"])) * factor
        if overlap is not None:
            g["overlap"] = (g["overlap"] or 0.0) + overlap
    out = []
    for (year, name, code, land_use, decision), g in groups.items():
        declared = g["declared"]
        # Offices write either each part's own area or the project's on every part.
        area = (declared[0] if len(set(declared)) == 1 else sum(declared)) if declared \
            else g["computed"]
        overlap = g["overlap"]
        out.append({
            "year": year, "name": name, "code": code, "land_use": land_use,
            "land_use_name": cat.name(land_use) if land_use else None,
            "land_use_name_en": cat.name(land_use, "en") if land_use else None,
            "color": cat.color(land_use) if land_use else None,
            "area_m2": round(area, 1), "area_computed_m2": round(g["computed"], 1),
            "overlap_m2": None if overlap is None else round(overlap, 1),
            "share": None if overlap is None or not total else round(overlap / total, 4),
            "decision": decision,
        })
    return sorted(out, key=lambda d: (-(d["year"] or 0), -(d["overlap_m2"] or 0.0),
                                      d["name"] or ""))
