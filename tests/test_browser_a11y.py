"""Phones and accessibility of the public pages, in a real browser on a live server.

axe-core (vendored from npm under ``tests/vendor/axe-core``, MPL-2.0) checks the
province page, a district page, a parcel sheet, the compare page and an error page, in
Vietnamese and English, at a desktop and a phone viewport: no serious or critical
violation. No page scrolls sideways at 360–414 px. On a phone the answer opens as a
bottom sheet over the map, and the keyboard alone can skip to the search box, search,
and look up the parcel at the map's centre.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest

from gisportal.store import open_store
from tests.browser import CHROMIUM, FLAGS, live_server, outside_requests, screenshot

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONES = [{"width": 360, "height": 740}, {"width": 390, "height": 844},
          {"width": 414, "height": 896}]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Đức Trọng of the demo, served; a parcel sheet's address."""
    from gisportal.services.demo import build_demo

    home = tmp_path_factory.mktemp("a11y") / "home"
    with open_store(home, crs="EPSG:5899") as store:
        build_demo(store, parcels_per_district=150, districts=["678"])
        row = store.read(store.published("678", "parcels").id).iloc[0]
    sheet = f"/parcels/678/{int(row['sheet'])}/{int(row['parcel'])}?commune={row['commune']}"
    with live_server(home) as base:
        yield base, sheet


@contextmanager
def browser_context(viewport: dict, *, bypass_csp: bool = False):
    """A fresh context of Debian's Chromium; `bypass_csp` only to inject axe-core."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            context = browser.new_context(viewport=viewport, bypass_csp=bypass_csp,
                                          has_touch=viewport["width"] < 700)
            yield context
        finally:
            browser.close()


def pages(sheet: str) -> list[str]:
    return ["/", "/districts/678", sheet, "/districts/678/plan/compare", "/districts/999"]


def serious_violations(page) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA and best-practice violations of impact serious or critical."""
    page.add_script_tag(content=AXE.read_text())
    found = page.evaluate(
        "() => axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',"
        " 'best-practice']}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
        " help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})))")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def settle(page, url: str) -> None:
    """Open `url` and wait for its map (if any) to have drawn."""
    page.goto(url)
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONES[1]], ids=["desktop", "phone"])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_axe_finds_no_serious_violation_on_public_pages(site, viewport, lang):
    base, sheet = site
    report = {}
    with browser_context(viewport, bypass_csp=True) as context:
        page = context.new_page()
        for path in pages(sheet):
            sep = "&" if "?" in path else "?"
            settle(page, f"{base}{path}{sep}lang={lang}")
            bad = serious_violations(page)
            if bad:
                report[path] = bad
    assert report == {}, json.dumps(report, ensure_ascii=False, indent=1)


def test_axe_itself_reports_a_serious_violation():
    """The check can fail: a page with an unlabelled image button is reported."""
    with browser_context(DESKTOP, bypass_csp=True) as context:
        page = context.new_page()
        page.set_content('<html lang="vi"><body><main><button><img src="data:,">'
                         '</button></main></body></html>')
        assert any(v["id"] == "button-name" for v in serious_violations(page))


@pytest.mark.parametrize("viewport", PHONES, ids=lambda v: f"{v['width']}px")
def test_no_page_scrolls_sideways_on_a_phone(site, viewport):
    base, sheet = site
    wide = {}
    with browser_context(viewport) as context:
        page = context.new_page()
        for path in pages(sheet):
            settle(page, base + path)
            extra = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
            if extra > 0:
                wide[path] = extra
    assert wide == {}


def test_on_a_phone_the_answer_opens_as_a_bottom_sheet_over_the_map(site):
    base, _ = site
    with browser_context(PHONES[1]) as context:
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        settle(page, base + "/districts/678")
        panel, handle = page.locator("#gp-panel"), page.locator("#gp-sheet-handle")
        map_box = page.locator("#gp-map-box").bounding_box()
        box = panel.bounding_box()
        # Over the map, at the bottom of the screen, the map under it full height.
        assert box["y"] + box["height"] == pytest.approx(PHONES[1]["height"], abs=2)
        assert map_box["y"] + map_box["height"] == pytest.approx(PHONES[1]["height"], abs=2)
        assert box["height"] < PHONES[1]["height"] * 0.55
        # Folded to its handle, then a look-up (a tap on the map) opens it on the answer.
        handle.click()
        assert handle.get_attribute("aria-expanded") == "false"
        assert panel.bounding_box()["height"] < 60
        page.locator("#gp-map-box .leaflet-container").tap(position={"x": 195, "y": 200})
        page.locator("#gp-result .gp-hint, #gp-result .gp-dl, #gp-result .gp-empty").first \
            .wait_for()
        page.wait_for_function("() => !document.getElementById('gp-result')"
                               ".hasAttribute('aria-busy')")
        assert handle.get_attribute("aria-expanded") == "true"
        assert "gp-open" in panel.get_attribute("class")
        assert panel.bounding_box()["height"] > PHONES[1]["height"] * 0.5
        screenshot(page, "phone-bottom-sheet")
    assert outside_requests(base, requests) == []


def test_the_keyboard_alone_finds_a_parcel(site):
    """Tab reaches the skip link first, which lands in the search box; Enter searches;
    the map takes focus and Enter looks up the parcel at its centre."""
    base, _ = site
    with browser_context(DESKTOP) as context:
        page = context.new_page()
        settle(page, base + "/districts/678")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "gp-skip"
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.activeElement.id === 'gp-search-q'")
        page.keyboard.type("tờ 1 thửa 3")
        page.keyboard.press("Enter")
        page.locator("#gp-result button.gp-choice, #gp-result .gp-dl").first.wait_for()
        # The map: focusable, named, and Enter asks for the parcel at its centre.
        page.focus("#gp-map-box .leaflet-container")
        label = page.get_attribute("#gp-map-box .leaflet-container", "aria-label")
        assert "Enter" in label and "mũi tên" in label
        with page.expect_response(lambda r: "/api/lookup?" in r.url) as asked:
            page.keyboard.press("Enter")
        assert asked.value.status == 200
        page.wait_for_function("() => !document.getElementById('gp-result')"
                               ".hasAttribute('aria-busy')")
        focus_ring = page.evaluate(
            "() => getComputedStyle(document.activeElement).outlineStyle")
        assert focus_ring != "none"
