"""Comparisons kept in memory per store and (from, to) pair, so the compare page and
the map's API calls that follow it compute a comparison once.

Versions are immutable, so a comparison of two ids never goes stale; only the
versions' catalogue facts (status, the decision attached later) can change, and those
are taken fresh from the store on every call. A few comparisons are kept per store,
least recently used first out, so memory stays bounded whatever pairs are asked for.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections import OrderedDict
from typing import Any

from gisportal.outputs.compare.engine import DEFAULT_IOU_THRESHOLD, compare_versions
from gisportal.outputs.compare.result import Comparison
from gisportal.store.base import Store, Version

__all__ = ["KEPT", "cached_comparison", "clear"]

#: Comparisons kept per store. A typical adjustment's diff is a few thousand features;
#: even two totally different 200 000-parcel versions fit a few times in memory.
KEPT = 8

_CACHE: weakref.WeakKeyDictionary[Store, OrderedDict[tuple[Any, ...], Comparison]] = (
    weakref.WeakKeyDictionary())
_LOCK = threading.Lock()
#: One lock per pair being computed: the page and its map's first API call arrive
#: together, and a 200 000-parcel comparison should run once, not twice.
_BUILDING: dict[tuple[Any, ...], threading.Lock] = {}


def cached_comparison(store: Store, before: Version, after: Version, *,
                      area_tolerance_m2: float | None = None,
                      iou_threshold: float = DEFAULT_IOU_THRESHOLD) -> Comparison:
    """`compare_versions` of the two (already checked) versions, computed once.

    The returned comparison carries `before` and `after` as given, so its summary shows
    their current status and decision.
    """
    key = (before.id, after.id, area_tolerance_m2, iou_threshold)
    found = _get(store, key)
    if found is None:
        with _LOCK:
            building = _BUILDING.setdefault((id(store), *key), threading.Lock())
        try:
            with building:
                found = _get(store, key)  # computed while this thread waited?
                if found is None:
                    found = compare_versions(store, before.id, after.id,
                                             area_tolerance_m2=area_tolerance_m2,
                                             iou_threshold=iou_threshold)
                    _put(store, key, found)
        finally:
            with _LOCK:
                _BUILDING.pop((id(store), *key), None)
    return dataclasses.replace(found, before=before, after=after)


def _get(store: Store, key: tuple[Any, ...]) -> Comparison | None:
    with _LOCK:
        kept = _CACHE.get(store)
        if kept is None or key not in kept:
            return None
        kept.move_to_end(key)
        return kept[key]


def _put(store: Store, key: tuple[Any, ...], value: Comparison) -> None:
    with _LOCK:
        kept = _CACHE.setdefault(store, OrderedDict())
        kept[key] = value
        while len(kept) > KEPT:
            kept.popitem(last=False)


def clear(store: Store | None = None) -> None:
    """Forget the comparisons of `store` (of every store when None)."""
    with _LOCK:
        if store is None:
            _CACHE.clear()
        else:
            _CACHE.pop(store, None)
