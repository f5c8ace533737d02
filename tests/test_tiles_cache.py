"""The node-local cache of tile archives kept in S3 (gisportal/outputs/tiles/cache.py).

Against a real SeaweedFS (``s3_server``/``s3_bucket`` of tests/servers.py), never a mock:
what must hold — the copy is the object of one ETag, a partial download is never read,
one download per node, a removed folder or an evicted copy does not break serving —
depends on the store's answers and the file system's renames and locks, which a mock
would only restate. Each test compares every tile with the archive file it uploaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyogrio
import pytest

from gisportal.outputs.tiles import pmtiles as pm
from gisportal.outputs.tiles.cache import ArchiveCache
from gisportal.store.files import ObjectChangedError, S3Area
from tests.conftest import parcel_grid

pytestmark = pytest.mark.production

REPO = Path(__file__).resolve().parents[1]
KEY = "678/parcels/v1.pmtiles"


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> dict[str, str]:
    env = s3_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(autouse=True)
def _fresh_readers() -> Iterator[None]:
    pm.clear_cache()
    yield
    pm.clear_cache()


def _archive(path: Path, rows: int, cols: int, size: float) -> Path:
    """A GDAL-written archive of a parcel grid (the writer publishing uses)."""
    grid = parcel_grid(rows=rows, cols=cols, size=(size, size))
    gdf = grid.rename(columns={"SoThua": "parcel"})[["parcel", "geometry"]]
    gdf["fid"] = np.arange(len(gdf))
    pyogrio.write_dataframe(gdf.to_crs(3857), path, driver="PMTiles", layer="parcels",
                            dataset_options={"MINZOOM": "11", "MAXZOOM": "15"})
    return path


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    """Two archives of different content (a version and its rebuild as another layer)."""
    folder = tmp_path_factory.mktemp("archives")
    return {"a": _archive(folder / "a.pmtiles", 20, 30, 60.0),
            "b": _archive(folder / "b.pmtiles", 12, 16, 90.0)}


def _tiles(path: Path) -> dict[tuple[int, int, int], bytes]:
    with pm.PMTilesReader(path) as r:
        return {(z, x, y): bytes(r.tile(z, x, y)) for z, x, y, _, _ in r.entries()}


def _served(reader: pm.PMTilesReader, cells) -> dict[tuple[int, int, int], bytes | None]:
    return {c: reader.tile(*c) for c in cells}


@pytest.fixture
def area(s3_env, s3_bucket) -> S3Area:
    return S3Area(s3_bucket, "gp/tiles")


def _wait(what: str, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def _holding_node_lock(folder: Path) -> Iterator[None]:
    """What another process downloading an archive looks like: the node lock held."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _source(reader: pm.PMTilesReader) -> pm.CachedSource:
    assert isinstance(reader.source, pm.CachedSource)
    return reader.source


def test_tiles_are_identical_before_during_and_after_caching(area, archives, tmp_path):
    expected = _tiles(archives["a"])
    area.put_file(KEY, archives["a"])
    cache = ArchiveCache(tmp_path / "cache", 1 << 30, check_seconds=60)
    with _holding_node_lock(cache.folder):
        # Another process's download in progress: its part file, the lock held.
        part = cache.folder / f".{cache.path_for(area, KEY, area.stat(KEY).etag).name}" \
            ".999999.0123abcd.part"
        part.write_bytes(archives["a"].read_bytes()[:1000])
        reader = pm.open_area_reader(area, KEY, cache)
        src = _source(reader)
        for _ in range(3):  # every read looks for the copy, and tries to download
            assert _served(reader, expected) == expected
            time.sleep(0.05)
        assert not src.cached and not src.path.exists() and cache.stats.downloads == 0
    _wait("the copy", lambda: reader.tile(*next(iter(expected))) is not None and src.cached)
    assert _served(reader, expected) == expected
    assert src.path.read_bytes() == archives["a"].read_bytes()
    assert cache.stats.downloads == 1 and not part.exists()  # a dead writer's part: gone
    # A new reader in a new process finds the copy at once (no ranged GET needed).
    pm.clear_cache()
    again = pm.open_area_reader(area, KEY, ArchiveCache(cache.folder, 1 << 30))
    assert _source(again).cached and _served(again, expected) == expected


