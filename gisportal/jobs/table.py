"""The ``jobs`` table in the data home's catalogue (``catalogue.sqlite``).

The table lives beside the store's ``versions`` with its own row in the shared
``schema_version`` table, so jobs migrate independently of the store. Every call opens
its own short-lived connection (WAL, busy timeout): the web process polls job rows from
many threads and workers write progress from other processes, and SQLite serialises
the writes. Transactions are ``BEGIN IMMEDIATE`` so two writers never deadlock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from gisportal.base.errors import NotFoundError, UsageError
from gisportal.jobs.model import STAGES, STATES, Job, utc_now
from gisportal.store import catalogue

__all__ = ["connect", "transaction", "insert", "fetch", "fetch_many", "update", "to_json",
           "claim_next", "mark_spawned", "heartbeat", "stale", "requeue_if_stale", "Claim",
           "RUNNERS"]

_COMPONENT = "jobs"
#: Migrations of this component; entry i brings the schema to version i + 1.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            district TEXT NOT NULL,
            layer TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL
                CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            stage TEXT NOT NULL DEFAULT 'queued',
            percent INTEGER NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
            message TEXT NOT NULL DEFAULT '',
            result TEXT,
            error TEXT,
            pid INTEGER,
            actor TEXT NOT NULL,
            cancel_requested_at TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        )""",
        "CREATE INDEX jobs_by_state ON jobs (state, id)",
        "CREATE INDEX jobs_by_district ON jobs (district, layer, id)",
    ),
    # The limits a job was submitted under (JSON: memory_mb, timeout_seconds): its worker
    # applies them whoever starts it, and a reaper in any process judges the job by them.
    ("ALTER TABLE jobs ADD COLUMN limits TEXT",),
    # Jobs across nodes (issue 12): who claimed the job (node, how it was started), how
    # often, and its worker's last heartbeat; a stale one is re-queued by any reaper.
    (
        "ALTER TABLE jobs ADD COLUMN node TEXT",
        "ALTER TABLE jobs ADD COLUMN runner TEXT",
        "ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN claimed_at TEXT",
        "ALTER TABLE jobs ADD COLUMN heartbeat_at TEXT",
    ),
)

_FIELDS = ("id, kind, district, layer, params, state, stage, percent, message, result, "
           "error, pid, actor, cancel_requested_at, created_at, started_at, updated_at, "
           "finished_at, limits, node, runner, attempt, claimed_at, heartbeat_at")
#: Columns `update` may set.
_UPDATABLE = frozenset({"params", "state", "stage", "percent", "message", "result", "error",
                        "pid", "cancel_requested_at", "started_at", "finished_at",
                        "limits", "node", "runner", "attempt", "claimed_at",
                        "heartbeat_at"})
#: How a running job was started: by a web node's dispatcher, or claimed by a worker.
RUNNERS = ("spawn", "worker")

def catalogue_path(home: str | Path) -> Path:
    return catalogue.catalogue_path(home)


def connect(home: str | Path) -> AbstractContextManager[sqlite3.Connection]:
    """A connection to the catalogue with the jobs table migrated; closed on exit.

    Autocommit mode: transactions are explicit, so a reader never keeps a snapshot open
    between polls.
    """
    return catalogue.connect(home, {_COMPONENT: _MIGRATIONS})


transaction = catalogue.transaction


