"""Comparing two versions of a layer: which features were added, removed, reshaped,
renumbered, or had their (planned) land use changed, and the m² per land-use code.
A planning project's lots (``zoning_lots``) are compared the same way, their function
as the use, and a lot whose planning indicators changed (building density, floors,
floor-area ratio: what may be built on it) is ``indicators_changed``, with the values
before and after.

Features are paired by key first — (commune, sheet, parcel) for parcels, the zone id
for plan zones when the file had one — and what is left by geometry: an STRtree
proposes candidates and the intersection over union decides (see `match`). Every
step is vectorised and nothing compares all pairs, so two versions of 200 000 parcels
compare in about the time it takes to read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisportal.base.errors import UsageError
from gisportal.base.models import LayerModel, layer_model
from gisportal.outputs import privacy
from gisportal.outputs.compare.areas import area_table, canonical_codes
from gisportal.outputs.compare.match import (
    areas,
    geometry_pairs,
    key_pairs,
    make_valid,
    overlap,
    same_shape,
)
from gisportal.outputs.compare.pairs import check_pair
from gisportal.outputs.compare.result import TYPES, Comparison, flags_of, types_of
from gisportal.store.base import Store, Version

__all__ = ["DEFAULT_IOU_THRESHOLD", "INDICATOR_FIELDS", "VERTEX_TOLERANCE_M",
           "compare_versions"]

#: Two features whose intersection over union is above this are the same feature.
#: Above 0.5 a feature of a clean layer can have at most one such partner, and a zone
#: cut in two unequal parts stays matched with its larger part.
DEFAULT_IOU_THRESHOLD = 0.5
#: Vertices closer than this (metres) are the same vertex: far below survey precision,
#: so it only absorbs the rounding of a re-export or a CRS round trip.
VERTEX_TOLERANCE_M = 0.001
#: The land-use field compared, when the layer model has it.
USE_FIELD = "land_use"
#: The use field of kinds that name it otherwise: a planning project's lots have a
#: function (QCVN 01:2021/BXD), compared as a plan zone's land use is.
USE_FIELDS = {"zoning_lots": "function"}
#: The planning indicators compared, of kinds that have them: what a lot allows to be
#: built. Area and population are not among them: the area is measured from the shape
#: (a change of it is a reshape), the population follows from the rest.
INDICATOR_FIELDS: dict[str, tuple[str, ...]] = {
    "zoning_lots": ("density_pct", "floors_min", "floors_max", "far")}
#: Two indicator values closer than this are the same (a table's 2,4 read twice).
INDICATOR_TOLERANCE = 1e-9


def compare_versions(store: Store, from_id: int, to_id: int, *,
                     area_tolerance_m2: float | None = None,
                     iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                     district: str | None = None, kind: str | None = None,
                     project: str | None = None) -> Comparison:
    """Compare version `from_id` (before) with version `to_id` (after) of one layer.

    Any status may be compared (planners compare drafts); the public web pages check
    the status themselves. Comparing a version with itself finds everything unchanged.

    Parameters
    ----------
    store
        The store holding both versions.
    from_id, to_id
        Version ids; both must be layers of the same district and kind.
    area_tolerance_m2
        A matched feature is *reshaped* when the area of the symmetric difference of
        its two shapes is above this. Default: the layer model's
        ``area_tolerance_m2`` (1 m² for parcels, 10 m² for plan zones), the tolerance
        validation allows between declared and computed areas.
    iou_threshold
        Features left unmatched by key are paired by geometry when their intersection
        over union is above this (0 ≤ threshold < 1).
    district, kind, project
        When given, both versions must belong to them (`NotFoundError` otherwise); a
        planning project's layers are named by `project` (and their `kind`).

    Returns
    -------
    Comparison
        Counts per change type, m² per land-use code (per function for a project's
        lots) and the changed features.

    Raises
    ------
    NotFoundError
        An unknown id, or a version not of `district`/`kind`.
    UsageError
        Versions of different layers; a layer of lines (red lines have no area to pair
        and measure by: compare the project's lots); a parameter out of range.
    """
    before, after = check_pair(store, from_id, to_id, district=district, kind=kind,
                               project=project)
    model = layer_model(before.kind)
    if model.geometry != "polygon":
        raise UsageError(f"a {before.kind} layer holds lines, which have no area to pair "
                         "and measure by", where="kind",
                         fix="compare the versions of the project's lots (zoning_lots): "
                             "the road lots are the red lines' edges",
                         code="COMPARE-LINES")
    tolerance = _tolerance(area_tolerance_m2, model)
    threshold = _threshold(iou_threshold)
    # Comparisons are public: only fields both versions' allow-lists let out are read
    # (`gisportal.outputs.privacy`; the key fields and the land use always are).
    public = [privacy.public_columns(v) for v in (before, after)]
    use_field = USE_FIELDS.get(before.kind, USE_FIELD)
    use = use_field if use_field in model.field_names and all(
        p.allows(use_field) for p in public) else None
    indicators = tuple(f for f in INDICATOR_FIELDS.get(before.kind, ())
                       if f in model.field_names and all(p.allows(f) for p in public))
    generated = _generated_fields(model, before) | _generated_fields(model, after)
    fields = tuple(f for f in model.key
                   if f not in generated and all(p.allows(f) for p in public))
    old = _read(store, before, model, fields, use, indicators)
    new = _read(store, after, model, fields, use, indicators)
    # A key field empty on either side (a file with no commune column) cannot pair.
    key = tuple(f for f in fields if old[f].notna().any() and new[f].notna().any())

    g_old, g_new = _geometries(old, before), _geometries(new, after)
    a_old, a_new = areas(g_old), areas(g_new)
    c_old = _codes(old, use, before.kind)
    c_new = _codes(new, use, before.kind)

    # 1. Pairs by key. A pair whose shapes have next to nothing in common is not one
    #    feature (its number was given to another parcel): it goes to the geometry step.
    kb, ka = key_pairs(old[list(key)], new[list(key)])
    same = same_shape(g_old[kb], g_new[ka], VERTEX_TOLERANCE_M)
    k_inter, k_iou, k_symdiff = (np.zeros(len(kb)), same.astype(float), np.zeros(len(kb)))
    k_inter[same] = np.minimum(a_old[kb[same]], a_new[ka[same]])
    if (~same).any():
        k_inter[~same], k_iou[~same], k_symdiff[~same] = overlap(g_old[kb[~same]],
                                                                g_new[ka[~same]])
    keep = (k_symdiff <= tolerance) | (k_inter > tolerance)
    kb, ka, k_iou, k_symdiff = kb[keep], ka[keep], k_iou[keep], k_symdiff[keep]

    # 2. Pairs by geometry among the features left.
    free_old = np.ones(len(g_old), dtype=bool)
    free_new = np.ones(len(g_new), dtype=bool)
    free_old[kb] = False
    free_new[ka] = False
    rest_old, rest_new = np.flatnonzero(free_old), np.flatnonzero(free_new)
    gb, ga, g_symdiff, g_iou = geometry_pairs(g_old[rest_old], g_new[rest_new], threshold,
                                              VERTEX_TOLERANCE_M)
    gb, ga = rest_old[gb], rest_new[ga]

    pb = np.concatenate([kb, gb])
    pa = np.concatenate([ka, ga])
    by_geometry = np.concatenate([np.zeros(len(kb), bool), np.ones(len(gb), bool)])
    symdiff = np.concatenate([k_symdiff, g_symdiff])
    iou = np.concatenate([k_iou, g_iou])

    # 3. What changed in each pair.
    reshaped = symdiff > tolerance
    use_changed = _differ(c_old[pb], c_new[pa])
    renumbered = by_geometry & _keys_differ(old, new, key, pb, pa)
    which = _indicators_differ(old, new, indicators, pb, pa)
    found = {"use_changed": use_changed, "indicators_changed": which.any(axis=1),
             "reshaped": reshaped, "renumbered": renumbered}
    has_indicators = bool(indicators)
    flags = {f: found[f] for f in flags_of(has_indicators)}
    kind_of, changes = _classify(flags)

    removed = np.setdiff1d(np.flatnonzero(free_old), gb)
    added = np.setdiff1d(np.flatnonzero(free_new), ga)
    counts = {t: int(np.count_nonzero(kind_of == t)) for t in types_of(has_indicators)}
    counts["added"], counts["removed"] = len(added), len(removed)

    changed = kind_of != "unchanged"
    n_old, n_new = len(removed), len(added)
    rows_old = np.concatenate([pb[changed], removed, np.full(n_new, -1)]).astype(np.intp)
    rows_new = np.concatenate([pa[changed], np.full(n_old, -1), added]).astype(np.intp)
    unmatched = np.array(["removed"] * n_old + ["added"] * n_new, dtype=object)
    types = np.concatenate([kind_of[changed], unmatched])
    features = _features(
        store.crs, old, new, fields, rows_old, rows_new, types,
        changes=np.concatenate([changes[changed], unmatched]),
        by_geometry=np.concatenate([by_geometry[changed], np.zeros(n_old + n_new, bool)]),
        iou=np.concatenate([iou[changed], np.full(n_old + n_new, np.nan)]),
        geoms=(g_old, g_new), areas=(a_old, a_new), codes=(c_old, c_new),
        indicators=(model, indicators,
                    np.concatenate([_names(which[changed], indicators),
                                    np.full(n_old + n_new, "", dtype=object)])))
    return Comparison(
        before=before, after=after, key=key, key_fields=fields,
        area_tolerance_m2=tolerance, iou_threshold=threshold, counts=counts,
        flags={f: int(np.count_nonzero(flags[f])) for f in flags},
        matched={"key": int(len(kb)), "geometry": int(len(gb))},
        areas=area_table(c_old, a_old, c_new, a_new, before.kind), features=features,
        indicator_fields=indicators)


# -- parameters and reading --------------------------------------------------------------


def _tolerance(value: float | None, model: LayerModel) -> float:
    if value is None:
        return model.threshold("area_tolerance_m2")
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise UsageError(f"area tolerance {value!r} is not a number of m² ≥ 0",
                         where="area_tolerance_m2",
                         fix=f"e.g. {model.threshold('area_tolerance_m2'):g}")
    return number


def _threshold(value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0 <= number < 1:
        raise UsageError(f"IoU threshold {value!r} is not between 0 and 1 (excluded)",
                         where="iou_threshold", fix=f"e.g. {DEFAULT_IOU_THRESHOLD}")
    return number


def _generated_fields(model: LayerModel, version: Version) -> set[str]:
    """Key fields that normalise filled from the row number because the file had none.

    Such a "zone id" identifies a row of one file, not a zone: pairing by it would pair
    unrelated zones, so those layers are compared by geometry only.
    """
    mapped = ((version.meta.get("read") or {}).get("fields") or {}).get("mapped")
    if not isinstance(mapped, dict):
        return set()
    return {f.name for f in model.fields if f.default == "row" and f.name not in mapped}


def _read(store: Store, version: Version, model: LayerModel, fields: Sequence[str],
          use: str | None, indicators: Sequence[str] = ()) -> gpd.GeoDataFrame:
    """The key fields, the land use, the planning indicators and the geometry of a
    version (nothing else: no personal field is ever read), key fields in their model
    type, indicators as numbers (missing where empty)."""
    wanted = [*fields, *([use] if use else []), *indicators]
    try:
        frame = store.read(version.id, columns=wanted)
    except UsageError:  # a layer stored without some of them: read what it has
        present = set(store.query_bbox(version.id, (0.0, 0.0, 0.0, 0.0)).columns)
        frame = store.read(version.id, columns=[c for c in wanted if c in present])
    frame = frame.reset_index(drop=True)
    for name in wanted:
        if name not in frame.columns:
            frame[name] = pd.Series(pd.NA, index=frame.index, dtype="string")
    for name in fields:
        if model.field(name).type == "int":
            number = pd.to_numeric(frame[name], errors="coerce").astype("Float64")
            frame[name] = number.where(number == number.round()).astype("Int64")
        else:
            frame[name] = frame[name].astype("string").str.strip()
    for name in indicators:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Float64")
    return frame


def _geometries(frame: gpd.GeoDataFrame, version: Version) -> np.ndarray:
    """The shapes as an object array, ready to measure.

    One-part multipolygons become polygons, because a layer holding any multipolygon
    is stored all multipolygon and the same parcel must compare equal whichever way its
    version was stored. A version with validation errors may hold invalid shapes (a
    bow-tie measures 0 m²): those are made valid first. Versions without errors passed
    the validity check, so the cost of checking 200 000 shapes again is spared.
    """
    geoms = np.asarray(frame.geometry.values, dtype=object)
    single = (shapely.get_type_id(geoms) == 6) & (shapely.get_num_geometries(geoms) == 1)
    if single.any():
        geoms = geoms.copy()
        geoms[single] = shapely.get_geometry(geoms[single], 0)
    return make_valid(geoms) if version.has_errors else geoms


def _codes(frame: pd.DataFrame, use: str | None, kind: str) -> np.ndarray:
    if use is None:
        return np.full(len(frame), None, dtype=object)
    return canonical_codes(frame[use], kind)


# -- classification ----------------------------------------------------------------------


def _differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise inequality of two object arrays where None equals None."""
    missing = "\0"  # cannot occur in a tidied code
    return (pd.Series(a, dtype=object).fillna(missing).to_numpy()
            != pd.Series(b, dtype=object).fillna(missing).to_numpy())


def _keys_differ(old: pd.DataFrame, new: pd.DataFrame, key: Sequence[str], pb: np.ndarray,
                 pa: np.ndarray) -> np.ndarray:
    out = np.zeros(len(pb), dtype=bool)
    for name in key:
        x = old[name].iloc[pb].reset_index(drop=True)
        y = new[name].iloc[pa].reset_index(drop=True)
        equal = (x == y).fillna(False) | (x.isna() & y.isna())
        out |= ~equal.to_numpy(dtype=bool)
    return out


def _indicators_differ(old: pd.DataFrame, new: pd.DataFrame, indicators: Sequence[str],
                       pb: np.ndarray, pa: np.ndarray) -> np.ndarray:
    """Pairs × indicators: whether each indicator differs in each pair. Empty on both
    sides is the same; empty on one side (a floor count added or dropped) differs."""
    out = np.zeros((len(pb), len(indicators)), dtype=bool)
    for j, name in enumerate(indicators):
        x = old[name].to_numpy(dtype=float, na_value=np.nan)[pb]
        y = new[name].to_numpy(dtype=float, na_value=np.nan)[pa]
        same = (np.abs(x - y) <= INDICATOR_TOLERANCE) | (np.isnan(x) & np.isnan(y))
        out[:, j] = ~same
    return out


def _names(which: np.ndarray, indicators: Sequence[str]) -> np.ndarray:
    """Per row of `which` (rows × indicators), the changed indicators joined by ``+``."""
    return np.array(["+".join(n for n, hit in zip(indicators, row, strict=True) if hit)
                     for row in which.tolist()], dtype=object)


def _classify(flags: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Main type (first flag in the given order — `FLAGS` order —, else unchanged) and
    the flags joined by ``+``, for each pair; at most 2⁴ combinations, so looked up
    rather than built per pair."""
    order = list(flags)
    n = len(next(iter(flags.values())))
    combo = np.zeros(n, dtype=np.intp)
    for bit, name in enumerate(order):
        combo |= flags[name].astype(np.intp) << bit
    names = [[f for bit, f in enumerate(order) if c >> bit & 1] for c in range(1 << len(order))]
    main = np.array([n[0] if n else "unchanged" for n in names], dtype=object)
    joined = np.array(["+".join(n) for n in names], dtype=object)
    return main[combo], joined[combo]


def _take(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """``values`` at positions `rows`, missing where a row is -1 (no such side)."""
    return pd.Series(values.array.take(rows, allow_fill=True))


def _pick(values: np.ndarray, rows: np.ndarray, fill: object) -> np.ndarray:
    out = np.full(len(rows), fill, dtype=values.dtype if fill is not None else object)
    has = rows >= 0
    out[has] = values[rows[has]]
    return out


def _features(crs: str, old: pd.DataFrame, new: pd.DataFrame, fields: Sequence[str],
              rows_old: np.ndarray, rows_new: np.ndarray, types: np.ndarray, *,
              changes: np.ndarray, by_geometry: np.ndarray, iou: np.ndarray,
              geoms: tuple[np.ndarray, np.ndarray], areas: tuple[np.ndarray, np.ndarray],
              codes: tuple[np.ndarray, np.ndarray],
              indicators: tuple[LayerModel, Sequence[str], np.ndarray]) -> gpd.GeoDataFrame:
    """The changed features as a frame, ordered by type then position in the versions.

    `indicators`: the model, the indicator fields compared and, per feature, the names
    of those that changed (joined by ``+``).
    """
    rank = {t: i for i, t in enumerate(TYPES)}
    order = np.lexsort((rows_new, rows_old, np.array([rank[t] for t in types], dtype=int)))
    rows_old, rows_new, types = rows_old[order], rows_new[order], types[order]
    area_old = _pick(areas[0], rows_old, np.nan)
    area_new = _pick(areas[1], rows_new, np.nan)
    data: dict[str, object] = {"type": types, "changes": changes[order]}
    matched = (rows_old >= 0) & (rows_new >= 0)
    data["matched_by"] = np.where(matched, np.where(by_geometry[order], "geometry", "key"),
                                  None).astype(object)
    for name in fields:
        data[f"{name}_before"] = _take(old[name], rows_old)
        data[f"{name}_after"] = _take(new[name], rows_new)
    data["code_before"] = _pick(codes[0], rows_old, None)
    data["code_after"] = _pick(codes[1], rows_new, None)
    data["area_before_m2"] = area_old
    data["area_after_m2"] = area_new
    data["area_delta_m2"] = np.nan_to_num(area_new) - np.nan_to_num(area_old)
    data["iou"] = iou[order]
    model, names, changed = indicators
    for name in names:
        whole = model.field(name).type == "int"  # floors stay whole numbers
        for side, frame, rows in (("before", old, rows_old), ("after", new, rows_new)):
            values = _take(frame[name], rows)
            data[f"{name}_{side}"] = values.round().astype("Int64") if whole else values
    if names:
        data["indicators"] = changed[order]
    before = _pick(geoms[0], rows_old, None)
    after = _pick(geoms[1], rows_new, None)
    data["geometry_before"] = before
    shown = np.where(rows_new >= 0, after, before)
    return gpd.GeoDataFrame(pd.DataFrame(data), geometry=gpd.GeoSeries(shown, crs=crs),
                            crs=crs)
