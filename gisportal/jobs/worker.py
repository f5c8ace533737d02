"""The worker process of one job: ``python -m gisportal.jobs.worker HOME JOB_ID``.

Started by :func:`gisportal.jobs.dispatch`, never by hand. It claims its job row (the
dispatcher recorded this process's pid in the same transaction that queued it to run),
runs the pipeline with a progress callback that writes the stage into the row, saves
the validation report next to the upload, records the result or the error, then starts
the next queued job and exits.

``python -m gisportal.jobs.worker HOME --claim`` is the same worker started by
``gisportal worker`` (:mod:`gisportal.jobs.runner`): it claims the oldest queued job
itself (`gisportal.jobs.table.claim_next`), runs it, and exits without starting another
(its ``gisportal worker`` does). Either way a thread refreshes the row's heartbeat every
``job_heartbeat_seconds``; when the row is no longer this worker's (re-queued after a
stale heartbeat, and maybe claimed elsewhere) the worker stops and writes nothing, and a
cancel asked on any node reaches it through the row. SIGUSR2 (its ``gisportal worker``
stopping) hands the job back to the queue.

Re-runs are idempotent: a job re-queued after its node died may already have stored its
version (the worker was killed while writing the report, say). The version is found
again — the id the first run recorded in the job's result, or the version whose meta
names the job — and reused: the upload is validated again for its report, and nothing
is stored twice. A publish re-run publishes the same version, which the store treats
as a no-op once it is published.

Cancelling: the web process sends SIGTERM to this process's group. The handler raises
`JobCancelled` in the main thread at the next Python step, so the store discards a
half-written version itself (``add_version`` cleans up on any exception) and tile
building removes its temporary file. The one step that is never interrupted is moving
the published pointer (stage ``publish``): a SIGTERM there is remembered and the job
finishes. A SIGKILL (after the cancel's grace period, or from the system) leaves what
the store's crash recovery removes the next time a store is opened.

Limits (:mod:`gisportal.jobs.limits`): the job row carries the limits it was submitted
under; having claimed it, before any work, the worker lowers its address space to
``job_memory_mb`` and sets an alarm for ``job_timeout_seconds``. An allocation over the
limit fails the job with "ran out of memory (limit N MB, setting job_memory_mb)"; the
alarm raises `JobTimedOut` at the next Python step like a cancel, and the job fails with
"took longer than N s (job_timeout_seconds)". A worker wedged in C code is killed by the
reaper.

What planners read: errors are recorded without the data home's absolute path (paths
inside it are shown relative to it), and a bug as a reference (``JOB-<id>-<hash>``)
whose traceback is in the job's log, never paths or traceback lines in the page.

Test hook: with ``GISPORTAL_JOBS_PAUSE_AT=<stage>[,<stage>...]`` in the environment, the
worker stops on entering each of those stages (after writing it, with the message
``paused (test hook)``, to the job row) until it receives
SIGUSR1 (go on) or SIGTERM (cancel, where cancelling is allowed). Tests use it to
cancel or SIGKILL a job at an exact point without timing guesses; it costs nothing
when unset.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gisportal.base.errors import exception_chain
from gisportal.jobs import limits, process

if TYPE_CHECKING:  # (imported for hints only: the worker imports GDAL after its mask)
    from gisportal.jobs.model import Job
    from gisportal.services.ingest import IngestResult
    from gisportal.store.base import Store

#: Test-only: the stages at which a worker waits for SIGUSR1 (see the module docstring).
PAUSE_ENV = "GISPORTAL_JOBS_PAUSE_AT"
#: Least seconds between two progress writes within one stage (stage changes always
#: write): a few writes a second at most, whatever the pipeline reports.
THROTTLE = 0.5


class JobCancelled(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """Raised in the main thread by SIGTERM. A BaseException, so that no
    ``except Exception`` in library code swallows it."""


class JobTimedOut(BaseException):  # noqa: N818 - like JobCancelled
    """Raised in the main thread by the job's alarm (``job_timeout_seconds``)."""


class JobReleased(BaseException):  # noqa: N818 - like JobCancelled
    """Raised in the main thread by SIGUSR2: the ``gisportal worker`` that started this
    process is stopping, and the job goes back to the queue for another worker."""


