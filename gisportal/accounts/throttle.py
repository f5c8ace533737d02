"""Sign-in throttling: a failure counter per (user name, client address) in the catalogue.

Why the catalogue and not Flask-Limiter: Flask-Limiter's default storage is the
memory of one process, so with several gunicorn workers an attacker gets N tries per
worker, and a restart forgets everything; sharing it needs Redis or Memcached, which
the embedded deployment does not have. The catalogue is already shared by every
thread and process of a data home, and a failure is one small insert.

Rule: after ``max_failures`` failed sign-ins for one name from one address within
``window_s`` seconds, further attempts are refused (HTTP 429 with Retry-After) until
the oldest of those failures leaves the window; a successful sign-in clears the
counter. Keying on the name *and* the address means a stranger cannot lock a planner
out from elsewhere. The key is a hash, so hostile names do not land in this table.
Behind a reverse proxy the address must be the client's (e.g. werkzeug's ProxyFix),
or all clients share the proxy's address.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

from gisportal.accounts.db import connect, transaction
from gisportal.accounts.users import name_key
from gisportal.errors import UsageError

__all__ = ["Limit", "retry_after", "record_failure", "reset"]


@dataclass(frozen=True)
class Limit:
    """``max_failures`` failures allowed within ``window_s`` seconds."""

    max_failures: int = 5
    window_s: float = 900.0

    def __post_init__(self) -> None:
        if self.max_failures < 1 or not self.window_s > 0:
            raise UsageError(f"login limit {self.max_failures} failures in "
                             f"{self.window_s} s is not usable",
                             where="login_max_failures / login_window_seconds",
                             fix="use at least 1 failure and a window above 0 seconds",
                             code="SETTING-INVALID")


def _key(name: str, ip: str | None) -> str:
    raw = f"{name_key(str(name))[:256]}\0{ip or '-'}"
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def retry_after(home: str | Path, name: str, ip: str | None, limit: Limit,
                *, now: float | None = None) -> int:
    """Whole seconds to wait before trying again; 0 when an attempt is allowed."""
    now = time.time() if now is None else now
    with connect(home) as conn:
        rows = conn.execute("SELECT at FROM login_failures WHERE key = ? AND at > ? "
                            "ORDER BY at DESC LIMIT ?",
                            (_key(name, ip), now - limit.window_s, limit.max_failures)
                            ).fetchall()
    if len(rows) < limit.max_failures:
        return 0
    # Blocked until the oldest of the last max_failures failures leaves the window.
    return max(1, math.ceil(rows[-1][0] + limit.window_s - now))


def record_failure(home: str | Path, name: str, ip: str | None, limit: Limit,
                   *, now: float | None = None) -> None:
    """Count one failed sign-in (and forget failures older than the window)."""
    now = time.time() if now is None else now
    with connect(home) as conn, transaction(conn):
        conn.execute("DELETE FROM login_failures WHERE at <= ?", (now - limit.window_s,))
        conn.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)",
                     (_key(name, ip), now))


def reset(home: str | Path, name: str, ip: str | None) -> None:
    """Forget the failures of (name, address), after a successful sign-in."""
    with connect(home) as conn, transaction(conn):
        conn.execute("DELETE FROM login_failures WHERE key = ?", (_key(name, ip),))
