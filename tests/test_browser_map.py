"""The district map in a real browser: base maps, labels, hatchings, legend.

A live server over a data home where the demo district 678 is published (2 000
parcels, so a z18 view is full of parcels); Debian's Chromium through
``tests/browser.py``. Two modes:

* as shipped (no base map enabled): the page draws our own base (paper, not Leaflet's
  grey), names, codes and parcel numbers that never overlap, hatched fills where
  official colours repeat, and not one request leaves 127.0.0.1;
* one base map enabled (OpenStreetMap, answered by a local route, no real network):
  the switcher lists it beside our own base, the page asks only that host, and the
  choice is remembered across a reload.

Screenshots of each zoom, desktop and phone, go to ``tests/artifacts/``.
"""

from __future__ import annotations

import io
import re

import pytest

from gisportal.base.crs import to_lonlat
from gisportal.services.demo import build_demo
from gisportal.store import open_store
from gisportal.web import maps
from tests.browser import chromium_page, live_server, outside_requests, screenshot

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = tmp_path_factory.mktemp("map-home")
    store = open_store(home, crs="EPSG:5899")
    build_demo(store, parcels_per_district=2000, districts=["678"])
    parcels = store.read(store.published("678", "parcels").id)
    plan = store.read(store.published("678", "plan").id)
    store.close()
    with live_server(home) as base:
        yield base, parcels, plan


def _lonlat(geom) -> tuple[float, float]:
    pt = geom.representative_point()
    lon, lat = (float(v) for v in to_lonlat(pt.x, pt.y))
    return lat, lon


