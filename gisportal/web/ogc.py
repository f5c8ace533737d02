"""OGC API – Features under ``/ogc`` (contract): a thin layer over :mod:`gisportal.outputs.ogc`.

Each view checks the query string, asks the plain functions for the answer and sends
it as JSON/GeoJSON or as an HTML page: ``f=json|html`` decides, else the Accept header
(a browser gets HTML, GDAL, QGIS and OWSLib get JSON); so every answer varies by
``Accept``, and says so (``Vary``), for caches. JSON links carry no ``f``
(`gisportal.outputs.ogc.links`). Errors — a 400, a 404, a 405 found by routing, any
other — are the standard's exception document ``{"code", "description"}`` (an HTML
page for HTML requests), never a 500 for bad input.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from gisportal.base import seeds
from gisportal.base.errors import GisportalError, NotFoundError
from gisportal.outputs.display import display_geometries
from gisportal.outputs.ogc import collections as oc
from gisportal.outputs.ogc import crs as ogc_crs
from gisportal.outputs.ogc import geojson, openapi
from gisportal.outputs.ogc import query as q
from gisportal.outputs.ogc.links import GEOJSON, HTML, JSON, OPENAPI_JSON, link, url
from gisportal.web import get_store, i18n

__all__ = ["bp"]

logger = logging.getLogger(__name__)

bp = Blueprint("ogc", __name__)

#: OGC exception codes by HTTP status (OGC API Common / OWS Common names).
_EXCEPTION_CODES = {400: "InvalidParameterValue", 404: "NotFound", 405: "OperationNotSupported",
                    409: "Conflict", 406: "NotAcceptable"}

i18n.add_strings({
    "ogc_title": ("Dịch vụ dữ liệu OGC API – Features", "OGC API – Features data service"),
    "ogc_intro": ("Các lớp dữ liệu đã công bố của từng huyện, theo chuẩn mở OGC API – Features: "
                  "mở trực tiếp trong QGIS, ArcGIS hoặc GDAL.",
                  "The published layers of every district, through the open OGC API – "
                  "Features standard: open them directly in QGIS, ArcGIS or GDAL."),
    "ogc_how": ("Trong QGIS: Lớp → Thêm lớp → Thêm lớp WFS / OGC API – Features, dán địa chỉ "
                "này. Với GDAL:", "In QGIS: Layer → Add Layer → Add WFS / OGC API – Features "
                "Layer, paste this address. With GDAL:"),
    "ogc_collections": ("Tập dữ liệu", "Collections"),
    "ogc_no_collections": ("Chưa có lớp dữ liệu nào được công bố.", "Nothing is published yet."),
    "ogc_conformance": ("Chuẩn tuân thủ", "Conformance classes"),
    "ogc_api": ("Định nghĩa API (OpenAPI 3)", "API definition (OpenAPI 3)"),
    "ogc_items": ("Đối tượng", "Features"),
    "ogc_matched": ("Số đối tượng khớp", "Features matched"),
    "ogc_returned": ("Trên trang này", "On this page"),
    "ogc_next": ("Trang sau", "Next page"),
    "ogc_prev": ("Trang trước", "Previous page"),
    "ogc_as_json": ("Dạng JSON", "As JSON"),
    "ogc_as_geojson": ("Dạng GeoJSON", "As GeoJSON"),
    "ogc_extent": ("Phạm vi (kinh độ, vĩ độ)", "Extent (longitude, latitude)"),
    "ogc_period": ("Thời kỳ", "Period"),
    "ogc_crs": ("Hệ tọa độ", "Coordinate reference systems"),
    "ogc_storage_crs": ("Hệ tọa độ lưu trữ", "Storage CRS"),
    "ogc_queryables": ("Lọc theo thuộc tính (bằng)", "Filter by property (equals)"),
    "ogc_feature": ("Đối tượng", "Feature"),
    "ogc_property": ("Thuộc tính", "Property"),
    "ogc_value": ("Giá trị", "Value"),
    "ogc_no_features": ("Không có đối tượng nào khớp.", "No feature matches."),
    "ogc_path": ("Đường dẫn", "Path"),
    "ogc_parameters": ("Tham số", "Parameters"),
    "ogc_collection": ("Tập dữ liệu", "Collection"),
})


# -- plumbing ---------------------------------------------------------------------------------


def _root() -> str:
    """The API root as the client sees it, e.g. ``http://host:5000/ogc``."""
    return request.url_root.rstrip("/") + "/ogc"


