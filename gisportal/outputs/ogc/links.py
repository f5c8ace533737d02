"""Links and media types of OGC API answers.

Every link is absolute (clients such as GDAL follow them as given) and built from the
API root the request came in on, so the API answers correctly behind any host name.
That root is the ``public_url`` setting when set (`gisportal.web.security.PublicURL`
fixes scheme and host before the app sees the request), so a hostile ``Host`` header
never reaches a link; otherwise set ``allowed_hosts``.

A JSON link carries no ``f``: its ``type`` names the media type and the client's
``Accept`` header chooses it (GIS clients send ``application/geo+json`` or
``application/json``), so a client can extend the href — GDAL fetches one feature as
the ``items`` href plus ``/{featureId}``, which after ``?f=json`` would become
``?f=json/1``. Only links to the HTML pages say ``f=html``: a GIS client following one
would otherwise negotiate JSON. ``f=json`` and ``f=html`` keep working in URLs people
type (`gisportal.outputs.ogc.query.parse_format`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

__all__ = ["GEOJSON", "HTML", "JSON", "OPENAPI_JSON", "link", "url"]

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
#: The media type GDAL and OWSLib look for on the ``service-desc`` link.
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"


def url(root: str, path: str = "", params: Mapping[str, Any] | None = None) -> str:
    """``root + path`` with the query `params` (``None`` values left out, order kept)."""
    query = urlencode([(k, v) for k, v in (params or {}).items() if v is not None])
    return f"{root}{path}" + (f"?{query}" if query else "")


def link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    """One link object as OGC API writes them."""
    return {"href": href, "rel": rel, "type": media_type, "title": title}
