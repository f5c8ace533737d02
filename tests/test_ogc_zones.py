"""OGC API collections of a district surveyed in the other VN-2000 zone.

The province stores every district on one grid (EPSG:5899, TM-3 107°45′); a district of
former Bình Thuận (here Phan Thiết, 593) is surveyed in TM-3 108°30′ (EPSG:9218). Its
collections offer that zone besides CRS84, EPSG:4326 and the storage CRS, give back the
surveyors' own coordinates in it (to the millimetre), and take a ``bbox`` in it; a
district of former Lâm Đồng offers no extra CRS.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web.app import create_app
from tests.conftest import parcel_grid

ZONE = "http://www.opengis.net/def/crs/EPSG/0/9218"
STORAGE = "http://www.opengis.net/def/crs/EPSG/0/5899"
#: Near Phan Thiết, in EPSG:9218 (easting, northing).
ORIGIN = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:9218", always_xy=True).transform(
    108.10, 10.93)


def phan_thiet_parcels() -> gpd.GeoDataFrame:
    """Six parcels surveyed in EPSG:9218, with commune codes of former Phan Thiết."""
    gdf = parcel_grid(2, 3, origin=ORIGIN).set_crs("EPSG:9218", allow_override=True)
    gdf["MaXa"] = "22939"
    return gdf


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ogc-zones")
    home = tmp / "home"
    with open_store(home, crs="EPSG:5899") as store:
        for code, gdf in (("593", phan_thiet_parcels()), ("678", parcel_grid(1, 2))):
            path = tmp / f"{code}.gpkg"
            gdf.to_file(path, driver="GPKG")
            assert ingest_file(store, path, "parcels", code, publish=True).published
    return create_app({"home": str(home)}).test_client()


def _json(client, url: str, status: int = 200) -> dict:
    resp = client.get(url)
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def test_a_district_of_the_other_zone_offers_its_survey_crs(client) -> None:
    coll = _json(client, "/ogc/collections/593-parcels?f=json")
    assert ZONE in coll["crs"] and STORAGE in coll["crs"]
    assert coll["storageCrs"] == STORAGE
    own = _json(client, "/ogc/collections/678-parcels?f=json")
    assert ZONE not in own["crs"]
    assert ZONE in _json(client, "/ogc/collections?f=json")["crs"]
    api = _json(client, "/ogc/api?f=json")
    assert ZONE in api["components"]["parameters"]["crs"]["schema"]["enum"]


def test_features_in_the_survey_crs_are_the_surveyors_coordinates(client) -> None:
    resp = client.get(f"/ogc/collections/593-parcels/items?f=json&crs={ZONE}&limit=100")
    assert resp.status_code == 200
    assert resp.headers["Content-Crs"] == f"<{ZONE}>"
    features = resp.get_json()["features"]
    source = phan_thiet_parcels()
    assert len(features) == len(source)
    for feature in features:
        got = shapely.geometry.shape(feature["geometry"])
        want = source.geometry.iloc[feature["id"] - 1]
        # Same rings up to orientation and start: every vertex within a millimetre.
        assert got.equals_exact(shapely.normalize(want), 0.001) or \
            shapely.normalize(got).equals_exact(shapely.normalize(want), 0.001)
    first = source.geometry.iloc[0].bounds
    assert 100_000 < first[0] < 900_000  # easting first, as EPSG:9218 defines


def test_a_bbox_in_the_survey_crs_selects_the_parcel_it_covers(client) -> None:
    source = phan_thiet_parcels()
    cx, cy = np.asarray(source.geometry.iloc[4].centroid.coords[0])
    bbox = f"{cx - 1:.3f},{cy - 1:.3f},{cx + 1:.3f},{cy + 1:.3f}"
    doc = _json(client, f"/ogc/collections/593-parcels/items?f=json&bbox={bbox}"
                        f"&bbox-crs={ZONE}")
    assert [f["id"] for f in doc["features"]] == [5]
    # The same numbers read on the store grid are 80 km away: nothing there.
    doc = _json(client, f"/ogc/collections/593-parcels/items?f=json&bbox={bbox}"
                        f"&bbox-crs={STORAGE}")
    assert doc["features"] == []


def test_one_feature_in_the_survey_crs_and_the_zone_refused_elsewhere(client) -> None:
    resp = client.get(f"/ogc/collections/593-parcels/items/1?f=json&crs={ZONE}")
    assert resp.status_code == 200 and resp.headers["Content-Crs"] == f"<{ZONE}>"
    got = shapely.geometry.shape(resp.get_json()["geometry"])
    assert shapely.normalize(got).equals_exact(
        shapely.normalize(phan_thiet_parcels().geometry.iloc[0]), 0.001)
    resp = client.get(f"/ogc/collections/678-parcels/items/1?f=json&crs={ZONE}")
    assert resp.status_code == 400
    assert "9218" not in resp.get_json()["description"].split("Use one of")[1]
