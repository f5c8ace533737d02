"""Error answers: JSON under /api and /tiles, the OGC exception under /ogc, a
Vietnamese-first page elsewhere; with the headers the error defines (``Allow``).

A GisportalError carries what/where/fix and its HTTP status; anything unexpected is
logged and answered with a plain 500 that leaks nothing.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from gisportal.base.errors import GisportalError
from gisportal.web import ogc

__all__ = ["init_app"]


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


def init_app(app: Flask) -> None:
    @app.errorhandler(GisportalError)
    def gisportal_error(err: GisportalError):
        if _is_ogc():  # raised before an OGC view ran (e.g. a bad API token)
            return ogc.gisportal_exception(err)
        if _wants_json():
            return jsonify({"error": err.to_dict()}), err.http_status
        return render_template("error.html", status=err.http_status, error=err.to_dict()), \
            err.http_status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        if _is_ogc():  # routing errors (404, 405) reach no blueprint's handler
            return ogc.http_exception(err)
        info = {"code": f"HTTP-{err.code}", "what": err.name, "where": request.path,
                "fix": "", "message": err.description or err.name}
        if _wants_json():
            response = jsonify({"error": info})
        else:
            response = make_response(render_template("error.html", status=err.code,
                                                      error=info))
        response.status_code = err.code or 500
        return _with_headers(response, err)
