"""Full validation of a district with known defects vs a plain pyogrio read of the file.

Usage: python bench/bench_validate.py [--parcels 200000] [--seed 1] [--keep DIR] [--runs 3]

Generates one demo district (Đức Trọng, ``gisportal.demo.generate_district``; a jittered
grid of rectangles if the generator cannot be imported), injects a few hundred defects whose
expected findings are known, writes the parcels as a GeoPackage with the national field
names, and publishes the district outline as the boundary layer of a fresh store. Then, each
in a fresh process so peak memory is its own, alternately for ``--runs`` runs (read, Arrow
read, check, read, ...: all three see the same machine state): (a)
``pyogrio.read_dataframe`` of the file, row-wise (the default) and with Arrow (the reader
gisportal itself uses, so the stricter baseline), (b)
``gisportal.services.ingest.check_file(path, "parcels", district="678", store=...)`` — read,
normalise and every check, topology included. Prints the median times with their spread and
the machine's load, the ratios to both reads (target <= 4x; median, and the range of the
per-run ratios), the topology share, each process's peak RSS (VmHWM: ru_maxrss would carry
this parent's peak; the largest of the runs), and per rule: injected, found, missed, and
findings no injection explains.

Expected findings of geometric defects come from an independent oracle: exact
intersections of every modified feature with every feature whose box it meets (no
coverage filter), and exact differences with the district outline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

try:
    from bench._measure import Runs, print_peers, ratio
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, print_peers, ratio

# Peak RSS: VmHWM from /proc (kB). ru_maxrss of a child started by fork+exec carries the
# parent's peak (here: the generated district), so it would report the parent, not the
# child; VmHWM belongs to the new process image alone.
HWM = """
def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
"""

READ = HWM + """
import sys, time, pyogrio
t = time.perf_counter()
df = pyogrio.read_dataframe(sys.argv[1], use_arrow=sys.argv[2] == "arrow")
dt = time.perf_counter() - t
print(dt, len(df), hwm())
"""

CHECK = HWM + """
import json, sys, time
import gisportal.pipeline.validation as engine
from gisportal.services.ingest import check_file
from gisportal.store import open_store
from gisportal.pipeline.validation import topology

spent = []
def timed(check):
    def run(norm, ctx):
        t = time.perf_counter()
        try:
            return check(norm, ctx)
        finally:
            spent.append(time.perf_counter() - t)
    return run

# Time the topology checks where the engine runs them (its own thread).
timed_topology = tuple(timed(c) for c in topology.TOPOLOGY_CHECKS)
engine.CHECKS = tuple(c for c in engine.CHECKS if c not in topology.TOPOLOGY_CHECKS) + (
    timed_topology)
engine.TOPOLOGY_CHECKS = timed_topology
store = open_store(sys.argv[2], crs="EPSG:5899")
t = time.perf_counter()
checked = check_file(sys.argv[1], "parcels", district="678", store=store)
dt = time.perf_counter() - t
findings = [{"rule": f.rule, "row": f.row, "severity": f.level,
             "other_row": f.params.get("other_row"),
             "bordering_rows": f.params.get("bordering_rows")}
            for f in checked.report.findings]
with open(sys.argv[3], "w") as fh:
    json.dump(findings, fh)
