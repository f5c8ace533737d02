"""Build the ministry export package of a district: one zip, written atomically.

Contents (``<district>`` is the GSO code, ``<kind>`` parcels, plan or boundary)::

    <district>.gpkg                  every exported layer, one table per kind, VN-2000 TM-3 of
                                     the zone the district was surveyed in (5899 or 9218),
                                     each table's map style in layer_styles (QGIS applies it)
    shapefile/<kind>_<district>.zip  zipped Shapefile per layer: UTF-8 DBF + .cpg, .prj that
                                     GIS software recognises as the EPSG CRS, .qml and .sld
    shapefile/towgs84/<kind>_<district>.prj  the same CRS with its TOWGS84 datum shift, for
                                     software without the EPSG database (shapefile.py)
    geojson/<kind>_<district>.geojson  RFC 7946 per layer: WGS 84 lon/lat, 7 decimals
    metadata/<kind>_<district>.xml   ISO 19115 / 19139 record per layer
    fields.csv                       every exported field: layer, names, meaning, personal
    manifest.json                    format version, district, layers, size + sha256 per file

The zip is written to a temporary file beside the output and renamed over it only when
complete, so a failed or interrupted export never leaves a half package under the
requested name (and never touches a previous package until the new one is whole).
The district's layers are read once (parcels dominate: the plan and the boundaries are
small next to them), then converted format by format; each file is handed to a packing
thread as soon as it is written and leaves the working folder once it is in the zip,
so compression and hashing overlap the next conversion instead of following it.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyproj

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.base.crs import describe
from gisportal.base.csvsafe import csv_row
from gisportal.base.errors import GisportalError, UsageError
from gisportal.base.models import layer_model
from gisportal.base.settings import load_settings
from gisportal.outputs.export.geojson import write_geojson
from gisportal.outputs.export.geopackage import (
    GEOPACKAGE_VERSION,
    TableStyle,
    add_styles,
    write_table,
)
from gisportal.outputs.export.manifest import (
    COMPRESSLEVEL,
    FORMAT,
    FORMAT_VERSION,
    PackageFile,
    PackageWriter,
)
from gisportal.outputs.export.metadata import (
    DEFAULT_LICENCE,
    Contact,
    LayerMetadata,
    Licence,
    metadata_xml,
)
from gisportal.outputs.export.names import ExportField, export_fields
from gisportal.outputs.export.select import select_versions
from gisportal.outputs.export.shapefile import (
    long_text_counts,
    prj_texts,
    write_shapefile,
    zip_parts,
)
from gisportal.outputs.styles import STYLED_KINDS, style_qml, style_sld
from gisportal.store.base import Store, Version, utc_now

__all__ = ["ExportResult", "LayerExport", "Progress", "export_package", "check_output"]

#: ``progress(step, total)``: called after each step (``"parcels: geojson"``...) with the
#: number of steps of the whole export.
Progress = Callable[[str, int], None]
_LAYER_STEPS = ("read", "geopackage", "geojson", "shapefile", "metadata")
#: A point far outside any district: reading there gives a version's columns and dtypes
#: without its features.
_NOWHERE = (0.0, 0.0, 0.0, 0.0)


@dataclass
class LayerExport:
    """What the package holds of one version."""

    version: Version
    fields: list[ExportField]
    files: dict[str, str] = field(default_factory=dict)  # format → path in the package
    truncated: dict[str, int] = field(default_factory=dict)  # Shapefile field → values cut
    bbox_lonlat: tuple[float, float, float, float] | None = None
    #: Catalogue land-use codes the layer holds (first known part of combined codes), in
    #: catalogue order: the metadata's land-use keywords.
    land_use_codes: list[str] = field(default_factory=list)


@dataclass
class ExportResult:
    """The package written: where, which layers, which files, and what to know."""

    path: Path
    district: str
    layers: list[LayerExport]
    files: list[PackageFile]
    warnings: list[str]


def check_output(out: str | os.PathLike[str]) -> Path:
    """`out` as an absolute path whose folder exists and is writable, else `UsageError`."""
    path = Path(out).expanduser().absolute()
    if path.is_dir():
        raise UsageError(f"{path} is a folder", where="--out",
                         fix="give the name of the zip file to write, e.g. "
                             f"{path / 'export.zip'}", code="EXPORT-OUT")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"the folder {folder} does not exist", where="--out",
                         fix="create it first, or write the package elsewhere",
                         code="EXPORT-OUT")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"the folder {folder} is not writable", where="--out",
                         fix="write the package to a folder you may write to",
                         code="EXPORT-OUT")
    return path


def _write_error(exc: OSError, path: Path) -> GisportalError:
    return GisportalError(f"could not write the package: {exc.strerror or exc}",
                          where=str(exc.filename or path),
                          fix="check the free space and permissions of the folder, or write "
                              "the package elsewhere", code="EXPORT-WRITE")


def _contact(settings: dict[str, Any]) -> Contact:
    return Contact(organisation=str(settings.get("export_contact_org") or ""),
                   email=str(settings.get("export_contact_email") or ""),
                   administrative_area=seeds.province()["name"])


def _licence(settings: dict[str, Any]) -> Licence:
    """The open-data licence: the ``export_licence`` (and ``export_licence_url``)
    settings when the installation has them, else `DEFAULT_LICENCE` (docs/export.md)."""
    name = str(settings.get("export_licence") or "").strip()
    if not name:
        return DEFAULT_LICENCE
    return Licence(name, str(settings.get("export_licence_url") or "").strip())


def _land_use_codes(layer: LayerExport, frame: gpd.GeoDataFrame) -> list[str]:
    """The catalogue codes a layer's land-use field holds (first known part of each)."""
    name = next((f.name for f in layer.fields if f.column == "land_use"), None)
    if name is None:
        return []
    cat = seeds.land_use_catalogue()
    found = {lu.code for value in frame[name].dropna().unique()
             if (lu := cat.primary(str(value))) is not None}
    return [lu.code for lu in cat if lu.code in found]