def _settle(page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(250)  # the label pass runs on the next animation frame
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _view(page, lat: float, lon: float, z: int) -> None:
    page.evaluate("([lat, lon, z]) => window.gpMap.setView([lat, lon], z, {animate: false})",
                  [lat, lon, z])
    _settle(page)


def _drawn(page) -> list[dict]:
    return page.evaluate("() => window.gpLabels.drawn")


def _assert_no_overlap(labels: list[dict]) -> None:
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert (a["x1"] <= b["x0"] or b["x1"] <= a["x0"] or a["y1"] <= b["y0"]
                    or b["y1"] <= a["y0"]), (a, b)


def _pixels(png: bytes) -> list[tuple[int, int, int]]:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    return list(img.getdata())


def _tile_pixels(page, layer_id: str, lat: float, lon: float, half: int = 8) -> list[list[int]]:
    """RGB of a (2·half)² square of the layer's own tile canvas around (lat, lon):
    the fill as drawn, without labels or other layers on it."""
    return page.evaluate("""([id, lat, lon, half]) => {
        const layer = window[GP.config.config.layers[id]], m = window.gpMap;
        const z = m.getZoom(), p = m.project([lat, lon], z).floor();
        const key = Math.floor(p.x / 256) + ':' + Math.floor(p.y / 256) + ':' + z;
        const tile = layer._tiles[key];
        if (!tile) { return null; }
        const c = tile.el, r = c.width / 256;
        const x = Math.round((p.x % 256) * r), y = Math.round((p.y % 256) * r);
        const d = c.getContext('2d').getImageData(x - half, y - half, 2 * half, 2 * half).data;
        const out = [];
        for (let i = 0; i < d.length; i += 4) { out.push([d[i], d[i + 1], d[i + 2]]); }
        return out;
    }""", [layer_id, lat, lon, half])


def _zone(plan, code: str):
    """The largest plan zone of `code` (room for a sample away from its edges)."""
    zones = plan[plan["land_use"] == code]
    return zones.loc[zones.geometry.area.idxmax()].geometry


def test_offline_base_labels_hatching_and_legend(live):
    base, parcels, plan = live
    with chromium_page() as (page, errors, requests):
        page.set_viewport_size(DESKTOP)
        page.goto(base + "/districts/678")
        page.wait_for_function("() => document.documentElement.dataset.gpFirstPaint")
        _settle(page)
        # Our own base is chosen (nothing else is configured) and listed in the switcher.
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        radios = page.locator(".leaflet-control-layers-base label")
        assert radios.count() == 1 and "Nền riêng" in radios.first.inner_text()
        # Paper, not Leaflet's grey, where there is no data (the map's corner).
        box = page.locator(".leaflet-container").bounding_box()
        shot = page.screenshot(clip={"x": box["x"] + box["width"] - 80,
                                     "y": box["y"] + box["height"] - 80,
                                     "width": 20, "height": 20})
        px = _pixels(shot)
        assert px.count((243, 240, 232)) >= 0.8 * len(px), set(px)
        # District zoom: the commune names, none over another.
        labels = _drawn(page)
        communes = [d["text"] for d in labels if d["kind"] == "commune"]
        assert len(communes) >= 8 and "Thị trấn Liên Nghĩa" in communes, labels
        _assert_no_overlap(labels)
        # Legend: the district's codes only (its plan's), all in view at this zoom.
        legend = page.locator("#gp-legend li[data-code]")
        codes = sorted(legend.evaluate_all("els => els.map(e => e.dataset.code)"))
        assert codes == sorted({c for c in plan["land_use"].unique()})
        assert page.locator("#gp-legend").get_attribute("data-in-view") == str(len(codes))
        screenshot(page, "map-offline-district-desktop")

        # Codes that share a colour (TMD and SKN: #FAAAA0) are hatched, each its own way;
        # a code with a colour of its own (CLN) is a plain fill. Sampled on the plan
        # layer's own canvas, inside the zone.
        hatched = {}
        for code in ("TMD", "SKN", "CLN"):
            lat, lon = _lonlat(_zone(plan, code))
            _view(page, lat, lon, 17)
            px = _tile_pixels(page, "plan", lat, lon)
            assert px, code
            hatched[code] = {tuple(p) for p in px}
        assert len(hatched["CLN"]) <= 2, hatched["CLN"]
        assert len(hatched["TMD"]) >= 3 and len(hatched["SKN"]) >= 3
        assert hatched["TMD"] != hatched["SKN"]
        # The legend's swatches carry the same hatchings.
        sw = page.evaluate("""() => ['TMD', 'SKN', 'CLN'].map(c => {
            const el = document.querySelector('#gp-legend li[data-code="' + c + '"] .sw');
            if (el.tagName !== 'CANVAS') { return [c, 1]; }
            const d = el.getContext('2d').getImageData(0, 0, el.width, el.height).data;
            const seen = new Set();
            for (let i = 0; i < d.length; i += 4) {
                seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]);
            }
            return [c, seen.size];
        })""")
        assert dict(sw)["CLN"] == 1 and dict(sw)["TMD"] >= 3 and dict(sw)["SKN"] >= 3, sw

        # z15: land-use codes inside the plan zones; the legend narrows to the view.
        areas = parcels.geometry.area
        row = parcels.loc[(areas - areas.median()).abs().idxmin()]
        lat, lon = _lonlat(row.geometry)
        _view(page, lat, lon, 15)
        labels = _drawn(page)
        plan_labels = [d["text"] for d in labels if d["kind"] == "plan"]
        assert plan_labels and set(plan_labels) <= set(codes), labels
        _assert_no_overlap(labels)
        in_view = int(page.locator("#gp-legend").get_attribute("data-in-view"))
        assert 1 <= in_view < len(codes)
        visible = legend.evaluate_all("els => els.filter(e => !e.hidden).map(e => e.dataset.code)")
        assert set(plan_labels) <= set(visible)
        screenshot(page, "map-offline-z15-desktop")

        # z18: parcel numbers with their sheet, only real ones, never overlapping.
        _view(page, lat, lon, 18)
        labels = _drawn(page)
        numbers = [d["text"].split("\n") for d in labels if d["kind"] == "parcels"]
        assert len(numbers) >= 5, labels
        known = {(str(s), str(p)) for s, p in zip(parcels["sheet"], parcels["parcel"],
                                                  strict=True)}
        for lines in numbers:
            if len(lines) == 2:
                assert (lines[1].replace("tờ ", ""), lines[0]) in known, lines
            else:
                assert lines[0] in {p for _, p in known}
        assert str(row["parcel"]) in {lines[0] for lines in numbers}
        _assert_no_overlap(labels)
        screenshot(page, "map-offline-z18-desktop")

        # Phone: the same, in a narrow viewport.
        page.set_viewport_size(PHONE)
        page.evaluate("() => window.gpMap.invalidateSize()")
        for z, name in ((11, "district"), (15, "z15"), (18, "z18")):
            _view(page, lat, lon, z)
            labels = _drawn(page)
            assert labels, z
            _assert_no_overlap(labels)
            screenshot(page, f"map-offline-{name}-phone")
    assert errors == [], errors
    assert outside_requests(base, requests) == []


PNG_TILE: bytes | None = None


def _png() -> bytes:
    """A 256² tile of streets-map beige with a blue line, as the routed tile server's."""
    global PNG_TILE
    if PNG_TILE is None:
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (256, 256), (242, 239, 233))
        ImageDraw.Draw(img).line([(0, 128), (256, 128)], fill=(120, 160, 220), width=6)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        PNG_TILE = buf.getvalue()
    return PNG_TILE


