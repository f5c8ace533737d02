"""Background jobs: uploads validated and stored, versions published, off the web server.

A planner's 200 000-parcel upload takes a minute or more to read, validate, store and
(at publish) turn into tiles. The web layer therefore only *submits* a job and polls
it; the work runs in a worker process (:mod:`gisportal.jobs.worker`) started detached
from the web server, one process per job, so it never blocks a request, survives the
browser page being closed, and keeps every write to the store out of the web process
(see :mod:`gisportal.jobs.process` for why that matters).

The life of a job::

    submit_upload / submit_publish / ...   → row in ``jobs`` (catalogue.sqlite), queued
    dispatch (called by submit, by a finishing worker, by cancel, at start-up)
        → at most ``job_workers`` jobs run at once; the oldest queued ones start
    worker: claims its row, runs the pipeline, writes progress (stage, percent) into
        the row a few times a second at most, saves the validation report next to the
        upload, records the result or the error, then starts the next queued job
    cancel: SIGTERM to the worker's process group, SIGKILL after a grace period
    limits: the worker runs under ``job_memory_mb`` of address space and stops itself
        after ``job_timeout_seconds`` (see :mod:`gisportal.jobs.limits`)
    reap: a running job whose worker is gone is marked failed ("interrupted", or out
        of memory / over its time when that is what happened); one still alive long
        past its time is killed first. `get`, `list_jobs` and `dispatch` reap.

Nothing here needs a long-running thread in the web server: a finishing worker starts
the next queued job itself, and `startup` (called when the app starts) reaps jobs
interrupted by a reboot and starts what was queued.

Across nodes (production mode, issue 12; docs/design.md "Jobs across nodes"): the
``jobs`` table is in the shared PostgreSQL database, ``job_runner`` is ``external``
and `dispatch` starts nothing: ``gisportal worker`` processes on any node claim queued
jobs in one statement (:mod:`gisportal.jobs.runner`), every worker refreshes its job's
heartbeat, and `reap` re-queues a job whose heartbeat went stale (its node died) for
another worker, up to ``job_max_attempts`` runs; the re-run is idempotent.

Files under the data home::

    uploads/<job id>/<file name>          the upload, as received (kept: versions
                                          trace back to it by sha256)
    uploads/<job id>/report.json|.geojson|.html   its validation report
    jobs/<job id>.lock, jobs/<job id>.log the worker's liveness lock and its output
    tmp/                                  scratch of running workers (see
                                          :mod:`gisportal.jobs.housekeeping`)

``uploads/`` is the upload area (`gisportal.store.home.DataHome.upload_area`): with S3
file areas (setting ``files``) the same keys live under ``<prefix>/uploads/`` of the
bucket, the upload is received into the node's scratch, checked, then PUT, and the
worker fetches it into its scratch to read it. Job rows record ``uploads/<job>/<name>``
either way. Locks and logs stay on the node that runs the worker.

This package imports nothing heavy at module level (the worker sets its signal mask
before numpy and GDAL start their threads).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from gisportal.base import files
from gisportal.base.errors import GisportalError, NotFoundError, UsageError
from gisportal.base.settings import load_settings
from gisportal.jobs import limits, process, table
from gisportal.jobs.model import FINAL_STATES, KINDS, LABELS, STAGES, STATES, Job, utc_now
from gisportal.jobs.outcome import record_outcome
from gisportal.store import catalogue
from gisportal.store.home import DataHome, scratch_prefix

__all__ = [
    "FINAL_STATES",
    "KINDS",
    "LABELS",
    "STAGES",
    "STATES",
    "Job",
    "cancel",
    "dispatch",
    "end_dead_worker",
    "get",
    "list_jobs",
    "reap",
    "report_file",
    "report_key",
    "startup",
    "submit",
    "submit_publish",
    "submit_repair",
    "submit_rollback",
    "submit_upload",
    "wait",
]

logger = logging.getLogger(__name__)

#: Report files a finished check/ingest/repair job leaves next to its upload.
REPORTS: dict[str, str] = {"json": "report.json", "geojson": "report.geojson",
                           "html": "report.html"}
#: Seconds `cancel` waits for a worker to stop on SIGTERM before it sends SIGKILL.
CANCEL_GRACE = 5.0


def _settings(home: str | Path | DataHome, settings: Mapping[str, Any] | None,
              ) -> dict[str, Any]:
    """Full settings with ``home`` set to `home`: a `DataHome`'s own settings (the app's,
    the CLI's) or the environment's, then the caller's overrides."""
    known = home.settings if isinstance(home, DataHome) else load_settings()
    out = {**known, **settings} if settings is not None else dict(known)
    out["home"] = str(Path(home))
    return out


