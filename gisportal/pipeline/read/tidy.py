"""Tidying what was read: DXF/KML driver columns, Z/M values, and the CRS the file declares.

GDAL's DXF and LIBKML drivers add columns of their own to every feature, planning maps
are 2D while drawings and GPS exports carry heights, and what a file declares as its CRS
depends on the format (a ``.prj``, a definition stored in the file, or WGS 84 fixed by
the GeoJSON/KML specification, which files in VN-2000 metres contradict). These last
steps drop the drivers' columns and the Z/M values, with a note for each change, and
report the declared CRS for the normaliser to check or infer. Array and object
properties of JSON-based formats are turned into their JSON text.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely
from geopandas import GeoDataFrame

from gisportal.pipeline.read.formats import KIND_NAME, read_head
from gisportal.pipeline.read.layers import Candidate
from gisportal.pipeline.read.notes import Note

#: Columns the DXF driver adds to every entity; only Layer and Text carry user content.
_DXF_DRIVER_COLUMNS = ("PaperSpace", "SubClasses", "Linetype", "EntityHandle", "ExtendedEntity",
                       "RawCodeValues", "LineType")
#: Columns LIBKML adds to every placemark; dropped when they only hold driver defaults.
_KML_DRIVER_COLUMNS = ("id", "timestamp", "begin", "end", "altitudeMode", "tessellate",
                       "extrude", "visibility", "drawOrder", "icon", "snippet")


def dxf_tidy(frame: GeoDataFrame, notes: list[Note]) -> GeoDataFrame:
    if "SubClasses" in frame.columns:
        sub = frame["SubClasses"].astype("str").fillna("")
        polyline = sub.str.contains("AcDbPolyline|AcDb2dPolyline|AcDb3dPolyline", regex=True)
        polygon = np.isin(shapely.get_type_id(frame.geometry.values), (3, 6))
        closed = int((polyline.to_numpy() & polygon).sum())
        if closed:
            notes.append(Note(
                "READ-DXF-CLOSED-AS-POLYGON", "info",
                f"{closed} đường polyline khép kín trong bản vẽ DXF đã được đọc thành vùng.",
                f"{closed} closed polylines of the DXF drawing were read as polygons."))
    drop = [c for c in _DXF_DRIVER_COLUMNS if c in frame.columns]
    return frame.drop(columns=drop)


def _json_text(value: object) -> object:
    """A list or object value (or a numpy array of one) as its JSON text; others as is."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def flatten_nested(frame: GeoDataFrame) -> GeoDataFrame:
    """Array and object properties (GeoJSON ``[1, 2]``, ``{"a": 1}``) become JSON text.

    GDAL hands such properties over as JSON and pyogrio parses them into Python lists
    and dicts. Everything after reading expects scalars (a list has no single truth
    value, pandas cannot hash it) and the report and store keep attributes as values a
    planner can read, so they are kept as the JSON text the file had. Only object
    columns that are not plain text are looked at value by value.
    """
    geom = frame.geometry.name
    changed = {}
    for name in frame.columns:
        if name == geom or frame[name].dtype != object:
            continue
        if pd.api.types.infer_dtype(frame[name], skipna=True) in ("string", "empty"):
            continue
        series = frame[name]
        values = [_json_text(v) for v in series.tolist()]
        if any(a is not b for a, b in zip(values, series.tolist(), strict=True)):
            changed[name] = pd.Series(values, index=series.index, dtype=object, name=name)
    for name, series in changed.items():
        frame[name] = series
    return frame


def kml_tidy(frame: GeoDataFrame) -> GeoDataFrame:
    drop = []
    for c in _KML_DRIVER_COLUMNS:
        if c not in frame.columns:
            continue
        values = frame[c].dropna()
        if values.empty or (c in ("tessellate", "extrude", "visibility")
                            and set(values.unique().tolist()) <= {-1, 0}):
            drop.append(c)
        elif c == "id" and values.astype(str).str.fullmatch(r".+\.\d+").all():
            drop.append(c)  # ids LIBKML made up ("layer.1"), not the author's
    return frame.drop(columns=drop)


