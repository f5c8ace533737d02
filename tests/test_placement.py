"""Data outside the province gets one true answer: where it lies, and no advice that loops.

Files are built here as other provinces' offices would send them: a Hà Nội cadastre in
its own VN-2000 / TM-3 105° (with a .prj, without one), the same as GeoJSON in WGS 84,
Lâm Đồng data with a wrong .prj or swapped X/Y, a country outline from a download site.
"""

from __future__ import annotations

import json
from datetime import date

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer

from gisportal.base import crs as vncrs
from gisportal.base import placement, seeds
from gisportal.base.errors import CRSError
from gisportal.cli.main import cli
from gisportal.services.ingest import check_file
from tests.conftest import parcel_grid, write_shapefile_zip

HA_NOI = (105.85, 21.03)  # Hoàn Kiếm
HN_TM3 = vncrs.tm3_crs(105.0)  # Hà Nội's cadastral meridian


def hanoi_parcels() -> gpd.GeoDataFrame:
    origin = Transformer.from_crs(4326, HN_TM3, always_xy=True).transform(*HA_NOI)
    return parcel_grid(3, 3, origin=origin).set_crs(HN_TM3, allow_override=True)


def refused(path, **kw) -> CRSError:
    with pytest.raises(CRSError) as e:
        check_file(path, "parcels", **kw)
    return e.value


def suggested_crs(err: CRSError) -> str | None:
    fix = err.fix
    if "--crs " not in fix:
        return None
    return fix.split("--crs ", 1)[1].split()[0].rstrip(".,;)")


# ----------------------------------------------------------------------------- seeds


def test_province_table_has_the_63_and_the_34():
    old = seeds.vn_provinces()
    new = seeds.vn_provinces(date(2025, 7, 1))
    assert len(old) == 63 and len(new) == 34
    assert sorted(c for p in new for c in p.predecessors) == sorted(p.code for p in old)
    for p in old + new:
        lon, lat = p.centre_lonlat
        b = p.bbox_lonlat
        assert b[0] < lon < b[2] and b[1] < lat < b[3], p.name
        assert 102 < b[0] < b[2] < 110 and 8 < b[1] < b[3] < 24, p.name
    assert seeds.vn_province("68").full_name == "Tỉnh Lâm Đồng"
    # The served province is today's Lâm Đồng: the 2025 province's mainland box, grown
    # to take in the island of Phú Quý (108.93° E, 10.52° N) that the table leaves out.
    today = seeds.vn_province("68", date(2025, 7, 1)).bbox_lonlat
    served = seeds.province_bbox_lonlat()
    assert served[0] <= today[0] and served[1] <= today[1] <= served[1] + 0.15
    assert today[2] <= served[2] <= today[2] + 0.15 and served[3] >= today[3]
    assert served[0] < 108.93 < served[2] and served[1] < 10.52 < served[3]
    assert {p.name for p in old} >= {m.province.removeprefix("TP. ") for m in seeds.meridians()}


def test_where_known_places_lie():
    def where(lon, lat):
        return placement.where_is(placement.Box(lon, lat, lon, lat))

    assert where(*HA_NOI).province.name == "Hà Nội"
    assert where(106.70, 10.78).province.name == "Hồ Chí Minh"
    assert where(108.22, 16.07).province.name == "Đà Nẵng"
    assert where(107.69, 12.00).province.name == "Đắk Nông"  # Gia Nghĩa
    assert where(107.69, 12.00).successor.name == "Lâm Đồng"
    assert where(103.97, 10.22).province.name == "Kiên Giang"  # Phú Quốc
    hn = where(*HA_NOI)
    assert 900 < hn.served_km < 1050 and hn.in_vietnam
    nowhere = where(0.0, 0.0)
    assert not nowhere.in_vietnam and nowhere.province_km > 10_000


# ----------------------------------------------------------------------------- whole layer


