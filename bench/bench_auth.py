"""What accounts cost a request, and how the audit log scales.

In one process, through Flask's test client (no network), on a fresh data home:

- ``GET /healthz`` anonymous — the floor: WSGI and Flask with no work;
- ``GET /api/me`` with a session cookie — the user reloaded from the catalogue;
- ``GET /api/me`` with ``Authorization: Bearer`` — the token looked up by its hash;
- ``POST /login`` — a sign-in with argon2-cffi's default Argon2id parameters;
- ``audit.record`` — one event, its own transaction;
- ``audit.events`` — a 50-event page of a log of ``--events`` events, newest page and
  the oldest page (keyset paging: both should cost the same), and with a filter.

Prints medians and ratios measured in this run. Usage::

    python -m bench.bench_auth [--requests 2000] [--events 200000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from gisportal import create_app
from gisportal.accounts import audit, tokens, users
from gisportal.accounts.db import connect, transaction

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
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench_auth_")) / "home"
    users.add_user(home, "boss", "admin", PW)
    users.add_user(home, "lan", "planner", PW, districts=["678", "679"])
    token = tokens.create_token(home, "lan")
    app = create_app({"home": str(home), "login_max_failures": 10**9})
    anon, session, scripted = app.test_client(), app.test_client(), app.test_client()
    page = session.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert session.post("/login", data={"username": "lan", "password": PW,
                                        "csrf_token": csrf}).status_code == 303
    n = args.requests

    def ok(r):
        assert r.status_code == 200, r.status_code

    floor = _median_ms(lambda: ok(anon.get("/healthz")), n)
    by_session = _median_ms(lambda: ok(session.get("/api/me")), n)
    by_token = _median_ms(lambda: ok(scripted.get(
        "/api/me", headers={"Authorization": f"Bearer {token}"})), n)

    def sign_in():
        c = app.test_client()
        t = re.search(r'name="csrf_token" value="([^"]+)"',
                      c.get("/login").get_data(as_text=True)).group(1)
        assert c.post("/login", data={"username": "boss", "password": PW,
                                      "csrf_token": t}).status_code == 303

    login = _median_ms(sign_in, 15)
    record = _median_ms(lambda: audit.record(home, "lan", "bench.event", district="678"),
                        min(n, 1000))

    # Fill the log in bulk (same table, same columns) to time reads on a big log.
    with connect(home) as conn, transaction(conn):
        conn.executemany(
            "INSERT INTO audit (at, actor, actor_key, action, district, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((audit.utc_now(), f"user{i % 50}", f"user{i % 50}", "version.publish",
              str(672 + i % 12), f'{{"i": {i}}}') for i in range(args.events)))
    newest = _median_ms(lambda: audit.events(home, limit=50), 200)
    last = audit.events(home, limit=50)
    cursor = None
    for e in audit.iter_events(home, chunk=500):  # find the oldest page's cursor
        cursor = e.id
    oldest = _median_ms(lambda: audit.events(home, limit=50, before=cursor + 51), 200)
    filtered = _median_ms(lambda: audit.events(home, actor="user7", district="679",
                                               limit=50), 200)
    assert last.events

    print(f"requests: median of {n}; audit log of {args.events:,} events")
    print(f"  GET /healthz (floor)          {floor:7.3f} ms   1.00×")
    print(f"  GET /api/me, session cookie   {by_session:7.3f} ms   {by_session / floor:5.2f}×"
          f"   (+{by_session - floor:.3f} ms to load the user)")
    print(f"  GET /api/me, bearer token     {by_token:7.3f} ms   {by_token / floor:5.2f}×")
    print(f"  POST /login (Argon2id default){login:7.1f} ms   {login / floor:5.0f}×")
    print(f"  audit.record                  {record:7.3f} ms")
    print(f"  audit.events newest page      {newest:7.3f} ms")
    print(f"  audit.events oldest page      {oldest:7.3f} ms   {oldest / newest:5.2f}× newest")
    print(f"  audit.events actor+district   {filtered:7.3f} ms   {filtered / newest:5.2f}× newest")


if __name__ == "__main__":
    main()
