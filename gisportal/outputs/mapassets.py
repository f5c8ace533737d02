"""Folium maps that never reach the internet: Leaflet comes from the package itself.

folium points its maps at CDNs (Leaflet, jQuery, Bootstrap, Font Awesome). gisportal
replaces those links per map: with URLs the app serves (``/static/vendor/…``) for web
pages, or with the files' contents inlined for stand-alone HTML files such as a
validation report a planner opens offline. No basemap is added unless asked: a tile
server is optional and configurable.

Web pages run under a Content-Security-Policy without ``'unsafe-inline'`` or
``'unsafe-eval'`` for scripts (`gisportal.web.security`): the ``<script>`` and
``<style>`` elements folium writes get the request's nonce (`with_nonce`), and
leaflet-measure, which compiles its HTML templates with ``new Function`` when it
loads, is served precompiled (`precompile_underscore_templates`).
"""

from __future__ import annotations

import ast
import base64
import re
from functools import cache
from pathlib import Path

import folium

__all__ = ["VENDOR", "offline_map", "map_header", "inline_assets", "with_nonce",
           "precompile_underscore_templates", "MEASURE_CSP"]

VENDOR = Path(__file__).resolve().parents[1] / "static" / "vendor"

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


_OPEN_TAG = re.compile(r"<(script|style)(?=[\s>])(?![^>]*\snonce=)", re.I)


def with_nonce(html: str, nonce: str) -> str:
    """``html`` with ``nonce`` on each ``<script>`` and ``<style>`` start tag.

    Only for markup the app generates (folium's head and map script): adding a nonce
    to any markup that holds uploaded text would let an injected script run.
    """
    if not re.fullmatch(r"[A-Za-z0-9+/_=-]+", nonce):
        raise ValueError("a CSP nonce is base64 text")
    return _OPEN_TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', html)


# --------------------------------------------------------------- leaflet-measure for CSP

#: The leaflet-measure build the pages load: `precompile_underscore_templates` of the
#: vendored ``leaflet-measure.min.js`` (``tests/test_browser_csp.py`` checks it is).
MEASURE_CSP = "leaflet-measure/leaflet-measure.csp.min.js"
_MEASURE = "leaflet-measure/leaflet-measure.min.js"
_TEMPLATE_CALL = re.compile(r"\b([A-Za-z_$][\w$]*)\.template\('")
#: underscore's default settings: escape, interpolate, evaluate (in that order).
_TEMPLATE_TAGS = re.compile(r"<%-([\s\S]+?)%>|<%=([\s\S]+?)%>|<%([\s\S]+?)%>|\Z")
_TEMPLATE_ESCAPES = {"'": "\\'", "\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t",
                     "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _js_string(js: str, start: int) -> tuple[str, int]:
    """The single-quoted JS string literal opening at ``js[start]``, and its end."""
    i = start + 1
    while js[i] != "'":
        i += 2 if js[i] == "\\" else 1
    literal = js[start:i + 1]
    # JS and Python agree on the escapes a minifier writes (\n \' \\ \t \uXXXX).
    return ast.literal_eval(literal), i + 1


def _underscore_source(text: str) -> str:
    """The function body underscore's ``_.template(text)`` hands to ``new Function``."""
    source, index = "__p+='", 0
    for m in _TEMPLATE_TAGS.finditer(text):
        source += "".join(_TEMPLATE_ESCAPES.get(c, c) for c in text[index:m.start()])
        escape, interpolate, evaluate = m.groups()
        if escape:
            source += "'+\n((__t=(" + escape + "))==null?'':_.escape(__t))+\n'"
        if interpolate:
            source += "'+\n((__t=(" + interpolate + "))==null?'':__t)+\n'"
        if evaluate:
            source += "';\n" + evaluate + "\n__p+='"
        index = m.end()
    source += "';\n"
    source = "with(obj||{}){\n" + source + "}\n"
    return ("var __t,__p='',__j=Array.prototype.join,"
            "print=function(){__p+=__j.call(arguments,'');};\n" + source + "return __p;\n")


def precompile_underscore_templates(js: str) -> str:
    """``js`` with each ``X.template('literal')`` call replaced by the compiled template.

    underscore's ``_.template`` builds a function from text with ``new Function``, which
    a Content-Security-Policy without ``'unsafe-eval'`` refuses: leaflet-measure does
    it for its five templates as it loads, and the whole plugin fails. The compiled
    function here is the one underscore would build (same source, same ``_`` and
    ``this``), written out as code.
    """
    out, pos = [], 0
    for m in _TEMPLATE_CALL.finditer(js):
        if m.start() < pos:
            continue
        text, end = _js_string(js, m.end() - 1)
        if js[end] != ")":  # called with settings or data: leave it to underscore
            continue
        out.append(js[pos:m.start()])
        out.append("(function(r){return function(a){return r.call(this,a," + m.group(1)
                   + ")}})(function(obj,_){\n" + _underscore_source(text) + "})")
        pos = end + 1
    out.append(js[pos:])
    return "".join(out)


def measure_csp_build() -> str:
    """The text of `MEASURE_CSP`, made from the vendored build (see its header)."""
    header = ("/* leaflet-measure 2.1.7 (leaflet-measure.min.js, MIT: LICENSE) with its "
              "underscore templates\n * precompiled by gisportal.outputs.mapassets."
              "precompile_underscore_templates, so it runs\n * under a "
              "Content-Security-Policy without 'unsafe-eval'. Do not edit: regenerate"
              " with\n * python3 -c \"from gisportal.outputs import mapassets as m; "
              "m.write_measure_csp_build()\" */\n")
    return header + precompile_underscore_templates(
        (VENDOR / _MEASURE).read_text(encoding="utf-8"))


def write_measure_csp_build() -> Path:
    """Write `MEASURE_CSP` next to the vendored build (after updating leaflet-measure)."""
    path = VENDOR / MEASURE_CSP
    path.write_text(measure_csp_build(), encoding="utf-8")
    return path


#: folium's own ``<meta name="viewport" … user-scalable=no>``: the pages' base template
#: has the viewport already, and forbidding pinch-zoom of the page shuts out people who
#: need larger text (WCAG 1.4.4).
_FOLIUM_VIEWPORT = re.compile(r'<meta\s+name="viewport"[^>]*>\s*', re.S)


def map_header(m: folium.Map) -> str:
    """The ``<head>`` part of a rendered folium map, without folium's viewport meta."""
    return _FOLIUM_VIEWPORT.sub("", m.get_root().header.render())
