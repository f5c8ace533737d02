"""Worker processes: start one per job, tell whether it still lives, signal it.

Why a separate process per job, not a thread of the web server:

* GDAL's bundled SQLite (which writes the district GeoPackages) and Python's
  ``sqlite3`` (which the web process reads them with) do not see each other's locks
  inside one process, so every write to the store must happen outside the web process;
* a process started in its own session survives the request, the closed browser page
  and a restart of the web server, and can be stopped as a whole (its process group);
* a 200 000-parcel ingest peaks at hundreds of MiB, given back to the system when the
  process ends.

Why liveness is a lock file and not the pid: pids are reused and a finished worker can
linger as a zombie, so "is pid N alive" can be wrong both ways. The dispatcher locks
``jobs/<id>.lock`` (``flock``) *before* the job is marked running and hands the locked
descriptor to the worker, which keeps it open until it exits; the kernel drops the lock
when the process dies however it dies. A job whose lock can be taken has no worker.

Across nodes (issue 12) the lock is only half the truth: it lives on the node that runs
the worker, and another node cannot see it. The database is the one truth there: a job
is claimed in one statement (`gisportal.jobs.table.claim_next`), its worker refreshes
``heartbeat_at`` every ``job_heartbeat_seconds``, and any reaper re-queues a job whose
heartbeat is older than ``job_stale_seconds``. The lock stays, for what only it can
do: tell at once, on the node itself, that a worker *spawned by this node's web
process* died (a page polling the job reads ``failed`` at the next poll instead of a
minute later), and let tests and ``cancel`` find a local worker. Both rules are kept
because each answers a question the other cannot: the lock "is this local process
alive", the heartbeat "is the node that claimed it alive".
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gisportal
from gisportal.base.errors import UsageError
from gisportal.base.settings import SETTINGS, load_settings
from gisportal.store.home import DataHome

__all__ = ["jobs_dir", "lock_path", "log_path", "hold_lock", "is_alive", "spawn",
           "spawn_claimer", "signal_group", "node_name", "runner", "WORKER_MODULE"]

WORKER_MODULE = "gisportal.jobs.worker"

#: Workers started by this process and not yet seen ended (see `spawn`).
_children: list[subprocess.Popen[bytes]] = []
_children_lock = threading.Lock()


def jobs_dir(home: str | Path) -> Path:
    """``<home>/jobs``: lock files and worker logs."""
    folder = DataHome.at(home).jobs
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def lock_path(home: str | Path, job_id: int) -> Path:
    return jobs_dir(home) / f"{int(job_id)}.lock"


def log_path(home: str | Path, job_id: int) -> Path:
    """The worker's standard output and error (tracebacks of bugs end up here)."""
    return jobs_dir(home) / f"{int(job_id)}.log"


def hold_lock(home: str | Path, job_id: int) -> int:
    """Create and lock the job's lock file; return the descriptor (closing it unlocks)."""
    fd = os.open(lock_path(home, job_id), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def is_alive(home: str | Path, job_id: int) -> bool:
    """Whether a process holds the job's lock, i.e. its worker is running."""
    try:
        fd = os.open(lock_path(home, job_id), os.O_RDWR)
    except FileNotFoundError:  # removed by a worker that finished
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if we took it
    return False


def worker_env(home: Path, settings: dict[str, Any]) -> dict[str, str]:
    """The environment of a worker: ours, plus the settings this process runs with.

    Settings given to the web app's factory are not in the environment; spelling every
    one out makes the worker use exactly the limits the upload was accepted under. The
    package's own folder goes first on ``PYTHONPATH`` so the worker runs this code even
    when it is not installed.
    """
    env = dict(os.environ)
    for s in SETTINGS:
        if getattr(s, "secret", False):  # the session key is no business of a worker
            env.pop(s.env, None)
        elif settings.get(s.name) is not None:
            env[s.env] = str(settings[s.name])
    env["GISPORTAL_HOME"] = str(home)
    root = str(Path(gisportal.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def spawn(home: Path, job_id: int, lock_fd: int, settings: dict[str, Any]) -> int:
    """Start ``python -m gisportal.jobs.worker HOME JOB --lock-fd N`` detached; its pid.

    The worker gets the locked descriptor (``pass_fds``), runs in a new session (its
    own process group, no controlling terminal: a Ctrl-C or restart of the server does
    not reach it) and writes its output to `log_path`.
    """
    with open(log_path(home, job_id), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(home), str(job_id),
             "--lock-fd", str(lock_fd)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=worker_env(home, settings), cwd=str(home), start_new_session=True,
            pass_fds=(lock_fd,),
        )
    with _children_lock:
        # Collect the exit status of workers this process started that have ended (no
        # zombies pile up in a long-running server), and keep the new one to do so later.
        _children[:] = [p for p in _children if p.poll() is None]
        _children.append(proc)
    return proc.pid


def node_name(settings: Mapping[str, Any] | None = None) -> str:
    """This node's name in job rows: setting ``node_name``, else the host name."""
    name = str((settings if settings is not None else load_settings()).get("node_name")
               or "").strip()
    return name or socket.gethostname() or "localhost"


def runner(settings: Mapping[str, Any]) -> str:
    """``spawn`` or ``external`` (setting ``job_runner``; ``auto`` decides by the mode).

    Why production defaults to external: a web node's process is sized for requests,
    and with several nodes the jobs should go where ``gisportal worker`` runs (a node
    with the memory for a 200 000-parcel ingest), not to whichever node took the upload.
    The embedded mode spawns, so its two-command set-up runs jobs with no extra process.
    """
    value = str(settings.get("job_runner") or "auto").strip().lower()
    if value == "auto":
        return "external" if settings.get("database") else "spawn"
    if value not in ("spawn", "external"):
        raise UsageError(f"job_runner {value!r} is not spawn, external or auto",
                         where="GISPORTAL_JOB_RUNNER", fix="Set spawn, external or auto",
                         code="SETTING-INVALID")
    return value


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies (Linux
    ``PR_SET_PDEATHSIG``), and exit at once if the parent is already gone."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


_PR_SET_PDEATHSIG = 1


def spawn_claimer(home: Path, settings: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m gisportal.jobs.worker HOME --claim``: a process of
    ``gisportal worker`` that claims the oldest queued job itself and runs it.

    The child claims (not the parent) so the row names the process that does the work
    from the first moment. It runs in its own session (a cancel signals its group), and
    dies with its parent (``PR_SET_PDEATHSIG``): a worker whose ``gisportal worker`` was
    killed has nobody left to enforce its time limit, and its node is taken as gone —
    the job is re-queued when its heartbeat goes stale. Until it knows its job it writes
    to `log` (the supervisor's), then to the job's own log.
    """
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(home), "--claim"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=worker_env(home, settings), cwd=str(home), start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - one thread here
        )
    return proc


def signal_group(pid: int, sig: int) -> None:
    """Send `sig` to the worker's process group (the worker and anything it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def block_worker_signals() -> None:
    """Block SIGTERM, SIGUSR1 and SIGALRM in this thread and every thread started after it.

    Called by the worker before it imports GDAL (whose thread pools inherit the mask),
    then SIGTERM and SIGALRM (the job's time limit) are unblocked in the main thread
    only: the kernel then always delivers a cancel or a timeout to the main thread,
    where Python runs the handler — also while it waits in the test hook's sigwait.
    SIGUSR2 (``gisportal worker`` stopping: hand the job back to the queue) likewise.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
                                              signal.SIGALRM})