print(dt, len(checked.layer.frame), hwm(), sum(spent))
"""

OVERLAP_TOL = 0.5  # parcels' overlap_tolerance_m2 default
OUTSIDE_TOL, OUTSIDE_REL = 1.0, 0.001


def _run(code: str, *args: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True).stdout.split()
    return [float(x) for x in out]


def jittered_grid(n: int, rng: np.random.Generator) -> tuple[gpd.GeoDataFrame, object]:
    """Fallback district: n rectangles tiling a block, rows and columns of random width."""
    from gisportal.base import crs as vncrs
    from gisportal.base import seeds

    anchor = vncrs.from_lonlat(*seeds.district("678").anchor_lonlat)
    cols = int(np.sqrt(n * 1.25))
    rows = int(np.ceil(n / cols))
    xs = anchor[0] - 5000 + np.r_[0, np.cumsum(rng.uniform(12, 30, cols))]
    ys = anchor[1] - 4000 + np.r_[0, np.cumsum(rng.uniform(12, 30, rows))]
    x0, y0 = np.meshgrid(xs[:-1], ys[:-1])
    x1, y1 = np.meshgrid(xs[1:], ys[1:])
    geoms = shapely.box(x0.ravel(), y0.ravel(), x1.ravel(), y1.ravel())[:n]
    k = np.arange(len(geoms))
    frame = gpd.GeoDataFrame({
        "commune": "67801", "sheet": 1 + k // 500, "parcel": 1 + k % 500,
        "land_use": np.array(["ONT", "CLN", "LUA", "HNK"])[k % 4],
        "area_m2": np.round(shapely.area(geoms), 1), "owner": "Nguyễn Văn A",
        "address": None}, geometry=geoms, crs="EPSG:5899")
    outline = shapely.box(xs[0], ys[0], xs[-1], ys[-1]).buffer(30, join_style="mitre")
    return frame, outline


def pick_apart(tree: shapely.STRtree, geoms: np.ndarray, pool: np.ndarray, k: int,
               taken: set[int], rng: np.random.Generator) -> list[int]:
    """k features from pool, none within 30 m of another picked (defects stay apart)."""
    out: list[int] = []
    for i in rng.permutation(pool):
        if len(out) == k:
            break
        near = tree.query(geoms[i], predicate="dwithin", distance=30.0)
        if taken.isdisjoint(near.tolist()):
            out.append(int(i))
            taken.update(near.tolist())
    return out


def inject(parcels: gpd.GeoDataFrame, outline, rng: np.random.Generator):
    """Plant defects; returns the new frame and what the report must say about them."""
    frame = parcels.reset_index(drop=True).copy()
    geoms = np.asarray(frame.geometry.values, dtype=object).copy()
    n = len(geoms)
    tree = shapely.STRtree(geoms)
    inner = shapely.buffer(outline, -60)
    shapely.prepare(inner)
    interior = np.flatnonzero(shapely.contains_properly(inner, geoms))
    area = shapely.area(geoms)
    hull = shapely.area(shapely.convex_hull(geoms))
    taken: set[int] = set()
    expect: dict[str, set] = defaultdict(set)  # rule -> rows, or (row, other) for pairs
    allowed: dict[int, set[str]] = defaultdict(set)  # side effects a row may show
    modified: set[int] = set()
    extra: list[dict] = []

    def add(src: int, geom, **changes) -> int:
        rec = frame.iloc[src].to_dict()
        rec.update(sheet=9000 + len(extra) // 500, parcel=1 + len(extra) % 500,
                   area_m2=round(float(shapely.area(geom)), 1), geometry=geom, **changes)
        extra.append(rec)
        return n + len(extra) - 1

    # Overlaps: whole parcels moved 1.5-3 m (the oracle below says which pairs overlap).
    for i in pick_apart(tree, geoms, interior, 80, taken, rng):
        angle = rng.uniform(0, 2 * np.pi)
        d = rng.uniform(1.5, 3.0) * np.array([np.cos(angle), np.sin(angle)])
        geoms[i] = shapely.transform(geoms[i], lambda c, d=d: c + d)
        modified.add(i)
        allowed[i] |= {"TOPO-GAP"}  # an edge nearly along the move leaves a sliver
    # Exact duplicates, appended with a key of their own.
    for i in pick_apart(tree, geoms, interior, 40, taken, rng):
        j = add(i, geoms[i])
        expect["GEOM-DUPLICATE"].add((i, j))
    # A small parcel inside a big one.
    big = interior[area[interior] > 600]
    for i in pick_apart(tree, geoms, big, 40, taken, rng):
        c = shapely.point_on_surface(shapely.buffer(geoms[i], -4))
        if c.is_empty:
            continue
        sq = shapely.box(c.x - 3, c.y - 3, c.x + 3, c.y + 3)
        if shapely.contains(geoms[i], sq):
            modified.add(add(i, sq))
    # Bow-ties: two neighbouring vertices of a convex parcel swapped.
    convex = interior[hull[interior] - area[interior] < 1e-6 * area[interior]]
    bow_ties = 0
    for i in pick_apart(tree, geoms, convex, 60, taken, rng):
        ring = shapely.get_coordinates(shapely.get_exterior_ring(geoms[i]))[:-1]
        ring[[1, 2]] = ring[[2, 1]]
        crossed = shapely.Polygon(ring)
        if bow_ties == 30 or shapely.is_valid(crossed):  # nearly collinear vertices
            continue
        geoms[i] = crossed
        expect["GEOM-INVALID"].add(i)
        allowed[i] |= {"AREA-MISMATCH", "TOPO-GAP"}  # the repaired bow-tie leaves wedges
        bow_ties += 1
    # Slivers: an enclosed parcel shrunk by 0.15 m leaves a ring-shaped gap around it.
    slivers = 0
    for i in pick_apart(tree, geoms, interior, 60, taken, rng):
        if slivers == 30:
            break
        nb = tree.query(geoms[i], predicate="intersects")
        others = shapely.union_all(geoms[nb[nb != i]])
        free = shapely.difference(shapely.boundary(geoms[i]), shapely.buffer(others, 0.01))
        if shapely.length(free) > 0:  # not enclosed: the gap would open onto empty land
            continue
        geoms[i] = shapely.buffer(geoms[i], -0.15, join_style="mitre")
        expect["TOPO-GAP"].add(i)
        allowed[i] |= {"AREA-MISMATCH"}
        slivers += 1
    # Codes not in the catalogue.
    for i in pick_apart(tree, geoms, interior, 30, taken, rng):
        frame.loc[i, "land_use"] = "XYZ"
        expect["CODE-UNKNOWN"].add(i)
    # Duplicate keys: a parcel takes another's (commune, sheet, parcel).
    for a, b in np.reshape(pick_apart(tree, geoms, interior, 60, taken, rng), (-1, 2)):
        frame.loc[b, ["commune", "sheet", "parcel"]] = frame.loc[a, ["commune", "sheet",
                                                                     "parcel"]].to_numpy()
        expect["KEY-DUPLICATE"] |= {int(a), int(b)}
    # Outside the district: boundary parcels pushed 15 m outwards, and new ones beyond.
    centre = shapely.centroid(outline)
    edge = np.flatnonzero(~shapely.contains_properly(shapely.buffer(outline, -1), geoms))
    for i in pick_apart(tree, geoms, edge, 20, taken, rng):
        c = shapely.centroid(geoms[i])
        v = np.array([c.x - centre.x, c.y - centre.y])
        v = 15 * v / np.linalg.norm(v)
        geoms[i] = shapely.transform(geoms[i], lambda xy, v=v: xy + v)
        modified.add(i)
        allowed[i] |= {"TOPO-GAP"}
    ring = shapely.get_exterior_ring(shapely.buffer(outline, 150))
    for k in range(20):
        p = shapely.line_interpolate_point(ring, k / 20, normalized=True)
        modified.add(add(int(interior[k]), shapely.box(p.x - 10, p.y - 10, p.x + 10, p.y + 10)))

    frame = frame.set_geometry(geoms)
    if extra:
        frame = pd.concat([frame, gpd.GeoDataFrame(extra, geometry="geometry",
                                                   crs=frame.crs)], ignore_index=True)
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=parcels.crs)
    final = np.asarray(frame.geometry.values, dtype=object)

    # Oracle for geometry: every modified feature against everything its box meets.
    tree = shapely.STRtree(final)
    dup_rows = {j for _, j in expect["GEOM-DUPLICATE"]}
    mods = np.array(sorted(modified), dtype=int)
    a, b = tree.query(final[mods])
    a = mods[a]
    keep = a != b
    a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    pairs = np.unique(np.stack([a, b], 1), axis=0)
    valid = shapely.make_valid(final, method="structure", keep_collapsed=False)
    inter = shapely.area(shapely.intersection(valid[pairs[:, 0]], valid[pairs[:, 1]]))
    for (x, y), s in zip(pairs, inter, strict=True):
        if s > OVERLAP_TOL and x not in dup_rows and y not in dup_rows:
            expect["TOPO-OVERLAP"].add((int(x), int(y)))
    out_area = shapely.area(shapely.difference(valid[mods], outline))
    for i, o in zip(mods, out_area, strict=True):
        if o > OUTSIDE_TOL and o > OUTSIDE_REL * shapely.area(valid[i]):
            expect["TOPO-OUTSIDE-DISTRICT"].add(int(i))
    return frame, dict(expect), allowed


def score(findings: list[dict], expect: dict[str, set], allowed: dict[int, set[str]]):
    """Per rule: injected, found of those, and findings no injection explains."""
    rows: dict[str, list] = {}
    unexplained: Counter[str] = Counter()
    found: dict[str, set] = defaultdict(set)
    for f in findings:
        rule, row = f["rule"], f["row"]
        if rule == "TOPO-GAP":
            along = set(f["bordering_rows"] or [])
            hit = expect.get(rule, set()) & along
            found[rule] |= hit
            if not hit and not any(rule in allowed.get(r, ()) for r in along):
                unexplained[rule] += 1
            continue
        if row is None:  # file- and layer-level facts (CRS, encoding, minor overlaps)
            continue
        item = (row, f["other_row"]) if f["other_row"] is not None else row
        if item in expect.get(rule, set()):
            found[rule].add(item)
        elif rule not in allowed.get(row, set()):
            unexplained[rule] += 1
    for rule in sorted(set(expect) | set(unexplained)):
        inj = len(expect.get(rule, ()))
        hit = len(found[rule])
        rows[rule] = {"injected": inj, "found": hit, "missed": inj - hit,
                      "unexplained": unexplained[rule],
                      "recall": round(hit / inj, 3) if inj else None,
                      "precision": round(hit / (hit + unexplained[rule]), 3)
                      if hit + unexplained[rule] else None}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="write the files here and keep them")
    ap.add_argument("--runs", "--repeat", dest="runs", type=int, default=3,
                    help="runs of each measurement, alternated; the median counts (default 3)")
    ap.add_argument("--unnoded", action="store_true",
                    help="first give every other parcel extra vertices its neighbours lack "
                         "(a layer not built with topology): the slow path; slivers are "
                         "then not searched, so TOPO-GAP recall is 0 by design")
    args = ap.parse_args()

    from gisportal.services.demo import PARCEL_FIELD_NAMES
    from gisportal.services.ingest import ingest_file
    from gisportal.store import open_store

    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    try:
        from gisportal.demo import generate_district

        d = generate_district("678", args.parcels)
        parcels, outline, source = d.parcels, d.boundary, "generate_district"
    except Exception as e:  # a colleague may be mid-edit in gisportal/demo
        print(f"generate_district unavailable ({type(e).__name__}: {e}); jittered grid",
              file=sys.stderr)
        parcels, outline = jittered_grid(args.parcels, rng)
        source = "jittered grid"
    gen = time.perf_counter() - t
    t = time.perf_counter()
    if args.unnoded:
        g = np.asarray(parcels.geometry.values, dtype=object).copy()
        g[::2] = shapely.segmentize(g[::2], 7.0)
        parcels = parcels.set_geometry(g)
    frame, expect, allowed = inject(parcels, outline, rng)
    inj = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        path = base / "thua_dat_678.gpkg"
        frame.rename(columns=PARCEL_FIELD_NAMES).to_file(path, layer="thua_dat",
                                                         driver="GPKG")
        home = base / "home"
        store = open_store(home, crs="EPSG:5899")
        bpath = base / "ranh_gioi_678.gpkg"
        gpd.GeoDataFrame({"level": ["district"], "code": ["678"], "name": ["Đức Trọng"]},
                         geometry=[outline], crs="EPSG:5899").to_file(bpath, driver="GPKG")
        res = ingest_file(store, bpath, "boundary", "678", publish=True)
        store.close()
        assert res.published, res.report.summary()

        _run(READ, str(path), "plain")  # warm the page cache: all runs read from memory
        out = base / "findings.json"
        runs = Runs()
        for _ in range(args.runs):  # alternated: the three see the same machine state
            read_s, n_read, read_kb = _run(READ, str(path), "plain")
            arrow_s = _run(READ, str(path), "arrow")[0]
            check_s, n_chk, check_kb, topo_s = _run(CHECK, str(path), str(home), str(out))
            for name, value in (("read", read_s), ("arrow", arrow_s), ("check", check_s),
                                ("topology", topo_s), ("read_kb", read_kb),
                                ("check_kb", check_kb)):
                runs.add(name, value)
        runs.close()
        findings = json.loads(out.read_text())

    assert int(n_read) == int(n_chk) == len(frame)
    per_rule = score(findings, expect, allowed)
    read, arrow, check, topo = runs["read"], runs["arrow"], runs["check"], runs["topology"]
    over_read, over_arrow = ratio(check, read), ratio(check, arrow)
    read_mib, check_mib = runs["read_kb"].max / 1024, runs["check_kb"].max / 1024
    result = {
        "parcels": len(frame), "source": source, "unnoded": args.unnoded,
        "runs": args.runs, "generate_s": round(gen, 1),
        "inject_s": round(inj, 1), "pyogrio_read_s": read.as_dict(3),
        "check_file_s": check.as_dict(3), "topology_s": topo.as_dict(3),
        "check_over_read": over_read.as_dict(),
        "pyogrio_arrow_read_s": arrow.as_dict(3),
        "check_over_arrow_read": over_arrow.as_dict(),
        "read_peak_mib": round(read_mib), "check_peak_mib": round(check_mib),
        "findings_by_rule": dict(sorted(Counter(f["rule"] for f in findings).items())),
        "defects": per_rule,
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))
    print_peers("pyogrio", "gdal", "shapely")
    print(f"plain pyogrio read   {read.text()}")
    print(f"pyogrio Arrow read   {arrow.text()}")
    print(f"check_file           {check.text()}")
    print(f"  topology of it     {topo.text()}")
    print(f"check_file / plain pyogrio read = {over_read.text()} (target <= 4x); "
          f"/ pyogrio Arrow read = {over_arrow.text()}; peak {round(check_mib)} MiB "
          f"(largest of {args.runs} runs)")
    for rule, r in per_rule.items():
        print(f"  {rule:24s} injected {r['injected']:4d}  found {r['found']:4d}  "
              f"missed {r['missed']:3d}  unexplained {r['unexplained']:4d}")


if __name__ == "__main__":
    main()
