"""Two VN-2000 zones in one province: former Đắk Nông and Bình Thuận survey in TM-3
108°30′ (EPSG:9218), former Lâm Đồng in 107°45′ (EPSG:5899, the store grid).

What a land office sees: a Bình Thuận Shapefile without ``.prj`` read in its own zone,
stored to the centimetre (nanometres, in fact), its legal areas those of its zone, a
click in Phan Thiết naming today's ward and the former ward and city, an export in
EPSG:9218, and surveyor X/Y look-ups that pick (or are told) the zone.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.cli.main import cli
from gisportal.services import lookup
from gisportal.services.ingest import check_file
from gisportal.store.home import DataHome
from tests.conftest import write_shapefile_zip

TO_9218 = Transformer.from_crs(4326, 9218, always_xy=True)
TO_5899 = Transformer.from_crs(4326, 5899, always_xy=True)
PHAN_THIET = (108.100, 10.930)  # Phan Thiết (593), lon/lat
DUC_LINH = (107.565, 11.190)  # Võ Xu, Đức Linh (600): 0.94° west of the 108°30′ meridian
DUC_LINH_COMMUNE = "23191"  # Thị trấn Võ Xu
MUI_NE = "22915"  # Phường Mũi Né of Phan Thiết until 2025-06-30 → today's 22918


def office_grid(lonlat: tuple[float, float], epsg: int, commune: str, rows: int = 3,
                cols: int = 4) -> gpd.GeoDataFrame:
    """Parcels as a district office exports them, in its own zone: lower-case and
    DBF-truncated names, an empty column, the surveyed area in that zone."""
    t = TO_9218 if epsg == 9218 else TO_5899
    x0, y0 = t.transform(*lonlat)
    xs, ys = np.meshgrid(np.arange(cols) * 23.7 + x0, np.arange(rows) * 31.3 + y0)
    geoms = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 23.7, ys.ravel() + 31.3)
    n = len(geoms)
    return gpd.GeoDataFrame({
        "maxa": [commune] * n, "sohieuto": [7] * n, "sothua": list(range(1, n + 1)),
        "dientich": np.round(shapely.area(geoms), 1), "loaidat": ["ONT"] * n,
        "ghichu": [""] * n,
    }, geometry=geoms, crs=f"EPSG:{epsg}")


def ingest(home: Path, path: Path, district: str) -> None:
    result = CliRunner().invoke(cli, ["--home", str(home), "ingest", str(path), "--kind",
                                      "parcels", "--district", district, "--publish"])
    assert result.exit_code == 0, result.output


def no_prj_zip(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    return write_shapefile_zip(gdf, path, prj=False)


def test_each_district_has_its_survey_zone():
    assert seeds.survey_zone("593").epsg == 9218 and seeds.survey_zone("660").epsg == 9218
    assert seeds.survey_zone("672").epsg == 5899
    assert seeds.survey_zone("683").epsg == 5899  # Cát Tiên: former Lâm Đồng, merged 2025
    assert {d.code for d in seeds.districts()} >= set(seeds.former_districts())
    assert len(seeds.districts()) == 30  # the 28 of 2025-06-30 with 681 and 683 apart


def test_a_binh_thuan_shapefile_without_prj_is_read_in_its_zone(home, tmp_path):
    source = office_grid(PHAN_THIET, 9218, MUI_NE)
    path = no_prj_zip(source, tmp_path / "phan_thiet.zip")
    with zipfile.ZipFile(path) as z:
        assert not any(n.lower().endswith(".prj") for n in z.namelist())
    checked = check_file(path, "parcels", district="593")
    crs = checked.report.read["crs"]
    assert crs["origin"] == "inferred" and crs["crs"].startswith("EPSG:9218")
    assert "former Tỉnh Bình Thuận" in crs["reason"] and "108°30′" in crs["reason"]
    assert "Tỉnh Bình Thuận cũ" in crs["reason_vi"] and "the meridian" not in crs["reason_vi"]
    ingest(home, path, "593")
    store = DataHome.at(home).store
    stored = store.read(store.published("593", "parcels").id)
    back = stored.to_crs(9218).geometry.values
    moved = [shapely.hausdorff_distance(a, b) for a, b in zip(back, source.geometry.values,
                                                               strict=True)]
    assert max(moved) < 0.01  # < 1 cm: the bar (in fact nanometres)
    assert max(moved) < 1e-6


def test_a_lam_dong_file_without_prj_stays_in_107_45(tmp_path):
    checked = check_file(no_prj_zip(office_grid((108.318, 11.696), 5899, "24838"),
                                    tmp_path / "duc_trong.zip"), "parcels", district="678")
    assert checked.report.read["crs"]["crs"].startswith("EPSG:5899")


def test_legal_areas_are_the_zones(home, tmp_path):
    """Đức Linh lies 0.94° from its meridian and 0.19° from the store's: measured on the
    store grid its parcels come out 0.025 % too small, beyond the survey's own
    rounding; the check and the look-up measure in 108°30′."""
    source = office_grid(DUC_LINH, 9218, DUC_LINH_COMMUNE)
    in_zone = shapely.area(source.geometry.values)
    grid = shapely.area(source.to_crs(5899).geometry.values)
    assert np.all(np.abs(grid / in_zone - 1) > 2e-4)  # the trap is real
    legal = vncrs.legal_areas(source.to_crs(5899).geometry.values, vncrs.zone_crs("600"))
    assert np.allclose(legal, in_zone, rtol=1e-9)
    path = no_prj_zip(source, tmp_path / "duc_linh.zip")
    checked = check_file(path, "parcels", district="600")
    assert not any(f.rule == "AREA-MISMATCH" for f in checked.report.findings)
    ingest(home, path, "600")
    lon, lat = DUC_LINH
    answer = lookup.lookup_lonlat(DataHome.at(home).store, lat + 0.0001, lon + 0.0001)
    parcel = answer["parcel"]
    assert parcel is not None and answer["parcel"]["district"] == "600"
    i = parcel["parcel"] - 1
    assert parcel["area_computed_m2"] == pytest.approx(in_zone[i], abs=0.05)
    assert abs(parcel["area_computed_m2"] - grid[i]) > 0.1
    assert sum(p["area_m2"] for p in answer["planned"]) <= parcel["area_computed_m2"] + 0.1


def test_a_click_in_phan_thiet_names_todays_ward_and_the_former_ward_and_city(home, tmp_path):
    ingest(home, no_prj_zip(office_grid(PHAN_THIET, 9218, MUI_NE), tmp_path / "pt.zip"), "593")
    lon, lat = PHAN_THIET
    answer = lookup.lookup_lonlat(DataHome.at(home).store, lat + 0.0001, lon + 0.0001)
    assert answer["parcel"]["district"] == "593"
    units = answer["units"]
    assert units["current"] == {"code": "22918", "name": "Phường Mũi Né", "level": "ward"}
    former = {(u["code"], u["name"]) for u in units["former"]}
    assert (MUI_NE, "Phường Mũi Né") in former and ("593", "Thành phố Phan Thiết") in former


def test_surveyor_xy_picks_the_zone_that_puts_the_point_in_its_district(home, tmp_path):
    source = office_grid(PHAN_THIET, 9218, MUI_NE)
    ingest(home, no_prj_zip(source, tmp_path / "pt.zip"), "593")
    store = DataHome.at(home).store
    east, north = shapely.get_coordinates(source.geometry.values[5].centroid)[0]
    answer = lookup.lookup_xy(store, north, east)  # a certificate's X = northing
    assert answer["parcel"]["district"] == "593" and answer["parcel"]["parcel"] == 6
    zone = answer["zone"]
    assert zone["crs"] == "EPSG:9218" and zone["chosen"] == "only"
    assert zone["alternatives"] == ["EPSG:5899"] and "108°30′" in zone["note"]
    read_in_5899 = lookup.lookup_xy(store, north, east, zone="5899")
    assert read_in_5899["parcel"] is None and read_in_5899["zone"]["chosen"] == "given"
    by_district = lookup.lookup_xy(store, north, east, "593")
    assert by_district["parcel"]["parcel"] == 6 and by_district["zone"]["chosen"] == "district"
    assert by_district["zone"]["alternatives"] == ["EPSG:5899"]  # never the zone read


def test_surveyor_xy_valid_in_both_zones_says_so(home, tmp_path):
    """The same X/Y pair is a parcel of Đạ Huoai read in 107°45′ and one of Bắc Bình read
    in 108°30′ (80 km east): the store's zone is read, and the answer names the other."""
    da_huoai = office_grid((107.62, 11.43), 5899, "25099")
    ingest(home, write_shapefile_zip(da_huoai, tmp_path / "dh.zip"), "681")
    bac_binh = da_huoai.set_crs(9218, allow_override=True).assign(maxa="22990")
    ingest(home, write_shapefile_zip(bac_binh, tmp_path / "bb.zip"), "596")
    store = DataHome.at(home).store
    east, north = shapely.get_coordinates(da_huoai.geometry.values[0].centroid)[0]
    answer = lookup.lookup_xy(store, north, east)
    assert answer["parcel"]["district"] == "681"
    assert answer["zone"]["chosen"] == "both" and answer["zone"]["alternatives"] == ["EPSG:9218"]
    assert "EPSG:9218" in answer["zone"]["note_en"] and "cả hai múi" in answer["zone"]["note"]
    other = lookup.lookup_xy(store, north, east, zone="108°30'")
    assert other["parcel"]["district"] == "596"


