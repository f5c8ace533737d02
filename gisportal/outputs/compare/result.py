"""The result of comparing two versions, and its JSON, GeoJSON and text forms.

A `Comparison` keeps only what changed (added, removed, reshaped, use changed,
renumbered features; for a planning project's lots also those whose indicators
changed) plus counts and the m² table, so it stays small for a typical
plan adjustment and can be cached. Web output is in WGS 84; the frame itself stays in
the store CRS (VN-2000 TM-3, metres), where every area was computed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.outputs.compare.areas import ZONING_KINDS
from gisportal.outputs.display import display_geometries
from gisportal.store.base import Version

__all__ = ["TYPES", "FLAGS", "TYPE_COLORS", "Comparison", "flags_of", "types_of"]

#: Main type of a feature, in the order summaries list them.
TYPES: tuple[str, ...] = ("added", "removed", "use_changed", "indicators_changed",
                          "reshaped", "renumbered", "unchanged")
#: What can change in a matched feature. A feature carries every flag that applies;
#: its main type is the first that applies in this order of importance to a resident:
#: a change of (planned) use, then of what may be built (a lot's density, floors or
#: floor-area ratio), then of shape, then of number.
FLAGS: tuple[str, ...] = ("use_changed", "indicators_changed", "reshaped", "renumbered")
#: Types and flags only some kinds have: a layer without planning indicators (parcels,
#: plan zones) never counts ``indicators_changed``, so its summary does not list it.
INDICATOR_ONLY: frozenset[str] = frozenset({"indicators_changed"})
#: Map colour of each main type (colour-blind safe where it matters: red/blue/orange).
TYPE_COLORS: dict[str, str] = {"added": "#1a9850", "removed": "#d73027",
                               "use_changed": "#7b3294", "indicators_changed": "#e7298a",
                               "reshaped": "#f08c00", "renumbered": "#2c7bb6",
                               "unchanged": "#bdbdbd"}


def types_of(indicators: bool) -> tuple[str, ...]:
    """The main types a comparison counts: `TYPES`, less ``indicators_changed`` for a
    layer without planning indicators."""
    return tuple(t for t in TYPES if indicators or t not in INDICATOR_ONLY)


def flags_of(indicators: bool) -> tuple[str, ...]:
    """The flags a comparison counts (see `types_of`)."""
    return tuple(f for f in FLAGS if indicators or f not in INDICATOR_ONLY)

#: Decimal places of WGS 84 coordinates in web output (1e-7° ≈ 1 cm).
LONLAT_DIGITS = 7


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _round(value: Any, digits: int = 2) -> float | None:
    value = _plain(value)
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def version_info(v: Version) -> dict[str, Any]:
    """What a summary says about a version (no file names: the summary is public)."""
    decision = v.meta.get("decision") if isinstance(v.meta.get("decision"), dict) else None
    return {"id": v.id, "status": v.status, "created_at": v.created_at,
            "published_at": v.published_at, "feature_count": v.feature_count,
            "decision": None if not decision else {
                "number": decision.get("number"), "date": decision.get("date"),
                "authority": decision.get("authority")}}


@dataclass
class Comparison:
    """What changed from version `before` to version `after` of one layer.

    Attributes
    ----------
    before, after
        The two versions (the "from" and the "to").
    key
        Key fields the features were matched by (empty: by geometry only).
    key_fields
        Key fields reported for each feature: the layer model's key without fields
        generated from row numbers (a plan file without zone ids).
    area_tolerance_m2, iou_threshold
        The parameters used (see `gisportal.outputs.compare.compare_versions`).
    counts
        Features per main type (`types_of`: `TYPES`, ``indicators_changed`` only for
        a layer with planning indicators), unchanged included; they sum to the number
        of features of `before` plus those added.
    flags
        Features per change (`flags_of`): a reshaped feature whose use changed counts
        in both.
    matched
        ``{"key": pairs matched by key, "geometry": pairs matched by geometry}``.
    areas
        m² per land-use code (see `gisportal.outputs.compare.areas.area_table`).
    features
        The changed features only, in the store CRS: ``type`` (main type), ``changes``
        (flags joined by ``+``, e.g. ``"reshaped+use_changed"``; the type for added and
        removed ones), ``matched_by`` (``key``, ``geometry`` or None), the key fields
        before and after (``<field>_before``, ``<field>_after``), ``code_before``,
        ``code_after``, ``area_before_m2``, ``area_after_m2``, ``area_delta_m2``,
        ``iou``; ``geometry`` (after, or before for a removed feature) and
        ``geometry_before`` (None for an added feature). With `indicator_fields`, also
        each indicator before and after (``<field>_before``, ``<field>_after``) and
        ``indicators``: the names of those that changed in a pair, joined by ``+``.
    indicator_fields
        The planning indicators compared (a lot's ``density_pct``, ``floors_min``,
        ``floors_max``, ``far``); empty for a layer without them.
    """

    before: Version
    after: Version
    key: tuple[str, ...]
    key_fields: tuple[str, ...]
    area_tolerance_m2: float
    iou_threshold: float
    counts: dict[str, int]
    flags: dict[str, int]
    matched: dict[str, int]
    areas: pd.DataFrame
    features: gpd.GeoDataFrame
    indicator_fields: tuple[str, ...] = ()
    #: Derived views (WGS 84 frame, its index), shared by copies made with new versions.
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # -- summary -----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts, the m² table and the two versions, as JSON-ready values."""
        try:
            name: str | None = seeds.district(self.before.district).name
        except KeyError:  # a unit code the seeds do not list on the plan date
            name = None
        rows = [{"code": r.code, "name": r.name, "name_en": r.name_en, "color": r.color,
                 "before_m2": _round(r.before_m2), "after_m2": _round(r.after_m2),
                 "delta_m2": _round(r.delta_m2)} for r in self.areas.itertuples()]
        before_total = float(self.areas["before_m2"].sum())
        after_total = float(self.areas["after_m2"].sum())
        return {
            "district": self.before.district, "district_name": name,
            "project": self.before.project, "kind": self.before.kind,
            "from": version_info(self.before), "to": version_info(self.after),
            "parameters": {"key": list(self.key), "area_tolerance_m2": self.area_tolerance_m2,
                           "iou_threshold": self.iou_threshold},
            "matched": dict(self.matched),
            "counts": dict(self.counts),
            "changes": dict(self.flags),
            "indicator_fields": list(self.indicator_fields),
            "changed_features": int(len(self.features)),
            "areas": rows,
            "total_area_m2": {"before": _round(before_total), "after": _round(after_total),
                              "delta": _round(after_total - before_total)},
        }

    # -- features as GeoJSON ------------------------------------------------------------

    def _wgs84(self, display: bool = False) -> gpd.GeoDataFrame:
        """The changed features with both geometries in WGS 84, coordinates rounded.

        `display`: shapes for a map, not for measuring (`gisportal.outputs.display`, applied in
        metres before reprojecting): exact to half a pixel, and a hostile parcel of a
        million vertices keeps a few hundred, so the map's answers stay small and fast.
        """
        key = "wgs84-display" if display else "wgs84"
        frame = self.cache.get(key)
        if frame is None:
            crs = CRS.from_user_input(self.features.crs) if self.features.crs else None

            def lonlat(col: str) -> np.ndarray:
                geoms = np.asarray(self.features[col].values, dtype=object)
                if display:
                    geoms = display_geometries(geoms)
                moved = shapely.transform(geoms, lambda xy: np.column_stack(
                    vncrs.to_lonlat(xy[:, 0], xy[:, 1], crs)))
                return shapely.set_precision(moved, 10.0 ** -LONLAT_DIGITS, mode="pointwise")

            attributes = pd.DataFrame(self.features.drop(columns=["geometry",
                                                                  "geometry_before"]))
            attributes["geometry_before"] = lonlat("geometry_before")
            frame = gpd.GeoDataFrame(attributes, geometry=lonlat("geometry"), crs="EPSG:4326")
            self.cache[key] = frame
        return frame

    def bounds_lonlat(self) -> list[float] | None:
        """``[minlon, minlat, maxlon, maxlat]`` of the changed features, or None (of
        their display shapes: a map fits them, to half a pixel)."""
        if self.features.empty:
            return None
        geoms = self._wgs84(display=True).geometry.values
        box = shapely.total_bounds(geoms[~shapely.is_missing(geoms)])
        return None if np.isnan(box).any() else [float(v) for v in box]

    def select(self, bbox: tuple[float, float, float, float] | None = None, *,
               offset: int = 0, limit: int | None = None,
               display: bool = False) -> tuple[gpd.GeoDataFrame, int]:
        """Changed features (WGS 84) meeting `bbox` (lon/lat), one page of them.

        Returns the page and how many features meet the box in all, so a map can say
        "showing 2 000 of 9 000 — zoom in". The box test uses an STRtree built once per
        comparison: a big diff answers each map move without scanning it. `display`:
        the page's shapes are for a map (see `_wgs84`).
        """
        frame = self._wgs84(display)
        if bbox is not None:
            tree_key = "tree-display" if display else "tree"
            tree = self.cache.get(tree_key)
            if tree is None:
                tree = self.cache[tree_key] = shapely.STRtree(frame.geometry.values)
            hits = np.sort(tree.query(shapely.box(*bbox), predicate="intersects"))
            frame = frame.iloc[hits]
        total = len(frame)
        end = None if limit is None else offset + limit
        return frame.iloc[offset:end], total

    def geojson(self, frame: gpd.GeoDataFrame | None = None, *,
                display: bool = False) -> dict[str, Any]:
        """A GeoJSON FeatureCollection (WGS 84) of `frame` (default: every change).

        Each feature's geometry is the shape after (before, for a removed feature);
        a reshaped one also carries its shape before as ``properties.before``.
        `display` (for the whole comparison; a page from `select` has its shapes
        already): see `_wgs84`.
        """
        frame = self._wgs84(display) if frame is None else frame
        features = [self._feature(row) for row in frame.to_dict("records")]
        return {"type": "FeatureCollection", "features": features}

    def _key(self, row: dict[str, Any], side: str) -> dict[str, Any] | None:
        if not self.key_fields or row["type"] == ("removed" if side == "after" else "added"):
            return None
        return {k: _plain(row[f"{k}_{side}"]) for k in self.key_fields}

    def _indicators(self, row: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``{indicator: {"before", "after"}}`` of the indicators that changed."""
        names = row.get("indicators") or ""
        return {name: {"before": _plain(row[f"{name}_before"]),
                       "after": _plain(row[f"{name}_after"])}
                for name in names.split("+") if name}

    def properties(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The first `limit` changed features' properties, as the GeoJSON's (``before``
        left out), without reprojecting a shape: what a page lists in words."""
        frame = self.features.iloc[:limit].drop(columns=["geometry", "geometry_before"])
        out = []
        for row in pd.DataFrame(frame).to_dict("records"):
            props = self._properties(row)
            props.pop("before")
            out.append(props)
        return out

    def _feature(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"type": "Feature", "geometry": _geojson(row["geometry"]),
                "properties": self._properties(row)}

    def _properties(self, row: dict[str, Any]) -> dict[str, Any]:
        changes = row["changes"].split("+") if row["changes"] else []
        before = row.get("geometry_before") if "reshaped" in changes else None
        extra = {"indicators": self._indicators(row)} if self.indicator_fields else {}
        return {
            "type": row["type"], "changes": changes, "matched_by": _plain(row["matched_by"]),
            "key_before": self._key(row, "before"), "key_after": self._key(row, "after"),
            "code_before": _plain(row["code_before"]),
            "code_after": _plain(row["code_after"]),
            "area_before_m2": _round(row["area_before_m2"]),
            "area_after_m2": _round(row["area_after_m2"]),
            "area_delta_m2": _round(row["area_delta_m2"]),
            "iou": _round(row["iou"], 4),
            "before": _geojson(before),
            **extra,
        }

    def to_dict(self) -> dict[str, Any]:
        """``{"summary", "features"}``: the whole comparison as JSON-ready values."""
        return {"summary": self.summary(), "features": self.geojson()}

    # -- text ---------------------------------------------------------------------------

    def to_text(self) -> str:
        """A plain-text report for the terminal (English, codes and numbers)."""
        s = self.summary()

        def describe(v: dict[str, Any]) -> str:
            d = v["decision"]
            text = f"version {v['id']} ({v['status']}, {v['feature_count']} features"
            if d and d.get("number"):
                text += f", decision {d['number']}" + (f" of {d['date']}" if d.get("date") else "")
            return text + ")"

        where = (f"project {s['project']} (district {s['district']})" if s["project"]
                 else f"district {s['district']} {s['district_name'] or ''}".rstrip())
        lines = [f"{s['kind']} layer of {where}",
                 f"from {describe(s['from'])}", f"  to {describe(s['to'])}",
                 f"matched by key ({', '.join(self.key) or 'none'}): {self.matched['key']}, "
                 f"by geometry (IoU > {self.iou_threshold:g}): {self.matched['geometry']}",
                 ""]
        wide = max(14, *(len(t) + 2 for t in s["counts"]))
        lines.append(f"{'change':<{wide}}{'features':>10}")
        lines += [f"{t:<{wide}}{n:>10}" for t, n in s["counts"].items()]
        use = "function" if self.before.kind in ZONING_KINDS else "land use"
        lines += ["", f"{use:<16}{'before m²':>16}{'after m²':>16}{'delta m²':>14}"]
        for r in s["areas"]:
            lines.append(f"{r['code'] or '(none)':<16}{r['before_m2']:>16,.1f}"
                         f"{r['after_m2']:>16,.1f}{r['delta_m2']:>+14,.1f}")
        t = s["total_area_m2"]
        lines.append(f"{'total':<16}{t['before']:>16,.1f}{t['after']:>16,.1f}"
                     f"{t['delta']:>+14,.1f}")
        return "\n".join(lines)


def _geojson(geom: Any) -> dict[str, Any] | None:
    if geom is None or shapely.is_missing(geom) or shapely.is_empty(geom):
        return None
    return json.loads(shapely.to_geojson(geom))
