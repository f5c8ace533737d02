"""Scratch space and clean-up of the data home: nothing a killed process leaves stays.

Scratch lives in the data home, ``<home>/tmp/`` (the unzipped upload a reader works on),
not in ``$TMPDIR``: it is then on the volume the administrator watches and frees, and a
worker killed mid-read (SIGKILL, out of memory, a reboot) leaves its litter where the
clean-up looks (issue 11, item 9). Every scratch entry names the process that made it
(``gisportal-read-<pid>-…``); so do the temporary files next to their targets — tile
archives (``tiles/<d>/<kind>/.v<id>.pmtiles.<pid>.<hex>.tmp*``, GDAL's ``.tmp.mbtiles``
and ``.temp.db`` included) and the store's layer copies
(``districts/.<table>.<pid>.tmp.gpkg*``), kept beside their target so the final rename
stays atomic. An entry is stale when that process is gone *and* nothing in it changed
for `STALE_AFTER` seconds (the age guards against a process of another machine or
container sharing the home, whose pid means nothing here). Entries without a pid
(``uploads/.incoming-*``, ``decisions/.incoming-*``, ``exports/*``, unknown names in
``tmp/``) go on age alone.

Scratch is cleaned when the app starts, when a worker starts, by the reaper (at once,
for the pid of a worker it found dead) and by ``gisportal cleanup``, which also applies
the retention rules of `cleanup`.

The retention rules read and delete through the file areas
(`gisportal.store.home.DataHome.upload_area` and ``tile_area``), so they apply alike to
folders under the home and to an S3 bucket (setting ``files``); scratch is always the
node's own. An S3 PUT is atomic and leaves no temporary object; an upload cut off
mid-way is aborted by the writer (an operator's lifecycle rule aborting incomplete
multipart uploads covers a writer that was killed, see docs/deploy.md).

This module imports nothing heavy at module level: the app factory and every worker
call it at start-up.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gisportal.base.errors import GisportalError
from gisportal.store.files import FileArea, check_key
from gisportal.store.home import SCRATCH, DataHome

__all__ = ["STALE_AFTER", "Entry", "CleanupReport", "stale_scratch", "clean_scratch",
           "remove_owned_by", "cleanup"]

logger = logging.getLogger(__name__)

#: Seconds without a change after which scratch of a dead process is removed.
STALE_AFTER = 600

#: Name patterns of temporary entries, with the owning pid as group 1 where there is one.
_OWNED = {
    SCRATCH: re.compile(r"gisportal-[a-z]+-(\d+)-"),
    "tiles": re.compile(r"\.v\d+\.pmtiles\.(\d+)\.[0-9a-f]+\.tmp"),
    "districts": re.compile(r"\.[a-z]+_v\d+\.(\d+)\.tmp\.gpkg"),
    "reports": re.compile(r"\.report\.[a-z]+\.(\d+)\.(?:[0-9a-f]+\.)?tmp$"),
}
_INCOMING = re.compile(r"\.incoming-[0-9a-f]+")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine.

    A zombie does not: a worker killed a moment ago stays one until the process that
    started it (the web server, which collects its children lazily) waits for it.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux), or it ended meanwhile
        return True
    return state not in (b"Z", b"X")


@dataclass(frozen=True)
class Entry:
    """A file or folder `cleanup` removes (or would remove), and why.

    An entry of an object-store area also carries the `area` and its `key` (a prefix
    ending in ``/`` for a job's folder); its `path` then only names it, as the same path
    under the home a folder area would have, so reports read alike in both modes."""

    path: Path
    bytes: int
    reason: str
    area: FileArea | None = field(default=None, compare=False, repr=False)
    key: str | None = None

    def to_dict(self, home: Path) -> dict[str, Any]:
        try:
            shown = self.path.relative_to(home).as_posix()
        except ValueError:
            shown = str(self.path)
        return {"path": shown, "bytes": self.bytes, "reason": self.reason}


def _walk_stats(path: Path) -> tuple[float, int]:
    """(newest modification time, total bytes) of a file or a folder tree."""
    try:
        st = path.lstat()
    except OSError:
        return 0.0, 0
    newest, total = st.st_mtime, st.st_size if not path.is_dir() else 0
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    s = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                newest = max(newest, s.st_mtime)
                if name in files:
                    total += s.st_size
    return newest, total


def _candidates(home: Path) -> Iterator[tuple[Path, int | None]]:
    """Every temporary entry of the data home with the pid that owns it (None: unknown)."""
    area = DataHome.at(home)

    def listing(folder: Path) -> list[Path]:
        try:
            return sorted(folder.iterdir())
        except OSError:
            return []

    for entry in listing(area.scratch):
        m = _OWNED[SCRATCH].match(entry.name)
        yield entry, int(m.group(1)) if m else None
    for kind_dir in (k for d in listing(area.tiles) for k in listing(d)):
        for entry in listing(kind_dir):
            m = _OWNED["tiles"].match(entry.name)
            if m:
                yield entry, int(m.group(1))
    for entry in listing(area.districts):
        m = _OWNED["districts"].match(entry.name)
        if m:
            yield entry, int(m.group(1))
    for entry in listing(area.uploads):
        if _INCOMING.match(entry.name):
            yield entry, None
        elif entry.is_dir():
            for inner in listing(entry):
                m = _OWNED["reports"].match(inner.name)
                if m:
                    yield inner, int(m.group(1))
    for entry in listing(area.decisions):
        if _INCOMING.match(entry.name):
            yield entry, None
    yield from ((entry, None) for entry in listing(area.exports))


def stale_scratch(home: str | Path, *, min_age: float = STALE_AFTER,
                  now: float | None = None, owner: int | None = None) -> list[Entry]:
    """Temporary entries of the data home no live process owns, unchanged for `min_age`
    seconds. With `owner`, only that (dead) process's entries, whatever their age."""
    root = Path(home)
    now = time.time() if now is None else now
    out: list[Entry] = []
    for path, pid in _candidates(root):
        if owner is not None and pid != owner:
            continue
        if pid is not None and pid_alive(pid):
            continue
        newest, size = _walk_stats(path)
        if owner is None and now - newest < min_age:
            continue
        out.append(Entry(path, size, "scratch of a process that is gone" if pid is not None
                         else "unfinished temporary file"))
    return out


def _remove_entry(entry: Entry) -> bool:
    """Remove a retention entry: from its object-store area, or the local file/folder."""
    if entry.area is None or entry.key is None:
        return _remove(entry.path)
    try:
        if entry.key.endswith("/"):
            entry.area.delete_prefix(entry.key)
        else:
            entry.area.delete(entry.key)
    except Exception as exc:  # noqa: BLE001 - one failure must not stop the clean-up
        logger.warning("could not remove %s: %s", entry.area.describe(entry.key), exc)
        return False
    return True


def _remove(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not remove %s: %s", path, exc)
        return False
    return True


def clean_scratch(home: str | Path, *, min_age: float = STALE_AFTER,
                  dry_run: bool = False) -> list[Entry]:
    """Remove stale scratch (see the module docstring); what was (or would be) removed.

    Never raises: it runs at start-up, and a home it cannot clean must still start.
    """
    try:
        entries = stale_scratch(home, min_age=min_age)
    except OSError as exc:
        logger.warning("could not look for stale scratch in %s: %s", home, exc)
        return []
    if dry_run:
        return entries
    return [e for e in entries if _remove(e.path)]


def remove_owned_by(home: str | Path, pid: int | None) -> list[Entry]:
    """Remove at once the scratch of a worker found dead (the reaper calls this); nothing
    if a process with that id lives again (the id was reused). Never raises."""
    if pid is None or pid_alive(pid):
        return []
    try:
        return [e for e in stale_scratch(home, owner=pid) if _remove(e.path)]
    except OSError as exc:
        logger.warning("could not remove the scratch of process %s in %s: %s", pid, home, exc)
        return []


# --------------------------------------------------------------------------- gisportal cleanup


@dataclass
class CleanupReport:
    """What `cleanup` removed (or, dry, would remove), by kind."""

    home: Path
    dry_run: bool
    retention_days: int
    uploads: list[Entry] = field(default_factory=list)
    tiles: list[Entry] = field(default_factory=list)
    scratch: list[Entry] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in (*self.uploads, *self.tiles, *self.scratch))

    def summary(self) -> dict[str, Any]:
        return {name: {"count": len(items), "bytes": sum(e.bytes for e in items)}
                for name, items in (("uploads", self.uploads), ("tiles", self.tiles),
                                    ("scratch", self.scratch))}

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "retention_days": self.retention_days,
                "bytes": self.bytes, "summary": self.summary(),
                "removed": [e.to_dict(self.home)
                            for e in (*self.uploads, *self.tiles, *self.scratch)]}

    def one_line(self) -> str:
        from gisportal.base.text import human_size

        verb = "would remove" if self.dry_run else "removed"
        parts = [f"{len(items)} {name} ({human_size(sum(e.bytes for e in items))})"
                 for name, items in (("uploads", self.uploads),
                                     ("tile archives", self.tiles),
                                     ("scratch entries", self.scratch))]
        return f"cleanup {verb} {', '.join(parts)}: {human_size(self.bytes)} in all"


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _keeps(job: Any, made: Mapping[int, list[str]], cutoff: datetime) -> bool:
    """Whether this job keeps its upload: unfinished, recent, or its version still used."""
    finished = _parse_time(job.finished_at)
    if not job.finished or finished is None or finished > cutoff:
        return True
    return bool({"draft", "published"} & set(made.get(job.id, ())))