def test_a_hanoi_cadastre_with_its_prj_is_hanois_not_a_wrong_crs(tmp_path):
    path = tmp_path / "thua_dat_hoan_kiem.gpkg"
    hanoi_parcels().to_file(path, driver="GPKG")
    err = refused(path, district="678")
    assert err.code == "CRS-OUTSIDE-PROVINCE" and err.exit_code == 2
    assert "Hà Nội" in err.what and "Transverse Mercator 105°" in err.what
    assert "appears to be of Hà Nội" in err.fix and "cổng này chỉ phục vụ tỉnh Lâm Đồng" in err.fix
    assert suggested_crs(err) is None


def test_a_hanoi_geojson_in_wgs84(tmp_path):
    path = tmp_path / "hanoi.geojson"
    hanoi_parcels().to_crs(4326).to_file(path, driver="GeoJSON")
    err = refused(path)
    assert err.code == "CRS-OUTSIDE-PROVINCE" and "Hà Nội" in err.what
    assert suggested_crs(err) is None


def test_a_hanoi_shapefile_without_prj_and_the_crs_the_old_advice_gave(tmp_path):
    path = write_shapefile_zip(hanoi_parcels(), tmp_path / "hn.zip", prj=False)
    err = refused(path, district="678")
    assert err.code == "CRS-OUTSIDE-PROVINCE"
    assert "no CRS (.prj)" in err.what and "TM-3 105.0°" in err.what and "Hà Nội" in err.what
    assert suggested_crs(err) is None
    # The old advice was "pass --crs EPSG:5899", which failed the same way. Passed anyway,
    # the answer is still where the data belongs, not another --crs.
    err = refused(path, district="678", crs="EPSG:5899")
    assert err.code == "CRS-OUTSIDE-PROVINCE" and suggested_crs(err) is None
    assert "read as VN-2000 / TM-3 105.0°" in err.fix and "appears to be of Hà Nội" in err.fix


def test_a_wrong_prj_gets_the_crs_that_places_the_data(tmp_path):
    path = tmp_path / "sai_prj.gpkg"
    parcel_grid(2, 2).set_crs(32648, allow_override=True).to_file(path, driver="GPKG")
    err = refused(path, district="678")
    assert suggested_crs(err) == "EPSG:5899"
    checked = check_file(path, "parcels", district="678", crs=suggested_crs(err))
    assert not any(f.rule == "CRS-OUTSIDE-PROVINCE" for f in checked.report.findings)


def test_a_neighbouring_meridian_is_suggested_when_it_places_the_data(tmp_path):
    # Cát Tiên surveyed in TM-3 108°30′ (the meridian of Đắk Nông and Bình Thuận) but
    # labelled EPSG:5899: read at 107°45′ it lands 80 km west, outside the province.
    t = Transformer.from_crs(4326, 9218, always_xy=True)
    layer = parcel_grid(2, 2, origin=t.transform(107.36, 11.66)).set_crs(5899,
                                                                          allow_override=True)
    path = tmp_path / "cat_tien.gpkg"
    layer.to_file(path, driver="GPKG")
    err = refused(path, district="683")
    assert suggested_crs(err) == "EPSG:9218"
    assert check_file(path, "parcels", district="683", crs="EPSG:9218").layer is not None


def test_swapped_axes_are_named_and_no_crs_is_offered(tmp_path):
    layer = parcel_grid(2, 2)
    layer = layer.set_geometry(shapely.transform(layer.geometry.values, lambda c: c[:, ::-1]))
    path = tmp_path / "xy.gpkg"
    layer.set_crs(5899, allow_override=True).to_file(path, driver="GPKG")
    err = refused(path)
    assert "X and Y appear swapped" in err.fix and "X và Y bị đảo" in err.fix
    assert suggested_crs(err) is None


def test_no_suggestion_ever_repeats_the_error(tmp_path):
    cases = {
        "utm48": parcel_grid(2, 2).set_crs(32648, allow_override=True),
        "utm49": parcel_grid(2, 2).set_crs(32649, allow_override=True),
        "hanoi": hanoi_parcels(),
        "lonlat_as_tm3": parcel_grid(2, 2).to_crs(4326).set_crs(5899, allow_override=True),
    }
    for name, layer in cases.items():
        path = tmp_path / f"{name}.gpkg"
        layer.to_file(path, driver="GPKG")
        err = refused(path)
        crs = suggested_crs(err)
        if crs is not None:
            check_file(path, "parcels", crs=crs)  # does not raise
        assert err.code == "CRS-OUTSIDE-PROVINCE", name


