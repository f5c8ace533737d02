"""GeoJSON answers: a page of features as Python objects, written by one encoder call.

A page of 10 000 parcels is several megabytes, and the items answer is the API's bulk
path, so a page is built column-wise and encoded once:

- geometries: GEOS hands over every coordinate of the page as one array
  (`shapely.to_ragged_array`), reprojected in one PROJ call
  (`ogc_crs.ground_coords`: each distinct point once) and wound in one pass (below);
  each ring is a slice of that array, each feature's ``coordinates`` a list of those
  slices — no per-vertex Python, and no geometry rebuilt;
- properties: taken column by column, source text converted once per distinct value
  (`_column`);
- the page: one call of `dumps` (orjson, which writes numpy arrays itself; the standard
  library's `json` when orjson is not installed — the same JSON, slower).

Rings follow the right-hand rule (RFC 7946 §3.1.6): exterior rings counter-clockwise,
holes clockwise, whatever the stored winding — with respect to the area on the ground,
so in ``(easting, northing)`` / ``(longitude, latitude)`` order. A CRS whose first axis
is northing or latitude (EPSG:4326) writes the same rings with their axes swapped, which
mirrors them: counter-clockwise on the ground is clockwise in ``(latitude, longitude)``
numbers. The orientation is set on the coordinates as written (after reprojection and
rounding) with GEOS's own test (`shapely.is_ccw`, which `shapely.orient_polygons` uses),
so a client that checks a ring finds what this module made.

Properties are the public fields (`gisportal.outputs.ogc.collections.PublicFields`):
canonical fields with their stored types (``sheet`` and ``parcel`` numbers,
``land_use`` a code...), then the public source attributes under their stored names
(``src:<column>``) as NFC text, as ``/api/lookup`` gives them; a missing value is
``null``, so every feature of a collection has the same properties.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely

from gisportal.outputs.ogc import crs as ogc_crs
from gisportal.outputs.ogc.collections import PublicFields

try:  # not a declared dependency yet: the standard library writes the same JSON
    import orjson
except ModuleNotFoundError:  # pragma: no cover - exercised by tests through _json_dumps
    orjson = None  # type: ignore[assignment]

__all__ = ["dumps", "feature_collection", "feature_json", "features", "properties"]

#: shapely's type ids of the geometries written from the ragged array (``-1``: none).
_MISSING, _POLYGON, _MULTIPOLYGON = -1, 3, 6
_RAGGED = np.array([_MISSING, _POLYGON, _MULTIPOLYGON])


def _plain(value: Any) -> Any:
    """What the standard library cannot write itself: a numpy array (a ring) as lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _json_dumps(doc: Any) -> bytes:
    """`dumps` without orjson: the same JSON (NaN never reaches it: `_value`)."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                      default=_plain).encode()


def dumps(doc: Any) -> bytes:
    """`doc` as compact UTF-8 JSON; numpy arrays (coordinates) as nested arrays, any
    other value JSON cannot hold as its text."""
    if orjson is None:
        return _json_dumps(doc)
    return orjson.dumps(doc, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def _text(value: Any) -> str | None:
    """A source attribute as the text ``/api/lookup`` shows (12.0 → "12")."""
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
    return unicodedata.normalize("NFC", str(value))


def _value(value: Any) -> Any:
    """A canonical value as JSON can hold it (a NaN is a missing value)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def properties(record: Mapping[str, Any], fields: PublicFields) -> dict[str, Any]:
    """The feature properties of a store record: public fields only, in order."""
    out = {name: _value(record.get(name)) for name in fields.canonical}
    for name in fields.source:
        out[name] = _text(record.get(name))
    return out


def _column(records: Sequence[Mapping[str, Any]], name: str,
            convert: Callable[[Any], Any]) -> list[Any]:
    """One property of every record, converted; equal values are converted once.

    A column of a page repeats many values (communes, land-use codes, sheet numbers),
    which then cost a dictionary look-up each.
    """
    memo: dict[Any, Any] = {}
    out = []
    for record in records:
        value = record.get(name)
        try:
            converted = memo[value]
        except KeyError:
            converted = memo[value] = convert(value)
        except TypeError:  # an unhashable value (the store gives none; be safe)
            converted = convert(value)
        out.append(converted)
    return out


def _ring_roles(offsets: Sequence[np.ndarray]) -> np.ndarray:
    """Per ring of a ragged array: True for an exterior ring (the first of its polygon)."""
    ring_ends, polygon_ends = offsets[0], offsets[1]
    exterior = np.zeros(len(ring_ends) - 1, dtype=bool)
    exterior[polygon_ends[:-1][polygon_ends[1:] > polygon_ends[:-1]]] = True
    return exterior


