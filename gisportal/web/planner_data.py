"""The data behind the review page, as plain functions (no Flask): a page of findings
from a job's saved report, the features of a stored version within a map box, the
list of repair changes.

The review map never embeds a layer: the findings come a page at a time from the
report, and the uploaded features from the store through its spatial index, only for
the box in view (or whole, for a small layer). A report of a 200 000-parcel upload can
be tens of MB of JSON: the last one read is kept parsed while its file is unchanged
(the review page and its table's pages read the same report, one after the other).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import mapping

from gisportal.base import crs as vncrs
from gisportal.base.errors import UsageError
from gisportal.base.findings import SEVERITIES
from gisportal.base.models import layer_model
from gisportal.outputs.display import display_geometries
from gisportal.store.base import Bounds, Store, Version
from gisportal.store.files import FileArea

__all__ = [
    "FEATURE_LIMIT",
    "FINDINGS_LIMIT",
    "MAX_BOX_M2",
    "MAX_FEATURE_LIMIT",
    "MAX_FINDINGS_LIMIT",
    "REPAIR_LIMIT",
    "count",
    "features_in_box",
    "findings_page",
    "load_area_report",
    "load_report",
    "parse_bbox",
    "repair_changes",
    "version_bounds_lonlat",
]

#: Findings per page unless asked otherwise, and the most one page may hold.
FINDINGS_LIMIT = 500
MAX_FINDINGS_LIMIT = 5000
#: Features per answer unless asked otherwise, and the most one answer may hold. A layer
#: with no more features than the limit is sent whole, whatever the box.
FEATURE_LIMIT = 2000
MAX_FEATURE_LIMIT = 10_000
#: The largest box (m² in the store CRS) asked of a bigger layer: about a zoom-16 view.
#: A dense town has a few thousand parcels per km², so an answer stays a few MB.
MAX_BOX_M2 = 6_000_000.0
#: Repair changes listed on the page; the rest are in the JSON report.
REPAIR_LIMIT = 500
#: Display columns of the uploaded features (personal fields are never sent).
_DISPLAY = ("commune", "sheet", "parcel", "zone_id", "land_use", "name", "level", "code")
_RULE = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")


# --------------------------------------------------------------------------- parameters


def count(text: str | None, name: str, default: int, high: int) -> int:
    """A whole number from 0 to `high` given as query text (`default` when absent).

    Present but empty (``limit=``) is not absent: the API definition says a number, so
    it is a 400 like any other non-number (schemathesis holds the server to that).
    """
    if text is None:
        return default
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or int(value) > high:
        raise UsageError(f"{name} must be a whole number from 0 to {high}, got {text[:30]!r}",
                         where=name, fix=f"e.g. {name}={default}")
    return int(value)


def parse_bbox(text: str | None) -> Bounds | None:
    """``minlon,minlat,maxlon,maxlat`` in WGS 84 degrees, as a map view gives it."""
    if text is None or not text.strip():
        return None
    try:
        box = tuple(float(p) for p in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or not (
            -180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90):
        raise UsageError(f"bbox {text[:80]!r} is not minlon,minlat,maxlon,maxlat",
                         where="bbox", fix="give four numbers in degrees with min ≤ max, "
                         "e.g. bbox=108.28,11.85,108.30,11.87", code="BBOX-INVALID")
    return box  # type: ignore[return-value]


# --------------------------------------------------------------------------- findings


@lru_cache(maxsize=1)  # 100 000 findings parse to ~170 MB: keep one report per process
def _parsed(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_report(path: Path) -> dict[str, Any]:
    """The JSON report of a job (``validate --format json``), parsed once per file state.

    Report files are written once (atomically) and never changed, so the file's
    modification time and size identify its content.
    """
    stat = path.stat()
    return _parsed(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=1)  # as `_parsed`: one report per process
def _parsed_object(area: FileArea, key: str, etag: str) -> dict[str, Any]:
    return json.loads(area.read_bytes(key))


def load_area_report(area: FileArea, key: str) -> dict[str, Any]:
    """`load_report` for a report in the upload area: the file itself in a folder area,
    else the object, parsed once per ETag (one HEAD per call, the body only when it
    changed)."""
    local = area.local_file(key)
    if local is not None:
        return load_report(local)
    return _parsed_object(area, key, area.stat(key).etag)


def findings_page(report: dict[str, Any], *, rule: str | None = None,
                  severity: str | None = None, offset: int = 0,
                  limit: int = FINDINGS_LIMIT) -> dict[str, Any]:
    """One page of the report's findings matching `rule` and `severity`, as GeoJSON.

    Findings keep the report's order (errors first, then by source row) and its
    numbering: ``properties.n`` is a finding's index in the whole report, so a row of
    the table and its mark on the map share one id. A finding of the whole file has no
    geometry.

    Raises
    ------
    UsageError
        A severity that is not error/warning/info, or text that is not a rule code.
    """
    if severity and severity not in SEVERITIES:
        raise UsageError(f"{severity[:20]!r} is not a severity", where="severity",
                         fix="use one of: " + ", ".join(SEVERITIES))
    if rule and not _RULE.fullmatch(rule):
        raise UsageError(f"{rule[:40]!r} is not a rule code", where="rule",
                         fix="use a code from the summary, e.g. TOPO-GAP")
    found = report.get("findings") or []
    if rule or severity:
        chosen = [n for n, f in enumerate(found)
                  if (not rule or f.get("rule") == rule)
                  and (not severity or f.get("severity") == severity)]
    else:  # the first view of the page: a slice, whatever the size of the report
        chosen = range(len(found))
    page = [(n, found[n]) for n in chosen[offset:offset + limit]]
    features = []
    for n, f in page:
        feature = f.get("feature") or {}
        features.append({"type": "Feature", "id": n, "geometry": f.get("location"),
                         "properties": {"n": n, "rule": f.get("rule"),
                                        "severity": f.get("severity"),
                                        "row": feature.get("row"),
                                        "key": feature.get("key") or {},
                                        "message": f.get("message"),
                                        "message_en": f.get("message_en")}})
    return {"total": len(chosen), "offset": offset, "limit": limit, "returned": len(page),
            "complete": offset + len(page) >= len(chosen),
            "findings": {"type": "FeatureCollection", "features": features}}


def repair_changes(report: dict[str, Any],
                   limit: int = REPAIR_LIMIT) -> tuple[list[dict[str, Any]], int]:
    """The first `limit` changes a repair made (row order) and how many there were."""
    changes = (report.get("repair") or {}).get("changes") or []
    return changes[:limit], len(changes)


# --------------------------------------------------------------------------- features


def _store_box(store: Store, box: Bounds) -> Bounds:
    """A WGS 84 box as the store-CRS box that holds it (edges densified: the projected
    edges of a degree box are curves)."""
    t = np.linspace(0.0, 1.0, 9)
    lons = np.concatenate([box[0] + (box[2] - box[0]) * t, np.full(9, box[2]),
                           box[0] + (box[2] - box[0]) * t, np.full(9, box[0])])
    lats = np.concatenate([np.full(9, box[1]), box[1] + (box[3] - box[1]) * t,
                           np.full(9, box[3]), box[1] + (box[3] - box[1]) * t])
    xs, ys = vncrs.from_lonlat(lons, lats, CRS.from_user_input(store.crs))
    xs, ys = np.asarray(xs), np.asarray(ys)
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise UsageError("the bbox lies outside the area the store's CRS covers",
                         where="bbox", fix="give a box around the district",
                         code="BBOX-INVALID")
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def version_bounds_lonlat(store: Store, version: Version) -> list[float] | None:
    """The version's extent as ``[minlon, minlat, maxlon, maxlat]``, None when empty."""
    if version.bounds is None:
        return None
    return vncrs.lonlat_bounds(version.bounds, CRS.from_user_input(store.crs))


