"""A small PMTiles v3 reader that keeps the whole tile index in memory.

Why our own reader: the ``pmtiles`` package re-reads and re-decompresses a directory on
every tile, which costs more than the rest of a tile request together. A PMTiles
archive is written once per layer version and never changed, so its header and
directories can be decoded once and kept; a tile request is then a few list bisections
and one slice of a memory map.

Format (PMTiles v3 specification):

* a 127-byte little-endian header: section offsets and lengths, the compression of
  directories (``internal_compression``) and of tiles (``tile_compression``), tile type,
  zoom range and bounds;
* directories: a varint entry count, then columns of varints — tile-id deltas, run
  lengths, lengths, offsets (0 = "right after the previous entry", else offset + 1) —
  the whole compressed with ``internal_compression``;
* an entry with ``run_length == 0`` points at a leaf directory (relative to the leaf
  section), otherwise at tile data (relative to the data section) shared by
  ``run_length`` consecutive tile ids;
* tile id = number of tiles on all lower zooms + the tile's position on the zoom's
  Hilbert curve.

Only what GDAL's PMTiles writer produces is needed (gzip or no compression); brotli
and zstd are refused when the archive is opened, not when a tile is asked for.

Where the bytes come from is a *source*: a memory-mapped local file (`MappedFile`, the
embedded default) or an object in a file area read by ``Range`` requests (`AreaSource`,
S3 in production mode), or such an object served from the node's copy once
`gisportal.outputs.tiles.cache` has downloaded it (`CachedSource`). The reader asks a
source for byte ranges only, so the decoded directories are cached per process the same
way for all, and a tile from S3 costs one ranged GET (leaf directories one more, the
first time each is needed) until the copy is there, then a slice of its memory map. The
first 16 KiB — where the specification puts the header and root directory — are read in
one request when the archive is opened.
"""

from __future__ import annotations

import gzip
import json
import mmap
import os
import struct
import threading
import time
import zlib
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from gisportal.outputs.tiles.cache import ArchiveCache
    from gisportal.store.files import FileArea, FileInfo

__all__ = [
    "AreaSource",
    "COMPRESSION_GZIP",
    "CachedSource",
    "COMPRESSION_NONE",
    "Directory",
    "Header",
    "MappedFile",
    "PMTilesError",
    "PMTilesReader",
    "clear_cache",
    "decode_directory",
    "forget_area_reader",
    "open_area_reader",
    "open_reader",
    "tileid_to_zxy",
    "zxy_to_tileid",
]

HEADER_SIZE = 127
#: Header and root directory lie within the first 16 KiB (PMTiles v3 specification).
HEAD_SIZE = 16384
MAGIC = b"PMTiles"

#: Compression enum of the header (0 means "unknown").
COMPRESSION_UNKNOWN, COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_BROTLI, \
    COMPRESSION_ZSTD = range(5)
#: Tile type enum of the header.
TILE_TYPE_MVT = 1

MAX_ZOOM = 31  # tile ids are uint64: 4**32 / 3 would not fit
_MAX_DEPTH = 4  # root + leaves; writers use one level of leaves, the spec allows nesting