def test_a_configured_base_map_is_listed_requested_and_remembered(live, monkeypatch):
    base, parcels, _ = live
    comp = maps.composition("district")
    osm = next(b for b in comp["basemaps"] if b["id"] == "osm")
    enabled = {**comp, "basemaps": [{**osm, "enabled": True, "show": True},
                                    *[b for b in comp["basemaps"] if b["id"] != "osm"]]}
    original = maps.composition
    monkeypatch.setattr(maps, "composition",
                        lambda name: enabled if name == "district" else original(name))
    areas = parcels.geometry.area
    lat, lon = _lonlat(parcels.loc[(areas - areas.median()).abs().idxmin()].geometry)
    with chromium_page() as (page, errors, requests):
        served: list[str] = []

        def tile(route) -> None:
            served.append(route.request.url)
            route.fulfill(status=200, content_type="image/png", body=_png())

        page.route("https://tile.openstreetmap.org/**", tile)
        page.set_viewport_size(DESKTOP)
        page.goto(base + f"/districts/678#15/{lat:.6f}/{lon:.6f}")
        page.wait_for_function("() => document.documentElement.dataset.gpFirstPaint")
        _settle(page)
        radios = page.locator(".leaflet-control-layers-base label")
        names = radios.all_inner_texts()
        assert len(names) == 2 and "OpenStreetMap" in names[1] and "Nền riêng" in names[0]
        # Shown at load ("show": true), its tiles asked from its host and nowhere else.
        assert page.evaluate("document.documentElement.dataset.basemap") == "osm"
        assert served
        outside = outside_requests(base, requests)
        assert outside and all(u.startswith("https://tile.openstreetmap.org/") for u in outside)
        assert page.locator(".leaflet-control-attribution").inner_text().count("OpenStreetMap")
        # The labels are drawn over it all the same.
        assert any(d["kind"] == "plan" for d in _drawn(page))
        screenshot(page, "map-basemap-osm-z15-desktop")
        # Choose our own base: remembered across a reload.
        radios.nth(0).click()
        _settle(page)
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        assert page.evaluate("localStorage.getItem('gp.basemap')") == "own"
        before = len(served)
        page.reload()
        page.wait_for_function("() => document.documentElement.dataset.gpFirstPaint")
        _settle(page)
        assert page.evaluate("document.documentElement.dataset.basemap") == "own"
        assert len(served) == before  # no tile asked from the host it is not showing
        page.set_viewport_size(PHONE)
        radios.nth(1).click()
        _settle(page)
        assert page.evaluate("localStorage.getItem('gp.basemap')") == "osm"
        screenshot(page, "map-basemap-osm-z15-phone")
    assert errors == [], errors


#: A number as a Vietnamese reader writes it: thousands grouped by dots, decimal comma.
VI_NUMBER = re.compile(r"\d{1,3}(?:\.\d{3})*(?:,\d+)?")
EN_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})*(?:\.\d+)?")
#: leaflet-measure's point: 11° 42' 15,37" B / 108° 20' 10,00" Đ (vi).
DMS = re.compile(r"(\d+)° (\d+)' ([\d.,]+)\" ([A-ZĐ])")


