"""Contract tests of `gisportal.store.Store`, run against every backend.

``gpkg`` is the embedded backend (real files in ``tmp_path``); ``postgis`` the production
one, on a fresh PostGIS database of the real PostgreSQL 15 server ``tests/servers.py``
starts (``pg_dsn``), selected as production selects it: ``GISPORTAL_DATABASE`` set, the
schema made by the migration. Its tests are marked ``production``. Crashes and
concurrent uploads are real processes on both. Tests of one backend's own mechanics
(GeoPackage files and locks; PostgreSQL schema, pool and migrations) are at the end.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from contextlib import closing
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely

from gisportal.base.errors import NotFoundError, StoreError, UsageError
from gisportal.store import KINDS, GpkgStore, Store, Version, open_store
from gisportal.store import gpkg as gpkg_module
from tests.conftest import use_database

CRS = "EPSG:5899"  # VN-2000 / TM-3 107°45′, Lâm Đồng
REPO = Path(__file__).resolve().parents[1]
BACKENDS = ["gpkg", pytest.param("postgis", marks=pytest.mark.production)]
X0, Y0, SIDE = 540_000, 1_310_000, 10  # grid origin and cell size, metres
COMMUNES = [unicodedata.normalize("NFC", c) for c in ("Phường 1", "Xã Tà Nung", "Xã Đạ Sar")]
INJECTION = "x' OR '1'='1"
TABLE_RE = re.compile(r"(parcels|plan|boundary)_v[0-9]+")


# -- backend hooks: what a new backend has to provide -------------------------------------


def make_store(backend: str, home: Path) -> Store:
    store = open_store(home, crs=CRS)
    want = {"gpkg": "GpkgStore", "postgis": "PostgisStore"}[backend]
    assert type(store).__name__ == want, f"{backend}: opened a {type(store).__name__}"
    return store


def pg_query(sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of a query on the test's database, on a connection of its own."""
    import psycopg

    with psycopg.connect(os.environ["GISPORTAL_DATABASE"], autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def stored_tables(backend: str, home: Path, district: str) -> set[str]:
    """Version tables physically present in the backend's storage for a district."""
    if backend == "gpkg":
        path = home / "districts" / f"{district}.gpkg"
        if not path.exists():
            return set()
        with closing(sqlite3.connect(path)) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
        return {n for n in names if TABLE_RE.fullmatch(n)}
    if backend == "postgis":  # layers.d<district>_<kind>_v<id>, committed ones only
        prefix = f"d{district}_"
        names = [r[0] for r in pg_query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'layers' AND c.relkind = 'r'")]
        return {n[len(prefix):] for n in names
                if n.startswith(prefix) and TABLE_RE.fullmatch(n[len(prefix):])}
    raise AssertionError(backend)


#: What a PostGIS writer shows in pg_stat_activity while its transaction is open.
WRITING_RE = re.compile(r"writing layers\.d([0-9]+)_(?:parcels|plan|boundary)_v([0-9]+)")


def hidden_rows(backend: str, home: Path) -> list[tuple[int, str]]:
    """Versions a writer has begun but not finished: (id, district).

    GeoPackage: the catalogue rows reserved with status ``writing``. PostGIS: nothing is
    committed before the end, so the writers in progress are the sessions whose
    application name says which version they are writing (pg_stat_activity)."""
    if backend == "gpkg":
        with closing(sqlite3.connect(home / "catalogue.sqlite", timeout=30)) as conn:
            return conn.execute(
                "SELECT id, district FROM versions WHERE status = 'writing'").fetchall()
    if backend == "postgis":
        found = [WRITING_RE.search(str(r[0])) for r in pg_query(
            "SELECT application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        return sorted((int(m.group(2)), m.group(1)) for m in found if m)
    raise AssertionError(backend)


def hidden_rows_after_kill(backend: str, home: Path, timeout: float = 30.0) -> list[
        tuple[int, str]]:
    """`hidden_rows` once a SIGKILLed writer is gone. PostgreSQL notices a dead client
    when it next reads its socket (after the statement running then, an index build
    say) and rolls its transaction back; until then its session is still listed."""
    rows = hidden_rows(backend, home)
    deadline = time.monotonic() + timeout
    while rows and backend == "postgis" and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = hidden_rows(backend, home)
    return rows


# -- data ----------------------------------------------------------------------------------


def parcels(nx: int = 4, ny: int = 3, *, land_use: str = "ONT") -> gpd.GeoDataFrame:
    """A grid of square parcels sharing edges; sheet = row + 1, parcel = column + 1.

    Integer coordinates make "on the shared edge" exact. Columns cover every dtype the
    store must keep: int, float, str, nullable int/bool/str, JSON text.
    """
    n = nx * ny
    i = np.arange(n)
    col, row = i % nx, i // nx
    minx, miny = X0 + col * SIDE, Y0 + row * SIDE
    notes = [None if k % 5 == 0 else f"thửa số {k}" for k in i]
    notes[1] = INJECTION
    return gpd.GeoDataFrame(
        {
            "commune": pd.array([COMMUNES[k % 3] for k in i], dtype="str"),
            "sheet": (row + 1).astype("int64"),
            "parcel": (col + 1).astype("int64"),
            "land_use": pd.array([land_use] * n, dtype="str"),
            "area_m2": np.full(n, float(SIDE * SIDE)),
            "owners": pd.array([None if k % 4 == 0 else int(k) for k in i], dtype="Int64"),
            "certified": pd.array([None if k % 3 == 0 else bool(k % 2) for k in i],
                                  dtype="boolean"),
            "note": pd.array(notes, dtype="str"),
            "src_row": i.astype("int64"),
            "attrs": [json.dumps({"SoThuTuThua": int(c + 1), "TenChu": "Nguyễn Văn Ánh"},
                                 ensure_ascii=False) for c in col],
        },
        geometry=shapely.box(minx, miny, minx + SIDE, miny + SIDE),
        crs=CRS,
    )


def big_grid(n: int, land_use: str) -> gpd.GeoDataFrame:
    """A layer big enough that writing it takes a noticeable time (also used by children)."""
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    minx, miny = X0 + (i % side) * SIDE, Y0 + (i // side) * SIDE
    return gpd.GeoDataFrame(
        {"land_use": np.full(n, land_use, dtype=object), "src_row": i.astype("int64")},
        geometry=shapely.box(minx, miny, minx + SIDE, miny + SIDE),
        crs=CRS,
    )


def add(store: Store, gdf: gpd.GeoDataFrame | None = None, district: str = "672",
        kind: str = "parcels", **kwargs: object) -> Version:
    kwargs.setdefault("source_name", "Đà Lạt thửa đất.zip")
    kwargs.setdefault("source_sha256", "ab" * 32)
    kwargs.setdefault("created_by", "planner")
    kwargs.setdefault("key_columns", ("sheet", "parcel"))
    return store.add_version(district, kind, parcels() if gdf is None else gdf, **kwargs)


def keys(gdf: gpd.GeoDataFrame) -> set[tuple[int, int]]:
    return set(zip(gdf["sheet"].tolist(), gdf["parcel"].tolist(), strict=True))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(backend: str, home: Path, request: pytest.FixtureRequest,
          monkeypatch: pytest.MonkeyPatch):
    if backend == "postgis":
        use_database(request, monkeypatch)
    s = make_store(backend, home)
    yield s
    s.close()


@pytest.fixture
def gpkg_store(home: Path):
    """The embedded store only, for the tests of its GDAL and SQLite mechanics."""
    s = make_store("gpkg", home)
    yield s
    s.close()


# -- writing and reading back --------------------------------------------------------------


def test_round_trip_keeps_geometry_dtypes_and_vietnamese_text(store: Store) -> None:
    gdf = parcels()
    v = add(store, gdf)
    got = store.read(v.id)

    attrs = [c for c in gdf.columns if c != "geometry"]
    assert list(got.columns) == [*attrs, "geometry"]
    pd.testing.assert_frame_equal(pd.DataFrame(got[attrs]), pd.DataFrame(gdf[attrs]))
    assert shapely.equals_exact(got.geometry.values, gdf.geometry.values, tolerance=0).all()
    assert got.crs == pyproj.CRS(CRS)
    # Vietnamese text comes back byte for byte, still NFC.
    assert [s.encode() for s in got["commune"]] == [s.encode() for s in gdf["commune"]]
    assert all(unicodedata.is_normalized("NFC", s) for s in got["commune"])
    assert json.loads(got["attrs"][0])["TenChu"] == "Nguyễn Văn Ánh"


def test_reads_after_gdal_writes_in_the_same_process(gpkg_store: Store, home) -> None:
    """GDAL's SQLite deletes the -wal/-shm files under Python's open connections when it
    closes; readers opened before a write must not go stale ("no such table: rtree_…").
    A second store on the same home (the web app's, beside a script's) is covered too."""
    store = gpkg_store
    other = GpkgStore(home, crs=CRS)
    try:
        v1 = add(store, parcels(2, 2))
        assert len(store.query_bbox(v1.id, (0, 0, 1e7, 1e7))) == 4
        assert len(other.query_bbox(v1.id, (0, 0, 1e7, 1e7))) == 4
        for n in (3, 4):
            v = add(store, parcels(n, n))
            assert len(store.query_bbox(v.id, (0, 0, 1e7, 1e7))) == n * n
            assert len(other.query_bbox(v.id, (0, 0, 1e7, 1e7))) == n * n
            assert len(other.read(v1.id)) == 4
    finally:
        other.close()
    store.close()
    # The copied tables are whole GeoPackage layers: GDAL reads them with their spatial
    # index, and SQLite's own check finds the copied R*Tree consistent.
    gpkg = next((home / "districts").glob("*.gpkg"))
    for layer, n in (("parcels_v2", 9), ("parcels_v3", 16)):
        assert len(pyogrio.read_dataframe(gpkg, layer=layer)) == n
        assert pyogrio.read_info(gpkg, layer=layer)["capabilities"]["fast_spatial_filter"]
        with sqlite3.connect(gpkg) as conn:
            assert conn.execute("SELECT rtreecheck(?)", (f"rtree_{layer}_geom",)).fetchone() \
                == ("ok",)


def test_new_version_is_a_draft_with_its_facts(store: Store) -> None:
    gdf = parcels()
    v = add(store, gdf)
    assert v.status == "draft" and not v.is_published
    assert store.published("672", "parcels") is None
    assert (v.district, v.kind, v.feature_count) == ("672", "parcels", len(gdf))
    assert (v.source_name, v.source_sha256, v.created_by) == (
        "Đà Lạt thửa đất.zip", "ab" * 32, "planner")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v.created_at)
    assert v.published_at is None and v.published_by is None and not v.has_errors
    assert v.bounds == pytest.approx(tuple(gdf.total_bounds))
    assert store.version(v.id) == v


def test_version_ids_increase_across_districts_and_kinds(store: Store) -> None:
    ids = [add(store, district=d, kind=k).id for d, k in
           [("672", "parcels"), ("673", "plan"), ("672", "plan"), ("683", "boundary")]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_versions_newest_first_filtered_and_districts(store: Store) -> None:
    a = add(store, district="672", kind="parcels")
    b = add(store, district="673", kind="parcels")
    c = add(store, district="672", kind="plan")
    assert [v.id for v in store.versions()] == [c.id, b.id, a.id]
    assert [v.id for v in store.versions("672")] == [c.id, a.id]
    assert [v.id for v in store.versions(kind="parcels")] == [b.id, a.id]
    assert [v.id for v in store.versions("672", "plan")] == [c.id]
    assert store.versions("680") == []
    assert store.districts() == ["672", "673"]


def test_mixed_polygons_are_stored_as_multipolygons(store: Store) -> None:
    square = shapely.box(X0, Y0, X0 + 10, Y0 + 10)
    other = shapely.box(X0 + 20, Y0, X0 + 30, Y0 + 10)
    mixed = gpd.GeoDataFrame({"code": ["ONT", "CLN"]},
                             geometry=[square, shapely.MultiPolygon([other])], crs=CRS)
    got = store.read(add(store, mixed, kind="plan", key_columns=()).id)
    assert list(got.geom_type) == ["MultiPolygon", "MultiPolygon"]
    assert got.area.tolist() == [100.0, 100.0]
    single = store.read(add(store, parcels(), kind="parcels").id)
    assert set(single.geom_type) == {"Polygon"}


def test_empty_layer_and_null_geometry(store: Store) -> None:
    gdf = parcels(2, 1)
    gdf.loc[1, "geometry"] = None
    v = add(store, gdf)
    got = store.read(v.id)
    assert got.geometry.isna().tolist() == [False, True]
    assert v.bounds == (X0, Y0, X0 + SIDE, Y0 + SIDE)
    empty = add(store, parcels().iloc[:0])
    assert (empty.feature_count, empty.bounds) == (0, None)
    got = store.read(empty.id)
    assert len(got) == 0 and list(got.columns) == list(parcels().columns)


def test_layer_in_another_crs_is_refused(store: Store) -> None:
    with pytest.raises(StoreError) as err:
        add(store, parcels().to_crs(4326))
    assert "EPSG:5899" in err.value.what and err.value.fix
    no_crs = gpd.GeoDataFrame(parcels().drop(columns="geometry"),
                              geometry=list(parcels().geometry))
    with pytest.raises(StoreError):
        add(store, no_crs)
    assert store.versions() == []
    # The same CRS spelt differently is the same CRS.
    same = parcels().set_crs(pyproj.CRS(CRS).to_wkt(), allow_override=True)
    v = add(store, same)
    assert v.feature_count == len(same)
    assert store.read(v.id).crs.to_epsg() == 5899


@pytest.mark.parametrize("column", ["fid", "GEOM", "geometry"])
def test_reserved_column_names_are_refused(store: Store, column: str) -> None:
    gdf = parcels().rename_geometry("shape")
    gdf[column] = 1
    with pytest.raises(UsageError):
        add(store, gdf)
    assert store.versions() == []
    # Whatever the geometry column was called, it comes back as "geometry".
    got = store.read(add(store, parcels().rename_geometry("shape")).id)
    assert got.geometry.name == "geometry" and "shape" not in got.columns


def test_failed_write_leaves_nothing_visible(store: Store, backend: str, home: Path) -> None:
    kept = add(store)
    gdf = parcels()
    gdf["impedance"] = np.array([1 + 2j] * len(gdf))  # no GeoPackage field type for this
    with pytest.raises(StoreError):
        add(store, gdf)
    assert [v.id for v in store.versions()] == [kept.id]
    assert hidden_rows(backend, home) == []
    assert stored_tables(backend, home, "672") == {f"parcels_v{kept.id}"}
    assert add(store).id > kept.id


def test_unknown_key_column_is_refused(store: Store) -> None:
    with pytest.raises(UsageError):
        add(store, key_columns=("so_to",))
    assert store.versions() == []


# -- publishing ----------------------------------------------------------------------------


def test_publish_flips_and_supersedes(store: Store) -> None:
    v1, v2 = add(store), add(store)
    p1 = store.publish(v1.id, by="chief")
    assert p1.status == "published" and p1.published_by == "chief" and p1.published_at
    assert store.published("672", "parcels") == p1
    p2 = store.publish(v2.id, by="chief")
    assert store.published("672", "parcels") == p2
    assert store.version(v1.id).status == "superseded"
    # Another district's or kind's pointer is untouched.
    other = store.publish(add(store, kind="plan").id, by="chief")
    assert store.published("672", "parcels").id == v2.id
    assert store.published("672", "plan").id == other.id
    assert store.read(v1.id).shape == store.read(v2.id).shape  # history stays readable


def test_roll_back_by_publishing_an_older_version(store: Store) -> None:
    v1, v2 = add(store), add(store)
    store.publish(v1.id, by="a")
    store.publish(v2.id, by="a")
    back = store.publish(v1.id, by="b")
    assert back.status == "published" and back.published_by == "b"
    assert store.version(v2.id).status == "superseded"
    assert [v.id for v in store.versions() if v.status == "published"] == [v1.id]


def test_publishing_the_published_version_is_a_no_op(store: Store) -> None:
    v = store.publish(add(store).id, by="a")
    assert store.publish(v.id, by="b") == v


def test_version_with_errors_cannot_be_published(store: Store) -> None:
    good = store.publish(add(store).id, by="a")
    bad = add(store, has_errors=True)
    assert bad.has_errors
    with pytest.raises(StoreError) as err:
        store.publish(bad.id, by="a")
    assert err.value.fix
    assert store.version(bad.id).status == "draft"
    assert store.published("672", "parcels") == good


# -- not found -----------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda s: s.version(999),
    lambda s: s.publish(999, by="a"),
    lambda s: s.update_meta(999, {"a": 1}),
    lambda s: s.read(999),
    lambda s: s.find(999, {"sheet": 1}),
    lambda s: s.at_point(999, X0, Y0),
    lambda s: s.query_bbox(999, (X0, Y0, X0 + 1, Y0 + 1)),
    lambda s: s.records(999, where={"sheet": 1}),
    lambda s: s.records(999, point=(X0, Y0)),
    lambda s: s.version("1"),
    lambda s: s.version(True),
    lambda s: s.versions("../672"),
    lambda s: s.published("67a", "parcels"),
    lambda s: s.published("672", "roads"),
    lambda s: s.published_versions("67a"),
    lambda s: Store.published_versions(s, "../672"),
    lambda s: add(s, district="../../etc"),
    lambda s: add(s, kind="roads"),
])
def test_unknown_versions_districts_and_kinds_are_not_found(store: Store, call) -> None:
    add(store)
    with pytest.raises(NotFoundError):
        call(store)


def test_kinds_are_the_four_layer_kinds() -> None:
    assert KINDS == ("parcels", "plan", "boundary", "annual_plan")


# -- look-ups ------------------------------------------------------------------------------


def test_find_by_key(store: Store) -> None:
    v = add(store)
    got = store.find(v.id, {"sheet": 2, "parcel": 3})
    assert keys(got) == {(2, 3)} and got["src_row"].tolist() == [6]
    assert got.dtypes.equals(store.read(v.id).dtypes)
    # Values from a form arrive as text: the column's type decides the comparison.
    assert keys(store.find(v.id, {"sheet": "2", "parcel": "3"})) == {(2, 3)}
    assert keys(store.find(v.id, {"sheet": np.int64(2), "parcel": 3})) == {(2, 3)}
    assert keys(store.find(v.id, {"sheet": 3})) == {(3, p) for p in range(1, 5)}
    assert store.find(v.id, {"sheet": 9, "parcel": 1}).empty


def test_find_vietnamese_text_in_any_normal_form(store: Store) -> None:
    v = add(store)
    nfd = unicodedata.normalize("NFD", "Xã Tà Nung")
    assert nfd != "Xã Tà Nung"
    got = store.find(v.id, {"commune": nfd, "sheet": 1})
    assert keys(got) == {(1, 2)} and got["commune"].tolist() == [COMMUNES[1]]


def test_find_values_are_parameters_not_sql(store: Store) -> None:
    v = add(store)
    got = store.find(v.id, {"note": INJECTION})
    assert got["note"].tolist() == [INJECTION] and keys(got) == {(1, 2)}
    for hostile in ("' OR 1=1 --", "1; DROP TABLE parcels_v1; --", '" OR ""="',
                    "1 OR 1=1", "%", "*"):
        assert store.find(v.id, {"note": hostile}).empty
        assert store.find(v.id, {"sheet": hostile}).empty
    assert len(store.read(v.id)) == len(parcels())


def test_find_missing_values_and_bad_arguments(store: Store) -> None:
    v = add(store)
    assert store.find(v.id, {"owners": None})["src_row"].tolist() == [0, 4, 8]
    assert store.find(v.id, {"certified": True, "sheet": 1})["src_row"].tolist() == [1]
    with pytest.raises(UsageError):
        store.find(v.id, {"so_to": 1})
    with pytest.raises(UsageError):
        store.find(v.id, {"sheet; DROP TABLE x": 1})
    with pytest.raises(UsageError):
        store.find(v.id, {})
    with pytest.raises(UsageError):
        store.find(v.id, {"sheet": [1, 2]})


def test_at_point_inside_outside_and_on_shared_edges(store: Store) -> None:
    v = add(store)
    inside = store.at_point(v.id, X0 + 15, Y0 + 15)
    assert keys(inside) == {(2, 2)}
    assert inside.dtypes.equals(store.read(v.id).dtypes)
    assert store.at_point(v.id, X0 - 5, Y0 + 5).empty
    assert store.at_point(v.id, X0 + 15, Y0 + 30.001).empty
    # A point on the edge shared by two parcels belongs to both; a shared corner to four.
    assert keys(store.at_point(v.id, X0 + 10, Y0 + 5)) == {(1, 1), (1, 2)}
    assert keys(store.at_point(v.id, X0 + 10, Y0 + 10)) == {(1, 1), (1, 2), (2, 1), (2, 2)}
    with pytest.raises(UsageError):
        store.at_point(v.id, float("nan"), Y0)


def test_at_point_tests_the_exact_geometry_not_its_box(store: Store) -> None:
    triangle = shapely.Polygon([(X0, Y0), (X0 + 10, Y0), (X0, Y0 + 10)])
    v = add(store, gpd.GeoDataFrame({"code": ["ONT"]}, geometry=[triangle], crs=CRS),
            kind="plan", key_columns=())
    assert len(store.at_point(v.id, X0 + 2, Y0 + 2)) == 1
    assert store.at_point(v.id, X0 + 8, Y0 + 8).empty  # inside the box, outside the triangle


def test_read_bbox_and_columns(store: Store) -> None:
    gdf = parcels()
    v = add(store, gdf)
    box = (X0 + 12, Y0 + 3, X0 + 25, Y0 + 14)
    got = store.read(v.id, bbox=box)
    assert keys(got) == keys(gdf[gdf.intersects(shapely.box(*box))]) == {
        (1, 2), (1, 3), (2, 2), (2, 3)}
    assert store.read(v.id, bbox=(0, 0, 1, 1)).empty
    some = store.read(v.id, columns=["parcel", "commune"])
    assert set(some.columns) == {"parcel", "commune", "geometry"}
    assert some["commune"].tolist() == gdf["commune"].tolist()
    assert list(store.read(v.id, columns="sheet").columns) == ["sheet", "geometry"]
    with pytest.raises(UsageError):
        store.read(v.id, columns=["so_to"])
    with pytest.raises(UsageError):
        store.read(v.id, bbox=(1, 1, 0, 0))


def test_query_bbox_answers_as_read_does(store: Store) -> None:
    gdf = parcels()
    v = add(store, gdf)
    for box in [(X0 + 12, Y0 + 3, X0 + 25, Y0 + 14), (X0 - 100, Y0 - 100, X0 + 100, Y0 + 100),
                (X0 + 1, Y0 + 1, X0 + 2, Y0 + 2), (X0 + 10, Y0 + 10, X0 + 20, Y0 + 20)]:
        got = store.query_bbox(v.id, box)
        want = store.read(v.id, bbox=box)
        assert keys(got) == keys(gdf[gdf.intersects(shapely.box(*box))])
        pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                      pd.DataFrame(want.drop(columns="geometry")))
        assert shapely.equals_exact(got.geometry.values, want.geometry.values, 0).all()
        assert got.crs == pyproj.CRS(CRS) and got.geometry.name == "geometry"
    # Touching counts: a box whose edge is a parcel edge gets the parcels on both sides.
    assert keys(store.query_bbox(v.id, (X0 + 10, Y0 + 2, X0 + 10, Y0 + 8))) == {(1, 1), (1, 2)}
    assert keys(store.query_bbox(v.id, (X0 + 10, Y0 + 10, X0 + 10, Y0 + 10))) == {
        (1, 1), (1, 2), (2, 1), (2, 2)}
    assert keys(store.query_bbox(v.id, (X0 + 40, Y0 + 5, X0 + 50, Y0 + 6))) == {(1, 4)}
    assert store.query_bbox(v.id, (X0 + 40.001, Y0, X0 + 50, Y0 + 30)).empty
    # Stored order, whatever the box.
    assert store.query_bbox(v.id, (X0, Y0, X0 + 40, Y0 + 30))["src_row"].tolist() == list(
        range(12))


def test_query_bbox_columns_empty_result_and_bad_arguments(store: Store) -> None:
    v = add(store)
    box = (X0 + 12, Y0 + 3, X0 + 25, Y0 + 14)
    some = store.query_bbox(v.id, box, columns=["parcel", "commune"])
    assert list(some.columns) == ["commune", "parcel", "geometry"]  # stored order, as read
    assert some.dtypes.equals(store.read(v.id, columns=["parcel", "commune"]).dtypes)
    assert list(store.query_bbox(v.id, box, columns="sheet").columns) == ["sheet", "geometry"]
    assert list(store.query_bbox(v.id, box, columns=[]).columns) == ["geometry"]
    empty = store.query_bbox(v.id, (0, 0, 1, 1))
    assert empty.empty and list(empty.columns) == list(store.read(v.id).columns)
    assert empty.dtypes.equals(store.read(v.id).dtypes)
    assert empty.crs == pyproj.CRS(CRS)
    assert store.query_bbox(v.id, (0, 0, 1, 1), columns=["sheet"]).empty
    for bad in [(X0 + 1, Y0, X0, Y0 + 1), (X0, Y0, X0 + 1, float("nan")),
                (X0, Y0, float("inf"), Y0 + 1), (X0, Y0, X0 + 1), ("a", "b", "c", "d")]:
        with pytest.raises(UsageError):
            store.query_bbox(v.id, bad)
    for bad_columns in (["so_to"], ["sheet; DROP TABLE x"], ["geometry"]):
        with pytest.raises(UsageError):
            store.query_bbox(v.id, box, columns=bad_columns)


def test_query_bbox_tests_exact_geometry_and_skips_missing_ones(store: Store) -> None:
    triangle = shapely.Polygon([(X0, Y0), (X0 + 10, Y0), (X0, Y0 + 10)])
    plan = gpd.GeoDataFrame({"code": ["ONT", "CLN"]}, geometry=[triangle, None], crs=CRS)
    v = add(store, plan, kind="plan", key_columns=())
    assert store.query_bbox(v.id, (X0 + 7, Y0 + 7, X0 + 9, Y0 + 9)).empty  # box ∩ envelope only
    got = store.query_bbox(v.id, (X0 + 4, Y0 + 4, X0 + 9, Y0 + 9))  # crosses the hypotenuse
    assert got["code"].tolist() == ["ONT"]
    assert store.query_bbox(v.id, (X0 - 1e6, Y0 - 1e6, X0 + 1e6, Y0 + 1e6))["code"].tolist() \
        == ["ONT"]


def test_records_are_the_frames_as_plain_values(store: Store) -> None:
    gdf = parcels()
    gdf.loc[2, "geometry"] = None
    v = add(store, gdf)
    queries = [{"where": {"sheet": 2, "parcel": 3}}, {"where": {"owners": None}},
               {"where": {"note": INJECTION}}, {"where": {"sheet": 9}},
               {"point": (X0 + 10, Y0 + 10)}, {"point": (X0 - 5, Y0)},
               {"bbox": (X0 + 12, Y0 + 3, X0 + 25, Y0 + 14)},
               {"bbox": (X0 - 1e6, Y0 - 1e6, X0 + 1e6, Y0 + 1e6)},
               {"bbox": (X0 + 5, Y0 + 5, X0 + 35, Y0 + 25), "columns": ["certified", "sheet"]},
               {"where": {"sheet": 1}, "columns": "owners"},
               {"point": (X0 + 15, Y0 + 15), "columns": ["note", "area_m2"]}]
    for query in queries:
        got = store.records(v.id, **query)
        # The backend's answer is the interface's definition: the frames, made plain.
        assert got == Store.records(store, v.id, **query), query
        for rec in got:
            assert rec["geometry"] is None or isinstance(rec["geometry"], shapely.Polygon)
            for name, value in rec.items():
                assert value is None or type(value) in (int, float, str, bool, shapely.Polygon), (
                    name, value)
    rec = store.records(v.id, where={"sheet": 1, "parcel": 2})[0]
    assert list(rec) == [*[c for c in gdf.columns if c != "geometry"], "geometry"]
    assert rec["certified"] is True and rec["owners"] == 1 and rec["commune"] == COMMUNES[1]
    assert store.records(v.id, where={"sheet": 1, "parcel": 1})[0]["owners"] is None
    assert store.records(v.id, where={"sheet": 1, "parcel": 3})[0]["geometry"] is None
    assert [r["src_row"] for r in store.records(v.id, bbox=(X0, Y0, X0 + 40, Y0 + 30))] == [
        k for k in range(12) if k != 2]


@pytest.mark.parametrize("kwargs", [{}, {"where": {"sheet": 1}, "point": (X0, Y0)},
                                    {"bbox": (X0, Y0, X0 + 1, Y0 + 1), "point": (X0, Y0)},
                                    {"bbox": (X0 + 1, Y0, X0, Y0)},
                                    {"point": (float("nan"), Y0)}, {"where": {}},
                                    {"where": {"so_to": 1}},
                                    {"where": {"sheet": 1}, "columns": ["so_to"]},
                                    {"point": (X0, Y0), "columns": ["geometry"]}])
def test_records_refuses_what_the_frame_methods_refuse(store: Store, kwargs) -> None:
    v = add(store)
    with pytest.raises(UsageError):
        store.records(v.id, **kwargs)
    with pytest.raises(UsageError):
        Store.records(store, v.id, **kwargs)


# -- a catalogue that is read on every request -------------------------------------------


def test_published_and_districts_are_never_stale(store: Store, backend: str,
                                                 home: Path) -> None:
    first = store.publish(add(store).id, by="a")
    assert store.published("672", "parcels") == first and store.districts() == ["672"]
    with make_store(backend, home) as other:  # another connection, as another process
        assert other.published("672", "parcels") == first
        second = other.publish(add(other).id, by="b")
        assert store.published("672", "parcels") == second
        other.add_version("673", "plan", parcels(), source_name="x", source_sha256="0" * 64,
                          created_by="b")
        assert store.districts() == ["672", "673"]
        decided = other.update_meta(second.id, {"decision": {"number": "1/QĐ"}})
        assert store.published("672", "parcels").meta == decided.meta
        # And the other way round: this store's own writes.
        rolled_back = store.publish(first.id, by="a")
        assert other.published("672", "parcels") == rolled_back
        assert store.published("672", "parcels") == rolled_back
    seen: list[Version | None] = []
    third = store.publish(add(store).id, by="a")
    thread = threading.Thread(target=lambda: seen.append(store.published("672", "parcels")))
    thread.start()
    thread.join()
    assert seen == [third] and store.published("672", "parcels") == third


def test_published_versions_is_every_published_layer_at_once(store: Store, backend: str,
                                                              home: Path) -> None:
    """What `published` answers for every (district, kind), in one call; fresh each call."""

    def one_by_one(s: Store) -> dict[tuple[str, str], Version]:
        return {(d, k): v for d in s.districts() for k in KINDS
                if (v := s.published(d, k)) is not None}

    assert store.published_versions() == {}
    parcels = store.publish(add(store).id, by="a")
    plan = store.publish(add(store, kind="plan").id, by="a")
    other_district = store.publish(add(store, district="673", kind="boundary").id, by="a")
    add(store, district="674")  # drafts only: no published layer, no key
    add(store)  # a newer draft does not move the pointer
    want = {("672", "parcels"): parcels, ("672", "plan"): plan,
            ("673", "boundary"): other_district}
    assert store.published_versions() == want == one_by_one(store)
    assert store.published_versions("672") == {("672", "parcels"): parcels,
                                               ("672", "plan"): plan}
    assert store.published_versions("674") == store.published_versions("675") == {}
    # The contract's default (built from `published` and `districts`) answers the same.
    assert Store.published_versions(store) == want
    assert Store.published_versions(store, "673") == {("673", "boundary"): other_district}
    # A publish, a roll-back and a meta update, by this store or another connection (as
    # another process), are in the very next answer.
    with make_store(backend, home) as other:
        assert other.published_versions() == want
        newer = other.publish(add(other).id, by="b")
        assert store.published_versions()[("672", "parcels")] == newer != parcels
        assert store.published_versions("672")[("672", "parcels")] == newer
        rolled_back = store.publish(parcels.id, by="a")
        assert other.published_versions()[("672", "parcels")] == rolled_back
        assert store.published_versions("672")[("672", "parcels")] == rolled_back
        assert rolled_back.id == parcels.id and store.version(newer.id).status == "superseded"
        decided = other.update_meta(plan.id, {"decision": {"number": "1/QĐ"}})
        assert store.published_versions()[("672", "plan")].meta == decided.meta
        assert store.published_versions() == one_by_one(store) == one_by_one(other)


def test_published_sees_a_publish_from_another_process(store: Store, backend: str,
                                                       home: Path) -> None:
    first = store.publish(add(store).id, by="a")
    second = add(store)
    assert store.published("672", "parcels") == first
    code = ("import sys; from gisportal.store import open_store; "
            "s = open_store(sys.argv[1], crs=sys.argv[2]); s.publish(int(sys.argv[3]), by='p')")
    subprocess.run([sys.executable, "-c", code, str(home), CRS, str(second.id)], check=True,
                   cwd=REPO, timeout=120)
    assert store.published("672", "parcels").id == second.id
    assert store.version(first.id).status == "superseded"


# -- meta ----------------------------------------------------------------------------------


def test_meta_round_trip_and_update(store: Store) -> None:
    meta = {"read": {"crs": "EPSG:5899", "encoding": "windows-1258", "inferred": True},
            "fields": {"SoThuTuThua": "parcel", "SoHieuToBanDo": "sheet"},
            "validation": {"errors": 0, "warnings": 3}}
    v = add(store, meta=meta)
    assert store.version(v.id).meta == meta
    decision = {"number": "1234/QĐ-UBND", "date": "2023-08-15",
                "authority": "UBND tỉnh Lâm Đồng"}
    updated = store.update_meta(v.id, {"decision": decision, "validation": {"errors": 0}})
    assert updated.meta == {**meta, "decision": decision, "validation": {"errors": 0}}
    assert store.version(v.id) == updated
    assert len(store.read(v.id)) == len(parcels())  # the layer is untouched
    with pytest.raises(UsageError):
        store.update_meta(v.id, {"bad": float("nan")})
    with pytest.raises(UsageError):
        add(store, meta={"bad": {1, 2}})
    assert store.version(v.id).meta == updated.meta


# -- persistence, threads ------------------------------------------------------------------


def test_everything_survives_reopening(store: Store, backend: str, home: Path) -> None:
    v1 = store.publish(add(store, meta={"a": 1}).id, by="a")
    v2 = add(store)
    store.close()
    with pytest.raises(StoreError):
        store.version(v1.id)
    with make_store(backend, home) as again:
        assert again.published("672", "parcels") == v1
        assert [v.id for v in again.versions()] == [v2.id, v1.id]
        assert keys(again.find(v2.id, {"sheet": 1, "parcel": 1})) == {(1, 1)}


def test_lookups_from_threads_while_a_version_is_written(store: Store) -> None:
    v = add(store)
    failures: list[BaseException] = []

    def look_up() -> None:
        try:
            for _ in range(50):
                assert keys(store.find(v.id, {"sheet": 2, "parcel": 2})) == {(2, 2)}
                assert keys(store.at_point(v.id, X0 + 15, Y0 + 15)) == {(2, 2)}
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    threads = [threading.Thread(target=look_up) for _ in range(4)]
    for t in threads:
        t.start()
    added = add(store, big_grid(20_000, "CLN"), key_columns=())
    for t in threads:
        t.join()
    assert failures == []
    assert len(store.read(added.id)) == 20_000


# -- crashes and concurrent processes ------------------------------------------------------

CHILD = """
import sys, time
from pathlib import Path
from gisportal.store import open_store
from test_store import big_grid

home, mode, district, n, land_use, arg = sys.argv[1:7]
store = open_store(home, crs="EPSG:5899")

def pause_at(prefix):
    # Freeze when the catalogue connection is about to run `prefix`, so the parent can
    # SIGKILL this process at exactly that point.
    def trace(sql):
        if " ".join(sql.split()).startswith(prefix):
            print("PAUSED", flush=True)
            time.sleep(3600)
    store._db().set_trace_callback(trace)

def pause_after(prefix):
    # PostGIS: freeze once a statement starting with `prefix` has run, its transaction
    # still open (psycopg commits outside Cursor.execute, so "before COMMIT" is this).
    import psycopg
    original = psycopg.Cursor.execute
    def execute(self, query, *args, **kwargs):
        result = original(self, query, *args, **kwargs)
        if isinstance(query, str) and " ".join(query.split()).startswith(prefix):
            print("PAUSED", flush=True)
            time.sleep(3600)
        return result
    psycopg.Cursor.execute = execute

postgis = type(store).__name__ == "PostgisStore"
if mode == "publish":
    if postgis:  # both UPDATEs done, COMMIT not yet
        pause_after("UPDATE versions SET status = 'published'")
    else:
        pause_at("COMMIT")
    store.publish(int(arg), by="crash")
else:
    if mode == "before-draft":
        if postgis:  # the layer and its catalogue row written, COMMIT not yet
            pause_after("INSERT INTO versions")
        else:
            pause_at("UPDATE versions SET status = 'draft'")
    if mode == "together":  # wait until every sibling is ready, then write at once
        barrier, count = Path(arg).parent, int(Path(arg).name)
        (barrier / land_use).touch()
        while len(list(barrier.iterdir())) < count:
            time.sleep(0.01)
    print("WRITING", flush=True)
    started = time.time()
    v = store.add_version(district, "parcels", big_grid(int(n), land_use),
                          source_name="big.zip", source_sha256="0" * 64, created_by=mode,
                          key_columns=("src_row",))
    print(v.id, started, time.time(), flush=True)
"""


def spawn(tmp_path: Path, home: Path, mode: str, district: str, n: int,
          land_use: str = "NEW", arg: str = "-") -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    path = os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, str(script), str(home), mode, district, str(n), land_use, arg],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": path},
    )


