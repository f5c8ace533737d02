"""Ingest of a generated district vs a plain pyogrio read of the same file.

Usage: python bench/bench_ingest.py [--parcels 200000] [--format gpkg|shp]

Generates one demo district (Đức Trọng) with N parcels, writes it as a planner would
send it (GeoPackage, or zipped Shapefile with TCVN3 owner names and no .prj), then in
fresh subprocesses measures (a) ``pyogrio.read_dataframe`` of that file and (b)
``gisportal.ingest.ingest_file`` into an empty store (read, decode, CRS, normalise,
validate with topology, store a version). Publishing (which builds the vector tiles)
is measured by bench/bench_tiles.py. Prints times, the ratio, and each process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd

# Peak RSS from /proc (VmHWM, kB): unlike ru_maxrss it is not inherited from the
# parent across fork+exec, so each measurement sees only its own process.
HWM = """
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""

READ = HWM + """
import sys, time, pyogrio, geopandas, shapely
base = hwm()
t = time.perf_counter()
df = pyogrio.read_dataframe(sys.argv[1], encoding=sys.argv[2] or None)
dt = time.perf_counter() - t
print(dt, len(df), hwm(), base)
"""

INGEST = HWM + """
import sys, time
from gisportal.ingest import ingest_file
from gisportal.store import open_store
store = open_store(sys.argv[2], crs="EPSG:5899")
base = hwm()
t = time.perf_counter()
res = ingest_file(store, sys.argv[1], "parcels", "678", crs=sys.argv[3] or None)
dt = time.perf_counter() - t
assert not res.version.has_errors, res.report.summary()
print(dt, res.version.feature_count, hwm(), base)
"""


def _run(code: str, *args: str) -> tuple[float, int, float, float]:
    """Run ``code`` in a fresh interpreter: seconds, features, peak MiB, MiB after imports."""
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2]) / 1024, int(out[3]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--format", choices=["gpkg", "shp"], default="shp")
    ap.add_argument("--districts", type=int, default=1,
                    help="concatenate this many districts of --parcels each into one file "
                         "(e.g. 5 × 200 000 to measure memory at a million parcels)")
    args = ap.parse_args()

    from gisportal.demo import generate_district  # noqa: I001
    from gisportal.demo_province import PARCEL_FIELD_NAMES
    from gisportal.read import encodings

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        codes = ["678", "676", "679", "677", "680", "674", "675"][: args.districts]
        parcels = pd.concat([generate_district(c, args.parcels).parcels for c in codes],
                            ignore_index=True).rename(columns=PARCEL_FIELD_NAMES)
        gen = time.perf_counter() - t
        if args.format == "gpkg":
            path = tmp / "thua.gpkg"
            parcels.to_file(path, driver="GPKG")
            enc = ""
        else:
            # Short DBF names, TCVN3 owner names as raw bytes, no .cpg, no .prj.
            parcels = parcels.rename(columns={"SoHieuToBanDo": "SHBANDO",
                                              "SoThuTuThua": "SHTHUA",
                                              "KyHieuMucDichSuDung": "KH_MDSD",
                                              "DiaChiThua": "DIACHI"})
            for col in ("TenChu", "DIACHI"):
                parcels[col] = [None if pd.isna(v) else
                                encodings.encode(v, "tcvn3").decode("latin-1")
                                for v in parcels[col]]
            parts = tmp / "parts"
            parts.mkdir()
            parcels.to_file(parts / "thua.shp", driver="ESRI Shapefile", encoding="latin1")
            for extra in ("thua.prj", "thua.cpg"):
                (parts / extra).unlink(missing_ok=True)
            path = tmp / "thua.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in parts.iterdir():
                    zf.write(p, p.name)
            path_read = parts / "thua.shp"
            enc = "latin1"
        read_path = path if args.format == "gpkg" else path_read
        read_s, n_read, read_mb, read_base = _run(READ, str(read_path), enc)
        # Several districts in one file are too wide for the one-district CRS inference.
        crs = "EPSG:5899" if args.districts > 1 else ""
        ingest_s, n_ing, ingest_mb, ingest_base = _run(INGEST, str(path), str(tmp / "home"), crs)
    # Memory per million parcels: the growth above the interpreter with its libraries
    # loaded (about 250 MiB whatever the data), scaled to 10^6 parcels.
    per_million = (ingest_mb - ingest_base) / (n_ing / 1e6)
    result = {
        "parcels": n_ing, "format": args.format, "generate_s": round(gen, 2),
        "pyogrio_read_s": round(read_s, 2), "ingest_s": round(ingest_s, 2),
        "ingest_over_read": round(ingest_s / read_s, 2),
        "read_peak_mib": round(read_mb), "read_growth_mib": round(read_mb - read_base),
        "ingest_peak_mib": round(ingest_mb), "ingest_growth_mib": round(ingest_mb - ingest_base),
        "ingest_peak_gib_per_million": round(per_million / 1024, 2),
    }
    assert n_read == n_ing
    print(json.dumps(result, indent=1))
    print(f"ingest / plain pyogrio read = {result['ingest_over_read']}x "
          f"(target <= 5x); peak {result['ingest_peak_gib_per_million']} GiB per million "
          "parcels (target <= 1.5)")


if __name__ == "__main__":
    main()
