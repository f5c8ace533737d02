"""GeoJSON answers written as JSON text, a page of features at a time.

A page of 10 000 parcels is several megabytes, and the items answer is the API's bulk
path. It is written as text fragments, column by column, never as a dict per feature
(which costs the dicts, and then the garbage collector's passes over them: those passes
were a quarter of a page's time):

- geometries: GEOS hands over every coordinate of the page as one array
  (`shapely.to_ragged_array`), reprojected in one PROJ call (`ogc_crs.ground_points`:
  each distinct point once — parcels share their corners) and wound in one pass
  (below); the distinct points are written as JSON by one encoder call (orjson, or the
  standard library where orjson is not installed: the same numbers) and each ring joins
  its points' texts — no geometry rebuilt;
- properties: a column of numbers is written by one encoder call and split; `json`
  writes each distinct value of any other column once (`_column`);
- every fragment of every feature goes into one list, the page is one join.

Rings follow the right-hand rule (RFC 7946 §3.1.6): exterior rings counter-clockwise,
holes clockwise, whatever the stored winding — with respect to the area on the ground,
so in ``(easting, northing)`` / ``(longitude, latitude)`` order. A CRS whose first axis
is northing or latitude (EPSG:4326) writes the same rings with their axes swapped, which
mirrors them: counter-clockwise on the ground is clockwise in ``(latitude, longitude)``
numbers. The orientation is read on the coordinates as written (after reprojection and
rounding) from each ring's signed area (`_ccw`), which for a simple ring is what GEOS's
`shapely.is_ccw` answers, so a client that checks a ring finds what this module made.

Properties are the public fields (`gisportal.outputs.ogc.collections.PublicFields`):
canonical fields with their stored types (``sheet`` and ``parcel`` numbers,
``land_use`` a code...), then the public source attributes under their stored names
(``src:<column>``) as NFC text, as ``/api/lookup`` gives them; a missing value is
``null``, so every feature of a collection has the same properties.
"""

from __future__ import annotations

import json
import math
import operator
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

import numpy as np
import shapely

from gisportal.outputs.ogc import crs as ogc_crs
from gisportal.outputs.ogc.collections import PublicFields

try:  # not a declared dependency yet: the standard library writes the same numbers
    import orjson
except ModuleNotFoundError:  # pragma: no cover - the fallback is tested directly
    orjson = None  # type: ignore[assignment]

__all__ = ["feature_collection", "feature_json", "features_json", "properties"]

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                          default=str).encode
#: shapely's type ids of the geometries written from the ragged array (``-1``: none).
_MISSING, _POLYGON, _MULTIPOLYGON = -1, 3, 6
_RAGGED = np.array([_MISSING, _POLYGON, _MULTIPOLYGON])
#: Types of a column orjson writes as numbers (`_column`).
_NUMBERS = frozenset({int, float, type(None)})


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


def _scalar(value: Any) -> str:
    """One JSON scalar as text, without the general encoder's per-call set-up."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return encode_basestring(value)
    return _dumps(value)


class _Texts(dict):  # type: ignore[type-arg]
    """Value → its JSON text, written on first use (`_encoded`)."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, value: Any) -> str:
        text = self[value] = _scalar(self.convert(value))
        return text


def _encoded(values: list[Any], convert: Callable[[Any], Any]) -> list[str]:
    """Each value converted and written as JSON text; equal values are written once.

    A column of a page repeats many values (communes, land-use codes, sheet numbers),
    which then cost a dictionary look-up each, made by `map` without a Python loop.
    """
    texts = _Texts(convert)
    try:
        return list(map(texts.__getitem__, values))
    except TypeError:  # an unhashable value (the store gives none; be safe)
        return [_scalar(convert(v)) for v in values]


def _coordinates_json(coords: np.ndarray) -> bytes:
    """An ``(n, 2)`` array as ``[[x,y],[x,y],...]``: each number in its shortest form that
    reads back the same (a non-finite one, which no store CRS produces, as null)."""
    if orjson is not None:
        return orjson.dumps(coords, option=orjson.OPT_SERIALIZE_NUMPY)
    values: list[Any] = coords.tolist()
    if not np.isfinite(coords).all():
        values = [[v if math.isfinite(v) else None for v in pair] for pair in values]
    return json.dumps(values, allow_nan=False, separators=(",", ":")).encode()


def _ring_roles(offsets: Sequence[np.ndarray]) -> np.ndarray:
    """Per ring of a ragged array: True for an exterior ring (the first of its polygon)."""
    ring_ends, polygon_ends = offsets[0], offsets[1]
    exterior = np.zeros(len(ring_ends) - 1, dtype=bool)
    exterior[polygon_ends[:-1][polygon_ends[1:] > polygon_ends[:-1]]] = True
    return exterior