def test_validate_exits_2_with_one_line_naming_the_province(home, tmp_path):
    path = tmp_path / "hanoi.gpkg"
    hanoi_parcels().to_file(path, driver="GPKG")
    r = CliRunner().invoke(cli, ["--home", str(home), "validate", str(path), "--kind",
                                 "parcels", "--district", "678"], catch_exceptions=False)
    assert r.exit_code == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("gisportal: error:") and "Hà Nội" in line and "--crs" not in line


# ----------------------------------------------------------------------------- features


def country_outline() -> shapely.Polygon:
    """A rough outline of Vietnam: the union of the provinces' extents."""
    return shapely.union_all([shapely.box(*p.bbox_lonlat) for p in seeds.vn_provinces()])


def test_a_country_outline_covers_the_province_it_is_not_far_away(tmp_path):
    path = tmp_path / "gadm41_VNM_0.geojson"
    gpd.GeoDataFrame({"GID_0": ["VNM"], "COUNTRY": ["Vietnam"]}, geometry=[country_outline()],
                     crs=4326).to_file(path, driver="GeoJSON")
    report = check_file(path, "boundary", district="672").report
    (f,) = [f for f in report.findings if f.rule == "CRS-OUTSIDE-PROVINCE"]
    assert f.row is None and f.level == "error"
    assert f.params["covers"] == 63 and "Lâm Đồng" in f.params["provinces"]
    assert f.params["distance_km"] is None and "km" not in f.message("en")
    assert "covers 63 provinces" in f.message("en")
    assert "Upload only district 672's units" in f.message("en")
    assert "phủ 63 tỉnh" in f.message("vi")
    report = check_file(path, "parcels", district="672").report
    (f,) = [f for f in report.findings if f.rule == "CRS-OUTSIDE-PROVINCE"]
    assert "Upload only district 672's data" in f.message("en")


def test_one_feature_far_away_is_told_where_it_is(tmp_path):
    layer = parcel_grid(2, 2)
    x, y = vncrs.from_lonlat(*HA_NOI)
    layer.loc[3, "geometry"] = shapely.box(x, y, x + 20, y + 25)
    path = tmp_path / "mot_thua_lac.gpkg"
    layer.to_file(path, driver="GPKG")
    report = check_file(path, "parcels", district="678").report
    (f,) = [f for f in report.findings if f.rule == "CRS-OUTSIDE-PROVINCE"]
    assert f.row == 3 and f.params["province"] == "Hà Nội"
    assert 900 < f.params["distance_km"] < 1050
    assert "lies in Hà Nội" in f.message("en") and "nằm ở thành phố Hà Nội" in f.message("vi")
    lon, lat = f.location["coordinates"]
    assert lon == pytest.approx(HA_NOI[0], abs=0.01) and lat == pytest.approx(HA_NOI[1], abs=0.01)


def test_a_feature_reaching_over_the_border_is_judged_by_its_extent(tmp_path):
    layer = parcel_grid(2, 2)
    x0, y0 = vncrs.from_lonlat(108.50, 11.75)
    x1, y1 = vncrs.from_lonlat(109.25, 11.80)  # into Ninh Thuận
    layer.loc[3, "geometry"] = shapely.box(x0, y0, x1, y1)
    path = tmp_path / "qua_ranh.gpkg"
    layer.to_file(path, driver="GPKG")
    report = check_file(path, "parcels", district="678").report
    (f,) = [f for f in report.findings if f.rule == "CRS-OUTSIDE-PROVINCE"]
    assert f.row == 3 and f.params["province"] == "Ninh Thuận"
    assert 20 < f.params["distance_km"] < 35  # the box reaches 109.25; the province 109.00


def test_a_layer_inside_the_province_has_no_placement_finding(tmp_path):
    path = tmp_path / "thua.gpkg"
    parcel_grid(3, 3).to_file(path, driver="GPKG")
    report = check_file(path, "parcels", district="678").report
    assert not any(f.rule == "CRS-OUTSIDE-PROVINCE" for f in report.findings)
    assert json.dumps(report.summary())  # the report still serialises
