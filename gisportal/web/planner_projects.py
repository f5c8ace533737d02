"""Planner pages of planning projects (đồ án quy hoạch xây dựng, đô thị): the list and a
new project, one project's description, layers and documents, the upload of its lots
and red lines, their history.

Thin over `gisportal.services.projects` and the planner pages' own machinery: an upload
is a job like any other (`planner_common.submit_from_request` with the project), its
review, decision and publication are the version pages every layer has
(`planner_review`), a roll back is the history page's. Rights are those of the project's
district: ``upload`` to create a project and send its files, ``publish`` to change what
residents read of it (description, status, documents), ``review`` to see it. Every
change is in the audit log.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from gisportal.accounts.roles import can
from gisportal.base import seeds
from gisportal.base.errors import GisportalError, NotFoundError, UsageError
from gisportal.base.text import human_size
from gisportal.pipeline.read.encodings import SUPPORTED as ENCODINGS
from gisportal.services import projects, workflow
from gisportal.store import projects as catalogue
from gisportal.store.base import PROJECT_KINDS
from gisportal.web import get_home, get_store, i18n
from gisportal.web.auth import audit_event, login_required, require
from gisportal.web.planner_common import (
    actor,
    district_or_404,
    form_values,
    settings,
    submit_from_request,
    wants_413,
)
from gisportal.web.planner_display import layer_title, status_of
from gisportal.web.projects import project_or_404

__all__ = ["bp"]

bp = Blueprint("planner_projects", __name__)

i18n.add_strings({
    "pp_title": ("Đồ án quy hoạch xây dựng, đô thị", "Construction and urban plans"),
    "pp_intro": ("Tạo đồ án, tải lên ô quy hoạch và chỉ giới đường đỏ, nhập quyết định phê "
                 "duyệt rồi công bố — như các lớp dữ liệu của huyện.",
                 "Create a plan, upload its lots and red lines, enter the approving "
                 "decision and publish — as for a district's layers."),
    "pp_new": ("Tạo đồ án mới", "New plan"),
    "pp_id": ("Mã đồ án", "Plan id"),
    "pp_id_hint": ("chữ thường không dấu, số và gạch nối, ví dụ 678-lien-nghia-2000",
                   "lower-case letters, digits and hyphens, e.g. 678-lien-nghia-2000"),
    "pp_name": ("Tên đồ án (như trong quyết định)", "Name (as on the decision)"),
    "pp_create": ("Tạo đồ án", "Create"),
    "pp_save": ("Lưu", "Save"),
    "pp_none": ("Chưa có đồ án nào.", "No plan yet."),
    "pp_layers": ("Lớp dữ liệu của đồ án", "The plan's layers"),
    "pp_documents": ("Hồ sơ công bố", "Published documents"),
    "pp_document_add": ("Thêm tài liệu (PDF)", "Add a document (PDF)"),
    "pp_document_title": ("Tên tài liệu", "Title"),
    "pp_document_kind": ("Loại tài liệu", "Kind"),
    "pp_area": ("Diện tích ranh giới", "Area of the boundary"),
    "pp_area_none": ("chưa có (lấy theo ô quy hoạch tải lên đầu tiên)",
                     "none yet (taken from the first lots uploaded)"),
})


def _project_for(action: str, project_id: str) -> catalogue.Project:
    """The project named in the URL (404), once the user may `action` in its district
    (sign in first, then 403): the order every planner page answers in."""
    project = project_or_404(project_id)
    require(action, project.district)
    return project


def _layer_rows(project: catalogue.Project) -> list[dict[str, Any]]:
    store = get_store(primary=True)
    rows = []
    for kind, versions in projects.layers_of(store, project.id).items():
        published = next((v for v in versions if v.is_published), None)
        drafts = [v for v in versions if v.status == "draft"
                  and (published is None or v.id > published.id)]
        rows.append({"kind": kind, "title": layer_title(kind),
                     "published": status_of(published) if published else None,
                     "drafts": [status_of(v) for v in drafts], "count": len(versions)})
    return rows


def _mine() -> list[Any]:
    return [d for d in seeds.districts() if can(current_user, "review", d.code)]


def _list_page(*, status: int = 200, error: GisportalError | None = None,
               form: dict[str, Any] | None = None):
    mine = _mine()
    codes = {d.code for d in mine}
    rows = [p for p in catalogue.list_projects(get_home()) if p.district in codes]
    published = get_store(primary=True).published_projects()
    return render_template(
        "planner_projects.html", rows=rows, published=published, districts=mine,
        uploadable=[d for d in mine if can(current_user, "upload", d.code)],
        levels=projects.LEVEL_NAMES, statuses=projects.STATUS_NAMES,
        error=error.to_dict() if error else None, form=form or {}), status


@bp.get("/planner/projects/")
@login_required
def project_list():
    """The projects of the user's districts, and the form for a new one."""
    return _list_page()


