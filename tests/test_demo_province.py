"""The demo province goes through the real pipeline and is published, looked up, served."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gisportal.cli.main import cli
from gisportal.services import lookup as lk
from gisportal.services.demo import build_demo, demo_summary


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo") / "home"
    r = CliRunner().invoke(cli, ["--home", str(home), "demo", "--parcels-per-district", "400",
                                 "--district", "676", "--district", "678"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return home


@pytest.fixture
def demo_store(demo_home):
    from gisportal.store import open_store

    with open_store(demo_home, crs="EPSG:5899") as s:
        yield s


def test_every_layer_published_without_errors(demo_store):
    for code in ("676", "678"):
        for kind in ("parcels", "plan", "boundary", "annual_plan"):
            v = demo_store.published(code, kind)
            assert v is not None and not v.has_errors, (code, kind)
        assert 20 <= demo_store.published(code, "annual_plan").feature_count <= 60
        assert demo_store.published(code, "parcels").feature_count == 400
    # The demo went through reading: field names of the national database were mapped.
    v = demo_store.published("678", "parcels")
    assert v.meta["read"]["fields"]["mapped"]["sheet"] == "SoHieuToBanDo"
    assert "TenChu" in v.meta["read"]["fields"]["personal_source"]


def test_approved_district_carries_its_decision(demo_store):
    plan = demo_store.published("676", "plan")
    assert plan.meta["decision"]["number"].startswith("DEMO-")
    assert demo_store.published("678", "plan").meta["decision"] is None


def test_demo_parcels_can_be_looked_up(demo_store):
    parcels = demo_store.read(demo_store.published("678", "parcels").id)
    row = parcels.iloc[len(parcels) // 2]
    ans = lk.lookup_key(demo_store, "678", int(row["sheet"]), int(row["parcel"]),
                        row["commune"])
    assert ans["parcel"]["commune"] == row["commune"]
    assert ans["planned"], "the plan covers the district, so every parcel has a planned use"
    assert sum(p["share"] for p in ans["planned"]) == pytest.approx(1.0, abs=1e-3)
    lat, lon = ans["parcel"]["point"]["lat"], ans["parcel"]["point"]["lon"]
    by_point = lk.lookup_lonlat(demo_store, lat, lon)
    assert by_point["parcel"]["parcel"] == ans["parcel"]["parcel"]


def test_demo_is_deterministic(tmp_path):
    from gisportal.store import open_store

    tables = []
    for i in range(2):
        with open_store(tmp_path / f"h{i}", crs="EPSG:5899") as s:
            res = build_demo(s, parcels_per_district=120, districts=["672"])
            summary = demo_summary(res)
            assert summary["published"].all()
            v = s.published("672", "parcels")
            tables.append(s.read(v.id).drop(columns="geometry").to_json())
            tables.append(json.dumps(sorted(s.read(v.id).geometry.to_wkt())))
    assert tables[0] == tables[2] and tables[1] == tables[3]


def test_tile_worker_publishes_what_the_inline_build_does(tmp_path):
    """With the tile worker (the default from three districts on) the drafts are
    published once a separate process built their tiles: every layer is published when
    build_demo returns, as the same versions, with the same tiles byte for byte."""
    from gisportal.outputs.tiles.build import tiles_path
    from gisportal.store import open_store

    codes = ["676", "593"]  # a former Lâm Đồng district (EPSG:5899), a Bình Thuận one (9218)
    seen = []
    for worker in (False, True):
        home = tmp_path / f"worker-{worker}"
        with open_store(home, crs="EPSG:5899") as s:
            res = build_demo(s, parcels_per_district=60, districts=codes, tile_worker=worker)
            assert demo_summary(res)["published"].all()
            layers = {}
            for code in codes:
                for kind in ("boundary", "parcels", "plan", "annual_plan"):
                    v = s.published(code, kind)
                    layers[code, kind] = (v.id, v.feature_count, v.meta.get("consultation")
                                          is not None,
                                          tiles_path(home, code, kind, v.id).read_bytes())
            seen.append(layers)
    assert seen[0] == seen[1]
