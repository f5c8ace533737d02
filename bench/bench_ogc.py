"""OGC API – Features: gisportal against pygeoapi on the same published 200 000-parcel GeoPackage.

Both servers run as their own processes under waitress on 127.0.0.1 and serve the
published parcels table of the district GeoPackage (gisportal through its store;
pygeoapi through its GeoPackage/SQLite provider, on a copy of that table — see
`pygeoapi_copy` — declared with the storage CRS EPSG:5899, so that both answer in
CRS84, reprojecting every coordinate). Measured in
the same run, one client on a keep-alive connection:

- items throughput: ``limit=1000`` pages, features per second;
- a small bbox (about 110 m × 110 m around random parcels, ``limit=100``): p50 / p95;
- a single item by id: p50 / p95;

over real HTTP (``http.client`` to the servers' sockets), for ``--runs`` runs (default 3)
with the two servers taking turns (gisportal, pygeoapi, gisportal, ...: both see the same
machine state). Each figure is the median of the runs with its range and the machine's
load; the ratios are the ratio of the medians with the range of the per-run ratios. Each
server's small-bbox answers are also checked against the exact answer (shapely on the
same parcels, in WGS 84). Targets for gisportal: ≥ 100 000 features/s (issue 16; every
answer with its rings wound by the right-hand rule), p95 ≤ 30 ms for bbox and item.

Every page is a different offset of the whole, unfiltered layer, asked for once per
run: no answer is cached anywhere, so the figure is what serving costs. (The README's
first figure, 61 000 features/s, was not a regression: measured in-process on this
machine, the code of its own commit (a3c9586) served 26 000–28 000 features/s, the code
of 2026-12-06 about 30 000. About 60 % of each page went to finding the layer's first
and last feature id, which SQLite answered by scanning all 200 000 rows; fixed in the
store on 2026-12-06.)

pygeoapi is not a gisportal dependency. The script installs it (with waitress) from
PyPI, pinned to ``PYGEOAPI_VERSION`` (0.21.0) so re-runs compare against the same peer,
into its own virtualenv made with Debian's ``/usr/bin/python3`` when that virtualenv
lacks that version, because pygeoapi's GeoPackage provider loads SpatiaLite and the
pyenv Python here cannot load SQLite extensions; SpatiaLite itself is Debian's
``libsqlite3-mod-spatialite`` (installed with apt-get when missing and running as root,
otherwise the script says what to install). ``--no-pygeoapi`` measures gisportal alone.

Usage (from the repository root)::

    python bench/bench_ogc.py [--parcels 200000] [--home DIR] [--pages 20] [--calls 200]
                              [--pygeoapi-calls 40] [--pygeoapi-venv DIR] [--no-pygeoapi]
                              [--runs 3]

Building a 200 000-parcel district takes a minute or two; ``--home DIR`` keeps it. Traffic
goes to 127.0.0.1 only (and to PyPI / Debian once, to install pygeoapi).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pyogrio
import shapely

try:
    from bench._measure import Measurement, Runs, print_peers, ratio
    from bench.bench_lookup import ensure_home, free_port
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Measurement, Runs, print_peers, ratio
    from bench_lookup import ensure_home, free_port
from gisportal.base import seeds
from gisportal.base.crs import to_lonlat
from gisportal.store import open_store

REPO = Path(__file__).resolve().parents[1]
DEBIAN_PYTHON = "/usr/bin/python3"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: Half the side of the small bbox, degrees (~55 m).
HALF_BOX_DEG = 0.0005
TARGET_FEATURES_PER_S = 100_000
TARGET_P95_MS = 30.0
#: The peer's version, pinned: a figure "vs pygeoapi" means this version.
PYGEOAPI_VERSION = "0.21.0"

_GISPORTAL = r"""
import logging, sys, waitress
logging.getLogger("waitress.queue").setLevel(logging.ERROR)
if sys.argv[3] == "freeze":  # the app as `gisportal serve` makes it (start-up frozen)
    from gisportal.web.server import serving_app
    app = serving_app({"home": sys.argv[1]})
else:
    from gisportal.web.app import create_app
    app = create_app({"home": sys.argv[1]})
