"""Uploads through the web and the JSON API: scripts with tokens, cancelling, the size
limit, hostile files, two uploads at once, a publish killed half-way.

Every upload is a real multipart request to the app and every job a real worker
process; the store is then read to prove that what residents see did not change.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import zipfile
from pathlib import Path

import pytest

from gisportal import jobs
from gisportal.accounts import audit, tokens
from gisportal.base.crs import to_lonlat
from gisportal.jobs.worker import PAUSE_ENV
from gisportal.store import open_store
from tests import test_planner_pages as pages
from tests.conftest import parcel_grid, write_shapefile_zip
from tests.test_bad_input import renamed_exe, zip_bomb, zip_slip
from tests.test_decisions import PDF
from tests.test_jobs import gone, resume, wait_paused
from tests.test_planner_pages import (
    LAM_HA,
    USES_V1,
    USES_V2,
    XY,
    client_for,
    finished,
    job_id_of,
    lookup_planned,
    plan_file,
    post,
    text_of,
    upload,
)


@pytest.fixture(scope="module")
def base_home(tmp_path_factory, module_backend):
    """The seeded Lâm Hà home of the page tests (`pages.build_home`), once per module: on
    the embedded backends, and once more (``production``) in the module's PostgreSQL
    database and S3 bucket (`tests.conftest.module_backend`), copied per test by `lam_ha`."""
    root = tmp_path_factory.mktemp("planner-base")
    with pytest.MonkeyPatch.context() as mp:
        from argon2 import PasswordHasher

        from gisportal.accounts import users

        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(users, "_hasher", lambda: cheap)
        ids = pages.build_home(root / "home")
    return root / "home", ids


@pytest.fixture
def lam_ha(base_home, module_backend, request, tmp_path, fast_passwords, monkeypatch):
    """A fresh copy of the seeded home, as ``$GISPORTAL_HOME``; its ids. In production
    mode its database is a copy of the seeded one (``CREATE DATABASE … TEMPLATE``) and its
    bucket a copy of the seeded bucket, and the web node spawns the job workers itself
    (``job_runner=spawn``: the tests have no ``gisportal worker`` running)."""
    src, ids = base_home
    home = tmp_path / "home"
    shutil.copytree(src, home)
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    if module_backend == "production":
        _copy_production_seed(request, monkeypatch)
        monkeypatch.setenv("GISPORTAL_JOB_RUNNER", "spawn")
    try:
        yield home, ids
    finally:
        if module_backend == "production":
            _stop_production_workers(home)
        else:
            pages.stop_workers(home)


def _copy_production_seed(request, monkeypatch) -> None:
    """Point the environment at copies of the module's seeded database and bucket, made
    for this test (removed after it)."""
    from psycopg import sql

    from gisportal.store import postgres
    from tests.servers import _unique, database_name

    pg, s3 = request.getfixturevalue("pg_server"), request.getfixturevalue("s3_server")
    seed_dsn = os.environ["GISPORTAL_DATABASE"]
    seed_bucket = os.environ["GISPORTAL_FILES"].removeprefix("s3://").split("/", 1)[0]
    postgres.close_pools()  # a template database must have no other session
    name, bucket = _unique("test_"), _unique("test-")
    with pg.connect("postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(database_name(seed_dsn))))
    request.addfinalizer(lambda: pg.drop_database(name))
    client = s3.client()
    client.create_bucket(Bucket=bucket)
    request.addfinalizer(lambda: s3.empty_and_delete_bucket(bucket))
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=seed_bucket):
        for obj in page.get("Contents", []):
            client.copy_object(Bucket=bucket, Key=obj["Key"],
                               CopySource={"Bucket": seed_bucket, "Key": obj["Key"]})
    monkeypatch.setenv("GISPORTAL_DATABASE", pg.dsn_for(name))
    monkeypatch.setenv("GISPORTAL_FILES", f"s3://{bucket}/gp")


def _stop_production_workers(home: Path) -> None:
    """As `pages.stop_workers`, on the jobs table in PostgreSQL; then this process's
    connections to the test's database are closed, before it is dropped."""
    from gisportal.jobs import process
    from gisportal.store import postgres

    try:
        for job in jobs.list_jobs(home, state="running"):
            if job.pid and process.is_alive(home, job.id):
                process.signal_group(job.pid, signal.SIGKILL)
    finally:
        postgres.close_pools()


def bearer(home: Path, name: str = "lan") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.create_token(home, name, label='script')}"}


