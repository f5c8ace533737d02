"""What the planner pages and the jobs API share: look-ups that answer in the right
order (sign in, then 404, then 403), the upload form read into `jobs.submit_upload`,
the audit records of each action, and the job as the API shows it.

The web process never writes to the store: uploads, repairs, publications and roll
backs are queued as jobs (:mod:`gisportal.jobs`), whose worker processes do the
writing. The only store change made here is attaching an approval decision, which
touches the catalogue alone (:func:`gisportal.services.decisions.attach_decision`).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for
from flask_login import current_user

from gisportal import jobs
from gisportal.accounts.errors import PermissionDenied
from gisportal.accounts.roles import district_scope, unit_communes
from gisportal.base import seeds
from gisportal.base.errors import GisportalError, NotFoundError, StoreError, UsageError
from gisportal.base.files import safe_file_name
from gisportal.base.seeds import AdminUnit
from gisportal.services import decisions, workflow
from gisportal.store.base import KINDS, PROJECT_KINDS, Version
from gisportal.web import get_home, get_store
from gisportal.web.auth import audit_event, require

__all__ = [
    "JOB_RIGHTS",
    "MAX_ID",
    "actor",
    "cancel_job",
    "district_or_404",
    "form_values",
    "job_for",
    "job_json",
    "kind_or_404",
    "settings",
    "submit_from_request",
    "upload_job_of",
    "version_for",
    "wants_413",
]

#: SQLite integers are signed 64-bit: a larger id in a URL names nothing.
MAX_ID = 2**63 - 1

#: The right a job's kind needs to act on it (cancel); seeing a job needs ``review``.
JOB_RIGHTS: dict[str, str] = {"check": "upload", "ingest": "upload", "repair": "upload",
                              "publish": "publish", "rollback": "rollback"}



def settings() -> dict[str, Any]:
    """The app's settings, handed to every job (``job_workers``, ``max_upload_bytes``)."""
    return current_app.config["GISPORTAL"]


def actor() -> str:
    """The signed-in user's name, as jobs and versions record it."""
    return str(current_user.name)


# --------------------------------------------------------------------------- look-ups


def district_or_404(code: str) -> AdminUnit:
    """The district of the province with this GSO code, else NotFoundError."""
    return seeds.known_district(code)


def kind_or_404(kind: str) -> str:
    """A layer kind named in a URL (``parcels``, ``plan``, ``boundary``), else 404."""
    if kind not in KINDS:
        raise NotFoundError(f"{str(kind)[:40]!r} is not a layer kind", where="kind",
                            fix="use one of: " + ", ".join(KINDS), code="KIND-UNKNOWN")
    return kind


def _id(value: int, what: str) -> int:
    if not 0 < value <= MAX_ID:
        raise NotFoundError(f"there is no {what} {value}", where=what,
                            fix=f"use the number of an existing {what}", code="NOT-FOUND")
    return value


def version_for(action: str, version_id: int) -> Version:
    """The stored version, if the current user may do `action` in its district.

    404 for an id that names no version, 403 for a version of a district the user has
    no `action` right in (call after sign-in is checked, so anonymous users are sent
    to the sign-in page rather than told what exists).
    """
    version = get_store(primary=True).version(_id(version_id, "version"))
    require(action, version.district)
    return version


def job_for(job_id: int, action: str = "review") -> jobs.Job:
    """The job, if the current user may do `action` in its district (404, then 403)."""
    job = jobs.get(get_home(), _id(job_id, "job"))
    require(action, job.district)
    return job


def upload_job_of(version: Version) -> jobs.Job | None:
    """The job whose upload stored `version` (its report and file live there), or None.

    Versions stored by the command line or the demo have no job; a job row naming
    another district or layer (a catalogue copied between homes) is not trusted.
    """
    job_id = version.meta.get("job")
    if not isinstance(job_id, int) or isinstance(job_id, bool):
        return None
    try:
        job = jobs.get(get_home(), job_id)
    except NotFoundError:
        return None
    if (job.district, job.layer) != (version.district, version.kind) \
            or job.kind not in ("check", "ingest", "repair"):
        return None
    return job


# --------------------------------------------------------------------------- uploads


