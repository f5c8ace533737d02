"""Versioned storage of district layers behind one interface (see `Store`).

Callers open a store with `open_store` and never name a backend class, so the PostGIS
backend can be selected by configuration later without changing them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gisportal.settings import data_home
from gisportal.store.base import KINDS, STATUSES, Store, Version
from gisportal.store.gpkg import GpkgStore

__all__ = ["KINDS", "STATUSES", "GpkgStore", "Store", "Version", "open_store", "output_home"]


def output_home(store: Store, settings: dict[str, Any] | None = None) -> Path:
    """Where a store's published output (tiles, decision PDFs) goes: the data home the
    store lives in, so a store opened on another home than ``$GISPORTAL_HOME`` keeps
    its files with it."""
    home = getattr(store, "home", None)
    return Path(home) if home is not None else data_home(settings)


def open_store(home: str | os.PathLike[str] | Path, *, crs: str) -> Store:
    """Open (creating if needed) the store in the data home `home`.

    Parameters
    ----------
    home
        The data home (``$GISPORTAL_HOME``, default ``./instance``).
    crs
        CRS of stored geometries, e.g. ``"EPSG:5899"`` (VN-2000 / TM-3 107°45′, Lâm Đồng).

    Returns
    -------
    Store
        For now always the embedded `GpkgStore`; a ``backend`` setting will select
        PostGIS here later.
    """
    return GpkgStore(home, crs=crs)