def drop_z(frame: GeoDataFrame, notes: list[Note]) -> GeoDataFrame:
    geoms = np.asarray(frame.geometry.values)
    has_z = shapely.has_z(geoms)
    has_m = shapely.has_m(geoms) if hasattr(shapely, "has_m") else np.zeros(len(geoms), bool)
    n_z, n_m = int(has_z.sum()), int(has_m.sum())
    if not n_z and not n_m:
        return frame
    if n_z:
        z = shapely.get_coordinates(geoms[has_z], include_z=True)[:, 2]
        z = z[np.isfinite(z)]
        flat = not len(z) or (z.min() == 0 and z.max() == 0)
        span_en = "all zero" if flat else f"from {z.min():g} to {z.max():g}"
        span_vi = "đều bằng 0" if flat else f"từ {z.min():g} đến {z.max():g}"
    frame = frame.set_geometry(shapely.force_2d(geoms), crs=frame.crs)
    what_en = " and ".join(w for w, n in (("Z (height)", n_z), ("M (measure)", n_m)) if n)
    what_vi = " và ".join(w for w, n in (("Z (độ cao)", n_z), ("M", n_m)) if n)
    count = max(n_z, n_m)
    notes.append(Note(
        "READ-Z-DROPPED", "info",
        f"Đã bỏ giá trị {what_vi} của {count} đối tượng"
        + (f" (độ cao {span_vi})" if n_z else "") + "; bản đồ quy hoạch là 2 chiều.",
        f"{what_en} values of {count} features were dropped"
        + (f" (heights {span_en})" if n_z else "") + "; planning maps are 2D."))
    return frame


def _geojson_has_crs_member(path: Path) -> bool:
    return b'"crs"' in read_head(path, 256 * 1024)


def declared_crs(frame: GeoDataFrame, c: Candidate,
                 notes: list[Note]) -> tuple[pyproj.CRS | None, str]:
    """What the file declares, and where the declaration comes from."""
    ds = c.dataset
    crs = frame.crs
    if ds.kind == "shapefile":
        if crs is None and ".prj" in ds.parts:
            notes.append(Note(
                "READ-PRJ-UNREADABLE", "warning",
                "Không hiểu được tệp .prj; hệ tọa độ sẽ được suy ra từ tọa độ.",
                "The .prj file could not be understood; the CRS will be inferred from the "
                "coordinates."))
        return crs, "prj" if crs is not None else "none"
    if ds.kind == "dxf":
        return None, "none"
    if ds.kind in ("geojson", "kml") and crs is not None and crs.is_geographic and not (
            ds.kind == "geojson" and _geojson_has_crs_member(ds.path)):
        # No explicit CRS: the specification fixes WGS 84 longitude/latitude. Files
        # exported in VN-2000 metres without saying so break that promise; then the
        # format's default is no declaration at all and the CRS must be inferred.
        geoms = frame.geometry.values
        bounds = shapely.total_bounds(np.asarray(geoms))
        fmt = KIND_NAME[ds.kind]
        if np.all(np.isfinite(bounds)) and (abs(bounds[[0, 2]]).max() > 180
                                            or abs(bounds[[1, 3]]).max() > 90):
            notes.append(Note(
                "READ-CRS-SPEC-CONTRADICTED", "warning",
                f"Theo đặc tả, {fmt} dùng kinh độ/vĩ độ WGS 84, nhưng tọa độ trong tệp không "
                "phải độ (có thể là mét VN-2000); hệ tọa độ sẽ được suy ra.",
                f"{fmt} is WGS 84 longitude/latitude by specification, but the coordinates "
                "are not degrees (VN-2000 metres?); the CRS will be inferred."))
            return None, "none"
        notes.append(Note(
            "READ-CRS-BY-SPEC", "info",
            f"Tệp {fmt} không ghi hệ tọa độ; theo đặc tả là WGS 84 (kinh độ/vĩ độ).",
            f"The {fmt} file names no CRS; by specification it is WGS 84 longitude/latitude."))
        return crs, "embedded"
    return crs, "embedded" if crs is not None else "none"
