"""Time of the merged province's demo per parcel; time and peak memory of one district.

Default: the whole demo of the merged province — the 30 plan districts
generated and ingested, validated and published with their tiles into a fresh home
(``build_demo``, what ``gisportal demo`` does) — in a fresh subprocess per run; the
province layout is timed where the build makes it (a part of the whole). Printed as
the median of ``--runs`` runs (default 3) with their range and the machine's load, per
parcel, and the CPU time of the build's process and of its tile worker (CPU time is
less disturbed by other work on the machine than the wall-clock time). With
``--lam-dong`` the 12 districts of former Lâm Đồng (the old demo's province) are built
too, by turns with the 30, at the same parcels per district: a labelled comparison.

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

    python bench/bench_demo.py [--parcels-per-district 2000] [--runs 3] [--lam-dong]
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
import json, resource, sys, tempfile, time
import gisportal.demo.generate as generate
from gisportal.services.demo import build_demo
from gisportal.store import open_store
n, seed = int(sys.argv[1]), int(sys.argv[2])
districts = sys.argv[3].split(",") if sys.argv[3] else None
# the province layout is timed where build_demo makes it (its first call; later ones
# hit the cache), so the whole build is timed as `gisportal demo` runs it
layout_calls = []
inner = generate.province_layout
def timed_layout(seed):
    t = time.perf_counter()
    out = inner(seed)
    layout_calls.append(time.perf_counter() - t)
    return out
generate.province_layout = timed_layout
t0, c0 = time.perf_counter(), time.process_time()
with tempfile.TemporaryDirectory() as tmp, open_store(tmp + "/home", crs="EPSG:5899") as s:
    results = build_demo(s, parcels_per_district=n, seed=seed, districts=districts)
    t1 = time.perf_counter()
    cpu = time.process_time() - c0
    parcels = sum(s.published(r.district, "parcels").feature_count for r in results)
    published = all(x.published for r in results for x in r.results.values())
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"layout_s": layout_calls[0], "total_s": t1 - t0, "cpu_s": cpu,
                  "worker_cpu_s": children.ru_utime + children.ru_stime,
                  "districts": len(results), "parcels": parcels, "published": published}))
"""


def run_province(n: int, seed: int, districts: list[str] | None = None) -> dict:
    """Build the demo (``n`` parcels per district; all 30 districts, or ``districts``)
    in a child; its figures."""
    out = subprocess.run([sys.executable, "-c", _PROVINCE, str(n), str(seed),
                          ",".join(districts or [])],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


#: The 12 districts of former Lâm Đồng (the old demo's province), for ``--lam-dong``.
LAM_DONG = [str(c) for c in range(672, 684)]


def province(n: int, seed: int, runs: int, lam_dong: bool = False) -> None:
    """Print the merged province's build time: layout, whole build, per parcel; with
    ``lam_dong`` also the 12 former Lâm Đồng districts alone, run by turns with it."""
    sets = {"merged province, 30 districts": None}
    if lam_dong:
        sets["former Lâm Đồng alone, 12 districts (comparison)"] = LAM_DONG
    runs_ = {name: Runs() for name in sets}
    last: dict[str, dict] = {}
    for _ in range(runs):  # one fresh child per run; the sets take turns
        for name, codes in sets.items():
            f = run_province(n, seed, codes)
            if not f["published"]:
                raise SystemExit(f"{name}: a demo layer was not published")
            for key in ("layout_s", "total_s", "cpu_s", "worker_cpu_s"):
                runs_[name].add(key, f[key])
            runs_[name].add("ms_per_parcel", 1e3 * f["total_s"] / f["parcels"])
            last[name] = f
    for r in runs_.values():
        r.close()
    for name, r in runs_.items():
        f = last[name]
        print(f"{name}, seed {seed}: {f['districts']} districts × {n} parcels = "
              f"{f['parcels']} parcels, built and published in a fresh home")
        print(f"  layout (districts, communes; part of the whole): {r['layout_s'].text('s')}")
        print(f"  whole demo (layout, generate, ingest, publish, tiles): "
              f"{r['total_s'].text('s')}")
        print(f"  CPU: this process {r['cpu_s'].text('s')}; its tile worker "
              f"{r['worker_cpu_s'].text('s')}")
        print(f"  per parcel: {r['ms_per_parcel'].text('ms', 3)}")


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
    parser.add_argument("--lam-dong", action="store_true",
                        help="province mode: also time the 12 former Lâm Đồng districts "
                             "alone (the old demo's province), by turns with the 30")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 200_000])
    parser.add_argument("--seed", type=int, default=68)
    parser.add_argument("--trace", action="store_true", help="also report tracemalloc peak")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each size, taking turns; the median counts (default 3)")
    args = parser.parse_args()
    print_peers()
    if args.district is None:
        province(args.parcels_per_district, args.seed, args.runs, args.lam_dong)
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
