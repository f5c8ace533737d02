"""Vector tiles: the PMTiles build, our reader, and GET /tiles/... over real HTTP.

Tiles are decoded here with a minimal protobuf reader (the MVT schema is four small
messages), so the tests need no extra dependency and check the bytes a browser gets.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from gisportal.base.errors import NotFoundError, StoreError, UsageError
from gisportal.outputs.tiles import build as tb
from gisportal.outputs.tiles import pmtiles as pm
from gisportal.outputs.tiles.merge import merge_archives, merge_metadata
from gisportal.outputs.tiles.parts import available_cpus
from gisportal.services.ingest import ingest_file
from gisportal.web import tiles as web_tiles
from gisportal.web.app import create_app
from tests.conftest import DUC_TRONG_XY, parcel_grid

PUBLIC_PARCEL_FIELDS = {"commune", "sheet", "parcel", "land_use", "area_m2", "fid"}
OWNER_NAMES = ["Nguyễn Văn Hùng", "Trần Thị Lan", "Lê Đức Trọng", "K'Brêu"]
TO_LONLAT = Transformer.from_crs(5899, 4326, always_xy=True)


# -- a minimal Mapbox Vector Tile decoder ----------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, value) of a protobuf message: ints for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, value


def _packed(buf: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        v, pos = _varint(buf, pos)
        out.append(v)
    return out


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(buf: bytes):
    for field, v in _fields(buf):
        if field == 1:
            return v.decode("utf-8")
        if field == 2:
            return struct.unpack("<f", v)[0]
        if field == 3:
            return struct.unpack("<d", v)[0]
        if field in (4, 5):
            return v if field == 5 or v < 2**63 else v - 2**64
        if field == 6:
            return _zigzag(v)
        if field == 7:
            return bool(v)
    return None


def _rings(commands: list[int]) -> list[list[tuple[int, int]]]:
    rings, ring, x, y, i = [], [], 0, 0, 0
    while i < len(commands):
        cmd, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if cmd == 7:  # ClosePath
            rings.append(ring)
            ring = []
            continue
        for _ in range(count):
            x += _zigzag(commands[i])
            y += _zigzag(commands[i + 1])
            i += 2
            if cmd == 1 and ring:
                rings.append(ring)
                ring = []
            ring.append((x, y))
    if ring:
        rings.append(ring)
    return rings


def decode_mvt(data: bytes) -> dict[str, dict]:
    """{layer name: {"extent": int, "features": [{"properties", "rings", "type"}]}}."""
    layers = {}
    for field, layer_buf in _fields(data):
        if field != 3:
            continue
        name, extent, keys, values, raw_features = None, 4096, [], [], []
        for f, v in _fields(layer_buf):
            if f == 1:
                name = v.decode("utf-8")
            elif f == 2:
                raw_features.append(v)
            elif f == 3:
                keys.append(v.decode("utf-8"))
            elif f == 4:
                values.append(_value(v))
            elif f == 5:
                extent = v
        features = []
        for fb in raw_features:
            feat = {"properties": {}, "rings": [], "type": 0, "id": None}
            for f, v in _fields(fb):
                if f == 1:
                    feat["id"] = v
                elif f == 2:
                    tags = _packed(v)
                    feat["properties"] = {keys[tags[i]]: values[tags[i + 1]]
                                          for i in range(0, len(tags), 2)}
                elif f == 3:
                    feat["type"] = v
                elif f == 4:
                    feat["rings"] = _rings(_packed(v))
            features.append(feat)
        layers[name] = {"extent": extent, "features": features}
    return layers


# -- web mercator helpers ----------------------------------------------------------------------


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tile_to_lonlat(z: int, x: int, y: int, px: float, py: float, extent: int):
    n = 2**z
    fx, fy = (x + px / extent) / n, (y + py / extent) / n
    return fx * 360 - 180, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * fy))))


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    w, n_ = tile_to_lonlat(z, x, y, 0, 0, 1)
    e, s = tile_to_lonlat(z, x, y, 1, 1, 1)
    return w, s, e, n_


# -- fixtures ----------------------------------------------------------------------------------


def _app(home: Path, **config):
    app = create_app({"home": str(home), **config})
    app.config["TESTING"] = True
    if "tiles" not in app.blueprints:
        app.register_blueprint(web_tiles.bp)
    return app


@pytest.fixture(autouse=True)
def _fresh_readers():
    pm.clear_cache()
    yield
    pm.clear_cache()


@pytest.fixture
def published(home, store, make_shapefile_zip):
    """A 4 x 5 block of parcels in Đức Trọng (with owner names) published as v1."""
    return ingest_file(store, make_shapefile_zip(), "parcels", "678", publish=True).version


@pytest.fixture
def client(home, published):
    return _app(home).test_client()


def _block_lonlat() -> tuple[float, float]:
    x0, y0 = DUC_TRONG_XY
    return TO_LONLAT.transform(x0 + 50, y0 + 50)


def _tile_url(z: int, kind: str = "parcels", district: str = "678") -> tuple[str, int, int]:
    x, y = tile_of(*_block_lonlat(), z)
    return f"/tiles/{district}/{kind}/{z}/{x}/{y}.pbf", x, y


# -- HTTP --------------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [14, 16])
def test_tile_has_public_attributes_and_parcels_where_they_are(client, z):
    url, x, y = _tile_url(z)
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert r.headers["Content-Encoding"] == "gzip"
    raw = gzip.decompress(r.data)
    layers = decode_mvt(raw)
    assert list(layers) == ["parcels"]
    layer = layers["parcels"]
    feats = layer["features"]
    assert feats
    for f in feats:
        assert set(f["properties"]) == PUBLIC_PARCEL_FIELDS
    # No personal data anywhere in the bytes, not even as an unused value.
    for name in [*OWNER_NAMES, "TenChu", "owner"]:
        assert name.encode() not in raw

    grid = parcel_grid()
    west, south, east, north = tile_bounds(z, x, y)
    by_fid = {f["properties"]["fid"]: f for f in feats}
    tol_m = 1.5 if z == 14 else 0.3
    checked = 0
    for row, geom in enumerate(grid.geometry):
        lon0, lat0, lon1, lat1 = shapely.bounds(shapely.transform(
            geom, lambda c: np.column_stack(TO_LONLAT.transform(c[:, 0], c[:, 1]))))
        if not (west < lon0 and lon1 < east and south < lat0 and lat1 < north):
            continue  # clipped by the tile edge: its centroid moves
        f = by_fid[row]
        p = f["properties"]
        assert (p["sheet"], p["parcel"], p["commune"]) == (
            grid["SoTo"][row], grid["SoThua"][row], grid["MaXa"][row])
        assert p["land_use"] == grid["LoaiDat"][row]
        assert p["area_m2"] == pytest.approx(grid["DienTich"][row], abs=0.05)
        ring = [tile_to_lonlat(z, x, y, px, py, layer["extent"]) for px, py in f["rings"][0]]
        got = shapely.Polygon(ring).centroid
        want_lon, want_lat = TO_LONLAT.transform(geom.centroid.x, geom.centroid.y)
        dx = (got.x - want_lon) * 111_320 * math.cos(math.radians(want_lat))
        dy = (got.y - want_lat) * 110_574
        assert math.hypot(dx, dy) < tol_m, (row, dx, dy)
        checked += 1
    assert checked >= 10


def test_gzip_only_for_clients_that_accept_it(client):
    url, _, _ = _tile_url(15)
    gz = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    plain = client.get(url)
    refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert gz.status_code == plain.status_code == refused.status_code == 200
    assert gz.headers["Content-Encoding"] == "gzip" and gz.data[:2] == b"\x1f\x8b"
    for r in (plain, refused):
        assert "Content-Encoding" not in r.headers
        assert r.data[:2] != b"\x1f\x8b"
        assert r.data == gzip.decompress(gz.data)
    for r in (gz, plain):
        # Tiles are the same for every visitor: a cache keeps one copy, not one per cookie.
        assert [v.strip() for v in r.headers["Vary"].split(",")] == ["Accept-Encoding"]
        assert "Set-Cookie" not in r.headers
        assert r.headers["Cache-Control"].startswith("public, max-age=")
    # One ETag per representation, both naming the version.
    assert gz.headers["ETag"] != plain.headers["ETag"]
    assert gz.headers["ETag"].startswith('"v1-') and plain.headers["ETag"].startswith('"v1-')


def test_etag_revalidation_answers_304(client):
    url, _, _ = _tile_url(16)
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    again = client.get(url, headers={"Accept-Encoding": "gzip",
                                     "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == first.headers["ETag"]


def test_empty_tile_far_away_is_204(client):
    r = client.get("/tiles/678/parcels/14/0/0.pbf")
    assert r.status_code == 204 and r.data == b""
    # Outside the archive's zoom range the answer is "nothing here" too: clients overzoom.
    url, _, _ = _tile_url(20)
    assert client.get(url).status_code == 204


@pytest.mark.parametrize("path", [
    "25/0/0", "24/16777216/0", "3/8/0", "3/0/8", "3/-1/0", "3/0/-1", "-1/0/0",
    "0/1/0", "99999999999/0/0",
])
def test_bad_tile_coordinates_are_400_json(client, path):
    r = client.get(f"/tiles/678/parcels/{path}.pbf")
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.json["error"]["code"] == "TILE-RANGE"


@pytest.mark.parametrize("path", [
    "678/roads/14/0/0",     # unknown kind
    "abc/parcels/14/0/0",   # not a district code
    "..%2F..%2Fetc/parcels/14/0/0",
    "679/parcels/14/0/0",   # well-formed, nothing there
    "678/plan/14/0/0",      # district has parcels only
    "678/parcels/14/0/x",   # not a tile address at all
])
def test_unknown_or_unpublished_layers_are_404_json(client, path):
    r = client.get(f"/tiles/{path}.pbf")
    assert r.status_code == 404, r.get_data(as_text=True)
    assert r.json["error"]["code"]


def test_draft_is_not_served(home, store, make_shapefile_zip):
    ingest_file(store, make_shapefile_zip(), "parcels", "672", publish=False)
    r = _app(home).test_client().get("/tiles/672/parcels/14/0/0.pbf")
    assert r.status_code == 404 and r.json["error"]["code"] == "TILES-NONE"


def test_tiles_follow_the_published_pointer(home, store, client, make_shapefile_zip):
    url, _, _ = _tile_url(16)
    before = client.get(url, headers={"Accept-Encoding": "gzip"})
    grid = parcel_grid()
    grid["LoaiDat"] = "SKC"
    v2 = ingest_file(store, make_shapefile_zip(grid, name="v2.zip"), "parcels", "678",
                     publish=True).version
    after = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert after.status_code == 200
    assert after.headers["ETag"].startswith(f'"v{v2.id}-')
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.data != before.data
    uses = {f["properties"]["land_use"]
            for f in decode_mvt(gzip.decompress(after.data))["parcels"]["features"]}
    assert uses == {"SKC"}
    assert tb.tiles_path(home, "678", "parcels", v2.id).exists()
    # Rolling back serves the first archive again, without rebuilding it.
    store.publish(before_id := v2.id - 1, by="test")
    back = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert back.headers["ETag"].startswith(f'"v{before_id}-') and back.data == before.data


def test_on_demand_build_happens_once_under_concurrent_requests(home, published,
                                                                monkeypatch):
    # Publishing builds the tiles; remove them to exercise the on-demand path (a store
    # published before tiles existed, or a deleted cache).
    tb.tiles_path(home, published.district, published.kind, published.id).unlink()
    calls = []
    real = tb.build_tiles

    def slow_build(*args, **kwargs):
        calls.append(args[1])
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(tb, "build_tiles", slow_build)
    app = _app(home)
    url, _, _ = _tile_url(15)
    statuses = []

    def fetch():
        statuses.append(app.test_client().get(url).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    assert calls == [published.id]


def test_max_age_is_configurable(home, published):
    url, _, _ = _tile_url(15)
    r = _app(home, tiles_max_age=60).test_client().get(url)
    assert r.headers["Cache-Control"] == "public, max-age=60"


# -- build -------------------------------------------------------------------------------------


def test_tiles_path_layout_and_refusals(tmp_path):
    assert tb.tiles_path(tmp_path, "678", "plan", 7) == tmp_path / "tiles/678/plan/v7.pmtiles"
    with pytest.raises(NotFoundError):
        tb.tiles_path(tmp_path, "../x", "plan", 7)
    with pytest.raises(NotFoundError):
        tb.tiles_path(tmp_path, "678", "../../etc", 7)


def test_build_writes_atomically_with_default_zooms(home, store, published):
    out = tb.tiles_path(home, "678", "parcels", published.id)
    stages = []
    assert tb.build_tiles(store, published.id, out, progress=stages.append) == out
    assert stages == ["read", "write", "done"]
    # no temp files (the build lock of the publish that already built it may remain)
    assert sorted(p.name for p in out.parent.iterdir() if p.name != ".build.lock") == [
        out.name]
    with pm.PMTilesReader(out) as r:
        assert (r.header.min_zoom, r.header.max_zoom) == tb.ZOOMS["parcels"]
        assert r.tile_gzip and r.header.tile_type == pm.TILE_TYPE_MVT
        meta = r.metadata()
    fields = meta["vector_layers"][0]["fields"]
    assert meta["vector_layers"][0]["id"] == "parcels"
    assert set(fields) == PUBLIC_PARCEL_FIELDS


def test_build_zoom_override_and_bad_range(home, store, published, tmp_path):
    out = tb.build_tiles(store, published.id, tmp_path / "z.pmtiles", minzoom=10, maxzoom=11)
    with pm.PMTilesReader(out) as r:
        assert (r.header.min_zoom, r.header.max_zoom) == (10, 11)
        assert {e[0] for e in r.entries()} == {10, 11}
    with pytest.raises(UsageError):
        tb.build_tiles(store, published.id, tmp_path / "bad.pmtiles", minzoom=14, maxzoom=12)


def _store_layer(store, kind: str, frame: dict, meta: dict | None = None):
    x0, y0 = DUC_TRONG_XY
    n = len(next(iter(frame.values())))
    geoms = shapely.box(x0 + np.arange(n) * 200.0, y0, x0 + np.arange(n) * 200.0 + 150, y0 + 150)
    gdf = gpd.GeoDataFrame({**frame, "src_row": np.arange(n, dtype="int64")},
                           geometry=geoms, crs="EPSG:5899")
    v = store.add_version("678", kind, gdf, source_name="x.gpkg", source_sha256="0" * 64,
                          created_by="test", meta=meta or {})
    return store.publish(v.id, by="test")


@pytest.mark.parametrize("kind,frame,public", [
    ("plan", {"zone_id": ["Z1", "Z2"], "land_use": ["ONT", "CLN"], "commune": ["1", "2"],
              "name": ["a", "b"], "area_m2": [1.0, 2.0], "src:ChuDauTu": ["Ông A", "Bà B"]},
     {"zone_id", "land_use"}),
    ("boundary", {"level": ["commune", "commune"], "code": ["67801", "67802"],
                  "name": ["Xã Hiệp An", "Xã Liên Hiệp"], "src:GhiChu": ["x", "y"]},
     {"level", "code", "name"}),
])
def test_other_kinds_carry_only_their_public_fields(home, store, kind, frame, public):
    v = _store_layer(store, kind, frame)
    path = tb.ensure_tiles(store, home, "678", kind)
    assert path == tb.tiles_path(home, "678", kind, v.id)
    lo, hi = tb.ZOOMS[kind]
    with pm.PMTilesReader(path) as r:
        assert (r.header.min_zoom, r.header.max_zoom) == (lo, hi)
        meta = r.metadata()
    assert set(meta["vector_layers"][0]["fields"]) == public
    gdf = pyogrio.read_dataframe(path)
    assert set(gdf.columns) - {"geometry", "mvt_id"} == public
    assert len(gdf) == 2


def test_personal_field_in_the_allow_list_is_refused(home, store):
    v = _store_layer(store, "plan", {"zone_id": ["Z1"], "land_use": ["ONT"]},
                     meta={"personal_fields": ["land_use"]})
    with pytest.raises(StoreError, match="personal"):
        tb.build_tiles(store, v.id, home / "x.pmtiles")
    assert not (home / "x.pmtiles").exists()


def test_ensure_tiles_builds_once_and_none_when_unpublished(home, store, published):
    assert tb.ensure_tiles(store, home, "678", "plan") is None
    path = tb.ensure_tiles(store, home, "678", "parcels")
    stamp = path.stat().st_mtime_ns
    assert tb.ensure_tiles(store, home, "678", "parcels") == path
    assert path.stat().st_mtime_ns == stamp


def test_empty_layer_gets_an_archive_without_tiles(tmp_path):
    path = tmp_path / "empty.pmtiles"
    tb._write_empty_archive(path, "plan", 8, 15)
    with pm.PMTilesReader(path) as r:
        assert list(r.entries()) == []
        assert r.tile(8, 0, 0) is None
        assert r.metadata()["vector_layers"][0]["id"] == "plan"


# -- the PMTiles reader --------------------------------------------------------------------------


def test_tile_ids_follow_the_spec():
    # Values from the PMTiles v3 specification's examples / reference implementation.
    assert pm.zxy_to_tileid(0, 0, 0) == 0
    assert [pm.zxy_to_tileid(1, x, y) for x, y in [(0, 0), (0, 1), (1, 1), (1, 0)]] == \
        [1, 2, 3, 4]
    assert pm.zxy_to_tileid(2, 0, 0) == 5
    for z in range(7):
        ids = sorted(pm.zxy_to_tileid(z, x, y) for x in range(2**z) for y in range(2**z))
        assert ids == list(range(pm._ZOOM_BASE[z], pm._ZOOM_BASE[z] + 4**z))
        for x in range(2**z):
            for y in range(2**z):
                assert pm.tileid_to_zxy(pm.zxy_to_tileid(z, x, y)) == (z, x, y)
    n = 2**24
    for x, y in [(0, 0), (n - 1, n - 1), (n - 1, 0), (12345, 6543210)]:
        assert pm.tileid_to_zxy(pm.zxy_to_tileid(24, x, y)) == (24, x, y)
    with pytest.raises(ValueError):
        pm.zxy_to_tileid(3, 8, 0)


@pytest.fixture
def gdal_archive(tmp_path) -> Path:
    """A GDAL-written archive of 1 200 parcels (2.4 x 1.8 km) over six zooms."""
    grid = parcel_grid(rows=30, cols=40, size=(60.0, 60.0))
    gdf = grid.rename(columns={"SoThua": "parcel"})[["parcel", "geometry"]]
    gdf["fid"] = np.arange(len(gdf))
    path = tmp_path / "gdal.pmtiles"
    pyogrio.write_dataframe(gdf.to_crs(3857), path, driver="PMTiles", layer="parcels",
                            dataset_options={"MINZOOM": "11", "MAXZOOM": "16"})
    return path


def test_reader_reads_every_tile_gdal_wrote(gdal_archive, tmp_path):
    with pm.PMTilesReader(gdal_archive) as r:
        entries = list(r.entries())
        h = r.header
        assert len(entries) == h.addressed_tiles > 20
        assert {e[0] for e in entries} == set(range(11, 17))
        ids = [pm.zxy_to_tileid(z, x, y) for z, x, y, _, _ in entries]
        assert ids == sorted(ids)
        for z, x, y, _, _ in entries:
            data = r.tile(z, x, y)
            assert data is not None and data[:2] == b"\x1f\x8b"
            # GDAL's own PMTiles reader must see the same tile at the same address.
            ours = tmp_path / str(z) / str(x) / f"{y}.pbf"
            ours.parent.mkdir(parents=True, exist_ok=True)
            ours.write_bytes(r.plain(data))
            mine = pyogrio.read_dataframe(ours).sort_values("fid")
            gdal = pyogrio.read_dataframe(f"/vsipmtiles/{gdal_archive}/{z}/{x}/{y}.mvt"
                                          ).sort_values("fid")
            assert mine["fid"].tolist() == gdal["fid"].tolist()
            # (GDAL's PMTiles reader says MultiPolygon where the tile says Polygon.)
            np.testing.assert_allclose(shapely.get_coordinates(mine.geometry.values),
                                       shapely.get_coordinates(gdal.geometry.values))
        # And nothing where GDAL wrote nothing.
        z, x, y, _, _ = entries[0]
        assert r.tile(z, (x + 2**z // 2) % 2**z, y) is None
        assert r.tile(h.max_zoom + 1, 0, 0) is None


def test_reader_matches_gdal_feature_counts_per_zoom(gdal_archive):
    with pm.PMTilesReader(gdal_archive) as r:
        for z in (11, 16):
            fids = set()
            for tz, x, y, _, _ in r.entries():
                if tz == z:
                    for f in decode_mvt(r.tile_plain(z, x, y))["parcels"]["features"]:
                        fids.add(f["properties"]["fid"])
            gdal = pyogrio.read_dataframe(gdal_archive, ZOOM_LEVEL=str(z))
            assert fids == set(gdal["fid"].tolist()) == set(range(1200))


# A tiny PMTiles writer, to reach what GDAL's small archives never contain: leaf
# directories, run lengths, shared (deduplicated) tile data, no internal compression.


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _serialise(entries: list[tuple[int, int, int, int]]) -> bytes:
    """entries: (tile_id, offset, length, run_length), sorted."""
    out = bytearray(_uvarint(len(entries)))
    last = 0
    for tid, *_ in entries:
        out += _uvarint(tid - last)
        last = tid
    for *_, run in entries:
        out += _uvarint(run)
    for _, _, length, _ in entries:
        out += _uvarint(length)
    for i, (_, off, _, _) in enumerate(entries):
        prev = entries[i - 1] if i else None
        contiguous = prev is not None and off == prev[1] + prev[2]
        out += _uvarint(0 if contiguous else off + 1)
    return bytes(out)


def _write_archive(path: Path, tiles: dict[int, bytes], *, leaf_size: int,
                   compress: bool) -> None:
    """Tiles by id; consecutive equal tiles become runs; leaves of `leaf_size` entries."""
    comp = (lambda b: gzip.compress(b, mtime=0)) if compress else (lambda b: b)
    data, entries, seen = bytearray(), [], {}
    for tid in sorted(tiles):
        blob = tiles[tid]
        if entries and entries[-1][0] + entries[-1][3] == tid and seen.get(blob) == \
                entries[-1][1]:
            t, o, n, run = entries[-1]
            entries[-1] = (t, o, n, run + 1)
            continue
        if blob not in seen:
            seen[blob] = len(data)
            data += blob
        entries.append((tid, seen[blob], len(blob), 1))
    leaves, root = bytearray(), []
    for i in range(0, len(entries), leaf_size):
        chunk = comp(_serialise(entries[i:i + leaf_size]))
        root.append((entries[i][0], len(leaves), len(chunk), 0))
        leaves += chunk
    root_bytes = comp(_serialise(root))
    meta = comp(b'{"name": "synthetic"}')
    root_off = pm.HEADER_SIZE
    meta_off = root_off + len(root_bytes)
    leaf_off = meta_off + len(meta)
    data_off = leaf_off + len(leaves)
    c = 2 if compress else 1
    header = struct.pack("<7sBQQQQQQQQQQQBBBBBBiiiiBii", b"PMTiles", 3, root_off,
                         len(root_bytes), meta_off, len(meta), leaf_off, len(leaves), data_off,
                         len(data), len(tiles), len(entries), len(seen), 1, c, 1, 1, 0, 10,
                         0, 0, 0, 0, 0, 0, 0)
    path.write_bytes(header + root_bytes + meta + bytes(leaves) + bytes(data))


@pytest.mark.parametrize("compress", [True, False])
def test_reader_leaf_directories_runs_and_shared_data(tmp_path, compress):
    rng = np.random.default_rng(3)
    tiles = {}
    for z in range(0, 9):
        n = 2**z
        for _ in range(min(4**z, 60)):
            x, y = (int(v) for v in rng.integers(0, n, 2))
            tiles[pm.zxy_to_tileid(z, x, y)] = f"tile {z}/{x}/{y}".encode()
    start = pm.zxy_to_tileid(9, 0, 0)
    for tid in range(start, start + 40):  # one run of 40 identical (ocean) tiles
        tiles[tid] = b"same everywhere"
    tiles[start + 100] = b"same everywhere"  # shared data, not contiguous
    path = tmp_path / "synthetic.pmtiles"
    _write_archive(path, tiles, leaf_size=16, compress=compress)
    with pm.PMTilesReader(path) as r:
        assert all(run == 0 for run in r.root.run_lengths)  # everything is in leaves
        assert r.tile_gzip is False and r.metadata() == {"name": "synthetic"}
        for tid, blob in tiles.items():
            assert r.tile(*pm.tileid_to_zxy(tid)) == blob
        assert sorted(pm.zxy_to_tileid(z, x, y) for z, x, y, _, _ in r.entries()) == \
            sorted(tiles)
        missing = [t for t in range(start + 41, start + 100)]
        for tid in missing[:10]:
            assert r.tile(*pm.tileid_to_zxy(tid)) is None
        assert r.tile(10, 0, 0) is None


def test_reader_refuses_what_it_cannot_serve(tmp_path):
    bad = tmp_path / "bad.pmtiles"
    bad.write_bytes(b"not a pmtiles archive at all" * 10)
    with pytest.raises(pm.PMTilesError):
        pm.PMTilesReader(bad)
    bad.write_bytes(b"PMTiles")
    with pytest.raises(pm.PMTilesError):
        pm.PMTilesReader(bad)
    ok = tmp_path / "ok.pmtiles"
    _write_archive(ok, {0: b"x"}, leaf_size=4, compress=True)
    raw = bytearray(ok.read_bytes())
    raw[98] = 3  # brotli tiles
    bad.write_bytes(raw)
    with pytest.raises(pm.PMTilesError, match="compression"):
        pm.PMTilesReader(bad)
    bad.write_bytes(ok.read_bytes()[:-5])  # tile data cut short
    with pytest.raises(pm.PMTilesError):
        pm.PMTilesReader(bad)


def test_open_reader_caches_and_sees_replaced_files(tmp_path):
    path = tmp_path / "a.pmtiles"
    _write_archive(path, {0: b"one"}, leaf_size=4, compress=True)
    first = pm.open_reader(path)
    assert pm.open_reader(path) is first and first.tile(0, 0, 0) == b"one"
    other = tmp_path / "b.pmtiles"
    _write_archive(other, {0: b"two!"}, leaf_size=4, compress=True)
    os.replace(other, path)  # what build_tiles does
    second = pm.open_reader(path)
    assert second is not first and second.tile(0, 0, 0) == b"two!"
    assert first.tile(0, 0, 0) == b"one"  # a reader still in use keeps its old file


def test_open_reader_is_safe_across_threads(gdal_archive):
    with pm.PMTilesReader(gdal_archive) as r:
        expected = {(z, x, y): r.tile(z, x, y) for z, x, y, _, _ in r.entries()}
    errors = []

    def work():
        try:
            for _ in range(5):
                reader = pm.open_reader(gdal_archive)
                for key, blob in expected.items():
                    assert reader.tile(*key) == blob
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_public_frame_reads_no_personal_column(store, published):
    v = store.version(published.id)
    gdf = tb.public_frame(store, v)
    assert set(gdf.columns) == PUBLIC_PARCEL_FIELDS | {"geometry"}
    assert gdf.crs.to_epsg() == 3857
    assert pd.api.types.is_integer_dtype(gdf["fid"])


# -- parallel build: one zoom level per process, merged --------------------------------------


@pytest.fixture
def block_1200(store):
    """1 200 parcels (2.4 x 1.8 km) with the public fields, published as a parcels layer."""
    grid = parcel_grid(rows=30, cols=40, size=(60.0, 60.0))
    gdf = gpd.GeoDataFrame({
        "commune": grid["MaXa"], "sheet": grid["SoTo"].astype("Int64"),
        "parcel": grid["SoThua"].astype("Int64"), "land_use": grid["LoaiDat"],
        "area_m2": grid["DienTich"], "src_row": np.arange(len(grid), dtype="int64"),
    }, geometry=grid.geometry.values, crs="EPSG:5899")
    v = store.add_version("678", "parcels", gdf, source_name="block.gpkg",
                          source_sha256="1" * 64, created_by="test")
    return store.publish(v.id, by="test")


def _tiles(path: Path) -> list[tuple[int, int, int, bytes]]:
    with pm.PMTilesReader(path) as r:
        return [(z, x, y, bytes(r.tile(z, x, y))) for z, x, y, _, _ in r.entries()]


def test_parallel_build_writes_the_same_tiles_as_one_process(store, block_1200, tmp_path):
    one = tb.build_tiles(store, block_1200.id, tmp_path / "one.pmtiles", workers=1)
    stages = []
    many = tb.build_tiles(store, block_1200.id, tmp_path / "many.pmtiles", workers=3,
                          progress=stages.append)
    assert stages == ["read", "write", "merge", "done"]
    # Same tiles at the same addresses, byte for byte, at every zoom of the range.
    expected = _tiles(one)
    assert {z for z, *_ in expected} == set(range(12, 17))
    assert _tiles(many) == expected
    with pm.PMTilesReader(one) as a, pm.PMTilesReader(many) as b:
        for field in ("min_zoom", "max_zoom", "tile_type", "tile_compression", "clustered",
                      "addressed_tiles", "center_zoom"):
            assert getattr(b.header, field) == getattr(a.header, field), field
        for field in ("min_lon", "min_lat", "max_lon", "max_lat", "center_lon", "center_lat"):
            assert getattr(b.header, field) == pytest.approx(getattr(a.header, field), abs=1e-7)
        ma, mb = a.metadata(), b.metadata()
    assert mb["vector_layers"] == ma["vector_layers"]
    assert (mb["minzoom"], mb["maxzoom"], mb["name"]) == (ma["minzoom"], ma["maxzoom"],
                                                          ma["name"])
    stats_a = {s["attribute"]: s for s in ma["tilestats"]["layers"][0]["attributes"]}
    stats_b = {s["attribute"]: s for s in mb["tilestats"]["layers"][0]["attributes"]}
    assert stats_b == stats_a
    # GDAL reads the merged archive like its own.
    gdal = pyogrio.read_dataframe(many, ZOOM_LEVEL="16")
    assert set(gdal["fid"]) == set(range(1200))
    # Nothing is left next to the archives but the archives (and the data home).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "many.pmtiles",
                                                          "one.pmtiles"]


def test_tile_workers_choice():
    assert tb.tile_workers(tb.PARALLEL_MIN_FEATURES - 1, 5) == 1  # not worth a process
    assert tb.tile_workers(tb.PARALLEL_MIN_FEATURES, 5) == min(available_cpus(), 5)
    assert tb.tile_workers(10**6, 1) == 1  # one zoom level: one process
    assert tb.tile_workers(10, 5, workers=3) == 3  # asked for: honoured
    assert tb.tile_workers(10, 2, workers=8) == 2  # never more than one per zoom level
    with pytest.raises(UsageError):
        tb.tile_workers(10, 5, workers=0)


def _archive_with(tmp_path: Path, name: str, zooms: range, *, leaf_size=8, compress=True):
    tiles = {}
    for z in zooms:
        n = 2**z
        for x in range(min(n, 6)):
            for y in range(min(n, 3)):
                tiles[pm.zxy_to_tileid(z, x, y)] = f"{name} {z}/{x}/{y}".encode()
    start = pm.zxy_to_tileid(zooms[-1], 0, 0)
    for tid in range(start + 50, start + 60):  # a run of identical tiles
        tiles[tid] = b"sea"
    path = tmp_path / f"{name}.pmtiles"
    _write_archive(path, tiles, leaf_size=leaf_size, compress=compress)
    return path, tiles


def test_merge_keeps_every_tile_of_every_part(tmp_path):
    low, tiles_low = _archive_with(tmp_path, "low", range(0, 4))
    high, tiles_high = _archive_with(tmp_path, "high", range(4, 6), leaf_size=5)
    out = merge_archives([low, high], tmp_path / "merged.pmtiles",
                         metadata={"name": "merged"})
    with pm.PMTilesReader(out) as r:
        for tid, blob in {**tiles_low, **tiles_high}.items():
            assert r.tile(*pm.tileid_to_zxy(tid)) == blob
        assert sorted(pm.zxy_to_tileid(z, x, y) for z, x, y, _, _ in r.entries()) == \
            sorted({**tiles_low, **tiles_high})
        assert (r.header.min_zoom, r.header.max_zoom) == (0, 10)  # the parts' headers say 0-10
        assert r.header.addressed_tiles == len(tiles_low) + len(tiles_high)
        assert r.header.clustered and r.metadata() == {"name": "merged"}
        # Runs stay runs: the ten "sea" tiles of each part are one entry each.
        runs = [run for _, _, _, run in r.directory_entries() if run > 1]
        assert runs == [10, 10]


def test_merge_refuses_overlapping_or_mismatched_parts(tmp_path):
    low, _ = _archive_with(tmp_path, "low", range(0, 4))
    high, _ = _archive_with(tmp_path, "high", range(4, 6))
    with pytest.raises(pm.PMTilesError, match="in order"):
        merge_archives([high, low], tmp_path / "x.pmtiles")
    with pytest.raises(pm.PMTilesError, match="in order"):
        merge_archives([low, low], tmp_path / "x.pmtiles")
    other = tmp_path / "gzip-tiles.pmtiles"
    raw = bytearray(_archive_with(tmp_path, "other", range(6, 7))[0].read_bytes())
    raw[98] = pm.COMPRESSION_GZIP  # the tiles of this part claim to be gzip-compressed
    other.write_bytes(raw)
    with pytest.raises(pm.PMTilesError, match="compression"):
        merge_archives([low, other], tmp_path / "x.pmtiles")
    with pytest.raises(pm.PMTilesError):
        merge_archives([], tmp_path / "x.pmtiles")


def test_merge_metadata_combines_zooms_fields_and_statistics():
    def meta(z, fields, stats):
        return {"name": f"part {z}", "minzoom": str(z), "maxzoom": str(z),
                "center": f"108,11,{z}",
                "vector_layers": [{"id": "parcels", "minzoom": z, "maxzoom": z,
                                   "fields": fields}],
                "tilestats": {"layers": [{"layer": "parcels", "attributes": stats}]}}

    merged = merge_metadata([
        meta(12, {"sheet": "Number"}, [{"attribute": "sheet", "count": 3, "min": 2,
                                        "max": 9, "values": [2, 5, 9]}]),
        meta(13, {"sheet": "Number", "land_use": "String"},
             [{"attribute": "sheet", "count": 4, "min": 1, "max": 9,
               "values": [1, 2, 5, 9]}]),
    ], 12, 13)
    assert (merged["name"], merged["minzoom"], merged["maxzoom"]) == ("part 12", "12", "13")
    assert merged["center"] == "108,11,12"
    layer = merged["vector_layers"][0]
    assert (layer["minzoom"], layer["maxzoom"]) == (12, 13)
    assert layer["fields"] == {"sheet": "Number", "land_use": "String"}
    sheet = merged["tilestats"]["layers"][0]["attributes"][0]
    assert (sheet["count"], sheet["min"], sheet["max"]) == (4, 1, 9)
    assert sheet["values"] == [2, 5, 9]  # the lowest zoom's sample, as GDAL keeps it


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_process_gets_its_own_reader_cache(gdal_archive):
    reader = pm.open_reader(gdal_archive)
    assert pm.open_reader(gdal_archive) is reader
    # Fork while another thread of the parent holds the cache lock, as a threaded
    # server might: the child must neither inherit the readers nor the held lock.
    with pm._cache_lock:
        pid = os.fork()
        if pid == 0:  # the child: exit 0 when it has a cache of its own that works
            ok = not pm._cache and pm.open_reader(gdal_archive) is not reader
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pm.open_reader(gdal_archive) is reader  # the parent's cache is untouched
