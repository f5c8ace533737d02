"""GeoJSON answers written as JSON text, a page of features at a time.

A page of 10 000 parcels is several megabytes: it is written as fragments — GEOS
writes every geometry (`shapely.to_geojson`, one call for the page, after one
vectorised reprojection), `json` writes each feature's few properties, and the
fragments are joined — instead of building a dict of the whole collection and
serialising it again.

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
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

import numpy as np
import shapely

from gisportal.outputs.ogc import crs as ogc_crs
from gisportal.outputs.ogc.collections import PublicFields

__all__ = ["feature_collection", "feature_json", "properties", "features_json"]

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                          default=str).encode


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


def _geometries(records: Sequence[Mapping[str, Any]], crs: ogc_crs.OgcCrs,
                store_crs: str) -> list[str]:
    geoms = np.array([r["geometry"] for r in records], dtype=object)
    if not len(geoms):
        return []
    texts = shapely.to_geojson(ogc_crs.reproject(geoms, crs, store_crs))
    return ["null" if t is None else t for t in texts.tolist()]


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


def _encoded(values: Sequence[Any], convert: Callable[[Any], Any]) -> list[str]:
    """Each value converted and written as JSON text; equal values are written once.

    A column of a page repeats many values (communes, land-use codes, sheet numbers),
    which then cost a dictionary look-up each.
    """
    memo: dict[Any, str] = {}
    out = []
    for value in values:
        try:
            text = memo[value]
        except KeyError:
            text = memo[value] = _scalar(convert(value))
        except TypeError:  # an unhashable value (the store gives none; be safe)
            text = _scalar(convert(value))
        out.append(text)
    return out


def features_json(records: Sequence[Mapping[str, Any]], fields: PublicFields,
                  crs: ogc_crs.OgcCrs, store_crs: str) -> list[str]:
    """Each record as a GeoJSON Feature text, its ``id`` the feature id (an integer).

    Written column by column, then one ``%`` format per feature: the same text as
    encoding `properties` of each record, several times faster.
    """
    if not records:
        return []
    names = [*fields.canonical, *fields.source]
    columns = [_encoded([r.get(n) for r in records], _value) for n in fields.canonical]
    columns += [_encoded([r.get(n) for r in records], _text) for n in fields.source]
    keys = ",".join(_dumps(n).replace("%", "%%") + ":%s" for n in names)
    template = '{"type":"Feature","id":%d,"geometry":%s,"properties":{' + keys + "}}"
    ids = [int(r["fid"]) for r in records]
    geometries = _geometries(records, crs, store_crs)
    return [template % row for row in zip(ids, geometries, *columns, strict=True)]


def feature_collection(features: Sequence[str], *, links: Sequence[Mapping[str, str]],
                       number_matched: int | None, time_stamp: str) -> str:
    """A FeatureCollection (Part 1 ``featureCollectionGeoJSON``) around feature texts."""
    head: dict[str, Any] = {"type": "FeatureCollection", "timeStamp": time_stamp}
    if number_matched is not None:
        head["numberMatched"] = number_matched
    head["numberReturned"] = len(features)
    head["links"] = list(links)
    return _dumps(head)[:-1] + ',"features":[' + ",".join(features) + "]}"


def feature_json(feature: str, links: Sequence[Mapping[str, str]]) -> str:
    """One Feature text with its links (the single-item answer)."""
    return feature[:-1] + ',"links":' + _dumps(list(links)) + "}"
