"""``gisportal cleanup`` on a real data home (issue 11, item 20; item 9's scratch).

The home is made as a land office makes it: uploads through real job workers (one
published, a check, a broken file, a draft awaiting review), cadastral versions published
one after another (tiles built by publishing), plus the litter killed processes leave.
Then the rules are read off what stays: uploads past retention go unless their version
is a draft or published, reports of versions stay, tile archives go but for published,
draft and the last superseded version, stale scratch goes, a live process's stays.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from gisportal import jobs
from gisportal.accounts import audit
from gisportal.cli.main import cli
from gisportal.jobs.housekeeping import clean_scratch, cleanup
from gisportal.outputs.tiles import tiles_path
from gisportal.services import workflow
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from tests.conftest import parcel_grid, write_shapefile_zip
from tests.test_jobs import finished, gone, upload

OLD = time.time() - 3600  # an hour ago: long past the scratch age


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A data home with jobs, versions, tiles and litter, made once (real workers are
    slow to start); each test gets its own copy. Returns (home, what was made)."""
    root = tmp_path_factory.mktemp("office")
    home = root / "home"
    v1_zip = write_shapefile_zip(parcel_grid(), root / "thua_v1.zip")
    changed = parcel_grid()
    changed["LoaiDat"] = "LUC"
    v2_zip = write_shapefile_zip(changed, root / "thua_v2.zip")
    broken = root / "thieu_shp.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("thua.dbf", b"\x03" + b"\0" * 40)

    made = {"published_job": finished(home, upload(home, v1_zip, publish=True).id),
            "check_job": finished(home, upload(home, v2_zip, kind="check").id),
            "failed_job": finished(home, upload(home, broken).id)}
    v1 = made["published_job"].result["version"]
    with open_store(home, crs="EPSG:5899") as store:
        # Two corrections published from the command line: v1, then v2, superseded.
        v2 = ingest_file(store, v2_zip, "parcels", "678", publish=True).version.id
        v3 = ingest_file(store, v1_zip, "parcels", "678", publish=True).version.id
        made["draft_job"] = finished(home, upload(home, v2_zip).id)
        made.update(v1=v1, v2=v2, v3=v3, draft=made["draft_job"].result["version"])
        assert made["failed_job"].state == "failed" and made["check_job"].state == "done"
        assert [store.version(v).status for v in (v1, v2, v3, made["draft"])] == [
            "superseded", "superseded", "published", "draft"]
    for key in ("published_job", "check_job", "failed_job", "draft_job"):
        gone(home, made[key].id)  # a finished job's worker may still be tidying up
    for v in (v1, v2, v3):
        assert tiles_path(home, "678", "parcels", v).exists()
    orphan = tiles_path(home, "678", "parcels", 99)
    orphan.write_bytes(b"an archive of a version the catalogue lost")
    os.utime(orphan, (OLD, OLD))
    made["orphan"] = orphan.relative_to(home)
    # Litter: a dead worker's unzipped upload, a tile build and a layer copy it left, a
    # half-received upload; a dead process's scratch too fresh to judge; scratch of
    # this (live) process.
    stale = ["tmp/gisportal-read-999999-ab12cd/unzipped/thua.shp",
             "tiles/678/parcels/.v7.pmtiles.999999.0a1b2c3d.tmp.tmp.mbtiles",
             "districts/.parcels_v7.999999.tmp.gpkg", "uploads/.incoming-0123abcd/thua.zip"]
    fresh = "tmp/gisportal-read-999998-ef34ab/x.shp"
    live = f"tmp/gisportal-read-{os.getpid()}-cd56ef/x.shp"
    roots = {home / "tmp", home / "tiles/678/parcels", home / "districts", home / "uploads"}
    for rel in (*stale, fresh, live):
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
        while rel != fresh and path not in roots:  # untouched for an hour
            os.utime(path, (OLD, OLD))
            path = path.parent
    made.update(stale=stale, fresh=fresh, live=live)
    return home, made


@pytest.fixture
def office(home, template):
    """This test's copy of the template home (times of files and folders kept)."""
    shutil.copytree(template[0], home, symlinks=True)
    made = dict(template[1])
    for key in ("stale", "fresh", "live", "orphan"):
        value = made[key]
        made[key] = [home / p for p in value] if isinstance(value, list) else home / value
    return made


def _paths(report, home) -> dict[str, set[str]]:
    return {name: {e.to_dict(home)["path"] for e in getattr(report, name)}
            for name in ("uploads", "tiles", "scratch")}


