"""gisportal: land-use planning publisher for Vietnamese provinces (Lâm Đồng first).

This module holds only the Flask application factory; the engine lives in its own
modules (read → normalise → validation → store → lookup), the web layer in ``web/``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

__all__ = ["create_app"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the portal app.

    ``config`` overrides settings (see :mod:`gisportal.settings`), e.g. ``{"home":
    tmp_path}`` in tests; otherwise ``$GISPORTAL_HOME`` or ``./instance``.
    """
    from gisportal.settings import data_home, load_settings
    from gisportal.web import api, errors, i18n, pages, sheet, tiles

    app = Flask(__name__)
    settings = load_settings(config)
    app.config["GISPORTAL"] = settings
    app.config["GISPORTAL_HOME"] = str(data_home(settings))
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    errors.init_app(app)
    i18n.init_app(app)
    from gisportal.web import security  # CSP and other headers; public URL, proxies

    security.init_app(app)
    from gisportal.web import auth  # sign-in, CSRF, tokens, /admin (web/auth.py)

    auth.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(sheet.bp)
    from gisportal.web import ogc, openapi

    app.register_blueprint(ogc.bp)
    app.register_blueprint(openapi.bp)
    from gisportal.web import export as export_download  # ministry package (web/export.py)

    app.register_blueprint(export_download.bp)
    from gisportal.web import compare as compare_pages  # version comparison (web/compare.py)

    app.register_blueprint(compare_pages.bp)
    from gisportal.web import planner  # upload, review, decision, publish (web/planner.py)

    planner.init_app(app)
    from gisportal import housekeeping, jobs  # stale scratch; interrupted and queued jobs

    housekeeping.clean_scratch(app.config["GISPORTAL_HOME"])
    jobs.startup(app.config["GISPORTAL_HOME"], settings)
    return app