def to_json(value: Any) -> str:
    """Strict JSON with readable Vietnamese, as the store writes its meta."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _job(row: Sequence[Any]) -> Job:
    (jid, kind, district, layer, params, state, stage, percent, message, result, error, pid,
     actor, cancel_requested_at, created_at, started_at, updated_at, finished_at,
     limits, node, runner, attempt, claimed_at, heartbeat_at) = row
    return Job(id=jid, kind=kind, district=district, layer=layer, state=state, stage=stage,
               percent=percent, message=message, actor=actor, created_at=created_at,
               updated_at=updated_at, params=_from_json(params) or {},
               result=_from_json(result), error=_from_json(error), pid=pid,
               started_at=started_at, finished_at=finished_at,
               cancel_requested_at=cancel_requested_at, limits=_from_json(limits),
               node=node, runner=runner, attempt=int(attempt or 0), claimed_at=claimed_at,
               heartbeat_at=heartbeat_at)


def insert(conn: sqlite3.Connection, *, kind: str, district: str, layer: str, actor: str,
           params: Mapping[str, Any], limits: Mapping[str, Any] | None = None) -> int:
    """Add a queued job; the caller holds a transaction. Returns its id."""
    now = utc_now()
    jid = conn.execute(
        "INSERT INTO jobs (kind, district, layer, params, state, stage, percent, message, "
        "actor, created_at, updated_at, limits) "
        "VALUES (?, ?, ?, ?, 'queued', 'queued', 0, '', ?, ?, ?, ?)",
        (kind, district, layer, to_json(dict(params)), actor, now, now,
         None if limits is None else to_json(dict(limits)))).lastrowid
    assert jid is not None
    return jid


def fetch(conn: sqlite3.Connection, job_id: int) -> Job:
    """The job with this id, or NotFoundError."""
    try:
        jid = int(job_id)
    except (TypeError, ValueError):
        jid = -1
    row = conn.execute(f"SELECT {_FIELDS} FROM jobs WHERE id = ?", (jid,)).fetchone()
    if row is None:
        raise NotFoundError(f"there is no job {job_id!r}", where="job",
                            fix="List the jobs to find the right number", code="JOB-UNKNOWN")
    return _job(row)


def fetch_many(conn: sqlite3.Connection, *, district: str | None = None,
               layer: str | None = None, states: Sequence[str] | None = None,
               actor: str | None = None, limit: int = 100) -> list[Job]:
    """Jobs matching every filter given, newest first."""
    clauses, params = [], []
    if district is not None:
        clauses.append("district = ?")
        params.append(district)
    if layer is not None:
        clauses.append("layer = ?")
        params.append(layer)
    if states is not None:
        unknown = [s for s in states if s not in STATES]
        if unknown:
            raise UsageError(f"unknown job state {unknown[0]!r}", where="state",
                             fix="Use one of: " + ", ".join(STATES))
        clauses.append(f"state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    if actor is not None:
        clauses.append("actor = ?")
        params.append(actor)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(f"SELECT {_FIELDS} FROM jobs {where} ORDER BY id DESC LIMIT ?",
                        (*params, max(0, int(limit)))).fetchall()
    return [_job(r) for r in rows]


def update(conn: sqlite3.Connection, job_id: int, *, only_if_state: str | None = None,
           only_if_pid: int | None = None, only_if_claim: Claim | None = None,
           **values: Any) -> bool:
    """Set columns of a job; JSON columns take Python values. True if the row changed.

    ``only_if_state`` / ``only_if_pid`` make the update conditional, so a worker never
    overwrites a job that was meanwhile cancelled or reaped, and a reaper never
    overwrites a job that finished meanwhile. ``only_if_claim`` (node, pid, attempt) is
    the worker's fence across nodes: a worker whose job was re-queued and claimed again
    elsewhere (same pid on another node, or its own earlier attempt) writes nothing.
    """
    bad = set(values) - _UPDATABLE
    if bad:
        raise ValueError(f"cannot update job columns {sorted(bad)}")
    if "stage" in values and values["stage"] not in STAGES:
        raise ValueError(f"unknown stage {values['stage']!r}")
    for name in ("params", "result", "error", "limits"):
        if name in values and values[name] is not None:
            values[name] = to_json(values[name])
    values["updated_at"] = utc_now()
    sets = ", ".join(f"{name} = ?" for name in values)
    sql, params = f"UPDATE jobs SET {sets} WHERE id = ?", [*values.values(), job_id]
    if only_if_state is not None:
        sql += " AND state = ?"
        params.append(only_if_state)
    if only_if_pid is not None:
        sql += " AND pid = ?"
        params.append(only_if_pid)
    if only_if_claim is not None:
        sql += " AND node = ? AND pid = ? AND attempt = ?"
        params.extend(only_if_claim)
    return conn.execute(sql, params).rowcount == 1


# --------------------------------------------------------------------------- claiming
#
# Why the claim is one statement: two workers (on one node or several) asking for work
# at the same moment must never both get the same job. SQLite serialises writers, and
# ``BEGIN IMMEDIATE`` takes the write lock before the statement reads the queue, so the
# sub-select and the update see one state; PostgreSQL's ``FOR UPDATE SKIP LOCKED`` lets
# a second claimer pass over the row the first one holds instead of waiting for it.
# Timestamps of the claim protocol (claimed_at, heartbeat_at and the stale cut-off) come
# from the database's clock, never a node's: nodes whose clocks drift apart by more than
# the stale limit would otherwise take each other's live jobs.

#: (node, pid, attempt): the claim a worker holds; see `update`'s ``only_if_claim``.
Claim = tuple[str, int, int]


def _is_sqlite(conn: Any) -> bool:
    return isinstance(conn, sqlite3.Connection)


def _now_sql(conn: Any) -> str:
    """SQL for the database's current UTC time, formatted as `utc_now` formats it (so
    text comparison orders it)."""
    if _is_sqlite(conn):
        return "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
    return """to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


