"""The package's GeoPackage: every exported layer of the district, one table per kind.

Geometry stays in the store CRS (VN-2000 / TM-3, EPSG:5899 for Lâm Đồng), untouched.
The CRS is registered under its EPSG code, with a definition that carries the datum
shift (``TOWGS84``, as in the Shapefile ``.prj``). The file is GeoPackage 1.2: every
GIS of the last years reads it, whereas GDAL before 3.7 (Debian 12's ``ogrinfo``, QGIS
3.22) warns that 1.4 "may only be partially supported".
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio
import pyproj

from gisportal.outputs.export.shapefile import prj_wkt

__all__ = ["GEOPACKAGE_VERSION", "write_table"]

GEOPACKAGE_VERSION = "1.2"


def write_table(frame: gpd.GeoDataFrame, path: Path, table: str, *, identifier: str,
                description: str) -> None:
    """Add `frame` to the GeoPackage `path` (created on the first table) as `table`.

    `identifier` and `description` go to ``gpkg_contents``, where GIS software shows
    them as the layer's title and abstract.
    """
    crs = pyproj.CRS.from_wkt(prj_wkt(pyproj.CRS.from_user_input(frame.crs)))
    pyogrio.write_dataframe(
        frame.set_crs(crs, allow_override=True), path, layer=table, driver="GPKG",
        append=False,
        dataset_options={"VERSION": GEOPACKAGE_VERSION},
        layer_options={"IDENTIFIER": identifier, "DESCRIPTION": description,
                       "SPATIAL_INDEX": "YES"},
    )
