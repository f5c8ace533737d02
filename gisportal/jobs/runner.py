"""``gisportal worker``: take jobs from the shared queue, on any node (issue 12).

Production runs several app nodes on one PostgreSQL database; uploads arrive at any of
them, and the jobs they queue are run by whichever node runs ``gisportal worker``. This
loop is that command:

* it claims work only through the database (`gisportal.jobs.table.claim_next`, one
  statement: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite),
  so any number of workers on any number of nodes each run a job exactly once;
* each job runs in a child process of its own (``python -m gisportal.jobs.worker HOME
  --claim``), which claims the job itself, applies the job's memory and time limits as
  a spawned worker does, sends heartbeats, and exits when the job ends — so a job's
  memory goes back to the system and a crash takes only that job;
* up to ``--jobs N`` children run at once; the loop also reaps (a job whose node went
  silent past ``job_stale_seconds`` is re-queued, see `gisportal.jobs.reap`), records
  a child that died without recording its job, and kills one wedged past its time;
* SIGTERM (or Ctrl-C) stops claiming; running jobs get ``--grace`` seconds to finish,
  then are handed back to the queue (SIGUSR2: the store discards a half-written
  version, the row goes back to ``queued`` and another worker takes it); then it exits;
* ``--once`` runs what is queued (after reaping) and exits when nothing is left: for
  tests and cron.

The children die with this process (``PR_SET_PDEATHSIG``): a ``gisportal worker``
killed outright (SIGKILL, the node lost) leaves its jobs ``running`` with a heartbeat
that stops, and another worker takes them over once it is stale.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gisportal.base.errors import GisportalError
from gisportal.jobs import process, table

__all__ = ["run"]

#: Seconds between two looks at the queue (a look is a few indexed queries).
POLL = 1.0
#: Seconds to wait after a job process failed before it could claim anything.
BACKOFF = 10.0


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    killed: bool = False


def _queued(home: Path) -> int:
    with table.connect(home) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0])


def _look(root: Path, conf: Mapping[str, Any], node: str, slots: int,
          children: list[_Child], log: Path, say: Callable[[str], None]) -> int:
    """One look at the queue: reap (stale jobs re-queued), kill this node's children
    wedged past their time, start a claimer per free slot and queued job. The number of
    queued jobs seen (0 when no slot was free)."""
    from gisportal import jobs as jobs_api

    jobs_api.reap(root, conf)
    for pid in jobs_api.overdue_workers(root, node,
                                        [c.proc.pid for c in children if not c.killed]):
        say(f"process {pid} is past its job's time limit: killing it")
        process.signal_group(pid, signal.SIGKILL)
        for c in children:
            c.killed = c.killed or c.proc.pid == pid
    queued = _queued(root) if len(children) < slots else 0
    for _ in range(min(slots - len(children), queued)):
        children.append(_Child(process.spawn_claimer(root, conf, log)))
    return queued


def run(home: str | Path, settings: Mapping[str, Any], *, jobs: int = 1, once: bool = False,
        grace: float = 0.0, poll: float = POLL,
        say: Callable[[str], None] = print) -> int:
    """Run ``gisportal worker`` until SIGTERM (or, with `once`, until the queue is
    empty); the exit status (0).

    Parameters
    ----------
    home, settings
        The data home and the full settings (the children get them in their
        environment, as spawned workers do).
    jobs
        Jobs run at once on this node.
    once
        Exit when nothing is queued and nothing runs.
    grace
        Seconds running jobs get to finish after SIGTERM before they are handed back.
    say
        Where one line per event goes (standard output for the command).
    """
    from gisportal import jobs as jobs_api

    root = Path(home).resolve()
    conf = {**settings, "home": str(root)}
    node = process.node_name(conf)
    log = process.jobs_dir(root) / f"worker-{node}-{os.getpid()}.log"
    slots = max(1, int(jobs))
    stopping: list[float] = []

    def on_stop(signum: int, frame: Any) -> None:
        if not stopping:
            stopping.append(time.monotonic())

    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    children: list[_Child] = []
    released = False
    next_look = 0.0  # when to look at the queue again (monotonic)
    say(f"gisportal worker on {node} (pid {os.getpid()}): {slots} job(s) at once"
        + (", until the queue is empty" if once else ""))
    try:
        while True:
            for child in [c for c in children if c.proc.poll() is not None]:
                children.remove(child)
                try:
                    job = jobs_api.end_dead_worker(root, node, child.proc.pid)
                except (GisportalError, OSError, sqlite3.Error) as exc:
                    # Its job, if it died with it, goes stale and is re-queued instead.
                    say(f"could not record the end of process {child.proc.pid}: {exc}")
                    continue
                if job is not None and job.pid == child.proc.pid:
                    say(f"job {job.id} ({job.kind} {job.district} {job.layer}, attempt "
                        f"{job.attempt}): {job.state}"
                        + (f" — {job.message}" if job.message else ""))
                    next_look = min(next_look, time.monotonic())  # a slot is free: look now
                elif child.proc.returncode:
                    # Failed before claiming (the database unreachable, say): say so, and
                    # do not start another claimer every second meanwhile.
                    say(f"a job process exited with status {child.proc.returncode} before "
                        f"claiming a job (its output: {log})")
                    next_look = time.monotonic() + BACKOFF
            if stopping:
                if not children:
                    break
                if not released and time.monotonic() - stopping[0] >= grace:
                    say(f"stopping: handing {len(children)} running job(s) back to the queue")
                    for child in children:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(child.proc.pid, signal.SIGUSR2)
                    released = True
            elif time.monotonic() >= next_look:
                next_look = time.monotonic() + poll
                try:
                    queued = _look(root, conf, node, slots, children, log, say)
                except (GisportalError, OSError, sqlite3.Error) as exc:
                    # The database or the disk failed for a moment: a long-running worker
                    # says so and tries again, rather than ending (systemd would restart
                    # it only to meet the same).
                    text = exc.one_line() if isinstance(exc, GisportalError) else str(exc)
                    say(f"could not look at the queue: {text}; trying again in {BACKOFF:.0f} s")
                    next_look = time.monotonic() + BACKOFF
                    continue
                if once and not queued and not children:
                    break
            time.sleep(min(poll, 0.2))  # children are looked at more often than the queue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("gisportal worker stopped")
    return 0