def _home(home: str | Path | DataHome) -> DataHome:
    """The data home `home` names, kept as given when it is a `DataHome`: the jobs table
    is in the database *its* settings name, which may not be the environment's (an app
    made with ``create_app({"database": ...})``, the CLI's ``--database``)."""
    return DataHome.at(home)


def _check(kind: str, district: str, layer: str, actor: str) -> tuple[str, str, str, str]:
    # Heavy imports (pandas, GDAL) stay out of module level: see the module docstring.
    from gisportal.base.seeds import district_code
    from gisportal.store.base import KINDS as DISTRICT_LAYERS
    from gisportal.store.base import PROJECT_KINDS

    # A planning project's layers are jobs of its district (params name the project).
    layers = DISTRICT_LAYERS + PROJECT_KINDS
    if kind not in KINDS:
        raise UsageError(f"unknown job kind {kind!r}", where="kind",
                         fix="Use one of: " + ", ".join(KINDS))
    if layer not in layers:
        raise UsageError(f"unknown layer kind {layer!r}", where="layer",
                         fix="Use one of: " + ", ".join(layers))
    if not isinstance(actor, str) or not actor.strip():
        raise UsageError("a job needs the user who asks for it", where="actor",
                         fix="Pass the logged-in user's name")
    code = district_code(district) if district else None
    if code is None:
        raise UsageError("a job needs the district it concerns", where="district",
                         fix="Pass the GSO district code, e.g. 678")
    return kind, code, layer, actor.strip()


# --------------------------------------------------------------------------- submitting


def submit(home: str | Path | DataHome, kind: str, *, district: str, layer: str, actor: str,
           params: Mapping[str, Any] | None = None,
           settings: Mapping[str, Any] | None = None, start: bool = True) -> Job:
    """Queue a job and (with `start`) start it if a worker slot is free.

    Prefer the helpers (`submit_upload`, `submit_repair`, `submit_publish`,
    `submit_rollback`), which build `params` and check them.

    Raises
    ------
    UsageError
        Unknown job kind, layer kind or district code, or no actor.
    """
    home = _home(home)
    kind, district, layer, actor = _check(kind, district, layer, actor)
    job_limits = limits.Limits.from_settings(_settings(home, settings)).to_dict()
    with table.connect(home) as conn, table.transaction(conn):
        job_id = table.insert(conn, kind=kind, district=district, layer=layer, actor=actor,
                              params=dict(params or {}), limits=job_limits)
    if start:
        dispatch(home, settings)
    return get(home, job_id)


