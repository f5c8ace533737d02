"""The production backends (PostgreSQL/PostGIS + S3) against the embedded default, in one run.

Why: issue 12 asks what production mode costs against the embedded default (GeoPackage
and SQLite in the data home, tile archives as local files) on the *same* district, run
the way the real ``gisportal`` commands and servers run — not a store call in isolation
(bench_store.py, docs/deploy.md) or a tile read alone (bench_tiles_s3.py). Both backends
are measured in the same loop, taking turns, so they meet the same machine state; every
figure is the median of ``--runs`` runs with its range and the machine's load (the
project's rule, bench/_measure.py).

Set-up: a real PostgreSQL 15 + PostGIS primary with a streaming read replica and a real
SeaweedFS S3 server, started by the classes of tests/servers.py on free ports of
127.0.0.1 in temporary folders (installed as the README's test command installs them).
The district(s) are generated once and written as a planner's GeoPackage.

Per run, each backend gets a fresh home (production: a fresh database, ``gisportal
migrate`` first, and a fresh key prefix in the bucket):

1. **ingest**: ``gisportal ingest FILE --kind parcels --district D``, a fresh process
   per district, timed from process start to exit (interpreter start included, as an
   operator meets it); its peak RSS is VmHWM at exit minus VmHWM once the command's
   libraries are imported (as bench_ingest.py does), per million parcels;
2. **publish**: ``gisportal publish --district D --kind parcels --version V`` (builds the
   vector tiles; in production PUTs the archive to S3). Order per run: embedded ingest,
   production ingest, embedded publish, production publish.

The homes of the last run are then served by ``gisportal serve --workers N`` (default 2:
gunicorn), one server per backend, the production one reading the replica
(``GISPORTAL_DATABASE_REPLICAS``) as docs/deploy.md deploys it:

3. **look-ups**: wrk (bench_lookup.py's script and run function) with ``--connections``
   connections, paced at ``--rate`` req/s (open loop, latency also from the scheduled
   send) and closed loop (throughput), the backends taking turns in each run; p99 of
   production over embedded per run (issue 12's target: ≤ 2×), and with gunicorn the
   worker balance (the least busy worker's CPU over the mean; 1.0 = even);
4. **tiles**: a sample of non-empty tiles z12–16 over real HTTP, one keep-alive
   connection per server, the backends taking turns tile by tile, after one untimed pass
   (warm: the S3 node cache holds its copy of the archive); p50/p95 (target in
   production: p95 ≤ 2 ms).

Prints one table with the load before → after each part and the machine line at the
start and the end; ``--json PATH`` writes every figure (with its runs and load) too.

Province scale: ``--districts K`` builds K districts of ``--parcels`` each (GSO codes
672–683, Đức Trọng 678 first; at most 12), each ingested and published by its own
commands, the times summed per run. The issue's ≥ 3 million parcels is
``--districts 12 --parcels 250000 --build-runs 1 --runs 3``: built once (its ingest and
publish times are then one run, printed as such) and served for ``--runs`` runs, so the
look-up and tile figures, which the issue asks at both sizes, keep their median and
spread; it took 43 min on the shared 2-core machine (2026-12-05, README). Disk, scaled
from 100 000 parcels (source 31 MB, an embedded home 60 MB, the primary and the replica
~300 MB each): about 10 GB. ``--keep DIR`` (the generated files are kept for the next
attempt) shortens a repeat. The districts are the 12 of former Lâm Đồng (one survey
zone): the merged province's two zones are bench_province.py's.

Clean-up: every server (PostgreSQL, replica, SeaweedFS, each ``gisportal serve``) is
stopped and every temporary folder removed when the run ends, on an error, on Ctrl-C
and on SIGTERM (the database and S3 servers also die with this process on a
``kill -9``: tests/servers.py gives them a parent-death signal). ``--keep DIR`` works
in DIR and leaves the generated files, the embedded homes and the logs there; the
production data lives in the servers and goes with them.

Usage (from the repository root)::

    python bench/bench_production.py [--parcels 200000] [--districts 1] [--runs 3]
        [--duration 15] [--workers 2] [--rate 320] [--connections 32] [--tiles 200]
        [--keep DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench._measure import (  # noqa: E402
    Measurement,
    Runs,
    load_now,
    machine_line,
    peer_versions,
    ratio,
)
from bench.bench_lookup import (  # noqa: E402
    WRK_SCRIPT,
    Server,
    pct,
    process_cpu,
    run_wrk,
    sample_queries,
    worker_balance,
)
from bench.bench_tiles import write_district  # noqa: E402
from bench.bench_tiles_s3 import environment  # noqa: E402
from tests.servers import PostgresReplica, PostgresServer, S3Server  # noqa: E402

#: GSO codes of the demo province's districts, the one every bench uses first.
CODES = ("678", "676", "679", "677", "680", "674", "675", "672", "673", "681", "682", "683")
BACKENDS = ("embedded", "production")
BUCKET = "bench-production"
ZOOMS = range(12, 17)

#: Runs a gisportal command in this interpreter as ``python -m gisportal`` would, and
#: writes VmHWM (kB) after the command's libraries are imported and at exit. VmHWM, not
#: ru_maxrss: it is the process's own, not inherited across fork+exec. The libraries are
#: those the command imports anyway (production: the PostGIS store, psycopg, boto3), so
#: the growth is what the command itself adds, as bench_ingest.py measures it.
COMMAND = """
import os, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
import gisportal.cli.main, gisportal.services.ingest, gisportal.store, geopandas, pyogrio
if os.environ.get("GISPORTAL_DATABASE"):
    import gisportal.store.postgis, psycopg, boto3
