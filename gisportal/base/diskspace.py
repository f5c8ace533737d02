"""A full disk, wherever gisportal writes, as one line with the right advice.

Why a module: a full disk reaches gisportal in four shapes — ``OSError`` with
``ENOSPC`` (our own writes, the unzip), SQLite's "database or disk is full" (the
catalogue, GeoPackage indexes), GDAL's "sqlite3_exec(COMMIT) failed: database or disk
is full" (the store's layer write) and, worst, GDAL's vector-tile writer, which loses the
cause and reports "Unspecified OGR / GDAL error". Before (issue 11) ``publish`` printed a
44-line traceback and ``ingest`` advised checking column types. Every writer now asks
`is_disk_full` and raises `disk_full_error`: code ``DISK-FULL``, the path, how much is
free, and "free space in <home> and retry".

For GDAL's lost cause the free space is the evidence: a write that failed while the
volume has less than `LOW_SPACE_BYTES` left is taken for a full disk. Only failures of
I/O-like errors (``OSError``, SQLite, GDAL/pyogrio) are judged that way, so a refusal of
gisportal's own (a version with errors) is never mistaken for one on a nearly full disk.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
from pathlib import Path

from gisportal.base.errors import StoreError, exception_chain
from gisportal.base.text import human_size

__all__ = ["DiskFullError", "LOW_SPACE_BYTES", "free_bytes", "is_disk_full",
           "disk_full_error"]

#: Free space under which a failed GDAL write is taken for a full disk (GDAL writes in
#: pages and batches of at most a few MiB; nothing else fails for want of 4 MiB).
LOW_SPACE_BYTES = 4 * 1024**2
_FULL_TEXT = ("database or disk is full", "no space left on device", "disk quota exceeded")
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: SQLite's result code for a full database or disk (``SQLITE_FULL``).
_SQLITE_FULL = 13


class DiskFullError(StoreError):
    """The data home's disk (or the quota) is full: nothing was half-written, retry once
    space is freed. Answered 507 Insufficient Storage on the web."""

    code = "DISK-FULL"
    http_status = 507


def free_bytes(path: str | Path) -> int | None:
    """Bytes free for this user on the volume holding `path` (its nearest existing
    parent); None when it cannot be told."""
    p = Path(path)
    for candidate in (p, *p.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _io_like(e: BaseException) -> bool:
    module = type(e).__module__ or ""
    return isinstance(e, (OSError, sqlite3.Error)) or module.startswith(("pyogrio", "osgeo"))


def is_disk_full(exc: BaseException, folder: str | Path | None = None) -> bool:
    """Whether `exc` (or anything that caused it) is a write that found the disk full.

    With `folder`, an I/O-like failure whose cause GDAL lost counts too when the volume
    of `folder` has less than `LOW_SPACE_BYTES` free right now.
    """
    chain = exception_chain(exc)
    for e in chain:
        if isinstance(e, DiskFullError):
            return True
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if isinstance(e, sqlite3.Error) and getattr(e, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if _io_like(e) and any(t in str(e).lower() for t in _FULL_TEXT):
            return True
    if folder is not None and any(_io_like(e) for e in chain):
        free = free_bytes(folder)
        return free is not None and free < LOW_SPACE_BYTES
    return False


def disk_full_error(path: str | Path, home: str | Path | None = None) -> DiskFullError:
    """The one-line error of a full disk: which path, how much is free, what to do.

    `home` (the data home) is what to free space in; the path is named relative to it
    when it lies inside.
    """
    p = Path(path)
    root = Path(home) if home is not None else None
    shown = str(p)
    if root is not None:
        with contextlib.suppress(ValueError):
            shown = p.relative_to(root).as_posix() or "."
    free = free_bytes(p)
    left = "unknown" if free is None else human_size(free)
    place = root if root is not None else p.parent
    return DiskFullError(
        f"ổ đĩa đã đầy, không ghi được {shown} / the disk is full: could not write {shown} "
        f"({left} free)",
        where=str(p),
        fix=f"Giải phóng dung lượng trong {place} rồi thử lại (gisportal cleanup xóa tệp tải "
            f"lên và ô bản đồ cũ) / free space in {place} and retry (gisportal cleanup "
            "removes old uploads and tile archives)")
