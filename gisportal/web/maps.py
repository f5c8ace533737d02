"""Map compositions (``maps/*.json``) and the folium pages built from them.

A composition says which layers a map shows, in which order and style, its legend,
its basemaps and controls; this module turns it into the pieces of an HTML page
(folium's ``<head>`` assets, the map ``<div>`` and its script). Everything the browser
loads comes from the app: Leaflet and its plugins from ``/static/vendor`` (folium's CDN
links are replaced per instance) and layer data as vector tiles from ``/tiles/...``, so
a district page weighs the same for 1 000 or 1 000 000 parcels. Only the province
overview embeds geometry: the twelve district outlines, simplified.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import folium
from folium import plugins
from folium.elements import JSCSSMixin
from folium.template import Template
from folium.utilities import JsCode
from pyproj import CRS

from gisportal.base import seeds
from gisportal.base.crs import to_lonlat
from gisportal.base.resources import data_dir
from gisportal.outputs.mapassets import MEASURE_CSP, map_header, offline_map
from gisportal.outputs.tiles.build import ZOOMS
from gisportal.services.workflow import WorkflowStatus, district_statuses
from gisportal.store import Store
from gisportal.store.derived import derived
from gisportal.web.i18n import TEXT

__all__ = ["composition", "MapParts", "province_map", "district_map", "land_use_table",
           "text"]

STATIC = "/static/vendor"

#: Local copies of the plugins' assets (see static/vendor/README.md).
PLUGIN_ASSETS: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "fullscreen": ([("Control.Fullscreen.js",
                     f"{STATIC}/leaflet.fullscreen/Control.FullScreen.js")],
                   [("Control.FullScreen.css",
                     f"{STATIC}/leaflet.fullscreen/Control.FullScreen.css")]),
    # Its templates precompiled: the stock build calls ``new Function``, which the
    # pages' Content-Security-Policy refuses (gisportal.outputs.mapassets.MEASURE_CSP).
    "measure": ([("leaflet_measure_js", f"{STATIC}/{MEASURE_CSP}")],
                [("leaflet_measure_css", f"{STATIC}/leaflet-measure/leaflet-measure.css")]),
    "locate": ([("Control_locate_min_js",
                 f"{STATIC}/leaflet.locatecontrol/L.Control.Locate.min.js")],
               [("Control_locate_min_css",
                 f"{STATIC}/leaflet.locatecontrol/L.Control.Locate.min.css")]),
    "vectorgrid": ([("vectorGrid",
                     f"{STATIC}/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js")], []),
}


#: The map controls' own words, per page language: the plugins' titles, Leaflet's zoom
#: buttons and attribution title, leaflet-measure's texts. leaflet-measure has no
#: Vietnamese among its built-in locales and no way to add one (its i18n object is
#: private to its bundle), so its units are given their symbols here (``units``) with
#: the Vietnamese separators (``decPoint``, ``thousandsSep``), and gp/core.js
#: (``GP.localizeMap``) rewrites its English phrases as the control draws them, formats
#: its lengths and areas with ``GP.fmtNumber`` (the panel's numbers) and its point
#: coordinates, which its templates print with a decimal point whatever the options,
#: with ``dec_point`` and the Vietnamese ``hemispheres``.
#: Words of Leaflet's own controls, from the UI strings (compare.js uses them too).
CONTROL_KEYS = ("zoom_in", "zoom_out", "leaflet_title", "map_layers", "close")
CONTROL_WORDS: dict[str, dict[str, Any]] = {
    "vi": {
        "fullscreen": "Toàn màn hình", "fullscreen_exit": "Thoát chế độ toàn màn hình",
        "locate": {"title": "Vị trí của tôi", "metersUnit": "mét", "feetUnit": "foot",
                   "popup": "Bạn đang ở trong phạm vi {distance} {unit} quanh điểm này",
                   "outsideMapBoundsMsg": "Vị trí của bạn nằm ngoài phạm vi bản đồ"},
        "locate_error": "Không xác định được vị trí của bạn",
        **{k: TEXT[k][0] for k in CONTROL_KEYS},
        "dec_point": ",", "thousands_sep": ".",
        # leaflet-measure writes a point's hemispheres N/S/E/W: Bắc, Nam, Đông, Tây
        # as Vietnamese maps abbreviate them (11°42′15″ B, 108°20′10″ Đ).
        "hemispheres": {"N": "B", "S": "N", "E": "Đ", "W": "T"},
        # leaflet-measure's English (its "en" locale) → Vietnamese, longest first.
        "phrases": {
            "Start creating a measurement by adding points to the map":
                "Nhấn lên bản đồ để thêm các điểm cần đo",
            "Measure distances and areas": "Đo khoảng cách và diện tích",
            "Create a new measurement": "Bắt đầu đo",
            "Center on this location": "Đưa vị trí này vào giữa bản đồ",
            "Center on this area": "Đưa vùng này vào giữa bản đồ",
            "Center on this line": "Đưa đường này vào giữa bản đồ",
            "Finish measurement": "Kết thúc đo",
            "Linear measurement": "Đo chiều dài",
            "Area measurement": "Đo diện tích",
            "Point location": "Vị trí điểm",
            "Path distance": "Chiều dài",
            "Last point": "Điểm cuối",
            "Perimeter": "chu vi",
            "Measure": "Đo",
            "Cancel": "Hủy",
            "Delete": "Xóa",
            "Area": "Diện tích",
        },
    },
    "en": {
        "fullscreen": "Full screen", "fullscreen_exit": "Exit full screen",
        "locate": {"title": "Show my location"},
        "locate_error": "Your location could not be found",
        **{k: TEXT[k][1] for k in CONTROL_KEYS},
        "dec_point": ".", "thousands_sep": ",",
        "hemispheres": {},
        "phrases": {},
    },
}

#: leaflet-measure's units by their symbols, in every language (its "Meters", "Sq
#: Meters" are English words; a symbol is read the same in both).
MEASURE_UNITS: dict[str, dict[str, Any]] = {
    "meters": {"factor": 1, "display": "m", "decimals": 1},
    "kilometers": {"factor": 0.001, "display": "km", "decimals": 2},
    "sqmeters": {"factor": 1, "display": "m²", "decimals": 1},
    "hectares": {"factor": 0.0001, "display": "ha", "decimals": 2},
}


class LocalizedControls(folium.MacroElement):
    """Hands the map (and its measure and locate controls, if any) to ``GP.localizeMap``
    with the page language's `CONTROL_WORDS`: Leaflet's zoom titles and attribution
    title, the scale in metres only, leaflet-measure's phrases, the locate control's
    error (the browser's own message is English: "User denied Geolocation"). Added
    last, after the controls."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            if (window.GP && GP.localizeMap) {
                GP.localizeMap({{ this._parent.get_name() }}, {{ this.words|tojson }},
                               {{ this.measure or "null" }}, {{ this.locate or "null" }});
            }
        {% endmacro %}
        """)

    def __init__(self, lang: str, *, measure: str | None = None, locate: str | None = None):
        super().__init__()
        self._name = "LocalizedControls"
        words = CONTROL_WORDS.get(lang, CONTROL_WORDS["vi"])
        self.words = {k: words[k] for k in (*CONTROL_KEYS, "locate_error", "phrases",
                                            "dec_point", "hemispheres")}
        #: JS names of the measure and locate controls (folium's variables), if any
        self.measure = measure
        self.locate = locate


class PluginAssets(JSCSSMixin, folium.MacroElement):
    """Only a plugin's script and style in the page's ``<head>``, for a page whose own
    script uses the plugin though folium draws no layer of it: the province page's base
    (gp/basemap.js) is VectorGrid layers, its folium layers are GeoJSON."""

    _template = Template("")


def _local(element, key: str):
    """Point a folium plugin instance at the vendored copies of its JS/CSS."""
    js, css = PLUGIN_ASSETS[key]
    element.default_js = list(js)
    element.default_css = list(css)
    return element


@cache
def composition(name: str) -> dict[str, Any]:
    """The map composition ``maps/<name>.json``."""
    with open(data_dir("maps") / f"{name}.json", encoding="utf-8") as fh:
        return json.load(fh)


def text(value: Any, lang: str) -> str:
    """A composition label: ``{"vi": ..., "en": ...}`` or a plain string."""
    if isinstance(value, dict):
        return value.get(lang) or value.get("vi") or ""
    return str(value or "")


@cache
def land_use_table() -> dict[str, list[str]]:
    """``{code: [colour, name_vi, name_en]}`` for the whole catalogue (a few kB)."""
    return {lu.code: [lu.color, lu.name_vi, lu.name_en] for lu in seeds.land_use_catalogue()}


@dataclass
class MapParts:
    """What a page template needs to place a folium map in its own layout."""

    header: str  # <script>/<link>/<style> for <head>
    html: str  # the map <div>
    script: str  # the map's <script>
    name: str  # JS variable of the L.map
    config: dict[str, Any]  # data for the page's own JS


def _parts(m: folium.Map, config: dict[str, Any]) -> MapParts:
    root = m.get_root()
    root.render()
    return MapParts(header=map_header(m), html=root.html.render(),
                    script=root.script.render(), name=m.get_name(), config=config)


def _store_crs(store: Store) -> CRS:
    return CRS.from_user_input(store.crs)


def _lonlat_bounds(bounds, crs: CRS) -> list[list[float]]:
    minx, miny, maxx, maxy = bounds
    lons, lats = to_lonlat([minx, maxx], [miny, maxy], crs)
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


# --------------------------------------------------------------------------- province


def _district_outline(store: Store, code: str, comp: dict[str, Any],
                      published: Mapping[tuple[str, str], Any] | None = None) -> dict | None:
    """Simplified outline (GeoJSON geometry, lon/lat) of ``code``'s published boundary
    (from the caller's `published` versions when it has them: one catalogue query for
    the whole province instead of one per district)."""
    spec = comp["boundary"]
    kind = spec.get("kind", "boundary")
    version = (store.published(code, kind) if published is None
               else published.get((code, kind)))
    if version is None:
        return None
    level = spec.get("level", "district")
    tolerance = float(spec.get("simplify_m", 20))
    return derived(store, version, ("outline", level, tolerance),
                   lambda st, v: _build_outline(st, v, level, tolerance))


def _build_outline(store: Store, version, level: str, tolerance: float) -> dict | None:
    import shapely
    from shapely.geometry import mapping
    from shapely.ops import transform

    gdf = store.read(version.id, columns=["level", "code"])
    part = gdf[gdf["level"] == level]
    if part.empty:
        part = gdf
    geom = shapely.union_all(part.geometry.values)
    geom = geom.simplify(tolerance, preserve_topology=True)
    crs = _store_crs(store)
    geom = transform(lambda x, y, z=None: to_lonlat(x, y, crs), geom)
    geom = shapely.set_precision(geom, 1e-5)
    return mapping(geom) if not geom.is_empty else None


def province_map(store: Store, lang: str = "vi", *,
                 status: Mapping[str, WorkflowStatus] | None = None) -> MapParts:
    """The province overview: districts coloured by plan status, click to open one.

    The status of each district is derived from its stored versions
    (:func:`gisportal.services.workflow.district_statuses`, which falls back to the seeds table
    for layers never uploaded); pass `status` when the caller has it already.
    """
    comp = composition("province")
    prov = seeds.province()
    # Residents' one plan-status vocabulary (`WorkflowStatus.public_status`); the
    # staff's "statuses" (with the cadastre's progress) colour the planner dashboard.
    statuses = {s["id"]: s for s in comp["plan_statuses"]}
    status_of = district_statuses(store) if status is None else status
    published = store.published_versions()
    view = comp.get("view", {})
    m = offline_map(location=_province_center(), zoom_start=view.get("zoom", 8),
                    min_zoom=view.get("min_zoom", 6), max_zoom=view.get("max_zoom", 14),
                    control_scale=True)
    # Base maps: gp/basemap.js, as on the district page (`base_map_config`); our own
    # base is drawn with VectorGrid.
    _local(PluginAssets(), "vectorgrid").add_to(m)
    features, labels = [], []
    for d in seeds.districts():
        st = status_of.get(d.code)
        portal = st.public_status if st else "none"
        s = statuses.get(portal, {"color": "#999999", "label": {"vi": portal, "en": portal}})
        props = {"code": d.code, "name": d.short_name, "status": portal,
                 "status_label": text(s["label"], lang), "color": s["color"]}
        outline = _district_outline(store, d.code, comp, published)
        if outline is not None:
            features.append({"type": "Feature", "properties": props, "geometry": outline})
        labels.append((d, props, outline is not None))
    style = comp.get("style", {})
    if features:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name=text({"vi": "Huyện cũ: quy hoạch 2021–2030",
                       "en": "Former districts: 2021–2030 plans"}, lang),
            style_function=lambda f, st=style: {
                "fillColor": f["properties"]["color"], "color": st.get("color", "#fff"),
                "weight": st.get("weight", 1.5), "fillOpacity": st.get("fillOpacity", 0.55)},
            highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.75},
            tooltip=folium.GeoJsonTooltip(fields=["name", "status_label"], labels=False),
            on_each_feature=JsCode(
                "function(feature, layer) { layer.on('click', function () {"
                " window.location.href = '/districts/' + encodeURIComponent("
                "feature.properties.code); }); }"),
        ).add_to(m)
    # Today's units are drawn by the page's script from /api/units (`units_geojson`):
    # 124 outlines are hundreds of kB, which a page never embeds.
    from gisportal.services.units import current_unit_shapes

    drawn = sum(u.geometry is not None for u in current_unit_shapes(store, published))
    bounds: list[tuple[float, float]] = []
    for f in features:
        bounds.extend(_geojson_points(f["geometry"]))
    for d, props, has_outline in labels:
        if d.anchor_lonlat is None:
            continue
        lon, lat = d.anchor_lonlat
        bounds.append((lat, lon))
        if not has_outline:
            folium.CircleMarker((lat, lon), radius=9, color="#ffffff", weight=2,
                                fill=True, fill_color=props["color"], fill_opacity=0.9,
                                tooltip=f"{props['name']} — {props['status_label']}",
                                ).add_to(m)
        # Not a control itself (no tabindex, no role): the link inside it is, once;
        # a focusable marker holding a link is a nested control to a screen reader.
        folium.Marker(
            (lat, lon), interactive=False, keyboard=False,
            icon=folium.DivIcon(
                class_name="gp-district-label", icon_size=(120, 18), icon_anchor=(60, -11),
                html=(f'<a href="/districts/{d.code}" data-code="{d.code}">'
                      f'{_esc(props["name"])}</a>')),
        ).add_to(m)
    fit = None
    if bounds:
        lats, lons = zip(*bounds, strict=True)
        fit = [[min(lats) - 0.05, min(lons) - 0.05], [max(lats) + 0.05, max(lons) + 0.05]]
    ExposedLayerControl(collapsed=False, position="topright").add_to(m)
    LocalizedControls(lang).add_to(m)
    spec = comp.get("units", {})
    config = {"page": "province", "province": prov.get("name"), "bounds": fit,
              **base_map_config(comp, lang, published, _store_crs(store)),
              "units": drawn, "units_url": f"/api/units?lang={lang}" if drawn else None,
              "units_label": text(spec.get("label", {"vi": "Xã, phường", "en": "Communes"}),
                                  lang),
              "units_style": {"color": spec.get("style", {}).get("color", "#24292f"),
                              "weight": spec.get("style", {}).get("weight", 0.8),
                              # outlines only: a click inside still opens the district
                              "fill": False},
              "statuses": [{"id": s["id"], "color": s["color"], "label": text(s["label"], lang)}
                           for s in comp["plan_statuses"]]}
    return _parts(m, config)


@dataclass(frozen=True)
class UnitsDocument:
    """Today's units as GeoJSON bytes (and gzipped), with an ETag: the body of
    ``/api/units``, built once per set of published boundary versions and language."""

    body: bytes
    gzipped: bytes
    etag: str
    features: int


def units_geojson(store: Store, lang: str = "vi") -> UnitsDocument:
    """Today's communes, wards and special zone as a GeoJSON FeatureCollection (WGS 84,
    simplified for the province view, lon/lat to 1e-5°), from their shapes
    (`gisportal.services.units`); one catalogue query, the rest cached."""
    import gzip
    import hashlib

    from gisportal.services.units import boundary_versions, current_unit_shapes

    published = store.published_versions()
    tolerance = float(composition("province").get("units", {}).get("simplify_m", 60))
    key = (tuple(v.id for v in boundary_versions(published)), tolerance, lang)
    cached = _UNITS_GEOJSON.get(store)
    if cached is None or cached[0] != key:
        doc = _units_geojson(store, current_unit_shapes(store, published), tolerance, lang)
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        etag = hashlib.sha256(repr(key).encode() + body).hexdigest()[:32]
        cached = (key, UnitsDocument(body, gzip.compress(body, 6, mtime=0), etag,
                                     len(doc["features"])))
        _UNITS_GEOJSON[store] = cached
    return cached[1]


_UNITS_GEOJSON: weakref.WeakKeyDictionary[Store, tuple[Any, UnitsDocument]] = (
    weakref.WeakKeyDictionary())


def _units_geojson(store: Store, shapes: list, tolerance: float, lang: str) -> dict[str, Any]:
    import shapely
    from shapely.geometry import mapping
    from shapely.ops import transform

    crs = _store_crs(store)
    levels = {"commune": {"vi": "Xã", "en": "Commune"}, "ward": {"vi": "Phường", "en": "Ward"},
              "special_zone": {"vi": "Đặc khu", "en": "Special zone"}}
    features = []
    for u in shapes:
        if u.geometry is None:
            continue
        geom = u.geometry.simplify(tolerance, preserve_topology=True)
        geom = transform(lambda x, y, z=None: to_lonlat(x, y, crs), geom)
        geom = shapely.set_precision(geom, 1e-5)
        if geom.is_empty:
            continue
        features.append({"type": "Feature", "geometry": mapping(geom), "properties": {
            "code": u.code, "name": u.name, "level": u.level,
            "level_label": text(levels.get(u.level, {"vi": u.level, "en": u.level}), lang),
            "complete": u.complete, "approximate": u.approximate}})
    return {"type": "FeatureCollection", "features": features}


def _geojson_points(geom: dict[str, Any]) -> list[tuple[float, float]]:
    """(lat, lon) of the corners of a GeoJSON geometry's bounding box."""
    import shapely.geometry

    minx, miny, maxx, maxy = shapely.geometry.shape(geom).bounds
    return [(miny, minx), (maxy, maxx)]


