"""Versioned storage of district layers behind one interface (see `Store`), and the
data home that owns the store and every file area (`DataHome`).

Callers open a store through the home (``DataHome(settings).store``) or `open_store`
and never name a backend class: the setting ``database`` selects the PostGIS backend
(`PostgisStore`, production mode) without changing them.

The names are loaded on first use (PEP 562): ``gisportal.store.home`` is imported by
start-up code (the app factory, every job worker's clean-up) that must not pay for
GeoPandas and GDAL just to find a folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gisportal.store.base import KINDS, STATUSES, Store, Version
    from gisportal.store.gpkg import GpkgStore
    from gisportal.store.home import DataHome
    from gisportal.store.postgis import PostgisStore

__all__ = ["KINDS", "STATUSES", "DataHome", "GpkgStore", "PostgisStore", "Store", "Version",
           "open_store"]

_LAZY = {"KINDS": "base", "STATUSES": "base", "Store": "base", "Version": "base",
         "GpkgStore": "gpkg", "PostgisStore": "postgis", "DataHome": "home"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def open_store(home: str | os.PathLike[str] | Path, *, crs: str) -> Store:
    """Open (creating if needed) the store in the data home `home`.

    Parameters
    ----------
    home
        The data home (``$GISPORTAL_HOME``, default ``./instance``), a folder or a
        `DataHome`.
    crs
        CRS of stored geometries, e.g. ``"EPSG:5899"`` (VN-2000 / TM-3 107°45′, Lâm Đồng).

    Returns
    -------
    Store
        The `PostgisStore` on the home's ``database`` setting when it is set
        (production mode), else the embedded `GpkgStore` under the home.
    """
    from gisportal.store.home import DataHome

    return DataHome.at(home).open_store(crs)
