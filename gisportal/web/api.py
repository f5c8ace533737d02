"""JSON API: /api/lookup (contract), /api/search and /healthz."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from gisportal import lookup as lk
from gisportal import search as sr
from gisportal.errors import UsageError
from gisportal.web import get_store

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/api/lookup")
def api_lookup():
    """By ?lat=&lon=, ?x=&y= (VN-2000, X = northing) or ?district=&sheet=&parcel=[&commune=]."""
    a = request.args
    store = get_store()
    if "sheet" in a or "parcel" in a:
        if not (a.get("district") and a.get("sheet") and a.get("parcel")):
            raise UsageError("district, sheet and parcel go together",
                             where="query string", fix="e.g. ?district=678&sheet=12&parcel=34")
        return jsonify(lk.lookup_key(store, a["district"], a["sheet"], a["parcel"],
                                     a.get("commune") or None))
    if "lat" in a or "lon" in a:
        return jsonify(lk.lookup_lonlat(store, a.get("lat", ""), a.get("lon", ""),
                                        a.get("district") or None))
    if "x" in a or "y" in a:
        return jsonify(lk.lookup_xy(store, a.get("x", ""), a.get("y", ""),
                                    a.get("district") or None))
    raise UsageError("nothing to look up", where="query string",
                     fix="use ?lat=&lon=, ?x=&y= (VN-2000, X = northing) or "
                         "?district=&sheet=&parcel=")


@bp.get("/api/search")
def api_search():
    """The search box: ?q= (place, sheet/parcel, lat, lon or VN-2000 X Y) [&district=]."""
    a = request.args
    return jsonify(sr.search(get_store(), a.get("q", ""), a.get("district") or None))