def _esc(s: str) -> str:
    from markupsafe import escape

    return str(escape(s))


def _province_center() -> tuple[float, float]:
    pts = [d.anchor_lonlat for d in seeds.districts() if d.anchor_lonlat]
    if not pts:
        return (11.9, 108.0)
    return (sum(p[1] for p in pts) / len(pts), sum(p[0] for p in pts) / len(pts))


# --------------------------------------------------------------------------- district


def _layer_options(spec: dict[str, Any], kind: str) -> str:
    """JS options of a VectorGrid layer; the style function lives in static/js/gp/map.js."""
    lo, hi = ZOOMS[kind]
    opts = {
        # Only a layer with a tooltip listens to the pointer (gp/map.js binds it).
        "interactive": bool(spec.get("tooltip")),
        # Past the archive's last zoom, gp/map.js cuts the tiles out of the last zoom's
        # tiles and draws them sharp (Leaflet's maxNativeZoom would scale a bitmap).
        "nativeMaxZoom": hi,
        "minZoom": max(lo - (0 if kind == "parcels" else 2), 0),
        "maxZoom": 22,
        "opacity": spec.get("opacity", 1),
        "attribution": "",
        # gp/map.js finds the layer's label spec (maps/district.json "labels") by it.
        "gpLayer": spec["id"],
    }
    body = json.dumps(opts, ensure_ascii=False)[:-1]
    if spec.get("feature_id"):
        body += ', "getFeatureId": GP.featureId(' + json.dumps(spec["feature_id"]) + ")"
    return (body + ', "rendererFactory": L.canvas.tile, "vectorTileLayerStyles": {'
            + json.dumps(kind) + ": GP.style(" + json.dumps(spec["id"]) + ")}}")


