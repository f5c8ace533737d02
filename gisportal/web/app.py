"""The Flask application factory: the web face over the services (``create_app``).

It lives in ``web/`` so that importing an engine module (the CLI, a job worker, a bench)
never loads Flask; ``gisportal/__init__.py`` holds only the version.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

__all__ = ["create_app"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the portal app.

    ``config`` overrides settings (see :mod:`gisportal.base.settings`), e.g. ``{"home":
    tmp_path}`` in tests; otherwise ``$GISPORTAL_HOME`` or ``./instance``.
    """
    from gisportal.base.settings import load_settings
    from gisportal.store import DataHome
    from gisportal.web import api, errors, i18n, pages, projects, sheet, tiles

    # The package root holds templates/ and static/; the factory lives in web/.
    app = Flask("gisportal")
    settings = load_settings(config)
    app.config["GISPORTAL"] = settings
    home = DataHome(settings)
    app.extensions["gisportal_home"] = home
    app.config["GISPORTAL_HOME"] = str(home.root)
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    errors.init_app(app)
    i18n.init_app(app)
    from gisportal.web import security  # CSP and other headers; public URL, proxies

    security.init_app(app)
    from gisportal.web import admin, auth  # sign-in, CSRF, tokens (auth.py); /admin

    auth.init_app(app)
    app.register_blueprint(admin.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(sheet.bp)
    app.register_blueprint(projects.bp)
    from gisportal.web import ogc, openapi

    app.register_blueprint(ogc.bp)
    app.register_blueprint(openapi.bp)
    from gisportal.web import export as export_download  # ministry package (web/export.py)

    app.register_blueprint(export_download.bp)
    from gisportal.web import compare as compare_pages  # version comparison (web/compare.py)

    app.register_blueprint(compare_pages.bp)
    from gisportal.web import planner  # upload, review, decision, publish (web/planner.py)

    planner.init_app(app)
    from gisportal import jobs  # stale scratch; interrupted and queued jobs
    from gisportal.jobs import housekeeping

    housekeeping.clean_scratch(home)
    jobs.startup(home, settings)
    return app
