"""The parcel information sheet (phiếu thông tin thửa đất): one printable A4 page.

``/parcels/<district>/<sheet>/<parcel>[?commune=]`` answers what the look-up answers
— identity, current use, planned uses with area and share, the approving decision —
with a small map of the parcel over the plan, the date of issue and a disclaimer. The
map embeds only the parcel and the plan zones around it (a few polygons), never a
layer, and draws them simplified to the screen's resolution (`gisportal.outputs.display`): a
published parcel of a million vertices makes a page of a few kilobytes, not 40 MB. What
it shows comes from the look-up, so the public sees what the allow-list of
`gisportal.outputs.privacy` lets out; the table of the source attributes (personal fields
included: owner, ID and certificate numbers…) is shown only to a planner of the
parcel's district or an admin (``can(user, "view_personal", district)``), and such a
page is never cached.
"""

from __future__ import annotations

import json
from datetime import date

import folium
import geopandas as gpd
import numpy as np
import shapely
from flask import Blueprint, make_response, render_template, request
from flask_login import current_user

from gisportal.accounts.roles import can
from gisportal.base import seeds
from gisportal.outputs.display import display_geometries, display_geometry
from gisportal.outputs.mapassets import offline_map
from gisportal.services import lookup as lk
from gisportal.web import get_store
from gisportal.web.i18n import add_strings, current_lang

bp = Blueprint("sheet", __name__)

add_strings({"sheet_attributes": ("Thuộc tính gốc (có thông tin cá nhân — chỉ dành cho cán bộ)",
                                  "Source attributes (personal data — staff only)")})

#: Metres of plan shown around the parcel on the sheet's map.
MAP_MARGIN_M = 60.0


def _sheet_map(store, district: str, parcel_geom, plan_version) -> str:
    """The parcel outlined over the plan zones around it, as folium map parts."""
    crs = store.crs
    cat = seeds.land_use_catalogue()
    m = offline_map(control_scale=True, zoom_control=False)
    if plan_version is not None:
        # The parcel's box and the margin (a buffer's box, without buffering a parcel
        # that may have a million vertices).
        x0, y0, x1, y1 = shapely.bounds(parcel_geom) + np.array(
            [-MAP_MARGIN_M, -MAP_MARGIN_M, MAP_MARGIN_M, MAP_MARGIN_M])
        zones = store.query_bbox(plan_version.id, (x0, y0, x1, y1), columns=["land_use"])
        if len(zones):
            # Cut to the view, then simplified for it (display only: the areas of the
            # sheet's table come from the look-up, on the exact shapes).
            clipped = shapely.clip_by_rect(zones.geometry.values, x0, y0, x1, y1)
            zones = zones.set_geometry(display_geometries(clipped), crs=crs)
            zones["color"] = [cat.color(c or "") for c in zones["land_use"]]
            folium.GeoJson(
                zones.to_crs(4326).to_json(), name="plan",
                style_function=lambda f: {"color": "#666", "weight": 0.5, "fillOpacity": 0.8,
                                          "fillColor": f["properties"]["color"]},
            ).add_to(m)
    outline = gpd.GeoSeries([display_geometry(parcel_geom)], crs=crs).to_crs(4326)
    folium.GeoJson(json.loads(outline.to_json()), name="parcel",
                   style_function=lambda _f: {"color": "#0b5394", "weight": 3,
                                              "fillOpacity": 0}).add_to(m)
    b = outline.total_bounds
    m.fit_bounds([[b[1], b[0]], [b[3], b[2]]], padding=(20, 20))
    root = m.get_root()
    root.render()
    return {"header": root.header.render(), "html": root.html.render(),
            "script": root.script.render()}


@bp.get("/parcels/<district>/<sheet>/<parcel>")
def parcel_sheet(district: str, sheet: str, parcel: str):
    store = get_store()
    commune = request.args.get("commune") or None
    staff = can(current_user, "view_personal", district)
    answer = lk.lookup_key(store, district, sheet, parcel, commune,  # errors → 4xx pages
                           public=not staff)
    p = answer["parcel"]
    version = store.published(district, "parcels")
    found = store.find(version.id, {"sheet": p["sheet"], "parcel": p["parcel"],
                                    **({"commune": p["commune"]} if p["commune"] else {})})
    plan_version = store.published(district, "plan")
    parts = _sheet_map(store, district, found.geometry.iloc[0], plan_version)
    cat = seeds.land_use_catalogue()
    lang = current_lang()
    current = p["current_use"] or ""
    html = render_template(
        "parcel.html", a=answer, p=p, parts=parts, attributes=p["attributes"] if staff else None,
        district=seeds.district(district), today=date.today().isoformat(),
        current_color=cat.color(current) if current else "#fff",
        current_name=cat.name(current, lang) if current else "",
        planned=[dict(x, label=x["name_en"] if lang == "en" else x["name"])
                 for x in answer["planned"]])
    response = make_response(html)
    if staff:
        response.headers["Cache-Control"] = "private, no-store"
    return response
