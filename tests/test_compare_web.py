"""The public comparison page and its API, over real versions and real HTTP.

Residents see published and superseded versions only: a draft answers exactly as an id
that does not exist. Every bad input is a 400/404 with a message, never a 500.
"""

from __future__ import annotations

import re

import geopandas as gpd
import pytest
import shapely

from gisportal.base import seeds
from gisportal.base.crs import to_lonlat
from gisportal.outputs.compare import cached_comparison
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web import compare as compare_web
from gisportal.web.app import create_app
from tests.browser import chromium_page, live_server, outside_requests, screenshot
from tests.conftest import write_shapefile_zip
from tests.test_compare import OWNERS, PLAN_V1, X0, Y0, parcels_v1, parcels_v2, plan_frame

ASSET_URL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
HOSTILE = '<img src=x onerror="window.__pwned=1">Xã Hiệp An'


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """678 parcels: v1 published then superseded by v2, a draft v3; 678 plan published
    once; 672 parcels published; a boundary with a hostile commune name."""
    tmp = tmp_path_factory.mktemp("compare-web")
    home = tmp / "home"
    store = open_store(home, crs="EPSG:5899")

    def parcels(gdf, name, district="678"):
        v = ingest_file(store, write_shapefile_zip(gdf, tmp / f"{name}.zip"), "parcels",
                        district).version
        return v

    v1 = parcels(parcels_v1(), "v1")
    store.publish(v1.id, by="t")
    v2 = parcels(parcels_v2(), "v2")
    store.publish(v2.id, by="t")
    store.update_meta(v2.id, {"decision": {"number": "88/QĐ-UBND", "date": "2024-03-01",
                                           "authority": "UBND tỉnh Lâm Đồng"}})
    draft = parcels(parcels_v1(), "v3")
    other = parcels(parcels_v1(), "other", "672")
    store.publish(other.id, by="t")
    plan = store.add_version("678", "plan", plan_frame(PLAN_V1), source_name="q.gpkg",
                             source_sha256="0", created_by="t")
    store.publish(plan.id, by="t")
    area = shapely.box(X0 - 100, Y0 - 100, X0 + 400, Y0 + 400)
    boundary = gpd.GeoDataFrame({"level": ["district", "commune"], "code": ["678", "24778"],
                                 "name": ["Huyện Đức Trọng", HOSTILE]},
                                geometry=[area, area], crs="EPSG:5899")
    b = store.add_version("678", "boundary", boundary, source_name="b.gpkg",
                          source_sha256="0", created_by="t")
    store.publish(b.id, by="t")
    store.close()
    return {"home": home, "v1": v1.id, "v2": v2.id, "draft": draft.id, "other": other.id,
            "plan": plan.id}


@pytest.fixture
def client(site):
    return create_app({"home": str(site["home"])}).test_client()


def api(site, **extra):
    query = {"district": "678", "kind": "parcels", "from": site["v1"], "to": site["v2"],
             **extra}
    return "/api/compare?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_default_page_compares_published_with_previously_published(client, site):
    r = client.get("/districts/678/parcels/compare")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "So sánh hai phiên bản" in page and "Thửa đất địa chính" in page
    # the versions, the decision attached after publishing, and the version picker
    assert f"Phiên bản {site['v1']} — đã được thay thế" in page
    assert f"Phiên bản {site['v2']} — đang công bố — 88/QĐ-UBND ngày 01/03/2024" in page
    assert f'<option value="{site["draft"]}"' not in page  # drafts are not public
    counts = dict(re.findall(r'<tr data-type="(\w+)"[^>]*>.*?<td class="num">(\d+)</td>',
                             page))
    assert counts == {"added": "3", "removed": "2", "use_changed": "5", "reshaped": "4",
                      "renumbered": "2", "unchanged": "47"}
    # m² per code, Vietnamese number format, official colour of the code
    tmd = re.search(r'<tr data-code="TMD".*?</tr>', page, re.S).group(0)
    assert seeds.land_use_catalogue().color("TMD") in tmd
    assert "+2.500,0" in tmd and "Đất thương mại, dịch vụ" in tmd
    assert re.search(r'<tr data-code="ONT\+CLN"', page)
    # the map: local assets only, the changes come from the API, not the page
    assert "/static/vendor/leaflet/leaflet.js" in page and "/static/js/compare.js" in page
    assert not ASSET_URL.search(page)
    # (the page's JSON config escapes "&" as \u0026)
    assert f"/api/compare?district=678\\u0026kind=parcels\\u0026from={site['v1']}" in page
    assert '"total": 16' in page
    for name in OWNERS:
        assert name not in page
    # the commune outlines for orientation: their (hostile) names go out escaped, as
    # folium's tooltip writes them as HTML
    assert "\\u0026lt;img src=x onerror=" in page  # "&lt;img…", as JSON in the script
    assert "<img src=x" not in page


