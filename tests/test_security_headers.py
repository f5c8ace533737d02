"""Security headers on every answer, and the addresses links are built from.

Fast (Flask's test client): every GET route of the app — pages, APIs, tiles, static
files, each asked anonymously and by a signed-in admin — answers ``nosniff``, a
referrer policy and ``SAMEORIGIN``; every HTML answer carries the Content-Security-
Policy with a fresh nonce, and every ``<script>`` and ``<style>`` element it holds
carries that nonce (``tests/test_browser_csp.py`` shows the pages then work in
Chromium). The ``Host`` header and the ``X-Forwarded-*`` headers, which any client
can set, reach no link unless the settings say so.
"""

from __future__ import annotations

import re

import pytest
from flask import request

from gisportal.base.errors import UsageError
from gisportal.outputs.mapassets import with_nonce
from gisportal.services.decisions import decision_of
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web import maps, security
from gisportal.web.app import create_app
from tests.conftest import sign_in
from tests.test_planner_pages import LAM_HA, PW, USES_V2, build_home, plan_file, stop_workers

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
COMMON = {"X-Content-Type-Options": "nosniff",
          "Referrer-Policy": "strict-origin-when-cross-origin",
          "X-Frame-Options": "SAMEORIGIN"}
#: Pages that must answer 200 with HTML (the routes are found in the URL map; these
#: check the sample values reached the real pages, not only 404s).
HTML_PAGES = {"pages.index", "pages.district", "compare.compare_page", "sheet.parcel_sheet",
              "ogc.landing", "ogc.api", "ogc.collections", "ogc.collection", "ogc.items",
              "ogc.item", "ogc.conformance", "planner.dashboard", "planner.history",
              "planner.upload_form", "planner_review.review", "admin.users_page",
              "admin.audit_page", "export.page", "auth.login"}
