"""Vietnamese-first UI strings with an English twin, for every page of the portal.

``?lang=`` (remembered in a cookie) switches to English. The strings are a small
table of (Vietnamese, English) pairs: each is shown with its twin in small type, so a
gettext catalogue would add a build step and a dependency for no gain. Each blueprint
adds its own strings with :func:`add_strings`, so the table stays next to the pages
that use it.
"""

from __future__ import annotations

from flask import Flask, g, request
from markupsafe import Markup

__all__ = ["LANGS", "TEXT", "add_strings", "current_lang", "tr", "tr2", "js_strings",
           "init_app"]

LANGS = ("vi", "en")
LANG_COOKIE = "lang"

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