def _generator() -> str:
    try:
        return f"gisportal {package_version('gisportal')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "gisportal"


def _fields_csv(layers: Sequence[LayerExport]) -> bytes:
    """``fields.csv``: one row per exported field of each layer (UTF-8 with a BOM, so
    Excel shows the Vietnamese as it is)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["layer", "shapefile_name", "full_name", "gisportal_column", "origin",
                     "type", "personal", "meaning_vi", "meaning_en"])
    for layer in layers:
        for f in layer.fields:
            # Names come from the uploaded file: a column named "=1+1" stays text.
            writer.writerow(csv_row([layer.version.kind, f.shapefile, f.name, f.column,
                                     f.origin, f.type, "yes" if f.personal else "no",
                                     f.meaning_vi, f.meaning_en]))
    return buf.getvalue().encode("utf-8-sig")


def _layer_metadata(layer: LayerExport, district: str, crs: pyproj.CRS, stamp: str,
                    contact: Contact, licence: Licence, personal: bool) -> bytes:
    v = layer.version
    model = layer_model(v.kind)
    unit_name = _district_name(district)
    code = crs.to_epsg()
    cat = seeds.land_use_catalogue()
    return metadata_xml(LayerMetadata(
        identifier=f"gisportal-{district}-{v.kind}-v{v.id}",
        title=f"{model.title['vi']} — {unit_name} (phiên bản {v.id}) / "
              f"{model.title['en']} — {unit_name} (version {v.id})",
        abstract=f"{model.title['vi']} của {unit_name}, {seeds.province()['name']}, "
                 f"{v.feature_count} đối tượng, hệ tọa độ {describe(crs)}. "
                 f"{model.description}",
        created=v.created_at, published=v.published_at, stamp=stamp,
        crs_code=f"EPSG:{code}" if code else crs.to_string(), crs_name=crs.name,
        bbox_lonlat=layer.bbox_lonlat, feature_count=v.feature_count,
        source_name=v.source_name, source_sha256=v.source_sha256, uploaded_by=v.created_by,
        decision=v.meta.get("decision") or None,
        formats=(("GeoPackage", GEOPACKAGE_VERSION), ("ESRI Shapefile", "UTF-8 DBF"),
                 ("GeoJSON", "RFC 7946")),
        contact=contact,
        land_uses=[(c, cat.name(c)) for c in layer.land_use_codes],
        places=[unit_name, seeds.province()["name"], "Việt Nam"],
        themes=[model.title["vi"], model.title["en"]],
        licence=licence, personal=personal,
    ))


def _district_name(district: str) -> str:
    try:
        return seeds.district(district).name
    except KeyError:
        return district


def _layer_manifest(layer: LayerExport, crs: pyproj.CRS) -> dict[str, Any]:
    v = layer.version
    return {"kind": v.kind, "version": v.id, "status": v.status,
            "feature_count": v.feature_count, "crs": describe(crs),
            "geojson_crs": "EPSG:4326 (RFC 7946, longitude/latitude)",
            "bbox_lonlat": list(layer.bbox_lonlat) if layer.bbox_lonlat else None,
            "source_name": v.source_name, "source_sha256": v.source_sha256,
            "created_at": v.created_at, "created_by": v.created_by,
            "published_at": v.published_at, "decision": v.meta.get("decision") or None,
            "geopackage_table": v.kind, "files": layer.files,
            "fields": [f.name for f in layer.fields],
            "shapefile_truncated_values": layer.truncated}


def export_package(store: Store, district: str, out: str | os.PathLike[str], *,
                   kinds: Sequence[str] | None = None, version_id: int | None = None,
                   national_names: bool = True, include_personal: bool = False,
                   settings: dict[str, Any] | None = None,
                   progress: Progress | None = None,
                   workdir: str | os.PathLike[str] | None = None) -> ExportResult:
    """Write the export package of `district` to the zip `out`.

    Parameters
    ----------
    kinds, version_id
        Which layers: by default every published layer of the district; `kinds` limits
        it to those kinds, `version_id` picks one version (an older one, say). See
        :func:`gisportal.outputs.export.select.select_versions` for what is refused.
    national_names
        Name the fields as the national land database does (``SoHieuToBanDo``...): the
        default, since the package goes to the ministry; False keeps gisportal's English
        canonical names (``sheet``...).
    include_personal
        Also export personal data (owner names, ID, certificate numbers) and every
        uploaded column not marked public (`gisportal.outputs.privacy`). Off by default: the
        ministry's planning portal needs none of it, and what is not sent cannot leak;
        an official transfer that does need it must say so explicitly.
    workdir
        Where the working files go (default: a temporary folder beside `out`).
    """
    settings = settings or load_settings()
    versions = select_versions(store, district, kinds, version_id)
    district = versions[0].district
    path = check_output(out)
    # Each district is exported in the zone it was surveyed in (former Bình Thuận and
    # Đắk Nông: TM-3 108°30′), as its office and the national database hold it; the
    # store grid is the province's one zone for everything (gisportal.base.crs).
    store_grid = pyproj.CRS.from_user_input(store.crs)
    zone = vncrs.zone_crs(district)
    crs = store_grid if zone.to_epsg() == store_grid.to_epsg() else zone
    total = len(versions) * len(_LAYER_STEPS) + 1
    stamp = utc_now()
    contact = _contact(settings)
    licence = _licence(settings)

    def step(label: str) -> None:
        if progress:
            progress(label, total)

    # Created like any file (so with the user's umask, unlike mkstemp's 0600), under a
    # name no other export can pick.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.part"
    try:
        tmp.open("xb").close()
        work = Path(tempfile.mkdtemp(dir=workdir or path.parent, prefix=".gisportal-export-"))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(exc, path) from exc
    layers: list[LayerExport] = []
    try:
        with PackageWriter(tmp) as package:
            frames = []
            for v in versions:
                layer, frame = _read_layer(store, v, store_grid, national_names,
                                           include_personal)
                if crs is not store_grid:
                    frame = frame.to_crs(crs)
                layers.append(layer)
                frames.append(frame)
                step(f"{v.kind}: read")
            _write_layers(package, layers, frames, district, work, step, stamp)
            frames.clear()
            for layer in layers:
                xml = _layer_metadata(layer, district, crs, stamp, contact, licence,
                                      include_personal)
                layer.files["metadata"] = package.add_bytes(
                    xml, f"metadata/{layer.version.kind}_{district}.xml")
                step(f"{layer.version.kind}: metadata")
            package.add_bytes(_fields_csv(layers), "fields.csv")
            files = package.finish({
                "format": FORMAT, "format_version": FORMAT_VERSION, "created_at": stamp,
                "generator": _generator(),
                "district": {"code": district, "name": _district_name(district)},
                "province": {"code": seeds.province()["code"],
                             "name": seeds.province()["name"]},
                "crs": describe(crs),
                "options": {"national_names": national_names,
                            "include_personal": include_personal},
                "geopackage": f"{district}.gpkg",
                "layers": [_layer_manifest(layer, crs) for layer in layers],
            })
        step("package")
        os.replace(tmp, path)
    except OSError as exc:  # disk full, folder removed or made read-only meanwhile
        raise _write_error(exc, path) from exc
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    warnings = [f"{layer.version.kind}: {count} value(s) of {name} longer than 254 bytes "
                "are cut in the Shapefile (the GeoPackage and GeoJSON keep them whole)"
                for layer in layers for name, count in layer.truncated.items()]
    return ExportResult(path, district, layers, files, warnings)


def _read_layer(store: Store, v: Version, crs: pyproj.CRS, national_names: bool,
                include_personal: bool) -> tuple[LayerExport, gpd.GeoDataFrame]:
    """The exported fields of a version and its features under their exported names."""
    dtypes = store.read(v.id, bbox=_NOWHERE).dtypes.to_dict()
    fields = export_fields(v.kind, dtypes, v.meta, national_names=national_names,
                           include_personal=include_personal)
    stored = store.read(v.id, columns=[f.column for f in fields])
    frame = gpd.GeoDataFrame({f.name: stored[f.column] for f in fields},
                             geometry=stored.geometry.values, crs=crs)
    return LayerExport(v, fields), frame


def _style_args(layer: LayerExport, frame: gpd.GeoDataFrame, names: str) -> dict[str, Any]:
    """`style_qml`/`style_sld` arguments for a layer: its model fields under the names of
    one output (`names`: ``"name"`` in the GeoPackage, ``"shapefile"``) and, for a plan,
    the land-use codes it holds (its legend lists those)."""
    model_fields = [f for f in layer.fields if f.origin == "model"]
    fields = {f.column: getattr(f, names) for f in model_fields}
    codes = None
    if layer.version.kind == "plan":
        land_use = next((f.name for f in model_fields if f.column == "land_use"), None)
        codes = [] if land_use is None else [str(c) for c in frame[land_use].dropna().unique()]
    return {"fields": fields, "codes": codes}


def _table_styles(layer: LayerExport, frame: gpd.GeoDataFrame) -> list[TableStyle]:
    """The GeoPackage styles of a layer: Vietnamese (QGIS's default), English."""
    kind = layer.version.kind
    if kind not in STYLED_KINDS:
        return []
    args = _style_args(layer, frame, "name")
    title = layer_model(kind).title
    return [TableStyle(kind, f"gisportal_{kind}_{lang}", style_qml(kind, lang, **args),
                       style_sld(kind, lang, layer_name=kind, **args), lang == "vi",
                       f"{title[lang]} — gisportal ({'tiếng Việt' if lang == 'vi' else 'English'})")
            for lang in ("vi", "en")]


def _write_layers(package: PackageWriter, layers: Sequence[LayerExport],
                  frames: Sequence[gpd.GeoDataFrame], district: str, work: Path,
                  step: Callable[[str], None], stamp: str) -> None:
    """The GeoPackage, then the GeoJSON and the Shapefile of each layer.

    Each file is queued for packing as soon as it is written, so it is compressed while
    the next one is converted; the largest (GeoPackage, GeoJSON) go first.
    """
    gpkg = work / f"{district}.gpkg"
    for layer, frame in zip(layers, frames, strict=True):
        kind = layer.version.kind
        model = layer_model(kind)
        write_table(frame, gpkg, kind,
                    identifier=f"{model.title['vi']} — {_district_name(district)}",
                    description=f"{model.title['en']}; version {layer.version.id}, "
                                f"{layer.version.feature_count} features")
        layer.files["geopackage"] = f"{gpkg.name}#{kind}"
        layer.land_use_codes = _land_use_codes(layer, frame)
        step(f"{kind}: geopackage")
    add_styles(gpkg, [style for layer, frame in zip(layers, frames, strict=True)
                      for style in _table_styles(layer, frame)], stamp=stamp)
    package.add_file(gpkg, gpkg.name, delete=True)

    for layer, frame in zip(layers, frames, strict=True):
        stem = f"{layer.version.kind}_{district}"
        geojson = work / f"{stem}.geojson"
        layer.bbox_lonlat = write_geojson(frame, geojson)
        layer.files["geojson"] = package.add_file(geojson, f"geojson/{stem}.geojson",
                                                  delete=True)
        step(f"{layer.version.kind}: geojson")

    for layer, frame in zip(layers, frames, strict=True):
        stem = f"{layer.version.kind}_{district}"
        shp_frame = frame.rename(columns={f.name: f.shapefile for f in layer.fields})
        layer.truncated = long_text_counts(shp_frame)
        folder = work / stem  # the parts wait here until the packing thread zips them
        folder.mkdir()
        parts = write_shapefile(shp_frame, folder, stem)
        del shp_frame
        kind = layer.version.kind
        if kind in STYLED_KINDS:  # QGIS applies <stem>.qml when it opens <stem>.shp
            args = _style_args(layer, frame, "shapefile")
            for suffix, text in ((".qml", style_qml(kind, "vi", **args)),
                                 (".sld", style_sld(kind, "vi", layer_name=stem, **args))):
                (folder / f"{stem}{suffix}").write_text(text, encoding="utf-8")
                parts.append(folder / f"{stem}{suffix}")
                layer.files[suffix[1:]] = f"shapefile/{stem}.zip#{stem}{suffix}"
        towgs84 = prj_texts(pyproj.CRS.from_user_input(frame.crs)).towgs84
        if towgs84:
            layer.files["prj_towgs84"] = package.add_bytes(
                towgs84.encode("ascii"), f"shapefile/towgs84/{stem}.prj")
        shp_zip = work / f"{stem}.zip"
        layer.files["shapefile"] = package.add_file(
            shp_zip, f"shapefile/{stem}.zip", delete=True,
            before=functools.partial(zip_parts, parts, shp_zip, COMPRESSLEVEL))
        step(f"{layer.version.kind}: shapefile")
