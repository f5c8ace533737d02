"""Administration pages: accounts (``/admin/users``) and the audit log (``/admin/audit``).

Thin views over :mod:`gisportal.accounts`: every form posts to its own URL with the
CSRF token, a refused input re-renders the page with the reason and a 4xx status, a
change redirects back (303) with a message. Accounts are addressed by id in URLs, so
any name (Vietnamese letters included) works without encoding surprises.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user

from gisportal.accounts import audit, users
from gisportal.base import seeds
from gisportal.base.errors import GisportalError, UsageError
from gisportal.web import get_home
from gisportal.web.auth import audit_event, requires
from gisportal.web.i18n import add_strings, tr

__all__ = ["bp"]

bp = Blueprint("admin", __name__, url_prefix="/admin")

add_strings({
    "admin_users": ("Tài khoản", "Accounts"),
    "admin_audit": ("Nhật ký hoạt động", "Audit log"),
    "admin_add_user": ("Thêm tài khoản", "Add an account"),
    "admin_role": ("Vai trò", "Role"),
    "admin_districts": ("Huyện phụ trách", "Districts"),
    "admin_units": ("Hoặc xã, phường phụ trách", "Or communes"),
    "admin_units_rule": ("mã xã, phường hiện nay (5 số): cán bộ địa chính xã chỉ gửi chỉnh "
                         "lý địa chính của các xã cũ hợp thành; huyện công bố",
                         "codes of today's communes or wards (5 digits): a commune officer "
                         "only sends cadastral corrections of the former communes it was "
                         "made of; the district publishes them"),
    "admin_all_districts": ("Tất cả", "All"),
    "admin_state": ("Trạng thái", "State"),
    "admin_active": ("Đang hoạt động", "Active"),
    "admin_disabled": ("Đã khóa", "Disabled"),
    "admin_last_login": ("Đăng nhập gần nhất", "Last sign-in"),
    "admin_created": ("Tạo lúc", "Created"),
    "admin_password_again": ("Nhập lại mật khẩu", "Repeat the password"),
    "admin_password_rule": ("Ít nhất {n} ký tự.", "At least {n} characters."),
    "admin_disable": ("Khóa", "Disable"),
    "admin_enable": ("Mở khóa", "Enable"),
    "admin_reset_password": ("Đặt lại mật khẩu", "Reset password"),
    "admin_new_password": ("Mật khẩu mới", "New password"),
    "admin_save": ("Lưu", "Save"),
    "admin_added": ("Đã thêm tài khoản {name}.", "Account {name} added."),
    "admin_disabled_done": ("Đã khóa tài khoản {name}.", "Account {name} disabled."),
    "admin_enabled_done": ("Đã mở khóa tài khoản {name}.", "Account {name} enabled."),
    "admin_password_done": ("Đã đặt lại mật khẩu cho {name}.", "Password of {name} reset."),
    "admin_refused": ("Không thực hiện được", "Not done"),
    "admin_time": ("Thời gian (giờ Việt Nam)", "Time (Vietnam)"),
    "admin_actor": ("Người thực hiện", "Actor"),
    "admin_action": ("Hành động", "Action"),
    "admin_district": ("Huyện", "District"),
    "admin_object": ("Đối tượng", "Object"),
    "admin_detail": ("Chi tiết", "Detail"),
    "admin_since": ("Từ ngày", "From"),
    "admin_until": ("Đến ngày", "To"),
    "admin_filter": ("Lọc", "Filter"),
    "admin_older": ("Cũ hơn →", "Older →"),
    "admin_newest": ("← Mới nhất", "← Newest"),
    "admin_csv": ("Tải CSV (Excel)", "Download CSV (Excel)"),
    "admin_no_events": ("Không có sự kiện nào.", "No event."),
})


def _ip() -> str | None:
    return request.remote_addr


def _user_or_404(user_id: int) -> users.User:
    user = users.user_by_id(get_home(), user_id)
    if user is None:
        abort(404, description=f"Không có tài khoản số {user_id} / no account {user_id}")
    return user


def _users_page(status: int = 200, *, error: GisportalError | None = None,
                form: dict[str, Any] | None = None):
    form = form or {}
    # Scopes that are today's communes (5 digits) go back into their text box; the
    # district checkboxes keep the rest.
    units = ", ".join(c.strip() for raw in form.get("districts") or []
                      for c in str(raw).split(",") if len(c.strip()) == 5)
    return render_template(
        "admin_users.html", users=users.list_users(get_home()), districts=seeds.districts(),
        roles=users.ROLES, error=error.to_dict() if error else None, form=form,
        units=units, min_password=users.MIN_PASSWORD_LENGTH), status


def _same_passwords(form) -> str:
    password = form.get("password", "")
    if password != form.get("password2", ""):
        raise UsageError("the two passwords differ / hai mật khẩu không khớp",
                         where="password2", fix="type the same password twice",
                         code="PASSWORD-MISMATCH")
    return password


@bp.get("/users")
@requires("manage_users")
def users_page():
    return _users_page()


@bp.post("/users")
@requires("manage_users")
def users_add():
    f = request.form
    try:
        user = users.add_user(get_home(), f.get("username", ""), f.get("role", ""),
                              _same_passwords(f), districts=f.getlist("district"),
                              actor=current_user, ip=_ip())
    except GisportalError as err:
        keep = {"username": f.get("username", "")[:100], "role": f.get("role", ""),
                "districts": f.getlist("district")}
        return _users_page(err.http_status, error=err, form=keep)
    flash(tr("admin_added").format(name=user.name))
    return redirect(url_for(".users_page"), 303)


def _change(user_id: int, change, done_key: str):
    user = _user_or_404(user_id)
    try:
        change(user)
    except GisportalError as err:
        return _users_page(err.http_status, error=err)
    flash(tr(done_key).format(name=user.name))
    return redirect(url_for(".users_page"), 303)


@bp.post("/users/<int:user_id>/disable")
@requires("manage_users")
def users_disable(user_id: int):
    return _change(user_id, lambda u: users.disable_user(get_home(), u.name, actor=current_user,
                                                         ip=_ip()), "admin_disabled_done")


@bp.post("/users/<int:user_id>/enable")
@requires("manage_users")
def users_enable(user_id: int):
    return _change(user_id, lambda u: users.enable_user(get_home(), u.name, actor=current_user,
                                                        ip=_ip()), "admin_enabled_done")


@bp.post("/users/<int:user_id>/password")
@requires("manage_users")
def users_password(user_id: int):
    return _change(user_id, lambda u: users.set_password(
        get_home(), u.name, _same_passwords(request.form), actor=current_user, ip=_ip()),
        "admin_password_done")


_FILTERS = ("actor", "action", "district", "since", "until")


def _filters() -> dict[str, str | None]:
    return {k: (request.args.get(k) or "").strip()[:100] or None for k in _FILTERS}


@bp.get("/audit")
@requires("view_audit")
def audit_page():
    filters = _filters()
    page = audit.events(get_home(), before=request.args.get("before") or None,
                        limit=request.args.get("limit") or 50, **filters)
    query = {k: v for k, v in filters.items() if v}
    return render_template("admin_audit.html", page=page, filters=filters, query=query,
                           newest=bool(request.args.get("before")),
                           districts=seeds.districts())


@bp.get("/audit.csv")
@requires("view_audit")
def audit_csv():
    """Every matching event as CSV (UTF-8 with BOM; ``?sep=semicolon`` for Excel set to
    Vietnamese regional settings). The export itself is audited."""
    filters = _filters()
    sep = request.args.get("sep", ",")
    chunks = audit.csv_chunks(get_home(), delimiter=sep, **filters)
    first = next(chunks)  # bad filters or separator raise here, before any byte is sent
    audit_event("audit.export", detail={k: v for k, v in filters.items() if v} or None)

    def body():
        yield first
        yield from chunks

    return Response(stream_with_context(body()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
