"""The demo of the merged province (issue 13): 30 plan districts, Phú Quý an island, the
real former communes, each district in its own survey zone, through the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod, Transformer

from gisportal.base import seeds
from gisportal.cli.main import DEMO_PARCELS, cli
from gisportal.demo import generate_district
from gisportal.demo.coast import sea_polygon
from gisportal.demo.outline import province_layout
from gisportal.services.demo import build_demo

GEOD = Geod(ellps="WGS84")
PHU_QUY, PHAN_THIET, GIA_NGHIA = "602", "593", "660"


def test_the_thirty_plan_districts():
    layout = province_layout()
    assert [d.code for d in layout.districts] == sorted(d.code for d in seeds.districts())
    assert len(layout.districts) == 30
    assert [d.code for d in layout.districts if d.island] == [PHU_QUY]


def test_phu_quy_is_an_island_far_offshore():
    layout = province_layout()
    island = layout.district(PHU_QUY)
    others = [d.boundary for d in layout.districts if d.code != PHU_QUY]
    mainland = shapely.union_all(others)
    # its own landmass: it touches no district and lies over 50 km from the mainland
    assert not any(shapely.intersects(island.boundary, others))
    assert island.boundary.distance(mainland) > 50_000
    assert island.boundary.area / 1e6 == pytest.approx(16.4, rel=0.05)
    assert len(island.communes) == 3


def test_mainland_stays_out_of_the_sea():
    layout = province_layout()
    sea = sea_polygon(layout.crs)
    for d in layout.districts:
        wet = shapely.intersection(d.boundary, sea).area / d.boundary.area
        assert wet > 0.99 if d.island else wet < 0.01, d.code


def test_communes_carry_real_codes():
    d = generate_district(GIA_NGHIA, 50)
    real = seeds.communes_of(GIA_NGHIA)
    assert set(d.communes["code"]) == set(real)
    assert set(d.parcels["commune"]) <= set(real)
    assert set(d.plan["commune"]) <= set(real)


def test_a_binh_thuan_district_is_delivered_in_its_zone():
    d = generate_district(PHAN_THIET, 200)
    assert seeds.survey_zone(PHAN_THIET).epsg == 9218
    for frame in (d.communes, d.parcels, d.plan):
        assert frame.crs.to_epsg() == 9218
    assert d.crs == "EPSG:9218"
    # coordinates of TM-3 108°30′: Phan Thiết (108.10° E) lies west of its meridian
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:9218", always_xy=True).transform(
        *seeds.district(PHAN_THIET).anchor_lonlat)
    assert d.boundary.contains(shapely.Point(x, y)) and x < 500_000
    # the declared area is the one measured in that zone
    area = d.parcels.geometry.area.values
    assert (np.abs(d.parcels["area_m2"].values - area) <= 0.01 * area).all()
    lam_dong = generate_district("678", 10)
    assert lam_dong.parcels.crs.to_epsg() == 5899


@pytest.fixture(scope="module")
def merged_store(tmp_path_factory):
    from gisportal.store import open_store

    home = tmp_path_factory.mktemp("merged") / "home"
    with open_store(home, crs="EPSG:5899") as store:
        results = build_demo(store, parcels_per_district=150, districts=[PHAN_THIET, PHU_QUY])
        yield store, {r.district: r.results for r in results}


def test_zone_9218_ingested_and_published_where_the_seat_is(merged_store):
    store, results = merged_store
    for code in (PHAN_THIET, PHU_QUY):
        for kind, res in results[code].items():
            assert res.published, (code, kind)
            assert res.report.count("error") == 0, (code, kind)
            rules = {f.rule for f in res.report.findings}
            assert "BOUNDARY-COMMUNE-UNKNOWN" not in rules and "BOUNDARY-OUTLINE-MISFIT" \
                not in rules, (code, kind, rules)
        read = results[code]["parcels"].version.meta["read"]["crs"]
        assert read["crs"].startswith("EPSG:9218") and read["origin"] == "declared"
        # stored on the province grid, the parcels lie in the district, round its seat
        parcels = store.read(store.published(code, "parcels").id)
        assert parcels.crs.to_epsg() == 5899
        boundary = store.read(store.published(code, "boundary").id).to_crs(4326)
        outline = boundary.loc[boundary["code"] == code].geometry.iloc[0]
        lon, lat = seeds.district(code).anchor_lonlat
        assert outline.contains(shapely.Point(lon, lat))
        spots = parcels.geometry.representative_point().to_crs(4326)
        assert shapely.within(spots.values, outline).all()
        reach = 2.5 * np.sqrt(seeds.district(code).area_km2 / np.pi) * 1000
        far = GEOD.inv(np.full(len(spots), lon), np.full(len(spots), lat),
                       spots.x.values, spots.y.values)[2]
        assert far.max() < reach, code
        assert set(parcels["commune"]) <= set(seeds.communes_of(code))


@pytest.mark.slow
def test_the_default_demo_builds_the_whole_province(tmp_path):
    home = tmp_path / "home"
    r = CliRunner().invoke(cli, ["--home", str(home), "demo"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    from gisportal.store import open_store

    with open_store(home, crs="EPSG:5899") as store:
        for d in seeds.districts():
            for kind in ("boundary", "parcels", "plan"):
                v = store.published(d.code, kind)
                assert v is not None and not v.has_errors, (d.code, kind)
            assert store.published(d.code, "parcels").feature_count == DEMO_PARCELS