def submit_upload(home: str | Path | DataHome, stream: BinaryIO, filename: str | None, *,
                  district: str, layer: str, actor: str, kind: str = "ingest",
                  crs: str | None = None, encoding: str | None = None,
                  source_layer: str | None = None, fields: Mapping[str, str] | None = None,
                  repair: bool = False, publish: bool = False, update: bool = False,
                  communes: Sequence[str] | None = None,
                  public_fields: Sequence[str] | None = None,
                  confirm_removals: bool = False, year: int | str | None = None,
                  within: Sequence[str] | None = None, project: str | None = None,
                  settings: Mapping[str, Any] | None = None, start: bool = True) -> Job:
    """Save an uploaded file under ``uploads/<job id>/`` and queue a job on it.

    Parameters
    ----------
    stream
        A binary file object (a werkzeug ``FileStorage.stream``, an open file); read
        in chunks until it ends, never whole.
    filename
        The name the planner's file had; made safe with `files.safe_file_name`.
    kind
        ``"ingest"`` (store a draft version, the default) or ``"check"`` (validate and
        report only).
    crs, encoding, source_layer, fields
        Overrides as on the command line (``--crs``, ``--encoding``, ``--layer``,
        ``--field``), checked here so a typo is refused before the upload is queued.
    repair
        Repair geometry before validating (never the default).
    publish
        Publish the new version once stored when it has no errors and, for a plan, an
        approval decision (which a new upload cannot have yet: plans are published
        from their review page).
    update, communes
        Parcels: replace only the communes the file covers in the published layer
        (`gisportal.services.commune_update`); ``communes`` names them when the file has no
        commune column.
    public_fields
        Source columns the planner marks public (`gisportal.outputs.privacy.mark_public`).
    confirm_removals
        With ``publish``: publish even if more than the threshold of the published
        features would be removed.
    year
        Annual plans: the plan year of the features that carry none (``--year``),
        checked here like the other overrides.
    within
        A commune officer's upload (`gisportal.accounts.roles`): the former communes
        it may replace; it must be an update, and the update refuses any other commune
        the file holds (``UPDATE-OUTSIDE-SCOPE``).
    project
        The planning project whose lots or red lines the file holds (needed for those
        kinds, refused for a district's own); its district is the job's.

    Raises
    ------
    InputError
        The upload is empty, over ``max_upload_bytes`` or not a GIS file.
    UsageError
        A bad district, layer kind, CRS, encoding or field override.
    """
    if kind not in ("ingest", "check"):
        raise UsageError(f"an upload is checked or ingested, not {kind!r}", where="kind",
                         fix="Use kind='ingest' or kind='check'")
    home = _home(home)
    conf = _settings(home, settings)
    kind, district, layer, actor = _check(kind, district, layer, actor)
    project = _check_project(layer, project)
    overrides = _check_overrides(crs, encoding, fields)
    from gisportal.pipeline.annual import check_year_option

    overrides["year"] = check_year_option(year, layer)
    from gisportal.services.commune_update import check_commune_codes

    codes = [*check_commune_codes(communes)]  # (this module names list_jobs "list")
    if codes and not update:
        raise UsageError("communes name the communes of an update", where="communes",
                         fix="Choose 'update these communes', or leave the communes out")
    if update and layer != "parcels":
        raise UsageError(f"an update replaces communes of a cadastre, not of a {layer} layer",
                         where="update", fix="Upload the whole layer without update",
                         code="UPDATE-NOT-PARCELS")
    scope = None if within is None else [*check_commune_codes(within)]
    if scope is not None and (not update or publish):
        raise UsageError("an upload limited to some communes is an update, published by "
                         "the district", where="within",
                         fix="Send it as an update of those communes, without publish")
    # Imported here: it loads numpy, whose threads must start after a worker's signal mask.
    from gisportal.jobs import uploads

    name = files.safe_file_name(filename)
    if name in REPORTS.values():  # the report files share the folder
        name = f"upload-{name}"
    data_home = DataHome(conf)
    area = data_home.upload_area
    if area.remote:
        # Received in this node's scratch (checked there: sniffing a zip needs seeks),
        # then PUT; a killed process's copy is found by its pid like all scratch.
        incoming = data_home.scratch / f"{scratch_prefix('upload')}{uuid.uuid4().hex}"
    else:  # beside its final place, so storing it is a rename
        root = data_home.uploads
        root.mkdir(parents=True, exist_ok=True)
        incoming = root / f".incoming-{uuid.uuid4().hex}"
    incoming.mkdir()
    stored: int | None = None  # the job whose upload is in the area
    try:
        path = incoming / name
        size = files.save_stream(stream, path, max_bytes=int(conf["max_upload_bytes"]),
                                 label=name)
        fmt = uploads.check_gis_file(path, name)
        params = {"upload": None, "upload_name": name, "upload_bytes": size, "format": fmt,
                  "source_layer": source_layer, "repair": bool(repair),
                  "publish": bool(publish), "update": bool(update), "communes": codes,
                  "public_fields": [str(n) for n in public_fields or ()],
                  "confirm_removals": bool(confirm_removals), **overrides}
        if scope is not None:
            params["within"] = scope
        if project is not None:
            params["project"] = project
        with table.connect(home) as conn, table.transaction(conn):
            # Queued, stored and pointed at in one transaction: no dispatcher can see
            # the job before its file is in place. (With S3 the PUT of the upload runs
            # inside it: seconds for a large file on a LAN, during which other catalogue
            # writers wait; the key needs the job id, and S3 has no rename.)
            job_id = table.insert(conn, kind=kind, district=district, layer=layer,
                                  actor=actor, params=params,
                                  limits=limits.Limits.from_settings(conf).to_dict())
            key = DataHome.upload_key(job_id, name)
            area.put_file(key, path, move=True)
            stored = job_id
            params["upload"] = DataHome.upload_relative(key)
            table.update(conn, job_id, params=params)
    except BaseException:
        uploads.remove_folder(incoming)
        if stored is not None:  # stored, then the commit failed
            area.delete_prefix(DataHome.upload_key(stored))
        raise
    uploads.remove_folder(incoming)
    if start:
        dispatch(home, conf)
    return get(home, job_id)


def _check_overrides(crs: str | None, encoding: str | None,
                     fields: Mapping[str, str] | None) -> dict[str, Any]:
    from gisportal.base.crs import parse_crs
    from gisportal.pipeline.read.encodings import canonical_name

    out: dict[str, Any] = {"crs": None, "encoding": None, "fields": None}
    if crs is not None and str(crs).strip():
        parse_crs(str(crs))  # CRSError with its hint
        out["crs"] = str(crs).strip()
    if encoding is not None and str(encoding).strip():
        out["encoding"] = canonical_name(str(encoding))
    if fields:
        clean = {str(k).strip(): str(v).strip() for k, v in fields.items()}
        if any(not k or not v for k, v in clean.items()):
            raise UsageError("a field override needs a field and a column", where="fields",
                             fix="Give pairs such as sheet=SO_TO")
        out["fields"] = clean
    return out


