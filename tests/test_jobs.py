"""Background jobs run for real: worker processes, real zipped shapefiles, real signals.

A job is submitted as the web layer will (a file object and the planner's file name),
its worker process runs the real pipeline, and the tests read the job row, the store
and the report files. Exact points in a worker's life (cancel while validating, SIGKILL
just before the published pointer moves, two workers at once) are reached with the
worker's test hook ``GISPORTAL_JOBS_PAUSE_AT``: the worker writes the stage, stops, and
goes on at SIGUSR1 — no sleeps, no timing guesses.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import time
import zipfile
from contextlib import closing
from pathlib import Path

import pytest

from gisportal import jobs
from gisportal.base.errors import CRSError, EncodingError, InputError, NotFoundError, UsageError
from gisportal.base.files import safe_file_name
from gisportal.base.text import human_size, nfc
from gisportal.jobs import process
from gisportal.jobs.worker import PAUSE_ENV
from gisportal.services import lookup as lk
from tests.conftest import bow_tie_file, parcel_grid, write_shapefile_zip

PAUSED = "paused (test hook)"
#: Generous bound for a worker to reach a point: it starts Python and imports GDAL.
TIMEOUT = 120.0


# -- helpers ---------------------------------------------------------------------------------


def upload(home: Path, path: Path, *, name: str | None = None, layer: str = "parcels",
           **kw) -> jobs.Job:
    with open(path, "rb") as fh:
        return jobs.submit_upload(home, fh, name or path.name, district="678", layer=layer,
                                  actor="planner1", **kw)


def wait_paused(home: Path, job_id: int, stage: str) -> jobs.Job:
    """The job once its worker has stopped at `stage` (the hook writes it first)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        job = jobs.get(home, job_id)
        if job.stage == stage and job.message == PAUSED:
            return job
        assert not job.finished, job.to_dict()
        time.sleep(0.02)
    pytest.fail(f"job {job_id} never paused at {stage}: {jobs.get(home, job_id)}")


def resume(job: jobs.Job) -> None:
    os.kill(job.pid, signal.SIGUSR1)


def finished(home: Path, job_id: int) -> jobs.Job:
    job = jobs.wait(home, job_id, timeout=TIMEOUT, poll=0.05)
    assert job.finished, job.to_dict()
    return job


def hidden_rows(home: Path) -> list[tuple[int, str]]:
    with closing(sqlite3.connect(home / "catalogue.sqlite", timeout=30)) as conn:
        return conn.execute("SELECT id, status FROM versions WHERE status = 'writing'").fetchall()


def gone(home: Path, job_id: int) -> None:
    """Wait for the worker process to have exited (its lock released)."""
    deadline = time.monotonic() + TIMEOUT
    while process.is_alive(home, job_id):
        assert time.monotonic() < deadline, f"worker of job {job_id} still alive"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_stray_workers(home):
    """After each test, stop any worker it left running (a failed test may leave one
    waiting at the test hook for ever)."""
    yield
    if (home / "catalogue.sqlite").exists():
        for job in jobs.list_jobs(home, state="running"):
            if process.is_alive(home, job.id):
                process.signal_group(job.pid, signal.SIGKILL)


@pytest.fixture
def zips(tmp_path):
    """Zipped shapefiles: the default 4×5 grid, and a grid whose uses are all LUC."""
    v1 = write_shapefile_zip(parcel_grid(), tmp_path / "thua_v1.zip")
    changed = parcel_grid()
    changed["LoaiDat"] = "LUC"
    v2 = write_shapefile_zip(changed, tmp_path / "thua_v2.zip")
    return v1, v2


@pytest.fixture
def pause(monkeypatch):
    """Make workers started from now on stop at the given stages."""
    def at(*stages: str) -> None:
        monkeypatch.setenv(PAUSE_ENV, ",".join(stages))
    return at


# -- a job from upload to report --------------------------------------------------------------


