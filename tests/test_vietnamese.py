"""No English on a Vietnamese public page (issue 14, item 4), through Flask's test client.

Every public page and error page is rendered in Vietnamese and its visible text (text
nodes, ``title``, ``aria-label``, ``placeholder``, ``alt``) is checked word by word
(`tests.vietnamese`), with the strings and names the page hands its scripts and the
messages of the JSON answers a page shows (look-up and search errors, a point with no
parcel). Numbers and dates are in Vietnamese format. The checker's self-test proves it
fails on English, so the check can fail. The browser side (what the page scripts write,
the map controls) is tests/test_browser_vietnamese.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import abort

from gisportal.base import seeds
from gisportal.services.demo import build_demo
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web import maps
from gisportal.web.app import create_app
from tests.vietnamese import english_in, visible_texts

#: UI strings of staff pages (planner, admin, OGC browser, jobs, accounts): not shown on a
#: resident's page. "switch" is the language toggle's own name ("English").
STAFF = ("pl_", "admin_", "ogc_", "job_", "auth_", "exp_", "role_", "login", "logout")
PLACEHOLDER = re.compile(r"\{\w+\}")
ENGLISH_NUMBER = re.compile(r"\b\d{1,3}(,\d{3})+(\.\d+)?\b|\b\d+\.\d+ ?(m²|m|ha|%)")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


# -- the checker fails on English ------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Search failed", "No parcel here", "Look-up failed", "[commune]", "Not found",
    "Click the map to look up a parcel.", "Show my location", "Measure distances and areas",
    "Zoom in", "Full screen", "Không tìm được [q]", "unknown district code '999'",
    "Plan at this point", "Cancel", "Start creating a measurement by adding points to the map",
])
def test_the_checker_flags_english(text):
    assert english_in(text), text


@pytest.mark.parametrize("text", [
    "Không tra cứu được", "Không có thửa đất tại điểm này",
    "Nhấn vào bản đồ để tra cứu thửa đất.", "Tờ số 12, thửa số 345 — Thị trấn Liên Nghĩa (24958)",
    "Quyết định số 1234/QĐ-UBND ngày 15/03/2024 của UBND tỉnh Lâm Đồng",
    "Diện tích 1.234,5 m² · 12,5 %", "VN-2000 / TM-3 107°45′ (EPSG:5899)",
    "Bản đồ đường phố (OpenStreetMap)", "Xã Đạ Huoai", "Phóng to", "Thu nhỏ",
    "Đất khu vui chơi, giải trí công cộng, sinh hoạt cộng đồng",
    "Đo khoảng cách và diện tích", "Leaflet", "Lam Dong", "gisportal",
])
def test_the_checker_passes_vietnamese(text):
    assert english_in(text) is None, (text, english_in(text))


def test_text_extraction_sees_attributes_and_skips_scripts_and_the_toggle():
    html = ('<p title="Zoom in">Xin chào</p><script>var x = "Search failed";</script>'
            '<a hreflang="en" href="?lang=en">English</a><input placeholder="Search here">'
            '<img alt="Parcel map"><span aria-label="Close">×</span>')
    assert visible_texts(html) == ["Zoom in", "Xin chào", "Search here", "Parcel map",
                                   "Close", "×"]


# -- the site ---------------------------------------------------------------------------


def build_site(home: Path):
    """Đức Trọng of the demo with an adjusted plan (two published versions to compare,
    the second under consultation); its first parcel (a row of the parcels layer)."""
    with open_store(home, crs="EPSG:5899") as store:
        build_demo(store, parcels_per_district=150, districts=["678"])
        plan = store.read(store.published("678", "plan").id)
        plan.loc[plan.index[0], "land_use"] = "DKV"  # the adjustment: one zone's use
        path = home.parent / "plan-adjusted.gpkg"
        plan.to_file(path, driver="GPKG")
        assert ingest_file(store, path, "plan", "678", publish=True,
                           consultation=True).published
        return store.read(store.published("678", "parcels").id).iloc[0]


def sheet_url(row) -> str:
    return f"/parcels/678/{int(row['sheet'])}/{int(row['parcel'])}?commune={row['commune']}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`build_site`, its app (with a 403 and a 500 of its own) and a parcel's sheet."""
    home = tmp_path_factory.mktemp("vietnamese") / "home"
    row = build_site(home)
    sheet = sheet_url(row)
    app = create_app({"home": str(home)})

    @app.get("/_test/forbidden")
    def forbidden():
        abort(403)

    @app.get("/_test/crash")
    def crash():
        raise RuntimeError("a bug, with an English message that must not show")

    yield app, sheet, row