def _right_hand(ground: np.ndarray, ring_ends: np.ndarray, exterior: np.ndarray) -> np.ndarray:
    """`ground` (ground-order coordinates) with every exterior ring counter-clockwise and
    every hole clockwise, as GEOS's `shapely.is_ccw` reads the rings: the wrong ones
    reversed in one index pass."""
    lengths = np.diff(ring_ends)
    rings = shapely.linearrings(ground, indices=np.repeat(np.arange(len(lengths)), lengths))
    flip = shapely.is_ccw(rings) != exterior
    if not flip.any():
        return ground
    starts, counts = ring_ends[:-1][flip], lengths[flip]
    first = np.repeat(starts, counts)  # each reversed position: its ring's first index,
    last = first + np.repeat(counts, counts) - 1  # its ring's last,
    at = first + np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
    order = np.arange(len(ground))  # and itself
    order[at] = first + last - at
    return ground[order]


def _ragged(geoms: np.ndarray, types: np.ndarray, crs: ogc_crs.OgcCrs,
            store_crs: str) -> list[Any]:
    """Polygons and multipolygons (and missing geometries) as GeoJSON geometry objects
    whose rings are numpy slices of the page's one coordinate array: reprojected and
    rounded (`ogc_crs.ground_coords`), wound (`_right_hand`), then in `crs`'s axis order."""
    kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
    ring_ends = offsets[0]
    ground = ogc_crs.ground_coords(coords, crs, store_crs)
    if len(ring_ends) > 1:
        ground = _right_hand(ground, ring_ends, _ring_roles(offsets))
    written = ogc_crs.in_axis_order(ground, crs)
    ends = ring_ends.tolist()
    rings = [written[a:b] for a, b in zip(ends[:-1], ends[1:], strict=True)]
    if kind == shapely.GeometryType.POLYGON:  # every geometry a polygon (or none)
        parts = None
        bounds = offsets[1].tolist()
    else:  # polygons are multipolygons of one part here
        part_ends = offsets[1].tolist()
        parts = [rings[a:b] for a, b in zip(part_ends[:-1], part_ends[1:], strict=True)]
        bounds = offsets[2].tolist()
    out: list[Any] = []
    for type_id, a, b in zip(types.tolist(), bounds[:-1], bounds[1:], strict=True):
        if type_id == _MISSING:
            out.append(None)
        elif parts is None:
            out.append({"type": "Polygon", "coordinates": rings[a:b]})
        elif type_id == _POLYGON:
            out.append({"type": "Polygon", "coordinates": parts[a] if b > a else []})
        else:
            out.append({"type": "MultiPolygon", "coordinates": parts[a:b]})
    return out


def _geometries(records: Sequence[Mapping[str, Any]], crs: ogc_crs.OgcCrs,
                store_crs: str) -> list[Any]:
    """The page's geometries in `crs`, right-hand rule on the ground (module doc).

    Polygons and multipolygons (every layer kind) go through one ragged array
    (`_ragged`); a page holding anything else (no layer does today) is reprojected,
    oriented and written by GEOS, and read back.
    """
    geoms = np.array([r["geometry"] for r in records], dtype=object)
    types = shapely.get_type_id(geoms)
    if (types == _MISSING).all():
        return [None] * len(geoms)
    if np.isin(types, _RAGGED).all():
        try:
            return _ragged(geoms, types, crs, store_crs)
        except (ValueError, shapely.errors.GEOSException):  # a ring GEOS cannot rebuild
            pass
    written = ogc_crs.reproject(geoms, crs, store_crs)
    # Swapped axes mirror a ring: counter-clockwise on the ground is clockwise in them.
    oriented = shapely.orient_polygons(written, exterior_cw=crs.north_first)
    return [None if t is None else json.loads(t) for t in shapely.to_geojson(oriented).tolist()]


def features(records: Sequence[Mapping[str, Any]], fields: PublicFields,
             crs: ogc_crs.OgcCrs, store_crs: str) -> list[dict[str, Any]]:
    """Each record as a GeoJSON Feature object, its ``id`` the feature id (an integer),
    ready for `dumps`."""
    if not records:
        return []
    names = [*fields.canonical, *fields.source]
    # orjson writes a NaN as null itself; the standard library must be given None.
    columns = [[r.get(n) for r in records] if orjson is not None else
               _column(records, n, _value) for n in fields.canonical]
    columns += [_column(records, n, _text) for n in fields.source]
    rows = zip(*columns, strict=True) if columns else ((),) * len(records)
    geometries = _geometries(records, crs, store_crs)
    return [{"type": "Feature", "id": int(r["fid"]), "geometry": g,
             "properties": dict(zip(names, row, strict=True))}
            for r, g, row in zip(records, geometries, rows, strict=True)]


def feature_collection(page: Sequence[Mapping[str, Any]], *,
                       links: Sequence[Mapping[str, str]], number_matched: int | None,
                       time_stamp: str) -> bytes:
    """A FeatureCollection (Part 1 ``featureCollectionGeoJSON``) of `features`."""
    doc: dict[str, Any] = {"type": "FeatureCollection", "timeStamp": time_stamp}
    if number_matched is not None:
        doc["numberMatched"] = number_matched
    doc["numberReturned"] = len(page)
    doc["links"] = list(links)
    doc["features"] = page
    return dumps(doc)


def feature_json(feature: Mapping[str, Any], links: Sequence[Mapping[str, str]]) -> bytes:
    """One Feature with its links (the single-item answer)."""
    return dumps({**feature, "links": list(links)})
