"""Latency of ``/api/lookup`` on a live server under concurrent clients.

Builds (or reuses) a data home with one large district, starts the real server
(waitress, 8 threads) in a child process on 127.0.0.1, and sends a bounded number of
requests from concurrent client threads, each on its own keep-alive connection:

- ``/healthz`` (the floor: HTTP, WSGI and Flask without any work),
- ``/api/lookup?lat=&lon=`` at points inside random parcels,
- ``/api/lookup?district=&sheet=&parcel=&commune=`` for random parcel keys.

Prints p50/p95/p99 per endpoint, first with one client (the cost of a request on an idle
server), then with ``--clients`` clients, and the ratio to ``/healthz``. The child
wraps the app in a timing middleware, so the report also says how much of each request
was spent in the server (wall and CPU time inside WSGI) and, by difference, waiting in
queues and in the clients, which run in Python on the same cores.

Usage (from the repository root)::

    python -m bench.bench_lookup [--parcels 200000] [--clients 32] [--requests 5000]
                                 [--home DIR]   # reuse a home that has the district

Building a 200 000-parcel district takes about a minute; ``--home DIR`` keeps it (it is
built there if it holds no published parcels for the district yet). Traffic goes to
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import shapely

from gisportal import seeds
from gisportal.crs import to_lonlat
from gisportal.store import open_store

REPO = Path(__file__).resolve().parents[1]

# The server child: the app as `gisportal serve` builds it, behind a middleware that
# times every request inside the server and answers /__bench/stats itself.
_SERVER = r"""
import json, logging, sys, threading, time
import waitress
logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" is the point
from gisportal import create_app

home, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = create_app({"home": home})
stats, lock = {}, threading.Lock()

def kind(environ):
    path, qs = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    if path == "/api/lookup":
        return "lookup key" if "sheet=" in qs else "lookup lat/lon"
    return path

def timed(environ, start_response):
    if environ.get("PATH_INFO") == "/__bench/stats":
        with lock:
            body = json.dumps(stats).encode()
            stats.clear()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    wall, cpu = time.perf_counter(), time.thread_time()
    body = b"".join(app(environ, start_response))  # the whole response, as served
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    with lock:
        stats.setdefault(kind(environ), []).append((wall * 1000, cpu * 1000))
    return [body]

print("ready", flush=True)
waitress.serve(timed, host="127.0.0.1", port=port, threads=threads, _quiet=True)
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
        from gisportal.demo_province import build_demo

        print(f"building district {district} with {parcels} parcels in {home} ...", flush=True)
        start = time.perf_counter()
        build_demo(store, parcels_per_district=parcels, districts=[district])
        print(f"  built in {time.perf_counter() - start:.0f} s", flush=True)


