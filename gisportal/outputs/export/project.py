"""The export package of a planning project (đồ án quy hoạch xây dựng, đô thị), for the
Ministry of Construction's portal: ``gisportal export --project ID``.

A project's package is a district's package made of the project's layers
(`gisportal.outputs.export.package.write_package` builds both), plus what makes a plan
a legal document — its approving decision and the documents residents may read::

    <project>.gpkg                     zoning_lots, red_lines (the published versions) and
                                       project_area (the boundary, from the catalogue),
                                       VN-2000 TM-3 of the district's zone, styles in
                                       layer_styles
    shapefile/<kind>_<project>.zip     per layer, .prj recognised as the EPSG CRS, .qml/.sld
    shapefile/towgs84/<kind>_<project>.prj  the same CRS with its TOWGS84 datum shift
    geojson/<kind>_<project>.geojson   RFC 7946 (WGS 84)
    metadata/<kind>_<project>.xml      ISO 19139 per layer: titled with the project's name,
                                       planningCadastre, extent, the decision cited
    decision/<name>.pdf                the signed approving decision (of the lots)
    documents/<name>.pdf               the project's documents (report, regulations...)
    fields.csv, manifest.json          as in a district's package; the manifest also
                                       describes the project, the decision, the documents

Why the boundary is a layer of its own: the ministry's portal shows a plan's extent
before its lots, and a plan's boundary (ranh giới lập quy hoạch) is part of its
approval; gisportal keeps it in the catalogue (`gisportal.store.projects`), not as a
version, so the package builds it from there, with the facts a catalogue reader wants
on it (id, name, level, scale, status, decision, area).

Only published layers go: a project with nothing published is refused before anything
is written (``EXPORT-NOTHING-PUBLISHED``), as is an unknown id (``PROJECT-UNKNOWN``).
The decision is the one attached to the published lots (its red lines are published
under it); the PDFs are copied from the decision area (a folder or S3) and checked
against the sha256 they are kept under — a PDF missing from the area, or not matching,
is a warning and the manifest says so, never a half package.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyproj
import shapely

from gisportal.base import seeds
from gisportal.base.crs import describe, legal_areas
from gisportal.base.errors import NotFoundError
from gisportal.base.files import safe_file_name
from gisportal.base.models import layer_model
from gisportal.base.settings import load_settings
from gisportal.outputs.export.manifest import PackageWriter
from gisportal.outputs.export.metadata import ZONING_THESAURUS, LayerMetadata
from gisportal.outputs.export.names import (
    NATIONAL_NAMES,
    ExportField,
    shapefile_names,
    unique_names,
)
from gisportal.outputs.export.package import (
    ExportResult,
    LayerExport,
    PackageSpec,
    PlannedLayer,
    Progress,
    contact_and_licence,
    crs_code,
    export_formats,
    read_version,
    write_package,
    zone_of,
)
from gisportal.store import projects as catalogue
from gisportal.store.base import PROJECT_KINDS, Store, Version, check_project, utc_now
from gisportal.store.home import DataHome
from gisportal.store.projects import DOCUMENT_KINDS, LEVEL_NAMES, STATUS_NAMES, Project

__all__ = ["AREA_KIND", "export_project_package", "project_decision", "select_project_layers"]

#: The GeoPackage table (and layer model) of the project's boundary.
AREA_KIND = "project_area"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
#: The boundary layer's columns: (column, type, meaning in Vietnamese, in English).
_AREA_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("project_id", "text", "Mã đồ án (gisportal)", "Project id (gisportal)"),
    ("name", "text", "Tên đồ án", "Project name"),
    ("level", "text", "Cấp quy hoạch", "Planning level"),
    ("scale", "text", "Tỷ lệ bản vẽ", "Drawing scale"),
    ("status", "text", "Tình trạng", "Status"),
    ("decision", "text", "Số quyết định phê duyệt", "Approving decision number"),
    ("area_m2", "real", "Diện tích lập quy hoạch (m²)", "Planning area (m²)"),
)


def select_project_layers(store: Store, project_id: object) -> tuple[Project, list[Version]]:
    """The project and its published layers (lots, then red lines), or `NotFoundError`:
    ``PROJECT-UNKNOWN`` for an id the catalogue does not hold, ``EXPORT-NOTHING-PUBLISHED``
    when none of its layers is published (drafts never were approved for release)."""
    pid = check_project(str(project_id).strip() if isinstance(project_id, str) else project_id)
    project = catalogue.get(store.home, pid)
    published = {kind: v for (owner, kind), v in store.published_projects().items()
                 if owner == pid}
    versions = [published[kind] for kind in PROJECT_KINDS if kind in published]
    if not versions:
        raise NotFoundError(
            f"planning project {pid} has no published layer to export", where=f"--project {pid}",
            fix="publish its lots with their approving decision first (gisportal ingest "
                f"--kind zoning_lots --project {pid}, gisportal decision, gisportal publish "
                f"--project {pid} --kind zoning_lots ...)", code="EXPORT-NOTHING-PUBLISHED")
    return project, versions


def project_decision(versions: Sequence[Version]) -> Mapping[str, Any] | None:
    """The approving decision of a project's published layers: the lots' (which the
    publish path requires), else one a red-lines version carries."""
    for v in sorted(versions, key=lambda v: v.kind != "zoning_lots"):
        raw = v.meta.get("decision")
        if isinstance(raw, Mapping) and raw.get("number"):
            return raw
    return None


def _district_name(code: str) -> str:
    try:
        return seeds.district(code).name
    except KeyError:
        return code


def _area_fields(national_names: bool) -> list[ExportField]:
    national = NATIONAL_NAMES[AREA_KIND] if national_names else {}
    full = unique_names([national.get(c, c) for c, *_ in _AREA_FIELDS])
    short = shapefile_names(full)
    return [ExportField(column=c, name=n, shapefile=s, origin="model", type=t, personal=False,
                        meaning_vi=vi, meaning_en=en)
            for (c, t, vi, en), n, s in zip(_AREA_FIELDS, full, short, strict=True)]


def _area_layer(project: Project, decision: Mapping[str, Any] | None, store_grid: pyproj.CRS,
                crs: pyproj.CRS, national_names: bool) -> PlannedLayer:
    """The project's boundary as a one-feature layer, its facts as attributes."""
    def read() -> tuple[LayerExport, gpd.GeoDataFrame]:
        fields = _area_fields(national_names)
        boundary = project.boundary
        area = float(legal_areas([boundary], crs)[0]) if boundary is not None else None
        values = {"project_id": project.id, "name": project.name,
                  "level": LEVEL_NAMES[project.level]["vi"], "scale": project.scale,
                  "status": STATUS_NAMES[project.status]["vi"],
                  "decision": str(decision["number"]) if decision else None,
                  "area_m2": round(area, 2) if area is not None else None}
        frame = gpd.GeoDataFrame({f.name: [values[f.column]] for f in fields},
                                 geometry=[boundary], crs=store_grid)
        if crs.to_wkt() != store_grid.to_wkt():
            frame = frame.to_crs(crs)
        return LayerExport(None, fields, layer_kind=AREA_KIND, feature_count=1), frame

    return PlannedLayer(AREA_KIND, read)


