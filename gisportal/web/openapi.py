"""OpenAPI 3.0 definition of the portal's JSON API: ``GET /api/openapi.json``.

Describes ``/api/lookup``, ``/api/search``, ``/healthz`` and the vector tiles with the
parameters and answers they really have (see :mod:`gisportal.services.lookup`,
:mod:`gisportal.services.search`, :mod:`gisportal.web.tiles`). ``tests/test_ogc_openapi.py``
checks that every route of the ``api`` and ``tiles`` blueprints is described here, that
the document is valid OpenAPI, and that real answers match the schemas, so the
definition cannot drift from the code unnoticed. (The OGC API has its own definition,
built per request, at ``/ogc/api``.)
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from gisportal.base.findings import SEVERITIES
from gisportal.jobs.model import STATES
from gisportal.store.base import KINDS
from gisportal.web import compare, planner_api, planner_data
from gisportal.web.tiles import MAX_ZOOM

__all__ = ["bp", "json_api_openapi"]

bp = Blueprint("openapi", __name__)

_ERROR = {"$ref": "#/components/responses/error"}


def _schemas() -> dict[str, Any]:
    text = {"type": "string"}
    text_or_null = {"type": "string", "nullable": True}
    unit = {"type": "object", "required": ["code", "name", "level"],
            "properties": {"code": text, "name": text, "level": text}}
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
                                           "description": "what [where]. fix — one line"},
                               "message_en": {"type": "string",
                                              "description": "what. fix — for a page"},
                               "message_vi": {"type": "string", "nullable": True,
                                              "description": "the same in Vietnamese, "
                                              "when the error has it"}}}}},
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
                           "published_at": text_or_null,
                           "decision_pdf": {**text_or_null, "description":
                                            "path of the signed decision (PDF), if any"}}},
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
                "message": text, "message_en": text,
                "units": {
                    "type": "object", "nullable": True,
                    "description": "today's commune or ward (from 2025-07-01) and the "
                                   "former commune and district(s) the parcel's commune "
                                   "code names; null when that code is no former commune "
                                   "of the province. For a point with no parcel: the unit "
                                   "whose shape holds it and the former commune of the "
                                   "district's published boundary; null when none does",
                    "properties": {"current": {**unit, "nullable": True},
                                   "former": {"type": "array", "items": unit},
                                   "current_options": {"type": "array", "items": unit},
                                   "current_approximate": {
                                       "type": "boolean",
                                       "description": "a split former commune's unit, "
                                                      "settled by where the parcel lies in "
                                                      "today's (approximate) unit shapes"}}},
                "annual_plans": {
                    "type": "array",
                    "description": "the works and projects of the district's published "
                                   "annual land-use plan (kế hoạch sử dụng đất hằng năm) "
                                   "over the parcel (or at the point), newest year first; "
                                   "[] without one",
                    "items": {"type": "object",
                              "properties": {
                                  "year": {"type": "integer", "nullable": True},
                                  "name": text_or_null,
                                  "area_computed_m2": number_or_null,
                                  "code": text_or_null, "land_use": text_or_null,
                                  "land_use_name": text_or_null, "area_m2": number_or_null,
                                  "overlap_m2": number_or_null,
                                  "share": {"type": "number", "nullable": True, "minimum": 0,
                                            "maximum": 1},
                                  "decision": text_or_null}}},
                "zoning": {
                    "type": "array",
                    "description": "the construction and urban plans (đồ án quy hoạch "
                                   "xây dựng, đô thị) published over the parcel: each "
                                   "project with the lots the parcel falls in (its share "
                                   "of the parcel in each, the lot's indicators) and the "
                                   "part a planned road takes (red_line: m², share, the "
                                   "roads and their right of way, the building-line "
                                   "setback where drawn); [] when no project covers it. "
                                   "For a point with no parcel: the lots at the point, "
                                   "without areas",
                    "items": {"type": "object", "properties": {
                        "project": {"type": "object", "properties": {
                            "id": {"type": "string"}, "name": text_or_null,
                            "level": {"type": "string", "nullable": True,
                                      "enum": ["general", "zoning", "detailed", None]},
                            "scale": text_or_null, "status": text_or_null,
                            "url": {"type": "string"},
                            "decision": {"type": "object", "nullable": True, "properties": {
                                "number": {"type": "string"}, "date": text_or_null,
                                "authority": text_or_null, "pdf": text_or_null}}}},
                        "lots": {"type": "array", "items": {"type": "object", "properties": {
                            "code": text_or_null, "function": text_or_null,
                            "function_name": text_or_null, "function_name_en": text_or_null,
                            "color": text_or_null, "area_m2": number_or_null,
                            "share": {"type": "number", "nullable": True, "minimum": 0,
                                      "maximum": 1},
                            "max_density_pct": number_or_null,
                            "floors_min": {"type": "integer", "nullable": True},
                            "floors_max": {"type": "integer", "nullable": True},
                            "far": number_or_null}}},
                        "red_line": {"type": "object", "nullable": True, "properties": {
                            "area_m2": number_or_null,
                            "share": {"type": "number", "nullable": True, "minimum": 0,
                                      "maximum": 1},
                            "roads": {"type": "array", "items": {"type": "object",
                                                                 "properties": {
                                "name": text_or_null, "width_m": number_or_null}}},
                            "building_line_m": number_or_null}}}}},
                "zone": {
                    "type": "object",
                    "description": "X/Y look-ups only: the VN-2000 TM-3 zone the pair was "
                                   "read in and why (`chosen`: given, district, only, both "
                                   "— valid in both zones, the other one named — or none)",
                    "properties": {"crs": text, "meridian": {"type": "number"},
                                   "chosen": {"type": "string", "enum": [
                                       "given", "district", "only", "both", "none"]},
                                   "alternatives": {"type": "array", "items": text},
                                   "note": text, "note_en": text}}}},
        "place": {
            "type": "object", "required": ["level", "code", "name", "district", "bbox"],
            "properties": {"level": {"type": "string", "enum": [
                               "district", "commune", "ward", "township", "special_zone"]},
                           "code": text, "name": text,
                           "district": {**text, "nullable": True,
                                        "description": "the district of a place of the "
                                        "plans' geography; null for today's units (no "
                                        "district level since 2025-07-01)"},
                           "bbox": {"type": "array", "nullable": True, "minItems": 4,
                                    "maxItems": 4, "items": {"type": "number"},
                                    "description": "WGS 84 [west, south, east, north]"},
                           "current": {"type": "boolean", "description": "one of today's "
                                       "124 communes and wards (from 2025-07-01)"},
                           "valid_from": {"type": "string", "format": "date"},
                           "former": {"type": "object", "description": "the former "
                                      "commune whose name found today's unit",
                                      "properties": {"code": text, "name": text,
                                                     "level": text, "district": text,
                                                     "district_name": text_or_null}},
                           "note": {**text, "description": "what became of that former "
                                    "commune, in Vietnamese"},
                           "note_en": {**text, "description": "the same in English"}}},
        "health": {
            "type": "object", "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "fail"]},
                "checks": {"type": "object", "additionalProperties": {
                    "type": "object", "required": ["status", "ms"],
                    "properties": {"status": {"type": "string", "enum": ["ok", "fail"]},
                                   "ms": {"type": "number"},
                                   "error": {"type": "string",
                                             "description": "the failure's class"}}}}}},
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


_OBJECT = {"application/json": {"schema": {"type": "object"}}}
_SIGNED_IN = [{"bearerToken": []}, {"sessionCookie": []}]


def _ok(description: str) -> dict[str, Any]:
    return {"description": description, "content": _OBJECT}


def _staff_paths(district: dict[str, Any]) -> dict[str, Any]:
    """Planners' API (web/planner_api.py): jobs, and a draft version's findings and data.

    Signed in with a session or a Bearer token; a district outside the user's rights is
    a 403, an unknown or foreign job or version a 404.
    """
    job_id = _path("job_id", "job number", {"type": "integer", "minimum": 1})
    version_id = _path("version_id", "version id", {"type": "integer", "minimum": 1})
    errors = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR}
    upload_form = {"multipart/form-data": {"schema": {
        "type": "object", "required": ["district", "kind", "file"],
        "properties": {
            "district": district,
            "kind": {"type": "string", "enum": list(KINDS)},
            "file": {"type": "string", "format": "binary",
                     "description": "zipped Shapefile, GeoPackage, GeoJSON, KML/KMZ, "
                                    "FlatGeobuf or DXF; at most max_upload_bytes"},
            "crs": {"type": "string", "description": "override, e.g. EPSG:5899"},
            "encoding": {"type": "string", "description": "utf-8, cp1258, tcvn3 or vni"},
            "source_layer": {"type": "string", "description": "layer of a GeoPackage"},
            "field": {"type": "array", "items": {"type": "string"},
                      "description": "field override FIELD=COLUMN, e.g. sheet=SO_TO"},
            "repair": {"type": "boolean", "description": "repair before validating"}}}}}
    return {
        "/api/jobs": {
            "get": {"summary": "Công việc / jobs the user may see, newest first",
                     "operationId": "listJobs", "security": _SIGNED_IN,
                     "parameters": [
                         _query("district", "only this district (empty: every district "
                                            "the caller reviews)",
                                {"type": "string", "pattern": "^([0-9]{2,5})?$"}),
                         _query("state", "only jobs in this state (empty: any)",
                                {"type": "string", "enum": ["", *STATES]}),
                         _query("limit", "at most this many (default 50)",
                                {"type": "integer", "minimum": 1,
                                 "maximum": planner_api.MAX_JOBS})],
                     "responses": {"200": _ok("`jobs`: a list of jobs."), **errors}},
            "post": {"summary": "Tải lên / upload a file: ingest and validation run in the "
                                "background", "operationId": "createJob",
                     "security": [{"bearerToken": []}],
                     "requestBody": {"required": True, "content": upload_form},
                     "responses": {"202": _ok("`job`, `url` (poll it) and `page`; "
                                              "header Location."),
                                   "413": _ERROR, **errors}}},
        "/api/jobs/{job_id}": {"get": {
            "summary": "Một công việc / one job: state, stage, percent, result or error",
            "operationId": "getJob", "security": _SIGNED_IN, "parameters": [job_id],
            "responses": {"200": _ok("`job`."), **errors}}},
        "/api/jobs/{job_id}/cancel": {"post": {
            "summary": "Hủy / cancel a queued or running job", "operationId": "cancelJob",
            "security": _SIGNED_IN, "parameters": [job_id],
            "responses": {"200": _ok("`job`, as it ended."), **errors}}},
        "/api/versions/{version_id}/findings": {"get": {
            "summary": "Lỗi / a page of a version's validation findings",
            "operationId": "versionFindings", "security": _SIGNED_IN,
            "parameters": [version_id,
                           _query("rule", "only this rule code (e.g. GEOM-INVALID)",
                                  {"type": "string"}),
                           _query("severity", "only this severity (empty: any)",
                                  {"type": "string", "enum": ["", *SEVERITIES]}),
                           _query("offset", "first finding", {"type": "integer",
                                                              "minimum": 0,
                                                              "maximum": 10**9}),
                           _query("limit", "page size",
                                  {"type": "integer", "minimum": 1,
                                   "maximum": planner_data.MAX_FINDINGS_LIMIT})],
            "responses": {"200": _ok("A page of findings with the report's `summary`."),
                          **errors}}},
        "/api/versions/{version_id}/features": {"get": {
            "summary": "Dữ liệu tải lên / a version's features in a box (GeoJSON, WGS 84, "
                       "public fields)", "operationId": "versionFeatures",
            "security": _SIGNED_IN,
            "parameters": [version_id,
                           _query("bbox", "minlon,minlat,maxlon,maxlat", {"type": "string"}),
                           _query("limit", "at most this many features",
                                  {"type": "integer", "minimum": 1,
                                   "maximum": planner_data.MAX_FEATURE_LIMIT})],
            "responses": {"200": _ok("A GeoJSON FeatureCollection."), **errors}}},
        "/api/versions/{version_id}/preview": {"get": {
            "summary": "Thay đổi khi công bố / what residents would see change if the "
                       "version were published", "operationId": "versionPreview",
            "security": _SIGNED_IN, "parameters": [version_id],
            "responses": {"200": _ok("`preview`: counts per change type, m² per land-use "
                                     "code, `removed`, `needs_confirmation`."), **errors}}},
        "/api/versions/{version_id}/publish": {"post": {
            "summary": "Công bố / publish a draft (one publish path: a plan needs its "
                       "decision or consultation=true; removing more than 5 % of the "
                       "published features needs confirm_removals=true)",
            "operationId": "publishVersion", "security": _SIGNED_IN,
            "parameters": [version_id],
            "requestBody": {"required": False, "content": {
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "properties": {
                        "confirm_removals": {"type": "string", "enum": ["true", "1"]},
                        "consultation": {"type": "string", "enum": ["true", "1"]}}}}}},
            "responses": {"202": _ok("`job` queued, its `url`, and the `preview`."),
                          "409": _ERROR, **errors}}},
        "/api/me": {"get": {
            "summary": "Tôi là ai / who the session or token is, and what it may do",
            "operationId": "me", "security": _SIGNED_IN,
            "responses": {"200": _ok("`user`, `via` and `can` per action."),
                          "401": _ERROR}}},
    }


def _project_paths() -> dict[str, Any]:
    """The planning projects' JSON (gisportal/web/projects.py)."""
    project = _path("project_id", "the project's id (lower-case letters, digits, hyphens)",
                    {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,62}$"})
    listed = {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "level": {"type": "string", "enum": ["general", "zoning", "detailed"]},
        "status": {"type": "string"}, "scale": {"type": "string", "nullable": True},
        "published": {"type": "array", "items": {"type": "string"}},
        "layers": {"type": "object"}, "documents": {"type": "array"},
        "decision": {"type": "object", "nullable": True}, "url": {"type": "string"}}}
    return {
        "/api/projects": {"get": {
            "summary": "Đồ án quy hoạch xây dựng, đô thị / construction and urban plans",
            "operationId": "projects",
            "responses": {"200": {"description": "Every project, what of it is published.",
                                  "content": {"application/json": {"schema": {
                                      "type": "array", "items": listed}}}}}}},
        "/api/projects/{project_id}": {"get": {
            "summary": "One planning project", "operationId": "project",
            "parameters": [project],
            "responses": {"200": {"description": "The project.", "content": {
                "application/json": {"schema": listed}}}, "404": _ERROR}}},
        "/api/projects/{project_id}/{kind}.geojson": {"get": {
            "summary": "A published layer of a project (lots or red lines), WGS 84",
            "operationId": "projectLayer",
            "parameters": [project, _path("kind", "layer kind", {
                "type": "string", "enum": ["zoning_lots", "red_lines"]})],
            "responses": {"200": {"description": "GeoJSON FeatureCollection (RFC 7946).",
                                  "content": {"application/geo+json": {"schema": {
                                      "type": "object"}}}},
                          "304": {"description": "Not modified (If-None-Match)."},
                          "404": _ERROR}}},
    }


