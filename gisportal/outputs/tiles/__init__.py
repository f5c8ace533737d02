"""Vector tiles: build a PMTiles archive per layer version, serve tiles out of it.

``build`` writes archives with GDAL (through pyogrio) when a version is published or
first asked for — a large layer one zoom level per process (``parts``), joined by
``merge``; ``pmtiles`` reads them with the whole index in memory. The web blueprint
(:mod:`gisportal.web.tiles`) is a thin layer over ``build`` and ``pmtiles``.
"""

from __future__ import annotations

from gisportal.outputs.tiles.build import (
    PUBLIC_COLUMNS,
    ZOOMS,
    build_tiles,
    ensure_tiles,
    ensure_version_key,
    ensure_version_tiles,
    public_frame,
    tile_workers,
    tiles_key,
    tiles_path,
)
from gisportal.outputs.tiles.pmtiles import (
    PMTilesError,
    PMTilesReader,
    open_area_reader,
    open_reader,
)

__all__ = [
    "PUBLIC_COLUMNS",
    "ZOOMS",
    "PMTilesError",
    "PMTilesReader",
    "build_tiles",
    "ensure_tiles",
    "ensure_version_key",
    "ensure_version_tiles",
    "open_area_reader",
    "open_reader",
    "public_frame",
    "tile_workers",
    "tiles_key",
    "tiles_path",
]