# Number of tiles on all zoom levels below z: (4**z - 1) / 3.
_ZOOM_BASE = [((1 << (2 * z)) - 1) // 3 for z in range(MAX_ZOOM + 2)]

_HEADER = struct.Struct("<7sBQQQQQQQQQQQBBBBBBiiiiBii")


class PMTilesError(ValueError):
    """The file is not a PMTiles v3 archive this reader can serve."""


# -- tile ids ---------------------------------------------------------------------------------


def zxy_to_tileid(z: int, x: int, y: int) -> int:
    """The PMTiles tile id of tile ``z/x/y`` (XYZ scheme, y down).

    Raises
    ------
    ValueError
        z outside 0..31 or x, y outside ``0 .. 2**z - 1``.
    """
    if not 0 <= z <= MAX_ZOOM:
        raise ValueError(f"zoom {z} is outside 0..{MAX_ZOOM}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise ValueError(f"tile {z}/{x}/{y} is outside the zoom level")
    d = 0
    s = n >> 1
    while s:
        rx = 1 if x & s else 0
        ry = 1 if y & s else 0
        d += s * s * ((3 * rx) ^ ry)
        # Rotate the quadrant so the lower bits are read in the curve's orientation.
        if ry == 0:
            if rx == 1:
                x = s - 1 - (x & (s - 1))
                y = s - 1 - (y & (s - 1))
            x, y = y, x
        s >>= 1
    return _ZOOM_BASE[z] + d


def tileid_to_zxy(tile_id: int) -> tuple[int, int, int]:
    """The tile ``(z, x, y)`` of a PMTiles tile id (inverse of `zxy_to_tileid`)."""
    if tile_id < 0:
        raise ValueError(f"tile id {tile_id} is negative")
    z = bisect_right(_ZOOM_BASE, tile_id) - 1
    if z > MAX_ZOOM:
        raise ValueError(f"tile id {tile_id} is beyond zoom {MAX_ZOOM}")
    t = tile_id - _ZOOM_BASE[z]
    x = y = 0
    s = 1
    n = 1 << z
    while s < n:
        rx = 1 & (t >> 1)
        ry = 1 & (t ^ rx)
        if ry == 0:
            if rx == 1:
                x = s - 1 - x
                y = s - 1 - y
            x, y = y, x
        x += s * rx
        y += s * ry
        t >>= 2
        s <<= 1
    return z, x, y


# -- header and directories -------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The 127-byte PMTiles v3 header (offsets and lengths in bytes from file start)."""

    root_offset: int
    root_length: int
    metadata_offset: int
    metadata_length: int
    leaf_offset: int
    leaf_length: int
    data_offset: int
    data_length: int
    addressed_tiles: int
    tile_entries: int
    tile_contents: int
    clustered: bool
    internal_compression: int
    tile_compression: int
    tile_type: int
    min_zoom: int
    max_zoom: int
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    center_zoom: int
    center_lon: float
    center_lat: float

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        """Decode the first 127 bytes of an archive; `PMTilesError` if they are not v3."""
        if len(raw) < HEADER_SIZE or raw[:7] != MAGIC:
            raise PMTilesError("not a PMTiles archive (no 'PMTiles' magic)")
        f = _HEADER.unpack_from(raw)
        if f[1] != 3:
            raise PMTilesError(f"PMTiles spec version {f[1]}; only version 3 is read")
        e7 = 1e-7  # positions are stored as degrees * 10**7
        return cls(
            root_offset=f[2], root_length=f[3], metadata_offset=f[4], metadata_length=f[5],
            leaf_offset=f[6], leaf_length=f[7], data_offset=f[8], data_length=f[9],
            addressed_tiles=f[10], tile_entries=f[11], tile_contents=f[12],
            clustered=f[13] == 1, internal_compression=f[14], tile_compression=f[15],
            tile_type=f[16], min_zoom=f[17], max_zoom=f[18],
            min_lon=f[19] * e7, min_lat=f[20] * e7, max_lon=f[21] * e7, max_lat=f[22] * e7,
            center_zoom=f[23], center_lon=f[24] * e7, center_lat=f[25] * e7,
        )


def _varints(buf: bytes, count: int, pos: int) -> tuple[list[int], int]:
    """Decode `count` unsigned LEB128 varints from ``buf[pos:]``; return them and the end."""
    out = [0] * count
    for i in range(count):
        value = 0
        shift = 0
        while True:
            b = buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                raise PMTilesError("varint longer than 64 bits in a directory")
        out[i] = value
    return out, pos


@dataclass(frozen=True)
class Directory:
    """One decoded directory as parallel columns, sorted by tile id.

    Columns rather than entry objects: a lookup only bisects `tile_ids`, and lists of
    ints are the cheapest thing Python can bisect.
    """

    tile_ids: list[int]
    offsets: list[int]
    lengths: list[int]
    run_lengths: list[int]

    def __len__(self) -> int:
        return len(self.tile_ids)

    def find(self, tile_id: int) -> int | None:
        """Index of the entry that holds `tile_id` (a tile run or a leaf), or None."""
        i = bisect_right(self.tile_ids, tile_id) - 1
        if i < 0:
            return None
        run = self.run_lengths[i]
        if run == 0 or tile_id < self.tile_ids[i] + run:
            return i
        return None


def decode_directory(raw: bytes) -> Directory:
    """Decode an uncompressed, serialised directory.

    Raises
    ------
    PMTilesError
        Truncated or inconsistent data.
    """
    try:
        (n,), pos = _varints(raw, 1, 0)
        deltas, pos = _varints(raw, n, pos)
        runs, pos = _varints(raw, n, pos)
        lengths, pos = _varints(raw, n, pos)
        offs, pos = _varints(raw, n, pos)
    except IndexError:
        raise PMTilesError("truncated PMTiles directory") from None
    tile_ids = [0] * n
    offsets = [0] * n
    last = 0
    for i in range(n):
        last += deltas[i]
        tile_ids[i] = last
        o = offs[i]
        if o == 0:
            if i == 0:
                raise PMTilesError("first directory entry has no offset")
            offsets[i] = offsets[i - 1] + lengths[i - 1]
        else:
            offsets[i] = o - 1
    return Directory(tile_ids, offsets, lengths, runs)


def _decompress(data: bytes, compression: int, what: str) -> bytes:
    if compression == COMPRESSION_GZIP:
        return gzip.decompress(data)
    if compression == COMPRESSION_NONE:
        return bytes(data)
    raise PMTilesError(f"{what} compression {compression} is not supported (gzip or none)")


# -- sources ----------------------------------------------------------------------------------


class Source(Protocol):
    """Where a reader's bytes come from: a size, an identity and ranged reads."""

    name: str
    size: int
    #: Identity of the archive read: (inode or 0, size, modification time in ns).
    stamp: tuple[int, int, int]

    def read(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


class MappedFile:
    """A local archive, memory-mapped: a range is a slice (no system call, any thread)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_size < HEADER_SIZE:
                raise PMTilesError(f"{self.name} is too short for a PMTiles archive")
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self.size = st.st_size
        self.stamp = (st.st_ino, st.st_size, st.st_mtime_ns)

    def read(self, offset: int, length: int) -> bytes:
        return self._map[offset:offset + length]

    def close(self) -> None:
        self._map.close()


class AreaSource:
    """An archive in a file area (an S3 object), read by ranged requests.

    Its size and ETag are asked once (or given, as `info`); every range is checked
    against that ETag by the area (`gisportal.store.files.ObjectChangedError` when the
    object was replaced, so a cached reader never slices a rebuilt archive with the old
    directory's offsets).
    """

    def __init__(self, area: FileArea, key: str, info: FileInfo | None = None) -> None:
        if info is None:
            info = area.stat(key)  # FileNotFoundError when there is no archive
        self.area, self.key, self.etag, self.info = area, key, info.etag, info
        self.name = area.describe(key)
        self.size = info.size
        if self.size < HEADER_SIZE:
            raise PMTilesError(f"{self.name} is too short for a PMTiles archive")
        self.stamp = (0, info.size, int(info.mtime * 1e9))

    def read(self, offset: int, length: int) -> bytes:
        return self.area.read_range(self.key, offset, length, etag=self.etag)

    def close(self) -> None:
        pass


class CachedSource:
    """An archive in a file area served from the node's copy once it is cached.

    Until the copy exists (`gisportal.outputs.tiles.cache.ArchiveCache` downloads it in
    the background, once per node) every range is a GET checked against the ETag, as
    with `AreaSource`; each such read also looks for the finished copy, and from the
    read that finds it on, ranges are slices of its memory map. The bytes are the same
    either way — the copy is the object of that very ETag — so directories decoded
    from the object stay valid, and the reader switches without reopening. Its
    identity (`stamp`, used in the tiles' HTTP ETags) is the object's, whichever way a
    tile was read.

    A mapped copy is revalidated at most every ``cache.check_seconds``: one HEAD on
    the request that finds the check due. A new ETag (the object was rebuilt under its
    key) or a missing object raise `gisportal.store.files.ObjectChangedError` (the
    caller reopens the archive) and remove the stale copy; a copy removed from the
    folder (evicted, or the folder deleted) is dropped and asked for again. A store
    that does not answer the HEAD leaves the copy in use: the object cannot have been
    replaced through a store that is down, and tiles go on being served.
    """

    def __init__(self, area: FileArea, key: str, cache: ArchiveCache) -> None:
        self.remote = AreaSource(area, key)
        self.area, self.key, self.cache = area, key, cache
        self.info = self.remote.info
        self.etag, self.name, self.size = self.remote.etag, self.remote.name, self.remote.size
        self.stamp = self.remote.stamp
        #: The cached copy of this object (exactly this ETag).
        self.path = cache.path_for(area, key, self.etag)
        self._local: MappedFile | None = None
        self._due = 0.0
        self._checking = threading.Lock()
        if not self._map():
            cache.want(area, key, self.info)

    @property
    def cached(self) -> bool:
        """Whether ranges are read from the node's copy now."""
        return self._local is not None

    def _map(self) -> bool:
        """Map the copy if it is there; whether it is mapped now."""
        if not self.cache.lookup(self.path):
            return False
        try:
            local = MappedFile(self.path)
        except (OSError, PMTilesError):  # removed in between; or not an archive at all
            return False
        if local.size != self.size:  # cannot happen (length checked before the rename)
            return False
        self._due = time.monotonic() + self.cache.check_seconds
        self._local = local
        return True

    def read(self, offset: int, length: int) -> bytes:
        local = self._local
        if local is not None:
            if time.monotonic() >= self._due:
                self._revalidate()
                local = self._local
            if local is not None:
                return local.read(offset, length)
        data = self.remote.read(offset, length)
        if not self._map():
            self.cache.want(self.area, self.key, self.info)
        return data

    def _revalidate(self) -> None:
        """The due check of a mapped copy (one thread asks; the others serve the copy,
        unless the interval is 0)."""
        from gisportal.store.files import FileAreaError, ObjectChangedError

        # With a check interval of 0 every read waits for its own check; otherwise a
        # read that finds another thread checking serves the copy meanwhile.
        if not self._checking.acquire(blocking=self.cache.check_seconds <= 0):
            return
        try:
            if time.monotonic() < self._due:
                return
            try:
                etag: str | None = self.area.stat(self.key).etag
            except FileNotFoundError:
                etag = None
            except FileAreaError:
                self._due = time.monotonic() + self.cache.check_seconds
                return
            if etag != self.etag:
                self._local = None
                self.cache.discard(self.path)
                raise ObjectChangedError(f"{self.name} was replaced", where=self.name)
            if not self.cache.lookup(self.path):  # evicted, or the folder removed
                self._local = None
                self.cache.want(self.area, self.key, self.info)
            self._due = time.monotonic() + self.cache.check_seconds
        finally:
            self._checking.release()

    def close(self) -> None:
        pass


# -- the reader -------------------------------------------------------------------------------


class PMTilesReader:
    """An open PMTiles archive: header and directories decoded once, tiles read by range.

    A local file is memory-mapped, so tile reads need no file position and are safe from
    any number of threads; an archive in S3 is read by ranged GETs (boto3's client is
    thread-safe). Leaf directories are decoded on first use and kept (decoding one twice
    in a race is harmless, the result is the same). Archives are immutable once written
    (a rebuild writes a new file and renames it over the old one, which this mapping
    never sees; a replaced object fails the ETag check), so nothing is ever re-read.

    Parameters
    ----------
    source
        The ``.pmtiles`` file, or a `Source` (`AreaSource` for an archive in a file area).

    Raises
    ------
    PMTilesError
        Not a v3 archive, or a compression other than gzip / none.
    OSError
        The file cannot be opened.
    """

    def __init__(self, source: str | os.PathLike[str] | Source) -> None:
        self.source: Source = MappedFile(source) if isinstance(source, str | os.PathLike) \
            else source
        #: The local file, or None for an archive read from a file area.
        self.path: Path | None = Path(source) if isinstance(source, str | os.PathLike) \
            else None
        #: Identity of the archive read: (inode, size, mtime in ns).
        self.stamp: tuple[int, int, int] = self.source.stamp
        size = self.source.size
        self._head = self.source.read(0, min(size, HEAD_SIZE))
        self.header = Header.parse(self._head[:HEADER_SIZE])
        h = self.header
        for section, (off, length) in {
            "root directory": (h.root_offset, h.root_length),
            "metadata": (h.metadata_offset, h.metadata_length),
            "leaf directories": (h.leaf_offset, h.leaf_length),
            "tile data": (h.data_offset, h.data_length),
        }.items():
            if off + length > size:
                raise PMTilesError(f"the {section} runs past the end of {self.source.name}")
        if h.tile_compression not in (COMPRESSION_NONE, COMPRESSION_GZIP):
            raise PMTilesError(f"tile compression {h.tile_compression} is not supported")
        #: Whether stored tiles are gzip-compressed (else they are plain).
        self.tile_gzip: bool = h.tile_compression == COMPRESSION_GZIP
        self.root = self._directory(h.root_offset, h.root_length)
        self._leaves: dict[int, Directory] = {}

    def _read(self, offset: int, length: int) -> bytes:
        """Bytes of the archive; from the first 16 KiB kept since opening when there."""
        if offset + length <= len(self._head):
            return self._head[offset:offset + length]
        return self.source.read(offset, length)

    def _directory(self, offset: int, length: int) -> Directory:
        raw = _decompress(self._read(offset, length), self.header.internal_compression,
                          "directory")
        return decode_directory(raw)

    def _leaf(self, offset: int, length: int) -> Directory:
        leaf = self._leaves.get(offset)
        if leaf is None:
            leaf = self._directory(self.header.leaf_offset + offset, length)
            self._leaves[offset] = leaf
        return leaf

    def locate(self, z: int, x: int, y: int) -> tuple[int, int] | None:
        """``(file offset, length)`` of tile z/x/y, or None when the archive has no such tile.

        Raises
        ------
        ValueError
            z/x/y is not a tile (see `zxy_to_tileid`).
        """
        tile_id = zxy_to_tileid(z, x, y)
        d = self.root
        for _ in range(_MAX_DEPTH):
            i = d.find(tile_id)
            if i is None:
                return None
            if d.run_lengths[i]:
                return self.header.data_offset + d.offsets[i], d.lengths[i]
            d = self._leaf(d.offsets[i], d.lengths[i])
        raise PMTilesError(f"leaf directories nested deeper than {_MAX_DEPTH} in "
                           f"{self.source.name}")

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The stored bytes of tile z/x/y (compressed as `tile_gzip` says), or None."""
        where = self.locate(z, x, y)
        if where is None:
            return None
        off, length = where
        return self.source.read(off, length)

    def tile_plain(self, z: int, x: int, y: int) -> bytes | None:
        """Tile z/x/y decompressed (for clients that do not accept gzip), or None."""
        data = self.tile(z, x, y)
        return None if data is None else self.plain(data)

    def plain(self, data: bytes) -> bytes:
        """Stored tile bytes (as `tile` returns them) decompressed if they are gzip."""
        # zlib with wbits=31 reads the gzip wrapper in one call, no file-object machinery.
        return zlib.decompress(data, 31) if self.tile_gzip else data

    def metadata(self) -> dict[str, Any]:
        """The archive's JSON metadata (TileJSON-like: name, vector_layers...)."""
        h = self.header
        raw = _decompress(self._read(h.metadata_offset, h.metadata_length),
                          h.internal_compression, "metadata")
        return json.loads(raw) if raw.strip() else {}

    def directory_entries(self) -> Iterator[tuple[int, int, int, int]]:
        """Every tile entry as stored: ``(tile id, offset in the tile data section, length,
        run length)``, by tile id, leaf directories walked.

        What merging archives needs (runs kept as runs, offsets relative to the data
        section so they can be shifted); like `entries`, not meant for requests.
        """
        yield from self._walk_raw(self.root, 0)

    def _walk_raw(self, d: Directory, depth: int) -> Iterator[tuple[int, int, int, int]]:
        if depth >= _MAX_DEPTH:
            raise PMTilesError(f"leaf directories nested deeper than {_MAX_DEPTH}")
        for tid, off, length, run in zip(d.tile_ids, d.offsets, d.lengths, d.run_lengths,
                                         strict=True):
            if run == 0:
                yield from self._walk_raw(self._leaf(off, length), depth + 1)
            else:
                yield tid, off, length, run

    def entries(self) -> Iterator[tuple[int, int, int, int, int]]:
        """Every addressed tile as ``(z, x, y, file offset, length)``, by tile id.

        Walks all leaf directories: meant for checks and benchmarks, not requests.
        """
        for tid, off, length, run in self.directory_entries():
            for t in range(tid, tid + run):
                z, x, y = tileid_to_zxy(t)
                yield z, x, y, self.header.data_offset + off, length

    def copy_data(self, out: BinaryIO, chunk: int = 8 << 20) -> int:
        """Write the whole tile data section to `out` (what a merge copies); its length."""
        h = self.header
        end = h.data_offset + h.data_length
        for start in range(h.data_offset, end, chunk):
            out.write(self.source.read(start, min(start + chunk, end) - start))
        return h.data_length

    def close(self) -> None:
        """Unmap the file. Only for readers not shared through `open_reader`."""
        self.source.close()

    def __enter__(self) -> PMTilesReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a process-wide cache of open readers -------------------------------------------------------

_CACHE_SIZE = 128  # 12 districts x 3 kinds, with room for previous versions being read
_cache: OrderedDict[str, PMTilesReader] = OrderedDict()
_cache_lock = threading.Lock()


def open_reader(path: str | os.PathLike[str]) -> PMTilesReader:
    """The shared reader of `path`, opened once and reused while the file is unchanged.

    The file's identity (inode, size, mtime) is checked on every call — one ``stat``,
    a few microseconds — so an archive rebuilt in place (temp file renamed over it) is
    picked up by the next request. Evicted or replaced readers are not closed: a request
    in another thread may still be slicing them; the map is released when the last
    reference goes.

    Raises
    ------
    FileNotFoundError
        No such file.
    PMTilesError
        See `PMTilesReader`.
    """
    key = os.fspath(path)
    st = os.stat(key)
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    with _cache_lock:
        reader = _cache.get(key)
        if reader is not None and reader.stamp == stamp:
            _cache.move_to_end(key)
            return reader
    # Open outside the lock: decoding a root directory takes a millisecond or so, and
    # requests for other archives should not wait for it.
    reader = PMTilesReader(key)
    with _cache_lock:
        _cache[key] = reader
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return reader


def open_area_reader(area: FileArea, key: str,
                     cache: ArchiveCache | None = None) -> PMTilesReader:
    """The shared reader of the archive `key` of a file area.

    A folder area's archive is a local file: `open_reader` (mapped, checked by ``stat``).
    An object's reader is cached without asking the store again: archives are immutable
    under their key, and should one be rebuilt, the next ranged read fails its ETag
    check (`gisportal.store.files.ObjectChangedError`) — the caller then calls
    `forget_area_reader` and opens it again. A warm tile request thus costs one ranged
    GET and no HEAD; with `cache` (the node's `ArchiveCache`), once the archive is
    downloaded, a slice of its local copy (`CachedSource`).

    Raises
    ------
    FileNotFoundError
        No such archive.
    PMTilesError
        See `PMTilesReader`.
    """
    local = area.local_file(key)
    if local is not None:
        return open_reader(local)
    name = area.describe(key)
    with _cache_lock:
        reader = _cache.get(name)
        if reader is not None:
            _cache.move_to_end(name)
            return reader
    source: Source = CachedSource(area, key, cache) if cache is not None and cache.enabled \
        else AreaSource(area, key)
    reader = PMTilesReader(source)
    with _cache_lock:
        _cache[name] = reader
        _cache.move_to_end(name)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return reader


def forget_area_reader(area: FileArea, key: str) -> None:
    """Drop the cached reader of an archive found replaced (see `open_area_reader`)."""
    with _cache_lock:
        _cache.pop(area.describe(key), None)


def clear_cache() -> None:
    """Forget every shared reader (tests; after deleting archives)."""
    with _cache_lock:
        _cache.clear()


def _after_fork_in_child() -> None:
    """A forked process (a gunicorn worker, say) starts with a fresh cache and lock.

    The parent's lock may have been held by one of its other threads at the moment of
    the fork, and would then stay locked for ever in the child; and each process should
    map the archives itself rather than share the parent's readers.
    """
    global _cache_lock
    _cache_lock = threading.Lock()
    _cache.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
