"""Look-up latency on a live server while anonymous clients flood the sign-in form.

Issue 11, item 2: one CSRF token reused with a new user name per try was never
throttled, and each try ran Argon2 (~0.2 CPU-seconds) — 10.8 tries/s took the
look-ups from 1 519 to 19 answers/s. This bench replays that attack and measures what
residents feel:

- a real ``gisportal serve --workers 2`` (gunicorn, as ``bench_lookup.py`` starts it)
  on 127.0.0.1, over a small demo district built once;
- look-ups loaded by ``wrk`` (Debian's package, ``apt-get install -y wrk``) with
  ``bench_lookup.py``'s script: random parcels by key, lat/lon and X/Y, with
  ``/healthz`` mixed in (one URL in ten), paced at ``--rate`` req/s (latency from the
  scheduled send, so a server falling behind is charged) and in a closed loop
  (throughput);
- the flood: a Python thread pool, one keep-alive connection per thread, that fetches
  ``/login`` once (cookie and CSRF token), then posts ``/login`` with a new user name
  each time, at ``--flood-rate`` tries/s in total, bounded by ``--duration`` and by a
  count; to 127.0.0.1 only. ``--servers control`` sends the same traffic as
  ``GET /healthz``: what the flood's connections cost the machine without any sign-in
  (the client shares the two cores with the server and wrk).

Each run measures the look-ups without the flood and with it, back to back on the same
server (so both see the same machine state); ``--runs`` runs (default 3); figures are
medians with their range, the ratio with-flood / without is the median of the per-run
ratios with their range, and the machine's load is printed. Two servers:

- **one address**: default settings; the flood comes from one address, so after
  ``login_max_per_address`` failures every try is a 429 before any hash;
- **many addresses**: ``login_max_per_address`` out of the way, standing for a flood
  from many addresses; what protects the look-ups is the service limit
  (``login_max_global`` per ``login_global_window_seconds``) and the low-priority hash
  thread.

Target: look-up p99 with the flood ≤ 2× without. Usage (from the repository root)::

    python bench/bench_signin_flood.py [--home DIR] [--parcels 5000] [--duration 10]
                                       [--flood-rate 15] [--rate 320] [--runs 3]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

try:
    from bench._measure import Runs, machine_line, print_peers
    from bench.bench_lookup import (
        WRK_SCRIPT,
        Server,
        cpu_seconds,
        ensure_home,
        pct,
        run_wrk,
        sample_queries,
    )
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, machine_line, print_peers
    from bench_lookup import (
        WRK_SCRIPT,
        Server,
        cpu_seconds,
        ensure_home,
        pct,
        run_wrk,
        sample_queries,
    )

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Flood:
    """Anonymous sign-in tries with a new user name each, from a thread pool.

    Each thread keeps its cookie and one CSRF token (the attack: the token is never
    refreshed) and sends on a fixed schedule, so the total is ``rate`` tries/s whatever
    the answers take (a slow answer does not slow the flood down, as with an attacker
    who does not wait). Stops at ``stop()``, after ``seconds`` or after ``max_tries``.
    """

    def __init__(self, url: str, rate: float, seconds: float, threads: int = 16,
                 max_tries: int | None = None, control: bool = False) -> None:
        assert url.startswith("http://127.0.0.1:"), "the flood goes to this machine only"
        self.port = int(url.rsplit(":", 1)[1])
        self.rate, self.seconds, self.threads, self.control = rate, seconds, threads, control
        self.max_tries = max_tries or int(rate * seconds * 1.5) + threads
        self.statuses: Counter[int | str] = Counter()
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list = []
        self.started = self.ended = 0.0

    def _worker(self, idx: int) -> None:
        """One attacker connection: keep-alive, its cookie and CSRF token kept."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/login")
        r = conn.getresponse()
        token = _CSRF.search(r.read().decode("utf-8")).group(1)
        cookie = "; ".join(c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or [])
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        interval = self.threads / self.rate
        due = time.monotonic() + idx * interval / self.threads
        deadline = self.started + self.seconds
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if sum(self.statuses.values()) >= self.max_tries:
                    return
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            due += interval
            body = urlencode({"username": f"flood.{idx}.{n}.{time.time_ns()}",
                              "password": "sai mật khẩu nhé", "csrf_token": token}).encode()
            n += 1
            start = time.perf_counter()
            try:
                if self.control:  # as many requests, but no sign-in: the floor
                    conn.request("GET", "/healthz")
                else:
                    conn.request("POST", "/login", body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status: int | str = r.status
            except (http.client.HTTPException, OSError) as err:
                status = type(err).__name__
                conn.close()  # reconnects at the next request
            with self._lock:
                self.statuses[status] += 1
                self.latencies.append(time.perf_counter() - start)

    def start(self) -> Flood:
        self.started = time.monotonic()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="flood")
        self._futures = [self._pool.submit(self._worker, i) for i in range(self.threads)]
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._pool is not None
        self._pool.shutdown(wait=True)
        self.ended = time.monotonic()
        for f in self._futures:
            f.result()  # a worker that failed to start says why

    @property
    def tries_per_s(self) -> float:
        return sum(self.statuses.values()) / max(self.ended - self.started, 1e-9)


