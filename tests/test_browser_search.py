"""Search, the information sheet and hostile text, in a real browser on a live server."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gisportal.services import workflow
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from tests.browser import chromium_page, live_server, outside_requests, screenshot
from tests.conftest import DUC_TRONG_XY, parcel_grid, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY
HOSTILE = '<img src=x onerror="window.__pwned=1">Xã Hiệp An'


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    home = tmp / "home"
    store = open_store(home, crs="EPSG:5899")
    area = shapely.box(X0 - 1000, Y0 - 1000, X0 + 1000, Y0 + 1000)
    # A 2 km square is no outline of Đức Trọng: an upload of it is refused
    # (BOUNDARY-OUTLINE-MISFIT), so it is stored and published as it is.
    b = gpd.GeoDataFrame({"level": ["district", "commune", "commune"],
                          "code": ["678", "24778", "24958"],
                          "name": ["Huyện Đức Trọng", HOSTILE, "Thị trấn Liên Nghĩa"]},
                         geometry=[area, area, area], crs="EPSG:5899")
    v = store.add_version("678", "boundary", b, source_name="b.gpkg", source_sha256="b" * 64,
                          created_by="test")
    workflow.publish(store, v.id, "test")
    plan = gpd.GeoDataFrame({"MaLoaiDat": ["ODT"]}, geometry=[area], crs="EPSG:5899")
    plan.to_file(tmp / "q.gpkg", driver="GPKG")
    # Sheet 2 is a cadastre of Thị trấn Liên Nghĩa (commune code 24958); sheet 1 keeps
    # 24778, which is no former commune of Đức Trọng (its parcels have no units).
    grid = parcel_grid()
    grid.loc[grid["SoTo"] == 2, "MaXa"] = "24958"
    for kind, path in (("parcels", write_shapefile_zip(grid, tmp / "p.zip")),
                       ("plan", tmp / "q.gpkg")):
        assert ingest_file(store, path, kind, "678", publish=True,
                           consultation=kind == "plan").published, kind
    store.close()
    with live_server(home) as base:
        yield base


def search_from_district_page(page, base: str, q: str) -> None:
    """Open Đức Trọng's page, wait for its map, and search for `q` as a resident types it."""
    page.goto(base + "/districts/678")
    page.wait_for_function("() => window.gpMap !== undefined")
    page.fill("#gp-search-q", q)
    page.press("#gp-search-q", "Enter")


def test_search_by_sheet_and_parcel_then_open_the_sheet(live):
    with chromium_page() as (page, errors, requests):
        search_from_district_page(page, live, "tờ 1 thửa 3")
        page.locator("#gp-result .gp-planned li").first.wait_for()
        panel = page.locator("#gp-result").inner_text()
        assert "ODT" in panel and "100" in panel
        # The hostile commune name is shown as text and did not run.
        assert "<img src=x" in panel
        assert page.evaluate("window.__pwned === undefined")
        screenshot(page, "portal-search")
        page.locator("#gp-result a.gp-sheet-link").click()
        page.wait_for_url("**/parcels/678/1/3**")
        assert "Phiếu thông tin thửa đất" in page.locator("h1").inner_text()
        page.locator("#gp-sheet-map svg").wait_for()  # the map, drawn on the server
        assert page.evaluate("window.__pwned === undefined")
        screenshot(page, "parcel-sheet")
        # A place name without diacritics lists the district.
        search_from_district_page(page, live, "duc trong")
        page.get_by_text("Huyện Đức Trọng").last.wait_for()
    assert errors == [], errors
    assert outside_requests(live, requests) == []


def test_a_former_ward_finds_todays_ward_with_a_note_and_a_box(live):
    """ "Phường 9, Đà Lạt", as an older certificate names it: the list shows today's
    Phường Lâm Viên - Đà Lạt, says that Phường 9 is in it since 1 July 2025, and its
    button zooms to the former ward's published outline (code 24778 in the boundary)."""
    with chromium_page() as (page, errors, requests):
        search_from_district_page(page, live, "Phường 9, Đà Lạt")
        first = page.locator("#gp-result .gp-places li").first
        first.wait_for()
        assert "Phường Lâm Viên - Đà Lạt" in first.locator("button").inner_text()
        assert "Phường" in first.locator(".lv").inner_text()
        note = first.locator(".gp-note").inner_text()
        assert "Phường 9 (Thành phố Đà Lạt)" in note and "01/07/2025" in note
        assert first.locator("button").is_enabled()
        page.evaluate("window.gpMap.setView([12.5, 108.9], 9, {animate: false})")
        first.locator("button").click()
        # Back over the 2 km box of the boundary (around Đức Trọng's test point).
        page.wait_for_function("() => window.gpMap.getCenter().lat < 12 && "
                               "window.gpMap.getZoom() > 12")
        screenshot(page, "search-former-ward")
    assert errors == [], errors
    assert outside_requests(live, requests) == []