def features_in_box(store: Store, version: Version, bbox: Bounds | None, *,
                    limit: int = FEATURE_LIMIT) -> dict[str, Any]:
    """The version's features meeting `bbox` (WGS 84; None: all), as GeoJSON in WGS 84.

    A layer of at most `limit` features may be asked whole; a bigger one only for a box
    of at most `MAX_BOX_M2` (the review map asks from zoom 16), through the store's
    spatial index. At most `limit` features are returned, in stored order; ``page``
    says whether that was all. Only the key fields, the land use and names go out:
    personal fields stay in the store.

    Raises
    ------
    UsageError
        A box too big for the layer (``BBOX-TOO-BIG``: zoom in), or outside the CRS.
    """
    small = version.feature_count <= limit
    if version.bounds is None:
        return _collection([], [], 0, limit, bbox)
    box = version.bounds if bbox is None else _store_box(store, bbox)
    area = (box[2] - box[0]) * (box[3] - box[1])
    if not small and area > MAX_BOX_M2:
        raise UsageError(
            f"the box covers {area / 1e6:.1f} km², more than the {MAX_BOX_M2 / 1e6:.0f} km² "
            f"one answer may cover for a layer of {version.feature_count} features",
            where="bbox", fix="zoom in (the review map loads the features from zoom 16)",
            code="BBOX-TOO-BIG")
    rows = store.records(version.id, bbox=box)
    shown = rows[:limit]
    return _collection(shown, _columns(version, shown), len(rows), limit, bbox,
                       CRS.from_user_input(store.crs))


def _columns(version: Version, rows: list[dict[str, Any]]) -> list[str]:
    model = layer_model(version.kind)
    personal = set(model.personal_fields)
    present = set(rows[0]) if rows else set()
    return [c for c in dict.fromkeys((*model.key, *_DISPLAY))
            if c in present and c not in personal]


def _collection(rows: list[dict[str, Any]], columns: list[str], total: int, limit: int,
                bbox: Bounds | None, crs: CRS | None = None) -> dict[str, Any]:
    features = []
    if rows:
        # Drawn, not measured: a hostile draft's million-vertex feature must not make
        # the review map heavy (gisportal.outputs.display).
        geoms = display_geometries([r["geometry"] for r in rows])
        ok = ~shapely.is_missing(geoms)
        geoms[ok] = shapely.transform(geoms[ok], lambda xy: np.column_stack(
            vncrs.to_lonlat(xy[:, 0], xy[:, 1], crs)))
        geoms[ok] = shapely.set_precision(geoms[ok], 1e-7, mode="pointwise")
        for row, geom, good in zip(rows, geoms, ok, strict=True):
            if not good or geom.is_empty:
                continue
            features.append({"type": "Feature", "geometry": mapping(geom),
                             "properties": {c: row.get(c) for c in columns}})
    return {"type": "FeatureCollection", "features": features,
            "page": {"total": total, "returned": len(features), "limit": limit,
                     "complete": total <= limit, "bbox": list(bbox) if bbox else None}}