def test_ingest_job_stores_the_version_and_its_reports(home, store, zips, pause):
    pause("read", "normalise", "validate", "store", "report")
    job = upload(home, zips[0], name=r"C:\Users\lan\Desktop\Thửa đất Đức Trọng.zip")
    assert job.params["upload"] == "uploads/1/Thửa đất Đức Trọng.zip"
    assert (home / job.params["upload"]).read_bytes() == zips[0].read_bytes()
    # The worker passes every stage in order, and the row says so while it is there.
    percents = []
    for stage in ("read", "normalise", "validate", "store", "report"):
        at = wait_paused(home, job.id, stage)
        assert at.state == "running" and at.pid is not None
        percents.append(at.percent)
        resume(at)
    assert percents == sorted(percents) and len(set(percents)) == 5, percents
    job = finished(home, job.id)
    assert (job.state, job.stage, job.percent, job.error) == ("done", "done", 100, None)
    v = store.version(job.result["version"])
    assert (v.district, v.kind, v.status, v.feature_count) == ("678", "parcels", "draft", 20)
    assert v.source_name == "Thửa đất Đức Trọng.zip!thua.shp" and v.created_by == "planner1"
    assert v.meta["job"] == job.id
    assert job.result["source"]["sha256"] == v.source_sha256
    assert job.result["summary"]["features"] == 20 and job.result["summary"]["errors"] == 0
    # The three reports, next to the upload, served through report_file.
    report = json.loads(jobs.report_file(home, job, "json").read_text(encoding="utf-8"))
    assert report["summary"] == job.result["summary"]
    geojson = json.loads(jobs.report_file(home, job.id, "geojson").read_text(encoding="utf-8"))
    assert geojson["type"] == "FeatureCollection"
    assert len(geojson["features"]) == len(report["findings"])
    html = jobs.report_file(home, job, "html").read_text(encoding="utf-8")
    assert "<html" in html.lower()
    assert jobs.report_file(home, job, "html").parent == home / "uploads" / str(job.id)
    # The worker is gone and its lock file with it; the log says which job it ran.
    gone(home, job.id)
    assert not process.lock_path(home, job.id).exists()
    assert json.loads(process.log_path(home, job.id).read_text().splitlines()[0])["job"] == job.id


def test_ingest_with_publish_publishes_a_clean_cadastre(home, store, zips):
    job = finished(home, upload(home, zips[0], publish=True).id)
    assert job.state == "done", job.error
    assert job.result["published"] is True and job.result["status"] == "published"
    assert store.published("678", "parcels").id == job.result["version"]


def test_check_job_reports_and_stores_nothing(home, store, zips):
    # An upload named like a report file is renamed, not overwritten by its report.
    job = finished(home, upload(home, zips[0], name="report.html", kind="check").id)
    assert job.params["upload"] == f"uploads/{job.id}/upload-report.html"
    assert (home / job.params["upload"]).read_bytes() == zips[0].read_bytes()
    assert job.state == "done" and "version" not in job.result
    assert job.result["summary"]["features"] == 20
    assert jobs.report_file(home, job, "json").is_file()
    assert store.versions() == []
    # The operator's listing names the node that ran it (the host name by default).
    import socket

    from click.testing import CliRunner

    from gisportal.cli.main import cli

    listed = CliRunner().invoke(cli, ["--home", str(home), "jobs", "list"]).output
    assert f"{socket.gethostname()}#1" in listed.splitlines()[0]


def test_broken_file_fails_with_its_message_and_stores_nothing(home, store, tmp_path):
    broken = tmp_path / "thieu_shp.zip"
    with zipfile.ZipFile(broken, "w") as zf:  # the .dbf without its .shp
        zf.writestr("thua.dbf", b"\x03" + b"\0" * 40)
    job = finished(home, upload(home, broken).id)
    assert job.state == "failed" and job.result is None
    assert job.error["code"] == "SHP-PART-MISSING"
    assert job.error["what"] == "the zip holds thua.dbf but no thua.shp"
    assert job.error["where"] == "thieu_shp.zip"
    assert job.error["fix"].startswith("Add thua.shp and thua.shx to the zip")
    assert job.message == job.error["what"]
    assert store.versions() == [] and hidden_rows(home) == []