def sample_queries(home: Path, district: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` lat/lon and `n` key query strings for random parcels of the district."""
    with open_store(home, crs=seeds.province()["crs"]) as store:
        version = store.published(district, "parcels")
        assert version is not None
        gdf = store.read(version.id, columns=["commune", "sheet", "parcel"])
    rng = random.Random(seed)
    picks = [rng.randrange(len(gdf)) for _ in range(n)]
    points = shapely.get_coordinates(shapely.point_on_surface(gdf.geometry.values[picks]))
    lon, lat = to_lonlat(points[:, 0], points[:, 1])
    by_point = [f"/api/lookup?lat={la:.7f}&lon={lo:.7f}" for la, lo in zip(lat, lon, strict=True)]
    by_key = []
    for i in picks:
        row = gdf.iloc[i]
        query = {"district": district, "sheet": int(row["sheet"]), "parcel": int(row["parcel"])}
        if isinstance(row["commune"], str):
            query["commune"] = row["commune"]
        by_key.append("/api/lookup?" + urlencode(query))
    return by_point, by_key


def get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


def run(port: int, paths: list[str], clients: int
        ) -> tuple[list[float], dict[int, int], float, float]:
    """Send every path once from `clients` threads.

    Returns latencies (ms), counts by status, client CPU seconds and wall seconds.
    """
    work: queue.SimpleQueue[str] = queue.SimpleQueue()
    for p in paths:
        work.put(p)
    times: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        codes: dict[int, int] = {}
        try:
            while True:
                try:
                    path = work.get_nowait()
                except queue.Empty:
                    break
                start = time.perf_counter()
                code = get(conn, path)
                mine.append((time.perf_counter() - start) * 1000)
                codes[code] = codes.get(code, 0) + 1
        finally:
            conn.close()
        with lock:
            times.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    cpu, wall = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, statuses, time.process_time() - cpu, time.perf_counter() - wall


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def server_stats(port: int) -> dict[str, list[list[float]]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/__bench/stats")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def report(title: str, results: dict[str, tuple[list[float], dict[int, int], float, float]],
           server: dict[str, list[list[float]]]) -> None:
    print(f"\n{title}")
    print(f"{'endpoint':16} {'n':>5} {'req/s':>6} {'p50':>7} {'p95':>7} {'p99':>7} "
          f"{'p99/healthz':>11} {'srv wall p50':>12} {'srv cpu p50':>11} {'client cpu':>10} "
          f"{'status':>10}")
    floor = pct(results["/healthz"][0], 99)
    for name, (times, statuses, client_cpu, elapsed) in results.items():
        inside = server.get(name, [])
        wall = statistics.median(w for w, _ in inside) if inside else float("nan")
        cpu = statistics.median(c for _, c in inside) if inside else float("nan")
        print(f"{name:16} {len(times):>5} {len(times) / elapsed:>6.0f} "
              f"{pct(times, 50):>7.2f} {pct(times, 95):>7.2f} "
              f"{pct(times, 99):>7.2f} {pct(times, 99) / floor:>10.1f}x {wall:>12.2f} "
              f"{cpu:>11.2f} {client_cpu * 1000 / len(times):>10.2f} "
              f"{','.join(f'{k}:{v}' for k, v in sorted(statuses.items())):>10}")
    print("(ms; p50/p95/p99 measured by the clients; srv = inside WSGI in the server "
          "process; client cpu = bench-process CPU per request)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="data home to reuse (built if needed)")
    parser.add_argument("--district", default="678", help="GSO code (default: Đức Trọng)")
    parser.add_argument("--parcels", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5000, help="per endpoint")
    parser.add_argument("--serial", type=int, default=500, help="one-client requests")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gisportal-bench-") as tmp:
        home = args.home or Path(tmp) / "home"
        ensure_home(home, args.district, args.parcels)
        by_point, by_key = sample_queries(home, args.district, args.requests, args.seed)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        server = subprocess.Popen([sys.executable, "-c", _SERVER, str(home), str(port),
                                   str(args.threads)], env=env, stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert server.stdout is not None
            if server.stdout.readline().strip() != "ready":
                raise SystemExit("the server did not start")
            deadline = time.monotonic() + 60
            while True:  # until it listens
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    if get(conn, "/healthz") == 200:
                        conn.close()
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            endpoints = {"/healthz": ["/healthz"] * args.requests,
                         "lookup lat/lon": by_point, "lookup key": by_key}
            # Warm-up: every server thread opens its connections and fills its caches.
            for paths in endpoints.values():
                run(port, paths[:400], args.threads * 2)
            server_stats(port)

            serial = {name: run(port, paths[:args.serial], 1)
                      for name, paths in endpoints.items()}
            report("1 client (idle server)", serial, server_stats(port))
            loaded = {name: run(port, paths, args.clients) for name, paths in endpoints.items()}
            report(f"{args.clients} concurrent clients, {args.requests} requests per endpoint, "
                   f"waitress threads={args.threads}, {os.cpu_count()} CPUs", loaded,
                   server_stats(port))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
