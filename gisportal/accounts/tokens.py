"""API tokens: how scripts call the JSON API without a browser session.

A token is 32 random bytes (``gp_`` + URL-safe base64), shown once when created and
stored only as its SHA-256: a stolen catalogue gives no usable token. A plain hash is
enough here (no Argon2) because the token is random and long, not a human password,
and it makes the look-up one indexed query per request. Requests send it as
``Authorization: Bearer gp_…``; a token works only while it is not revoked and its
user is active.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from typing import Any

from gisportal.accounts import audit
from gisportal.accounts.db import connect, transaction
from gisportal.accounts.users import _USER_COLUMNS, User, _row, _user

__all__ = ["PREFIX", "create_token", "user_for_token", "revoke_tokens"]

PREFIX = "gp_"
_TOKEN_RE = re.compile(r"gp_[A-Za-z0-9_-]{40,60}")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def create_token(home: str | Path, name: str, *, label: str = "", actor: Any = "system",
                 ip: str | None = None) -> str:
    """A new token for the user ``name``; the only time its text is available."""
    token = PREFIX + secrets.token_urlsafe(32)
    with connect(home) as conn, transaction(conn):
        row = _row(conn, name)
        cur = conn.execute(
            "INSERT INTO api_tokens (user_id, token_sha256, label, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?)",
            (row["id"], _digest(token), str(label)[:100], audit.utc_now(),
             audit.actor_name(actor)))
        audit.insert(conn, actor, "token.create", ip=ip,
                     detail={"user": row["name"], "token_id": cur.lastrowid,
                             "label": str(label)[:100]})
    return token


def user_for_token(home: str | Path, token: str) -> User | None:
    """The active user owning this unrevoked token, or None (never raises on bad text)."""
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        return None
    columns = ", ".join(f"u.{c.strip()}" for c in _USER_COLUMNS.split(","))
    with connect(home) as conn:
        row = conn.execute(
            f"SELECT {columns} FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_sha256 = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
            (_digest(token),)).fetchone()
        return None if row is None else _user(conn, row)


def revoke_tokens(home: str | Path, name: str, *, actor: Any = "system",
                  ip: str | None = None) -> int:
    """Revoke every token of the user ``name``; how many were still valid."""
    with connect(home) as conn, transaction(conn):
        row = _row(conn, name)
        n = conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND "
                         "revoked_at IS NULL", (audit.utc_now(), row["id"])).rowcount
        audit.insert(conn, actor, "token.revoke", ip=ip,
                     detail={"user": row["name"], "revoked": n})
        return n
