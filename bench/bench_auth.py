"""What accounts cost a request, and how the audit log scales.

In one process, through Flask's test client (no network), on a fresh data home:

- ``GET /healthz`` anonymous — the floor: WSGI and Flask with no work;
- ``GET /api/me`` with a session cookie — the user reloaded from the catalogue;
- ``GET /api/me`` with ``Authorization: Bearer`` — the token looked up by its hash;
- ``POST /login`` — a sign-in with argon2-cffi's default Argon2id parameters;
- ``audit.record`` — one event, its own transaction;
- ``audit.events`` — a 50-event page of a log of ``--events`` events, newest page and
  the oldest page (keyset paging: both should cost the same), and with a filter.

Each figure is per run the median of its calls; the runs (``--runs``, default 3) take
turns over all the figures, so the ones compared see the same machine state. Prints the
median of the runs with their range and the machine's load, and ratios of the medians
with the range of the per-run ratios. Usage::

    python bench/bench_auth.py [--requests 2000] [--events 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from gisportal.accounts import audit, tokens, users
from gisportal.accounts.db import connect, transaction
from gisportal.web.app import create_app

try:
    from bench._measure import Runs, print_peers, ratio
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, print_peers, ratio

PW = "mật khẩu đủ dài cho bench"


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of each figure, taking turns; the median counts (default 3)")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench_auth_")) / "home"
    users.add_user(home, "boss", "admin", PW)
    users.add_user(home, "lan", "planner", PW, districts=["678", "679"])
    token = tokens.create_token(home, "lan")
    # The bench signs in back to back: lift every sign-in limit (they are tested elsewhere).
    app = create_app({"home": str(home), "login_max_failures": 10**9,
                      "login_max_per_address": 10**9, "login_max_global": 10**9})
    anon, session, scripted = app.test_client(), app.test_client(), app.test_client()
    page = session.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert session.post("/login", data={"username": "lan", "password": PW,
                                        "csrf_token": csrf}).status_code == 303
    n = args.requests

    def ok(r):
        assert r.status_code == 200, r.status_code

    def sign_in():
        c = app.test_client()
        t = re.search(r'name="csrf_token" value="([^"]+)"',
                      c.get("/login").get_data(as_text=True)).group(1)
        assert c.post("/login", data={"username": "boss", "password": PW,
                                      "csrf_token": t}).status_code == 303

    requests = Runs()
    for _ in range(args.runs):  # the figures take turns: same machine state for each
        requests.add("floor", _median_ms(lambda: ok(anon.get("/healthz")), n))
        requests.add("session", _median_ms(lambda: ok(session.get("/api/me")), n))
        requests.add("token", _median_ms(lambda: ok(scripted.get(
            "/api/me", headers={"Authorization": f"Bearer {token}"})), n))
        requests.add("login", _median_ms(sign_in, 15))
        requests.add("record", _median_ms(
            lambda: audit.record(home, "lan", "bench.event", district="678"), min(n, 1000)))
    requests.close()

    # Fill the log in bulk (same table, same columns) to time reads on a big log.
    with connect(home) as conn, transaction(conn):
        conn.executemany(
            "INSERT INTO audit (at, actor, actor_key, action, district, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((audit.utc_now(), f"user{i % 50}", f"user{i % 50}", "version.publish",
              str(672 + i % 12), f'{{"i": {i}}}') for i in range(args.events)))
    last = audit.events(home, limit=50)
    cursor = None
    for e in audit.iter_events(home, chunk=500):  # find the oldest page's cursor
        cursor = e.id
    pages = Runs()
    for _ in range(args.runs):
        pages.add("newest", _median_ms(lambda: audit.events(home, limit=50), 200))
        pages.add("oldest", _median_ms(
            lambda: audit.events(home, limit=50, before=cursor + 51), 200))
        pages.add("filtered", _median_ms(lambda: audit.events(
            home, actor="user7", district="679", limit=50), 200))
    pages.close()
    assert last.events

    floor, by_session, by_token = requests["floor"], requests["session"], requests["token"]
    login, record = requests["login"], requests["record"]
    newest, oldest, filtered = pages["newest"], pages["oldest"], pages["filtered"]
    print_peers()
    print(f"requests through Flask's test client (no socket): per run the median of {n}; "
          f"median of {args.runs} runs (range); audit log of {args.events:,} events")
    print(f"  GET /healthz (floor)           {floor.text('ms', 3)}")
    print(f"  GET /api/me, session cookie    {by_session.text('ms', 3)} = "
          f"{ratio(by_session, floor).text()}; +{by_session.median - floor.median:.3f} ms "
          "to load the user")
    print(f"  GET /api/me, bearer token      {by_token.text('ms', 3)} = "
          f"{ratio(by_token, floor).text()}; +{by_token.median - floor.median:.3f} ms")
    print(f"  POST /login (Argon2id default) {login.text('ms', 1)} = "
          f"{ratio(login, floor).text(0)}")
    print(f"  audit.record                   {record.text('ms', 3)}")
    print(f"  audit.events newest page       {newest.text('ms', 3)}")
    print(f"  audit.events oldest page       {oldest.text('ms', 3)} = "
          f"{ratio(oldest, newest).text()} newest")
    print(f"  audit.events actor+district    {filtered.text('ms', 3)} = "
          f"{ratio(filtered, newest).text()} newest")


if __name__ == "__main__":
    main()