def test_the_route_serves_s3_tiles_from_the_cache_byte_for_byte(
        tmp_path, monkeypatch, s3_env, s3_bucket, make_shapefile_zip):
    """Through `/tiles/…` in S3 mode: the same answers (bodies and HTTP ETags) served by
    ranged GETs and then from the node's copy, which is under ``<home>/cache/tiles``."""
    from gisportal.services.ingest import ingest_file
    from gisportal.store import open_store
    from gisportal.store.home import DataHome
    from gisportal.web import tiles as web_tiles
    from gisportal.web.app import create_app

    home = tmp_path / "home"
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    monkeypatch.setenv("GISPORTAL_FILES", f"s3://{s3_bucket}/gp")
    with open_store(home, crs="EPSG:5899") as store:
        version = ingest_file(store, make_shapefile_zip(), "parcels", "678",
                              publish=True).version
    data_home = DataHome.at(home)
    key = data_home.tile_key("678", "parcels", version.id)
    local = tmp_path / "copy.pmtiles"
    local.write_bytes(data_home.tile_area.read_bytes(key))
    expected = _tiles(local)
    assert expected

    app = create_app({"home": str(home), "tile_cache_mb": 64})
    if "tiles" not in app.blueprints:
        app.register_blueprint(web_tiles.bp)
    client = app.test_client()
    gz = {"Accept-Encoding": "gzip"}

    def serve() -> dict[tuple[int, int, int], tuple[bytes, str]]:
        out = {}
        for z, x, y in expected:
            r = client.get(f"/tiles/678/parcels/{z}/{x}/{y}.pbf", headers=gz)
            assert r.status_code == 200
            out[(z, x, y)] = (r.get_data(), r.headers["ETag"])
        return out

    with _holding_node_lock(data_home.tile_cache):
        first = serve()
    assert {c: body for c, (body, _) in first.items()} == expected
    reader = pm.open_area_reader(data_home.tile_area, key)
    _wait("the copy", lambda: bool(serve()) and _source(reader).cached)
    assert serve() == first  # bodies and ETags
    assert _source(reader).path.parent == home / "cache" / "tiles"


def test_a_new_key_or_a_changed_etag_is_never_served_from_a_stale_copy(
        area, archives, tmp_path):
    a, b = _tiles(archives["a"]), _tiles(archives["b"])
    cells = sorted(set(a) | set(b))
    want_a = {c: a.get(c) for c in cells}
    want_b = {c: b.get(c) for c in cells}
    assert want_a != want_b
    area.put_file(KEY, archives["a"])
    cache = ArchiveCache(tmp_path / "cache", 1 << 30, check_seconds=0.3)
    reader = pm.open_area_reader(area, KEY, cache)
    old = _source(reader)
    _wait("the copy", lambda: bool(_served(reader, cells)) and old.cached)

    # A republished version: a new key has its own copy, never the old one's.
    area.put_file("678/parcels/v2.pmtiles", archives["b"])
    v2 = pm.open_area_reader(area, "678/parcels/v2.pmtiles", cache)
    assert _source(v2).path != old.path and _served(v2, cells) == want_b

    # The same key rebuilt with other bytes: a new process uses the new ETag's copy...
    area.put_file(KEY, archives["b"])
    pm.clear_cache()
    fresh = pm.open_area_reader(area, KEY, cache)
    assert _source(fresh).path != old.path and _served(fresh, cells) == want_b
    # ...and the process that had mapped the old copy notices within check_seconds:
    # until then it serves the old archive whole (never old directories with new data),
    # then the check fails, the old copy goes, and reopening serves the new object.
    time.sleep(0.35)
    with pytest.raises(ObjectChangedError):
        _served(reader, cells)
    assert not old.path.exists() and not old.cached
    pm.forget_area_reader(area, KEY)
    reopened = pm.open_area_reader(area, KEY, cache)
    assert _served(reopened, cells) == want_b

    # A download that began for one ETag and read another object (replaced between the
    # HEAD and the GET) keeps nothing.
    before = area.stat(KEY)
    area.put_file(KEY, archives["a"])
    other = ArchiveCache(tmp_path / "other", 1 << 30)
    assert other.download(area, KEY, before) is None
    assert [p.name for p in other.folder.iterdir()] == [".lock"]