@pytest.mark.parametrize("content,code", [
    (b"", "FILE-EMPTY"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "FILE-NOT-GIS"),
])
def test_an_upload_that_is_not_gis_is_refused_before_any_job(home, content, code):
    with pytest.raises(InputError) as err:
        jobs.submit_upload(home, io.BytesIO(content), "thua.zip", district="678",
                           layer="parcels", actor="planner1")
    assert err.value.code == code and err.value.where == "thua.zip"
    assert jobs.list_jobs(home) == []
    assert list((home / "uploads").iterdir()) == []  # nothing half-saved is left


def test_an_oversized_upload_is_refused_while_streaming(home, zips):
    size = zips[0].stat().st_size
    with pytest.raises(InputError) as err:
        upload(home, zips[0], settings={"max_upload_bytes": size - 1})
    assert err.value.code == "FILE-TOO-BIG"
    assert err.value.what == f"the upload is over the {human_size(size - 1)} limit"
    assert "GISPORTAL_MAX_UPLOAD_BYTES" in err.value.fix
    assert jobs.list_jobs(home) == [] and list((home / "uploads").iterdir()) == []
    # At exactly the limit it is accepted.
    assert upload(home, zips[0], settings={"max_upload_bytes": size}, start=False).id == 1


def test_bad_parameters_are_refused_at_submit(home, zips):
    with pytest.raises(UsageError) as err:
        jobs.submit_upload(home, io.BytesIO(b"x"), "a.zip", district="999", layer="parcels",
                           actor="p")
    assert "678 Đức Trọng" in err.value.fix
    with pytest.raises(UsageError, match="unknown layer kind"):
        upload(home, zips[0], layer="roads")
    with pytest.raises(CRSError):
        upload(home, zips[0], crs="EPSG:99999999")
    with pytest.raises(EncodingError):
        upload(home, zips[0], encoding="latin9")
    with pytest.raises(UsageError, match="needs the user"):
        jobs.submit_upload(home, io.BytesIO(b"x"), "a.zip", district="678", layer="parcels",
                           actor=" ")
    with pytest.raises(UsageError, match="not 'publish'"):
        upload(home, zips[0], kind="publish")
    assert jobs.list_jobs(home) == []
    with pytest.raises(NotFoundError):
        jobs.get(home, 42)


def test_overrides_reach_the_pipeline(home, store, tmp_path):
    gdf = parcel_grid().rename(columns={"SoTo": "TO_SO_X", "SoThua": "THUA_SO_X"})
    path = write_shapefile_zip(gdf, tmp_path / "odd.zip", prj=False)
    job = finished(home, upload(home, path, crs="EPSG:5899", encoding="UTF8",
                                fields={"sheet": "TO_SO_X", "parcel": "THUA_SO_X"}).id)
    assert job.state == "done", job.error
    assert job.params["encoding"] == "utf-8"
    v = store.version(job.result["version"])
    assert v.meta["read"]["fields"]["mapped"]["sheet"] == "TO_SO_X"
    assert sorted(store.read(v.id)["sheet"].unique()) == [1, 2]


def test_repair_job_ingests_the_same_upload_repaired(home, store, tmp_path):
    first = finished(home, upload(home, bow_tie_file(tmp_path, row=1)).id)
    assert first.state == "done" and first.result["summary"]["errors"] > 0
    assert store.version(first.result["version"]).has_errors
    job = jobs.submit_repair(home, first.id, actor="planner2")
    assert job.params["upload"] == first.params["upload"] and job.params["repair_of"] == first.id
    job = finished(home, job.id)
    assert job.state == "done", job.error
    v = store.version(job.result["version"])
    assert not v.has_errors and v.meta["repair"]["changes"] >= 1 and v.created_by == "planner2"
    assert jobs.report_file(home, job, "json").parent.name == str(job.id)