base = hwm()
sys.argv = ["gisportal", *sys.argv[1:]]
try:
    gisportal.cli.main.main()
finally:
    with open(os.environ["GP_BENCH_HWM"], "w") as fh:
        fh.write(f"{base} {hwm()}")
"""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every ``finally`` stops its servers."""


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(f"signal {signum}")


# ----------------------------------------------------------------------------- commands


def gisportal(home: Path, env: dict[str, str], *args: str, log: Path) -> tuple[float, str,
                                                                              float, float]:
    """One ``gisportal`` command in a fresh process: wall seconds, its stdout, peak RSS and
    the RSS after imports (MiB). Its stderr goes to `log`; a failure ends the bench."""
    hwm_file = log.with_suffix(".hwm")
    started = time.perf_counter()
    with open(log, "a") as err:
        done = subprocess.run([sys.executable, "-c", COMMAND, "--home", str(home), *args],
                              env={**env, "GP_BENCH_HWM": str(hwm_file),
                                   "PYTHONPATH": str(REPO)},
                              stdout=subprocess.PIPE, stderr=err, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"gisportal {' '.join(args)} exited with {done.returncode}: "
                         f"{log.read_text()[-2000:]}")
    base, peak = (int(v) / 1024 for v in hwm_file.read_text().split())
    return seconds, done.stdout, peak, base