def expect_line(proc: subprocess.Popen[str], want: str, timeout: float = 60) -> None:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().strip() if ready else "(timed out)"
    if line != want:
        proc.kill()
        pytest.fail(f"child said {line!r}, not {want!r}; stderr:\n{proc.stderr.read()}")


def kill(proc: subprocess.Popen[str]) -> str:
    """SIGKILL the child (no cleanup handlers run) and return what it printed since."""
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return out.strip()


@pytest.mark.parametrize("district", ["672", "673"], ids=["published-district", "new-district"])
def test_upload_killed_mid_write_leaves_published_version_intact(
        store: Store, backend: str, home: Path, tmp_path: Path, district: str) -> None:
    gdf = parcels()
    published = store.publish(add(store, gdf).id, by="chief")
    proc = spawn(tmp_path, home, "write", district, 200_000)
    expect_line(proc, "WRITING")
    deadline = time.monotonic() + 30
    while not hidden_rows(backend, home) and time.monotonic() < deadline:
        time.sleep(0.01)
    [(crashed_id, _)] = hidden_rows(backend, home)
    time.sleep(0.3)  # well into writing 200 000 polygons
    assert kill(proc) == "", "the child finished before it was killed: make the layer bigger"

    with make_store(backend, home) as again:
        assert again.published("672", "parcels") == published
        pd.testing.assert_frame_equal(again.read(published.id), store.read(published.id))
        assert keys(again.find(published.id, {"sheet": 1, "parcel": 1})) == {(1, 1)}
        assert [v.id for v in again.versions()] == [published.id]
        assert again.districts() == ["672"]
        assert hidden_rows_after_kill(backend, home) == []
        assert stored_tables(backend, home, "672") == {f"parcels_v{published.id}"}
        assert stored_tables(backend, home, "673") == set()
        # Ids are never reused, and the district takes new uploads.
        retry = add(again, district=district)
        assert retry.id > crashed_id
        assert len(again.read(retry.id)) == len(gdf)