def submit_repair(home: str | Path | DataHome, job_id: int, *, actor: str, publish: bool = False,
                  settings: Mapping[str, Any] | None = None, start: bool = True) -> Job:
    """Queue an ingest of an earlier job's upload with geometry repair.

    The planner saw the report of job `job_id` and chose to repair: the same file, with
    the same overrides, is ingested again with ``repair`` on, giving a new draft whose
    report lists every change. The upload is not copied.
    """
    home = _home(home)
    earlier = get(home, job_id)
    if earlier.kind not in ("check", "ingest", "repair") or not earlier.params.get("upload"):
        raise UsageError(f"job {earlier.id} has no uploaded file to repair", where="job",
                         fix="Choose the job of the upload whose report you read")
    params = {k: earlier.params.get(k) for k in (
        "upload", "upload_name", "upload_bytes", "format", "source_layer", "crs",
        "encoding", "fields", "update", "communes", "public_fields", "year")}
    params.update(repair=True, publish=bool(publish), repair_of=earlier.id)
    return submit(home, "repair", district=earlier.district, layer=earlier.layer,
                  actor=actor, params=params, settings=settings, start=start)


def submit_publish(home: str | Path | DataHome, version_id: int, *, district: str, layer: str,
                   actor: str, confirm_removals: bool = False, consultation: bool = False,
                   settings: Mapping[str, Any] | None = None, start: bool = True) -> Job:
    """Queue the publication of a stored version (tiles first, then the pointer).

    The worker runs :func:`gisportal.services.workflow.publish`: it refuses a version with
    errors, a plan without an approval decision (unless ``consultation``: a draft for
    comment), removals beyond the threshold without ``confirm_removals``, or a version
    of another layer than (`district`, `layer`); the refusal is the job's error.
    """
    return submit(home, "publish", district=district, layer=layer, actor=actor,
                  params={"version": _version_id(version_id),
                          "confirm_removals": bool(confirm_removals),
                          "consultation": bool(consultation)},
                  settings=settings, start=start)


def submit_rollback(home: str | Path | DataHome, to_version: int, *, district: str, layer: str,
                    actor: str, confirm_removals: bool = False, project: str | None = None,
                    settings: Mapping[str, Any] | None = None, start: bool = True) -> Job:
    """Queue a roll back of (`district`, `layer`), or of a `project`'s layer, to an
    earlier published version."""
    params: dict[str, Any] = {"version": _version_id(to_version),
                              "confirm_removals": bool(confirm_removals)}
    if _check_project(layer, project) is not None:
        params["project"] = project
    return submit(home, "rollback", district=district, layer=layer, actor=actor,
                  params=params, settings=settings, start=start)


def _check_project(layer: str, project: str | None) -> str | None:
    """A job's project, checked against its layer kind (`store.base.check_layer`)."""
    from gisportal.store.base import check_layer

    return check_layer(layer, project)[1]


def _version_id(value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{value!r} is not a version number", where="version",
                         fix="Give the number of a stored version") from None


# --------------------------------------------------------------------------- reading


def get(home: str | Path | DataHome, job_id: int) -> Job:
    """The job with this id; NotFoundError if there is none.

    A running job is reaped first, as listing does: a job whose worker was killed must
    not answer ``running`` to the page polling it until someone lists the jobs.
    """
    home = _home(home)
    with table.connect(home) as conn:
        job = table.fetch(conn, job_id)
    if job.state == "running" and job.id in _reap_and_go_on(home):
        with table.connect(home) as conn:
            job = table.fetch(conn, job_id)
    return job


def list_jobs(home: str | Path | DataHome, district: str | None = None, *, layer: str | None = None,
              state: str | list[str] | None = None, actor: str | None = None,
              limit: int = 100) -> list[Job]:
    """Jobs, newest first, optionally of one district / layer / state / actor.

    Reaps first, so a job whose worker died shows as failed rather than running forever.
    """
    home = _home(home)
    _reap_and_go_on(home)
    states = [state] if isinstance(state, str) else state
    with table.connect(home) as conn:
        return table.fetch_many(conn, district=district, layer=layer, states=states,
                                actor=actor, limit=limit)


#: ``jobs.list(home, ...)`` reads as the brief for the web layer asks; same function.
list = list_jobs  # noqa: A001


