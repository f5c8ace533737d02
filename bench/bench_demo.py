"""Time and peak memory of the demo generator for one district.

Runs each size in a fresh subprocess, so that the peak resident set size
(``resource.getrusage``) belongs to that size alone. With ``--trace`` a second run per
size reports the tracemalloc peak of Python-level allocations (NumPy buffers
included, GEOS memory not); it is a separate run because tracing slows allocation
down about twofold and would spoil the timing.

Usage::

    python bench/bench_demo.py [--district 679] [--sizes 2000 200000] [--seed 68] [--trace]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

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
    args = parser.parse_args()
    print(f"district {args.district}, seed {args.seed}")
    print(f"{'parcels':>8} {'layout s':>9} {'district s':>11} {'process s':>10} "
          f"{'peak RSS MiB':>13} {'traced MiB':>11} {'zones':>6}")
    for n in args.sizes:
        f = run(args.district, n, args.seed)
        if args.trace:
            f["peak_traced_mib"] = run(args.district, n, args.seed, True)["peak_traced_mib"]
        print(f"{f['parcels']:>8} {f['layout_s']:>9.2f} {f['district_s']:>11.2f} "
              f"{f['wall_s']:>10.2f} {f['peak_rss_mib']:>13.0f} {f['peak_traced_mib']:>11.0f} "
              f"{f['zones']:>6}")


if __name__ == "__main__":
    main()
