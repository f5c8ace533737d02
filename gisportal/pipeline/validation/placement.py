"""CRS-OUTSIDE-PROVINCE for features: where each one lies, judged by its extent.

Reading refuses a layer that lies wholly outside the province
(:func:`gisportal.base.placement.outside_error`); what is left are layers that overlap it
but hold features elsewhere — a feature with wrong coordinates, or a region or
country outline that holds the whole province. Each is judged by its extent, not by
one representative point: a country outline's point lies hundreds of km from the
province it covers, and "410 km away" is the wrong answer for it. A feature wholly
outside is told the province it lies in and the distance; a feature reaching beyond
the province into others, or a layer holding the whole province, is told what it
covers.
"""

from __future__ import annotations

import numpy as np
import shapely

from gisportal.base import crs as vncrs
from gisportal.base import placement
from gisportal.base.findings import Finding
from gisportal.pipeline.normalise import NormalisedLayer, feature_keys, locate_rows
from gisportal.pipeline.validation.context import ValidationContext

__all__ = ["check_placement"]

#: At most this many province names in a "covers N provinces" message.
_NAMES_MAX = 5


def _advice(norm: NormalisedLayer, ctx: ValidationContext) -> tuple[str, str]:
    """What to upload instead of data reaching over several provinces."""
    if ctx.district:
        if norm.model.kind == "boundary":
            return (f"Chỉ tải lên các đơn vị của huyện {ctx.district}.",
                    f"Upload only district {ctx.district}'s units.")
        return (f"Chỉ tải lên dữ liệu của huyện {ctx.district}.",
                f"Upload only district {ctx.district}'s data.")
    return (f"Chỉ tải lên dữ liệu của {placement.served_name('vi')}.",
            f"Upload only data of {placement.served_name('en')}.")


def _covering(provinces, subject: tuple[str, str]) -> tuple[str, str]:
    names = [p.name for p in provinces]
    shown = ", ".join(names[:_NAMES_MAX]) + (", …" if len(names) > _NAMES_MAX else "")
    return (f"{subject[0]} phủ {len(names)} tỉnh, thành phố ({shown}), không phải dữ liệu của "
            f"một huyện", f"{subject[1]} covers {len(names)} provinces ({shown}), not one "
            "district's data")


def check_placement(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """CRS-OUTSIDE-PROVINCE for the layer (when it holds the whole province) and for
    each feature that is not inside the province's extent."""
    geoms = norm.frame.geometry.values
    idx = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    if len(idx) == 0:
        return []
    store = vncrs.store_crs()
    served = placement.province_box()
    layer_box = placement.box_lonlat(shapely.total_bounds(geoms[idx]), store)
    if layer_box is not None and layer_box.within(served):
        return []  # the usual case: the whole layer is inside, nothing to test one by one
    boxes = placement.boxes_lonlat(shapely.bounds(geoms[idx]), store)
    valid = ~np.isnan(boxes).any(axis=1)
    inside = valid & (boxes[:, 0] >= served.min_lon) & (boxes[:, 2] <= served.max_lon) & (
        boxes[:, 1] >= served.min_lat) & (boxes[:, 3] <= served.max_lat)
    apart = ~valid | (boxes[:, 2] < served.min_lon) | (boxes[:, 0] > served.max_lon) | (
        boxes[:, 3] < served.min_lat) | (boxes[:, 1] > served.max_lat)
    advice_vi, advice_en = _advice(norm, ctx)
    out: list[Finding] = []
    whole = layer_box is not None and layer_box.contains(served)
    if whole:
        covered = placement.provinces_covered(geoms[idx])
        where_vi, where_en = _covering(covered, ("Lớp dữ liệu", "The layer"))
        out.append(Finding("CRS-OUTSIDE-PROVINCE", params={
            "where_vi": where_vi, "where_en": where_en, "advice_vi": advice_vi,
            "advice_en": advice_en, "covers": len(covered),
            "provinces": [p.name for p in covered], "distance_km": None, "province": None}))
    rows: list[int] = []
    params: list[dict] = []
    for k in np.flatnonzero(~inside):
        if apart[k]:
            if not valid[k]:
                rows.append(int(idx[k]))
                params.append({"where_vi": "Tọa độ của đối tượng không phải vị trí hợp lệ",
                               "where_en": "The feature's coordinates are no valid position",
                               "advice_vi": "Kiểm tra tọa độ của đối tượng.",
                               "advice_en": "Check the feature's coordinates.",
                               "distance_km": None, "province": None, "covers": 0})
                continue
            far = placement.where_is(placement.Box(*map(float, boxes[k])))
            vi, en = placement.describe_where(far)
            params.append({
                "where_vi": f"Đối tượng nằm {vi}", "where_en": f"The feature lies {en}",
                "advice_vi": f"Cổng này phục vụ {placement.served_name('vi')}: kiểm tra tọa độ "
                             "của đối tượng hoặc bỏ nó khỏi tệp.",
                "advice_en": f"This portal serves {placement.served_name('en')}: check the "
                             "feature's coordinates, or leave it out of the file.",
                "distance_km": round(far.served_km, 1), "province": far.province.name,
                "covers": 0})
            rows.append(int(idx[k]))
            continue
        if whole:
            continue  # reaching beyond the province is what the layer finding says
        covered = placement.provinces_covered(geoms[idx[k]:idx[k] + 1])
        if len(covered) >= 2:
            vi, en = _covering(covered, ("Đối tượng", "The feature"))
            params.append({"where_vi": vi, "where_en": en, "advice_vi": advice_vi,
                           "advice_en": advice_en, "distance_km": None, "province": None,
                           "covers": len(covered), "provinces": [p.name for p in covered]})
        else:
            box = placement.Box(*map(float, boxes[k]))
            beyond, far = _beyond(box, served)
            km = placement.km_text(beyond)
            params.append({
                "where_vi": f"Đối tượng vượt ra ngoài {placement.served_name('vi')} tới {km} km "
                            f"(sang {far.province.type} {far.province.name})",
                "where_en": f"The feature reaches up to {km} km beyond "
                            f"{placement.served_name('en')} (into {far.province.name})",
                "advice_vi": "Kiểm tra tọa độ và hình dạng của đối tượng.",
                "advice_en": "Check the feature's coordinates and shape.",
                "distance_km": round(beyond, 1), "province": far.province.name, "covers": 0})
        rows.append(int(idx[k]))
    if rows:
        arr = np.asarray(rows)
        keys = feature_keys(norm.frame, norm.model, arr)
        locs = locate_rows(geoms[arr])
        src = norm.frame["src_row"].to_numpy()[arr]
        out += [Finding("CRS-OUTSIDE-PROVINCE", row=int(r), key=kk, location=loc, params=p)
                for r, kk, loc, p in zip(src, keys, locs, params, strict=True)]
    return out


def _beyond(box: placement.Box, served: placement.Box) -> tuple[float, placement.Where]:
    """How far (km) the box's farthest corner lies beyond the served box, and where."""
    corners = [(box.min_lon, box.min_lat), (box.min_lon, box.max_lat),
               (box.max_lon, box.min_lat), (box.max_lon, box.max_lat)]
    best = max(corners, key=lambda c: placement.Box(c[0], c[1], c[0], c[1]).distance_km(served))
    corner = placement.Box(best[0], best[1], best[0], best[1])
    return corner.distance_km(served), placement.where_is(corner)