def _metadata(project: Project, layer: LayerExport, versions: Sequence[Version],
              decision: Mapping[str, Any] | None, crs: pyproj.CRS, stamp: str,
              settings: dict[str, Any], personal: bool) -> LayerMetadata:
    """A project layer's ISO 19115 description: titled with the project's name, the
    approving decision cited, the lots' functions as keywords (QCVN 01:2021/BXD)."""
    contact, licence = contact_and_licence(settings)
    model = layer_model(layer.kind)
    level = LEVEL_NAMES[project.level]
    district = _district_name(project.district)
    province = seeds.province()["name"]
    scale = f", tỷ lệ {project.scale}" if project.scale else ""
    v = layer.version
    lots = next((x for x in versions if x.kind == "zoning_lots"), versions[0])
    functions = seeds.zoning_functions()
    common: dict[str, Any] = dict(
        title=f"{project.name} — {model.title['vi']} / {model.title['en']}",
        abstract=f"{model.title['vi']} của đồ án «{project.name}» ({level['vi']}{scale}), "
                 f"{district}, {province}; {layer.feature_count} đối tượng, hệ tọa độ "
                 f"{describe(crs)}. {model.description}",
        stamp=stamp, crs_code=crs_code(crs), crs_name=crs.name,
        bbox_lonlat=layer.bbox_lonlat, feature_count=layer.feature_count,
        decision=decision, formats=export_formats(), contact=contact,
        land_uses=[(c, functions.get(c).name_vi) for c in layer.land_use_codes
                   if functions.get(c) is not None],
        land_use_thesaurus=ZONING_THESAURUS,
        places=[district, province, "Việt Nam"],
        themes=[model.title["vi"], model.title["en"], level["vi"], level["en"]],
        licence=licence, personal=personal)
    if v is None:  # the boundary, from the catalogue
        return LayerMetadata(
            identifier=f"gisportal-project-{project.id}-{layer.kind}",
            created=project.created_at, published=lots.published_at,
            source_name=None, source_sha256=None, uploaded_by=project.updated_by,
            lineage=f"Ranh giới lập quy hoạch của đồ án «{project.name}» trong danh mục đồ "
                    f"án của gisportal (cập nhật {project.updated_at} bởi "
                    f"{project.updated_by}). / The project's planning boundary, from "
                    "gisportal's project catalogue.",
            **common)
    return LayerMetadata(
        identifier=f"gisportal-project-{project.id}-{v.kind}-v{v.id}",
        created=v.created_at, published=v.published_at, source_name=v.source_name,
        source_sha256=v.source_sha256, uploaded_by=v.created_by, **common)


