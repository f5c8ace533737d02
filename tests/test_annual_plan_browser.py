"""Annual land-use plans in a real browser: the district map's overlay, its tooltip, and
the look-up panel (Chromium through ``tests/browser.py``)."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gisportal.base.crs import to_lonlat
from gisportal.services.ingest import ingest_file
from tests.browser import chromium_page, live_server, outside_requests, screenshot
from tests.conftest import DUC_TRONG_XY
from tests.test_annual_plan import ROAD, SCHOOL, annual_2026

X0, Y0 = DUC_TRONG_XY


@pytest.fixture
def live(home, store, tmp_path, make_shapefile_zip):
    assert ingest_file(store, make_shapefile_zip(), "parcels", "678", publish=True).published
    plan = gpd.GeoDataFrame({"MaLoaiDat": ["ODT"]},
                            geometry=[shapely.box(X0 - 500, Y0 - 500, X0 + 600, Y0 + 600)],
                            crs="EPSG:5899")
    plan.to_file(tmp_path / "plan.gpkg", driver="GPKG")
    assert ingest_file(store, tmp_path / "plan.gpkg", "plan", "678", publish=True,
                       consultation=True).published
    annual_2026().to_file(tmp_path / "kh.gpkg", driver="GPKG")
    assert ingest_file(store, tmp_path / "kh.gpkg", "annual_plan", "678", year=2026,
                       publish=True).published
    with live_server(home) as base:
        yield base


def _screen(page, x: float, y: float) -> tuple[float, float]:
    lon, lat = (float(v) for v in to_lonlat(x, y))
    return page.evaluate(
        "([lat, lon]) => { const p = window.gpMap.latLngToContainerPoint([lat, lon]);"
        " const r = window.gpMap.getContainer().getBoundingClientRect();"
        " return [p.x + r.left, p.y + r.top]; }", [lat, lon])


def test_overlay_tooltip_and_panel(live):
    with chromium_page() as (page, errors, requests):
        tiles: list[tuple[str, int]] = []
        page.on("response", lambda r: tiles.append((r.url, r.status))
                if "/tiles/" in r.url else None)
        page.goto(live + "/districts/678")
        page.wait_for_function("() => window.gpMap !== undefined")
        lon, lat = (float(v) for v in to_lonlat(X0 + 150, Y0 + 150))
        page.evaluate("([lat, lon]) => window.gpMap.setView([lat, lon], 17, {animate: false})",
                      [lat, lon])
        page.wait_for_load_state("networkidle")
        assert any("/annual_plan/" in u and s == 200 for u, s in tiles), tiles
        # Hovering the road names it.
        page.mouse.move(*_screen(page, X0 + 25, Y0 + 5))
        tip = page.locator(".gp-tooltip")
        tip.wait_for()
        assert tip.inner_text() == f"Kế hoạch sử dụng đất năm 2026: {ROAD} (DA-01)"
        # A click on the parcel under the road still looks it up (the overlay listens to
        # the pointer but does not swallow the click).
        page.mouse.click(*_screen(page, X0 + 10, Y0 + 5))
        page.locator("#gp-result .gp-annual li").first.wait_for()
        panel = page.locator("#gp-result").inner_text()
        assert "Kế hoạch sử dụng đất hằng năm" in panel
        assert f"Kế hoạch sử dụng đất năm 2026: {ROAD} (DA-01)" in panel
        # the share as the parcel sheet writes it (gisportal.base.formats.share)
        assert "DGT" in panel and "456/QĐ-UBND" in panel and "(80,0 %)" in panel
        screenshot(page, "annual-plan-panel")
        # No parcel at the school: the project there is named.
        page.mouse.click(*_screen(page, X0 + 350, Y0 + 350))
        page.locator("#gp-result .gp-empty").wait_for()
        page.locator("#gp-result .gp-annual li").first.wait_for()
        assert f"2026: {SCHOOL} (DA-02)" in page.locator("#gp-result").inner_text()
        assert errors == [], errors
        assert outside_requests(live, requests) == []
    with chromium_page() as (page, errors, _):
        page.goto(live + "/districts/678?lang=en")
        page.wait_for_function("() => window.gpMap !== undefined")
        lon, lat = (float(v) for v in to_lonlat(X0 + 10, Y0 + 5))
        page.evaluate("([lat, lon]) => window.gpMap.setView([lat, lon], 18, {animate: false})",
                      [lat, lon])
        page.wait_for_load_state("networkidle")
        page.mouse.click(*_screen(page, X0 + 10, Y0 + 5))
        page.locator("#gp-result .gp-annual li").first.wait_for()
        assert f"Annual land-use plan 2026: {ROAD}" in page.locator("#gp-result").inner_text()
        assert errors == [], errors
