"""How a look-up measures a parcel against the zones and projects over it.

A parcel with more vertices than `MEASURE_EXACT_UP_TO` (a densified arc, a hostile
upload) is measured on its outline thinned to `SURVEY_TOLERANCE_M`: a million-vertex
parcel otherwise costs tens of seconds of GEOS intersection per look-up. The tolerance
is far below what a cadastral survey resolves (5–10 cm), so the shares do not move.
One rule for the plan zones (`lookup`) and the annual plan's projects (`annual`).
"""

from __future__ import annotations

import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["MEASURE_EXACT_UP_TO", "SURVEY_TOLERANCE_M", "measured"]

MEASURE_EXACT_UP_TO = 10_000
SURVEY_TOLERANCE_M = 0.02


def measured(geom: BaseGeometry) -> BaseGeometry:
    """The parcel as shares and overlaps are computed on (see the module doc)."""
    if shapely.get_num_coordinates(geom) <= MEASURE_EXACT_UP_TO:
        return geom
    thin = shapely.simplify(shapely.remove_repeated_points(geom, SURVEY_TOLERANCE_M),
                            SURVEY_TOLERANCE_M, preserve_topology=True)
    return thin if shapely.is_valid(thin) else shapely.make_valid(thin)
