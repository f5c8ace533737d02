"""Merge PMTiles archives that hold different zoom levels of one layer into one archive.

Why: GDAL's vector-tile writer works through a layer one zoom level after another in a
single process (about 10 s per level for 200 000 parcels), so a layer's zoom range can
be written as several archives in parallel processes (:mod:`gisportal.outputs.tiles.parts`) and
joined here. Joining needs no tile to be decoded: tile ids grow with the zoom level,
so the tile data sections are concatenated in zoom order and only the directory is
rebuilt, with every offset shifted by the data written before it. The tiles of the
merged archive are the parts' tiles, byte for byte.

The directory and header are serialised with the ``pmtiles`` package (the format's
reference implementation), which also splits a large directory into leaf directories
the way the specification recommends (root directory under 16 kB).
"""

from __future__ import annotations

import copy
import gzip
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pmtiles.tile import Compression, Entry, TileType, serialize_header
from pmtiles.writer import optimize_directories

from gisportal.outputs.tiles.pmtiles import HEADER_SIZE, PMTilesError, PMTilesReader

__all__ = ["merge_archives", "merge_metadata"]

#: Root directory budget: the first 16 kB of an archive (header included) should hold
#: the header and root directory, so a client gets both with one request.
_ROOT_BUDGET = 16384 - HEADER_SIZE


def merge_metadata(metas: Sequence[dict[str, Any]], minzoom: int, maxzoom: int
                   ) -> dict[str, Any]:
    """The TileJSON-like metadata of the merged archive, from the parts' (lowest zoom first).

    Everything but the zoom range is taken from the first part, which is what GDAL would
    have written for the whole range: its ``center`` names the lowest zoom, and its
    ``tilestats`` value samples come from the lowest-zoom tiles, which GDAL encodes
    first. Per layer and attribute, the zoom range, the fields and the value statistics
    (distinct count, min, max) are combined over all parts.
    """
    if not metas:
        raise ValueError("no metadata to merge")
    out = copy.deepcopy(dict(metas[0]))
    as_text = isinstance(out.get("minzoom"), str)  # GDAL writes the zooms as strings
    out["minzoom"] = str(minzoom) if as_text else minzoom
    out["maxzoom"] = str(maxzoom) if as_text else maxzoom
    layers = {layer.get("id"): layer for layer in out.get("vector_layers") or []}
    stats = {s.get("layer"): s for s in (out.get("tilestats") or {}).get("layers") or []}
    for meta in metas[1:]:
        for layer in meta.get("vector_layers") or []:
            mine = layers.get(layer.get("id"))
            if mine is None:
                mine = layers[layer.get("id")] = copy.deepcopy(layer)
                out.setdefault("vector_layers", []).append(mine)
            for key, pick in (("minzoom", min), ("maxzoom", max)):
                if key in layer and key in mine:
                    mine[key] = pick(mine[key], layer[key])
            mine.setdefault("fields", {}).update(
                {k: v for k, v in (layer.get("fields") or {}).items()
                 if k not in mine["fields"]})
        for layer_stats in (meta.get("tilestats") or {}).get("layers") or []:
            mine = stats.get(layer_stats.get("layer"))
            if mine is None:
                continue
            attrs = {a.get("attribute"): a for a in mine.get("attributes") or []}
            for attr in layer_stats.get("attributes") or []:
                a = attrs.get(attr.get("attribute"))
                if a is None:
                    continue
                for key, pick in (("count", max), ("min", min), ("max", max)):
                    if key in attr and key in a:
                        a[key] = pick(a[key], attr[key])
    return out


def merge_archives(parts: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                   metadata: dict[str, Any] | None = None) -> Path:
    """Write one archive holding every tile of `parts`, which cover disjoint zoom ranges.

    Parameters
    ----------
    parts
        Archives in increasing zoom order; the tile ids of each must all be above those
        of the one before (what one archive per zoom range gives). Same tile type and
        tile compression in all.
    out
        The merged archive (overwritten). Not fsynced: the caller decides durability.
    metadata
        The merged archive's JSON metadata; by default `merge_metadata` of the parts'.

    Raises
    ------
    PMTilesError
        A part cannot be read, or the parts overlap, are out of order or differ in tile
        type or compression.
    """
    if not parts:
        raise PMTilesError("no archive to merge")
    readers = [PMTilesReader(p) for p in parts]
    try:
        first = readers[0].header
        entries: list[Entry] = []
        base = 0
        for reader in readers:
            h = reader.header
            if (h.tile_type, h.tile_compression) != (first.tile_type, first.tile_compression):
                raise PMTilesError(f"{reader.path} has other tiles (type {h.tile_type}, "
                                   f"compression {h.tile_compression}) than {readers[0].path}")
            for tile_id, offset, length, run in reader.directory_entries():
                if entries and tile_id < entries[-1].tile_id + entries[-1].run_length:
                    raise PMTilesError(f"{reader.path} overlaps or precedes the tiles of "
                                       "the archives before it: merge zoom ranges in order")
                entries.append(Entry(tile_id, base + offset, length, run))
            base += h.data_length
        if metadata is None:
            metadata = merge_metadata([r.metadata() for r in readers],
                                      min(r.header.min_zoom for r in readers),
                                      max(r.header.max_zoom for r in readers))
        header = _header(readers, entries, data_length=base)
        if entries:
            root, leaves, _ = optimize_directories(entries, _ROOT_BUDGET)
        else:
            root, leaves = gzip.compress(b"\x00", mtime=0), b""  # zero entries
        meta = gzip.compress(json.dumps(metadata, ensure_ascii=False).encode(), mtime=0)
        header.update(
            root_offset=HEADER_SIZE, root_length=len(root),
            metadata_offset=HEADER_SIZE + len(root), metadata_length=len(meta),
            leaf_directory_offset=HEADER_SIZE + len(root) + len(meta),
            leaf_directory_length=len(leaves),
            tile_data_offset=HEADER_SIZE + len(root) + len(meta) + len(leaves))
        path = Path(out)
        with open(path, "wb") as fh:
            fh.write(serialize_header(header))
            fh.write(root)
            fh.write(meta)
            fh.write(leaves)
            for reader in readers:
                reader.copy_data(fh)
    finally:
        for reader in readers:
            reader.close()
    return path


def _header(readers: Sequence[PMTilesReader], entries: Sequence[Entry], *,
            data_length: int) -> dict[str, Any]:
    """Header fields of the merged archive (offsets are filled in by the caller)."""
    heads = [r.header for r in readers]
    first = heads[0]

    def e7(value: float) -> int:
        return round(value * 10_000_000)

    return {
        "tile_data_length": data_length,
        "addressed_tiles_count": sum(h.addressed_tiles for h in heads),
        "tile_entries_count": len(entries),
        "tile_contents_count": sum(h.tile_contents for h in heads),
        "clustered": all(h.clustered for h in heads),
        "internal_compression": Compression.GZIP,
        "tile_compression": Compression(first.tile_compression),
        "tile_type": TileType(first.tile_type),
        "min_zoom": min(h.min_zoom for h in heads),
        "max_zoom": max(h.max_zoom for h in heads),
        "min_lon_e7": e7(min(h.min_lon for h in heads)),
        "min_lat_e7": e7(min(h.min_lat for h in heads)),
        "max_lon_e7": e7(max(h.max_lon for h in heads)),
        "max_lat_e7": e7(max(h.max_lat for h in heads)),
        # GDAL puts the centre at the lowest zoom: the first part's.
        "center_zoom": first.center_zoom,
        "center_lon_e7": e7(first.center_lon),
        "center_lat_e7": e7(first.center_lat),
    }