def _compare_paths(district: dict[str, Any]) -> dict[str, Any]:
    """The public comparison of two versions of a layer (web/compare.py)."""
    params = [
        _query("district", "GSO district code (a district's layer; or project)", district),
        _query("project", "a planning project's id (its lots; or district)",
               {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,62}$"}),
        {**_query("kind", "layer kind",
                  {"type": "string", "enum": [*KINDS, "zoning_lots"]}), "required": True},
        _query("from", "version before (default: the one published before the current)",
               {"type": "integer", "minimum": 1}),
        _query("to", "version after (default: the published one)",
               {"type": "integer", "minimum": 1})]
    return {
        "/api/compare": {"get": {
            "summary": "So sánh / what changed between two versions, one page of features",
            "operationId": "compare",
            "parameters": [*params,
                           _query("bbox", "minlon,minlat,maxlon,maxlat", {"type": "string"}),
                           _query("offset", "first changed feature",
                                  {"type": "integer", "minimum": 0, "maximum": 10**9}),
                           _query("limit", "page size",
                                  {"type": "integer", "minimum": 1,
                                   "maximum": compare.MAX_LIMIT})],
            "responses": {"200": _ok("`summary`, `features` (GeoJSON, WGS 84) and `page`."),
                          "400": _ERROR, "404": _ERROR}}},
        "/api/compare/summary": {"get": {
            "summary": "Tóm tắt so sánh / the summary alone: counts and m² per land-use code",
            "operationId": "compareSummary", "parameters": params,
            "responses": {"200": _ok("The summary."), "400": _ERROR, "404": _ERROR}}},
    }


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
        _query("zone", "the TM-3 zone of x/y: 5899 (107°45′, former Lâm Đồng) or 9218 "
                       "(108°30′, former Đắk Nông and Bình Thuận), as EPSG code or "
                       "meridian; default: the district's, else the zone that puts the "
                       "point in a district surveyed in it", {"type": "string"}),
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
                   _path("z", f"zoom, 0–{MAX_ZOOM}",
                         {"type": "integer", "minimum": 0, "maximum": MAX_ZOOM}),
                   _path("x", "tile column, 0 – 2^z−1",
                         {"type": "integer", "minimum": 0, "maximum": 2**MAX_ZOOM - 1}),
                   _path("y", "tile row, 0 – 2^z−1",
                         {"type": "integer", "minimum": 0, "maximum": 2**MAX_ZOOM - 1})]
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
                              "400": _ERROR, "401": _ERROR, "404": _ERROR}}},
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
            "/api/units": {"get": {
                "summary": "Xã, phường, đặc khu hiện nay / today's communes and wards",
                "description": "The 124 units of the province since 2025-07-01 as a "
                               "GeoJSON FeatureCollection (WGS 84, simplified for the "
                               "province view): each the union of its former communes in "
                               "the published boundary layers; units none of whose former "
                               "communes is published are left out. gzip when accepted; "
                               "ETag.",
                "operationId": "units",
                "parameters": [_query("lang", "language of the level names",
                                      {"type": "string", "enum": ["vi", "en"]}, "vi")],
                "responses": {"200": {"description": "The units drawn so far.",
                                      "content": {"application/geo+json": {"schema": {
                                          "type": "object",
                                          "required": ["type", "features"],
                                          "properties": {
                                              "type": {"type": "string"},
                                              "features": {"type": "array"}}}}}},
                              "304": {"description": "Not modified (If-None-Match)."},
                              "400": _ERROR}}},
            "/healthz": {"get": {
                "summary": "Readiness: the store, the shared file areas and the node's "
                           "scratch answer (for load balancers)",
                "operationId": "healthz",
                "responses": {
                    "200": {"description": "Every check passed.", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/health"}}}},
                    "503": {"description": "A check failed; this node should get no traffic.",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/health"}}}}}}},
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
            "/tiles/{district}/{kind}.json": {"get": {
                "summary": "TileJSON 3.0 of a published layer's vector tiles (QGIS, "
                           "MapLibre, OpenLayers)",
                "operationId": "tileJson",
                "parameters": tile_coords[:2],
                "responses": {"200": {"description": "TileJSON.", "content": {
                    "application/json": {"schema": {"type": "object"}}}},
                    "304": {"description": "Not modified (If-None-Match)."},
                    "404": _ERROR}}},
            "/tiles/{district}/style.json": {"get": {
                "summary": "Mapbox GL style of the district's published tiles, with the "
                           "official land-use colours (QGIS's vector tile connection)",
                "operationId": "tileStyle",
                "parameters": [tile_coords[0],
                               _query("lang", "language of the names",
                                      {"type": "string", "enum": ["vi", "en"]}, "vi")],
                "responses": {"200": {"description": "Style (version 8).", "content": {
                    "application/json": {"schema": {"type": "object"}}}},
                    "304": {"description": "Not modified (If-None-Match)."},
                    "404": _ERROR}}},
            **_staff_paths(district),
            **_compare_paths(district),
            **_project_paths(),
            "/api/openapi.json": {"get": {
                "summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.0 definition.",
                                      "content": {"application/json": {
                                          "schema": {"type": "object"}}}}}}},
        },
        "components": {
            "schemas": _schemas(),
            "responses": {"error": {"description": "The request was refused: the status "
                                                   "says why (400 bad input, 401 not signed "
                                                   "in, 403 no right, 404 not found, 409 "
                                                   "conflict, 413 too large).",
                                    "content": {"application/json": {"schema": {
                                        "$ref": "#/components/schemas/error"}}}}},
            "securitySchemes": {
                "bearerToken": {
                    "type": "http", "scheme": "bearer",
                    "description": "Staff API token (`gp_…`, `gisportal users token NAME`); "
                                   "adds the personal attributes of parcels in the token "
                                   "holder's districts."},
                "sessionCookie": {
                    "type": "apiKey", "in": "cookie", "name": "gisportal_session",
                    "description": "A signed-in browser session (POSTs then need the "
                                   "page's CSRF token)."}},
        },
    }


@bp.get("/api/openapi.json")
def openapi_json() -> Response:
    doc = json_api_openapi(request.url_root.rstrip("/"))
    return Response(current_app.json.dumps(doc), mimetype="application/json")