def test_crash_after_layer_write_before_catalogue_flip(
        store: Store, backend: str, home: Path, tmp_path: Path) -> None:
    published = store.publish(add(store).id, by="chief")
    proc = spawn(tmp_path, home, "before-draft", "672", 5_000)
    expect_line(proc, "WRITING")
    expect_line(proc, "PAUSED")
    [(crashed_id, _)] = hidden_rows(backend, home)
    crashed_table = f"parcels_v{crashed_id}"
    if backend == "gpkg":
        assert crashed_table in stored_tables(backend, home, "672")  # the layer is complete
    else:  # complete too, but inside the writer's transaction: nobody else sees it
        assert crashed_table not in stored_tables(backend, home, "672")

    # While its writer lives, the unfinished version is invisible but left alone.
    with make_store(backend, home) as meanwhile:
        assert [v.id for v in meanwhile.versions()] == [published.id]
        assert hidden_rows(backend, home) == [(crashed_id, "672")]
        assert meanwhile.published("672", "parcels") == published

    assert kill(proc) == ""
    with make_store(backend, home) as again:
        assert [v.id for v in again.versions()] == [published.id]
        assert again.published("672", "parcels") == published
        assert len(again.read(published.id)) == len(parcels())
    assert hidden_rows_after_kill(backend, home) == []
    assert stored_tables(backend, home, "672") == {f"parcels_v{published.id}"}


