"""What the checks may know beyond the layer itself: the district and its boundaries.

Topology rules need the district outline (coverage, features outside) and schema
rules the district's commune codes. They come from the district's published
boundary layer when there is one; with none, those checks say nothing rather than
guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["ValidationContext", "context_from_boundary"]


@dataclass(frozen=True)
class ValidationContext:
    """District facts for the checks, all geometry in the store CRS (VN-2000 TM-3)."""

    district: str | None = None
    #: the district's outline, or None when no boundary layer is published
    district_boundary: BaseGeometry | None = None
    #: commune code → commune outline, from the same boundary layer
    communes: dict[str, BaseGeometry] = field(default_factory=dict)


def context_from_boundary(district: str | None, boundary_frame) -> ValidationContext:
    """Build a context from a boundary layer frame (columns level, code; geometry).

    Rows with level "district" (or a 3-digit code) make the outline — unioned, so a
    district drawn in several pieces still works; rows with level "commune" (or a
    5-digit code) give the communes. An empty or missing frame gives an empty context.
    """
    if boundary_frame is None or len(boundary_frame) == 0:
        return ValidationContext(district=district)
    codes = boundary_frame["code"].astype("string").fillna("")
    levels = (boundary_frame["level"].astype("string").fillna("")
              if "level" in boundary_frame else codes.map(lambda _: ""))
    is_district = (levels == "district") | ((levels == "") & (codes.str.len() == 3))
    is_commune = (levels == "commune") | ((levels == "") & (codes.str.len() == 5))
    geoms = boundary_frame.geometry.values
    outline = None
    if is_district.any():
        outline = shapely.union_all(geoms[is_district.to_numpy()])
    elif is_commune.any():
        outline = shapely.coverage_union_all(geoms[is_commune.to_numpy()])
    communes: dict[str, BaseGeometry] = {}
    for code, geom in zip(codes[is_commune], geoms[is_commune.to_numpy()], strict=True):
        communes[code] = geom if code not in communes else shapely.union(communes[code], geom)
    return ValidationContext(district=district, district_boundary=outline, communes=communes)
