"""The province page's base maps in a real browser: the same switcher and offline base as
a district page (gp/basemap.js, `gisportal.web.maps.base_map_config`).

A live server over a data home where the demo district 678 is published; Debian's
Chromium through ``tests/browser.py``. Two modes, as tests/test_browser_map.py checks
them on a district page:

* as shipped (no base map enabled): the page draws our own base — paper where there is
  no data, the communes of the published boundary in tints, the plan's roads and rivers
  only once zoomed in (``own_base.min_zoom`` of maps/province.json) — and not one
  request leaves 127.0.0.1;
* one base map enabled (OpenStreetMap, answered by a local route, no real network):
  the switcher lists it beside our own base, the page asks only that host, and the
  choice is remembered across a reload and carried to a district page (one key).

Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import pytest

from gisportal.services.demo import build_demo
from gisportal.store import open_store
from gisportal.web import maps
from tests.browser import chromium_page, live_server, outside_requests, screenshot
from tests.test_browser_map import DESKTOP, PHONE, _pixels, _png


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = tmp_path_factory.mktemp("province-home")
    store = open_store(home, crs="EPSG:5899")
    build_demo(store, parcels_per_district=300, districts=["678"])
    store.close()
    with live_server(home) as base:
        yield base


def _ready(page) -> None:
    """The page's start-up done: units drawn, base chosen, tiles in."""
    page.wait_for_function("() => document.documentElement.dataset.unitsDrawn"
                           " && document.documentElement.dataset.basemap")
    page.wait_for_load_state("networkidle")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


#: RGB of every pixel of the own base's tile canvases (the gpBase pane), as drawn.
BASE_COLOURS = """() => {
    const seen = {};
    document.querySelectorAll('.leaflet-gpBase-pane canvas').forEach(c => {
        if (!c.width) { return; }
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i + 3] === 255) { seen[d[i] + ',' + d[i + 1] + ',' + d[i + 2]] = 1; }
        }
    });
    return Object.keys(seen);
}"""


def _hex(rgb: str) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb.split(","))


def test_province_offline_base_and_switcher_as_shipped(live):
    base = live
    tints = {c.lower() for c in
             maps.composition("district")["own_base"]["style"]["commune_fill"]}
    with chromium_page() as (page, errors, requests):
        page.set_viewport_size(DESKTOP)
        page.goto(base + "/")
        _ready(page)
        # Our own base is chosen and is the switcher's one radio button; the overlays
        # (former districts, today's units) are listed under it.
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        radios = page.locator(".leaflet-control-layers-base label")
        assert radios.count() == 1 and "Nền riêng" in radios.first.inner_text()
        overlays = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        assert any("Huyện cũ" in o for o in overlays), overlays
        assert any("Xã, phường" in o for o in overlays), overlays
        # Paper, not Leaflet's grey, where there is no data (the map's corner).
        box = page.locator(".leaflet-container").bounding_box()
        shot = page.screenshot(clip={"x": box["x"] + box["width"] - 80,
                                     "y": box["y"] + box["height"] - 80,
                                     "width": 20, "height": 20})
        px = _pixels(shot)
        assert px.count((243, 240, 232)) >= 0.8 * len(px), set(px)
        # The communes of Đức Trọng's published boundary, in the base's tints, from our
        # own tiles; the plan's ribbons not yet (province zoom, below min_zoom).
        drawn = {_hex(c) for c in page.evaluate(BASE_COLOURS)}
        assert len(drawn & tints) >= 2, drawn
        asked = [u for u in requests if "/tiles/" in u]
        assert any("/tiles/678/boundary/" in u for u in asked), asked
        assert not any("/tiles/678/plan/" in u for u in asked), asked
        # No tile of a district asked outside its bounds: every district without a
        # published boundary asks nothing.
        assert {u.split("/tiles/")[1].split("/")[0] for u in asked} == {"678"}
        screenshot(page, "province-offline-desktop")
        # Zoomed in on the district: the plan's roads and rivers join the base.
        page.evaluate("() => { const b = GP.config.config.base_tiles[0].bounds;"
                      " gpMap.setView(L.latLngBounds(b).getCenter(), 12, {animate: false}); }")
        _ready(page)
        assert any("/tiles/678/plan/" in u for u in requests)
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        # Phone: the switcher folds to its button.
        page.set_viewport_size(PHONE)
        page.goto(base + "/")
        _ready(page)
        assert page.locator(".leaflet-control-layers-expanded").count() == 0
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        screenshot(page, "province-offline-phone")
    assert errors == [], errors
    assert outside_requests(base, requests) == []


