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

A planning project's package (`gisportal.outputs.export.project`) is built by the same
code (`write_package`): what differs — which layers, the name files carry (the project
id instead of the district code), the metadata's words, the decision and documents the
package also carries, the manifest's head — is handed in as a `PackageSpec`.
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

__all__ = ["ExportResult", "LayerExport", "PackageSpec", "PlannedLayer", "Progress",
           "check_output", "export_package", "read_version", "write_package"]

#: ``progress(step, total)``: called after each step (``"parcels: geojson"``...) with the
#: number of steps of the whole export.
Progress = Callable[[str, int], None]
_LAYER_STEPS = ("read", "geopackage", "geojson", "shapefile", "metadata")
#: A point far outside any district: reading there gives a version's columns and dtypes
#: without its features.
_NOWHERE = (0.0, 0.0, 0.0, 0.0)


@dataclass
class LayerExport:
    """What the package holds of one layer: a store version, or (``version`` None) a
    layer built from the catalogue, such as a project's boundary."""

    version: Version | None
    fields: list[ExportField]
    files: dict[str, str] = field(default_factory=dict)  # format → path in the package
    truncated: dict[str, int] = field(default_factory=dict)  # Shapefile field → values cut
    bbox_lonlat: tuple[float, float, float, float] | None = None
    #: Catalogue land-use codes the layer holds (first known part of combined codes), in
    #: catalogue order: the metadata's land-use keywords. For a project's lots, the
    #: zoning functions they hold.
    land_use_codes: list[str] = field(default_factory=list)
    #: The layer kind (the GeoPackage table); the version's kind when there is one.
    layer_kind: str = ""
    feature_count: int = 0

    def __post_init__(self) -> None:
        if self.version is not None:
            self.layer_kind = self.layer_kind or self.version.kind
            self.feature_count = self.feature_count or self.version.feature_count

    @property
    def kind(self) -> str:
        return self.layer_kind


@dataclass
class ExportResult:
    """The package written: where, which layers, which files, and what to know."""

    path: Path
    district: str
    layers: list[LayerExport]
    files: list[PackageFile]
    warnings: list[str]
    #: The planning project of a project package (None: a district's package).
    project: str | None = None


@dataclass(frozen=True)
class PlannedLayer:
    """A layer to export: its kind and how to read it (its fields and its features under
    their exported names, in the store CRS)."""

    kind: str
    read: Callable[[], tuple[LayerExport, gpd.GeoDataFrame]]


@dataclass(frozen=True)
class PackageSpec:
    """What a package is of, for `write_package`.

    Attributes
    ----------
    name
        The GeoPackage's name and the suffix of every layer file (``<kind>_<name>``): a
        district code or a project id.
    title
        Whose layers they are, in the GeoPackage's table titles (the district's name,
        the project's name).
    crs
        The CRS the layers are written in (the district's survey zone).
    metadata
        The ISO 19115 description of a written layer (its extent is known by then).
    head
        The manifest's keys before ``layers`` and ``files``.
    extras
        Adds members of its own (the decision and documents of a project) to the package
        being written, with a working folder; returns the manifest keys describing them
        and warnings.
    """

    name: str
    title: str
    crs: pyproj.CRS
    metadata: Callable[[LayerExport], LayerMetadata]
    head: dict[str, Any]
    extras: Callable[[PackageWriter, Path], tuple[dict[str, Any], list[str]]] | None = None


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
    """The catalogue codes a layer's land-use field holds (first known part of each); for
    a project's lots, the zoning functions (catalogue codes) they hold."""
    if layer.kind == "zoning_lots":
        name = next((f.name for f in layer.fields if f.column == "function"), None)
        if name is None:
            return []
        held = {str(v) for v in frame[name].dropna().unique()}
        return [f.code for f in seeds.zoning_functions() if f.code in held]
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
            writer.writerow(csv_row([layer.kind, f.shapefile, f.name, f.column,
                                     f.origin, f.type, "yes" if f.personal else "no",
                                     f.meaning_vi, f.meaning_en]))
    return buf.getvalue().encode("utf-8-sig")


def crs_code(crs: pyproj.CRS) -> str:
    """``EPSG:<code>``, or the CRS's own text when it has no EPSG code."""
    code = crs.to_epsg()
    return f"EPSG:{code}" if code else crs.to_string()


def export_formats() -> tuple[tuple[str, str], ...]:
    """The distribution formats every layer of a package is in (the metadata lists them)."""
    return (("GeoPackage", GEOPACKAGE_VERSION), ("ESRI Shapefile", "UTF-8 DBF"),
            ("GeoJSON", "RFC 7946"))


