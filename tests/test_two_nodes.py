"""Two app nodes on one database and one bucket (issue 12, "Real servers in the tests").

Production runs several ``gisportal serve`` nodes behind one address, on one PostgreSQL
database (``GISPORTAL_DATABASE``) and one S3 bucket (``GISPORTAL_FILES``), with
``gisportal worker`` on whichever nodes should take jobs. Nothing a second node needs may
live on one node's disk. The unit suites test each backend on its own; only a test with
two real nodes shows that they really share everything: an upload received by one node
is run by the other's worker, both then give residents the same bytes, and a node that
dies mid-job loses nothing. So everything here is a real process started as an operator
starts it — ``gisportal migrate``, ``users``, ``serve``, ``worker``, ``demo``, ``ingest``,
``publish``, ``export`` — against the real PostgreSQL 15 + PostGIS and SeaweedFS servers
of ``tests/servers.py``; the test only speaks HTTP to the nodes and reads the database's
rows and the bucket's keys to check what happened. No mocks.

Each node has a home of its own (as two machines would: its scratch, logs, job locks
and tile cache) and a node name of its own; both share the secret key, as
``docs/deploy.md`` requires of nodes behind one address, and the public URL (so the
absolute links of the OGC pages are the same whichever node answers).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyogrio
import pytest

from gisportal.base.crs import to_lonlat
from tests.conftest import DUC_TRONG_XY, parcel_grid, write_shapefile_zip
from tests.servers import ServerProcess, _unique
from tests.test_decisions import PDF

pytestmark = [
    pytest.mark.production,
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="kills process groups and reads /proc"),
]

REPO = Path(__file__).resolve().parents[1]
DISTRICT = "678"
#: Quick heartbeats and a short stale limit, so a dead node's job is taken over in
#: seconds (production: 5 s and 60 s); several beats fit in the limit, as they must on
#: this loaded machine for a busy node not to be taken for a dead one.
HEARTBEAT_SECONDS = 1
STALE_SECONDS = 5
#: Generous bound for anything a node does (a cold Python start with GDAL, a job).
TIMEOUT = 180.0
#: What may exist under a node's home in production mode (docs/deploy.md, "What stays
#: on a node"): scratch, logs, job locks and worker logs, the secret key, the tile cache.
NODE_AREAS = {"tmp", "logs", "jobs", "secret_key", "cache"}
#: Files that are shared state, never to be found on a node: uploads and reports, the
#: store (GeoPackage, SQLite catalogue), tile archives, decision PDFs, export packages.
SHARED_SUFFIXES = (".zip", ".gpkg", ".sqlite", ".pmtiles", ".pdf", ".geojson", ".html",
                   ".shp", ".dbf", ".fgb")
DONE_LINE = re.compile(r"^job (\d+) \((\w+) (\d+) (\w+), attempt (\d+)\): (\w+)", re.MULTILINE)
PASSWORD = "mat-khau-rat-dai-2026"


# ----------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case: servers differ in how they spell them
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
         method: str | None = None) -> Answer:
    """One request on a new connection (urllib sends no Accept-Encoding: plain bodies)."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def multipart(fields: dict[str, str], file_field: str, path: Path) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser or ``curl -F`` sends it."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def until(what: str, check: Callable[[], Any], timeout: float = TIMEOUT,
          every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ (web mercator) tile holding a point."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def home_contents(home: Path) -> list[str]:
    """Every file under ``home``, relative to it (what an operator would find there)."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def assert_only_node_state(home: Path, dead: int | None = None) -> None:
    """``home`` holds only node-local areas (`NODE_AREAS`) and no shared file anywhere:
    with both production settings nothing a second node needs may be on one node. The
    one kind of layer file allowed is the tile cache's copy of a bucket object (named by
    the hash of its location and ETag, docs/deploy.md), which a node may delete at will.

    Scratch (``tmp/``) is empty once jobs have ended, but for the scratch of process
    ``dead``, SIGKILLed mid-job: nothing can clean up after a SIGKILL at once, so its
    entry names its pid and the node's scratch clean-up removes it later
    (`gisportal.jobs.housekeeping`); it is a copy, the upload itself is in the bucket."""
    assert home.is_dir()
    top = {p.name for p in home.iterdir()}
    assert top <= NODE_AREAS, (top - NODE_AREAS, home_contents(home))
    files = home_contents(home)
    left = [f for f in files if f.startswith("tmp/")
            and not (dead and re.match(rf"tmp/gisportal-[a-z]+-{dead}-[^/]+/", f))]
    assert left == [], files
    files = [f for f in files if not f.startswith("tmp/")]
    cache = [f for f in files if f.startswith("cache/")]
    assert all(re.fullmatch(r"cache/tiles/([0-9a-f]{40,64}\.pmtiles|\.lock)", f)
               for f in cache), cache
    # Job locks and logs, worker logs, tile build locks: plain text, never data.
    assert all(f.endswith((".log", ".lock")) for f in files if f.startswith(("jobs/",
                                                                            "logs/"))), files
    shared = [f for f in files if f not in cache and (
        f.lower().endswith(SHARED_SUFFIXES)
        or re.search(r"(^|/)(uploads|tiles|decisions|districts|exports?)/", f)
        or re.search(r"report\.(json|geojson|html)$", f))]
    assert shared == [], files


# ----------------------------------------------------------------------------- the cluster


@dataclass
class Node:
    """One app node: its home, its settings, its ``gisportal serve``, its worker."""

    name: str
    home: Path
    env: dict[str, str]
    logs: Path
    workers: int = 1
    port: int = field(default_factory=_free_port)
    serve: ServerProcess | None = None
    worker: ServerProcess | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kw: Any) -> Answer:
        return http(self.base + path, **kw)

    def cli(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """``gisportal --home HOME ARGS`` on this node, as an operator types it."""
        out = subprocess.run([sys.executable, "-m", "gisportal", "--home", str(self.home),
                              *args], input=stdin, env=self.env, cwd=REPO,
                             capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out

    def start_serve(self) -> None:
        self.serve = ServerProcess(
            f"serve {self.name}", [sys.executable, "-m", "gisportal", "--home", self.home,
                                   "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                   "--workers", str(self.workers), "--threads", "4"],
            self.logs / f"serve-{self.name}.log", env=self.env, cwd=REPO, as_user={},
            stop_signal=signal.SIGTERM, death_signal=signal.SIGKILL)

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.serve is not None and self.serve.running(), self.serve_log()
            try:
                return self.get("/healthz").status == 200
            except OSError:
                return False
        until(f"{self.name} to answer /healthz", ready, every=0.2)

    def start_worker(self) -> ServerProcess:
        """``gisportal worker`` on this node (its output, unbuffered, in a log file)."""
        self.worker = ServerProcess(
            f"worker {self.name}", [sys.executable, "-m", "gisportal", "--home", self.home,
                                    "worker"],
            self.logs / f"worker-{self.name}.log", env=self.env, cwd=REPO, as_user={},
            stop_signal=signal.SIGTERM, death_signal=signal.SIGKILL)
        return self.worker

    def worker_log(self) -> str:
        path = self.logs / f"worker-{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def serve_log(self) -> str:
        path = self.logs / f"serve-{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ran(self) -> list[tuple[int, str, int, str]]:
        """(job, kind, attempt, state) of every job this node's worker reported."""
        return [(int(m[1]), m[2], int(m[5]), m[6]) for m in DONE_LINE.finditer(
            self.worker_log())]


