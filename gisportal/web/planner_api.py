"""The planner's JSON API: upload jobs for scripts, their progress, and the review map's
data.

- ``POST /api/jobs`` — multipart (``district``, ``kind``, ``file``; optional ``crs``,
  ``encoding``, ``source_layer``, ``field`` = ``sheet=SO_TO`` repeated, ``repair``,
  ``year`` for an ``annual_plan`` whose features carry no year) with
  an API token (``Authorization: Bearer gp_…``, no CSRF token) or a session (with its
  CSRF token) → 202, ``{"job", "url", "page"}`` and ``Location``; a file over
  ``max_upload_bytes`` → 413.
- ``GET /api/jobs/<id>`` — state, stage, percent, message, result, error (``job``).
- ``GET /api/jobs[?district=&state=&limit=]`` — newest first, the districts the caller
  reviews.
- ``POST /api/jobs/<id>/cancel`` — stops the job (waits for its worker, a few seconds).
- ``GET /api/versions/<id>/findings[?rule=&severity=&offset=&limit=]`` — a page of the
  version's validation findings as GeoJSON (WGS 84).
- ``GET /api/versions/<id>/features[?bbox=&limit=]`` — the version's features in a box
  (WGS 84), key fields and land use only.
- ``GET /api/versions/<id>/preview`` — what residents would see change if the version
  were published now (counts per change type, m² per land-use code, whether removals
  need confirming).
- ``POST /api/versions/<id>/publish`` (``confirm_removals``, ``consultation``: true/1) —
  queue its publication → 202 with the job; refused at once (409/400 with the error) when
  `gisportal.services.workflow` would refuse it.

All need the ``review`` right in the district concerned (``upload`` to submit; the
job kind's right to cancel). Errors are ``{"error": {code, what, where, fix, message}}``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for
from flask_login import current_user

from gisportal import jobs
from gisportal.accounts.roles import can
from gisportal.base import seeds
from gisportal.base.errors import GisportalError, NotFoundError, UsageError
from gisportal.services import workflow
from gisportal.web import get_home, get_store
from gisportal.web.auth import login_required, require
from gisportal.web.planner_common import (
    cancel_job,
    district_or_404,
    flag,
    job_for,
    job_json,
    queue_publish,
    settings,
    submit_from_request,
    upload_job_of,
    version_for,
    wants_413,
)
from gisportal.web.planner_data import (
    FEATURE_LIMIT,
    FINDINGS_LIMIT,
    MAX_FEATURE_LIMIT,
    MAX_FINDINGS_LIMIT,
    count,
    features_in_box,
    findings_page,
    load_area_report,
    parse_bbox,
)

__all__ = ["bp", "MAX_JOBS"]

bp = Blueprint("planner_api", __name__)

#: Most jobs one listing returns.
MAX_JOBS = 500


def _page_size(default: int, high: int) -> int:
    """``limit`` of the query string, 1 to `high` (`default` when absent).

    0 is refused (400), as the API definition's ``minimum: 1`` says, rather than read
    as 1: a script asking for no rows has made a mistake worth hearing about.
    """
    text = request.args.get("limit")
    limit = count(text, "limit", default, high)
    if limit < 1:
        raise UsageError(f"limit must be a whole number from 1 to {high}, got {text!r}",
                         where="limit", fix=f"e.g. limit={default}")
    return limit


@bp.post("/api/jobs")
@login_required
def create_job():
    """Queue an upload (see the module docstring) → 202 with the job."""
    district = (request.form.get("district") or "").strip()
    if not district:
        raise UsageError("the district is missing", where="district",
                         fix="send the district's GSO code, e.g. district=676",
                         code="UPLOAD-DISTRICT")
    require("upload", district)
    code = district_or_404(district).code
    try:
        job = submit_from_request(code)
    except GisportalError as err:
        return jsonify({"error": err.to_dict()}), wants_413(err)
    url = url_for(".get_job", job_id=job.id)
    response = jsonify({"job": job_json(job), "url": url,
                        "page": url_for("planner.job_page", job_id=job.id)})
    response.status_code = 202
    response.headers["Location"] = url
    return response


@bp.get("/api/jobs")
@login_required
def list_jobs():
    """Jobs of ``district`` (or of every district the caller reviews), newest first."""
    district = (request.args.get("district") or "").strip() or None
    state = (request.args.get("state") or "").strip() or None
    limit = _page_size(50, MAX_JOBS)
    if district is not None:
        require("review", district)
        found = jobs.list_jobs(get_home(), district_or_404(district).code, state=state,
                               limit=limit)
    elif current_user.is_admin:
        found = jobs.list_jobs(get_home(), state=state, limit=limit)
    else:
        codes = [d.code for d in seeds.districts() if can(current_user, "review", d.code)]
        found = sorted((j for c in codes for j in jobs.list_jobs(get_home(), c, state=state,
                                                                 limit=limit)),
                       key=lambda j: j.id, reverse=True)[:limit]
    return jsonify({"jobs": [job_json(j) for j in found]})


@bp.get("/api/jobs/<int:job_id>")
@login_required
def get_job(job_id: int):
    """One job: what the job page polls."""
    job = job_for(job_id)
    return jsonify({"job": job_json(job)})


@bp.post("/api/jobs/<int:job_id>/cancel")
@login_required
def cancel(job_id: int):
    job = cancel_job(job_for(job_id))
    return jsonify({"job": job_json(job)})


@bp.get("/api/versions/<int:version_id>/findings")
@login_required
def findings(version_id: int):
    """A page of the version's findings (the review table and map)."""
    version = version_for("review", version_id)
    a = request.args
    # The page first: a bad offset or limit is a 400 whether or not a report is kept.
    offset = count(a.get("offset"), "offset", 0, 10**9)
    limit = _page_size(FINDINGS_LIMIT, MAX_FINDINGS_LIMIT)
    job = upload_job_of(version)
    if job is None:
        raise NotFoundError(f"version {version.id} has no detailed report",
                            where=f"version {version.id}",
                            fix="only versions uploaded through the portal keep their report",
                            code="REPORT-MISSING")
    report = load_area_report(get_home().upload_area, jobs.report_key(get_home(), job, "json"))
    page = findings_page(report, rule=(a.get("rule") or "").strip() or None,
                         severity=(a.get("severity") or "").strip() or None,
                         offset=offset, limit=limit)
    page["summary"] = report.get("summary")
    return jsonify(page)


