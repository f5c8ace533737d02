"""Values derived from a version are built once and follow the published pointer."""

from __future__ import annotations

import secrets

import geopandas as gpd
import pytest
import shapely

from gisportal.store import DataHome, open_store
from gisportal.store.derived import derived


@pytest.fixture
def store(store_on_each_backend):
    """This module's `store`: the data home's, on each backend (conftest)."""
    return store_on_each_backend


@pytest.fixture
def other_home(store, tmp_path, request):
    """Another data home; in production mode with a database of its own."""
    if type(store).__name__ != "PostgisStore":
        return tmp_path / "other"
    from gisportal.store import postgres
    from gisportal.store.postgis import MIGRATIONS

    server = request.getfixturevalue("pg_server")
    name = f"other_{secrets.token_hex(6)}"
    dsn = server.create_database(name)
    request.addfinalizer(lambda: server.drop_database(name))
    postgres.migrate(dsn, MIGRATIONS)
    return DataHome.at(tmp_path / "other", {**store.home.settings, "database": dsn})


def _add(store, n):
    gdf = gpd.GeoDataFrame({"code": [str(i) for i in range(n)]},
                           geometry=[shapely.box(i, 0, i + 1, 1) for i in range(n)],
                           crs="EPSG:5899")
    return store.publish(store.add_version("678", "boundary", gdf, source_name="b",
                                           source_sha256="0", created_by="t").id, by="t")


def test_built_once_per_version_and_replaced_by_a_new_one(store, other_home):
    builds = []

    def count(st, v):
        builds.append(v.id)
        return len(st.read(v.id))

    v1 = _add(store, 2)
    assert derived(store, v1, "n", count) == 2
    assert derived(store, v1, "n", count) == 2
    assert builds == [v1.id]
    v2 = _add(store, 3)
    assert derived(store, store.published("678", "boundary"), "n", count) == 3
    assert builds == [v1.id, v2.id]
    # Another store (another data home) with the same version ids does not share entries.
    with open_store(other_home, crs="EPSG:5899") as other:
        w1 = _add(other, 5)
        assert w1.id == v1.id
        assert derived(other, w1, "n", count) == 5