_TAG = re.compile(r"<(script|style)\b([^>]*)>", re.I)
_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Lâm Hà (676): parcels, plan v1 with its decision, plan v2; boss is an admin."""
    root = tmp_path_factory.mktemp("headers")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        from argon2 import PasswordHasher

        from gisportal.accounts import users

        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(users, "_hasher", lambda: cheap)
        ids = build_home(home, decision_on_v1=True)
        with open_store(home, crs="EPSG:5899") as store:
            v2 = ingest_file(store, plan_file(root, USES_V2, name="v2.gpkg"), "plan", LAM_HA,
                             publish=True, consultation=True).version
            pdf = decision_of(store.version(ids["plan"])).pdf_sha256
            fid = int(store.feature_ids(ids["parcels"])[0])
        yield {"home": home, "v2": v2.id, "pdf": pdf, "fid": fid}
    stop_workers(home)


def _sample(rule, site) -> str:
    """A URL of `rule` with values that reach the real page where there is one."""
    values = {"code": LAM_HA, "district": LAM_HA, "kind": "plan", "sheet": "1", "parcel": "3",
              "version_id": site["v2"], "job_id": 999_999, "user_id": 1,
              "collection_id": f"{LAM_HA}-parcels", "feature_id": site["fid"],
              "filename": "css/portal.css", "rest": "nothing-here", "sha256": site["pdf"],
              "fmt": "json", "z": 16, "x": 52480, "y": 30593,
              "project_id": "676-khong-co", "project": "676-khong-co"}
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(r"<(?:[^:<>]+:)?" + name + ">", str(values[name]), url)
    query = {"/api/compare": "?district=676&kind=plan", "/api/compare/summary":
             "?district=676&kind=plan", "/api/search": "?q=1", "/api/lookup":
             "?district=676&sheet=1&parcel=3"}
    return url + query.get(rule.rule, "")


def _check_html(url: str, response) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    nonce = re.search(r"script-src 'self' 'nonce-([\w-]{20,})'", policy)
    assert nonce, (url, policy)
    assert f"style-src 'self' 'nonce-{nonce.group(1)}'" in policy
    for directive in ("object-src 'none'", "base-uri 'self'", "form-action 'self'",
                      "frame-ancestors 'self'", "connect-src 'self'"):
        assert directive in policy, (url, directive)
    assert "unsafe-eval" not in policy
    assert "unsafe-inline" not in policy.replace("style-src-attr 'unsafe-inline'", "")
    html = response.get_data(as_text=True)
    for tag in _TAG.finditer(html):
        attrs = tag.group(2)
        if tag.group(1).lower() == "script" and ("src=" in attrs
                                                 or 'type="application/json"' in attrs):
            continue  # a file from 'self', or data the browser never runs
        assert f'nonce="{nonce.group(1)}"' in attrs, (url, tag.group(0)[:120])
    assert not _HANDLER.search(html), (url, _HANDLER.search(html).group(0))


def test_every_get_route_answers_the_headers(site):
    app = create_app({"home": str(site["home"])})
    anonymous, admin = app.test_client(), app.test_client()
    assert sign_in(admin, "boss", PW).status_code == 303
    pages_ok: set[str] = set()
    nonces: set[str] = set()
    rules = [r for r in app.url_map.iter_rules() if "GET" in r.methods]
    assert len(rules) > 30
    for rule in rules:
        url = _sample(rule, site)
        for client in (anonymous, admin):
            response = client.get(url, headers={"Accept": BROWSER_ACCEPT})
            for name, value in COMMON.items():
                assert response.headers.get(name) == value, (url, name, response.status)
            if response.mimetype == "text/html" and response.status_code != 204:
                _check_html(url, response)
                nonces.add(re.search(r"'nonce-([^']+)'",
                                     response.headers["Content-Security-Policy"]).group(1))
                if response.status_code == 200:
                    pages_ok.add(rule.endpoint)
            else:
                assert "Content-Security-Policy" not in response.headers or \
                    response.status_code == 204, (url, response.mimetype)
            response.close()
    assert not HTML_PAGES - pages_ok, HTML_PAGES - pages_ok
    assert len(nonces) > 40  # one per answer, never reused


def test_error_answers_have_the_headers_too(site):
    client = create_app({"home": str(site["home"])}).test_client()
    for url in ("/districts/999", "/nothing", "/api/lookup?lat=x&lon=y", "/ogc/nothing",
                "/planner/"):
        response = client.get(url, headers={"Accept": BROWSER_ACCEPT})
        assert response.status_code in (302, 400, 404), url
        for name, value in COMMON.items():
            assert response.headers.get(name) == value, (url, name)


def test_enabled_basemaps_are_allowed_images(site, monkeypatch):
    client = create_app({"home": str(site["home"])}).test_client()
    policy = client.get("/").headers["Content-Security-Policy"]
    assert re.search(r"img-src 'self' data: blob:;", policy)  # none enabled by default
    comp = maps.composition("district")
    enabled = {**comp, "basemaps": [{**comp["basemaps"][0], "enabled": True},
                                    {"enabled": True, "url": "https://{s}.tiles.example.org:8443"
                                                             "/{z}/{x}/{y}.png"},
                                    {"enabled": False, "url": "https://off.example/{z}.png"}]}
    original = maps.composition
    monkeypatch.setattr(maps, "composition",
                        lambda name: enabled if name == "district" else original(name))
    policy = client.get("/districts/676").headers["Content-Security-Policy"]
    images = re.search(r"img-src ([^;]*)", policy).group(1).split()
    assert images == ["'self'", "data:", "blob:", "https://tile.openstreetmap.org",
                      "https://*.tiles.example.org:8443"]


@pytest.mark.parametrize("url,source", [
    ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
    ("https://{s}.tile.openstreetmap.fr/osmfr/{z}/{x}/{y}.png",
     "https://*.tile.openstreetmap.fr"),
    ("http://10.0.0.5:8080/tiles/{z}/{x}/{y}.png", "http://10.0.0.5:8080"),
    ("/tiles/base/{z}/{x}/{y}.png", None), ("https://{s}.com/{z}.png", None),
    ("javascript:alert(1)", None),
])
def test_basemap_sources(url, source):
    assert security._source(url) == source


def test_nonce_goes_on_script_and_style_tags_only():
    html = ('<script src="/a.js"></script><script>x</script><style>a{}</style>'
            '<scripts><div>script</div><script nonce="k">y</script>')
    out = with_nonce(html, "AbC-_1")
    assert out.count('nonce="AbC-_1"') == 3 and '<scripts>' in out and 'nonce="k"' in out
    with pytest.raises(ValueError):
        with_nonce(html, '"><script>')


# -- addresses ---------------------------------------------------------------------------

OGC_URLS = ("/ogc", "/ogc/conformance", "/ogc/api", "/ogc/collections",
            "/ogc/collections/676-parcels", "/ogc/collections/676-parcels/items?limit=2")


def _texts(client, headers: dict[str, str]) -> list[str]:
    out = []
    for url in OGC_URLS:
        for f in ("json", "html"):
            joiner = "&" if "?" in url else "?"
            response = client.get(f"{url}{joiner}f={f}", headers=headers)
            assert response.status_code == 200, (url, f, response.status_code)
            out.append(response.get_data(as_text=True))
    out.append(client.get("/api/openapi.json", headers=headers).get_data(as_text=True))
    return out


def test_a_hostile_host_never_reaches_a_link_with_public_url(site):
    client = create_app({"home": str(site["home"]),
                         "public_url": "https://quyhoach.lamdong.gov.vn/"}).test_client()
    texts = _texts(client, {"Host": "evil.example", "X-Forwarded-Host": "evil2.example",
                            "X-Forwarded-Proto": "http"})
    for text in texts:
        assert "evil" not in text
    links = client.get("/ogc?f=json", headers={"Host": "evil.example"}).get_json()["links"]
    assert {link["href"].split("/ogc")[0] for link in links} == \
        {"https://quyhoach.lamdong.gov.vn"}


def test_without_public_url_links_follow_the_host_and_allowed_hosts_guard_it(site):
    open_app = create_app({"home": str(site["home"])}).test_client()
    # As before: links follow the request (so set public_url or allowed_hosts) ...
    assert any("evil.example" in t for t in _texts(open_app, {"Host": "evil.example"}))
    guarded = create_app({"home": str(site["home"]),
                          "allowed_hosts": "quyhoach.lamdong.gov.vn, .lamdong.gov.vn, "
                                           "localhost"}).test_client()
    refused = guarded.get("/ogc?f=json", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and b"evil" not in refused.data
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    for host in ("quyhoach.lamdong.gov.vn", "www.lamdong.gov.vn", "localhost:8000"):
        ok = guarded.get("/ogc?f=json", headers={"Host": host})
        assert ok.status_code == 200, host
        assert ok.get_json()["links"][0]["href"].startswith(f"http://{host}/ogc")
    for host in ("lamdong.gov.vn.evil.example", "xlamdong.gov.vn"):
        assert guarded.get("/ogc", headers={"Host": host}).status_code == 400, host


def _address_app(site, **settings):
    app = create_app({"home": str(site["home"]), **settings})
    app.add_url_rule("/_test/address", "test_address",
                     lambda: {"addr": request.remote_addr, "root": request.url_root})
    return app.test_client()


FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "quyhoach.lamdong.gov.vn"}


def test_forwarded_headers_count_only_with_proxy_fix(site):
    plain = _address_app(site).get("/_test/address", headers=FORWARDED).get_json()
    assert plain == {"addr": "127.0.0.1", "root": "http://localhost/"}
    links = create_app({"home": str(site["home"])}).test_client().get(
        "/ogc?f=json", headers=FORWARDED).get_json()["links"]
    assert links[0]["href"].startswith("http://localhost/ogc")
    behind = _address_app(site, proxy_fix=1)
    seen = behind.get("/_test/address", headers=FORWARDED).get_json()
    assert seen == {"addr": "203.0.113.7", "root": "https://quyhoach.lamdong.gov.vn/"}
    # One proxy: only the last X-Forwarded-For entry (the one it added) is believed.
    spoofed = behind.get("/_test/address", headers={
        "X-Forwarded-For": "6.6.6.6, 203.0.113.7"}).get_json()
    assert spoofed["addr"] == "203.0.113.7"


def test_proxy_fix_and_public_url_together(site):
    client = _address_app(site, proxy_fix=1, public_url="https://quyhoach.lamdong.gov.vn")
    seen = client.get("/_test/address", headers={**FORWARDED,
                                                 "X-Forwarded-Host": "evil.example"}).get_json()
    assert seen == {"addr": "203.0.113.7", "root": "https://quyhoach.lamdong.gov.vn/"}


@pytest.mark.parametrize("settings", [
    {"public_url": "quyhoach.lamdong.gov.vn"}, {"public_url": "https://x.vn/portal"},
    {"public_url": "ftp://x.vn"}, {"public_url": "https://user@x.vn"}, {"proxy_fix": -1},
])
def test_bad_address_settings_stop_the_start(site, settings):
    with pytest.raises(UsageError):
        create_app({"home": str(site["home"]), **settings})