class Backend:
    """One backend's environment: variables for the commands and the server, a home per
    run (production: a database and a bucket prefix per run too)."""

    def __init__(self, name: str, root: Path, pg: PostgresServer | None = None,
                 replica: PostgresReplica | None = None, s3: S3Server | None = None):
        self.name, self.root, self.pg, self.replica, self.s3 = name, root, pg, replica, s3
        self.home: Path | None = None
        self.dsn: str | None = None
        self.prefix: str | None = None
        self.databases: list[str] = []

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GISPORTAL_", "AWS_"))}
        if self.name == "production":
            assert self.s3 is not None and self.dsn and self.prefix
            env.update(self.s3.env(), GISPORTAL_DATABASE=self.dsn,
                       GISPORTAL_FILES=f"s3://{BUCKET}/{self.prefix}")
        return env

    def fresh(self, run: int, log: Path) -> float:
        """A new home (and database + prefix); the seconds `gisportal migrate` took."""
        self.home = self.root / f"{self.name}-run{run}"
        self.home.mkdir(parents=True)
        if self.name != "production":
            return 0.0
        assert self.pg is not None
        name = f"bench_run{run}"
        self.dsn = self.pg.create_database(name)
        self.databases.append(name)
        self.prefix = f"run{run}"
        seconds, _, _, _ = gisportal(self.home, self.base_env(), "migrate", log=log)
        return seconds

    def drop_previous(self) -> None:
        """Remove the homes and databases of runs before the current one (disk)."""
        for old in self.root.glob(f"{self.name}-run*"):
            if old != self.home:
                shutil.rmtree(old, ignore_errors=True)
        if self.pg is not None:
            for name in self.databases[:-1]:
                self.pg.drop_database(name)
            self.databases = self.databases[-1:]

    def server_env(self) -> dict[str, str | None]:
        """What `environment` sets for ``gisportal serve``: production reads the replica."""
        unset: dict[str, str | None] = {k: None for k in os.environ
                                        if k.startswith(("GISPORTAL_", "AWS_"))}
        if self.name != "production":
            return unset
        assert self.replica is not None
        return {**unset, **self.base_env_only_ours(),
                "GISPORTAL_DATABASE_REPLICAS": self.replica.dsn_for(self.dsn or "")}

    def base_env_only_ours(self) -> dict[str, str]:
        return {k: v for k, v in self.base_env().items()
                if k.startswith(("GISPORTAL_", "AWS_"))}


def ingest_publish(backends: dict[str, Backend], sources: dict[str, Path], runs: int,
                   logs: Path) -> tuple[Runs, dict[str, dict[str, int]]]:
    """`runs` rounds of ingest then publish of every district on both backends, taking
    turns; the published version of each district per backend (last run)."""
    out = Runs()
    versions: dict[str, dict[str, int]] = {}
    for run in range(runs):
        for b in backends.values():
            out.add(f"{b.name} migrate", b.fresh(run, logs / f"{b.name}-migrate-{run}.log"))
        versions = {b: {} for b in backends}
        totals: dict[str, float] = defaultdict(float)
        for b in backends.values():  # ingest: embedded, then production
            for code, path in sources.items():
                seconds, stdout, peak, base = gisportal(
                    b.home, b.base_env(), "ingest", str(path), "--kind", "parcels",
                    "--district", code, log=logs / f"{b.name}-ingest-{run}-{code}.log")
                versions[b.name][code] = int(stdout.strip().splitlines()[-1])
                totals[f"{b.name} ingest"] += seconds
                out.add(f"{b.name} ingest growth", peak - base)
                out.add(f"{b.name} ingest peak", peak)
            print(f"  run {run + 1}: {b.name} ingest {totals[f'{b.name} ingest']:.1f} s "
                  f"(load {load_now():.1f})", flush=True)
        for b in backends.values():  # publish: embedded, then production
            for code in sources:
                seconds, _, peak, base = gisportal(
                    b.home, b.base_env(), "publish", "--district", code, "--kind",
                    "parcels", "--version", str(versions[b.name][code]),
                    log=logs / f"{b.name}-publish-{run}-{code}.log")
                totals[f"{b.name} publish"] += seconds
                out.add(f"{b.name} publish growth", peak - base)
            print(f"  run {run + 1}: {b.name} publish {totals[f'{b.name} publish']:.1f} s "
                  f"(load {load_now():.1f})", flush=True)
        for name, seconds in totals.items():
            out.add(name, seconds)
        for b in backends.values():
            b.drop_previous()
    return out.close(), versions


# ----------------------------------------------------------------------------- serving


@contextlib.contextmanager
def servers(backends: dict[str, Backend], workers: int, logs: Path) -> Iterator[
        dict[str, Server]]:
    """``gisportal serve`` of each backend's last home; stopped however the block ends."""
    started: dict[str, Server] = {}
    try:
        for b in backends.values():
            with environment(**b.server_env()):
                started[b.name] = Server(b.home, workers, logs / f"serve-{b.name}.log")
        yield started
    finally:
        for s in started.values():
            s.stop()


