"""The audit log: who did what, when, to which district, layer, version or decision.

Append-only: this module offers no update or delete, and triggers in the catalogue
refuse ``UPDATE`` and ``DELETE`` on the table from any client (in PostgreSQL also
``TRUNCATE``; see `gisportal.accounts.db`). Events are ordered by their id (assigned in
commit order), which is also the paging cursor: "older than id N" pages stay stable
while new events arrive, and cost the same on page 1 and page 10 000 (no ``OFFSET``).
Commit order is what SQLite's single writer gives; PostgreSQL hands out identity values
when a row is inserted, not when it commits, so there `insert` first takes a lock that
the transaction holds until it commits — otherwise an event could become visible below
a cursor a reader has already passed.

Recording from the web layer::

    audit.record(home, current_user, "version.publish", district="678", kind="plan",
                 version=12, ip=request.remote_addr)

``actor`` is a user name, a :class:`~gisportal.accounts.users.User`, Flask-Login's
anonymous user (recorded as ``anonymous``) or a string like ``cli:root``.

CSV export
----------
UTF-8 **with a byte-order mark**, comma-separated, CRLF line ends (RFC 4180): the BOM
is what makes Excel read the file as UTF-8, so Vietnamese names show with their
accents instead of mojibake. Excel opens a ``.csv`` with the list separator of the
Windows regional settings, which is ``;`` in some Vietnamese set-ups: for those,
export with ``delimiter=";"`` (``--delimiter ';'``, ``?sep=semicolon``), or use
Excel's *Data › From Text/CSV*, which detects both. Cells that a spreadsheet would run
as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) are prefixed with
``'`` (`gisportal.base.csvsafe`, as in every CSV the product writes) — typed user names
reach this log, so a hostile one must not become a formula.
Times are given in UTC and in Vietnam time (UTC+7, no daylight saving).
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from gisportal.accounts.db import Connection, Home, connect, lock, transaction
from gisportal.base.csvsafe import csv_row
from gisportal.base.errors import UsageError

__all__ = ["Event", "EventPage", "record", "insert", "events", "iter_events", "write_csv",
           "csv_chunks", "actor_name", "utc_now", "CSV_COLUMNS", "MAX_PAGE"]

#: Largest page `events` returns.
MAX_PAGE = 500
#: Action names: lower case, dotted, e.g. ``login``, ``user.add``, ``version.publish``.
_ACTION_RE = re.compile(r"[a-z][a-z0-9_]*(?:[.-][a-z0-9_]+)*")
_MAX_TEXT = 200
_MAX_DETAIL = 8000
CSV_COLUMNS = ("id", "time_utc", "time_vn", "actor", "action", "district", "kind", "version",
               "decision", "ip", "detail")
_VN = timedelta(hours=7)


def utc_now() -> str:
    """Now as ISO 8601 UTC with milliseconds, e.g. ``2025-05-01T08:30:00.123Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _clip(text: str, n: int = _MAX_TEXT) -> str:
    """NFC, without control characters (a typed name may hold any), at most ``n`` long."""
    text = "".join(c for c in unicodedata.normalize("NFC", text)
                   if unicodedata.category(c) != "Cc")
    return text if len(text) <= n else text[:n - 1] + "…"


def actor_name(actor: Any) -> str:
    """The name recorded for ``actor`` (a name, a User, or an anonymous user)."""
    if isinstance(actor, str):
        name = _clip(actor.strip()).strip()
        if not name:
            raise UsageError("an audit event needs an actor", where="actor",
                             fix="give a user name, or e.g. cli:root", code="AUDIT-INVALID")
        return name
    if getattr(actor, "is_authenticated", False) and getattr(actor, "name", None):
        return _clip(str(actor.name))
    return "anonymous"


@dataclass(frozen=True)
class Event:
    """One audit event."""

    id: int
    at: str
    actor: str
    action: str
    district: str | None
    kind: str | None
    version: int | None
    decision: str | None
    ip: str | None
    detail: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def at_vn(self) -> str:
        """The time in Vietnam (UTC+7), ``YYYY-MM-DD HH:MM:SS``."""
        t = datetime.strptime(self.at[:19], "%Y-%m-%dT%H:%M:%S") + _VN
        return t.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class EventPage:
    """A page of events, newest first; ``next_before`` is the cursor of the next page."""

    events: list[Event]
    next_before: int | None


