"""The public comparison of two versions of a layer: what a plan adjustment changed.

``/districts/<code>/<kind>/compare?from=&to=`` explains the change to residents: counts
per change type, m² per land-use code with the official colours, and a map coloured
by change type. ``/projects/<id>/compare?from=&to=`` is the same page for a planning
project's lots (issue 15): lots whose function or indicators changed, m² per function.
One page, one script and one API serve both (`_Layer` says which layer it is). The
page embeds no layer: its map fetches the changed features from ``/api/compare``
(``?district=&kind=`` or ``?project=&kind=zoning_lots``; all at once for a small diff,
by the box in view for a big one), and ``/api/compare/summary`` answers the summary
alone. Comparisons are computed once per
pair (:mod:`gisportal.outputs.compare.cache`). Residents see published and superseded versions
only; a draft answers 404, exactly as an id that does not exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import folium
import numpy as np
import shapely
from flask import Blueprint, jsonify, render_template, request
from flask_login import current_user
from markupsafe import escape
from pyproj import CRS
from shapely.geometry import mapping

from gisportal.accounts.roles import can
from gisportal.base import crs as vncrs
from gisportal.base import formats, seeds
from gisportal.base.errors import NotFoundError, UsageError
from gisportal.base.models import layer_model
from gisportal.outputs.compare import (
    INDICATOR_FIELDS,
    PUBLIC_STATUSES,
    TYPE_COLORS,
    TYPES,
    Comparison,
    cached_comparison,
    check_pair,
    default_pair,
    layer_versions,
    parse_version_id,
    types_of,
)
from gisportal.outputs.mapassets import map_header, offline_map
from gisportal.store.base import Store, Version, check_kind
from gisportal.store.derived import derived
from gisportal.store.projects import Project
from gisportal.web import get_store
from gisportal.web.i18n import add_strings, current_lang, js_strings, tr
from gisportal.web.projects import project_or_404

__all__ = ["bp", "PAGE_LIMIT", "MAX_LIMIT"]

bp = Blueprint("compare", __name__)

#: Changed features per API answer unless ``limit`` says otherwise; a diff up to this
#: size is drawn whole, a bigger one by the box in view.
PAGE_LIMIT = 2000
#: Largest ``limit`` accepted: a page of this many parcels is a few MB of GeoJSON.
MAX_LIMIT = 10_000
#: Changed lots listed on a project's page (a plan has a few hundred lots; the map
#: shows them all whatever this is).
LIST_LIMIT = 300
#: Metres the commune outlines drawn for orientation are simplified by.
OUTLINE_SIMPLIFY_M = 20.0

add_strings({
    "cmp_title": ("So sánh hai phiên bản", "Compare two versions"),
    "cmp_intro": ("Những thay đổi giữa hai phiên bản đã công bố của lớp dữ liệu: đối tượng "
                  "được thêm mới, bị xóa, thay đổi hình thể, đổi số hiệu hoặc thay đổi mục "
                  "đích sử dụng, và diện tích của từng loại đất.",
                  "What changed between two published versions of the layer: features "
                  "added, removed, reshaped, renumbered or whose land use changed, and the "
                  "area of each land-use type."),
    "cmp_before": ("Trước", "Before"),
    "cmp_after": ("Sau", "After"),
    "cmp_pick": ("Chọn phiên bản", "Pick the versions"),
    "cmp_submit": ("So sánh", "Compare"),
    "cmp_changes": ("Đối tượng thay đổi", "Features changed"),
    "cmp_change": ("Loại thay đổi", "Change"),
    "cmp_count": ("Số lượng", "Count"),
    "cmp_areas": ("Diện tích theo loại đất (m²)", "Area by land use (m²)"),
    "cmp_code": ("Loại đất", "Land use"),
    "cmp_delta": ("Tăng (+) / giảm (−)", "Change (+/−)"),
    "cmp_total": ("Tổng cộng", "Total"),
    "cmp_none_code": ("(không có mã)", "(no code)"),
    "cmp_type_added": ("Thêm mới", "Added"),
    "cmp_type_removed": ("Bị xóa", "Removed"),
    "cmp_type_use_changed": ("Thay đổi mục đích sử dụng", "Land use changed"),
    "cmp_type_reshaped": ("Thay đổi hình thể", "Reshaped"),
    "cmp_type_renumbered": ("Đổi số hiệu", "Renumbered"),
    "cmp_type_unchanged": ("Không thay đổi", "Unchanged"),
    "cmp_status_published": ("đang công bố", "published"),
    "cmp_status_superseded": ("đã được thay thế", "superseded"),
    "cmp_status_draft": ("bản nháp", "draft"),
    "cmp_nothing": ("Chưa có hai phiên bản đã công bố để so sánh: lớp dữ liệu này mới được "
                    "công bố một lần hoặc chưa được công bố.",
                    "There are no two published versions to compare yet: this layer has "
                    "been published once, or not at all."),
    "cmp_no_change": ("Hai phiên bản giống nhau: không có thay đổi nào.",
                      "The two versions are the same: nothing changed."),
    "cmp_loading": ("Đang tải các thay đổi…", "Loading the changes…"),
    "cmp_shown_all": ("Bản đồ hiển thị toàn bộ {n} đối tượng thay đổi.",
                      "The map shows all {n} changed features."),
    "cmp_shown_part": ("Bản đồ hiển thị {shown} trong số {total} đối tượng thay đổi trong "
                       "khung nhìn; phóng to để xem thêm.",
                       "The map shows {shown} of the {total} changed features in view; zoom "
                       "in to see more."),
    "cmp_shown_view": ("Bản đồ hiển thị {n} đối tượng thay đổi trong khung nhìn.",
                       "The map shows the {n} changed features in view."),
    "cmp_load_error": ("Không tải được các thay đổi", "Could not load the changes"),
    "cmp_shape_before": ("Hình thể trước (nét đứt)", "Shape before (dashed)"),
    "cmp_number": ("Số hiệu", "Number"),
    "cmp_notes": ("Diện tích tính từ hình thể trong hệ tọa độ VN-2000 / TM-3, không phải "
                  "diện tích kê khai. Mã kết hợp (vd. ONT+CLN) được tính là một loại riêng "
                  "vì tệp dữ liệu không cho biết diện tích của từng phần.",
                  "Areas are computed from the shapes in VN-2000 / TM-3, not the declared "
                  "areas. A combined code (e.g. ONT+CLN) counts as a type of its own: the "
                  "data does not say how much of the parcel each part takes."),
    "cmp_communes": ("Ranh giới xã", "Commune boundaries"),
    # A planning project's lots have a function and a code, not a land use and a
    # number: the page says so (`LOTS_WORDS`).
    "cmp_intro_lots": ("Những thay đổi giữa hai phiên bản đã công bố của đồ án: ô quy hoạch "
                       "được thêm mới, bị xóa, thay đổi hình thể, đổi ký hiệu, thay đổi chức "
                       "năng sử dụng đất hoặc chỉ tiêu (mật độ xây dựng, tầng cao, hệ số sử "
                       "dụng đất), và diện tích của từng chức năng.",
                       "What changed between two published versions of the plan: lots "
                       "added, removed, reshaped, recoded, or whose function or indicators "
                       "(building density, floors, floor-area ratio) changed, and the area "
                       "of each function."),
    "cmp_areas_lots": ("Diện tích theo chức năng sử dụng đất (m²)", "Area by function (m²)"),
    "cmp_function": ("Chức năng", "Function"),
    "cmp_lot_code": ("Ký hiệu ô", "Lot code"),
    "cmp_type_function_changed": ("Thay đổi chức năng sử dụng đất", "Function changed"),
    "cmp_type_indicators_changed": ("Thay đổi chỉ tiêu quy hoạch", "Indicators changed"),
    "cmp_type_recoded": ("Đổi ký hiệu ô", "Lot code changed"),
    "cmp_notes_lots": ("Diện tích tính từ hình thể ô quy hoạch trong hệ tọa độ VN-2000 / "
                       "TM-3, không phải diện tích ghi trong bảng chỉ tiêu.",
                       "Areas are computed from the lots' shapes in VN-2000 / TM-3, not "
                       "taken from the table of indicators."),
    "cmp_project_area": ("Ranh giới đồ án", "Project boundary"),
    "cmp_lots": ("Các ô quy hoạch thay đổi", "The lots that changed"),
    "cmp_lots_more": ("và {n} ô khác: xem trên bản đồ.", "and {n} more lots: see the map."),
})

#: Words of the page (string keys) that a project's lots say otherwise.
LOTS_WORDS = {"cmp_intro": "cmp_intro_lots", "cmp_areas": "cmp_areas_lots",
              "cmp_code": "cmp_function", "cmp_notes": "cmp_notes_lots",
              "cmp_number": "cmp_lot_code",
              "cmp_type_use_changed": "cmp_type_function_changed",
              "cmp_type_renumbered": "cmp_type_recoded"}
#: Kinds of a planning project that can be compared (red lines have no area).
PROJECT_COMPARE_KINDS = ("zoning_lots",)


@dataclass(frozen=True)
class _Layer:
    """The layer compared, as the web names it: a district's `kind` layer, or a planning
    project's (`project` set; `district` is then the project's district, whose
    planners may see its drafts)."""

    district: str
    kind: str
    project: Project | None = None

    @property
    def project_id(self) -> str | None:
        return None if self.project is None else self.project.id

    @property
    def page_url(self) -> str:
        if self.project is not None:
            return f"/projects/{self.project.id}/compare"
        return f"/districts/{self.district}/{self.kind}/compare"

    @property
    def query(self) -> str:
        """The API's query string naming this layer."""
        if self.project is not None:
            return f"project={self.project.id}&kind={self.kind}"
        return f"district={self.district}&kind={self.kind}"

    def versions(self, store: Store) -> list[Version]:
        return layer_versions(store, self.district, self.kind, project=self.project_id)

    def default_pair(self, store: Store) -> tuple[Version, Version] | None:
        return default_pair(store, self.district, self.kind, project=self.project_id)

    def check_pair(self, store: Store, from_id: int, to_id: int) -> tuple[Version, Version]:
        if self.project is not None:
            return check_pair(store, from_id, to_id, kind=self.kind,
                              project=self.project.id)
        return check_pair(store, from_id, to_id, district=self.district, kind=self.kind)

    def words(self) -> dict[str, str]:
        """The page's words for this layer, in the page's language: the strings of
        `LOTS_WORDS` replaced for a project's lots."""
        swap = LOTS_WORDS if self.kind in PROJECT_COMPARE_KINDS else {}
        keys = ["cmp_intro", "cmp_areas", "cmp_code", "cmp_notes", "cmp_number",
                *(f"cmp_type_{t}" for t in TYPES)]
        return {k: tr(swap.get(k, k)) for k in keys}


