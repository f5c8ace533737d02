"""Staff page and download of the ministry export package.

``GET /admin/export`` lists the districts the signed-in user may export, with their
published layers and the package options, then the planning projects of those
districts; ``GET /admin/export/<district>.zip`` builds and sends a district's package,
``GET /admin/export/projects/<project>.zip`` a planning project's (its published lots,
red lines and boundary, decision and documents: `gisportal.outputs.export.project`),
for the Ministry of Construction's portal. Both go the same way (`_send_package`), and
need the "export" right in the district (of the project).

Query: ``kind`` (repeatable: parcels, plan, boundary, annual_plan; default every
published layer) and ``national_names`` (1/0, true/false, yes/no, on/off; default 1: the
ministry's package names fields as the national land database does, ``0`` keeps
gisportal's English names; a project's package takes ``national_names`` alone). The
package is built by :func:`gisportal.outputs.export.export_package` (or
``export_project_package``) into the data home's ``exports/`` folder (with
S3 file areas: a folder of the node's scratch named for this process, so a killed
server's leftovers are cleaned like all scratch), opened, unlinked, then streamed: the
file disappears with the response whatever the client does, so downloads never pile
up, and no other node ever needs it. Personal data is never part of a web download; an
official transfer that needs it uses ``gisportal export --include-personal``.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, send_file
from flask_login import current_user

from gisportal.accounts.roles import allowed_districts
from gisportal.base import seeds
from gisportal.base.errors import GisportalError, UsageError
from gisportal.outputs.export import ExportResult, export_package, export_project_package
from gisportal.store import projects as catalogue
from gisportal.store.base import KINDS, PROJECT_KINDS
from gisportal.store.home import scratch_prefix
from gisportal.store.projects import LEVEL_NAMES
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
    "exp_projects": ("Đồ án quy hoạch xây dựng, đô thị", "Construction and urban plans"),
    "exp_projects_intro": (
        "Gói của một đồ án cho Cổng thông tin quy hoạch của Bộ Xây dựng: các lớp đã công bố "
        "(ô quy hoạch, chỉ giới đường đỏ và chỉ giới xây dựng) và ranh giới đồ án, dạng "
        "GeoPackage, Shapefile VN-2000 và GeoJSON; quyết định phê duyệt và các tài liệu "
        "(PDF); siêu dữ liệu ISO 19139 và manifest.json.",
        "A project's package for the Ministry of Construction's planning portal: its "
        "published layers (lots, red and building lines) and its boundary as GeoPackage, "
        "VN-2000 Shapefiles and GeoJSON; the approving decision and the documents (PDF); "
        "ISO 19139 metadata and manifest.json."),
    "exp_project": ("Đồ án", "Project"),
    "exp_no_projects": ("chưa có đồ án nào", "no project yet"),
    "exp_documents": ("tài liệu", "documents"),
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
    published = store.published_projects()
    allowed = set(codes)
    project_rows = []
    for project in catalogue.list_projects(get_home()):
        if project.district not in allowed:
            continue
        layers = [published[(project.id, kind)] for kind in PROJECT_KINDS
                  if (project.id, kind) in published]
        project_rows.append({"project": project, "layers": layers,
                             "level": LEVEL_NAMES[project.level],
                             "district": _district_label(project.district)})
    return render_template("admin_export.html", rows=rows, projects=project_rows)


def _district_label(code: str) -> str:
    try:
        return seeds.district(code).name
    except KeyError:
        return code


def _project_district(project: str) -> str | None:
    """The district of `project`, for the right to export it; None when there is no such
    project (the view then answers the 404, once the user is known to be staff)."""
    try:
        return catalogue.get(get_home(), project).district
    except GisportalError:
        return None


@bp.get("/admin/export/<district>.zip")
@requires("export")
def download(district: str) -> Response:
    """Build the district's package and send it as an attachment.

    Staff only: the district's planners and admins (the "export" right). Personal data
    never goes into this download; the CLI's --include-personal is for the operator.
    """
    kinds = request.args.getlist("kind")
    national_names = _flag("national_names", default=True)

    def build(out: Path, folder: Path) -> ExportResult:
        return export_package(get_store(), district, out, kinds=kinds or None,
                              national_names=national_names, include_personal=False,
                              settings=current_app.config["GISPORTAL"], workdir=folder)

    def audit(result: ExportResult) -> dict[str, Any]:
        return {"kinds": [layer.kind for layer in result.layers],
                "versions": [layer.version.id for layer in result.layers if layer.version],
                "national_names": national_names}

    return _send_package(build, audit, "export.download",
                         lambda result: f"gisportal_{result.district}")


@bp.get("/admin/export/projects/<project>.zip")
@requires("export", district_from=_project_district)
def download_project(project: str) -> Response:
    """Build a planning project's package and send it as an attachment.

    Staff with the "export" right in the project's district; personal data never goes
    into it (as for a district's download).
    """
    national_names = _flag("national_names", default=True)

    def build(out: Path, folder: Path) -> ExportResult:
        return export_project_package(get_store(), project, out,
                                      national_names=national_names, include_personal=False,
                                      settings=current_app.config["GISPORTAL"],
                                      workdir=folder)

    def audit(result: ExportResult) -> dict[str, Any]:
        return {"project": result.project, "kinds": [layer.kind for layer in result.layers],
                "versions": [layer.version.id for layer in result.layers if layer.version],
                "national_names": national_names}

    return _send_package(build, audit, "export.project_download",
                         lambda result: f"gisportal_{result.project}")


def _send_package(build: Callable[[Path, Path], ExportResult],
                  audit: Callable[[ExportResult], dict[str, Any]], action: str,
                  name: Callable[[ExportResult], str]) -> Response:
    """Build a package with `build(out, workdir)` in the exports folder, audit it as
    `action`, then stream it: the file is unlinked once open (module docstring)."""
    home = get_home()
    scratch = home.files_remote
    folder = home.scratch / f"{scratch_prefix('export')}{secrets.token_hex(4)}" if scratch \
        else home.exports
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{secrets.token_hex(8)}.zip"
    try:
        result = build(out, folder)
    except BaseException:
        if scratch:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    audit_event(action, district=result.district, detail=audit(result))
    package = open(result.path, "rb")  # noqa: SIM115 (send_file closes it after sending)
    result.path.unlink()
    if scratch:  # the open file outlives its folder's entry
        shutil.rmtree(folder, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return send_file(package, mimetype="application/zip", as_attachment=True,
                     download_name=f"{name(result)}_{stamp}.zip", max_age=0)