def _measure(page, offsets) -> dict:
    """Use the measure control: start, click each (dx, dy) from the map's centre, read
    the control's results, finish, read the result popup. Also the control's own
    model (its numbers before formatting)."""
    box = page.locator(".leaflet-container").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.locator(".leaflet-control-measure").hover(position={"x": 5, "y": 5})
    page.locator(".leaflet-control-measure .js-start").click()
    for dx, dy in offsets:
        page.mouse.click(cx + dx, cy + dy)
        page.wait_for_timeout(150)
    results = page.locator(".leaflet-control-measure .results").inner_text()
    model = page.evaluate("""() => {
        const k = Object.keys(window).find(n => window[n] instanceof L.Control.Measure);
        const m = window[k]._resultsModel;
        return {area: m.area, length: m.length, lat: m.lastCoord.dd.y, lon: m.lastCoord.dd.x};
    }""")
    page.locator(".leaflet-control-measure .js-finish").click()
    popup = page.locator(".leaflet-measure-resultpopup").last
    popup.wait_for()
    out = {"results": results, "popup": popup.inner_text(), **model}
    page.locator(".leaflet-measure-resultpopup .js-deletemarkup").last.click()
    return out


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d[\d.,]*\d|\d", text)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_measure_control_numbers_in_the_page_language(live, lang):
    """Every number leaflet-measure shows — a point's coordinates (degrees, minutes,
    seconds and decimal degrees), lengths, areas — as `gisportal.base.formats` writes
    them: ``460.800,3 m² (46,08 ha)``, ``11,703456 / 108,336111``, hemispheres B/Đ in
    Vietnamese; ``460,800.3 m²``, N/E in English."""
    from gisportal.base import formats

    base, parcels, _ = live
    areas = parcels.geometry.area
    lat, lon = _lonlat(parcels.loc[(areas - areas.median()).abs().idxmin()].geometry)
    number = VI_NUMBER if lang == "vi" else EN_NUMBER
    north, east = ("B", "Đ") if lang == "vi" else ("N", "E")
    with chromium_page() as (page, errors, _requests):
        page.set_viewport_size(DESKTOP)
        page.goto(base + f"/districts/678?lang={lang}#15/{lat:.6f}/{lon:.6f}")
        page.wait_for_function("() => document.documentElement.dataset.gpFirstPaint")
        _settle(page)
        # An area of about 0.5 km² at z15: thousands in the square metres.
        shape = _measure(page, ((-100, -100), (100, -100), (100, 100), (-100, 100)))
        area = formats.number(shape["area"], 1, lang) + " m²"
        hectares = formats.number(shape["area"] / 10_000, 2, lang) + " ha"
        assert shape["area"] > 100_000
        assert f"{area} ({hectares})" in shape["results"], shape["results"]
        assert f"{area} ({hectares})" in shape["popup"], shape["popup"]
        # The path so far (the popup's perimeter closes it: a number checked below).
        path = (f'{formats.number(shape["length"], 1, lang)} m '
                f'({formats.number(shape["length"] / 1000, 2, lang)} km)')
        assert path in shape["results"], shape["results"]
        # The last point while measuring, and a point measured alone.
        point = _measure(page, ((30, 40),))
        for text, (plat, plon) in ((shape["results"], (shape["lat"], shape["lon"])),
                                   (point["popup"], (point["lat"], point["lon"]))):
            dd = (f"{formats.number(plat, 6, lang, grouping=False)} / "
                  f"{formats.number(plon, 6, lang, grouping=False)}")
            assert dd in text, (dd, text)
            dms = DMS.findall(text)
            assert [h for *_, h in dms] == [north, east], text
            for (d, m, sec, _h), value in zip(dms, (plat, plon), strict=True):
                seconds = float(sec.replace(",", ".")) if lang == "vi" else float(sec)
                assert abs(int(d) + int(m) / 60 + seconds / 3600 - value) < 1e-5, text
        # No number of another convention anywhere in what the control showed.
        for text in (shape["results"], shape["popup"], point["popup"]):
            for n in _numbers(text):
                assert number.fullmatch(n), (n, text)
        screenshot(page, f"map-measure-{lang}")
    assert errors == [], errors