@bp.post("/planner/projects/")
@login_required
def project_create():
    f = request.form
    district = (f.get("district") or "").strip()
    require("upload", district or None)
    form = {k: (f.get(k) or "")[:300] for k in ("id", "district", "name", "level", "scale",
                                                  "status")}
    try:
        project = projects.create(get_home(), project_id=form["id"].strip(),
                                  district=district, name=form["name"], level=form["level"],
                                  scale=form["scale"] or None,
                                  status=form["status"] or "preparing", by=actor())
    except GisportalError as err:
        return _list_page(status=400 if isinstance(err, UsageError) else
                          (404 if isinstance(err, NotFoundError) else 409),
                          error=err, form=form)
    audit_event("project.add", district=project.district,
                detail={"project": project.id, "name": project.name, "level": project.level})
    return redirect(url_for(".project_page", project_id=project.id), 303)


def _project_page(project: catalogue.Project, *, status: int = 200,
                  error: GisportalError | None = None):
    return render_template(
        "planner_project.html", p=project, d=district_or_404(project.district),
        info=projects.describe(project, i18n.current_lang()), layers=_layer_rows(project),
        levels=projects.LEVEL_NAMES, statuses=projects.STATUS_NAMES,
        document_kinds=projects.DOCUMENT_KINDS,
        may_publish=can(current_user, "publish", project.district),
        may_upload=can(current_user, "upload", project.district),
        error=error.to_dict() if error else None), status


@bp.get("/planner/projects/<project_id>")
@login_required
def project_page(project_id: str):
    project = _project_for("review", project_id)
    return _project_page(project)


@bp.post("/planner/projects/<project_id>")
@login_required
def project_update(project_id: str):
    """Change the description residents read (name, level, scale, status)."""
    project = _project_for("publish", project_id)
    f = request.form
    changes = {k: (f.get(k) or "").strip() or None for k in ("name", "level", "scale",
                                                               "status")}
    try:
        project = projects.update(get_store(primary=True), project.id, by=actor(), **changes)
    except GisportalError as err:
        return _project_page(project, status=400, error=err)
    audit_event("project.change", district=project.district,
                detail={"project": project.id,
                        **{k: v for k, v in changes.items() if v is not None}})
    return redirect(url_for(".project_page", project_id=project.id), 303)


@bp.post("/planner/projects/<project_id>/documents")
@login_required
def project_document(project_id: str):
    """A PDF residents may read (report, regulations, drawing); public at once."""
    project = _project_for("publish", project_id)
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise UsageError("no file was sent", where="file", fix="choose the PDF",
                             code="UPLOAD-NO-FILE")
        project = projects.add_document(
            get_store(primary=True), project.id, upload.stream,
            kind=(request.form.get("kind") or "other"), title=request.form.get("title"),
            pdf_name=upload.filename, by=actor(), settings=settings())
    except GisportalError as err:
        return _project_page(project, status=wants_413(err), error=err)
    audit_event("project.document", district=project.district,
                detail={"project": project.id, "title": request.form.get("title"),
                        "kind": request.form.get("kind")})
    return redirect(url_for(".project_page", project_id=project.id), 303)


def _upload_page(project: catalogue.Project, *, status: int = 200,
                 error: GisportalError | None = None, form: dict[str, Any] | None = None):
    from gisportal.web.planner_pages import ENCODING_LABELS

    kind = (form or {}).get("kind") or request.args.get("kind") or PROJECT_KINDS[0]
    return render_template(
        "planner_upload.html", d=district_or_404(project.district), project=project,
        kinds=[(k, layer_title(k)) for k in PROJECT_KINDS],
        kind=kind if kind in PROJECT_KINDS else PROJECT_KINDS[0],
        encodings=[(e, ENCODING_LABELS.get(e, e)) for e in ENCODINGS],
        limit=human_size(int(settings()["max_upload_bytes"])),
        error=error.to_dict() if error else None, form=form or {}), status


@bp.get("/planner/projects/<project_id>/upload")
@login_required
def upload_form(project_id: str):
    project = _project_for("upload", project_id)
    return _upload_page(project)


@bp.post("/planner/projects/<project_id>/upload")
@login_required
def upload(project_id: str):
    """The project's lots or red lines → a background ingest job → 303 to its page."""
    project = _project_for("upload", project_id)
    try:
        job = submit_from_request(project.district, project=project.id)
    except GisportalError as err:
        return _upload_page(project, status=wants_413(err), error=err, form=form_values())
    return redirect(url_for("planner.job_page", job_id=job.id), 303)


@bp.get("/planner/projects/<project_id>/<kind>/history")
@login_required
def history(project_id: str, kind: str):
    project = _project_for("review", project_id)
    if kind not in PROJECT_KINDS:
        raise NotFoundError(f"{kind[:40]!r} is not a layer of a project", where="kind",
                            fix="use one of: " + ", ".join(PROJECT_KINDS),
                            code="KIND-UNKNOWN")
    rows = workflow.history(get_store(primary=True), None, kind, project=project.id)
    return render_template("planner_history.html", d=district_or_404(project.district),
                           project=project, kind=kind, layer=layer_title(kind), rows=rows,
                           may_rollback=can(current_user, "rollback", project.district))
