"""Response headers and request addresses against hostile traffic.

Every answer gets ``X-Content-Type-Options: nosniff`` (a tile or a JSON answer is
never run as a script or a page), ``Referrer-Policy: strict-origin-when-cross-origin``
(a parcel's URL does not leave the portal in full), ``X-Frame-Options: SAMEORIGIN``
(no other site frames a sign-in form). HTML pages also get a Content-Security-Policy:

* scripts: ``'self'`` and a per-request nonce, never ``'unsafe-inline'`` nor
  ``'unsafe-eval'``. folium writes its map code as inline ``<script>``: templates put
  the nonce on it (``<script nonce="{{ csp_nonce() }}">``, ``{{ parts.header|nonced }}``
  for folium's head, whose ``<script>``/``<style>`` get it), so text injected into a
  page (an uploaded name, say) cannot run;
* style elements: ``'self'`` and the nonce; style *attributes* are allowed
  (``style-src-attr 'unsafe-inline'``): Leaflet's plugins write them at run time
  (leaflet-measure hides its panels with ``setAttribute("style", …)``, the locate
  control draws its marker as SVG markup with ``style=""``, rotated per heading), so
  hashes cannot list them. An injected ``style`` attribute can restyle an element but
  read nothing: selectors, which can, are only in nonce'd ``<style>`` elements;
* images: ``'self' data: blob:`` and the hosts of the basemaps the administrator
  enabled in ``maps/*.json`` (read from the compositions on every request, so turning
  one on needs no code change); tiles and API answers: ``connect-src 'self'``;
* ``object-src 'none'``, ``base-uri 'self'``, ``form-action 'self'``,
  ``frame-ancestors 'self'``; workers: ``'self'`` (VectorGrid's protobuf layers run
  none; its GeoJSON slicer, which would need ``blob:``, is not used).

Cross-origin reads (CORS): the open data — the OGC API under ``/ogc`` and the vector
tiles under ``/tiles/`` — answers ``Access-Control-Allow-Origin: *`` (with the headers a
script may read, and preflight ``OPTIONS`` answers for GET), so a web map on another
site can use it as QGIS does. Nothing else does: the pages, ``/api`` (whose answers
may depend on a session or a token), the planner's and the administrator's routes keep
the browser's same-origin rule. ``*`` never carries credentials (browsers send no
cookie with it), and ``Authorization`` is not an allowed request header, so a page
elsewhere cannot make a signed-in user's browser, or a token, read anything through it.

Addresses: with the ``public_url`` setting, every absolute link (OGC API, OpenAPI)
names that address, whatever ``Host`` a request carries; ``allowed_hosts`` refuses
requests for other host names (400); ``proxy_fix`` trusts that many reverse proxies
for ``X-Forwarded-For``/``-Proto``/``-Host`` (without it those headers, which any
client can send, are ignored).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from markupsafe import Markup
from werkzeug.exceptions import BadRequest
from werkzeug.middleware.proxy_fix import ProxyFix

from gisportal.base.errors import UsageError
from gisportal.outputs.mapassets import with_nonce

__all__ = ["init_app", "csp_nonce", "content_security_policy", "basemap_sources",
           "PublicURL", "AllowedHosts", "SECURITY_HEADERS", "CORS_HEADERS", "is_open_data"]

#: Headers on every answer (``setdefault``: a view may set its own).
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "SAMEORIGIN",
}


#: Headers on every answer under the open-data paths (`is_open_data`).
CORS_HEADERS: dict[str, str] = {
    "Access-Control-Allow-Origin": "*",
    # What a script may read besides the CORS-safelisted headers: the CRS of an OGC
    # answer, a tile's ETag (to revalidate), and the 405's Allow.
    "Access-Control-Expose-Headers": "Content-Crs, ETag, Allow",
}
#: Added to a preflight (``OPTIONS`` with ``Access-Control-Request-Method``): reads only;
#: the request headers a map library sends; a day's cache of the answer.
CORS_PREFLIGHT: dict[str, str] = {
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Accept, Accept-Language, Content-Language, "
                                    "Content-Type, If-None-Match, If-Modified-Since, Range",
    "Access-Control-Max-Age": "86400",
}


def is_open_data(path: str) -> bool:
    """Whether `path` is open data another site may read (module doc): ``/ogc`` and
    below, ``/tiles/`` and below — nothing that merely starts with those letters."""
    return path == "/ogc" or path.startswith(("/ogc/", "/tiles/"))


def _cors(response: Response) -> Response:
    """CORS headers on the open data's answers, errors and preflights included (a
    script must be able to read why a request failed)."""
    if not is_open_data(request.path):
        return response
    response.headers.update(CORS_HEADERS)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response.headers.update(CORS_PREFLIGHT)
    return response


def csp_nonce() -> str:
    """This request's nonce (made on first use: 144 random bits, base64url)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def nonced(html: str) -> Markup:
    """Jinja filter: app-generated markup (folium's parts) with the nonce on its
    ``<script>`` and ``<style>`` tags. Never for text that holds uploaded data."""
    return Markup(with_nonce(str(html), csp_nonce()))