def _commune_names(store: Store, version) -> dict[str, str]:
    """``{commune code: name}`` from the published boundary layer (a few dozen rows)."""
    if version is None:
        return {}
    return derived(store, version, "commune-names", _build_commune_names)


def _build_commune_names(store: Store, version) -> dict[str, str]:
    gdf = store.read(version.id, columns=["level", "code", "name"])
    part = gdf[gdf["level"] == "commune"]
    return {str(c): str(n) for c, n in zip(part["code"], part["name"], strict=True)
            if c is not None and n is not None}


class ExposedLayerControl(folium.LayerControl):
    """folium's layer control, also kept as ``window.gpLayerControl``.

    folium declares it with ``let``, which no other script can reach; the page's base-map
    switcher (gp/basemap.js) adds the base maps to this one control instead of drawing a
    second one.
    """

    _template = Template(
        """
        {% macro script(this,kwargs) %}
            var {{ this.get_name() }}_layers = {
                base_layers : {
                    {%- for key, val in this.base_layers.items() %}
                    {{ key|tojson }} : {{val}},
                    {%- endfor %}
                },
                overlays :  {
                    {%- for key, val in this.overlays.items() %}
                    {{ key|tojson }} : {{val}},
                    {%- endfor %}
                },
            };
            let {{ this.get_name() }} = L.control.layers(
                {{ this.get_name() }}_layers.base_layers,
                {{ this.get_name() }}_layers.overlays,
                {{ this.options|tojavascript }}
            ).addTo({{this._parent.get_name()}});
            window.gpLayerControl = {{ this.get_name() }};
        {% endmacro %}
        """)


