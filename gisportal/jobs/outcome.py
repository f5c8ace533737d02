"""The audit event of a finished job, recorded where the job ends.

The worker records ``job.done`` / ``job.failed`` / ``job.cancelled`` as it writes its
final state, and `reap` records the jobs whose worker died; both in the name of the
user who asked for the job. So the audit log knows every outcome even when nobody
looks at the job again. A failure to write the audit event never changes the job's
outcome: it is logged, and the job row keeps the outcome either way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gisportal.base import seeds
from gisportal.base.errors import GisportalError
from gisportal.jobs.model import Job
from gisportal.store.home import DataHome

__all__ = ["record_outcome"]

logger = logging.getLogger(__name__)


def _decision(home: DataHome, job: Job, version: Any) -> str | None:
    """The decision a published plan version carries (publish and rollback jobs)."""
    if job.kind not in ("publish", "rollback") or job.state != "done" or job.layer != "plan":
        return None
    from gisportal.services.decisions import decision_of  # (decisions imports the jobs package)
    from gisportal.store import open_store

    try:
        with open_store(home, crs=seeds.province()["crs"]) as store:
            found = decision_of(store.version(int(version)))
    except (GisportalError, TypeError, ValueError):
        return None
    return found.label() if found else None


def record_outcome(home: str | Path | DataHome, job: Job) -> None:
    """Append the audit event of ``job``, which has just finished."""
    home = DataHome.at(home)
    result = job.result or {}
    version = result.get("version") or job.params.get("version")
    detail: dict[str, Any] = {"job": job.id, "job_kind": job.kind}
    if job.state == "done":
        for key in ("previous", "features", "published"):
            if result.get(key) is not None:
                detail[key] = result[key]
        summary = result.get("summary") or {}
        if summary:
            detail["errors"] = summary.get("errors")
            detail["warnings"] = summary.get("warnings")
    elif job.error:
        detail["error"] = job.error.get("code")
    try:
        from gisportal.accounts import audit  # (in the try: under a job's memory limit
        #                                        even this import can fail)

        audit.record(home, job.actor, f"job.{job.state}", district=job.district,
                     kind=job.layer, version=version, decision=_decision(home, job, version),
                     detail=detail)
    except Exception:  # noqa: BLE001 - the outcome stands; say why the event is missing
        logger.exception("could not record the audit event of job %s", job.id)