def test_the_parcel_panel_names_todays_commune_and_the_former_ones(live):
    with chromium_page() as (page, errors, requests):
        search_from_district_page(page, live, "tờ 2 thửa 1")
        page.locator("#gp-result .gp-dl").wait_for()
        panel = page.locator("#gp-result").inner_text()
        assert "Xã Đức Trọng (24958)" in panel
        assert "Thị trấn Liên Nghĩa, Huyện Đức Trọng" in panel
        screenshot(page, "parcel-units")
    assert errors == [], errors
    assert outside_requests(live, requests) == []


# ------------------------------------------- choices, the commune picker, elsewhere


@pytest.fixture(scope="module")
def demo_live(tmp_path_factory):
    """Đức Trọng and Di Linh of the demo: several communes share each sheet/parcel pair."""
    from gisportal.services.demo import build_demo

    home = tmp_path_factory.mktemp("search-demo") / "home"
    with open_store(home, crs="EPSG:5899") as store:
        build_demo(store, parcels_per_district=150, districts=["678", "679"])
        parcels = store.read(store.published("678", "parcels").id)
        other = store.read(store.published("679", "parcels").id)
    with live_server(home) as base:
        yield base, parcels, other


def test_a_shared_sheet_and_parcel_offers_its_communes_on_a_phone(demo_live):
    base, parcels, _ = demo_live
    shared = parcels[(parcels["sheet"] == 1) & (parcels["parcel"] == 3)]
    assert len(shared) > 1
    with chromium_page() as (page, errors, requests):
        page.set_viewport_size({"width": 390, "height": 844})
        search_from_district_page(page, base, "tờ 1 thửa 3")
        choices = page.locator("#gp-result .gp-places li button.gp-choice")
        choices.first.wait_for()
        assert choices.count() == len(shared)
        text = page.locator("#gp-result").inner_text()
        assert "Chọn thửa đất" in text and "Search failed" not in text
        assert "Không tìm được" not in text
        for code in shared["commune"]:
            assert f"({code})" in text
        screenshot(page, "search-choices-phone")
        pick = shared["commune"].iloc[1]
        page.locator("#gp-result button.gp-choice", has_text=f"({pick})").click()
        page.locator("#gp-result .gp-dl").wait_for()
        panel = page.locator("#gp-result").inner_text()
        assert f"({pick})" in panel
        assert page.evaluate("location.hash").endswith(f"/{pick}/1/3")
    assert errors == [], errors
    assert outside_requests(base, requests) == []


def test_the_commune_picker_looks_up_sheet_and_parcel(demo_live):
    base, parcels, _ = demo_live
    row = parcels[(parcels["sheet"] == 1) & (parcels["parcel"] == 3)].iloc[0]
    with chromium_page() as (page, errors, requests):
        page.goto(base + "/districts/678")
        page.wait_for_function("() => window.gpMap !== undefined")
        options = page.locator("#gp-commune option")
        assert options.count() > 3  # every commune of the district, and "all"
        page.select_option("#gp-commune", row["commune"])
        page.fill("#gp-sheet", "1")
        page.fill("#gp-parcel", "3")
        page.locator("#gp-parcel-form button[type=submit]").click()
        page.locator("#gp-result .gp-dl").wait_for()
        assert f"({row['commune']})" in page.locator("#gp-result").inner_text()
    assert errors == [], errors


def test_a_point_of_the_next_district_says_where_it_is_with_a_link(demo_live):
    base, _, other = demo_live
    from gisportal.base.crs import to_lonlat

    pt = shapely.point_on_surface(other.geometry.iloc[4])
    lon, lat = to_lonlat(pt.x, pt.y)
    with chromium_page() as (page, errors, requests):
        search_from_district_page(page, base, f"{float(lat):.7f}, {float(lon):.7f}")
        note = page.locator("#gp-result .gp-elsewhere")
        note.wait_for()
        assert "Huyện Di Linh" in note.inner_text()
        href = note.locator("a").get_attribute("href")
        assert href.startswith("/districts/679#18/")
        note.locator("a").click()
        page.wait_for_url("**/districts/679#**")
        page.locator("#gp-result .gp-dl").wait_for()  # the parcel, opened from the link
    assert errors == [], errors