def lookup_phase(server: Server, script: Path, paths: Path, out: Path, *, connections: int,
                 seconds: float, rate: float) -> dict[str, float]:
    """One wrk run of look-ups: latency percentiles (ms), throughput, balance, non-200s."""
    interval = connections / rate * 1e6 if rate else 0.0
    before = process_cpu(server.proc.pid)
    result, wall, errors = run_wrk(script, server.url, paths, connections, seconds, interval,
                                   out)
    after = process_cpu(server.proc.pid)
    send = np.concatenate([v["send"] for v in result.values()])
    sched = np.concatenate([v["schedule"] for v in result.values()])
    status = np.concatenate([v["status"] for v in result.values()])
    return {"rps": len(send) / wall, "p50": pct(send, 50), "p99": pct(send, 99),
            "p99s": pct(sched, 99), "n": len(send),
            "not_ok": int(np.sum(status != 200)),
            "socket_errors": 1.0 if errors else 0.0,
            "balance": worker_balance(server.proc.pid, before, after)}


def lookups(running: dict[str, Server], home: Path, codes: list[str], tmp: Path, *,
            runs: int, connections: int, seconds: float, rate: float, queries: int,
            seed: int) -> Runs:
    """`runs` rounds of paced then closed loads, the backends taking turns in each."""
    script = tmp / "lookup.lua"
    script.write_text(WRK_SCRIPT)
    urls: list[tuple[str, str]] = []
    for code in codes:
        urls += sample_queries(home, code, max(1, queries // len(codes)), seed)
    random.Random(seed).shuffle(urls)
    paths = tmp / "lookup.txt"
    paths.write_text("".join(f"{k} {p}\n" for k, p in urls))
    for name, s in running.items():  # warm-up: connections opened, caches filled
        lookup_phase(s, script, paths, tmp / f"warm-{name}.txt", connections=connections,
                     seconds=3, rate=0)
    out = Runs()
    for _ in range(runs):
        for load, r in (("paced", rate), ("closed", 0.0)):
            for name, s in running.items():
                row = lookup_phase(s, script, paths, tmp / f"{load}-{name}.txt",
                                   connections=connections, seconds=seconds, rate=r)
                for key, value in row.items():
                    out.add(f"{name} {load} {key}", value)
    return out.close()


def fetch(conns: dict[str, http.client.HTTPConnection], name: str, url: str) -> float:
    """Milliseconds of one tile over the keep-alive connection, body read; 200 only.

    gunicorn closes a connection after ``keepalive_requests`` answers; http.client opens
    a new one for the next request, and a request that met the close is sent again on a
    new one (the retry counted in its time, as a browser would meet it)."""
    for attempt in range(2):
        conn = conns[name]
        start = time.perf_counter_ns()
        try:
            conn.request("GET", url, headers={"Accept-Encoding": "gzip"})
            resp = conn.getresponse()
            resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()
            if attempt:
                raise
            continue
        ms = (time.perf_counter_ns() - start) / 1e6
        if resp.status != 200:
            raise SystemExit(f"{name}: {url} answered {resp.status}")
        return ms
    raise AssertionError("unreachable")


def tile_sample(home: Path, versions: dict[str, int], per_zoom: int, seed: int
                ) -> list[tuple[str, int, int, int]]:
    """`per_zoom` non-empty tiles per zoom 12–16 over the districts, from the embedded
    archives (the production ones hold the same tiles: same data, same build)."""
    from gisportal.outputs.tiles import PMTilesReader, tiles_path

    by_zoom: dict[int, list[tuple[str, int, int, int]]] = defaultdict(list)
    for code, vid in versions.items():
        with PMTilesReader(tiles_path(home, code, "parcels", vid)) as r:
            for z, x, y, _, _ in r.entries():
                if z in ZOOMS:
                    by_zoom[z].append((code, z, x, y))
    rng = random.Random(seed)
    return [t for z in ZOOMS for t in rng.sample(by_zoom[z], min(per_zoom, len(by_zoom[z])))]


def tiles(running: dict[str, Server], sample: list[tuple[str, int, int, int]], runs: int
          ) -> Runs:
    """One untimed pass, then `runs` passes, the servers taking turns tile by tile."""
    conns = {name: http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
             for name, s in running.items()}
    urls = [f"/tiles/{code}/parcels/{z}/{x}/{y}.pbf" for code, z, x, y in sample]
    out = Runs()
    try:
        for i in range(runs + 1):
            times: dict[str, list[float]] = {name: [] for name in conns}
            for url in urls:
                for name in conns:
                    times[name].append(fetch(conns, name, url))
            if i == 0:
                out = Runs()  # the warm-up pass does not count, nor its load window
                continue
            for name, values in times.items():
                arr = np.array(values)
                out.add(f"{name} p50", pct(arr, 50))
                out.add(f"{name} p95", pct(arr, 95))
    finally:
        for conn in conns.values():
            conn.close()
    return out.close()


# ----------------------------------------------------------------------------- report


class Table:
    """The figures, production beside embedded: each part is printed as soon as it is
    measured (and the JSON rewritten), so a run that fails later keeps what it has."""

    HEAD = ("figure", "embedded", "production", "production / embedded", "load")

    def __init__(self, args: argparse.Namespace, data: dict[str, object]):
        self.args = args
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.data = data

    def add(self, what: str, e: Measurement | None, p: Measurement, unit: str,
            digits: int = 2, *, key: str, with_ratio: bool = True) -> None:
        r = ratio(p, e) if e is not None and with_ratio else None
        self.rows.append((what, e.short(unit, digits) if e is not None else "—",
                          p.short(unit, digits), r.text() if r else "", p.load_text()))
        self.data[key] = {"embedded": e.as_dict() if e is not None else None,
                          "production": p.as_dict(), "ratio": r.as_dict() if r else None}

    def print(self, title: str, rows: list[tuple[str, str, str, str, str]] | None = None
              ) -> None:
        rows = self.rows if rows is None else rows
        print(f"\n{title}")
        widths = [max(len(r[i]) for r in [*rows, self.HEAD]) for i in range(5)]
        for r in [self.HEAD, tuple("-" * w for w in widths), *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        self.save()

    def save(self) -> None:
        if self.args.json:
            self.args.json.write_text(json.dumps(self.data, indent=1, ensure_ascii=False))


E, P = BACKENDS


def build_rows(t: Table, build: Runs, per_million: float) -> None:
    t.add("ingest (s, all districts)", build[f"{E} ingest"], build[f"{P} ingest"], "s", 1,
          key="ingest_s")
    t.add("publish incl. tiles (s)", build[f"{E} publish"], build[f"{P} publish"], "s", 1,
          key="publish_s")
    for step in ("ingest", "publish"):
        e, p = (build[f"{b} {step} growth"].map(lambda v: v / per_million / 1024)
                for b in (E, P))
        t.add(f"{step} peak RSS growth (GiB per million parcels)", e, p, "GiB", 2,
              key=f"{step}_growth_gib_per_million")
    t.add("gisportal migrate (s)", None, build[f"{P} migrate"], "s", key="migrate_s")


def lookup_rows(t: Table, look: Runs) -> None:
    paced = f"paced {t.args.rate:g} req/s"
    for key, what, unit, digits in (("paced p50", f"look-up p50, {paced} (ms)", "ms", 2),
                                    ("paced p99", f"look-up p99, {paced} (ms)", "ms", 1),
                                    ("paced p99s", "  p99 from the scheduled send (ms)",
                                     "ms", 1),
                                    ("paced rps", "  achieved req/s", "", 0),
                                    ("closed rps", "look-ups/s, closed loop", "", 0),
                                    ("closed p99", "  closed-loop p99 (ms)", "ms", 1)):
        t.add(what, look[f"{E} {key}"], look[f"{P} {key}"], unit, digits,
              key=f"lookup_{key.replace(' ', '_')}")
    if t.args.workers > 1:
        for load in ("paced", "closed"):
            t.add(f"worker balance, {load} (1.0 = even)", look[f"{E} {load} balance"],
                  look[f"{P} {load} balance"], "", 2, key=f"balance_{load}",
                  with_ratio=False)
    t.data["bad_lookups"] = {
        f"{name} {load}": int(sum(look[f"{name} {load} not_ok"].samples) +
                              sum(look[f"{name} {load} socket_errors"].samples))
        for name in BACKENDS for load in ("paced", "closed")}


def tile_rows(t: Table, tile: Runs, ntiles: int) -> None:
    t.add(f"tile p50, warm ({ntiles} tiles z12–16) (ms)", tile[f"{E} p50"],
          tile[f"{P} p50"], "ms", 2, key="tile_p50_ms")
    t.add("tile p95, warm (ms)", tile[f"{E} p95"], tile[f"{P} p95"], "ms", 2,
          key="tile_p95_ms")
    t.data["tiles_sampled"] = ntiles


def targets(t: Table, look: Runs, tile: Runs) -> None:
    p99 = ratio(look[f"{P} paced p99"], look[f"{E} paced p99"])
    t95 = tile[f"{P} p95"].median
    print(f"\nissue 12 targets: production look-up p99 <= 2x embedded (paced): "
          f"{'met' if p99.median <= 2 else 'NOT met'} ({p99.text()}); production tile "
          f"p95 <= 2 ms warm: {'met' if t95 <= 2 else 'NOT met'} ({t95:.2f} ms). "
          f"Look-ups not answered 200 (+ wrk runs with socket errors): "
          f"{t.data['bad_lookups']}")


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=200_000, help="parcels per district")
    parser.add_argument("--districts", type=int, default=1,
                        help="districts of --parcels each (province scale; at most 12)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build-runs", type=int, help="rounds of ingest + publish (default: "
                        "--runs); the served look-ups and tiles always take --runs runs")
    parser.add_argument("--duration", type=float, default=15, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2,
                        help="gisportal serve --workers (1 = waitress, N > 1 = gunicorn)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=320, help="paced look-ups per second")
    parser.add_argument("--queries", type=int, default=3000, help="URLs per look-up kind")
    parser.add_argument("--tiles", type=int, default=200, help="tiles sampled per zoom")
    parser.add_argument("--seed", type=int, default=68)
    parser.add_argument("--keep", type=Path, help="work in DIR and leave it (generated "
                        "files are reused from there when they exist)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not 1 <= args.districts <= len(CODES):
        parser.error(f"--districts must be 1..{len(CODES)}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.build_runs = args.runs if args.build_runs is None else args.build_runs
    if args.build_runs < 1:
        parser.error("--build-runs must be at least 1")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian's package)")
    args.codes = list(CODES[: args.districts])
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)

    start_line = machine_line()
    print(start_line)
    peers = peer_versions("python", "wrk", "gunicorn", "waitress", "gdal")
    print("peers: " + "; ".join(f"{k} {v}" for k, v in peers.items()))
    servers_up: list[object] = []
    tmp_ctx = (contextlib.nullcontext(str(args.keep)) if args.keep else
               tempfile.TemporaryDirectory(prefix="gisportal-bench-production-"))
    try:
        with tmp_ctx as tmp_name:
            tmp = Path(tmp_name)
            tmp.mkdir(parents=True, exist_ok=True)
            logs = tmp / "logs"
            logs.mkdir(exist_ok=True)
            started = time.perf_counter()
            sources = {}
            for code in args.codes:
                sources[code] = tmp / f"thua_dat_{code}_{args.parcels}.gpkg"
                if not sources[code].exists():
                    write_district(tmp, code, args.parcels, args.seed)
            generate_s = time.perf_counter() - started
            n_parcels = args.parcels * len(args.codes)
            print(f"{n_parcels} parcels in {len(args.codes)} district(s) "
                  f"({', '.join(args.codes)}), written in {generate_s:.0f} s", flush=True)

            t = time.perf_counter()
            pg = PostgresServer.start()
            servers_up.append(pg)
            replica = PostgresReplica.start(pg)
            servers_up.append(replica)
            s3 = S3Server.start()
            servers_up.append(s3)
            s3.client().create_bucket(Bucket=BUCKET)
            with pg.connect() as conn:
                pg_version = conn.execute("SELECT version(), postgis_full_version()"
                                          ).fetchone()
            print(f"PostgreSQL primary + replica and SeaweedFS started in "
                  f"{time.perf_counter() - t:.0f} s: {pg_version[0].split(',')[0]}; "
                  f"{pg_version[1].split(' ')[0]}", flush=True)
            homes = tmp / "homes"
            shutil.rmtree(homes, ignore_errors=True)
            backends = {"embedded": Backend("embedded", homes),
                        "production": Backend("production", homes, pg, replica, s3)}

            per_million = args.parcels / 1e6  # one ingest process = one district
            table = Table(args, {"parcels": n_parcels, "districts": args.codes,
                                 "runs": args.runs, "build_runs": args.build_runs,
                                 "generate_s": round(generate_s, 1),
                                 "code": str(REPO), "machine_start": start_line,
                                 "peers": {**peers, "postgresql": pg_version[0],
                                           "postgis": pg_version[1]}})
            print("ingest + publish ...", flush=True)
            build, versions = ingest_publish(backends, sources, args.build_runs, logs)
            build_rows(table, build, per_million)
            table.print(f"ingest and publish, {n_parcels} parcels; median [range of the "
                        f"{args.build_runs} runs]; ratio of the medians (range of the "
                        f"per-run ratios)" + ("" if args.build_runs > 1 else
                                              ": ONE run, no spread"))
            replica.wait_caught_up(timeout=300)

            label = (f"gisportal serve --workers {args.workers} "
                     f"({'gunicorn' if args.workers > 1 else 'waitress'}), production "
                     f"reading the streaming replica")
            table.data["server"] = label
            print(f"\nserved look-ups and tiles: {label} ...", flush=True)
            with servers(backends, args.workers, logs) as running:
                look = lookups(running, backends["embedded"].home, args.codes, tmp,
                               runs=args.runs, connections=args.connections,
                               seconds=args.duration, rate=args.rate, queries=args.queries,
                               seed=args.seed)
                first = len(table.rows)
                lookup_rows(table, look)
                table.print(f"look-ups, {args.connections} connections, "
                            f"{args.duration:g} s per wrk run", table.rows[first:])
                sample = tile_sample(backends["embedded"].home, versions["embedded"],
                                     args.tiles, args.seed)
                tile = tiles(running, sample, args.runs)
            tile_rows(table, tile, len(sample))
            table.data["machine_end"] = machine_line()
            table.print(f"all figures: {n_parcels} parcels in {len(args.codes)} "
                        f"district(s), generated in {generate_s:.0f} s; {label}; "
                        f"{args.runs} runs ({args.build_runs} of ingest + publish), the "
                        f"backends taking turns; median [range of the runs]; ratio of the "
                        f"medians (range of the per-run ratios)")
            targets(table, look, tile)
            print(f"start: {start_line}\nend:   {table.data['machine_end']}")
            if args.json:
                print(f"figures written to {args.json}")
    finally:
        for server in reversed(servers_up):
            with contextlib.suppress(Exception):
                server.stop()  # type: ignore[attr-defined]
        _stop_children()


def _stop_children() -> None:
    """Stop any child process still running (a ``gisportal serve`` or command interrupted
    while it started): each by its own pid, SIGTERM then SIGKILL."""
    ours = os.getpid()
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ours:
            children.append(int(stat.parent.name))
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for pid in children:
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