def _args() -> dict[str, list[str]]:
    return request.args.to_dict(flat=False)


def _wants_html() -> bool:
    """Whether the Accept header prefers HTML to JSON (browsers do; GIS clients do not)."""
    best = request.accept_mimetypes.best_match([JSON, GEOJSON, HTML], default=JSON)
    return best == HTML and request.accept_mimetypes[HTML] > request.accept_mimetypes[JSON]


def _format(allowed: tuple[str, ...] = q.PAGE_PARAMS) -> str:
    """Check the page's parameters and decide between ``json`` and ``html``."""
    args = _args()
    q.check_params(args, allowed)
    return q.parse_format(args, _wants_html())


def _json(doc: Any, media_type: str = JSON, status: int = 200) -> Response:
    return Response(current_app.json.dumps(doc), status=status, mimetype=media_type)


def _self_links(path: str, title: str, json_type: str = JSON) -> list[dict[str, str]]:
    """``self`` (the JSON answer, no ``f``: `links`) and its HTML ``alternate``."""
    root = _root()
    params = {k: v for k, v in request.args.items() if k != "f"}
    return [link(url(root, path, params), "self", json_type, title),
            link(url(root, path, {**params, "f": "html"}), "alternate", HTML,
                 "Trang HTML / as HTML")]


def _json_url(href: str) -> str:
    """`href` of a JSON answer as the HTML page's "as JSON" link: a browser's Accept
    header would get the page again, so this one link says ``f=json``."""
    return href + ("&" if "?" in href else "?") + "f=json"


@bp.after_request
def _vary(response: Response) -> Response:
    """Every /ogc answer depends on the Accept header (JSON or HTML)."""
    response.vary.add("Accept")
    return response


