"""The review page of a stored version, and what a planner does from it: download the
report, repair, enter the approval decision, publish; and the decision PDFs.

The page embeds no layer: its map (``planner.js``) fetches the findings a page at a
time from ``/api/versions/<id>/findings`` and the uploaded features for the box in
view from ``/api/versions/<id>/features`` (:mod:`gisportal.web.planner_api`).

Decision PDFs are public once their plan has been published: a published (or
superseded) plan version cites its decision to every resident, and the signed decision
is a public act. Before that — a draft under appraisal — only the district's staff
may open it.

Reports and PDFs are read through the data home's file areas: a folder's file is sent
as a file (ranges, conditional requests), an S3 object is streamed through the app in
chunks, never whole in memory (`send_area_file`).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user

from gisportal import jobs
from gisportal.accounts.roles import can
from gisportal.base import seeds
from gisportal.base.errors import GisportalError, NotFoundError, StoreError
from gisportal.base.findings import SEVERITIES, rules
from gisportal.base.models import layer_model
from gisportal.outputs.mapassets import map_header, offline_map
from gisportal.services import decisions, workflow
from gisportal.store.base import Version
from gisportal.store.files import FileArea
from gisportal.web import get_home, get_store
from gisportal.web.auth import audit_event, login_required, require
from gisportal.web.i18n import current_lang, js_strings, tr
from gisportal.web.planner_common import (
    actor,
    district_or_404,
    flag,
    queue_publish,
    settings,
    upload_job_of,
    version_for,
)
from gisportal.web.planner_data import (
    FEATURE_LIMIT,
    FINDINGS_LIMIT,
    load_area_report,
    repair_changes,
    version_bounds_lonlat,
)
from gisportal.web.planner_display import layer_title, status_of

__all__ = ["bp"]

bp = Blueprint("planner_review", __name__)

#: Zoom from which the review map loads the features of a layer too big to send whole.
FEATURES_MIN_ZOOM = 16
_MIMETYPES = {"json": "application/json", "geojson": "application/geo+json",
              "html": "text/html"}
#: Errors first, then warnings, then notes, in the summary table.
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


# --------------------------------------------------------------------------- the page


def _report_key(job: jobs.Job | None, which: str) -> str | None:
    """The upload-area key of the job's report in format `which`, or None (no job, not
    written)."""
    if job is None:
        return None
    try:
        return jobs.report_key(get_home(), job, which)
    except NotFoundError:
        return None


def send_area_file(area: FileArea, key: str, *, mimetype: str, download_name: str,
                   as_attachment: bool = False, max_age: int = 0,
                   conditional: bool = False) -> Response:
    """Send file `key` of a file area: ``send_file`` of the file itself for a folder
    (as before: ranges, If-Modified-Since), else the S3 object streamed in chunks with
    its length, time and ETag, so a 50 MB PDF never sits whole in the app's memory."""
    local = area.local_file(key)
    if local is not None:
        return send_file(local, mimetype=mimetype, as_attachment=as_attachment,
                         download_name=download_name, max_age=max_age,
                         conditional=conditional)
    info = area.stat(key)
    body = area.open(key)
    response = send_file(body, mimetype=mimetype, as_attachment=as_attachment,
                         download_name=download_name, max_age=max_age,
                         conditional=conditional, etag=info.etag.strip('"'),
                         last_modified=info.mtime)
    response.content_length = info.size
    return response


def _map(version: Version) -> dict[str, Any]:
    """The page's folium map (Leaflet served by the app, no basemap), fitted to the
    version's extent; planner.js draws the data on it."""
    try:
        anchor = seeds.district(version.district).anchor_lonlat
    except KeyError:  # a version of a district the seeds do not list
        anchor = None
    center = (anchor[1], anchor[0]) if anchor else (11.9, 108.0)
    m = offline_map(location=center, zoom_start=13, control_scale=True, max_zoom=21)
    box = version_bounds_lonlat(get_store(primary=True), version)
    if box is not None:
        m.fit_bounds([[box[1], box[0]], [box[3], box[2]]], padding=(20, 20), max_zoom=19)
    root = m.get_root()
    root.render()
    return {"name": m.get_name(), "header": map_header(m),
            "html": root.html.render(), "script": root.script.render()}


def _blocked(version: Version) -> str | None:
    """Why the version cannot be published (the page's words), or None."""
    try:
        workflow.check_publishable(version)
    except StoreError as err:
        if err.code == "STORE-HAS-ERRORS":
            errors = (version.meta.get("report") or {}).get("errors")
            return tr("pl_blocked_errors").format(n=errors if errors is not None else "")
        if err.code == "PLAN-NO-DECISION":
            return tr("pl_blocked_decision")
        return err.one_line()
    return None