def _stage_of(text: str) -> tuple[str | None, str]:
    """Map a pipeline progress text to (stage, detail).

    The pipeline reports stage names (``normalise``, ``validate``, ``store``...),
    reading steps (``unzipping x.zip``, ``reading x.shp``, ``decoding text``) and tile
    steps (``tiles: write``). Unknown text keeps the current stage (None).
    """
    from gisportal.jobs.model import STAGES

    if text in STAGES:
        return text, ""
    head, sep, detail = text.partition(": ")
    if sep and head in STAGES:
        return head, detail
    if text.startswith(("unzipping", "reading", "decoding")):
        return "read", text
    return None, text


class Worker:
    """Runs one job; holds its progress state and its cancel flags."""

    def __init__(self, home: Path, job_id: int | None) -> None:
        self.home = home
        #: None until a ``--claim`` worker has claimed its job.
        self.job_id: int = -1 if job_id is None else job_id
        self.pid = os.getpid()
        #: (node, pid, attempt) of this run: every write is fenced by it.
        self.ticket: tuple[str, int, int] | None = None
        #: ``spawn`` (started by a dispatcher, starts the next job) or ``worker``.
        self.runner = "spawn"
        #: Set by the heartbeat thread when the row is no longer this worker's.
        self.lost = False
        self.release_requested = False
        #: Whether this process holds the job's lock file (see `claim_next`).
        self.owns_lock = True
        self._beating = threading.Event()
        self.limits = limits.Limits()
        #: The address-space limit before this worker lowered it (its children get it).
        self.previous_memory: tuple[int, int] | None = None
        #: False from the moment the published pointer starts moving.
        self.cancellable = True
        self.cancel_requested = False
        self.stage = "starting"
        self.percent = 0
        self.last_write = 0.0
        self.version_id: int | None = None
        self.pause_at = frozenset(filter(None, os.environ.get(PAUSE_ENV, "").split(",")))

    # -- signals -------------------------------------------------------------------------

    def on_sigterm(self, signum: int, frame: Any) -> None:
        self.cancel_requested = True
        if self.cancellable:
            self.cancellable = False  # a second SIGTERM must not interrupt the clean-up
            raise JobCancelled

    def on_alarm(self, signum: int, frame: Any) -> None:
        """The job's time is up: stop it like a cancel (never while the pointer moves).

        From now on a second alarm ends the process (the default action), so a clean-up
        that hangs cannot hold the slot either; the reaper then records the timeout.
        """
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(limits.TIMEOUT_GRACE)
        if self.cancellable:
            self.cancellable = False
            raise JobTimedOut

    def on_release(self, signum: int, frame: Any) -> None:
        """SIGUSR2: hand the job back (never while the pointer moves: then it finishes)."""
        self.release_requested = True
        if self.cancellable:
            self.cancellable = False
            raise JobReleased

    def _pause(self) -> None:
        """Test hook: wait for SIGUSR1 (go on), SIGTERM (cancel, when allowed) or SIGUSR2
        (hand the job back, when allowed)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR2})
        try:
            while True:
                got = signal.sigwait({signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2})
                if got == signal.SIGUSR1:
                    return
                if got == signal.SIGUSR2:
                    self.release_requested = True
                    if self.cancellable:
                        self.cancellable = False
                        raise JobReleased
                    continue
                self.cancel_requested = True
                if self.cancellable:
                    self.cancellable = False
                    raise JobCancelled
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGUSR2})

    # -- the job row ---------------------------------------------------------------------

    def _write(self, **values: Any) -> bool:
        from gisportal.jobs import table

        with table.connect(self.home) as conn, table.transaction(conn):
            if self.ticket is not None:
                return table.update(conn, self.job_id, only_if_state="running",
                                    only_if_claim=self.ticket, **values)
            return table.update(conn, self.job_id, only_if_state="running",
                                only_if_pid=self.pid, **values)

    def claim(self):
        """This process's job, or None if the row does not name this process as its
        worker (the dispatcher's transaction failed, or the job was cancelled)."""
        from gisportal.jobs import table

        with table.connect(self.home) as conn, table.transaction(conn):
            # BEGIN IMMEDIATE waits for the dispatcher's transaction to commit.
            job = table.fetch(conn, self.job_id)
        if job.state != "running" or job.pid != self.pid:
            return None
        if job.node is not None:
            self.ticket = (job.node, self.pid, job.attempt)
        return job

    def claim_next(self) -> Job | None:
        """``--claim``: the oldest queued job, claimed by this process; None if none.

        Once claimed, the job's lock file is held (a local ``cancel`` and ``wait`` find
        this process by it) and this process's output goes to the job's log.
        """
        from gisportal.base.settings import load_settings
        from gisportal.jobs import table

        node = process.node_name(load_settings())
        with table.connect(self.home) as conn:
            job = table.claim_next(conn, node=node, pid=self.pid)
        if job is None:
            return None
        self.job_id, self.runner = job.id, "worker"
        self.ticket = (node, self.pid, job.attempt)
        try:
            fd = process.hold_lock(self.home, job.id)  # kept open until this process ends
            os.set_inheritable(fd, False)
        except BlockingIOError:
            # An earlier run of this job still lives on this node (taken for dead, its
            # heartbeat late): it finds the row no longer its own and stops. The lock
            # only serves local cancels here; the claim is what counts.
            self.owns_lock = False
        log = os.open(process.log_path(self.home, job.id),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        print(json.dumps({"job": job.id, "pid": self.pid, "node": node,
                          "attempt": job.attempt}), flush=True)
        return job

    # -- heartbeat -------------------------------------------------------------------------

    def start_heartbeat(self, seconds: float) -> None:
        """Refresh ``heartbeat_at`` every `seconds` in a thread of its own.

        Why a thread: the pipeline reports progress at coarse stages (validating 200 000
        parcels is one stage of a minute), and a heartbeat must not depend on it. It
        also carries news back: the row no longer ours (the job was re-queued: stop and
        write nothing) or a cancel asked on another node (stop as for a local cancel).
        Both reach the main thread as SIGTERM, the signal a local cancel sends.
        """
        if self.ticket is None or seconds <= 0:
            return
        thread = threading.Thread(target=self._beat, args=(float(seconds),),
                                  name="job-heartbeat", daemon=True)
        thread.start()

    def stop_heartbeat(self) -> None:
        self._beating.set()

    def _beat(self, seconds: float) -> None:
        from gisportal.jobs import table

        signalled = False
        while not self._beating.wait(seconds):
            try:
                with table.connect(self.home) as conn:
                    ours, cancel = table.heartbeat(conn, self.job_id, self.ticket)
            except Exception:  # noqa: BLE001 - a missed beat is retried; staleness decides
                traceback.print_exc()
                continue
            if self._beating.is_set():
                return
            if not ours:
                self.lost = True
                print(f"job {self.job_id}: the job is no longer this worker's (re-queued "
                      "or ended elsewhere): stopping without writing", file=sys.stderr,
                      flush=True)
                os.kill(self.pid, signal.SIGTERM)
                return
            if cancel and not signalled:
                signalled = True
                os.kill(self.pid, signal.SIGTERM)

    def progress(self, text: str) -> None:
        """The pipeline's progress callback."""
        stage, detail = _stage_of(text)
        self.advance(stage or self.stage, detail)

    def advance(self, stage: str, message: str = "") -> None:
        """Record the stage (always when it changes, else at most every `THROTTLE` s)."""
        from gisportal.jobs.model import STAGES

        if stage == "publish":
            self.cancellable = False  # the pointer flip is one transaction: let it finish
        now = time.monotonic()
        changed = stage != self.stage
        if not changed and now - self.last_write < THROTTLE:
            return
        self.stage = stage
        self.percent = max(self.percent, STAGES[stage])
        self.last_write = now
        paused = changed and stage in self.pause_at
        self._write(stage=stage, percent=self.percent,
                    message="paused (test hook)" if paused else message)
        if paused:
            self._pause()

    def finish(self, state: str, *, result: dict[str, Any] | None = None,
               error: dict[str, Any] | None = None, message: str = "") -> None:
        from gisportal.jobs.model import utc_now

        if error is not None:
            error = public_error(error, self.home)
        if result and isinstance(result.get("not_published"), dict):
            result = {**result, "not_published": public_error(result["not_published"],
                                                              self.home)}
        values: dict[str, Any] = {"state": state, "message": message, "result": result,
                                  "error": error, "finished_at": utc_now()}
        if state == "done":
            values.update(stage="done", percent=100)
        if self._write(**values):
            from gisportal.jobs import get
            from gisportal.jobs.outcome import record_outcome

            record_outcome(self.home, get(self.home, self.job_id))

    # -- running -------------------------------------------------------------------------

    def run(self, claim: bool = False) -> int:
        """Claim, run, record; start the next job. The exit status (0 unless a bug).

        `claim`: claim the oldest queued job (``--claim``) instead of the job the
        dispatcher started this process for; no job to claim is not an error.
        """
        from gisportal.base.settings import load_settings

        job = self.claim_next() if claim else self.claim()
        if job is None:
            return 0
        self.apply_limits(job)
        status = 0
        signal.signal(signal.SIGTERM, self.on_sigterm)
        signal.signal(signal.SIGALRM, self.on_alarm)
        signal.signal(signal.SIGUSR2, self.on_release)
        conf = load_settings()
        # At least three beats per stale limit whatever the settings say: a worker must
        # never look dead between two of its own heartbeats.
        self.start_heartbeat(min(float(conf.get("job_heartbeat_seconds") or 0),
                                 float(conf.get("job_stale_seconds") or 60) / 3))
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK,
                                   {signal.SIGTERM, signal.SIGALRM, signal.SIGUSR2})
            if self.limits.timeout_seconds:
                signal.alarm(self.limits.timeout_seconds)
            from gisportal.jobs import housekeeping

            housekeeping.clean_scratch(self.home)  # what killed workers left, long ago
            result = self.execute(job)
            self.cancellable = False
            message = ""
            if self.cancel_requested:
                message = "finished: the cancel came while publishing, which is never " \
                          "interrupted"
            self.finish("done", result=result, message=message)
        except JobCancelled:
            self.cancellable = False
            if not self.lost:  # a lost job is someone else's now: nothing to record
                self.finish("cancelled", result=self.cancelled_result(job),
                            message="cancelled")
        except JobReleased:
            self.cancellable = False
            self.release(job)
        except JobTimedOut:
            self.cancellable = False
            err = limits.timeout_error(self.limits.timeout_seconds,
                                       f"job {job.id}, stage {self.stage}")
            print(f"job {job.id}: {err.one_line()}", file=sys.stderr)
            self.finish("failed", error=err.to_dict(), message="timed out",
                        result=self.cancelled_result(job, "the time limit"))
        except BaseException as exc:  # noqa: BLE001 - every failure is recorded in the row
            self.cancellable = False
            error, message = self.error_of(exc)
            if error["code"] == "JOB-BUG":
                status = 1
            del exc  # with its traceback: the frames hold the job's data
            gc.collect()
            self.finish("failed", error=error, message=message)
        finally:
            self.cancellable = False
            self.stop_heartbeat()
            signal.alarm(0)
            sys.stdout.flush()
            sys.stderr.flush()
        if self.owns_lock:  # (a lock file another process holds is not ours to remove)
            process.lock_path(self.home, self.job_id).unlink(missing_ok=True)
        if self.runner != "spawn":
            return status  # its gisportal worker claims the next one
        # The next job, started below, inherits this process's limits: give it the ones
        # this worker was started with (it sets its own).
        limits.restore_memory(self.previous_memory)
        from gisportal.jobs import dispatch

        try:
            dispatch(self.home)
        except Exception:  # noqa: BLE001 - the next submit or start-up dispatches again
            traceback.print_exc()
        return status

    def release(self, job: Job) -> None:
        """Hand the job back to the queue (its ``gisportal worker`` is stopping).

        Whatever the job stored stays (a version is found again by the next run, see the
        module docstring); the attempt is given back too: the job did not fail.
        """
        if self._write(state="queued", stage="queued", percent=0, node=None, pid=None,
                       runner=None, attempt=max(0, job.attempt - 1),
                       message="handed back to the queue: its worker stopped"):
            print(f"job {job.id}: handed back to the queue", file=sys.stderr)

    def apply_limits(self, job) -> None:
        """Lower this process's address space to the job's ``memory_mb``, before any work.

        The limits come from the job row (the settings it was submitted under), so a job
        started by another job's worker, whose environment holds that job's settings,
        still runs under its own; a row from before limits were recorded takes this
        worker's settings.
        """
        from gisportal.base.settings import load_settings

        fallback = limits.Limits.from_settings(load_settings()) if job.limits is None \
            else limits.Limits()
        self.limits = limits.Limits.from_dict(job.limits, fallback)
        self.previous_memory = limits.limit_memory(self.limits.memory_mb)
        with contextlib.suppress(OSError):
            # Should the machine itself run out of memory, the kernel kills a job before
            # the web server (a process may raise its own score).
            Path("/proc/self/oom_score_adj").write_text("500")

    def error_of(self, exc: BaseException) -> tuple[dict[str, Any], str]:
        """The error record and short message of a failed job.

        An allocation over the memory limit and a full disk are named as such even when
        a reader or the store wrapped them in an error of their own (whose advice would
        be wrong); then gisportal's own errors; anything else is a bug.
        """
        from gisportal.base.diskspace import DiskFullError, disk_full_error, is_disk_full
        from gisportal.base.errors import GisportalError

        where = f"job {self.job_id}, stage {self.stage}"
        if limits.is_out_of_memory(exc):
            traceback.clear_frames(exc.__traceback__)  # give the job's data back first
            err: GisportalError = limits.out_of_memory_error(self.limits.memory_mb, where)
            print(f"job {self.job_id}: {err.one_line()}", file=sys.stderr)
            traceback.print_exception(exc)
            return err.to_dict(), "out of memory"
        if is_disk_full(exc):
            if isinstance(exc, DiskFullError):
                err = exc
            else:
                name = next((e.filename for e in exception_chain(exc)
                             if isinstance(e, OSError) and e.filename), None)
                err = disk_full_error(name or self.home, self.home)
            print(f"job {self.job_id}: {err.one_line()}", file=sys.stderr)
            return err.to_dict(), "disk full"
        if isinstance(exc, GisportalError):
            return exc.to_dict(), exc.what
        return bug_error(exc, self.job_id), "internal error"

    def execute(self, job) -> dict[str, Any]:
        """Run the job's pipeline; its result for the job row."""
        from gisportal.base import seeds
        from gisportal.base.settings import load_settings
        from gisportal.store import open_store

        settings = load_settings({"home": str(self.home)})
        with open_store(self.home, crs=seeds.province()["crs"]) as store:
            if job.kind in ("check", "ingest", "repair"):
                return self.run_upload(job, store, settings)
            if job.kind in ("publish", "rollback"):
                return self.run_publish(job, store, settings)
        raise ValueError(f"unknown job kind {job.kind!r}")

    def run_upload(self, job, store, settings: dict[str, Any]) -> dict[str, Any]:
        """Check or ingest the job's upload, read from a local file: the upload area's
        own file, or (S3) a copy fetched into this node's scratch and removed after."""
        from gisportal.base.errors import NotFoundError
        from gisportal.store.home import DataHome

        home = DataHome.at(self.home)
        key = DataHome.upload_key_of(job.params["upload"])
        with contextlib.ExitStack() as stack:
            try:
                path = stack.enter_context(home.upload_area.local_copy(key, home.scratch))
            except FileNotFoundError:
                raise NotFoundError(
                    f"the uploaded file of job {job.id} is no longer kept",
                    where=job.params["upload"], code="UPLOAD-GONE",
                    fix="Upload the file again (uploads are removed some time after their "
                        "job finished, see upload_retention_days)") from None
            return self._run_upload(job, store, settings, path)

    def _run_upload(self, job, store, settings: dict[str, Any], path: Path) -> dict[str, Any]:
        from gisportal.base.errors import GisportalError
        from gisportal.jobs import reports
        from gisportal.services.ingest import check_file, ingest_file
        from gisportal.services.workflow import publish

        p = job.params
        options = {"crs": p.get("crs"), "encoding": p.get("encoding"),
                   "layer": p.get("source_layer"), "fields": p.get("fields"),
                   "repair": bool(p.get("repair")), "update": bool(p.get("update")),
                   "communes": p.get("communes") or None, "year": p.get("year"),
                   "within": p.get("within"),
                   "settings": settings, "progress": self.progress}
        project = p.get("project")
        result: dict[str, Any] = {"source": {"name": p.get("upload_name"), "sha256": None}}
        if job.kind == "check":
            checked = check_file(path, job.layer, district=job.district, store=store,
                                 project=project, **options)
            self.advance("report")
            result["source"]["sha256"] = checked.source.sha256
            result["summary"] = checked.report.summary()
            result["reports"] = reports.write(self.home, job.id, checked.report,
                                              checked.layer.frame)
            return result
        ingested = self.stored_before(job, store, path, options)
        if ingested is None:
            ingested = ingest_file(store, path, job.layer, job.district, publish=False,
                                   user=job.actor, meta={"job": job.id}, project=project,
                                   public_fields=p.get("public_fields") or None, **options)
        version = ingested.version
        self.version_id = version.id
        self._write(result={"version": version.id})  # known at once, should it be killed
        self.advance("report")
        result["source"]["sha256"] = version.source_sha256
        result.update(version=version.id, status=version.status, published=False,
                      previous=None, features=version.feature_count,
                      summary=ingested.report.summary(), not_published=None,
                      update=None if ingested.update is None else ingested.update.to_dict())
        layer = None
        if version.feature_count <= reports.MAX_LAYER_FEATURES_ON_MAP:
            layer = store.read(version.id, columns=[])
        result["reports"] = reports.write(self.home, job.id, ingested.report, layer)
        if p.get("publish"):
            if ingested.report.has_errors:
                result["not_published"] = {
                    "code": "STORE-HAS-ERRORS",
                    "what": f"version {version.id} has validation errors",
                    "where": f"district {job.district}, {job.layer}",
                    "fix": "Read the report, correct the file and upload it again"}
            else:
                try:
                    done = publish(store, version.id, job.actor, settings=settings,
                                   confirm_removals=bool(p.get("confirm_removals")),
                                   progress=self.progress)
                except GisportalError as err:  # e.g. a plan without its decision
                    result["not_published"] = err.to_dict()
                else:
                    result.update(status=done.version.status, published=True,
                                  previous=None if done.previous is None else done.previous.id,
                                  changes=None if done.changes is None
                                  else done.changes.to_dict())
        return result

    def run_publish(self, job, store, settings: dict[str, Any]) -> dict[str, Any]:
        from gisportal.services.workflow import publish, rollback, rollback_project

        version = int(job.params["version"])
        confirm = bool(job.params.get("confirm_removals"))
        if job.kind == "publish":
            done = publish(store, version, job.actor, district=job.district, kind=job.layer,
                           confirm_removals=confirm,
                           consultation=bool(job.params.get("consultation")),
                           settings=settings, progress=self.progress)
        elif job.params.get("project"):
            done = rollback_project(store, job.params["project"], job.layer, version,
                                    job.actor, confirm_removals=confirm, settings=settings,
                                    progress=self.progress)
        else:
            done = rollback(store, job.district, job.layer, version, job.actor,
                            confirm_removals=confirm, settings=settings,
                            progress=self.progress)
        return done.to_dict()

    @staticmethod
    def version_of(job: Job, store: Store) -> int | None:
        """The version an earlier run of `job` stored, if any: the id recorded in the
        job's result (checked to carry the job's tag), else the version whose meta
        names the job (stored, then killed before the id reached the row)."""
        from gisportal.base.errors import NotFoundError

        recorded = (job.result or {}).get("version")
        if isinstance(recorded, int):
            try:
                if store.version(recorded).meta.get("job") == job.id:
                    return recorded
            except NotFoundError:
                pass
        return next((v.id for v in sorted(store.versions(job.district, job.layer),
                                          key=lambda v: v.id)
                     if v.meta.get("job") == job.id), None)

    def stored_before(self, job: Job, store: Store, path: Path,
                      options: dict[str, Any]) -> IngestResult | None:
        """A re-run of an ingest whose earlier run stored its version: that version
        with a fresh validation report (`check_file` reads and validates the same upload
        again, storing nothing); None for a first run or when nothing was stored.

        What the earlier run may not have reached is done again, each idempotent: the
        public columns marked, the marks of an update's base carried.
        """
        if job.attempt <= 1:
            return None
        version_id = self.version_of(job, store)
        if version_id is None:
            return None
        from gisportal.services.ingest import IngestResult, check_file

        print(f"job {job.id}: attempt {job.attempt} reuses version {version_id}, stored by "
              "an earlier attempt", file=sys.stderr, flush=True)
        checked = check_file(path, job.layer, district=job.district, store=store,
                             project=job.params.get("project"), **options)
        self.advance("store")
        version = store.version(version_id)
        if checked.update is not None:
            from gisportal.outputs.privacy import carry_marks

            version = carry_marks(store, version.id,
                                  store.version(checked.update.base_version), actor=job.actor)
        if job.params.get("public_fields"):
            from gisportal.outputs.privacy import mark_public

            version = mark_public(store, version.id, list(job.params["public_fields"]),
                                  actor=job.actor)
        return IngestResult(version, checked.report, False, update=checked.update)

    def cancelled_result(self, job, cause: str = "the cancel") -> dict[str, Any] | None:
        """What a cancelled (or timed out) upload left: the draft version, if it was
        already stored.

        The store keeps a version once its write completed; the job tags its versions
        (``meta["job"]``), so even a cancel landing between the end of the write and the
        job's own record finds it. Before the ``store`` stage there is none to look for
        (and a job stopped while still importing its libraries must not import them
        again to find that out).
        """
        from gisportal.jobs.model import STAGES

        if job.kind not in ("ingest", "repair"):
            return None
        version_id = self.version_id
        if version_id is None and STAGES.get(self.stage, 0) >= STAGES["store"]:
            from gisportal.base import seeds
            from gisportal.store import open_store

            with open_store(self.home, crs=seeds.province()["crs"]) as store:
                version_id = self.version_of(job, store)
        if version_id is None:
            return None
        return {"version": version_id, "status": "draft", "published": False,
                "note": f"version {version_id} had been stored as a draft before {cause}; "
                        "it was not published"}


def public_error(error: dict[str, Any], home: Path) -> dict[str, Any]:
    """`error` as planners may read it: the data home's absolute path left out.

    A path inside the home becomes relative to it (``uploads/7/thua.zip``); the home
    itself becomes ``$GISPORTAL_HOME``. The server's folder layout is no business of a
    page any planner can open (issue 11, item 15).
    """
    roots = sorted({str(home), os.path.realpath(home)}, key=len, reverse=True)

    def clean(text: str) -> str:
        for root in roots:
            text = text.replace(root + os.sep, "")
            text = re.sub(re.escape(root) + r"(?![\w.-])", "$GISPORTAL_HOME", text)
        return text

    return {k: clean(v) if isinstance(v, str) else v for k, v in error.items()}


def bug_error(exc: BaseException, job_id: int, *, log: TextIO | None = None
              ) -> dict[str, Any]:
    """The error record of an unexpected exception: a reference, and nothing else.

    A traceback names the server's files and can carry data; planners get a reference
    (``JOB-<id>-<8 hex>``, the hash of the traceback) to give the administrator, and the
    full traceback goes to the job's log (`log`, default this worker's standard error,
    which is ``jobs/<id>.log``) under the same reference.
    """
    from gisportal.base.errors import GisportalError

    text = "".join(traceback.format_exception(exc))
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:8]
    reference = f"JOB-{int(job_id)}-{digest}"
    out = sys.stderr if log is None else log
    with contextlib.suppress(OSError, ValueError):
        out.write(f"--- {reference}: internal error in job {job_id}\n{text}")
        out.flush()
    err = GisportalError(
        f"lỗi nội bộ của gisportal, mã tham chiếu {reference} / internal error, "
        f"reference {reference}",
        where=f"job {int(job_id)}",
        fix="Đây là lỗi của gisportal, không phải của tệp: hãy báo mã tham chiếu cho quản trị "
            "viên, người sẽ tìm thấy chi tiết trong nhật ký công việc / this is a bug in "
            "gisportal, not a problem with your file: give the reference to the "
            "administrator, who finds the details in the job log",
        code="JOB-BUG")
    return {**err.to_dict(), "reference": reference}


def main(argv: list[str] | None = None) -> int:
    process.block_worker_signals()  # first, before numpy and GDAL start threads
    parser = argparse.ArgumentParser(prog="python -m gisportal.jobs.worker")
    parser.add_argument("home", type=Path)
    parser.add_argument("job_id", type=int, nargs="?", default=None)
    parser.add_argument("--lock-fd", type=int, default=None,
                        help="descriptor of the job's locked lock file, kept open until exit")
    parser.add_argument("--claim", action="store_true",
                        help="claim the oldest queued job (gisportal worker) instead")
    args = parser.parse_args(argv)
    if (args.job_id is None) != args.claim:
        parser.error("give a job id, or --claim")
    if args.lock_fd is not None:
        # Held until this process ends; programs it starts must not keep it (and the
        # job "alive") after it.
        os.set_inheritable(args.lock_fd, False)
    worker = Worker(args.home.resolve(), args.job_id)
    if not args.claim:
        print(json.dumps({"job": args.job_id, "pid": worker.pid}), flush=True)
    return worker.run(claim=args.claim)


if __name__ == "__main__":
    code = main()
    # No interpreter shutdown: it would wait for threads a cancelled validation left.
    os._exit(code)