def _for_map(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with their shapes for the HTML page's map (`gisportal.outputs.display`):
    exact to half a pixel, a million-vertex parcel as a few hundred vertices. The JSON
    answers stay exact."""
    shapes = display_geometries([r["geometry"] for r in records])
    return [{**r, "geometry": g} for r, g in zip(records, shapes, strict=True)]


def _script_json(text: str) -> str:
    """JSON text that is safe inside a ``<script>`` element (no ``</script>`` in a value)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id_cache() -> q.IdCache:
    cache = current_app.extensions.get("gisportal_ogc_ids")
    if cache is None:
        cache = current_app.extensions.setdefault("gisportal_ogc_ids", q.IdCache())
    return cache


def _province() -> tuple[str, str]:
    prov = seeds.province()
    return prov["name"], prov.get("name_en", prov["name"])


def _service_title() -> str:
    vi, en = _province()
    return (f"Cổng thông tin quy hoạch sử dụng đất – {vi} / Land-use planning portal – {en} "
            "(OGC API – Features)")


def _service_description() -> str:
    return ("Các lớp thửa đất địa chính, quy hoạch sử dụng đất 2021–2030 và ranh giới hành "
            "chính đã công bố của từng huyện; không có dữ liệu cá nhân. / The published "
            "cadastral parcels, 2021–2030 land-use plans and administrative boundaries of "
            "each district; no personal data. Collections are <district code>-<kind>, "
            "e.g. 678-parcels.")


# -- errors -----------------------------------------------------------------------------------


def _exception(status: int, description: str) -> Response:
    """The OGC exception document, or the portal's error page for HTML requests."""
    if request.args.get("f") == "html" or ("f" not in request.args and _wants_html()):
        from gisportal.web.errors import error_page  # (errors.py imports this module)

        return Response(error_page(status, {"message": description}), status=status,
                        mimetype=HTML)
    code = _EXCEPTION_CODES.get(status, "NoApplicableCode")
    response = _json({"code": code, "description": description}, status=status)
    response.vary.add("Accept")  # (routing errors do not pass the blueprint's hooks)
    return response


@bp.errorhandler(GisportalError)
def gisportal_exception(err: GisportalError) -> Response:
    """A refusal under /ogc as the OGC exception (the app's handler calls it too, for
    errors raised before the view, such as a bad API token)."""
    return _exception(err.http_status, err.one_line())


@bp.errorhandler(HTTPException)
def http_exception(err: HTTPException) -> Response:
    """An HTTP error under /ogc as the OGC exception, keeping the error's own headers.

    Also called by the app's handler (``web/errors.py``) for errors raised before any
    view is chosen — a 405 for POST or TRACE is found by routing, where no blueprint's
    handler applies — so every /ogc answer has the same shape. ``Allow`` (405) and the
    like come from the exception: RFC 9110 requires ``Allow`` on a 405.
    """
    response = _exception(err.code or 500, f"{err.name}: {err.description or ''}".strip(": "))
    for name, value in err.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


@bp.errorhandler(Exception)
def _unexpected(err: Exception) -> Response:
    logger.exception("OGC API request %s failed", request.full_path)
    return _exception(500, "Lỗi máy chủ / internal server error; the error was logged.")


# -- capabilities -----------------------------------------------------------------------------


@bp.get("/ogc", strict_slashes=False)
def landing() -> Response | str:
    fmt = _format()
    root = _root()
    links = [
        *_self_links("", "Trang đầu / this document"),
        link(f"{root}/api", "service-desc", OPENAPI_JSON,
             "Định nghĩa API (OpenAPI 3.0) / the API definition"),
        link(url(root, "/api", {"f": "html"}), "service-doc", HTML,
             "Tài liệu API / the API documentation"),
        link(f"{root}/conformance", "conformance", JSON,
             "Chuẩn tuân thủ / conformance classes"),
        link(f"{root}/conformance", "http://www.opengis.net/def/rel/ogc/1.0/conformance",
             JSON, "Chuẩn tuân thủ / conformance classes"),
        link(f"{root}/collections", "data", JSON, "Các tập dữ liệu / the collections"),
        link(f"{root}/collections", "http://www.opengis.net/def/rel/ogc/1.0/data", JSON,
             "Các tập dữ liệu / the collections"),
    ]
    doc = {"title": _service_title(), "description": _service_description(), "links": links}
    if fmt == "html":
        return render_template("ogc/landing.html", doc=doc, root=root)
    return _json(doc)


@bp.get("/ogc/conformance")
def conformance() -> Response | str:
    fmt = _format()
    doc = {"conformsTo": list(openapi.CONFORMANCE)}
    if fmt == "html":
        return render_template("ogc/conformance.html", doc=doc, root=_root())
    return _json(doc)


@bp.get("/ogc/api")
def api() -> Response | str:
    fmt = _format()
    store = get_store()
    colls = oc.published_collections(store)
    doc = openapi.ogc_openapi(_root(), store.crs,
                              [(c, oc.public_fields(store, c.version)) for c in colls],
                              _service_title(), _service_description())
    if fmt == "html":
        return render_template("ogc/api.html", doc=doc, root=_root())
    return _json(doc, OPENAPI_JSON)


@bp.get("/ogc/collections")
def collections() -> Response | str:
    fmt = _format()
    store = get_store()
    root = _root()
    colls = oc.published_collections(store)
    doc = {"links": _self_links("/collections", "Các tập dữ liệu / the collections"),
           "collections": [oc.collection_json(c, root, store.crs) for c in colls],
           "crs": ogc_crs.uris_of(store.crs, (c.district for c in colls))}
    if fmt == "html":
        return render_template("ogc/collections.html", doc=doc, root=root)
    return _json(doc)


@bp.get("/ogc/collections/<collection_id>")
def collection(collection_id: str) -> Response | str:
    fmt = _format()
    store = get_store()
    coll = oc.get_collection(store, collection_id)
    doc = oc.collection_json(coll, _root(), store.crs)
    if fmt == "html":
        fields = oc.public_fields(store, coll.version)
        return render_template("ogc/collection.html", doc=doc, root=_root(),
                               queryables=fields.queryables, temporal=coll.temporal)
    return _json(doc)


@bp.get("/ogc/collections/<collection_id>/styles/default.<any(sld, qml):fmt>")
def collection_style(collection_id: str, fmt: str) -> Response:
    """The collection's official style (land-use colours and names), as SLD 1.1 or QML;
    ``?lang=en`` for English names. The fields are those the items carry."""
    from gisportal.outputs import styles

    coll = oc.get_collection(get_store(), collection_id)
    lang = "en" if request.args.get("lang") == "en" else "vi"
    if fmt == "sld":
        body, mimetype = styles.style_sld(coll.kind, lang, layer_name=coll.id), oc.SLD
    else:
        body, mimetype = styles.style_qml(coll.kind, lang), oc.QML
    response = Response(body)
    response.headers["Content-Type"] = f"{mimetype}; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# -- features ---------------------------------------------------------------------------------


@bp.get("/ogc/collections/<collection_id>/items")
def items(collection_id: str) -> Response | str:
    store = get_store()
    coll = oc.get_collection(store, collection_id)
    fields = oc.public_fields(store, coll.version)
    args = _args()
    query = q.parse_items_query(args, fields, store.crs, ogc_crs.survey_crs(coll.district))
    fmt = q.parse_format(args, _wants_html())
    selection = q.select(store, coll, query, _id_cache())
    records = store.records_by_id(coll.version.id, selection.ids, columns=fields.columns)
    root = _root()
    base = f"{root}/collections/{coll.id}/items"
    pages = {"next": query.offset + query.limit if selection.has_next else None,
             "prev": max(0, query.offset - query.limit) if query.offset > 0 else None}
    titles = {"next": "Trang sau / next page", "prev": "Trang trước / previous page"}
    links = [
        link(url(base, "", query.link_params(f=None)), "self", GEOJSON,
             "Trang này / this page"),
        link(url(base, "", query.link_params(f="html")), "alternate", HTML,
             "Trang HTML / as HTML"),
    ]
    links += [link(url(base, "", query.link_params(f=None, offset=offset or None)), rel,
                   GEOJSON, titles[rel])
              for rel, offset in pages.items() if offset is not None]
    links.append(link(f"{root}/collections/{coll.id}", "collection", JSON, coll.title))
    if fmt == "html":
        features = geojson.features_json(_for_map(records), fields,
                                         ogc_crs.offered(store.crs)[0], store.crs)
        rows = [(r["fid"], geojson.properties(r, fields)) for r in records]
        html_pages = {rel: None if offset is None else
                      url(base, "", query.link_params(f="html", offset=offset or None))
                      for rel, offset in pages.items()}
        return render_template(
            "ogc/items.html", coll=coll, rows=rows, columns=fields.columns, root=root,
            matched=selection.number_matched, offset=query.offset,
            map_data=_script_json("[" + features + "]"),
            next_url=html_pages["next"], prev_url=html_pages["prev"],
            json_url=_json_url(links[0]["href"]))
    body = geojson.feature_collection(
        geojson.features_json(records, fields, query.crs, store.crs), len(records), links=links,
        number_matched=selection.number_matched, time_stamp=_now())
    return Response(body, mimetype=GEOJSON, headers={"Content-Crs": f"<{query.crs.uri}>"})


@bp.get("/ogc/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str) -> Response | str:
    store = get_store()
    coll = oc.get_collection(store, collection_id)
    args = _args()
    q.check_params(args, q.ITEM_PARAMS)
    fmt = q.parse_format(args, _wants_html())
    crs = ogc_crs.parse_crs(request.args.get("crs"), store.crs, "crs",
                            ogc_crs.survey_crs(coll.district))
    fields = oc.public_fields(store, coll.version)
    fid = int(feature_id) if feature_id.isascii() and feature_id.isdigit() \
        and len(feature_id) <= 18 else None
    records = store.records_by_id(coll.version.id, [fid], columns=fields.columns) \
        if fid else []
    if not records:
        raise NotFoundError(f"there is no feature {feature_id[:40]!r} in {coll.id}",
                            where="featureId",
                            fix=f"feature ids are the integer id of each feature in "
                                f"/ogc/collections/{coll.id}/items")
    root = _root()
    href = f"{root}/collections/{coll.id}/items/{fid}"
    params = {k: v for k, v in request.args.items() if k != "f"}
    links = [link(url(href, "", params), "self", GEOJSON, "Đối tượng này / this feature"),
             link(url(href, "", {**params, "f": "html"}), "alternate", HTML,
                  "Trang HTML / as HTML"),
             link(f"{root}/collections/{coll.id}", "collection", JSON, coll.title)]
    if fmt == "html":
        feature = geojson.features_json(_for_map(records), fields,
                                        ogc_crs.offered(store.crs)[0], store.crs)
        return render_template("ogc/item.html", coll=coll, fid=fid, root=root,
                               props=geojson.properties(records[0], fields),
                               map_data=_script_json("[" + feature + "]"),
                               json_url=_json_url(links[0]["href"]))
    feature = geojson.features_json(records, fields, crs, store.crs)
    return Response(geojson.feature_json(feature, links), mimetype=GEOJSON,
                    headers={"Content-Crs": f"<{crs.uri}>"})


@bp.route("/ogc/<path:rest>")
def unknown(rest: str) -> Response:
    raise NotFoundError(f"there is nothing at /ogc/{rest[:80]}", where="path",
                        fix="start from the landing page /ogc, or list the collections at "
                            "/ogc/collections")
