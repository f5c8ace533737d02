"""Vietnamese-first UI strings with an English twin, for every page of the portal.

``?lang=`` (remembered in a cookie) switches to English. The strings are a small
table of (Vietnamese, English) pairs, so a gettext catalogue would add a build step and
a dependency for no gain. Each blueprint adds its own strings with :func:`add_strings`,
so the table stays next to the pages that use it.

Residents' pages (`PUBLIC_BLUEPRINTS` and every error page) are in one language: a
resident reading Vietnamese on a phone gets no English in small type, the English page
being one click away by the toggle. Staff pages keep the twin (`tr2`), which helps the
English-speaking consultants who review uploads.

Numbers and dates go through `gisportal.base.formats` in the page's language: the
Jinja filters ``num``, ``area``, ``share`` and ``day`` registered by :func:`init_app`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, has_request_context, request
from markupsafe import Markup

from gisportal.base import formats

__all__ = ["LANGS", "TEXT", "PUBLIC_BLUEPRINTS", "add_strings", "current_lang", "tr", "tr2",
           "js_strings", "is_public_page", "mark_public", "init_app"]

LANGS = ("vi", "en")
LANG_COOKIE = "lang"

#: The blueprints of residents' pages: the province and district maps, the parcel
#: sheet, the comparison of two versions and the planning projects. Their pages show
#: no English twin.
PUBLIC_BLUEPRINTS = frozenset({"pages", "sheet", "compare", "projects"})

#: UI strings: key → (Vietnamese, English).
TEXT: dict[str, tuple[str, str]] = {
    "portal": ("Cổng thông tin quy hoạch sử dụng đất", "Land-use planning portal"),
    "plan_period": ("Quy hoạch sử dụng đất 2021–2030", "Land-use plan 2021–2030"),
    "home": ("Trang chủ", "Home"),
    "province_intro": ("Từ ngày 01/7/2025 tỉnh Lâm Đồng gồm Lâm Đồng, Đắk Nông và Bình "
                       "Thuận cũ, với 124 xã, phường và đặc khu, không còn cấp huyện. Quy "
                       "hoạch sử dụng đất 2021–2030 vẫn là quy hoạch của các huyện cũ: chọn "
                       "một huyện cũ trên bản đồ để tra cứu quy hoạch của thửa đất.",
                       "Since 1 July 2025 Lâm Đồng is the former Lâm Đồng, Đắk Nông and Bình "
                       "Thuận, with 124 communes, wards and a special zone and no districts. "
                       "The 2021–2030 land-use plans remain those of the former districts: "
                       "pick a former district on the map to look up the plan of a parcel."),
    "status": ("Tình trạng quy hoạch", "Plan status"),
    "districts": ("Huyện / thành phố cũ (đến 30/6/2025)",
                  "Former districts (until 30 June 2025)"),
    "current_units": ("Xã, phường, đặc khu (từ 01/7/2025)",
                      "Communes, wards, special zone (since 1 July 2025)"),
    "units_count": ("{n} đơn vị hành chính cấp xã", "{n} commune-level units"),
    "units_drawn": ("{n} đơn vị có ranh giới từ dữ liệu đã công bố",
                    "{n} drawn from the published boundaries"),
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
    "decision_pdf": ("Văn bản quyết định (PDF)", "The signed decision (PDF)"),
    "plan_status": ("Quy hoạch sử dụng đất 2021–2030", "Land-use plan 2021–2030"),
    "decision_no": ("Quyết định số", "Decision no."),
    "what_changed": ("Xem nội dung điều chỉnh so với bản trước",
                     "What the adjustment changed"),
    "no_decision": ("Chưa phê duyệt (đang thẩm định)", "Not approved yet (under appraisal)"),
    "no_parcel": ("Không có thửa đất tại điểm này", "No parcel here"),
    "outside_districts": ("Điểm này nằm ngoài các huyện có dữ liệu trên cổng thông tin",
                          "This point is outside every district published on the portal"),
    "planned_here": ("Quy hoạch tại điểm này", "Plan at this point"),
    "no_plan": ("Không có vùng quy hoạch tại thửa này", "No plan zone on this parcel"),
    "loading": ("Đang tra cứu…", "Looking up…"),
    "error": ("Không tra cứu được", "Look-up failed"),
    "sheet_link": ("Phiếu thông tin thửa đất", "Parcel information sheet"),
    "permalink": ("Liên kết tới vị trí này", "Link to this view"),
    "switch": ("English", "Tiếng Việt"),
    "skip_to_content": ("Bỏ qua, tới nội dung chính", "Skip to the main content"),
    "skip_to_search": ("Tới ô tìm kiếm", "Skip to the search box"),
    "sheet_collapse": ("Thu gọn", "Collapse"),
    "sheet_expand": ("Mở bảng thông tin", "Open the panel"),
    "map_keys": ("Bản đồ: dùng phím mũi tên để di chuyển, + và − để phóng to, thu nhỏ, "
                 "Enter để tra cứu thửa đất ở giữa bản đồ",
                 "Map: arrow keys move it, + and − zoom, Enter looks up the parcel at "
                 "its centre"),
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
    "choices_found": ("Số tờ, số thửa này có ở nhiều xã. Chọn thửa đất:",
                      "Several communes have this sheet and parcel number. Pick the parcel:"),
    "parcels_found": ("Thửa đất theo địa chỉ", "Parcels by address"),
    "projects_found": ("Công trình, dự án, khu quy hoạch", "Projects and plan areas"),
    "kind_plan": ("Khu quy hoạch", "Plan area"),
    "kind_annual_plan": ("Kế hoạch SDĐ năm", "Annual plan"),
    "now_in": ("nay thuộc", "now in"),
    "by_parcel": ("Tra cứu theo số tờ, số thửa", "Look up by sheet and parcel number"),
    "all_communes": ("Mọi xã, thị trấn của huyện", "Every commune of the district"),
    "sheet_short": ("Tờ số", "Sheet"),
    "parcel_short": ("Thửa số", "Parcel"),
    "look_up": ("Tra cứu", "Look up"),
    "elsewhere": ("Vị trí này thuộc {name}.", "This place is in {name}."),
    "open_map": ("Mở bản đồ {name}", "Open the map of {name}"),
    "level_district": ("Huyện / thành phố", "District"),
    # Today's units (from 2025-07-01), named by their level in search answers.
    "level_commune": ("Xã", "Commune"),
    "level_ward": ("Phường", "Ward"),
    "level_township": ("Thị trấn", "Township"),
    "level_special_zone": ("Đặc khu", "Special zone"),
    "unit_today": ("Đơn vị hành chính hiện nay (từ 01/07/2025)",
                   "Commune or ward today (from 1 July 2025)"),
    "unit_former": ("Địa danh cũ (trước 01/07/2025)", "Former commune and district"),
    "or": ("hoặc", "or"),
    # Annual land-use plans (kế hoạch sử dụng đất hằng năm): the look-up's annual_plans.
    "annual_plans": ("Kế hoạch sử dụng đất hằng năm", "Annual land-use plans"),
    "annual_here": ("Kế hoạch sử dụng đất hằng năm tại điểm này",
                    "Annual land-use plans at this point"),
    "annual_year": ("Kế hoạch sử dụng đất năm", "Annual land-use plan"),
    "annual_project": ("Công trình, dự án", "Works or project"),
    "annual_land_use": ("Mục đích sử dụng", "Land use"),
    "project_area": ("Diện tích dự án", "Project area"),
    "annual_overlap": ("Phần thửa đất trong dự án", "Part of the parcel in it"),
    "annual_decision": ("Quyết định", "Decision"),
    # Error pages and the API errors a page shows (web/errors.py, gp/panel.js).
    "error_title": ("Lỗi {status}", "Error {status}"),
    "error_not_found": ("Không tìm thấy", "Not found"),
    "error_failed": ("Không thực hiện được", "Could not be done"),
    "error_back_home": ("Về trang chủ", "Back to the home page"),
    "error_400": ("Yêu cầu không hợp lệ. Vui lòng kiểm tra lại thông tin đã nhập.",
                  "The request is not valid. Please check what was entered."),
    "error_403": ("Bạn không có quyền xem trang này.",
                  "You are not allowed to see this page."),
    "error_404": ("Không tìm thấy trang hoặc dữ liệu được yêu cầu. Vui lòng kiểm tra lại "
                  "địa chỉ.",
                  "The page or data asked for does not exist. Please check the address."),
    "error_405": ("Trang này không nhận yêu cầu theo cách vừa gửi.",
                  "This page does not accept the request as it was sent."),
    "error_409": ("Không thực hiện được yêu cầu với dữ liệu hiện có.",
                  "The request cannot be done with the data as it is."),
    "error_413": ("Dữ liệu gửi lên quá lớn.", "What was sent is too large."),
    "error_429": ("Có quá nhiều yêu cầu trong thời gian ngắn. Vui lòng thử lại sau ít phút.",
                  "Too many requests in a short time. Please try again in a few minutes."),
    "error_500": ("Hệ thống gặp sự cố. Vui lòng thử lại sau.",
                  "Something went wrong on the server. Please try again later."),
    "error_503": ("Hệ thống tạm thời không phục vụ được. Vui lòng thử lại sau.",
                  "The service is unavailable for now. Please try again later."),
    # Leaflet's own controls (zoom buttons, the layer switcher, a popup's close button),
    # titled in the page's language (gp/core.js, compare.js).
    "zoom_in": ("Phóng to", "Zoom in"),
    "zoom_out": ("Thu nhỏ", "Zoom out"),
    "map_layers": ("Lớp bản đồ", "Layers"),
    "leaflet_title": ("Thư viện JavaScript cho bản đồ tương tác",
                      "A JavaScript library for interactive maps"),
    "error_generic": ("Vui lòng kiểm tra lại thông tin đã nhập rồi thử lại.",
                      "Please check what was entered and try again."),
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


def mark_public() -> None:
    """Treat this request's page as a resident's page (the error pages call it): no
    English twin, whichever blueprint the failed request was for."""
    g.public_page = True


def is_public_page() -> bool:
    """Whether the page being rendered is a resident's (`PUBLIC_BLUEPRINTS`, an error
    page): those are in the page's language only (module doc)."""
    if not has_request_context():
        return False
    return bool(getattr(g, "public_page", False)) or request.blueprint in PUBLIC_BLUEPRINTS


