"""Vector tiles of a 200 000-parcel district: build time, then serving time per zoom.

Generates one demo district, ingests and publishes it into a temporary data home (the
real pipeline; publishing builds the tiles) — ``--runs`` times, each into a fresh home,
for the median of that time — then:

1. times the tile build of the published version, ``--runs`` times alternately (one,
   then the other, then the first again: both see the same machine state): in one
   process (GDAL's PMTiles writer over the whole zoom range, as before zoom levels
   were written in parallel) and the way publishing now builds it (one process per
   zoom level, as many at once as there are CPUs, then merged); prints the median of
   each with its range and the machine's load, the ratio (median, and the range of the
   per-run ratios), and checks that every archive holds the same tiles, byte for byte;
2. for each zoom 12–16, fetches a few hundred non-empty tiles inside the district,
   ``--runs`` times: **served** over real HTTP from ``gisportal serve --workers 1``
   (waitress) on 127.0.0.1 with one keep-alive connection; through Flask's test client
   (the whole WSGI app in this process, no socket); and through the raw reader call.
   Prints the median p50 / p95 of each. Target: p95 <= 2 ms served.

A small district (2 000 parcels by default) is built the same way first, for the
build time a planner meets on an ordinary upload.

Usage::

    python bench/bench_tiles.py [--parcels 200000] [--small 2000] [--district 678]
                                [--tiles 300] [--seed 68] [--workers N] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import math
import random
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from gisportal.demo import generate_district
from gisportal.outputs.tiles import (
    PMTilesReader,
    build_tiles,
    open_reader,
    public_frame,
    tiles_path,
)
from gisportal.outputs.tiles.build import PARALLEL_MIN_FEATURES, tile_workers
from gisportal.outputs.tiles.build import ZOOMS as ZOOMS_OF_KIND
from gisportal.services.demo import PARCEL_FIELD_NAMES
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web import tiles as web_tiles
from gisportal.web.app import create_app

try:
    from bench._measure import Runs, alternate_values, measure, print_peers, ratio
    from bench.bench_lookup import Server
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, alternate_values, measure, print_peers, ratio
    from bench_lookup import Server

CRS = "EPSG:5899"  # VN-2000 / TM-3 107°45′ (Lâm Đồng)
ZOOMS = range(12, 17)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank: no interpolation between runs."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def write_district(folder: Path, code: str, parcels: int, seed: int) -> Path:
    """Generate the district and write it as a planner's GeoPackage."""
    district = generate_district(code, parcels, seed=seed)
    path = folder / f"thua_dat_{code}_{parcels}.gpkg"
    district.parcels.rename(columns=PARCEL_FIELD_NAMES).to_file(path, layer="thua_dat",
                                                                driver="GPKG")
    return path


def publish_district(home: Path, path: Path, code: str) -> int:
    """Ingest and publish `path` into `home` (tiles included); the published version."""
    home.mkdir(parents=True, exist_ok=True)
    with open_store(home, crs=CRS) as store:
        result = ingest_file(store, path, "parcels", code, publish=True, user="bench")
    if not result.published:
        raise SystemExit(f"the generated district did not validate: {result.report.summary()}")
    return result.version.id


def tiles_digest(path: Path) -> str:
    """sha256 over every (z, x, y, tile bytes) of an archive: equal digests, same tiles."""
    h = hashlib.sha256()
    with PMTilesReader(path) as r:
        for z, x, y, _, _ in sorted(r.entries()):
            h.update(f"{z}/{x}/{y}:".encode())
            h.update(bytes(r.tile(z, x, y)))
    return h.hexdigest()


def app_for(home: Path):
    app = create_app({"home": str(home)})
    if "tiles" not in app.blueprints:
        app.register_blueprint(web_tiles.bp)
    return app