def _enable_osm(monkeypatch, names: dict[str, bool]) -> None:
    """Enable OpenStreetMap in the compositions `names` (name → its ``show``)."""
    original = maps.composition
    changed = {}
    for name, show in names.items():
        comp = original(name)
        changed[name] = {**comp, "basemaps": [
            {**b, "enabled": True, "show": show} if b["id"] == "osm" else b
            for b in comp["basemaps"]]}
    monkeypatch.setattr(maps, "composition",
                        lambda name: changed.get(name) or original(name))


def test_province_configured_base_map_listed_requested_remembered(live, monkeypatch):
    base = live
    # Shown by default on the province page; on the district page only when chosen.
    _enable_osm(monkeypatch, {"province": True, "district": False})
    with chromium_page() as (page, errors, requests):
        served: list[str] = []

        def tile(route) -> None:
            served.append(route.request.url)
            route.fulfill(status=200, content_type="image/png", body=_png())

        page.route("https://tile.openstreetmap.org/**", tile)
        page.set_viewport_size(DESKTOP)
        resp = page.goto(base + "/")
        _ready(page)
        radios = page.locator(".leaflet-control-layers-base label")
        names = radios.all_inner_texts()
        assert len(names) == 2 and "Nền riêng" in names[0] and "OpenStreetMap" in names[1]
        assert page.evaluate("document.documentElement.dataset.basemap") == "osm"
        assert served
        outside = outside_requests(base, requests)
        assert outside and all(u.startswith("https://tile.openstreetmap.org/") for u in outside)
        assert "OpenStreetMap" in page.locator(".leaflet-control-attribution").inner_text()
        # The page's policy names that host and no other.
        policy = resp.headers["content-security-policy"]
        img = next(d for d in policy.split(";") if d.strip().startswith("img-src"))
        assert img.split()[1:] == ["'self'", "data:", "blob:", "https://tile.openstreetmap.org"]
        screenshot(page, "province-basemap-osm-desktop")
        # Our own base chosen: remembered across a reload, and no OSM tile asked then.
        radios.nth(0).click()
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        assert page.evaluate("localStorage.getItem('gp.basemap')") == "own"
        before = len(served)
        page.reload()
        _ready(page)
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        assert len(served) == before
        # OSM chosen on the province page: the district page (where it is enabled but
        # not shown by default) opens on it too — one remembered choice for both pages.
        radios.nth(1).click()
        page.wait_for_load_state("networkidle")
        assert page.evaluate("localStorage.getItem('gp.basemap')") == "osm"
        page.goto(base + "/districts/678")
        page.wait_for_function("() => document.documentElement.dataset.basemap")
        assert page.evaluate("document.documentElement.dataset.basemap") == "osm"
    assert errors == [], errors


def test_province_base_map_of_a_host_not_configured_is_never_asked(live, monkeypatch):
    """A choice remembered for a base map the administrator has since turned off (or
    one a page never offered) falls back to our own base: nothing outside is asked."""
    base = live
    with chromium_page() as (page, errors, requests):
        page.goto(base + "/")
        page.evaluate("() => localStorage.setItem('gp.basemap', 'osm')")
        page.reload()
        _ready(page)
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        page.goto(base + "/districts/678")
        page.wait_for_function("() => document.documentElement.dataset.basemap")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
    assert errors == [], errors
    assert outside_requests(base, requests) == []
