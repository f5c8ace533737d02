"""Parcel look-up by key, lat/lon and VN-2000 X/Y, with planned-use shares."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gisportal import lookup as lk
from gisportal.crs import to_lonlat
from gisportal.errors import NotFoundError, UsageError
from gisportal.ingest import ingest_file
from tests.conftest import DUC_TRONG_XY

X0, Y0 = DUC_TRONG_XY


@pytest.fixture
def published(store, tmp_path, make_shapefile_zip):
    """Parcels 4×5 of 20 m × 25 m; plan: west 50 m ODT, east 50 m CLN (split mid-parcel)."""
    p = ingest_file(store, make_shapefile_zip(), "parcels", "678", publish=True)
    plan = gpd.GeoDataFrame({"MaLoaiDat": ["ODT", "CLN"], "MaVung": ["Z1", "Z2"]},
                            geometry=[shapely.box(X0 - 500, Y0 - 500, X0 + 50, Y0 + 600),
                                      shapely.box(X0 + 50, Y0 - 500, X0 + 600, Y0 + 600)],
                            crs="EPSG:5899")
    path = tmp_path / "plan.gpkg"
    plan.to_file(path, driver="GPKG")
    q = ingest_file(store, path, "plan", "678", publish=True,
                    meta={"decision": {"number": "123/QĐ-UBND", "date": "2023-06-30",
                                       "authority": "UBND tỉnh Lâm Đồng"}})
    assert p.published and q.published
    return p.version, q.version


def test_lookup_by_key_gives_planned_shares(store, published):
    parcels, plan = published
    # Parcel at column 2 (x 40–60 m) straddles the zone edge at 50 m: half ODT, half CLN.
    ans = lk.lookup_key(store, "678", 1, 3)
    assert ans["parcel"]["sheet"] == 1 and ans["parcel"]["parcel"] == 3
    assert ans["parcel"]["commune"] == "24778"
    assert ans["parcel"]["current_use"] == "ONT+CLN"
    assert ans["parcel"]["area_m2"] == 500.0
    shares = {p["code"]: p for p in ans["planned"]}
    assert set(shares) == {"ODT", "CLN"}
    assert shares["ODT"]["share"] == pytest.approx(0.5, abs=1e-3)
    assert shares["ODT"]["area_m2"] == pytest.approx(250.0, abs=0.1)
    assert ans["plan"]["decision"] == "123/QĐ-UBND"
    assert ans["plan"]["version"] == plan.id


def test_public_answers_hide_personal_fields(store, published):
    public = lk.lookup_key(store, "678", 1, 1)
    assert "TenChu" not in public["parcel"]["attributes"]
    assert "SoTo" in public["parcel"]["attributes"]
    operator = lk.lookup_key(store, "678", 1, 1, public=False)
    assert operator["parcel"]["attributes"]["TenChu"] == "Nguyễn Văn Hùng"


def test_lookup_by_lonlat_and_by_surveyor_xy_agree(store, published):
    ex, ny = X0 + 10, Y0 + 10  # inside parcel sheet 1, parcel 1
    lon, lat = to_lonlat(ex, ny)
    by_ll = lk.lookup_lonlat(store, lat, lon, "678")
    by_xy = lk.lookup_xy(store, ny, ex, "678")  # X = northing, Y = easting
    assert by_ll["parcel"]["parcel"] == by_xy["parcel"]["parcel"] == 1
    assert by_ll["planned"][0]["code"] == "ODT"
    # Without a district, the point still finds its parcel.
    assert lk.lookup_lonlat(store, lat, lon)["parcel"]["district"] == "678"


def test_point_outside_parcels_says_so_with_the_zone(store, published):
    lon, lat = to_lonlat(X0 + 300, Y0 + 300)  # inside plan zone CLN, no parcel
    ans = lk.lookup_lonlat(store, lat, lon, "678")
    assert ans["parcel"] is None
    assert [z["code"] for z in ans["planned"]] == ["CLN"]
    assert "no parcel" in ans["message"]


@pytest.mark.parametrize("lat,lon", [("abc", "108"), ("95", "108"), ("nan", "108"),
                                     ("11.7", "inf"), ("", "")])
def test_bad_coordinates_are_usage_errors(store, published, lat, lon):
    with pytest.raises(UsageError):
        lk.lookup_lonlat(store, lat, lon)


def test_unknown_parcel_and_unpublished_district(store, published):
    with pytest.raises(NotFoundError) as e:
        lk.lookup_key(store, "678", 99, 99)
    assert "sheet 99" in e.value.what
    with pytest.raises(NotFoundError):
        lk.lookup_key(store, "672", 1, 1)
    with pytest.raises(UsageError):
        lk.lookup_key(store, "999", 1, 1)
    with pytest.raises(UsageError):
        lk.lookup_key(store, "678", "1a", 1)


def test_far_away_point_has_no_district(store, published):
    with pytest.raises(NotFoundError):
        lk.lookup_lonlat(store, 21.0, 105.8)  # Hà Nội