def _area_entry(home: DataHome, folder: Path, area: FileArea, key: str, size: int,
                reason: str) -> Entry:
    """An entry of `key` in `area` (`folder` is the area's folder under the home)."""
    path = folder / key.rstrip("/")
    if area.remote:
        return Entry(path, size, reason, area=area, key=key)
    return Entry(path, size, reason)


def _upload_entries(home: Path | DataHome, jobs: list[Any], made: Mapping[int, list[str]],
                    cutoff: datetime) -> list[Entry]:
    """Uploaded files (and the folders of jobs that made no version) past retention.

    `made` maps a job id to the statuses of the versions it stored. An upload is kept
    while any job using it (the upload's own job and repairs of it) is unfinished or
    finished after `cutoff`, or made a version that is a draft or published: repairing a
    draft reads the upload again, and so may a repair of the published version. The
    validation reports (``report.*``) of a job that made a version stay: the review
    page of that version, superseded or not, shows them. A job that made no version (a
    check, an upload that failed or was cancelled) loses its whole folder.
    """
    users: dict[str, list[Any]] = {}
    for job in jobs:
        upload = (job.params or {}).get("upload")
        if upload:
            users.setdefault(str(upload), []).append(job)
    data_home = DataHome.at(home)
    area = data_home.upload_area
    out: list[Entry] = []
    for upload, using in sorted(users.items()):
        if any(_keeps(job, made, cutoff) for job in using):
            continue
        try:  # a tampered row never names another file
            key = check_key(DataHome.upload_key_of(upload))
        except (ValueError, GisportalError):
            continue
        folder, _, _ = key.rpartition("/")
        if not folder or "/" in folder:
            continue
        owner = next((j for j in using if folder == str(j.id)), None)
        if owner is not None and not made.get(owner.id):
            found = list(area.list(folder + "/"))
            if found:
                out.append(_area_entry(
                    data_home, data_home.uploads, area, folder + "/",
                    sum(f.size for f in found),
                    f"job {owner.id} ({owner.state}) stored no version and "
                    f"finished before {cutoff:%Y-%m-%d}"))
        else:
            try:
                size = area.stat(key).size
            except FileNotFoundError:
                continue
            out.append(_area_entry(
                data_home, data_home.uploads, area, key, size,
                f"upload of job {using[0].id}: no draft or published version "
                f"uses it, finished before {cutoff:%Y-%m-%d}"))
    return out


