"""Ingest of a generated district vs a plain pyogrio read of the same file.

Usage: python bench/bench_ingest.py [--parcels 200000] [--format gpkg|shp] [--runs 3]
                                    [--backend embedded|production|both]

Generates one demo district (Đức Trọng) with N parcels, writes it as a planner would
send it (GeoPackage, or zipped Shapefile with TCVN3 owner names and no .prj), then in
fresh subprocesses, alternately for ``--runs`` runs (default 3; both see the same
machine state), measures (a) ``pyogrio.read_dataframe`` of that file and (b)
``gisportal.services.ingest.ingest_file`` into an empty store, a new one each run (read, decode,
CRS, normalise, validate with topology, store a version). Publishing (which builds the
vector tiles) is measured by bench/bench_tiles.py. Prints the median times with the
range of the runs and the machine's load, the ratio of the medians with the range of
the per-run ratios, each process's peak RSS (the largest of the runs), and the figure
issue 12 asks of ingest: its peak RSS (VmHWM) minus the RSS just before
``ingest_file``, per million parcels, in GB (10^9 bytes; target <= 1.0), median and
range of the runs.

``--backend production`` (or ``both``) ingests into the production store instead (or
as well, taking turns in each run): a real PostgreSQL 15 + PostGIS server started for
the run by tests/servers.py (installed as the README's test command installs it), a
fresh migrated database per run named by ``GISPORTAL_DATABASE`` in the ingest's
process, which then writes the version with COPY. Its memory figure is the same
measure, so the issue's "on either backend" is one number per backend.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd

try:
    from bench._measure import Runs, print_peers, ratio
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, print_peers, ratio

# Peak RSS from /proc (VmHWM, kB): unlike ru_maxrss it is not inherited from the
# parent across fork+exec, so each measurement sees only its own process. ``rss`` is
# the resident size now (VmRSS, kB): the base the ingest's growth is measured from.
HWM = """
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
def hwm():
    return status("VmHWM:")
def rss():
    return status("VmRSS:")