def _may_see_drafts(code: str) -> bool:
    """Whether the current request may compare draft versions of district ``code``.

    Drafts are not public: only those who review the district's uploads (its planners
    and admins) see them; everyone else sees published and superseded versions only.
    """
    return can(current_user, "review", code)


def _layer(code: str, kind: str) -> _Layer:
    """A district's layer; 404 unless `code` is a district of the province and `kind`
    one of its layer kinds."""
    check_kind(kind)
    return _Layer(seeds.known_district(code).code, kind)


def _project_layer(project_id: str, kind: str = "zoning_lots") -> _Layer:
    """A planning project's layer; 404 for an unknown project or a kind that cannot be
    compared."""
    project = project_or_404(project_id)
    if kind not in PROJECT_COMPARE_KINDS:
        raise NotFoundError(f"the {kind[:30]!r} layer of a project cannot be compared",
                            where="kind", fix="compare the lots: kind=zoning_lots",
                            code="PROJECT-LAYER-UNKNOWN",
                            what_vi="không so sánh được lớp dữ liệu này của đồ án",
                            fix_vi="so sánh các ô quy hoạch của đồ án")
    return _Layer(project.district, kind, project)


def _visible(store: Store, version_id: int, layer: _Layer, name: str) -> Version:
    """The version if this request may see it; a draft is as absent as a missing id."""
    try:
        v = store.version(version_id)
    except NotFoundError:
        v = None
    if v is None or (v.status not in PUBLIC_STATUSES and not _may_see_drafts(layer.district)):
        whose = (f"project {layer.project_id}" if layer.project is not None
                 else f"district {layer.district}")
        raise NotFoundError(f"there is no published version {version_id} of the "
                            f"{layer.kind} layer of {whose}", where=name,
                            fix=f"pick one of the versions listed on {layer.page_url}",
                            code="COMPARE-NO-VERSION",
                            what_vi=f"không có phiên bản {version_id} đã công bố của lớp này",
                            fix_vi="chọn một phiên bản trong danh sách của trang so sánh")
    return v