def _preview(version: Version) -> workflow.PublishPreview | None:
    """What residents would see change, for a draft without errors (else None).

    Computed with the compare engine and kept in its per-process cache, so the publish
    job's own check and a reload of the page cost nothing more here.
    """
    if version.status != "draft" or version.has_errors:
        return None
    try:
        return workflow.preview(get_store(primary=True), version.id, settings=settings())
    except GisportalError:
        return None


def _source_columns(version: Version) -> list[Any]:
    """The uploaded columns with what residents see of them (`privacy.source_columns`)."""
    from gisportal.outputs import privacy

    try:
        return privacy.source_columns(get_store(primary=True), version)
    except GisportalError:
        return []


def review_page(version: Version, *, status: int = 200, error: GisportalError | None = None,
                form: dict[str, str] | None = None):
    """Render the review page (also after a refused decision or publish, with `error`)."""
    store = get_store(primary=True)
    job = upload_job_of(version)
    report_json = _report_key(job, "json")
    report = load_area_report(get_home().upload_area, report_json) if report_json else None
    changes, n_changes = repair_changes(report) if report else ([], 0)
    summary = (report or {}).get("summary") or version.meta.get("report") or {}
    published = workflow.published_of(store, version)
    info = status_of(version)
    parts = _map(version)
    config = {
        "map": parts["name"], "version": version.id, "lang": current_lang(),
        "findings": url_for("planner_api.findings", version_id=version.id) if report else None,
        "features": url_for("planner_api.features", version_id=version.id),
        "feature_count": version.feature_count, "feature_limit": FEATURE_LIMIT,
        "findings_limit": FINDINGS_LIMIT, "min_zoom": FEATURES_MIN_ZOOM,
        "key": list(dict.fromkeys((*layer_model(version.kind).key, "land_use"))),
    }
    return render_template(
        "planner_review.html", v=version, info=info, d=district_or_404(version.district),
        layer=layer_title(version.kind), job=job, summary=summary,
        by_rule=sorted((summary.get("by_rule") or {}).items(),
                       key=lambda kv: (_RANK.get(kv[1].get("severity"), len(_RANK)), kv[0])),
        history_url=(f"/planner/projects/{version.project}/{version.kind}/history"
                     if version.project else
                     f"/planner/{version.district}/{version.kind}/history"),
        compare_base=(f"/projects/{version.project}/compare" if version.project else
                      f"/districts/{version.district}/{version.kind}/compare"),
        decided=version.kind in decisions.DECIDED_KINDS,
        rules=rules(), read=version.meta.get("read") or {},
        downloads=[w for w in ("json", "geojson", "html") if _report_key(job, w)],
        changes=changes, more_changes=max(0, n_changes - len(changes)),
        repair_of=(job.params.get("repair_of") if job else None),
        published=published, blocked=_blocked(version), preview=_preview(version),
        consultation_possible=(version.kind in decisions.DECIDED_KINDS
                               and version.status == "draft"
                               and not version.has_errors
                               and decisions.decision_of(version) is None),
        is_consultation=version.is_published and workflow.is_consultation(version),
        update=version.meta.get("update"),
        source_columns=_source_columns(version),
        may=lambda action: can(current_user, action, version.district),
        error=error.to_dict() if error else None, form=form or {},
        messages=get_flashed_messages(), parts=parts, config=config,
        strings=js_strings()), status


@bp.get("/planner/versions/<int:version_id>")
@login_required
def review(version_id: int):
    return review_page(version_for("review", version_id))


@bp.get("/planner/versions/<int:version_id>/report.<any(json, geojson, html):fmt>")
@login_required
def report(version_id: int, fmt: str):
    """The version's validation report as a download (JSON, GeoJSON or the HTML page)."""
    version = version_for("review", version_id)
    key = _report_key(upload_job_of(version), fmt)
    if key is None:
        raise NotFoundError(f"version {version.id} has no {fmt} report",
                            where=f"version {version.id}",
                            fix="only versions uploaded through the portal keep their full "
                                "report; validate the file again with gisportal validate",
                            code="REPORT-MISSING")
    return send_area_file(get_home().upload_area, key, mimetype=_MIMETYPES[fmt],
                          as_attachment=True,
                          download_name=f"bao_cao_kiem_tra_v{version.id}.{fmt}", max_age=0)


# --------------------------------------------------------------------------- actions