# -- cancel, crash, concurrency ---------------------------------------------------------------


def test_cancel_a_running_job_leaves_the_store_as_it_was(home, store, zips, pause):
    published = finished(home, upload(home, zips[0], publish=True).id)
    v1 = published.result["version"]
    pause("validate")
    job = wait_paused(home, upload(home, zips[1]).id, "validate")
    cancelled = jobs.cancel(home, job.id)
    assert (cancelled.state, cancelled.message) == ("cancelled", "cancelled")
    assert cancelled.result is None and cancelled.error is None
    assert cancelled.cancel_requested_at is not None and cancelled.finished_at is not None
    assert not process.is_alive(home, job.id)
    # No draft appeared, nothing half-written, and the published version is untouched.
    assert [v.id for v in store.versions("678", "parcels")] == [v1]
    assert store.published("678", "parcels").id == v1 and hidden_rows(home) == []
    assert jobs.cancel(home, job.id) == cancelled  # cancelling again changes nothing


def test_cancel_after_the_version_was_stored_says_so(home, store, zips, pause):
    pause("report")
    job = wait_paused(home, upload(home, zips[0], publish=True).id, "report")
    cancelled = jobs.cancel(home, job.id)
    assert cancelled.state == "cancelled"
    v = cancelled.result["version"]
    assert cancelled.result["published"] is False and f"version {v}" in cancelled.result["note"]
    assert store.version(v).status == "draft" and store.published("678", "parcels") is None


def test_sigkill_mid_publish_keeps_the_published_version(home, store, zips, pause):
    v1 = finished(home, upload(home, zips[0], publish=True).id).result["version"]
    v2 = finished(home, upload(home, zips[1]).id).result["version"]
    pause("publish")  # tiles built, the pointer not moved yet
    job = wait_paused(home, jobs.submit_publish(home, v2, district="678", layer="parcels",
                                                actor="planner1").id, "publish")
    os.killpg(job.pid, signal.SIGKILL)
    gone(home, job.id)
    assert jobs.reap(home) == [job.id]
    job = jobs.get(home, job.id)
    assert (job.state, job.message) == ("failed", "interrupted")
    assert job.error["code"] == "JOB-INTERRUPTED" and "interrupted" in job.error["what"]
    assert f"jobs/{job.id}.log" in job.error["where"]
    store.recover()
    assert store.published("678", "parcels").id == v1
    assert store.version(v2).status == "draft" and hidden_rows(home) == []
    answer = lk.lookup_key(store, "678", 1, 1, "24778")
    assert answer["parcel"]["version"] == v1 and answer["parcel"]["current_use"] == "ONT"
    assert jobs.reap(home) == []  # reaping twice finds nothing more
    # The audit log knows each outcome, in the name of who asked, without anyone
    # looking at the jobs again: written by the worker, or by the reaper for the dead.
    from gisportal.accounts import audit

    outcomes = [(e.action, e.actor, e.version, e.detail["job"])
                for e in reversed(audit.events(home, action="job.").events)]
    assert outcomes[-1] == ("job.failed", "planner1", v2, job.id)
    assert [o[0] for o in outcomes] == ["job.done", "job.done", "job.failed"]


def test_two_ingests_to_one_district_run_at_once(home, store, zips, pause):
    pause("store")  # both stop just before writing: proof that both run at the same time
    settings = {"job_workers": 2}
    a = upload(home, zips[0], settings=settings)
    b = upload(home, zips[1], settings=settings)
    paused = [wait_paused(home, a.id, "store"), wait_paused(home, b.id, "store")]
    assert paused[0].pid != paused[1].pid
    for job in paused:
        resume(job)
    a, b = finished(home, a.id), finished(home, b.id)
    assert a.state == b.state == "done", (a.error, b.error)
    va, vb = store.version(a.result["version"]), store.version(b.result["version"])
    assert va.id != vb.id and va.status == vb.status == "draft"
    assert list(store.read(va.id)["land_use"][:3]) == ["ONT", "CLN", "ONT+CLN"]
    assert set(store.read(vb.id)["land_use"]) == {"LUC"}
    assert len(store.read(va.id)) == len(store.read(vb.id)) == 20
    assert hidden_rows(home) == []


