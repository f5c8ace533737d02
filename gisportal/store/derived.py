"""Values derived from an immutable layer version, computed once and kept.

A version never changes, so anything computed from it (a district outline, the list
of commune names) stays right as long as that version is the one asked about. One
entry is kept per store and per (what, district, kind): publishing a new version makes
callers ask with another id and the entry is replaced, so memory stays bounded.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from gisportal.store.base import Store, Version

__all__ = ["derived"]

T = TypeVar("T")

_CACHE: weakref.WeakKeyDictionary[Store, dict[Hashable, tuple[int, Any]]] = (
    weakref.WeakKeyDictionary())
_LOCK = threading.Lock()


def derived(store: Store, version: Version, what: Hashable,
            build: Callable[[Store, Version], T]) -> T:
    """``build(store, version)``, cached for ``version`` under the name ``what``.

    Two threads asking at once may both build; the answers are equal, the last one is
    kept. Nothing is held across the build, so a slow build blocks no one else.
    """
    key = (what, version.district, version.kind)
    with _LOCK:
        entry = _CACHE.setdefault(store, {}).get(key)
    if entry is not None and entry[0] == version.id:
        return entry[1]
    value = build(store, version)
    with _LOCK:
        _CACHE.setdefault(store, {})[key] = (version.id, value)
    return value