def _english(html: str) -> list[tuple[str, str]]:
    return [(t, why) for t in visible_texts(html) if (why := english_in(t))]


def _config(html: str, element_id: str) -> dict:
    m = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html,
                  re.S)
    assert m, element_id
    return json.loads(m.group(1))


def public_pages(sheet: str) -> list[tuple[str, int]]:
    return [("/", 200), ("/districts/678", 200), ("/districts/672", 200), (sheet, 200),
            ("/districts/678/plan/compare", 200), ("/districts/999", 404),
            ("/no/such/page", 404), ("/parcels/678/99999/1", 404),
            ("/parcels/678/abc/1", 400), ("/parcels/999/1/1", 400),
            ("/districts/678/plan/compare?from=1", 400),
            ("/districts/678/plan/compare?from=999&to=998", 404),
            ("/_test/forbidden", 403), ("/_test/crash", 500),
            # The demo's planning projects (issue 15), their list and an unknown one.
            ("/projects", 200), ("/projects/678-lien-nghia-phan-khu", 200),
            ("/projects/678-lien-nghia-chi-tiet", 200), ("/projects/678-khong-co", 404),
            ("/projects/678-lien-nghia-phan-khu/compare", 200),
            ("/projects/678-khong-co/compare", 404)]


def test_public_pages_and_errors_in_vietnamese_show_no_english(site):
    app, sheet, _ = site
    client = app.test_client()  # a fresh one: no language cookie
    found = {}
    for url, status in public_pages(sheet):
        resp = client.get(url)
        assert resp.status_code == status, url
        html = resp.get_data(as_text=True)
        if bad := _english(html):
            found[url] = bad
        text = " ".join(visible_texts(html))
        assert not ENGLISH_NUMBER.search(text), (url, ENGLISH_NUMBER.search(text))
        assert not ISO_DATE.search(text), (url, ISO_DATE.search(text))
        assert 'class="alt" lang="en"' not in html, url  # no English twin
    assert not found, found


def test_the_405_page_is_vietnamese(site):
    client = site[0].test_client()  # a fresh one: no language cookie
    resp = client.post("/districts/678")
    assert resp.status_code == 405 and resp.headers["Allow"]
    assert not _english(resp.get_data(as_text=True))


def test_error_pages_say_what_went_wrong_without_debug_tags(site):
    client = site[0].test_client()  # a fresh one: no language cookie
    html = client.get("/parcels/678/99999/1").get_data(as_text=True)
    assert "không có thửa đất tờ 99999, thửa 1" in html.lower()
    assert "[district" not in html and "no parcel" not in html
    html = client.get("/districts/999").get_data(as_text=True)
    assert "Không có huyện mã 999" in html and "no district" not in html
    crash = client.get("/_test/crash").get_data(as_text=True)
    assert "RuntimeError" not in crash and "English message" not in crash
    # English by the toggle: the English half, still without the tag.
    html = client.get("/parcels/678/99999/1?lang=en").get_data(as_text=True)
    assert "No parcel sheet 99999, parcel 1" in html and "[district" not in html
    assert "no district with code 999" in client.get("/districts/999?lang=en").get_data(
        as_text=True)


def test_the_strings_and_names_handed_to_the_page_scripts_are_vietnamese(site):
    client = site[0].test_client()  # a fresh one: no language cookie
    html = client.get("/districts/678").get_data(as_text=True)
    cfg = _config(html, "gp-config")
    assert cfg["lang"] == "vi"
    bad = {k: v[0] for k, v in cfg["strings"].items()
           if not k.startswith(STAFF) and k != "switch"
           and english_in(PLACEHOLDER.sub("", v[0]))}
    assert not bad, bad
    bad = {c: v[1] for c, v in cfg["land_use"].items() if english_in(v[1])}
    assert not bad, bad
    conf = cfg["config"]
    names = [conf["own_base"]["name"], *(b["name"] for b in conf["basemaps"]),
             *(t["label"]["vi"] for t in conf["tooltips"].values())]
    assert not [n for n in names if english_in(n)], names
    province = _config(client.get("/").get_data(as_text=True), "gp-config")
    assert not [s["label"] for s in province["config"]["statuses"] if english_in(s["label"])]


