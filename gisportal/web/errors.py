"""Error answers: JSON under /api and /tiles, a Vietnamese-first page elsewhere.

A GisportalError carries what/where/fix and its HTTP status; anything unexpected is
logged and answered with a plain 500 that leaks nothing.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from gisportal.errors import GisportalError

__all__ = ["init_app"]


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/tiles/", "/ogc")) or request.path == "/healthz"


def init_app(app: Flask) -> None:
    @app.errorhandler(GisportalError)
    def gisportal_error(err: GisportalError):
        if _wants_json():
            return jsonify({"error": err.to_dict()}), err.http_status
        return render_template("error.html", status=err.http_status, error=err.to_dict()), \
            err.http_status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        info = {"code": f"HTTP-{err.code}", "what": err.name, "where": request.path,
                "fix": "", "message": err.description or err.name}
        if _wants_json():
            return jsonify({"error": info}), err.code
        return render_template("error.html", status=err.code, error=info), err.code
