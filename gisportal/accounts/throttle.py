"""Sign-in throttling in the catalogue — per (name, address), per address, per service.

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

Floods (issue 11, item 2)
-------------------------
That rule alone lets an anonymous client try a new name each time, and every try
costs an Argon2 hash (~0.2 CPU-seconds): ten tries a second took the look-ups from
1 500 to 19 answers a second. So `check` (reads only) and `admit` (under the write
lock, counting), called *before* the hash, also refuse:

- an **address** with ``per_address.max_failures`` failed sign-ins (any names) within
  its window — the single-address flood stops there, without touching the next limit;
- the **service** once ``service.max_failures`` attempts (here: attempts admitted to
  the hash, whoever sent them) fell within ``service.window_s`` — a flood from many
  addresses costs at most that much Argon2 work, whatever its size.

Admission is atomic: the checks run again under the write lock (``BEGIN IMMEDIATE``;
in PostgreSQL an advisory lock all nodes share, `gisportal.store.catalogue.lock`) and
the attempt is counted in the same transaction, as a failure of the name and of the
address that `succeeded` takes back — so concurrent tries in several workers (or
nodes) cannot all pass a check before any of them is counted. Refusals write nothing
(a read, then a read under the lock), and these rows are written without waiting for
an fsync (``synchronous=NORMAL``; ``synchronous_commit = off`` in PostgreSQL): a
counter lost in a power cut costs nothing.

`hash_slot` runs the hash itself on one low-priority thread per process, and a try
that finds it taken waits at most ``HASH_WAIT_S`` before its 429: the admitted
attempts cannot take a look-up's CPU, nor hold many of a worker's request threads.
The order in the view: `check` → `hash_slot` (held to the end) → `admit` → the hash
→ the audit event, and `succeeded` on a right password.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gisportal.accounts.db import Connection, Home, connect, lock, transaction
from gisportal.accounts.users import name_key
from gisportal.base.errors import UsageError
from gisportal.store.catalogue import backend

__all__ = ["Limit", "Limits", "Admission", "Refusal", "HashBusy", "check", "admit",
           "succeeded", "hash_slot", "retry_after", "record_failure", "reset", "HASH_WAIT_S"]

T = TypeVar("T")

#: Seconds a sign-in waits for this process's hash thread before it is answered 429.
#: None on purpose: a waiting sign-in holds one of the worker's few request threads,
#: which look-ups need (with a 0.1 s wait, a flood's answers took 120 ms, each holding
#: a thread; without, 9 ms — bench/bench_signin_flood.py). Two people signing in within
#: the same fraction of a second on one worker: one is asked to retry in a second.
HASH_WAIT_S = 0.0
#: How much lower (``nice``) the hash thread runs than the request threads.
HASH_NICE = 10


@dataclass(frozen=True)
class Limit:
    """``max_failures`` failures allowed within ``window_s`` seconds."""

    max_failures: int = 5
    window_s: float = 900.0
    #: The settings it comes from, named when they are not usable.
    settings: str = field(default="login_max_failures / login_window_seconds", compare=False)

    def __post_init__(self) -> None:
        if self.max_failures < 1 or not self.window_s > 0:
            raise UsageError(f"login limit {self.max_failures} in {self.window_s} s is not "
                             "usable", where=self.settings,
                             fix="use at least 1 and a window above 0 seconds",
                             code="SETTING-INVALID")

    def wait(self, rows: list[Any], now: float) -> int:
        """Seconds until one more is allowed, given the newest ``max_failures`` times
        within the window (newest first); 0 when fewer are there."""
        if len(rows) < self.max_failures:
            return 0
        # Blocked until the oldest of the last max_failures leaves the window.
        return max(1, math.ceil(rows[-1][0] + self.window_s - now))


@dataclass(frozen=True)
class Limits:
    """Every sign-in limit: failures per (name, address), failures per address, and
    attempts admitted to the password hash across the service."""

    per_name: Limit
    per_address: Limit
    service: Limit


@dataclass(frozen=True)
class Admission:
    """An attempt allowed to reach the hash; already counted as a failure until
    `succeeded` says otherwise."""

    name_row: int
    address_row: int
    at: float


@dataclass(frozen=True)
class Refusal:
    """An attempt refused before the hash: wait ``wait`` seconds; ``scope`` says which
    limit (``name``, ``address`` or ``service``)."""

    wait: int
    scope: str


class HashBusy(Exception):
    """This process's hash thread stayed busy for longer than the sign-in may wait."""


