"""HTTP through Flask's test client: pages, /api/lookup, errors never 500."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gisportal.base.crs import to_lonlat
from gisportal.services.ingest import ingest_file
from gisportal.web.app import create_app
from tests.conftest import DUC_TRONG_XY


@pytest.fixture
def client(home, store, make_shapefile_zip):
    ingest_file(store, make_shapefile_zip(), "parcels", "678", publish=True)
    app = create_app({"home": str(home)})
    app.config["TESTING"] = True
    return app.test_client()


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["status"] == "ok"


def test_index_lists_districts_in_vietnamese(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "Huyện Đức Trọng" in html and "Đã phê duyệt" in html
    assert "http://" not in html and "https://" not in html  # nothing from outside


def test_district_page_and_unknown_district(client):
    assert client.get("/districts/678").status_code == 200
    r = client.get("/districts/999")
    assert r.status_code == 404
    assert "Không tìm thấy" in r.get_data(as_text=True)


def test_api_lookup_by_key_and_point(client):
    r = client.get("/api/lookup?district=678&sheet=1&parcel=2")
    assert r.status_code == 200
    body = r.json
    assert set(body) >= {"parcel", "planned", "plan"}
    assert body["parcel"]["parcel"] == 2
    assert "TenChu" not in body["parcel"]["attributes"]
    lon, lat = to_lonlat(DUC_TRONG_XY[0] + 5, DUC_TRONG_XY[1] + 5)
    r = client.get(f"/api/lookup?lat={lat}&lon={lon}")
    assert r.status_code == 200 and r.json["parcel"]["parcel"] == 1


@pytest.mark.parametrize("query,status", [
    ("", 400), ("lat=abc&lon=1", 400), ("lat=1e999&lon=1", 400), ("lat=11&lon=", 400),
    ("district=678&sheet=1", 400), ("district=678&sheet=x&parcel=1", 400),
    ("district=999&sheet=1&parcel=1", 400), ("district=678&sheet=77&parcel=1", 404),
    ("lat=91&lon=105.8", 400), ("x=1300000&y=abc", 400), ("x=-5&y=500000", 400),
    ("district=678&sheet=1&parcel=1&commune=%27%3B%20DROP%20TABLE%20x%3B--", 404),
])
def test_api_lookup_bad_input_is_4xx_json(client, query, status):
    r = client.get(f"/api/lookup?{query}")
    assert r.status_code == status, r.get_data(as_text=True)
    err = r.json["error"]
    assert err["message"] and err["code"]


@pytest.mark.parametrize("query,reason,district", [
    # Inside Đức Trọng, 300 m from the block of parcels: a road, a field, a river.
    ("lat={lat_near}&lon={lon_near}", "no_parcel", "678"),
    ("x={x_near}&y={y_near}&district=678", "no_parcel", "678"),
    # Hà Nội: outside every district of the portal.
    ("lat=21.0&lon=105.8", "outside_districts", None),
])
def test_api_lookup_point_with_no_parcel_is_an_answer_not_an_error(client, store, query,
                                                                   reason, district):
    x0, y0 = DUC_TRONG_XY
    outline = gpd.GeoDataFrame({"level": ["district"], "code": ["678"]}, crs="EPSG:5899",
                               geometry=[shapely.box(x0 - 1000, y0 - 1000, x0 + 1000,
                                                     y0 + 1000)])
    store.publish(store.add_version("678", "boundary", outline, source_name="ranh_gioi.gpkg",
                                    source_sha256="4" * 64, created_by="test").id, by="test")
    east, north = x0 + 300, y0 + 300
    lon, lat = to_lonlat(east, north)
    r = client.get("/api/lookup?" + query.format(lat_near=lat, lon_near=lon, x_near=north,
                                                 y_near=east))
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.json
    assert body["parcel"] is None and body["reason"] == reason
    assert body["district"] == district and body["planned"] == []  # no plan published
    assert body["message"] and body["message_en"]
    assert "error" not in body