def _source(url: str) -> str | None:
    """The CSP source of a tile URL template: ``https://{s}.tile.x.org/{z}/…`` →
    ``https://*.tile.x.org``; None when it names no host (a relative URL: 'self')."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host, _, port = parts.netloc.rpartition("@")[2].partition(":")
    labels = host.split(".")
    templated = [i for i, label in enumerate(labels) if "{" in label]
    if templated:  # {s}.tile…, a{s}.tiles…: any name under the rest
        rest = labels[templated[-1] + 1:]
        if len(rest) < 2:
            return None  # "{s}.com" would allow too much: leave it out
        host = "*." + ".".join(rest)
    if not port or "{" in port:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def basemap_sources() -> tuple[str, ...]:
    """Image sources of the basemaps enabled in any map composition (``maps/*.json``)."""
    from gisportal.base.resources import data_dir
    from gisportal.web import maps

    found: list[str] = []
    for path in sorted(data_dir("maps").glob("*.json")):
        for b in maps.composition(path.stem).get("basemaps", []):
            source = _source(str(b.get("url", ""))) if b.get("enabled") else None
            if source and source not in found:
                found.append(source)
    return tuple(found)


def content_security_policy(nonce: str, img_sources: Iterable[str] = ()) -> str:
    """The policy of an HTML page (see the module's docstring for each choice)."""
    images = " ".join(["'self'", "data:", "blob:", *img_sources])
    directives = [
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        "style-src-attr 'unsafe-inline'",
        f"img-src {images}",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
    return "; ".join(directives)


def _add_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = content_security_policy(
            csp_nonce(), basemap_sources())
    return response


# --------------------------------------------------------------------------- addresses


def check_public_url(url: str) -> str:
    """``https://host[:port]`` (a trailing slash is dropped); a UsageError otherwise.

    The portal is served at the root of its address (its pages link to ``/static``,
    ``/districts``…), so the URL may not have a path.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or \
            parts.path not in ("", "/") or parts.query or parts.fragment or \
            "@" in parts.netloc:
        raise UsageError(f"public_url {url!r} is not an address like "
                         "https://quyhoach.lamdong.gov.vn", where="public_url",
                         fix="give the scheme and host name (and port) the public uses, "
                             "no path", code="SETTING-INVALID")
    return f"{parts.scheme}://{parts.netloc}"


class PublicURL:
    """WSGI middleware: every request is seen as made to the public address.

    Flask builds absolute URLs (``request.url_root``, ``url_for(_external=True)``)
    from the ``Host`` header and the scheme, both of which a client chooses: a request
    with ``Host: evil.example`` would get OGC links to evil.example, which a shared
    cache could then serve to everyone. With the public address set, they are fixed.
    """

    def __init__(self, app: Callable[..., Any], url: str) -> None:
        self.app = app
        parts = urlsplit(check_public_url(url))
        self.scheme, self.host = parts.scheme, parts.netloc

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["gisportal.request_host"] = environ.get("HTTP_HOST")
        environ["wsgi.url_scheme"] = self.scheme
        environ["HTTP_HOST"] = self.host
        return self.app(environ, start_response)


class AllowedHosts:
    """WSGI middleware: a request for a host name not listed is answered 400.

    Flask's own ``TRUSTED_HOSTS`` raises only when ``request.host`` is read, and again
    in every later step that reads it (the session cookie's Secure flag does): the
    request is refused here, before the app sees it. ``.example.org`` also allows its
    subdomains; the port is not compared.
    """

    def __init__(self, app: Callable[..., Any], hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = [h.lower().rstrip(".") for h in hosts]

    def allows(self, host: str | None) -> bool:
        if not host:
            return False
        name = host.lower()
        name = name[:name.index("]") + 1] if name.startswith("[") and "]" in name \
            else name.partition(":")[0]
        name = name.rstrip(".")
        return any(name == h or (h.startswith(".") and (name.endswith(h) or name == h[1:]))
                   for h in self.hosts)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.allows(environ.get("HTTP_HOST") or environ.get("SERVER_NAME")):
            return self.app(environ, start_response)
        response = BadRequest("Tên máy chủ không được phép / this host name is not "
                              "served here").get_response(environ)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        response.headers["Content-Security-Policy"] = "default-src 'none'"
        return response(environ, start_response)


def _hosts(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(h).strip() for h in value or [] if str(h).strip()]


def init_app(app: Flask) -> None:
    """Headers on every answer (CORS on the open data's), the nonce in templates,
    public URL and proxies."""
    settings = app.config["GISPORTAL"]
    app.after_request(_add_headers)
    app.after_request(_cors)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.filters["nonced"] = nonced
    # Innermost first: a request goes through ProxyFix, AllowedHosts, then PublicURL.
    public_url = str(settings.get("public_url") or "").strip()
    if public_url:
        app.wsgi_app = PublicURL(app.wsgi_app, public_url)  # type: ignore[method-assign]
    allowed = _hosts(settings.get("allowed_hosts"))
    if allowed:
        app.wsgi_app = AllowedHosts(app.wsgi_app, allowed)  # type: ignore[method-assign]
    proxies = int(settings.get("proxy_fix") or 0)
    if proxies < 0:
        raise UsageError(f"proxy_fix={proxies} is not a number of proxies",
                         where="proxy_fix", fix="0 (no proxy), 1 (one nginx in front)…",
                         code="SETTING-INVALID")
    if proxies:
        # Outermost: the forwarded client address, scheme and host are read first (and
        # checked against allowed_hosts); a public URL still has the last word.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies,  # type: ignore[method-assign]
                                x_proto=proxies, x_host=proxies)
