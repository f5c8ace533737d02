"""Error answers: JSON under /api and /tiles, the OGC exception under /ogc, a
Vietnamese-first page elsewhere; with the headers the error defines (``Allow``).

A GisportalError carries what/where/fix and its HTTP status; anything unexpected is
logged and answered with a plain 500 that leaks nothing.

The HTML page is a resident's page (`i18n.mark_public`): in the page's language only,
without the ``[where]`` tag meant for staff and scripts. A Vietnamese page shows the
error's own Vietnamese sentence (``message_vi``) or, when it has none, a Vietnamese
sentence for its status; never the English one. An ``abort`` description or an
error's ``what`` written "Vietnamese / English" (pages.py, admin.py, auth.py's CSRF
error) gives each page its half.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from gisportal.base.errors import GisportalError
from gisportal.web import ogc
from gisportal.web.i18n import TEXT, current_lang, is_public_page, mark_public

#: Statuses with a sentence of their own (``error_<status>`` in `i18n.TEXT`); any
#: other 4xx is told as a 400, 5xx as a 500.
_SAID = (400, 403, 404, 405, 409, 413, 429, 500, 503)
#: Letters only Vietnamese writes (a description's Vietnamese half has some).
_VIETNAMESE = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữự"
                         r"ỳýỷỹỵ]", re.IGNORECASE)

__all__ = ["error_page", "init_app"]


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/tiles/", "/ogc")) or request.path == "/healthz"


def _is_ogc() -> bool:
    """Whether the request is for the OGC API, whose errors are the standard's exception."""
    return request.path == "/ogc" or request.path.startswith("/ogc/")


def _with_headers(response: Response, err: HTTPException) -> Response:
    """`response` with the headers the error defines (``Allow`` on a 405, as RFC 9110
    requires; ``WWW-Authenticate``, ``Retry-After``), which a handler's own body drops."""
    for name, value in err.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _status_sentence(status: int, lang: str) -> str:
    """The page's sentence for an HTTP status with no message of its own."""
    said = status if status in _SAID else (500 if status >= 500 else 400)
    vi, en = TEXT[f"error_{said}"]
    return en if lang == "en" else vi


def _halves(description: str | None) -> tuple[str, str]:
    """(Vietnamese, English) of an ``abort`` description: "Vietnamese / English" gives
    both; an English-only one (werkzeug's own) gives no Vietnamese."""
    text = (description or "").strip()
    vi, sep, en = text.partition(" / ")
    if sep and _VIETNAMESE.search(vi) and not _VIETNAMESE.search(en):
        return vi.strip(), en.strip()
    if _VIETNAMESE.search(text):
        return text, ""
    return "", text


def _page(status: int, message_vi: str | None, message_en: str | None,
          staff: dict | None = None) -> str:
    """The error page in the page's language (module doc). A request of a staff page
    (a blueprint outside `i18n.PUBLIC_BLUEPRINTS`: planner, admin, sign-in) also gets,
    as staff pages have their English twin, the error as it always showed it there —
    the CLI's line with its ``[where]`` tag, then the fix — in small type; a resident's
    page never does."""
    show_staff = request.blueprint is not None and not is_public_page()
    mark_public()
    lang = current_lang()
    message = (message_en if lang == "en" else message_vi) or _status_sentence(status, lang)
    return render_template("error.html", status=status, message=message,
                           staff=staff if show_staff else None)


def error_page(status: int, info: Mapping[str, Any]) -> str:
    """The HTML error page for an error a view answers itself, given as
    `GisportalError.to_dict` gives it (or only a ``message``): the OGC API's HTML
    requests, the upload form's 413. The same page and rules as every other error."""
    return _page(status, info.get("message_vi") or None,
                 info.get("message_en") or info.get("message") or None, dict(info))


def init_app(app: Flask) -> None:
    @app.errorhandler(GisportalError)
    def gisportal_error(err: GisportalError):
        if _is_ogc():  # raised before an OGC view ran (e.g. a bad API token)
            return ogc.gisportal_exception(err)
        if _wants_json():
            return jsonify({"error": err.to_dict()}), err.http_status
        info = err.to_dict()
        vi = info["message_vi"]
        if not vi:  # a `what` written "Vietnamese / English" (auth.py's CSRF error)
            half = _halves(err.what)[0]
            vi = half[:1].upper() + half[1:].rstrip(".") + "." if half else None
        return _page(err.http_status, vi, info["message_en"], info), err.http_status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        if _is_ogc():  # routing errors (404, 405) reach no blueprint's handler
            return ogc.http_exception(err)
        info = {"code": f"HTTP-{err.code}", "what": err.name, "where": request.path,
                "fix": "", "message": err.description or err.name}
        if _wants_json():
            response = jsonify({"error": info})
        else:
            vi, en = _halves(err.description)
            # werkzeug's English description is kept for the English page only; a 500
            # says nothing of what failed (it is logged), in either language.
            status = err.code or 500
            response = make_response(_page(status, vi or None,
                                           None if status >= 500 else en or None,
                                           None if status >= 500 else info))
        response.status_code = err.code or 500
        return _with_headers(response, err)