def test_page_embeds_no_changed_feature(client, site):
    page = client.get(f"/districts/678/parcels/compare?from={site['v1']}"
                      f"&to={site['v2']}").get_data(as_text=True)
    # the reshaped parcels' coordinates are served by the API, never in the page
    geo = client.get(api(site)).get_json()["features"]["features"]
    lon = geo[0]["geometry"]["coordinates"][0][0][0]
    assert f"{lon}" not in page
    assert len(page) < 200_000


def test_page_in_english(client, site):
    page = client.get(f"/districts/678/parcels/compare?from={site['v1']}&to={site['v2']}"
                      "&lang=en").get_data(as_text=True)
    assert "Compare two versions" in page and "Land use changed" in page
    assert "+2,500.0" in page and "Commercial and service land" in page


def test_api_answers_summary_features_and_page(client, site):
    r = client.get(api(site))
    assert r.status_code == 200
    doc = r.get_json()
    assert set(doc) == {"summary", "features", "page"}
    s = doc["summary"]
    assert {"district", "kind", "from", "to", "counts", "changes", "areas", "matched",
            "parameters", "changed_features", "total_area_m2"} <= set(s)
    assert s["counts"]["renumbered"] == 2 and s["to"]["decision"]["number"] == "88/QĐ-UBND"
    assert doc["page"] == {"total": 16, "offset": 0, "limit": compare_web.PAGE_LIMIT,
                           "returned": 16, "bbox": None, "complete": True}
    assert doc["features"]["type"] == "FeatureCollection"
    assert len(doc["features"]["features"]) == 16
    assert not any(name in r.get_data(as_text=True) for name in OWNERS)
    page = client.get(api(site, limit=5, offset=5)).get_json()["page"]
    assert page["returned"] == 5 and page["total"] == 16 and not page["complete"]
    assert client.get("/api/compare/summary?district=678&kind=parcels"
                      f"&from={site['v1']}&to={site['v2']}").get_json() == s
    # without from/to: the default pair
    assert client.get("/api/compare/summary?district=678&kind=parcels").get_json() == s


def test_api_bbox_returns_the_changes_in_view(client, site):
    # the reshaped parcels 1 and 2 are in the first 40 m east of the grid's corner
    lon0, lat0 = to_lonlat(X0 - 1, Y0 - 1)
    lon1, lat1 = to_lonlat(X0 + 39, Y0 + 10)
    doc = client.get(api(site, bbox=f"{lon0},{lat0},{lon1},{lat1}")).get_json()
    kinds = sorted(f["properties"]["type"] for f in doc["features"]["features"])
    assert kinds == ["reshaped", "reshaped"] and doc["page"]["total"] == 2
    far = client.get(api(site, bbox="105,10,105.1,10.1")).get_json()
    assert far["page"]["total"] == 0 and far["features"]["features"] == []


def test_only_one_published_version_gets_a_friendly_page(client):
    r = client.get("/districts/678/plan/compare")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert 'id="gp-compare-nothing"' in page and "Chưa có hai phiên bản" in page
    a = client.get("/api/compare?district=678&kind=plan")
    assert a.status_code == 404 and a.get_json()["error"]["code"] == "COMPARE-NOTHING"
    assert client.get("/districts/673/plan/compare").status_code == 200  # nothing at all


def test_a_draft_is_as_absent_as_an_unknown_id(client, site):
    draft = client.get(api(site, to=site["draft"]))
    missing = client.get(api(site, to=999999))
    assert draft.status_code == missing.status_code == 404
    assert draft.get_json()["error"]["message"] == missing.get_json()["error"][
        "message"].replace("999999", str(site["draft"]))
    url = f"/districts/678/parcels/compare?from={site['v1']}&to={site['draft']}"
    page = client.get(url)
    assert page.status_code == 404 and "text/html" in page.content_type
    # The Vietnamese page says it in Vietnamese (the error has no Vietnamese sentence of
    # its own: the 404's), the English one by the toggle in the error's own words.
    html = page.get_data(as_text=True)
    assert "Không tìm thấy" in html and "published version" not in html
    english = client.get(url + "&lang=en")
    assert english.status_code == 404
    assert (f"There is no published version {site['draft']}"
            in english.get_data(as_text=True))