@contextmanager
def env(**values: str):
    """Environment variables for a server started inside the block."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def measure(server: Server, script: Path, paths: Path, out: Path, *, connections: int,
            seconds: float, rate: float, flood_rate: float, flood_threads: int = 16,
            control: bool = False) -> dict[str, float | Counter]:
    """One wrk run of the look-ups (paced when ``rate``, else closed), with a flood when
    ``flood_rate``; p50/p99 of look-ups and /healthz, look-ups/s, the flood's figures."""
    interval = connections / rate * 1e6 if rate else 0.0
    flood = Flood(server.url, flood_rate, seconds + 2, threads=flood_threads,
                  control=control).start() if flood_rate else None
    cpu0 = cpu_seconds(server.proc.pid)
    try:
        result, wall, errors = run_wrk(script, server.url, paths, connections, seconds,
                                       interval, out)
    finally:
        if flood:
            flood.stop()
    cpu = cpu_seconds(server.proc.pid) - cpu0
    look = {k: np.concatenate([v[k] for kind, v in result.items() if kind != "healthz"])
            for k in ("status", "send", "schedule")}
    lat = look["schedule"] if rate else look["send"]
    health = result["healthz"]["schedule" if rate else "send"]
    bad = int(np.sum(look["status"] != 200))
    row: dict[str, float | Counter] = {
        "p50": pct(lat, 50), "p99": pct(lat, 99), "health_p50": pct(health, 50),
        "health_p99": pct(health, 99), "rps": len(lat) / wall, "errors": bad,
        "server_cpu": cpu / wall,
        "flood_rate": flood.tries_per_s if flood else 0.0,
        "flood_statuses": flood.statuses if flood else Counter(),
        "flood_answer_p50": pct(np.array(flood.latencies), 50) * 1000
        if flood and flood.latencies else 0.0}
    if errors:
        print(f"    wrk: {errors}")
    return row


