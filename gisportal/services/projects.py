"""Planning projects as services: create and describe them, give their area and
documents, and keep what residents see of them current.

A project (đồ án quy hoạch xây dựng, đô thị) is a catalogue row (`gisportal.store.projects`)
plus layer versions in the store (`PROJECT_KINDS`: its lots and red lines), uploaded,
checked and published through the same pipeline and the one publish path as a
district's layers (`gisportal.services.ingest`, `gisportal.services.workflow`).

What a look-up says of a project (its name, level, scale, status) travels in the meta of
its published layers (``meta["project"]``, `Project.facts`): a look-up then answers from
the store's published snapshot in one statement, never reading this catalogue per
request. Every change of those facts rewrites that meta (`refresh_published_facts`), in
the same call, so residents never see a stale name.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import shapely
from shapely.geometry.base import BaseGeometry

from gisportal.base import seeds
from gisportal.base.errors import InputError, NotFoundError, UsageError
from gisportal.base.files import safe_file_name
from gisportal.base.models import layer_model
from gisportal.base.settings import load_settings
from gisportal.base.text import nfc
from gisportal.pipeline.normalise import normalise
from gisportal.pipeline.read.sources import read_source
from gisportal.services.decisions import pdf_key, store_pdf
from gisportal.store import projects as catalogue
from gisportal.store.base import PROJECT_KINDS, Store, Version, check_project, utc_now
from gisportal.store.home import DataHome, scratch_prefix
from gisportal.store.projects import (
    DOCUMENT_KINDS,
    LEVEL_NAMES,
    STATUS_NAMES,
    STATUSES,
    Project,
)

__all__ = ["DOCUMENT_KINDS", "LEVEL_NAMES", "STATUS_NAMES", "add_document", "create",
           "layers_of", "parse_level", "parse_scale", "parse_status", "published_layers",
           "read_area", "refresh_published_facts", "give_facts", "area_from_lots", "describe",
           "set_area", "update"]

# How offices write a level: the English word, the Vietnamese name with or without
# accents, or the scale that implies it.
_LEVEL_WORDS = {
    "general": ("general", "chung", "quy hoach chung", "qhc"),
    "zoning": ("zoning", "phan khu", "quy hoach phan khu", "qhpk", "1/2000", "1/5000"),
    "detailed": ("detailed", "chi tiet", "quy hoach chi tiet", "qhct", "1/500"),
}
_STATUS_WORDS = {
    "preparing": ("preparing", "dang lap", "lap"),
    "appraisal": ("appraisal", "dang tham dinh", "tham dinh", "lay y kien"),
    "approved": ("approved", "da phe duyet", "phe duyet"),
    "adjusted": ("adjusted", "da dieu chinh", "dieu chinh"),
    "replaced": ("replaced", "da thay the", "thay the", "het hieu luc"),
}
_SCALE_RE = re.compile(r"1\s*[/:]\s*([0-9][0-9.\s]*)")
_LEVEL_OF_DENOMINATOR = {500: "detailed", 2000: "zoning", 5000: "zoning"}


def _fold(text: str) -> str:
    from gisportal.base.text import fold

    return " ".join(fold(nfc(text)).lower().split())


def parse_level(text: Any) -> str:
    """A project level from how it is written (``zoning``, "phân khu", "1/2000")."""
    folded = _fold(str(text or ""))
    for level, words in _LEVEL_WORDS.items():
        if folded in words:
            return level
    raise UsageError(f"{text!r} is not a level of a construction or urban plan",
                     where="level", fix="Use general (quy hoạch chung), zoning (phân khu, "
                                        "1/2000–1/5000) or detailed (chi tiết, 1/500)",
                     code="PROJECT-LEVEL")


def parse_status(text: Any) -> str:
    """A project status from how it is written (``approved``, "đã phê duyệt")."""
    folded = _fold(str(text or ""))
    for status, words in _STATUS_WORDS.items():
        if folded in words:
            return status
    raise UsageError(f"{text!r} is not a project status", where="status",
                     fix="Use one of: " + ", ".join(STATUSES), code="PROJECT-STATUS")


def parse_scale(text: Any) -> str | None:
    """The drawing scale as ``1/2000`` (from "1:2000", "1/2.000", "tỷ lệ 1/2000")."""
    if text is None or not str(text).strip():
        return None
    m = _SCALE_RE.search(nfc(str(text)))
    digits = re.sub(r"[.\s]", "", m.group(1)) if m else ""
    if not digits or not 100 <= int(digits) <= 100_000:
        raise UsageError(f"{text!r} is not a drawing scale", where="scale",
                         fix="Write it as 1/2000 (or 1/500, 1/5000, 1/10000)",
                         code="PROJECT-SCALE")
    return f"1/{int(digits)}"


def _name(text: Any) -> str:
    name = " ".join(nfc(str(text or "")).split())
    if not name or len(name) > 300 or "\x00" in name:
        raise UsageError("a project needs a name (up to 300 characters)", where="name",
                         fix="Give the name on the approving decision, e.g. \"Quy hoạch "
                             "phân khu Khu du lịch quốc gia Đankia – Suối Vàng\"",
                         code="PROJECT-NAME")
    return name


def create(home: DataHome, *, project_id: str, district: str, name: Any, level: Any,
           scale: Any = None, status: Any = "preparing", area: BaseGeometry | None = None,
           by: str) -> Project:
    """A new project in the catalogue; its level and scale checked together (a 1/500
    drawing is a detailed plan)."""
    try:
        pid = check_project(project_id)
    except NotFoundError:  # a new id is input to check, not a project to find
        raise UsageError(f"{str(project_id)[:70]!r} cannot be a project's id", where="id",
                         fix="Use lower-case letters without accents, digits and hyphens, "
                             "2 to 63 characters, e.g. 678-lien-nghia-2000",
                         code="PROJECT-ID") from None
    code = seeds.known_district(district).code
    lvl = parse_level(level)
    scl = parse_scale(scale)
    if scl is not None:
        implied = _LEVEL_OF_DENOMINATOR.get(int(scl.split("/")[1]))
        if implied is not None and implied != lvl and lvl != "general":
            raise UsageError(f"a {scl} drawing is a {implied} plan, not a {lvl} one",
                             where="level, scale", fix="Check the level or the scale",
                             code="PROJECT-LEVEL")
    now = utc_now()
    return catalogue.add(home, Project(
        id=pid, district=code, name=_name(name), level=lvl, scale=scl,
        status=parse_status(status), boundary=_checked_area(area), created_at=now,
        created_by=by, updated_at=now, updated_by=by))


def _checked_area(area: BaseGeometry | None) -> BaseGeometry | None:
    if area is None:
        return None
    if area.geom_type not in ("Polygon", "MultiPolygon") or shapely.is_empty(area):
        raise InputError("a project area must be one or more polygons", where="area",
                         fix="Give the boundary of the plan (ranh giới lập quy hoạch) as "
                             "polygons or closed polylines", code="PROJECT-AREA")
    return shapely.make_valid(area) if not shapely.is_valid(area) else area


def read_area(path: str | Path, *, district: str | None, crs: str | None = None,
              layer: str | None = None, settings: dict[str, Any] | None = None
              ) -> BaseGeometry:
    """The union of a boundary file's polygons, in the store CRS, read by the pipeline's
    own reader and normaliser (encodings, VN-2000 zones, CAD polylines alike)."""
    settings = settings or load_settings()
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("read"),
                                     dir=DataHome.scratch_for(settings)) as tmp:
        src = read_source(Path(path), layer=layer, workdir=Path(tmp),
                          max_bytes=int(settings["max_upload_bytes"]))
    norm = normalise(src, layer_model("project_area"), crs=crs,
                     district=seeds.district_code(district))
    geoms = norm.frame.geometry.values
    polygons = geoms[shapely.get_type_id(geoms).astype(int) >= 0]
    polygons = [g for g in polygons if g is not None and g.geom_type in (
        "Polygon", "MultiPolygon") and not g.is_empty]
    if not polygons:
        raise InputError(f"{Path(path).name} holds no polygon to take as the project area",
                         where=Path(path).name, fix="Give the plan's boundary as polygons "
                         "or closed polylines", code="PROJECT-AREA")
    return shapely.make_valid(shapely.union_all(shapely.make_valid(polygons)))


def update(store: Store, project_id: str, *, by: str, **changes: Any) -> Project:
    """Change a project's description (name, level, scale, status, district, replaced
    by) and the facts its published layers carry."""
    parsers: dict[str, Any] = {
        "name": _name, "level": parse_level, "scale": parse_scale, "status": parse_status,
        "district": lambda v: seeds.known_district(v).code,
        "replaced_by": lambda v: catalogue.get(store.home, v).id}
    unknown = sorted(set(changes) - set(parsers))
    if unknown:
        raise UsageError(f"a project has no field {unknown[0]!r} to change", where=unknown[0],
                         fix="Change " + ", ".join(parsers))
    parsed = {k: parsers[k](v) for k, v in changes.items() if v is not None}
    project = catalogue.update(store.home, project_id, by=by, **parsed)
    refresh_published_facts(store, project)
    return project


def set_area(store: Store, project_id: str, area: BaseGeometry, *, by: str) -> Project:
    """Give a project its area (the boundary the zoning checks use)."""
    project = catalogue.update(store.home, project_id, by=by, boundary=_checked_area(area))
    return project


def add_document(store: Store, project_id: str, pdf: bytes | BinaryIO | str | Path, *,
                 kind: str, title: Any, pdf_name: str | None = None, by: str,
                 settings: dict[str, Any] | None = None) -> Project:
    """Attach a PDF residents may read (report, regulation, drawing) to a project; a
    document of the same title is replaced. Kept by content beside the decisions."""
    if kind not in DOCUMENT_KINDS:
        raise UsageError(f"{kind!r} is not a kind of project document", where="kind",
                         fix="Use one of: " + ", ".join(DOCUMENT_KINDS),
                         code="PROJECT-DOCUMENT")
    label = " ".join(nfc(str(title or "")).split())
    if not label or len(label) > 300:
        raise UsageError("a document needs a title (up to 300 characters)", where="title",
                         fix="Give the title residents will read, e.g. \"Thuyết minh tổng "
                             "hợp\"", code="PROJECT-DOCUMENT")
    project = catalogue.get(store.home, project_id)
    limit = int((settings or load_settings())["max_decision_bytes"])
    given = pdf_name or (Path(pdf).name if isinstance(pdf, str | Path) else None)
    sha, _ = store_pdf(store.home, pdf, name=given or "document.pdf", max_bytes=limit)
    size = store.home.decision_area.size(pdf_key(sha))
    doc = {"kind": kind, "title": label, "pdf_sha256": sha,
           "pdf_name": safe_file_name(given, default="document.pdf"), "size": size,
           "added_at": utc_now(), "added_by": by}
    documents = tuple(d for d in project.documents if d.get("title") != label) + (doc,)
    return catalogue.update(store.home, project.id, by=by, documents=documents)


def published_layers(store: Store, project_id: str) -> dict[str, Version]:
    """The project's published layers, kind → version."""
    pid = check_project(project_id)
    return {kind: v for (project, kind), v in store.published_projects().items()
            if project == pid}


