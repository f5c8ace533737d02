"""No English on a Vietnamese page once its scripts ran (issue 14, item 4), in a real
browser on a live server.

What the page scripts write — the look-up panel, the search's lists and errors, the
tooltips, the legend — and the map controls (zoom, full screen, locate, the layer
control, leaflet-measure opened and used) are read from the DOM after each step:
every text node and the ``title``, ``aria-label``, ``placeholder``, ``alt`` of every
element, the language toggle aside. Each text goes through the checker of
`tests.vietnamese` (its self-test is tests/test_vietnamese.py). Numbers in the panel
and the measure results are in Vietnamese format.
"""

from __future__ import annotations

import re

import pytest

from gisportal.base.crs import to_lonlat
from gisportal.store import open_store
from tests.browser import chromium_page, live_server, screenshot
from tests.test_vietnamese import build_site, sheet_url
from tests.vietnamese import english_in

#: Every text node (outside scripts and styles) and shown attribute of the page, the
#: language toggle (#gp-lang, whose name is "English") aside.
COLLECT = """() => {
  const out = [], skip = document.getElementById("gp-lang");
  const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest("script, style, noscript, template")) continue;
    if (skip && skip.contains(p)) continue;
    const t = n.nodeValue.replace(/\\s+/g, " ").trim();
    if (t) out.push(t);
  }
  for (const e of document.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
    if (skip && skip.contains(e)) continue;
    for (const a of ["title", "aria-label", "placeholder", "alt"]) {
      const v = e.getAttribute(a);
      if (v && v.trim()) out.push(v.trim());
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`build_site` served; a parcel, and a point inside an annual-plan project."""
    home = tmp_path_factory.mktemp("browser-vi") / "home"
    row = build_site(home)
    with open_store(home, crs="EPSG:5899") as store:
        projects = store.read(store.published("678", "annual_plan").id)
        inside = projects.geometry.iloc[0].representative_point()
        lon, lat = (float(v) for v in to_lonlat(inside.x, inside.y))
    with live_server(home) as base:
        yield base, row, (lat, lon)


class Reader:
    """Collects the page's texts step by step and says which are English."""

    def __init__(self, page):
        self.page = page
        self.english: dict[str, list[tuple[str, str]]] = {}
        self.seen: dict[str, list[str]] = {}

    def read(self, step: str) -> list[str]:
        texts = self.page.evaluate(COLLECT)
        self.seen[step] = texts
        bad = [(t, why) for t in dict.fromkeys(texts) if (why := english_in(t))]
        if bad:
            self.english[step] = bad
        return texts


def open_district(page, base: str) -> None:
    page.goto(base + "/districts/678")
    page.wait_for_function("() => window.gpMap !== undefined")
    page.wait_for_load_state("networkidle")


def search(page, q: str) -> None:
    page.fill("#gp-search-q", q)
    page.press("#gp-search-q", "Enter")


