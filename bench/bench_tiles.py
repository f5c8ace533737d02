"""Vector tiles of a 200 000-parcel district: build time, then serving time per zoom.

Generates one demo district, ingests and publishes it into a temporary data home (the
real pipeline; publishing builds the tiles), then:

1. times the tile build of the published version twice, in the same run: in one
   process (GDAL's PMTiles writer over the whole zoom range, as before zoom levels
   were written in parallel) and the way publishing now builds it (one process per
   zoom level, as many at once as there are CPUs, then merged), prints the ratio and
   checks that both archives hold the same tiles, byte for byte;
2. for each zoom 12–16, fetches a few hundred non-empty tiles inside the district
   through Flask's test client (full WSGI round trip: routing, store look-up of the
   published version, reader cache, headers) and through the raw reader call, and
   prints p50 / p95 of each. Target: p95 <= 2 ms through the app.

A small district (2 000 parcels by default) is built the same way first, for the
build time a planner meets on an ordinary upload.

Usage::

    python bench/bench_tiles.py [--parcels 200000] [--small 2000] [--district 678]
                                [--tiles 300] [--seed 68] [--workers N]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from gisportal import create_app
from gisportal.demo import generate_district
from gisportal.demo_province import PARCEL_FIELD_NAMES
from gisportal.ingest import ingest_file
from gisportal.store import open_store
from gisportal.tiles import PMTilesReader, build_tiles, open_reader, public_frame, tiles_path
from gisportal.tiles.build import PARALLEL_MIN_FEATURES, tile_workers
from gisportal.tiles.build import ZOOMS as ZOOMS_OF_KIND
from gisportal.web import tiles as web_tiles

CRS = "EPSG:5899"  # VN-2000 / TM-3 107°45′ (Lâm Đồng)
ZOOMS = range(12, 17)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank: no interpolation between runs."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def publish_district(home: Path, code: str, parcels: int, seed: int) -> tuple[int, float]:
    """Generate, write as a planner's GeoPackage, ingest and publish; return (version, s)."""
    district = generate_district(code, parcels, seed=seed)
    path = home.parent / f"thua_dat_{code}_{parcels}.gpkg"
    district.parcels.rename(columns=PARCEL_FIELD_NAMES).to_file(path, layer="thua_dat",
                                                                driver="GPKG")
    started = time.perf_counter()
    with open_store(home, crs=CRS) as store:
        result = ingest_file(store, path, "parcels", code, publish=True, user="bench")
    if not result.published:
        raise SystemExit(f"the generated district did not validate: {result.report.summary()}")
    return result.version.id, time.perf_counter() - started


def app_for(home: Path):
    app = create_app({"home": str(home)})
    if "tiles" not in app.blueprints:
        app.register_blueprint(web_tiles.bp)
    return app


def build_times(home: Path, code: str, version_id: int, workers: int | None
                ) -> dict[str, float]:
    """Seconds to read the public frame, to build in one process and as publishing does.

    Both archives are written next to the published one and compared tile by tile.
    """
    out: dict[str, float] = {}
    with open_store(home, crs=CRS) as store:
        version = store.version(version_id)
        started = time.perf_counter()
        frame = public_frame(store, version)
        out["frame"] = time.perf_counter() - started
        zooms = ZOOMS_OF_KIND["parcels"][1] - ZOOMS_OF_KIND["parcels"][0] + 1
        out["publish_workers"] = tile_workers(len(frame), zooms, workers)
        # Below PARALLEL_MIN_FEATURES publishing uses one process; the parallel build is
        # still timed (forced), to show what starting the processes would cost there.
        n = out["publish_workers"] if out["publish_workers"] > 1 else \
            tile_workers(PARALLEL_MIN_FEATURES, zooms, workers)
        folder = tiles_path(home, code, "parcels", version_id).parent
        paths = {}
        for label, w in (("one process", 1), (f"{n} processes", n)):
            paths[label] = folder / f"bench-{w}.pmtiles"
            started = time.perf_counter()
            build_tiles(store, version_id, paths[label], workers=w)
            out[label] = time.perf_counter() - started
    tiles = []
    for path in paths.values():
        with PMTilesReader(path) as r:
            tiles.append([(z, x, y, bytes(r.tile(z, x, y))) for z, x, y, _, _ in r.entries()])
        out[f"MB {path.name}"] = path.stat().st_size / 2**20
        path.unlink()
    out["identical"] = float(tiles[0] == tiles[1])
    out["workers"] = n
    return out


