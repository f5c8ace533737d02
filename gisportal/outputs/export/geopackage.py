"""The package's GeoPackage: every exported layer of the district, one table per kind.

Geometry stays in the store CRS (VN-2000 / TM-3, EPSG:5899 for Lâm Đồng), untouched.
The CRS is registered under its EPSG code, with a definition that carries the datum
shift (``TOWGS84``, as in the Shapefile ``.prj``). The file is GeoPackage 1.2: every
GIS of the last years reads it, whereas GDAL before 3.7 (Debian 12's ``ogrinfo``, QGIS
3.22) warns that 1.4 "may only be partially supported".

Each table gets its map style in ``layer_styles``, the table QGIS reads when it opens a
GeoPackage layer and applies the row marked ``useAsDefault`` (`add_styles`): plan zones
in the official land-use colours, parcels, boundaries and annual plans as on the web map
(`gisportal.outputs.styles`). The table is created exactly as QGIS 3.22 creates it when
it saves a style into a GeoPackage (columns, types, the ``update_time`` default), and is
registered in ``gpkg_contents`` as an attributes table, as QGIS (through GDAL) does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pyogrio
import pyproj

from gisportal.outputs.export.shapefile import prj_wkt

__all__ = ["GEOPACKAGE_VERSION", "LAYER_STYLES_DDL", "TableStyle", "add_styles", "write_table"]

GEOPACKAGE_VERSION = "1.2"

#: ``layer_styles`` as QGIS 3.22 creates it in a GeoPackage (``saveStyleToDatabase``,
#: read back from the file it wrote).
LAYER_STYLES_DDL = (
    'CREATE TABLE IF NOT EXISTS "layer_styles" ( "id" INTEGER PRIMARY KEY AUTOINCREMENT '
    'NOT NULL, "f_table_catalog" TEXT(256), "f_table_schema" TEXT(256), "f_table_name" '
    'TEXT(256), "f_geometry_column" TEXT(256), "styleName" TEXT(30), "styleQML" TEXT, '
    '"styleSLD" TEXT, "useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), "ui" '
    'TEXT(30), "update_time" DATETIME DEFAULT (strftime(\'%Y-%m-%dT%H:%M:%fZ\',\'now\')))')


@dataclass(frozen=True)
class TableStyle:
    """One row of ``layer_styles``: a named style of a table."""

    table: str
    name: str
    qml: str
    sld: str
    default: bool
    description: str


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


def add_styles(path: Path, styles: Sequence[TableStyle], *, stamp: str) -> None:
    """Store `styles` in the GeoPackage `path`'s ``layer_styles`` (created if missing).

    ``f_table_catalog`` and ``f_table_schema`` are empty strings, as QGIS writes and
    looks them up for a GeoPackage; ``f_geometry_column`` is the table's own (from
    ``gpkg_geometry_columns``): QGIS matches a layer's style on table and geometry column.
    `stamp` (ISO 8601) is ``update_time`` and ``gpkg_contents.last_change``.
    """
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    when = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(LAYER_STYLES_DDL)
        db.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
            "description, last_change) VALUES ('layer_styles', 'attributes', "
            "'layer_styles', 'Kiểu hiển thị của các lớp (QGIS) / layer styles', ?)", (when,))
        geometry = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        db.executemany(
            'INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, '
            'f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, '
            'owner, ui, update_time) VALUES (\'\', \'\', ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)',
            [(st.table, geometry.get(st.table, "geom"), st.name, st.qml, st.sld,
              1 if st.default else 0, st.description, "gisportal", when) for st in styles])
