"""The sheet's own words: (Vietnamese, English) pairs.

Kept beside the sheet rather than in the web layer's table because the content builder
(`gisportal.outputs.sheet.content`) writes some of them into the content itself (the
map's north letter, the survey zone, the note on a thinned coordinate table): the same
content goes into the page and the PDF, which the web layer only renders. The web
layer registers the table (`gisportal.web.i18n.add_strings`) so the template reads
them with ``tr()`` like every other page. The sheet shows one language at a time, never
the English twin under the Vietnamese (``tr2``): a resident hands this page to an
office.
"""

from __future__ import annotations

__all__ = ["TEXT", "text"]

#: key → (Vietnamese, English). Keys start with ``sh_`` (one table for the whole app).
TEXT: dict[str, tuple[str, str]] = {
    "sh_province": ("Tỉnh Lâm Đồng", "Lâm Đồng province"),
    "sh_plan_of": ("Quy hoạch sử dụng đất 2021–2030 của", "Land-use plan 2021–2030 of"),
    "sh_commune_today": ("Xã, phường, đặc khu (từ 01/07/2025)",
                         "Commune or ward (since 1 July 2025)"),
    "sh_former": ("Trước 01/07/2025 thuộc", "Before 1 July 2025 in"),
    "sh_commune_code": ("Mã xã trong dữ liệu", "Commune code in the data"),
    "sh_approximate": ("theo ranh giới gần đúng", "by approximate boundaries"),
    "sh_address": ("Địa chỉ thửa đất", "Parcel address"),
    "sh_sheet_parcel": ("Tờ bản đồ số / thửa đất số", "Map sheet / parcel no."),
    "sh_area": ("Diện tích", "Area"),
    "sh_area_computed": ("đo trên bản đồ", "measured on the map"),
    "sh_current_use": ("Loại đất hiện trạng", "Current land use"),
    "sh_map": ("Sơ đồ thửa đất trên nền quy hoạch", "The parcel on the plan"),
    "sh_north": ("B", "N"),
    "sh_corners": ("Tọa độ các điểm góc thửa", "Corner coordinates"),
    "sh_zone": ("VN-2000, múi chiếu 3°, kinh tuyến trục {meridian} (EPSG:{epsg})",
                "VN-2000, TM-3 zone, central meridian {meridian} (EPSG:{epsg})"),
    "sh_point": ("Điểm", "Point"),
    "sh_edge": ("Cạnh (m)", "Edge (m)"),
    "sh_edge_to": ("cạnh từ điểm này đến điểm kế tiếp", "edge from this point to the next"),
    "sh_part": ("Phần", "Part"),
    "sh_thinned": ("Thửa có {total} đỉnh; bảng liệt kê {shown} đỉnh chính (đơn giản hóa, lệch "
                   "không quá {tolerance}) theo số thứ tự trong ranh thửa; cạnh là khoảng cách "
                   "giữa hai đỉnh liệt kê liên tiếp.",
                   "The parcel has {total} vertices; the table lists {shown} main ones "
                   "(simplified, off by at most {tolerance}) under their numbers in the "
                   "boundary; an edge is the distance between two listed vertices."),
    "sh_planned": ("Quy hoạch sử dụng đất 2021–2030 trên thửa", "Planned use of the parcel"),
    "sh_land_use": ("Loại đất", "Land use"),
    "sh_area_planned": ("Diện tích", "Area"),
    "sh_share": ("Tỷ lệ", "Share"),
    "sh_no_plan": ("Huyện chưa công bố quy hoạch sử dụng đất trên cổng thông tin.",
                   "The district has published no land-use plan on the portal."),
    "sh_no_zone": ("Thửa đất không thuộc vùng quy hoạch nào đã công bố.",
                   "No published plan zone covers the parcel."),
    "sh_decision": ("Quyết định phê duyệt", "Approval decision"),
    "sh_decision_no": ("Quyết định số", "Decision"),
    "sh_dated": ("ngày", "of"),
    "sh_by": ("của", "by"),
    "sh_decision_pdf": ("Văn bản quyết định (PDF)", "The signed decision (PDF)"),
    "sh_no_decision": ("Quy hoạch đã công bố chưa có quyết định phê duyệt.",
                       "The published plan has no approval decision."),
    "sh_annual": ("Kế hoạch sử dụng đất hằng năm", "Annual land-use plans"),
    "sh_zoning": ("Quy hoạch xây dựng, đô thị", "Construction and urban plans"),
    "sh_zoning_lot": ("Ô quy hoạch", "Lot"),
    "sh_zoning_function": ("Chức năng", "Function"),
    "sh_zoning_density": ("Mật độ XD tối đa", "Max. density"),
    "sh_zoning_floors": ("Tầng cao", "Floors"),
    "sh_zoning_far": ("Hệ số SDĐ", "FAR"),
    "sh_zoning_road": ("Phần thửa đất nằm trong lộ giới đường quy hoạch: {area} ({share})",
                       "Part of the parcel inside a planned road: {area} ({share})"),
    "sh_zoning_roads": ("đường", "road"),
    "sh_zoning_setback": ("chỉ giới xây dựng lùi {m} so với chỉ giới đường đỏ",
                          "building line {m} behind the red line"),
    "sh_issued": ("Ngày lập phiếu", "Issued on"),
    "sh_data": ("Dữ liệu: thửa đất phiên bản {parcels}, quy hoạch phiên bản {plan}",
                "Data: parcels version {parcels}, plan version {plan}"),
    "sh_data_no_plan": ("Dữ liệu: thửa đất phiên bản {parcels}",
                        "Data: parcels version {parcels}"),
    "sh_download_pdf": ("Tải phiếu (PDF)", "Download (PDF)"),
    "sh_staff_only": ("Thuộc tính gốc (có thông tin cá nhân — chỉ hiện cho cán bộ, không in)",
                      "Source attributes (personal data — staff only, not printed)"),
}


def text(key: str, lang: str, **values: object) -> str:
    """The string `key` in `lang` (Vietnamese unless ``en``), `values` filled in."""
    vi, en = TEXT[key]
    chosen = en if lang == "en" else vi
    return chosen.format(**values) if values else chosen
