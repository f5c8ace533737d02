"""Versioned storage of district layers behind one interface (see `Store`).

Callers open a store with `open_store` and never name a backend class, so the PostGIS
backend can be selected by configuration later without changing them.
"""

from __future__ import annotations

import os
from pathlib import Path

from gisportal.store.base import KINDS, STATUSES, Store, Version
from gisportal.store.gpkg import GpkgStore

__all__ = ["KINDS", "STATUSES", "GpkgStore", "Store", "Version", "open_store"]


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