def tr2(key: str) -> Markup:
    """The string in the page's language, then, on staff pages, its twin in small type.

    On residents' pages (`is_public_page`) the twin is left out: a Vietnamese page shows
    no English, and the toggle gives the English page."""
    vi, en = TEXT[key]
    first, second = (en, vi) if current_lang() == "en" else (vi, en)
    if is_public_page():
        return Markup("{}").format(first)
    return Markup('{} <small class="alt" lang="{}">{}</small>').format(
        first, "vi" if current_lang() == "en" else "en", second)


def js_strings() -> dict[str, list[str]]:
    """Strings for the page's JS: [in the page language, in the other one]."""
    en = current_lang() == "en"
    return {k: ([e, v] if en else [v, e]) for k, (v, e) in TEXT.items()}


def _lang_or_vi() -> str:
    try:
        return current_lang()
    except RuntimeError:  # outside a request
        return "vi"


def _num(value: Any, decimals: int = 0) -> str:
    """Jinja ``num``: ``1234.5|num(1)`` → ``1.234,5`` in Vietnamese, ``1,234.5`` in English."""
    return formats.number(value, decimals, _lang_or_vi())


def _area(value: Any, decimals: int = 1) -> str:
    """Jinja ``area``: ``115.2|area`` → ``115,2 m²``."""
    return formats.area_m2(value, _lang_or_vi(), decimals)