def flag(value: str | None) -> bool:
    """A form or query flag: 1, true, yes or on."""
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _field_overrides(values: list[str]) -> dict[str, str] | None:
    """``field=column`` pairs from repeated form fields or lines of a text area."""
    pairs: dict[str, str] = {}
    for value in values:
        for line in str(value).splitlines():
            line = line.strip()
            if not line:
                continue
            name, sep, column = line.partition("=")
            if not sep or not name.strip() or not column.strip():
                raise UsageError(f"{line[:80]!r} is not a field override", where="field",
                                 fix="write one field=column pair per line, e.g. sheet=SO_TO",
                                 code="UPLOAD-FIELD")
            pairs[name.strip()] = column.strip()
    return pairs or None


def submit_from_request(district: str, project: str | None = None) -> jobs.Job:
    """Queue an ingest of the file in this multipart request; record it in the audit log.

    Form fields: ``kind`` (layer kind), ``file``, and optionally ``crs``, ``encoding``,
    ``source_layer``, ``field`` (``sheet=SO_TO``; repeated, or one per line),
    ``repair``, ``update`` with ``communes`` (a commune update of a cadastre),
    ``public_field`` (source columns residents may see) and ``year`` (an annual plan's
    year for the features that carry none). Shared by the upload form and
    ``POST /api/jobs``. With `project`, the file is a layer of that planning project
    (``kind`` one of `PROJECT_KINDS`).

    Raises
    ------
    UsageError
        No file, an unknown layer kind, a malformed override (and what
        `jobs.submit_upload` refuses: a bad CRS or encoding).
    InputError
        An empty file, one over ``max_upload_bytes`` (code ``FILE-TOO-BIG``), or not a
        GIS file.
    """
    form = request.form
    kind = (form.get("kind") or "").strip()
    allowed = PROJECT_KINDS if project else KINDS
    if kind not in allowed:
        raise UsageError(f"{kind[:40]!r} is not a layer kind" if kind else
                         "the layer kind is missing", where="kind",
                         fix="choose one of: " + ", ".join(allowed), code="UPLOAD-KIND")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise UsageError("no file was sent", where="file",
                         fix="choose the file to upload (a zipped Shapefile, GeoPackage, "
                             "GeoJSON, KML, FlatGeobuf or DXF)", code="UPLOAD-NO-FILE")
    repair = flag(form.get("repair"))
    update = flag(form.get("update"))
    # Communes of an update: repeated fields or one box "24778, 24781".
    communes = [c for raw in form.getlist("communes") + form.getlist("commune")
                for c in str(raw).replace(";", ",").replace("\n", ",").split(",") if c.strip()]
    public = [c.strip() for raw in form.getlist("public_field")
              for c in str(raw).split("\n") if c.strip()]
    within = _commune_officer_scope(district, kind, update, communes)
    try:
        job = jobs.submit_upload(
            get_home(), upload.stream, upload.filename, district=district, layer=kind,
            actor=actor(), crs=form.get("crs") or None, encoding=form.get("encoding") or None,
            source_layer=(form.get("source_layer") or "").strip() or None,
            fields=_field_overrides(form.getlist("field")), repair=repair,
            update=update, communes=communes or None, public_fields=public or None,
            year=(form.get("year") or "").strip() or None, within=within,
            project=project, settings=settings())
    except GisportalError as err:
        # Refused on arrival (too big, not a GIS file, a bad override): nothing is kept,
        # but who tried what stays on record.
        audit_event("upload.refused", district=district, kind=kind, detail={
            "file": safe_file_name(upload.filename), "code": err.code})
        raise
    audit_event("upload", district=district, kind=kind, detail={
        "job": job.id, "file": job.params.get("upload_name"),
        "bytes": job.params.get("upload_bytes"), "repair": repair,
        "crs": job.params.get("crs"), "encoding": job.params.get("encoding"),
        "update": update, "communes": job.params.get("communes"),
        "public_fields": job.params.get("public_fields"), "year": job.params.get("year"),
        **({"project": project} if project else {})})
    return job


