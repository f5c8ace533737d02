"""Benchmark the embedded store against plain pyogrio on a 200 000-polygon layer.

Prints, from one run of this script on this machine, what the store's guarantees cost
relative to the plain I/O they wrap: write (versioning, WAL, key index) vs a plain
GeoPackage write, bulk read vs a plain read, and key / point look-ups vs a pyogrio query.
Each operation is run ``--runs`` times (default 3), alternately with the plain pyogrio
operation it is compared to, so both see the same machine state; each figure is the
median of the runs with their range and the machine's load, each ratio the ratio of the
medians with the range of the per-run ratios. Look-up figures are per run the median
(p50) and p95 of ``--calls`` calls, then the median of those over the runs.

Usage::

    python bench/bench_store.py [--n 200000] [--calls 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from gisportal.store import open_store

try:
    from bench._measure import Runs, alternate, print_peers, ratio
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, alternate, print_peers, ratio

CRS = "EPSG:5899"  # VN-2000 / TM-3 107°45′ (Lâm Đồng)
COMMUNES = ["Phường 1", "Xã Tà Nung", "Xã Xuân Trường", "Phường 12", "Xã Đạ Sar"]


def grid(n: int) -> gpd.GeoDataFrame:
    """`n` 20 m squares near Đà Lạt, with parcel-like attributes.

    Squares share edges as real cadastral parcels do, and sheets of 500 parcels give
    key look-ups realistic selectivity.
    """
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x0 = 540_000 + (i % side) * 20.0
    y0 = 1_310_000 + (i // side) * 20.0
    return gpd.GeoDataFrame(
        {
            "commune": np.array(COMMUNES, dtype=object)[i % len(COMMUNES)],
            "sheet": i // 500 + 1,
            "parcel": i % 500 + 1,
            "land_use": np.where(i % 3 == 0, "ONT", "CLN"),
            "area_m2": np.full(n, 400.0),
            "src_row": i,
            "attrs": [f'{{"SoThuTuThua": {p}}}' for p in i % 500 + 1],
        },
        geometry=shapely.box(x0, y0, x0 + 20, y0 + 20),
        crs=CRS,
    )


def latencies(calls: list[Callable[[], object]]) -> tuple[float, float]:
    """Median and 95th percentile (ms) of one run of each call."""
    times = []
    for call in calls:
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    p95 = statistics.quantiles(times, n=20)[-1]
    return statistics.median(times), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="polygons in the layer")
    parser.add_argument("--calls", type=int, default=1000, help="look-ups to time")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each measurement, alternated; the median counts "
                             "(default 3)")
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    gdf = grid(args.n)
    keys = ("sheet", "parcel")
    print_peers("pyogrio", "gdal")

    with tempfile.TemporaryDirectory() as tmp:
        # Writes: per run a plain write, then a version into a new district file (a fresh
        # data home), then a second version into that now existing file.
        stores, versions = [], []
        counter = iter(range(args.runs))
        state: dict[str, object] = {}

        def write_plain() -> None:
            state["i"] = i = next(counter)
            pyogrio.write_dataframe(gdf, Path(tmp) / f"plain{i}.gpkg", layer="parcels")

        def add(into: str) -> None:
            if into == "new":
                if stores:  # only the last run's store stays open (and on disk)
                    stores.pop().close()
                stores.append(open_store(Path(tmp) / f"home{state['i']}", crs=CRS))
            versions.append(stores[-1].add_version(
                "672", "parcels", gdf, source_name="bench.zip", source_sha256="0" * 64,
                created_by="bench", key_columns=keys))

        write_plain_m, write_new, write_existing = alternate(
            [write_plain, lambda: add("new"), lambda: add("existing")], args.runs)
        store, second = stores[-1], versions[-1]
        plain = Path(tmp) / "plain0.gpkg"

        read_plain, read_store = alternate(
            [lambda: pyogrio.read_dataframe(plain, layer="parcels"),
             lambda: store.read(second.id)], args.runs)
        box = (545_000.0, 1_315_000.0, 546_000.0, 1_316_000.0)
        bbox_plain, bbox_store = alternate(
            [lambda: pyogrio.read_dataframe(plain, layer="parcels", bbox=box),
             lambda: store.read(second.id, bbox=box)], args.runs)

        picks = rng.integers(0, args.n, args.calls)
        sheets, parcels = picks // 500 + 1, picks % 500 + 1
        xmin, ymin, xmax, ymax = gdf.total_bounds
        xs, ys = rng.uniform(xmin, xmax, args.calls), rng.uniform(ymin, ymax, args.calls)
        finds = [lambda s=int(s), p=int(p): store.find(second.id, {"sheet": s, "parcel": p})
                 for s, p in zip(sheets, parcels, strict=True)]
        # Baseline: the same query through GDAL, which reopens the file on every call.
        wheres = [lambda s=int(s), p=int(p): pyogrio.read_dataframe(
            plain, layer="parcels", where=f"sheet = {s} AND parcel = {p}")
            for s, p in zip(sheets[:100], parcels[:100], strict=True)]
        points = [lambda x=float(x), y=float(y): store.at_point(second.id, x, y)
                  for x, y in zip(xs, ys, strict=True)]
        look = Runs()
        for _ in range(args.runs):  # alternated: find, where, point, find, ...
            for name, calls in (("find", finds), ("where", wheres), ("point", points)):
                p50, p95 = latencies(calls)
                look.add(f"{name} p50", p50)
                look.add(f"{name} p95", p95)
        look.close()
        hits = {len(store.find(second.id, {"sheet": int(s), "parcel": int(p)}))
                for s, p in zip(sheets[:20], parcels[:20], strict=True)}
        store.close()

    ms = 1000.0
    print(f"layer: {args.n} polygons, {len(gdf.columns) - 1} attribute columns; median of "
          f"{args.runs} runs (range); ratios: of the medians (range of the per-run ratios)")
    print(f"write  plain pyogrio            {write_plain_m.text()}")
    print(f"       add_version, new file    {write_new.text()} = "
          f"{ratio(write_new, write_plain_m).text()}")
    print(f"       add_version, existing    {write_existing.text()} = "
          f"{ratio(write_existing, write_plain_m).text()}")
    print(f"read   plain pyogrio            {read_plain.text()}")
    print(f"       store.read               {read_store.text()} = "
          f"{ratio(read_store, read_plain).text()}")
    print(f"bbox   plain pyogrio            {bbox_plain.scaled(ms).text('ms', 1)}")
    print(f"       store.read(bbox)         {bbox_store.scaled(ms).text('ms', 1)} = "
          f"{ratio(bbox_store, bbox_plain).text()}")
    print(f"find   p50 {look['find p50'].text('ms')}, p95 {look['find p95'].short('ms')} over "
          f"{args.calls} calls a run ({hits} hits each)")
    print(f"       pyogrio where-query p50 {look['where p50'].short('ms')} (100 calls a run): "
          f"find = {ratio(look['find p50'], look['where p50']).text()}")
    print(f"point  p50 {look['point p50'].text('ms')}, p95 {look['point p95'].short('ms')} "
          f"over {args.calls} calls a run = {ratio(look['point p50'], look['where p50']).text()}"
          " the pyogrio where-query")


if __name__ == "__main__":
    main()