def serve_times(home: Path, code: str, version_id: int, per_zoom: int, seed: int) -> None:
    """Print per-zoom latency of the app and of the raw reader, and tile sizes."""
    path = tiles_path(home, code, "parcels", version_id)
    by_zoom: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    sizes: dict[int, list[int]] = defaultdict(list)
    with PMTilesReader(path) as r:
        for z, x, y, _, length in r.entries():
            by_zoom[z].append((z, x, y))
            sizes[z].append(length)
    rng = random.Random(seed)
    client = app_for(home).test_client()
    raw = open_reader(path)  # the very reader the app uses (shared cache)
    gz = {"Accept-Encoding": "gzip, deflate, br"}
    print(f"{'zoom':>4} {'tiles':>6} {'sampled':>7} {'kB p50':>7} {'kB max':>7} "
          f"{'app p50 ms':>10} {'app p95 ms':>10} {'plain p95':>9} "
          f"{'raw p50 µs':>10} {'raw p95 µs':>10}")
    for z in ZOOMS:
        tiles = by_zoom.get(z, [])
        if not tiles:
            print(f"{z:>4} {0:>6}")
            continue
        sample = rng.sample(tiles, min(per_zoom, len(tiles)))
        for t in sample[:20]:  # warm-up: first-call costs are not what we measure
            client.get("/tiles/{}/parcels/{}/{}/{}.pbf".format(code, *t), headers=gz)
        app_ms, plain_ms, raw_us = [], [], []
        for z_, x, y in sample:
            url = f"/tiles/{code}/parcels/{z_}/{x}/{y}.pbf"
            t0 = time.perf_counter_ns()
            resp = client.get(url, headers=gz)
            t1 = time.perf_counter_ns()
            assert resp.status_code == 200, (url, resp.status_code)
            app_ms.append((t1 - t0) / 1e6)
            t0 = time.perf_counter_ns()
            client.get(url)
            plain_ms.append((time.perf_counter_ns() - t0) / 1e6)
            t0 = time.perf_counter_ns()
            raw.tile(z_, x, y)
            raw_us.append((time.perf_counter_ns() - t0) / 1e3)
        s = sorted(sizes[z])
        print(f"{z:>4} {len(tiles):>6} {len(sample):>7} {statistics.median(s) / 1e3:>7.1f} "
              f"{s[-1] / 1e3:>7.1f} {pct(app_ms, .5):>10.3f} {pct(app_ms, .95):>10.3f} "
              f"{pct(plain_ms, .95):>9.3f} {pct(raw_us, .5):>10.1f} {pct(raw_us, .95):>10.1f}")


def main() -> None:
    """Build, then serve; print one block of figures per district size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=2000,
                        help="also build a district of this many parcels (0: skip)")
    parser.add_argument("--district", default="678", help="GSO code (default: Đức Trọng)")
    parser.add_argument("--tiles", type=int, default=300, help="tiles sampled per zoom")
    parser.add_argument("--seed", type=int, default=68)
    parser.add_argument("--workers", type=int, help="processes for the parallel build "
                                                   "(default: as publishing chooses)")
    args = parser.parse_args()
    sizes = [n for n in (args.small, args.parcels) if n]
    with tempfile.TemporaryDirectory(prefix="gisportal-bench-tiles-") as tmp:
        for n in sizes:
            home = Path(tmp) / f"home{n}"
            home.mkdir()
            vid, ingest_s = publish_district(home, args.district, n, args.seed)
            t = build_times(home, args.district, vid, args.workers)
            one, many = t["one process"], t[f"{int(t['workers'])} processes"]
            mb = tiles_path(home, args.district, "parcels", vid).stat().st_size / 2**20
            print(f"\n{n} parcels, district {args.district}: ingest + publish (tiles "
                  f"included) {ingest_s:.1f} s; archive z12–16 {mb:.1f} MB")
            print(f"  tile build: one process {one:.1f} s; {int(t['workers'])} processes "
                  f"(one zoom level each, merged) {many:.1f} s = {many / one:.2f}x; "
                  f"read + reproject {t['frame']:.1f} s of each; same tiles byte for byte: "
                  f"{'yes' if t['identical'] else 'NO'}; publishing uses "
                  f"{int(t['publish_workers'])} process(es)")
            if n == args.parcels:
                serve_times(home, args.district, vid, args.tiles, args.seed)


if __name__ == "__main__":
    main()
