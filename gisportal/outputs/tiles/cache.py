"""A node-local read-through cache of tile archives kept in an object store.

Why: in S3 mode (``GISPORTAL_FILES=s3://…``) a tile read by a ``Range`` GET costs the
store's round trip and boto3's request signing (p50 ~5 ms, p95 ~12 ms against a
gateway on the same host; a real S3 region adds 10–30 ms of first-byte latency), where
a slice of a memory-mapped file costs microseconds. An archive is immutable under its
key, a few MB to a few hundred MB, and every tile of it is asked for again and again: so
the first use of an archive on a node downloads the whole object once, and from then on
its tiles are slices of a local memory map exactly as in the embedded mode. Nothing in
the cache is state a second node needs — it is rebuilt from the bucket — so it may live
on the node's disk (``<home>/cache/tiles/``).

How:

* **Keyed by object and ETag.** A cached file is named by the SHA-256 of the archive's
  location (``s3://bucket/prefix/tiles/678/parcels/v12.pmtiles``) and its ETag, so an
  object replaced under its key (a new ETag) never finds the old copy: it gets a file of
  its own, and the old one is removed when it is noticed.
* **One download per node.** Downloads take a node-wide lock (``flock`` of
  ``<folder>/.lock``): the gunicorn workers and other processes of a node that want the
  same archive do not wait — they go on serving it by ranged GETs and look for the file
  on each read; the first to find the lock free downloads, the others find the file
  there. Only one archive downloads at a time per node (the link is the limit, not the
  lock), and a process killed mid-download releases the lock with its death.
* **Never a partial file.** A download writes ``.<name>.<pid>.<hex>.part`` (hidden, its
  own name: two writers never share one), checks its length and that the object still
  has the ETag it was opened with, fsyncs, and renames it to its final name; readers
  open only final names. Parts left by a killed process are removed by the next
  download (which holds the lock, so no part it finds is being written).
* **Bounded, least recently used first.** Before a download the cache removes the files
  used least recently (their modification time, which readers touch when they map a file
  and at each revalidation) until the new archive fits in ``max_bytes``; an archive
  larger than the whole bound is never cached (served by ranged GETs). A removed file
  that a process still has mapped stays readable by it (a POSIX unlink), and the process
  drops it at its next revalidation.
* **Revalidated.** A process serving from its mapped copy asks the store for the
  object's ETag (one HEAD) at most every ``check_seconds``, on the request that finds
  the check due: a tile is never served from a copy whose ETag was confirmed longer ago
  than that. While an archive is not cached, every ranged GET is checked against the
  ETag anyway (`gisportal.store.files.ObjectChangedError`).

Removing the folder while serving is harmless: mapped copies stay readable, a download
in progress fails its rename and is tried again, and the folder is made again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gisportal.base.files import fsync_dir

if TYPE_CHECKING:
    from gisportal.store.files import FileArea, FileInfo

__all__ = ["ArchiveCache", "CacheStats", "DEFAULT_CHECK_SECONDS", "SUFFIX", "archive_cache"]

logger = logging.getLogger(__name__)

#: Suffix of a complete cached archive.
SUFFIX = ".pmtiles"
#: Seconds a mapped copy is served before its ETag is asked again.
DEFAULT_CHECK_SECONDS = 30.0
#: Seconds between two download attempts of one archive by one process (another
#: process holds the lock, or the last attempt failed).
RETRY_SECONDS = 1.0
#: After a failed download (the store refused, the disk is full): wait this long.
FAILED_RETRY_SECONDS = 30.0
_CHUNK = 1024**2
_PART = re.compile(r"^\..+\.(\d+)\.[0-9a-f]+\.part$")


@dataclass
class CacheStats:
    """What this process's cache did (for tests and the bench): downloads completed,
    bytes downloaded, files evicted, downloads that failed."""

    downloads: int = 0
    bytes: int = 0
    evicted: int = 0
    failed: int = 0
    downloaded: list[str] = field(default_factory=list)


class ArchiveCache:
    """The cache folder of one node, as one process uses it (see the module docstring).

    Parameters
    ----------
    folder
        ``<home>/cache/tiles``: node-local, created when first needed.
    max_bytes
        Bound on the bytes of complete cached archives; least recently used ones are
        removed to make room. 0 disables the cache.
    check_seconds
        How long a mapped copy is served before its ETag is asked again.
    """

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int,
                 check_seconds: float = DEFAULT_CHECK_SECONDS) -> None:
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.check_seconds = float(check_seconds)
        self.stats = CacheStats()
        self._lock = threading.Lock()
        #: Archives (by final file name) a thread of this process is downloading now.
        self._busy: set[str] = set()
        #: When this process may try each archive again (monotonic seconds).
        self._next_try: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"ArchiveCache({str(self.folder)!r}, max_bytes={self.max_bytes})"

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    # -- names ---------------------------------------------------------------------------

    def path_for(self, area: FileArea, key: str, etag: str) -> Path:
        """The final file of the object `key` of `area` with ETag `etag`."""
        ident = f"{area.describe(key)}\n{etag}".encode()
        return self.folder / (hashlib.sha256(ident).hexdigest()[:40] + SUFFIX)

    def lookup(self, path: Path) -> bool:
        """Whether the complete copy `path` is there; touched (recently used) if so."""
        try:
            os.utime(path)
        except PermissionError:  # a copy another user's process made: usable, not ours
            return path.is_file()
        except OSError:
            return False
        return True

    def discard(self, path: Path) -> None:
        """Remove a copy found stale (its object has another ETag now)."""
        with contextlib.suppress(OSError):
            path.unlink()

    # -- downloads -----------------------------------------------------------------------

    def want(self, area: FileArea, key: str, info: FileInfo) -> None:
        """Ask for the object to be cached: start a background download in this process
        unless one is running here, was tried a moment ago, or cannot fit."""
        if not self.enabled or info.size > self.max_bytes:
            return
        path = self.path_for(area, key, info.etag)
        now = time.monotonic()
        with self._lock:
            if path.name in self._busy or now < self._next_try.get(path.name, 0.0):
                return
            self._busy.add(path.name)
            self._next_try[path.name] = now + RETRY_SECONDS
        thread = threading.Thread(target=self._download_in_thread, args=(area, key, info),
                                  name=f"tile-cache {key}", daemon=True)
        thread.start()

    def _download_in_thread(self, area: FileArea, key: str, info: FileInfo) -> None:
        name = self.path_for(area, key, info.etag).name
        try:
            self.download(area, key, info)
        except FileNotFoundError as exc:  # the folder was removed under the download
            self.stats.failed += 1
            logger.info("caching %s again: %s", area.describe(key), exc)
        except Exception as exc:  # a background thread: log, serve by range meanwhile
            self.stats.failed += 1
            logger.warning("could not cache the tile archive %s: %s",
                           area.describe(key), exc)
            with self._lock:
                self._next_try[name] = time.monotonic() + FAILED_RETRY_SECONDS
        finally:
            with self._lock:
                self._busy.discard(name)

    @contextlib.contextmanager
    def _node_lock(self) -> Iterator[bool]:
        """The node-wide download lock, without waiting: yields whether it was taken."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def download(self, area: FileArea, key: str, info: FileInfo) -> Path | None:
        """Download the object into the cache now (in this thread); its final file, or
        None when another process is downloading (it holds the lock) or it cannot fit.

        Raises what the store or the disk raises; nothing is left behind then but a part
        file the next download removes.
        """
        final = self.path_for(area, key, info.etag)
        if not self.enabled or info.size > self.max_bytes:
            return None
        if self.lookup(final):
            return final
        with self._node_lock() as locked:
            if not locked:
                return None
            if self.lookup(final):  # another process finished it while we asked
                return final
            self._remove_parts()
            if not self._make_room(info.size, keep=final):
                return None
            part = self.folder / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
            try:
                written = 0
                with open(part, "xb") as out, contextlib.closing(area.open(key)) as body:
                    while chunk := body.read(_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                # The object may have been replaced between the HEAD that gave this ETag
                # and the GET: the copy is kept only if the ETag is still the same.
                if area.stat(key).etag != info.etag:
                    logger.info("%s was replaced while it was cached; not kept",
                                area.describe(key))
                    return None
                if written != info.size:
                    raise OSError(f"{area.describe(key)}: got {written} bytes of "
                                  f"{info.size}")
                # Counted before the rename: a reader may map the copy the moment it
                # appears, and whoever reads the counts then must find it counted.
                self.stats.downloads += 1
                try:
                    os.rename(part, final)
                except OSError:
                    self.stats.downloads -= 1
                    raise
                self.stats.bytes += info.size
                self.stats.downloaded.append(key)
                fsync_dir(self.folder)
            finally:
                part.unlink(missing_ok=True)
        logger.info("cached the tile archive %s (%d bytes) in %s", area.describe(key),
                    info.size, final)
        return final

    def _entries(self) -> list[tuple[float, int, Path]]:
        """Complete cached files as (last use, size, path)."""
        out = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                    with contextlib.suppress(OSError):
                        st = entry.stat()
                        out.append((st.st_mtime, st.st_size, Path(entry.path)))
        return out

    def size(self) -> int:
        """Bytes of complete cached archives."""
        return sum(size for _, size, _ in self._entries())

    def _make_room(self, size: int, *, keep: Path) -> bool:
        """Remove least recently used copies until `size` more bytes fit (lock held)."""
        entries = sorted(self._entries())
        total = sum(s for _, s, _ in entries)
        for _, s, path in entries:
            if total + size <= self.max_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                self.stats.evicted += 1
                logger.info("evicted %s from the tile cache (%d bytes)", path.name, s)
            total -= s
        return total + size <= self.max_bytes

    def _remove_parts(self) -> None:
        """Remove part files (lock held: none of them is being written)."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if _PART.match(entry.name):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)



# -- one cache object per process and configuration -------------------------------------------

_caches: dict[tuple[str, int, float], ArchiveCache] = {}
_caches_lock = threading.Lock()


def archive_cache(folder: str | os.PathLike[str], max_bytes: int,
                  check_seconds: float = DEFAULT_CHECK_SECONDS) -> ArchiveCache:
    """This process's `ArchiveCache` of `folder` with these bounds, made once.

    One object per process so that its record of downloads in progress is shared by
    every request thread (a second thread asking for the same archive does not start a
    second download)."""
    ident = (os.fspath(folder), int(max_bytes), float(check_seconds))
    with _caches_lock:
        cache = _caches.get(ident)
        if cache is None:
            cache = _caches[ident] = ArchiveCache(folder, max_bytes, check_seconds)
        return cache


def _after_fork_in_child() -> None:
    """A forked process (a gunicorn worker) makes its own cache objects: the parent's
    record of downloads in progress names threads the child does not have, and the
    lock may have been held at the fork."""
    global _caches_lock
    _caches_lock = threading.Lock()
    _caches.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