@bp.get("/api/versions/<int:version_id>/features")
@login_required
def features(version_id: int):
    """The version's features meeting ``bbox`` (the review map's layer under the
    findings)."""
    version = version_for("review", version_id)
    limit = _page_size(FEATURE_LIMIT, MAX_FEATURE_LIMIT)
    return jsonify(features_in_box(get_store(primary=True), version,
                                   parse_bbox(request.args.get("bbox")), limit=limit))


@bp.get("/api/versions/<int:version_id>/preview")
@login_required
def preview(version_id: int):
    """What publishing the version would change for residents (`workflow.preview`)."""
    version = version_for("review", version_id)
    pre = workflow.preview(get_store(primary=True), version.id, settings=settings())
    return jsonify({"preview": pre.to_dict()})


@bp.post("/api/versions/<int:version_id>/publish")
@login_required
def publish(version_id: int):
    """Queue the publication of a version through the one publish path → 202 with the job.

    The checks of `workflow.publish` run here first, so a refusal (errors, a plan without
    its decision, unconfirmed removals) is the answer itself, not a failed job later.
    """
    version = version_for("publish", version_id)
    source = request.form if request.form else (request.get_json(silent=True) or {})
    try:
        job, pre = queue_publish(version, confirm_removals=flag(str(source.get(
            "confirm_removals", ""))), consultation=flag(str(source.get("consultation", ""))),
            via="api")
    except GisportalError as err:
        return jsonify({"error": err.to_dict()}), err.http_status
    url = url_for(".get_job", job_id=job.id)
    response = jsonify({"job": job_json(job), "url": url, "preview": pre.to_dict(),
                        "page": url_for("planner.job_page", job_id=job.id)})
    response.status_code = 202
    response.headers["Location"] = url
    return response