def layers_of(store: Store, project_id: str) -> dict[str, list[Version]]:
    """Every version of each of the project's layers, newest first."""
    return {kind: store.versions(kind=kind, project=project_id) for kind in PROJECT_KINDS}


def refresh_published_facts(store: Store, project: Project) -> None:
    """Write the project's facts into the meta of its published layers (what look-ups
    read), when they differ."""
    for version in published_layers(store, project.id).values():
        give_facts(store, version, project)


def give_facts(store: Store, version: Version, project: Project | None = None) -> Version:
    """`version` (a layer of a project) with the project's facts as the catalogue has
    them now in its meta; written only when they differ (each write is a publish token
    drawn anew on PostgreSQL: every node's look-ups read the catalogue again)."""
    project = project or catalogue.get(store.home, str(version.project))
    facts = project.facts()
    if version.meta.get("project") == facts:
        return version
    return store.update_meta(version.id, {"project": facts})


def area_from_lots(store: Store, project: Project, version: Version, *, by: str) -> Project:
    """A project without an area takes the union of its first lots (the lots of a
    plan cover its area): the red lines and later versions are then checked against it."""
    if project.boundary is not None:
        return project
    lots = store.read(version.id, columns=[])
    geoms = lots.geometry.values
    if not len(geoms):
        return project
    # union_all, not coverage_union_all: lots meeting at T-junctions (a road's long edge
    # against the corners of the blocks along it) are no noded coverage.
    area = shapely.make_valid(shapely.union_all(shapely.make_valid(geoms)))
    if area.geom_type not in ("Polygon", "MultiPolygon"):
        return project
    return catalogue.update(store.home, project.id, by=by, boundary=area)




def describe(project: Project, lang: str = "vi") -> dict[str, Any]:
    """A project as the API and the pages show it."""
    lang = "en" if lang == "en" else "vi"
    return {
        "id": project.id, "district": project.district, "name": project.name,
        "level": project.level, "level_name": LEVEL_NAMES[project.level][lang],
        "scale": project.scale, "status": project.status,
        "status_name": STATUS_NAMES[project.status][lang],
        "bounds": project.bounds, "replaced_by": project.replaced_by,
        "documents": [{"kind": d.get("kind"), "title": d.get("title"),
                       "kind_name": DOCUMENT_KINDS.get(str(d.get("kind")), DOCUMENT_KINDS[
                           "other"]).get(lang), "pdf_sha256": d.get("pdf_sha256"),
                       "pdf_name": d.get("pdf_name"), "size": d.get("size")}
                      for d in project.documents],
        "updated_at": project.updated_at,
    }

