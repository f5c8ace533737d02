"""The HTTP contract the two OpenAPI documents promise, case by case (issue 11, item 18).

tests/test_schemathesis.py explores the documents with generated requests; these are
the findings it led to, pinned as plain examples so a regression names itself:

- a 405 carries ``Allow`` (RFC 9110), and under /ogc it is the OGC exception;
- ``limit`` below the documented ``minimum: 1`` is a 400 everywhere; above the maximum
  the JSON API refuses it, while the OGC API serves the maximum, as its standard says;
- ``datetime=`` (empty) is refused, and the OGC document says so (``minLength: 1``);
- an anonymous POST to the JSON API is the documented 401, not a 400 about CSRF — while
  a signed-in browser session still needs its CSRF token.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gisportal.accounts import tokens, users
from gisportal.web import compare, planner_api, planner_data
from gisportal.web.app import create_app
from tests.conftest import sign_in
from tests.test_ogc_api import ITEMS, publish_district

PW = "mật khẩu đủ dài"
#: The planners' JSON API POST routes (all need a signed-in user).
API_POSTS = ("/api/jobs", "/api/jobs/1/cancel", "/api/versions/1/publish")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("contract")
    publish_district(tmp / "home", tmp)
    users.add_user(tmp / "home", "lan", "planner", PW, districts=["678"])
    return tmp / "home"


@pytest.fixture(scope="module")
def app(home):
    return create_app({"home": str(home)})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def bearer(home) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.create_token(home, 'lan', label='contract')}"}


# -- 405 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,url", [
    ("TRACE", "/healthz"), ("POST", "/api/lookup"), ("DELETE", "/api/jobs"),
    ("PUT", "/api/versions/1/publish"), ("POST", "/tiles/678/parcels/0/0/0.pbf"),
    ("POST", "/api/openapi.json"),
])
def test_405_says_which_methods_are_allowed(client, method, url) -> None:
    r = client.open(url, method=method)
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"] or "POST" in r.headers["Allow"]
    assert method not in r.headers["Allow"]
    assert r.get_json()["error"]["code"] == "HTTP-405"


def test_405_on_a_page_says_allow_too(client) -> None:
    r = client.post("/")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    assert r.mimetype == "text/html"


@pytest.mark.parametrize("url", ["/ogc", "/ogc/collections", "/ogc/api",
                                 f"{ITEMS}", f"{ITEMS}/1", "/ogc/nothing/here"])
def test_405_under_ogc_is_the_ogc_exception(client, url) -> None:
    r = client.post(url)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
    assert r.mimetype == "application/json"
    doc = r.get_json()
    assert set(doc) == {"code", "description"} and doc["code"] == "OperationNotSupported"


def test_a_bad_token_under_ogc_is_the_ogc_exception(client) -> None:
    r = client.get("/ogc/collections", headers={"Authorization": "Bearer gp_" + "x" * 43})
    assert r.status_code == 401
    assert set(r.get_json()) == {"code", "description"}
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


# -- limit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "/api/jobs?limit=0", "/api/versions/1/findings?limit=0",
    "/api/versions/1/features?limit=0", "/api/compare?district=678&kind=plan&limit=0",
])
def test_limit_0_is_a_400_as_the_minimum_says(client, bearer, url) -> None:
    r = client.get(url, headers=bearer)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["error"]["where"] == "limit"


def test_json_api_limits_are_the_documented_bounds(client, bearer) -> None:
    doc = client.get("/api/openapi.json").get_json()

    def limit(path: str) -> dict:
        params = doc["paths"][path]["get"]["parameters"]
        return next(p["schema"] for p in params if p.get("name") == "limit")

    expected = {"/api/jobs": planner_api.MAX_JOBS,
                "/api/versions/{version_id}/findings": planner_data.MAX_FINDINGS_LIMIT,
                "/api/versions/{version_id}/features": planner_data.MAX_FEATURE_LIMIT,
                "/api/compare": compare.MAX_LIMIT}
    for path, high in expected.items():
        assert (limit(path)["minimum"], limit(path)["maximum"]) == (1, high), path
    assert client.get(f"/api/versions/1/features?limit={planner_data.MAX_FEATURE_LIMIT}",
                      headers=bearer).status_code == 200
    r = client.get(f"/api/versions/1/features?limit={planner_data.MAX_FEATURE_LIMIT + 1}",
                   headers=bearer)
    assert r.status_code == 400


def test_ogc_limit_below_1_is_400_above_the_maximum_is_the_maximum(client) -> None:
    assert client.get(f"{ITEMS}?limit=0").status_code == 400
    page = client.get(f"{ITEMS}?limit=10001&sheet=1")
    assert page.status_code == 200
    assert all("limit=10000" in x["href"] for x in page.get_json()["links"]
               if x["rel"] in ("self", "alternate"))


# -- datetime -------------------------------------------------------------------------------


def test_empty_datetime_is_refused_and_the_document_says_so(client) -> None:
    r = client.get(f"{ITEMS}?datetime=")
    assert r.status_code == 400 and r.get_json()["code"] == "InvalidParameterValue"
    doc = client.get("/ogc/api").get_json()
    assert doc["components"]["parameters"]["datetime"]["schema"]["minLength"] == 1
    # The same for the queryables' filters, whose empty value is refused too.
    params = doc["paths"]["/collections/678-parcels/items"]["get"]["parameters"]
    commune = next(p for p in params if p.get("name") == "commune")
    assert commune["schema"]["minLength"] == 1
    assert client.get(f"{ITEMS}?commune=").status_code == 400


# -- anonymous POST -------------------------------------------------------------------------


@pytest.mark.parametrize("url", API_POSTS)
def test_anonymous_api_post_is_401_as_documented(client, url) -> None:
    r = client.post(url, data={"district": "678", "kind": "plan"})
    assert r.status_code == 401, r.get_data(as_text=True)
    assert r.get_json()["error"]["code"] == "AUTH-REQUIRED"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    doc = client.get("/api/openapi.json").get_json()
    path = url.replace("/1/", "/{job_id}/" if "jobs" in url else "/{version_id}/")
    assert "401" in doc["paths"][path]["post"]["responses"]


def test_a_signed_in_session_still_needs_its_csrf_token(app, home) -> None:
    client = app.test_client()
    assert sign_in(client, "lan", PW).status_code == 303
    for url in API_POSTS:
        r = client.post(url)
        assert r.status_code == 400, url
        assert r.get_json()["error"]["code"] == "CSRF-INVALID"


def test_forms_outside_the_api_still_need_the_csrf_token(client) -> None:
    """Anonymous pages keep CSRF (the sign-in form itself is one)."""
    r = client.post("/login", data={"username": "lan", "password": PW})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/api/jobs?limit=", "/api/jobs?limit=%20",
                                 "/api/compare?district=678&kind=parcels&limit="])
def test_an_empty_number_is_a_400_not_the_default(client, bearer, url) -> None:
    """``limit=`` is present, and not a number: the documents say integer (a random
    schemathesis run found it taken as the default)."""
    r = client.get(url, headers=bearer)
    assert r.status_code == 400, (url, r.status_code)
    assert r.json["error"]["where"] == "limit"
