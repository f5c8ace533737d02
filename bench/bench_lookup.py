"""Latency of ``/api/lookup`` on a live ``gisportal serve``, loaded by wrk (native client).

Why wrk: Python client threads on the same two cores as the server compete with it
and with each other for the GIL, so what they measure is partly their own queueing.
wrk (Debian's ``wrk``: ``apt-get install -y wrk``) is an event loop in C; a Lua script
(written next to the run) rotates through thousands of look-up URLs on real parcels —
by key (commune, sheet, parcel), by lat/lon and by VN-2000 X/Y, mixed — and records
every response's latency, so the percentiles are computed here from raw samples.

Servers, each started with the real command line on 127.0.0.1 over the same home:

- ``gisportal serve --workers 1``: one process, waitress (8 threads);
- ``gisportal serve --workers N``: N gunicorn gthread processes (4 threads each).

Loads, each for ``/healthz`` (the floor: HTTP + WSGI + Flask, no work) and for the
look-ups, on the same server in the same run:

- **closed loop**: ``--connections`` connections sending back to back. This is the
  saturation throughput; latency there is at least connections / throughput (every
  connection always has a request queued), whatever the server does per request.
- **paced (open loop)**: the same connections, each sending on a fixed schedule so the
  total is ``--rate`` requests per second whatever the answers take; latency is counted
  from the scheduled send time, so a server that falls behind is charged for the wait
  (no coordinated omission), and from the actual send.

With gunicorn, the **balance** column says whether every worker took its share: the
CPU the least busy worker used over the mean of the workers (1.0 = even; near 0 = the
kept-alive connections piled on one worker, which an earlier run showed at a third of the
throughput). ``keepalive_requests`` (gisportal/web/server.py) is what keeps it near 1.

Each load is run ``--runs`` times (default 3) on the same server, closed and paced
taking turns (and ``/healthz`` next to the look-ups in each), so what is compared sees
the same machine state. Each figure is the median of the runs with their range
[min–max] and the machine's load; the ratio to ``/healthz`` is the median of the per-run
ratios with their range.

Usage (from the repository root)::

    python bench/bench_lookup.py [--home DIR] [--parcels 200000] [--connections 32]
                                 [--rate 320] [--duration 15] [--workers 1 2] [--runs 3]
                                 [--keepalive-requests N]

Building a 200 000-parcel district takes about a minute; ``--home DIR`` keeps it (it is
built there if it holds no published parcels for the district yet). Traffic goes to
127.0.0.1 only; every run is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import shapely

from gisportal.base import seeds
from gisportal.base.crs import to_lonlat
from gisportal.store import open_store

try:
    from bench._measure import Runs, load_now, print_peers
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, load_now, print_peers

REPO = Path(__file__).resolve().parents[1]

#: wrk script. One connection per wrk thread (-t = -c), so each Lua state is one
#: connection: `sent` and `scheduled` belong to the request in flight. Paced mode
#: (interval > 0) sends on a fixed per-connection schedule with a random phase;
#: `delay()` returns the time left until the next slot (0 when already late).
WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } gp_timespec;
int clock_gettime(int clk_id, gp_timespec *tp);
]]
local ts = ffi.new("gp_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local threads, count = {}, 0
function setup(thread)
  count = count + 1
  thread:set("id", count)
  table.insert(threads, thread)
end

function init(args)
  kinds, paths = {}, {}
  for line in io.lines(args[1]) do
    local kind, path = line:match("^(%S+) (%S+)$")
    kinds[#kinds + 1], paths[#paths + 1] = kind, path
  end
  interval = tonumber(args[2]) or 0  -- microseconds between sends, 0 = back to back
  math.randomseed(id * 7919)
  i = (id * 7919) % #paths
  lines, n, nxt = {}, 0, nil
end

function delay()
  if interval <= 0 then return 0 end
  local t = now_us()
  if nxt == nil then nxt = t + math.random() * interval end
  local d = nxt - t
  if d <= 0 then return 0 end
  return math.floor(d / 1000)
end

function request()
  i = i % #paths + 1
  sent = now_us()
  if interval > 0 then
    scheduled = math.min(nxt or sent, sent)  -- a timer that fired early is not credit
    nxt = (nxt or sent) + interval
  else
    scheduled = sent
  end
  return wrk.format("GET", paths[i])
end

function response(status, headers, body)
  local t = now_us()
  n = n + 1
  lines[n] = string.format("%s %d %.0f %.0f", kinds[i], status, t - sent, t - scheduled)
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("GP_WRK_OUT"), "w"))
  for _, t in ipairs(threads) do
    for _, line in ipairs(t:get("lines")) do out:write(line, "\n") end
  end
  out:close()
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_home(home: Path, district: str, parcels: int) -> None:
    """Build the demo district in `home` unless its parcels are published there already."""
    crs = seeds.province()["crs"]
    with open_store(home, crs=crs) as store:
        if store.published(district, "parcels") is not None:
            return
        from gisportal.services.demo import build_demo

        print(f"building district {district} with {parcels} parcels in {home} ...", flush=True)
        start = time.perf_counter()
        build_demo(store, parcels_per_district=parcels, districts=[district])
        print(f"  built in {time.perf_counter() - start:.0f} s", flush=True)


def sample_queries(home: Path, district: str, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` look-ups of each kind on random parcels of the district, shuffled together.

    Kinds: ``key`` (district, commune, sheet, parcel as on a certificate), ``latlon`` (a
    point inside the parcel, as a map click sends it) and ``xy`` (the same point as
    VN-2000 X = northing, Y = easting).
    """
    with open_store(home, crs=seeds.province()["crs"]) as store:
        version = store.published(district, "parcels")
        assert version is not None
        gdf = store.read(version.id, columns=["commune", "sheet", "parcel"])
    rng = random.Random(seed)
    picks = [rng.randrange(len(gdf)) for _ in range(n)]
    points = shapely.get_coordinates(shapely.point_on_surface(gdf.geometry.values[picks]))
    lon, lat = to_lonlat(points[:, 0], points[:, 1])
    east, north = points[:, 0], points[:, 1]  # a certificate writes X = north, Y = east
    out = [("latlon", f"/api/lookup?lat={la:.7f}&lon={lo:.7f}")
           for la, lo in zip(lat, lon, strict=True)]
    out += [("xy", f"/api/lookup?x={x:.2f}&y={y:.2f}") for x, y in zip(north, east, strict=True)]
    for i in picks:
        row = gdf.iloc[i]
        query = {"district": district, "sheet": int(row["sheet"]), "parcel": int(row["parcel"])}
        if isinstance(row["commune"], str):
            query["commune"] = row["commune"]
        out.append(("key", "/api/lookup?" + urlencode(query)))
    rng.shuffle(out)
    return out