def test_the_route_reopens_an_archive_replaced_under_its_key(
        tmp_path, monkeypatch, s3_env, s3_bucket, make_shapefile_zip):
    """``tile_cache_check_seconds = 0``: every tile from a copy asks the ETag first, so a
    replaced object is served at once (what an operator who rebuilds archives under
    their keys by hand can choose)."""
    from gisportal.services.ingest import ingest_file
    from gisportal.store import open_store
    from gisportal.store.home import DataHome
    from gisportal.web import tiles as web_tiles
    from gisportal.web.app import create_app

    home = tmp_path / "home"
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    monkeypatch.setenv("GISPORTAL_FILES", f"s3://{s3_bucket}/gp")
    with open_store(home, crs="EPSG:5899") as store:
        version = ingest_file(store, make_shapefile_zip(), "parcels", "678",
                              publish=True).version
    data_home = DataHome.at(home)
    key = data_home.tile_key("678", "parcels", version.id)
    app = create_app({"home": str(home), "tile_cache_mb": 64,
                      "tile_cache_check_seconds": 0.0})
    if "tiles" not in app.blueprints:
        app.register_blueprint(web_tiles.bp)
    client = app.test_client()
    local = tmp_path / "v.pmtiles"
    local.write_bytes(data_home.tile_area.read_bytes(key))
    cell = next(iter(_tiles(local)))
    url = "/tiles/678/parcels/{}/{}/{}.pbf".format(*cell)
    gz = {"Accept-Encoding": "gzip"}
    before = client.get(url, headers=gz).get_data()
    reader = pm.open_area_reader(data_home.tile_area, key)
    _wait("the copy", lambda: client.get(url, headers=gz).status_code == 200
          and _source(pm.open_area_reader(data_home.tile_area, key)).cached)
    assert client.get(url, headers=gz).get_data() == before
    # Another archive under the same key: the next request serves it.
    other = _archive(tmp_path / "other.pmtiles", 3, 3, 500.0)
    data_home.tile_area.put_file(key, other)
    after = client.get(url, headers=gz)
    want = _tiles(other).get(cell)
    assert after.status_code == (200 if want else 204)
    assert after.get_data() == (want or b"")
    assert not _source(reader).path.exists()


def test_the_size_bound_evicts_the_least_recently_used_copy(area, archives, tmp_path):
    size_a, size_b = archives["a"].stat().st_size, archives["b"].stat().st_size
    for name in ("x", "y", "z"):
        area.put_file(f"678/parcels/{name}.pmtiles", archives["a"])
    area.put_file("678/plan/big.pmtiles", archives["b"])
    cache = ArchiveCache(tmp_path / "cache", 2 * size_a + 100, check_seconds=0.2)
    infos = {n: area.stat(f"678/parcels/{n}.pmtiles") for n in "xyz"}
    x = cache.download(area, "678/parcels/x.pmtiles", infos["x"])
    y = cache.download(area, "678/parcels/y.pmtiles", infos["y"])
    assert x and y and cache.size() == 2 * size_a
    # x is mapped and used by a reader, y is not: y is the least recently used.
    old = time.time() - 60
    os.utime(y, (old, old))
    reader = pm.open_area_reader(area, "678/parcels/x.pmtiles", cache)
    assert _source(reader).cached
    z = cache.download(area, "678/parcels/z.pmtiles", infos["z"])
    assert z and x.exists() and not y.exists() and cache.stats.evicted == 1
    assert cache.size() <= cache.max_bytes
    # Now x is the oldest: the next download evicts it while the reader has it mapped;
    # the reader goes on serving it, and drops it at its next check.
    os.utime(x, (old, old))
    y2 = cache.download(area, "678/parcels/y.pmtiles", infos["y"])
    assert y2 and not x.exists() and cache.size() <= cache.max_bytes
    expected = _tiles(archives["a"])
    assert _served(reader, expected) == expected
    time.sleep(0.25)
    assert _served(reader, expected) == expected
    assert not _source(reader).cached or x.exists()  # dropped, or downloaded again
    # An archive bigger than the whole bound is never cached: served by range.
    small = ArchiveCache(tmp_path / "small", size_b - 1)
    big = area.stat("678/plan/big.pmtiles")
    assert small.download(area, "678/plan/big.pmtiles", big) is None
    r = pm.open_area_reader(area, "678/plan/big.pmtiles", small)
    assert _served(r, _tiles(archives["b"])) == _tiles(archives["b"])
    time.sleep(0.1)
    assert not _source(r).cached and small.size() == 0