def _ccw(ground: np.ndarray, ring_ends: np.ndarray) -> np.ndarray:
    """Per ring: its signed area is positive (counter-clockwise), which for a simple ring
    is what `shapely.is_ccw` answers. The shoelace sum runs around each ring's first
    point, so that the products stay the size of a parcel (not of its coordinates)
    and their rounding cannot change the sign; the term that joins a ring's last point
    to the next ring's first is then zero by itself (that point is its own origin)."""
    lengths = np.diff(ring_ends)
    out = np.zeros(len(lengths), dtype=bool)
    lines = np.flatnonzero(lengths >= 2)  # (a ring of fewer points encloses nothing)
    if not len(lines):
        return out
    origins = ground[np.minimum(ring_ends[:-1], len(ground) - 1)]
    local = ground - np.repeat(origins, lengths, axis=0)
    cross = local[:-1, 0] * local[1:, 1] - local[1:, 0] * local[:-1, 1]
    out[lines] = np.add.reduceat(cross, ring_ends[:-1][lines]) > 0
    return out


def _right_hand_order(ground: np.ndarray, ring_ends: np.ndarray,
                      exterior: np.ndarray) -> np.ndarray | None:
    """The order of `ground`'s coordinates (ground order) that winds every exterior ring
    counter-clockwise and every hole clockwise (`_ccw`): the wrong rings reversed, in one
    index pass; None when every ring is right already."""
    lengths = np.diff(ring_ends)
    flip = (_ccw(ground, ring_ends) != exterior) & (lengths > 3)
    if not flip.any():
        return None
    starts, counts = ring_ends[:-1][flip], lengths[flip]
    first = np.repeat(starts, counts)  # each reversed position: its ring's first index,
    last = first + np.repeat(counts, counts) - 1  # its ring's last,
    at = first + np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
    order = np.arange(len(ground))  # and itself
    order[at] = first + last - at
    return order


def _right_hand(ground: np.ndarray, ring_ends: np.ndarray, exterior: np.ndarray) -> np.ndarray:
    """`ground` with its rings wound by the right-hand rule (`_right_hand_order`)."""
    order = _right_hand_order(ground, ring_ends, exterior)
    return ground if order is None else ground[order]