print("ready", flush=True)
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=4, _quiet=True)
"""

# -- the servers ------------------------------------------------------------------------------


def wait_ready(port: int, path: str, child: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {child.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server on port {port} did not answer {path} in {timeout:.0f} s")


def start_gisportal(home: Path, gc_freeze: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", _GISPORTAL, str(home), str(port),
                              "freeze" if gc_freeze else "-"],
                             cwd=REPO, stdout=subprocess.DEVNULL)
    wait_ready(port, "/ogc", child, 60)
    return child, f"http://127.0.0.1:{port}/ogc/collections"


def pygeoapi_python(venv: Path) -> Path | None:
    """The virtualenv's Python with pygeoapi, installing it if needed; None if impossible."""
    python = venv / "bin" / "python"
    probe = "import sqlite3; c = sqlite3.connect(':memory:'); c.enable_load_extension(True); " \
            "c.execute(\"SELECT load_extension('mod_spatialite')\")"
    if not Path(DEBIAN_PYTHON).exists():
        print(f"pygeoapi skipped: {DEBIAN_PYTHON} (Debian's python3) is missing")
        return None
    if subprocess.run([DEBIAN_PYTHON, "-c", probe], capture_output=True).returncode != 0:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            print("installing Debian's libsqlite3-mod-spatialite for pygeoapi ...", flush=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "libsqlite3-mod-spatialite"],
                           check=False, capture_output=True)
        if subprocess.run([DEBIAN_PYTHON, "-c", probe], capture_output=True).returncode != 0:
            print("pygeoapi skipped: SpatiaLite cannot be loaded; install Debian's "
                  "libsqlite3-mod-spatialite (apt-get install libsqlite3-mod-spatialite)")
            return None
    if not python.exists():
        print(f"making a virtualenv for pygeoapi in {venv} ...", flush=True)
        subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(venv)], check=True)
    probe_version = ("import pygeoapi, waitress, sys; "
                     f"sys.exit(pygeoapi.__version__ != {PYGEOAPI_VERSION!r})")
    if subprocess.run([str(python), "-c", probe_version], capture_output=True).returncode != 0:
        print(f"installing pygeoapi {PYGEOAPI_VERSION} and waitress from PyPI into it ...",
              flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"pygeoapi=={PYGEOAPI_VERSION}", "waitress"], check=True)
    return python


def pygeoapi_config(port: int, data: Path, table: str, bbox: list[float]) -> dict:
    """A minimal pygeoapi configuration with one collection: the published parcels."""
    text = "bench"
    return {
        "server": {"bind": {"host": "127.0.0.1", "port": port},
                   "url": f"http://127.0.0.1:{port}", "mimetype": "application/json; "
                   "charset=UTF-8", "encoding": "utf-8", "language": "en-US",
                   "limits": {"default_items": 10, "max_items": 10_000},
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                           "attribution": text}},
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": text, "description": text, "keywords": [text],
                               "keywords_type": "theme", "terms_of_service": text,
                               "url": "https://example.org"},
            "license": {"name": "CC-BY 4.0",
                        "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": text, "url": "https://example.org"},
            "contact": {k: text for k in ("name", "position", "address", "city",
                                          "stateorprovince", "postalcode", "country",
                                          "phone", "fax", "hours", "instructions")}
            | {"email": "bench@example.org", "url": "https://example.org",
               "role": "pointOfContact"}},
        "resources": {"parcels": {
            "type": "collection", "title": "parcels", "description": "published parcels",
            "keywords": ["parcels"],
            "extents": {"spatial": {"bbox": bbox, "crs": CRS84}},
            "providers": [{"type": "feature", "name": "SQLiteGPKG", "data": str(data),
                           "id_field": "fid", "table": table,
                           "storage_crs": "http://www.opengis.net/def/crs/EPSG/0/5899",
                           "crs": [CRS84, "http://www.opengis.net/def/crs/EPSG/0/5899"]}]}},
    }