def test_the_district_page_after_its_scripts_ran_shows_no_english(site):
    base, row, (lat, lon) = site
    with chromium_page() as (page, errors, _):
        reader = Reader(page)
        open_district(page, base)
        texts = reader.read("loaded")
        # The map controls are there, titled in Vietnamese.
        assert {"Phóng to", "Thu nhỏ", "Toàn màn hình", "Vị trí của tôi",
                "Đo khoảng cách và diện tích"} <= set(texts), texts
        assert "Thửa đất địa chính" in texts  # the layer control's names

        # The panel after a look-up: numbers and the area in Vietnamese format.
        page.evaluate("(q) => GP.lookup(q)", {"district": "678", "sheet": int(row["sheet"]),
                                               "parcel": int(row["parcel"]),
                                               "commune": str(row["commune"])})
        page.locator("#gp-result .gp-dl").wait_for()
        panel = page.locator("#gp-result").inner_text()
        assert re.search(r"\d,\d m²", panel), panel
        assert not re.search(r"\d\.\d m²|\d,\d{3}\.\d", panel), panel
        assert not re.search(r"\d{4}-\d{2}-\d{2}", panel), panel
        reader.read("look-up")
        screenshot(page, "vi-lookup")

        # A key that names no parcel (a permalink's): the API's Vietnamese sentence.
        page.evaluate("() => GP.lookup({district: '678', sheet: 99999, parcel: 1})")
        page.locator("#gp-result .gp-error-detail").wait_for()
        assert "99999" in page.locator("#gp-result").inner_text()
        reader.read("not found")

        # A point outside every district.
        page.evaluate("() => GP.lookup({lat: 11.0, lon: 107.0})")
        page.locator("#gp-result .gp-empty").wait_for()
        reader.read("outside")

        # A search with choices (the demo's communes share sheet/parcel numbers).
        search(page, "tờ 1 thửa 3")
        page.locator("#gp-result button.gp-choice").first.wait_for()
        reader.read("search choices")

        # A search error.
        search(page, "a")
        page.locator("#gp-result .gp-error-detail").wait_for()
        assert "quá ngắn" in page.locator("#gp-result").inner_text()
        reader.read("search error")

        # A search with an error whose sentence has no Vietnamese: a generic one.
        page.route("**/api/search?q=zz*", lambda route: route.fulfill(
            status=400, content_type="application/json",
            body='{"error": {"message": "Something odd [where]", "message_en": '
                 '"Something odd.", "message_vi": null}}'))
        search(page, "zz top")
        page.locator("#gp-result .gp-error-detail").wait_for()
        detail = page.locator("#gp-result .gp-error-detail").inner_text()
        assert detail and "odd" not in detail and "[" not in detail
        reader.read("search error without Vietnamese")

        # The annual plan's tooltip over a project.
        page.evaluate(f"() => gpMap.setView([{lat}, {lon}], 17, {{animate: false}})")
        page.wait_for_load_state("networkidle")
        x, y = page.evaluate(
            f"() => {{ const p = gpMap.latLngToContainerPoint([{lat}, {lon}]);"
            " const r = gpMap.getContainer().getBoundingClientRect();"
            " return [p.x + r.left, p.y + r.top]; }")
        page.mouse.move(x, y)
        page.mouse.move(x + 2, y + 1)
        page.locator(".gp-tooltip").first.wait_for(timeout=5000)
        reader.read("tooltip")

        # The measure control, opened and used: a triangle, then its result popup.
        page.locator(".leaflet-control-measure").hover(position={"x": 5, "y": 5})
        page.locator(".leaflet-control-measure .js-start").click()
        reader.read("measure started")
        for dx, dy in ((-120, -60), (120, -60), (0, 100)):
            page.mouse.click(x + dx, y + dy)
            page.wait_for_timeout(150)
        results = page.locator(".leaflet-control-measure .results").inner_text()
        assert re.search(r"\d,\d+ (m²|ha)", results), results
        reader.read("measuring")
        page.locator(".leaflet-control-measure .js-finish").click()
        page.locator(".leaflet-measure-resultpopup").wait_for()
        popup = page.locator(".leaflet-measure-resultpopup").inner_text()
        assert "Đo diện tích" in popup and "Perimeter" not in popup, popup
        reader.read("measure result")
        screenshot(page, "vi-measure")
        # (the 404 and the 400s asked for above are the only failed loads)
        assert not [e for e in errors if "Failed to load resource" not in e], errors
    assert not reader.english, reader.english


@pytest.mark.parametrize("path", ["/", "/districts/678/plan/compare", "/districts/999",
                                  "/parcels/678/99999/1", "sheet"])
def test_other_public_pages_show_no_english_once_drawn(site, path):
    base, row, _ = site
    url = base + (sheet_url(row) if path == "sheet" else path)
    with chromium_page() as (page, errors, _):
        reader = Reader(page)
        page.goto(url)
        page.wait_for_load_state("networkidle")
        reader.read("loaded")
        if path == "/":
            page.wait_for_function("() => window.gpUnits !== undefined")
            # A unit's tooltip under the pointer.
            page.evaluate("() => { const l = gpUnits.getLayers()[0]; l.openTooltip("
                          "l.getBounds().getCenter()); }")
            page.locator(".leaflet-tooltip").first.wait_for()
            reader.read("unit tooltip")
        if path.endswith("compare"):
            page.wait_for_function("() => window.gpCompare && window.gpCompare.ready")
            page.evaluate("() => { gpCompare.layer.eachLayer(function (l) {"
                          " if (!window._gpOpened && l.getPopup && l.getPopup()) {"
                          " l.openPopup(); window._gpOpened = true; } }); }")
            reader.read("compare popup")
        assert not [e for e in errors if "Failed to load resource" not in e], errors
    assert not reader.english, reader.english