def _layer_metadata(layer: LayerExport, district: str, crs: pyproj.CRS, stamp: str,
                    contact: Contact, licence: Licence, personal: bool) -> LayerMetadata:
    v = layer.version
    assert v is not None  # a district's layers are store versions
    model = layer_model(v.kind)
    unit_name = _district_name(district)
    cat = seeds.land_use_catalogue()
    return LayerMetadata(
        identifier=f"gisportal-{district}-{v.kind}-v{v.id}",
        title=f"{model.title['vi']} — {unit_name} (phiên bản {v.id}) / "
              f"{model.title['en']} — {unit_name} (version {v.id})",
        abstract=f"{model.title['vi']} của {unit_name}, {seeds.province()['name']}, "
                 f"{v.feature_count} đối tượng, hệ tọa độ {describe(crs)}. "
                 f"{model.description}",
        created=v.created_at, published=v.published_at, stamp=stamp,
        crs_code=crs_code(crs), crs_name=crs.name,
        bbox_lonlat=layer.bbox_lonlat, feature_count=v.feature_count,
        source_name=v.source_name, source_sha256=v.source_sha256, uploaded_by=v.created_by,
        decision=v.meta.get("decision") or None,
        formats=export_formats(),
        contact=contact,
        land_uses=[(c, cat.name(c)) for c in layer.land_use_codes],
        places=[unit_name, seeds.province()["name"], "Việt Nam"],
        themes=[model.title["vi"], model.title["en"]],
        licence=licence, personal=personal,
    )


def _district_name(district: str) -> str:
    try:
        return seeds.district(district).name
    except KeyError:
        return district


def _layer_manifest(layer: LayerExport, crs: pyproj.CRS) -> dict[str, Any]:
    v = layer.version
    common = {"kind": layer.kind, "feature_count": layer.feature_count, "crs": describe(crs),
              "geojson_crs": "EPSG:4326 (RFC 7946, longitude/latitude)",
              "bbox_lonlat": list(layer.bbox_lonlat) if layer.bbox_lonlat else None}
    tail = {"geopackage_table": layer.kind, "files": layer.files,
            "fields": [f.name for f in layer.fields],
            "shapefile_truncated_values": layer.truncated}
    if v is None:  # built from the catalogue (a project's boundary)
        return {**common, "version": None, "source": "catalogue", **tail}
    return {**common, "version": v.id, "status": v.status,
            "source_name": v.source_name, "source_sha256": v.source_sha256,
            "created_at": v.created_at, "created_by": v.created_by,
            "published_at": v.published_at, "decision": v.meta.get("decision") or None,
            **tail}


def zone_of(store: Store, district: str) -> tuple[pyproj.CRS, pyproj.CRS]:
    """(the store grid, the CRS a district's package is written in).

    Each district is exported in the zone it was surveyed in (former Bình Thuận and Đắk
    Nông: TM-3 108°30′), as its office and the national database hold it; the store grid
    is the province's one zone for everything (gisportal.base.crs). The two are the same
    object when the zone is the grid's.
    """
    store_grid = pyproj.CRS.from_user_input(store.crs)
    zone = vncrs.zone_crs(district)
    return store_grid, store_grid if zone.to_epsg() == store_grid.to_epsg() else zone


def contact_and_licence(settings: dict[str, Any]) -> tuple[Contact, Licence]:
    """Who answers for the data and the licence it is published under (the settings)."""
    return _contact(settings), _licence(settings)


def read_version(store: Store, v: Version, crs: pyproj.CRS, *, national_names: bool,
                 include_personal: bool) -> PlannedLayer:
    """A store version as a layer to export, read in `crs` (the package's)."""
    store_grid = pyproj.CRS.from_user_input(store.crs)

    def read() -> tuple[LayerExport, gpd.GeoDataFrame]:
        layer, frame = _read_layer(store, v, store_grid, national_names, include_personal)
        if crs.to_wkt() != store_grid.to_wkt():
            frame = frame.to_crs(crs)
        return layer, frame

    return PlannedLayer(v.kind, read)


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
    store_grid, crs = zone_of(store, district)
    contact, licence = contact_and_licence(settings)
    stamp = utc_now()
    spec = PackageSpec(
        name=district, title=_district_name(district), crs=crs,
        metadata=lambda layer: _layer_metadata(layer, district, crs, stamp, contact, licence,
                                               include_personal),
        head={"district": {"code": district, "name": _district_name(district)}})
    planned = [read_version(store, v, crs, national_names=national_names,
                            include_personal=include_personal) for v in versions]
    return write_package(out, spec, planned, district=district, stamp=stamp,
                         options={"national_names": national_names,
                                  "include_personal": include_personal},
                         progress=progress, workdir=workdir)


