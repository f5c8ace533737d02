"""Jobs across nodes (issue 12): ``gisportal worker`` processes claim jobs from the queue in
the database, send heartbeats, and a job whose node died is re-run — once, idempotently.

Real processes throughout: ``gisportal worker`` is started as an operator starts it, its
job processes run the real pipeline on real zipped shapefiles, and a node's death is a
SIGKILL of the ``gisportal worker`` process (its job processes die with it). Each test
runs on the embedded SQLite catalogue and, marked ``production``, on the real PostgreSQL
15 + PostGIS server of ``tests/servers.py`` (``GISPORTAL_DATABASE`` set: the store is
PostGIS and the queue is the database's ``jobs`` table). Timing is made small by settings
(a heartbeat a second, stale after a few), and the worker's test hook
``GISPORTAL_JOBS_PAUSE_AT`` holds a job at an exact stage instead of sleeping.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gisportal import jobs
from gisportal.jobs import process, table
from gisportal.jobs.worker import PAUSE_ENV
from tests.conftest import parcel_grid, write_shapefile_zip

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.production)]
PAUSED = "paused (test hook)"
#: Generous bound for a worker to reach a point (it starts Python and imports GDAL).
TIMEOUT = 120.0
#: Settings every test runs under: no spawning, quick heartbeats, a short stale limit.
STALE_SECONDS = 5
SETTINGS = {"GISPORTAL_JOB_RUNNER": "external", "GISPORTAL_JOB_HEARTBEAT_SECONDS": "1",
            "GISPORTAL_JOB_STALE_SECONDS": str(STALE_SECONDS)}
DONE_LINE = re.compile(r"^job (\d+) \(.*\): (\w+)", re.MULTILINE)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, home: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The catalogue the queue lives in: the embedded SQLite one, or a fresh PostgreSQL
    database migrated by ``gisportal migrate`` (then the store is PostGIS too)."""
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    if request.param == "postgres":
        from gisportal.store import postgres

        dsn = request.getfixturevalue("pg_dsn")
        monkeypatch.setenv("GISPORTAL_DATABASE", dsn)
        out = subprocess.run([sys.executable, "-m", "gisportal", "migrate"], env=_env(home),
                             capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
        assert out.returncode == 0, out.stderr
        assert "jobs: schema" in out.stdout, out.stdout
        request.addfinalizer(postgres.close_pools)
    yield request.param
    _kill_leftovers(home)


def _kill_leftovers(home: Path) -> None:
    """Stop job processes a failed test left (paused at the hook for ever)."""
    for job in jobs.list_jobs(home, state="running"):
        if job.pid and process.is_alive(home, job.id):
            process.signal_group(job.pid, signal.SIGKILL)


@pytest.fixture
def grid_zip(tmp_path: Path) -> Path:
    return write_shapefile_zip(parcel_grid(), tmp_path / "thua.zip")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "GISPORTAL_HOME": str(home), **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def start_worker(home: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    """``gisportal worker ARGS`` in a process of its own, as an operator starts it."""
    return subprocess.Popen([sys.executable, "-m", "gisportal", "worker", *args],
                            env=_env(home, **extra), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_worker(home: Path, *args: str) -> str:
    """``gisportal worker --once ARGS`` to its end; its output."""
    out = subprocess.run([sys.executable, "-m", "gisportal", "worker", "--once", *args],
                         env=_env(home), cwd=REPO, capture_output=True, text=True,
                         timeout=TIMEOUT * 3)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def upload(home: Path, path: Path) -> jobs.Job:
    with open(path, "rb") as fh:
        return jobs.submit_upload(home, fh, path.name, district="678", layer="parcels",
                                  actor="planner1")


def until(what: str, check, timeout: float = TIMEOUT):  # noqa: ANN001, ANN201 - a predicate
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def paused_at(home: Path, job_id: int, stage: str) -> jobs.Job:
    def check() -> jobs.Job | None:
        job = jobs.get(home, job_id)
        assert not job.finished, job.to_dict()
        return job if job.stage == stage and job.message == PAUSED else None
    return until(f"job {job_id} to pause at {stage}", check)


def versions_of(home: Path) -> list:
    from gisportal.store import open_store

    with open_store(home, crs="EPSG:5899") as store:
        return store.versions("678", "parcels")


# -- a node dies mid-job: its job is re-run, and stores one version -------------------------


def test_a_killed_worker_job_is_requeued_and_rerun_into_one_version(backend, home, grid_zip):
    job = upload(home, grid_zip)
    assert job.state == "queued"  # job_runner external: the web side starts nothing
    # The node's worker stops its job just after the version was stored (stage report).
    node = start_worker(home, **{PAUSE_ENV: "report"})
    try:
        job = paused_at(home, job.id, "report")
        assert (job.runner, job.attempt, job.node) == ("worker", 1, process.node_name())
        [stored] = versions_of(home)
        assert stored.meta["job"] == job.id and job.result == {"version": stored.id}
        # The node dies: its gisportal worker is killed, and its job process with it.
        node.kill()
        node.wait(timeout=TIMEOUT)
        until("the job process to die", lambda: not process.is_alive(home, job.id))
    finally:
        node.kill()
        node.wait()
    # Within the stale limit the job still belongs to the dead node...
    assert jobs.get(home, job.id).state == "running"
    # ...past it, whoever looks re-queues it, its attempt kept (nothing is spawned).
    requeued = until("the job to be re-queued",
                     lambda: (j := jobs.get(home, job.id)).state == "queued" and j,
                     timeout=STALE_SECONDS * 6)
    assert requeued.attempt == 1 and requeued.node is None and requeued.pid is None
    assert "stopped sending heartbeats (attempt 1 of 3)" in requeued.message
    # Another worker takes it over and runs it again: the same version, not a second one.
    out = run_worker(home)
    assert f"job {job.id} (ingest 678 parcels, attempt 2): done" in out
    done = jobs.get(home, job.id)
    assert (done.state, done.attempt, done.error) == ("done", 2, None)
    assert done.result["version"] == stored.id
    assert [v.id for v in versions_of(home)] == [stored.id]
    assert versions_of(home)[0].feature_count == 20
    # Nothing lost: the report and the upload are where the review page looks.
    assert done.result["summary"]["features"] == 20
    for which in ("json", "geojson", "html"):
        assert jobs.report_file(home, done, which).stat().st_size > 0
    assert (home / done.params["upload"]).is_file()
    assert "reuses version" in process.log_path(home, job.id).read_text()


def test_two_workers_drain_a_queue_each_job_running_once(backend, home, grid_zip):
    queued = [upload(home, grid_zip).id for _ in range(6)]
    workers = [start_worker(home, "--once"), start_worker(home, "--once")]
    outputs = []
    for w in workers:
        out, _ = w.communicate(timeout=TIMEOUT * 3)
        assert w.returncode == 0, out
        outputs.append(out)
    ran = [[int(m.group(1)) for m in DONE_LINE.finditer(out)] for out in outputs]
    # Every job was run by exactly one of the two workers.
    assert sorted(ran[0] + ran[1]) == queued, outputs
    assert not set(ran[0]) & set(ran[1])
    finished = [jobs.get(home, j) for j in queued]
    assert all((j.state, j.attempt) == ("done", 1) for j in finished), \
        [j.to_dict() for j in finished]
    # One version per job, each tagged with its own job.
    tags = sorted(v.meta["job"] for v in versions_of(home))
    assert tags == queued
    assert sorted(j.result["version"] for j in finished) == sorted(
        v.id for v in versions_of(home))
    assert len({j.pid for j in finished}) == 6  # each job in a process of its own


# -- the rules of re-queuing, and a clean stop ----------------------------------------------


def test_a_stale_job_is_requeued_until_its_last_attempt_then_abandoned(backend, home,
                                                                        grid_zip):
    first, last = upload(home, grid_zip), upload(home, grid_zip)
    with table.connect(home) as conn, table.transaction(conn):
        for job_id, attempt in ((first.id, 1), (last.id, 3)):
            table.update(conn, job_id, state="running", node="node-b", pid=4242,
                         runner="worker", attempt=attempt, heartbeat_at="2020-01-01T00:00:00Z")
    assert sorted(jobs.reap(home)) == [first.id, last.id]
    again = jobs.get(home, first.id)
    assert (again.state, again.attempt, again.node) == ("queued", 1, None)
    abandoned = jobs.get(home, last.id)
    assert (abandoned.state, abandoned.message) == ("failed", "abandoned")
    assert abandoned.error["code"] == "JOB-ABANDONED"
    assert "stopped sending heartbeats 3 times" in abandoned.error["what"]
    # Which server ran it is the administrator's business (the row, the logs), not a page's.
    assert "node-b" not in str(abandoned.to_dict()) and "4242" not in str(abandoned.to_dict())
    assert jobs.reap(home) == []
    # A worker whose heartbeat is fresh keeps its job, wherever it runs.
    with table.connect(home) as conn, table.transaction(conn):
        table.update(conn, first.id, state="running", node="node-b", pid=4242,
                     runner="worker", attempt=2, heartbeat_at=jobs.utc_now())
    assert jobs.reap(home) == [] and jobs.get(home, first.id).state == "running"


def test_sigterm_hands_the_running_job_back_to_the_queue(backend, home, grid_zip):
    job = upload(home, grid_zip)
    node = start_worker(home, **{PAUSE_ENV: "validate"})
    try:
        paused_at(home, job.id, "validate")
        node.send_signal(signal.SIGTERM)
        out, _ = node.communicate(timeout=TIMEOUT)
    finally:
        node.kill()
        node.wait()
    assert node.returncode == 0 and "handing 1 running job(s) back" in out, out
    back = jobs.get(home, job.id)
    assert (back.state, back.attempt, back.pid) == ("queued", 0, None), back.to_dict()
    assert "handed back to the queue" in back.message
    assert versions_of(home) == []
    assert f"job {job.id} (ingest 678 parcels, attempt 1): done" in run_worker(home)


def test_the_runner_setting_decides_who_starts_jobs():
    assert process.runner({"job_runner": "auto", "database": ""}) == "spawn"
    assert process.runner({"job_runner": "auto", "database": "postgresql://x/y"}) == "external"
    assert process.runner({"job_runner": "spawn", "database": "postgresql://x/y"}) == "spawn"
    assert process.runner({"job_runner": "external", "database": ""}) == "external"
    assert process.node_name({"node_name": " app-2 "}) == "app-2"
    from gisportal.base.errors import UsageError

    with pytest.raises(UsageError):
        process.runner({"job_runner": "threads"})


def test_a_publish_job_taken_over_publishes_the_same_version_once(backend, home, grid_zip):
    upload(home, grid_zip)
    run_worker(home)
    [draft] = versions_of(home)
    job = jobs.submit_publish(home, draft.id, district="678", layer="parcels",
                              actor="planner1")
    # Its node dies with the tiles built, the published pointer not moved yet.
    node = start_worker(home, **{PAUSE_ENV: "publish"})
    try:
        paused_at(home, job.id, "publish")
        node.kill()
        node.wait(timeout=TIMEOUT)
        until("the job process to die", lambda: not process.is_alive(home, job.id))
    finally:
        node.kill()
        node.wait()
    until("the job to be re-queued", lambda: jobs.get(home, job.id).state == "queued",
          timeout=STALE_SECONDS * 6)
    assert f"job {job.id} (publish 678 parcels, attempt 2): done" in run_worker(home)
    done = jobs.get(home, job.id)
    assert (done.state, done.result["version"]) == ("done", draft.id)
    [published] = versions_of(home)
    assert (published.id, published.status) == (draft.id, "published")
    # Publishing it again (a third run, say) is the store's no-op: nothing changes.
    again = jobs.submit_publish(home, draft.id, district="678", layer="parcels",
                                actor="planner1")
    run_worker(home)
    again = jobs.get(home, again.id)
    assert again.state == "done" and again.result["changed"] is False
    assert [(v.id, v.status, v.published_at) for v in versions_of(home)] == [
        (published.id, "published", published.published_at)]


def test_a_cancel_reaches_a_worker_on_another_node_through_the_row(backend, home, grid_zip):
    job = upload(home, grid_zip)
    node = start_worker(home, **{PAUSE_ENV: "validate", "GISPORTAL_NODE_NAME": "node-b"})
    try:
        running = paused_at(home, job.id, "validate")
        assert running.node == "node-b" != process.node_name()
        # This process is another node: no signal of its own can reach the worker.
        cancelled = jobs.cancel(home, job.id)
        assert (cancelled.state, cancelled.message) == ("cancelled", "cancelled")
        assert cancelled.cancel_requested_at is not None
    finally:
        node.send_signal(signal.SIGTERM)
        out, _ = node.communicate(timeout=TIMEOUT)
    assert f"job {job.id} (ingest 678 parcels, attempt 1): cancelled" in out
    assert versions_of(home) == []


def test_web_nodes_can_still_spawn_jobs_on_the_shared_queue(backend, home, grid_zip,
                                                             monkeypatch):
    monkeypatch.setenv("GISPORTAL_JOB_RUNNER", "spawn")
    first, second = upload(home, grid_zip), upload(home, grid_zip)
    done = [jobs.wait(home, j.id, timeout=TIMEOUT) for j in (first, second)]
    assert [(j.state, j.runner, j.attempt) for j in done] == [("done", "spawn", 1)] * 2
    assert sorted(v.meta["job"] for v in versions_of(home)) == [first.id, second.id]


def test_gisportal_worker_runs_jobs_under_their_limits(backend, home, grid_zip,
                                                       monkeypatch):
    """The limits a job was submitted under hold in a ``gisportal worker``'s job
    process as in a spawned one: its own alarm, its own address space."""
    monkeypatch.setenv("GISPORTAL_JOB_TIMEOUT_SECONDS", "2")
    slow = upload(home, grid_zip)  # paused at validate, its 2 s run out
    monkeypatch.setenv("GISPORTAL_JOB_TIMEOUT_SECONDS", "3600")
    monkeypatch.setenv("GISPORTAL_JOB_MEMORY_MB", "250")
    tiny = upload(home, grid_zip)  # 250 MB of address space: not even GDAL loads
    assert (slow.limits["timeout_seconds"], tiny.limits["memory_mb"]) == (2, 250)
    node = start_worker(home, "--once", **{PAUSE_ENV: "validate"})
    out, _ = node.communicate(timeout=TIMEOUT)
    assert node.returncode == 0, out
    slow, tiny = jobs.get(home, slow.id), jobs.get(home, tiny.id)
    assert (slow.state, slow.message, slow.error["code"]) == ("failed", "timed out",
                                                             "JOB-TIMEOUT")
    assert (tiny.state, tiny.message, tiny.error["code"]) == ("failed", "out of memory",
                                                             "OUT-OF-MEMORY")
    assert "limit 250 MB" in tiny.error["what"] and versions_of(home) == []


@pytest.mark.production
def test_an_app_given_its_database_in_its_settings_queues_the_jobs_there(
        home, grid_zip, pg_dsn, fast_passwords, monkeypatch):
    """The database an app is made with (``create_app({"database": ...})``, as ``gisportal
    serve --database`` does) holds the jobs its planners submit, not the database the
    environment names: here the environment names none, so a job going there would land
    in the embedded catalogue of the home."""
    from gisportal.accounts import tokens, users
    from gisportal.store import DataHome, postgres
    from gisportal.web.app import create_app
    from tests.servers import migrate_all

    monkeypatch.delenv("GISPORTAL_DATABASE", raising=False)
    migrate_all(pg_dsn)
    settings = {"home": str(home), "database": pg_dsn, "job_runner": "external"}
    try:
        data_home = DataHome(settings)
        users.add_user(data_home, "lan", "planner", "a long enough password 1",
                       districts=["678"])
        token = tokens.create_token(data_home, "lan", label="script")
        client = create_app(settings).test_client()
        with open(grid_zip, "rb") as fh:
            response = client.post("/api/jobs", headers={"Authorization": f"Bearer {token}"},
                                   content_type="multipart/form-data",
                                   data={"district": "678", "kind": "parcels",
                                         "file": (fh, grid_zip.name)})
        assert response.status_code == 202, response.get_json()
        job_id = response.get_json()["job"]["id"]
        queued = jobs.get(data_home, job_id)
        assert (queued.state, queued.district, queued.actor) == ("queued", "678", "lan")
        assert jobs.list_jobs(home) == []  # the embedded catalogue: nothing
    finally:
        postgres.close_pools()