def basemap_config(comp: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """The base maps an administrator enabled in the composition, for the switcher.

    ``enabled`` in ``maps/*.json`` is the one switch: `gisportal.web.security` reads the
    same entries for the pages' ``img-src``, so a host reaches the policy exactly when it
    reaches the page, and the shipped compositions enable none (no request leaves the
    portal).
    """
    out = []
    for b in comp.get("basemaps", []):
        if not b.get("enabled"):
            continue
        out.append({"id": str(b["id"]), "name": text(b.get("name"), lang) or str(b["id"]),
                    "url": str(b["url"]), "attribution": text(b.get("attribution"), lang),
                    "max_zoom": int(b.get("max_zoom", 19)), "show": bool(b.get("show"))})
    return out


#: The kinds our own base is drawn from: commune tints from the boundary tiles, roads
#: and rivers from the plan tiles (gp/basemap.js).
OWN_BASE_KINDS = ("boundary", "plan")


def base_map_config(comp: dict[str, Any], lang: str,
                    published: Mapping[tuple[str, str], Any], crs: CRS) -> dict[str, Any]:
    """What gp/basemap.js needs to offer the base maps of a page, the same way on the
    province page and a district page: the base maps an administrator enabled
    (`basemap_config`), our own base's name and style, and the tile sources it is
    drawn from — one per published boundary and plan layer of `published` (``{(district,
    kind): version}``), each with its lon/lat bounds so the browser asks no tile outside
    that district (the province page holds a dozen districts' sources).

    A composition without an ``own_base.style`` takes the district map's, so both pages
    draw the same paper, tints and ribbons; ``own_base.min_zoom`` (per kind) keeps a
    kind out of the wide views where its tiles would be many and say little (the plan's
    ribbons on the province page).
    """
    own = comp.get("own_base", {})
    style = own.get("style")
    if style is None:
        style = composition("district").get("own_base", {}).get("style", {})
    floors = own.get("min_zoom", {})
    sources = []
    for (district, kind), version in sorted(published.items()):
        if kind not in OWN_BASE_KINDS or version is None:
            continue
        lo, hi = ZOOMS[kind]
        sources.append({
            "kind": kind, "district": district,
            "url": f"/tiles/{district}/{kind}/{{z}}/{{x}}/{{y}}.pbf",
            "zooms": [lo, hi], "min_zoom": max(lo - 2, int(floors.get(kind, 0)), 0),
            "bounds": _outward(_lonlat_bounds(version.bounds, crs)) if version.bounds
            else None})
    return {"basemaps": basemap_config(comp, lang),
            "own_base": {"name": text(own.get("name", {"vi": "Nền ngoại tuyến",
                                                       "en": "Offline base"}), lang),
                         "style": style},
            "base_tiles": sources}


def _outward(bounds: list[list[float]]) -> list[list[float]]:
    """Lon/lat bounds rounded to 1e-6° (0.1 m) away from their centre: shorter to send,
    and never cutting off a tile the layer has."""
    import math

    (s, w), (n, e) = bounds
    return [[math.floor(s * 1e6) / 1e6, math.floor(w * 1e6) / 1e6],
            [math.ceil(n * 1e6) / 1e6, math.ceil(e * 1e6) / 1e6]]


#: Hatchings, most distinct first: code i of a group of codes sharing a colour gets
#: pattern i-1 (the first code of the group stays plain). ``angle`` in degrees, ``size``
#: the repeat in CSS px (a divisor of the 256-px tile, so hatches run on across tiles).
PATTERNS: tuple[dict[str, Any], ...] = tuple(
    {"kind": kind, "angle": angle, "size": size}
    for size in (8, 16)
    for kind, angle in (("line", 45), ("line", 135), ("line", 0), ("line", 90),
                        ("cross", 45), ("cross", 0), ("dot", 0), ("dash", 0),
                        ("dash", 90), ("double", 45), ("double", 135), ("ring", 0)))


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


@cache
def code_patterns() -> dict[str, dict[str, Any]]:
    """``{code: pattern}`` for the catalogue's codes whose official colour repeats.

    Colours closer than 12 per channel count as the same (``#FFAAA0`` and ``#FAAAA0``
    cannot be told apart on a screen). Within a group the catalogue order decides, so a
    code has the same hatching in every district and in the legend.
    """
    groups: list[tuple[tuple[int, int, int], list[str]]] = []
    # Current codes first: they get the plainest, most distinct hatchings.
    codes = sorted(seeds.land_use_catalogue(), key=lambda lu: lu.status != "current")
    for lu in codes:
        if not lu.color or not str(lu.color).startswith("#"):
            continue
        rgb = _rgb(lu.color)
        for ref, codes in groups:
            if max(abs(a - b) for a, b in zip(ref, rgb, strict=True)) < 12:
                codes.append(lu.code)
                break
        else:
            groups.append((rgb, [lu.code]))
    out: dict[str, dict[str, Any]] = {}
    for _, codes in groups:
        for i, c in enumerate(codes[1:]):
            out[c] = dict(PATTERNS[i % len(PATTERNS)])
    return out


def _legend_codes(store: Store, comp: dict[str, Any],
                  published: Mapping[str, Any]) -> list[str]:
    """The land-use codes the district's published plan uses (else its parcels'), the
    composition's legend order first: a legend of the codes that can be on the map."""
    cat = seeds.land_use_catalogue()
    listed = [c for c in comp["legend"]["codes"] if c in cat]
    version = published.get("plan") or published.get("parcels")
    if version is None:
        return listed
    present = derived(store, version, "land-use-codes", _build_present_codes)
    order = listed + [lu.code for lu in cat if lu.code not in listed]
    return [c for c in order if c in present]


def _build_present_codes(store: Store, version) -> frozenset[str]:
    cat = seeds.land_use_catalogue()
    gdf = store.read(version.id, columns=["land_use"])
    found = set()
    for value in gdf["land_use"].dropna().unique():
        lu = cat.primary(str(value))  # the map fills by the first known part
        if lu is not None:
            found.add(lu.code)
    return frozenset(found)


def _place_labels(store: Store, boundary, code: str,
                  comp: dict[str, Any]) -> list[dict[str, Any]]:
    """Names drawn at district zoom: the communes of the published boundary, each at its
    pole of inaccessibility (the point inside farthest from the edge: a name never sits
    on a neighbour, even in a crescent-shaped commune), and the seat towns of the seeds
    (every district's, so the neighbours are named too). A few dozen points, whatever
    the number of parcels."""
    spec = comp.get("place_labels", {})
    out: list[dict[str, Any]] = []
    communes: list[str] = []
    if boundary is not None:
        for name, lon, lat in derived(store, boundary, "commune-label-points",
                                      _build_commune_points):
            out.append({"text": name, "lon": lon, "lat": lat, "kind": "commune",
                        **spec.get("commune", {"min_zoom": 10, "max_zoom": 14})})
            communes.append(name)
    for d in seeds.districts():
        if d.anchor_lonlat is None:
            continue
        for town in d.seat_towns[:1]:
            if any(c.endswith(town) for c in communes):
                continue  # the commune of that name is labelled already
            out.append({"text": town, "lon": d.anchor_lonlat[0], "lat": d.anchor_lonlat[1],
                        "kind": "town", **spec.get("town", {"min_zoom": 8, "max_zoom": 13})})
    return out


def _build_commune_points(store: Store, version) -> list[tuple[str, float, float]]:
    from shapely.ops import polylabel

    gdf = store.read(version.id, columns=["level", "code", "name"])
    part = gdf[(gdf["level"] == "commune") & gdf["name"].notna()]
    crs = _store_crs(store)
    out = []
    for name, geom in zip(part["name"], part.geometry.values, strict=True):
        if geom is None or geom.is_empty:
            continue
        poly = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
        try:
            pt = polylabel(poly, tolerance=max(1.0, poly.length / 2000))
        except Exception:  # invalid ring: the surface point is inside all the same
            pt = poly.point_on_surface()
        lon, lat = to_lonlat(pt.x, pt.y, crs)
        out.append((str(name), round(float(lon), 6), round(float(lat), 6)))
    return out


def district_map(store: Store, code: str, lang: str = "vi") -> MapParts:
    """The district map: plan + parcels + boundaries as vector tiles, controls, legend."""
    comp = composition("district")
    d = seeds.district(code)
    view = comp.get("view", {})
    published = {k: store.published(code, k)
                 for k in ("parcels", "plan", "boundary", "annual_plan")}
    center = (d.anchor_lonlat[1], d.anchor_lonlat[0]) if d.anchor_lonlat else \
        _province_center()
    controls = comp.get("controls", {})
    m = offline_map(location=center, zoom_start=view.get("fallback_zoom", 11),
                    min_zoom=view.get("min_zoom", 8), max_zoom=view.get("max_zoom", 21),
                    control_scale=bool(controls.get("scale", True)))
    # Base maps are not folium TileLayers (on either page): gp/basemap.js builds them
    # from the config (`base_map_config`, with the base drawn from our own data as the
    # first choice), so the choice can be remembered and the offline base is one of the
    # radio buttons.
    layer_names: dict[str, str] = {}
    styles: dict[str, Any] = {}
    highlights: dict[str, Any] = {}
    tooltips: dict[str, Any] = {}
    for spec in comp["layers"]:
        kind = spec["kind"]
        styles[spec["id"]] = spec.get("style", {})
        if spec.get("tooltip"):
            tooltips[spec["id"]] = spec["tooltip"]
        if spec.get("highlight"):
            highlights[spec["id"]] = {"fields": spec.get("feature_id", []),
                                      "style": spec["highlight"]}
        if published.get(kind) is None:
            continue
        layer = plugins.VectorGridProtobuf(
            f"/tiles/{code}/{kind}/{{z}}/{{x}}/{{y}}.pbf", name=text(spec["name"], lang),
            options=_layer_options(spec, kind), overlay=True, show=bool(spec.get("show", True)))
        _local(layer, "vectorgrid").add_to(m)
        layer_names[spec["id"]] = layer.get_name()
    # The controls speak the page's language only (CONTROL_WORDS): a resident's page
    # in Vietnamese shows no English, the toggle gives the English page.
    words = CONTROL_WORDS.get(lang, CONTROL_WORDS["vi"])
    if controls.get("fullscreen"):
        _local(plugins.Fullscreen(position="topleft", title=words["fullscreen"],
                                  title_cancel=words["fullscreen_exit"]),
               "fullscreen").add_to(m)
    locate = None
    if controls.get("locate"):
        locate = plugins.LocateControl(
            position="topleft", icon="gp-icon-locate", iconLoading="gp-icon-locate gp-spin",
            strings=words["locate"])
        _local(locate, "locate").add_to(m)
    measure = None
    if controls.get("measure"):
        measure = plugins.MeasureControl(position="topleft", primary_length_unit="meters",
                                         secondary_length_unit="kilometers",
                                         primary_area_unit="sqmeters",
                                         secondary_area_unit="hectares",
                                         units=MEASURE_UNITS, decPoint=words["dec_point"],
                                         thousandsSep=words["thousands_sep"])
        _local(measure, "measure").add_to(m)
    if controls.get("layers", True):
        ExposedLayerControl(collapsed=False, position="topright").add_to(m)
    LocalizedControls(lang, measure=measure.get_name() if measure is not None else None,
                      locate=locate.get_name() if locate is not None else None).add_to(m)
    bounds = None
    for kind in ("boundary", "plan", "parcels"):
        v = published.get(kind)
        if v is not None and v.bounds:
            bounds = _lonlat_bounds(v.bounds, _store_crs(store))
            break
    legend_codes = _legend_codes(store, comp, published)
    communes = _commune_names(store, published.get("boundary"))
    config = {
        "page": "district", "district": code, "name": d.name,
        "layers": layer_names, "styles": styles, "highlights": highlights,
        "tooltips": tooltips, "bounds": bounds,
        "published": {k: v is not None for k, v in published.items()},
        "opacity": {s["id"]: s.get("opacity", 1) for s in comp["layers"]
                    if s.get("opacity_slider")},
        "legend": legend_codes,
        "communes": communes,
        **base_map_config(comp, lang, {(code, k): v for k, v in published.items()},
                          _store_crs(store)),
        "labels": {s["id"]: s["labels"] for s in comp["layers"] if s.get("labels")},
        "place_labels": _place_labels(store, published.get("boundary"), code, comp),
        "patterns": {c: p for c, p in code_patterns().items() if c in legend_codes},
    }
    return _parts(m, config)