def write_package(out: str | os.PathLike[str], spec: PackageSpec,
                  planned: Sequence[PlannedLayer], *, district: str, stamp: str,
                  options: dict[str, Any], progress: Progress | None = None,
                  workdir: str | os.PathLike[str] | None = None,
                  project: str | None = None) -> ExportResult:
    """Write the package of `planned`'s layers to the zip `out`, atomically (module
    docstring): the one builder of district and project packages."""
    path = check_output(out)
    total = len(planned) * len(_LAYER_STEPS) + 1
    crs = spec.crs

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
    warnings: list[str] = []
    try:
        with PackageWriter(tmp) as package:
            frames = []
            for item in planned:
                layer, frame = item.read()
                layers.append(layer)
                frames.append(frame)
                step(f"{layer.kind}: read")
            _write_layers(package, layers, frames, spec, work, step, stamp)
            frames.clear()
            for layer in layers:
                xml = metadata_xml(spec.metadata(layer))
                layer.files["metadata"] = package.add_bytes(
                    xml, f"metadata/{layer.kind}_{spec.name}.xml")
                step(f"{layer.kind}: metadata")
            extra: dict[str, Any] = {}
            if spec.extras is not None:
                extra, warnings = spec.extras(package, work)
            package.add_bytes(_fields_csv(layers), "fields.csv")
            files = package.finish({
                "format": FORMAT, "format_version": FORMAT_VERSION, "created_at": stamp,
                "generator": _generator(),
                **spec.head,
                "province": {"code": seeds.province()["code"],
                             "name": seeds.province()["name"]},
                "crs": describe(crs),
                "options": options,
                "geopackage": f"{spec.name}.gpkg",
                "layers": [_layer_manifest(layer, crs) for layer in layers],
                **extra,
            })
        step("package")
        os.replace(tmp, path)
    except OSError as exc:  # disk full, folder removed or made read-only meanwhile
        raise _write_error(exc, path) from exc
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    warnings = [f"{layer.kind}: {count} value(s) of {name} longer than 254 bytes "
                "are cut in the Shapefile (the GeoPackage and GeoJSON keep them whole)"
                for layer in layers for name, count in layer.truncated.items()] + warnings
    return ExportResult(path, district, layers, files, warnings, project)


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
    coded = {"plan": "land_use", "zoning_lots": "function"}.get(layer.kind)
    if coded is not None:
        column = next((f.name for f in model_fields if f.column == coded), None)
        codes = [] if column is None else [str(c) for c in frame[column].dropna().unique()]
    return {"fields": fields, "codes": codes}


def _table_styles(layer: LayerExport, frame: gpd.GeoDataFrame) -> list[TableStyle]:
    """The GeoPackage styles of a layer: Vietnamese (QGIS's default), English."""
    kind = layer.kind
    if kind not in STYLED_KINDS:
        return []
    args = _style_args(layer, frame, "name")
    title = layer_model(kind).title
    return [TableStyle(kind, f"gisportal_{kind}_{lang}", style_qml(kind, lang, **args),
                       style_sld(kind, lang, layer_name=kind, **args), lang == "vi",
                       f"{title[lang]} — gisportal ({'tiếng Việt' if lang == 'vi' else 'English'})")
            for lang in ("vi", "en")]


def _write_layers(package: PackageWriter, layers: Sequence[LayerExport],
                  frames: Sequence[gpd.GeoDataFrame], spec: PackageSpec, work: Path,
                  step: Callable[[str], None], stamp: str) -> None:
    """The GeoPackage, then the GeoJSON and the Shapefile of each layer.

    Each file is queued for packing as soon as it is written, so it is compressed while
    the next one is converted; the largest (GeoPackage, GeoJSON) go first.
    """
    gpkg = work / f"{spec.name}.gpkg"
    for layer, frame in zip(layers, frames, strict=True):
        kind = layer.kind
        model = layer_model(kind)
        version = f"version {layer.version.id}, " if layer.version is not None else ""
        write_table(frame, gpkg, kind,
                    identifier=f"{model.title['vi']} — {spec.title}",
                    description=f"{model.title['en']}; {version}"
                                f"{layer.feature_count} features")
        layer.files["geopackage"] = f"{gpkg.name}#{kind}"
        layer.land_use_codes = _land_use_codes(layer, frame)
        step(f"{kind}: geopackage")
    add_styles(gpkg, [style for layer, frame in zip(layers, frames, strict=True)
                      for style in _table_styles(layer, frame)], stamp=stamp)
    package.add_file(gpkg, gpkg.name, delete=True)

    for layer, frame in zip(layers, frames, strict=True):
        stem = f"{layer.kind}_{spec.name}"
        geojson = work / f"{stem}.geojson"
        layer.bbox_lonlat = write_geojson(frame, geojson)
        layer.files["geojson"] = package.add_file(geojson, f"geojson/{stem}.geojson",
                                                  delete=True)
        step(f"{layer.kind}: geojson")

    for layer, frame in zip(layers, frames, strict=True):
        stem = f"{layer.kind}_{spec.name}"
        shp_frame = frame.rename(columns={f.name: f.shapefile for f in layer.fields})
        layer.truncated = long_text_counts(shp_frame)
        folder = work / stem  # the parts wait here until the packing thread zips them
        folder.mkdir()
        parts = write_shapefile(shp_frame, folder, stem)
        del shp_frame
        kind = layer.kind
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
        step(f"{layer.kind}: shapefile")
