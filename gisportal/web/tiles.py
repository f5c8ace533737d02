"""Vector tiles over HTTP (contract): ``GET /tiles/<district>/<kind>/<z>/<x>/<y>.pbf``;
for GIS clients ``/tiles/<district>/<kind>.json`` (TileJSON) and
``/tiles/<district>/style.json`` (a Mapbox GL style, `gisportal.outputs.tiles.style`).

A tile request asks the store which version is published *now*, then slices the tile
out of that version's PMTiles archive (read once, index kept in memory). So tiles
follow the published pointer: the request after a publish serves the new version's
archive, and no cache needs invalidating — each version has its own file and its own
ETags. The archive is a file of the tile area: mapped from disk by default; in S3 mode read by
ranged GETs (one GET per tile once the directories are cached; see
:mod:`gisportal.outputs.tiles.pmtiles`) until the node's cache holds a copy of it
(downloaded once per node in the background, `tile_cache_mb`; see
:mod:`gisportal.outputs.tiles.cache`), then mapped from that copy like a local file.

Answers
-------
200
    ``application/vnd.mapbox-vector-tile``; ``Content-Encoding: gzip`` when the stored
    tile is gzip and the client accepts gzip, else the plain tile.
204
    No feature in that tile (outside the layer, or outside its zoom range: clients
    overzoom the last zoom level themselves).
304
    ``If-None-Match`` matched the tile's ETag.
400
    z above 24, or x, y outside ``0 .. 2**z - 1`` (JSON error).
404
    Unknown district or kind, or nothing published for the layer (JSON error).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from gisportal.base.errors import NotFoundError, UsageError
from gisportal.base.models import layer_model
from gisportal.outputs.tiles.build import ensure_version_key, tiles_key
from gisportal.outputs.tiles.cache import DEFAULT_CHECK_SECONDS, ArchiveCache, archive_cache
from gisportal.outputs.tiles.pmtiles import (
    PMTilesReader,
    forget_area_reader,
    open_area_reader,
)
from gisportal.outputs.tiles.style import TileLayer, gl_style, tilejson
from gisportal.store.base import KINDS, check_district_code, check_kind
from gisportal.store.files import ObjectChangedError
from gisportal.web import get_home, get_store

__all__ = ["bp", "MVT_MIMETYPE", "MAX_ZOOM", "DEFAULT_MAX_AGE"]

bp = Blueprint("tiles", __name__)

MVT_MIMETYPE = "application/vnd.mapbox-vector-tile"
#: Highest zoom a tile may be asked for (Leaflet's practical limit; far beyond the data).
MAX_ZOOM = 24
#: Seconds a client or proxy may reuse a tile without asking again. Short, because the
#: URL stays the same when a new version is published; the ETag makes the re-check cheap.
DEFAULT_MAX_AGE = 300


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse coordinates that are not a tile, with a 400 that says what is valid."""
    if not 0 <= z <= MAX_ZOOM:
        raise UsageError(f"zoom {z} is outside 0–{MAX_ZOOM}", where=f"{z}/{x}/{y}",
                         fix=f"ask for a zoom between 0 and {MAX_ZOOM}", code="TILE-RANGE")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise UsageError(f"tile {z}/{x}/{y} does not exist at zoom {z}",
                         where=f"{z}/{x}/{y}", fix=f"x and y go from 0 to {n - 1} at zoom {z}",
                         code="TILE-RANGE")


def _archive_cache() -> ArchiveCache | None:
    """This process's cache of the node's copies of archives, when the tile area is an
    object store and ``tile_cache_mb`` is above 0 (a folder area is mapped directly)."""
    home = get_home()
    if not home.files_remote:
        return None
    settings = current_app.config["GISPORTAL"]
    mb = int(settings.get("tile_cache_mb", 0))
    if mb <= 0:
        return None
    return archive_cache(home.tile_cache, mb * 1024**2,
                         float(settings.get("tile_cache_check_seconds",
                                            DEFAULT_CHECK_SECONDS)))


def _reader(district: str, kind: str) -> tuple[int, PMTilesReader]:
    """The published version id of the layer and the reader of its archive.

    Builds the archive when the version has none yet (under the layer's build lock, so
    concurrent requests wait for one build instead of starting their own).
    """
    store = get_store()
    version = store.published(district, kind)
    if version is None:
        raise NotFoundError(f"nothing is published for the {kind} layer of district "
                            f"{district}", where=f"/tiles/{district}/{kind}",
                            fix="publish a version of the layer first", code="TILES-NONE")
    home = get_home()
    area = home.tile_area
    key = tiles_key(district, kind, version.id)
    cache = _archive_cache()
    try:
        return version.id, open_area_reader(area, key, cache)
    except FileNotFoundError:
        ensure_version_key(store, home, version)
        return version.id, open_area_reader(area, key, cache)


