"""Map styles of the published layers for GIS software: QML (QGIS) and SLD 1.1 / SE 1.1.

GIS staff open the ministry package (and, later, the OGC collections) in QGIS, ArcGIS or
GeoServer; they should see the map residents see, not QGIS's random colours. So each
layer kind gets the web map's style, read from the same two sources the web map reads —
never copied into this module:

- **land-use colours and names**: ``seeds/land_use_codes.csv`` through
  `gisportal.base.seeds.land_use_catalogue` (the official symbology of Thông tư 08/2024,
  legacy codes from Thông tư 27/2018), as ``gisportal.web.maps`` fills the plan tiles;
- **strokes, fills and opacities** of each layer: ``maps/district.json``, the district
  map's composition (``layers[].style``: the plan's outline and fill opacity, the
  parcels' outline and the codes they fill — roads and water —, the boundary's width per
  ``level``, the annual plan's dashed purple outline).

What each kind looks like:

=============  ====================================================================
kind           renderer
=============  ====================================================================
``plan``       categorised by land-use code, one category per catalogue code (the
               legend's order first), official colour, label "``LUC`` — Đất chuyên
               trồng lúa"; a last category for codes outside the catalogue (grey)
``parcels``    outlines; the codes the web map fills (DGT, SON, MNC) filled
``boundary``   categorised by ``level``: district and commune lines
``annual_plan``  one symbol: the dashed purple outline over a light fill
``zoning_lots``  a planning project's lots, categorised by ``function``: the colours of
               ``seeds/zoning_functions.csv`` (QCVN 01:2021/BXD), labelled with the lot
               code; a grey category for functions outside the catalogue
``red_lines``  lines by ``line_type``: red lines solid red, building lines dashed blue
``project_area``  the project's boundary: a dashed dark outline, no fill
=============  ====================================================================

A project's kinds are drawn as its page draws them: the lots' outline and fill opacity,
the two lines' colours, widths and dashes and the boundary's dash are
``maps/project.json``'s, which ``static/js/project.js`` reads through the page's config:
one source for the page and the package.

Combined codes (``ONT+CLN``) take the colour of their first part, as on the web map
(QGIS: the category is chosen by an expression on the field; SLD: a ``PropertyIsLike``
``ONT+*`` beside the equality). The web map takes the first part the catalogue knows;
a combined code whose first part is unknown is grey here.

Widths are the web map's CSS pixels, written in millimetres for QGIS (1 px = 0.2646 mm
at 96 dpi, so a print looks like the screen) and in pixels for SLD (SE's default unit).
The fill opacity is the style's ``fillOpacity`` times the layer's ``opacity``.

Field names differ by output (``land_use`` in the OGC API, ``KyHieuMucDichSuDung`` in a
package with national names, ``KH_MDSD`` in its Shapefile): callers pass ``fields``,
canonical name → the name in their data. The QML also carries the fields' Vietnamese (or
English) labels as QGIS aliases, so the attribute table speaks the reader's language.

API: `style_qml` and `style_sld` (kind, lang) → text; `layer_style` for the neutral
description both are written from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from lxml import etree

from gisportal.base import seeds
from gisportal.base.models import layer_model
from gisportal.base.resources import data_dir
from gisportal.base.seeds import UNKNOWN_COLOR

__all__ = ["STYLED_KINDS", "Category", "LayerStyle", "Stroke", "layer_style", "style_qml",
           "style_sld"]

#: The layer kinds that have a style (every published kind, a project's layers and its
#: boundary).
STYLED_KINDS = ("parcels", "plan", "boundary", "annual_plan", "zoning_lots", "red_lines",
                "project_area")
#: How the project page (static/js/project.js) draws a project's layers, in its own
#: terms (Leaflet path options): lots, the two kinds of line by ``line_type``, the
#: boundary. Checked against the script by tests/test_export_projects.py.
@cache
def project_page_styles() -> dict[str, Any]:
    """``maps/project.json``'s layers as the project page takes them (Leaflet path
    options; its script reads them from the page's config). Shared: do not change."""
    with open(data_dir("maps") / "project.json", encoding="utf-8") as fh:
        return json.load(fh)["layers"]


@cache
def _project_styles() -> dict[str, dict[Any, Any]]:
    """`project_page_styles` keyed for the categories: a red line of no known type is
    ``None``."""
    layers = dict(project_page_styles())
    layers["red_lines"] = {None if k == "other" else k: v
                           for k, v in layers["red_lines"].items()}
    return layers

