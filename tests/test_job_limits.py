"""Jobs under limits (issue 11): memory, wall time, reaping on read, litter of killed workers.

Real worker processes on real uploads: a job given a tiny ``job_memory_mb`` fails with
"ran out of memory" and the next queued job still runs; a job paused by the worker's test
hook past a 2 s ``job_timeout_seconds`` fails with "took longer than"; a worker that no
signal reaches (a real process holding a job's lock) is killed by the reaper once past
its time; a killed worker answers ``failed`` to the very next `jobs.get`, and its scratch
is gone with it.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gisportal import jobs
from gisportal.jobs import limits, process, table
from gisportal.jobs.worker import PAUSE_ENV
from tests.conftest import parcel_grid, write_shapefile_zip
from tests.test_jobs import TIMEOUT, finished, gone, hidden_rows, upload, wait_paused


@pytest.fixture(autouse=True)
def no_stray_workers(home):
    yield
    if (home / "catalogue.sqlite").exists():
        with table.connect(home) as conn:
            rows = conn.execute("SELECT id, pid FROM jobs WHERE state = 'running'").fetchall()
        for job_id, pid in rows:
            if pid and process.is_alive(home, job_id):
                process.signal_group(pid, signal.SIGKILL)


@pytest.fixture
def grid_zip(tmp_path) -> Path:
    return write_shapefile_zip(parcel_grid(), tmp_path / "thua.zip")


def test_settings_name_the_limits_with_their_defaults():
    from gisportal.base.settings import load_settings

    conf = load_settings()
    assert (conf["job_memory_mb"], conf["job_timeout_seconds"]) == (4096, 3600)
    assert conf["upload_retention_days"] == 30


def test_a_job_over_its_memory_limit_fails_and_the_next_queued_job_runs(home, store,
                                                                         grid_zip):
    tiny = upload(home, grid_zip, settings={"job_memory_mb": 250}, start=False)
    normal = upload(home, grid_zip, start=False)
    assert tiny.limits == {"memory_mb": 250, "timeout_seconds": 3600}
    assert normal.limits == {"memory_mb": 4096, "timeout_seconds": 3600}
    assert jobs.dispatch(home) == [tiny.id]  # one slot: the other waits
    tiny = finished(home, tiny.id)
    assert (tiny.state, tiny.message) == ("failed", "out of memory")
    assert tiny.error["code"] == "OUT-OF-MEMORY"
    assert "ran out of memory (limit 250 MB, setting job_memory_mb)" in tiny.error["what"]
    assert "job_memory_mb" in tiny.error["fix"]
    # The failing worker started the next job itself, under that job's own limits (not
    # the 250 MB its own environment held), and it stored its version.
    normal = finished(home, normal.id)
    assert normal.state == "done", normal.error
    assert normal.started_at >= tiny.finished_at
    assert store.version(normal.result["version"]).feature_count == 20
    assert [v.id for v in store.versions()] == [normal.result["version"]]
    assert hidden_rows(home) == []


def test_a_job_past_its_time_fails_and_keeps_nothing_half_written(home, store, grid_zip,
                                                                  monkeypatch):
    monkeypatch.setenv(PAUSE_ENV, "validate")  # stops there until a signal that never comes
    job = upload(home, grid_zip, settings={"job_timeout_seconds": 2})
    job = finished(home, job.id)  # its own alarm ends it (on a loaded machine, maybe
    #                               while it still imports GDAL: the limit holds there too)
    assert (job.state, job.message) == ("failed", "timed out")
    assert job.error["code"] == "JOB-TIMEOUT"
    assert "took longer than 2 s (job_timeout_seconds)" in job.error["what"]
    assert job.error["where"].startswith(f"job {job.id}, ")
    assert "job_timeout_seconds" in job.error["fix"]
    gone(home, job.id)
    assert store.versions() == [] and hidden_rows(home) == []
    assert "took longer than 2 s" in process.log_path(home, job.id).read_text()
    # The slot is free again: the next job runs (and is not paused for ever).
    monkeypatch.delenv(PAUSE_ENV)
    assert finished(home, upload(home, grid_zip).id).state == "done"


def _fake_worker(home: Path, job_id: int, script: str, *, started_ago: float,
                 memory_mb: int = 4096, timeout: int = 1) -> subprocess.Popen:
    """A real process in the place of a job's worker: it holds the job's lock (as the
    dispatcher hands it over), runs in its own session, writes to the job's log, and
    does what `script` says (sleep where no signal handler runs, or abort)."""
    fd = process.hold_lock(home, job_id)
    try:
        with open(process.log_path(home, job_id), "ab") as log:
            proc = subprocess.Popen(["sh", "-c", script], stdout=log, stderr=log,
                                    pass_fds=(fd,), start_new_session=True)
    finally:
        os.close(fd)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - started_ago))
    with table.connect(home) as conn, table.transaction(conn):
        table.update(conn, job_id, state="running", pid=proc.pid, started_at=started,
                     limits={"memory_mb": memory_mb, "timeout_seconds": timeout})
    return proc


def test_the_reaper_kills_a_wedged_worker_past_its_time(home, grid_zip):
    job = upload(home, grid_zip, start=False)
    # Started 40 s ago with a 1 s limit: past the limit and its grace; it ignores
    # SIGTERM and SIGALRM alike, as a worker stuck in C code does.
    proc = _fake_worker(home, job.id, "trap '' TERM ALRM; sleep 600",
                        started_ago=limits.TIMEOUT_GRACE + 10)
    waiting = upload(home, grid_zip, start=False)
    assert process.is_alive(home, job.id)
    job = jobs.get(home, job.id)  # reading the job is enough
    assert (job.state, job.message) == ("failed", "timed out")
    assert job.error["code"] == "JOB-TIMEOUT"
    assert "took longer than 1 s (job_timeout_seconds)" in job.error["what"]
    assert proc.wait(timeout=TIMEOUT) == -signal.SIGKILL
    assert not process.is_alive(home, job.id)
    assert finished(home, waiting.id).state == "done"  # the slot went to the next job


def test_a_worker_within_its_time_is_left_alone(home, grid_zip):
    job = upload(home, grid_zip, start=False)
    proc = _fake_worker(home, job.id, "sleep 600", started_ago=0, timeout=3600)
    try:
        assert jobs.get(home, job.id).state == "running"
        assert jobs.reap(home) == [] and proc.poll() is None
    finally:
        process.signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_worker_that_died_of_a_failed_allocation_is_reported_out_of_memory(home, grid_zip):
    job = upload(home, grid_zip, start=False)
    # What a C++ library does when an allocation over the limit fails: abort, saying so.
    proc = _fake_worker(home, job.id, "echo \"terminate called after throwing an instance "
                        "of 'std::bad_alloc'\" >&2; kill -ABRT $$", started_ago=0,
                        memory_mb=1234, timeout=3600)
    proc.wait(timeout=TIMEOUT)
    job = jobs.get(home, job.id)
    assert (job.state, job.message) == ("failed", "out of memory")
    assert "ran out of memory (limit 1234 MB, setting job_memory_mb)" in job.error["what"]
    assert f"jobs/{job.id}.log" in job.error["where"]


def test_get_reaps_a_killed_worker_and_its_scratch_goes_with_it(home, grid_zip,
                                                                 monkeypatch):
    monkeypatch.setenv(PAUSE_ENV, "read")  # reading: the upload's scratch folder exists
    job = wait_paused(home, upload(home, grid_zip).id, "read")
    # The reader's scratch of this worker, and a tile archive it was writing.
    ours = [p for p in (home / "tmp").iterdir()
            if p.name.startswith(f"gisportal-read-{job.pid}-")]
    assert ours
    tiles = home / "tiles" / "678" / "parcels"
    tiles.mkdir(parents=True)
    tile_tmp = tiles / f".v9.pmtiles.{job.pid}.0a1b2c3d.tmp.tmp.mbtiles"
    tile_tmp.write_bytes(b"half a tile archive")
    os.killpg(job.pid, signal.SIGKILL)
    gone(home, job.id)
    # No listing, no reap by hand: the page polling the job reads it failed at once.
    job = jobs.get(home, job.id)
    assert (job.state, job.message) == ("failed", "interrupted")
    assert job.error["code"] == "JOB-INTERRUPTED"
    assert all(not p.exists() for p in ours) and not tile_tmp.exists()


def test_the_command_line_runs_under_the_memory_limit(home, grid_zip):
    """`validate` in a fresh process with a tiny limit: one line, exit 2, no traceback."""
    env = {**os.environ, "GISPORTAL_HOME": str(home), "GISPORTAL_JOB_MEMORY_MB": "250"}
    out = subprocess.run([sys.executable, "-m", "gisportal", "validate", str(grid_zip),
                          "--kind", "parcels"], env=env, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 2, out.stderr
    # (Native libraries may print a line of their own as an allocation fails, e.g.
    # jemalloc's "background thread creation failed": the error is ours, on one line.)
    ours = [line for line in out.stderr.splitlines() if line.startswith("gisportal:")]
    assert len(ours) == 1 and "Traceback" not in out.stderr
    assert "ran out of memory (limit 250 MB, setting job_memory_mb)" in ours[0]


def test_a_command_called_in_process_leaves_the_callers_limits_alone(home, grid_zip):
    """A test or script calling `cli` may hold more address space than a job may: the
    limit is for the command's own process only, and memory errors are still one line."""
    from click.testing import CliRunner

    from gisportal.cli.main import cli

    before = resource.getrlimit(resource.RLIMIT_AS)
    out = CliRunner().invoke(cli, ["--home", str(home), "validate", str(grid_zip),
                                   "--kind", "parcels"],
                             env={"GISPORTAL_JOB_MEMORY_MB": "250"})
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["summary"]["features"] == 20
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_a_failed_allocation_without_memory_error_is_still_out_of_memory(home, grid_zip):
    """Under the limit, a C extension whose allocation failed may leave Python a bare
    ``SystemError`` ("error return without exception set"): the command says it ran out
    of memory (exit 2), not that gisportal has a bug, and its process ends cleanly."""
    script = (
        "import sys\n"
        "import gisportal.services.ingest as ingest\n"
        "def check_file(*a, **k):\n"
        "    raise SystemError('error return without exception set')\n"
        "ingest.check_file = check_file\n"
        "from gisportal.cli.main import main\n"
        f"sys.argv = ['gisportal', 'validate', {str(grid_zip)!r}, '--kind', 'parcels']\n"
        "main()\n")
    env = {**os.environ, "GISPORTAL_HOME": str(home), "GISPORTAL_JOB_MEMORY_MB": "2000"}
    env.pop("GISPORTAL_DEBUG", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=TIMEOUT)
    assert out.returncode == 2, out.stderr
    ours = [line for line in out.stderr.splitlines() if line.startswith("gisportal:")]
    assert len(ours) == 1 and "ran out of memory (limit 2000 MB" in ours[0], out.stderr
    # Without a limit of its own the same failure is a bug, reported as one (exit 3).
    env["GISPORTAL_JOB_MEMORY_MB"] = "0"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=TIMEOUT)
    assert out.returncode == 3 and "internal error" in out.stderr, out.stderr