@dataclass
class Cluster:
    a: Node
    b: Node
    dsn: str
    bucket: str
    prefix: str
    token: str
    s3: Any
    conn: Any = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of ``query`` on the shared database (read directly: reading jobs through
        `gisportal.jobs` would also reap them, and the test must not be the node that
        re-queues a dead node's job). One connection, kept: polls are then quick enough
        to see a stage that lasts a second."""
        import psycopg

        if self.conn is None:
            self.conn = psycopg.connect(self.dsn, autocommit=True)
        return self.conn.execute(query, args).fetchall()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def job(self, job_id: int) -> dict[str, Any]:
        cols = ("id", "kind", "state", "stage", "node", "runner", "attempt", "pid", "result",
                "message")
        [row] = self.sql(f"SELECT {', '.join(cols)} FROM jobs WHERE id = %s", job_id)
        out = dict(zip(cols, row, strict=True))
        out["result"] = json.loads(out["result"]) if out["result"] else None
        return out

    def versions(self) -> list[tuple[int, str, int, dict[str, Any]]]:
        """(id, status, features, meta) of every parcels version of the district."""
        rows = self.sql("SELECT id, status, feature_count, meta FROM versions WHERE "
                        "district = %s AND kind = 'parcels' ORDER BY id", DISTRICT)
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def keys(self, under: str = "") -> list[str]:
        found = []
        pages = self.s3.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/{under}")
        for page in pages:
            found += [o["Key"].removeprefix(self.prefix + "/") for o in page.get("Contents", [])]
        return found

    def upload(self, node: Node, path: Path) -> int:
        """POST the file to ``node``'s planner API with the token; the queued job's id."""
        body, ctype = multipart({"district": DISTRICT, "kind": "parcels"}, "file", path)
        r = node.get("/api/jobs", data=body, headers={**self.auth, "Content-Type": ctype})
        assert r.status == 202, r.body
        job = r.json()["job"]
        assert job["state"] == "queued", job  # job_runner auto = external: serve runs none
        return int(job["id"])

    def finished(self, node: Node, job_id: int, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Poll ``GET /api/jobs/<id>`` on ``node`` (as a script does) until the job ends."""
        def check() -> dict[str, Any] | None:
            r = node.get(f"/api/jobs/{job_id}", headers=self.auth)
            assert r.status == 200, r.body
            job = r.json()["job"]
            return job if job["state"] in ("done", "failed", "cancelled") else None
        return until(f"job {job_id} to end", check, timeout, every=0.25)


def _node_env(name: str, dsn: str, files: str, s3_env: dict[str, str],
              secret: str) -> dict[str, str]:
    """The environment of one node: the machine's, minus any gisportal setting of the
    developer's shell (a stray GISPORTAL_HOME or GISPORTAL_WORKERS would change what is
    tested), plus the production settings every node shares and its own name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GISPORTAL_", "AWS_"))}
    env.update(s3_env)
    env.update({
        "GISPORTAL_DATABASE": dsn,
        "GISPORTAL_FILES": files,
        "GISPORTAL_SECRET_KEY": secret,
        "GISPORTAL_PUBLIC_URL": "http://quyhoach.example.test",
        "GISPORTAL_NODE_NAME": name,
        "GISPORTAL_JOB_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "GISPORTAL_JOB_STALE_SECONDS": str(STALE_SECONDS),
        "PYTHONUNBUFFERED": "1",  # the worker's lines reach its log as they happen
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
    })
    return env


@pytest.fixture(scope="module")
def cluster(pg_server, s3_server, tmp_path_factory) -> Iterator[Cluster]:
    """Two nodes on a fresh, migrated database and a fresh bucket: node A serves, node B
    serves and runs ``gisportal worker``; an admin and a planner of 678 made with the
    CLI, and the planner's API token."""
    root = tmp_path_factory.mktemp("two-nodes")
    database, bucket = _unique("test_"), _unique("test-")
    dsn = pg_server.create_database(database)
    s3_server.client().create_bucket(Bucket=bucket)
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    logs = root / "logs"
    logs.mkdir()
    # A runs gunicorn with two forked workers, B one waitress process: both servers.
    nodes = [Node(name, root / f"home-{name}", _node_env(name, dsn, f"s3://{bucket}/gp",
                                                           s3_server.env(), secret), logs,
                  workers=workers)
             for name, workers in (("node-a", 2), ("node-b", 1))]
    a, b = nodes
    try:
        out = a.cli("migrate").stdout
        assert "jobs: schema" in out and "store: schema" in out, out
        # Accounts made on one node, a token made on the other: one catalogue.
        a.cli("users", "add", "quan.tri", "--role", "admin", "--password-stdin",
              stdin=PASSWORD + "\n")
        a.cli("users", "add", "lan", "--role", "planner", "--district", DISTRICT,
              "--password-stdin", stdin=PASSWORD + "\n")
        token = b.cli("users", "token", "lan", "--label", "two-nodes").stdout.strip()
        assert token.startswith("gp_"), token
        for node in nodes:
            node.start_serve()
        for node in nodes:
            node.wait_ready()
        b.start_worker()
        cluster = Cluster(a, b, dsn, bucket, "gp", token, s3_server)
        yield cluster
        cluster.close()
    finally:
        for node in nodes:
            for proc in (node.worker, node.serve):
                if proc is not None:
                    proc.stop()
        pg_server.drop_database(database)
        s3_server.empty_and_delete_bucket(bucket)


@pytest.fixture(scope="module")
def published(cluster: Cluster, tmp_path_factory) -> dict[str, Any]:
    """20 parcels uploaded through node A's API, run by node B's worker, published
    through node B's API (again run by B's worker); the two jobs' rows and the version."""
    c = cluster
    work = tmp_path_factory.mktemp("files")
    upload = c.upload(c.a, write_shapefile_zip(parcel_grid(), work / "thua.zip"))
    done = c.finished(c.a, upload)  # polled on A, as the script that uploaded there would
    assert done["state"] == "done", done
    version = done["result"]["version"]
    r = c.b.get(f"/api/versions/{version}/publish", data=b"", method="POST",
                headers=c.auth)
    assert r.status == 202, r.body
    publish = r.json()["job"]["id"]
    pub = c.finished(c.b, publish)
    assert pub["state"] == "done", pub
    return {"upload": c.job(upload), "publish": c.job(publish), "version": version}


# ----------------------------------------------------------------------------- the tests


LOOKUPS = [f"/api/lookup?district={DISTRICT}&sheet=1&parcel=2"]


def _point_lookup() -> str:
    lon, lat = to_lonlat(DUC_TRONG_XY[0] + 5, DUC_TRONG_XY[1] + 5)
    return f"/api/lookup?lat={lat:.7f}&lon={lon:.7f}"


def test_an_upload_to_node_a_is_run_by_node_b_and_both_nodes_answer_alike(cluster,
                                                                          published):
    """Uploaded on A, run by B's worker (no worker on A), published through B: then both
    nodes answer residents with the same bytes, and neither keeps shared files."""
    c = cluster
    up, pub = published["upload"], published["publish"]
    for job in (up, pub):
        assert (job["node"], job["runner"], job["attempt"]) == ("node-b", "worker", 1), job
    # The worker's own account (its line follows the job's row by a poll of its loop).
    until("node B's worker to report both jobs", lambda: {
        (up["id"], "ingest", 1, "done"), (pub["id"], "publish", 1, "done")} <= set(c.b.ran()))
    assert c.a.worker is None  # node A never ran a job: it has no worker
    version = published["version"]
    assert c.versions()[0][:3] == (version, "published", 20)
    # What the nodes wrote went to the bucket: the upload, its report, the tile archive.
    keys = c.keys()
    assert f"uploads/{up['id']}/thua.zip" in keys, keys
    assert {f"uploads/{up['id']}/report.{x}" for x in ("json", "geojson", "html")} <= set(keys)
    assert f"tiles/{DISTRICT}/parcels/v{version}.pmtiles" in keys, keys
    # The review on node A reads the report node B's worker wrote: the bucket's bytes.
    for fmt in ("json", "html"):
        r = c.a.get(f"/planner/versions/{version}/report.{fmt}", headers=c.auth)
        assert r.status == 200, r.body[:300]
        stored = c.s3.client().get_object(
            Bucket=c.bucket, Key=f"{c.prefix}/uploads/{up['id']}/report.{fmt}")["Body"].read()
        assert r.body == stored
    assert c.a.get(f"/planner/versions/{version}", headers=c.auth).status == 200

    # Look-ups by key and by point: the same bytes from both nodes.
    for path in [*LOOKUPS, _point_lookup()]:
        ra, rb = c.a.get(path), c.b.get(path)
        assert ra.status == rb.status == 200, (path, ra.body, rb.body)
        assert ra.body == rb.body, path
        assert ra.json()["parcel"]["parcel"] in (1, 2)
    assert c.a.get(LOOKUPS[0]).json()["parcel"]["parcel"] == 2
    assert "TenChu" not in c.a.get(LOOKUPS[0]).json()["parcel"]["attributes"]
    # Tiles from z12 to z16 over the parcels: byte for byte, with the same ETag.
    lon, lat = to_lonlat(DUC_TRONG_XY[0] + 50, DUC_TRONG_XY[1] + 50)
    with_data = 0
    for z in range(12, 17):
        x, y = tile_of(lon, lat, z)
        path = f"/tiles/{DISTRICT}/parcels/{z}/{x}/{y}.pbf"
        ra, rb = c.a.get(path), c.b.get(path)
        assert ra.status == rb.status == 200, (path, ra.status, rb.status)
        assert ra.body == rb.body and len(ra.body) > 0, path
        assert ra.headers["etag"] == rb.headers["etag"], path
        with_data += 1
    assert with_data == 5
    # An empty tile elsewhere is the same answer too (204).
    x, y = tile_of(lon, lat, 12)
    assert c.a.get(f"/tiles/{DISTRICT}/parcels/12/{x + 3}/{y}.pbf").status == 204
    assert c.b.get(f"/tiles/{DISTRICT}/parcels/12/{x + 3}/{y}.pbf").status == 204
    # The OGC items page: the same document, but for the time it was made at.
    ogc = f"/ogc/collections/{DISTRICT}-parcels/items?f=json&limit=50"
    ra, rb = c.a.get(ogc), c.b.get(ogc)
    assert ra.status == rb.status == 200
    da, db = ra.json(), rb.json()
    assert da.pop("timeStamp") and db.pop("timeStamp")
    assert da == db and da["numberMatched"] == 20 and len(da["features"]) == 20
    assert da["links"][0]["href"].startswith("http://quyhoach.example.test/")
    # And as the HTML page: the same page, but for the nonce each answer's scripts carry.
    ra, rb = c.a.get(ogc.replace("f=json", "f=html")), c.b.get(ogc.replace("f=json", "f=html"))
    assert ra.status == rb.status == 200
    nonce = re.compile(rb'nonce="[^"]+"')
    assert len(nonce.findall(ra.body)) > 0
    assert nonce.sub(b"", ra.body) == nonce.sub(b"", rb.body)

    for node in (c.a, c.b):
        assert_only_node_state(node.home)
        # The shared GISPORTAL_SECRET_KEY is used: no node made a key of its own.
        assert not (node.home / "secret_key").exists()


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie awaiting its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class Watcher(threading.Thread):
    """Asks both nodes for the published parcels (look-ups, a tile), over and over,
    until stopped; keeps every answer that was not the expected one. A thread, so the
    questions go on while the test waits for, and kills, the job."""

    def __init__(self, cluster: Cluster, expected: dict[str, bytes]) -> None:
        super().__init__(daemon=True)
        self.cluster, self.expected = cluster, expected
        self.stopping = threading.Event()
        self.asked = 0
        self.wrong: list[tuple[str, str, int, bytes]] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            for node in (self.cluster.a, self.cluster.b):
                for path, body in self.expected.items():
                    try:
                        r = node.get(path)
                    except OSError as exc:
                        self.wrong.append((node.name, path, 0, str(exc).encode()))
                        continue
                    self.asked += 1
                    if (r.status, r.body) != (200, body):
                        self.wrong.append((node.name, path, r.status, r.body[:300]))
            self.stopping.wait(0.25)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)