_LINE_TYPE_NAMES = {
    "red_line": {"vi": "Chỉ giới đường đỏ", "en": "Red line"},
    "building_line": {"vi": "Chỉ giới xây dựng", "en": "Building line"},
    None: {"vi": "Đường khác", "en": "Other line"},
}
#: Lot codes as the project page labels them: dark text with a white halo.
_LABEL_COLOR = "#222222"
_LABEL_SIZE_PT = 8
#: Millimetres per CSS pixel (96 dpi).
MM_PER_PX = 25.4 / 96
#: Version QGIS writes in a QML it saves; the oldest we test with (Debian 12's QGIS).
QGIS_VERSION = "3.22.16-Białowieża"

SLD = "http://www.opengis.net/sld"
SE = "http://www.opengis.net/se"
OGC = "http://www.opengis.net/ogc"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_SLD_SCHEMA = f"{SLD} http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd"
#: Separators of combined codes (`gisportal.base.seeds.LandUseCatalogue.split`).
_SEPARATORS = "+,;/"

_LEVEL_NAMES = {
    "province": {"vi": "Ranh giới tỉnh", "en": "Province boundary"},
    "district": {"vi": "Ranh giới huyện", "en": "District boundary"},
    "commune": {"vi": "Ranh giới xã", "en": "Commune boundary"},
}
_OTHER = {
    "plan": {"vi": "Mã khác (ngoài danh mục)", "en": "Other code (not in the catalogue)"},
    "parcels": {"vi": "Thửa đất", "en": "Parcel"},
    "boundary": {"vi": "Ranh giới khác", "en": "Other boundary"},
    "zoning_lots": {"vi": "Chức năng khác (ngoài danh mục)",
                    "en": "Other function (not in the catalogue)"},
}


@dataclass(frozen=True)
class Stroke:
    """An outline: colour ``#RRGGBB``, width in CSS pixels, opacity, dash in pixels."""

    color: str
    width_px: float
    opacity: float = 1.0
    dash_px: tuple[float, ...] = ()


@dataclass(frozen=True)
class Category:
    """One symbol: the features whose field holds `value` (None: every other feature)."""

    value: str | None
    label: str
    fill: str | None  # "#RRGGBB", or None for no fill
    fill_opacity: float
    stroke: Stroke


@dataclass(frozen=True)
class LayerStyle:
    """A layer's style, independent of the format it is written in."""

    kind: str
    title: str
    #: Canonical field the categories are chosen by (None: one symbol for all).
    field: str | None
    #: Whether `field` holds land-use codes (combined codes take their first part).
    by_code: bool
    #: In drawing order; the one with value None last (QGIS's "all other values").
    categories: tuple[Category, ...]
    #: ``polygon`` (fill and outline) or ``line`` (a stroke).
    geometry: str = "polygon"
    #: Canonical field whose value labels each feature (None: no labels).
    label_field: str | None = None


@cache
def _composition_layers() -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``maps/district.json``'s layers by kind (the web map's styles) and its legend's
    code order."""
    with open(data_dir("maps") / "district.json", encoding="utf-8") as fh:
        comp = json.load(fh)
    return {layer["kind"]: layer for layer in comp["layers"]}, list(comp["legend"]["codes"])


def _hex(color: str) -> str:
    """``#rgb`` or ``#rrggbb`` as ``#RRGGBB``."""
    c = color.strip().lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return "#" + c.upper()


def _stroke(style: Mapping[str, Any], base: Stroke | None = None) -> Stroke:
    dash = style.get("dashArray")
    return Stroke(
        color=_hex(style.get("color") or (base.color if base else "#333333")),
        width_px=float(style.get("weight", base.width_px if base else 1.0)),
        opacity=float(style.get("opacity", base.opacity if base else 1.0)),
        dash_px=tuple(float(v) for v in str(dash).replace(",", " ").split())
        if dash else (base.dash_px if base and "dashArray" not in style else ()))


def _code_order(codes: Iterable[str] | None) -> list[str]:
    """Catalogue codes in legend order (the composition's legend first, then the
    catalogue's), only those in `codes` when given."""
    cat = seeds.land_use_catalogue()
    legend = [c for c in _composition_layers()[1] if c in cat]
    order = legend + [lu.code for lu in cat if lu.code not in legend]
    if codes is None:
        return order
    wanted = set()
    for value in codes:
        lu = cat.primary(str(value))
        if lu is not None:
            wanted.add(lu.code)
    return [c for c in order if c in wanted]