def test_publish_killed_before_commit_changes_nothing(
        store: Store, backend: str, home: Path, tmp_path: Path) -> None:
    old = store.publish(add(store).id, by="chief")
    new = add(store)
    proc = spawn(tmp_path, home, "publish", "672", 0, arg=str(new.id))
    expect_line(proc, "PAUSED")  # both UPDATEs done, COMMIT not yet
    assert store.published("672", "parcels") == old  # readers never wait for the writer
    assert kill(proc) == ""
    with make_store(backend, home) as again:
        assert again.published("672", "parcels") == old
        assert again.version(new.id).status == "draft"
        assert again.publish(new.id, by="chief").status == "published"
        assert again.version(old.id).status == "superseded"


def test_two_processes_upload_to_one_district_at_once(
        store: Store, home: Path, tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    n = 30_000
    procs = {name: spawn(tmp_path, home, "together", "672", n, name, str(barrier / "2"))
             for name in ("A", "B")}
    ids, spans = {}, []
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        vid, started, ended = out.split()[-3:]
        ids[name] = int(vid)
        spans.append((float(started), float(ended)))
    assert max(s for s, _ in spans) < min(e for _, e in spans), "the uploads did not overlap"
    assert ids["A"] != ids["B"]
    expected = big_grid(n, "-")
    for name, vid in ids.items():
        v = store.version(vid)
        assert (v.district, v.status, v.feature_count) == ("672", "draft", n)
        got = store.read(vid)
        assert got["land_use"].unique().tolist() == [name]
        assert got["src_row"].tolist() == list(range(n))
        assert shapely.equals_exact(got.geometry.values, expected.geometry.values, 0).all()
        assert store.find(vid, {"src_row": 12_345})["land_use"].tolist() == [name]


# -- GeoPackage specifics ------------------------------------------------------------------


def test_gpkg_layout_and_indexes(home: Path) -> None:
    with GpkgStore(home, crs=CRS) as store:
        v = add(store, key_columns=("commune", "sheet", "parcel"))
        table = f"parcels_v{v.id}"
        gpkg = home / "districts" / "672.gpkg"
        with closing(sqlite3.connect(gpkg)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

            def plan(where: str) -> str:
                sql = f'EXPLAIN QUERY PLAN SELECT * FROM "{table}" WHERE {where}'
                return " ".join(r[-1] for r in conn.execute(sql, [1] * where.count("?")))

            assert f"USING INDEX {table}_key " in plan("commune = ? AND sheet = ? AND parcel = ?")
            # A parcel looked up without its commune still goes through an index.
            assert f"USING INDEX {table}_key" in plan("sheet = ? AND parcel = ?")
            assert f"USING INDEX {table}_key" in plan("parcel = ?")
            assert conn.execute(f'SELECT count(*) FROM "rtree_{table}_geom"').fetchone()[0] == 12
        with closing(sqlite3.connect(home / "catalogue.sqlite")) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT version FROM schema_version "
                                "WHERE component = 'store'").fetchone() == (2,)
            # The database itself refuses a second published version of a layer.
            other = add(store).id
            conn.execute("UPDATE versions SET status = 'published' WHERE id = ?", (v.id,))
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute("UPDATE versions SET status = 'published' WHERE id = ?", (other,))


def test_gpkg_refuses_a_catalogue_from_a_newer_gisportal(home: Path) -> None:
    GpkgStore(home, crs=CRS).close()
    with closing(sqlite3.connect(home / "catalogue.sqlite")) as conn, conn:
        conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'store'")
    with pytest.raises(StoreError, match="schema version 99"):
        GpkgStore(home, crs=CRS)


def test_gpkg_never_overwrites_a_table_it_does_not_know(home: Path) -> None:
    with GpkgStore(home, crs=CRS) as store:
        first = add(store)
    # The catalogue is lost but the district file kept: ids start again at 1.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / 'catalogue.sqlite'}{suffix}").unlink(missing_ok=True)
    with GpkgStore(home, crs=CRS) as store:
        with pytest.raises(StoreError) as err:
            add(store, big_grid(5, "CLN"), key_columns=())
        assert err.value.code == "STORE-TABLE-EXISTS"
        assert store.versions() == [] and hidden_rows("gpkg", home) == []
    with closing(sqlite3.connect(home / "districts" / "672.gpkg")) as conn:
        count = conn.execute(f'SELECT count(*) FROM "parcels_v{first.id}"').fetchone()[0]
    assert count == len(parcels())


def test_gpkg_recovery_removes_a_half_created_district_file(home: Path) -> None:
    GpkgStore(home, crs=CRS).close()
    # What a writer killed while GDAL was creating the district's file leaves behind.
    with closing(sqlite3.connect(home / "catalogue.sqlite")) as conn, conn:
        conn.execute("INSERT INTO versions (district, kind, status, source_name, source_sha256,"
                     " feature_count, has_errors, created_at, created_by, columns)"
                     " VALUES ('674', 'plan', 'writing', 'a.zip', '', 0, 0, '', '', '[]')")
    gpkg = home / "districts" / "674.gpkg"
    gpkg.write_bytes(b"SQLite format 3\x00" + b"\x07" * 100)
    with GpkgStore(home, crs=CRS) as store:
        assert not gpkg.exists() and hidden_rows("gpkg", home) == []
        assert add(store, district="674").feature_count == len(parcels())


def test_gpkg_upload_gives_up_when_the_district_stays_locked(home: Path) -> None:
    with GpkgStore(home, crs=CRS, lock_timeout=0.2) as store:
        with open(home / "districts" / "672.lock", "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            with pytest.raises(StoreError) as err:
                add(store)
        assert err.value.code == "STORE-BUSY"
        assert store.versions() == [] and hidden_rows("gpkg", home) == []
        assert add(store).status == "draft"  # released: uploads go through again


# -- PostgreSQL/PostGIS specifics ------------------------------------------------------------


@pytest.fixture
def pg_store(home: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A PostGIS store on a fresh, migrated database (``GISPORTAL_DATABASE`` set)."""
    use_database(request, monkeypatch)
    s = make_store("postgis", home)
    yield s
    s.close()


def explain(sql: str, params: tuple[object, ...] = ()) -> str:
    return " ".join(str(r[0]) for r in pg_query(f"EXPLAIN {sql}", params))


@pytest.mark.production
def test_pg_layout_and_indexes(pg_store: Store) -> None:
    import psycopg

    from gisportal.store.postgis import MIGRATIONS

    v = add(pg_store, key_columns=("commune", "sheet", "parcel"))
    table = f'layers."d672_parcels_v{v.id}"'
    assert pg_query("SELECT version FROM schema_version WHERE component = 'store'") == [
        (len(MIGRATIONS["store"]),)]
    # Geometry column with the store CRS's EPSG code as SRID, fids 1..n in stored order.
    assert pg_query("SELECT srid FROM geometry_columns WHERE f_table_schema = 'layers'") == [
        (5899,)]
    assert pg_query(f"SELECT min(fid), max(fid), count(*) FROM {table}") == [(1, 12, 12)]
    indexes = " ".join(r[0] for r in pg_query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'layers'"))
    assert "USING gist (geom)" in indexes and "(fid)" in indexes
    # Key look-ups by all key columns, or without the leading one, use a B-tree index;
    # a point look-up the GiST index (the planner is told to avoid sequential scans so
    # that a 12-row table answers as a 200 000-row one would).
    for where in ("commune = 'x' AND sheet = 1 AND parcel = 2", "sheet = 1 AND parcel = 2",
                  "parcel = 2"):
        with psycopg.connect(os.environ["GISPORTAL_DATABASE"], autocommit=True) as conn:
            conn.execute("SET enable_seqscan = off")
            plan = " ".join(r[0] for r in conn.execute(
                f"EXPLAIN SELECT * FROM {table} WHERE {where}"))
            gist = " ".join(r[0] for r in conn.execute(
                f"EXPLAIN SELECT fid FROM {table} WHERE ST_Intersects(geom, "
                f"ST_SetSRID(ST_MakePoint({X0 + 5}, {Y0 + 5}), 5899))"))
        assert "Index" in plan and "Seq Scan" not in plan, plan
        assert "Seq Scan" not in gist and "geom_idx" in gist, gist
    # The database itself refuses a second published version of a layer.
    other = add(pg_store).id
    with psycopg.connect(os.environ["GISPORTAL_DATABASE"], autocommit=True) as conn:
        conn.execute("UPDATE versions SET status = 'published' WHERE id = %s", (v.id,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("UPDATE versions SET status = 'published' WHERE id = %s", (other,))


@pytest.mark.production
def test_pg_open_refuses_an_unmigrated_database_and_migrate_creates_it(
        pg_dsn: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gisportal.store.postgis import MIGRATIONS

    steps = len(MIGRATIONS["store"])
    monkeypatch.setenv("GISPORTAL_DATABASE", pg_dsn)
    env = {**os.environ, "GISPORTAL_HOME": str(home)}
    # Opening a store never creates tables: one line naming the command that does.
    with pytest.raises(StoreError) as err:
        open_store(home, crs=CRS)
    assert "gisportal migrate" in err.value.one_line()
    assert err.value.code == "DATABASE-NOT-MIGRATED"
    assert pg_query("SELECT to_regclass('versions')") == [(None,)]
    run = [sys.executable, "-m", "gisportal", "migrate"]
    first = subprocess.run(run, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("database postgresql://") and ":***@" in lines[0]
    assert f"store: schema 0 → {steps}" in lines
    again = subprocess.run(run, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert f"store: schema {steps} (up to date)" in again.stdout.splitlines()
    with open_store(home, crs=CRS) as store:
        assert store.versions() == []
    # Without a database, there is nothing to migrate: a usage error, exit 2.
    embedded = {k: v for k, v in env.items() if k != "GISPORTAL_DATABASE"}
    none = subprocess.run(run, capture_output=True, text=True, env=embedded, cwd=REPO,
                          timeout=120)
    assert none.returncode == 2 and "GISPORTAL_DATABASE" in none.stderr


@pytest.mark.production
def test_pg_refuses_a_schema_newer_than_the_code(pg_store: Store, home: Path) -> None:
    from gisportal.store import postgres
    from gisportal.store.postgis import MIGRATIONS

    dsn = os.environ["GISPORTAL_DATABASE"]
    pg_query("UPDATE schema_version SET version = 99 WHERE component = 'store' RETURNING 1")
    for call in (lambda: postgres.check_schema(dsn, MIGRATIONS),
                 lambda: postgres.migrate(dsn, MIGRATIONS)):
        with pytest.raises(StoreError, match="schema version 99") as err:
            call()
        assert err.value.code == "STORE-SCHEMA-NEWER"


@pytest.mark.production
def test_pg_two_nodes_migrating_at_once_apply_each_step_once(pg_dsn: str, tmp_path: Path) -> None:
    """Steps that would fail if run twice (CREATE TABLE without IF NOT EXISTS), from
    several processes released at the same moment: the advisory lock serialises them."""
    script = tmp_path / "migrate.py"
    script.write_text(
        "import sys, time\n"
        "from gisportal.store import postgres\n"
        "steps = {'probe': (('CREATE TABLE probe (n integer)',\n"
        "                    'INSERT INTO probe VALUES (1)',\n"
        "                    'SELECT pg_sleep(0.3)'),\n"
        "                   ('ALTER TABLE probe ADD COLUMN m integer',))}\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "print(postgres.migrate(sys.argv[1], steps)['probe'])\n", encoding="utf-8")
    start = time.time() + 3
    procs = [subprocess.Popen([sys.executable, str(script), pg_dsn, str(start)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    assert sorted(outs) == ["(0, 2)", "(2, 2)", "(2, 2)"]
    with closing(__import__("psycopg").connect(pg_dsn)) as conn:
        assert conn.execute("SELECT count(*) FROM probe").fetchone() == (1,)
        assert conn.execute("SELECT version FROM schema_version "
                            "WHERE component = 'probe'").fetchone() == (2,)


@pytest.mark.production
def test_pg_store_works_in_a_forked_child_and_after_it(pg_store: Store) -> None:
    """gunicorn and the job workers fork after the store is open: the child opens its own
    connections, and the parent's (which the child inherited) keep working."""
    v = add(pg_store)
    assert len(pg_store.read(v.id)) == len(parcels())  # the parent's pool has a connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into pytest
        code = 1
        try:
            got = pg_store.find(v.id, {"sheet": 2, "parcel": 3})
            published = pg_store.publish(v.id, by="child")
            os.write(write, f"{len(got)} {published.status}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and answer == "1 published"
    assert pg_store.published("672", "parcels").published_by == "child"
    assert keys(pg_store.find(v.id, {"sheet": 1, "parcel": 1})) == {(1, 1)}


@pytest.mark.production
def test_pg_values_the_database_refuses_leave_nothing(pg_store: Store) -> None:
    kept = add(pg_store)
    gdf = parcels()
    gdf["note"] = pd.array(["a\x00b"] * len(gdf), dtype="str")  # PostgreSQL text has no NUL
    with pytest.raises(StoreError) as err:
        add(pg_store, gdf)
    assert err.value.code == "STORE-WRITE-FAILED"
    assert [v.id for v in pg_store.versions()] == [kept.id]
    assert stored_tables("postgis", Path("."), "672") == {f"parcels_v{kept.id}"}


def test_long_and_odd_column_names_round_trip(store: Store) -> None:
    """Column names are data from the uploaded file: PostgreSQL truncates identifiers
    at 63 bytes and folds case, so the table's own names must not be the only record."""
    gdf = parcels(2, 1)
    long = "Tên chủ sử dụng đất theo giấy chứng nhận quyền sử dụng đất số" * 2
    gdf[long] = ["Nguyễn Văn Ánh", "Trần Thị Lan"]
    gdf["Loại Đất"] = ["ONT", "CLN"]
    gdf['a"b'] = [1, 2]
    v = add(store, gdf, key_columns=("sheet", long))
    got = store.read(v.id)
    assert list(got.columns) == [*[c for c in gdf.columns if c != "geometry"], "geometry"]
    assert got[long].tolist() == ["Nguyễn Văn Ánh", "Trần Thị Lan"]
    assert store.find(v.id, {long: "Trần Thị Lan"})["Loại Đất"].tolist() == ["CLN"]
    assert store.records(v.id, where={'a"b': 2}, columns=[long])[0][long] == "Trần Thị Lan"


def test_dates_and_narrow_types_round_trip(store: Store) -> None:
    """Dates read from DBF files, timestamps, narrow ints and floats, categories: each
    backend gives them back alike (dates as ISO text, as GDAL's GeoPackage does)."""
    import datetime

    gdf = parcels(3, 1)
    gdf["signed"] = pd.to_datetime(["2024-01-02 00:00:00", None, "2023-05-06 07:08:09"])
    gdf["day"] = [datetime.date(2024, 1, 2), None, datetime.date(2020, 2, 29)]
    gdf["floor"] = np.array([1, 2, 3], dtype="uint8")
    gdf["ratio"] = np.array([1.5, 2.25, np.nan], dtype="float32")
    gdf["zone"] = pd.Categorical(["ONT", "CLN", "ONT"])
    v = add(store, gdf)
    got = store.read(v.id)
    assert {c: str(got[c].dtype) for c in ("signed", "floor", "ratio", "zone")} == {
        "signed": "datetime64[us]", "floor": "uint8", "ratio": "float32", "zone": "category"}
    assert got["signed"].tolist()[::2] == [pd.Timestamp("2024-01-02"),
                                          pd.Timestamp("2023-05-06 07:08:09")]
    assert got["signed"].isna().tolist() == [False, True, False]
    assert got["day"].tolist()[::2] == ["2024-01-02", "2020-02-29"] and pd.isna(got["day"][1])
    assert got["floor"].tolist() == [1, 2, 3] and got["zone"].tolist() == ["ONT", "CLN", "ONT"]
    assert got["ratio"].tolist()[:2] == [1.5, 2.25] and np.isnan(got["ratio"][2])
    assert store.find(v.id, {"day": "2020-02-29"})["floor"].tolist() == [3]
    assert store.find(v.id, {"floor": "2"})["zone"].tolist() == ["CLN"]


@pytest.mark.production
def test_pg_concurrent_publishes_of_one_layer_never_clash(pg_store: Store) -> None:
    """Publishes of one layer from several connections at once: each waits for the one
    before (an advisory lock per layer), so none trips over the one-published index and
    the layer ends with exactly one published version."""
    for _ in range(3):
        ids = [add(pg_store, parcels(2, 1)).id for _ in range(5)]
        barrier = threading.Barrier(len(ids))
        failures: list[BaseException] = []

        def publish(vid: int, barrier: threading.Barrier,
                    failures: list[BaseException]) -> None:
            try:
                barrier.wait()
                pg_store.publish(vid, by="race")
            except BaseException as exc:  # handed to the main thread
                failures.append(exc)

        threads = [threading.Thread(target=publish, args=(vid, barrier, failures))
                   for vid in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        published = [v for v in pg_store.versions() if v.status == "published"]
        assert len(published) == 1 and published[0].id in ids
        assert pg_store.published("672", "parcels") == published[0]


@pytest.mark.production
def test_pg_sessions_ended_by_the_server_are_replaced_not_handed_out(pg_store: Store) -> None:
    """A database restart (or an administrator) ends every session: the pooled
    connections are then dead, and the next calls get new ones instead of an error."""
    v = add(pg_store)
    threads = [threading.Thread(target=lambda: pg_store.read(v.id)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ended = pg_query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                     "AND application_name LIKE 'gisportal[%%'")
    assert ended and all(r == (True,) for r in ended)
    time.sleep(0.2)  # the goodbye reaches the sockets
    for _ in range(5):
        assert keys(pg_store.find(v.id, {"sheet": 1, "parcel": 1})) == {(1, 1)}
        assert pg_store.published("672", "parcels") is None


@pytest.mark.parametrize("zs", [(3.0, 6.0), (3.0, None)], ids=["3d", "2d-and-3d"])
def test_3d_geometries_are_kept(store: Store, zs: tuple[float | None, ...]) -> None:
    """Heights are dropped by the reader, but the store keeps what it is given."""
    second = (X0 + 4, Y0 + 5) if zs[1] is None else (X0 + 4, Y0 + 5, zs[1])
    geoms = [shapely.Point(X0 + 1, Y0 + 2, zs[0]), shapely.Point(*second)]
    gdf = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=geoms, crs=CRS)
    v = add(store, gdf, kind="plan", key_columns=())
    assert [g.wkt for g in store.read(v.id).geometry] == [g.wkt for g in geoms]
    assert store.records(v.id, point=(X0 + 1, Y0 + 2))[0]["geometry"].wkt == geoms[0].wkt


# -- planning projects' layers --------------------------------------------------------------


def test_project_layers_have_one_published_version_per_project(store: Store) -> None:
    """Two projects in one district each keep their own published lots; the district's
    own layers, its history and its published map never see them."""
    district_parcels = store.publish(add(store).id, by="chief")
    a1 = add(store, kind="zoning_lots", project="672-dankia-2000", key_columns=())
    a2 = add(store, kind="zoning_lots", project="672-dankia-2000", key_columns=())
    b1 = add(store, kind="zoning_lots", project="672-trung-tam-500", key_columns=())
    assert (a1.project, a1.kind, a1.district) == ("672-dankia-2000", "zoning_lots", "672")
    for v in (a1, a2, b1):
        store.publish(v.id, by="chief")
    assert store.version(a1.id).status == "superseded"
    assert store.version(b1.id).status == "published"
    assert store.published_projects() == {
        ("672-dankia-2000", "zoning_lots"): store.version(a2.id),
        ("672-trung-tam-500", "zoning_lots"): store.version(b1.id)}
    assert store.published_versions() == {("672", "parcels"): district_parcels}
    assert [v.id for v in store.versions("672")] == [district_parcels.id]
    assert [v.id for v in store.versions(project="672-dankia-2000")] == [a2.id, a1.id]
    assert [v.id for v in store.versions("672", "zoning_lots",
                                         project="672-trung-tam-500")] == [b1.id]
    snapshot = store.published_snapshot("672")
    store.confirm(snapshot)
    assert dict(snapshot) == {("672", "parcels"): district_parcels}
    assert set(snapshot.projects) == {("672-dankia-2000", "zoning_lots"),
                                      ("672-trung-tam-500", "zoning_lots")}
    # Rolling a project back touches that project only.
    store.publish(a1.id, by="chief")
    assert store.version(a2.id).status == "superseded"
    assert store.version(b1.id).status == "published"
    assert store.read(a1.id).shape == parcels().shape


def test_a_layer_kind_says_whether_it_needs_a_project(store: Store) -> None:
    with pytest.raises(UsageError):
        add(store, kind="zoning_lots", key_columns=())
    with pytest.raises(UsageError):
        add(store, kind="parcels", project="672-dankia-2000")
    for bad in ("", "Đà Lạt", "../x", "A-1", "x" * 80):
        with pytest.raises(NotFoundError):
            add(store, kind="red_lines", project=bad, key_columns=())
    with pytest.raises(NotFoundError):
        store.versions(kind="parcels", project="672-dankia-2000")
    assert store.versions() == [] and store.published_projects() == {}


def test_a_catalogue_from_before_projects_is_migrated(tmp_path: Path) -> None:
    """A data home written before projects existed opens, keeps its published layers
    and takes project layers (the store component's second migration step)."""
    home = tmp_path / "old"
    home.mkdir()
    with closing(sqlite3.connect(home / "catalogue.sqlite")) as conn:
        conn.execute("CREATE TABLE schema_version (component TEXT PRIMARY KEY, "
                     "version INTEGER NOT NULL)")
        for statement in gpkg_module._MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES ('store', 1)")
        conn.execute(
            "INSERT INTO versions (district, kind, status, source_name, source_sha256, "
            "feature_count, has_errors, created_at, created_by, published_at, published_by,"
            " columns) VALUES ('672', 'parcels', 'published', 'a.zip', 'ab', 0, 0, "
            "'2024-01-01T00:00:00Z', 'p', '2024-01-02T00:00:00Z', 'p', '[]')")
        conn.commit()
    with make_store("gpkg", home) as store:
        assert [(v.district, v.kind, v.project) for v in store.published_versions().values()
                ] == [("672", "parcels", None)]
        v = add(store, kind="red_lines", project="672-dankia-2000", key_columns=())
        assert store.publish(v.id, by="p").project == "672-dankia-2000"
        assert store.published("672", "parcels").source_name == "a.zip"
