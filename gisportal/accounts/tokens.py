"""API tokens: how scripts call the JSON API without a browser session.

A token is 32 random bytes (``gp_`` + URL-safe base64), shown once when created and
stored only as its SHA-256: a stolen catalogue gives no usable token. A plain hash is
enough here (no Argon2) because the token is random and long, not a human password,
and it makes the look-up one indexed query per request. Requests send it as
``Authorization: Bearer gp_…``; a token works only while it is not revoked, not
expired, and its user is active.

Expiry (issue 11, item 13): a token may be given an end — ``90d``, ``12h``, a date
(the token works through that day, Vietnam time) or an ISO time with its offset — so
a token pasted into a forgotten script or a leaked CI log stops working on its own.
Without one it lasts until revoked, as before. An expired token is refused with its
own code (``TOKEN-EXPIRED``) and the time it ended, so the script's owner knows what to
do; the time is stored like every other time in the catalogue (UTC text; ``timestamptz``
in PostgreSQL, read back as the same text), so the check is part of the one indexed
look-up.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gisportal.accounts import audit
from gisportal.accounts.db import Home, connect, transaction
from gisportal.accounts.errors import AuthError
from gisportal.accounts.users import _USER_COLUMNS, User, _row, _user
from gisportal.base.errors import UsageError

__all__ = ["PREFIX", "Token", "create_token", "user_for_token", "check_token", "revoke_tokens",
           "list_tokens", "parse_expiry"]

PREFIX = "gp_"
_TOKEN_RE = re.compile(r"gp_[A-Za-z0-9_-]{40,60}")
_VN = timedelta(hours=7)
_DURATION_RE = re.compile(r"(\d{1,6})\s*([hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
#: The furthest end a token may be given: beyond it, "never" says the truth.
MAX_LIFETIME = timedelta(days=3660)


@dataclass(frozen=True)
class Token:
    """A token as listed (never its text, which is not kept)."""

    id: int
    user: str
    label: str
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    state: str  # valid, expired or revoked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _utc_text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_expiry(text: str | None, *, now: datetime | None = None) -> str | None:
    """When a token given ``--expires text`` ends, as UTC text; None for never.

    ``90d``, ``12h``, ``2w`` from now; ``2027-01-31`` through that day in Vietnam time
    (it ends at midnight UTC+7); an ISO time with ``Z`` or an offset. A time without
    an offset is refused rather than guessed (UTC or Vietnam is 7 hours apart).
    """
    if text is None or not str(text).strip() or str(text).strip().lower() == "never":
        return None
    raw = str(text).strip()
    now = now or datetime.now(UTC)
    fix = ("give e.g. 90d (days), 12h (hours), 2w (weeks), a date such as 2027-01-31 "
           "(through that day, Vietnam time) or a time with its offset, "
           "2027-01-31T17:00+07:00")
    if m := _DURATION_RE.fullmatch(raw.lower()):
        end = now + int(m.group(1)) * _UNITS[m.group(2)]
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            day = datetime.strptime(raw, "%Y-%m-%d")
        except ValueError:
            raise UsageError(f"--expires {raw!r} is not a date", where="--expires",
                             fix=fix, code="TOKEN-EXPIRY-INVALID") from None
        end = (day + timedelta(days=1) - _VN).replace(tzinfo=UTC)
    else:
        try:
            end = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise UsageError(f"--expires {raw[:40]!r} is not a duration, a date or a time",
                             where="--expires", fix=fix, code="TOKEN-EXPIRY-INVALID") from None
        if end.tzinfo is None:
            raise UsageError(f"--expires {raw[:40]!r} has no time zone", where="--expires",
                             fix="add Z (UTC) or +07:00 (Vietnam), or give a date",
                             code="TOKEN-EXPIRY-INVALID")
    if end <= now:
        raise UsageError(f"--expires {raw[:40]!r} is not in the future", where="--expires",
                         fix=fix, code="TOKEN-EXPIRY-INVALID")
    if end - now > MAX_LIFETIME:
        raise UsageError(f"--expires {raw[:40]!r} is more than 10 years away",
                         where="--expires", fix="give a nearer end, or none (never)",
                         code="TOKEN-EXPIRY-INVALID")
    return _utc_text(end)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def create_token(home: Home, name: str, *, label: str = "", actor: Any = "system",
                 ip: str | None = None, expires: str | None = None) -> str:
    """A new token for the user ``name``; the only time its text is available.

    ``expires`` is what `parse_expiry` reads (``90d``, ``2027-01-31``…); None: never.
    """
    expires_at = parse_expiry(expires)
    token = PREFIX + secrets.token_urlsafe(32)
    with connect(home) as conn, transaction(conn):
        row = _row(conn, name)
        token_id = conn.execute(
            "INSERT INTO api_tokens (user_id, token_sha256, label, created_at, created_by, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (row["id"], _digest(token), str(label)[:100], audit.utc_now(),
             audit.actor_name(actor), expires_at)).fetchone()[0]
        audit.insert(conn, actor, "token.create", ip=ip,
                     detail={"user": row["name"], "token_id": token_id,
                             "label": str(label)[:100], "expires_at": expires_at})
    return token


def user_for_token(home: Home, token: str) -> User | None:
    """The active user owning this unrevoked, unexpired token, or None (never raises on
    bad text)."""
    try:
        return check_token(home, token)
    except AuthError:
        return None


def check_token(home: Home, token: str, *, now: str | None = None) -> User:
    """The active user owning this token, or AuthError: ``TOKEN-EXPIRED`` (with when)
    for an expired one, ``TOKEN-INVALID`` for anything else (unknown, revoked, user
    disabled, not a token at all)."""
    invalid = AuthError("the API token is not valid (unknown, revoked, or its user is "
                        "disabled)", where="Authorization header",
                        fix="create a new one with gisportal users token NAME",
                        code="TOKEN-INVALID")
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise invalid
    columns = ", ".join(f"u.{c.strip()}" for c in _USER_COLUMNS.split(","))
    with connect(home) as conn:
        row = conn.execute(
            f"SELECT {columns}, t.expires_at AS token_expires_at FROM api_tokens t "
            "JOIN users u ON u.id = t.user_id "
            "WHERE t.token_sha256 = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
            (_digest(token),)).fetchone()
        if row is None:
            raise invalid
        ends = row["token_expires_at"]
        if ends is not None and ends <= (now or audit.utc_now()):
            raise AuthError(f"the API token expired at {ends[:16].replace('T', ' ')} UTC / "
                            "mã truy cập API đã hết hạn", where="Authorization header",
                            fix="create a new one with gisportal users token NAME "
                                "--expires 90d", code="TOKEN-EXPIRED")
        return _user(conn, row)


def list_tokens(home: Home, name: str | None = None, *,
                now: str | None = None) -> list[Token]:
    """Tokens of the user ``name`` (any case), or of everyone; newest first, revoked and
    expired ones too (their state says so)."""
    now = now or audit.utc_now()
    with connect(home) as conn:
        where, args = "", ()
        if name is not None:
            where, args = " WHERE t.user_id = ?", (_row(conn, name)["id"],)
        rows = conn.execute(
            "SELECT t.id, u.name, t.label, t.created_at, t.created_by, t.expires_at, "
            f"t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id{where} "
            "ORDER BY t.id DESC", args).fetchall()
    return [Token(id=r["id"], user=r["name"], label=r["label"], created_at=r["created_at"],
                  created_by=r["created_by"], expires_at=r["expires_at"],
                  revoked_at=r["revoked_at"],
                  state="revoked" if r["revoked_at"] else
                  "expired" if r["expires_at"] is not None and r["expires_at"] <= now
                  else "valid") for r in rows]


def revoke_tokens(home: Home, name: str, *, actor: Any = "system",
                  ip: str | None = None) -> int:
    """Revoke every token of the user ``name``; how many were still valid."""
    with connect(home) as conn, transaction(conn):
        row = _row(conn, name)
        n = conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND "
                         "revoked_at IS NULL", (audit.utc_now(), row["id"])).rowcount
        audit.insert(conn, actor, "token.revoke", ip=ip,
                     detail={"user": row["name"], "revoked": n})
        return n