def _code_label(code: str, lang: str) -> str:
    return f"{code} — {seeds.land_use_catalogue().name(code, lang)}"


def layer_style(kind: str, lang: str = "vi", *, codes: Iterable[str] | None = None
                ) -> LayerStyle:
    """The style of `kind` with labels in `lang` (``vi`` or ``en``).

    `codes` limits a plan's categories to the land-use codes present (a package's
    legend then lists what the layer holds), and a project's lots to the functions
    present; by default every catalogue code has one.
    """
    if kind not in STYLED_KINDS:
        raise ValueError(f"no style for layer kind {kind!r} (one of {', '.join(STYLED_KINDS)})")
    lang = "en" if lang == "en" else "vi"
    if kind in _project_styles():
        return _project_style(kind, lang, codes)
    layer = _composition_layers()[0][kind]
    style = layer.get("style", {})
    opacity = float(layer.get("opacity", 1.0))
    stroke = _stroke(style)
    title = str(layer_model(kind).title.get(lang) or kind)
    fill_opacity = float(style.get("fillOpacity", 0.2)) * opacity
    cat = seeds.land_use_catalogue()
    if kind == "plan":
        categories = [Category(c, _code_label(c, lang), cat.color(c), fill_opacity, stroke)
                      for c in _code_order(codes)]
        categories.append(Category(None, _OTHER[kind][lang], UNKNOWN_COLOR, fill_opacity,
                                   stroke))
        return LayerStyle(kind, title, "land_use", True, tuple(categories))
    if kind == "parcels":
        categories = []
        for code, spec in style.get("fill_codes", {}).items():
            if code in cat:
                categories.append(Category(
                    code, _code_label(code, lang), _hex(spec.get("fillColor", cat.color(code))),
                    float(spec.get("fillOpacity", 0.5)) * opacity, _stroke(spec, stroke)))
        fill = _hex(style["fillColor"]) if style.get("fill") and style.get("fillColor") else None
        categories.append(Category(None, _OTHER[kind][lang], fill, fill_opacity, stroke))
        return LayerStyle(kind, title, "land_use", True, tuple(categories))
    if kind == "boundary":
        categories = [Category(level, _LEVEL_NAMES.get(level, {}).get(lang, level), None, 0.0,
                               _stroke(spec, stroke))
                      for level, spec in style.get("by_level", {}).items()]
        categories.append(Category(None, _OTHER[kind][lang], None, 0.0, stroke))
        return LayerStyle(kind, title, "level", False, tuple(categories))
    fill = _hex(style["fillColor"]) if style.get("fill", True) and style.get("fillColor") \
        else None
    return LayerStyle(kind, title, None, False,
                      (Category(None, title, fill, fill_opacity, stroke),))


def _project_style(kind: str, lang: str, codes: Iterable[str] | None) -> LayerStyle:
    """The style of a planning project's layer (`_project_styles`)."""
    spec = _project_styles()[kind]
    title = str(layer_model(kind).title.get(lang) or kind)
    if kind == "zoning_lots":
        functions = seeds.zoning_functions()
        wanted = None if codes is None else {str(c) for c in codes}
        stroke = _stroke(spec)
        opacity = float(spec["fillOpacity"])
        categories = [Category(f.code, f"{f.code} — {f.name_vi if lang == 'vi' else f.name_en}",
                               f.color, opacity, stroke)
                      for f in functions if wanted is None or f.code in wanted]
        categories.append(Category(None, _OTHER[kind][lang], UNKNOWN_COLOR, opacity, stroke))
        return LayerStyle(kind, title, "function", False, tuple(categories),
                          label_field="lot_code")
    if kind == "red_lines":
        categories = [Category(value, _LINE_TYPE_NAMES[value][lang], None, 0.0, _stroke(line))
                      for value, line in spec.items()]
        return LayerStyle(kind, title, "line_type", False, tuple(categories), geometry="line")
    return LayerStyle(kind, title, None, False,
                      (Category(None, title, None, 0.0, _stroke(spec)),))


# --------------------------------------------------------------------------- QML


def _rgba(color: str, alpha: float) -> str:
    c = _hex(color).lstrip("#")
    return (f"{int(c[0:2], 16)},{int(c[2:4], 16)},{int(c[4:6], 16)},"
            f"{round(max(0.0, min(1.0, alpha)) * 255)}")


def _mm(px: float) -> str:
    return f"{px * MM_PER_PX:.4g}"


