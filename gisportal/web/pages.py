"""HTML pages for residents: the province overview and the district maps.

The maps are built by :mod:`gisportal.web.maps` from the compositions in ``maps/``. The UI
is Vietnamese first; ``?lang=en`` switches to English (strings in :mod:`gisportal.web.i18n`).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from gisportal.base import seeds
from gisportal.outputs.compare.pairs import default_pair
from gisportal.services import search, workflow
from gisportal.web import get_store, maps
from gisportal.web.i18n import current_lang, js_strings

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    store = get_store()
    lang = current_lang()
    status = workflow.district_statuses(store)  # derived from the versions (workflow.py)
    parts = maps.province_map(store, lang, status=status)
    comp = maps.composition("province")
    labels = {s["id"]: s for s in comp["plan_statuses"]}
    rows = []
    for d in seeds.districts():
        st = status.get(d.code)
        portal = st.public_status if st else "none"
        s = labels.get(portal, {"color": "#999", "label": portal})
        rows.append({"code": d.code, "name": d.name, "status": portal,
                     "color": s["color"], "status_label": maps.text(s["label"], lang)})
    drawn = int(parts.config.get("units", 0))
    units = []
    for u in seeds.current_units().values():
        former = seeds.former_parts_of(u.code)  # linked to its first former district's plan
        units.append({"code": u.code, "name": u.name, "level": u.level,
                      "district": former[0].district if former else None})
    # land_use: our own base (gp/basemap.js) finds the plan's roads and rivers by code.
    return render_template("index.html", parts=parts, rows=rows, units=units, drawn=drawn,
                           province=seeds.province(), strings=js_strings(),
                           land_use=maps.land_use_table())


@bp.get("/districts/<code>")
def district(code: str):
    try:
        d = seeds.district(code)
    except KeyError:
        abort(404, description=f"Không có huyện mã {code} / no district with code {code}")
    lang = current_lang()
    store = get_store()
    parts = maps.district_map(store, code, lang)
    # Link to the parcel information sheet only once the app serves it.
    parts.config["parcel_sheet"] = any(r.rule.startswith("/parcels/")
                                       for r in current_app.url_map.iter_rules())
    cat = seeds.land_use_catalogue()
    comp = maps.composition("district")
    legend = []
    for c in parts.config["legend"]:
        lu = cat.get(c)
        legend.append({"code": c, "color": lu.color,
                       "name": lu.name_en if lang == "en" else lu.name_vi})
    opacity = next((s for s in comp["layers"] if s.get("opacity_slider")), None)
    plan = store.published(code, "plan")
    status = workflow.district_status(store, code)
    shown = {s["id"]: s for s in maps.composition("province")["plan_statuses"]}.get(
        status.public_status, {"color": "#999999", "label": {"vi": "", "en": ""}})
    decision = status.decision if status.public_status == "approved" else None
    plan_status = {"id": status.public_status, "color": shown["color"],
                   "label": maps.text(shown["label"], lang),
                   "decision": decision,
                   "decision_pdf": f"/planner/decisions/{decision.pdf_sha256}.pdf"
                   if decision and decision.pdf_sha256 else None,
                   # "What the adjustment changed": the published plan against the one
                   # it replaced (`default_pair`), once there is one.
                   "compare_url": f"/districts/{code}/plan/compare"
                   if default_pair(store, code, "plan") is not None else None}
    communes = sorted(search.commune_names(store, code).items(),
                      key=lambda kv: (kv[1], kv[0]))
    return render_template(
        "district.html", d=d, parts=parts, legend=legend, communes=communes,
        legend_title=maps.text(comp["legend"]["title"], lang),
        opacity=opacity, land_use=maps.land_use_table(), strings=js_strings(),
        status=status, plan_status=plan_status,
        consultation=workflow.CONSULTATION_LABEL if plan is not None
        and workflow.is_consultation(plan) else None)