def test_cleanup_keeps_what_is_used_and_removes_the_rest(home, office):
    pub, check, failed, draft = (office[k] for k in ("published_job", "check_job",
                                                      "failed_job", "draft_job"))
    later = datetime.now(UTC) + timedelta(days=31)  # past the 30-day retention

    dry = cleanup(home, dry_run=True, now=later)
    expected = {
        # v1 is superseded: its upload goes, its reports stay; the check and the failed
        # upload made no version: their folders go; the draft keeps its upload.
        "uploads": {pub.params["upload"], f"uploads/{check.id}", f"uploads/{failed.id}"},
        # v1 is superseded and not the last one; v99 is not in the catalogue.
        "tiles": {f"tiles/678/parcels/v{office['v1']}.pmtiles",
                  "tiles/678/parcels/v99.pmtiles"},
        # (31 days on, the dead process's fresh scratch is old too; see the start-up test.)
        "scratch": {"tmp/gisportal-read-999999-ab12cd", "tmp/gisportal-read-999998-ef34ab",
                    "tiles/678/parcels/.v7.pmtiles.999999.0a1b2c3d.tmp.tmp.mbtiles",
                    "districts/.parcels_v7.999999.tmp.gpkg", "uploads/.incoming-0123abcd"},
    }
    assert _paths(dry, home) == expected
    assert all(p.exists() for p in office["stale"])  # a dry run removes nothing
    assert audit.events(home, action="cleanup").events == []

    done = cleanup(home, actor="admin", now=later)
    assert _paths(done, home) == expected
    assert done.bytes == dry.bytes > 0
    assert not any(p.exists() for p in office["stale"]) and not office["orphan"].exists()
    assert office["live"].exists()  # its process lives
    # What stays: the draft's upload (repair reads it again), the published and the last
    # superseded archives (a quick roll back), every report of a version.
    assert (home / draft.params["upload"]).exists()
    for v in (office["v2"], office["v3"]):
        assert tiles_path(home, "678", "parcels", v).exists()
    assert not (home / pub.params["upload"]).exists()
    assert jobs.report_file(home, pub.id, "json").exists()
    assert not (home / f"uploads/{check.id}").exists()
    assert not (home / f"uploads/{failed.id}").exists()
    # Audited in the name of who ran it, with the counts.
    [event] = audit.events(home, action="cleanup").events
    assert event.actor == "admin"
    assert event.detail["uploads"] == {"count": 3, "bytes": done.summary()["uploads"]["bytes"]}
    assert event.detail["tiles"]["count"] == 2 and event.detail["scratch"]["count"] == 5
    # Nothing is left to do, and the layer can still be rolled back at once.
    assert _paths(cleanup(home, dry_run=True, now=later), home) == {
        "uploads": set(), "tiles": set(), "scratch": set()}
    with open_store(home, crs="EPSG:5899") as store:
        back = workflow.rollback(store, "678", "parcels", office["v2"], "admin")
    assert back.version.id == office["v2"]


def test_within_retention_uploads_stay(home, office):
    report = cleanup(home, dry_run=True)  # now: every job finished minutes ago
    assert report.uploads == []
    assert {e.path.name for e in report.tiles} == {f"v{office['v1']}.pmtiles", "v99.pmtiles"}


def test_the_command_prints_and_audits_a_summary(home, office):
    runner = CliRunner()
    out = runner.invoke(cli, ["--home", str(home), "cleanup", "--dry-run",
                              "--retention-days", "0"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert f"would remove {office['published_job'].params['upload']}" in out.stdout
    assert lines[-1].startswith("cleanup would remove 3 uploads (")
    assert "2 tile archives (" in lines[-1] and "4 scratch entries (" in lines[-1]
    assert audit.events(home, action="cleanup").events == []
    out = runner.invoke(cli, ["--home", str(home), "cleanup", "--retention-days", "0",
                              "--json", "--user", "ops"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["dry_run"] is False and data["retention_days"] == 0
    assert data["summary"]["uploads"]["count"] == 3 and data["bytes"] > 0
    assert audit.events(home, action="cleanup").events[0].actor == "ops"


def test_start_up_removes_stale_scratch_only(home, office):
    from gisportal.web.app import create_app

    create_app({"home": str(home)})
    assert not any(p.exists() for p in office["stale"])
    assert office["fresh"].exists() and office["live"].exists()
    assert clean_scratch(home) == []
