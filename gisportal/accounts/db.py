"""The accounts' tables: in the embedded catalogue, or in PostgreSQL in production mode.

Accounts have two components with their own migrations: ``users`` (users, their
districts, API tokens, login failures and admitted attempts, server-side sessions) and
``audit`` (the append-only event log).

Embedded (the default): the tables live in ``<data home>/catalogue.sqlite``, shared with
the store (``store/gpkg.py``) and jobs, which keep their schema versions in the same
``schema_version`` table, one row per component. Each migration runs once per catalogue,
inside one ``BEGIN IMMEDIATE`` transaction, so two processes opening a fresh data home at
the same time cannot both apply it. WAL mode lets a reader (a user loaded for a page)
never wait for a writer (an audit event being recorded).

Production (setting ``database``): the same tables in PostgreSQL (`MIGRATIONS`), created
by ``gisportal migrate`` (this module is in `gisportal.cli.main.MIGRATED`), so every app
node sees the same accounts, sessions, sign-in counters and audit log. Values keep their
meaning: times are ``timestamptz`` (read back as the same UTC text), the throttle's and
sessions' epoch seconds ``double precision``, ids ``bigint`` identities. The audit
table's append-only rule is enforced there by triggers too (UPDATE, DELETE, TRUNCATE),
so no client — a psql session with the nodes' credentials included — rewrites history
by a statement. What a trigger cannot stop is its table's owner (or a superuser)
dropping or disabling it first: where that matters, run ``gisportal migrate`` as the
owning role and the nodes as a role granted only what they use on the tables
(``SELECT, INSERT`` on ``audit``); such DDL is then a privilege the nodes lack.

Connections are opened per call (`gisportal.store.catalogue.connect`, the seam both
backends share): the functions are called from CLI commands, server threads and forked
gunicorn workers alike, and a fresh (or freshly pooled) connection is right in all of
them.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from gisportal.store import catalogue
from gisportal.store.catalogue import (
    BUSY_TIMEOUT_S,
    CATALOGUE,
    Connection,
    catalogue_path,
    lock,
    transaction,
)

if TYPE_CHECKING:  # psycopg is loaded only in production mode
    from gisportal.store import postgres

__all__ = ["CATALOGUE", "BUSY_TIMEOUT_S", "Connection", "Home", "MIGRATIONS",
           "SQLITE_MIGRATIONS", "catalogue_path", "connect", "lock", "transaction"]

#: What the account functions take as the data home: a folder, or a `DataHome` (which
#: carries the app's settings, so the database setting need not be in the environment).
Home = str | os.PathLike[str]

#: Embedded (SQLite) migrations per component; entry i brings the component's schema to
#: version i + 1.
SQLITE_MIGRATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
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

#: The audit table refuses every UPDATE, DELETE and TRUNCATE statement, whoever sends it:
#: statement-level, so even a statement that matches no row is refused (and says why).
_AUDIT_APPEND_ONLY = """CREATE FUNCTION audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$"""

#: PostgreSQL migrations per component (what ``gisportal migrate`` applies, see
#: `gisportal.store.postgres.migrate`): the embedded schema at its current version, in
#: PostgreSQL's types. A released step is never edited: a change is a new step, here and
#: in `SQLITE_MIGRATIONS` alike.
MIGRATIONS: postgres.Migrations = {
    "users": (
        (
            # COLLATE "C": names are ordered by code point, as SQLite orders them.
            """CREATE TABLE users (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                name text NOT NULL,
                name_key text COLLATE "C" NOT NULL UNIQUE,
                role text NOT NULL CHECK (role IN ('admin', 'planner')),
                password_hash text NOT NULL,
                session_epoch integer NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL,
                created_by text NOT NULL,
                password_changed_at timestamptz NOT NULL,
                disabled_at timestamptz,
                disabled_by text,
                last_login_at timestamptz
            )""",
            """CREATE TABLE user_districts (
                user_id bigint NOT NULL REFERENCES users (id),
                district text COLLATE "C" NOT NULL,
                PRIMARY KEY (user_id, district)
            )""",
            "CREATE INDEX user_districts_by_district ON user_districts (district)",
            """CREATE TABLE api_tokens (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                user_id bigint NOT NULL REFERENCES users (id),
                token_sha256 text NOT NULL UNIQUE,
                label text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL,
                created_by text NOT NULL,
                revoked_at timestamptz,
                expires_at timestamptz
            )""",
            "CREATE INDEX api_tokens_by_user ON api_tokens (user_id)",
            # `rowid` names the identity column as SQLite names its implicit one, so the
            # throttle's "take back this attempt's row" is one statement on both.
            """CREATE TABLE login_failures (
                rowid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                key text NOT NULL,
                at double precision NOT NULL
            )""",
            "CREATE INDEX login_failures_by_key ON login_failures (key, at)",
            "CREATE INDEX login_failures_by_time ON login_failures (at)",
            "CREATE TABLE login_attempts (at double precision NOT NULL)",
            "CREATE INDEX login_attempts_by_time ON login_attempts (at)",
            """CREATE TABLE login_sessions (
                sid_sha256 text PRIMARY KEY,
                user_id bigint NOT NULL REFERENCES users (id),
                created_at double precision NOT NULL
            )""",
            "CREATE INDEX login_sessions_by_user ON login_sessions (user_id)",
            "CREATE INDEX login_sessions_by_time ON login_sessions (created_at)",
        ),
    ),
    "audit": (
        (
            """CREATE TABLE audit (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                at timestamptz NOT NULL,
                actor text NOT NULL,
                actor_key text NOT NULL,
                action text NOT NULL,
                district text,
                kind text,
                version bigint,
                decision text,
                ip text,
                detail text
            )""",
            "CREATE INDEX audit_by_actor ON audit (actor_key, id)",
            "CREATE INDEX audit_by_action ON audit (action, id)",
            "CREATE INDEX audit_by_district ON audit (district, id)",
            "CREATE INDEX audit_by_time ON audit (at)",
            _AUDIT_APPEND_ONLY,
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
            "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
        ),
    ),
}


def connect(home: Home) -> AbstractContextManager[Connection]:
    """A connection to the home's accounts tables: the embedded catalogue (migrated, rows
    as `sqlite3.Row`, foreign keys on) or, with the ``database`` setting, PostgreSQL
    (schema checked; rows by name and index alike)."""
    return catalogue.connect(home, SQLITE_MIGRATIONS, MIGRATIONS, row_factory=sqlite3.Row,
                             foreign_keys=True)