@pytest.mark.parametrize("query,status,where", [
    ({"from": "abc"}, 400, "from"),
    ({"to": "1.5"}, 400, "to"),
    ({"from": ""}, 400, "from"),
    ({"bbox": "1,2,3"}, 400, "bbox"),
    ({"bbox": "108.4,11,108.3,12"}, 400, "bbox"),
    ({"bbox": "nan,1,2,3"}, 400, "bbox"),
    ({"limit": "-1"}, 400, "limit"),
    ({"limit": "100000"}, 400, "limit"),
    ({"offset": "x"}, 400, "offset"),
    ({"kind": "roads"}, 404, "kind"),
    ({"district": "999"}, 404, "district"),
    ({"district": "6 7 8"}, 404, "district"),
    ({"district": ""}, 400, "query string"),
])
def test_bad_api_input_is_a_precise_4xx(client, site, query, status, where):
    r = client.get(api(site, **query))
    assert r.status_code == status, r.get_data(as_text=True)
    error = r.get_json()["error"]
    assert error["where"] == where and error["fix"]


def test_versions_of_another_layer_are_not_found_here(client, site):
    other = client.get(api(site, to=site["other"]))
    assert other.status_code == 404
    assert "not a parcels layer of district 678" in other.get_json()["error"]["message"]
    plan = client.get(api(site, **{"from": site["plan"]}))
    assert plan.status_code == 404 and "it is a plan layer" in plan.get_json()[
        "error"]["message"]
    only_from = client.get(f"/api/compare?district=678&kind=parcels&from={site['v1']}")
    assert only_from.status_code == 400
    assert only_from.get_json()["error"]["what"] == "from and to go together"


@pytest.mark.parametrize("url,status", [
    ("/districts/678/parcels/compare?from=x&to=1", 400),
    ("/districts/678/parcels/compare?from=1", 400),
    ("/districts/999/parcels/compare", 404),
    ("/districts/678/roads/compare", 404),
    ("/districts/678/parcels/compare?from=999999&to=999998", 404),
])
def test_bad_page_input_is_a_page_not_a_500(client, url, status):
    r = client.get(url)
    assert r.status_code == status
    assert "text/html" in r.content_type and "Về trang chủ" in r.get_data(as_text=True)


def test_same_version_twice_is_allowed_and_unchanged(client, site):
    doc = client.get(api(site, **{"from": site["v2"]})).get_json()
    assert doc["summary"]["changed_features"] == 0
    assert doc["summary"]["counts"]["unchanged"] == 61


def test_comparisons_are_computed_once_with_fresh_version_facts(site):
    with open_store(site["home"], crs="EPSG:5899") as store:
        v1, v2 = store.version(site["v1"]), store.version(site["v2"])
        first = cached_comparison(store, v1, v2)
        again = cached_comparison(store, v1, v2)
        assert again.features is first.features  # not recomputed
        store.update_meta(v2.id, {"decision": {"number": "99/QĐ-UBND"}})
        fresh = cached_comparison(store, v1, store.version(v2.id))
        assert fresh.features is first.features
        assert fresh.summary()["to"]["decision"]["number"] == "99/QĐ-UBND"
        store.update_meta(v2.id, {"decision": {"number": "88/QĐ-UBND", "date": "2024-03-01",
                                               "authority": "UBND tỉnh Lâm Đồng"}})


@pytest.mark.parametrize("limit", [compare_web.PAGE_LIMIT, 5])
def test_browser_draws_the_changes_offline(site, monkeypatch, limit):
    """All changes at once, or (a diff above the page limit) those of the view."""
    monkeypatch.setattr(compare_web, "PAGE_LIMIT", limit)
    with live_server(site["home"]) as base, chromium_page() as (page, errors, requests):
        page.goto(base + f"/districts/678/parcels/compare?from={site['v1']}&to={site['v2']}")
        page.wait_for_function("() => window.gpCompare && window.gpCompare.ready")
        shown = page.evaluate("window.gpCompare.shown")
        note = page.locator("#gp-compare-note").inner_text()
        if limit == 5:
            assert shown == 5 and "5 trong số 16" in note
            assert "bbox=" in " ".join(requests)
        else:
            assert shown == 16 and "toàn bộ 16" in note
        paths = page.locator(".leaflet-overlay-pane path").count()
        assert paths >= shown  # every change drawn (plus the dashed outlines before)
        # the last feature drawn: renumbered (all drawn) or removed (the first 5 only)
        page.locator(".leaflet-overlay-pane path.leaflet-interactive").last.click(force=True)
        popup = page.locator(".gp-cmp-popup")
        popup.wait_for()
        text = " ".join(popup.inner_text().split())
        if limit == 5:
            assert text.startswith("Bị xóa") and "Số thửa 30 → —" in text
        else:
            assert text.startswith("Đổi số hiệu")
            assert ("Mã xã 24778 · Số tờ bản đồ 2 · Số thửa 2 → "
                    "Mã xã 24778 · Số tờ bản đồ 2 · Số thửa 102") in text
        screenshot(page, f"compare-{limit}")
        assert page.evaluate("window.__pwned === undefined")
        assert errors == []
        assert outside_requests(base, requests) == []
