"""The demo's annual land-use plan generator (gisportal/demo/annual.py): pure, plausible,
and a file the portal accepts as an annual plan without errors."""

from __future__ import annotations

import unicodedata

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gisportal.demo.annual import ANNUAL_COLUMNS, DEMO_MARK, generate_annual_plan
from gisportal.services.ingest import check_file
from tests.conftest import DUC_TRONG_XY

X0, Y0 = DUC_TRONG_XY


@pytest.fixture
def zones() -> gpd.GeoDataFrame:
    """A small plan: a road corridor across a town (ODT), villages (ONT), a commercial
    zone and perennial crops, in two communes; it tiles a 3 km × 2 km district."""
    x, y = X0 - 1500, Y0 - 1000
    road = shapely.box(x, y + 985, x + 3000, y + 1015)
    cells = [("ODT", "24778", shapely.box(x, y, x + 1000, y + 2000)),
             ("ONT", "24781", shapely.box(x + 1000, y, x + 2000, y + 2000)),
             ("TMD", "24781", shapely.box(x + 2000, y, x + 2300, y + 2000)),
             ("CLN", "24781", shapely.box(x + 2300, y, x + 3000, y + 2000))]
    rows = [(code, commune, geom.difference(road)) for code, commune, geom in cells]
    rows.append(("DGT", "24778", road))
    return gpd.GeoDataFrame({"zone_id": [str(i) for i in range(len(rows))],
                             "land_use": [r[0] for r in rows],
                             "commune": [r[1] for r in rows]},
                            geometry=[r[2] for r in rows], crs="EPSG:5899")


def test_a_few_dozen_projects_inside_their_zones(zones):
    names = {"24778": "Thị trấn Liên Nghĩa", "24781": "Xã Hiệp An"}
    plan = generate_annual_plan(zones, 2026, np.random.default_rng(7), commune_names=names)
    assert list(plan.columns) == ANNUAL_COLUMNS and plan.crs == zones.crs
    assert 20 <= len(plan) <= 40
    assert set(plan["year"]) == {2026}
    assert plan["code"].is_unique and plan["name"].is_unique
    assert plan.geometry.is_valid.all() and set(plan.geom_type) == {"Polygon"}
    assert plan["decision"].nunique() == 1 and DEMO_MARK in plan["decision"].iloc[0]
    for row in plan.itertuples():
        assert unicodedata.is_normalized("NFC", row.name)
        zone = zones[zones.geometry.covers(row.geometry.buffer(-0.01))]
        assert len(zone) == 1, row.name  # inside one zone of the plan
        zone_code = zone["land_use"].iloc[0]
        # The zone's own use, or a facility inside a residential zone.
        assert row.land_use == zone_code or (zone_code in ("ONT", "ODT") and row.land_use in (
            "DGD", "DYT", "DVH", "DTT", "DCH")), row
        assert row.commune == zone["commune"].iloc[0]
        assert row.area_m2 == pytest.approx(row.geometry.area, abs=60)
    assert "CLN" not in set(plan["land_use"])  # crops get no project
    assert any(n.startswith("Đường giao thông") or "đường" in n for n in plan["name"])
    assert any("xã Hiệp An" in n for n in plan["name"])


def test_the_same_stream_gives_the_same_plan(zones):
    a = generate_annual_plan(zones, 2027, np.random.default_rng(3))
    b = generate_annual_plan(zones, 2027, np.random.default_rng(3))
    assert a.equals(b)
    assert not a.equals(generate_annual_plan(zones, 2027, np.random.default_rng(4)))


def test_zones_without_project_uses_give_an_empty_layer(zones):
    forest = zones.assign(land_use="RSX")
    plan = generate_annual_plan(forest, 2026, np.random.default_rng(1))
    assert len(plan) == 0 and list(plan.columns) == ANNUAL_COLUMNS


def test_the_generated_plan_validates_as_an_annual_plan(zones, tmp_path, home):
    plan = generate_annual_plan(zones, 2026, np.random.default_rng(11))
    path = tmp_path / "ke_hoach_2026.gpkg"
    plan.to_file(path, driver="GPKG")
    checked = check_file(path, "annual_plan", district="678")
    assert checked.report.summary()["errors"] == 0, [
        f.message("en") for f in checked.report.findings if f.level == "error"]
    # item_id: the row number, generated; object_type (MaDoiTuong): the demo writes none.
    assert checked.layer.mapping.missing == ["item_id", "object_type"]
