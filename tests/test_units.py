"""Today's communes drawn from the former communes of the published boundary layers.

Tuy Phong (595, former Bình Thuận) became four communes on 2025-07-01, and its Phong
Phú was split between two of them: the shapes are the unions of their former communes,
the split one cut between the two so that they neither overlap nor leave a gap.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.geometry
from pyproj import Transformer

from gisportal.base import seeds
from gisportal.services.ingest import ingest_file
from gisportal.services.units import current_unit_shapes

CELL = 8_500.0  # m: 11 cells of 72 km² make Tuy Phong's 795 km²
#: Tuy Phong's former communes on a 4 × 3 grid, south row first (None: no commune)
LAYOUT = [["22972", "22993", "22996", "22981"],
          ["22978", "22969", "22987", "22984"],
          ["22975", "22990", "22999", None]]


def tuy_phong(tmp_path, names: dict[str, str] | None = None):
    """Tuy Phong's boundary layer as an office would send it: in its own zone
    (EPSG:9218), the district and its communes, lower-case column names."""
    x0, y0 = Transformer.from_crs(4326, 9218, always_xy=True).transform(108.718, 11.225)
    x0, y0 = x0 - 2 * CELL, y0 - 1.5 * CELL
    cells = {code: shapely.box(x0 + c * CELL, y0 + r * CELL, x0 + (c + 1) * CELL,
                               y0 + (r + 1) * CELL)
             for r, row in enumerate(LAYOUT) for c, code in enumerate(row) if code}
    communes = seeds.communes_of("595")
    rows = [{"cap": "Huyện", "ma": "595", "ten": "Huyện Tuy Phong",
             "geometry": shapely.union_all(list(cells.values()))}]
    rows += [{"cap": "Xã", "ma": code, "ten": (names or {}).get(code, communes[code].name),
              "geometry": geom} for code, geom in cells.items()]
    path = tmp_path / "ranh_gioi_tuy_phong.gpkg"
    gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:9218").to_file(path, driver="GPKG")
    return path, cells


@pytest.fixture
def published(tmp_path, store):
    path, cells = tuy_phong(tmp_path)
    res = ingest_file(store, path, "boundary", "595", publish=True)
    assert res.published, [f.to_dict() for f in res.report.findings if f.level == "error"]
    return cells


def by_code(store) -> dict:
    return {u.code: u for u in current_unit_shapes(store)}


def test_a_unit_is_the_union_of_its_former_communes(store, published):
    units = by_code(store)
    assert len(units) == 124
    lien_huong = units["22969"]  # Liên Hương, Phú Lạc, Phước Thể, Bình Thạnh
    assert lien_huong.complete and not lien_huong.approximate
    assert lien_huong.former_districts == ("595",)
    assert lien_huong.geometry.area == pytest.approx(4 * CELL * CELL, rel=1e-3)
    vinh_hao = units["22981"]
    assert vinh_hao.parts_found == vinh_hao.parts_total == 2
    # A unit none of whose former communes is published has no shape (yet).
    assert units["22918"].geometry is None and units["22918"].parts_found == 0


def test_a_split_commune_is_cut_between_its_two_units_without_gap_or_overlap(store,
                                                                              published):
    units = by_code(store)
    phan_ri, tuy = units["22972"], units["22978"]
    assert phan_ri.approximate and tuy.approximate and phan_ri.complete and tuy.complete
    grid = Transformer.from_crs(9218, 5899, always_xy=True)
    phong_phu = shapely.transform(published["22978"],
                                  lambda xy: np.column_stack(grid.transform(xy[:, 0], xy[:, 1])))
    a = shapely.intersection(phan_ri.geometry, phong_phu)
    b = shapely.intersection(tuy.geometry, phong_phu)
    assert a.area + b.area == pytest.approx(phong_phu.area, rel=1e-6)  # no gap
    assert shapely.intersection(a, b).area < 1.0  # no overlap
    # Phan Rí Cửa's other communes lie south, Tuy Phong's (Phan Dũng) north: each takes
    # the half that faces it.
    assert a.centroid.y < phong_phu.centroid.y < b.centroid.y
    assert a.area == pytest.approx(b.area, rel=0.05)
    assert phan_ri.geometry.geom_type == "Polygon" and tuy.geometry.geom_type == "Polygon"


def test_a_new_boundary_version_redraws_the_units(tmp_path, store, published):
    before = by_code(store)["22969"].geometry
    path, cells = tuy_phong(tmp_path)
    gdf = gpd.read_file(path)
    gdf.loc[gdf["ma"] == "22999", "geometry"] = None  # Bình Thạnh left out
    gdf = gdf[gdf.geometry.notna()]
    gdf.to_file(path, driver="GPKG")
    assert ingest_file(store, path, "boundary", "595", publish=True,
                       confirm_removals=True).published  # one feature of 12 fewer
    after = by_code(store)["22969"]
    assert after.parts_found == 3 and not after.complete
    assert after.geometry.area < before.area


def test_the_province_page_lists_the_124_and_draws_those_it_can(home, store, published):
    from gisportal.web.app import create_app

    client = create_app({"home": str(home)}).test_client()
    html = client.get("/").get_data(as_text=True)
    listed = re.findall(r'<li data-code="(\d{5})">', html)
    assert len(listed) == 124 and set(listed) == set(seeds.current_units())
    assert "124 đơn vị hành chính cấp xã" in html
    assert "4 đơn vị có ranh giới từ dữ liệu đã công bố" in html  # Tuy Phong's four
    assert "Xã Phan Rí Cửa" in html and "Xã, phường, đặc khu (từ 01/7/2025)" in html
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "124 commune-level units" in english
    # The outlines are not in the page: its script fetches them.
    assert "Xã Liên Hương" not in html.split("gp-units")[0]
    assert '"units_url": "/api/units?lang=vi"' in html


def test_the_units_endpoint_serves_the_drawn_units(home, store, published):
    import gzip
    import json

    from gisportal.web.app import create_app

    client = create_app({"home": str(home)}).test_client()
    plain = client.get("/api/units")
    assert plain.status_code == 200 and plain.mimetype == "application/geo+json"
    doc = json.loads(plain.data)
    assert {f["properties"]["code"] for f in doc["features"]} == {
        "22969", "22972", "22978", "22981"}
    lien_huong = next(f for f in doc["features"] if f["properties"]["code"] == "22969")
    assert lien_huong["properties"] == {"code": "22969", "name": "Xã Liên Hương",
                                        "level": "commune", "level_label": "Xã",
                                        "complete": True, "approximate": False}
    lon, lat = shapely.geometry.shape(lien_huong["geometry"]).centroid.coords[0]
    assert 108.5 < lon < 108.9 and 11.1 < lat < 11.4  # WGS 84, lon/lat order
    zipped = client.get("/api/units", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    again = client.get("/api/units", headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304
    english = json.loads(client.get("/api/units?lang=en").data)
    assert english["features"][0]["properties"]["level_label"] in ("Commune", "Ward")


def test_a_click_without_parcel_names_todays_commune_and_the_former_one(store, published):
    from gisportal.services import lookup

    to_grid = Transformer.from_crs(9218, 4326, always_xy=True)
    centre = published["22987"].centroid  # Phú Lạc, now part of Liên Hương
    lon, lat = to_grid.transform(centre.x, centre.y)
    answer = lookup.lookup_lonlat(store, lat, lon)
    assert answer["parcel"] is None and answer["district"] == "595"
    assert answer["units"] == {
        "current": {"code": "22969", "name": "Xã Liên Hương", "level": "commune"},
        "former": [{"code": "22987", "name": "Xã Phú Lạc", "level": "commune"},
                   {"code": "595", "name": "Huyện Tuy Phong", "level": "district"}]}
    far = lookup.lookup_lonlat(store, 11.9, 108.45)  # Đà Lạt: nothing published there
    assert far["units"] is None


def test_a_parcel_of_a_split_commune_is_given_the_unit_whose_part_holds_it(tmp_path, store,
                                                                           published):
    from gisportal.services import lookup

    cell = published["22978"]  # Phong Phú, split: south half to Phan Rí Cửa, north to Tuy Phong
    minx, miny, maxx, maxy = cell.bounds
    rows = []
    for n, y in enumerate((miny + 500, maxy - 600), start=1):  # one near each edge
        rows.append({"maxa": "22978", "soto": 3, "sothua": n, "loaidat": "ONT",
                     "geometry": shapely.box(minx + 500, y, minx + 530, y + 40)})
    path = tmp_path / "phong_phu.gpkg"
    gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:9218").to_file(path, driver="GPKG")
    assert ingest_file(store, path, "parcels", "595", publish=True).published
    south = lookup.lookup_key(store, "595", 3, 1)["units"]
    north = lookup.lookup_key(store, "595", 3, 2)["units"]
    assert south["current"]["code"] == "22972" and north["current"]["code"] == "22978"
    assert south["current_approximate"] and north["current_approximate"]
    assert {o["code"] for o in south["current_options"]} == {"22972", "22978"}