def build_times(home: Path, code: str, version_id: int, workers: int | None, runs: int
                ) -> dict[str, object]:
    """The tile build in one process and as publishing does, alternately `runs` times.

    Also the time to read the public frame. Every archive is written next to the
    published one and compared tile by tile (by digest) with the first.
    """
    out: dict[str, object] = {}
    with open_store(home, crs=CRS) as store:
        version = store.version(version_id)
        out["frame"] = measure(lambda: public_frame(store, version), runs)
        features = len(public_frame(store, version))
        zooms = ZOOMS_OF_KIND["parcels"][1] - ZOOMS_OF_KIND["parcels"][0] + 1
        out["publish_workers"] = tile_workers(features, zooms, workers)
        # Below PARALLEL_MIN_FEATURES publishing uses one process; the parallel build is
        # still timed (forced), to show what starting the processes would cost there.
        n = out["publish_workers"] if out["publish_workers"] > 1 else \
            tile_workers(PARALLEL_MIN_FEATURES, zooms, workers)
        folder = tiles_path(home, code, "parcels", version_id).parent
        digests: set[str] = set()

        def build(w: int) -> float:
            """Seconds of one build; the digest of its archive is taken after the clock."""
            path = folder / f"bench-{w}.pmtiles"
            started = time.perf_counter()
            build_tiles(store, version_id, path, workers=w)
            seconds = time.perf_counter() - started
            digests.add(tiles_digest(path))
            out[f"MB {w}"] = path.stat().st_size / 2**20
            path.unlink()
            return seconds

        one, many = alternate_values([lambda: build(1), lambda: build(n)], runs)
    out["one"], out["many"] = one, many
    out["identical"] = len(digests) == 1
    out["workers"] = n
    return out


def fetch(conn: http.client.HTTPConnection, url: str, headers: dict[str, str]) -> float:
    """Milliseconds of one GET over the keep-alive connection, body read; must be 200."""
    t0 = time.perf_counter_ns()
    conn.request("GET", url, headers=headers)
    resp = conn.getresponse()
    resp.read()
    ms = (time.perf_counter_ns() - t0) / 1e6
    assert resp.status == 200, (url, resp.status)
    return ms