def run_server(label: str, settings: dict[str, str], home: Path, tmp: Path, script: Path,
               paths: Path, args: argparse.Namespace) -> None:
    with env(**settings):
        server = Server(home, 2, tmp / f"server-{re.sub(r'[^a-z]+', '-', label)}.log")
    print(f"\n{label}: {server.label}; "
          + (", ".join(f"{k}={v}" for k, v in settings.items()) or "default settings"))
    try:
        for _ in range(2):  # warm-up: every worker and thread opens its connections
            run_wrk(script, server.url, paths, args.connections, 2, 0, tmp / "warm.txt")
        paced, closed = Runs(), Runs()
        statuses: Counter = Counter()
        for i in range(args.runs):
            for mode, acc, rate in (("paced", paced, args.rate), ("closed", closed, 0)):
                quiet = measure(server, script, paths, tmp / "quiet.txt",
                                connections=args.connections, seconds=args.duration,
                                rate=rate, flood_rate=0)
                flooded = measure(server, script, paths, tmp / "flood.txt",
                                  connections=args.connections, seconds=args.duration,
                                  rate=rate, flood_rate=args.flood_rate,
                                  flood_threads=args.flood_threads,
                                  control=label.startswith("control"))
                statuses.update(flooded["flood_statuses"])
                for key in ("p50", "p99", "health_p50", "health_p99", "rps", "server_cpu"):
                    acc.add(f"quiet_{key}", quiet[key])
                    acc.add(f"flood_{key}", flooded[key])
                acc.add("p99_ratio", flooded["p99"] / quiet["p99"])
                acc.add("p50_ratio", flooded["p50"] / quiet["p50"])
                acc.add("rps_ratio", flooded["rps"] / quiet["rps"])
                acc.add("flood_rate", flooded["flood_rate"])
                acc.add("flood_answer_p50", flooded["flood_answer_p50"])
                acc.add("errors", quiet["errors"] + flooded["errors"])
                print(f"  run {i + 1} {mode:6}: p50 {quiet['p50']:.2f} → {flooded['p50']:.2f} "
                      f"ms, p99 {quiet['p99']:.2f} → {flooded['p99']:.2f} ms, "
                      f"{quiet['rps']:.0f} → {flooded['rps']:.0f} look-ups/s; flood "
                      f"{flooded['flood_rate']:.1f} tries/s "
                      f"{dict(flooded['flood_statuses'])}; load {os.getloadavg()[0]:.2f}",
                      flush=True)
        paced.close()
        closed.close()
    finally:
        server.stop()
    for mode, acc in ((f"paced at {args.rate:g} req/s", paced), ("closed loop", closed)):
        print(f"  {mode} ({args.connections} connections; median of {args.runs} "
              f"[range]; {acc['p99_ratio'].load_text()})")
        print(f"    {'':16} {'without flood':>24} {'with flood':>24}")
        for key, unit in (("p50", "ms"), ("p99", "ms"), ("health_p50", "ms"),
                          ("health_p99", "ms"), ("rps", "req/s"), ("server_cpu", "cores")):
            name = {"health_p50": "/healthz p50", "health_p99": "/healthz p99",
                    "rps": "look-ups/s", "server_cpu": "server CPU"}.get(key, f"look-up {key}")
            digits = 0 if key == "rps" else 2
            print(f"    {name:16} {acc['quiet_' + key].short(unit, digits):>24} "
                  f"{acc['flood_' + key].short(unit, digits):>24}")
        print(f"    with / without: p99 {acc['p99_ratio'].short('×')}, p50 "
              f"{acc['p50_ratio'].short('×')}, look-ups/s {acc['rps_ratio'].short('×')}; "
              f"flood {acc['flood_rate'].short('tries/s', 1)}, its answer p50 "
              f"{acc['flood_answer_p50'].short('ms', 1)}; non-200 look-ups "
              f"{int(sum(acc.values['errors']))}")
    print(f"  flood answers over all runs: {dict(statuses)} (401: reached the hash; "
          "429: refused before it)")
    ratio = paced["p99_ratio"].median
    print(f"  target p99 with flood ≤ 2× without (paced): {ratio:.2f}× — "
          f"{'met' if ratio <= 2 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="data home to reuse (built if needed)")
    parser.add_argument("--district", default="678", help="GSO code (default: Đức Trọng)")
    parser.add_argument("--parcels", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=320, help="paced look-ups/s in total")
    parser.add_argument("--flood-rate", type=float, default=15, help="sign-in tries/s")
    parser.add_argument("--flood-threads", type=int, default=16,
                        help="concurrent flood connections (an attacker does not wait for "
                             "one answer before the next try)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", nargs="+", default=["one", "many"],
                        choices=["one", "many", "unlimited", "control"],
                        help="one address (defaults), many addresses (per-address limit "
                             "off), unlimited (every limit off: the hash thread alone), "
                             "control (the same connections and rate, GET /healthz instead "
                             "of signing in: what the traffic costs without any sign-in)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian's package)")
    if not 0 < args.flood_rate <= 50:
        raise SystemExit("--flood-rate is bounded to (0, 50] tries/s")
    configs = {"one": ("one address", {}),
               "many": ("many addresses", {"GISPORTAL_LOGIN_MAX_PER_ADDRESS": "1000000"}),
               "control": ("control, GET /healthz instead of sign-ins", {}),
               "unlimited": ("no limit, hash thread only",
                             {"GISPORTAL_LOGIN_MAX_PER_ADDRESS": "1000000",
                              "GISPORTAL_LOGIN_MAX_GLOBAL": "1000000"})}
    with tempfile.TemporaryDirectory(prefix="gisportal-flood-") as tmp_name:
        tmp = Path(tmp_name)
        home = args.home or tmp / "home"
        ensure_home(home, args.district, args.parcels)
        script = tmp / "lookup.lua"
        script.write_text(WRK_SCRIPT)
        queries = sample_queries(home, args.district, 1000, args.seed)
        paths = tmp / "paths.txt"
        paths.write_text("".join(("healthz /healthz\n" if i % 10 == 9 else "")
                                 + f"{k} {p}\n" for i, (k, p) in enumerate(queries)))
        print_peers("wrk", "gunicorn")
        print(f"{os.cpu_count()} CPUs shared by server, wrk and the flood; look-ups "
              f"{args.duration:g} s per measurement, {args.runs} runs; flood "
              f"{args.flood_rate:g} sign-in tries/s, a new user name each, one CSRF token "
              "per thread; latencies in ms (paced: from the scheduled send)")
        for key in args.servers:
            label, settings = configs[key]
            run_server(label, settings, home, tmp, script, paths, args)
        print("\n" + machine_line())


if __name__ == "__main__":
    main()