def _pair(store: Store, layer: _Layer) -> tuple[Version, Version] | None:
    """The versions asked for by ``from`` and ``to``, or the default pair without them."""
    raw_from, raw_to = request.args.get("from"), request.args.get("to")
    if raw_from is None and raw_to is None:
        return layer.default_pair(store)
    if raw_from is None or raw_to is None:
        raise UsageError("from and to go together", where="query string",
                         fix="give both, e.g. ?from=12&to=15, or neither for the latest change",
                         what_vi="cần chọn cả phiên bản trước và phiên bản sau để so sánh",
                         fix_vi="chọn cả hai phiên bản, hoặc bỏ cả hai để xem lần thay đổi "
                                "gần nhất")
    from_id, to_id = parse_version_id(raw_from, "from"), parse_version_id(raw_to, "to")
    _visible(store, from_id, layer, "from")
    _visible(store, to_id, layer, "to")
    return layer.check_pair(store, from_id, to_id)


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` (WGS 84, as a map view gives it)."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or not (
            -180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90):
        raise UsageError(f"bbox {text!r} is not minlon,minlat,maxlon,maxlat", where="bbox",
                         fix="give four numbers in degrees with min ≤ max, e.g. "
                             "bbox=108.30,11.70,108.32,11.72",
                         what_vi="vùng bản đồ không phải bốn số kinh độ, vĩ độ",
                         fix_vi="cho bốn số theo độ, nhỏ trước lớn sau, ví dụ "
                                "108,30 11,70 108,32 11,72")
    return box  # type: ignore[return-value]


def _count(text: str | None, name: str, default: int, high: int, low: int = 0) -> int:
    """A whole number from `low` to `high` (the bounds the API definition publishes)."""
    if text is None:
        return default
    value = text.strip()
    if not value.isdigit() or not value.isascii() or not low <= int(value) <= high:
        raise UsageError(f"{name} must be a whole number from {low} to {high}, got "
                         f"{text[:30]!r}", where=name, fix=f"e.g. {name}={default}",
                         what_vi=f"giá trị phải là số nguyên từ {low} đến {high}",
                         fix_vi=f"ví dụ {default}")
    return int(value)


def _required(name: str) -> str:
    value = request.args.get(name, "").strip()
    if not value:
        raise UsageError(f"{name} is missing", where="query string",
                         fix="give district (or project), kind, from and to, e.g. "
                             "?district=678&kind=plan&from=12&to=15")
    return value


def _api_layer() -> _Layer:
    """The layer the API's query string names: ``project=`` or ``district=``, and
    ``kind=``."""
    kind = _required("kind")
    project = request.args.get("project")
    if project is not None:
        return _project_layer(project.strip(), kind)
    return _layer(_required("district"), kind)


# -- JSON API ----------------------------------------------------------------------------


def _comparison(layer: _Layer) -> Comparison:
    store = get_store()
    pair = _pair(store, layer)
    if pair is None:
        whose = (f"project {layer.project_id}" if layer.project is not None
                 else f"district {layer.district}")
        raise NotFoundError(f"the {layer.kind} layer of {whose} has no two published "
                            "versions to compare", where=whose,
                            fix="give from and to, or wait for the next published version",
                            code="COMPARE-NOTHING",
                            what_vi="lớp này chưa có hai phiên bản đã công bố để so sánh",
                            fix_vi="chờ lần điều chỉnh tiếp theo được công bố")
    return cached_comparison(store, *pair)


@bp.get("/api/compare")
def api_compare():
    """``?district=&kind=`` or ``?project=&kind=zoning_lots``, then
    ``[&from=&to=][&bbox=][&limit=&offset=]`` → summary and features.

    ``features`` is a GeoJSON FeatureCollection (WGS 84) of one page of the changed
    features meeting ``bbox``; ``page`` says how many met it in all. Their shapes are
    for the map (`gisportal.outputs.display`: exact to half a pixel, a hostile million-vertex
    parcel as a few hundred vertices); ``gisportal compare`` gives the exact ones.
    """
    # The query string first: a bad value is a 400 whatever there is to compare.
    bbox = _bbox(request.args.get("bbox"))
    offset = _count(request.args.get("offset"), "offset", 0, 10**9)
    limit = _count(request.args.get("limit"), "limit", PAGE_LIMIT, MAX_LIMIT, low=1)
    comparison = _comparison(_api_layer())
    page, total = comparison.select(bbox, offset=offset, limit=limit, display=True)
    return jsonify({
        "summary": comparison.summary(),
        "features": comparison.geojson(page),
        "page": {"total": total, "offset": offset, "limit": limit, "returned": len(page),
                 "bbox": list(bbox) if bbox else None,
                 "complete": offset + len(page) >= total},
    })


@bp.get("/api/compare/summary")
def api_compare_summary():
    """``?district=&kind=`` or ``?project=&kind=``, ``[&from=&to=]`` → the summary alone
    (counts, m² per code)."""
    return jsonify(_comparison(_api_layer()).summary())


# -- the page ----------------------------------------------------------------------------


def _number(value: float | None, lang: str, *, sign: bool = False) -> str:
    """``12345.6`` → ``12.345,6`` in Vietnamese, ``12,345.6`` in English."""
    if value is None:
        return "—"
    text = f"{value:+,.1f}" if sign else f"{value:,.1f}"
    if sign and abs(value) < 0.05:
        text = f"{0.0:,.1f}"
    if lang == "vi":
        text = text.translate(str.maketrans({",": ".", ".": ","}))
    return text.replace("-", "−")


def _commune_outlines(store: Store, code: str) -> dict[str, Any] | None:
    """The district's communes (published boundary layer), simplified, in lon/lat: a few
    dozen polygons to find one's way on a map that shows nothing but changes."""
    version = store.published(code, "boundary")
    if version is None:
        return None
    return derived(store, version, ("compare-communes", OUTLINE_SIMPLIFY_M),
                   _build_outlines)


def _build_outlines(store: Store, version: Version) -> dict[str, Any] | None:
    try:
        gdf = store.read(version.id, columns=["level", "name"])
    except UsageError:  # a boundary layer stored without names: no outlines, no failure
        return None
    part = gdf[gdf["level"] == "commune"]
    if part.empty:
        part = gdf
    geoms = shapely.simplify(part.geometry.values, OUTLINE_SIMPLIFY_M, preserve_topology=True)
    source = CRS.from_user_input(store.crs)
    geoms = shapely.transform(geoms, lambda xy: np.column_stack(
        vncrs.to_lonlat(xy[:, 0], xy[:, 1], source)))
    geoms = shapely.set_precision(geoms, 1e-5, mode="pointwise")
    # folium's tooltip writes the name as HTML: the name comes from an uploaded file.
    features = [{"type": "Feature", "properties": {"name": str(escape(name or ""))},
                 "geometry": mapping(g)} for g, name in zip(geoms, part["name"], strict=True)
                if g is not None and not g.is_empty]
    return {"type": "FeatureCollection", "features": features} if features else None


def _project_outline(project: Project) -> dict[str, Any] | None:
    """The project's area in lon/lat, for orientation (one polygon)."""
    if project.boundary is None or project.boundary.is_empty:
        return None
    source = CRS.from_user_input(get_store().crs)
    geom = shapely.transform(project.boundary, lambda xy: np.column_stack(
        vncrs.to_lonlat(xy[:, 0], xy[:, 1], source)))
    geom = shapely.set_precision(geom, 1e-7, mode="pointwise")
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": str(escape(project.name))},
         "geometry": mapping(geom)}]}


def _map(store: Store, layer: _Layer, comparison: Comparison | None) -> dict[str, Any]:
    """The page's folium map (local Leaflet, no basemap) with outlines for orientation
    (the district's communes, or the project's area); the changes themselves are drawn
    by compare.js from the API."""
    d = seeds.district(layer.district)
    center = (d.anchor_lonlat[1], d.anchor_lonlat[0]) if d.anchor_lonlat else (11.9, 108.0)
    m = offline_map(location=center, zoom_start=12, control_scale=True, max_zoom=21)
    if layer.project is not None:
        outlines, name = _project_outline(layer.project), tr("cmp_project_area")
    else:
        outlines, name = _commune_outlines(store, layer.district), tr("cmp_communes")
    if outlines is not None:
        folium.GeoJson(outlines, name=name,
                       style_function=lambda _f: {"color": "#555", "weight": 1,
                                                  "fill": False, "dashArray": "4 3"},
                       tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
                       ).add_to(m)
    box = comparison.bounds_lonlat() if comparison is not None else None
    bounds = comparison.after.bounds if comparison is not None else (
        layer.project.bounds if layer.project is not None else None)
    if box is None and bounds:
        minx, miny, maxx, maxy = bounds
        lons, lats = vncrs.to_lonlat([minx, maxx], [miny, maxy])
        box = [min(lons), min(lats), max(lons), max(lats)]
    if box is not None:
        m.fit_bounds([[box[1], box[0]], [box[3], box[2]]], padding=(20, 20), max_zoom=19)
    root = m.get_root()
    root.render()
    return {"name": m.get_name(), "header": map_header(m),
            "html": root.html.render(), "script": root.script.render()}


@bp.get("/districts/<code>/<kind>/compare")
def compare_page(code: str, kind: str):
    """A district's layer: what its last adjustment (or the pair asked for) changed."""
    return _page(_layer(code, kind))


@bp.get("/projects/<project_id>/compare")
def project_compare_page(project_id: str):
    """A planning project's lots: which lots changed function or indicators, were split,
    joined or removed, and the m² per function."""
    return _page(_project_layer(project_id))


def _page(layer: _Layer):
    store = get_store()
    lang = current_lang()
    pair = _pair(store, layer)
    comparison = cached_comparison(store, *pair) if pair else None
    summary = comparison.summary() if comparison else None
    visible = [v for v in layer.versions(store)
               if v.status in PUBLIC_STATUSES or _may_see_drafts(layer.district)]
    model = layer_model(layer.kind)
    words = layer.words()
    config: dict[str, Any] = {"page": "compare", "district": layer.district,
                              "project": layer.project_id, "kind": layer.kind,
                              "words": words}
    if comparison is not None:
        config.update({
            "api": f"/api/compare?{layer.query}&from={comparison.before.id}"
                   f"&to={comparison.after.id}",
            "total": summary["changed_features"], "limit": PAGE_LIMIT,
            "colors": TYPE_COLORS,
            # pairs, not an object: JSON objects go out with sorted keys
            "key_labels": [[k, model.field(k).label.get(lang) or k]
                           for k in comparison.key_fields],
            "indicator_labels": [[k, model.field(k).label.get(lang) or k]
                                 for k in comparison.indicator_fields],
            "code_names": {r["code"]: r["name_en"] if lang == "en" else r["name"]
                           for r in summary["areas"] if r["code"]},
        })
    parts = _map(store, layer, comparison)
    config["map"] = parts["name"]
    rows = []
    if summary:
        for r in summary["areas"]:
            rows.append(dict(r, label=(r["name_en"] if lang == "en" else r["name"]),
                             before=_number(r["before_m2"], lang),
                             after=_number(r["after_m2"], lang),
                             delta=_number(r["delta_m2"], lang, sign=True),
                             changed=abs(r["delta_m2"] or 0) >= 0.05))
    totals = None
    if summary:
        t = summary["total_area_m2"]
        totals = {"before": _number(t["before"], lang), "after": _number(t["after"], lang),
                  "delta": _number(t["delta"], lang, sign=True)}
    lots = (_changed_lots(comparison, model, words, lang)
            if comparison is not None and comparison.indicator_fields else None)
    if layer.project is not None:
        subject = layer.project.name
        crumbs = [("/projects", tr("projects_title")),
                  (f"/projects/{layer.project.id}", layer.project.name)]
    else:
        subject = seeds.district(layer.district).name
        crumbs = [(f"/districts/{layer.district}", subject)]
    return render_template(
        "compare.html", subject=subject, crumbs=crumbs, back=crumbs[-1][0],
        action=layer.page_url, kind=layer.kind, words=words,
        layer_title=model.title.get(lang) or model.title.get("vi"),
        summary=summary, comparison=comparison, rows=rows, totals=totals, lots=lots,
        lots_more=max(0, len(comparison.features) - LIST_LIMIT) if lots is not None else 0,
        types=[{"id": t, "color": TYPE_COLORS[t],
                "count": summary["counts"][t] if summary else 0} for t in TYPES
               if t in (summary["counts"] if summary else _types_of(layer))],
        versions=visible, parts=parts, config=config, strings=js_strings())


def _indicator_text(value: Any, lang: str) -> str:
    """An indicator as a drawing's table writes it: ``5``, ``60``, ``2,4`` (vi)."""
    if value is None:
        return "—"
    text = formats.number(value, 2, lang)
    point = "," if lang == "vi" else "."
    return text.rstrip("0").rstrip(point) if point in text else text


def _changed_lots(comparison: Comparison, model: Any, words: dict[str, str],
                  lang: str) -> list[dict[str, Any]]:
    """The changed lots as the page lists them (at most `LIST_LIMIT`): the code before
    and after, the changes, and what changed in words and Vietnamese numbers."""
    labels = {k: model.field(k).label.get(lang) or k for k in comparison.indicator_fields}
    out = []
    for p in comparison.properties(LIST_LIMIT):
        codes = [(p[side] or {}).get(k) for side in ("key_before", "key_after")
                 for k in comparison.key_fields[:1]]
        details = []
        if p["code_before"] != p["code_after"] or p["type"] in ("added", "removed"):
            details.append((words["cmp_code"], p["code_before"] or "—", p["code_after"] or "—"))
        for name, change in p.get("indicators", {}).items():
            details.append((labels[name], _indicator_text(change["before"], lang),
                            _indicator_text(change["after"], lang)))
        if "reshaped" in p["changes"] or p["type"] in ("added", "removed"):
            details.append((tr("area") + " (m²)", _number(p["area_before_m2"], lang),
                            _number(p["area_after_m2"], lang)))
        out.append({"type": p["type"], "color": TYPE_COLORS[p["type"]],
                    "code_before": codes[0] if p["type"] != "added" else None,
                    "code_after": codes[-1] if p["type"] != "removed" else None,
                    "changes": " + ".join(words[f"cmp_type_{c}"] for c in p["changes"]),
                    "details": details})
    return out


def _types_of(layer: _Layer) -> tuple[str, ...]:
    """The change types a comparison of `layer` counts (the page's empty table)."""
    return types_of(bool(INDICATOR_FIELDS.get(layer.kind)))