def _qml_layer(symbol: etree._Element, cls: str, props: Mapping[str, str]) -> None:
    """A symbol layer with its properties twice: as QGIS ≥ 3.18 writes them (``Option``
    map) and as older QGIS reads them (``prop``)."""
    layer = etree.SubElement(symbol, "layer", {"class": cls, "enabled": "1", "locked": "0",
                                               "pass": "0"})
    options = etree.SubElement(layer, "Option", type="Map")
    for k, v in props.items():
        etree.SubElement(options, "Option", name=k, value=v, type="QString")
    for k, v in props.items():
        etree.SubElement(layer, "prop", k=k, v=v)


def _qml_line_props(s: Stroke) -> dict[str, str]:
    return {
        "line_color": _rgba(s.color, s.opacity), "line_style": "solid",
        "line_width": _mm(s.width_px), "line_width_unit": "MM",
        "use_custom_dash": "1" if s.dash_px else "0",
        "customdash": ";".join(_mm(v) for v in s.dash_px) or "5;2", "customdash_unit": "MM",
        "joinstyle": "round", "capstyle": "flat" if s.dash_px else "round",
        "offset": "0", "offset_unit": "MM",
    }


def _qml_symbol(parent: etree._Element, name: str, category: Category,
                geometry: str = "polygon") -> None:
    s = category.stroke
    if geometry == "line":
        symbol = etree.SubElement(parent, "symbol", {
            "name": name, "type": "line", "alpha": "1", "clip_to_extent": "1",
            "force_rhr": "0"})
        _qml_layer(symbol, "SimpleLine", _qml_line_props(s))
        return
    symbol = etree.SubElement(parent, "symbol", {
        "name": name, "type": "fill", "alpha": "1", "clip_to_extent": "1", "force_rhr": "0"})
    dashed = bool(s.dash_px)
    _qml_layer(symbol, "SimpleFill", {
        "color": _rgba(category.fill or "#FFFFFF", category.fill_opacity if category.fill else 0),
        "style": "solid" if category.fill else "no",
        "outline_color": _rgba(s.color, s.opacity),
        "outline_style": "no" if dashed else "solid",
        "outline_width": _mm(s.width_px), "outline_width_unit": "MM",
        "joinstyle": "round", "offset": "0,0", "offset_unit": "MM",
    })
    if dashed:  # a dashed outline needs a line layer of its own
        _qml_layer(symbol, "SimpleLine", _qml_line_props(s))


def _qml_labeling(root: etree._Element, field: str) -> None:
    """Simple labels: `field`'s value over each polygon, dark bold text with a white
    halo, as the project page labels its lots (QGIS's own XML, read by QGIS 3.22)."""
    labeling = etree.SubElement(root, "labeling", type="simple")
    settings = etree.SubElement(labeling, "settings", calloutType="simple")
    text = etree.SubElement(settings, "text-style", {
        "fieldName": field, "isExpression": "0", "fontFamily": "Sans Serif",
        "fontSize": str(_LABEL_SIZE_PT), "fontSizeUnit": "Point", "fontWeight": "75",
        "namedStyle": "Bold", "textColor": _rgba(_LABEL_COLOR, 1.0), "textOpacity": "1",
        "multilineHeight": "1", "fontItalic": "0", "fontUnderline": "0",
        "fontStrikeout": "0", "allowHtml": "0", "capitalization": "0"})
    etree.SubElement(text, "text-buffer", {
        "bufferDraw": "1", "bufferSize": "0.7", "bufferSizeUnits": "MM",
        "bufferColor": "255,255,255,255", "bufferOpacity": "1", "bufferNoFill": "1",
        "bufferJoinStyle": "128", "bufferBlendMode": "0"})
    etree.SubElement(settings, "text-format", {
        "wrapChar": "", "multilineAlign": "3", "plussign": "0", "decimals": "3",
        "formatNumbers": "0", "reverseDirectionSymbol": "0", "addDirectionSymbol": "0"})
    # placement 1: over the polygon's centroid ("offset from centroid"), inside it.
    etree.SubElement(settings, "placement", {
        "placement": "1", "centroidInside": "1", "centroidWhole": "0", "fitInPolygonOnly": "0",
        "offsetType": "0", "xOffset": "0", "yOffset": "0", "dist": "0",
        "priority": "5", "quadOffset": "4"})
    etree.SubElement(settings, "rendering", {
        "drawLabels": "1", "obstacle": "1", "scaleVisibility": "0", "displayAll": "0",
        "labelPerPart": "0", "mergeLines": "0", "upsidedownLabels": "0", "limitNumLabels": "0",
        "fontLimitPixelSize": "0", "zIndex": "0"})


