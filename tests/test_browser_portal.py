"""The resident portal in a real browser: province map → district map → parcel look-up.

A live server (werkzeug, in a thread, on 127.0.0.1) over a data home where the demo
district 678 is published; Debian's Chromium through ``tests/browser.py``.
"""

from __future__ import annotations

import pytest

from gisportal.base.crs import to_lonlat
from gisportal.services.demo import build_demo
from gisportal.store import open_store
from tests.browser import chromium_page, live_server, outside_requests, screenshot


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = tmp_path_factory.mktemp("portal-home")
    store = open_store(home, crs="EPSG:5899")
    build_demo(store, parcels_per_district=200, districts=["678"])
    parcels = store.read(store.published("678", "parcels").id)
    bounds = store.read(store.published("678", "boundary").id)
    outline = bounds[bounds["level"] == "district"].geometry.iloc[0]
    empty = outline.representative_point()  # inside the district, outside every parcel
    assert not parcels.intersects(empty).any()
    x0, y0, _, _ = outline.bounds
    outside = (x0 - 3000, y0 - 3000)  # south-west of the district: no district there
    store.close()
    with live_server(home) as base:
        yield (base, parcels, tuple(float(v) for v in to_lonlat(empty.x, empty.y)),
               tuple(float(v) for v in to_lonlat(*outside)))


def _click_at(page, lat: float, lon: float) -> None:
    """Click the map where (lat, lon) is on screen, as a person would."""
    xy = page.evaluate(
        "([lat, lon]) => { const p = window.gpMap.latLngToContainerPoint([lat, lon]);"
        " const r = window.gpMap.getContainer().getBoundingClientRect();"
        " return [p.x + r.left, p.y + r.top]; }", [lat, lon])
    page.mouse.click(xy[0], xy[1])


def _tile_statuses(page, statuses):
    page.on("response", lambda r: statuses.append((r.url, r.status))
            if "/tiles/" in r.url else None)


def test_portal_province_to_district_lookup_and_language(live):
    base, parcels, (empty_lon, empty_lat), (out_lon, out_lat) = live
    # A parcel of median size: at zoom 18 its neighbours' outlines are on screen too.
    areas = parcels.geometry.area
    row = parcels.loc[(areas - areas.median()).abs().idxmin()]
    pt = row.geometry.representative_point()
    lon, lat = (float(v) for v in to_lonlat(pt.x, pt.y))
    with chromium_page() as (page, errors, requests):
        tiles: list[tuple[str, int]] = []
        _tile_statuses(page, tiles)
        page.goto(base + "/")
        page.locator(".leaflet-container").wait_for()
        assert page.locator("path.leaflet-interactive").count() >= 1  # Đức Trọng's outline
        # Today's units whose former communes Đức Trọng's boundary holds are fetched from
        # /api/units and drawn over it (Đức Trọng's 15 communes went into a few of them).
        page.wait_for_function(
            "() => Number(document.documentElement.dataset.unitsDrawn || 0) > 0")
        drawn = int(page.evaluate("() => document.documentElement.dataset.unitsDrawn"))
        assert drawn == page.evaluate("() => window.gpUnits.getLayers().length") >= 3
        screenshot(page, "portal-province")
        page.locator('.gp-district-label a[data-code="678"]').click()
        page.wait_for_url("**/districts/678**")
        page.locator(".leaflet-container").wait_for()
        page.wait_for_function("() => window.gpMap !== undefined")
        # Zoom to the parcel: tiles of all three layers load.
        page.evaluate("([lat, lon]) => window.gpMap.setView([lat, lon], 18, {animate: false})",
                      [lat, lon])
        page.wait_for_function(
            "() => document.querySelectorAll('.leaflet-tile-container canvas').length > 0")
        page.wait_for_load_state("networkidle")
        assert tiles, "no tile was requested"
        assert all(status in (200, 204) for _, status in tiles), tiles
        assert any("/parcels/" in u and s == 200 for u, s in tiles)
        assert any("/plan/" in u and s == 200 for u, s in tiles)
        # Click the parcel where it is on screen.
        _click_at(page, lat, lon)
        page.locator("#gp-result .gp-planned li").first.wait_for()
        panel = page.locator("#gp-result").inner_text()
        assert "Thửa đất" in panel and "Quy hoạch 2021–2030" in panel
        assert str(row["sheet"]) in panel and str(row["parcel"]) in panel
        assert "%" in panel and "m²" in panel
        # The permalink holds the view and the parcel.
        assert page.evaluate("location.hash").count("/") >= 5
        screenshot(page, "portal-district-lookup")
        # Switch to English: the view and the selected parcel come back from the URL.
        page.locator("#gp-lang").click()
        page.wait_for_url("**lang=en**")
        page.locator("#gp-result .gp-planned li").first.wait_for()
        assert "Planned use 2021–2030" in page.locator("#gp-result").inner_text()
        assert page.locator("html").get_attribute("lang") == "en"
        page.wait_for_load_state("networkidle")
        screenshot(page, "portal-district-en")
        # A point of the district with no parcel: the panel says so.
        page.evaluate("([lat, lon]) => window.gpMap.setView([lat, lon], 15, {animate: false})",
                      [empty_lat, empty_lon])
        _click_at(page, empty_lat, empty_lon)
        page.locator("#gp-result .gp-empty").wait_for()
        assert "No parcel here" in page.locator("#gp-result").inner_text()
        assert page.evaluate("location.hash").count("/") == 2  # no parcel in the permalink
        # Outside every district: an answer too (200), so the console logs no 404.
        lookups: list[int] = []
        page.on("response", lambda r: lookups.append(r.status)
                if "/api/lookup" in r.url else None)
        page.evaluate("([lat, lon]) => window.gpMap.setView([lat, lon], 13, {animate: false})",
                      [out_lat, out_lon])
        _click_at(page, out_lat, out_lon)
        page.wait_for_function("() => document.querySelector('#gp-result')"
                               ".innerText.includes('outside every district')")
        panel = page.locator("#gp-result").inner_text()
        # The English page in English only: no Vietnamese twin in small type (a
        # resident's page is in one language; the toggle gives the other).
        assert "Điểm này nằm ngoài các huyện" not in panel
        assert page.locator("#gp-result .gp-empty").count() == 1
        page.wait_for_load_state("networkidle")
        assert lookups == [200]
        screenshot(page, "portal-district-outside")
    assert errors == [], errors
    assert outside_requests(base, requests) == []
