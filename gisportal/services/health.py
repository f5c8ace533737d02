"""Is this node able to serve? The checks behind ``GET /healthz``.

A load balancer asks every node this question every few seconds and takes a node out of
rotation when the answer is not 200, so the checks are what a request needs and no
more, each cheap: the store answers a catalogue read (the database, in production
mode), the shared file areas answer a listing (the object store, in production mode),
and the node's scratch folder takes a write. Each check reports its time in ms.

What a check found is reported by name and a short reason class, never the error's
text: a health answer is public and must not disclose addresses, paths or credentials.
The full error goes to the log.

The answer is kept for `CACHE_SECONDS` per process: a load balancer polling every few
seconds gets a fresh one, and a flood of ``/healthz`` (it is public) costs the database
and the object store nothing more than one check per process every two seconds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gisportal.store.home import DataHome

__all__ = ["CACHE_SECONDS", "Health", "check"]

logger = logging.getLogger(__name__)

#: Seconds an answer is reused within one process.
CACHE_SECONDS = 2.0

#: (home, database, files) → (when, answer).
_cache: dict[str, tuple[float, Health]] = {}
_lock = threading.Lock()


@dataclass
class Health:
    """The answer: ``ok`` when every check passed, else ``fail`` (HTTP 503)."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c["status"] == "ok" for c in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "fail", "checks": self.checks}


def _timed(health: Health, name: str, probe: Callable[[], None]) -> None:
    start = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure of a dependency is a failed check
        logger.warning("health check %s failed: %s", name, exc, exc_info=True)
        health.checks[name] = {"status": "fail", "error": type(exc).__name__,
                               "ms": round((time.perf_counter() - start) * 1000, 1)}
        return
    health.checks[name] = {"status": "ok",
                           "ms": round((time.perf_counter() - start) * 1000, 1)}


def check(home: DataHome, *, max_age: float = CACHE_SECONDS) -> Health:
    """The checks of `home` (store, shared file areas, local scratch), run at most once
    per `max_age` seconds in this process (one thread runs them; the others wait)."""
    key = "\n".join((str(home.root), str(home.settings.get("database") or ""),
                     str(home.settings.get("files") or "")))
    with _lock:
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return hit[1]
        health = _run(home)
        _cache[key] = (time.monotonic(), health)
        return health


def _run(home: DataHome) -> Health:
    health = Health()
    _timed(health, "store", lambda: home.store.districts())

    def files() -> None:
        if not home.files_remote:  # folders of this home: the scratch check covers them
            os.stat(home.root)
            return
        for name in ("uploads", "tiles", "decisions"):
            # One request each: the first page of a listing (S3 lists lazily).
            next(iter(home.file_area(name).list("")), None)

    _timed(health, "files", files)

    def scratch() -> None:
        probe = home.scratch / f".health-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()

    _timed(health, "scratch", scratch)
    return health
