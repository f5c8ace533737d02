"""Planning projects for residents: the list, a map page per project, its layers as
GeoJSON, its decision and documents.

Thin over `gisportal.services.projects`. A project's published layers are small (a
1/2000 plan has a few thousand lots at most), so the page fetches them as GeoJSON
(`/api/projects/<id>/<kind>.geojson`) instead of tiles; the page itself embeds no layer.
Only published versions are ever served here, and only the columns of the layer's
allow-list (`gisportal.outputs.privacy`). Projects without a published layer (being
prepared, under appraisal) are listed with their status but show nothing drawn: a draft
never changes what the public sees.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np
import shapely
from flask import Blueprint, Response, jsonify, render_template, request

from gisportal.base import seeds
from gisportal.base.crs import lonlat_bounds, to_lonlat
from gisportal.base.errors import NotFoundError
from gisportal.outputs import privacy, styles
from gisportal.outputs.compare.pairs import default_pair
from gisportal.services import decisions, projects
from gisportal.store import projects as catalogue
from gisportal.store.base import PROJECT_KINDS, check_project
from gisportal.store.derived import derived
from gisportal.web import get_home, get_store, i18n
from gisportal.web.i18n import current_lang, js_strings

bp = Blueprint("projects", __name__)

i18n.add_strings({
    "projects_title": ("Đồ án quy hoạch xây dựng, đô thị", "Construction and urban plans"),
    "projects_intro": ("Các đồ án quy hoạch chung, phân khu và chi tiết đã công bố: nhấn "
                       "vào một đồ án để xem các ô quy hoạch, chỉ tiêu và chỉ giới đường đỏ.",
                       "The general, zoning and detailed plans published: open one to see "
                       "its lots, their indicators and the red lines."),
    "projects_none": ("Chưa có đồ án nào được công bố.", "No plan has been published yet."),
    "project_level": ("Cấp độ", "Level"),
    "project_scale": ("Tỷ lệ", "Scale"),
    "project_status": ("Tình trạng", "Status"),
    "project_decision": ("Quyết định phê duyệt", "Approving decision"),
    "project_documents": ("Hồ sơ đồ án", "Documents"),
    "project_no_documents": ("Chưa có tài liệu công bố.", "No document published."),
    "project_not_published": ("Đồ án chưa được công bố bản vẽ.",
                              "The plan's drawing is not published yet."),
    "project_lots": ("Ô quy hoạch", "Planned lots"),
    "project_lot": ("Ô", "Lot"),
    "project_function": ("Chức năng", "Function"),
    "project_density": ("Mật độ xây dựng tối đa", "Max. building density"),
    "project_floors": ("Tầng cao", "Floors"),
    "project_far": ("Hệ số sử dụng đất", "Floor-area ratio"),
    "project_red_line": ("Chỉ giới đường đỏ", "Red line"),
    "project_building_line": ("Chỉ giới xây dựng", "Building line"),
    "project_road": ("Đường", "Road"),
    "project_width": ("Lộ giới", "Right of way"),
    "project_area_line": ("Ranh giới đồ án", "Project boundary"),
    "project_district": ("Huyện (cũ)", "Former district"),
    "project_open": ("Xem đồ án", "Open the plan"),
    "project_click_hint": ("Nhấn vào một ô quy hoạch để xem chức năng và chỉ tiêu.",
                           "Click a lot to see its function and indicators."),
    "project_no_layer": ("Không tải được bản vẽ của đồ án.",
                         "The plan's drawing could not be loaded."),
    "project_compare": ("Điều chỉnh đã thay đổi gì", "What the adjustment changed"),
    # The district page's answer panel (static/js/gp/panel.js): the look-up's zoning.
    "zoning_plans": ("Quy hoạch xây dựng, đô thị", "Construction and urban plans"),
    "zoning_road": ("Phần nằm trong lộ giới đường quy hoạch", "Part inside a planned road"),
    "zoning_setback": ("Chỉ giới xây dựng lùi", "Building line set back"),
})


def project_or_404(project_id: str) -> catalogue.Project:
    """The catalogued project `project_id` (its page and the compare page's), else a
    404 that says so in both languages."""
    try:
        pid = check_project(project_id)
    except NotFoundError:
        pid = None
    if pid is None:
        raise NotFoundError(f"there is no planning project {project_id[:70]!r}",
                            where="project", fix="open the list of plans at /projects",
                            code="PROJECT-UNKNOWN",
                            what_vi="không có đồ án quy hoạch này",
                            fix_vi="mở danh sách đồ án tại /projects")
    try:
        return catalogue.get(get_home(), pid)
    except NotFoundError:
        raise NotFoundError(f"there is no planning project {pid!r}", where="project",
                            fix="open the list of plans at /projects",
                            code="PROJECT-UNKNOWN", what_vi="không có đồ án quy hoạch này",
                            fix_vi="mở danh sách đồ án tại /projects") from None


def _lonlat(geoms):
    """Store-CRS geometries in WGS 84 (lon, lat; 7 decimals, about 1 cm)."""
    xy = shapely.get_coordinates(geoms)
    if not len(xy):
        return geoms
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
    return shapely.set_coordinates(geoms, np.round(np.column_stack([lon, lat]), 7))


def _summary(project: catalogue.Project, published: dict[str, Any], lang: str
             ) -> dict[str, Any]:
    """A project as the API lists it: its description, what is published, the decision
    of its published lots (links that serve its PDF and documents)."""
    out = projects.describe(project, lang)
    out["bounds"] = lonlat_bounds(project.bounds, digits=6) if project.bounds else None
    try:
        out["district_name"] = seeds.district(project.district).name
    except KeyError:
        out["district_name"] = None
    out["published"] = sorted(published)
    lots = published.get("zoning_lots")
    found = decisions.decision_of(lots) if lots is not None else None
    out["decision"] = None if found is None else {
        "number": found.number, "date": found.date, "authority": found.authority,
        "pdf": f"/projects/{project.id}/decisions/{found.pdf_sha256}.pdf"
        if found.pdf_sha256 else None}
    for doc in out["documents"]:
        doc["url"] = f"/projects/{project.id}/documents/{doc['pdf_sha256']}.pdf"
    out["url"] = f"/projects/{project.id}"
    out["layers"] = {kind: f"/api/projects/{project.id}/{kind}.geojson"
                     for kind in sorted(published)}
    return out


def _all(lang: str) -> list[dict[str, Any]]:
    store = get_store()
    published = store.published_projects()
    by_project: dict[str, dict[str, Any]] = {}
    for (pid, kind), version in published.items():
        by_project.setdefault(pid, {})[kind] = version
    return [_summary(p, by_project.get(p.id, {}), lang)
            for p in catalogue.list_projects(get_home())]


@bp.get("/api/projects")
def api_projects():
    """Every planning project with its status and what of it is published."""
    response = jsonify(_all(current_lang()))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/api/projects/<project_id>")
def api_project(project_id: str):
    """One project (404 ``PROJECT-UNKNOWN``)."""
    project = project_or_404(project_id)
    return jsonify(_summary(project, projects.published_layers(get_store(), project.id),
                            current_lang()))


@bp.get("/api/projects/<project_id>/<kind>.geojson")
def api_project_layer(project_id: str, kind: str):
    """A published layer of the project as GeoJSON (WGS 84, RFC 7946 winding), only the
    public columns; 404 when the project has no such published layer."""
    project = project_or_404(project_id)
    version = projects.published_layers(get_store(), project.id).get(kind) \
        if kind in PROJECT_KINDS else None
    if version is None:
        raise NotFoundError(f"project {project.id} has no published {kind[:30]} layer",
                            where="kind", fix="use a layer the project lists",
                            code="PROJECT-LAYER-UNKNOWN",
                            what_vi="đồ án chưa công bố lớp dữ liệu này",
                            fix_vi="chọn lớp dữ liệu mà đồ án đã công bố")
    store = get_store()
    # What may go out is the version's allow-list now (a planner may mark a column
    # public later): it is part of the cache key and of the ETag.
    columns = tuple(privacy.public_columns(version).columns(store.columns(version.id)))
    etag = f"project-{version.id}-{zlib.crc32(repr(columns).encode()):x}"
    if request.if_none_match.contains(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"'})
    body = derived(store, version, ("project-geojson", version.project, columns),
                   lambda s, v: _layer_geojson(s, v, columns))
    response = Response(body, mimetype="application/geo+json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _layer_geojson(store, version, columns: tuple[str, ...]) -> str:
    """The GeoJSON text of a project's layer: WGS 84, rings wound as RFC 7946 says (on
    the coordinates as written), lots with their function's colour and names. Built
    once per version and allow-list (`derived`): the page of every visitor asks it."""
    frame = store.read(version.id, columns=list(columns))
    functions = seeds.zoning_functions()
    geoms = shapely.orient_polygons(_lonlat(np.asarray(frame.geometry.values, dtype=object)),
                                    exterior_cw=False)
    texts = shapely.to_geojson(geoms)
    features = []
    for text, row in zip(texts, frame.drop(columns="geometry").to_dict("records"),
                         strict=True):
        props = {k: (None if v is None or (isinstance(v, float) and v != v) else v)
                 for k, v in row.items()}
        if version.kind == "zoning_lots":
            f = functions.get(props.get("function")) if isinstance(
                props.get("function"), str) else None
            props["color"] = f.color if f else functions.color("")
            props["function_name"] = f.name_vi if f else None
            props["function_name_en"] = f.name_en if f else None
        features.append(f'{{"type":"Feature","properties":'
                        f'{json.dumps(props, ensure_ascii=False, default=str)},'
                        f'"geometry":{text if text is not None else "null"}}}')
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"


@bp.get("/projects")
def projects_page():
    """The list of planning projects."""
    lang = current_lang()
    return render_template("projects.html", rows=_all(lang))


@bp.get("/projects/<project_id>")
def project_page(project_id: str):
    """A project's map: its lots coloured by function with their codes and indicators,
    the red and building lines, the boundary, the decision and documents."""
    project = project_or_404(project_id)
    lang = current_lang()
    info = _summary(project, projects.published_layers(get_store(), project.id), lang)
    functions = seeds.zoning_functions()
    legend = [{"code": f.code, "color": f.color,
               "name": f.name_en if lang == "en" else f.name_vi} for f in functions]
    area = None
    if project.boundary is not None:
        area = json.loads(shapely.to_geojson(_lonlat(
            shapely.orient_polygons(project.boundary, exterior_cw=False))))
    config = {"project": info, "area": area, "legend": legend, "lang": lang,
              "styles": styles.project_page_styles()}
    strings = {k: v for k, v in js_strings().items() if k.startswith("project_")}
    # An adjusted plan links to what its adjustment changed (web/compare.py).
    compare_url = f"/projects/{project.id}/compare" if default_pair(
        get_store(), project.district, "zoning_lots", project=project.id) else None
    return render_template("project.html", p=info, config=config, strings=strings,
                           compare_url=compare_url)


@bp.get("/projects/<project_id>/documents/<sha256>.pdf")
def project_document(project_id: str, sha256: str):
    """A document of the project (public: the project lists it for residents)."""
    from gisportal.web.planner_review import send_area_file

    project = project_or_404(project_id)
    doc = next((d for d in project.documents if d.get("pdf_sha256") == sha256), None)
    key = decisions.pdf_key(sha256)
    area = get_home().decision_area
    if doc is None or not area.exists(key):
        raise NotFoundError("the project has no such document", where="document",
                            fix="open the document from the project's page",
                            code="PDF-UNKNOWN", what_vi="đồ án không có tài liệu này",
                            fix_vi="mở tài liệu từ trang của đồ án")
    response = send_area_file(area, key, mimetype="application/pdf",
                              download_name=str(doc.get("pdf_name") or "tai_lieu.pdf"),
                              max_age=3600, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/projects/<project_id>/decisions/<sha256>.pdf")
def project_decision(project_id: str, sha256: str):
    """The signed decision of a published (or superseded) version of the project's
    lots; a draft's decision stays with the staff (`/planner/decisions/`)."""
    from gisportal.web.planner_review import send_area_file

    project = project_or_404(project_id)
    key = decisions.pdf_key(sha256)
    citing = [v for v in get_store(primary=True).versions(kind="zoning_lots",
                                                         project=project.id)
              if v.status in ("published", "superseded")
              and (d := decisions.decision_of(v)) is not None and d.pdf_sha256 == sha256]
    area = get_home().decision_area
    if not citing or not area.exists(key):
        raise NotFoundError("there is no decision PDF with this id", where="decision",
                            fix="open the decision from the project's page",
                            code="PDF-UNKNOWN", what_vi="không có quyết định này",
                            fix_vi="mở quyết định từ trang của đồ án")
    name = decisions.decision_of(citing[0]).pdf_name or "quyet_dinh.pdf"
    response = send_area_file(area, key, mimetype="application/pdf", download_name=name,
                              max_age=3600, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