def _check_action(action: str) -> str:
    if not isinstance(action, str) or len(action) > 64 or not _ACTION_RE.fullmatch(action):
        raise UsageError(f"{str(action)[:70]!r} is not an audit action name", where="action",
                         fix="use lower-case dotted names such as user.add or "
                             "version.publish", code="AUDIT-INVALID")
    return action


def insert(conn: Connection, actor: Any, action: str, *, district: str | None = None,
           kind: str | None = None, version: int | None = None, decision: Any = None,
           detail: Any = None, ip: str | None = None) -> int:
    """Record an event on an open connection, inside the caller's transaction."""
    name = actor_name(actor)
    detail_text = None
    if detail is not None:
        detail_text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
        if len(detail_text) > _MAX_DETAIL:
            detail_text = json.dumps({"truncated": detail_text[:_MAX_DETAIL]},
                                     ensure_ascii=False)
    if version is not None:
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise UsageError(f"version {version!r} is not a number", where="version",
                             code="AUDIT-INVALID") from None
    lock(conn, "audit")  # ids in commit order (see the module doc); held until commit
    row = conn.execute(
        "INSERT INTO audit (at, actor, actor_key, action, district, kind, version, decision, "
        "ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (utc_now(), name, _key(name), _check_action(action),
         None if district is None else _clip(str(district), 20),
         None if kind is None else _clip(str(kind), 40), version,
         None if decision is None else _clip(str(decision)),
         None if ip is None else _clip(str(ip), 64), detail_text)).fetchone()
    return int(row[0])