def _share(value: Any, decimals: int = 1) -> str:
    """Jinja ``share``: a fraction of one, ``0.125|share`` → ``12,5 %``."""
    return formats.share(value, _lang_or_vi(), decimals)


def _day(value: Any) -> str:
    """Jinja ``day``: an ISO date or datetime (text or object) → ``15/03/2024`` (``15 Mar
    2024`` in English); text that is no date comes back unchanged."""
    return formats.date(value, _lang_or_vi())


def _inject():
    try:
        lang = current_lang()
    except RuntimeError:  # outside a request
        lang = "vi"
    return {"lang": lang, "tr": tr, "tr2": tr2, "other_lang": "vi" if lang == "en" else "en"}


def _remember_lang(response):
    asked = request.args.get("lang")
    if asked in LANGS and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax")
    return response


def add_strings(strings: dict[str, tuple[str, str]]) -> None:
    """Register a blueprint's strings; a key already taken with other text is a bug."""
    for key, pair in strings.items():
        if TEXT.get(key, pair) != pair:
            raise ValueError(f"UI string {key!r} is already defined differently")
        TEXT[key] = pair


def init_app(app: Flask) -> None:
    """Make ``tr``/``tr2``/``lang`` available to every template and keep the cookie."""
    app.context_processor(_inject)
    app.after_request(_remember_lang)
    # One place for the number and date formats of every template (module doc).
    app.jinja_env.filters.update(num=_num, area=_area, share=_share, day=_day)
