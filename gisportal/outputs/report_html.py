"""The validation report as one self-contained HTML page: summary, filterable table,
and a map of the findings (folium, Leaflet inlined: it opens offline from a file)."""

from __future__ import annotations

import html
import json
from typing import Any

import folium
import geopandas as gpd
import shapely
from jinja2 import Environment, PackageLoader, select_autoescape

from gisportal.base.findings import Report, rules
from gisportal.outputs.mapassets import inline_assets, offline_map

__all__ = ["report_html", "findings_map_html", "MAX_LAYER_FEATURES_ON_MAP"]

_env = Environment(loader=PackageLoader("gisportal", "templates"),
                   autoescape=select_autoescape(["html"]))

#: Above this, the layer itself is not drawn under the findings (the page stays light).
MAX_LAYER_FEATURES_ON_MAP = 20_000
_COLORS = {"error": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}


def findings_map_html(report: Report, layer: gpd.GeoDataFrame | None = None) -> str | None:
    """A stand-alone HTML document with the located findings (None when none is located).

    Text shown in popups is HTML-escaped here: attribute values from a planner's file
    end up in messages and must never run as markup.
    """
    feats = []
    for f in report.findings:
        d = f.to_dict()
        if not d["location"]:
            continue
        feats.append({"type": "Feature", "geometry": d["location"], "properties": {
            "rule": d["rule"], "severity": d["severity"],
            "row": "" if f.row is None else str(f.row),
            "message": html.escape(d["message"]), "message_en": html.escape(d["message_en"]),
            "color": _COLORS[d["severity"]]}})
    if not feats:
        return None
    bounds = shapely.total_bounds(shapely.from_geojson([json.dumps(x["geometry"])
                                                       for x in feats]))
    m = offline_map(control_scale=True)
    if layer is not None and 0 < len(layer) <= MAX_LAYER_FEATURES_ON_MAP:
        outline = gpd.GeoDataFrame(geometry=layer.geometry.simplify(0.2), crs=layer.crs)
        folium.GeoJson(outline.to_crs(4326).to_json(), name="Dữ liệu / data",
                       style_function=lambda _f: {"color": "#777", "weight": 1,
                                                  "fillOpacity": 0.05}).add_to(m)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": feats}, name="Lỗi / findings",
        marker=folium.CircleMarker(radius=6, fill=True, fill_opacity=0.8),
        style_function=lambda f: {"color": f["properties"]["color"], "weight": 3,
                                  "fillColor": f["properties"]["color"], "fillOpacity": 0.4},
        popup=folium.GeoJsonPopup(fields=["rule", "severity", "row", "message", "message_en"],
                                  aliases=["Mã / rule", "Mức / severity", "Dòng / row",
                                           "Nội dung", "Message"]),
    ).add_to(m)
    folium.LayerControl().add_to(m)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]], max_zoom=18)
    return inline_assets(m.get_root().render())


def report_html(report: Report, layer: gpd.GeoDataFrame | None = None) -> str:
    """Render the report: summary by rule and severity, every finding, and the map."""
    data: dict[str, Any] = report.to_dict()
    return _env.get_template("report.html").render(
        summary=data["summary"], findings=data["findings"], read=data["read"],
        rules=rules(), read_json=json.dumps(data["read"], ensure_ascii=False, indent=1),
        map_html=findings_map_html(report, layer),
        layer_too_big=layer is not None and len(layer) > MAX_LAYER_FEATURES_ON_MAP)
