"""Staff page and download of the ministry export package.

``GET /admin/export`` lists the districts the signed-in user may export, with their
published layers and the package options; ``GET /admin/export/<district>.zip`` builds
and sends one package.

Query: ``kind`` (repeatable: parcels, plan, boundary, annual_plan; default every
published layer) and ``national_names`` (1/0, true/false, yes/no, on/off; default 1: the
ministry's package names fields as the national land database does, ``0`` keeps
gisportal's English names). The package is built by
:func:`gisportal.outputs.export.export_package` into the data home's ``exports/`` folder (with
S3 file areas: a folder of the node's scratch named for this process, so a killed
server's leftovers are cleaned like all scratch), opened, unlinked, then streamed: the
file disappears with the response whatever the client does, so downloads never pile
up, and no other node ever needs it. Personal data is never part of a web download; an
official transfer that needs it uses ``gisportal export --include-personal``.
"""

from __future__ import annotations

import secrets
import shutil
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, render_template, request, send_file
from flask_login import current_user

from gisportal.accounts.roles import allowed_districts
from gisportal.base import seeds
from gisportal.base.errors import UsageError
from gisportal.outputs.export import export_package
from gisportal.store.base import KINDS
from gisportal.store.home import scratch_prefix
from gisportal.web import get_home, get_store
from gisportal.web.auth import audit_event, login_required, require, requires
from gisportal.web.i18n import add_strings

__all__ = ["bp"]

bp = Blueprint("export", __name__)

add_strings({
    "exp_title": ("Xuất dữ liệu cho Bộ", "Export for the ministry"),
    "exp_intro": ("Mỗi gói là một tệp zip cho một huyện: GeoPackage (VN-2000 / TM-3), "
                  "Shapefile UTF-8 có tệp .prj mang tham số chuyển đổi, GeoJSON (WGS 84), "
                  "siêu dữ liệu ISO 19139 và manifest.json với mã sha256 của từng tệp. "
                  "Gói tải từ trang này không bao giờ chứa dữ liệu cá nhân.",
                  "Each package is one zip per district: GeoPackage (VN-2000 / TM-3), UTF-8 "
                  "Shapefiles whose .prj carries the datum shift, GeoJSON (WGS 84), ISO 19139 "
                  "metadata and a manifest.json with the sha256 of every file. Packages "
                  "downloaded here never hold personal data."),
    "exp_layers": ("Lớp đã công bố", "Published layers"),
    "exp_none": ("chưa công bố lớp nào", "nothing published"),
    "exp_names": ("Tên trường", "Field names"),
    "exp_national": ("theo CSDL đất đai quốc gia (SoHieuToBanDo, KyHieuMucDichSuDung…)",
                     "as the national land database names them (SoHieuToBanDo, "
                     "KyHieuMucDichSuDung…)"),
    "exp_english": ("tiếng Anh của gisportal (sheet, land_use…)",
                    "gisportal's English names (sheet, land_use…)"),
    "exp_download": ("Tải gói", "Download package"),
    "exp_features": ("đối tượng", "features"),
})

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _flag(name: str, default: bool = False) -> bool:
    """A yes/no query parameter; `default` when it is absent."""
    if name not in request.args:
        return default
    value = request.args.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"{name}={request.args.get(name)!r} is not yes or no", where=name,
                     fix=f"use {name}=1 or {name}=0")


@bp.get("/admin/export")
@login_required
def page() -> str:
    """The districts this user may export, with their published layers."""
    store = get_store()
    codes = allowed_districts(current_user, "export", [d.code for d in seeds.districts()])
    if not codes:
        require("export")  # signed in, but no district to export: 403 with the reason
    rows = []
    for code in codes:
        layers = [v for v in (store.published(code, kind) for kind in KINDS) if v is not None]
        rows.append({"district": seeds.district(code), "layers": layers})
    return render_template("admin_export.html", rows=rows)


@bp.get("/admin/export/<district>.zip")
@requires("export")
def download(district: str) -> Response:
    """Build the district's package and send it as an attachment.

    Staff only: the district's planners and admins (the "export" right). Personal data
    never goes into this download; the CLI's --include-personal is for the operator.
    """
    kinds = request.args.getlist("kind")
    national_names = _flag("national_names", default=True)
    home = get_home()
    scratch = home.files_remote
    folder = home.scratch / f"{scratch_prefix('export')}{secrets.token_hex(4)}" if scratch \
        else home.exports
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{secrets.token_hex(8)}.zip"
    try:
        result = export_package(get_store(), district, out, kinds=kinds or None,
                                national_names=national_names, include_personal=False,
                                settings=current_app.config["GISPORTAL"], workdir=folder)
    except BaseException:
        if scratch:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    audit_event("export.download", district=result.district,
                detail={"kinds": [layer.version.kind for layer in result.layers],
                        "versions": [layer.version.id for layer in result.layers],
                        "national_names": national_names})
    package = open(result.path, "rb")  # noqa: SIM115 (send_file closes it after sending)
    result.path.unlink()
    if scratch:  # the open file outlives its folder's entry
        shutil.rmtree(folder, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return send_file(package, mimetype="application/zip", as_attachment=True,
                     download_name=f"gisportal_{result.district}_{stamp}.zip", max_age=0)