def api_upload(client, headers, path: Path, *, district: str = LAM_HA, kind: str = "plan",
               **fields):
    with open(path, "rb") as fh:
        return client.post("/api/jobs", headers=headers, content_type="multipart/form-data",
                           data={"district": district, "kind": kind,
                                 "file": (fh, path.name), **fields})


def layer_state(home: Path) -> list[tuple[int, str, str]]:
    """Every version of the store: (id, kind, status)."""
    with open_store(home, crs="EPSG:5899") as store:
        return [(v.id, v.kind, v.status) for v in store.versions()]


def broken_shx(folder: Path) -> Path:
    """A zipped Shapefile whose .shx index is cut off after 60 bytes."""
    good = write_shapefile_zip(parcel_grid(2, 2), folder / "parts.zip")
    with zipfile.ZipFile(good) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    parts["thua.shx"] = parts["thua.shx"][:60]
    path = folder / "shx_hong.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return path


# --------------------------------------------------------------------------- scripts


def test_a_script_uploads_with_its_token_and_polls_the_job(lam_ha, tmp_path):
    home, ids = lam_ha
    c = client_for(home)
    auth = bearer(home)
    path = plan_file(tmp_path, USES_V2, name="qh.gpkg")
    r = api_upload(c, auth, path, crs="EPSG:5899", encoding="UTF8", field="zone_id=MaVung")
    assert r.status_code == 202, r.json
    job = r.json["job"]
    assert r.headers["Location"] == r.json["url"] == f"/api/jobs/{job['id']}"
    assert r.json["page"] == f"/planner/jobs/{job['id']}"
    assert (job["district"], job["layer"], job["kind"], job["actor"]) == (
        LAM_HA, "plan", "ingest", "lan")
    assert job["params"]["crs"] == "EPSG:5899" and job["params"]["encoding"] == "utf-8"
    assert job["params"]["fields"] == {"zone_id": "MaVung"}
    assert job["state"] in ("queued", "running")
    done = finished(home, job["id"])
    polled = c.get(r.json["url"], headers=auth).json["job"]
    assert (polled["state"], polled["stage"], polled["percent"]) == ("done", "done", 100)
    assert polled["result"]["version"] == done.result["version"]
    assert polled["result"]["summary"]["errors"] == 0 and polled["error"] is None
    listed = c.get("/api/jobs?district=676", headers=auth).json["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert c.get("/api/jobs", headers=auth).json["jobs"][0]["id"] == job["id"]
    # The upload is in the audit log under the token's user.
    event = audit.events(home, action="upload").events[0]
    assert (event.actor, event.district, event.kind, event.detail["job"]) == (
        "lan", LAM_HA, "plan", job["id"])
    assert event.detail["file"] == "qh.gpkg" and event.ip is not None
    # Other districts, bad tokens, missing fields.
    other = bearer(home, "mai")
    r = api_upload(c, other, path)
    assert r.status_code == 403 and r.json["error"]["code"] == "FORBIDDEN"
    assert c.get(f"/api/jobs/{job['id']}", headers=other).status_code == 403
    assert c.get("/api/jobs", headers=other).json["jobs"] == []
    r = api_upload(c, {"Authorization": "Bearer gp_" + "x" * 43}, path)
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN-INVALID"
    r = c.post("/api/jobs", headers=auth, data={"district": LAM_HA, "kind": "plan"})
    assert r.status_code == 400 and r.json["error"]["code"] == "UPLOAD-NO-FILE"
    r = api_upload(c, auth, path, kind="roads")
    assert r.status_code == 400 and r.json["error"]["code"] == "UPLOAD-KIND"
    r = api_upload(c, auth, path, crs="EPSG:99999999")
    assert r.status_code == 400 and r.json["error"]["code"].startswith("CRS")
    r = api_upload(c, auth, path, field="zone_id")
    assert r.status_code == 400 and r.json["error"]["code"] == "UPLOAD-FIELD"
    assert len(jobs.list_jobs(home)) == 1


def test_cancel_a_running_upload_through_the_api(lam_ha, tmp_path, monkeypatch):
    home, ids = lam_ha
    before = layer_state(home)
    c = client_for(home)
    auth = bearer(home)
    monkeypatch.setenv(PAUSE_ENV, "validate")
    r = api_upload(c, auth, plan_file(tmp_path, USES_V2))
    job = wait_paused(home, r.json["job"]["id"], "validate")
    assert c.get(f"/api/jobs/{job.id}", headers=auth).json["job"]["stage"] == "validate"
    assert c.post(f"/api/jobs/{job.id}/cancel", headers=bearer(home, "mai")).status_code == 403
    r = c.post(f"/api/jobs/{job.id}/cancel", headers=auth)
    assert r.status_code == 200 and r.json["job"]["state"] == "cancelled"
    assert layer_state(home) == before
    events = {e.action: e for e in audit.events(home, district=LAM_HA).events}
    assert events["job.cancel"].actor == "lan" and events["job.cancel"].detail["job"] == job.id
    assert events["job.cancelled"].detail["job"] == job.id
    # Cancelling a finished job changes nothing and records nothing more.
    again = c.post(f"/api/jobs/{job.id}/cancel", headers=auth).json["job"]
    assert again["state"] == "cancelled"
    assert [e.action for e in audit.events(home, action="job.cancel").events] == ["job.cancel"]


# --------------------------------------------------------------------------- size limit


def test_an_upload_over_the_limit_is_a_413_with_a_clear_message(lam_ha):
    home, _ = lam_ha
    limit = 4096
    c = client_for(home, "lan", max_upload_bytes=limit)
    auth = bearer(home)
    before = layer_state(home)
    for size in (limit + 2000, limit + 3 * 1024**2):  # saved and refused; refused at once
        content = b"PK\x03\x04" + os.urandom(size)
        r = c.post("/api/jobs", headers=auth, content_type="multipart/form-data",
                   data={"district": LAM_HA, "kind": "plan",
                         "file": (io.BytesIO(content), "to_qua.zip")})
        assert r.status_code == 413, (size, r.json)
        err = r.json["error"]
        assert err["code"] == "FILE-TOO-BIG" and err["what"] == \
            "the upload is over the 4.0 KiB limit", err
        assert "GISPORTAL_MAX_UPLOAD_BYTES" in err["fix"]
        r = post(c, "/planner/676/upload", "/planner/676/upload", kind="plan",
                 file=(io.BytesIO(content), "to_qua.zip"))
        assert r.status_code == 413
        assert "the upload is over the 4.0 KiB limit" in text_of(r)
        assert "GISPORTAL_MAX_UPLOAD_BYTES" in text_of(r)
    # Within the request limit, a text field over Flask's form-memory limit is named so.
    r = c.post("/api/jobs", headers=auth, content_type="multipart/form-data",
               data={"district": LAM_HA, "kind": "plan", "crs": "x" * 600_000,
                     "file": (io.BytesIO(b"PK\x03\x04"), "a.zip")})
    assert r.status_code == 413 and r.json["error"]["code"] == "FORM-TOO-BIG"
    assert jobs.list_jobs(home) == [] and layer_state(home) == before
    assert not any(p.is_file() for p in (home / "uploads").rglob("*"))


# --------------------------------------------------------------------------- hostile files


def test_hostile_uploads_are_refused_and_the_store_is_untouched(lam_ha, tmp_path):
    home, ids = lam_ha
    before = layer_state(home)
    c = client_for(home, "lan", job_workers=3)
    auth = bearer(home)
    # Refused on arrival: a Windows program named .gpkg (no job, nothing kept).
    exe = renamed_exe(tmp_path)
    r = api_upload(c, auth, exe, kind="parcels")
    assert r.status_code == 400 and r.json["error"]["code"] == "FILE-NOT-GIS"
    assert "gpkg" in r.json["error"]["message"].lower()
    r = upload(c, exe, kind="parcels")
    assert r.status_code == 400 and 'id="gp-pl-error"' in text_of(r)
    assert r.json is None and "gpkg" in text_of(r).lower()
    refused = audit.events(home, action="upload.refused").events
    assert [(e.actor, e.district, e.detail) for e in refused] == [
        ("lan", LAM_HA, {"file": "thua.gpkg", "code": "FILE-NOT-GIS"})] * 2
    # Refused by the worker: the job fails with what, where and how to fix.
    hostile = {zip_slip(tmp_path): "climbs out", zip_bomb(tmp_path): "zip bomb",
               broken_shx(tmp_path): ".shx"}
    submitted = {}
    for i, (path, needle) in enumerate(hostile.items()):
        if i % 2:
            job_id = api_upload(c, auth, path, kind="parcels").json["job"]["id"]
        else:
            job_id = job_id_of(upload(c, path, kind="parcels"))
        submitted[job_id] = (path, needle)
    for job_id, (path, needle) in submitted.items():
        job = finished(home, job_id)
        assert job.state == "failed", job.to_dict()
        assert needle in job.error["message"].lower() or needle in job.error["what"].lower(), \
            job.error
        assert job.error["where"].startswith(path.name) and job.error["fix"]
        page = text_of(c.get(f"/planner/jobs/{job_id}"))
        assert 'id="gp-job-error"' in page and job.error["what"].split("'")[0] in page
    assert layer_state(home) == before
    assert not (tmp_path.parent / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()
    assert not list(home.rglob("evil.txt"))


# --------------------------------------------------------------------------- concurrency, crashes


def test_two_uploads_to_one_district_at_once(lam_ha, tmp_path, monkeypatch):
    home, ids = lam_ha
    c = client_for(home, "lan", job_workers=2)
    monkeypatch.setenv(PAUSE_ENV, "store")  # both stop before writing: proof they overlap
    a = job_id_of(upload(c, plan_file(tmp_path, USES_V2, name="a.gpkg")))
    b = job_id_of(upload(c, plan_file(tmp_path, ["DGT"] * 9, name="b.gpkg")))
    paused = [wait_paused(home, a, "store"), wait_paused(home, b, "store")]
    assert paused[0].pid != paused[1].pid
    for job in paused:
        resume(job)
    a, b = finished(home, a), finished(home, b)
    assert a.state == b.state == "done", (a.error, b.error)
    with open_store(home, crs="EPSG:5899") as store:
        va, vb = a.result["version"], b.result["version"]
        assert va != vb and store.version(va).status == store.version(vb).status == "draft"
        assert list(store.read(va)["land_use"]) == USES_V2
        assert set(store.read(vb)["land_use"]) == {"DGT"}
        assert store.published(LAM_HA, "plan").id == ids["plan"]
        assert list(store.read(ids["plan"])["land_use"]) == USES_V1


def test_a_publish_killed_half_way_leaves_the_published_version(lam_ha, tmp_path,
                                                                 monkeypatch):
    home, ids = lam_ha
    c = client_for(home, "lan")
    v2 = finished(home, job_id_of(upload(c, plan_file(tmp_path, USES_V2)))).result["version"]
    r = post(c, f"/planner/versions/{v2}/decision", f"/planner/versions/{v2}",
             number="1234/QĐ-UBND", date="2023-06-30", authority="UBND tỉnh Lâm Đồng",
             pdf=(io.BytesIO(PDF), "qd.pdf"))
    assert r.status_code == 303
    monkeypatch.setenv(PAUSE_ENV, "publish")  # tiles built, the pointer not moved yet
    job_id = job_id_of(post(c, f"/planner/versions/{v2}/publish", f"/planner/versions/{v2}"))
    job = wait_paused(home, job_id, "publish")
    os.killpg(job.pid, signal.SIGKILL)
    gone(home, job_id)
    monkeypatch.delenv(PAUSE_ENV)
    # The server restarts: the job is reaped as interrupted, residents see v1.
    restarted = client_for(home, "lan")
    polled = restarted.get(f"/api/jobs/{job_id}").json["job"]
    assert (polled["state"], polled["message"]) == ("failed", "interrupted")
    assert polled["error"]["code"] == "JOB-INTERRUPTED"
    lon, lat = (float(v) for v in to_lonlat(XY[0] + 25, XY[1] + 25))
    answer = restarted.get(f"/api/lookup?lat={lat}&lon={lon}").json
    assert [p["code"] for p in answer["planned"]] == ["LUC"]
    assert answer["plan"]["version"] == ids["plan"]
    assert layer_state(home) == [(v2, "plan", "draft"), (ids["plan"], "plan", "published"),
                                 (ids["parcels"], "parcels", "published")]
    page = text_of(restarted.get(f"/planner/jobs/{job_id}"))
    assert 'id="gp-job-error"' in page and "interrupted" in page
    # The store is consistent: publishing again works.
    job = finished(home, job_id_of(post(restarted, f"/planner/versions/{v2}/publish",
                                        f"/planner/versions/{v2}")))
    assert job.state == "done", job.error
    assert lookup_planned(restarted, lon, lat) == ["ONT"]


@pytest.mark.parametrize("who,expected", [("lan", [LAM_HA]), ("boss", [LAM_HA, "672"])])
def test_job_listings_show_the_callers_districts(lam_ha, who, expected):
    home, ids = lam_ha
    c = client_for(home)  # before the jobs: a starting app would start queued jobs
    jobs.submit_publish(home, ids["plan"], district=LAM_HA, layer="plan", actor="lan",
                        start=False)
    jobs.submit_rollback(home, ids["plan"], district="672", layer="plan", actor="mai",
                         start=False)
    listed = c.get("/api/jobs", headers=bearer(home, who)).json["jobs"]
    assert sorted(j["district"] for j in listed) == sorted(expected)
