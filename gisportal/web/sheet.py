"""The parcel information sheet (phiếu thông tin thửa đất): one A4 page, and its PDF.

``/parcels/<district>/<sheet>/<parcel>[?commune=]`` is the page,
``/parcels/<district>/<sheet>/<parcel>.pdf[?commune=]`` the same sheet as a PDF made on
the server. Both come from one content (`gisportal.outputs.sheet.build_sheet`: the
look-up's answer — identity, today's and the former commune, planned uses with area
and share, the approving decision — plus the address, the corner coordinates in the
district's survey zone, a map drawn as SVG, the date of issue and the data versions)
rendered by one template, ``parcel.html``; the PDF is that very HTML laid out by
WeasyPrint with the page's print stylesheet, so what a resident downloads is what the
page prints.

What the public sees is what the allow-list of `gisportal.outputs.privacy` lets out;
the table of the source attributes (personal fields included) is shown on screen only
to a planner of the parcel's district or an admin (``can(user, "view_personal",
district)``), never printed nor put in the PDF, and such answers are never cached.
Errors (an unknown parcel, a bad sheet number) are the portal's error pages, as for
every look-up.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, make_response, render_template, request
from flask_login import current_user

from gisportal.accounts.roles import can
from gisportal.base.errors import GisportalError
from gisportal.outputs.sheet import TEXT, SheetContent, build_sheet, render_pdf
from gisportal.services import lookup as lk
from gisportal.web import get_store
from gisportal.web.i18n import add_strings, current_lang, tr

bp = Blueprint("sheet", __name__)

add_strings(TEXT)


def _sheet(district: str, sheet: str, parcel: str) -> tuple[SheetContent, bool]:
    """The sheet's content for this request (errors → the portal's 4xx pages)."""
    store = get_store()
    staff = can(current_user, "view_personal", district)
    answer = lk.lookup_key(store, district, sheet, parcel, request.args.get("commune") or None,
                           public=not staff)
    return build_sheet(store, answer, lang=current_lang(), staff=staff), staff


def _html(content: SheetContent, *, pdf: bool) -> str:
    query = request.query_string.decode("latin-1")
    return render_template("parcel.html", s=content, pdf=pdf,
                           pdf_url=request.path + ".pdf" + (f"?{query}" if query else ""))


def _private(response: Response, staff: bool) -> Response:
    if staff:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/parcels/<district>/<sheet>/<parcel>")
def parcel_sheet(district: str, sheet: str, parcel: str):
    content, staff = _sheet(district, sheet, parcel)
    return _private(make_response(_html(content, pdf=False)), staff)


class PdfUnavailableError(GisportalError):
    """The server has no PDF engine: the page itself still prints (503, not a 500)."""

    code = "PDF-UNAVAILABLE"
    http_status = 503


@bp.get("/parcels/<district>/<sheet>/<parcel>.pdf")
def parcel_sheet_pdf(district: str, sheet: str, parcel: str):
    """The same sheet as a PDF download (one A4 page)."""
    content, staff = _sheet(district, sheet, parcel)
    html = _html(content, pdf=True)
    static = Path(current_app.static_folder or "")  # the package's gisportal/static
    title = f"{tr('sheet_link')} — {content.district}/{content.sheet}/{content.parcel}"
    try:
        data = render_pdf(html, base_url=request.host_url, static_dir=static, title=title)
    except (ImportError, OSError) as exc:  # WeasyPrint or its Pango library missing
        raise PdfUnavailableError(
            "the server cannot make PDFs: WeasyPrint or the Pango library it needs is "
            f"missing ({type(exc).__name__})", where="parcel sheet PDF",
            fix="print the sheet from the browser; an administrator installs "
                "Debian's libpango-1.0-0 (pip install weasyprint)",
            what_vi="máy chủ chưa tạo được tệp PDF",
            fix_vi="hãy in phiếu từ trình duyệt (nút In phiếu)") from None
    response = make_response(data)
    response.mimetype = "application/pdf"
    name = f"phieu-thong-tin-thua-dat-{content.district}-{content.sheet}-{content.parcel}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return _private(response, staff)
