"""Served look-ups and tiles of one district inside today's whole province, against the
same district alone: do they get worse as the province grows?

Why: issue 13 merged three provinces into one (30 plan districts, two VN-2000 zones,
124 communes drawn from the former communes); a look-up without a district now tests
30 outlines, an X/Y pair is read in two zones, and the look-up answers today's units.
The figures a resident meets must not grow with the size of the province: the ratio
"province / one district" of the same look-ups and tiles says whether they do.

Set-up: two embedded homes built by the real command, ``gisportal demo
--parcels-per-district P`` (the merged province: every plan district) and ``gisportal
demo --parcels-per-district P --district 678`` (Đức Trọng alone). The demo generates a
district the same way alone or with the province, so the same look-up URLs (key,
lat/lon and X/Y of random parcels of 678: bench_lookup's sample) and the same tiles are
valid in both. The build of the province is timed once (its time per 1 000 parcels is
printed; bench_demo.py measures the build with its spread).

Then ``gisportal serve --workers 2`` (gunicorn) on each home, both running, taking turns
(so they meet the same machine state), ``--runs`` rounds of: wrk paced at ``--rate``
req/s over ``--connections`` connections and closed loop, ``--duration`` s each; then
warm tiles z12–16 of 678's parcels over one keep-alive connection per server, tile by
tile. Every figure is the median of the runs with its range and the load (bench/_measure).

Usage (from the repository root)::

    python bench/bench_province.py [--parcels 4000] [--runs 3] [--duration 10]
        [--rate 320] [--connections 32] [--tiles 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._measure import Measurement, load_now, machine_line, ratio  # noqa: E402
from bench.bench_lookup import Server  # noqa: E402
from bench.bench_production import lookups, tile_sample, tiles  # noqa: E402

DISTRICT = "678"
NAMES = ("one district", "province")


def build(home: Path, parcels: int, *districts: str) -> float:
    """``gisportal demo`` into a fresh home; its wall time (s)."""
    args = [sys.executable, "-m", "gisportal", "--home", str(home), "demo",
            "--parcels-per-district", str(parcels)]
    for d in districts:
        args += ["--district", d]
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def published_parcels(home: Path) -> tuple[int, int]:
    """(parcels in the home, the parcels version of `DISTRICT`)."""
    from gisportal.store.home import DataHome

    store = DataHome.at(home).store
    versions = store.published_versions()
    total = sum(v.feature_count for (_, kind), v in versions.items() if kind == "parcels")
    return total, versions[(DISTRICT, "parcels")].id


def row(what: str, one: Measurement, province: Measurement, unit: str, digits: int
        ) -> tuple[str, str, str, str]:
    return (what, one.short(unit, digits), province.short(unit, digits),
            ratio(province, one).text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parcels", type=int, default=4000, help="parcels per district")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--rate", type=float, default=320, help="paced look-ups per second")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--queries", type=int, default=1500, help="URLs per look-up kind")
    parser.add_argument("--tiles", type=int, default=100, help="tiles sampled per zoom")
    parser.add_argument("--seed", type=int, default=68)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine_line())
    data: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-province-") as tmp_name:
        tmp = Path(tmp_name)
        homes = {NAMES[0]: tmp / "one", NAMES[1]: tmp / "province"}
        load0 = load_now()
        seconds = {NAMES[0]: build(homes[NAMES[0]], args.parcels, DISTRICT),
                   NAMES[1]: build(homes[NAMES[1]], args.parcels)}
        counts = {name: published_parcels(home) for name, home in homes.items()}
        total = counts[NAMES[1]][0]
        print(f"\nbuild (ONE run each, load {load0:.1f} → {load_now():.1f}): province "
              f"{total} parcels in {seconds[NAMES[1]]:.1f} s = "
              f"{1000 * seconds[NAMES[1]] / total:.2f} s per 1 000 parcels; {DISTRICT} alone "
              f"{counts[NAMES[0]][0]} parcels in {seconds[NAMES[0]]:.1f} s")
        data["build"] = {"province_s": seconds[NAMES[1]], "province_parcels": total,
                         "one_s": seconds[NAMES[0]], "one_parcels": counts[NAMES[0]][0]}
        running = {}
        try:
            for name, home in homes.items():
                running[name] = Server(home, 2, tmp / f"serve-{name.replace(' ', '-')}.log")
            look = lookups(running, homes[NAMES[0]], [DISTRICT], tmp, runs=args.runs,
                           connections=args.connections, seconds=args.duration,
                           rate=args.rate, queries=args.queries, seed=args.seed)
            sample = tile_sample(homes[NAMES[0]], {DISTRICT: counts[NAMES[0]][1]},
                                 args.tiles, args.seed)
            tile = tiles(running, sample, args.runs)
        finally:
            for s in running.values():
                s.stop()
    one, prov = NAMES
    rows = [row(f"look-up p50, paced {args.rate:g} req/s (ms)", look[f"{one} paced p50"],
                look[f"{prov} paced p50"], "ms", 2),
            row("look-up p99, paced (ms)", look[f"{one} paced p99"],
                look[f"{prov} paced p99"], "ms", 1),
            row("look-ups/s, closed loop", look[f"{one} closed rps"],
                look[f"{prov} closed rps"], "", 0),
            row(f"tile p50, warm ({len(sample)} tiles z12–16) (ms)", tile[f"{one} p50"],
                tile[f"{prov} p50"], "ms", 2),
            row("tile p95, warm (ms)", tile[f"{one} p95"], tile[f"{prov} p95"], "ms", 2)]
    head = ("figure", f"{DISTRICT} alone", "in the province", "province / alone")
    widths = [max(len(r[i]) for r in [*rows, head]) for i in range(4)]
    print(f"\n{DISTRICT} ({args.parcels} parcels) alone and in the province of {total} "
          f"parcels; {args.runs} runs, look-ups load {look.before:.1f} → {look.after:.1f}, "
          f"tiles {tile.before:.1f} → {tile.after:.1f}")
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    bad = {f"{n} {load}": int(sum(look[f"{n} {load} not_ok"].samples))
           for n in NAMES for load in ("paced", "closed")}
    print(f"look-ups not answered 200: {bad}")
    data["rows"] = [dict(zip(head, r, strict=True)) for r in rows]
    data["not_ok"] = bad
    if args.json:
        args.json.write_text(json.dumps(data, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
