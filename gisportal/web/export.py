"""Staff download of the ministry export package: ``GET /admin/export/<district>.zip``.

Query: ``kind`` (repeatable: parcels, plan, boundary; default every published layer)
and ``national_names`` (1/0, true/false, yes/no, on/off). The package is built by
:func:`gisportal.export.export_package` into the data home's ``exports/`` folder, opened,
unlinked, then streamed: the file disappears with the response whatever the client
does, so downloads never pile up. Personal data is never part of a web download; an
official transfer that needs it uses ``gisportal export --include-personal``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file

from gisportal.errors import UsageError
from gisportal.export import export_package
from gisportal.web import get_store
from gisportal.web.auth import requires

__all__ = ["bp"]

bp = Blueprint("export", __name__)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _flag(name: str) -> bool:
    value = request.args.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"{name}={request.args.get(name)!r} is not yes or no", where=name,
                     fix=f"use {name}=1 or {name}=0")


@bp.get("/admin/export/<district>.zip")
@requires("export")
def download(district: str) -> Response:
    """Build the district's package and send it as an attachment.

    Staff only: the district's planners and admins (the "export" right). Personal data
    never goes into this download; the CLI's --include-personal is for the operator.
    """
    kinds = request.args.getlist("kind")
    national_names = _flag("national_names")
    folder = Path(current_app.config["GISPORTAL_HOME"]) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{secrets.token_hex(8)}.zip"
    result = export_package(get_store(), district, out, kinds=kinds or None,
                            national_names=national_names, include_personal=False,
                            settings=current_app.config["GISPORTAL"], workdir=folder)
    package = open(result.path, "rb")  # noqa: SIM115 (send_file closes it after sending)
    result.path.unlink()
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return send_file(package, mimetype="application/zip", as_attachment=True,
                     download_name=f"gisportal_{result.district}_{stamp}.zip", max_age=0)
