"""``gisportal serve`` as a real process on a free port: gunicorn workers, or waitress.

Each test starts the command line exactly as an operator would, over a data home with
one small published district, asks it over HTTP, then stops it with SIGTERM (what
systemd and ``docker stop`` send) and checks that it exits cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gisportal.base.crs import to_lonlat
from gisportal.services.ingest import ingest_file
from tests.conftest import DUC_TRONG_XY

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gunicorn runs on Unix")


@pytest.fixture
def published_home(home, store, make_shapefile_zip) -> Path:
    """A data home where 20 parcels of Đức Trọng (678) are published."""
    ingest_file(store, make_shapefile_zip(), "parcels", "678", publish=True)
    store.close()
    return home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _open_files(pid: int, suffixes: tuple[str, ...]) -> list[str]:
    """Files with these suffixes that process `pid` has open (Linux /proc)."""
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith(suffixes):
            out.append(target)
    return out


@pytest.fixture
def serve(published_home):
    """Start ``gisportal serve --workers N``; yields (process, base URL); stops it."""
    started: list[subprocess.Popen] = []

    def start(workers: int) -> tuple[subprocess.Popen, str]:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k != "GISPORTAL_WORKERS"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "gisportal", "--home", str(published_home), "serve",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve exited with {proc.returncode}: {proc.stderr.read()}")
            try:
                status, doc = _get(base + "/healthz")
                if status == 200 and doc["status"] == "ok":
                    return proc, base
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("serve did not answer /healthz within 90 s")
            time.sleep(0.2)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def _stop(proc: subprocess.Popen) -> str:
    """SIGTERM, as systemd or docker would; returns what the server wrote on stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def _looks_up_parcels(base: str) -> None:
    status, body = _get(base + "/api/lookup?district=678&sheet=1&parcel=2")
    assert status == 200, body
    assert (body["parcel"]["sheet"], body["parcel"]["parcel"]) == (1, 2)
    assert "TenChu" not in body["parcel"]["attributes"]  # owner names stay private
    lon, lat = to_lonlat(DUC_TRONG_XY[0] + 5, DUC_TRONG_XY[1] + 5)
    status, body = _get(f"{base}/api/lookup?lat={lat:.7f}&lon={lon:.7f}")
    assert status == 200 and body["parcel"]["parcel"] == 1
    status, body = _get(base + "/api/lookup?lat=21.0&lon=105.8")  # Hà Nội
    assert status == 200 and body["reason"] == "outside_districts"
    status, body = _get(base + "/api/lookup?district=678&sheet=77&parcel=1")
    assert status == 404 and body["error"]["code"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts workers in /proc")
def test_serve_with_two_gunicorn_workers(serve):
    proc, base = serve(2)
    workers = _children(proc.pid)
    assert len(workers) == 2, workers  # the master forked two worker processes
    _looks_up_parcels(base)  # each request a new connection, taken by a free worker
    # Nothing the workers use was opened in the master before the fork: it holds no
    # database (each worker opens its own SQLite connections, after the fork).
    assert _open_files(proc.pid, (".gpkg", ".sqlite")) == []
    assert any(_open_files(pid, (".gpkg",)) for pid in workers)  # a worker looked up
    err = _stop(proc)
    assert "gunicorn, 2 worker processes × 4 threads" in err
    assert err.count("Booting worker") == 2 and "Shutting down: Master" in err
    assert "Traceback" not in err
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # none left behind


def test_serve_with_one_process_uses_waitress(serve):
    proc, base = serve(1)
    _looks_up_parcels(base)
    err = _stop(proc)
    assert "waitress, 8 threads" in err and "gunicorn" not in err
    assert "Traceback" not in err


def _keepalive_answers(base: str, n: int) -> list[str | None]:
    """The Connection header of `n` requests sent on one kept-alive connection (None
    once the server has closed it)."""
    import http.client

    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    out: list[str | None] = []
    try:
        for _ in range(n):
            if conn.sock is None and out:  # closed by the server after the last answer
                out.append(None)
                continue
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            out.append(r.getheader("Connection"))
            if r.will_close:
                conn.close()
                conn.sock = None
    finally:
        conn.close()
    return out


def test_gunicorn_closes_a_kept_alive_connection_after_keepalive_requests(serve, monkeypatch):
    """So that connections opened in a burst do not stay piled on one worker
    (gisportal/web/server.py): the 3rd answer says close, and the server closes."""
    monkeypatch.setenv("GISPORTAL_KEEPALIVE_REQUESTS", "3")
    proc, base = serve(2)
    answers = _keepalive_answers(base, 4)
    assert [a.lower() if a else a for a in answers] == ["keep-alive", "keep-alive", "close",
                                                        None]