def pct(values: np.ndarray, q: float) -> float:
    """The q-th percentile, nearest rank (no interpolation between samples)."""
    ordered = np.sort(values)
    return float(ordered[min(len(ordered) - 1, max(0, int(np.ceil(q / 100 * len(ordered))) - 1))])


def process_cpu(pid: int) -> dict[int, float]:
    """User + system CPU seconds of `pid` and of each of its live children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            out[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its children that are alive (Linux /proc)."""
    return sum(process_cpu(pid).values())


def worker_balance(pid: int, before: dict[int, float], after: dict[int, float]) -> float:
    """How evenly the server's worker processes shared the work: the smallest worker's
    CPU over the mean (1.0 = even; near 0 = connections piled on one worker). With one
    process (waitress), 1.0."""
    workers = [p for p in after if p != pid] or [pid]
    used = [after[p] - before.get(p, 0.0) for p in workers]
    mean = sum(used) / len(used)
    return min(used) / mean if mean > 0 else 1.0


class Server:
    """``gisportal serve`` in a child process on a free port."""

    def __init__(self, home: Path, workers: int, log: Path, threads: int | None = None,
                 keepalive_requests: int | None = None):
        self.port = free_port()
        self.workers = workers
        self.threads = threads or (8 if workers == 1 else 4)  # serve's defaults
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("GISPORTAL_WORKERS", None)
        if keepalive_requests is not None:
            env["GISPORTAL_KEEPALIVE_REQUESTS"] = str(keepalive_requests)
        # The log goes to a file: a pipe nobody reads would block the server once full
        # (waitress warns about its queue depth at every saturated moment).
        self.log = log
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gisportal", "--home", str(home), "serve", "--host",
                 "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
                 "--threads", str(self.threads)],
                env=env, stdout=subprocess.DEVNULL, stderr=fh)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited: {log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def label(self) -> str:
        return (f"waitress, 1 process × {self.threads} threads" if self.workers == 1 else
                f"gunicorn, {self.workers} workers × {self.threads} threads")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_wrk(script: Path, url: str, paths_file: Path, connections: int, seconds: float,
            interval_us: float, out: Path) -> tuple[dict[str, dict[str, np.ndarray]], float,
                                                    str]:
    """One wrk run; per kind the statuses and latencies (ms) from send and from schedule.

    Returns them, the wall time of the run and wrk's socket-error line (or "").
    """
    cmd = ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{seconds:g}s",
           "--timeout", "10s", "-s", str(script), url, "--", str(paths_file),
           str(int(interval_us))]
    start = time.perf_counter()
    r = subprocess.run(cmd, env={**os.environ, "GP_WRK_OUT": str(out)}, capture_output=True,
                       text=True, timeout=seconds + 60, check=True)
    wall = time.perf_counter() - start
    rows: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for line in out.read_text().splitlines():
        kind, status, from_send, from_schedule = line.split()
        rows[kind].append((int(status), float(from_send) / 1000, float(from_schedule) / 1000))
    result = {}
    for kind, values in rows.items():
        arr = np.array(values)
        result[kind] = {"status": arr[:, 0].astype(int), "send": arr[:, 1],
                        "schedule": arr[:, 2]}
    errors = re.search(r"Socket errors:.*", r.stdout)
    return result, wall, errors.group(0) if errors else ""