def test_a_zone_outside_the_province_is_refused_with_the_choices(home):
    from gisportal.base.errors import UsageError

    with pytest.raises(UsageError) as err:
        lookup.lookup_xy(DataHome.at(home).store, 1_210_000, 560_000, zone="105.5")
    assert "5899" in err.value.fix and "9218" in err.value.fix


def test_the_web_and_cli_take_the_zone(home, tmp_path):
    from gisportal.web.app import create_app

    source = office_grid(PHAN_THIET, 9218, MUI_NE)
    ingest(home, no_prj_zip(source, tmp_path / "pt.zip"), "593")
    east, north = shapely.get_coordinates(source.geometry.values[0].centroid)[0]
    client = create_app({"home": str(home)}).test_client()
    got = client.get(f"/api/lookup?x={north:.3f}&y={east:.3f}&zone=9218")
    assert got.status_code == 200 and got.json["parcel"]["district"] == "593"
    bad = client.get(f"/api/lookup?x={north:.3f}&y={east:.3f}&zone=abc")
    assert bad.status_code == 400 and "9218" in json.dumps(bad.json, ensure_ascii=False)
    out = CliRunner().invoke(cli, ["--home", str(home), "lookup", "--x", f"{north:.3f}",
                                   "--y", f"{east:.3f}", "--zone", "9218"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["zone"]["crs"] == "EPSG:9218"


def test_a_binh_thuan_export_is_in_its_zone(home, tmp_path):
    source = office_grid(PHAN_THIET, 9218, MUI_NE)
    ingest(home, no_prj_zip(source, tmp_path / "pt.zip"), "593")
    out = tmp_path / "593.zip"
    result = CliRunner().invoke(cli, ["--home", str(home), "export", "--district", "593",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read("manifest.json"))
        z.extractall(tmp_path / "pkg")
    assert manifest["crs"].startswith("EPSG:9218")
    gpkg = tmp_path / "pkg" / "593.gpkg"
    layer = pyogrio.list_layers(gpkg)[0][0]
    exported = gpd.read_file(gpkg, layer=layer)
    assert exported.crs.to_epsg() == 9218
    got = sorted(shapely.get_coordinates(exported.geometry.values).round(3).tolist())
    want = sorted(shapely.get_coordinates(source.geometry.values).round(3).tolist())
    assert got == want  # the office's own coordinates, to the millimetre
