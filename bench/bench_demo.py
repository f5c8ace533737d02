"""Time and peak memory of the demo generator for one district.

Runs each size in a fresh subprocess, so that the peak resident set size
(``resource.getrusage``) belongs to that size alone. With ``--trace`` a second run per
size reports the tracemalloc peak of Python-level allocations (NumPy buffers
included, GEOS memory not); it is a separate run because tracing slows allocation
down about twofold and would spoil the timing.

Each size is run ``--runs`` times (default 3; the sizes take turns, so all see the
same machine state); the times printed are the medians of the runs with their range and
the machine's load, the peak RSS the largest of the runs.

Usage::

    python bench/bench_demo.py [--district 679] [--sizes 2000 200000] [--seed 68] [--trace]
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
    parser.add_argument("--district", default="679", help="GSO code (default: Di Linh)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 200_000])
    parser.add_argument("--seed", type=int, default=68)
    parser.add_argument("--trace", action="store_true", help="also report tracemalloc peak")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each size, taking turns; the median counts (default 3)")
    args = parser.parse_args()
    print_peers()
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