def test_queued_jobs_wait_for_a_free_worker_then_start_by_themselves(home, store, zips, pause):
    pause("normalise")
    first = wait_paused(home, upload(home, zips[0]).id, "normalise")
    second, third = upload(home, zips[1]), upload(home, zips[1])
    assert jobs.get(home, second.id).state == jobs.get(home, third.id).state == "queued"
    assert jobs.dispatch(home) == []  # the only slot is taken
    cancelled = jobs.cancel(home, third.id)  # a queued job is cancelled at once
    assert (cancelled.state, cancelled.message, cancelled.pid) == (
        "cancelled", "cancelled before it started", None)
    resume(first)
    # The first worker, as it finishes, starts the second.
    resume(wait_paused(home, second.id, "normalise"))
    assert finished(home, first.id).state == finished(home, second.id).state == "done"
    assert jobs.get(home, third.id).state == "cancelled"
    assert len(store.versions()) == 2


def test_list_jobs_filters_and_reaps(home, zips):
    a = upload(home, zips[0], start=False)
    b = jobs.submit_upload(home, io.BytesIO(zips[0].read_bytes()), "plan.zip",
                           district="672", layer="plan", actor="planner2", start=False)
    assert [j.id for j in jobs.list_jobs(home)] == [b.id, a.id]
    assert [j.id for j in jobs.list_jobs(home, "678")] == [a.id]
    assert [j.id for j in jobs.list_jobs(home, layer="plan")] == [b.id]
    assert [j.id for j in jobs.list_jobs(home, actor="planner2", state="queued")] == [b.id]
    assert jobs.list_jobs(home, state=["done", "failed"]) == []
    assert jobs.list is jobs.list_jobs
    with pytest.raises(UsageError):
        jobs.list_jobs(home, state="sleeping")


def test_report_file_serves_only_the_jobs_own_reports(home, zips):
    job = upload(home, zips[0], start=False)
    with pytest.raises(NotFoundError) as err:
        jobs.report_file(home, job, "json")
    assert err.value.code == "REPORT-MISSING"
    with pytest.raises(NotFoundError):
        jobs.report_file(home, job, "xml")
    from gisportal.jobs import table

    with table.connect(home) as conn:  # a row pointing elsewhere is refused
        table.update(conn, job.id, result={"reports": {"json": "catalogue.sqlite"}})
    with pytest.raises(NotFoundError):
        jobs.report_file(home, job.id, "json")


@pytest.mark.parametrize("given,safe", [
    (r"C:\Users\lan\Desktop\thửa đất.zip", "thửa đất.zip"),
    ("../../etc/passwd", "passwd"),
    ("..", "upload"),
    ("", "upload"),
    (None, "upload"),
    (".hidden.zip", "hidden.zip"),
    ("a\x00b\nc|d.gpkg", "abc_d.gpkg"),
    ("Thu\u031b\u0309a  \u0111a\u0302\u0301t.shp", "Thửa đất.shp"),
])
def test_safe_file_names_keep_vietnamese(given, safe):
    assert safe_file_name(given) == nfc(safe)


def test_safe_file_names_are_shortened_with_their_extension():
    name = safe_file_name("Đ" * 300 + ".zip")
    assert name.endswith(".zip") and len(name.encode("utf-8")) <= 150