def _first_code_expression(field: str) -> str:
    """QGIS expression: the first part of a (combined) code, upper case, trimmed."""
    quoted = '"' + field.replace('"', '""') + '"'
    return f"upper(trim(regexp_substr({quoted}, '^[^{_SEPARATORS}]*')))"


def _aliases(kind: str, lang: str, fields: Mapping[str, str] | None) -> list[tuple[str, str]]:
    model = layer_model(kind)
    out = []
    for f in model.fields:
        if fields is not None and f.name not in fields:
            continue
        name = fields[f.name] if fields is not None else f.name
        label = f.label.get(lang) or f.label.get("vi")
        if label:
            out.append((name, label))
    return out


def style_qml(kind: str, lang: str = "vi", *, fields: Mapping[str, str] | None = None,
              codes: Iterable[str] | None = None) -> str:
    """The QGIS style (QML) of `kind`, labels in `lang`.

    `fields` maps canonical field names to the names in the data (default: canonical
    names); given, only those fields get aliases. `codes`: see `layer_style`.
    """
    style = layer_style(kind, lang, codes=codes)
    lang = "en" if lang == "en" else "vi"
    labels = style.label_field is not None
    root = etree.Element("qgis", {"version": QGIS_VERSION,
                                  "styleCategories": "Symbology|Labeling|Fields" if labels
                                  else "Symbology|Fields",
                                  "labelsEnabled": "1" if labels else "0",
                                  "hasScaleBasedVisibilityFlag": "0"})
    if style.field is None:
        renderer = etree.SubElement(root, "renderer-v2", {
            "type": "singleSymbol", "symbollevels": "0", "enableorderby": "0",
            "forceraster": "0"})
        symbols = etree.SubElement(renderer, "symbols")
        _qml_symbol(symbols, "0", style.categories[0], style.geometry)
    else:
        field = (fields or {}).get(style.field, style.field)
        attr = _first_code_expression(field) if style.by_code else field
        renderer = etree.SubElement(root, "renderer-v2", {
            "type": "categorizedSymbol", "attr": attr, "symbollevels": "0",
            "enableorderby": "0", "forceraster": "0"})
        cats = etree.SubElement(renderer, "categories")
        symbols = etree.SubElement(renderer, "symbols")
        for i, category in enumerate(style.categories):
            etree.SubElement(cats, "category", {
                "value": category.value if category.value is not None else "",
                "symbol": str(i), "label": category.label, "render": "true"})
            _qml_symbol(symbols, str(i), category, style.geometry)
        etree.SubElement(renderer, "rotation")
        etree.SubElement(renderer, "sizescale")
    if labels:
        _qml_labeling(root, (fields or {}).get(style.label_field, style.label_field))
    etree.SubElement(root, "blendMode").text = "0"
    etree.SubElement(root, "featureBlendMode").text = "0"
    etree.SubElement(root, "layerOpacity").text = "1"
    aliases = etree.SubElement(root, "aliases")
    for name, label in _aliases(kind, lang, fields):
        etree.SubElement(aliases, "alias", field=name, name=label)
    body = etree.tostring(root, encoding="unicode", pretty_print=True)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body


# --------------------------------------------------------------------------- SLD