def _key(name: str, ip: str | None) -> str:
    raw = f"{name_key(str(name))[:256]}\0{ip or '-'}"
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _address_key(ip: str | None) -> str:
    """The address's own key; the leading NUL keeps it apart from every (name, address)."""
    raw = f"\0address\0{ip or '-'}"
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@contextmanager
def _relaxed_transaction(conn: Connection) -> Iterator[Connection]:
    """A write transaction that does not wait for an fsync at commit (SQLite: WAL keeps
    the file consistent; PostgreSQL: ``synchronous_commit = off`` for this transaction
    only, the database stays consistent): these counters are worth less than the
    milliseconds an fsync costs under a flood."""
    postgresql = backend(conn) == "postgresql"
    if not postgresql:
        conn.execute("PRAGMA synchronous = NORMAL")  # not allowed inside a transaction
    with transaction(conn):
        if postgresql:
            conn.execute("SET LOCAL synchronous_commit = off")
        yield conn


def _refusal(conn: Connection, name_key_: str, address_key: str, limits: Limits,
             now: float) -> Refusal | None:
    """The first limit this attempt is over, address first (its refusal costs no slot
    of the service's), or None."""
    for scope, key, limit in (("address", address_key, limits.per_address),
                              ("name", name_key_, limits.per_name)):
        rows = conn.execute("SELECT at FROM login_failures WHERE key = ? AND at > ? "
                            "ORDER BY at DESC LIMIT ?",
                            (key, now - limit.window_s, limit.max_failures)).fetchall()
        wait = limit.wait(rows, now)
        if wait:
            return Refusal(wait, scope)
    limit = limits.service
    rows = conn.execute("SELECT at FROM login_attempts WHERE at > ? ORDER BY at DESC LIMIT ?",
                        (now - limit.window_s, limit.max_failures)).fetchall()
    wait = limit.wait(rows, now)
    return Refusal(wait, "service") if wait else None


def check(home: Home, name: str, ip: str | None, limits: Limits, *,
          now: float | None = None) -> Refusal | None:
    """The limit a sign-in is over, or None — reads only, takes no lock and counts
    nothing: the cheap first gate, so a refused flood never queues for `hash_slot` or
    for the catalogue's write lock. `admit` checks again and counts."""
    now = time.time() if now is None else now
    with connect(home) as conn:
        return _refusal(conn, _key(name, ip), _address_key(ip), limits, now)


def admit(home: Home, name: str, ip: str | None, limits: Limits, *,
          now: float | None = None) -> Admission | Refusal:
    """Whether a sign-in may go on to the password hash; if so, it is counted.

    Call before any hash. A `Refusal` says how long to wait (HTTP 429, Retry-After);
    an `Admission` has counted the attempt against the service and as a failure of the
    name and the address — hand it to `succeeded` when the password was right.
    """
    now = time.time() if now is None else now
    nkey, akey = _key(name, ip), _address_key(ip)
    with connect(home) as conn:
        refused = _refusal(conn, nkey, akey, limits, now)  # the flood's path: no lock
        if refused:
            return refused
        with _relaxed_transaction(conn):
            lock(conn, "throttle")  # SQLite: BEGIN IMMEDIATE is already the lock
            refused = _refusal(conn, nkey, akey, limits, now)  # again, under the lock
            if refused:
                return refused
            conn.execute("DELETE FROM login_failures WHERE at <= ?",
                         (now - max(limits.per_name.window_s, limits.per_address.window_s),))
            conn.execute("DELETE FROM login_attempts WHERE at <= ?",
                         (now - limits.service.window_s,))
            conn.execute("INSERT INTO login_attempts (at) VALUES (?)", (now,))
            rows = [conn.execute("INSERT INTO login_failures (key, at) VALUES (?, ?) "
                                 "RETURNING rowid", (key, now)).fetchone()[0]
                    for key in (nkey, akey)]
    return Admission(int(rows[0]), int(rows[1]), now)


