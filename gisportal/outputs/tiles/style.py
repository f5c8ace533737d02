"""The published vector tiles as desktop GIS and web map libraries open them: TileJSON
and a Mapbox GL (MapLibre) style.

GIS staff browse a 200 000-parcel district in QGIS without downloading it by adding the
portal's tiles as a vector tile connection: QGIS takes an XYZ template
(``/tiles/<district>/<kind>/{z}/{x}/{y}.pbf``) with the zoom range and a style URL in the
Mapbox GL style format, which it converts to its own renderer (QGIS ≥ 3.16); newer
QGIS, MapLibre and OpenLayers also read TileJSON. Both documents are made here from
what is published: the zoom range and the fields from the archive's own metadata, the
colours from the one source the web map and the export's QML/SLD read
(`gisportal.outputs.styles.layer_style`), so QGIS shows the official land-use colours.

Why a GL style and not only QML: QML is QGIS's alone and cannot be fetched by a tile
connection; the GL style is what QGIS's vector tile connection (and every web client)
takes by URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gisportal.outputs.styles import layer_style

__all__ = ["TileLayer", "gl_style", "tilejson"]

#: The order layers are drawn in (the web map's): areas first, lines on top.
DRAW_ORDER = ("plan", "annual_plan", "parcels", "boundary")
#: Expressions are those QGIS 3.22's converter reads (Debian's QGIS): ``match`` on a
#: property, and filters in the legacy form (``["in", "land_use", "DGT", …]``). A combined
#: code ("ONT+CLN") therefore gets the fallback colour here, where the web map takes its
#: first part's: ``slice`` is not read by that converter. Plan zones carry single codes.


@dataclass(frozen=True)
class TileLayer:
    """A published layer's tiles: its URL template (absolute), zoom range, bounds (WGS 84
    west, south, east, north), the archive's vector layers and the version served."""

    kind: str
    url: str
    minzoom: int
    maxzoom: int
    bounds: tuple[float, float, float, float]
    vector_layers: Sequence[Mapping[str, Any]]
    version: int


def tilejson(layer: TileLayer, *, name: str, attribution: str) -> dict[str, Any]:
    """TileJSON 3.0.0 of one layer."""
    w, s, e, n = layer.bounds
    return {
        "tilejson": "3.0.0", "name": name, "version": f"1.0.{layer.version}",
        "scheme": "xyz", "tiles": [layer.url], "minzoom": layer.minzoom,
        "maxzoom": layer.maxzoom, "bounds": [w, s, e, n],
        "center": [round((w + e) / 2, 6), round((s + n) / 2, 6), layer.minzoom],
        "vector_layers": [dict(v) for v in layer.vector_layers],
        "attribution": attribution,
    }


def _opacity(value: float) -> float:
    return round(max(0.0, min(1.0, value)), 3)


def _fill_color(style, source_field: str | None) -> Any:
    """A fill colour expression: by category value (land-use codes by their first
    part), else the last category's colour."""
    fallback = next((c.fill for c in style.categories if c.value is None), None) or "#CCCCCC"
    cases = [c for c in style.categories if c.value is not None and c.fill]
    if not cases or source_field is None:
        return fallback
    expr: list[Any] = ["match", ["get", source_field]]
    for c in cases:
        # Each label as an array (the style spec allows both): QGIS 3.22 reads only that.
        expr += [[c.value], c.fill]
    return [*expr, fallback]


def _layers_of(kind: str, source: str, source_layer: str, lang: str) -> list[dict[str, Any]]:
    style = layer_style(kind, lang)
    out: list[dict[str, Any]] = []
    base = {"source": source, "source-layer": source_layer}
    filled = [c for c in style.categories if c.fill]
    if style.geometry == "polygon" and filled:
        opacity = max(c.fill_opacity for c in filled)
        fill: dict[str, Any] = {"id": f"{kind}-fill", "type": "fill", **base,
                                "paint": {"fill-color": _fill_color(style, style.field),
                                          "fill-opacity": _opacity(opacity)}}
        if kind == "parcels":  # only the codes the web map fills (roads, water)
            fill["filter"] = ["in", "land_use", *[c.value for c in filled if c.value]]
        out.append(fill)
    # Outlines: one line layer per distinct stroke (boundary levels differ in width).
    strokes: dict[Any, list[Any]] = {}
    for c in style.categories:
        strokes.setdefault(c.stroke, []).append(c.value)
    for i, (stroke, values) in enumerate(strokes.items()):
        line: dict[str, Any] = {
            "id": f"{kind}-line-{i}", "type": "line", **base,
            "paint": {"line-color": stroke.color, "line-width": stroke.width_px,
                      "line-opacity": _opacity(stroke.opacity)}}
        if stroke.dash_px:
            line["paint"]["line-dasharray"] = [max(v / max(stroke.width_px, 1.0), 0.1)
                                               for v in stroke.dash_px]
        if style.field and None not in values and len(strokes) > 1:
            line["filter"] = ["in", style.field, *[str(v) for v in values]]
        elif style.field and len(strokes) > 1:
            others = [str(v) for s, vs in strokes.items() if s != stroke for v in vs
                      if v is not None]
            line["filter"] = ["!in", style.field, *others]
        out.append(line)
    return out


def gl_style(layers: Sequence[TileLayer], *, name: str, attribution: str,
             lang: str = "vi") -> dict[str, Any]:
    """A Mapbox GL style (version 8) drawing `layers` with the web map's colours."""
    ordered = sorted(layers, key=lambda t: DRAW_ORDER.index(t.kind)
                     if t.kind in DRAW_ORDER else len(DRAW_ORDER))
    sources: dict[str, Any] = {}
    drawn: list[dict[str, Any]] = []
    for t in ordered:
        sources[t.kind] = {"type": "vector", "tiles": [t.url], "minzoom": t.minzoom,
                           "maxzoom": t.maxzoom, "bounds": list(t.bounds),
                           "attribution": attribution}
        source_layer = str((t.vector_layers[0] if t.vector_layers else {}).get("id", t.kind))
        drawn += _layers_of(t.kind, t.kind, source_layer, lang)
    west = min(t.bounds[0] for t in layers) if layers else 107.0
    south = min(t.bounds[1] for t in layers) if layers else 11.0
    east = max(t.bounds[2] for t in layers) if layers else 109.0
    north = max(t.bounds[3] for t in layers) if layers else 12.5
    return {"version": 8, "name": name,
            "center": [round((west + east) / 2, 6), round((south + north) / 2, 6)],
            "zoom": 11, "sources": sources, "layers": drawn}
