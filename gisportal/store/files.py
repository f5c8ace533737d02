"""File areas: where uploads, reports, tile archives and decision PDFs are kept.

A `FileArea` is a flat namespace of immutable files under ``/``-separated keys
(``7/thua.zip``, ``678/parcels/v12.pmtiles``). Two backends:

`LocalArea`
    A folder under the data home: the embedded default, exactly the files of before
    (``uploads/7/thua.zip`` is the key ``7/thua.zip`` of the folder ``uploads/``).
`S3Area`
    A bucket and key prefix of an S3-compatible object store (production mode,
    ``GISPORTAL_FILES=s3://bucket/prefix``), so that a second app node finds every
    upload, report, archive and PDF the first one stored; nothing shared stays on one
    node's disk.

What every caller relies on, in both backends:

* **Atomic puts.** A reader sees the whole new file or nothing: an S3 PUT (single or
  completed multipart) is atomic; a folder writes a temporary ``.<name>.<pid>.<hex>.tmp``
  beside the target and renames it. Files are written once and never changed in place
  (versions and PDFs by sha256 are immutable), which is what lets the tile reader cache an
  archive's directories for good.
* **Streams, never whole files in memory.** `FileArea.put_stream` copies a request
  body under a size limit (multipart parts of `PART_SIZE` to S3, one part in memory at a
  time), `FileArea.open` returns a streaming body, `FileArea.read_range` reads one
  byte range (an S3 ``Range`` GET: what a PMTiles tile or leaf directory costs).
* **A local path when code needs one.** GDAL reads an upload from a file:
  `FileArea.local_copy` yields the folder's own file (no copy) or downloads the object
  into the node's scratch (``<home>/tmp/gisportal-fetch-<pid>-…``, named like all
  scratch so the clean-up removes what a killed worker left) and removes it afterwards.
* **Listing with sizes and times** for the clean-up's retention rules.

Why hand-written over fsspec/s3fs: the whole need is a dozen calls of one boto3 client.
s3fs runs botocore through aiobotocore, which pins botocore to narrow version ranges
(a second copy of the AWS stack beside the boto3 the rest of the deployment uses, and
upgrades held back by it), runs its requests on an asyncio loop in a background thread
with cached filesystem instances whose sessions belong to the process that made them
(one more thing to reason about across gunicorn's and the job runner's forks), and
caches listings and file contents in ways that would have to be switched off here,
where correctness rests on "written once, atomic put, ranged read of an immutable
object". The S3 semantics each caller depends on (atomic PUT, multipart aborted on
failure, ``Range`` GETs checked against the ETag the reader cached) are explicit in
this module rather than behind an abstraction whose defaults we would have to audit.

One boto3 client per process and configuration, created on first use: boto3 clients are
thread-safe but must not cross a fork, so a forked process (a gunicorn worker) makes
its own. Endpoint and credentials come the standard boto3 way (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, or an instance
role); with an explicit endpoint (SeaweedFS, MinIO, Ceph) path-style addressing is used,
which every S3-compatible server understands.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from gisportal.base.errors import GisportalError, InputError, UsageError
from gisportal.base.files import fsync_dir

__all__ = [
    "PART_SIZE",
    "FileArea",
    "FileAreaError",
    "FileInfo",
    "LocalArea",
    "ObjectChangedError",
    "S3Area",
    "check_key",
    "open_area",
    "parse_location",
    "s3_client",
]

logger = logging.getLogger(__name__)

#: Size of the parts of a streamed multipart upload (S3's minimum part is 5 MiB): the
#: most `put_stream` holds in memory.
PART_SIZE = 8 * 1024**2
#: Chunk size of local copies.
_CHUNK = 1024**2
_BAD_KEY = re.compile(r"(^|/)\.{1,2}(/|$)|//|\\|\x00")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class FileAreaError(GisportalError):
    """The object store failed (unreachable, refused the credentials, a server error).

    Not the planner's fault, so not a 4xx: the portal answers 503 and the message names
    the store, never the credentials."""

    code = "FILES-UNAVAILABLE"
    exit_code = 1
    http_status = 503


class ObjectChangedError(FileAreaError):
    """A ranged read found another object under the key than the one the caller opened
    (it was rebuilt): the caller drops what it cached and opens the key again."""

    code = "FILES-CHANGED"


@dataclass(frozen=True)
class FileInfo:
    """One stored file: its key in the area, size, modification time (Unix seconds) and
    an identity that changes when the file is replaced (the S3 ETag; locally inode,
    size and mtime)."""

    key: str
    size: int
    mtime: float
    etag: str


def check_key(key: str) -> str:
    """`key` if it is a relative ``/``-separated key without ``.``/``..`` parts.

    Keys come from job rows, request paths and version ids: a key that could leave the
    area (``../catalogue.sqlite``) is refused before any backend sees it."""
    if not isinstance(key, str) or not key or key.startswith("/") or _BAD_KEY.search(key):
        raise UsageError(f"{key!r} is not a file key", where="file area",
                         fix="Use a relative key such as 7/report.json", code="FILES-KEY")
    return key


def _check_prefix(prefix: str) -> str:
    return "" if not prefix else check_key(prefix.rstrip("/")) + ("/" if prefix.endswith("/")
                                                                 else "")


class FileArea(ABC):
    """A place for immutable files under keys (see the module docstring)."""

    #: True for an object store: callers that need a path must fetch (`local_copy`).
    remote: bool = False

    @abstractmethod
    def describe(self, key: str = "") -> str:
        """Where `key` is, for messages (a path or ``s3://bucket/prefix/key``)."""

    @abstractmethod
    def put_file(self, key: str, src: str | os.PathLike[str], *, move: bool = False) -> int:
        """Store the local file `src` under `key` atomically; its size.

        ``move`` lets the backend take the file (a rename in the same file system, or
        removal after the upload), so the caller's scratch copy goes either way."""

    @abstractmethod
    def put_stream(self, key: str, stream: IO[bytes], *, max_bytes: int,
                   too_big: Callable[[], InputError] | None = None,
                   on_chunk: Callable[[bytes], None] | None = None) -> int:
        """Copy `stream` to `key` in chunks, refusing more than `max_bytes`; its size.

        Nothing is stored when the copy fails (over the limit, a broken stream): the
        temporary file is removed, the multipart upload aborted."""

    def put_bytes(self, key: str, data: bytes) -> int:
        """Store small `data` (a report) under `key` atomically."""
        return self.put_stream(key, BytesIO(data), max_bytes=len(data))

    @abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """A streaming reader of `key` (closed by the caller); FileNotFoundError if none."""

    def read_bytes(self, key: str) -> bytes:
        """The whole file (small files only: reports, PMTiles headers)."""
        with contextlib.closing(self.open(key)) as fh:
            return fh.read()

    @abstractmethod
    def read_range(self, key: str, offset: int, length: int, *,
                   etag: str | None = None) -> bytes:
        """`length` bytes from `offset` (fewer at the end of the file).

        With `etag`, `ObjectChangedError` if the file under `key` is no longer the one
        with that identity (`FileInfo.etag`)."""

    @abstractmethod
    def stat(self, key: str) -> FileInfo:
        """Size, time and identity of `key`; FileNotFoundError if there is none."""

    def size(self, key: str) -> int:
        return self.stat(key).size

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except FileNotFoundError:
            return False
        return True

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key` (nothing if it does not exist)."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every file whose key starts with `prefix`; how many."""
        n = 0
        for info in list(self.list(prefix)):
            self.delete(info.key)
            n += 1
        return n

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[FileInfo]:
        """Stored files whose key starts with `prefix`, by key (writes in progress and
        other temporary files are not listed)."""

    @abstractmethod
    def local_copy(self, key: str, scratch: str | os.PathLike[str]
                   ) -> contextlib.AbstractContextManager[Path]:
        """A context giving a local file with the content of `key` (same base name).

        A folder gives its own file; an object store downloads it into a new folder of
        `scratch` and removes it on exit."""

    def local_file(self, key: str) -> Path | None:
        """The file itself when the area is a folder (for ``send_file``, mmap), else None."""
        return None


# --------------------------------------------------------------------------- folder


def _tmp_name(name: str) -> str:
    """``.<name>.<pid>.<hex>.tmp``: hidden, and naming its process for the clean-up."""
    return f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


class LocalArea(FileArea):
    """A folder: keys are relative paths under `root` (created on first write)."""

    remote = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalArea({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file of `key` (which may not exist)."""
        return self.root / check_key(key)

    def describe(self, key: str = "") -> str:
        return str(self.path(key) if key else self.root)

    def local_file(self, key: str) -> Path | None:
        return self.path(key)

    def _target(self, key: str) -> Path:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _commit(self, tmp: Path, target: Path) -> None:
        os.replace(tmp, target)
        fsync_dir(target.parent)

    def put_file(self, key: str, src: str | os.PathLike[str], *, move: bool = False) -> int:
        target = self._target(key)
        source = Path(src)
        size = source.stat().st_size
        if move:
            try:  # same file system (scratch is under the home): a rename, no copy
                self._commit(source, target)
                return size
            except OSError:
                pass
        tmp = target.with_name(_tmp_name(target.name))
        try:
            with open(source, "rb") as fin, open(tmp, "xb") as out:
                shutil.copyfileobj(fin, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            self._commit(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        if move:
            source.unlink(missing_ok=True)
        return size

    def put_stream(self, key: str, stream: IO[bytes], *, max_bytes: int,
                   too_big: Callable[[], InputError] | None = None,
                   on_chunk: Callable[[bytes], None] | None = None) -> int:
        from gisportal.base.files import save_stream

        target = self._target(key)
        tmp = target.with_name(_tmp_name(target.name))
        try:
            size = save_stream(stream, tmp, max_bytes=max_bytes, label=target.name,
                               too_big=too_big, on_chunk=on_chunk)
            self._commit(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return size

    def open(self, key: str) -> IO[bytes]:
        return open(self.path(key), "rb")  # noqa: SIM115 - the caller closes it

    def read_range(self, key: str, offset: int, length: int, *,
                   etag: str | None = None) -> bytes:
        with open(self.path(key), "rb") as fh:
            if etag is not None and _local_etag(os.fstat(fh.fileno())) != etag:
                raise ObjectChangedError(f"{self.describe(key)} was replaced",
                                         where=self.describe(key))
            return os.pread(fh.fileno(), length, offset)

    def stat(self, key: str) -> FileInfo:
        st = self.path(key).stat()
        if not self.path(key).is_file():
            raise FileNotFoundError(self.describe(key))
        return FileInfo(key, st.st_size, st.st_mtime, _local_etag(st))

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        prefix = _check_prefix(prefix)
        folder = self.root / prefix.rstrip("/") if prefix else self.root
        if prefix.endswith("/") and folder.is_dir():
            n = sum(1 for _ in self.list(prefix))
            shutil.rmtree(folder, ignore_errors=True)
            return n
        return super().delete_prefix(prefix)

    def list(self, prefix: str = "") -> Iterator[FileInfo]:
        prefix = _check_prefix(prefix)
        base = prefix.rpartition("/")[0]
        start = self.root / base if base else self.root
        found: list[FileInfo] = []
        for dirpath, dirs, files in os.walk(start):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith("."):
                    continue  # a write in progress, a lock: not a stored file
                key = name if rel == "." else f"{rel}/{name}"
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except OSError:
                    continue
                found.append(FileInfo(key, st.st_size, st.st_mtime, _local_etag(st)))
        yield from sorted(found, key=lambda f: f.key)

    @contextlib.contextmanager
    def local_copy(self, key: str, scratch: str | os.PathLike[str]) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(self.describe(key))
        yield path


def _local_etag(st: os.stat_result) -> str:
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


# --------------------------------------------------------------------------- S3

_client_lock = threading.Lock()
_clients: dict[tuple[str | None, ...], Any] = {}


def _after_fork_in_child() -> None:
    """A forked process makes its own clients: a boto3 client's connection pool must not
    be shared with the parent, and the lock may have been held at the fork."""
    global _client_lock
    _client_lock = threading.Lock()
    _clients.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def s3_client() -> Any:
    """This process's boto3 S3 client for the current ``AWS_*`` configuration.

    Made on first use (importing boto3 costs ~0.3 s, which embedded mode never pays) and
    kept; keyed by the endpoint, key id and region so that a changed environment (a test
    pointing at another server) gets its own client.
    """
    env = os.environ
    ident = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
             env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_DEFAULT_REGION") or
             env.get("AWS_REGION"), env.get("AWS_MAX_ATTEMPTS"), str(os.getpid()))
    client = _clients.get(ident)
    if client is not None:
        return client
    with _client_lock:
        client = _clients.get(ident)
        if client is None:
            import boto3
            from botocore.config import Config

            # Retries: boto3's standard mode, 5 attempts, unless AWS_MAX_ATTEMPTS /
            # AWS_RETRY_MODE say otherwise (an operator who prefers failing fast).
            retries: dict[str, Any] = {} if ident[3] else {"max_attempts": 5,
                                                           "mode": "standard"}
            config = Config(
                **({"retries": retries} if retries else {}),
                connect_timeout=5, read_timeout=60,
                # Tile requests from many threads share it: more than botocore's 10.
                max_pool_connections=50,
                s3={"addressing_style": "path"} if ident[0] else {},
            )
            client = boto3.session.Session().client("s3", config=config)
            _clients[ident] = client
    return client


def _is_missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return err.get("Code") in ("NoSuchKey", "404", "NotFound") or status == 404


class S3Area(FileArea):
    """Keys ``<prefix>/<key>`` in `bucket` of the S3 store the ``AWS_*`` variables name."""

    remote = True

    def __init__(self, bucket: str, prefix: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def __repr__(self) -> str:
        return f"S3Area({self.describe()!r})"

    def object_key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def describe(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self.object_key(key) if key else self.prefix}"

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """S3 failures as FileNotFoundError (a missing key) or `FileAreaError`.

        The error names the area and key only (``uploads/7/thua.zip``): job errors are
        shown to planners, and the endpoint, bucket and botocore's text are the
        administrator's business — they go to the log, with the full location."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            if _is_missing(exc):
                raise FileNotFoundError(self.describe(key)) from None
            logger.warning("object store failure on %s: %s", self.describe(key), exc)
            area = self.prefix.rpartition("/")[2]
            raise FileAreaError(
                f"the file store did not answer ({type(exc).__name__})",
                where=f"{area}/{key}" if area else key,
                fix="Try again in a moment; if it goes on, ask the administrator to check "
                    "the S3 service and its settings (GISPORTAL_FILES, AWS_ENDPOINT_URL, "
                    "the access key); the server log names the failure") from exc

    def put_file(self, key: str, src: str | os.PathLike[str], *, move: bool = False) -> int:
        from boto3.s3.transfer import TransferConfig

        size = Path(src).stat().st_size
        with self._errors(key):
            # Multipart (parallel parts) above 64 MiB; completed atomically.
            s3_client().upload_file(os.fspath(src), self.bucket, self.object_key(key),
                                    Config=TransferConfig(multipart_threshold=64 * 1024**2,
                                                          multipart_chunksize=16 * 1024**2,
                                                          max_concurrency=4))
        if move:
            Path(src).unlink(missing_ok=True)
        return size

    def put_stream(self, key: str, stream: IO[bytes], *, max_bytes: int,
                   too_big: Callable[[], InputError] | None = None,
                   on_chunk: Callable[[bytes], None] | None = None) -> int:
        """One PUT for a stream shorter than `PART_SIZE`; else a multipart upload of
        `PART_SIZE` parts read one at a time, aborted on any failure (an incomplete
        multipart upload is invisible to readers but costs storage until aborted)."""
        from gisportal.base.files import CHUNK
        from gisportal.base.text import human_size

        obj = self.object_key(key)
        client = s3_client()
        written = 0

        def refuse() -> InputError:
            if too_big is not None:
                return too_big()
            return InputError(f"the upload is over the {human_size(max_bytes)} limit",
                              where=key.rpartition("/")[2], code="FILE-TOO-BIG",
                              fix="Split the data into smaller files, or ask the "
                                  "administrator to raise max_upload_bytes")

        def next_part() -> bytes:
            nonlocal written
            buf = bytearray()
            while len(buf) < PART_SIZE:
                chunk = stream.read(min(CHUNK, PART_SIZE - len(buf)))
                if not chunk:
                    break
                written += len(chunk)
                if written > max_bytes:
                    raise refuse()
                if on_chunk is not None:
                    on_chunk(chunk)
                buf += chunk
            return bytes(buf)

        first = next_part()
        with self._errors(key):
            if len(first) < PART_SIZE:
                client.put_object(Bucket=self.bucket, Key=obj, Body=first)
                return written
            upload_id = client.create_multipart_upload(Bucket=self.bucket,
                                                       Key=obj)["UploadId"]
        try:
            parts = []
            part = first
            number = 1
            while part:
                with self._errors(key):
                    etag = client.upload_part(Bucket=self.bucket, Key=obj, PartNumber=number,
                                              UploadId=upload_id, Body=part)["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
                number += 1
                part = next_part()
            with self._errors(key):
                client.complete_multipart_upload(Bucket=self.bucket, Key=obj,
                                                 UploadId=upload_id,
                                                 MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(Bucket=self.bucket, Key=obj,
                                              UploadId=upload_id)
            raise
        return written

    def put_bytes(self, key: str, data: bytes) -> int:
        with self._errors(key):
            s3_client().put_object(Bucket=self.bucket, Key=self.object_key(key),
                                   Body=bytes(data))
        return len(data)

    def open(self, key: str) -> IO[bytes]:
        with self._errors(key):
            return s3_client().get_object(Bucket=self.bucket,
                                          Key=self.object_key(key))["Body"]

    def read_bytes(self, key: str) -> bytes:
        with self._errors(key):
            body = s3_client().get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def read_range(self, key: str, offset: int, length: int, *,
                   etag: str | None = None) -> bytes:
        if length <= 0:
            return b""
        with self._errors(key):
            got = s3_client().get_object(Bucket=self.bucket, Key=self.object_key(key),
                                         Range=f"bytes={offset}-{offset + length - 1}")
            try:
                data = got["Body"].read()
            finally:
                got["Body"].close()
        # Compared after the read rather than sent as If-Match: every S3-compatible
        # server returns the ETag, not every one honours If-Match on a GET.
        if etag is not None and got.get("ETag") != etag:
            raise ObjectChangedError(f"{self.describe(key)} was replaced",
                                     where=self.describe(key))
        return data

    def stat(self, key: str) -> FileInfo:
        with self._errors(key):
            head = s3_client().head_object(Bucket=self.bucket, Key=self.object_key(key))
        return FileInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp(),
                        str(head["ETag"]))

    def delete(self, key: str) -> None:
        with self._errors(key):
            s3_client().delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = [self.object_key(f.key) for f in self.list(prefix)]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1 000 at most
            with self._errors(prefix):
                s3_client().delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[start:start + 1000]],
                    "Quiet": True})
        return len(keys)

    def list(self, prefix: str = "") -> Iterator[FileInfo]:
        prefix = _check_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        skip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(prefix):
            pages = s3_client().get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full)
            for page in pages:
                for obj in page.get("Contents", []):
                    yield FileInfo(obj["Key"][skip:], int(obj["Size"]),
                                   obj["LastModified"].timestamp(), str(obj["ETag"]))

    @contextlib.contextmanager
    def local_copy(self, key: str, scratch: str | os.PathLike[str]) -> Iterator[Path]:
        from gisportal.store.home import scratch_prefix

        folder = Path(scratch) / f"{scratch_prefix('fetch')}{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        try:
            dest = folder / check_key(key).rpartition("/")[2]
            with self._errors(key):
                s3_client().download_file(self.bucket, self.object_key(key), str(dest))
            yield dest
        finally:
            shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- selection


def parse_location(location: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix); UsageError for anything else."""
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", str(location).strip())
    if not m or not _BUCKET.fullmatch(m.group(1)):
        raise UsageError(f"GISPORTAL_FILES={location!r} is not an S3 location",
                         where="GISPORTAL_FILES", code="SETTING-INVALID",
                         fix="Set it to s3://bucket/prefix (or leave it empty for folders "
                             "under the data home)")
    prefix = m.group(2).strip("/")
    if prefix:
        check_key(prefix)
    return m.group(1), prefix


def open_area(location: str, name: str, folder: str | os.PathLike[str]) -> FileArea:
    """The area `name` (``uploads``, ``tiles``...): the `folder` when `location` is empty,
    else ``<prefix>/<name>/`` of the S3 location."""
    if not location:
        return LocalArea(folder)
    bucket, prefix = parse_location(location)
    return S3Area(bucket, f"{prefix}/{name}" if prefix else name)
