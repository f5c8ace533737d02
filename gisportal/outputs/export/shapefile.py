"""A layer as a zipped Shapefile: UTF-8 DBF with its ``.cpg``, a ``.prj`` GIS software
recognises by its EPSG code, and the same CRS with its datum shift for the rest.

Two readers want two different ``.prj`` files, and no one text serves both (tested with
QGIS 3.22, GDAL 3.6 and pyproj/PROJ 9, docs/export.md):

- **GIS software with the EPSG database** (QGIS, ArcGIS, GDAL, PROJ) recognises the
  ESRI WKT 1 that GDAL itself writes — ``PROJCS["VN_2000_TM-3_107-45"...]``, without
  ``TOWGS84`` — as EPSG:5899 and transforms with the EPSG:6960 shift from its database.
  A ``.prj`` holding ``TOWGS84`` is different: GDAL reads it as a *bound* CRS, and QGIS
  3.22 never gives a bound CRS an authority (it shows a custom CRS, "unknown" in the
  status bar), even when the WKT carries ``AUTHORITY["EPSG","5899"]``. So the
  Shapefile's ``.prj`` is the ESRI form: `prj_texts` checks that PROJ identifies it back
  to the same EPSG code before choosing it.
- **Software without the EPSG database** (older GIS, CAD plug-ins, web converters) treats
  a datum it cannot look up as WGS 84 and puts every parcel about 200 m off. For it the
  package ships `prj_wkt`'s OGC WKT 1 with ``TOWGS84`` holding the VN-2000 → WGS 84 shift
  in PROJ's position-vector signs (:data:`gisportal.base.crs.TOWGS84_PV`, docs/design.md
  §4) beside the zipped Shapefile (``shapefile/towgs84/<stem>.prj``): copied over the
  ``.prj`` it lands within millimetres of PROJ's EPSG:5899 pipeline.

A CRS with no EPSG identity (a custom TM-3 built with ``+towgs84``) has only the second
form, which then is the ``.prj``.

A DBF text field holds at most 254 bytes: longer values are cut by GDAL. That cannot
be helped in a Shapefile, so the values concerned are counted and reported (the
GeoPackage and the GeoJSON keep the full text).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
from pyproj.crs import BoundCRS
from pyproj.crs.coordinate_operation import ToWGS84Transformation

from gisportal.base.crs import TOWGS84_PV

__all__ = ["DBF_TEXT_BYTES", "PrjTexts", "prj_texts", "prj_wkt", "write_shapefile", "zip_parts",
           "long_text_counts"]

#: Longest DBF text value, in bytes (UTF-8 here).
DBF_TEXT_BYTES = 254
#: EPSG code of the VN-2000 datum.
_VN2000_DATUM = 6756
_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def prj_wkt(crs: pyproj.CRS) -> str:
    """The ``.prj`` text for `crs`: OGC WKT 1, with ``TOWGS84`` for a VN-2000 CRS.

    A CRS that already carries its shift (a custom TM-3 built with ``+towgs84``) keeps
    it; a CRS on another datum is written as it is.
    """
    if crs.is_bound:
        return crs.to_wkt("WKT1_GDAL")
    geodetic = crs.geodetic_crs
    vn2000 = pyproj.crs.Datum.from_epsg(_VN2000_DATUM)
    if geodetic is None or geodetic.datum.name != vn2000.name:
        return crs.to_wkt("WKT1_GDAL")
    bound = BoundCRS(source_crs=crs, target_crs="EPSG:4326",
                     transformation=ToWGS84Transformation(geodetic, *TOWGS84_PV))
    return bound.to_wkt("WKT1_GDAL")


class PrjTexts(NamedTuple):
    """The ``.prj`` of a Shapefile and, when it differs, the form with the datum shift."""

    #: What goes into the Shapefile: the form GIS software recognises by EPSG code.
    prj: str
    #: OGC WKT 1 with ``TOWGS84`` for software without the EPSG database; None when the
    #: ``.prj`` is that already (or the CRS is on another datum and has no shift to add).
    towgs84: str | None


def prj_texts(crs: pyproj.CRS) -> PrjTexts:
    """The ``.prj`` texts of `crs` (module docstring: why two).

    The ESRI WKT 1 is chosen only when PROJ reads it back as the same EPSG code; else the
    one text with the shift (`prj_wkt`) is the ``.prj``.
    """
    shifted = prj_wkt(crs)
    code = None if crs.is_bound else crs.to_epsg()
    if code is not None:
        esri = crs.to_wkt("WKT1_ESRI")
        if esri and pyproj.CRS.from_wkt(esri).to_epsg() == code:
            return PrjTexts(esri, shifted if "TOWGS84[" in shifted else None)
    return PrjTexts(shifted, None)


def long_text_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Column → number of text values longer than a DBF field can hold (bytes)."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, gpd.array.GeometryDtype) or not (
                pd.api.types.is_string_dtype(column) or column.dtype == object):
            continue
        text = column.dropna()
        text = text[text.map(type).eq(str)] if column.dtype == object else text
        if text.empty or text.str.len().max() * 4 <= DBF_TEXT_BYTES:
            continue  # even four bytes a character fit: no need to encode
        count = int(np.count_nonzero(text.str.encode("utf-8").str.len() > DBF_TEXT_BYTES))
        if count:
            out[str(name)] = count
    return out


def write_shapefile(frame: gpd.GeoDataFrame, folder: Path, stem: str) -> list[Path]:
    """Write `frame` (columns already named for the Shapefile) as ``<stem>.*`` in
    `folder`; return the parts (``.shp .shx .dbf .prj .cpg``).

    The frame's CRS gives the ``.prj`` (`prj_texts`: the form recognised by EPSG code).
    """
    shp = folder / f"{stem}.shp"
    with warnings.catch_warnings():
        # GDAL warns once per column about values cut to 254 bytes; the caller reports
        # them with their counts (long_text_counts).
        warnings.filterwarnings("ignore", message=".*has been truncated to 254 characters")
        pyogrio.write_dataframe(frame, shp, driver="ESRI Shapefile", encoding="UTF-8")
    (folder / f"{stem}.prj").write_text(prj_texts(pyproj.CRS.from_user_input(frame.crs)).prj,
                                        encoding="ascii")
    (folder / f"{stem}.cpg").write_text("UTF-8", encoding="ascii")
    return [folder / f"{stem}{suffix}" for suffix in _PARTS]


def zip_parts(parts: list[Path], path: Path, compresslevel: int) -> None:
    """Zip the Shapefile `parts` into `path` (deflate), removing each once it is in."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for part in parts:
            zf.write(part, part.name)
            part.unlink()
