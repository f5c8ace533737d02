"""Benchmark comparing two versions of a district's parcels against reading them.

Generates a demo district, stores it as version 1 and a copy with about 1 % of its
parcels edited as version 2 (removed, added, reshaped, land use changed, renumbered),
then prints, from one run of this script on this machine: the comparison's time as a
ratio to reading both versions from the store, whether it found exactly the injected
edits, and the times at two sizes with the exponent they imply (1 = linear, 2 =
quadratic). A last line times the worst case, every parcel renumbered, so all pairing
is by geometry. The read, the comparison and the worst case are run ``--runs`` times
(default 3) alternately, so all three see the same machine state; each figure is the
median of the runs with their range and the machine's load, each ratio the ratio of the
medians with the range of the per-run ratios.

Usage::

    python bench/bench_compare.py [--n 200000] [--small 50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisportal.demo import generate_district
from gisportal.outputs.compare import compare_versions
from gisportal.store import open_store

try:
    from bench._measure import Measurement, alternate, print_peers, ratio
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Measurement, alternate, print_peers, ratio

CRS = "EPSG:5899"
DISTRICT = "678"
#: Share of the parcels each kind of edit touches (about 1 % in all).
SHARE = {"removed": 0.0025, "use_changed": 0.0025, "reshaped": 0.002, "renumbered": 0.002,
         "added": 0.002}


def shrink(geoms: np.ndarray, factor: float) -> np.ndarray:
    """Each shape scaled about its own centroid (vectorised over all vertices)."""
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    centres = shapely.get_coordinates(shapely.centroid(geoms))[index]
    return shapely.set_coordinates(geoms.copy(), centres + factor * (coords - centres))


def perturb(parcels: gpd.GeoDataFrame, rng: np.random.Generator
            ) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Version 2: the injected edits, on disjoint sets of parcels."""
    n = len(parcels)
    sizes = {k: max(1, int(n * s)) for k, s in SHARE.items() if k != "added"}
    picks = rng.permutation(n)
    chosen, start = {}, 0
    for kind, size in sizes.items():
        chosen[kind] = picks[start:start + size]
        start += size
    edited = parcels.copy()
    geoms = edited.geometry.values.copy()
    geoms[chosen["reshaped"]] = shrink(np.asarray(geoms[chosen["reshaped"]]), 0.9)
    edited = edited.set_geometry(geoms)
    codes = edited["land_use"].to_numpy(dtype=object)
    codes[chosen["use_changed"]] = np.where(codes[chosen["use_changed"]] == "TMD", "SKC", "TMD")
    edited["land_use"] = codes
    numbers = edited["parcel"].to_numpy().copy()
    numbers[chosen["renumbered"]] += 100_000
    edited["parcel"] = numbers
    added = parcels.iloc[rng.choice(n, max(1, int(n * SHARE["added"])), replace=False)].copy()
    added = added.set_geometry(shapely.transform(added.geometry.values,
                                                 lambda xy: xy + [0.0, 60_000.0]))
    added["sheet"] = added["sheet"] + 10_000  # new sheets, new keys
    edited = edited.drop(index=edited.index[chosen["removed"]])
    out = gpd.GeoDataFrame(pd.concat([edited, added], ignore_index=True), crs=CRS)
    return out, {k: len(v) for k, v in chosen.items()} | {"added": len(added)}


def run(n: int, rng: np.random.Generator, home: Path, runs: int) -> dict[str, Measurement]:
    parcels = generate_district(DISTRICT, n).parcels.drop(columns=["owner"])
    edited, injected = perturb(parcels, rng)
    with open_store(home, crs=CRS) as store:
        add = lambda gdf, name: store.add_version(  # noqa: E731
            DISTRICT, "parcels", gdf, source_name=name, source_sha256="0" * 64,
            created_by="bench", key_columns=("sheet", "parcel"))
        v1, v2 = add(parcels, "v1"), add(edited, "v2")
        everyone = edited.assign(parcel=edited["parcel"] + 1_000_000)
        v3 = add(everyone, "v3")
        results: dict[str, object] = {}

        def compare(name: str, a: int, b: int) -> None:
            results[name] = compare_versions(store, a, b)

        read, took, worst = alternate([
            lambda: (store.read(v1.id), store.read(v2.id)),
            lambda: compare("edits", v1.id, v2.id),
            lambda: compare("worst", v1.id, v3.id)], runs)
        result, worst_result = results["edits"], results["worst"]
        found = {k: result.counts[k] for k in injected}  # type: ignore[attr-defined]
    print(f"{n:>7} parcels: read both {read.text()}")
    print(f"{'':>7}          compare   {took.text()} = {ratio(took, read).text()} the read")
    print(f"{'':>7}          edits injected {injected} found {found} "
          f"{'(exact)' if found == injected else '(MISMATCH)'}")
    print(f"{'':>7}          worst case, every parcel renumbered (pairing by geometry): "
          f"{worst.text()} = {ratio(worst, read).text()} the read, "
          f"{worst_result.matched['geometry']} paired by geometry")  # type: ignore[attr-defined]
    return {"read": read, "compare": took, "worst": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="parcels per version")
    parser.add_argument("--small", type=int, default=50_000, help="the smaller size")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each measurement, alternated; the median counts "
                             "(default 3)")
    args = parser.parse_args()
    rng = np.random.default_rng(68)
    print_peers("pyogrio", "gdal", "shapely")
    with tempfile.TemporaryDirectory() as tmp:
        small = run(args.small, rng, Path(tmp) / "small", args.runs)
        big = run(args.n, rng, Path(tmp) / "big", args.runs)
    grow = args.n / args.small
    for what in ("compare", "worst"):
        growth = big[what].median / small[what].median
        exponent = math.log(growth) / math.log(grow)
        print(f"scaling {what:<8} {args.small} → {args.n} parcels ({grow:g}x): median time "
              f"{growth:4.2f}x, exponent {exponent:4.2f} (1 linear, 2 quadratic); the read "
              f"grew {big['read'].median / small['read'].median:4.2f}x")


if __name__ == "__main__":
    main()
