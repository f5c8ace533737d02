"""Ministry export of a generated district vs GDAL's ogr2ogr doing the same conversions.

Usage: python bench/bench_export.py [--parcels 200000] [--runs 3]

Builds once, in a temporary data home, one demo district (Đức Trọng) with N parcels,
its 2021–2030 plan and its commune boundaries, stored and published as ingest stores
them. Then, alternating for ``--runs`` runs (``--rounds`` is the old name; default 3),
so both see the same machine state:

- **ogr2ogr** (Debian's ``gdal-bin``) from the stored GeoPackage, per layer and with the
  same columns the package carries: a GeoPackage copy, a Shapefile with UTF-8 DBF, and
  GeoJSON per RFC 7946 in EPSG:4326 (7 decimals) — the three conversions alone;
- **gisportal export** in a fresh interpreter: the same three conversions plus what makes
  it a package (ring orientation, .prj with TOWGS84, zipped Shapefiles, ISO metadata,
  sha256 of every file, one deflated zip written atomically).

Prints the median of each with the range of the runs and the machine's load, the ratio
of the medians with the range of the per-run ratios (target <= 1.2x), the versions of
the peers (Debian's ogr2ogr is its own GDAL, not necessarily the one pyogrio carries),
the export's own steps (median run), the package size, and the export's peak RSS
(the largest of the runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from bench._measure import Runs, print_peers, ratio
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, print_peers, ratio

# Peak RSS from /proc (VmHWM, kB): not inherited across fork+exec, unlike ru_maxrss.
EXPORT = """
import sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from gisportal.outputs.export import export_package
from gisportal.store import open_store
store = open_store(sys.argv[1], crs="EPSG:5899")
base = hwm()
steps, last = {}, [time.perf_counter()]
def progress(step, total):
    now = time.perf_counter()
    name = step.split(": ")[-1]
    steps[name] = steps.get(name, 0.0) + now - last[0]
    last[0] = now
t = time.perf_counter()
res = export_package(store, "678", sys.argv[2], progress=progress)
dt = time.perf_counter() - t
import json
print(json.dumps({"seconds": dt, "peak_kib": hwm(), "base_kib": base, "steps": steps,
                  "features": sum(l.version.feature_count for l in res.layers)}))
"""


def build(home: Path, parcels: int) -> list[tuple[str, str, list[str]]]:
    """Store and publish the district; (kind, stored table, exported columns) per layer."""
    import geopandas as gpd

    from gisportal.demo import generate_district
    from gisportal.outputs.export.names import export_fields
    from gisportal.services.demo import PARCEL_FIELD_NAMES, PLAN_FIELD_NAMES
    from gisportal.services.ingest import check_file
    from gisportal.store import open_store

    d = generate_district("678", parcels)
    boundary = gpd.GeoDataFrame(
        {"Cap": ["district"] + ["commune"] * len(d.communes),
         "Ma": ["678", *d.communes["code"]], "Ten": ["Huyện Đức Trọng", *d.communes["name"]]},
        geometry=[d.boundary, *d.communes.geometry], crs=d.communes.crs)
    files = {"parcels": d.parcels.rename(columns=PARCEL_FIELD_NAMES),
             "plan": d.plan.rename(columns=PLAN_FIELD_NAMES), "boundary": boundary}
    store = open_store(home, crs="EPSG:5899")
    layers = []
    for kind, frame in files.items():
        path = home.parent / f"{kind}.gpkg"
        frame.to_file(path, driver="GPKG")
        checked = check_file(path, kind, district="678")
        model = checked.layer.model
        v = store.add_version(
            "678", kind, checked.layer.frame, source_name=path.name,
            source_sha256=checked.source.sha256, created_by="bench",
            has_errors=checked.report.has_errors,
            key_columns=[k for k in model.key if k in checked.layer.frame.columns],
            meta={"read": checked.report.read, "personal_fields": list(model.personal_fields)})
        store.publish(v.id, by="bench")
        dtypes = store.read(v.id, bbox=(0.0, 0.0, 0.0, 0.0)).dtypes.to_dict()
        columns = [f.column for f in export_fields(kind, dtypes, v.meta)]
        layers.append((kind, f"{kind}_v{v.id}", columns))
    store.close()
    return layers


def ogr2ogr(source: Path, layers: list[tuple[str, str, list[str]]], out: Path) -> float:
    """The three conversions with Debian's ogr2ogr; seconds."""
    exe = shutil.which("ogr2ogr")
    if exe is None:
        sys.exit("ogr2ogr not found: install Debian's gdal-bin")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    start = time.perf_counter()
    for i, (kind, table, columns) in enumerate(layers):
        select = ["-select", ",".join(columns)]
        gpkg = ["-update"] if i else []
        for args in (
            ["-f", "GPKG", *gpkg, str(out / "678.gpkg"), str(source), table, "-nln", kind],
            ["-f", "ESRI Shapefile", "-lco", "ENCODING=UTF-8", str(out / f"{kind}.shp"),
             str(source), table],
            ["-f", "GeoJSON", "-lco", "RFC7946=YES", "-lco", "COORDINATE_PRECISION=7",
             "-t_srs", "EPSG:4326", str(out / f"{kind}.geojson"), str(source), table],
        ):
            subprocess.run([exe, "-q", *args, *select], check=True)
    return time.perf_counter() - start


def export(home: Path, out: Path) -> dict:
    out.unlink(missing_ok=True)
    run = subprocess.run([sys.executable, "-c", EXPORT, str(home), str(out)], check=True,
                         capture_output=True, text=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--runs", "--rounds", dest="runs", type=int, default=3,
                    help="runs of each, alternated; the median counts (default 3)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        home = tmp / "home"
        t = time.perf_counter()
        layers = build(home, args.parcels)
        print(f"built and published the district in {time.perf_counter() - t:.1f} s: "
              + ", ".join(f"{kind} ({len(cols)} columns)" for kind, _, cols in layers))
        source = home / "districts" / "678.gpkg"
        runs, exports = Runs(), []
        for _ in range(args.runs):  # alternated: both see the same machine state
            runs.add("ogr2ogr", ogr2ogr(source, layers, tmp / "ogr"))
            exports.append(export(home, tmp / "package.zip"))
            runs.add("export", exports[-1]["seconds"])
        runs.close()
        size = (tmp / "package.zip").stat().st_size
    base, ours = runs["ogr2ogr"], runs["export"]
    typical = sorted(exports, key=lambda r: r["seconds"])[len(exports) // 2]
    peak = max(exports, key=lambda r: r["peak_kib"])
    steps = ", ".join(f"{name} {s:.2f} s" for name, s in typical["steps"].items())
    print_peers("ogr2ogr", "gdal", "pyogrio")
    print(f"features: {typical['features']}")
    print(f"ogr2ogr (GeoPackage + Shapefile UTF-8 + GeoJSON RFC 7946): {base.text()}")
    print(f"gisportal export (package zip, {size / 2**20:.1f} MiB):       {ours.text()}")
    print(f"  steps of the median run: {steps}")
    print(f"export peak RSS {peak['peak_kib'] / 1024:.0f} MiB, largest of {args.runs} runs "
          f"({(peak['peak_kib'] - peak['base_kib']) / 1024:.0f} MiB above the interpreter "
          "with its libraries)")
    print(f"export / ogr2ogr = {ratio(ours, base).text()} (target <= 1.2x)")


if __name__ == "__main__":
    main()