_CHILD = r"""
import json, os, sys, time
from pathlib import Path
from gisportal.outputs.tiles import pmtiles as pm
from gisportal.outputs.tiles.cache import ArchiveCache
from gisportal.store.files import S3Area

bucket, folder, go, expected_json = sys.argv[1:5]
expected = {tuple(map(int, k.split("/"))): v for k, v in json.loads(expected_json).items()}
while not os.path.exists(go):
    time.sleep(0.001)
import hashlib
cache = ArchiveCache(folder, 1 << 30, check_seconds=60)
reader = pm.open_area_reader(S3Area(bucket, "gp/tiles"), "678/parcels/v1.pmtiles", cache)
deadline = time.monotonic() + 60
ok = True
while True:
    for cell, digest in expected.items():
        ok &= hashlib.sha256(reader.tile(*cell)).hexdigest() == digest
    if reader.source.cached or time.monotonic() > deadline:
        break
maps = sorted({line.split()[-1] for line in open("/proc/self/maps")
               if folder in line})
print(json.dumps({"downloads": cache.stats.downloads, "cached": reader.source.cached,
                  "inode": os.stat(reader.source.path).st_ino, "ok": ok, "maps": maps}))
"""


def test_two_processes_download_an_archive_once_and_never_open_a_part(
        area, archives, tmp_path, s3_server):
    import hashlib

    area.put_file(KEY, archives["a"])
    final = ArchiveCache(tmp_path / "cache", 1).path_for(area, KEY, area.stat(KEY).etag)
    folder = final.parent
    expected = {"/".join(map(str, c)): hashlib.sha256(t).hexdigest()
                for c, t in _tiles(archives["a"]).items()}
    go = tmp_path / "go"
    env = {**os.environ, **s3_server.env(), "PYTHONPATH": str(REPO)}
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, area.bucket, str(folder),
                                  str(go), json.dumps(expected)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    # Watch the folder meanwhile: the final name must only ever appear complete, once.
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                st = final.stat()
                if (st.st_ino, st.st_size) not in seen:
                    seen.append((st.st_ino, st.st_size))
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        time.sleep(0.3)
        go.touch()
        results = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        stop.set()
        watcher.join()
        for child in children:
            if child.poll() is None:
                child.kill()
    assert all(r["ok"] and r["cached"] for r in results), results
    assert sum(r["downloads"] for r in results) == 1, results
    assert {r["inode"] for r in results} == {seen[0][0]}
    assert seen == [(seen[0][0], archives["a"].stat().st_size)]
    # Nothing but the final copy was ever mapped by either process.
    assert all(r["maps"] == [str(final)] for r in results), results
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_removing_the_cache_folder_while_serving_does_not_break_serving(
        area, archives, tmp_path):
    expected = _tiles(archives["a"])
    area.put_file(KEY, archives["a"])
    cache = ArchiveCache(tmp_path / "cache", 1 << 30, check_seconds=0.1)
    reader = pm.open_area_reader(area, KEY, cache)
    src = _source(reader)
    errors: list[BaseException] = []
    wrong: list[tuple[int, int, int]] = []
    stop = threading.Event()

    def serve() -> None:
        try:
            while not stop.is_set():
                for cell, data in expected.items():
                    if reader.tile(*cell) != data:
                        wrong.append(cell)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        _wait("the copy", lambda: src.cached)
        for _ in range(5):
            shutil.rmtree(cache.folder, ignore_errors=True)
            time.sleep(0.15)
        _wait("the copy again", lambda: src.path.exists() and src.cached)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors and not wrong
    assert cache.stats.downloads >= 2
    assert src.path.read_bytes() == archives["a"].read_bytes()
