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
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import gisportal
from gisportal.base.settings import SETTINGS
from gisportal.store.home import DataHome

__all__ = ["jobs_dir", "lock_path", "log_path", "hold_lock", "is_alive", "spawn",
           "signal_group", "WORKER_MODULE"]

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
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1, signal.SIGALRM})