def pygeoapi_copy(home: Path, district: str, work: Path) -> tuple[Path, list[float]]:
    """The published parcels as pygeoapi can read them, and their CRS84 box.

    pygeoapi's GeoPackage provider goes through SpatiaLite's VirtualGPKG, which refuses
    column names containing ``:`` (the store's ``src:`` source columns) and creates its
    virtual tables in the file it opens. So it gets a copy: the same features in the same
    order (same ids), the same geometry in EPSG:5899 with its R*Tree, and the public
    columns gisportal serves, ``src:`` renamed ``src_``: both servers send the same data.
    """
    from gisportal.outputs.ogc.collections import public_fields

    with open_store(home, crs=seeds.province()["crs"]) as store:
        version = store.published(district, "parcels")
        assert version is not None and version.bounds is not None
        columns = public_fields(store, version).columns
        bounds = version.bounds
    frame = pyogrio.read_dataframe(home / "districts" / f"{district}.gpkg",
                                   layer=f"parcels_v{version.id}", columns=columns)
    frame = frame.rename(columns={c: c.replace(":", "_") for c in columns})
    path = work / "parcels.gpkg"
    pyogrio.write_dataframe(frame, path, layer="parcels", driver="GPKG")
    lon, lat = to_lonlat(np.array(bounds[::2]), np.array(bounds[1::2]))
    return path, [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]