"""

READ = HWM + """
import sys, time, pyogrio, geopandas, shapely
base = rss()
t = time.perf_counter()
df = pyogrio.read_dataframe(sys.argv[1], encoding=sys.argv[2] or None)
dt = time.perf_counter() - t
print(dt, len(df), hwm(), base)
"""

INGEST = HWM + """
import sys, time
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
store = open_store(sys.argv[2], crs="EPSG:5899")
base = rss()
t = time.perf_counter()
res = ingest_file(store, sys.argv[1], "parcels", "678", crs=sys.argv[3] or None)
dt = time.perf_counter() - t
assert not res.version.has_errors, res.report.summary()
print(dt, res.version.feature_count, hwm(), base)
"""


def _run(code: str, *args: str, env: dict[str, str] | None = None,
         ) -> tuple[float, int, float, float]:
    """Run ``code`` in a fresh interpreter: seconds, features, peak MiB, MiB before the
    measured call (after the imports)."""
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True, env=env).stdout.split()
    return float(out[0]), int(out[1]), int(out[2]) / 1024, int(out[3]) / 1024


class Production:
    """The production store for the runs: a PostgreSQL + PostGIS server of this bench,
    a fresh migrated database per run (`env` names it to the ingest's process)."""

    def __init__(self) -> None:
        repo = str(Path(__file__).resolve().parents[1])
        if repo not in sys.path:
            sys.path.insert(0, repo)
        from tests.servers import PostgresServer

        self.server = PostgresServer.start()
        self.names: list[str] = []

    def env(self, run: int) -> dict[str, str]:
        import os

        from gisportal.store import postgres
        from gisportal.store.postgis import MIGRATIONS

        name = f"bench_ingest_{run}"
        dsn = self.server.create_database(name)
        self.names.append(name)
        postgres.migrate(dsn, MIGRATIONS)
        postgres.close_pools()  # this process keeps no session in it
        return {**os.environ, "GISPORTAL_DATABASE": dsn}

    def stop(self) -> None:
        for name in self.names:
            self.server.drop_database(name)
        self.server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--format", choices=["gpkg", "shp"], default="shp")
    ap.add_argument("--districts", type=int, default=1,
                    help="concatenate this many districts of --parcels each into one file "
                         "(e.g. 5 × 200 000 to measure memory at a million parcels)")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of each, alternated; the median counts (default 3)")
    ap.add_argument("--backend", choices=["embedded", "production", "both"],
                    default="embedded", help="the store ingested into (production: a real "
                    "PostgreSQL + PostGIS started for the run)")
    args = ap.parse_args()
    backends = ["embedded", "production"] if args.backend == "both" else [args.backend]

    from gisportal.demo import generate_district  # noqa: I001
    from gisportal.services.demo import PARCEL_FIELD_NAMES
    from gisportal.pipeline.read import encodings

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
        # Several districts in one file are too wide for the one-district CRS inference.
        crs = "EPSG:5899" if args.districts > 1 else ""
        runs = Runs()
        production = Production() if "production" in backends else None
        try:
            for i in range(args.runs):  # alternated: all see the same machine state
                read_s, n_read, read_mb, read_base = _run(READ, str(read_path), enc)
                runs.add("read", read_s)
                runs.add("read_mb", read_mb)
                runs.add("read_growth", read_mb - read_base)
                for b in backends:
                    env = production.env(i) if b == "production" and production else None
                    ingest_s, n_ing, ingest_mb, ingest_base = _run(
                        INGEST, str(path), str(tmp / f"home{i}{b}"), crs, env=env)
                    shutil.rmtree(tmp / f"home{i}{b}", ignore_errors=True)
                    assert n_read == n_ing
                    for name, value in (
                            (f"{b} ingest", ingest_s), (f"{b} ingest_mb", ingest_mb),
                            (f"{b} ingest_growth", ingest_mb - ingest_base),
                            # MiB → GB (10^9 bytes), per million parcels
                            (f"{b} ingest_gb_per_million",
                             (ingest_mb - ingest_base) * 2**20 / 1e9 / (n_ing / 1e6))):
                        runs.add(name, value)
        finally:
            if production is not None:
                production.stop()
        runs.close()
    read = runs["read"]
    result: dict[str, object] = {
        "parcels": n_ing, "format": args.format, "generate_s": round(gen, 2),
        "pyogrio_read_s": read.as_dict(3), "read_peak_mib": round(runs["read_mb"].max),
        "read_growth_mib": round(runs["read_growth"].max)}
    for b in backends:
        ingest = runs[f"{b} ingest"]
        # Memory per million parcels (issue 12): the peak above the RSS just before the
        # ingest (the interpreter with its libraries, about 250 MiB whatever the data),
        # scaled to 10^6 parcels, in GB; each run gives one value.
        result[b] = {"ingest_s": ingest.as_dict(3),
                     "ingest_over_read": ratio(ingest, read).as_dict(),
                     "ingest_peak_mib": round(runs[f"{b} ingest_mb"].max),
                     "ingest_growth_mib": round(runs[f"{b} ingest_growth"].max),
                     "ingest_peak_gb_per_million":
                         runs[f"{b} ingest_gb_per_million"].as_dict(3)}
    print(json.dumps(result, indent=1))
    print_peers("pyogrio", "gdal", "shapely")
    print(f"plain pyogrio read {read.text()}")
    for b in backends:
        ingest = runs[f"{b} ingest"]
        print(f"{b}: ingest_file {ingest.text()}")
        print(f"{b}: ingest / plain pyogrio read = {ratio(ingest, read).text()} "
              "(target <= 5x)")
        print(f"{b}: ingest peak RSS growth per million parcels "
              f"{runs[f'{b} ingest_gb_per_million'].text('GB')} (target <= 1.0 GB)")


if __name__ == "__main__":
    main()