def succeeded(home: Home, name: str, ip: str | None, admission: Admission) -> None:
    """The admitted attempt was right: clear the name's failures from this address and
    take back the address's count of this attempt (its earlier failures stay)."""
    with connect(home) as conn, _relaxed_transaction(conn):
        conn.execute("DELETE FROM login_failures WHERE key = ?", (_key(name, ip),))
        conn.execute("DELETE FROM login_failures WHERE rowid = ? AND key = ?",
                     (admission.address_row, _address_key(ip)))


# --------------------------------------------------------------------------- the hash


_gate_lock = threading.Lock()
_gate: tuple[int, ThreadPoolExecutor, threading.BoundedSemaphore] | None = None


def _lower_priority() -> None:
    """Run this thread ``HASH_NICE`` steps nicer (Linux: niceness is per thread)."""
    if sys.platform != "linux":
        return  # elsewhere PRIO_PROCESS with a thread id would renice the whole server
    tid = threading.get_native_id()
    with suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid,
                       min(19, os.getpriority(os.PRIO_PROCESS, tid) + HASH_NICE))


def _hash_thread() -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
    global _gate
    with _gate_lock:
        if _gate is None or _gate[0] != os.getpid():  # threads do not survive a fork
            _gate = (os.getpid(),
                     ThreadPoolExecutor(1, thread_name_prefix="gisportal-hash",
                                        initializer=_lower_priority),
                     threading.BoundedSemaphore(1))
        return _gate[1], _gate[2]


@contextmanager
def hash_slot(wait_s: float = HASH_WAIT_S) -> Iterator[Callable[..., Any]]:
    """This process's one password-hash slot; `HashBusy` if it stays taken ``wait_s``.

    Yields ``run(fn, *args, **kwargs)``, which calls ``fn`` on the process's hash
    thread and returns its result (or raises its exception). Hold the slot from `admit`
    to the sign-in's audit event, so concurrent tries in one worker are refused before
    they count or queue for the catalogue's write lock, and a slow hash or a slow disk
    ties up one request thread of the worker, not all of them.

    Why a thread of its own: one hash at a time per worker process, whatever the number
    of request threads, and at a lower CPU priority (``nice`` +10) — under load the
    kernel gives the cores to look-ups and tiles first, and a sign-in takes longer
    instead (argon2-cffi releases the GIL while it hashes).
    """
    pool, slot = _hash_thread()
    if not slot.acquire(timeout=wait_s):
        raise HashBusy(f"the password hash stayed busy for {wait_s:g} s")

    def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return pool.submit(fn, *args, **kwargs).result()

    try:
        yield run
    finally:
        slot.release()


def retry_after(home: Home, name: str, ip: str | None, limit: Limit,
                *, now: float | None = None) -> int:
    """Whole seconds to wait before trying again; 0 when an attempt is allowed."""
    now = time.time() if now is None else now
    with connect(home) as conn:
        rows = conn.execute("SELECT at FROM login_failures WHERE key = ? AND at > ? "
                            "ORDER BY at DESC LIMIT ?",
                            (_key(name, ip), now - limit.window_s, limit.max_failures)
                            ).fetchall()
    return limit.wait(rows, now)


def record_failure(home: Home, name: str, ip: str | None, limit: Limit,
                   *, now: float | None = None) -> None:
    """Count one failed sign-in (and forget failures older than the window)."""
    now = time.time() if now is None else now
    with connect(home) as conn, transaction(conn):
        conn.execute("DELETE FROM login_failures WHERE at <= ?", (now - limit.window_s,))
        conn.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)",
                     (_key(name, ip), now))


def reset(home: Home, name: str, ip: str | None) -> None:
    """Forget the failures of (name, address), after a successful sign-in."""
    with connect(home) as conn, transaction(conn):
        conn.execute("DELETE FROM login_failures WHERE key = ?", (_key(name, ip),))