def start_pygeoapi(python: Path, home: Path, district: str,
                   work: Path) -> tuple[subprocess.Popen, str, str]:
    data, bbox = pygeoapi_copy(home, district, work)
    port = free_port()
    config = work / "pygeoapi-config.yml"
    # JSON is YAML: no quoting rules to get wrong.
    config.write_text(json.dumps(pygeoapi_config(port, data, "parcels", bbox)),
                      encoding="utf-8")
    openapi = work / "pygeoapi-openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    bin_dir = python.parent
    done = subprocess.run([str(bin_dir / "pygeoapi"), "openapi", "generate", str(config),
                           "--output-file", str(openapi)], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed: {done.stderr[-2000:]}")
    version_text = subprocess.run(
        [str(python), "-c", "import pygeoapi; print(pygeoapi.__version__)"],
        capture_output=True, text=True).stdout.strip()
    child = subprocess.Popen([str(bin_dir / "waitress-serve"), "--host=127.0.0.1",
                              f"--port={port}", "--threads=4", "pygeoapi.flask_app:APP"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, "/collections/parcels?f=json", child, 120)
    return child, f"http://127.0.0.1:{port}/collections", version_text


# -- the client -------------------------------------------------------------------------------


class Client:
    """One keep-alive connection; `get` returns (milliseconds, parsed JSON)."""

    def __init__(self, base: str) -> None:
        rest = base.removeprefix("http://")
        host_port, _, path = rest.partition("/")
        host, _, port = host_port.partition(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)
        self.path = "/" + path

    def get(self, path: str, params: dict[str, object]) -> tuple[float, dict]:
        url = f"{self.path}{path}?{urlencode(params)}"
        start = time.perf_counter()
        self.conn.request("GET", url, headers={"Accept": "application/geo+json"})
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {body[:300]!r}")
        return elapsed, json.loads(body)


def p50_p95(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


def measure(base: str, collection: str, pages: int, boxes: list[tuple[float, ...]],
            ids: list[int]) -> dict[str, object]:
    client = Client(base)
    items = f"/{collection}/items"
    for _ in range(3):  # warm up: connections, caches, first imports
        client.get(items, {"limit": 10, "f": "json"})
        client.get(f"{items}/{ids[0]}", {"f": "json"})
        client.get(items, {"bbox": ",".join(map(str, boxes[0])), "limit": 100, "f": "json"})
    features, total = 0, 0.0
    for page in range(pages):
        ms, doc = client.get(items, {"limit": 1000, "offset": page * 1000, "f": "json"})
        total += ms
        features += len(doc["features"])
    bbox_times, bbox_ids = [], []
    for box in boxes:
        ms, doc = client.get(items, {"bbox": ",".join(map(str, box)), "limit": 100, "f": "json"})
        bbox_times.append(ms)
        bbox_ids.append({f["id"] for f in doc["features"]})
    item_times = []
    for fid in ids:
        ms, doc = client.get(f"{items}/{fid}", {"f": "json"})
        assert doc["id"] == fid, doc.get("id")
        item_times.append(ms)
    return {"features_per_s": features / (total / 1000), "features": features,
            "page_ms": total / pages, "bbox": p50_p95(bbox_times), "bbox_ids": bbox_ids,
            "item": p50_p95(item_times)}


def workload(home: Path, district: str, n: int,
             seed: int) -> tuple[list[tuple[float, ...]], list[int], list[set[int]]]:
    """`n` small CRS84 boxes around random parcels, `n` random feature ids, and the exact
    answer for each box (the ids of the parcels whose WGS 84 geometry intersects it)."""
    with open_store(home, crs=seeds.province()["crs"]) as store:
        version = store.published(district, "parcels")
        assert version is not None
        gdf = store.read(version.id, columns=[])
    rng = random.Random(seed)
    picks = [rng.randrange(len(gdf)) for _ in range(n)]
    points = shapely.get_coordinates(shapely.point_on_surface(gdf.geometry.values[picks]))
    lon, lat = to_lonlat(points[:, 0], points[:, 1])
    boxes = [(round(float(a) - HALF_BOX_DEG, 7), round(float(b) - HALF_BOX_DEG, 7),
              round(float(a) + HALF_BOX_DEG, 7), round(float(b) + HALF_BOX_DEG, 7))
             for a, b in zip(lon, lat, strict=True)]
    ids = [rng.randrange(1, len(gdf) + 1) for _ in range(n)]
    tree = shapely.STRtree(gdf.to_crs("EPSG:4326").geometry.values)
    exact = [set((tree.query(shapely.box(*box), predicate="intersects") + 1).tolist())
             for box in boxes]
    return boxes, ids, exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=200_000)
    parser.add_argument("--district", default="678")
    parser.add_argument("--home", type=Path, help="data home to build or reuse")
    parser.add_argument("--pages", type=int, default=20, help="limit=1000 pages per server")
    parser.add_argument("--calls", type=int, default=200, help="bbox and item calls, gisportal")
    parser.add_argument("--pygeoapi-calls", type=int, default=40,
                        help="bbox and item calls, pygeoapi (slower: fewer by default)")
    parser.add_argument("--pygeoapi-venv", type=Path,
                        default=Path.home() / ".cache" / "gisportal-bench" / "pygeoapi-venv")
    parser.add_argument("--no-pygeoapi", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                        help="serve the app without freezing its start-up objects, unlike "
                             "`gisportal serve` (gisportal.web.server.serving_app): what "
                             "the garbage collector's full passes cost")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each server, taking turns; the median counts (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gisportal-bench-ogc-") as tmp:
        work = Path(tmp)
        home = args.home or work / "home"
        ensure_home(home, args.district, args.parcels)
        boxes, ids, exact = workload(home, args.district, args.calls, args.seed)
        children: list[subprocess.Popen] = []
        servers: dict[str, Callable[[], dict[str, object]]] = {}
        python = None
        try:
            child, base = start_gisportal(home, args.gc_freeze)
            children.append(child)
            print(f"gisportal: {base}", flush=True)
            servers["gisportal"] = lambda base=base: measure(
                base, f"{args.district}-parcels", args.pages, boxes, ids)
            python = None if args.no_pygeoapi else pygeoapi_python(args.pygeoapi_venv)
            if python is not None:
                child, base, version = start_pygeoapi(python, home, args.district, work)
                children.append(child)
                print(f"pygeoapi {version}: {base}", flush=True)
                k = min(args.pygeoapi_calls, args.calls)
                servers["pygeoapi"] = lambda base=base, k=k: measure(
                    base, "parcels", args.pages, boxes[:k], ids[:k])
            runs = {name: Runs() for name in servers}
            answers: dict[str, list[set[int]]] = {}
            for i in range(args.runs):  # the servers take turns: same machine state
                for name, run in servers.items():
                    r = run()
                    print(f"  run {i + 1} {name}: {r['features_per_s']:,.0f} features/s, "
                          f"bbox p95 {r['bbox'][1]:.1f} ms, item p95 {r['item'][1]:.1f} ms",
                          flush=True)
                    for key in ("features_per_s", "page_ms"):
                        runs[name].add(key, r[key])  # type: ignore[arg-type]
                    for key in ("bbox", "item"):
                        runs[name].add(f"{key}_p50", r[key][0])  # type: ignore[index]
                        runs[name].add(f"{key}_p95", r[key][1])  # type: ignore[index]
                    runs[name].add("exact", exact_count(r["bbox_ids"], exact))  # type: ignore
                    answers[name] = r["bbox_ids"]  # type: ignore[assignment]
            for r in runs.values():
                r.close()
        finally:
            for child in children:
                child.terminate()
                child.wait(30)
        print_peers("pygeoapi", "waitress", "shapely", pygeoapi_python=python)
        report(runs, answers, exact, args)


def exact_count(answers: list[set[int]], exact: list[set[int]]) -> int:
    """How many of the answers (one per box, the first boxes) are the exact ones."""
    return sum(a == b for a, b in zip(answers, exact[:len(answers)], strict=True))


def report(runs: dict[str, Runs], answers: dict[str, list[set[int]]], exact: list[set[int]],
           args: argparse.Namespace) -> None:
    """Per server the median of the runs [their range]; then the full figures and ratios."""
    ours = runs["gisportal"]
    rows: list[tuple[str, Callable[[Runs], str]]] = [
        ("items, limit=1000 (features/s)", lambda r: r["features_per_s"].short("", 0)),
        ("  one page of 1000 (ms)", lambda r: r["page_ms"].short("", 1)),
        ("small bbox p50 (ms)", lambda r: r["bbox_p50"].short("", 1)),
        ("small bbox p95 (ms)", lambda r: r["bbox_p95"].short("", 1)),
        ("  exact answers", lambda r: f"{r['exact'].min:.0f}–{r['exact'].max:.0f}"),
        ("item by id p50 (ms)", lambda r: r["item_p50"].short("", 1)),
        ("item by id p95 (ms)", lambda r: r["item_p95"].short("", 1)),
    ]
    names = list(runs)
    print(f"\n{args.parcels} parcels, district {args.district}; {args.pages} pages of 1000, "
          f"{len(answers['gisportal'])} bbox and item calls (pygeoapi: "
          f"{len(answers.get('pygeoapi', answers['gisportal']))}) per run; mean "
          f"{statistics.mean(len(e) for e in exact):.1f} parcels per bbox; over HTTP"
          + ("" if args.gc_freeze else
             "; gisportal's server did NOT freeze its start-up objects (--no-gc-freeze)"))
    print(f"median of {args.runs} runs [min–max]; {ours['features_per_s'].load_text()}")
    print(f"{'':34}" + "".join(f"{n:>26}" for n in names))
    for label, fmt in rows:
        print(f"{label:34}" + "".join(f"{fmt(runs[n]):>26}" for n in names))
    print("(exact: of the answers per run, how many hold exactly the ids of the parcels whose "
          "WGS 84 geometry intersects the box)")
    print("\nfigures:")
    for name in names:
        r = runs[name]
        print(f"  {name}: items {r['features_per_s'].text('features/s', 0)}")
        print(f"  {name}: bbox p95 {r['bbox_p95'].text('ms', 1)}")
        print(f"  {name}: item p95 {r['item_p95'].text('ms', 1)}")
    if "pygeoapi" in runs:
        theirs = runs["pygeoapi"]
        print("\nratios (gisportal is N× faster; median, range of the per-run ratios):")
        items = ratio(ours["features_per_s"], theirs["features_per_s"])
        print(f"  items throughput   {items.text(1)}")
        for key in ("bbox_p50", "bbox_p95", "item_p50", "item_p95"):
            print(f"  {key.replace('_', ' '):18} {ratio(theirs[key], ours[key]).text(1)}")
    m: dict[str, Measurement] = {k: ours[k] for k in ("features_per_s", "bbox_p95", "item_p95")}
    ok = (m["features_per_s"].median >= TARGET_FEATURES_PER_S
          and m["bbox_p95"].median <= TARGET_P95_MS and m["item_p95"].median <= TARGET_P95_MS)
    print(f"\ntargets (≥ {TARGET_FEATURES_PER_S:,} features/s, p95 ≤ {TARGET_P95_MS:.0f} ms; "
          f"medians): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
