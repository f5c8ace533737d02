"""The store methods OGC API paging stands on: `feature_ids`, `records_by_id`, `columns`.

Each is checked against the plain answer (shapely on the frame `read` gives) and
against the `Store` base class defaults, on both backends: real GeoPackages, and a
fresh PostGIS database (marked ``production``).
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gisportal.base.errors import NotFoundError, UsageError
from gisportal.store import Store, open_store
from tests.conftest import DUC_TRONG_XY, parcel_grid

X0, Y0 = DUC_TRONG_XY
INJECTION = "24778' OR '1'='1"


@pytest.fixture
def store(store_on_each_backend):
    """This module's `store`: the data home's, on each backend (conftest)."""
    return store_on_each_backend


@pytest.fixture
def grid_version(store):
    """6 × 8 parcels of 20 m × 25 m (sheets 1–5, parcels 1–10), one Vietnamese column."""
    gdf = parcel_grid(6, 8)
    gdf["DiaChi"] = ["Thôn Phú Hội, xã Phú Hội"] * len(gdf)
    gdf = gdf.rename(columns={"MaXa": "commune", "SoTo": "sheet", "SoThua": "parcel",
                              "LoaiDat": "land_use"})
    version = store.add_version("678", "parcels", gdf, source_name="grid.gpkg",
                                source_sha256="0" * 64, created_by="test",
                                key_columns=["commune", "sheet", "parcel"])
    return version, gdf


def test_unfiltered_ids_are_every_feature_in_stored_order(store: Store, grid_version) -> None:
    version, gdf = grid_version
    ids = store.feature_ids(version.id)
    assert ids.dtype == np.int64
    assert ids.tolist() == list(range(1, len(gdf) + 1))
    assert Store.feature_ids(store, version.id).tolist() == ids.tolist()


def test_ids_follow_attribute_filters_like_find(store: Store, grid_version) -> None:
    version, gdf = grid_version
    ids = store.feature_ids(version.id, where={"sheet": 2})
    expected = (np.flatnonzero(gdf["sheet"].to_numpy() == 2) + 1).tolist()
    assert ids.tolist() == expected and len(expected) == 10
    assert store.feature_ids(version.id, where={"sheet": 2, "parcel": 3}).tolist() == [13]
    assert store.feature_ids(version.id, where={"land_use": "ONT+CLN"}).tolist() == \
        (np.flatnonzero(gdf["land_use"].to_numpy() == "ONT+CLN") + 1).tolist()
    # Values are parameters, never SQL.
    assert store.feature_ids(version.id, where={"commune": INJECTION}).tolist() == []
    for where in ({"sheet": 2}, {"land_use": "HNK"}, {"commune": INJECTION}):
        assert Store.feature_ids(store, version.id, where=where).tolist() == \
            store.feature_ids(version.id, where=where).tolist()


def test_ids_intersecting_a_box_are_exact(store: Store, grid_version) -> None:
    version, gdf = grid_version
    # Columns are 20 m wide, rows 25 m high: x 30–40.01 m reaches 1 cm into column 2,
    # y 30–55 m spans rows 1 and 2: 2 columns × 2 rows intersect it.
    box = (X0 + 30, Y0 + 30, X0 + 40.01, Y0 + 55)
    ids = store.feature_ids(version.id, intersects=box)
    expected = np.flatnonzero(shapely.intersects(gdf.geometry.values, shapely.box(*box))) + 1
    assert ids.tolist() == expected.tolist()
    assert len(ids) == 4
    # A box touching one edge only selects the parcels sharing that edge (closed box).
    edge = (X0 + 40, Y0 + 30, X0 + 40, Y0 + 30)
    assert store.feature_ids(version.id, intersects=edge).tolist() == \
        (np.flatnonzero(shapely.intersects(gdf.geometry.values,
                                           shapely.Point(X0 + 40, Y0 + 30))) + 1).tolist()
    assert Store.feature_ids(store, version.id, intersects=box).tolist() == ids.tolist()
    assert store.feature_ids(version.id, intersects=(0.0, 0.0, 1.0, 1.0)).tolist() == []


def test_ids_intersecting_a_shape_test_the_shape_not_its_box(store: Store,
                                                             grid_version) -> None:
    version, gdf = grid_version
    # A thin diagonal band: its box covers the whole grid, the band only a diagonal.
    band = shapely.buffer(shapely.LineString([(X0, Y0), (X0 + 160, Y0 + 150)]), 1.0)
    ids = store.feature_ids(version.id, intersects=band)
    expected = np.flatnonzero(shapely.intersects(gdf.geometry.values, band)) + 1
    assert ids.tolist() == expected.tolist()
    assert 0 < len(ids) < len(gdf) // 2
    # A shape containing whole parcels takes them without decoding (same answer).
    big = shapely.box(X0 - 1, Y0 - 1, X0 + 1000, Y0 + 1000).buffer(5)
    assert store.feature_ids(version.id, intersects=big).tolist() == \
        list(range(1, len(gdf) + 1))
    assert Store.feature_ids(store, version.id, intersects=band).tolist() == ids.tolist()


def test_ids_with_area_and_filter_combine(store: Store, grid_version) -> None:
    version, gdf = grid_version
    box = (X0, Y0, X0 + 1000, Y0 + 60)  # rows 0–2
    ids = store.feature_ids(version.id, intersects=box, where={"sheet": 1})
    inside = shapely.intersects(gdf.geometry.values, shapely.box(*box))
    expected = np.flatnonzero(inside & (gdf["sheet"].to_numpy() == 1)) + 1
    assert ids.tolist() == expected.tolist() and len(ids) == 10
    # A small area against a filter: looked up by fid (the other path), same rule.
    small = (X0 + 1, Y0 + 1, X0 + 2, Y0 + 2)
    assert store.feature_ids(version.id, intersects=small, where={"sheet": 1}).tolist() == [1]
    assert store.feature_ids(version.id, intersects=small, where={"sheet": 2}).tolist() == []


@pytest.mark.parametrize("kwargs", [
    {"where": {"owner": "x"}},
    {"intersects": (1.0, 2.0, 3.0)},
    {"intersects": (5.0, 0.0, 1.0, 1.0)},
    {"intersects": (float("nan"), 0.0, 1.0, 1.0)},
    {"intersects": shapely.Polygon()},
])
def test_bad_filters_are_usage_errors(store: Store, grid_version, kwargs) -> None:
    version, _ = grid_version
    with pytest.raises(UsageError):
        store.feature_ids(version.id, **kwargs)


def test_records_by_id_in_id_order_with_fid(store: Store, grid_version) -> None:
    version, gdf = grid_version
    recs = store.records_by_id(version.id, [7, 3, 3, 999, 0, -5],
                               columns=["sheet", "parcel", "DiaChi"])
    assert [r["fid"] for r in recs] == [3, 7]
    assert set(recs[0]) == {"sheet", "parcel", "DiaChi", "geometry", "fid"}
    assert (recs[0]["sheet"], recs[0]["parcel"]) == (int(gdf["sheet"][2]), int(gdf["parcel"][2]))
    assert recs[0]["DiaChi"] == "Thôn Phú Hội, xã Phú Hội"
    assert shapely.equals(recs[1]["geometry"], gdf.geometry.iloc[6])
    # A run of ids (a range scan) and scattered ids give the same records.
    run = store.records_by_id(version.id, np.arange(10, 20))
    assert [r["fid"] for r in run] == list(range(10, 20))
    assert run == Store.records_by_id(store, version.id, np.arange(10, 20))
    assert store.records_by_id(version.id, []) == []
    with pytest.raises(UsageError):
        store.records_by_id(version.id, [1], columns=["no_such_column"])


def test_columns_and_unknown_versions(store: Store, grid_version) -> None:
    version, gdf = grid_version
    names = [c for c in gdf.columns if c != "geometry"]
    assert store.columns(version.id) == names
    assert Store.columns(store, version.id) == names
    for call in (lambda: store.columns(10_000), lambda: store.feature_ids(10_000),
                 lambda: store.records_by_id(10_000, [1])):
        with pytest.raises(NotFoundError):
            call()


def test_ids_of_a_layer_with_gaps_are_listed(store: Store, grid_version, home) -> None:
    """A table whose fids are not 1..n (not written by GDAL) is listed, not assumed."""
    import sqlite3

    if type(store).__name__ != "GpkgStore":
        pytest.skip("GeoPackage files only: PostGIS version tables are numbered 1..n by "
                    "the store and never edited")

    from gisportal.store.gpkg import _decode_geometries

    version, gdf = grid_version
    path = home / "districts" / "678.gpkg"
    with sqlite3.connect(path) as conn:  # renumber in place: fid 5 becomes 1000
        # The R*Tree triggers GDAL wrote call SpatiaLite-style functions: provide them.
        conn.create_function("ST_IsEmpty", 1, lambda blob: 0)
        for i, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
            conn.create_function(name, 1, lambda blob, i=i: float(
                shapely.bounds(_decode_geometries([blob])[0])[i]))
        conn.execute(f"UPDATE parcels_v{version.id} SET fid = 1000 WHERE fid = 5")
    store.close()

    with open_store(home, crs="EPSG:5899") as fresh:
        ids = fresh.feature_ids(version.id)
        assert len(ids) == len(gdf) and ids[-1] == 1000 and 5 not in ids.tolist()
        assert [r["fid"] for r in fresh.records_by_id(version.id, [1000, 5])] == [1000]
