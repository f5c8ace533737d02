"""The OpenAPI 3.0 definition of the OGC API (``/ogc/api``, link rel ``service-desc``).

Built from what is published at the time of the request: one ``items`` and one
``items/{featureId}`` path per collection, each listing exactly the parameters that
collection accepts (its queryable fields among them), because clients read it —
GDAL takes the ``limit`` bounds and the filterable fields from it — and because an
unknown parameter is refused (400), so the definition must say which are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gisportal.outputs.ogc import crs as ogc_crs
from gisportal.outputs.ogc import query as q
from gisportal.outputs.ogc.collections import Collection, PublicFields
from gisportal.outputs.ogc.links import GEOJSON, HTML, JSON, OPENAPI_JSON

__all__ = ["CONFORMANCE", "ogc_openapi"]

#: Conformance classes this API implements (the ``/conformance`` answer).
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
)

#: Schemas of the queryables' equality filters; an empty value is refused (400), it
#: would otherwise read as "no filter" and return the whole layer.
_TYPES = {"int": {"type": "integer"},
          "str": {"type": "string", "minLength": 1, "maxLength": q.MAX_VALUE},
          "code": {"type": "string", "minLength": 1, "maxLength": q.MAX_VALUE}}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: dict[str, Any], media_type: str = JSON, html: bool = True) -> dict[str, Any]:
    content: dict[str, Any] = {media_type: {"schema": schema}}
    if html:
        content[HTML] = {"schema": {"type": "string"}}
    return content


def _op(summary: str, op_id: str, tag: str, params: Sequence[dict[str, Any]],
        ok: dict[str, Any], errors: Sequence[str] = ("400", "500")) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    responses.update({code: _ref("responses", code) for code in errors})
    return {"get": {"summary": summary, "operationId": op_id, "tags": [tag],
                    "parameters": list(params), "responses": responses}}


def _parameters(uris: list[str]) -> dict[str, Any]:
    return {
        "f": {"name": "f", "in": "query", "required": False, "style": "form",
              "explode": False,
              "description": "Định dạng / output format: json (GeoJSON, JSON) or html. "
                             "Without it, the Accept header decides (JSON by default).",
              "schema": {"type": "string", "enum": list(q.FORMATS)}},
        "lang": {"name": "lang", "in": "query", "required": False,
                 "description": "Ngôn ngữ trang HTML / language of HTML pages.",
                 "schema": {"type": "string", "enum": list(q.LANGS), "default": "vi"}},
        "limit": {"name": "limit", "in": "query", "required": False, "style": "form",
                  "explode": False,
                  "description": "Số đối tượng tối đa một trang / features per page; "
                                 "follow the `next` link for the rest. A larger value is "
                                 "served as the maximum (not an error), as OGC API – "
                                 "Features 1.0.1 says; below 1 is a 400.",
                  "schema": {"type": "integer", "minimum": 1, "maximum": q.MAX_LIMIT,
                             "default": q.DEFAULT_LIMIT}},
        "offset": {"name": "offset", "in": "query", "required": False,
                   "description": "Số đối tượng khớp bỏ qua / matching features to skip "
                                  "(the next and prev links set it).",
                   "schema": {"type": "integer", "minimum": 0, "default": 0}},
        "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form",
                 "explode": False,
                 "description": "Only features whose geometry intersects the box: lower "
                                "corner then upper corner, axes in the order of bbox-crs "
                                "(CRS84: min lon, min lat, max lon, max lat; EPSG:4326: "
                                "latitude first). Six numbers (with heights) are accepted, "
                                "the heights ignored.",
                 "schema": {"type": "array",
                            "oneOf": [{"minItems": 4, "maxItems": 4},
                                      {"minItems": 6, "maxItems": 6}],
                            "items": {"type": "number"}}},
        "bbox-crs": {"name": "bbox-crs", "in": "query", "required": False,
                     "description": "CRS of bbox (default CRS84).",
                     "schema": {"type": "string", "format": "uri", "enum": uris,
                                "default": ogc_crs.CRS84}},
        "crs": {"name": "crs", "in": "query", "required": False,
                "description": "CRS of the returned geometries (default CRS84); the answer "
                               "names it in the Content-Crs header.",
                "schema": {"type": "string", "format": "uri", "enum": uris,
                           "default": ogc_crs.CRS84}},
        "datetime": {"name": "datetime", "in": "query", "required": False,
                     "description": "RFC 3339 date-time or interval (`..` for an open end). "
                                    "Features carry no time of their own: plan zones hold "
                                    "for the plan period 2021–2030, other layers always "
                                    "match. An empty value is refused, like any value that "
                                    "is not a date-time or an interval.",
                     "schema": {"type": "string", "minLength": 1}},
        "featureId": {"name": "featureId", "in": "path", "required": True,
                      "description": "Feature id: the integer `id` of the feature in its "
                                     "collection's published version.",
                      "schema": {"type": "integer", "minimum": 1}},
    }


def _schemas(uris: list[str]) -> dict[str, Any]:
    link = {"type": "object", "required": ["href", "rel"],
            "properties": {k: {"type": "string"} for k in ("href", "rel", "type", "title")}}
    links = {"type": "array", "items": _ref("schemas", "link")}
    return {
        "exception": {"type": "object", "required": ["code"],
                      "properties": {"code": {"type": "string"},
                                     "description": {"type": "string"}}},
        "link": link,
        "landingPage": {"type": "object", "required": ["links"],
                        "properties": {"title": {"type": "string"},
                                       "description": {"type": "string"}, "links": links}},
        "confClasses": {"type": "object", "required": ["conformsTo"],
                        "properties": {"conformsTo": {"type": "array",
                                                      "items": {"type": "string"}}}},
        "extent": {"type": "object", "properties": {
            "spatial": {"type": "object", "properties": {
                "bbox": {"type": "array", "items": {"type": "array", "minItems": 4,
                                                    "maxItems": 4,
                                                    "items": {"type": "number"}}},
                "crs": {"type": "string", "enum": [ogc_crs.CRS84]}}},
            "temporal": {"type": "object", "properties": {
                "interval": {"type": "array", "items": {
                    "type": "array", "minItems": 2, "maxItems": 2,
                    "items": {"type": "string", "format": "date-time", "nullable": True}}},
                "trs": {"type": "string"}}}}},
        "collection": {"type": "object", "required": ["id", "links"], "properties": {
            "id": {"type": "string"}, "title": {"type": "string"},
            "description": {"type": "string"}, "links": links,
            "extent": _ref("schemas", "extent"),
            "itemType": {"type": "string", "enum": ["feature"]},
            "crs": {"type": "array", "items": {"type": "string", "enum": uris}},
            "storageCrs": {"type": "string"}}},
        "collections": {"type": "object", "required": ["links", "collections"],
                        "properties": {"links": links,
                                       "collections": {"type": "array",
                                                       "items": _ref("schemas", "collection")},
                                       "crs": {"type": "array", "items": {"type": "string"}}}},
        "geometryGeoJSON": {"type": "object", "required": ["type"], "nullable": True,
                            "properties": {"type": {"type": "string", "enum": [
                                "Point", "MultiPoint", "LineString", "MultiLineString",
                                "Polygon", "MultiPolygon", "GeometryCollection"]}}},
        "featureGeoJSON": {"type": "object", "required": ["type", "geometry", "properties"],
                           "properties": {"type": {"type": "string", "enum": ["Feature"]},
                                          "id": {"type": "integer"},
                                          "geometry": _ref("schemas", "geometryGeoJSON"),
                                          "properties": {"type": "object", "nullable": True},
                                          "links": links}},
        "featureCollectionGeoJSON": {
            "type": "object", "required": ["type", "features"],
            "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                           "features": {"type": "array",
                                        "items": _ref("schemas", "featureGeoJSON")},
                           "links": links,
                           "timeStamp": {"type": "string", "format": "date-time"},
                           "numberMatched": {"type": "integer", "minimum": 0},
                           "numberReturned": {"type": "integer", "minimum": 0}}},
    }


def _responses() -> dict[str, Any]:
    exc = {JSON: {"schema": _ref("schemas", "exception")}, HTML: {"schema": {"type": "string"}}}
    return {
        "400": {"description": "Bad request: a parameter is unknown or has a bad value "
                               "(the description names it and says what would work).",
                "content": exc},
        "404": {"description": "No such collection or feature.", "content": exc},
        "500": {"description": "Server error.", "content": exc},
    }


def _items_params(fields: PublicFields) -> list[dict[str, Any]]:
    params = [_ref("parameters", name) for name in q.ITEMS_PARAMS]
    for name, ftype in fields.queryables.items():
        params.append({"name": name, "in": "query", "required": False, "style": "form",
                       "explode": False,
                       "description": f"Chỉ đối tượng có {name} bằng giá trị này / only "
                                      f"features whose {name} equals this value.",
                       "schema": dict(_TYPES[ftype])})
    return params


def ogc_openapi(root: str, store_crs: str,
                collections: Sequence[tuple[Collection, PublicFields]],
                title: str, description: str) -> dict[str, Any]:
    """The definition of the API rooted at `root` (``http://host/ogc``)."""
    uris = ogc_crs.uris_of(store_crs, (c.district for c, _ in collections))
    page = [_ref("parameters", "f"), _ref("parameters", "lang")]
    paths: dict[str, Any] = {
        "/": _op("Trang đầu / landing page", "getLandingPage", "Capabilities", page,
                 {"description": "Links to the API definition, conformance and collections.",
                  "content": _json(_ref("schemas", "landingPage"))}),
        "/conformance": _op("Chuẩn tuân thủ / conformance classes", "getConformance",
                            "Capabilities", page,
                            {"description": "The conformance classes implemented.",
                             "content": _json(_ref("schemas", "confClasses"))}),
        "/api": _op("Định nghĩa API / this API definition", "getAPI", "Capabilities", page,
                    {"description": "This document (OpenAPI 3.0).",
                     "content": _json({"type": "object"}, OPENAPI_JSON)}),
        "/collections": _op("Các tập dữ liệu / the collections", "getCollections",
                            "Capabilities", page,
                            {"description": "The published layers, one collection each.",
                             "content": _json(_ref("schemas", "collections"))}),
    }
    for coll, fields in collections:
        cid = coll.id
        tag = cid
        paths[f"/collections/{cid}"] = _op(
            f"{coll.title}", f"describeCollection_{cid}", tag, page,
            {"description": "The collection.", "content": _json(_ref("schemas", "collection"))},
            ("400", "404", "500"))
        paths[f"/collections/{cid}/items"] = _op(
            f"Đối tượng / features of {cid}", f"getFeatures_{cid}", tag, _items_params(fields),
            {"description": "A page of features (GeoJSON); the Content-Crs header names "
                            "the CRS of the coordinates.",
             "headers": {"Content-Crs": {"schema": {"type": "string"}}},
             "content": _json(_ref("schemas", "featureCollectionGeoJSON"), GEOJSON)},
            ("400", "404", "500"))
        paths[f"/collections/{cid}/items/{{featureId}}"] = _op(
            f"Một đối tượng / one feature of {cid}", f"getFeature_{cid}", tag,
            [_ref("parameters", "featureId"), _ref("parameters", "crs"), *page],
            {"description": "The feature (GeoJSON).",
             "headers": {"Content-Crs": {"schema": {"type": "string"}}},
             "content": _json(_ref("schemas", "featureGeoJSON"), GEOJSON)},
            ("400", "404", "500"))
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "description": description, "version": "1.0.0",
                 "license": {"name": "Apache-2.0",
                             "url": "https://www.apache.org/licenses/LICENSE-2.0"}},
        "servers": [{"url": root}],
        "tags": [{"name": "Capabilities"}] + [{"name": c.id, "description": c.title}
                                             for c, _ in collections],
        "paths": paths,
        "components": {"parameters": _parameters(uris),
                       "schemas": _schemas(uris), "responses": _responses()},
    }