def _ragged(geoms: np.ndarray, types: np.ndarray, crs: ogc_crs.OgcCrs,
            store_crs: str) -> list[str]:
    """Polygons and multipolygons (and missing geometries) as GeoJSON geometry texts: the
    page's coordinates reprojected and rounded (`ogc_crs.ground_points`), wound
    (`_right_hand_order`), put in `crs`'s axis order; every distinct point is written
    once, by one encoder call, and each ring joins its points' texts.
    """
    if (types == _POLYGON).all() and not shapely.get_num_interior_rings(geoms).any():
        # Parcels: polygons of one ring, whose ring offsets are their point counts (the
        # general `to_ragged_array` makes a geometry of every ring to count them).
        kind, coords = shapely.GeometryType.POLYGON, shapely.get_coordinates(geoms)
        ring_ends = np.concatenate([[0], np.cumsum(shapely.get_num_coordinates(geoms))])
        offsets: tuple[np.ndarray, ...] = (ring_ends, np.arange(len(geoms) + 1))
    else:
        kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
    ring_ends = offsets[0]
    points, where = ogc_crs.ground_points(coords, crs, store_crs)
    if len(ring_ends) > 1:
        order = _right_hand_order(points[where], ring_ends, _ring_roles(offsets))
        if order is not None:
            where = where[order]
    # Each distinct point written once, "[x,y]" in the CRS's axis order (null for a
    # non-finite number, which no store CRS produces): the array's text cut at its "],["
    # (no number holds a bracket) gives "x,y" per point.
    text = _coordinates_json(ogc_crs.in_axis_order(points, crs)).decode("ascii")
    pieces = text[2:-2].split("],[") if len(points) else []
    tokens = list(map(pieces.__getitem__, where.tolist()))
    bounds = ring_ends.tolist()
    if kind == shapely.GeometryType.POLYGON and (np.diff(offsets[1]) == 1).all():
        # One ring per polygon (most pages): each geometry's text straight from its points.
        return ['{"type":"Polygon","coordinates":[[[' + "],[".join(tokens[a:b]) + "]]]}"
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    rings = ["[[" + "],[".join(tokens[a:b]) + "]]" if b > a else "[]"
             for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def polygon(r0: int, r1: int) -> str:
        return "[" + ",".join(rings[r0:r1]) + "]"

    out: list[str] = []
    if kind == shapely.GeometryType.POLYGON:  # every geometry a polygon (or none)
        bounds = offsets[1].tolist()
        for type_id, r0, r1 in zip(types.tolist(), bounds[:-1], bounds[1:], strict=True):
            if type_id == _MISSING:
                out.append("null")
            elif r1 == r0 + 1:  # most parcels: one ring
                out.append('{"type":"Polygon","coordinates":[' + rings[r0] + "]}")
            else:
                out.append('{"type":"Polygon","coordinates":' + polygon(r0, r1) + "}")
        return out
    part_ends = offsets[1].tolist()  # a multipolygon array: polygons are single parts
    bounds = offsets[2].tolist()
    for type_id, p0, p1 in zip(types.tolist(), bounds[:-1], bounds[1:], strict=True):
        if type_id == _MISSING:
            out.append("null")
        elif type_id == _POLYGON:
            coordinates = polygon(part_ends[p0], part_ends[p0 + 1]) if p1 > p0 else "[]"
            out.append('{"type":"Polygon","coordinates":' + coordinates + "}")
        else:
            parts = ",".join(polygon(part_ends[p], part_ends[p + 1]) for p in range(p0, p1))
            out.append('{"type":"MultiPolygon","coordinates":[' + parts + "]}")
    return out


def _geometries(records: Sequence[Mapping[str, Any]], crs: ogc_crs.OgcCrs,
                store_crs: str) -> list[str]:
    """The page's geometries in `crs` as GeoJSON texts, right-hand rule on the ground
    (module doc).

    Polygons and multipolygons (every layer kind) go through one ragged array
    (`_ragged`); a page holding anything else (no layer does today) is reprojected,
    oriented and written by GEOS.
    """
    geoms = np.array([r["geometry"] for r in records], dtype=object)
    types = shapely.get_type_id(geoms)
    if (types == _MISSING).all():
        return ["null"] * len(geoms)
    if np.isin(types, _RAGGED).all():
        try:
            return _ragged(geoms, types, crs, store_crs)
        except (ValueError, shapely.errors.GEOSException):  # a ring GEOS cannot rebuild
            pass
    written = ogc_crs.reproject(geoms, crs, store_crs)
    # Swapped axes mirror a ring: counter-clockwise on the ground is clockwise in them.
    oriented = shapely.orient_polygons(written, exterior_cw=crs.north_first)
    return ["null" if t is None else t for t in shapely.to_geojson(oriented).tolist()]


def _columns(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[list[Any]]:
    """The values of `names` in every record, column by column (C loops, no Python one)."""
    if len(names) == 1:
        return [[r.get(names[0]) for r in records]]
    try:
        rows = list(map(operator.itemgetter(*names), records))
    except KeyError:  # a record without some column (the store gives none): missing
        rows = [tuple(r.get(name) for name in names) for r in records]
    return [list(column) for column in zip(*rows, strict=True)]


def _column(values: list[Any], canonical: bool) -> list[str]:
    """One property of every record as JSON texts: a canonical value as stored, a source
    attribute as text (`_text`). A column of numbers (sheet and parcel numbers, areas)
    is written by one orjson call and cut at its commas, which no number holds (orjson
    writes a NaN as null, as `_value` does); any other by `_encoded`."""
    if canonical and orjson is not None and set(map(type, values)) <= _NUMBERS:
        return orjson.dumps(values).decode("ascii")[1:-1].split(",")
    return _encoded(values, _value if canonical else _text)


def features_json(records: Sequence[Mapping[str, Any]], fields: PublicFields,
                  crs: ogc_crs.OgcCrs, store_crs: str) -> str:
    """The records as GeoJSON Feature texts joined by commas (what goes between the
    brackets of a FeatureCollection's ``features``), each ``id`` the feature id.

    Every fragment of every feature — the constant keys, the id, the geometry, each
    property — is put in one list, column by column (a slice assignment each), and the
    list is joined once: no per-feature Python at all.
    """
    if not records:
        return ""
    n = len(records)
    names = [*fields.canonical, *fields.source]
    ids, *values = _columns(records, ["fid", *names])
    columns = [_column(column, name in fields.canonical)
               for name, column in zip(names, values, strict=True)]
    keys = [("," if i else "") + _dumps(name) + ":" for i, name in enumerate(names)]
    pieces = ['{"type":"Feature","id":', _column(ids, True), ',"geometry":',
              _geometries(records, crs, store_crs), ',"properties":{']
    for key, column in zip(keys, columns, strict=True):
        pieces += [key, column]
    pieces.append("}},")
    fragments: list[str] = [""] * (len(pieces) * n)
    for i, piece in enumerate(pieces):
        fragments[i::len(pieces)] = [piece] * n if isinstance(piece, str) else piece
    return "".join(fragments)[:-1]


def feature_collection(features: str, count: int, *, links: Sequence[Mapping[str, str]],
                       number_matched: int | None, time_stamp: str) -> str:
    """A FeatureCollection (Part 1 ``featureCollectionGeoJSON``) around `count` features
    written by `features_json`."""
    head: dict[str, Any] = {"type": "FeatureCollection", "timeStamp": time_stamp}
    if number_matched is not None:
        head["numberMatched"] = number_matched
    head["numberReturned"] = count
    head["links"] = list(links)
    return _dumps(head)[:-1] + ',"features":[' + features + "]}"


def feature_json(feature: str, links: Sequence[Mapping[str, str]]) -> str:
    """One Feature text with its links (the single-item answer)."""
    return feature[:-1] + ',"links":' + _dumps(list(links)) + "}"
