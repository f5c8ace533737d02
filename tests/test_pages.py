"""The resident pages through Flask's test client: province and district maps.

The district page must weigh the same whatever the number of parcels (layers go out
as vector tiles), load nothing from another host, show the official land-use colours,
and switch to English with ``?lang=en``.
"""

from __future__ import annotations

import re

import pytest

from gisportal.base import seeds
from gisportal.services import workflow
from gisportal.services.demo import build_demo
from gisportal.store import open_store
from gisportal.web import maps
from gisportal.web.app import create_app

ASSET_URL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def _home(tmp_path_factory, name: str, parcels: int):
    home = tmp_path_factory.mktemp(name)
    store = open_store(home, crs="EPSG:5899")
    build_demo(store, parcels_per_district=parcels, districts=["678"])
    store.close()
    return home


@pytest.fixture(scope="module")
def home200(tmp_path_factory):
    return _home(tmp_path_factory, "home200", 200)


@pytest.fixture
def client(home200):
    return create_app({"home": str(home200)}).test_client()


def test_pages_answer_and_load_nothing_from_elsewhere(client):
    for url in ("/", "/districts/678", "/districts/672", "/?lang=en",
                "/districts/678?lang=en"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        html = resp.get_data(as_text=True)
        assert not ASSET_URL.search(html), (url, ASSET_URL.search(html))
        assert "/static/vendor/leaflet/leaflet.js" in html
        assert len(resp.data) < 500_000


def test_province_map_colours_districts_by_plan_status(client):
    """One plan-status vocabulary for residents: approved with its decision, under
    appraisal, or none; the cadastre's progress is not mixed into it."""
    html = client.get("/").get_data(as_text=True)
    colours = {s["id"]: s["color"] for s in maps.composition("province")["plan_statuses"]}
    assert set(colours) == {"approved", "under_appraisal", "none"}
    # Đức Trọng has a published boundary: its outline is embedded as GeoJSON.
    assert '"code": "678"' in html
    assert '"type": "Polygon"' in html or '"type": "MultiPolygon"' in html
    status = workflow.district_statuses(get_store_of(client))
    assert colours[status["678"].public_status] in html
    for d in seeds.districts():
        assert f'href="/districts/{d.code}"' in html
    legend = html.split('id="gp-status-legend"')[1].split("</ul>")[0]
    for label in ("Đã phê duyệt (có quyết định)", "Đang thẩm định, chưa phê duyệt",
                  "Chưa có thông tin quy hoạch"):
        assert label in legend
    assert "Đã số hóa" not in legend and "Đang chỉnh lý" not in legend


def get_store_of(client):
    from gisportal.web import get_store

    with client.application.app_context():
        return get_store()


def test_district_page_has_tiles_controls_and_official_legend(client):
    html = client.get("/districts/678").get_data(as_text=True)
    for kind in ("parcels", "plan", "boundary"):
        assert f"/tiles/678/{kind}/{{z}}/{{x}}/{{y}}.pbf" in html
    for asset in ("leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js",
                  "leaflet.fullscreen/Control.FullScreen.js",
                  "leaflet-measure/leaflet-measure.csp.min.js",
                  "leaflet.locatecontrol/L.Control.Locate.min.js"):
        assert f"/static/vendor/{asset}" in html
    assert re.search(r'data-code="ODT" data-color="#FFA0FF"', html)
    assert 'data-code="CLN" data-color="#FFD2A0"' in html
    assert 'id="gp-opacity"' in html
    assert "Đất ở tại đô thị" in html and "Chú giải" in html


def test_vendored_assets_are_served(client):
    html = client.get("/districts/678").get_data(as_text=True)
    for url in set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html)):
        resp = client.get(url)
        assert resp.status_code == 200, url
        resp.close()


def test_district_page_weighs_the_same_for_10x_the_parcels(client, tmp_path_factory):
    small = len(client.get("/districts/678").data)
    home = _home(tmp_path_factory, "home2000", 2000)
    big = len(create_app({"home": str(home)}).test_client().get("/districts/678").data)
    assert abs(big - small) <= 0.01 * small, (small, big)