_ARCHIVE = re.compile(r"([^/]+)/([^/]+)/v(\d+)\.pmtiles")


def _tile_entries(home: Path | DataHome, versions: list[Any], now: float) -> list[Entry]:
    """Tile archives of versions neither published, nor a draft (the likely next
    publish), nor the most recently superseded of their layer (a quick roll back), and
    archives of versions the catalogue no longer has."""
    by_id = {v.id: v for v in versions}
    last_superseded: dict[tuple[str, str], int] = {}
    for v in sorted((v for v in versions if v.status == "superseded"),
                    key=lambda v: (v.published_at or "", v.id)):
        last_superseded[(v.district, v.kind)] = v.id
    out: list[Entry] = []
    data_home = DataHome.at(home)
    area = data_home.tile_area
    for archive in area.list():
        m = _ARCHIVE.fullmatch(archive.key)
        if not m:
            continue
        district, kind, vid = m.group(1), m.group(2), int(m.group(3))
        v = by_id.get(vid)
        if v is None:
            if now - archive.mtime < STALE_AFTER:
                continue  # being written for a version this listing missed
            reason = f"version {vid} is not in the catalogue"
        elif (v.district, v.kind) != (district, kind):
            continue  # not where this version's archive goes: left for a person
        elif v.status in ("published", "draft") or last_superseded.get(
                (district, kind)) == vid:
            continue
        else:
            reason = f"version {vid} is superseded (not the last one, kept for roll back)"
        out.append(_area_entry(data_home, data_home.tiles, area, archive.key, archive.size,
                               reason))
    return out