def _unique_path(folder: str, name: str, taken: set[str]) -> str:
    """``folder/name``, or ``folder/stem-2.pdf``... when a document already has it."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, "pdf"
    candidate, n = f"{folder}/{stem}.{ext}", 2
    while candidate.lower() in taken:
        candidate, n = f"{folder}/{stem}-{n}.{ext}", n + 1
    taken.add(candidate.lower())
    return candidate


def _pdf_member(package: PackageWriter, home: DataHome, work: Path, sha: object,
                arcname: str, label: str, warnings: list[str]) -> str | None:
    """Copy the stored PDF `sha` from the decision area into the package as `arcname`;
    its path in the package, or None (and a warning) when it is not there as stored."""
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        warnings.append(f"{label}: no stored PDF (sha256 {sha!r}): not in the package")
        return None
    area = home.decision_area
    key = DataHome.decision_key(sha)
    local = work / f"pdf-{sha}-{len(os.listdir(work))}.pdf"
    digest = hashlib.sha256()
    try:
        with area.open(key) as src, open(local, "wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    except FileNotFoundError:  # the area's contract for a key it does not hold
        local.unlink(missing_ok=True)
        warnings.append(f"{label}: its PDF {key} is missing from the decision area: not in "
                        "the package")
        return None
    if digest.hexdigest() != sha:
        local.unlink(missing_ok=True)
        warnings.append(f"{label}: the stored PDF {key} does not match its sha256 (damaged "
                        "copy): not in the package")
        return None
    return package.add_file(local, arcname, delete=True)


def _extras(store: Store, project: Project, decision: Mapping[str, Any] | None
            ) -> Callable[[PackageWriter, Path], tuple[dict[str, Any], list[str]]]:
    """The decision's PDF and the project's documents as members of the package."""
    def add(package: PackageWriter, work: Path) -> tuple[dict[str, Any], list[str]]:
        warnings: list[str] = []
        taken: set[str] = set()
        home = store.home
        described: dict[str, Any] | None = None
        if decision is not None:
            sha = decision.get("pdf_sha256")
            pdf = None
            if sha:
                name = safe_file_name(decision.get("pdf_name"), default="quyet_dinh.pdf")
                pdf = _pdf_member(package, home, work, sha, _unique_path("decision", name, taken),
                                  f"decision {decision.get('number')}", warnings)
            described = {"number": decision.get("number"), "date": decision.get("date"),
                         "authority": decision.get("authority"), "pdf": pdf,
                         "pdf_sha256": sha or None}
        documents = []
        for doc in project.documents:
            name = safe_file_name(doc.get("pdf_name"), default="tai_lieu.pdf")
            sha = doc.get("pdf_sha256")
            path = _pdf_member(package, home, work, sha, _unique_path("documents", name, taken),
                               f"document «{doc.get('title')}»", warnings)
            kind = str(doc.get("kind") or "other")
            names = DOCUMENT_KINDS.get(kind, DOCUMENT_KINDS["other"])
            documents.append({"kind": kind, "kind_name": names["vi"],
                              "title": doc.get("title"), "path": path, "pdf_sha256": sha,
                              "size": doc.get("size")})
        return {"decision": described, "documents": documents}, warnings

    return add


def export_project_package(store: Store, project_id: object, out: str | os.PathLike[str], *,
                           national_names: bool = True, include_personal: bool = False,
                           settings: dict[str, Any] | None = None,
                           progress: Progress | None = None,
                           workdir: str | os.PathLike[str] | None = None) -> ExportResult:
    """Write the export package of planning project `project_id` to the zip `out`
    (module docstring); `national_names`, `include_personal`, `workdir` as for
    :func:`gisportal.outputs.export.package.export_package`."""
    settings = settings or load_settings()
    project, versions = select_project_layers(store, project_id)
    decision = project_decision(versions)
    store_grid, crs = zone_of(store, project.district)
    stamp = utc_now()
    planned = [read_version(store, v, crs, national_names=national_names,
                            include_personal=include_personal) for v in versions]
    if project.boundary is not None and not shapely.is_empty(project.boundary):
        planned.append(_area_layer(project, decision, store_grid, crs, national_names))
    level = LEVEL_NAMES[project.level]
    status = STATUS_NAMES[project.status]
    spec = PackageSpec(
        name=project.id, title=project.name, crs=crs,
        metadata=lambda layer: _metadata(project, layer, versions, decision, crs, stamp,
                                         settings, include_personal),
        head={"project": {"id": project.id, "name": project.name, "level": project.level,
                          "level_name": level["vi"], "scale": project.scale,
                          "status": project.status, "status_name": status["vi"],
                          "updated_at": project.updated_at},
              "district": {"code": project.district,
                           "name": _district_name(project.district)}},
        extras=_extras(store, project, decision))
    result = write_package(out, spec, planned, district=project.district, stamp=stamp,
                           options={"national_names": national_names,
                                    "include_personal": include_personal},
                           progress=progress, workdir=workdir, project=project.id)
    if project.boundary is None:
        result.warnings.append(f"project {project.id} has no boundary in the catalogue: the "
                               f"package has no {AREA_KIND} layer (gisportal projects area)")
    return result

