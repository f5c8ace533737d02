"""A full disk (issue 11, item 11): one line, code DISK-FULL, the right advice.

The data home is put on a real, small tmpfs (mounting needs root; the tests skip
otherwise) and the disk is really filled: a filler file takes all the space but what
each test leaves. Then ``ingest`` (GDAL writing the layer), ``publish`` (GDAL's tile
writer, which loses the cause), a background job and the catalogue meet the full disk as
they would on a server.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pyogrio
import pytest
from click.testing import CliRunner

from gisportal import jobs
from gisportal.base.diskspace import DiskFullError, disk_full_error, is_disk_full
from gisportal.cli.main import cli
from gisportal.store import open_store
from tests.conftest import parcel_grid
from tests.test_jobs import finished, hidden_rows, upload


@pytest.fixture
def small(tmp_path):
    """A 48 MiB tmpfs mounted for the test (skipped where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_home(small, monkeypatch) -> Path:
    home = small / "home"
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    return home


def fill(folder: Path, leave: int) -> None:
    """Fill the volume of `folder` until ENOSPC, then give back `leave` bytes."""
    filler = folder / "filler"
    with open(filler, "ab", buffering=0) as fh:
        try:
            while fh.write(b"\0" * 65536):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))


@pytest.fixture
def big_file(tmp_path) -> Path:
    """3 000 parcels (a GeoPackage of about 1 MiB), outside the small disk."""
    path = tmp_path / "thua_3000.gpkg"
    pyogrio.write_dataframe(parcel_grid(50, 60), path, driver="GPKG")
    return path


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_ingest_on_a_full_disk_says_so_in_one_line(small_home, big_file):
    first = run("ingest", str(big_file), "--kind", "parcels", "--district", "678")
    assert first.exit_code == 0, first.output
    fill(small_home.parent, 200_000)
    out = run("ingest", str(big_file), "--kind", "parcels", "--district", "678")
    assert out.exit_code == 1
    line = out.stderr.strip()
    assert "\n" not in line and "Traceback" not in out.output
    assert "the disk is full: could not write districts/678.gpkg" in line
    assert f"free space in {small_home} and retry" in line
    assert "column types" not in line
    with open_store(small_home, crs="EPSG:5899") as store:
        assert [v.id for v in store.versions()] == [1]  # nothing half-written is left
    assert hidden_rows(small_home) == []


def test_publish_on_a_full_disk_says_so_and_moves_nothing(small_home, big_file):
    assert run("ingest", str(big_file), "--kind", "parcels", "--district", "678").exit_code == 0
    fill(small_home.parent, 200_000)
    out = run("publish", "--district", "678", "--kind", "parcels", "--version", "1")
    assert out.exit_code == 1, out.output
    line = out.stderr.strip()
    assert "\n" not in line and "Traceback" not in out.output
    assert line.startswith("gisportal: error: ổ đĩa đã đầy")
    assert "the disk is full: could not write tiles/678/parcels" in line
    assert f"free space in {small_home} and retry" in line
    with open_store(small_home, crs="EPSG:5899") as store:
        assert store.published("678", "parcels") is None
    tiles = small_home / "tiles" / "678" / "parcels"
    assert [p.name for p in tiles.iterdir()] == [".build.lock"]  # no temporary file left


def test_a_job_on_a_full_disk_fails_with_disk_full_and_no_server_path(small_home, big_file):
    fill(small_home.parent, 1_500_000)  # room for the upload, not for the layer
    job = finished(small_home, upload(small_home, big_file).id)
    assert (job.state, job.message) == ("failed", "disk full"), job.error
    assert job.error["code"] == "DISK-FULL"
    assert "could not write districts/678.gpkg" in job.error["what"]
    assert "free space in $GISPORTAL_HOME and retry" in job.error["fix"]
    assert str(small_home) not in json.dumps(job.error)  # planners never see server paths
    assert jobs.get(small_home, job.id).error == job.error


def test_sqlite_full_is_recognised(small):
    fill(small, 64 * 1024)
    db = sqlite3.connect(small / "x.sqlite")
    with pytest.raises(sqlite3.OperationalError) as err:
        db.execute("CREATE TABLE t (b BLOB)")
        db.execute("INSERT INTO t VALUES (zeroblob(1000000))")
        db.commit()
    db.close()
    assert is_disk_full(err.value)
    assert not is_disk_full(sqlite3.OperationalError("no such table: t"))


def test_the_error_names_the_path_and_the_free_space(small):
    fill(small, 100 * 1024)
    err = disk_full_error(small / "home" / "tiles" / "678", small / "home")
    assert isinstance(err, DiskFullError) and err.code == "DISK-FULL"
    assert err.http_status == 507 and err.exit_code == 1
    assert "could not write tiles/678" in err.what and "KiB free" in err.what
    assert f"free space in {small / 'home'} and retry" in err.fix