def _tile_bytes(district: str, kind: str, reader: PMTilesReader, version_id: int,
                z: int, x: int, y: int) -> tuple[PMTilesReader, bytes | None]:
    """The stored tile, reopening the archive once if it was replaced since this process
    cached its directory (a rebuilt S3 object: its ETag changed; or removed, and then
    built again as for a first request)."""
    try:
        return reader, reader.tile(z, x, y)
    except ObjectChangedError:
        forget_area_reader(get_home().tile_area, tiles_key(district, kind, version_id))
        _, reader = _reader(district, kind)
        return reader, reader.tile(z, x, y)


@bp.get("/tiles/<district>/<kind>/<int(signed=True):z>/<int(signed=True):x>/"
        "<int(signed=True):y>.pbf")
def tile(district: str, kind: str, z: int, x: int, y: int) -> Response:
    """One Mapbox Vector Tile of the published version of a district layer."""
    check_district_code(district)
    check_kind(kind)
    check_tile(z, x, y)
    version_id, reader = _reader(district, kind)
    gzip_ok = request.accept_encodings["gzip"] > 0
    send_gzip = reader.tile_gzip and gzip_ok
    # The version id ties the ETag to what is published; the archive's mtime to the
    # build (a rebuilt archive may differ byte for byte); the encoding to the bytes sent.
    etag = (f'"v{version_id}-{reader.stamp[2]:x}-{z}-{x}-{y}'
            f'{"-gz" if send_gzip else ""}"')
    max_age = int(current_app.config["GISPORTAL"].get("tiles_max_age", DEFAULT_MAX_AGE))
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}",
               "Vary": "Accept-Encoding"}
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    reader, data = _tile_bytes(district, kind, reader, version_id, z, x, y)
    if data is None:
        return Response(status=204, headers=headers)
    if send_gzip:
        headers["Content-Encoding"] = "gzip"
    elif reader.tile_gzip:
        data = reader.plain(data)
    return Response(data, status=200, headers=headers, content_type=MVT_MIMETYPE)


# --------------------------------------------------------------------------- for GIS clients

#: Who the tiles are credited to in TileJSON and styles.
ATTRIBUTION = "gisportal — Sở Nông nghiệp và Môi trường tỉnh Lâm Đồng (dữ liệu đã công bố)"


def _tile_layer(district: str, kind: str) -> TileLayer:
    """The published layer's tiles as a `TileLayer` (its archive's zoom range, bounds
    and vector layers; an absolute URL template on this site)."""
    version_id, reader = _reader(district, kind)
    h = reader.header
    root = request.url_root.rstrip("/")
    meta = reader.metadata()
    return TileLayer(kind=kind, url=f"{root}/tiles/{district}/{kind}/{{z}}/{{x}}/{{y}}.pbf",
                     minzoom=h.min_zoom, maxzoom=h.max_zoom,
                     bounds=(round(h.min_lon, 6), round(h.min_lat, 6), round(h.max_lon, 6),
                             round(h.max_lat, 6)),
                     vector_layers=list(meta.get("vector_layers") or ()), version=version_id)


def _json(doc: dict, etag: str) -> Response:
    response = Response(json.dumps(doc, ensure_ascii=False), content_type="application/json")
    response.set_etag(etag)
    max_age = int(current_app.config["GISPORTAL"].get("tiles_max_age", DEFAULT_MAX_AGE))
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response.make_conditional(request)


@bp.get("/tiles/<district>/<kind>.json")
def tile_json(district: str, kind: str) -> Response:
    """TileJSON 3.0.0 of a district's published layer (QGIS, MapLibre, OpenLayers)."""
    check_district_code(district)
    check_kind(kind)
    layer = _tile_layer(district, kind)
    name = f"{_district_name(district)} — {layer_model(kind).title.get('vi', kind)}"
    return _json(tilejson(layer, name=name, attribution=ATTRIBUTION),
                 f"tilejson-{district}-{kind}-{layer.version}")


@bp.get("/tiles/<district>/style.json")
def style_json(district: str) -> Response:
    """A Mapbox GL style of the district's published layers with the official colours
    (QGIS's vector tile connection takes it as its style URL)."""
    check_district_code(district)
    store = get_store()
    layers = [_tile_layer(district, kind) for kind in KINDS
              if store.published(district, kind) is not None]
    if not layers:
        raise NotFoundError(f"nothing is published for district {district}",
                            where=f"/tiles/{district}/style.json",
                            fix="publish a layer of the district first", code="TILES-NONE")
    lang = request.args.get("lang", "vi")
    doc = gl_style(layers, name=_district_name(district), attribution=ATTRIBUTION,
                   lang="en" if lang == "en" else "vi")
    return _json(doc, "style-" + district + "-" + "-".join(str(t.version) for t in layers)
                 + ("-en" if lang == "en" else ""))


def _district_name(code: str) -> str:
    from gisportal.base import seeds

    try:
        return seeds.district(code).name
    except KeyError:
        return code
