"""Cross-origin reads (CORS) of the open data, and of nothing else (issue 16).

The OGC API (``/ogc``) and the vector tiles (``/tiles/``) answer
``Access-Control-Allow-Origin: *`` — on data, on errors, on preflights — so a web map
on another site can use them; every other route of the app (pages, ``/api``, the
planner's, the administrator's), asked anonymously and by a signed-in administrator,
answers none. The headers are checked through Flask's client on every GET route, then
in Chromium, where the browser itself enforces them: a document of another origin
reads ``/ogc`` and a tile, and is refused ``/api``.
"""

from __future__ import annotations

import pytest

from gisportal.web import security
from gisportal.web.app import create_app
from tests.browser import chromium_page, live_server
from tests.conftest import sign_in
from tests.test_planner_pages import LAM_HA, PW
from tests.test_security_headers import _sample, site  # noqa: F401  (the fixture)

ORIGIN = "https://ban-do.example.org"
ITEMS = f"/ogc/collections/{LAM_HA}-parcels/items"


def _open(path: str) -> bool:
    return path == "/ogc" or path.startswith(("/ogc/", "/tiles/"))


@pytest.fixture(scope="module")
def clients(site):  # noqa: F811
    """(anonymous, signed-in administrator) clients of the site."""
    app = create_app({"home": str(site["home"])})
    anonymous, admin = app.test_client(), app.test_client()
    assert sign_in(admin, "boss", PW).status_code == 303
    return anonymous, admin


def test_open_data_and_only_it_allows_any_origin(site, clients) -> None:  # noqa: F811
    anonymous, admin = clients
    rules = [r for r in anonymous.application.url_map.iter_rules() if "GET" in r.methods]
    opened, closed = set(), set()
    for rule in rules:
        url = _sample(rule, site)
        for client in (anonymous, admin):
            response = client.get(url, headers={"Origin": ORIGIN})
            allowed = response.headers.get("Access-Control-Allow-Origin")
            if _open(url):
                assert allowed == "*", (url, response.status_code)
                assert "Content-Crs" in response.headers["Access-Control-Expose-Headers"]
                opened.add(rule.endpoint)
            else:
                assert allowed is None, (url, response.status_code)
                assert not any(h.lower().startswith("access-control-")
                               for h, _ in response.headers), url
                closed.add(rule.endpoint)
            response.close()
    assert {"ogc.items", "ogc.item", "ogc.landing", "tiles.tile"} <= opened
    assert {"admin.users_page", "planner.dashboard", "pages.index", "auth.login"} <= closed
    assert any(e.startswith("api.") for e in closed)


def test_paths_that_only_look_like_open_data_are_not(clients) -> None:
    anonymous, _ = clients
    for url in ("/ogcx", "/ogc-admin", "/tilesets", "/api/ogc/collections", "/admin/ogc/"):
        response = anonymous.get(url, headers={"Origin": ORIGIN})
        assert "Access-Control-Allow-Origin" not in response.headers, url
        assert security.is_open_data(url) is False


@pytest.mark.parametrize("method,url,status", [
    ("GET", f"{ITEMS}?limit=0", 400),
    ("GET", "/ogc/collections/999-plan", 404),
    ("POST", ITEMS, 405),
    ("DELETE", f"{ITEMS}/1", 405),
    ("GET", "/tiles/676/plan/99/0/0.pbf", 400),
])
def test_errors_of_the_open_data_are_readable_too(clients, method, url, status) -> None:
    """A script elsewhere can read why a request failed (the OGC exception)."""
    anonymous, _ = clients
    response = anonymous.open(url, method=method, headers={"Origin": ORIGIN})
    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    if url.startswith("/ogc"):
        assert set(response.get_json()) == {"code", "description"}


def test_a_preflight_allows_reads_only(clients) -> None:
    anonymous, admin = clients
    ask = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Headers": "if-none-match"}
    for url in (ITEMS, "/ogc", "/tiles/676/plan/16/52480/30593.pbf"):
        response = anonymous.options(url, headers=ask)
        assert response.status_code == 200, url
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
        assert methods == {"GET", "HEAD", "OPTIONS"}
        assert "If-None-Match" in response.headers["Access-Control-Allow-Headers"]
        assert "Authorization" not in response.headers["Access-Control-Allow-Headers"]
        assert int(response.headers["Access-Control-Max-Age"]) > 0
    for client in (anonymous, admin):
        for url in ("/admin/users", "/planner/", "/api/lookup", "/"):
            response = client.options(url, headers=ask)
            assert not any(h.lower().startswith("access-control-")
                           for h, _ in response.headers), url


def test_ogc_answers_say_they_vary_by_accept(clients) -> None:
    anonymous, _ = clients
    for url in ("/ogc", ITEMS, "/ogc/nothing/here"):
        assert "Accept" in anonymous.get(url).headers.get("Vary", ""), url
    assert "Accept" in anonymous.post(ITEMS).headers.get("Vary", "")


_FETCH = """async (url) => {
  try {
    const r = await fetch(url, {headers: {"If-None-Match": "\\"x\\""}});
    const body = await r.arrayBuffer();
    return {status: r.status, bytes: body.byteLength, crs: r.headers.get("Content-Crs")};
  } catch (e) { return {error: String(e)}; }
}"""


def test_chromium_on_another_origin_reads_ogc_and_tiles_not_the_api(site) -> None:  # noqa: F811
    """Chromium enforces CORS: a document served from ``localhost`` fetches from
    ``127.0.0.1`` (another origin, same server), with a header that needs a preflight."""
    with live_server(site["home"]) as base, chromium_page() as (page, _, _):
        port = base.rsplit(":", 1)[1]
        # A JSON document has no Content-Security-Policy to limit what it may fetch.
        page.goto(f"http://localhost:{port}/ogc/conformance?f=json")
        other = f"http://127.0.0.1:{port}"
        items = page.evaluate(_FETCH, f"{other}{ITEMS}?limit=2")
        assert items.get("status") == 200 and items["bytes"] > 100, items
        assert items["crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
        tile = page.evaluate(_FETCH, f"{other}/tiles/{LAM_HA}/plan/16/52480/30593.pbf")
        assert tile.get("status") in (200, 204), tile
        api = page.evaluate(_FETCH, f"{other}/api/lookup?district={LAM_HA}&sheet=1&parcel=3")
        assert "error" in api and "Failed to fetch" in api["error"], api
