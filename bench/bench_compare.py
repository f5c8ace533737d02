"""Benchmark comparing two versions of a district's parcels against reading them.

Generates a demo district, stores it as version 1 and a copy with about 1 % of its
parcels edited as version 2 (removed, added, reshaped, land use changed, renumbered),
then prints, from one run on this machine: the comparison's time as a ratio to reading
both versions from the store, whether it found exactly the injected edits, and the
times at two sizes with the exponent they imply (1 = linear, 2 = quadratic). A last
line times the worst case, every parcel renumbered, so all pairing is by geometry.

Usage::

    python -m bench.bench_compare [--n 200000] [--small 50000]   (from the repository root)
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisportal.compare import compare_versions
from gisportal.demo import generate_district
from gisportal.store import open_store

CRS = "EPSG:5899"
DISTRICT = "678"
#: Share of the parcels each kind of edit touches (about 1 % in all).
SHARE = {"removed": 0.0025, "use_changed": 0.0025, "reshaped": 0.002, "renumbered": 0.002,
         "added": 0.002}


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Best wall time of `repeat` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


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


def run(n: int, rng: np.random.Generator, home: Path) -> dict[str, float]:
    parcels = generate_district(DISTRICT, n).parcels.drop(columns=["owner"])
    edited, injected = perturb(parcels, rng)
    with open_store(home, crs=CRS) as store:
        add = lambda gdf, name: store.add_version(  # noqa: E731
            DISTRICT, "parcels", gdf, source_name=name, source_sha256="0" * 64,
            created_by="bench", key_columns=("sheet", "parcel"))
        v1, v2 = add(parcels, "v1"), add(edited, "v2")
        read, _ = timed(lambda: (store.read(v1.id), store.read(v2.id)))
        took, result = timed(lambda: compare_versions(store, v1.id, v2.id))
        found = {k: result.counts[k] for k in injected}  # type: ignore[union-attr]
        everyone = edited.assign(parcel=edited["parcel"] + 1_000_000)
        v3 = add(everyone, "v3")
        worst, worst_result = timed(lambda: compare_versions(store, v1.id, v3.id), 1)
    print(f"{n:>7} parcels: read both {read:6.2f} s | compare {took:6.2f} s = "
          f"{took / read:4.2f}x the read | edits injected {injected} found {found} "
          f"{'(exact)' if found == injected else '(MISMATCH)'}")
    print(f"{'':>7}          worst case, every parcel renumbered (pairing by geometry): "
          f"{worst:6.2f} s = {worst / read:4.2f}x the read, "
          f"{worst_result.matched['geometry']} paired by geometry")  # type: ignore[union-attr]
    return {"read": read, "compare": took, "worst": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="parcels per version")
    parser.add_argument("--small", type=int, default=50_000, help="the smaller size")
    args = parser.parse_args()
    rng = np.random.default_rng(68)
    with tempfile.TemporaryDirectory() as tmp:
        small = run(args.small, rng, Path(tmp) / "small")
        big = run(args.n, rng, Path(tmp) / "big")
    grow = args.n / args.small
    for what in ("compare", "worst"):
        exponent = math.log(big[what] / small[what]) / math.log(grow)
        print(f"scaling {what:<8} {args.small} → {args.n} parcels ({grow:g}x): time "
              f"{big[what] / small[what]:4.2f}x, exponent {exponent:4.2f} "
              f"(1 linear, 2 quadratic); the read grew {big['read'] / small['read']:4.2f}x")


if __name__ == "__main__":
    main()
