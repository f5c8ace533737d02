"""Server-side sign-in sessions: signing out ends the session everywhere it was copied.

Flask's session is a signed cookie: the server keeps nothing, so a cookie copied before
sign-out (from a shared computer, a proxy log, a browser backup) stayed valid until
``session_hours`` had passed — issue 11, item 13. Now each sign-in creates a row here,
named by a random id that only the (signed, HttpOnly) cookie holds; every request
checks the row, and signing out deletes it. The catalogue keeps only the SHA-256 of
the id, like API tokens: a copy of the catalogue cannot be replayed as a session.

One row per sign-in rather than a per-user counter: signing out on one computer ends
that session only, not the same person's other ones. A password change, a role change
or disabling the account still ends all of them (``users.session_epoch``). Rows older
than the longest session are removed when someone signs in, so the table stays small.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from gisportal.accounts.db import Home, connect, transaction
from gisportal.accounts.users import _USER_COLUMNS, User, _user

__all__ = ["start", "user_for_session", "end", "end_all"]


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def start(home: Home, user_id: int, *, max_age_s: float,
          now: float | None = None) -> str:
    """A new session of ``user_id``; its id, to keep in the signed cookie only."""
    now = time.time() if now is None else now
    sid = secrets.token_urlsafe(32)
    with connect(home) as conn, transaction(conn):
        conn.execute("DELETE FROM login_sessions WHERE created_at <= ?", (now - max_age_s,))
        conn.execute("INSERT INTO login_sessions (sid_sha256, user_id, created_at) "
                     "VALUES (?, ?, ?)", (_digest(sid), int(user_id), now))
    return sid


def user_for_session(home: Home, user_id: int, epoch: int, sid: str, *,
                     max_age_s: float, now: float | None = None) -> User | None:
    """The active user of a live session, or None.

    Live: the row exists (not signed out), belongs to ``user_id``, is younger than
    ``max_age_s``, and the account is active with the same ``session_epoch`` as when
    the cookie was made (no password, role or state change since). One query.
    """
    if not isinstance(sid, str) or not 20 <= len(sid) <= 100:
        return None
    now = time.time() if now is None else now
    columns = ", ".join(f"u.{c.strip()}" for c in _USER_COLUMNS.split(","))
    with connect(home) as conn:
        row = conn.execute(
            f"SELECT {columns} FROM login_sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.sid_sha256 = ? AND s.user_id = ? AND s.created_at > ? "
            "AND u.disabled_at IS NULL AND u.session_epoch = ?",
            (_digest(sid), int(user_id), now - max_age_s, int(epoch))).fetchone()
        return None if row is None else _user(conn, row)


def end(home: Home, sid: str | None) -> bool:
    """Sign this session out for good; whether it was live."""
    if not isinstance(sid, str) or not sid:
        return False
    with connect(home) as conn, transaction(conn):
        return conn.execute("DELETE FROM login_sessions WHERE sid_sha256 = ?",
                            (_digest(sid),)).rowcount > 0


def end_all(home: Home, user_id: int) -> int:
    """Sign every session of ``user_id`` out; how many there were."""
    with connect(home) as conn, transaction(conn):
        return conn.execute("DELETE FROM login_sessions WHERE user_id = ?",
                            (int(user_id),)).rowcount
