"""Time of the merged province's demo per parcel; time and peak memory of one district.

Default: the whole demo of the merged province — the 30 plan districts
generated and ingested, validated and published with their tiles into a fresh home
(``build_demo``, what ``gisportal demo`` does) — in a fresh subprocess per run, with
the province layout timed apart; printed as the median of ``--runs`` runs (default 3)
with their range and the machine's load, and per parcel.

``--district CODE``: the generator alone for one district, at several sizes. Runs each
size in a fresh subprocess, so that the peak resident set size
(``resource.getrusage``) belongs to that size alone. With ``--trace`` a second run per
size reports the tracemalloc peak of Python-level allocations (NumPy buffers
included, GEOS memory not); it is a separate run because tracing slows allocation
down about twofold and would spoil the timing.

Each size is run ``--runs`` times (default 3; the sizes take turns, so all see the
same machine state); the times printed are the medians of the runs with their range and
the machine's load, the peak RSS the largest of the runs.

Usage::

    python bench/bench_demo.py [--parcels-per-district 2000] [--runs 3]
    python bench/bench_demo.py --district 679 [--sizes 2000 200000] [--seed 68] [--trace]
                               [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

try:
    from bench._measure import Runs, print_peers
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, print_peers

_PROVINCE = """
import json, sys, tempfile, time
from gisportal.demo.outline import province_layout
from gisportal.services.demo import build_demo
from gisportal.store import open_store
n, seed = int(sys.argv[1]), int(sys.argv[2])
t0 = time.perf_counter()
layout = province_layout(seed)
t1 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp, open_store(tmp + "/home", crs="EPSG:5899") as s:
    results = build_demo(s, parcels_per_district=n, seed=seed)
    t2 = time.perf_counter()
    parcels = sum(s.published(r.district, "parcels").feature_count for r in results)
print(json.dumps({"layout_s": t1 - t0, "build_s": t2 - t1, "total_s": t2 - t0,
                  "districts": len(results), "parcels": parcels}))
"""


def run_province(n: int, seed: int) -> dict:
    """Build the whole demo (``n`` parcels per district) in a child; its figures."""
    out = subprocess.run([sys.executable, "-c", _PROVINCE, str(n), str(seed)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def province(n: int, seed: int, runs: int) -> None:
    """Print the merged province's build time: layout, whole build, per parcel."""
    runs_ = Runs()
    last: dict = {}
    for _ in range(runs):  # one fresh child per run
        last = run_province(n, seed)
        for key in ("layout_s", "build_s", "total_s"):
            runs_.add(key, last[key])
        runs_.add("ms_per_parcel", 1e3 * last["total_s"] / last["parcels"])
    runs_.close()
    print(f"merged province, seed {seed}: {last['districts']} districts × {n} parcels = "
          f"{last['parcels']} parcels, built and published in a fresh home")
    print(f"  layout (districts, communes): {runs_['layout_s'].text('s')}")
    print(f"  whole demo (layout, generate, ingest, publish, tiles): "
          f"{runs_['total_s'].text('s')}")
    print(f"  per parcel: {runs_['ms_per_parcel'].text('ms', 3)}")


_CHILD = """
import json, resource, sys, time, tracemalloc
from gisportal.demo.outline import province_layout
from gisportal.demo import generate_district
code, n, seed, trace = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
t0 = time.perf_counter()
province_layout(seed)
t1 = time.perf_counter()
if trace:
    tracemalloc.start()
d = generate_district(code, n, seed=seed)
t2 = time.perf_counter()
traced = tracemalloc.get_traced_memory()[1] if trace else float("nan")
tracemalloc.stop()
rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"layout_s": t1 - t0, "district_s": t2 - t1, "parcels": len(d.parcels),
                  "zones": len(d.plan), "peak_rss_mib": rss_kib / 1024,
                  "peak_traced_mib": traced / 2**20}))
"""


def run(code: str, n: int, seed: int, trace: bool = False) -> dict:
    """Generate one district of ``n`` parcels in a child process and return its figures."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD, code, str(n), str(seed), str(int(trace))],
                         check=True, capture_output=True, text=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["wall_s"] = time.perf_counter() - started
    return figures


def main() -> None:
    """Print one line per size: time (province layout, district, whole child process)
    and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--district", default=None,
                        help="time the generator for this district alone (e.g. 679, Di Linh) "
                             "instead of the whole province")
    parser.add_argument("--parcels-per-district", type=int, default=2000,
                        help="province mode: parcels per district (default: the CLI's 2000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 200_000])
    parser.add_argument("--seed", type=int, default=68)
    parser.add_argument("--trace", action="store_true", help="also report tracemalloc peak")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each size, taking turns; the median counts (default 3)")
    args = parser.parse_args()
    print_peers()
    if args.district is None:
        province(args.parcels_per_district, args.seed, args.runs)
        return
    print(f"district {args.district}, seed {args.seed}")
    runs = {n: Runs() for n in args.sizes}
    last: dict[int, dict] = {}
    for _ in range(args.runs):  # the sizes take turns: the same machine state for each
        for n in args.sizes:
            f = run(args.district, n, args.seed)
            for key in ("layout_s", "district_s", "wall_s", "peak_rss_mib"):
                runs[n].add(key, f[key])
            last[n] = f
    for r in runs.values():
        r.close()
    if args.trace:
        for n in args.sizes:
            last[n]["peak_traced_mib"] = run(args.district, n, args.seed, True)[
                "peak_traced_mib"]
    print(f"median of {args.runs} runs [range]; peak RSS: the largest run")
    print(f"{'parcels':>8} {'layout s':>18} {'district s':>18} {'process s':>18} "
          f"{'peak RSS MiB':>13} {'traced MiB':>11} {'zones':>6}")
    for n in args.sizes:
        r, f = runs[n], last[n]
        print(f"{f['parcels']:>8} {r['layout_s'].short(''):>18} "
              f"{r['district_s'].short(''):>18} {r['wall_s'].short(''):>18} "
              f"{r['peak_rss_mib'].max:>13.0f} {f['peak_traced_mib']:>11.0f} {f['zones']:>6}")
    for n in args.sizes:
        print(f"{last[n]['parcels']} parcels, district: {runs[n]['district_s'].text()}")


if __name__ == "__main__":
    main()
