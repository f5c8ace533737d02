"""Folium maps that never reach the internet: Leaflet comes from the package itself.

folium points its maps at CDNs (Leaflet, jQuery, Bootstrap, Font Awesome). gisportal
replaces those links per map: with URLs the app serves (``/static/vendor/…``) for web
pages, or with the files' contents inlined for stand-alone HTML files such as a
validation report a planner opens offline. No basemap is added unless asked: a tile
server is optional and configurable.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from pathlib import Path

import folium

__all__ = ["VENDOR", "offline_map", "inline_assets"]

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"

_JS = (("leaflet", "leaflet/leaflet.js"),)
_CSS = (("leaflet_css", "leaflet/leaflet.css"),)


def offline_map(*, static_url: str = "/static/vendor", **kwargs) -> folium.Map:
    """A folium Map whose scripts and styles point at ``static_url`` (no CDN).

    ``kwargs`` go to :class:`folium.Map`; ``tiles`` defaults to None (no basemap).
    """
    kwargs.setdefault("tiles", None)
    m = folium.Map(**kwargs)
    m.default_js = [(name, f"{static_url}/{path}") for name, path in _JS]
    m.default_css = [(name, f"{static_url}/{path}") for name, path in _CSS]
    return m


@cache
def _asset(path: str) -> str:
    """A vendored file's text; for CSS, its relative images become data: URLs."""
    text = (VENDOR / path).read_text(encoding="utf-8")
    if path.endswith(".css"):
        base = (VENDOR / path).parent

        def data_url(m: re.Match) -> str:
            img = base / m.group(1)
            return f"url(data:image/png;base64,{base64.b64encode(img.read_bytes()).decode()})"

        text = re.sub(r"url\((images/[\w.-]+\.png)\)", data_url, text)
    return text


def inline_assets(html: str, *, static_url: str = "/static/vendor") -> str:
    """Replace the vendored ``<script src>``/``<link href>`` of ``html`` by their content.

    The result opens from a file with no server and no network.
    """
    for _, path in _JS:
        url = re.escape(f"{static_url}/{path}")
        html = re.sub(rf'<script src="{url}"></script>',
                      lambda _m, p=path: "<script>" + _asset(p).replace("</script", "<\\/script")
                      + "</script>", html)
    for _, path in _CSS:
        url = re.escape(f"{static_url}/{path}")
        html = re.sub(rf'<link rel="stylesheet" href="{url}"\s*/?>',
                      lambda _m, p=path: "<style>" + _asset(p) + "</style>", html)
    return html