def test_a_node_dying_mid_job_loses_nothing(cluster, published, tmp_path):
    """Node B's worker is killed (SIGKILL, its job process too) while it runs a large
    upload; after the stale limit node A's worker takes the job over and finishes it:
    one new version for the upload, and the published one answers throughout."""
    c = cluster
    grid = parcel_grid(250, 200)  # 50 000 parcels: the job runs for several seconds
    big = tmp_path / "thua_lon.gpkg"
    grid.to_file(big, driver="GPKG")
    before = c.versions()
    # Residents' answers as published: look-ups by key and point, and a tile.
    lon, lat = to_lonlat(DUC_TRONG_XY[0] + 50, DUC_TRONG_XY[1] + 50)
    x, y = tile_of(lon, lat, 16)
    expected = {path: c.a.get(path).body for path in [
        *LOOKUPS, _point_lookup(), f"/tiles/{DISTRICT}/parcels/16/{x}/{y}.pbf"]}
    assert all(expected.values())
    watcher = Watcher(c, expected)
    watcher.start()
    try:
        job_id = c.upload(c.a, big)
        # B's worker claims it; the node dies while the job is storing the version or
        # writing its report (the runs a re-run must not store twice): not before it
        # started, nor after it ended.
        def at_work() -> dict[str, Any] | None:
            job = c.job(job_id)
            assert job["state"] in ("queued", "running"), job  # never ends on B
            return job if job["node"] == "node-b" and job["stage"] in ("store",
                                                                       "report") else None
        running = until("node B to be storing the version", at_work, every=0.02)
        assert c.b.worker is not None
        os.killpg(c.b.worker.pid, signal.SIGKILL)   # the node's gisportal worker...
        os.killpg(running["pid"], signal.SIGKILL)   # ...and its job's process group
        c.b.worker.popen.wait(timeout=30)
        until("the job process to be gone", lambda: _gone(running["pid"]))
        killed_at = c.job(job_id)
        assert killed_at["state"] == "running" and killed_at["node"] == "node-b", killed_at
        # What the dead run left: its version committed (killed in the report), or
        # nothing at all (killed in the store's transaction, which the server rolled back).
        stored = [v[0] for v in c.versions() if v[3].get("job") == job_id]
        # Node A's worker starts now (had it run all along it could have taken the job
        # first); it re-queues the stale job and runs it again.
        c.a.start_worker()
        done = c.finished(c.a, job_id, timeout=TIMEOUT * 2)
    finally:
        watcher.stop()
    row = c.job(job_id)
    assert done["state"] == "done", (done, c.a.worker_log())
    assert (row["node"], row["runner"], row["attempt"]) == ("node-a", "worker", 2), row
    until("node A's worker to report the job", lambda: (job_id, "ingest", 2, "done")
          in c.a.ran())
    assert job_id not in [j[0] for j in c.b.ran()]
    # Exactly one new version for the upload, and the published one unchanged.
    after = c.versions()
    new = [v for v in after if v not in before]
    assert len(new) == 1, after
    vid, status, features, meta = new[0]
    assert (status, features, meta["job"]) == ("draft", 50_000, job_id)
    assert row["result"]["version"] == vid
    if stored:  # the re-run found the first run's version and reused it
        assert stored == [vid]
        assert f"reuses version {vid}" in (c.a.home / "jobs" / f"{job_id}.log").read_text()
    assert [v[:3] for v in after if v[0] != vid] == [v[:3] for v in before]
    # No table of a half-written version left in the database: one table per version.
    tables = {r[0] for r in c.sql("SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema = 'layers'")}
    assert tables == {r[0] for r in c.sql("SELECT layer_table FROM versions")}, tables
    # The upload and its report are in the bucket, where the review of any node reads
    # them: node B (whose worker died) serves the findings of the run node A made.
    assert {f"uploads/{job_id}/{name}" for name in ("thua_lon.gpkg", "report.json",
                                                      "report.geojson", "report.html")} <= set(
        c.keys(f"uploads/{job_id}/"))
    r = c.b.get(f"/api/versions/{vid}/findings?limit=5", headers=c.auth)
    assert r.status == 200, r.body
    assert r.json()["summary"]["features"] == 50_000
    # The published version answered on both nodes all along.
    assert watcher.asked > 0 and watcher.wrong == [], watcher.wrong[:5]
    print(f"killed at stage {running['stage']!r} ({len(stored)} version stored); "
          f"{watcher.asked} look-ups meanwhile")
    assert_only_node_state(c.a.home)
    assert_only_node_state(c.b.home, dead=running["pid"])


