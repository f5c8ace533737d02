"""OpenAPI 3.0 definition of the portal's JSON API: ``GET /api/openapi.json``.

Describes ``/api/lookup``, ``/api/search``, ``/healthz`` and the vector tiles with the
parameters and answers they really have (see :mod:`gisportal.lookup`,
:mod:`gisportal.search`, :mod:`gisportal.web.tiles`). ``tests/test_ogc_openapi.py``
checks that every route of the ``api`` and ``tiles`` blueprints is described here, that
the document is valid OpenAPI, and that real answers match the schemas, so the
definition cannot drift from the code unnoticed. (The OGC API has its own definition,
built per request, at ``/ogc/api``.)
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from gisportal.store.base import KINDS

__all__ = ["bp", "json_api_openapi"]

bp = Blueprint("openapi", __name__)

_ERROR = {"$ref": "#/components/responses/error"}


def _schemas() -> dict[str, Any]:
    text = {"type": "string"}
    text_or_null = {"type": "string", "nullable": True}
    number_or_null = {"type": "number", "nullable": True}
    point = {"type": "object", "required": ["lat", "lon"],
             "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}}
    return {
        "error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "what", "message"],
                "properties": {"code": text, "what": text, "where": text, "fix": text,
                               "message": {"type": "string",
                                           "description": "what [where]. fix — one line"}}}}},
        "point": point,
        "parcel": {
            "type": "object", "nullable": True,
            "description": "null when a point look-up finds no parcel",
            "required": ["district", "commune", "sheet", "parcel", "area_m2", "current_use",
                         "attributes", "version", "point"],
            "properties": {
                "district": {"type": "string", "description": "GSO district code"},
                "district_name": text,
                "commune": text_or_null,
                "sheet": {"type": "integer", "nullable": True, "description": "số tờ"},
                "parcel": {"type": "integer", "nullable": True, "description": "số thửa"},
                "area_m2": {"type": "number", "description": "declared area, else computed"},
                "area_computed_m2": {"type": "number",
                                     "description": "area in VN-2000 TM-3, m²"},
                "current_use": text_or_null,
                "current_use_name": text_or_null,
                "attributes": {"type": "object", "additionalProperties": text,
                               "description": "the stored source attributes as NFC text; "
                                              "personal ones only for staff of the "
                                              "district (session or API token)"},
                "version": {"type": "integer", "description": "published version id"},
                "point": point,
            }},
        "planned": {
            "type": "object", "required": ["code", "name", "area_m2", "share"],
            "properties": {"code": text, "name": text_or_null, "name_en": text_or_null,
                           "color": text_or_null, "area_m2": number_or_null,
                           "share": {"type": "number", "nullable": True, "minimum": 0,
                                     "maximum": 1}}},
        "plan": {
            "type": "object", "nullable": True,
            "properties": {"decision": text_or_null, "date": text_or_null,
                           "authority": text_or_null, "version": {"type": "integer"},
                           "published_at": text_or_null}},
        "lookup": {
            "type": "object", "required": ["parcel", "planned", "plan"],
            "description": "A parcel and its planned uses. A point with no parcel is an "
                           "answer too: `parcel` is null, `planned` lists the plan zones "
                           "there, `reason` says why (with `district`, `point` and the "
                           "messages).",
            "properties": {
                "parcel": {"$ref": "#/components/schemas/parcel"},
                "planned": {"type": "array", "items": {"$ref": "#/components/schemas/planned"}},
                "plan": {"$ref": "#/components/schemas/plan"},
                "district": text_or_null,
                "point": {**point, "nullable": True},
                "reason": {"type": "string", "enum": ["no_parcel", "outside_districts"]},
                "message": text, "message_en": text}},
        "place": {
            "type": "object", "required": ["level", "code", "name", "district", "bbox"],
            "properties": {"level": {"type": "string", "enum": ["district", "commune"]},
                           "code": text, "name": text, "district": text,
                           "bbox": {"type": "array", "nullable": True, "minItems": 4,
                                    "maxItems": 4, "items": {"type": "number"},
                                    "description": "WGS 84 [west, south, east, north]"}}},
        "search": {
            "type": "object", "required": ["kind"],
            "description": "`xy`, `latlon` and `parcel` answers carry the look-up answer in "
                           "`result`; `places` lists matching districts and communes.",
            "properties": {
                "kind": {"type": "string", "enum": ["xy", "latlon", "parcel", "places"]},
                "result": {"$ref": "#/components/schemas/lookup"},
                "places": {"type": "array", "items": {"$ref": "#/components/schemas/place"}},
                "x": {"type": "number", "description": "VN-2000 X (northing)"},
                "y": {"type": "number", "description": "VN-2000 Y (easting)"},
                "swapped": {"type": "boolean", "description": "Y X was typed; put right"},
                "point": point,
                "sheet": {"type": "integer"}, "parcel": {"type": "integer"},
                "commune": text_or_null}},
    }


def _query(name: str, description: str, schema: dict[str, Any],
           example: Any = None) -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": False, "description": description,
             "schema": schema}
    if example is not None:
        param["example"] = example
    return param


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}


def json_api_openapi(server_url: str) -> dict[str, Any]:
    """The OpenAPI document of the JSON API, served from `server_url` (the site root)."""
    json_ok = {"application/json": {"schema": {"$ref": "#/components/schemas/lookup"}}}
    district = {"type": "string", "pattern": "^[0-9]{2,5}$"}
    lookup_params = [
        _query("lat", "WGS 84 latitude (with lon)", {"type": "number", "minimum": -90,
                                                     "maximum": 90}, 11.70),
        _query("lon", "WGS 84 longitude (with lat)", {"type": "number", "minimum": -180,
                                                      "maximum": 180}, 108.32),
        _query("x", "VN-2000 TM-3 X = northing, as on a certificate (with y)",
               {"type": "number", "minimum": 0, "maximum": 10_000_000}),
        _query("y", "VN-2000 TM-3 Y = easting (with x)",
               {"type": "number", "minimum": 0, "maximum": 1_000_000}),
        _query("district", "GSO district code; required with sheet and parcel, optional "
                           "with a point", district, "678"),
        _query("sheet", "map sheet number (số tờ), with district and parcel",
               {"type": "integer", "minimum": 0}),
        _query("parcel", "parcel number (số thửa), with district and sheet",
               {"type": "integer", "minimum": 0}),
        _query("commune", "commune code, when sheet + parcel repeat across communes",
               {"type": "string"}),
    ]
    tile_coords = [_path("district", "GSO district code", district),
                   _path("kind", "layer kind", {"type": "string", "enum": list(KINDS)}),
                   _path("z", "zoom, 0–24", {"type": "integer", "minimum": 0, "maximum": 24}),
                   _path("x", "tile column, 0 – 2^z−1", {"type": "integer", "minimum": 0}),
                   _path("y", "tile row, 0 – 2^z−1", {"type": "integer", "minimum": 0})]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gisportal JSON API",
            "version": "1.0.0",
            "description": "Tra cứu quy hoạch thửa đất / parcel look-up, search, vector "
                           "tiles. Errors are JSON `{\"error\": {code, what, where, fix, "
                           "message}}`. The published layers are also served through OGC "
                           "API – Features at /ogc (its own definition: /ogc/api).",
            "license": {"name": "Apache-2.0",
                        "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/api/lookup": {"get": {
                "summary": "Tra cứu thửa đất / look a parcel up",
                "description": "Give one of: lat+lon, x+y (VN-2000, X = northing), or "
                               "district+sheet+parcel[+commune].",
                "operationId": "lookup",
                "parameters": lookup_params,
                "security": [{}, {"bearerToken": []}],
                "responses": {"200": {"description": "The parcel and its planned uses.",
                                      "content": json_ok},
                              "400": _ERROR, "404": _ERROR}}},
            "/api/search": {"get": {
                "summary": "Ô tìm kiếm / the search box",
                "description": "One text: VN-2000 `X Y`, `lat, lon`, a sheet and parcel "
                               "(`12/345`, `tờ 12 thửa 345 Liên Nghĩa`), or a place name "
                               "without diacritics (`duc trong`).",
                "operationId": "search",
                "parameters": [
                    _query("q", "what the resident typed (at most 200 characters)",
                           {"type": "string", "maxLength": 200}, "duc trong"),
                    _query("district", "the district the search is made from",
                           district)],
                "responses": {"200": {"description": "What the text was understood as, and "
                                                     "its answer.",
                                      "content": {"application/json": {"schema": {
                                          "$ref": "#/components/schemas/search"}}}},
                              "400": _ERROR, "404": _ERROR}}},
            "/healthz": {"get": {
                "summary": "Liveness", "operationId": "healthz",
                "responses": {"200": {"description": "The app answers.",
                                      "content": {"application/json": {"schema": {
                                          "type": "object", "required": ["status"],
                                          "properties": {"status": {
                                              "type": "string", "enum": ["ok"]}}}}}}}}},
            "/tiles/{district}/{kind}/{z}/{x}/{y}.pbf": {"get": {
                "summary": "Vector tile / Mapbox Vector Tile of a published layer",
                "description": "Public fields only. gzip-encoded when the client accepts "
                               "gzip; ETag and Cache-Control for revalidation.",
                "operationId": "tile",
                "parameters": tile_coords,
                "responses": {
                    "200": {"description": "The tile.", "content": {
                        "application/vnd.mapbox-vector-tile": {
                            "schema": {"type": "string", "format": "binary"}}}},
                    "204": {"description": "No feature in this tile."},
                    "304": {"description": "Not modified (If-None-Match)."},
                    "400": _ERROR, "404": _ERROR}}},
            "/api/openapi.json": {"get": {
                "summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.0 definition.",
                                      "content": {"application/json": {
                                          "schema": {"type": "object"}}}}}}},
        },
        "components": {
            "schemas": _schemas(),
            "responses": {"error": {"description": "Bad request (400) or not found (404).",
                                    "content": {"application/json": {"schema": {
                                        "$ref": "#/components/schemas/error"}}}}},
            "securitySchemes": {"bearerToken": {
                "type": "http", "scheme": "bearer",
                "description": "Staff API token (`gp_…`); adds the personal attributes of "
                               "parcels in the token holder's districts."}},
        },
    }


@bp.get("/api/openapi.json")
def openapi_json() -> Response:
    doc = json_api_openapi(request.url_root.rstrip("/"))
    return Response(current_app.json.dumps(doc), mimetype="application/json")