def report_key(home: str | Path | DataHome, job: Job | int, which: str) -> str:
    """The upload-area key of a finished job's report (``json``, ``geojson``, ``html``).

    For the review page to serve (from ``home.upload_area``, a folder or S3); the key
    comes from the job row but must be exactly the job's own report key, so a tampered
    row cannot serve another file.

    Raises
    ------
    NotFoundError
        Unknown report kind, the job has no such report (not finished, failed before
        validating, a publish job), or the file is gone.
    """
    data_home = DataHome.at(home)
    job = job if isinstance(job, Job) else get(data_home, job)
    if which not in REPORTS:
        raise NotFoundError(f"no report format {which!r}", where="report",
                            fix="Use one of: " + ", ".join(REPORTS), code="REPORT-UNKNOWN")
    rel = ((job.result or {}).get("reports") or {}).get(which)
    key = DataHome.upload_key(job.id, REPORTS[which])
    if rel != DataHome.upload_relative(key) or not data_home.upload_area.exists(key):
        raise NotFoundError(f"job {job.id} has no {which} report", where=f"job {job.id}",
                            fix="Wait until the job has finished validating the upload",
                            code="REPORT-MISSING")
    return key


def report_file(home: str | Path | DataHome, job: Job | int, which: str) -> Path:
    """The local file of a finished job's report, for a folder upload area (embedded
    mode; code that must work with S3 uses `report_key` and ``home.upload_area``).

    Raises
    ------
    NotFoundError
        As `report_key`, and when the upload area is not a folder.
    """
    data_home = DataHome.at(home)
    key = report_key(data_home, job, which)
    path = data_home.upload_area.local_file(key)
    if path is None:
        raise NotFoundError(f"the {which} report is kept in object storage",
                            where=data_home.upload_area.describe(key),
                            fix="Read it through the upload area (jobs.report_key)",
                            code="REPORT-MISSING")
    return path


# --------------------------------------------------------------------------- running


