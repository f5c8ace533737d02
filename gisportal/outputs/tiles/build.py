"""Vector tiles of a layer version: one PMTiles archive per version, written by GDAL.

Why files rather than tiles made per request: a district of 200 000 parcels is normal,
and cutting a z14 tile from the GeoPackage in Python costs hundreds of milliseconds,
while reading a ready tile out of a PMTiles archive costs microseconds. Versions are
immutable, so the archive of a version never goes stale: it is written once (at
publish time, or by the first request that needs it) and served until another version
is published, which gets its own file.

Why GDAL: pyogrio's bundled GDAL (3.12) has the PMTiles writer, which clips,
quantises and simplifies per zoom level and gzips each tile; no new dependency.

Why several processes for a large layer: GDAL writes one zoom level after the other,
about 10 s each for 200 000 parcels, and publishing waits for it. Zoom levels are
independent, so each is written by its own process (:mod:`gisportal.outputs.tiles.parts`) and
the archives are joined without touching a tile (:mod:`gisportal.outputs.tiles.merge`): the
same bytes as a single GDAL run, in about 60 % of its time on two cores.

What goes into a tile is an allow-list per kind (`PUBLIC_COLUMNS`), not "everything but
the personal fields": the public must never see an owner's name, ID or certificate,
and a source file can carry personal data under any name (``src:*`` columns keep every
source attribute), so anything not listed stays out. Every listed column must also be
public by the version's allow-list (`gisportal.outputs.privacy`), or the build is refused.

Layout of the tile area (`gisportal.store.home.DataHome.tile_area`)::

    <district>/<kind>/v<version>.pmtiles    one archive per version

The area is ``<home>/tiles/`` by default, where the archive is written beside its
target and renamed (``tiles/<district>/<kind>/.build.lock`` is flock()ed while a build
runs). With S3 file areas (setting ``files``) the archive is written in the node's
scratch, checked, then PUT to ``<prefix>/tiles/<district>/<kind>/v<version>.pmtiles``
(atomic) and the scratch copy removed; the build lock is then a node-local file under
``jobs/``. Two nodes building the same archive at once both PUT the same tiles; the last
PUT wins and nothing is ever half-visible.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import shutil
import struct
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gisportal.base.diskspace import disk_full_error, is_disk_full
from gisportal.base.errors import StoreError, UsageError
from gisportal.base.files import fsync_dir
from gisportal.outputs import privacy
from gisportal.outputs.tiles.merge import merge_archives
from gisportal.outputs.tiles.parts import available_cpus, write_archive, write_parts
from gisportal.outputs.tiles.pmtiles import HEADER_SIZE, PMTilesReader
from gisportal.pipeline.normalise import SOURCE_PREFIX
from gisportal.store.base import Store, Version, check_district_code, check_kind
from gisportal.store.home import DataHome

__all__ = [
    "PARALLEL_MIN_FEATURES",
    "PUBLIC_COLUMNS",
    "ZOOMS",
    "build_tiles",
    "ensure_tiles",
    "ensure_version_key",
    "ensure_version_tiles",
    "public_frame",
    "tile_workers",
    "tiles_key",
    "tiles_path",
]

#: Stored column → attribute name in the tiles, per kind. Nothing else is ever written.
PUBLIC_COLUMNS: dict[str, dict[str, str]] = {
    "parcels": {"commune": "commune", "sheet": "sheet", "parcel": "parcel",
                "land_use": "land_use", "area_m2": "area_m2", "src_row": "fid"},
    "plan": {"zone_id": "zone_id", "land_use": "land_use"},
    "boundary": {"level": "level", "code": "code", "name": "name"},
    # What the district map's overlay shows in its tooltip; the look-up says the rest.
    "annual_plan": {"item_id": "item_id", "year": "year", "name": "name", "code": "code",
                    "land_use": "land_use"},
}

#: Default (min, max) zoom per kind. Parcels start at 12 (below that a parcel is under a
#: pixel) and stop at 16 (0.15 m per tile unit; the client overzooms beyond).
ZOOMS: dict[str, tuple[int, int]] = {"parcels": (12, 16), "plan": (8, 15), "boundary": (6, 14),
                                     "annual_plan": (10, 15)}

#: GDAL MVT/PMTiles dataset options. SIMPLIFICATION is in tile units (1/4096 of a tile
#: side) and so scales with the zoom: 2 units is 1/8 of a pixel on a 256 px tile, i.e.
#: invisible, yet it drops the dense vertices of digitised curves at low zooms (on the
#: demo's four-corner parcels it changes little: there the weight is the attributes). At
#: the max zoom only a quarter unit, so the tiles the client overzooms keep full detail.
#: MAX_SIZE is GDAL's default made explicit: a tile over 500 kB is re-encoded at a lower
#: resolution (GDAL warns), which only happens at the lowest parcel zooms of a dense
#: district, where a parcel is a fraction of a pixel anyway.
WRITE_OPTIONS: dict[str, str] = {
    "SIMPLIFICATION": "2",
    "SIMPLIFICATION_MAX_ZOOM": "0.25",
    "MAX_SIZE": "500000",
    "MAX_FEATURES": "200000",
    "EXTENT": "4096",
    "BUFFER": "80",
}

#: Below this many features a layer is written by one process: starting worker processes
#: (about a second each, to import GDAL and pandas) would cost more than they save. The
#: demo's 10 000-parcel districts stay below it; a 200 000-parcel district is far above.
PARALLEL_MIN_FEATURES = 30_000

Progress = Callable[[str], None]


def tiles_path(home: str | os.PathLike[str], district: str, kind: str, version_id: int) -> Path:
    """Where the archive of a layer version lives: ``<home>/tiles/<d>/<kind>/v<id>.pmtiles``.

    The district and kind are checked (they become path parts), so a request can never
    name a file outside the tiles directory.

    Raises
    ------
    NotFoundError
        Not a district code or not a layer kind.
    """
    district = check_district_code(district)
    kind = check_kind(kind)
    vid = int(version_id)
    if vid < 0:
        raise UsageError(f"version id {version_id!r} is negative", where="version_id")
    return DataHome.at(home).tile_file(district, kind, vid)


def tiles_key(district: str, kind: str, version_id: int) -> str:
    """The tile-area key of a layer version's archive (``678/parcels/v12.pmtiles``),
    district and kind checked like `tiles_path`."""
    district = check_district_code(district)
    kind = check_kind(kind)
    vid = int(version_id)
    if vid < 0:
        raise UsageError(f"version id {version_id!r} is negative", where="version_id")
    return DataHome.tile_key(district, kind, vid)


#: Stored columns of `PUBLIC_COLUMNS` that are no attribute of the upload: the source
#: row number, written as the tile feature's ``fid``.
_TECHNICAL = frozenset({"src_row"})


def public_frame(store: Store, version: Version) -> gpd.GeoDataFrame:
    """The version's features with only the public tile attributes, in EPSG:3857.

    Only the allow-listed columns are read from the store, so personal data is never
    even loaded. Rows without a geometry are dropped (a tile cannot show them); areas are
    rounded to 0.1 m², the precision of a survey, so equal values share one entry in a
    tile's value table.

    Raises
    ------
    StoreError
        A listed column is not public by `gisportal.outputs.privacy.public_columns` (a field
        marked personal in the layer model or the version's meta, or a source column:
        `PUBLIC_COLUMNS` and the privacy allow-list disagree, so refuse rather than
        publish).
    """
    wanted = PUBLIC_COLUMNS[version.kind]
    allowed = privacy.public_columns(version)
    try:
        gdf = store.read(version.id, columns=list(wanted))
    except UsageError:
        # A layer stored before a field was added to the model lacks that column: read
        # what is there and keep the allowed part of it.
        gdf = store.read(version.id)
    present = [c for c in wanted if c in gdf.columns]
    gdf = gdf[[*present, gdf.geometry.name]].rename(columns=wanted)
    out_names = [wanted[c] for c in present]
    leaked = {n for n in out_names if n.startswith(SOURCE_PREFIX)} | {
        wanted[c] for c in present if c not in _TECHNICAL and not allowed.allows(c)}
    if leaked:
        raise StoreError(
            f"tile attributes {sorted(leaked)} are personal or source fields, not public",
            where=f"version {version.id} ({version.kind})",
            fix="remove them from gisportal.outputs.tiles.build.PUBLIC_COLUMNS",
            code="TILES-PERSONAL-FIELD")
    geoms = gdf.geometry.values
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    gdf = gdf[np.asarray(keep)]
    if "area_m2" in gdf.columns:
        gdf["area_m2"] = gdf["area_m2"].round(1)
    return gdf.to_crs(3857)


def _zoom_range(kind: str, minzoom: int | None, maxzoom: int | None) -> tuple[int, int]:
    lo, hi = ZOOMS[kind]
    lo = lo if minzoom is None else int(minzoom)
    hi = hi if maxzoom is None else int(maxzoom)
    if not 0 <= lo <= hi <= 22:
        raise UsageError(f"zoom range {lo}–{hi} is not within 0–22 with min <= max",
                         where="minzoom/maxzoom", fix="e.g. minzoom=12, maxzoom=16")
    return lo, hi


def tile_workers(features: int, zooms: int, workers: int | None = None) -> int:
    """How many processes write a layer's tiles: one per zoom level at most.

    `workers` None chooses: one process below `PARALLEL_MIN_FEATURES` features, else
    as many as there are CPUs (each zoom level is one job).
    """
    if workers is not None:
        if int(workers) < 1:
            raise UsageError(f"workers={workers} is not a number of processes",
                             where="workers", fix="give 1 or more")
        return min(int(workers), max(1, zooms))
    if features < PARALLEL_MIN_FEATURES:
        return 1
    return max(1, min(available_cpus(), zooms))


def _options(version: Version, lo: int, hi: int, part: tuple[int, int]) -> dict[str, str]:
    """GDAL dataset options for the zooms `part` of a layer whose range is lo–hi."""
    options = {**WRITE_OPTIONS, "MINZOOM": str(part[0]), "MAXZOOM": str(part[1]),
               "NAME": f"{version.kind} {version.district} v{version.id}",
               "DESCRIPTION": f"gisportal {version.kind} of district {version.district}, "
                              f"version {version.id}"}
    if part[1] < hi:
        # GDAL simplifies an archive's last zoom with SIMPLIFICATION_MAX_ZOOM; a part
        # that stops below the layer's last zoom must simplify as a whole build does.
        options["SIMPLIFICATION_MAX_ZOOM"] = WRITE_OPTIONS["SIMPLIFICATION"]
    return options


def build_tiles(store: Store, version_id: int, out_path: str | os.PathLike[str], *,
                minzoom: int | None = None, maxzoom: int | None = None,
                progress: Progress | None = None, workers: int | None = None) -> Path:
    """Write the PMTiles archive of one stored layer version.

    One vector-tile layer named after the kind (``parcels``, ``plan``, ``boundary``)
    with the public attributes of `PUBLIC_COLUMNS`; geometry simplified per zoom by
    GDAL. A large layer is written one zoom level per process, in parallel, and the
    archives merged (see :mod:`gisportal.outputs.tiles.parts`): the same tiles, sooner. The
    archive is written to a temporary file next to `out_path`, checked, flushed to disk
    and renamed over `out_path`, so a reader never sees a half-written archive and a
    crash leaves either the old file or none.

    Parameters
    ----------
    store
        The store holding the version.
    version_id
        Any version (draft or published): a planner may want to preview a draft.
    out_path
        Target file, normally ``tiles_path(home, district, kind, version_id)``.
    minzoom, maxzoom
        Zoom range; defaults per kind from `ZOOMS`.
    progress
        Called with a short stage name (``read``, ``write``, ``merge`` when the zoom
        levels were written in parallel, ``done``).
    workers
        Processes writing zoom levels at once; None chooses (see `tile_workers`), 1
        writes in this process.

    Returns
    -------
    Path
        `out_path`.

    Raises
    ------
    NotFoundError
        No such version.
    UsageError
        Zoom range outside 0–22, or workers below 1.
    StoreError
        A worker process died; `~gisportal.base.diskspace.DiskFullError` (``DISK-FULL``)
        when the disk is full.
    """
    version = store.version(version_id)
    lo, hi = _zoom_range(version.kind, minzoom, maxzoom)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        progress("read")
    gdf = public_frame(store, version)
    n_workers = tile_workers(len(gdf), hi - lo + 1, workers)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if progress:
            progress("write")
        if not len(gdf):
            # GDAL refuses to write a layer without features ("Invalid bounds"): an
            # archive with no tiles says "built, nothing to show" just as well.
            _write_empty_archive(tmp, version.kind, lo, hi)
        elif n_workers == 1:
            write_archive(gdf, tmp, version.kind, _options(version, lo, hi, (lo, hi)))
        else:
            # One job per zoom level, the highest first: it has the most tiles to clip.
            jobs = [(tmp.with_name(f"{tmp.name}.z{z}.pmtiles"),
                     _options(version, lo, hi, (z, z))) for z in range(hi, lo - 1, -1)]
            write_parts(gdf, jobs, version.kind, workers=n_workers)
            if progress:
                progress("merge")
            merge_archives([path for path, _ in reversed(jobs)], tmp)
        with PMTilesReader(tmp):  # refuse to publish a file our own reader cannot serve
            pass
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except Exception as exc:
        # A full disk reaches here as ENOSPC, as SQLite's "disk is full", or from GDAL's
        # tile writer as "Unspecified OGR / GDAL error": one line naming it, not a trace.
        if is_disk_full(exc, out.parent):
            raise disk_full_error(out.parent, store.home.root) from exc
        raise
    finally:
        for leftover in out.parent.glob(tmp.name + "*"):
            leftover.unlink(missing_ok=True)
    if progress:
        progress("done")
    return out


def _write_empty_archive(path: Path, kind: str, minzoom: int, maxzoom: int) -> None:
    """A PMTiles v3 archive with an empty root directory and TileJSON-like metadata."""
    root = gzip.compress(b"\x00", mtime=0)  # one varint: zero entries
    meta = gzip.compress(json.dumps({
        "name": kind, "format": "pbf", "minzoom": str(minzoom), "maxzoom": str(maxzoom),
        "vector_layers": [{"id": kind, "minzoom": minzoom, "maxzoom": maxzoom, "fields": {}}],
    }).encode(), mtime=0)
    root_off = HEADER_SIZE
    meta_off = root_off + len(root)
    end = meta_off + len(meta)
    header = struct.pack(
        "<7sBQQQQQQQQQQQBBBBBBiiiiBii", b"PMTiles", 3,
        root_off, len(root), meta_off, len(meta), end, 0, end, 0, 0, 0, 0,
        1, 2, 2, 1, minzoom, maxzoom, 0, 0, 0, 0, minzoom, 0, 0)
    path.write_bytes(header + root + meta)


@contextlib.contextmanager
def _build_lock(lock: Path) -> Iterator[None]:
    """Hold the layer's build lock (an flock: works across threads and processes alike,
    since every holder opens the file itself), so one archive is never built twice at
    once on this node — by two requests, or by a request and a publish in the CLI."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure_version_key(store: Store, home: str | os.PathLike[str], version: Version, *,
                       progress: Progress | None = None) -> str:
    """The tile-area key of `version`'s archive, built and stored first if missing.

    Works for every file area: a folder gets the archive renamed into place
    (`build_tiles`), an object store gets it built in scratch and PUT. Safe to call from
    many threads and processes: builds are serialised per layer (on this node) and the
    archive is looked for again once the lock is held, so a second caller waits for the
    first build and then uses its archive.
    """
    data_home = DataHome.at(home)
    area = data_home.tile_area
    key = tiles_key(version.district, version.kind, version.id)
    if area.exists(key):
        return key
    with _build_lock(data_home.tile_build_lock(version.district, version.kind)):
        if area.exists(key):
            return key
        local = area.local_file(key)
        if local is not None:
            build_tiles(store, version.id, local, progress=progress)
            return key
        from gisportal.store.home import scratch_prefix

        folder = data_home.scratch / f"{scratch_prefix('tiles')}{uuid.uuid4().hex[:8]}"
        try:
            out = build_tiles(store, version.id, folder / key.rpartition("/")[2],
                              progress=progress)
            area.put_file(key, out, move=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return key


def ensure_version_tiles(store: Store, home: str | os.PathLike[str], version: Version, *,
                         progress: Progress | None = None) -> Path:
    """The local archive file of `version`, built first if it does not exist yet.

    For folder tile areas (the embedded default), where callers want the file (tests,
    benchmarks, GDAL); code that must also work with S3 uses `ensure_version_key`.

    Raises
    ------
    UsageError
        The tile area is an object store: there is no local file.
    """
    key = ensure_version_key(store, home, version, progress=progress)
    path = DataHome.at(home).tile_area.local_file(key)
    if path is None:
        raise UsageError("tile archives are kept in object storage, not in a folder",
                         where=DataHome.at(home).tile_area.describe(key),
                         fix="use ensure_version_key and the tile area")
    return path


def ensure_tiles(store: Store, home: str | os.PathLike[str], district: str, kind: str, *,
                 progress: Progress | None = None) -> Path | None:
    """The archive of the published version of (district, kind), built if missing.

    Returns
    -------
    Path or None
        None when nothing is published for the layer.

    Raises
    ------
    NotFoundError
        Not a district code or not a layer kind.
    """
    version = store.published(check_district_code(district), check_kind(kind))
    if version is None:
        return None
    return ensure_version_tiles(store, home, version, progress=progress)