def _se(parent: etree._Element, tag: str, text: str | None = None, **attrs: str
        ) -> etree._Element:
    el = etree.SubElement(parent, f"{{{SE}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _svg(parent: etree._Element, name: str, value: str) -> None:
    _se(parent, "SvgParameter", value, name=name)


def _ogc(parent: etree._Element, tag: str, text: str | None = None, **attrs: str
         ) -> etree._Element:
    el = etree.SubElement(parent, f"{{{OGC}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _num(value: float) -> str:
    return f"{value:.4g}"


def _sld_match(parent: etree._Element, field: str, value: str, by_code: bool) -> None:
    """The features whose `field` is `value` (and, for codes, combined codes starting
    with it), under `parent`."""
    equal = _ogc(parent, "PropertyIsEqualTo")
    _ogc(equal, "PropertyName", field)
    _ogc(equal, "Literal", value)
    if by_code:
        for sep in _SEPARATORS:
            like = _ogc(parent, "PropertyIsLike", wildCard="*", singleChar="?", escapeChar="!")
            _ogc(like, "PropertyName", field)
            _ogc(like, "Literal", f"{value}{sep}*")


def _sld_filter(rule: etree._Element, field: str, category: Category,
                others: list[str], by_code: bool) -> None:
    """The rule's filter. The catch-all category is written as an explicit "none of the
    others, or empty" rather than ``se:ElseFilter``: QGIS 3.22 reads an ``ElseFilter``
    rule as one without a filter and would draw it over every feature."""
    flt = _ogc(rule, "Filter")
    if category.value is not None:
        parent = _ogc(flt, "Or") if by_code else flt
        _sld_match(parent, field, category.value, by_code)
        return
    either = _ogc(flt, "Or")
    _ogc(_ogc(either, "PropertyIsNull"), "PropertyName", field)
    matches = _ogc(_ogc(either, "Not"), "Or")
    for value in others:
        _sld_match(matches, field, value, by_code)


def _sld_symbolizer(rule: etree._Element, category: Category, geometry: str = "polygon"
                    ) -> None:
    sym = _se(rule, "LineSymbolizer" if geometry == "line" else "PolygonSymbolizer")
    if category.fill and geometry != "line":
        fill = _se(sym, "Fill")
        _svg(fill, "fill", category.fill)
        _svg(fill, "fill-opacity", _num(category.fill_opacity))
    s = category.stroke
    stroke = _se(sym, "Stroke")
    _svg(stroke, "stroke", s.color)
    _svg(stroke, "stroke-width", _num(s.width_px))
    _svg(stroke, "stroke-opacity", _num(s.opacity))
    _svg(stroke, "stroke-linejoin", "round")
    if s.dash_px:
        _svg(stroke, "stroke-dasharray", " ".join(_num(v) for v in s.dash_px))


def _sld_labels(fts: etree._Element, field: str) -> None:
    """A rule of its own that writes `field` over every feature (centred, with a halo)."""
    rule = _se(fts, "Rule")
    _se(rule, "Name", "labels")
    text = _se(rule, "TextSymbolizer")
    _ogc(_se(text, "Label"), "PropertyName", field)
    font = _se(text, "Font")
    _svg(font, "font-family", "Sans Serif")
    _svg(font, "font-size", _num(_LABEL_SIZE_PT * 96 / 72))
    _svg(font, "font-weight", "bold")
    anchor = _se(_se(_se(text, "LabelPlacement"), "PointPlacement"), "AnchorPoint")
    _se(anchor, "AnchorPointX", "0.5")
    _se(anchor, "AnchorPointY", "0.5")
    halo = _se(text, "Halo")
    _se(halo, "Radius", "2")
    _svg(_se(halo, "Fill"), "fill", "#FFFFFF")
    _svg(_se(text, "Fill"), "fill", _LABEL_COLOR)


def style_sld(kind: str, lang: str = "vi", *, fields: Mapping[str, str] | None = None,
              codes: Iterable[str] | None = None, layer_name: str | None = None) -> str:
    """The style of `kind` as an SLD 1.1 document (Symbology Encoding 1.1), labels in
    `lang`, for GeoServer, QGIS and ArcGIS Pro.

    `layer_name` names the ``NamedLayer`` (default: the kind); `fields`, `codes` as for
    `style_qml`.
    """
    style = layer_style(kind, lang, codes=codes)
    root = etree.Element(f"{{{SLD}}}StyledLayerDescriptor", {"version": "1.1.0"},
                         nsmap={None: SLD, "se": SE, "ogc": OGC, "xlink": XLINK, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", _SLD_SCHEMA)
    named = etree.SubElement(root, f"{{{SLD}}}NamedLayer")
    _se(named, "Name", layer_name or kind)
    user = etree.SubElement(named, f"{{{SLD}}}UserStyle")
    _se(user, "Name", f"gisportal-{kind}")
    _se(_se(user, "Description"), "Title", style.title)
    fts = _se(user, "FeatureTypeStyle")
    field = (fields or {}).get(style.field, style.field) if style.field else None
    values = [c.value for c in style.categories if c.value is not None]
    for category in style.categories:
        rule = _se(fts, "Rule")
        _se(rule, "Name", category.value if category.value is not None else "other")
        _se(_se(rule, "Description"), "Title", category.label)
        if field is not None:
            _sld_filter(rule, field, category, values, style.by_code)
        _sld_symbolizer(rule, category, style.geometry)
    if style.label_field is not None:
        _sld_labels(fts, (fields or {}).get(style.label_field, style.label_field))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                          pretty_print=True).decode("utf-8")