def cleanup(home: str | Path, *, retention_days: int | None = None, dry_run: bool = False,
            actor: str = "cli", settings: Mapping[str, Any] | None = None,
            now: datetime | None = None) -> CleanupReport:
    """Remove old uploads, tile archives no one will serve again, and stale scratch.

    Rules (README, "Clean-up"):

    * uploads: the uploaded file of every job finished more than `retention_days`
      (``upload_retention_days``) ago, unless a job using it made a version that is a
      draft or published (see `_upload_entries`);
    * tiles: archives of superseded versions except the most recent one per layer,
      and of versions the catalogue no longer has; published and draft versions keep
      theirs;
    * scratch: see `clean_scratch`.

    Recorded in the audit log (``cleanup``, with the counts and bytes) unless dry.
    """
    from gisportal.base import seeds
    from gisportal.base.settings import load_settings
    from gisportal.jobs import table
    from gisportal.store import open_store

    root = Path(home).expanduser().resolve()
    conf = load_settings(dict(settings or {}))
    days = int(conf["upload_retention_days"] if retention_days is None else retention_days)
    if days < 0:
        from gisportal.base.errors import UsageError

        raise UsageError(f"a retention of {days} days", where="--retention-days",
                         fix="Give 0 or more days")
    moment = now or datetime.now(UTC)
    cutoff = moment - timedelta(days=days)
    with table.connect(root) as conn:
        jobs = table.fetch_many(conn, limit=2**62)
    with open_store(root, crs=seeds.province()["crs"]) as store:
        versions = store.versions()
    made: dict[int, list[str]] = {}
    status = {v.id: v.status for v in versions}
    for v in versions:  # the store tags a job's versions (meta "job")...
        if isinstance(v.meta.get("job"), int):
            made.setdefault(v.meta["job"], []).append(v.status)
    for job in jobs:  # ...and a job's result names its version
        version = (job.result or {}).get("version")
        if isinstance(version, int) and version in status:
            made.setdefault(job.id, []).append(status[version])
    report = CleanupReport(root, dry_run, days)
    data_home = DataHome.at(root, conf)
    report.uploads = _upload_entries(data_home, jobs, made, cutoff)
    report.tiles = _tile_entries(data_home, versions, moment.timestamp())
    report.scratch = stale_scratch(root, now=moment.timestamp())
    if dry_run:
        return report
    for name in ("uploads", "tiles", "scratch"):
        setattr(report, name, [e for e in getattr(report, name) if _remove_entry(e)])
    from gisportal.accounts import audit

    audit.record(root, actor, "cleanup", detail={
        "retention_days": days, "bytes": report.bytes, **report.summary(),
        "paths": [e.to_dict(root)["path"] for e in
                  (*report.uploads, *report.tiles, *report.scratch)][:100]})
    return report
