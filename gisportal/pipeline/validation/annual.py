"""Checks of an annual land-use plan: plausible years, projects inside the district.

An annual plan is a list of projects, not a coverage: two projects may share land (a
road crossing a residential area, a project carried over to the next year), so the
topology rules of parcels and plan zones (overlaps, gaps, coverage edges) do not apply.
What does apply, beside the checks of every polygon layer (geometry, land-use codes,
commune codes, declared area): each feature's year is a plausible plan year
(ANNUAL-YEAR-RANGE), and no project reaches beyond the published district outline
(TOPO-OUTSIDE-DISTRICT, with the annual plan's own tolerances).
"""

from __future__ import annotations

import json

import numpy as np
import shapely

from gisportal.base import crs as vncrs
from gisportal.base.findings import Finding
from gisportal.pipeline.annual import KIND, year_bounds
from gisportal.pipeline.normalise import NormalisedLayer, feature_keys, locate_rows
from gisportal.pipeline.validation.context import ValidationContext

__all__ = ["ANNUAL_CHECKS", "check_annual_plan", "check_years", "check_outside"]


def _findings(norm: NormalisedLayer, rule: str, rows: np.ndarray, params: list[dict],
              locations: list[dict | None]) -> list[Finding]:
    keys = feature_keys(norm.frame, norm.model, rows)
    src = norm.frame["src_row"].to_numpy()[rows]
    return [Finding(rule, row=int(r), key=k, location=loc, params=p)
            for r, k, loc, p in zip(src, keys, locations, params, strict=True)]


def check_years(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """ANNUAL-YEAR-RANGE: a year outside the plausible range, one finding per feature."""
    first, last = year_bounds()
    years = norm.frame["year"].to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(np.isfinite(years) & ((years < first) | (years > last)))
    if len(rows) == 0:
        return []
    column = norm.mapping.mapped.get("year", "year")
    return _findings(norm, "ANNUAL-YEAR-RANGE", rows, [
        {"year": int(years[r]), "column": column, "min": first, "max": last} for r in rows],
        locate_rows(norm.frame.geometry.values[rows]))


def _lonlat_geojson(geom) -> dict | None:
    """A store-CRS geometry as GeoJSON in WGS 84 (7 decimals), None when empty."""
    if geom is None or shapely.is_empty(geom):
        return None

    def lonlat(xy: np.ndarray) -> np.ndarray:
        lon, lat = vncrs.to_lonlat(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), 7)

    return json.loads(shapely.to_geojson(shapely.transform(geom, lonlat)))


def check_outside(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """TOPO-OUTSIDE-DISTRICT: the part of a project beyond the district outline, over
    both ``outside_tolerance_m2`` and ``outside_tolerance_relative`` of its area. Without
    a published outline nothing is "outside" (as for parcels and plan zones)."""
    boundary = ctx.district_boundary
    if boundary is None or shapely.is_empty(boundary):
        return []
    geoms = norm.frame.geometry.values
    usable = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
                            & norm.valid)
    if len(usable) == 0:
        return []
    outline = shapely.from_wkb(shapely.to_wkb(boundary))  # a prepared copy: ctx is shared
    shapely.prepare(outline)
    rest = usable[~shapely.contains_properly(outline, geoms[usable])]
    if len(rest) == 0:
        return []
    outside = shapely.difference(geoms[rest], outline)
    area_out, area = shapely.area(outside), shapely.area(geoms[rest])
    bad = ((area_out > norm.model.threshold("outside_tolerance_m2"))
           & (area_out > norm.model.threshold("outside_tolerance_relative") * area))
    rows = rest[bad]
    return _findings(norm, "TOPO-OUTSIDE-DISTRICT", rows, [
        {"area_m2": round(float(o), 2), "pct": round(100 * float(o) / float(t), 1)}
        for o, t in zip(area_out[bad], area[bad], strict=True)],
        [_lonlat_geojson(g) for g in outside[bad]])


def check_annual_plan(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """The annual plan's own rules (other kinds: none)."""
    if norm.model.kind != KIND:
        return []
    return check_years(norm, ctx) + check_outside(norm, ctx)


#: What the engine appends to its checks.
ANNUAL_CHECKS = (check_annual_plan,)
