"""A layer as GeoJSON per RFC 7946: WGS 84 longitude/latitude, right-hand rings, 7 decimals.

RFC 7946 has no ``crs`` member: coordinates are always WGS 84 (OGC:CRS84 axis order,
longitude first). Reprojection picks PROJ's EPSG pipeline (EPSG:5899 → 4326 with the
EPSG:6960 datum shift), as :func:`gisportal.base.crs.to_lonlat` does for the rest of the
portal, so an exported parcel lands where the map and the look-up put it. Seven
decimals of a degree are about 1 cm, the precision of cadastral coordinates.
Exterior rings are made counter-clockwise and holes clockwise with shapely's
``orient_polygons`` (GDAL's RFC 7946 mode would do it too; doing it here makes the rule
ours, whatever writer is used).
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

__all__ = ["GEOJSON_DECIMALS", "to_rfc7946", "write_geojson"]

#: Decimals of a degree kept: 1e-7° ≈ 1.1 cm on the ground.
GEOJSON_DECIMALS = 7


def to_rfc7946(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """`frame` in WGS 84 with right-hand-rule polygons."""
    out = frame.to_crs("EPSG:4326")
    geometry = out.geometry.name
    out[geometry] = gpd.GeoSeries(shapely.orient_polygons(out.geometry.values, exterior_cw=False),
                                  index=out.index, crs=out.crs)
    return out


def write_geojson(frame: gpd.GeoDataFrame, path: Path
                  ) -> tuple[float, float, float, float] | None:
    """Write `frame` (any CRS) as an RFC 7946 FeatureCollection to `path`.

    Returns the layer's (west, south, east, north) in degrees, None when it has no
    geometry: the metadata's bounding box, computed here where the degrees already are.
    """
    wgs84 = to_rfc7946(frame)
    pyogrio.write_dataframe(
        wgs84, path, driver="GeoJSON",
        layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": str(GEOJSON_DECIMALS),
                       "WRITE_NAME": "NO"},
    )
    bounds = shapely.total_bounds(wgs84.geometry.values)
    return None if any(map(math.isnan, bounds)) else tuple(float(b) for b in bounds)