@bp.post("/planner/versions/<int:version_id>/repair")
@login_required
def repair(version_id: int):
    """Queue the repair of the version's upload into a new draft (the list of changes
    shows on the new draft's review page)."""
    version = version_for("upload", version_id)
    job = upload_job_of(version)
    if job is None:
        raise StoreError(f"version {version.id} was not uploaded through the portal, so its "
                         "file is not kept here to repair", where=f"version {version.id}",
                         fix="upload the file again with the repair box ticked",
                         code="REPAIR-NO-UPLOAD")
    new = jobs.submit_repair(get_home(), job.id, actor=actor(), settings=settings())
    audit_event("version.repair", district=version.district, kind=version.kind,
                version=version.id, detail={"job": new.id, "upload_job": job.id})
    return redirect(url_for("planner.job_page", job_id=new.id), 303)


@bp.post("/planner/versions/<int:version_id>/decision")
@login_required
def decision(version_id: int):
    """Attach (or correct) the approval decision of a plan version, with its signed PDF."""
    version = version_for("publish", version_id)
    f = request.form
    upload = request.files.get("pdf")
    given = upload is not None and bool(upload.filename)
    try:
        done = decisions.attach_decision(
            get_store(primary=True), version.id, number=f.get("number", ""), date=f.get("date", ""),
            authority=f.get("authority", ""), pdf=upload.stream if given else None,
            pdf_name=upload.filename if given else None, home=get_home(),
            settings=settings())
    except GisportalError as err:
        kept = {k: f.get(k, "")[:200] for k in ("number", "date", "authority")}
        return review_page(version, status=err.http_status, error=err, form=kept)
    label = done.decision.label()
    audit_event("decision.attach", district=version.district, kind=version.kind,
                version=version.id, decision=label,
                detail={"pdf_sha256": done.decision.pdf_sha256, "pdf_stored": done.pdf_stored,
                        "replaced": done.previous.label() if done.previous else None})
    flash(tr("pl_decision_saved").format(label=label))
    return redirect(url_for(".review", version_id=version.id), 303)


@bp.post("/planner/versions/<int:version_id>/public-fields")
@login_required
def public_fields(version_id: int):
    """Choose which source columns residents may see (an allow-list: the rest stay with
    the district's staff). Columns recognised as personal need the confirmation box."""
    from gisportal.outputs import privacy

    version = version_for("publish", version_id)
    names = [n for n in request.form.getlist("public") if n.strip()]
    confirm = request.form.get("confirm_personal") == "1"
    try:
        updated = privacy.mark_public(get_store(primary=True), version.id, names, actor(),
                                      confirm_personal=confirm, replace=True)
    except GisportalError as err:
        return review_page(version, status=err.http_status, error=err)
    audit_event("version.public_fields", district=version.district, kind=version.kind,
                version=version.id, detail={"public": names, "confirm_personal": confirm})
    flash(tr("pl_public_saved").format(n=len(names)))
    return redirect(url_for(".review", version_id=updated.id) + "#gp-public-fields", 303)


@bp.post("/planner/versions/<int:version_id>/publish")
@login_required
def publish(version_id: int):
    """Queue the publication of a draft without errors (a plan with its decision, or as a
    draft for comment when the planner pressed that button); removals beyond the
    threshold need the confirmation box."""
    version = version_for("publish", version_id)
    try:
        job, _ = queue_publish(version, confirm_removals=flag(request.form.get("confirm_removals")),
                               consultation=flag(request.form.get("consultation")), via="web")
    except GisportalError as err:
        return review_page(version, status=err.http_status, error=err)
    return redirect(url_for("planner.job_page", job_id=job.id), 303)


# --------------------------------------------------------------------------- decisions


@bp.get("/planner/decisions/<sha256>.pdf")
def decision_pdf(sha256: str):
    """A signed decision: public when a published or superseded plan cites it, else for
    the staff of a district whose draft plan cites it (see the module docstring)."""
    key = decisions.pdf_key(sha256)  # NotFoundError unless 64 hex digits
    area = get_home().decision_area
    store = get_store(primary=True)
    from gisportal.store import projects as project_catalogue

    # Plans, and planning projects' lots (their decision approves the project).
    candidates = store.versions(kind="plan") + [
        v for p in project_catalogue.list_projects(get_home())
        for v in store.versions(kind="zoning_lots", project=p.id)]
    citing = [v for v in candidates
              if (found := decisions.decision_of(v)) is not None and found.pdf_sha256 == sha256]
    if not citing or not area.exists(key):
        raise NotFoundError("there is no decision PDF with this id", where=request.path,
                            fix="open the decision from the plan's page", code="PDF-UNKNOWN")
    public = any(v.status in ("published", "superseded") for v in citing)
    if not public and not any(can(current_user, "review", v.district) for v in citing):
        require("review", citing[0].district)
    name = decisions.decision_of(citing[0]).pdf_name or "quyet_dinh.pdf"
    response = send_area_file(area, key, mimetype="application/pdf", download_name=name,
                              max_age=0 if not public else 3600, conditional=True)
    if not public:
        response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
