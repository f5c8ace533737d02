"""HTML pages for residents: the province overview and the district maps.

The maps are built by :mod:`gisportal.maps` from the compositions in ``maps/``. The UI
is Vietnamese first; ``?lang=en`` (remembered in a cookie) switches to English. The
translations are a small dict (:data:`TEXT`): the portal has a few dozen short strings,
each shown with its other-language twin in small type, so gettext catalogues would add
a build step and a dependency for no gain yet.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, render_template, request
from markupsafe import Markup

from gisportal import maps, seeds
from gisportal.web import get_store

bp = Blueprint("pages", __name__)

LANGS = ("vi", "en")
LANG_COOKIE = "lang"

#: UI strings: key → (Vietnamese, English).
TEXT: dict[str, tuple[str, str]] = {
    "portal": ("Cổng thông tin quy hoạch sử dụng đất", "Land-use planning portal"),
    "plan_period": ("Quy hoạch sử dụng đất 2021–2030", "Land-use plan 2021–2030"),
    "home": ("Trang chủ", "Home"),
    "province_intro": ("Chọn một huyện trên bản đồ để tra cứu quy hoạch của thửa đất.",
                       "Pick a district on the map to look up the plan of a parcel."),
    "status": ("Tình trạng quy hoạch", "Plan status"),
    "districts": ("Huyện / thành phố", "Districts"),
    "no_outline": ("chưa có ranh giới", "no boundary published"),
    "click_hint": ("Nhấn vào bản đồ để tra cứu thửa đất.",
                   "Click the map to look up a parcel."),
    "legend": ("Chú giải", "Legend"),
    "plan_opacity": ("Độ trong suốt lớp quy hoạch", "Plan overlay opacity"),
    "nothing_published": ("Huyện này chưa công bố dữ liệu.",
                          "Nothing is published for this district yet."),
    "parcel": ("Thửa đất", "Parcel"),
    "commune": ("Xã / phường", "Commune"),
    "sheet": ("Tờ bản đồ số", "Map sheet"),
    "parcel_no": ("Thửa số", "Parcel no."),
    "area": ("Diện tích", "Area"),
    "current_use": ("Hiện trạng sử dụng", "Current use"),
    "planned_use": ("Quy hoạch 2021–2030", "Planned use 2021–2030"),
    "share": ("Tỷ lệ", "Share"),
    "decision": ("Quyết định phê duyệt", "Approval decision"),
    "no_decision": ("Chưa phê duyệt (đang thẩm định)", "Not approved yet (under appraisal)"),
    "no_parcel": ("Không có thửa đất tại điểm này", "No parcel here"),
    "planned_here": ("Quy hoạch tại điểm này", "Plan at this point"),
    "no_plan": ("Không có vùng quy hoạch tại thửa này", "No plan zone on this parcel"),
    "loading": ("Đang tra cứu…", "Looking up…"),
    "error": ("Không tra cứu được", "Look-up failed"),
    "sheet_link": ("Phiếu thông tin thửa đất", "Parcel information sheet"),
    "permalink": ("Liên kết tới vị trí này", "Link to this view"),
    "switch": ("English", "Tiếng Việt"),
    "close": ("Đóng", "Close"),
    "version": ("phiên bản", "version"),
    "dated": ("ngày", "dated"),
    "by": ("của", "by"),
    "not_found": ("Không tìm thấy", "Not found"),
    "issued": ("Ngày lập phiếu", "Issued on"),
    "print": ("In phiếu", "Print"),
    "back_to_map": ("Quay lại bản đồ", "Back to the map"),
    "search": ("Tìm kiếm", "Search"),
    "search_label": ("Tìm địa danh, tờ/thửa hoặc tọa độ",
                     "Find a place, sheet/parcel or coordinates"),
    "search_placeholder": ("vd. Liên Nghĩa · tờ 12 thửa 345 · 11.70, 108.32",
                           "e.g. Liên Nghĩa · tờ 12 thửa 345 · 11.70, 108.32"),
    "search_button": ("Tìm", "Find"),
    "searching": ("Đang tìm…", "Searching…"),
    "places_found": ("Địa danh tìm thấy", "Places found"),
    "no_places": ("Không tìm thấy địa danh nào", "No place found"),
    "search_error": ("Không tìm được", "Search failed"),
    "level_district": ("Huyện / thành phố", "District"),
    "disclaimer": ("Phiếu này chỉ có giá trị tham khảo, lập từ dữ liệu đã công bố trên cổng "
                   "thông tin; không thay thế văn bản cung cấp thông tin quy hoạch của cơ quan "
                   "có thẩm quyền.",
                   "For information only, drawn from the data published on this portal; it "
                   "does not replace planning information issued by the competent authority."),
}


def current_lang() -> str:
    """``?lang=`` first, then the cookie, then Vietnamese."""
    lang = getattr(g, "lang", None)
    if lang:
        return lang
    asked = request.args.get("lang", "")
    lang = asked if asked in LANGS else request.cookies.get(LANG_COOKIE, "")
    g.lang = lang if lang in LANGS else "vi"
    return g.lang


def tr(key: str) -> str:
    """The string ``key`` in the page's language."""
    vi, en = TEXT[key]
    return en if current_lang() == "en" else vi


