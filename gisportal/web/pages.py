"""HTML pages. For now a plain province index and district summary; the portal issue
replaces them with the Leaflet maps."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from gisportal import seeds
from gisportal.web import get_store

bp = Blueprint("pages", __name__)

STATUS_LABELS = {
    "approved": ("Đã phê duyệt", "Approved"),
    "under_appraisal": ("Đang thẩm định", "Under appraisal"),
    "digitised": ("Đã số hóa địa chính", "Cadastre digitised"),
    "in_correction": ("Đang chỉnh lý", "In correction"),
}


@bp.get("/")
def index():
    store = get_store()
    status = seeds.district_status()
    rows = []
    for d in seeds.districts():
        st = status.get(d.code)
        portal = st.portal_status if st else "under_appraisal"
        rows.append({"code": d.code, "name": d.name, "status": portal,
                     "status_label": STATUS_LABELS.get(portal, (portal, portal)),
                     "layers": {k: store.published(d.code, k) for k in ("parcels", "plan",
                                                                        "boundary")}})
    return render_template("index.html", province=seeds.province(), rows=rows)


@bp.get("/districts/<code>")
def district(code: str):
    try:
        d = seeds.district(code)
    except KeyError:
        abort(404, description=f"Không có huyện mã {code} / no district with code {code}")
    store = get_store()
    layers = {k: store.published(code, k) for k in ("parcels", "plan", "boundary")}
    return render_template("district.html", d=d, layers=layers,
                           status=seeds.district_status().get(code))
