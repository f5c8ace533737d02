"""OGC API – Features under /ogc through the Flask test client: every parameter, every error.

The district is a real upload: a GeoPackage of 120 parcels (12 × 10 blocks of
20 m × 25 m in Đức Trọng) with the field names of the national cadastral database,
Vietnamese text in decomposed form, an owner name and an ID number (personal), and a
note holding HTML; plus a two-zone plan. Both go through ``ingest_file`` and are
published, exactly as a planner's files would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gisportal.base.crs import to_lonlat
from gisportal.outputs import privacy
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web.app import create_app
from tests.conftest import DUC_TRONG_XY, parcel_grid

X0, Y0 = DUC_TRONG_XY
ROWS, COLS = 10, 12  # 120 parcels: more than one default page (100)
N = ROWS * COLS
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG5899 = "http://www.opengis.net/def/crs/EPSG/0/5899"
ADDRESS = "Thôn Phú Hội, xã Phú Hội"
NOTE = '<script>alert("x")</script> & <b>đậm</b>'
ITEMS = "/ogc/collections/678-parcels/items"
#: The public canonical fields, then the two uploaded columns the planner marked public
#: (gisportal.outputs.privacy); the columns read into canonical fields are not repeated.
PUBLIC_PROPERTIES = ["commune", "sheet", "parcel", "area_m2", "land_use", "address",
                     "object_type", "src:GhiChu", "src:SoLo"]
#: Uploaded columns no canonical field takes, marked public by the planner.
MARKED_PUBLIC = ["SoLo", "GhiChu"]


def parcels_frame() -> gpd.GeoDataFrame:
    """The uploaded parcels, in upload order (feature id = row + 1)."""
    gdf = parcel_grid(ROWS, COLS)
    n = len(gdf)
    gdf["DiaChiThua"] = [unicodedata.normalize("NFD", ADDRESS)] * n
    gdf["GhiChu"] = [NOTE] + [f"Ghi chú {i}" for i in range(1, n)]
    gdf["SoCCCD"] = [f"068{i:09d}" for i in range(n)]  # an ID number: personal
    gdf["SoLo"] = [float(1 + i % 7) for i in range(n)]  # a lot number, stored as a number
    return gdf


def publish_district(home: Path, tmp: Path) -> None:
    """Publish the parcels and a two-zone plan (west ODT, east CLN) of district 678."""
    with open_store(home, crs="EPSG:5899") as store:
        path = tmp / "thua_dat.gpkg"
        parcels_frame().to_file(path, driver="GPKG")
        result = ingest_file(store, path, "parcels", "678", publish=True)
        assert result.published
        privacy.mark_public(store, result.version.id, MARKED_PUBLIC, actor="lan.nguyen")
        plan = gpd.GeoDataFrame(
            {"MaLoaiDat": ["ODT", "CLN"], "MaVung": ["Z1", "Z2"]},
            geometry=[shapely.box(X0 - 500, Y0 - 500, X0 + 50, Y0 + 600),
                      shapely.box(X0 + 50, Y0 - 500, X0 + 600, Y0 + 600)], crs="EPSG:5899")
        plan.to_file(tmp / "plan.gpkg", driver="GPKG")
        assert ingest_file(store, tmp / "plan.gpkg", "plan", "678", publish=True,
                           consultation=True).published


@pytest.fixture(scope="module")
def ogc_home(tmp_path_factory, module_backend) -> Path:
    """District 678 published once for the module: on the embedded backends, and once
    more (``production``) on PostgreSQL/PostGIS + S3 (`tests.conftest.module_backend`)."""
    tmp = tmp_path_factory.mktemp("ogc")
    home = tmp / "home"
    publish_district(home, tmp)
    return home


@pytest.fixture(scope="module")
def client(ogc_home):
    return create_app({"home": str(ogc_home)}).test_client()


def get_json(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    return json.loads(response.get_data(as_text=True))


def ids_of(doc: dict) -> list[int]:
    return [f["id"] for f in doc["features"]]


def link(doc: dict, rel: str) -> str | None:
    hrefs = [x["href"] for x in doc["links"] if x["rel"] == rel]
    assert len(hrefs) <= 1
    return hrefs[0] if hrefs else None


def query_of(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


def expect_error(client, url: str, status: int, *words: str) -> str:
    """The OGC exception document: exactly code and description, naming the problem."""
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    doc = response.get_json()
    assert set(doc) == {"code", "description"}
    assert doc["code"] == {400: "InvalidParameterValue", 404: "NotFound"}[status]
    for word in words:
        assert word in doc["description"], doc["description"]
    return doc["description"]


# -- capabilities ---------------------------------------------------------------------------


def test_landing_page_links_the_api_conformance_and_collections(client) -> None:
    doc = get_json(client, "/ogc")
    rels = {x["rel"]: x for x in doc["links"]}
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    # JSON links carry no f= (the type says it, Accept chooses it); HTML ones say f=html.
    assert rels["service-desc"]["href"] == "http://localhost/ogc/api"
    assert rels["service-doc"]["type"] == "text/html"
    assert rels["service-doc"]["href"] == "http://localhost/ogc/api?f=html"
    assert rels["conformance"]["href"] == "http://localhost/ogc/conformance"
    assert rels["data"]["href"] == "http://localhost/ogc/collections"
    assert rels["self"]["href"] == "http://localhost/ogc"
    assert rels["alternate"]["href"] == "http://localhost/ogc?f=html"
    assert "Lâm Đồng" in doc["title"]
    assert client.get("/ogc/").status_code == 200


def test_conformance_declares_core_geojson_html_oas30_and_crs(client) -> None:
    doc = get_json(client, "/ogc/conformance")
    assert doc["conformsTo"] == [
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    ]


def test_collections_one_per_published_layer(client) -> None:
    doc = get_json(client, "/ogc/collections")
    assert [c["id"] for c in doc["collections"]] == ["678-parcels", "678-plan"]
    parcels, plan = doc["collections"]
    assert parcels["title"] == ("Thửa đất địa chính – Huyện Đức Trọng / Cadastral parcels – "
                                "Đức Trọng District")
    assert parcels["itemType"] == "feature"
    assert parcels["crs"] == [CRS84, EPSG4326, EPSG5899]
    assert parcels["storageCrs"] == EPSG5899
    assert doc["crs"] == [CRS84, EPSG4326, EPSG5899]
    assert "temporal" not in parcels["extent"]
    assert plan["extent"]["temporal"]["interval"] == [["2021-01-01T00:00:00Z",
                                                       "2030-12-31T23:59:59Z"]]
    rels = {(x["rel"], x["type"]): x["href"] for x in parcels["links"]}
    assert rels[("items", "application/geo+json")] == \
        "http://localhost/ogc/collections/678-parcels/items"  # GDAL appends /{featureId}
    assert rels[("items", "text/html")].endswith("/items?f=html")


def test_collection_extent_contains_every_parcel_in_crs84(client) -> None:
    doc = get_json(client, "/ogc/collections/678-parcels")
    (west, south, east, north), = doc["extent"]["spatial"]["bbox"]
    assert doc["extent"]["spatial"]["crs"] == CRS84
    coords = shapely.get_coordinates(parcels_frame().geometry.values)
    lon, lat = to_lonlat(coords[:, 0], coords[:, 1])
    assert west <= lon.min() and lon.max() <= east and south <= lat.min() and lat.max() <= north
    assert east - lon.max() < 2e-6 and lon.min() - west < 2e-6  # tight: rounded outwards only


@pytest.mark.parametrize("cid", ["999-parcels", "678-roads", "678-boundary", "678",
                                 "678-parcels-x", "..%2F..%2Fetc", "678-PARCELS"])
def test_unknown_collections_are_404(client, cid) -> None:
    # (An encoded "/" makes it another path: 404 all the same, from the catch-all.)
    words = ("/ogc/collections",) if "%2F" in cid else ("no collection", "/ogc/collections")
    expect_error(client, f"/ogc/collections/{cid}", 404, *words)
    expect_error(client, f"/ogc/collections/{cid}/items", 404, *words)
    expect_error(client, f"/ogc/collections/{cid}/items/1", 404, *words)


def test_unknown_paths_under_ogc_are_ogc_404s(client) -> None:
    expect_error(client, "/ogc/nothing/here", 404, "nothing at /ogc/nothing/here")


# -- items: paging --------------------------------------------------------------------------


def test_first_page_has_default_limit_exact_count_and_next(client) -> None:
    response = client.get(ITEMS)
    assert response.mimetype == "application/geo+json"
    assert response.headers["Content-Crs"] == f"<{CRS84}>"
    doc = json.loads(response.get_data(as_text=True))
    assert doc["type"] == "FeatureCollection"
    assert doc["numberMatched"] == N and doc["numberReturned"] == 100
    assert ids_of(doc) == list(range(1, 101))
    assert link(doc, "next") == f"http://localhost{ITEMS}?offset=100"
    assert link(doc, "prev") is None
    assert link(doc, "self") == f"http://localhost{ITEMS}"
    assert link(doc, "alternate") == f"http://localhost{ITEMS}?f=html"
    assert link(doc, "collection") == "http://localhost/ogc/collections/678-parcels"
    assert doc["timeStamp"].endswith("Z")


def test_following_next_and_prev_links_walks_every_feature_once(client) -> None:
    seen: list[int] = []
    href = f"http://localhost{ITEMS}?limit=7&sheet=3&land_use=ONT"  # links keep filters
    pages = 0
    expected = [i + 1 for i in range(N) if 1 + i // 10 == 3 and
                ["ONT", "CLN", "ONT+CLN", "HNK", "DGT"][i % 5] == "ONT"]
    while href:
        doc = get_json(client, href.removeprefix("http://localhost"))
        assert doc["numberMatched"] == len(expected)
        seen += ids_of(doc)
        pages += 1
        href = link(doc, "next")
    assert seen == expected and pages == 1  # 2 match: one page
    everything: list[int] = []
    href = f"{ITEMS}?limit=25"
    while href:
        doc = get_json(client, href.removeprefix("http://localhost"))
        everything += ids_of(doc)
        href = link(doc, "next")
    assert everything == list(range(1, N + 1))
    last = get_json(client, f"{ITEMS}?limit=25&offset=100")
    assert query_of(link(last, "prev")) == {"limit": ["25"], "offset": ["75"]}
    second = get_json(client, f"{ITEMS}?limit=25&offset=10&f=json")  # f= typed by a person
    assert query_of(link(second, "prev")) == {"limit": ["25"]}  # offset 0, format by Accept
    assert query_of(link(second, "alternate")) == {"limit": ["25"], "offset": ["10"],
                                                   "f": ["html"]}


def test_limits_and_offsets_at_the_edges(client) -> None:
    assert ids_of(get_json(client, f"{ITEMS}?limit=1")) == [1]
    assert len(get_json(client, f"{ITEMS}?limit=10000")["features"]) == N
    # Above the maximum is served as the maximum, not refused (OGC 17-069r4, Permission 6).
    # However long the number: 5 000 digits are more than Python converts to an int.
    for limit in ("10001", "99999999999999999999999", "9" * 101, "9" * 5000):
        above = get_json(client, f"{ITEMS}?limit={limit}")
        assert len(above["features"]) == N
        assert query_of(link(above, "self"))["limit"] == ["10000"]
    beyond = get_json(client, f"{ITEMS}?offset=5000")
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == N
    assert link(beyond, "next") is None and link(beyond, "prev") is not None
    assert ids_of(get_json(client, f"{ITEMS}?offset=119")) == [120]


@pytest.mark.parametrize("query,words", [
    ("limit=0", ["limit='0'", "between 1 and 10000"]),
    ("limit=-5", ["limit='-5'"]),
    ("limit=abc", ["limit='abc'"]),
    ("limit=1e3", ["limit='1e3'"]),
    ("limit=-" + "9" * 5000, ["limit='-999"]),
    ("limit=000", ["limit='000'"]),
    ("limit=", ["limit=''"]),
    ("offset=-1", ["offset='-1'"]),
    ("offset=two", ["offset='two'"]),
    ("limit=5&limit=6", ["limit is given 2 times"]),
])
def test_bad_limits_and_offsets_are_400(client, query, words) -> None:
    expect_error(client, f"{ITEMS}?{query}", 400, *words)


# -- items: bbox and CRS --------------------------------------------------------------------


def centre(col: int, row: int) -> tuple[float, float]:
    """Centre of the grid parcel at (col, row), store CRS."""
    return X0 + col * 20 + 10, Y0 + row * 25 + 12.5


def lonlat_box(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, ...]:
    (lon0, lon1), (lat0, lat1) = to_lonlat(np.array([a[0], b[0]]), np.array([a[1], b[1]]))
    return (float(min(lon0, lon1)), float(min(lat0, lat1)), float(max(lon0, lon1)),
            float(max(lat0, lat1)))


def expected_in(box_lonlat: tuple[float, ...]) -> list[int]:
    """Feature ids whose geometry, reprojected, intersects a lon/lat box (exact test)."""
    geoms = parcels_frame().to_crs("EPSG:4326").geometry.values
    return (np.flatnonzero(shapely.intersects(geoms, shapely.box(*box_lonlat))) + 1).tolist()


def test_bbox_in_crs84_selects_exactly_the_intersecting_parcels(client) -> None:
    box = lonlat_box(centre(3, 2), centre(6, 5))  # edges through parcel interiors
    expected = expected_in(box)
    assert len(expected) == 16  # 4 columns × 4 rows
    doc = get_json(client, f"{ITEMS}?bbox={','.join(map(repr, box))}")
    assert ids_of(doc) == expected and doc["numberMatched"] == 16
    # Six numbers (heights) select the same.
    six = f"{box[0]},{box[1]},-100,{box[2]},{box[3]},100"
    assert ids_of(get_json(client, f"{ITEMS}?bbox={six}")) == expected
    # Far away: nothing; a box of the whole world: everything.
    assert get_json(client, f"{ITEMS}?bbox=100,0,101,1")["numberMatched"] == 0
    assert get_json(client, f"{ITEMS}?bbox=-180,-90,180,90")["numberMatched"] == N


def test_bbox_in_epsg4326_is_latitude_first(client) -> None:
    w, s, e, n = lonlat_box(centre(0, 0), centre(2, 1))
    expected = expected_in((w, s, e, n))
    assert len(expected) == 6
    doc = get_json(client, f"{ITEMS}?bbox={s},{w},{n},{e}&bbox-crs={EPSG4326}")
    assert ids_of(doc) == expected
    # The same numbers read as CRS84 would be lon 11.7, lat 108: refused as a latitude.
    expect_error(client, f"{ITEMS}?bbox={s},{w},{n},{e}", 400, "latitude beyond ±90°")


def test_bbox_in_the_storage_crs_is_easting_northing(client) -> None:
    (x0, y0), (x1, y1) = centre(10, 8), centre(11, 9)
    doc = get_json(client, f"{ITEMS}?bbox={x0},{y0},{x1},{y1}&bbox-crs={EPSG5899}")
    inside = shapely.intersects(parcels_frame().geometry.values, shapely.box(x0, y0, x1, y1))
    assert ids_of(doc) == (np.flatnonzero(inside) + 1).tolist() and len(ids_of(doc)) == 4


@pytest.mark.parametrize("bbox,words", [
    ("108.3,11.7,108.4", ["not 4 numbers"]),
    ("108.3,11.7,108.4,11.8,12", ["not 4 numbers"]),
    ("nan,11.7,108.4,11.8", ["not 4 numbers"]),
    ("108.3,11.7,inf,11.8", ["not 4 numbers"]),
    ("108.3,11.7,1e999,11.8", ["too large"]),
    ("108.4,11.7,108.3,11.8", ["minimum above its maximum"]),
    ("108.3,11.8,108.4,11.7", ["minimum above its maximum"]),
    ("108.3,-91,108.4,11.8", ["beyond ±90°"]),
    ("-181,11,108.4,11.8", ["beyond ±180°"]),
    ("108.3;11.7;108.4;11.8", ["not 4 numbers"]),
    ("1,2,3,4) OR 1=1 --", ["not 4 numbers"]),
    ("", ["not 4 numbers"]),
])
def test_bad_bboxes_are_400(client, bbox, words) -> None:
    expect_error(client, f"{ITEMS}?bbox={bbox}", 400, "bbox", *words)


def test_output_crs_orders_axes_as_the_crs_defines(client) -> None:
    lonlat = get_json(client, f"{ITEMS}?limit=3")
    response = client.get(f"{ITEMS}?limit=3&crs={EPSG4326}")
    assert response.headers["Content-Crs"] == f"<{EPSG4326}>"
    latlon = json.loads(response.get_data(as_text=True))
    for a, b in zip(lonlat["features"], latlon["features"], strict=True):
        ring_a = np.array(a["geometry"]["coordinates"][0])
        ring_b = np.array(b["geometry"]["coordinates"][0])
        assert np.array_equal(ring_a[:, ::-1], ring_b)
        assert 107 < ring_a[0][0] < 109 and 11 < ring_a[0][1] < 13  # lon, lat
    response = client.get(f"{ITEMS}?limit=3&crs={EPSG5899}")
    assert response.headers["Content-Crs"] == f"<{EPSG5899}>"
    stored = json.loads(response.get_data(as_text=True))
    geom = shapely.geometry.shape(stored["features"][0]["geometry"])
    assert shapely.equals_exact(geom, parcels_frame().geometry.iloc[0], tolerance=0.0006)
    # CRS84 coordinates are the store's, reprojected (to 1e-7°, about 1 cm).
    first = np.array(lonlat["features"][0]["geometry"]["coordinates"][0])
    coords = shapely.get_coordinates(parcels_frame().geometry.iloc[0])
    lon, lat = to_lonlat(coords[:, 0], coords[:, 1])
    assert np.allclose(first, np.column_stack([lon, lat]), atol=6e-8, rtol=0)


@pytest.mark.parametrize("param,value", [
    ("crs", "EPSG:4326"), ("crs", "http://www.opengis.net/def/crs/EPSG/0/3857"),
    ("crs", "http://www.opengis.net/def/crs/EPSG/0/4326x"), ("bbox-crs", "CRS84"),
    ("crs", ""),
])
def test_unknown_crs_is_400_listing_the_offered_ones(client, param, value) -> None:
    expect_error(client, f"{ITEMS}?{param}={value}&bbox=1,2,3,4", 400, param, CRS84, EPSG5899)


# -- items: property filters and other parameters -------------------------------------------


def test_filters_on_key_fields_and_land_use(client) -> None:
    assert ids_of(get_json(client, f"{ITEMS}?sheet=3")) == list(range(21, 31))
    doc = get_json(client, f"{ITEMS}?sheet=3&parcel=4&commune=24778")
    assert ids_of(doc) == [24] and doc["numberMatched"] == 1
    props = doc["features"][0]["properties"]
    assert (props["sheet"], props["parcel"], props["commune"]) == (3, 4, "24778")
    land = get_json(client, f"{ITEMS}?land_use=ont%2Bcln&limit=1000")  # lower case, "+"
    assert ids_of(land) == [i + 1 for i in range(N) if i % 5 == 2]
    assert get_json(client, f"{ITEMS}?commune=99999")["numberMatched"] == 0
    assert get_json(client, f"{ITEMS}?address={ADDRESS}")["numberMatched"] == N
    nfd = unicodedata.normalize("NFD", ADDRESS)  # any normal form finds NFC text
    assert get_json(client, f"{ITEMS}?address={nfd}")["numberMatched"] == N


@pytest.mark.parametrize("query,words", [
    ("sheet=abc", ["sheet='abc' is not a whole number"]),
    ("sheet=1 OR 1=1", ["not a whole number"]),
    ("sheet=1.5", ["not a whole number"]),
    ("sheet=", ["sheet= needs a value"]),
    ("commune=" + "9" * 201, ["needs a value of 1 to 200 characters"]),
    ("owner=K'Brêu", ["unknown parameter 'owner'", "sheet"]),
    ("src:TenChu=x", ["unknown parameter 'src:TenChu'"]),
    ("owner_id=068000000001", ["unknown parameter 'owner_id'"]),
    ("area_m2=500", ["unknown parameter 'area_m2'"]),
    ("zone_id=Z1", ["unknown parameter 'zone_id'"]),
    ("foo=1", ["unknown parameter 'foo'"]),
    ("f=xml", ["f='xml'", "f=json"]),
    ("lang=fr", ["lang='fr'"]),
    ("datetime=yesterday", ["RFC 3339"]),
    ("datetime=2030-01-01/2020-01-01", ["ends before it starts"]),
    ("datetime=a/b/c", ["not a date-time or an interval"]),
])
def test_bad_parameters_are_400(client, query, words) -> None:
    expect_error(client, f"{ITEMS}?{query}", 400, *words)


def test_sql_looking_text_values_match_nothing(client) -> None:
    for value in ("24778' OR '1'='1", "24778\" OR 1=1 --", "%", "*", "24778; DROP TABLE x"):
        doc = get_json(client, f"{ITEMS}?commune={value}")
        assert doc["numberMatched"] == 0 and doc["features"] == []
    assert get_json(client, f"{ITEMS}")["numberMatched"] == N  # nothing was harmed


def test_datetime_meets_the_plan_period_only(client) -> None:
    plan = "/ogc/collections/678-plan/items"
    assert get_json(client, f"{plan}?datetime=2025-06-30")["numberMatched"] == 2
    assert get_json(client, f"{plan}?datetime=2025-06-30T10:00:00Z")["numberMatched"] == 2
    assert get_json(client, f"{plan}?datetime=2019-01-01/2021-01-01")["numberMatched"] == 2
    assert get_json(client, f"{plan}?datetime=2031-01-01/..")["numberMatched"] == 0
    assert get_json(client, f"{plan}?datetime=../2020-12-31")["numberMatched"] == 0
    # Parcels have no time: any datetime keeps them all.
    assert get_json(client, f"{ITEMS}?datetime=2040-01-01")["numberMatched"] == N
    # The plan's queryables are its own: land_use yes, sheet no.
    assert get_json(client, f"{plan}?land_use=CLN")["numberMatched"] == 1
    expect_error(client, f"{plan}?sheet=1", 400, "unknown parameter 'sheet'")


# -- single items ---------------------------------------------------------------------------


def test_single_item_by_id_with_links(client) -> None:
    response = client.get(f"{ITEMS}/24")
    assert response.mimetype == "application/geo+json"
    assert response.headers["Content-Crs"] == f"<{CRS84}>"
    doc = json.loads(response.get_data(as_text=True))
    assert doc["type"] == "Feature" and doc["id"] == 24
    assert (doc["properties"]["sheet"], doc["properties"]["parcel"]) == (3, 4)
    assert link(doc, "self") == f"http://localhost{ITEMS}/24"
    assert link(doc, "alternate") == f"http://localhost{ITEMS}/24?f=html"
    assert link(doc, "collection") == "http://localhost/ogc/collections/678-parcels"
    same = get_json(client, f"{ITEMS}?sheet=3&parcel=4")["features"][0]
    assert same["geometry"] == doc["geometry"] and same["properties"] == doc["properties"]
    latlon = get_json(client, f"{ITEMS}/24?crs={EPSG4326}")
    assert np.array_equal(np.array(latlon["geometry"]["coordinates"][0]),
                          np.array(doc["geometry"]["coordinates"][0])[:, ::-1])


@pytest.mark.parametrize("fid", ["0", "121", "abc", "-1", "1.5", "1e2", "٣",
                                 "99999999999999999999999", "1%20OR%201=1", "%00"])
def test_unknown_or_malformed_item_ids_are_404(client, fid) -> None:
    expect_error(client, f"{ITEMS}/{fid}", 404, "no feature", "678-parcels")


def test_single_item_parameters_are_checked(client) -> None:
    expect_error(client, f"{ITEMS}/1?limit=5", 400, "unknown parameter 'limit'")
    expect_error(client, f"{ITEMS}/1?crs=EPSG:5899", 400, "crs=")


# -- what goes out --------------------------------------------------------------------------


def test_properties_are_public_fields_as_nfc_text(client) -> None:
    doc = get_json(client, f"{ITEMS}?limit=2")
    first, second = (f["properties"] for f in doc["features"])
    assert list(first) == PUBLIC_PROPERTIES
    assert first["address"] == ADDRESS
    assert unicodedata.is_normalized("NFC", first["address"])
    assert first["src:GhiChu"] == NOTE and second["src:GhiChu"] == "Ghi chú 1"
    assert first["src:SoLo"] == "1" and second["src:SoLo"] == "2"  # as text
    assert isinstance(first["sheet"], int) and first["area_m2"] == 500.0
    assert first["land_use"] == "ONT"


def test_personal_data_never_leaves_the_api(client, ogc_home) -> None:
    frame = parcels_frame()
    secrets = {*frame["TenChu"], *frame["SoCCCD"], "TenChu", "SoCCCD", "owner"}
    urls = ["/ogc", "/ogc/api", "/ogc/api?f=html", "/ogc/collections",
            "/ogc/collections/678-parcels", "/ogc/collections/678-parcels?f=html",
            f"{ITEMS}?limit=10000", f"{ITEMS}?limit=10000&f=html", f"{ITEMS}/1",
            f"{ITEMS}/1?f=html", f"{ITEMS}?limit=10000&crs={EPSG5899}"]
    for url in urls:
        text = client.get(url).get_data(as_text=True)
        leaked = [s for s in secrets if s in text]
        assert not leaked, (url, leaked)


def test_html_pages_are_vietnamese_first_and_escape_source_text(client) -> None:
    page = client.get(f"{ITEMS}?limit=3", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Số đối tượng khớp" in html and "Features matched" not in html
    assert "<script>alert" not in html  # the note is text, in the table and in the map data
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "\\u003cscript\\u003ealert" in html
    assert "/static/vendor/leaflet/leaflet.js" in html and "https://" not in html
    english = client.get(f"{ITEMS}/1?f=html&lang=en").get_data(as_text=True)
    assert "Property" in english and "Thuộc tính" not in english
    for url in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/api",
                "/ogc/collections/678-plan", "/ogc/collections/678-plan/items"):
        response = client.get(url + "?f=html")
        assert response.status_code == 200 and response.mimetype == "text/html", url
    # A browser's Accept header gets HTML, a GIS client's JSON, anything else JSON.
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert client.get("/ogc/collections", headers={"Accept": browser}).mimetype == "text/html"
    gis = "application/geo+json, application/json"
    assert client.get(ITEMS, headers={"Accept": gis}).mimetype == "application/geo+json"
    assert client.get("/ogc", headers={"Accept": "*/*"}).mimetype == "application/json"


def test_html_requests_get_an_html_error_page(client) -> None:
    response = client.get(f"{ITEMS}?limit=0&f=html")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "limit=&#39;0&#39;" in response.get_data(as_text=True)
    response = client.get("/ogc/collections/999-plan", headers={"Accept": "text/html"})
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_collections_follow_the_published_version(tmp_path, backend) -> None:
    """A publication by another process (``gisportal ingest``) is served at the next
    request, and the matches cached for the old version are not reused."""
    home = tmp_path / "home"
    publish_district(home, tmp_path)
    client = create_app({"home": str(home)}).test_client()
    assert get_json(client, f"{ITEMS}?sheet=1")["numberMatched"] == 10
    box = ",".join(map(repr, lonlat_box(centre(0, 0), centre(1, 0))))
    assert get_json(client, f"{ITEMS}?bbox={box}")["numberMatched"] == 2
    smaller = parcels_frame().iloc[:15]
    smaller.to_file(tmp_path / "v2.gpkg", driver="GPKG")
    done = subprocess.run(
        [sys.executable, "-m", "gisportal", "ingest", str(tmp_path / "v2.gpkg"), "--kind",
         "parcels", "--district", "678", "--publish", "--confirm-removals"],
        capture_output=True, text=True, env={**os.environ, "GISPORTAL_HOME": str(home)},
        timeout=300)
    assert done.returncode == 0, done.stderr
    assert get_json(client, f"{ITEMS}?sheet=1")["numberMatched"] == 10
    assert get_json(client, f"{ITEMS}?sheet=2")["numberMatched"] == 5
    assert get_json(client, f"{ITEMS}")["numberMatched"] == 15
    assert get_json(client, f"{ITEMS}?bbox={box}")["numberMatched"] == 2
    expect_error(client, f"{ITEMS}/16", 404, "no feature")


def test_the_answer_is_the_same_json_without_orjson(ogc_home, monkeypatch) -> None:
    """orjson writes a page's coordinates; where it is not installed the standard library
    writes the same JSON."""
    from gisportal.outputs.ogc import collections as oc
    from gisportal.outputs.ogc import crs as ogc_crs
    from gisportal.outputs.ogc import geojson

    assert geojson.orjson is not None  # (installed here: the fast path is the one tested)
    with open_store(ogc_home, crs="EPSG:5899") as store:
        for kind in ("parcels", "plan"):
            version = store.published("678", kind)
            fields = oc.public_fields(store, version)
            records = store.records_by_id(version.id, store.feature_ids(version.id),
                                          columns=fields.columns)
            for crs in ogc_crs.offered(store.crs):
                fast = geojson.features_json(records, fields, crs, store.crs)
                with monkeypatch.context() as m:
                    m.setattr(geojson, "orjson", None)
                    plain = geojson.features_json(records, fields, crs, store.crs)
                assert json.loads(f"[{fast}]") == json.loads(f"[{plain}]")
                assert len(json.loads(f"[{fast}]")) == len(records)
