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

__all__ = ["connect", "transaction", "insert", "fetch", "fetch_many", "update", "to_json"]

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
)

_FIELDS = ("id, kind, district, layer, params, state, stage, percent, message, result, "
           "error, pid, actor, cancel_requested_at, created_at, started_at, updated_at, "
           "finished_at, limits")
#: Columns `update` may set.
_UPDATABLE = frozenset({"params", "state", "stage", "percent", "message", "result", "error",
                        "pid", "cancel_requested_at", "started_at", "finished_at",
                        "limits"})

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
     limits) = row
    return Job(id=jid, kind=kind, district=district, layer=layer, state=state, stage=stage,
               percent=percent, message=message, actor=actor, created_at=created_at,
               updated_at=updated_at, params=_from_json(params) or {},
               result=_from_json(result), error=_from_json(error), pid=pid,
               started_at=started_at, finished_at=finished_at,
               cancel_requested_at=cancel_requested_at, limits=_from_json(limits))


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
           only_if_pid: int | None = None, **values: Any) -> bool:
    """Set columns of a job; JSON columns take Python values. True if the row changed.

    ``only_if_state`` / ``only_if_pid`` make the update conditional, so a worker never
    overwrites a job that was meanwhile cancelled or reaped, and a reaper never
    overwrites a job that finished meanwhile.
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
    return conn.execute(sql, params).rowcount == 1
