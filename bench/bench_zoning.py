"""Look-up with construction and urban plans: ``/api/lookup`` on parcels that planning
projects cover, against the same look-ups on the same district without projects.

Two data homes, one copy of the other: the demo district (200 000 parcels by default)
alone, and the same with `--projects` planning projects published over it (each a
square of `--size` metres of blocks between roads, drawn by the demo's generator:
about 150 lots, 20 road lots and 300 red and building lines per 1.5 km square). The
look-ups (by key, by lat/lon and by VN-2000 X/Y, mixed, as bench_lookup.py sends them)
go to parcels inside the projects, so every answer of the second home carries
``zoning``. Both homes are served by the real command line (``gisportal serve``) on
127.0.0.1 and loaded by wrk (native client) with `--connections` connections, closed
loop; the two servers take turns, run after run, so both see the same machine state.
Each figure is the median of `--runs` runs with its range and the machine's load; the
ratio "with / without" is the median of the per-run ratios.

Usage (from the repository root)::

    python bench/bench_zoning.py [--parcels 200000] [--projects 8] [--size 1500]
                                 [--connections 32] [--duration 15] [--runs 3]
                                 [--workers 2] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import shapely

from gisportal.base import seeds
from gisportal.base.crs import to_lonlat
from gisportal.store import open_store

try:
    from bench._measure import Runs, load_now, print_peers
    from bench.bench_lookup import WRK_SCRIPT, Server, ensure_home, pct, run_wrk
except ModuleNotFoundError:  # run as a script
    from _measure import Runs, load_now, print_peers
    from bench_lookup import WRK_SCRIPT, Server, ensure_home, pct, run_wrk


def publish_projects(home: Path, district: str, count: int, size: float, seed: int
                     ) -> list[tuple[float, float, float, float]]:
    """`count` demo projects over the district's parcels, their boxes (store CRS)."""
    from gisportal.demo.zoning import DemoProject, plan_frames
    from gisportal.services import projects
    from gisportal.services.ingest import ingest_file

    rng = random.Random(seed)
    boxes = []
    with open_store(home, crs=seeds.province()["crs"]) as store:
        parcels = store.read(store.published(district, "parcels").id, columns=[])
        centres = shapely.get_coordinates(shapely.centroid(parcels.geometry.values))
        blocks = max(1, int(size // 137))
        for k in range(count):
            x, y = centres[rng.randrange(len(centres))]
            p = DemoProject(id=f"{district}-bench-{k}", district=district,
                            name=f"Quy hoạch phân khu số {k + 1} (đo hiệu năng)",
                            level="zoning", scale="1/2000", offset=(-size / 2, -size / 2),
                            blocks=(blocks, blocks), block=(120.0, 100.0), road=13.0,
                            main_road=24.0, main_every=3)
            projects.create(store.home, project_id=p.id, district=district, name=p.name,
                            level=p.level, scale=p.scale, status="approved", by="bench")
            lots, lines = plan_frames(p, (x, y), store.crs, seed)
            decision = {"number": f"{k + 1}/QĐ-UBND", "date": "2020-01-15",
                        "authority": "UBND tỉnh Lâm Đồng"}
            for kind, frame, meta in (("zoning_lots", lots, {"decision": decision}),
                                      ("red_lines", lines, {})):
                path = home / f"bench-{p.id}-{kind}.gpkg"
                frame.to_file(path, driver="GPKG")
                result = ingest_file(store, path, kind, None, project=p.id, publish=True,
                                     user="bench", meta=meta)
                if not result.published:
                    raise SystemExit(f"{p.id} {kind} not published: {result.not_published}")
                path.unlink()
            boxes.append(tuple(float(v) for v in lots.total_bounds))
    return boxes


def queries_inside(home: Path, district: str, boxes, n: int, seed: int
                   ) -> tuple[list[str], int]:
    """`n` look-ups of each kind on parcels inside the project boxes, shuffled."""
    with open_store(home, crs=seeds.province()["crs"]) as store:
        version = store.published(district, "parcels")
        frames = [store.read(version.id, bbox=b, columns=["commune", "sheet", "parcel"])
                  for b in boxes]
    gdf = pd.concat(frames) if len(frames) > 1 else frames[0]
    inside = shapely.within(shapely.point_on_surface(gdf.geometry.values),
                            shapely.union_all([shapely.box(*b) for b in boxes]))
    gdf = gdf[inside]
    if not len(gdf):
        raise SystemExit("no parcel inside the projects: raise --size")
    rng = random.Random(seed)
    picks = [rng.randrange(len(gdf)) for _ in range(n)]
    points = shapely.get_coordinates(shapely.point_on_surface(gdf.geometry.values[picks]))
    lon, lat = to_lonlat(points[:, 0], points[:, 1])
    out = [f"latlon /api/lookup?lat={la:.7f}&lon={lo:.7f}" for la, lo in zip(lat, lon,
                                                                             strict=True)]
    out += [f"xy /api/lookup?x={py:.2f}&y={px:.2f}" for px, py in points]
    for i in picks:
        row = gdf.iloc[i]
        query = {"district": district, "sheet": int(row["sheet"]), "parcel": int(row["parcel"])}
        if isinstance(row["commune"], str):
            query["commune"] = row["commune"]
        out.append("key /api/lookup?" + urlencode(query))
    rng.shuffle(out)
    return out, len(gdf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="data home of the district (built if needed)")
    parser.add_argument("--district", default="678")
    parser.add_argument("--parcels", type=int, default=200_000)
    parser.add_argument("--projects", type=int, default=8)
    parser.add_argument("--size", type=float, default=1500.0, help="project side (m)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="1 = waitress, N = gunicorn")
    parser.add_argument("--queries", type=int, default=2000, help="URLs per look-up kind")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian's package)")

    with tempfile.TemporaryDirectory(prefix="gisportal-bench-zoning-") as tmp_name:
        tmp = Path(tmp_name)
        plain = args.home or tmp / "plain"
        ensure_home(plain, args.district, args.parcels)
        zoned = tmp / "zoned"
        print(f"copying {plain} and publishing {args.projects} projects ...", flush=True)
        shutil.copytree(plain, zoned, ignore=shutil.ignore_patterns("tmp", "logs"))
        start = time.perf_counter()
        boxes = publish_projects(zoned, args.district, args.projects, args.size, args.seed)
        print(f"  published in {time.perf_counter() - start:.0f} s", flush=True)
        lines, covered = queries_inside(plain, args.district, boxes, args.queries, args.seed)
        urls = tmp / "lookup.txt"
        urls.write_text("".join(line + "\n" for line in lines))
        script = tmp / "lookup.lua"
        script.write_text(WRK_SCRIPT)
        print_peers("wrk", "gunicorn", "waitress")
        print(f"{args.parcels} parcels; {covered} of them inside {args.projects} projects of "
              f"{args.size:g} m; look-ups on those; {args.connections} connections, closed "
              f"loop; {os.cpu_count()} CPUs shared by server and wrk; {args.duration:g} s "
              f"per run, {args.runs} runs; latencies in ms")
        servers = {"without": Server(plain, args.workers, tmp / "plain.log"),
                   "with": Server(zoned, args.workers, tmp / "zoned.log")}
        runs = {name: Runs() for name in servers}
        ratio = Runs()
        zoning_seen = 0
        try:
            for server in servers.values():  # warm-up
                run_wrk(script, server.url, urls, args.connections, 3, 0, tmp / "warm.txt")
            first = lines[0].split(" ", 1)[1]
            with urllib.request.urlopen(servers["with"].url + first) as r:
                zoning_seen = len(json.load(r).get("zoning") or [])
            for acc in (*runs.values(), ratio):
                acc.before = load_now()
            for _ in range(args.runs):
                p99 = {}
                for name, server in servers.items():
                    result, wall, errors = run_wrk(script, server.url, urls,
                                                   args.connections, args.duration, 0,
                                                   tmp / f"{name}.txt")
                    send = np.concatenate([v["send"] for v in result.values()])
                    status = np.concatenate([v["status"] for v in result.values()])
                    bad = int((status != 200).sum())
                    if bad:
                        raise SystemExit(f"{name}: {bad} answers were not 200 {errors}")
                    runs[name].add("rps", len(send) / wall)
                    runs[name].add("p50", pct(send, 50))
                    runs[name].add("p99", pct(send, 99))
                    p99[name] = (pct(send, 50), pct(send, 99))
                ratio.add("p50", p99["with"][0] / p99["without"][0])
                ratio.add("p99", p99["with"][1] / p99["without"][1])
            for acc in (*runs.values(), ratio):
                acc.after = load_now()
        finally:
            for server in servers.values():
                server.stop()
        label = servers["with"].label
        print(f"\n{label}; the first look-up of the list answered {zoning_seen} plan(s) "
              "under zoning")
        for name in ("without", "with"):
            r = runs[name]
            print(f"{name + ' projects':17} req/s {r['rps'].short('', 0):>22}  "
                  f"p50 {r['p50'].short(''):>22}  p99 {r['p99'].short(''):>22}")
        print(f"with / without: p50 {ratio['p50'].short('×')}; p99 {ratio['p99'].text('×')} "
              "(medians of the per-run ratios)")


if __name__ == "__main__":
    main()