def serve_times(home: Path, code: str, version_id: int, per_zoom: int, seed: int,
                runs: int, log: Path) -> None:
    """Print per-zoom latency served over HTTP, through the app in-process and of the raw
    reader (medians of `runs` runs over the same sample of tiles), and tile sizes."""
    path = tiles_path(home, code, "parcels", version_id)
    by_zoom: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    sizes: dict[int, list[int]] = defaultdict(list)
    with PMTilesReader(path) as r:
        for z, x, y, _, length in r.entries():
            by_zoom[z].append((z, x, y))
            sizes[z].append(length)
    rng = random.Random(seed)
    samples = {z: rng.sample(by_zoom[z], min(per_zoom, len(by_zoom[z])))
               for z in ZOOMS if by_zoom.get(z)}
    client = app_for(home).test_client()
    raw = open_reader(path)  # the very reader the app uses (shared cache)
    gz = {"Accept-Encoding": "gzip, deflate, br"}
    server = Server(home, 1, log)  # `gisportal serve --workers 1`: waitress, one process
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        per_zoom_runs = {z: Runs() for z in samples}
        for sample in samples.values():
            for t in sample[:20]:  # warm-up: first-call costs are not what we measure
                url = "/tiles/{}/parcels/{}/{}/{}.pbf".format(code, *t)
                client.get(url, headers=gz)
                fetch(conn, url, gz)
        for _ in range(runs):
            for z, sample in samples.items():
                http_ms, app_ms, raw_us = [], [], []
                for z_, x, y in sample:
                    url = f"/tiles/{code}/parcels/{z_}/{x}/{y}.pbf"
                    http_ms.append(fetch(conn, url, gz))
                    t0 = time.perf_counter_ns()
                    resp = client.get(url, headers=gz)
                    app_ms.append((time.perf_counter_ns() - t0) / 1e6)
                    assert resp.status_code == 200, (url, resp.status_code)
                    t0 = time.perf_counter_ns()
                    raw.tile(z_, x, y)
                    raw_us.append((time.perf_counter_ns() - t0) / 1e3)
                runs_z = per_zoom_runs[z]
                for name, values in (("http", http_ms), ("app", app_ms), ("raw", raw_us)):
                    runs_z.add(f"{name} p50", pct(values, .5))
                    runs_z.add(f"{name} p95", pct(values, .95))
        conn.close()
    finally:
        server.stop()
    for r in per_zoom_runs.values():
        r.close()
    first = next(iter(per_zoom_runs.values()))
    print(f"  serving, median of {runs} runs over the same tiles [range of the runs]; "
          f"{first['http p95'].load_text()}")
    print(f"{'zoom':>4} {'tiles':>6} {'sampled':>7} {'kB p50':>7} {'kB max':>7} "
          f"{'served p50 ms':>18} {'served p95 ms':>18} {'app p95 ms':>18} "
          f"{'raw p95 µs':>18}")
    for z in ZOOMS:
        if z not in samples:
            print(f"{z:>4} {0:>6}")
            continue
        r = per_zoom_runs[z]
        s_ = sorted(sizes[z])
        print(f"{z:>4} {len(by_zoom[z]):>6} {len(samples[z]):>7} "
              f"{statistics.median(s_) / 1e3:>7.1f} {s_[-1] / 1e3:>7.1f} "
              f"{r['http p50'].short('', 3):>18} {r['http p95'].short('', 3):>18} "
              f"{r['app p95'].short('', 3):>18} {r['raw p95'].short('', 1):>18}")
    worst = max(samples, key=lambda z: per_zoom_runs[z]["http p95"].median)
    print(f"  served p95, slowest zoom (z{worst}): "
          f"{per_zoom_runs[worst]['http p95'].text('ms', 3)}; served = over HTTP from "
          f"`gisportal serve --workers 1` (waitress) on 127.0.0.1, one keep-alive "
          f"connection; app = Flask test client, in-process, no socket")


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
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each measurement (ingest + publish, the two builds, "
                             "serving); the median counts (default 3)")
    args = parser.parse_args()
    sizes = [n for n in (args.small, args.parcels) if n]
    print_peers("gdal", "pyogrio", "waitress")
    with tempfile.TemporaryDirectory(prefix="gisportal-bench-tiles-") as tmp:
        for n in sizes:
            path = write_district(Path(tmp), args.district, n, args.seed)
            homes = [Path(tmp) / f"home{n}-{i}" for i in range(args.runs)]
            vids: list[int] = []

            def publish(path: Path = path, homes: list[Path] = homes,
                        vids: list[int] = vids) -> None:
                vids.append(publish_district(homes[len(vids)], path, args.district))

            ingest = measure(publish, args.runs)
            home, vid = homes[-1], vids[-1]
            t = build_times(home, args.district, vid, args.workers, args.runs)
            w = int(t["workers"])  # type: ignore[call-overload]
            one, many = t["one"], t["many"]
            mb = tiles_path(home, args.district, "parcels", vid).stat().st_size / 2**20
            print(f"\n{n} parcels, district {args.district}: archive z12–16 {mb:.1f} MB")
            print(f"  ingest + publish (tiles included): {ingest.text()}")
            print(f"  tile build, one process:            {one.text()}")
            print(f"  tile build, {w} processes (one zoom level each, merged): {many.text()}")
            print(f"  {w} processes / one process = {ratio(many, one).text()}; "
                  f"read + reproject {t['frame'].text()} of each; same tiles byte for "
                  f"byte in all {2 * args.runs} archives: {'yes' if t['identical'] else 'NO'}; "
                  f"publishing uses {int(t['publish_workers'])} process(es)")
            for h in homes[:-1]:  # keep the disk small: only the last home is served
                shutil.rmtree(h, ignore_errors=True)
            if n == args.parcels:
                serve_times(home, args.district, vid, args.tiles, args.seed, args.runs,
                            Path(tmp) / f"serve-{n}.log")


if __name__ == "__main__":
    main()