def _commune_officer_scope(district: str, kind: str, update: bool,
                           communes: list[str]) -> list[str] | None:
    """None for a user who holds the whole district; for a commune officer (a planner
    scoped to today's communes, `gisportal.accounts.roles`) the former communes of
    the district they may correct, after refusing what they may not upload."""
    if district_scope(current_user, district):
        return None
    within = sorted(unit_communes(current_user, district))
    names = ", ".join(within)
    if kind != "parcels" or not update:
        raise PermissionDenied(
            f"cán bộ xã chỉ gửi được chỉnh lý địa chính của xã mình ({names}) / a commune "
            f"officer may only send cadastral corrections of their communes ({names})",
            where="kind, update", fix="choose parcels and 'update these communes', or ask "
                                      "a planner of the district for other layers")
    stray = sorted(set(c.strip() for c in communes) - set(within))
    if stray:
        raise PermissionDenied(
            f"xã {', '.join(stray)} không thuộc phạm vi của bạn / communes "
            f"{', '.join(stray)} are outside your scope ({names})",
            where="communes", fix=f"name only your communes: {names}")
    return within


def cancel_job(job: jobs.Job) -> jobs.Job:
    """Cancel a job the user may act on (a finished one is returned unchanged).

    Blocks while a running worker stops: up to the cancel grace period.
    """
    require(JOB_RIGHTS.get(job.kind, "upload"), job.district)
    if job.finished:
        return job
    audit_event("job.cancel", district=job.district, kind=job.layer,
                version=(job.result or {}).get("version") or job.params.get("version"),
                detail={"job": job.id, "job_kind": job.kind, "state": job.state})
    return jobs.cancel(get_home(), job.id, settings=settings())


# --------------------------------------------------------------------------- answers


def job_json(job: jobs.Job) -> dict[str, Any]:
    """A job for the API: its row, the names of its state and stage, and its links."""
    out = job.to_dict()
    out["labels"] = {"state": list(jobs.LABELS[f"job_state_{job.state}"]),
                     "stage": list(jobs.LABELS.get(f"job_stage_{job.stage}",
                                                   (job.stage, job.stage)))}
    links = {"self": url_for("planner_api.get_job", job_id=job.id),
             "page": url_for("planner.job_page", job_id=job.id)}
    version = (job.result or {}).get("version")
    if isinstance(version, int) and job.kind in ("ingest", "repair", "check"):
        links["review"] = url_for("planner_review.review", version_id=version)
    if job.kind in ("publish", "rollback") and job.state == "done":
        links["map"] = f"/districts/{job.district}"
    out["links"] = links
    return out


def wants_413(err: GisportalError) -> int:
    """The HTTP status of a refused upload: 413 for a file over the size limit."""
    return 413 if err.code == "FILE-TOO-BIG" else err.http_status


def form_values() -> dict[str, str]:
    """The upload form's text fields as sent (to fill the form again after a refusal)."""
    f = request.form
    return {"kind": f.get("kind", ""), "crs": f.get("crs", "")[:200],
            "encoding": f.get("encoding", ""), "source_layer": f.get("source_layer", "")[:200],
            "field": "\n".join(f.getlist("field"))[:2000], "repair": flag(f.get("repair")),
            "update": flag(f.get("update")), "communes": f.get("communes", "")[:200],
            "year": f.get("year", "")[:10]}


def queue_publish(version: Version, *, confirm_removals: bool, consultation: bool,
                  via: str) -> tuple[jobs.Job, workflow.PublishPreview]:
    """Check a draft as `workflow.publish` will, then queue its publication and audit it.

    Shared by the review page and ``POST /api/versions/<id>/publish``: the refusal (not a
    draft, errors, a plan without its decision, unconfirmed removals) is raised here, so
    the caller answers it at once instead of a failed job later; the worker checks again.
    """
    if version.status != "draft":
        raise StoreError(f"version {version.id} is {version.status}, not a draft",
                         where=f"district {version.district}, {version.kind}",
                         fix="a superseded version is published again by rolling back to it "
                             "from the history page", code="PUBLISH-NOT-DRAFT")
    workflow.check_publishable(version, consultation=consultation)
    store = get_store(primary=True)
    pre = workflow.preview(store, version.id, settings=settings())
    workflow.check_removals(pre, confirm_removals)
    current = workflow.published_of(store, version)
    job = jobs.submit_publish(get_home(), version.id, district=version.district,
                              layer=version.kind, actor=actor(),
                              confirm_removals=confirm_removals, consultation=consultation,
                              settings=settings())
    found = decisions.decision_of(version)
    audit_event("version.publish", district=version.district, kind=version.kind,
                version=version.id, decision=found.label() if found else None,
                detail={"job": job.id, "replacing": current.id if current else None,
                        "consultation": consultation, "confirm_removals": confirm_removals,
                        "via": via})
    return job, pre
