"""The two OpenAPI documents: /ogc/api (OGC API) and /api/openapi.json (the JSON API).

Both must be valid OpenAPI 3.0, describe every route they cover and nothing that does
not exist, and real answers must match the schemas they publish: the documents
cannot drift from the code without a test failing.
"""

from __future__ import annotations

import json
import re

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from gisportal.web.app import create_app
from tests.test_ogc_api import ITEMS, publish_district

#: Blueprints whose every route /api/openapi.json must describe.
DESCRIBED_BLUEPRINTS = ("api", "tiles", "openapi")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openapi")
    publish_district(tmp / "home", tmp)
    return create_app({"home": str(tmp / "home")})


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def check(doc: dict, schema_name: str, instance: object) -> None:
    """Validate `instance` against ``#/components/schemas/<schema_name>`` of `doc`."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    errors = sorted(OAS30Validator(schema).iter_errors(instance), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: ``<int(signed=True):z>`` → ``{z}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


# -- /ogc/api -------------------------------------------------------------------------------


def test_ogc_definition_is_valid_openapi_with_a_path_per_collection(client) -> None:
    response = client.get("/ogc/api")
    assert response.mimetype == "application/vnd.oai.openapi+json"
    assert response.content_type.endswith("version=3.0")
    doc = json.loads(response.get_data(as_text=True))
    validate_spec(doc)
    assert doc["servers"] == [{"url": "http://localhost/ogc"}]
    assert {"/", "/conformance", "/api", "/collections", "/collections/678-parcels",
            "/collections/678-parcels/items", "/collections/678-parcels/items/{featureId}",
            "/collections/678-plan/items"} <= set(doc["paths"])
    params = doc["paths"]["/collections/678-parcels/items"]["get"]["parameters"]
    names = [p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in params]
    assert names == ["f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime",
                     "commune", "sheet", "parcel", "land_use", "address", "object_type"]
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 10000, 100)
    plan = doc["paths"]["/collections/678-plan/items"]["get"]["parameters"]
    assert [p["name"] for p in plan if "name" in p] == ["zone_id", "land_use", "commune",
                                                        "name", "object_type"]


def test_ogc_answers_match_the_published_schemas(client) -> None:
    doc = client.get("/ogc/api").get_json()
    check(doc, "landingPage", client.get("/ogc").get_json())
    check(doc, "confClasses", client.get("/ogc/conformance").get_json())
    check(doc, "collections", client.get("/ogc/collections").get_json())
    check(doc, "collection", client.get("/ogc/collections/678-plan").get_json())
    items = json.loads(client.get(f"{ITEMS}?limit=5").get_data(as_text=True))
    check(doc, "featureCollectionGeoJSON", items)
    check(doc, "featureGeoJSON", json.loads(client.get(f"{ITEMS}/3").get_data(as_text=True)))
    check(doc, "exception", client.get(f"{ITEMS}?limit=0").get_json())
    check(doc, "exception", client.get(f"{ITEMS}/0").get_json())


def test_every_parameter_the_items_view_accepts_is_in_the_definition(client) -> None:
    """The view refuses unknown parameters; each one the definition lists is accepted."""
    doc = client.get("/ogc/api").get_json()
    samples = {"f": "json", "lang": "en", "limit": "2", "offset": "1",
               "bbox": "107,11,109,13", "bbox-crs": doc["components"]["parameters"]
               ["bbox-crs"]["schema"]["default"], "crs": "http://www.opengis.net/def/crs/"
               "EPSG/0/4326", "datetime": "2025-01-01", "commune": "24778", "sheet": "1",
               "parcel": "2", "land_use": "CLN", "address": "x", "object_type": "x"}
    for param in doc["paths"]["/collections/678-parcels/items"]["get"]["parameters"]:
        name = param.get("name") or param["$ref"].rsplit("/", 1)[1]
        response = client.get(f"{ITEMS}?{name}={samples[name]}")
        assert response.status_code == 200, (name, response.get_data(as_text=True))


# -- /api/openapi.json ----------------------------------------------------------------------


def test_json_api_definition_is_valid_and_describes_every_route(app, client) -> None:
    doc = client.get("/api/openapi.json").get_json()
    validate_spec(doc)
    assert doc["servers"] == [{"url": "http://localhost"}]
    routes = {}
    for rule in app.url_map.iter_rules():
        # Every JSON API route, whichever blueprint serves it, and the tiles.
        if rule.endpoint.split(".")[0] in DESCRIBED_BLUEPRINTS \
                or rule.rule.startswith("/api/"):
            routes[openapi_path(rule.rule)] = {m.lower() for m in rule.methods} - {"head",
                                                                                   "options"}
    assert {"/api/lookup", "/api/search", "/healthz", "/tiles/{district}/{kind}/{z}/{x}/{y}.pbf",
            "/api/openapi.json"} <= set(routes)
    for path, methods in routes.items():
        assert path in doc["paths"], f"{path} is served but not described"
        assert methods <= set(doc["paths"][path]), f"{path}: {methods} not all described"
    served = {openapi_path(r.rule) for r in app.url_map.iter_rules()}
    for path in doc["paths"]:
        assert path in served, f"{path} is described but not served"
    # Path parameters are the rule's variables, in order.
    tile = doc["paths"]["/tiles/{district}/{kind}/{z}/{x}/{y}.pbf"]["get"]["parameters"]
    assert [p["name"] for p in tile] == ["district", "kind", "z", "x", "y"]


def test_json_api_answers_match_the_published_schemas(client) -> None:
    doc = client.get("/api/openapi.json").get_json()
    by_key = client.get("/api/lookup?district=678&sheet=3&parcel=4")
    assert by_key.status_code == 200
    check(doc, "lookup", by_key.get_json())
    # Only the uploaded columns the planner marked public (gisportal.outputs.privacy).
    assert by_key.get_json()["parcel"]["attributes"] == {"GhiChu": "Ghi chú 23", "SoLo": "3"}
    point = by_key.get_json()["parcel"]["point"]
    check(doc, "lookup", client.get(f"/api/lookup?lat={point['lat']}&lon={point['lon']}")
          .get_json())
    empty = client.get(f"/api/lookup?lat={point['lat'] + 0.002}&lon={point['lon']}&district=678")
    assert empty.get_json()["parcel"] is None
    check(doc, "lookup", empty.get_json())
    for q in ("duc trong", "tờ 3 thửa 4", f"{point['lat']}, {point['lon']}"):
        answer = client.get("/api/search", query_string={"q": q, "district": "678"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        check(doc, "search", answer.get_json())
    for url in ("/api/lookup", "/api/lookup?district=678&sheet=99&parcel=1",
                "/api/search?q=", "/tiles/678/roads/1/0/0.pbf"):
        response = client.get(url)
        assert response.status_code in (400, 404)
        check(doc, "error", response.get_json())
    health = doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]
    schema = {**health["application/json"]["schema"], "components": doc["components"]}
    assert not list(OAS30Validator(schema).iter_errors(client.get("/healthz").get_json()))