def test_publish_and_rollback_jobs_follow_the_workflow_rules(home, store):
    from tests.test_workflow import add, approve

    plan = add(store, "plan", "ODT")
    refused = finished(home, jobs.submit_publish(home, plan.id, district="678", layer="plan",
                                                 actor="planner1").id)
    assert refused.state == "failed" and refused.error["code"] == "PLAN-NO-DECISION"
    assert store.published("678", "plan") is None
    approve(store, plan)
    v1 = finished(home, jobs.submit_publish(home, plan.id, district="678", layer="plan",
                                            actor="planner1").id)
    assert v1.state == "done" and v1.result["changes"]["counts"] == {"added": 3}
    assert {k: v for k, v in v1.result.items() if k != "changes"} == {
        "version": plan.id, "previous": None, "changed": True, "district": "678",
        "kind": "plan", "consultation": False,
        "published_at": store.version(plan.id).published_at}
    second = approve(store, add(store, "plan", "CLN"), number="999/QĐ-UBND")
    assert finished(home, jobs.submit_publish(home, second.id, district="678", layer="plan",
                                              actor="planner1").id).result["previous"] == plan.id
    back = finished(home, jobs.submit_rollback(home, plan.id, district="678", layer="plan",
                                               actor="planner2").id)
    assert back.state == "done" and (back.result["version"], back.result["previous"]) == (
        plan.id, second.id)
    assert store.published("678", "plan").published_by == "planner2"
    wrong = finished(home, jobs.submit_publish(home, plan.id, district="678", layer="parcels",
                                               actor="planner1").id)
    assert wrong.error["code"] == "VERSION-OTHER-LAYER"
    with pytest.raises(UsageError):
        jobs.submit_publish(home, "v2", district="678", layer="plan", actor="planner1")


def test_a_bug_in_a_worker_is_recorded_not_hidden(home):
    # A job row without its upload (the low-level submit checks no params): the worker
    # meets a KeyError, which is a bug and is reported as one.
    job = finished(home, jobs.submit(home, "ingest", district="678", layer="parcels",
                                     actor="planner1").id)
    assert (job.state, job.message) == ("failed", "internal error")
    assert job.error["code"] == "JOB-BUG"
    # Planners read a reference, never the server's paths or traceback lines...
    ref = job.error["reference"]
    assert re.fullmatch(rf"JOB-{job.id}-[0-9a-f]{{8}}", ref)
    assert f"internal error, reference {ref}" in job.error["what"]
    assert "job log" in job.error["fix"] and "traceback" not in job.error
    shown = json.dumps(job.error)
    assert str(home) not in shown and "worker.py" not in shown and "KeyError" not in shown
    # ...and the administrator finds the traceback in the job's log under that reference.
    log = process.log_path(home, job.id).read_text()
    assert f"--- {ref}: internal error in job {job.id}" in log
    assert "Traceback" in log.split(ref, 1)[1] and "KeyError: 'upload'" in log


def test_app_start_reaps_interrupted_jobs_and_starts_queued_ones(home, store, zips):
    from gisportal.jobs import table
    from gisportal.web.app import create_app

    lost = upload(home, zips[0], start=False)
    with table.connect(home) as conn:  # as a reboot leaves it: running, nobody holding its lock
        table.update(conn, lost.id, state="running", pid=2**22 + 1)
    waiting = upload(home, zips[1], start=False)
    create_app({"home": str(home)})
    assert jobs.get(home, lost.id).error["code"] == "JOB-INTERRUPTED"
    assert finished(home, waiting.id).state == "done"


def test_cli_lists_and_cancels_jobs(home, zips):
    from click.testing import CliRunner

    from gisportal.cli.main import cli

    job = upload(home, zips[0], start=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["--home", str(home), "jobs", "list"], catch_exceptions=False)
    assert out.exit_code == 0 and f"{job.id}  ingest    678  parcels   queued" in out.output
    out = runner.invoke(cli, ["--home", str(home), "jobs", "cancel", str(job.id)],
                        catch_exceptions=False)
    assert out.output == f"job {job.id}: cancelled (cancelled before it started)\n"
    out = runner.invoke(cli, ["--home", str(home), "jobs", "list", "--json"])
    assert json.loads(out.output)[0]["state"] == "cancelled"
    out = runner.invoke(cli, ["--home", str(home), "jobs", "cancel", "99"])
    assert out.exit_code == 1 and "there is no job 99" in out.output