def tr2(key: str) -> Markup:
    """The string in the page's language, then its twin in small type."""
    vi, en = TEXT[key]
    first, second = (en, vi) if current_lang() == "en" else (vi, en)
    return Markup('{} <small class="alt" lang="{}">{}</small>').format(
        first, "vi" if current_lang() == "en" else "en", second)


def js_strings() -> dict[str, list[str]]:
    """Strings for the page's JS: [in the page language, in the other one]."""
    en = current_lang() == "en"
    return {k: ([e, v] if en else [v, e]) for k, (v, e) in TEXT.items()}


@bp.app_context_processor
def _inject():
    try:
        lang = current_lang()
    except RuntimeError:  # outside a request
        lang = "vi"
    return {"lang": lang, "tr": tr, "tr2": tr2, "other_lang": "vi" if lang == "en" else "en"}


@bp.after_app_request
def _remember_lang(response):
    asked = request.args.get("lang")
    if asked in LANGS and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax")
    return response


@bp.get("/")
def index():
    store = get_store()
    lang = current_lang()
    parts = maps.province_map(store, lang)
    status = seeds.district_status()
    comp = maps.composition("province")
    labels = {s["id"]: s for s in comp["statuses"]}
    rows = []
    for d in seeds.districts():
        st = status.get(d.code)
        portal = st.portal_status if st else "under_appraisal"
        s = labels.get(portal, {"color": "#999", "label": portal})
        rows.append({"code": d.code, "name": d.name, "status": portal,
                     "color": s["color"], "status_label": maps.text(s["label"], lang)})
    return render_template("index.html", parts=parts, rows=rows,
                           province=seeds.province(), strings=js_strings())


@bp.get("/districts/<code>")
def district(code: str):
    try:
        d = seeds.district(code)
    except KeyError:
        abort(404, description=f"Không có huyện mã {code} / no district with code {code}")
    lang = current_lang()
    store = get_store()
    parts = maps.district_map(store, code, lang)
    # Link to the parcel information sheet only once the app serves it.
    parts.config["parcel_sheet"] = any(r.rule.startswith("/parcels/")
                                       for r in current_app.url_map.iter_rules())
    cat = seeds.land_use_catalogue()
    comp = maps.composition("district")
    legend = []
    for c in parts.config["legend"]:
        lu = cat.get(c)
        legend.append({"code": c, "color": lu.color,
                       "name": lu.name_en if lang == "en" else lu.name_vi})
    opacity = next((s for s in comp["layers"] if s.get("opacity_slider")), None)
    return render_template(
        "district.html", d=d, parts=parts, legend=legend,
        legend_title=maps.text(comp["legend"]["title"], lang),
        opacity=opacity, land_use=maps.land_use_table(), strings=js_strings(),
        status=seeds.district_status().get(code))