def test_english_switch_and_cookie(client):
    vi = client.get("/districts/678?lang=vi").get_data(as_text=True)
    assert '<html lang="vi">' in vi and "Chú giải quy hoạch" in vi
    en = client.get("/districts/678?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in en and "Plan legend" in en and "Urban residential land" in en
    # The choice is remembered in a cookie.
    again = client.get("/districts/678").get_data(as_text=True)
    assert '<html lang="en">' in again
    assert "Status of the 2021" not in again  # (province title is not on this page)
    assert "Plan status" in client.get("/").get_data(as_text=True)
    assert "Tình trạng quy hoạch" in client.get("/?lang=vi").get_data(as_text=True)


def test_unknown_district_is_the_vietnamese_404(client):
    resp = client.get("/districts/999")
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert "Không tìm thấy" in html and "999" in html
    assert not ASSET_URL.search(html)


def test_district_with_nothing_published_still_opens(client):
    html = client.get("/districts/683?lang=vi").get_data(as_text=True)
    assert "chưa công bố dữ liệu" in html
    assert "/tiles/683/" not in html


def test_a_basemap_is_optional_and_off_by_default(client, monkeypatch):
    comp = maps.composition("district")
    assert all(not b.get("enabled") for b in comp["basemaps"])
    html = client.get("/districts/678").get_data(as_text=True)
    assert "tile.openstreetmap.org" not in html
    enabled = {**comp, "basemaps": [{**comp["basemaps"][0], "enabled": True}]}
    original = maps.composition
    monkeypatch.setattr(maps, "composition",
                        lambda name: enabled if name == "district" else original(name))
    html = client.get("/districts/678").get_data(as_text=True)
    # Listed in the layer control (off until ticked), never as a src/href asset.
    assert "tile.openstreetmap.org" in html
    assert not ASSET_URL.search(html)


def test_page_script_never_parses_api_text_as_html():
    from pathlib import Path

    import gisportal

    scripts = sorted((Path(gisportal.__file__).parent / "static" / "js").rglob("*.js"))
    assert len(scripts) >= 5
    for path in scripts:
        js = path.read_text()
        code = re.sub(r"/\*.*?\*/", "", js, flags=re.S)  # comments may name what is avoided
        assert ".innerHTML" not in code and "insertAdjacentHTML" not in code, path.name
    assert "textContent" in (scripts[0].parent / "gp" / "core.js").read_text()


def test_district_page_links_the_decision_and_what_the_adjustment_changed(tmp_path):
    """The district page says the plan's status in the province legend's words, links
    the signed decision (PDF) and, once an adjustment replaced a plan, the compare page."""
    import io

    import geopandas as gpd
    import shapely

    from gisportal.services.decisions import attach_decision
    from gisportal.services.ingest import ingest_file
    from tests.conftest import DUC_TRONG_XY
    from tests.test_decisions import PDF

    home = tmp_path / "home"
    x0, y0 = DUC_TRONG_XY
    with open_store(home, crs="EPSG:5899") as store:
        ids = []
        for n, code in enumerate(("ODT", "CLN")):
            plan = gpd.GeoDataFrame({"MaLoaiDat": [code]}, geometry=[shapely.box(
                x0, y0, x0 + 500 + n, y0 + 500)], crs="EPSG:5899")
            plan.to_file(tmp_path / f"plan{n}.gpkg", driver="GPKG")
            v = ingest_file(store, tmp_path / f"plan{n}.gpkg", "plan", "678",
                            consultation=True).version
            attach_decision(store, v.id, number=f"{1234 + n}/QĐ-UBND", date="2023-06-30",
                            authority="UBND tỉnh Lâm Đồng", pdf=io.BytesIO(PDF),
                            pdf_name="qd.pdf", home=home)
            workflow.publish(store, v.id, "test")
            ids.append(v.id)
    client = create_app({"home": str(home)}).test_client()
    html = client.get("/districts/678").get_data(as_text=True)
    block = html.split('id="gp-plan-status"')[1].split("</p>")[0]
    assert 'data-status="approved"' in html and "Đã phê duyệt (có quyết định)" in block
    assert "1235/QĐ-UBND" in block and "30/06/2023" in block
    pdf = block.split('id="gp-decision-pdf"')[0].rsplit('href="', 1)[1].split('"')[0]
    resp = client.get(pdf)
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")
    compare = block.split('id="gp-compare-link"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert compare == "/districts/678/plan/compare"
    assert client.get(compare).status_code == 200
    # Before any adjustment there is nothing to compare: no link.
    other = create_app({"home": str(tmp_path / "empty")}).test_client()
    html = other.get("/districts/678").get_data(as_text=True)
    assert 'id="gp-compare-link"' not in html and 'id="gp-plan-status"' in html