def record(home: Home, actor: Any, action: str, *, district: str | None = None,
           kind: str | None = None, version: int | None = None, decision: Any = None,
           detail: Any = None, ip: str | None = None) -> int:
    """Append one event to the log and return its id.

    ``detail`` is anything JSON can hold (kept up to 8 000 characters); text fields
    are NFC and clipped, so a hostile value cannot bloat the log.
    """
    with connect(home) as conn, transaction(conn):
        return insert(conn, actor, action, district=district, kind=kind, version=version,
                      decision=decision, detail=detail, ip=ip)


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _bound(value: str | None, name: str, end: bool) -> str | None:
    """A date (YYYY-MM-DD, Vietnam time) or ISO time as a UTC text bound for ``at``."""
    if not value:
        return None
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.strptime(text, "%Y-%m-%d") - _VN  # the day as lived in Vietnam
            t = day + timedelta(days=1) if end else day
        else:
            t = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if t.tzinfo is not None:
                t = t.astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        raise UsageError(f"{name}={text[:40]!r} is not a date", where=name,
                         fix="give a date as YYYY-MM-DD (Vietnam time) or an ISO 8601 time",
                         code="AUDIT-FILTER") from None
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _where(actor: str | None, action: str | None, district: str | None, since: str | None,
           until: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if actor:
        clauses.append("actor_key = ?")
        args.append(_key(actor.strip()))
    if action:
        action = action.strip()
        if action.endswith("."):  # a family: "login." matches login.failed, login.refused...
            clauses.append("(action = ? OR substr(action, 1, ?) = ?)")
            args += [action[:-1], len(action), action]
        else:
            clauses.append("action = ?")
            args.append(action)
    if district:
        clauses.append("district = ?")
        args.append(district.strip())
    lo, hi = _bound(since, "since", False), _bound(until, "until", True)
    if lo:
        clauses.append("at >= ?")
        args.append(lo)
    if hi:
        clauses.append("at < ?")
        args.append(hi)
    if any("\0" in str(v) for v in args):
        # No stored text holds NUL (`_clip` drops it), and PostgreSQL cannot even compare
        # text holding it: a typed NUL matches nothing, on both backends, without a query
        # error.
        return " WHERE 1 = 0", []
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _event(row: Any) -> Event:
    detail = row["detail"]
    if detail is not None:
        with suppress(ValueError):  # old rows or foreign writers: keep the text
            detail = json.loads(detail)
    return Event(id=row["id"], at=row["at"], actor=row["actor"], action=row["action"],
                 district=row["district"], kind=row["kind"], version=row["version"],
                 decision=row["decision"], ip=row["ip"], detail=detail)


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        raise UsageError(f"{name}={str(value)[:20]!r} is not a whole number", where=name,
                         fix=f"give {name} between {lo} and {hi}", code="AUDIT-FILTER") from None
    if not lo <= n <= hi:
        raise UsageError(f"{name}={n} is out of range", where=name,
                         fix=f"give {name} between {lo} and {hi}", code="AUDIT-FILTER")
    return n


def events(home: Home, *, actor: str | None = None, action: str | None = None,
           district: str | None = None, since: str | None = None, until: str | None = None,
           before: int | str | None = None, limit: int | str = 50) -> EventPage:
    """One page of events, newest first, matching every filter given.

    ``actor`` matches case-insensitively; ``action`` exactly, or a family when it ends
    with a dot (``login.``); ``since``/``until`` are dates (Vietnam time, inclusive) or
    ISO times; ``before`` is the cursor from the previous page's ``next_before``.
    """
    n = _int(limit, "limit", 1, MAX_PAGE)
    where, args = _where(actor, action, district, since, until)
    if before not in (None, ""):
        where += (" AND " if where else " WHERE ") + "id < ?"
        args.append(_int(before, "before", 1, 2**62))
    with connect(home) as conn:
        rows = conn.execute(f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?",
                            (*args, n + 1)).fetchall()
    page = [_event(r) for r in rows[:n]]
    return EventPage(page, page[-1].id if len(rows) > n else None)


def iter_events(home: Home, *, actor: str | None = None, action: str | None = None,
                district: str | None = None, since: str | None = None,
                until: str | None = None, chunk: int = 1000) -> Iterator[Event]:
    """Every matching event, newest first, fetched in chunks (memory stays flat)."""
    before: int | None = None
    while True:
        page = events(home, actor=actor, action=action, district=district, since=since,
                      until=until, before=before, limit=min(chunk, MAX_PAGE))
        yield from page.events
        if page.next_before is None:
            return
        before = page.next_before


def _csv_row(e: Event) -> list[str]:
    return csv_row((e.id, e.at, e.at_vn, e.actor, e.action, e.district, e.kind, e.version,
                    e.decision, e.ip, e.detail))


def _delimiter(delimiter: str) -> str:
    names = {",": ",", ";": ";", "comma": ",", "semicolon": ";", "\t": "\t", "tab": "\t"}
    if delimiter not in names:
        raise UsageError(f"{delimiter[:10]!r} is not a CSV delimiter", where="delimiter",
                         fix="use , (comma), ; (semicolon) or tab", code="AUDIT-FILTER")
    return names[delimiter]


def csv_chunks(home: Home, *, delimiter: str = ",", rows_per_chunk: int = 500,
               **filters: Any) -> Iterator[str]:
    """The CSV export as text chunks (BOM first), for streaming over HTTP."""
    sep = _delimiter(delimiter)
    _where(filters.get("actor"), filters.get("action"), filters.get("district"),
           filters.get("since"), filters.get("until"))  # bad filters fail before any byte
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep)
    buf.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    for n, e in enumerate(iter_events(home, **filters), 1):
        writer.writerow(_csv_row(e))
        if n % rows_per_chunk == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def write_csv(home: Home, out: TextIO, *, delimiter: str = ",", **filters: Any) -> int:
    """Write the CSV export to a text stream opened with ``newline=""``; rows written."""
    sep = _delimiter(delimiter)
    _where(filters.get("actor"), filters.get("action"), filters.get("district"),
           filters.get("since"), filters.get("until"))  # bad filters fail before any byte
    writer = csv.writer(out, delimiter=sep)
    out.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for e in iter_events(home, **filters):
        writer.writerow(_csv_row(e))
        count += 1
    return count