def dispatch(home: str | Path | DataHome, settings: Mapping[str, Any] | None = None) -> list[int]:
    """Start the oldest queued jobs while fewer than ``job_workers`` run; their ids.

    Called after every submit, by each worker as it finishes, after a cancel and at
    start-up. One catalogue transaction decides and records which jobs start, so two
    dispatchers (the web server and a finishing worker) never overfill the slots.

    With ``job_runner`` external (the production default) it only reaps: the
    ``gisportal worker`` processes claim queued jobs themselves (`gisportal.jobs.runner`).
    """
    home = _home(home)
    conf = _settings(home, settings)
    reap(home, conf)
    if process.runner(conf) != "spawn":
        return []
    node = process.node_name(conf)
    with table.connect(home) as conn:
        if conn.execute("SELECT 1 FROM jobs WHERE state = 'queued' LIMIT 1").fetchone() is None:
            return []  # the common case takes no write lock
    slots = max(1, int(conf["job_workers"]))
    started: list[int] = []
    with table.connect(home) as conn, table.transaction(conn):
        # PostgreSQL: web nodes dispatching at once take turns (SQLite's BEGIN IMMEDIATE
        # already does), so they neither overfill the slots nor pick the same job.
        catalogue.lock(conn, "jobs dispatch")
        running = conn.execute("SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0]
        ready = [r[0] for r in conn.execute(
            "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?",
            (max(0, slots - running),))]
        for job_id in ready:
            # The lock is taken before the job is marked running and handed to the
            # worker, so no reaper ever sees a running job without a live lock holder.
            fd = process.hold_lock(home, job_id)
            try:
                pid = process.spawn(home, job_id, fd, conf)
            except OSError as exc:
                table.update(conn, job_id, state="failed", finished_at=utc_now(),
                             message="could not start", error=_error_dict(GisportalError(
                                 f"could not start a worker process: {exc}",
                                 where=f"job {job_id}", fix="Ask the administrator to check "
                                 "the server (memory, process limits)", code="JOB-SPAWN")))
                continue
            finally:
                os.close(fd)  # the worker holds its own copy of the locked descriptor
            if table.mark_spawned(conn, job_id, node=node, pid=pid):
                started.append(job_id)  # (else its worker finds the row not its own, exits)
    return started


def reap(home: str | Path | DataHome, settings: Mapping[str, Any] | None = None) -> list[int]:
    """Mark running jobs whose worker is gone; kill those long past their time first.

    Two rules (see :mod:`gisportal.jobs.process` for why both): a job this node's
    dispatcher spawned is judged by its lock file, at once, as below; any other running
    job (claimed by a ``gisportal worker``, or spawned on another node) by its
    heartbeat — older than ``job_stale_seconds``, it is re-queued for another worker
    (`_requeue_stale`), up to ``job_max_attempts`` runs.

    A worker killed by the system, a reboot or a bug leaves its row running; the store
    removes what the worker left half-written the next time it is opened (every worker
    opens it, so `dispatch` after `reap` cleans up too), and the worker's scratch is
    removed here. The job fails with what most likely happened: over its time limit,
    out of memory (the end of its log shows an allocation that failed), or else
    "interrupted"; a cancelled one is marked cancelled. A worker still alive
    `limits.TIMEOUT_GRACE` seconds after its time limit is wedged where its own alarm
    cannot stop it (in C code): its process group is killed. Returns the ids reaped.
    """
    home = _home(home)
    conf = _settings(home, settings)
    node = process.node_name(conf)
    reaped: list[int] = []
    with table.connect(home) as conn:
        rows = conn.execute("SELECT id, pid, cancel_requested_at, started_at, limits, node, "
                            "runner FROM jobs WHERE state = 'running'").fetchall()
        if not rows:
            return reaped
        fallback: limits.Limits | None = None
        for job_id, pid, cancel_requested, started_at, limits_json, row_node, runner in rows:
            if (runner or "spawn") != "spawn" or (row_node or node) != node:
                continue  # judged by its heartbeat, below
            if limits_json is None and fallback is None:
                fallback = limits.Limits.from_settings(load_settings())
            lim = limits.Limits.from_dict(json.loads(limits_json) if limits_json else None,
                                          fallback or limits.Limits())
            elapsed = _seconds_since(started_at)
            overdue = bool(lim.timeout_seconds) and elapsed is not None and \
                elapsed > lim.timeout_seconds + limits.TIMEOUT_GRACE
            if process.is_alive(home, job_id):
                if not overdue or pid is None:
                    continue
                logger.warning("job %s is %.0f s past its %s s limit: killing its worker",
                               job_id, elapsed, lim.timeout_seconds)
                process.signal_group(pid, signal.SIGKILL)
                if not _wait_dead(home, job_id, 10.0):
                    continue  # the next reap tries again
            if _mark_dead(home, conn, job_id, pid, bool(cancel_requested), lim, elapsed):
                reaped.append(job_id)
        reaped.extend(_requeue_stale(home, conn, conf, node))
    return reaped


def _limits_of(limits_json: str | None) -> limits.Limits:
    fallback = limits.Limits.from_settings(load_settings()) if limits_json is None \
        else limits.Limits()
    return limits.Limits.from_dict(json.loads(limits_json) if limits_json else None, fallback)


def _mark_dead(home: DataHome, conn: Any, job_id: int, pid: int | None, cancel_requested: bool,
               lim: limits.Limits, elapsed: float | None) -> bool:
    """Record the end of a running job whose worker process is known dead on this node:
    cancelled if that was asked, else failed with the likely cause (`_death`); its lock
    file and scratch go, the audit log hears of it. False if the row changed meanwhile."""
    now = utc_now()
    with table.transaction(conn):
        if cancel_requested:
            changed = table.update(conn, job_id, only_if_state="running",
                                   only_if_pid=pid, state="cancelled",
                                   message="cancelled", finished_at=now)
        else:
            err, message = _death(home, job_id, pid, lim, elapsed)
            changed = table.update(
                conn, job_id, only_if_state="running", only_if_pid=pid,
                state="failed", message=message, finished_at=now,
                error=_error_dict(err))
    if changed:
        _log_reaped(home, job_id, table.fetch(conn, job_id))
        process.lock_path(home, job_id).unlink(missing_ok=True)
        from gisportal.jobs import housekeeping

        housekeeping.remove_owned_by(home, pid)
        record_outcome(home, table.fetch(conn, job_id))
    return changed


def end_dead_worker(home: str | Path | DataHome, node: str, pid: int) -> Job | None:
    """The job of a ``gisportal worker`` child that exited without recording its end
    (killed by the system, or by its supervisor past its time), marked as `reap` marks a
    dead spawned worker's; the job it last ran if it had recorded its end; None if it
    claimed nothing. Called by `gisportal.jobs.runner` as each child exits.
    """
    home = _home(home)
    with table.connect(home) as conn:
        row = conn.execute("SELECT id, state, cancel_requested_at, started_at, limits "
                           "FROM jobs WHERE node = ? AND pid = ? ORDER BY id DESC LIMIT 1",
                           (node, pid)).fetchone()
        if row is None:
            return None
        job_id, state, cancel_requested, started_at, limits_json = row
        if state == "running":
            _mark_dead(home, conn, job_id, pid, bool(cancel_requested),
                       _limits_of(limits_json), _seconds_since(started_at))
        return table.fetch(conn, job_id)


def overdue_workers(home: str | Path | DataHome, node: str, pids: Sequence[int]) -> list[int]:
    """Pids among `pids` (``gisportal worker`` children on `node`) whose job is past its
    time limit and its grace: wedged where their own alarm cannot stop them."""
    if not pids:
        return []
    home = _home(home)
    with table.connect(home) as conn:
        rows = conn.execute(
            f"SELECT pid, started_at, limits FROM jobs WHERE state = 'running' AND node = ? "
            f"AND pid IN ({', '.join('?' * len(pids))})", (node, *pids)).fetchall()
    out = []
    for pid, started_at, limits_json in rows:
        lim, elapsed = _limits_of(limits_json), _seconds_since(started_at)
        if lim.timeout_seconds and elapsed is not None and \
                elapsed > lim.timeout_seconds + limits.TIMEOUT_GRACE:
            out.append(int(pid))
    return out


def _requeue_stale(home: DataHome, conn: Any, conf: Mapping[str, Any], node: str) -> list[int]:
    """Re-queue running jobs whose heartbeat is older than ``job_stale_seconds``.

    Their node is taken as gone (a killed ``gisportal worker``, a node powered off):
    the job goes back to the queue with its attempt count, and the next claim runs it
    again — idempotently, see :mod:`gisportal.jobs.worker`. A job that has had
    ``job_max_attempts`` runs fails instead (JOB-ABANDONED: something about it, or
    the nodes, keeps killing its workers); one whose cancel was asked is cancelled.
    The selection and the updates run in one write transaction, and each update is
    conditional on the heartbeat still being stale, so a worker that beats meanwhile
    keeps its job.
    """
    stale_s = max(1, int(conf.get("job_stale_seconds") or 60))
    max_attempts = max(1, int(conf.get("job_max_attempts") or 1))
    changed: list[int] = []
    ended: list[Job] = []
    if not table.stale(conn, stale_s, local_node=node):
        return changed  # the common case takes no write lock
    with table.transaction(conn):
        for job in table.stale(conn, stale_s, local_node=node):
            claim = (str(job.node), int(job.pid or 0), job.attempt)
            now = utc_now()
            if job.cancel_requested_at:
                done = table.update(conn, job.id, only_if_state="running",
                                    only_if_claim=claim, state="cancelled",
                                    message="cancelled", finished_at=now)
            elif job.attempt >= max_attempts:
                logger.warning("job %s: worker %s on %s silent for %s s, attempt %s of %s: "
                               "abandoned", job.id, job.pid, job.node, stale_s, job.attempt,
                               max_attempts)
                done = table.update(
                    conn, job.id, only_if_state="running", only_if_claim=claim,
                    state="failed", message="abandoned", finished_at=now,
                    error=_error_dict(GisportalError(
                        f"the job was abandoned: its worker stopped sending heartbeats "
                        f"{job.attempt} times without finishing",
                        where=f"job {job.id}, stage {job.stage}",
                        fix="Submit the job again; if it is abandoned again, ask the "
                            "administrator to look at the worker nodes' logs (memory, "
                            "restarts; settings job_stale_seconds, job_max_attempts)",
                        code="JOB-ABANDONED")))
            else:
                done = table.requeue_if_stale(
                    conn, job, stale_s,
                    f"re-queued: its worker stopped sending heartbeats "
                    f"(attempt {job.attempt} of {max_attempts})")
                if done:
                    logger.warning("job %s: worker %s on %s silent for %s s, re-queued",
                                   job.id, job.pid, job.node, stale_s)
            if done:
                changed.append(job.id)
                if job.cancel_requested_at or job.attempt >= max_attempts:
                    ended.append(job)
    for job in ended:
        if job.node == node:
            from gisportal.jobs import housekeeping

            housekeeping.remove_owned_by(home, job.pid)
        record_outcome(home, table.fetch(conn, job.id))
    return changed


def _log_reaped(home: DataHome, job_id: int, job: Job | None) -> None:
    """Say in the job's log how the reaper ended it: the worker could not (it died, or
    was killed past its time), and the log is where the administrator looks."""
    if job is None:
        return
    what = (job.error or {}).get("what") or job.message
    try:
        with open(process.log_path(home, job_id), "a", encoding="utf-8") as fh:
            fh.write(f"{utc_now()} reaped: {job.state}: {what}\n")
    except OSError:
        logger.warning("could not write the log of job %s", job_id)


def _reap_and_go_on(home: DataHome) -> list[int]:
    """`reap`, then start what was queued behind the jobs reaped: a dead worker never
    started the next job itself. A failure to start one never fails the read."""
    reaped = reap(home)
    if reaped:
        try:
            dispatch(home)
        except (sqlite3.Error, OSError, GisportalError):
            logger.exception("could not start queued jobs in %s", home)
    return reaped


def _seconds_since(stamp: str | None) -> float | None:
    """Seconds since a row's UTC timestamp (``2024-05-01T08:00:00Z``), or None."""
    from datetime import UTC, datetime

    try:
        then = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (datetime.now(UTC) - then).total_seconds()


def _death(home: DataHome, job_id: int, pid: int | None, lim: limits.Limits,
           elapsed: float | None) -> tuple[GisportalError, str]:
    """Why a worker died without recording its job's end, as best the reaper can tell."""
    log = process.log_path(home, job_id)
    where = f"job {job_id}, process {pid} (log: {log.relative_to(home)})"
    if lim.timeout_seconds and elapsed is not None and elapsed >= lim.timeout_seconds:
        return limits.timeout_error(lim.timeout_seconds, where), "timed out"
    if limits.log_says_out_of_memory(log):
        return limits.out_of_memory_error(lim.memory_mb, where), "out of memory"
    limit = f"limit {lim.memory_mb} MB" if lim.memory_mb else "no limit set"
    return GisportalError(
        "the job was interrupted: its worker process stopped before finishing",
        where=where, fix="Submit the job again; the store keeps nothing half-written. If it "
        "stops again, the server may be short of memory: ask the administrator "
        f"({limit}, setting job_memory_mb)", code="JOB-INTERRUPTED"), "interrupted"


def cancel(home: str | Path | DataHome, job_id: int, *, grace: float = CANCEL_GRACE,
           settings: Mapping[str, Any] | None = None) -> Job:
    """Cancel a job: a queued one at once, a running one by stopping its worker.

    The worker's process group gets SIGTERM; the worker stops at its next Python step,
    lets the store discard a half-written version, and records ``cancelled`` (with the
    version, if one was already stored as a draft). A worker inside a long C call
    (GDAL writing tiles) gets SIGKILL after `grace` seconds; the store's crash recovery
    removes what it left. Publishing's pointer flip is never interrupted half-way: it
    is one SQLite transaction. A finished job is returned unchanged.

    Blocks at most about `grace` seconds plus the time a killed process takes to die.
    """
    home = _home(home)
    with table.connect(home) as conn, table.transaction(conn):
        job = table.fetch(conn, job_id)
        if job.finished:
            return job
        now = utc_now()
        if job.state == "queued":
            changed = table.update(conn, job.id, only_if_state="queued", state="cancelled",
                                   message="cancelled before it started",
                                   cancel_requested_at=now, finished_at=now)
            job = table.fetch(conn, job.id)
        else:
            changed = False
            table.update(conn, job.id, only_if_state="running", cancel_requested_at=now,
                         message="cancelling")
    if job.finished:  # a queued job, cancelled before any worker took it
        if changed:
            record_outcome(home, job)
        return job
    conf = _settings(home, settings)
    local = (job.node or process.node_name(conf)) == process.node_name(conf)
    if local and job.pid is not None and process.is_alive(home, job.id):
        process.signal_group(job.pid, signal.SIGTERM)
        if not _wait_dead(home, job.id, grace):
            process.signal_group(job.pid, signal.SIGKILL)
            _wait_dead(home, job.id, 30.0)
    elif not local:
        # A worker on another node: its heartbeat brings it the cancel (the row says
        # so), and it stops as for a SIGTERM. Wait for it as long as a local one.
        deadline = time.monotonic() + grace + float(conf.get("job_heartbeat_seconds") or 0)
        while time.monotonic() < deadline and not get(home, job.id).finished:
            time.sleep(0.1)
    reap(home, conf)
    dispatch(home, settings)
    return get(home, job.id)


def _wait_dead(home: DataHome, job_id: int, seconds: float) -> bool:
    """Poll the job's lock until its worker is gone (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while process.is_alive(home, job_id):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def wait(home: str | Path | DataHome, job_id: int, timeout: float = 600.0, *,
         poll: float = 0.2) -> Job:
    """Poll until the job is finished or `timeout` seconds pass; the job as it is then.

    For the command line and tests; the web page polls `get` from the browser instead.
    """
    home = _home(home)
    deadline = time.monotonic() + timeout
    while True:
        job = get(home, job_id)
        if job.finished or time.monotonic() >= deadline:
            return job
        if job.state == "running" and not process.is_alive(home, job.id) and reap(home):
            continue
        time.sleep(poll)


def startup(home: str | Path | DataHome, settings: Mapping[str, Any] | None = None) -> list[int]:
    """At application start: reap jobs a restart interrupted, start queued ones.

    Never stops the portal from starting: residents' pages do not need jobs, so a
    failure here (a locked catalogue, no process slots) is logged and the next submit
    or listing tries again.
    """
    try:
        return dispatch(home, settings)
    except (sqlite3.Error, OSError, GisportalError):
        logger.exception("could not reap or start background jobs in %s", home)
        return []


def _error_dict(err: GisportalError) -> dict[str, str]:
    return err.to_dict()
