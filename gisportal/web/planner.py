"""The planner's workflow on the web: upload, review, repair, decision, publish, roll back.

A planner of a district (or an admin) signs in and works under ``/planner/``:

- ``/planner/`` — the dashboard: each district's layers with the published version and
  its decision, drafts awaiting review, running and recent jobs;
- ``/planner/<district>/upload`` — a file and its options → a background job;
- ``/planner/jobs/<id>`` — the job's progress, polled from ``/api/jobs/<id>``;
- ``/planner/versions/<id>`` — the review page of a stored version: the validation
  report as a summary, a filterable table and a map over the uploaded data, downloads,
  repair, the approval decision, publish;
- ``/planner/<district>/<kind>/history`` — every version, compare, roll back;
- ``/planner/decisions/<sha256>.pdf`` — a signed decision (public once its plan has
  been published: it is then a public document; before that, the district's staff only).

Scripts use the JSON API (``POST /api/jobs`` with an API token, ``GET /api/jobs/<id>``).
The views live in ``planner_pages``, ``planner_review`` and ``planner_api``; what they
share in ``planner_common``; the review data in ``planner_data``; display helpers in
``planner_display``. This module registers them, the strings and the request size limit.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from gisportal import jobs
from gisportal.base.text import human_size
from gisportal.web.auth import wants_json
from gisportal.web.errors import error_page
from gisportal.web.i18n import add_strings

__all__ = ["init_app", "FORM_OVERHEAD"]

#: Bytes a multipart request may carry beyond the file: the boundaries and the form's
#: text fields. The file itself is held to ``max_upload_bytes`` while it is saved.
FORM_OVERHEAD = 1024**2

add_strings(jobs.LABELS)
add_strings({
    "pl_menu": ("Quản lý dữ liệu", "Data management"),
    "pl_title": ("Quản lý dữ liệu quy hoạch", "Planning data"),
    "pl_intro": ("Tải lên dữ liệu mới, xem báo cáo kiểm tra, nhập quyết định phê duyệt và "
                 "công bố. Người dân chỉ thấy phiên bản đã công bố.",
                 "Upload new data, read its validation report, enter the approval decision "
                 "and publish. Residents only see published versions."),
    "pl_layer": ("Lớp dữ liệu", "Layer"),
    "pl_published": ("Đang công bố", "Published"),
    "pl_none_published": ("Chưa công bố", "Nothing published"),
    "pl_drafts": ("Bản nháp chờ duyệt", "Drafts awaiting review"),
    "pl_no_drafts": ("Không có", "None"),
    "pl_jobs": ("Công việc gần đây", "Recent jobs"),
    "pl_no_jobs": ("Chưa có công việc nào.", "No job yet."),
    "pl_upload": ("Tải lên", "Upload"),
    "pl_history": ("Lịch sử phiên bản", "Version history"),
    "pl_compare": ("So sánh", "Compare"),
    "pl_open_map": ("Xem bản đồ huyện", "Open the district map"),
    "pl_version": ("Phiên bản", "Version"),
    "pl_status": ("Trạng thái", "Status"),
    "pl_status_draft": ("bản nháp", "draft"),
    "pl_status_published": ("đang công bố", "published"),
    "pl_status_superseded": ("đã được thay thế", "superseded"),
    "pl_errors_n": ("{n} lỗi", "{n} errors"),
    "pl_job": ("Công việc", "Job"),
    "pl_job_no": ("Công việc số {id}", "Job {id}"),
    "pl_job_kind_check": ("Kiểm tra tệp", "Check a file"),
    "pl_job_kind_ingest": ("Kiểm tra và lưu tệp tải lên", "Check and store an upload"),
    "pl_job_kind_repair": ("Sửa lỗi hình học và lưu lại", "Repair and store an upload"),
    "pl_job_kind_publish": ("Công bố phiên bản", "Publish a version"),
    "pl_job_kind_rollback": ("Quay lại phiên bản trước", "Roll back to a version"),
    "pl_asked_by": ("Người yêu cầu", "Asked by"),
    "pl_created": ("Tạo lúc", "Created"),
    "pl_finished": ("Xong lúc", "Finished"),
    "pl_file": ("Tệp", "File"),
    "pl_progress": ("Tiến độ", "Progress"),
    "pl_job_keep": ("Có thể đóng trang này: công việc vẫn chạy tiếp, mở lại trang để xem "
                    "tiến độ.", "You may close this page: the job goes on; open the page again "
                    "to see how far it got."),
    "pl_job_review": ("Xem báo cáo kiểm tra và phiên bản mới", "Review the report and the new "
                      "version"),
    "pl_job_failed": ("Công việc không thành công", "The job failed"),
    "pl_job_cancelled": ("Công việc đã bị hủy.", "The job was cancelled."),
    "pl_job_published": ("Đã công bố phiên bản {v}: người dân thấy phiên bản này trên bản đồ.",
                         "Version {v} is published: residents see it on the map."),
    "pl_job_unchanged": ("Phiên bản {v} đã đang được công bố; không có gì thay đổi.",
                         "Version {v} was already published; nothing changed."),
    "pl_what": ("Vấn đề", "What"),
    "pl_where": ("Ở đâu", "Where"),
    "pl_fix": ("Cách khắc phục", "How to fix"),
    "pl_cancel": ("Hủy công việc", "Cancel the job"),
    "pl_upload_title": ("Tải lên dữ liệu", "Upload data"),
    "pl_upload_intro": ("Tệp được kiểm tra trong nền và lưu thành một bản nháp; dữ liệu đang "
                        "công bố không thay đổi cho đến khi bạn công bố phiên bản mới.",
                        "The file is checked in the background and stored as a draft; what "
                        "residents see does not change until you publish the new version."),
    "pl_kind": ("Loại lớp dữ liệu", "Layer kind"),
    "pl_file_label": ("Tệp dữ liệu", "Data file"),
    "pl_file_hint": ("Shapefile nén .zip, GeoPackage, GeoJSON, KML/KMZ, FlatGeobuf hoặc DXF; "
                     "tối đa {size}.", "Zipped Shapefile, GeoPackage, GeoJSON, KML/KMZ, "
                     "FlatGeobuf or DXF; at most {size}."),
    "pl_options": ("Tùy chọn khi tệp thiếu thông tin", "Options for files that lack "
                   "information"),
    "pl_crs": ("Hệ tọa độ", "Coordinate reference system"),
    "pl_crs_hint": ("Để trống nếu tệp có .prj; vd. EPSG:5899 hoặc VN2000:107.75",
                    "Leave empty when the file has a .prj; e.g. EPSG:5899 or VN2000:107.75"),
    "pl_encoding": ("Bảng mã tiếng Việt của tệp DBF", "Vietnamese encoding of the DBF"),
    "pl_encoding_auto": ("Tự nhận biết", "Detect"),
    "pl_source_layer": ("Tên lớp trong tệp (khi GeoPackage có nhiều lớp)",
                        "Layer in the file (when a GeoPackage has several)"),
    "pl_fields": ("Ghép trường, mỗi dòng một cặp trường=cột (vd. sheet=SO_TO)",
                  "Field overrides, one field=column per line (e.g. sheet=SO_TO)"),
    "pl_repair_box": ("Sửa lỗi hình học tự động (vòng tự cắt, đỉnh lặp, chồng lấn và khe hở "
                      "nhỏ) và liệt kê mọi thay đổi", "Repair geometry automatically "
                      "(self-intersections, repeated vertices, small overlaps and gaps) and "
                      "list every change"),
    "pl_year": ("Năm kế hoạch (kế hoạch sử dụng đất hằng năm)",
                "Plan year (annual land-use plans)"),
    "pl_year_hint": ("Cho các công trình, dự án trong tệp không ghi năm; vd. 2026",
                     "For the projects of the file that carry no year; e.g. 2026"),
    "pl_send": ("Tải lên và kiểm tra", "Upload and check"),
    "pl_refused": ("Không thực hiện được", "Not done"),
    "pl_review_title": ("Phiên bản {v}", "Version {v}"),
    "pl_source": ("Tệp nguồn", "Source file"),
    "pl_features": ("Số đối tượng", "Features"),
    "pl_uploaded": ("Tải lên", "Uploaded"),
    "pl_read": ("Cách đọc tệp", "How the file was read"),
    "pl_summary": ("Kết quả kiểm tra", "Validation summary"),
    "pl_errors": ("Lỗi", "Errors"),
    "pl_warnings": ("Cảnh báo", "Warnings"),
    "pl_infos": ("Thông tin", "Notes"),
    "pl_sev_error": ("lỗi", "error"),
    "pl_sev_warning": ("cảnh báo", "warning"),
    "pl_sev_info": ("thông tin", "info"),
    "pl_rule": ("Mã kiểm tra", "Rule"),
    "pl_severity": ("Mức độ", "Severity"),
    "pl_count": ("Số lượng", "Count"),
    "pl_no_findings": ("Không có phát hiện nào.", "No findings."),
    "pl_findings": ("Danh sách phát hiện", "Findings"),
    "pl_all": ("Tất cả", "All"),
    "pl_row": ("Dòng", "Row"),
    "pl_feature": ("Đối tượng", "Feature"),
    "pl_message": ("Nội dung", "Message"),
    "pl_prev": ("← Trước", "← Previous"),
    "pl_next": ("Sau →", "Next →"),
    "pl_page": ("{first}–{last} trong {total}", "{first}–{last} of {total}"),
    "pl_loading": ("Đang tải…", "Loading…"),
    "pl_load_error": ("Không tải được", "Could not load"),
    "pl_no_report": ("Phiên bản này không được tải lên qua cổng nên không có báo cáo chi tiết "
                     "(chỉ có phần tóm tắt).", "This version was not uploaded through the "
                     "portal, so there is no detailed report (only the summary)."),
    "pl_map_data": ("Dữ liệu tải lên", "Uploaded data"),
    "pl_map_findings": ("Phát hiện", "Findings"),
    "pl_zoom_in": ("Phóng to để xem các đối tượng đã tải lên.",
                   "Zoom in to see the uploaded features."),
    "pl_shown_part": ("Bản đồ hiển thị {shown} trong số {total} đối tượng trong khung nhìn; "
                      "phóng to để xem hết.", "The map shows {shown} of the {total} features "
                      "in view; zoom in to see them all."),
    "pl_downloads": ("Tải báo cáo", "Download the report"),
    "pl_repair": ("Sửa lỗi hình học", "Geometry repair"),
    "pl_repair_intro": ("Sửa tự động những lỗi sửa được an toàn thành một bản nháp mới, kèm "
                        "danh sách mọi thay đổi; phiên bản này giữ nguyên.",
                        "Fix what can be fixed safely into a new draft, with a list of every "
                        "change; this version stays as it is."),
    "pl_repair_button": ("Sửa lỗi thành phiên bản mới", "Repair into a new version"),
    "pl_repaired_from": ("Bản sửa lỗi của công việc {job}", "Repaired from job {job}"),
    "pl_changes": ("Các thay đổi khi sửa lỗi", "Changes made by the repair"),
    "pl_changes_more": ("… và {n} thay đổi khác (xem báo cáo JSON).",
                        "… and {n} more changes (see the JSON report)."),
    "pl_action": ("Thao tác", "Action"),
    "pl_area_before": ("Diện tích trước (m²)", "Area before (m²)"),
    "pl_area_after": ("Diện tích sau (m²)", "Area after (m²)"),
    "pl_area_change": ("Chênh lệch (m²)", "Change (m²)"),
    "pl_decision": ("Quyết định phê duyệt", "Approval decision"),
    "pl_decision_none": ("Chưa nhập quyết định phê duyệt.", "No approval decision yet."),
    "pl_decision_number": ("Số quyết định", "Decision number"),
    "pl_decision_date": ("Ngày ký", "Date signed"),
    "pl_decision_authority": ("Cơ quan phê duyệt", "Approving authority"),
    "pl_decision_pdf": ("Quyết định đã ký (PDF)", "Signed decision (PDF)"),
    "pl_decision_keep": ("Để trống để giữ tệp PDF đã có.", "Leave empty to keep the PDF "
                         "already attached."),
    "pl_decision_save": ("Lưu quyết định", "Save the decision"),
    "pl_decision_saved": ("Đã lưu quyết định {label}.", "Decision {label} saved."),
    "pl_decision_errors": ("Chỉ nhập quyết định cho phiên bản không có lỗi.",
                           "A decision is entered for a version without errors only."),
    "pl_decision_public": ("Công khai sau khi quy hoạch được công bố.",
                           "Public once the plan is published."),
    "pl_publish": ("Công bố", "Publish"),
    "pl_publish_button": ("Công bố phiên bản này", "Publish this version"),
    "pl_publish_note": ("Người dân vẫn thấy phiên bản hiện tại cho đến khi việc công bố hoàn "
                        "tất.", "Residents keep seeing the current version until publishing "
                        "has finished."),
    "pl_blocked_errors": ("Chưa công bố được: phiên bản có {n} lỗi. Hãy sửa lỗi hoặc tải lên "
                          "tệp đã chỉnh.", "Cannot be published: the version has {n} errors. "
                          "Repair it or upload a corrected file."),
    "pl_blocked_decision": ("Chưa công bố được: quy hoạch cần quyết định phê duyệt (số, ngày, "
                            "cơ quan và bản PDF đã ký).", "Cannot be published yet: a plan "
                            "needs its approval decision (number, date, authority and the "
                            "signed PDF)."),
    "pl_is_published": ("Đây là phiên bản đang công bố.", "This is the published version."),
    "pl_changes_title": ("Người dân sẽ thấy thay đổi", "What residents will see change"),
    "pl_changes_first": ("Chưa có phiên bản nào được công bố: {n} đối tượng sẽ được thêm.",
                         "Nothing is published yet: {n} features will be added."),
    "pl_changes_against": ("So với phiên bản đang công bố {v}:", "Against published version {v}:"),
    "pl_change_added": ("thêm mới", "added"),
    "pl_change_removed": ("bị gỡ bỏ", "removed"),
    "pl_change_reshaped": ("đổi hình dạng", "reshaped"),
    "pl_change_use_changed": ("đổi loại đất", "land use changed"),
    "pl_change_renumbered": ("đổi số hiệu", "renumbered"),
    "pl_change_indicators_changed": ("đổi chỉ tiêu quy hoạch", "indicators changed"),
    "pl_change_replaced": ("đường thay thế toàn bộ", "lines replacing the published ones"),
    "pl_change_unchanged": ("không đổi", "unchanged"),
    "pl_change_m2": ("Diện tích theo loại đất (m², sau − trước)",
                     "Area by land-use code (m², after − before)"),
    "pl_removals_warning": ("Cảnh báo: công bố phiên bản này sẽ gỡ bỏ {removed} trong số {total} "
                            "đối tượng đang công bố ({pct}). Nếu tệp chỉ gồm một số xã, hãy tải "
                            "lên dưới dạng cập nhật theo xã.",
                            "Warning: publishing this version removes {removed} of the {total} "
                            "published features ({pct}). If the file covers only some "
                            "communes, upload it as an update of those communes."),
    "pl_removals_confirm": ("Tôi xác nhận gỡ bỏ {removed} đối tượng khỏi bản đồ công khai.",
                            "I confirm removing {removed} features from the public map."),
    "pl_consultation_button": ("Công bố dự thảo lấy ý kiến",
                               "Publish as a draft for comment"),
    "pl_consultation_note": ("Dự thảo được ghi rõ \u201cDự thảo lấy ý kiến\u201d trên mọi trang "
                             "công khai, không phải quy hoạch được phê duyệt.",
                             "Shown as \u201cDraft for comment\u201d on every public page, never "
                             "as the approved plan."),
    "pl_is_consultation": ("Đang công bố dưới dạng dự thảo lấy ý kiến.",
                           "Published as a draft for comment."),
    "pl_update_title": ("Cập nhật theo xã", "Update by commune"),
    "pl_public_title": ("Cột công khai cho người dân", "Columns residents may see"),
    "pl_public_hint": ("Chỉ các trường chuẩn và các cột được đánh dấu ở đây được công khai; "
                       "các cột khác chỉ cán bộ của huyện xem được.",
                       "Only the standard fields and the columns marked here are public; "
                       "the others are seen by the district's staff only."),
    "pl_public_personal": ("có thể là dữ liệu cá nhân", "may be personal data"),
    "pl_public_mapped": ("đã dùng cho trường {field}", "used for the field {field}"),
    "pl_public_confirm": ("Tôi đã kiểm tra: các cột được đánh dấu là dữ liệu cá nhân thực ra "
                          "không chứa thông tin cá nhân.", "I have checked: the columns "
                          "flagged as personal data hold no personal information."),
    "pl_public_save": ("Lưu lựa chọn", "Save the choice"),
    "pl_public_saved": ("Đã lưu: {n} cột công khai.", "Saved: {n} public columns."),
    "pl_update_box": ("Chỉ cập nhật các xã có trong tệp (chỉnh lý): thửa của các xã khác giữ "
                      "nguyên", "Update only the communes in the file (cadastral correction): "
                      "other communes' parcels stay as published"),
    "pl_update_communes": ("Mã xã (khi tệp không có cột mã xã), cách nhau bởi dấu phẩy",
                           "Commune codes (when the file has no commune column), comma "
                           "separated"),
    "pl_update_line": ("Thay thế xã {communes} của phiên bản {base}: gỡ {removed}, thêm {added}; "
                       "giữ nguyên {kept} đối tượng của các xã khác.",
                       "Communes {communes} of version {base} replaced: {removed} removed, "
                       "{added} added; {kept} features of other communes kept."),
    "pl_rollback_confirm": ("Xác nhận nếu việc quay lại gỡ bỏ hơn 5% đối tượng",
                            "Confirm if rolling back removes more than 5 % of the features"),
    "pl_is_superseded": ("Phiên bản này đã được thay thế; có thể quay lại phiên bản này từ "
                         "trang lịch sử.", "This version was superseded; you can roll back "
                         "to it from the history page."),
    "pl_rollback": ("Quay lại phiên bản này", "Roll back to this version"),
    "pl_compare_pick": ("So sánh hai phiên bản", "Compare two versions"),
    "pl_from": ("Phiên bản trước", "Before"),
    "pl_to": ("Phiên bản sau", "After"),
    "pl_compare_published": ("So sánh với phiên bản đang công bố", "Compare with the published "
                             "version"),
    "pl_created_by": ("Người tải lên", "Uploaded by"),
    "pl_published_by": ("Công bố", "Published"),
    "pl_repaired": ("đã sửa lỗi", "repaired"),
    "pl_no_versions": ("Lớp dữ liệu này chưa có phiên bản nào.", "This layer has no version "
                       "yet."),
    "pl_back": ("← Trang quản lý dữ liệu", "← Planning data"),
    "pl_too_big": ("Tệp tải lên vượt quá giới hạn {size}.", "The upload is over the {size} "
                   "limit."),
})


def _too_big(err: RequestEntityTooLarge):
    """413 with what/where/fix, as JSON for scripts or as the error page for people."""
    from flask import current_app

    limit = int(current_app.config["GISPORTAL"]["max_upload_bytes"])
    sent = request.content_length
    if sent is not None and sent <= (current_app.config.get("MAX_CONTENT_LENGTH") or sent):
        # Within the request limit: a text field over Flask's MAX_FORM_MEMORY_SIZE.
        info = {"code": "FORM-TOO-BIG", "what": "a text field of the form is too long",
                "where": request.path, "fix": "Shorten the text fields and send the form again"}
    else:
        info = {"code": "FILE-TOO-BIG",
                "what": f"the upload is over the {human_size(limit)} limit",
                "where": request.path,
                "fix": "Split the data into smaller files (one district or commune each), or "
                       "ask the administrator to raise max_upload_bytes "
                       "(GISPORTAL_MAX_UPLOAD_BYTES)"}
    info["message"] = f"{info['what']} [{info['where']}]. {info['fix']}."
    if wants_json():
        return jsonify({"error": info}), 413
    return error_page(413, info), 413


def init_app(app: Flask) -> None:
    """Register the planner blueprints, the size limit of requests and its 413 answer."""
    from gisportal.web import planner_api, planner_pages, planner_projects, planner_review
    from gisportal.web.planner_display import number, vn_date, vn_time

    limit = int(app.config["GISPORTAL"]["max_upload_bytes"])
    app.config["MAX_CONTENT_LENGTH"] = limit + FORM_OVERHEAD
    app.register_error_handler(RequestEntityTooLarge, _too_big)
    app.add_template_filter(vn_time, "vn_time")
    app.add_template_filter(vn_date, "vn_date")
    app.add_template_filter(number, "pl_num")
    app.register_blueprint(planner_pages.bp)
    app.register_blueprint(planner_review.bp)
    app.register_blueprint(planner_api.bp)
    app.register_blueprint(planner_projects.bp)