def test_the_map_controls_are_titled_in_vietnamese(site):
    """The plugins' titles and leaflet-measure's words are in the page's script: the
    Vietnamese ones on a Vietnamese page, none of the English ones."""
    client = site[0].test_client()  # a fresh one: no language cookie
    html = client.get("/districts/678").get_data(as_text=True)
    vi, en = maps.CONTROL_WORDS["vi"], maps.CONTROL_WORDS["en"]
    for english in ("Full Screen", "Full screen", "Exit full screen", "Show my location",
                    "Toàn màn hình / Full screen"):
        assert english not in html, english
    assert json.dumps(vi["fullscreen"]) in html or vi["fullscreen"] in html
    assert "GP.localizeMap(" in html and '"decPoint": ","' in html
    words = [vi["fullscreen"], vi["fullscreen_exit"], vi["locate_error"],
             *vi["locate"].values(), *vi["phrases"].values()]
    assert not [w for w in words if english_in(PLACEHOLDER.sub("", w))], words
    assert set(vi["phrases"]) == set(CONTROL_PHRASES_EN)
    assert en["phrases"] == {}


#: leaflet-measure 2.1.7's English phrases (its "en" locale) that it draws.
CONTROL_PHRASES_EN = (
    "Measure", "Measure distances and areas", "Create a new measurement",
    "Start creating a measurement by adding points to the map", "Finish measurement",
    "Last point", "Area", "Perimeter", "Point location", "Area measurement",
    "Linear measurement", "Path distance", "Center on this area", "Center on this line",
    "Center on this location", "Cancel", "Delete")


def test_the_json_messages_a_page_shows_are_vietnamese(site):
    client = site[0].test_client()
    errors = {
        "/api/lookup?lat=abc&lon=108.3": 400,
        "/api/lookup?lat=95&lon=108.3": 400,
        "/api/lookup?district=678&sheet=99999&parcel=1": 404,
        "/api/lookup?district=999&sheet=1&parcel=1": 400,
        "/api/lookup?district=678&sheet=x&parcel=1": 400,
        "/api/lookup?x=1312345&y=530000&zone=1234": 400,
        "/api/lookup?x=abc&y=530000": 400,
        "/api/search?q=a": 400,
        "/api/search?q=t%E1%BB%9D%2099999%20th%E1%BB%ADa%201&district=678": 404,
        "/api/search?q=12/&district=678": 400,
    }
    found = {}
    for url, status in errors.items():
        resp = client.get(url)
        assert resp.status_code == status, (url, resp.get_data(as_text=True))
        err = resp.get_json()["error"]
        message = err["message_vi"]
        assert message, (url, err)
        if why := english_in(message):
            found[url] = (message, why)
        assert "[" not in message, message
    assert not found, found
    answer = client.get("/api/lookup?lat=11.0&lon=107.0").get_json()  # outside
    assert answer["parcel"] is None and not english_in(answer["message"])


def test_land_use_names_are_those_of_thong_tu_08_2024():
    cat = seeds.land_use_catalogue()
    assert cat.get("DKV").name_vi == ("Đất khu vui chơi, giải trí công cộng, sinh hoạt "
                                      "cộng đồng")
    assert cat.get("DGT").name_vi == "Đất công trình giao thông"
    assert cat.get("NTD").name_vi == ("Đất nghĩa trang, nhà tang lễ, cơ sở hỏa táng; đất cơ "
                                      "sở lưu giữ tro cốt")
    for lu in cat:
        # No editorial brackets, no dangling separators, no English.
        assert not re.search(r"\(\s*[,;]|\(\s*\)|\((nước|công trình|cơ sở)\)", lu.name_vi), lu
        assert english_in(lu.name_vi) is None, lu


def test_staff_pages_keep_their_english_twin(site):
    client = site[0].test_client()  # a fresh one: no language cookie
    html = client.get("/login").get_data(as_text=True)
    assert '<small class="alt" lang="en">' in html


def test_english_by_the_toggle(site):
    client = site[0].test_client()  # a fresh one: no language cookie
    html = client.get("/districts/678?lang=en").get_data(as_text=True)
    assert "Click the map to look up a parcel." in html
    assert 'class="alt" lang="vi"' not in html
    assert "Show my location" in html and "Vị trí của tôi" not in html
