"""The accounts' tables in the embedded catalogue (``<data home>/catalogue.sqlite``).

The catalogue is shared with the store (``store/gpkg.py``), which keeps its schema
version in a ``schema_version`` table with one row per component. Accounts add two
components with their own migrations: ``users`` (users, their districts, API tokens,
login failures and admitted attempts, server-side sessions) and ``audit`` (the
append-only event log). Each migration runs once per catalogue, inside one ``BEGIN
IMMEDIATE`` transaction, so two processes opening a fresh data home at the same time
cannot both apply it.

Connections are opened per call (a fraction of a millisecond) rather than cached: the
functions are called from CLI commands, waitress threads and forked gunicorn workers
alike, and a fresh connection is correct in all of them. WAL mode lets a reader (a
user loaded for a page) never wait for a writer (an audit event being recorded).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

from gisportal.store import catalogue
from gisportal.store.catalogue import BUSY_TIMEOUT_S, CATALOGUE, catalogue_path, transaction

__all__ = ["CATALOGUE", "BUSY_TIMEOUT_S", "catalogue_path", "connect", "transaction"]

#: Migrations per component; entry i brings the component's schema to version i + 1.
MIGRATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "users": (
        (
            """CREATE TABLE users (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                name_key TEXT NOT NULL UNIQUE,
                role TEXT NOT NULL CHECK (role IN ('admin', 'planner')),
                password_hash TEXT NOT NULL,
                session_epoch INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                password_changed_at TEXT NOT NULL,
                disabled_at TEXT,
                disabled_by TEXT,
                last_login_at TEXT
            )""",
            """CREATE TABLE user_districts (
                user_id INTEGER NOT NULL REFERENCES users (id),
                district TEXT NOT NULL,
                PRIMARY KEY (user_id, district)
            ) WITHOUT ROWID""",
            "CREATE INDEX user_districts_by_district ON user_districts (district)",
            """CREATE TABLE api_tokens (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                user_id INTEGER NOT NULL REFERENCES users (id),
                token_sha256 TEXT NOT NULL UNIQUE,
                label TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                revoked_at TEXT
            )""",
            "CREATE INDEX api_tokens_by_user ON api_tokens (user_id)",
            # One row per failed sign-in; `key` is a hash of (user name, client address).
            "CREATE TABLE login_failures (key TEXT NOT NULL, at REAL NOT NULL)",
            "CREATE INDEX login_failures_by_key ON login_failures (key, at)",
            "CREATE INDEX login_failures_by_time ON login_failures (at)",
        ),
        (
            # Sign-in attempts admitted to the password hash, all names and addresses:
            # the service-wide limit that keeps Argon2 from starving look-ups (throttle.py).
            "CREATE TABLE login_attempts (at REAL NOT NULL)",
            "CREATE INDEX login_attempts_by_time ON login_attempts (at)",
            # Server-side sessions: a cookie names one row (by the SHA-256 of its random
            # id); signing out deletes the row, so a copy of the cookie is worth nothing.
            """CREATE TABLE login_sessions (
                sid_sha256 TEXT PRIMARY KEY,
                user_id INTEGER NOT NULL REFERENCES users (id),
                created_at REAL NOT NULL
            )""",
            "CREATE INDEX login_sessions_by_user ON login_sessions (user_id)",
            "CREATE INDEX login_sessions_by_time ON login_sessions (created_at)",
            # API tokens may expire (UTC, as audit.utc_now writes it); NULL: never.
            "ALTER TABLE api_tokens ADD COLUMN expires_at TEXT",
        ),
    ),
    "audit": (
        (
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                actor_key TEXT NOT NULL,
                action TEXT NOT NULL,
                district TEXT,
                kind TEXT,
                version INTEGER,
                decision TEXT,
                ip TEXT,
                detail TEXT
            )""",
            "CREATE INDEX audit_by_actor ON audit (actor_key, id)",
            "CREATE INDEX audit_by_action ON audit (action, id)",
            "CREATE INDEX audit_by_district ON audit (district, id)",
            "CREATE INDEX audit_by_time ON audit (at)",
            # Append-only, enforced by the database for every client, not just this code.
            """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""",
            """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""",
        ),
    ),
}

def connect(home: str | Path) -> AbstractContextManager[sqlite3.Connection]:
    """A connection to the data home's catalogue, migrated, rows as `sqlite3.Row`."""
    return catalogue.connect(home, MIGRATIONS, row_factory=sqlite3.Row, foreign_keys=True)
