"""JSON API: /api/lookup (contract), /api/search and /healthz."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user

from gisportal.accounts.roles import can
from gisportal.base.errors import UsageError
from gisportal.services import lookup as lk
from gisportal.services import search as sr
from gisportal.web import get_home, get_store, i18n

bp = Blueprint("api", __name__)

# The district page says why a point look-up found no parcel (``reason`` in the answer).
i18n.add_strings({"no_parcel": lk.NO_PARCEL, "outside_districts": lk.OUTSIDE_DISTRICTS})


@bp.get("/healthz")
def healthz():
    """200 when this node can serve (store, file areas, scratch answer), else 503; for
    load balancers (`gisportal.services.health`)."""
    from gisportal.services import health

    result = health.check(get_home())
    response = jsonify(result.to_dict())
    response.status_code = 200 if result.ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/units")
def api_units():
    """Today's communes, wards and special zone as GeoJSON (WGS 84): the province page
    draws them after loading (too big to embed). ``?lang=en`` for English level names.
    Cached per set of published boundary versions; gzip when accepted; ETag."""
    from gisportal.web import maps

    lang = request.args.get("lang", "vi")
    if lang not in ("vi", "en"):
        raise UsageError(f"lang={lang[:20]!r} is not a language of the portal", where="lang",
                         fix="use lang=vi or lang=en",
                         what_vi="ngôn ngữ này không có trên cổng thông tin",
                         fix_vi="chọn tiếng Việt (vi) hoặc tiếng Anh (en)")
    doc = maps.units_geojson(get_store(), lang)
    etag = f"units-{doc.etag}"
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    elif request.accept_encodings["gzip"] > 0:
        response = Response(doc.gzipped, mimetype="application/geo+json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(doc.body, mimetype="application/geo+json")
    response.set_etag(etag)
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/api/lookup")
def api_lookup():
    """By ?lat=&lon=, ?x=&y= (VN-2000, X = northing) or ?district=&sheet=&parcel=[&commune=].

    A point with no parcel (or outside every district) is a 200 with ``"parcel": null``
    and a ``reason``; only a sheet/parcel key that names no parcel is a 404.

    Source attributes: the public gets only those of the allow-list
    (`gisportal.outputs.privacy`: the columns a planner marked public); a caller who may
    ``view_personal`` in the parcel's district — a planner of that district or an admin,
    by session or API token — gets all of them, personal ones included.
    """
    answer = _lookup(request.args, public=True)
    district = (answer.get("parcel") or {}).get("district")
    if district and can(current_user, "view_personal", district):
        # Again with personal fields, now that the district is known (a point look-up
        # only learns it from the answer); staff only, so residents pay one look-up.
        answer = _lookup({**request.args, "district": district}, public=False)
    response = jsonify(answer)
    response.vary.add("Authorization")
    if current_user.is_authenticated:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def _lookup(a, *, public: bool) -> dict:
    store = get_store()
    if "sheet" in a or "parcel" in a:
        if not (a.get("district") and a.get("sheet") and a.get("parcel")):
            raise UsageError("district, sheet and parcel go together",
                             where="query string", fix="e.g. ?district=678&sheet=12&parcel=34",
                             what_vi="cần đủ huyện, số tờ và số thửa",
                             fix_vi="cho cả ba, ví dụ huyện 678, tờ 12, thửa 34")
        return lk.lookup_key(store, a["district"], a["sheet"], a["parcel"],
                             a.get("commune") or None, public=public)
    if "lat" in a or "lon" in a:
        return lk.lookup_lonlat(store, a.get("lat", ""), a.get("lon", ""),
                                a.get("district") or None, public=public)
    if "x" in a or "y" in a:
        return lk.lookup_xy(store, a.get("x", ""), a.get("y", ""),
                            a.get("district") or None, zone=a.get("zone") or None,
                            public=public)
    raise UsageError("nothing to look up", where="query string",
                     fix="use ?lat=&lon=, ?x=&y=[&zone=9218] (VN-2000, X = northing) or "
                         "?district=&sheet=&parcel=",
                     what_vi="chưa có gì để tra cứu",
                     fix_vi="cho vĩ độ và kinh độ, tọa độ VN-2000 X (bắc) và Y (đông), hoặc "
                            "huyện, số tờ và số thửa")


@bp.get("/api/search")
def api_search():
    """The search box: ?q= (place, sheet/parcel, lat, lon or VN-2000 X Y) [&district=];
    or the commune picker's ?sheet=&parcel=[&commune=]&district= (its form, sent
    without the page's script), read as the search box reads "sheet/parcel commune"."""
    a = request.args
    q = a.get("q", "")
    if not q and a.get("sheet") and a.get("parcel"):
        q = f"{a['sheet']}/{a['parcel']} {a.get('commune', '')}".strip()
    return jsonify(sr.search(get_store(), q, a.get("district") or None))
