"""Planner pages: the dashboard, the upload form, a job's progress, a layer's history
and its roll back.

Every form posts with its CSRF token and answers a change with a 303 redirect (to the
job's page when a job was queued); a refused input shows the form again with the
reason and a 4xx status.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from gisportal import jobs
from gisportal.accounts.roles import can
from gisportal.base import seeds
from gisportal.base.errors import GisportalError, StoreError
from gisportal.base.text import human_size
from gisportal.pipeline.read.encodings import SUPPORTED as ENCODINGS
from gisportal.services import workflow
from gisportal.services.decisions import decision_of
from gisportal.store.base import KINDS, Version
from gisportal.web import get_home, get_store, maps
from gisportal.web.auth import audit_event, login_required, requires
from gisportal.web.i18n import current_lang
from gisportal.web.planner_common import (
    JOB_RIGHTS,
    actor,
    cancel_job,
    district_or_404,
    form_values,
    job_for,
    kind_or_404,
    settings,
    submit_from_request,
    version_for,
    wants_413,
)
from gisportal.web.planner_display import layer_title, status_of

__all__ = ["bp"]

bp = Blueprint("planner", __name__)

#: Jobs listed on the dashboard.
RECENT_JOBS = 20
#: How the upload form names the encodings the reader knows (read.encodings.SUPPORTED).
ENCODING_LABELS = {"utf-8": "UTF-8", "cp1258": "Windows-1258", "tcvn3": "TCVN3 (ABC, .VnTime)",
                   "vni": "VNI-Windows"}


# --------------------------------------------------------------------------- dashboard


def _layer_row(code: str, kind: str, versions: list[Version]) -> dict[str, Any]:
    """One layer of a district on the dashboard: published version, drafts newer than it."""
    published = next((v for v in versions if v.is_published), None)
    newer = [v for v in versions if v.status == "draft"
             and (published is None or v.id > published.id)]
    return {"kind": kind, "title": layer_title(kind),
            "published": status_of(published) if published else None,
            "drafts": [status_of(v) for v in newer], "count": len(versions)}


def _recent_jobs(codes: list[str]) -> list[jobs.Job]:
    if current_user.is_admin:
        found = jobs.list_jobs(get_home(), limit=RECENT_JOBS)
    else:
        found = [j for c in codes for j in jobs.list_jobs(get_home(), c, limit=RECENT_JOBS)]
        found.sort(key=lambda j: j.id, reverse=True)
    found = found[:RECENT_JOBS]
    return found


@bp.get("/planner/")
@login_required
def dashboard():
    """The signed-in user's districts: each layer, its published version, its drafts."""
    store = get_store(primary=True)
    mine = [d for d in seeds.districts() if can(current_user, "review", d.code)]
    # The status as the province map names it (maps/province.json).
    labels = {s["id"]: maps.text(s["label"], current_lang())
              for s in maps.composition("province")["statuses"]}
    districts = []
    for d in mine:
        versions = store.versions(d.code)
        rows = [_layer_row(d.code, kind, [v for v in versions if v.kind == kind])
                for kind in KINDS]
        status = workflow.district_status(store, d.code).portal_status
        districts.append({"d": d, "layers": rows, "status": labels.get(status, status)})
    return render_template("planner_dashboard.html", districts=districts,
                           jobs=_recent_jobs([d.code for d in mine]))


# --------------------------------------------------------------------------- upload


def _upload_page(code: str, *, status: int = 200, error: GisportalError | None = None,
                 form: dict[str, Any] | None = None):
    d = district_or_404(code)
    kind = (form or {}).get("kind") or request.args.get("kind") or "parcels"
    return render_template(
        "planner_upload.html", d=d, kinds=[(k, layer_title(k)) for k in KINDS],
        kind=kind if kind in KINDS else "parcels",
        encodings=[(e, ENCODING_LABELS.get(e, e)) for e in ENCODINGS],
        limit=human_size(int(settings()["max_upload_bytes"])),
        error=error.to_dict() if error else None, form=form or {}), status


@bp.get("/planner/<district>/upload")
@requires("upload")
def upload_form(district: str):
    return _upload_page(district)


@bp.post("/planner/<district>/upload")
@requires("upload")
def upload(district: str):
    """The form's file → a background ingest job → 303 to the job's page."""
    d = district_or_404(district)
    try:
        job = submit_from_request(d.code)
    except GisportalError as err:
        return _upload_page(d.code, status=wants_413(err), error=err, form=form_values())
    return redirect(url_for(".job_page", job_id=job.id), 303)


# --------------------------------------------------------------------------- jobs


@bp.get("/planner/jobs/<int:job_id>")
@login_required
def job_page(job_id: int):
    """A job's progress (polled by planner.js while it runs), then its outcome."""
    job = job_for(job_id)
    result = job.result or {}
    version = None
    if isinstance(result.get("version"), int):
        try:
            version = get_store(primary=True).version(result["version"])
        except GisportalError:
            version = None
    return render_template("planner_job.html", job=job, d=district_or_404(job.district),
                           layer=layer_title(job.layer), version=version, result=result,
                           decision=decision_of(version) if version else None,
                           may_cancel=not job.finished and can(
                               current_user, _right(job), job.district))


def _right(job: jobs.Job) -> str:
    return JOB_RIGHTS.get(job.kind, "upload")


@bp.post("/planner/jobs/<int:job_id>/cancel")
@login_required
def job_cancel(job_id: int):
    cancel_job(job_for(job_id))
    return redirect(url_for(".job_page", job_id=job_id), 303)


# --------------------------------------------------------------------------- history


@bp.get("/planner/<district>/<kind>/history")
@requires("review")
def history(district: str, kind: str):
    """Every version of a layer: who uploaded and published it, its source and report,
    its decision; compare two; roll back to a superseded one."""
    d = district_or_404(district)
    kind = kind_or_404(kind)
    rows = workflow.history(get_store(primary=True), d.code, kind)
    return render_template("planner_history.html", d=d, kind=kind, layer=layer_title(kind),
                           rows=rows, may_rollback=can(current_user, "rollback", d.code))


@bp.post("/planner/versions/<int:version_id>/rollback")
@login_required
def rollback(version_id: int):
    """Publish again a superseded version (a job: tiles are found or rebuilt first)."""
    version = version_for("rollback", version_id)
    where = f"district {version.district}, {version.kind}, version {version.id}"
    if version.status == "published":
        raise StoreError(f"version {version.id} is already the published version",
                         where=where, fix="choose a superseded version from the history",
                         code="ROLLBACK-ALREADY")
    if version.status != "superseded":
        raise StoreError(f"version {version.id} was never published, so there is nothing to "
                         "roll back to", where=where, fix="publish this draft from its review "
                         "page after reading its report", code="ROLLBACK-NEVER-PUBLISHED")
    workflow.check_publishable(version)  # a plan still needs its decision: say so now
    confirm = request.form.get("confirm_removals") == "1"
    store = get_store(primary=True)
    current = workflow.published_of(store, version)
    job = jobs.submit_rollback(get_home(), version.id, district=version.district,
                               layer=version.kind, actor=actor(), confirm_removals=confirm,
                               project=version.project, settings=settings())
    decision = decision_of(version)
    audit_event("version.rollback", district=version.district, kind=version.kind,
                version=version.id, decision=decision.label() if decision else None,
                detail={"job": job.id, "replacing": current.id if current else None,
                        **({"project": version.project} if version.project else {})})
    return redirect(url_for(".job_page", job_id=job.id), 303)