def test_the_command_line_works_on_the_production_backends(pg_dsn, s3_bucket, s3_server,
                                                           tmp_path):
    """``demo``, ``ingest --publish``, ``publish`` and ``export`` with
    ``GISPORTAL_DATABASE``/``GISPORTAL_FILES`` set: everything lands in the database and
    the bucket, nothing on the local home."""
    node = Node("cli", tmp_path / "home", _node_env(
        "cli", pg_dsn, f"s3://{s3_bucket}/gp", s3_server.env(), "x" * 40), tmp_path)
    c = Cluster(node, node, pg_dsn, s3_bucket, "gp", "", s3_server)
    node.cli("migrate")
    out = node.cli("demo", "--district", "676", "--parcels-per-district", "2000",
                   timeout=TIMEOUT * 2)
    assert out.returncode == 0, out.stderr
    grid = write_shapefile_zip(parcel_grid(), tmp_path / "thua.zip")
    first = int(node.cli("ingest", str(grid), "--kind", "parcels", "--district", DISTRICT,
                         "--publish").stdout.strip().splitlines()[-1])
    second = int(node.cli("ingest", str(grid), "--kind", "parcels", "--district",
                          DISTRICT).stdout.strip().splitlines()[-1])
    node.cli("publish", "--district", DISTRICT, "--kind", "parcels", "--version",
             str(second))
    assert [(v[0], v[1]) for v in c.versions()] == [(first, "superseded"),
                                                    (second, "published")]
    demo = c.sql("SELECT kind, status FROM versions WHERE district = '676' ORDER BY kind")
    assert {k for k, s in demo if s == "published"} >= {"parcels", "plan", "boundary"}, demo
    # A signed decision attached from the command line: its PDF goes to the bucket.
    [plan] = [r[0] for r in c.sql("SELECT id FROM versions WHERE district = '676' AND "
                                  "kind = 'plan' AND status = 'published'")]
    pdf = tmp_path / "quyet_dinh.pdf"
    pdf.write_bytes(PDF)
    node.cli("decision", "--version", str(plan), "--number", "12/QĐ-UBND", "--date",
             "2023-06-30", "--authority", "Ủy ban nhân dân tỉnh Lâm Đồng", "--pdf", str(pdf))
    # The ministry packages, written where the operator asked, read from the database.
    for district, layers in ((DISTRICT, {"parcels": 20}), ("676", {"parcels": None,
                                                                   "plan": None,
                                                                   "boundary": None})):
        package = tmp_path / f"bo_{district}.zip"
        last = node.cli("export", "--district", district, "--out", str(package))
        assert last.stdout.strip().splitlines()[-1].endswith(package.name)
        with zipfile.ZipFile(package) as zf:
            assert zf.testzip() is None
            names = zf.namelist()
            assert {f"{district}.gpkg", "manifest.json"} <= set(names), names
            zf.extract(f"{district}.gpkg", tmp_path / district)
        gpkg = tmp_path / district / f"{district}.gpkg"
        found = {name: pyogrio.read_info(gpkg, layer=name)["features"]
                 for name, _ in pyogrio.list_layers(gpkg)}
        assert set(layers) <= set(found), found
        assert all(n is None or found[k] == n for k, n in layers.items()), found
    keys = c.keys()
    assert f"tiles/{DISTRICT}/parcels/v{second}.pmtiles" in keys, keys
    assert {f"tiles/676/{k}/" for k in ("parcels", "plan", "boundary")} <= {
        k.rsplit("/", 1)[0] + "/" for k in keys}, keys
    assert f"decisions/{hashlib.sha256(PDF).hexdigest()}.pdf" in keys, keys
    found = json.loads(node.cli("lookup", "--district", DISTRICT, "--sheet", "1",
                                "--parcel", "2").stdout)
    assert found["parcel"]["parcel"] == 2
    c.close()
    assert_only_node_state(node.home)