def phase(server: Server, script: Path, files: dict[str, Path], tmp: Path, *, name: str,
          connections: int, seconds: float, rate: float) -> list[dict]:
    """Health check, then look-ups, under one load; one row per endpoint kind."""
    interval = connections / rate * 1e6 if rate else 0.0
    rows = []
    for what in ("healthz", "lookup"):
        per0, own0 = process_cpu(server.proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        result, wall, errors = run_wrk(script, server.url, files[what], connections, seconds,
                                       interval, tmp / f"{name}-{what}.txt")
        per1, own1 = process_cpu(server.proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0, cpu1 = sum(per0.values()), sum(per1.values())
        balance = worker_balance(server.proc.pid, per0, per1)
        total = sum(len(v["send"]) for v in result.values())
        server_cpu_ms = (cpu1 - cpu0) * 1000 / max(total, 1)
        client_cpu_ms = ((own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)) \
            * 1000 / max(total, 1)
        groups = dict(result)
        if what == "lookup":
            groups = {"lookup (all)": {k: np.concatenate([v[k] for v in result.values()])
                                       for k in ("status", "send", "schedule")}, **{
                f"  by {kind}": v for kind, v in sorted(result.items())}}
        for kind, v in groups.items():
            statuses = {int(s): int(c) for s, c in zip(*np.unique(v["status"],
                                                                  return_counts=True),
                                                       strict=True)}
            floor_p99 = rows[0]["p99"] if rows else pct(v["send"], 99)
            rows.append({"server": server.label, "load": name, "endpoint": kind,
                         "ratio": pct(v["send"], 99) / floor_p99,
                         "n": len(v["send"]), "rps": len(v["send"]) / wall,
                         "p50": pct(v["send"], 50), "p99": pct(v["send"], 99),
                         "p50s": pct(v["schedule"], 50), "p99s": pct(v["schedule"], 99),
                         "statuses": statuses, "errors": errors,
                         "server_cpu_ms": server_cpu_ms, "client_cpu_ms": client_cpu_ms,
                         "balance": balance})
    return rows


FIGURES = ("rps", "p50", "p99", "ratio", "p50s", "p99s", "server_cpu_ms", "client_cpu_ms",
           "balance")


def aggregate(runs: list[list[dict]], load_before: float, load_after: float) -> list[dict]:
    """The rows of several runs of one phase, row by row: each figure becomes the Runs of
    its per-run values (with the load before the first run and after the last); counts and
    statuses are summed, socket errors kept."""
    out = []
    for same in zip(*runs, strict=True):
        acc = Runs()
        acc.before = load_before
        statuses: dict[int, int] = defaultdict(int)
        for r in same:
            for key in FIGURES:
                acc.add(key, r[key])
            for k, c in r["statuses"].items():
                statuses[k] += c
        acc.after = load_after
        out.append({"server": same[0]["server"], "endpoint": same[0]["endpoint"],
                    "n": sum(r["n"] for r in same), "runs": acc, "statuses": dict(statuses),
                    "errors": "; ".join(r["errors"] for r in same if r["errors"])})
    return out


def report(rows: list[dict], connections: int, paced: bool) -> None:
    """Medians of the runs, the range of p99 and of its ratio to /healthz in brackets."""
    print(f"{'endpoint':16} {'n':>6} {'req/s':>6} {'p50':>7} {'p99 [range]':>20} "
          f"{'p99/healthz [range]':>20}" + (f" {'p50 sched':>9} {'p99 sched':>9}" if paced
                                             else f" {f'{connections}/thr':>7}")
          + f" {'srv cpu':>7} {'wrk cpu':>7} {'balance [range]':>16}  statuses")
    for r in rows:
        m = {k: r["runs"][k] for k in FIGURES}
        extra = (f" {m['p50s'].median:>9.2f} {m['p99s'].median:>9.2f}" if paced else
                 f" {connections / m['rps'].median * 1000:>7.2f}"
                 if not r["endpoint"].startswith(" ") else f" {'':>7}")
        print(f"{r['endpoint']:16} {r['n']:>6} {m['rps'].median:>6.0f} {m['p50'].median:>7.2f} "
              f"{m['p99'].short(''):>20} {m['ratio'].short('×'):>20}{extra} "
              f"{m['server_cpu_ms'].median:>7.2f} {m['client_cpu_ms'].median:>7.3f} "
              f"{m['balance'].short(''):>16}  "
              + ",".join(f"{k}:{v}" for k, v in r["statuses"].items())
              + (f"  {r['errors']}" if r["errors"] else ""))
    look = next(r for r in rows if r["endpoint"] == "lookup (all)")["runs"]
    print(f"lookup (all): p99 {look['p99'].text('ms')}; {look['rps'].text('req/s', 0)}; "
          f"p99 / healthz {look['ratio'].short('×')}; worker balance (smallest worker's "
          f"CPU / mean) {look['balance'].short('')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="data home to reuse (built if needed)")
    parser.add_argument("--district", default="678", help="GSO code (default: Đức Trọng)")
    parser.add_argument("--parcels", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=320,
                        help="paced load, requests/s in total (default 320: 10/s per "
                             "connection)")
    parser.add_argument("--duration", type=float, default=15, help="seconds per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 2],
                        help="servers to measure: 1 = waitress, N > 1 = gunicorn")
    parser.add_argument("--threads", type=int, help="threads per server process (default: "
                                                  "serve's, 8 for waitress, 4 per worker)")
    parser.add_argument("--queries", type=int, default=3000, help="URLs per look-up kind")
    parser.add_argument("--keepalive-requests", type=int,
                        help="the server's keepalive_requests (default: the setting's, "
                             "100); 0 shows how connections pile up without it")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each load, closed and paced taking turns; the median "
                             "counts (default 3)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian's package)")

    with tempfile.TemporaryDirectory(prefix="gisportal-bench-") as tmp_name:
        tmp = Path(tmp_name)
        home = args.home or tmp / "home"
        ensure_home(home, args.district, args.parcels)
        script = tmp / "lookup.lua"
        script.write_text(WRK_SCRIPT)
        files = {"healthz": tmp / "healthz.txt", "lookup": tmp / "lookup.txt"}
        files["healthz"].write_text("healthz /healthz\n")
        files["lookup"].write_text("".join(f"{k} {p}\n" for k, p in sample_queries(
            home, args.district, args.queries, args.seed)))
        print_peers("wrk", "gunicorn", "waitress")
        print(f"{args.connections} connections; {os.cpu_count()} CPUs shared by server and "
              f"wrk; {args.duration:g} s per run, {args.runs} runs; latencies in ms")
        for workers in args.workers:
            server = Server(home, workers, tmp / f"server-{workers}.log", args.threads,
                            args.keepalive_requests)
            try:
                # Warm-up: every process and thread opens its connections, fills caches.
                phase(server, script, files, tmp, name="warm-up",
                      connections=args.connections, seconds=3, rate=0)
                closed_runs, paced_runs = [], []
                load_before = load_now()
                for _ in range(args.runs):  # closed and paced take turns
                    closed_runs.append(phase(server, script, files, tmp, name="closed",
                                             connections=args.connections,
                                             seconds=args.duration, rate=0))
                    paced_runs.append(phase(server, script, files, tmp, name="paced",
                                            connections=args.connections,
                                            seconds=args.duration, rate=args.rate))
                load_after = load_now()
                closed = aggregate(closed_runs, load_before, load_after)
                paced = aggregate(paced_runs, load_before, load_after)
            finally:
                server.stop()
            print(f"\n{server.label} — closed loop ({args.connections} connections back to "
                  f"back; latency >= connections / throughput, column "
                  f"'{args.connections}/thr')")
            report(closed, args.connections, paced=False)
            print(f"\n{server.label} — paced at {args.rate:g} req/s "
                  f"({args.rate / args.connections:g}/s per connection)")
            report(paced, args.connections, paced=True)
        print("\n(p50/p99 from send; 'sched' from the scheduled send time; srv cpu = server "
              "CPU ms per request, all its processes; wrk cpu = the load tool's, per request)")


if __name__ == "__main__":
    main()