def _ago_sql(conn: Any) -> str:
    """SQL for the database's UTC time ``?`` seconds ago, formatted like `_now_sql`."""
    if _is_sqlite(conn):
        return "strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-' || CAST(? AS INTEGER) || ' seconds')"
    return ("""to_char((now() - make_interval(secs => ?)) AT TIME ZONE 'UTC', """
            """'YYYY-MM-DD"T"HH24:MI:SS"Z"')""")


def claim_next(conn: sqlite3.Connection, *, node: str, pid: int) -> Job | None:
    """Claim the oldest queued job for process `pid` of `node`; None if none is queued.

    One statement in its own transaction: the job becomes ``running`` with this
    worker's node and pid, a fresh ``claimed_at``/``heartbeat_at``/``started_at`` and
    ``attempt + 1``.
    """
    now = _now_sql(conn)
    skip = "" if _is_sqlite(conn) else " FOR UPDATE SKIP LOCKED"
    sql = (f"UPDATE jobs SET state = 'running', node = ?, pid = ?, runner = 'worker', "
           f"stage = 'starting', percent = ?, message = '', attempt = attempt + 1, "
           f"claimed_at = {now}, heartbeat_at = {now}, started_at = {now}, "
           f"updated_at = {now} "
           f"WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id{skip} LIMIT 1) "
           f"RETURNING {_FIELDS}")
    with transaction(conn):
        row = conn.execute(sql, (node, pid, STAGES["starting"])).fetchone()
    return None if row is None else _job(row)


def mark_spawned(conn: sqlite3.Connection, job_id: int, *, node: str, pid: int) -> bool:
    """Record that a web node's dispatcher started process `pid` for a queued job (the
    caller holds the transaction that chose it): the spawn runner's claim."""
    now = _now_sql(conn)
    return conn.execute(
        f"UPDATE jobs SET state = 'running', node = ?, pid = ?, runner = 'spawn', "
        f"stage = 'starting', percent = ?, message = '', attempt = attempt + 1, "
        f"claimed_at = {now}, heartbeat_at = {now}, started_at = {now}, updated_at = {now} "
        f"WHERE id = ? AND state = 'queued'",
        (node, pid, STAGES["starting"], job_id)).rowcount == 1


def heartbeat(conn: sqlite3.Connection, job_id: int, claim: Claim) -> tuple[bool, bool]:
    """Refresh the heartbeat of the job `claim` holds: (still ours, cancel requested).

    Not ours any more means the job was re-queued (this worker looked dead), cancelled
    and reaped, or finished: the worker must stop without writing.
    """
    row = conn.execute(
        f"UPDATE jobs SET heartbeat_at = {_now_sql(conn)} WHERE id = ? AND state = 'running' "
        f"AND node = ? AND pid = ? AND attempt = ? RETURNING cancel_requested_at",
        (job_id, *claim)).fetchone()
    if row is None:
        return False, False
    return True, row[0] is not None


def stale(conn: sqlite3.Connection, seconds: float, *, local_node: str) -> list[Job]:
    """Running jobs whose worker sent no heartbeat for `seconds`, except the ones the
    dispatcher of `local_node` spawned (those are judged by their lock file, which tells
    at once). A row from before heartbeats were recorded counts as spawned here."""
    rows = conn.execute(
        f"SELECT {_FIELDS} FROM jobs WHERE state = 'running' "
        f"AND COALESCE(heartbeat_at, updated_at) < {_ago_sql(conn)} "
        f"AND NOT (COALESCE(runner, 'spawn') = 'spawn' AND COALESCE(node, ?) = ?) "
        f"ORDER BY id", (int(seconds), local_node, local_node)).fetchall()
    return [_job(r) for r in rows]


def requeue_if_stale(conn: sqlite3.Connection, job: Job, seconds: float,
                     message: str) -> bool:
    """Put a stale running job back in the queue (its attempt count kept), unless its
    worker sent a heartbeat or finished meanwhile. The caller holds a transaction."""
    return conn.execute(
        f"UPDATE jobs SET state = 'queued', stage = 'queued', percent = 0, message = ?, "
        f"node = NULL, pid = NULL, runner = NULL, updated_at = {_now_sql(conn)} "
        f"WHERE id = ? AND state = 'running' AND attempt = ? "
        f"AND COALESCE(heartbeat_at, updated_at) < {_ago_sql(conn)}",
        (message, job.id, job.attempt, int(seconds))).rowcount == 1
